"""Content-based recommendation from item embeddings and decayed user-interest profiles.

Each user is the direction of the weighted, time-decayed sum of the (L2-normalised) embeddings
of the items in their history (:mod:`semrec.interest`); an item's score is the cosine between
that profile and the item. Everything is real time: an event changes the user's next
recommendations at once (O(dim)), new users are folded in from a few interactions or a text
query, and new items are recommendable from their embedding or text alone.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from tqdm import tqdm

from semrec import _validation as check
from semrec._base import Recommender
from semrec._threads import resolve_num_threads
from semrec.datasets import Dataset, ItemEmbeddings
from semrec.datasets._embeddings import check_alignment
from semrec.errors import NotFittedError
from semrec.explain import explanation, scalar_id
from semrec.interest import (
    StreamingProfiles,
    _events_csr,
    _half_life,
    _time_value,
    _timestamps,
    _weight,
    user_profiles,
)
from semrec.similarity import topk

logger = logging.getLogger("semrec")

# fit adds users in this many chunks (progress bar steps, Ctrl-C checks between them).
_FIT_CHUNKS = 32
_MIN_CHUNK = 4096
# Events kept outside the cached "seen" matrix before it is rebuilt.
_TAIL_LIMIT = 65_536


class ContentRecommender(Recommender):
    """Recommend items whose embeddings point where a user's interest profile points.

    ``profile_u = normalise(sum_i w_ui * 0.5 ** ((t_now - t_ui) / half_life) * e_i)`` over the
    user's history (negative weights are dislikes), and ``score(u, j) = profile_u · e_j`` with
    every ``e`` L2-normalised, i.e. the cosine. Users without (net) history score 0 everywhere.

    Parameters
    ----------
    item_embeddings : ndarray of float32, shape (n_items, dim)
        One row per item, e.g. ``TextEncoder().encode(item_texts)``. Stored L2-normalised
        (zero rows stay zero and score 0).
    half_life : float, optional
        Time decay of interest, in the unit of the timestamps: an interaction ``half_life``
        older than another counts half as much. ``None``: no decay.
    encoder : semrec.TextEncoder, optional
        Encodes the text given to :meth:`recommend_text` and :meth:`add_items`; by default a
        :class:`semrec.TextEncoder` with its bundled model, created on first use. It must
        produce vectors of the items' dimension. Not saved by :meth:`save`.
    num_threads : int, optional
        ``None`` uses :func:`semrec.get_num_threads`, ``0`` all cores.
    show_progress : bool, optional
        Show a tqdm bar during ``fit`` (``None``: only when stderr is a terminal).

    Attributes
    ----------
    item_embeddings_ : ndarray of float32, shape (n_items_, dim)
        The normalised catalogue, including items added by :meth:`add_items`.
    interactions_ : scipy.sparse.csr_array
        Summed weights of every event so far (users x items); what ``exclude_seen`` excludes.
    n_users_, n_items_ : int

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, semrec
    >>> emb = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], dtype=np.float32)
    >>> likes = sp.csr_array(np.array([[1, 0, 0, 0], [0, 0, 1, 0]], dtype=np.float32))
    >>> model = semrec.ContentRecommender(emb, show_progress=False).fit(likes)
    >>> model.recommend([0, 1], k=1)[0].tolist()
    [[1], [3]]
    >>> model.update(0, 2, weight=3.0).shape   # user 0 now likes the other direction
    (2,)
    >>> int(model.recommend(0, k=1)[0][0])
    3
    """

    _PARAMS: ClassVar[tuple[str, ...]] = ("half_life", "encoder", "num_threads", "show_progress")
    _FORMAT_NAME: ClassVar[str] = "semrec.ContentRecommender"
    _FORMAT_VERSION: ClassVar[int] = 1

    def __init__(
        self,
        item_embeddings: np.ndarray,
        *,
        half_life: float | None = None,
        encoder: Any = None,
        num_threads: int | None = None,
        show_progress: bool | None = True,
    ) -> None:
        self.item_embeddings = item_embeddings
        self.half_life = half_life
        self.encoder = encoder
        self.num_threads = num_threads
        self.show_progress = show_progress

    def __repr__(self) -> str:
        emb = self.item_embeddings
        shape = getattr(emb, "shape", None)
        params = ", ".join(f"{p}={getattr(self, p)!r}" for p in self._PARAMS)
        return f"ContentRecommender(item_embeddings=<array {shape}>, {params})"

    @classmethod
    def from_dataset(
        cls,
        dataset: Dataset,
        item_embeddings: ItemEmbeddings | None = None,
        **params: Any,
    ) -> ContentRecommender:
        """A model fitted on ``dataset``, its item vectors matched to the items by id.

        Parameters
        ----------
        dataset : semrec.datasets.Dataset
            Interactions (and timestamps) to fit on.
        item_embeddings : semrec.datasets.ItemEmbeddings, optional
            Vectors that carry their item ids (e.g. ``TextEncoder().encode_items(full)`` of a
            dataset this one was split or renumbered from): reordered to ``dataset``'s items.
            Default: the dataset's item text encoded with ``encoder`` (a
            :class:`semrec.TextEncoder` unless ``encoder=`` is given).
        **params
            Hyperparameters of :class:`ContentRecommender` (``half_life``, ``encoder`` ...).

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> from semrec.datasets import Dataset, ItemEmbeddings
        >>> ds = Dataset(sp.csr_array([[1.0, 0.0, 0.0]]), item_ids=["a", "b", "c"])
        >>> emb = ItemEmbeddings(np.array([[1, 0], [0.9, 0.1], [0, 1]], np.float32), ds.item_ids)
        >>> shuffled = ds.permute_items(random_state=3)   # items renumbered
        >>> model = semrec.ContentRecommender.from_dataset(shuffled, emb, show_progress=False)
        >>> shuffled.item_ids[model.recommend(0, k=1)[0]].tolist()
        ['b']
        """
        if not isinstance(dataset, Dataset):
            raise TypeError(f"dataset must be a semrec.datasets.Dataset, got {type(dataset)}")
        if item_embeddings is None:
            encoder = params.get("encoder")
            if encoder is None:
                from semrec.text import TextEncoder

                encoder = TextEncoder(num_threads=params.get("num_threads"))
            item_embeddings = encoder.encode_items(dataset)
        if not isinstance(item_embeddings, ItemEmbeddings):
            raise TypeError(
                "item_embeddings must be semrec.datasets.ItemEmbeddings (vectors with their "
                f"item ids, e.g. TextEncoder().encode_items(dataset)), got "
                f"{type(item_embeddings).__name__}; a plain array is matched by row order: "
                "pass it to ContentRecommender(...) instead"
            )
        return cls(item_embeddings.aligned_to(dataset), **params).fit(dataset)

    # -- fitted state ------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "_stream"):
            raise NotFittedError(
                "this ContentRecommender is not fitted yet; call fit(interactions) first"
            )

    @property
    def n_users_(self) -> int:
        self._check_fitted()
        return self._stream.n_users

    @property
    def n_items_(self) -> int:
        self._check_fitted()
        return self._stream.n_items

    @property
    def item_embeddings_(self) -> np.ndarray:
        self._check_fitted()
        return self._stream.item_embeddings

    @property
    def interactions_(self) -> sp.csr_array:  # type: ignore[override]
        self._check_fitted()
        self._consolidate()
        return self._seen

    @interactions_.setter
    def interactions_(self, value: sp.csr_array) -> None:
        # Set by Recommender.load; _restore checks it against the event log.
        self._loaded_seen = value

    # -- training ----------------------------------------------------------------------------
    def fit(
        self,
        interactions: sp.csr_array | sp.csr_matrix | Dataset,
        *,
        timestamps: np.ndarray | None = None,
    ) -> ContentRecommender:
        """Build every user's profile from their interactions.

        Parameters
        ----------
        interactions : scipy.sparse CSR, shape (n_users, n_items), or semrec.datasets.Dataset
            Weights per (user, item); negative weights are dislikes. Every stored entry is one
            event (duplicates add up). A ``Dataset`` brings its own ``timestamps``.
        timestamps : 1-D array of int or float, optional
            One time per stored entry, aligned with ``interactions.data``; required with
            ``half_life``.

        Returns
        -------
        self

        Raises
        ------
        TypeError, ValueError, IndexError
            Not a CSR matrix, wrong number of columns, NaN/inf weights, ``half_life`` without
            timestamps, bad embeddings.

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> emb = np.eye(3, dtype=np.float32)
        >>> r = sp.csr_array(np.array([[1, 0, 0], [0, 0, 1]], dtype=np.float32))
        >>> semrec.ContentRecommender(emb, show_progress=False).fit(r).n_users_
        2
        """
        if isinstance(interactions, Dataset):
            check_alignment(self.item_embeddings, interactions)
            if timestamps is None:
                timestamps = interactions.timestamps
            interactions = interactions.interactions
        start = time.perf_counter()
        stream = StreamingProfiles(
            _normalised(self.item_embeddings, "item_embeddings"),
            half_life=self.half_life,
            num_threads=self.num_threads,
        )
        indptr, indices, weights = _events_csr(interactions, "interactions", stream.n_items)
        times = _timestamps(timestamps, weights.size)
        if self.half_life is not None and times is None:
            raise ValueError(
                "half_life needs timestamps: pass fit(interactions, timestamps=...) with one "
                "time per stored interaction, or a Dataset that has them"
            )
        times = np.zeros(weights.size) if times is None else times.astype(np.float64)
        users = np.repeat(np.arange(interactions.shape[0], dtype=np.int32), np.diff(indptr))
        log = _EventLog.from_arrays(users, indices, weights, times)  # every event is seen
        indptr, indices, weights, times = _drop_zeros(indptr, indices, weights, times)
        n_users = interactions.shape[0]
        stream._state.grow(n_users)
        show = self.show_progress if self.show_progress is not None else sys.stderr.isatty()
        step = max(_MIN_CHUNK, -(-n_users // _FIT_CHUNKS))
        with tqdm(total=n_users, desc="profiles", unit="user", disable=not show) as bar:
            for first in range(0, n_users, step):
                last = min(n_users, first + step)
                lo, hi = indptr[first], indptr[last]
                stream._add_rows(
                    indptr[first : last + 1] - lo,
                    indices[lo:hi],
                    weights[lo:hi],
                    times[lo:hi],
                    first,
                )
                bar.update(last - first)
        self._stream = stream
        self._log = log
        self._seen = None
        self._seen_upto = 0
        logger.debug(
            "ContentRecommender.fit: %d users, %d events in %.3fs",
            n_users,
            weights.size,
            time.perf_counter() - start,
        )
        return self

    # -- queries -----------------------------------------------------------------------------
    def profiles(self, users: int | np.ndarray) -> np.ndarray:
        """The users' normalised interest profiles, shape (n, dim) (1-D for a scalar user)."""
        u, scalar = self._users(users)
        out = self._stream._state.profiles(u, resolve_num_threads(self.num_threads))
        return out[0] if scalar else out

    def _score_rows(self, users: np.ndarray) -> np.ndarray:
        return self._cosines(np.asarray(users, dtype=np.int64), slice(None))

    def _cosines(self, users: np.ndarray, items: Any) -> np.ndarray:
        # Summed in float64: BLAS picks other kernels (other rounding) for one row than for
        # many, and a user's scores must not depend on who else is in the batch.
        profiles = self.profiles(users).astype(np.float64)
        out = profiles @ self.item_embeddings_[items].astype(np.float64).T
        return out.astype(np.float32)

    def score(self, users: int | np.ndarray, items: np.ndarray) -> np.ndarray:
        """Cosine between each listed user's profile and each listed item.

        Returns shape (n_users, n_items) (1-D for a scalar user).

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> emb = np.eye(2, dtype=np.float32)
        >>> model = semrec.ContentRecommender(emb, show_progress=False)
        >>> model.fit(sp.csr_array(np.array([[1, 0]], dtype=np.float32))).score(0, [0, 1])
        array([1., 0.], dtype=float32)
        """
        u, scalar = self._users(users)
        i, _ = check.index_array(items, "items", self.n_items_, "item")
        out = self._cosines(u, i)
        return out[0] if scalar else out

    def recommend(
        self,
        users: int | np.ndarray,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        items: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items by cosine to each user's profile, best first.

        Parameters
        ----------
        users : int or 1-D array of int
            User ids; a scalar gives 1-D results.
        k : int, default 10
        exclude_seen : bool, default True
            Never return items the user has interacted with: any event so far, including
            :meth:`update`, whatever its weight (a weight of 0, or a like and a dislike that
            cancel, still mark the item seen).
        items : 1-D array of int, optional
            Only recommend among these item ids.

        Returns
        -------
        ids : ndarray of int32, shape (n_users, k)
            Padded with -1 when fewer than ``k`` items are eligible.
        scores : ndarray of float32, shape (n_users, k)
            Cosines; padded with -inf.

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> emb = np.array([[1, 0], [0.8, 0.6], [0, 1]], dtype=np.float32)
        >>> model = semrec.ContentRecommender(emb, show_progress=False)
        >>> model = model.fit(sp.csr_array(np.array([[1, 0, 0]], dtype=np.float32)))
        >>> model.recommend(0, k=2)[0].tolist()
        [1, 2]
        """
        u, scalar = self._users(users)
        k = check.positive_int(k, "k")
        queries = self._stream._state.profiles(u, resolve_num_threads(self.num_threads))
        exclude = self._exclusion(u) if exclude_seen else None
        ids, scores = topk(
            queries,
            self.item_embeddings_,
            k,
            metric="dot",
            exclude=exclude,
            candidates=None if items is None else check.item_ids(items, "items", self.n_items_),
            num_threads=self.num_threads,
            check_finite=False,
        )
        return (ids[0], scores[0]) if scalar else (ids, scores)

    def similar_items(self, items: int | np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items whose embeddings have the highest cosine to each item (not itself).

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> emb = np.array([[1, 0], [0, 1], [0.9, 0.1]], dtype=np.float32)
        >>> model = semrec.ContentRecommender(emb, show_progress=False)
        >>> model = model.fit(sp.csr_array((1, 3), dtype=np.float32))
        >>> model.similar_items(0, k=1)[0].tolist()
        [2]
        """
        self._check_fitted()
        emb = self.item_embeddings_
        rows, scalar = check.index_array(items, "items", emb.shape[0], "item")
        itself = sp.csr_array(
            (np.ones(rows.size, dtype=np.float32), rows.astype(np.int32), np.arange(rows.size + 1)),
            shape=(rows.size, emb.shape[0]),
        )
        ids, scores = topk(
            np.ascontiguousarray(emb[rows]),
            emb,
            k,
            metric="dot",
            exclude=itself,
            num_threads=self.num_threads,
            check_finite=False,
        )
        return (ids[0], scores[0]) if scalar else (ids, scores)

    def recommend_text(
        self, query: str | list[str], k: int = 10, *, items: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Items for a user who describes what they want in words (no history needed).

        The query is encoded with ``encoder`` and matched to the items by cosine.

        Parameters
        ----------
        query : str or list of str
            One description (1-D results) or several (one row each).
        k : int, default 10
        items : 1-D array of int, optional
            Only recommend among these item ids.

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> enc = semrec.TextEncoder()
        >>> emb = enc.encode(["a space opera among the stars", "a cooking show", "a murder case"])
        >>> model = semrec.ContentRecommender(emb, encoder=enc, show_progress=False)
        >>> model = model.fit(sp.csr_array((1, 3), dtype=np.float32))
        >>> int(model.recommend_text("astronauts travel to a distant galaxy", k=1)[0][0])
        0
        """
        self._check_fitted()
        k = check.positive_int(k, "k")
        single = isinstance(query, str)
        texts = _texts(query, "query")
        queries = self._encode(texts, "query")
        ids, scores = topk(
            queries,
            self.item_embeddings_,
            k,
            metric="dot",
            candidates=None if items is None else check.item_ids(items, "items", self.n_items_),
            num_threads=self.num_threads,
            check_finite=False,
        )
        return (ids[0], scores[0]) if single else (ids, scores)

    def explain(self, user: int, item: int, k: int = 5) -> Any:
        """The items of ``user``'s history that contribute most to the score of ``item``.

        The score is exactly additive over the history: a history item ``i`` contributes
        ``w_i * decay_i * cos(e_i, e_item) / norm`` (summed over its events), where ``decay_i =
        0.5 ** ((t_ref - t_i) / half_life)`` and ``norm`` is the length of the user's decayed
        sum, so the contributions add up to ``score(user, item)`` up to float rounding
        (``attrs["rest"]`` is about 0). Dislikes contribute with the opposite sign. A user whose
        profile is zero gets contributions of 0.

        Parameters
        ----------
        user, item : int
        k : int, default 5
            Rows to return.

        Returns
        -------
        pandas.DataFrame
            Columns ``item``, ``contribution``, ``share`` (largest contribution first) and
            ``attrs`` ``user``, ``item``, ``score``, ``explained``, ``rest``; see
            :mod:`semrec.explain`.

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> emb = np.array([[1, 0], [0, 1], [0.6, 0.8]], dtype=np.float32)
        >>> r = sp.csr_array(np.array([[1, 1, 0]], dtype=np.float32))
        >>> model = semrec.ContentRecommender(emb, show_progress=False).fit(r)
        >>> table = model.explain(0, 2)
        >>> table["item"].tolist(), table["contribution"].round(3).tolist()
        ([1, 0], [0.566, 0.424])
        >>> round(table.attrs["score"], 3)
        0.99
        """
        self._check_fitted()
        u = scalar_id(user, "user", self.n_users_, "user")
        j = scalar_id(item, "item", self.n_items_, "item")
        total, ref, _, _ = self._stream._raw(u)
        ev_items, ev_weights, ev_times = self._log.of_user(u)
        hist, inverse = np.unique(ev_items, return_inverse=True)
        score = float(self.score(u, [j])[0])
        if score == 0.0 and not self.profiles(u).any():
            return explanation(hist, np.zeros(hist.size), k, user=u, item=j, score=score)
        norm = float(np.linalg.norm(total.astype(np.float64)))
        factors = ev_weights.astype(np.float64)
        if self.half_life is not None:
            factors *= np.exp2(-(ref - ev_times) / float(self.half_life))
        emb = self.item_embeddings_
        cosines = emb[ev_items].astype(np.float64) @ emb[j].astype(np.float64)
        contributions = np.bincount(inverse, weights=factors * cosines / norm, minlength=hist.size)
        return explanation(hist, contributions, k, user=u, item=j, score=score)

    # -- real time ---------------------------------------------------------------------------
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
            Negative for a dislike.
        t : float, optional
            When it happened; default "now", the latest time the model has seen.

        Returns
        -------
        ndarray of float32, shape (dim,)
            The user's new profile.

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> emb = np.eye(3, dtype=np.float32)
        >>> model = semrec.ContentRecommender(emb, show_progress=False)
        >>> model = model.fit(sp.csr_array(np.array([[1, 0, 0]], dtype=np.float32)))
        >>> model.update(1, 2).tolist()        # user 1 is new
        [0.0, 0.0, 1.0]
        """
        self._check_fitted()
        state = self._stream._state
        n = state.n_users
        u = _one_id(user, "user", n + 1)
        i = _one_id(item, "item", self._stream.n_items)
        w = _weight(weight)
        ts = state.latest if t is None else _time_value(t, "t")
        if u == n:
            state.grow(n + 1)
        if w != 0:  # a weight-0 event is seen (logged) but moves no profile
            state.add(self._stream.item_embeddings, u, i, w, ts)
        self._log.append(u, i, w, ts)
        return state.profiles(np.array([u], dtype=np.int64), 1)[0]

    def fold_in(
        self,
        history: sp.csr_array | sp.csr_matrix,
        *,
        timestamps: np.ndarray | None = None,
        users: np.ndarray | None = None,
    ) -> np.ndarray:
        """Profiles of users from their histories, optionally stored in the model.

        Parameters
        ----------
        history : scipy.sparse CSR, shape (n, n_items_)
            Each row is one user's full history (weights as in ``fit``).
        timestamps : 1-D array, optional
            Aligned with ``history.data``; default: every event happens "now".
        users : 1-D array of int, optional
            Store the histories under these ids: an existing id replaces that user's history,
            ids ``n_users_, n_users_ + 1, ...`` append new users. Without it the model is
            unchanged.

        Returns
        -------
        ndarray of float32, shape (n, dim)
            The normalised profiles.

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> emb = np.eye(3, dtype=np.float32)
        >>> model = semrec.ContentRecommender(emb, show_progress=False)
        >>> model = model.fit(sp.csr_array(np.array([[1, 0, 0]], dtype=np.float32)))
        >>> new = sp.csr_array(np.array([[0, 1, 1]], dtype=np.float32))
        >>> model.fold_in(new, users=[1]).astype(float).round(3).tolist()
        [[0.0, 0.707, 0.707]]
        """
        self._check_fitted()
        indptr, indices, weights = _events_csr(history, "history", self.n_items_)
        rows = indptr.size - 1
        times = _timestamps(timestamps, weights.size)
        times = np.full(weights.size, self._stream.latest) if times is None else times.astype(float)
        if users is None:
            return user_profiles(
                sp.csr_array((weights, indices, indptr), shape=(rows, self.n_items_)),
                self.item_embeddings_,
                timestamps=times,
                half_life=self.half_life,
                num_threads=self.num_threads,
            )
        ids = _target_users(users, rows, self._stream.n_users)
        existing = ids[ids < self._stream.n_users]
        if existing.size:
            self._stream.reset(existing)
            self._log.remove_users(existing)
            self._seen = None
        event_users = np.repeat(ids, np.diff(indptr))
        self._log.extend(event_users.astype(np.int32), indices, weights, times)  # all seen
        indptr, indices, weights, times = _drop_zeros(indptr, indices, weights, times)
        event_users = np.repeat(ids, np.diff(indptr))
        self._stream.update_many(event_users, indices, weights, times)
        if ids.size:
            self._stream._state.grow(int(ids.max()) + 1)
        return self._stream.profiles(ids)

    def add_items(self, embeddings_or_text: np.ndarray | str | list[str]) -> np.ndarray:
        """Append items to the catalogue; they are recommendable at once, with no interactions.

        Parameters
        ----------
        embeddings_or_text : ndarray of float32, shape (m, dim) or (dim,), or str / list of str
            Embeddings (normalised here), or item texts encoded with ``encoder``.

        Returns
        -------
        ndarray of int32
            The new item ids (``n_items_`` before the call, and on).

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> model = semrec.ContentRecommender(np.eye(2, dtype=np.float32), show_progress=False)
        >>> model = model.fit(sp.csr_array(np.array([[1, 0]], dtype=np.float32)))
        >>> model.add_items(np.array([[2, 0.1]], dtype=np.float32)).tolist()
        [2]
        >>> int(model.recommend(0, k=1)[0][0])
        2
        """
        self._check_fitted()
        if isinstance(embeddings_or_text, str) or (
            isinstance(embeddings_or_text, list | tuple)
            and embeddings_or_text
            and all(isinstance(t, str) for t in embeddings_or_text)
        ):
            vectors = self._encode(_texts(embeddings_or_text, "embeddings_or_text"), "items")
        else:
            vectors = _normalised(embeddings_or_text, "embeddings_or_text", allow_1d=True)
        if vectors.shape[1] != self._stream.dim:
            raise ValueError(
                f"embeddings_or_text must have dimension {self._stream.dim} like the catalogue, "
                f"got {vectors.shape[1]}"
            )
        return self._stream.add_items(vectors)

    # -- helpers -----------------------------------------------------------------------------
    def _encode(self, texts: list[str], what: str) -> np.ndarray:
        encoder = self.encoder
        if encoder is None:
            if getattr(self, "_default_encoder", None) is None:
                from semrec.text import TextEncoder

                self._default_encoder = TextEncoder(num_threads=self.num_threads)
            encoder = self._default_encoder
        vectors = np.ascontiguousarray(encoder.encode(texts), dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self._stream.dim:
            raise ValueError(
                f"the encoder gives {what} vectors of shape {vectors.shape[1:]}, but the items "
                f"have dimension {self._stream.dim}; use the encoder that embedded the items"
            )
        return _normalised(vectors, "encoded " + what)

    def _consolidate(self) -> None:
        """Bring the cached seen matrix up to date with the event log."""
        shape = (self._stream.n_users, self._stream.n_items)
        if self._seen is None:
            self._seen = self._log.matrix(slice(None), shape)
            self._seen_upto = len(self._log)
        elif self._seen_upto < len(self._log):
            tail = self._log.matrix(slice(self._seen_upto, None), shape)
            self._seen.resize(shape)
            self._seen = check.summed(self._seen, tail)  # a sum of 0 stays seen
            self._seen_upto = len(self._log)
        if self._seen.shape != shape:
            self._seen.resize(shape)

    def _exclusion(self, users: np.ndarray) -> sp.csr_array:
        """Seen items of each listed user, including events not yet consolidated."""
        if self._seen is None or len(self._log) - self._seen_upto > _TAIL_LIMIT:
            self._consolidate()
        shape = (self._stream.n_users, self._stream.n_items)
        if self._seen.shape != shape:
            self._seen.resize(shape)
        rows = _csr_rows(self._seen, users)
        if self._seen_upto == len(self._log):
            return rows
        tail_users, tail_items, tail_weights, _ = self._log.arrays(slice(self._seen_upto, None))
        uniq, inverse = np.unique(users, return_inverse=True)
        mine = np.isin(tail_users, uniq)
        local = np.searchsorted(uniq, tail_users[mine])
        tail = _events_matrix(local, tail_items[mine], tail_weights[mine], (uniq.size, shape[1]))
        return check.summed(rows, tail[inverse])

    # -- persistence -------------------------------------------------------------------------
    def _params(self) -> dict[str, Any]:
        params = super()._params()
        params["encoder"] = None  # a model object, not data: pass it again after load
        return params

    @classmethod
    def _from_params(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> Any:
        return cls(np.ascontiguousarray(arrays["item_embeddings"]), **params)

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        users, items, weights, times = self._log.arrays(slice(None))
        meta = {"n_users": self._stream.n_users, "latest": self._stream.latest}
        arrays = {
            "item_embeddings": self.item_embeddings_,
            "event_users": users,
            "event_items": items,
            "event_weights": weights,
            "event_times": times,
        }
        return meta, arrays

    def _restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        _half_life(self.half_life)
        emb = arrays["item_embeddings"]
        if emb.dtype != np.float32 or emb.ndim != 2:
            raise ValueError("item_embeddings must be a float32 matrix")
        n_users = int(meta["n_users"])
        users = np.asarray(arrays["event_users"], dtype=np.int32)
        items = np.asarray(arrays["event_items"], dtype=np.int32)
        weights = np.asarray(arrays["event_weights"], dtype=np.float32)
        times = np.asarray(arrays["event_times"], dtype=np.float64)
        if not (users.shape == items.shape == weights.shape == times.shape) or users.ndim != 1:
            raise ValueError("the event arrays have different lengths")
        if users.size and (users.min() < 0 or users.max() >= n_users):
            raise IndexError("an event names a user outside the model")
        if items.size and (items.min() < 0 or items.max() >= emb.shape[0]):
            raise IndexError("an event names an item outside the catalogue")
        if not (np.isfinite(weights).all() and np.isfinite(times).all()):
            raise ValueError("the events hold NaN or infinite values")
        stream = StreamingProfiles(
            np.ascontiguousarray(emb), half_life=self.half_life, num_threads=self.num_threads
        )
        stream._state.grow(n_users)
        order = np.argsort(users, kind="stable")
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(users, minlength=n_users), out=indptr[1:])
        rows = _drop_zeros(indptr, items[order], weights[order], times[order])
        stream._add_rows(*rows, 0)
        self._stream = stream
        self._log = _EventLog.from_arrays(users, items, weights, times)
        self._seen = None
        self._seen_upto = 0
        self._consolidate()
        loaded = getattr(self, "_loaded_seen", None)
        if loaded is not None and loaded.shape != self._seen.shape:
            raise ValueError("the interactions do not match the event log")
        self._loaded_seen = None

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model to ``path``: catalogue embeddings and every event (users, items,
        weights, times) in a ``.npz`` archive with JSON metadata; no pickle.

        The encoder is not saved: pass ``encoder=`` again after :meth:`load` if it was not the
        default one (``model.encoder = my_encoder``).

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec, tempfile, os
        >>> model = semrec.ContentRecommender(np.eye(2, dtype=np.float32), show_progress=False)
        >>> model = model.fit(sp.csr_array(np.eye(2, dtype=np.float32)))
        >>> path = os.path.join(tempfile.mkdtemp(), "content.npz")
        >>> model.save(path); semrec.ContentRecommender.load(path).n_users_
        2
        """
        super().save(path)


class _EventLog:
    """Every event the model has seen, in order, in growable arrays (amortised O(1) append)."""

    def __init__(self, capacity: int = 1024) -> None:
        self._n = 0
        self._users = np.empty(capacity, dtype=np.int32)
        self._items = np.empty(capacity, dtype=np.int32)
        self._weights = np.empty(capacity, dtype=np.float32)
        self._times = np.empty(capacity, dtype=np.float64)

    @classmethod
    def from_arrays(
        cls, users: np.ndarray, items: np.ndarray, weights: np.ndarray, times: np.ndarray
    ) -> _EventLog:
        log = cls(max(1024, users.size))
        log.extend(users, items, weights, times)
        return log

    def __len__(self) -> int:
        return self._n

    def _reserve(self, n: int) -> None:
        if n <= self._users.size:
            return
        capacity = max(n, 2 * self._users.size)
        for name in ("_users", "_items", "_weights", "_times"):
            old = getattr(self, name)
            new = np.empty(capacity, dtype=old.dtype)
            new[: self._n] = old[: self._n]
            setattr(self, name, new)

    def append(self, user: int, item: int, weight: float, t: float) -> None:
        self._reserve(self._n + 1)
        n = self._n
        self._users[n], self._items[n], self._weights[n], self._times[n] = user, item, weight, t
        self._n = n + 1

    def extend(
        self, users: np.ndarray, items: np.ndarray, weights: np.ndarray, times: np.ndarray
    ) -> None:
        m = users.size
        self._reserve(self._n + m)
        end = self._n + m
        self._users[self._n : end] = users
        self._items[self._n : end] = items
        self._weights[self._n : end] = weights
        self._times[self._n : end] = times
        self._n = end

    def arrays(self, part: slice) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        n = self._n
        return (
            self._users[:n][part],
            self._items[:n][part],
            self._weights[:n][part],
            self._times[:n][part],
        )

    def of_user(self, user: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        users, items, weights, times = self.arrays(slice(None))
        mine = users == user
        return items[mine], weights[mine], times[mine]

    def remove_users(self, users: np.ndarray) -> None:
        keep = ~np.isin(self._users[: self._n], users)
        kept = [a[: self._n][keep] for a in (self._users, self._items, self._weights, self._times)]
        self._n = 0
        self.extend(*kept)

    def matrix(self, part: slice, shape: tuple[int, int]) -> sp.csr_array:
        """Summed weights of a slice of the log as a users x items CSR; every item with an
        event has an entry (a sum of 0 included: it is seen)."""
        users, items, weights, _ = self.arrays(part)
        return _events_matrix(users, items, weights, shape)


def _csr_rows(m: sp.csr_array, rows: np.ndarray) -> sp.csr_array:
    """``m[rows]`` in O(selected entries); scipy's fancy indexing copies the whole indptr."""
    starts = m.indptr[rows]
    counts = m.indptr[rows + 1] - starts
    indptr = np.zeros(rows.size + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    pos = np.arange(indptr[-1]) + np.repeat(starts - indptr[:-1], counts)
    return sp.csr_array((m.data[pos], m.indices[pos], indptr), shape=(rows.size, m.shape[1]))


def _events_matrix(
    users: np.ndarray, items: np.ndarray, weights: np.ndarray, shape: tuple[int, int]
) -> sp.csr_array:
    """Events as a canonical users x items CSR: weights of repeated pairs summed, an entry for
    every pair with an event (sums of 0 kept)."""
    order = np.argsort(users, kind="stable")
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(users, minlength=shape[0]), out=indptr[1:])
    raw = sp.csr_array((weights[order], items[order], indptr), shape=shape)
    return check.canonical_csr(raw, "events", allow_empty=True)


def _normalised(x: Any, name: str, *, allow_1d: bool = False) -> np.ndarray:
    """A float32 C-contiguous copy of ``x`` with unit rows (zero rows stay zero)."""
    arr, _ = check.as_float32_matrix(x, name, allow_1d=allow_1d)
    if arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one column, got shape {arr.shape}")
    norms = np.linalg.norm(arr, axis=1, keepdims=True)
    return np.ascontiguousarray(np.divide(arr, norms, out=np.zeros_like(arr), where=norms > 0))


def _drop_zeros(
    indptr: np.ndarray, indices: np.ndarray, weights: np.ndarray, times: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Remove zero-weight entries (they carry no information), keeping times aligned."""
    keep = weights != 0
    if keep.all():
        return indptr, indices, weights, times
    rows = np.repeat(np.arange(indptr.size - 1), np.diff(indptr))[keep]
    new_indptr = np.zeros_like(indptr)
    np.cumsum(np.bincount(rows, minlength=indptr.size - 1), out=new_indptr[1:])
    return new_indptr, indices[keep], weights[keep], times[keep]


def _one_id(value: Any, name: str, n: int) -> int:
    """One id in [0, n) as a Python int (the scalar form of check.index_array)."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int id, got {type(value).__name__}")
    if not 0 <= value < n:
        raise IndexError(f"{name} {value} is outside [0, {n})")
    return int(value)


def _texts(value: Any, name: str) -> list[str]:
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list | tuple) or not all(isinstance(t, str) for t in texts):
        raise TypeError(f"{name} must be a string or a list of strings, got {type(value).__name__}")
    if not texts:
        raise ValueError(f"{name} is empty; pass at least one string")
    return list(texts)


def _target_users(users: Any, rows: int, n_users: int) -> np.ndarray:
    """Validate fold_in's ``users``: existing ids or the next new ids, one per history row."""
    ids = np.asarray(users)
    if ids.ndim != 1 or ids.size != rows:
        raise ValueError(
            f"users must be a 1-D array with one id per history row ({rows}), got shape {ids.shape}"
        )
    if ids.size and not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"users must hold integer user ids, got dtype {ids.dtype}")
    ids = ids.astype(np.int64)
    new = ids[ids >= n_users]
    if (
        (ids < 0).any()
        or np.unique(ids).size != ids.size
        or not np.array_equal(np.sort(new), np.arange(n_users, n_users + new.size))
    ):
        raise IndexError(
            f"users must be distinct existing ids in [0, {n_users}) or the next new ids "
            f"{n_users}, {n_users + 1}, ...; got {ids.tolist()}"
        )
    return ids
