"""Content-based recommendation from item embeddings and decayed user-interest profiles.

Each user is the direction of the weighted, time-decayed sum of the (L2-normalised) embeddings
of the items in their history (:mod:`semrec.interest`); an item's score is the cosine between
that profile and the item. Everything is real time: an event changes the user's next
recommendations at once (O(dim)), new users are folded in from a few interactions or a text
query, and new items are recommendable from their embedding or text alone.
"""

from __future__ import annotations

import logging
import time
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from semrec import _hyperparameters as hyperparameters
from semrec import _validation as check
from semrec._base import Recommender
from semrec._encoding import EncodesText, holds_text, texts
from semrec._events import (
    EventLog,
    TailIndex,
    add_events,
    csr_rows,
    emptied,
    events_matrix,
    logged_update,
    merged_tail,
)
from semrec._model_lock import cache_lock, fills_cache, fits_model, model_lock, reads_model
from semrec._persist import Saved, constructor_count, constructor_rows
from semrec._seen import scipy_view
from semrec.datasets import Dataset, ItemEmbeddings
from semrec.datasets._embeddings import check_alignment
from semrec.explain import explanation
from semrec.interest import StreamingProfiles, half_life_value, user_profiles
from semrec.similarity import topk

logger = logging.getLogger("semrec")

# Events kept outside the cached "seen" matrix before it is rebuilt.
_TAIL_LIMIT = 65_536


