"""The one contract every recommender keeps, written once (see ``docs/model_contract.md``).

A model subclasses :class:`Recommender`, stores its hyperparameters verbatim in ``__init__``
(listed in ``_PARAMS``), returns ``self`` from ``fit`` and names in ``_FITTED_BY`` an attribute
that exists once it is fitted. It then provides hooks; the verbs, their checks, their
signatures and their docstrings live here (``use_index``: ``semrec._index_choice``):

* scoring, one of
    - ``_vectors(users) -> (queries, item_vectors)`` (plus ``_score_offset``): a dot-product
      model, ``score = query · item + offset``, summed by :func:`semrec.topk`'s kernel;
    - ``_score_rows(users) -> a fresh dense block`` (optionally ``_rank_rows`` for a finer dtype and
      ``_recommend_rows`` for a faster top-k path): a score-matrix model;
* ``_item_space() -> (vectors, metric)`` or ``_similar_items(ids, k)`` for ``similar_items``;
* ``_fold_in``, ``_update``, ``_add_items`` for the real-time verbs (a model without them
  raises ``NotImplementedError`` with the hint in ``_HINTS``);
* ``_state() -> (meta, arrays)`` and ``_restore(saved)`` for ``save`` / ``load``, with
  ``_FORMAT_NAME`` and ``_FORMAT_VERSION``.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from semrec import _persist as persist
from semrec import _scoring as scoring
from semrec import _validation as check
from semrec._index_choice import NO_USERS, IndexChoice
from semrec._model_lock import CopiedWhole as LockedCopies
from semrec._model_lock import changes_model, changes_model_with_users, model_lock, reads_model
from semrec._search import DEFAULT_STORAGE, ItemSearch
from semrec.errors import FormatError, NotFittedError

__all__ = ["FORMATS", "Recommender", "load_nested", "nest"]

# Users scored per dense block by score-matrix models: bounds memory at 256 x n_items floats.
BATCH_USERS = 256

# Every saved model class, by format name: what a Hybrid or ColdStartALS file loads members with.
FORMATS: dict[str, type[Recommender]] = {}


class Recommender(LockedCopies, IndexChoice):
    """Base of every model: the common verbs, their argument checks, repr and persistence
    (``docs/model_contract.md``: what each verb promises, the hooks a model provides)."""

    _PARAMS: ClassVar[tuple[str, ...]] = ()
    _FORMAT_NAME: ClassVar[str] = ""
    _FORMAT_VERSION: ClassVar[int] = 2
    _FITTED_BY: ClassVar[str] = "interactions_"
    _HINTS: ClassVar[dict[str, str]] = {}  # per verb a model lacks: what to do instead

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("_FORMAT_NAME"):
            FORMATS[cls._FORMAT_NAME] = cls

    def __repr__(self) -> str:
        params = ", ".join(f"{p}={getattr(self, p)!r}" for p in self._PARAMS)
        return f"{type(self).__name__}({params})"

    def _set_params(self, values: dict[str, Any]) -> None:
        """Store each hyperparameter of ``_PARAMS`` verbatim (``__init__`` passes ``locals()``);
        they are checked when the model is fitted, so that ``__init__`` never fails."""
        for name in self._PARAMS:
            setattr(self, name, values[name])

    # -- state -------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if self._FITTED_BY not in vars(self):
            name = type(self).__name__
            raise NotFittedError(f"this {name} is not fitted yet; call fit(interactions) first")

    @property
    def n_users_(self) -> int:
        """Number of users (fitted, folded in or added by ``update``)."""
        self._check_fitted()
        return int(self._shape()[0])

    @property
    def n_items_(self) -> int:
        """Number of items (fitted or added)."""
        self._check_fitted()
        return int(self._shape()[1])

    def _shape(self) -> tuple[int, int]:
        """(users, items) of the fitted model (without merging anything to find out)."""
        return self.interactions_.shape

    def _user_ids(self, users: Any) -> tuple[np.ndarray, bool]:
        self._check_fitted()
        return check.index_array(users, "users", self.n_users_, "user")

    def _seen_rows(self, users: np.ndarray) -> sp.csr_array:
        """The items each listed user has interacted with (what ``exclude_seen`` removes)."""
        return sp.csr_array(self.interactions_[users])

    def _seen_items(self, user: int) -> np.ndarray:
        """One user's seen item ids, sorted, 1-D (what ``exclude_seen`` removes for one user)."""
        return self._seen_rows(np.array([user])).indices

    @property
    def _threads(self) -> int | None:
        return getattr(self, "num_threads", None)

    # -- scoring hooks ---------------------------------------------------------------------------
    _score_offset: float = 0.0
    _ITEM_STORAGE: str = DEFAULT_STORAGE  # the exact index's packing unless use_index says

    def _vectors(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Dot-product models: (queries of ``users``, item vectors), float32, C-contiguous."""
        raise NotImplementedError

    def _is_dot_product(self) -> bool:
        return type(self)._vectors is not Recommender._vectors

    def _score_rows(self, users: np.ndarray) -> np.ndarray:
        """Score-matrix models: dense float32 scores of every item, (len(users), n_items)."""
        if self._is_dot_product():
            queries, items = self._vectors(users)
            return scoring.kernel_scores(queries, items, None, self._score_offset, self._threads)
        raise NotImplementedError

    def _rank_rows(self, users: np.ndarray) -> np.ndarray:
        """``_score_rows``, unless a model ranks by a finer dtype (it returns float32 anyway)."""
        return np.asarray(self._score_rows(users), dtype=np.float32)  # select_topk only reads

    def _recommend_rows(
        self, users: np.ndarray, k: int, exclude_seen: bool, candidates: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k of validated users: exact top-k over the dot products, or over dense rows."""
        if self._is_dot_product():
            queries, items = self._vectors(users)
            width = min(k, max(items.shape[0], 1))  # the kernel allocates by k: pad the rest
            index = self._item_search().index_for(items, self._threads)
            one, seen = users.size == 1, None
            if exclude_seen:  # one user: ids, no matrix; add_items may have grown them since
                seen = self._seen_items(int(users[0])) if one else self._seen_rows(users)
            found, top = scoring.search_unseen(
                queries, index, width, seen, candidates, self._threads, items.shape[0]
            )
            if self._score_offset:
                top = top + np.float32(self._score_offset)  # -inf padding stays -inf
            return scoring.padded_to((found, top), k)
        seen = self._seen_rows if exclude_seen else None
        return scoring.select_in_batches(
            users, k, self._rank_rows, seen, self.n_items_, candidates, BATCH_USERS, self._threads
        )

    # -- how recommend searches the items (dot-product models; use_index: IndexChoice) ------
    def _item_search(self) -> ItemSearch:
        return vars(self).setdefault("_item_search_state", ItemSearch(self._ITEM_STORAGE))

    # -- the verbs -------------------------------------------------------------------------------
    @reads_model
    def recommend(
        self,
        users: int | np.ndarray,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        items: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items for each user, best first.

        Parameters
        ----------
        users : int or 1-D array of int
            User ids; a scalar gives 1-D results.
        k : int, default 10
        exclude_seen : bool, default True
            Never return an item the user has interacted with (in ``fit``, ``fold_in`` or
            ``update``), whatever the weight of the interaction.
        items : 1-D array of int, optional
            Only recommend among these item ids.

        Returns
        -------
        ids : ndarray of int32, shape (n_users, k)
            Best first, ties to the lower id; padded with -1 when fewer than ``k`` items are
            eligible.
        scores : ndarray of float32, shape (n_users, k)
            The items' scores (as ``score`` gives them); padded with -inf.

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> clicks = sp.csr_array(np.eye(4, dtype=np.float32))
        >>> model = semrec.ALS(factors=2, random_state=0, show_progress=False).fit(clicks)
        >>> model.recommend([0, 1], k=2)[0].shape
        (2, 2)
        """
        (u, scalar), seen = self._user_ids(users), check.flag(exclude_seen, "exclude_seen")
        k = check.result_width(k, u.size, self.n_items_)
        candidates = None if items is None else check.item_ids(items, "items", self.n_items_)
        ids, scores = self._recommend_rows(u, k, seen, candidates)
        return (ids[0], scores[0]) if scalar else (ids, scores)

    @reads_model
    def score(self, users: int | np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores of every listed item for every listed user (higher is better).

        The same values ``recommend`` ranks by and returns; a user's scores do not depend on
        the other users asked in the same call.

        Parameters
        ----------
        users : int or 1-D array of int
            User ids in ``[0, n_users_)``; a scalar gives 1-D results.
        items : int or 1-D array of int
            Item ids in ``[0, n_items_)``, in any order, repeats allowed: column ``j`` scores
            ``items[j]``. Seen items are scored too (``exclude_seen`` is ``recommend``'s).

        Returns
        -------
        ndarray of float32, shape (n_users, n_items)
            One column per entry of ``items``; 1-D for a scalar user.

        Raises
        ------
        IndexError
            A user or item id outside the model's range.
        TypeError
            Ids that are not integers.

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> model = semrec.MostPopular().fit(sp.csr_array([[1.0, 0.0], [1.0, 1.0]]))
        >>> model.score(0, [0, 1])
        array([2., 1.], dtype=float32)
        """
        u, scalar = self._user_ids(users)
        i, _ = check.index_array(items, "items", self.n_items_, "item")
        if self._is_dot_product():
            queries, vectors = self._vectors(u)
            out = scoring.kernel_scores(queries, vectors, i, self._score_offset, self._threads)
        else:
            out = scoring.score_columns(u, i, self._score_rows, self.n_items_, BATCH_USERS)
        return out[0] if scalar else out

    @reads_model
    def similar_items(self, items: int | np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items most similar to each given item (itself excluded), best first.

        Similar by the model's own item representation: the cosine of factor or embedding
        vectors, or a neighbourhood model's item graph.

        Parameters
        ----------
        items : int or 1-D array of int
            Item ids in ``[0, n_items_)``; a scalar gives 1-D results.
        k : int, default 10
            Neighbours per item (>= 1); past the other items' count the rows are padded.

        Returns
        -------
        ids, scores : ndarray of int32 / float32, shape (n_items, k)
            1-D for a scalar item; padded with -1 / -inf (all of it for an all-zero vector).

        Raises
        ------
        IndexError
            An item id outside ``[0, n_items_)``.
        NotImplementedError
            A model without item similarity (``MostPopular``, ``Random``).

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> emb = np.array([[1, 0], [0, 1], [0.9, 0.1]], dtype=np.float32)
        >>> model = semrec.ContentRecommender(emb, show_progress=False)
        >>> model.fit(sp.csr_array((1, 3), dtype=np.float32)).similar_items(0, k=1)[0].tolist()
        [2]
        """
        self._check_fitted()
        ids, scalar = check.index_array(items, "items", self.n_items_, "item")
        k = check.result_width(k, ids.size, self.n_items_)
        found, scores = self._similar_items(ids, k)
        return (found[0], scores[0]) if scalar else (found, scores)

    def _similar_items(self, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        vectors, metric = self._item_space()
        return scoring.nearest(vectors, ids, k, metric, self._threads)

    def _item_space(self) -> tuple[np.ndarray, str]:
        """The item vectors ``similar_items`` compares, and the metric (``"cosine"``/``"dot"``)."""
        raise self._unsupported("similar_items")

    @reads_model
    def explain(self, user: int, item: int, k: int = 5) -> Any:
        """Why ``user`` gets ``item``: the terms the score is made of, largest first.

        Each model splits its score into one term per item of the user's history (UserKNN:
        per neighbour), in the score's units; the model's ``_explain`` documents how, and when
        the split is exact.

        Parameters
        ----------
        user, item : int
        k : int, default 5
            Rows to return.

        Returns
        -------
        pandas.DataFrame
            The common table of :mod:`semrec.explain`: columns ``item`` (or ``neighbour``),
            ``contribution``, ``share``; ``attrs`` ``user``, ``item``, ``score``,
            ``explained`` (the sum over every term) and ``rest`` (``score - explained``).

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> r = sp.csr_array(np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1]], dtype=np.float32))
        >>> why = semrec.ItemKNN(2, show_progress=False).fit(r).explain(0, 2)
        >>> why["item"].tolist(), bool(abs(why.attrs["rest"]) < 1e-6)
        ([1, 0], True)
        """
        self._check_fitted()
        u = check.one_id(user, "user", self.n_users_)
        i = check.one_id(item, "item", self.n_items_)
        return self._explain(u, i, check.positive_int(k, "k"))

    def _explain(self, user: int, item: int, k: int) -> Any:
        raise self._unsupported("explain")

    # -- real time ---------------------------------------------------------------------------
    @changes_model_with_users
    def fold_in(
        self,
        history: sp.csr_array | sp.csr_matrix,
        *,
        users: np.ndarray | None = None,
        timestamps: np.ndarray | None = None,
    ) -> np.ndarray:
        """The vectors of users described by their interaction histories; optionally store them.

        Parameters
        ----------
        history : scipy.sparse CSR, shape (n, ``n_items_``)
            One row per user: that user's whole history (weights as in ``fit``; every stored
            entry is an interaction, a weight of 0 included).
        users : 1-D array of int, optional
            Also store the histories under these ids: an existing id replaces that user's
            history, ids ``n_users_, n_users_ + 1, ...`` append new users. The ids must be
            distinct. Without it the model is unchanged.
        timestamps : 1-D array, optional
            One time per stored entry of ``history`` (models with time decay; default "now").
            Ignored by models without a notion of time.

        Returns
        -------
        ndarray of float32, shape (n, d)
            One row per history: the user's vector in the model's space, the same that
            ``update`` returns: user factors (factor models), the interest profile
            (ContentRecommender), or the scores of every item (neighbourhood models, without
            user vectors; a Hybrid has no fold_in of its own: fold each member in).

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> model = semrec.ALS(factors=2, random_state=0, show_progress=False)
        >>> model = model.fit(sp.csr_array(np.eye(3, dtype=np.float32)))
        >>> new = sp.csr_array(np.array([[1, 0, 1]], dtype=np.float32))
        >>> model.fold_in(new, users=[3]).shape, model.n_users_
        ((1, 2), 4)
        """
        self._check_fitted()
        check.require_csr(history, "history", f"of shape (n_users, {self.n_items_})")
        if history.ndim != 2 or history.shape[1] != self.n_items_:
            raise ValueError(
                f"history must have shape (n_users, {self.n_items_}) (one row per user, one "
                f"column per item of the model), got {history.shape}"
            )
        ids = None
        if users is not None:
            ids = check.new_user_ids(users, history.shape[0], self.n_users_)
        times = None if timestamps is None else check.timestamps(timestamps, history.nnz)
        return self._fold_in(history, ids, times)

    def _fold_in(
        self, history: Any, users: np.ndarray | None, times: np.ndarray | None
    ) -> np.ndarray:
        raise self._unsupported("fold_in")

    @changes_model
    def update(
        self, user: int, item: int, weight: float = 1.0, t: float | None = None
    ) -> np.ndarray:
        """Record one interaction; the user's next recommendations reflect it at once.

        Parameters
        ----------
        user : int
            An existing user, or ``n_users_`` to start a new one.
        item : int
        weight : float, default 1.0
            Added to the user's weight for the item (negative: a dislike, where the model has
            them). The item is seen from now on, whatever the resulting weight.
        t : float, optional
            When it happened (models with time decay; default "now", the latest time seen).
            Ignored by models without a notion of time.

        Returns
        -------
        ndarray of float32, shape (d,)
            The user's new vector: what ``fold_in`` of the user's whole changed history gives.

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> model = semrec.ItemKNN(2, show_progress=False)
        >>> model = model.fit(sp.csr_array(np.eye(3, dtype=np.float32) + np.eye(3, k=1)))
        >>> model.update(0, 2).shape, int(model.recommend(0, k=1)[0][0])
        ((3,), -1)
        """
        self._check_fitted()
        n_users, n_items = self._shape()  # (n_users_ and n_items_ would check fitted again)
        u = check.one_id(user, "user", n_users + 1)
        i = check.one_id(item, "item", n_items)
        w = check.number(weight, "weight")
        ts = None if t is None else check.number(t, "t")
        return self._update(u, i, w, ts)

    def _update(self, user: int, item: int, weight: float, t: float | None) -> np.ndarray:
        raise self._unsupported("update")

    @changes_model
    def add_items(self, items: Any) -> np.ndarray:
        """Append items to the catalogue; they are recommendable at once, with no interactions.

        Parameters
        ----------
        items : ndarray of float32, shape (m, dim) or (dim,), or str / list of str
            The new items' embeddings, or their texts for a model with a text encoder.

        Returns
        -------
        ndarray of int32
            The new item ids: ``n_items_`` before the call, and on.

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> model = semrec.ContentRecommender(np.eye(2, dtype=np.float32), show_progress=False)
        >>> model = model.fit(sp.csr_array(np.array([[1, 0]], dtype=np.float32)))
        >>> model.add_items(np.array([[2, 0.1]], dtype=np.float32)).tolist()
        [2]
        """
        self._check_fitted()
        return self._add_items(items)

    def _add_items(self, items: Any) -> np.ndarray:
        raise self._unsupported("add_items")

    def _unsupported(self, verb: str) -> NotImplementedError:
        hint = f": {self._HINTS[verb]}" if self._HINTS.get(verb) else ""
        return NotImplementedError(f"{type(self).__name__} does not support {verb}{hint}")

    # -- persistence -------------------------------------------------------------------------
    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-serialisable metadata and the arrays that make up the fitted model."""
        raise NotImplementedError(f"{type(self).__name__} cannot be saved")

    def _restore(self, saved: persist.Saved) -> None:
        """Inverse of ``_state``: read every field through ``saved`` (checked accessors)."""
        raise NotImplementedError

    def _params(self) -> dict[str, Any]:
        params = {p: getattr(self, p) for p in self._PARAMS}
        if not isinstance(params.get("random_state"), int | np.integer | None):
            params["random_state"] = None  # a Generator is not data; its job is done after fit
        if "encoder" in params:
            params["encoder"] = None  # a model object, not data: pass it again after load
        return params

    def _document(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """The whole saved form: format, version, hyperparameters, state."""
        self._check_fitted()
        meta, arrays = self._state()
        header = {"format": self._FORMAT_NAME, "version": self._FORMAT_VERSION}
        meta = {**header, "params": self._params(), **meta}
        if not (search := self._item_search()).is_default():  # the choice, an HNSW graph
            search.save_into(meta, arrays, "item_index", self.item_index_)
        return meta, arrays

    @changes_model
    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the fitted model to ``path``.

        One ``.npz`` archive: arrays and JSON metadata (format, version, hyperparameters, a
        SHA-256 per array); no pickle. Written beside ``path`` and renamed over it (a crash
        never leaves half a file; a replaced file keeps its permissions); ``~`` is the home.
        Members (a Hybrid's) go in the same file. A hyperparameter changed since ``fit`` that
        the file could not honour is a ValueError. Not saved, so give them again after ``load``:
        a text encoder, a ``numpy.random.Generator`` random_state (saved as None: unseeded).

        Parameters
        ----------
        path : str or os.PathLike
            The file to write; a symbolic link is followed (the file it names is replaced).

        Raises
        ------
        NotFittedError
            The model is not fitted.
        ValueError
            ``path`` is a directory or not a regular file, or the model would not load back.

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec, tempfile, os
        >>> model = semrec.ALS(2, random_state=0, show_progress=False).fit(sp.csr_array(np.eye(3)))
        >>> path = os.path.join(tempfile.mkdtemp(), "als.npz")
        >>> model.save(path); semrec.ALS.load(path).factors
        2
        """
        meta, arrays = self._document()
        persist.write(path, meta, arrays, loads=type(self)._from_saved)  # never unloadable

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Self:
        """Read a model written by ``save``; everything read is checked first.

        Parameters
        ----------
        path : str or os.PathLike
            A file written by ``save`` of this model class (``~`` is the home).

        Returns
        -------
        Recommender
            A fitted model of the class ``load`` is called on.

        Raises
        ------
        FileNotFoundError
            No file at ``path`` (IsADirectoryError: a directory).
        semrec.FormatError
            A corrupt file, one of another model or format version; names the file and the
            field.

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "pop.npz")
        >>> semrec.MostPopular().fit(sp.csr_array([[1.0, 0.0]])).save(path)
        >>> semrec.MostPopular.load(path).n_items_
        2
        """
        return cls._from_saved(persist.read(path, cls._FORMAT_NAME, cls._FORMAT_VERSION))

    @classmethod
    def _from_saved(cls, saved: persist.Saved) -> Any:
        try:
            model = cls._from_params(saved.params(cls._PARAMS), saved)
            model._restore(saved)
            if "item_index" in saved.meta:
                items = model._vectors(NO_USERS)[1]
                model._item_search().load(saved, "item_index", items, model._threads)
        except FormatError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, MemoryError) as exc:
            raise persist.load_error(saved, exc) from None  # never NumPy's "Unable to allocate"
        return model

    @classmethod
    def _from_params(cls, params: dict[str, Any], saved: persist.Saved) -> Any:
        """A fresh model from saved hyperparameters (override when __init__ needs arrays)."""
        return cls(**params)


def load_nested(saved: persist.Saved, key: str) -> Any:
    """A model saved inside another one under ``key`` (see :meth:`Recommender._document`)."""
    inner = saved.nested(key)
    name = inner.value("format", str)
    cls = FORMATS.get(name)
    if cls is None:
        raise saved.error(key, f"is a {name!r} model, which this semrec does not know")
    if inner.value("version", int) != cls._FORMAT_VERSION:
        raise saved.error(key, f"has {name} format version {inner.meta['version']}")
    return cls._from_saved(inner)


def nest(key: str, model: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``model``'s saved form to store inside another model's file under ``key``."""
    if not isinstance(model, Recommender) or not model._FORMAT_NAME:
        raise TypeError(
            f"{type(model).__name__} is not a semrec model that can be saved; save the "
            "semrec models and rebuild the rest after loading"
        )
    with model_lock(model).reading():  # a copy: other threads may change a member meanwhile
        meta, arrays = model._document()
        return {key: meta}, {f"{key}/{name}": np.array(a) for name, a in arrays.items()}