class ContentRecommender(EncodesText, Recommender):
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
        older than another counts half as much. ``None``: no decay. An event without a time
        is dated "now", the latest time seen: before any, a time is required (ValueError).
    encoder : semrec.TextEncoder, optional
        Encodes the text given to :meth:`recommend_text` and ``add_items``; by default a
        :class:`semrec.TextEncoder` with its bundled model, created on first use. It must
        produce vectors of the items' dimension. Not saved by ``save``: pass it again after
        ``load`` (``model.encoder = enc``) if it was not the default one; until then the loaded
        model refuses to encode text (with the default, its vectors would silently differ).
    num_threads : int, optional
        ``None`` uses :func:`semrec.get_num_threads`, ``0`` all cores.
    show_progress : bool, optional
        Show a tqdm bar during ``fit`` (``None``: only when stderr is a terminal).

    Attributes
    ----------
    item_embeddings_ : ndarray of float32, shape (``n_items_``, dim)
        The normalised catalogue, including items added by :meth:`add_items`. Read-only (the
        search index would miss an edit in place); ``.copy()`` to edit.
    interactions_ : scipy.sparse.csr_array
        Summed weights of every event so far (users x items), an entry per item with an event
        (sums of 0 included): what ``exclude_seen`` excludes. Read-only; ``.copy()`` to edit.
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
    _FITTED_BY: ClassVar[str] = "_stream"

    # Unit rows: int8 panels re-scored exactly stream a quarter of the bytes per click (_search.py).
    _ITEM_STORAGE = "int8"

    def __init__(
        self,
        item_embeddings: np.ndarray,
        *,
        half_life: float | None = None,
        encoder: Any = None,
        num_threads: int | None = None,
        show_progress: bool | None = None,
    ) -> None:
        self.item_embeddings = item_embeddings
        self._set_params(locals())

    def __repr__(self) -> str:
        shape = getattr(emb := self.item_embeddings, "shape", None)  # else e.g. a list of rows
        what = f"array {shape}" if shape is not None else type(emb).__name__
        params = ", ".join(f"{p}={getattr(self, p)!r}" for p in self._PARAMS)
        return f"ContentRecommender(item_embeddings=<{what}>, {params})"

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
        check.dataset(dataset)
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
    def _shape(self) -> tuple[int, int]:
        return self._stream.n_users, self._stream.n_items

    @property
    def item_embeddings_(self) -> np.ndarray:
        """The normalised catalogue, including items added by ``add_items``: a read-only view
        (an edit in place would miss the search index ``recommend`` uses)."""
        self._check_fitted()
        return self._stream.item_embeddings

    @property
    def interactions_(self) -> sp.csr_array:
        self._check_fitted()
        with model_lock(self).reading(), cache_lock(self):
            self._consolidate()
            return scipy_view(self._seen)

    # -- training ----------------------------------------------------------------------------
    @fits_model
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
            One time per stored entry (in ``interactions.data`` order); required with ``half_life``.

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
        hyperparameters.encoder(self.encoder)
        if isinstance(interactions, Dataset):
            check_alignment(self.item_embeddings, interactions)
            if timestamps is None:
                timestamps = interactions.timestamps
            interactions = interactions.interactions
        start = time.perf_counter()
        emb = _normalised(self.item_embeddings, "item_embeddings")
        stream = self._new_stream(emb, self.half_life)
        indptr, indices, weights = check.events(interactions, "interactions", stream.n_items)
        times = check.timestamps(timestamps, weights.size)
        if self.half_life is not None and times is None:
            raise ValueError(
                "half_life needs timestamps: pass fit(interactions, timestamps=...) with one "
                "time per stored interaction, or a Dataset that has them"
            )
        times = np.zeros(weights.size) if times is None else times.astype(np.float64)
        n_users = interactions.shape[0]
        users = np.repeat(np.arange(n_users, dtype=np.int32), np.diff(indptr))
        log = EventLog.from_arrays(users, indices, weights, times)  # every event is seen
        # Refused (a ValueError naming interactions) if a profile sum overflows float32:
        show = hyperparameters.progress(self.show_progress)
        add_events(stream, (indptr, indices, weights, times), n_users, "interactions", show=show)
        self._stream, self._log, self._seen = stream, log, None  # the model changes only now
        seconds = time.perf_counter() - start
        logger.debug(
            "ContentRecommender.fit: %d users, %d events in %.3fs", n_users, weights.size, seconds
        )
        return self

    def _new_stream(self, emb: np.ndarray, half_life: Any) -> StreamingProfiles:
        # Every call on it is made under the model's lock: the stream needs no lock of its own.
        return StreamingProfiles(
            emb, half_life=half_life, num_threads=self.num_threads, thread_safe=False
        )

    # -- queries -----------------------------------------------------------------------------
    @reads_model
    def profiles(self, users: int | np.ndarray) -> np.ndarray:
        """The users' normalised interest profiles, shape (n, dim) (1-D for a scalar user).

        Parameters
        ----------
        users : int or 1-D array of int

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> model = semrec.ContentRecommender(np.eye(2, dtype=np.float32), show_progress=False)
        >>> model.fit(sp.csr_array(np.array([[1.0, 1.0]], dtype=np.float32))).profiles(0)
        array([0.70710677, 0.70710677], dtype=float32)
        """
        u, scalar = self._user_ids(users)
        out = self._stream.profiles(u)
        return out[0] if scalar else out

    def _vectors(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._stream.profiles(users), self.item_embeddings_

    def _item_space(self) -> tuple[np.ndarray, str]:
        return self.item_embeddings_, "dot"  # unit vectors: the dot is the cosine

    @reads_model
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
        described = texts(query, "query")
        blank = next((j for j, t in enumerate(described) if not t.strip()), None)
        if blank is not None:  # its vector would rank the items by nothing the user said
            raise ValueError(f"query[{blank}] is blank; describe what the user wants in words")
        queries = self._encode(described, "query")
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

    def _explain(self, u: int, j: int, k: int) -> Any:
        """How the score splits into terms (see :meth:`explain`).

        The score is exactly additive over the history: a history item ``i`` contributes
        ``w_i * decay_i * cos(e_i, e_item) / norm`` (summed over its events), where ``decay_i =
        0.5 ** ((t_ref - t_i) / half_life)`` and ``norm`` is the length of the user's decayed
        sum, so the contributions add up to ``score(user, item)`` up to float rounding
        (``attrs["rest"]`` is about 0). Dislikes contribute with the opposite sign. A user whose
        profile is zero gets contributions of 0.

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
        total, ref = self._stream.decayed_sum(u)
        ev_items, ev_weights, ev_times = self._log.of_user(u)
        hist, inverse = np.unique(ev_items, return_inverse=True)
        score = float(self.score(u, [j])[0])
        if score == 0.0 and not self.profiles(u).any():
            return explanation(hist, np.zeros(hist.size), k, user=u, item=j, score=score)
        norm = float(np.linalg.norm(total.astype(np.float64)))
        factors = ev_weights.astype(np.float64)
        if (fitted := self._stream.half_life) is not None:  # a new half_life waits for a fit
            factors *= np.exp2(-(ref - ev_times) / float(fitted))
        emb = self.item_embeddings_
        cosines = emb[ev_items].astype(np.float64) @ emb[j].astype(np.float64)
        contributions = np.bincount(inverse, weights=factors * cosines / norm, minlength=hist.size)
        return explanation(hist, contributions, k, user=u, item=j, score=score)

    # -- real time: profiles are the users' vectors ------------------------------------------
    def _update(self, user: int, item: int, weight: float, t: float | None) -> np.ndarray:
        stream = self._stream
        ts = stream.now("t") if t is None else t  # refused with a half_life before any time
        logged_update(stream, self._log, user, item, weight, ts)  # both or neither, Ctrl-C too
        if self._seen is not None:  # else the next read consolidates the whole log
            self._tail.logged(user, item, self._log)
        return stream.profile(user)

    def _fold_in(
        self, history: Any, users: np.ndarray | None, times: np.ndarray | None
    ) -> np.ndarray:
        indptr, indices, weights = check.events(history, "history", self.n_items_)
        rows = indptr.size - 1
        if times is None:  # "now": with a half_life, refused before any event had a time
            times = np.full(weights.size, self._stream.now("timestamps") if weights.size else 0.0)
        times = times.astype(float)
        if users is None:
            return user_profiles(
                sp.csr_array((weights, indices, indptr), shape=(rows, self.n_items_)),
                self.item_embeddings_,
                timestamps=times,
                half_life=self._stream.half_life,
                num_threads=self.num_threads,
                name="history",
            )
        existing = users[users < self._stream.n_users]
        # One all-or-nothing step: the existing users forget their histories and take the new
        # events, or nothing changes (a ValueError naming history if a sum overflows float32).
        event_users = np.repeat(users, np.diff(indptr))
        events = (event_users, indices, weights, times)
        self._stream.update_many(*events, reset=existing, name="history")
        if users.size:
            self._stream.grow(int(users.max()) + 1)  # users whose history is empty
        if existing.size:
            gone = self._log.remove_users(existing)
            if self._seen is not None:  # their rows emptied; their new events join the tail
                self._tail.dropped(gone, existing)
                self._seen = emptied(self._seen, existing)
        self._log.extend(event_users.astype(np.int32), indices, weights, times)  # all seen
        return self._stream.profiles(users)

    def _add_items(self, items: Any) -> np.ndarray:
        if holds_text(items):
            vectors = self._encode(texts(items, "items"), "items")
        else:
            vectors = _normalised(items, "items", allow_1d=True)
        if vectors.shape[1] != self._stream.dim:
            raise ValueError(
                f"items must have dimension {self._stream.dim} like the catalogue, "
                f"got {vectors.shape[1]}"
            )
        ids = self._stream.add_items(vectors)
        first = int(ids[0]) if ids.size else self._stream.n_items
        self._items_changed(first, self.item_embeddings_)  # rows appended: only those indexed
        return ids

    # -- helpers -----------------------------------------------------------------------------
    def _encode(self, texts: list[str], what: str) -> np.ndarray:
        # The encoder may have been set after fit (model.encoder = enc).
        hyperparameters.encoder(self.encoder)
        # One row per text, the items' width, finite: checked before anything changes.
        vectors = check.encoded(self._text_encoder(), texts, self._stream.dim)
        return _normalised(vectors, "encoded " + what)

    @fills_cache
    def _seen_matrix(self) -> sp.csr_array:
        """The cached seen matrix at the current item count (users past its rows have no entries
        yet), consolidated once its tail of events grows past _TAIL_LIMIT (read from the log
        meanwhile)."""
        if self._seen is None or len(self._log) - self._tail.start > _TAIL_LIMIT:
            self._consolidate()
        if (seen := self._seen).shape[1] != (n_items := self._stream.n_items):  # items added
            shape = (seen.shape[0], n_items)  # O(1): the arrays are shared
            self._seen = check.csr_from_arrays(shape, seen.indptr, seen.indices, seen.data)
        return self._seen

    @fills_cache
    def _consolidate(self) -> None:
        """Bring the cached seen matrix up to date with the event log."""
        if self._seen is None:
            self._seen = self._log.matrix(slice(None), self._shape())
        else:  # a sum of 0 stays seen; rows without later events are copied, not re-sorted
            self._seen = merged_tail(self._seen, self._log, self._tail.start, self._shape())
        self._tail = TailIndex(len(self._log))  # every event is in the matrix now

    @fills_cache
    def _seen_rows(self, users: np.ndarray) -> sp.csr_array:
        """Seen items of each listed user, including events not yet consolidated."""
        seen = self._seen_matrix()
        if users.size == 1:  # a click: no matrix algebra, only this user's events
            items = self._seen_items(int(users[0]))
            indptr = np.array([0, items.size], dtype=np.int64)
            ones = np.ones(items.size, dtype=np.float32)
            return check.csr_from_arrays((1, self._stream.n_items), indptr, items, ones)
        rows = csr_rows(seen, users)
        if self._tail.start == len(self._log):
            return rows
        tail_users, tail_items, tail_weights, _ = self._log.arrays(slice(self._tail.start, None))
        uniq, inverse = np.unique(users, return_inverse=True)
        mine = np.isin(tail_users, uniq)
        local = np.searchsorted(uniq, tail_users[mine])
        tail = events_matrix(
            local, tail_items[mine], tail_weights[mine], (uniq.size, seen.shape[1])
        )
        return check.summed(rows, tail[inverse])

    @fills_cache
    def _seen_items(self, user: int) -> np.ndarray:
        """One user's seen items, sorted int32: the consolidated row and later events."""
        seen = self._seen_matrix()
        n = seen.shape[0]  # a user past its rows (new since) has no consolidated events
        items = seen.indices[seen.indptr[min(user, n)] : seen.indptr[min(user + 1, n)]]
        items = np.asarray(items, dtype=np.int32)
        later = self._tail.items_of(user, self._log)
        if later:  # sorted; duplicates are fine for an exclusion
            items = np.sort(np.concatenate((items, later), dtype=np.int32))
        return items

    # -- persistence: the catalogue and every event ----------------------------------------------
    @classmethod
    def _from_params(cls, params: dict[str, Any], saved: Saved) -> Any:
        return cls(constructor_rows(saved), **params)

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        fitted = self._stream.half_life  # load replays the events with the saved half_life
        try:
            same = half_life_value(self.half_life) == half_life_value(fitted)
        except (TypeError, ValueError):
            same = False
        if not same:
            raise ValueError(
                f"not saved: half_life is {self.half_life!r}, but the model was fitted with "
                f"{fitted!r}; set it back (model.half_life = {fitted!r}) or refit"
            )
        users, items, weights, times = self._log.arrays(slice(None))
        arrays = {
            "item_embeddings": self.item_embeddings_,
            "constructor_items": constructor_count(self.item_embeddings),
            "event_users": users,
            "event_items": items,
            "event_weights": weights,
            "event_times": times,
        }
        clock = {"latest": self._stream.latest, "timed": self._stream.timed}  # not in the events
        return {"n_users": self._stream.n_users, "encoder": self._encoder_record(), **clock}, arrays

    def _restore(self, saved: Saved) -> None:
        self._remember_encoder(saved.meta)
        half_life_value(self.half_life)
        hyperparameters.encoder(self.encoder)
        hyperparameters.progress(self.show_progress)
        emb = np.ascontiguousarray(saved.array("item_embeddings", np.float32, (None, None)))
        if emb.shape[1] == 0:  # (the whole catalogue: added items too)
            raise saved.error("item_embeddings", "has no columns")
        # Each user gets a profile (float32 per dimension and its state) and offsets.
        n_users = saved.count("n_users", entry_bytes=4 * emb.shape[1] + 32)
        users = saved.array("event_users", np.int32, (None,), minimum=0, below=n_users)
        n = users.size
        items = saved.array("event_items", np.int32, (n,), minimum=0, below=emb.shape[0])
        weights = saved.array("event_weights", np.float32, (n,))
        times = saved.array("event_times", np.float64, (n,))
        clock = None  # files of earlier versions: the clock that their events replay to
        if "latest" in saved.meta:
            clock = float(saved.value("latest", (int, float))), saved.value("timed", bool)
        try:
            self._replay(emb, n_users, (users, items, weights, times), self.half_life, clock)
        except ValueError as refused:  # e.g. weights whose sum passes float32 (older files)
            raise saved.error("events", f"cannot be replayed: {refused}") from None
        if clock is not None and clock != (self._stream.latest, self._stream.timed):
            raise saved.error("latest", f"and timed {clock} contradict the times of the events")

    def _replay(
        self,
        emb: np.ndarray,
        n_users: int,
        events: tuple[np.ndarray, ...],
        half_life: Any,
        clock: tuple[float, bool] | None = None,
    ) -> None:
        """Profiles rebuilt from the catalogue and every event (load, unpickling); ``clock``:
        the (latest, timed) of the model, whose latest events a fold-in may have dropped."""
        users, items, weights, times = events
        stream = self._new_stream(emb, half_life)
        order = np.argsort(users, kind="stable")
        indptr = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(users, minlength=n_users), out=indptr[1:])
        rows = (indptr, items[order], weights[order], times[order])
        add_events(stream, rows, n_users, "event_weights", show=False)
        if clock is not None and clock[1]:
            stream.advance_clock(clock[0])
        self._stream, self._log = stream, EventLog.from_arrays(users, items, weights, times, order)
        self._seen = None

    # -- pickling (Dask workers): the saved form's content, profiles rebuilt by replaying --------
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_default_encoder", None)  # created again on first use
        if "_stream" in state:  # fitted: the catalogue and the events stand for the profiles
            state["_replay_from"] = (
                self._stream.item_embeddings,
                self._stream.n_users,
                self._log.arrays(slice(None)),
                self._stream.half_life,  # a copy decays as this model does, whatever half_life
                (self._stream.latest, self._stream.timed),  # and dates untimed events alike
            )
            for name in ("_stream", "_log", "_seen", "_tail"):
                state.pop(name, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        replay = state.pop("_replay_from", None)
        self.__dict__.update(state)
        if replay is not None:
            self._replay(*replay)


def _normalised(x: Any, name: str, *, allow_1d: bool = False) -> np.ndarray:
    """A float32 C-contiguous copy of ``x`` with unit rows (zero rows stay zero)."""
    arr, _ = check.as_float32_matrix(x, name, allow_1d=allow_1d)
    if arr.shape[1] == 0:
        raise ValueError(f"{name} must have at least one column, got shape {arr.shape}")
    with np.errstate(over="ignore", under="ignore"):
        norms = np.linalg.norm(arr, axis=1, keepdims=True)
    out = np.ascontiguousarray(np.divide(arr, norms, out=np.zeros_like(arr), where=norms > 0))
    # Float32 squares overflow past 1.8e19 (the row came out zero), underflow below 1e-19:
    odd = ~((norms[:, 0] > 1e-18) & (norms[:, 0] < 1e18))  # those rows again in float64
    wide = arr[odd].astype(np.float64)
    out[odd] = wide / np.maximum(np.linalg.norm(wide, axis=1, keepdims=True), 1e-300)
    return out
