"""How a dot-product model searches its items: the vectors checked and packed once.

A model's ``recommend`` goes through :class:`ItemSearch`: it holds an :class:`ItemIndex` of the
item vectors the model's ``_vectors`` hook hands over (validated once, packed for the kernel,
holding a reference to the float32 rows rather than a copy; float16 panels on request) and,
when the model was asked to, an approximate :class:`semrec.HNSWIndex` or
:class:`semrec.PQIndex` over the same index. The index is rebuilt only when the item vectors
change: the hook hands over another array, or the model says so (``Recommender._items_changed``,
for vectors changed in place or rows appended, which are then added incrementally; the report
names the array, so a later array, a refit's, is rebuilt whole).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from semrec import _approximate as approx
from semrec import _validation as check
from semrec.similarity import STORAGES, ItemIndex

logger = logging.getLogger("semrec")

KINDS = ("exact", "hnsw", "pq")
# The settings each approximate kind accepts (defaults: semrec.HNSWIndex, semrec.PQIndex).
PARAMS = {"exact": (), "hnsw": ("m", "ef_construction", "ef_search"), "pq": ("m", "rerank")}
# What an approximate index saves with a model (load does not rebuild it): its settings (as its
# settings() gives them, tuned ones included), use_index's own parameters (under USE_INDEX: what
# a rebuild after a refit takes) and one byte array, (array name, the index's method that makes
# it).
USE_INDEX = "use_index"
SAVED_SETTINGS = {"hnsw": PARAMS["hnsw"], "pq": (*PARAMS["pq"], "random_state")}
BLOBS = {"hnsw": ("graph", "graph_bytes"), "pq": ("codes", "code_bytes")}
# Exact answers either way (see ItemIndex). float32 for models whose item vectors may have very
# unequal norms (ALS factors: the error bounds grow with the largest norm and would send many
# candidates, or the query, back to float32); ContentRecommender's unit rows take int8 (its
# _ITEM_STORAGE): a 20k x 384 click took 0.73 ms against 1.70 ms with float32 panels and NumPy's
# 1.87 ms (realtime.py, methods in random order; float16 panels: 1.07-1.37 ms before).
DEFAULT_STORAGE = "float32"


class ItemSearch:
    """The search side of one model: its item vectors as an index, kept in step with them.

    Examples
    --------
    >>> import numpy as np
    >>> from semrec._search import ItemSearch
    >>> items = np.eye(3, dtype=np.float32)
    >>> search = ItemSearch()
    >>> index = search.index_for(items, None)
    >>> index is search.index_for(items, None), len(index)
    (True, 3)
    """

    def __init__(self, default_storage: str = DEFAULT_STORAGE) -> None:
        self.kind = "exact"
        self.default_storage = default_storage  # the model's (ContentRecommender: int8)
        self.storage = default_storage
        self.params: dict[str, int] = {}
        self._source: np.ndarray | None = None  # the array the index was built from
        self._exact: ItemIndex | None = None
        self._approx: Any = None  # semrec.HNSWIndex or PQIndex over self._exact
        self._changed_from: int | None = None  # rows changed since (None: nothing)
        self._reported: np.ndarray | None = None  # the item array the model reported it for
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_lock"]  # the indexes pickle themselves (see ItemIndex, HNSWIndex)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state.setdefault("default_storage", DEFAULT_STORAGE)  # pickled before it existed
        state.setdefault("_reported", None)
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def use(
        self, kind: str, storage: str | None, params: dict[str, Any],
        build: Callable[[], Any] | None = None,
    ) -> None:  # fmt: skip
        """Search exactly, or through an approximate index built on the next search (checked
        as far as they can be without the items: an unfitted model refuses what its index would
        refuse); ``storage=None`` is the model's default. ``build`` builds it now: if that
        fails, the settings before stay (a refused index does not break the model)."""
        kind = check.choice(kind, "kind", KINDS)
        storage = self.default_storage if storage is None else storage
        storage = check.choice(storage, "storage", STORAGES)
        params = checked_params(kind, params)
        before = (self.kind, self.storage, self.params, self._exact, self._approx)
        with self._lock:
            if storage != self.storage:
                self._exact = None  # re-packed at the next search
            self.kind, self.storage, self.params = kind, storage, params
            self._approx = None
        if build is not None:
            try:
                build()
            except BaseException:
                with self._lock:
                    self.kind, self.storage, self.params, self._exact, self._approx = before
                raise

    def changed(self, first: int, items: np.ndarray | None = None) -> None:
        """Item rows ``first`` onwards changed (``first`` = the old row count: rows appended
        to make ``items``, the array only they are added to; any other is indexed whole)."""
        with self._lock:
            if self._changed_from is None or first < self._changed_from:
                self._changed_from = first
            self._reported = items

    def index_for(self, items: np.ndarray, threads: int | None) -> Any:
        """The index to search ``items`` (the model's current item vectors) with."""
        with self._lock:
            exact = self._exact
            if exact is None or items.shape[1] != exact.dim or not self._current(items):
                self._exact, self._approx = (
                    ItemIndex(
                        items, metric="dot", storage=self.storage, num_threads=threads, copy=False
                    ),
                    None,
                )
            elif items.shape[0] > len(exact):  # rows appended: index only those
                grow = self._approx if self._approx is not None else exact
                grow.add(items[len(exact) :], num_threads=threads)
            self._source, self._changed_from, self._reported = items, None, None
            if self.kind != "exact" and self._approx is None:
                logger.info("building a %s index over %d items", self.kind, items.shape[0])
                self._approx = approximate_index(self.kind)(
                    self._exact, num_threads=threads, **self.params
                )
            return self._exact if self.kind == "exact" else self._approx

    def _current(self, items: np.ndarray) -> bool:
        """Whether the index holds ``items``' first rows as they are (new rows may follow)."""
        assert self._exact is not None
        n = len(self._exact)
        if self._changed_from is not None:  # the model said which rows of which array changed
            return self._changed_from >= n and items.shape[0] >= n and items is self._reported
        return items is self._source and items.shape[0] == n

    # -- saved with the model: the graph (the vectors are the model's own) ------------------
    def is_default(self) -> bool:
        """Exact search in the default storage: nothing to save with the model."""
        return self.kind == "exact" and self.storage == self.default_storage

    def save_into(self, meta: dict[str, Any], arrays: dict[str, Any], key: str, index: Any) -> None:
        """Describe ``index`` (this search's) under ``key`` in a model file's meta and arrays."""
        meta[key] = {"kind": self.kind, "storage": self.storage}
        if self.kind in BLOBS:
            name, make = BLOBS[self.kind]
            # The live index's settings (tuned, say) and use_index's, which a refit takes.
            meta[key].update(index.settings(), **{USE_INDEX: dict(self.params)})
            arrays[f"{key}/{name}"] = getattr(index, make)()

    def load(self, saved: Any, key: str, items: np.ndarray, threads: int | None) -> None:
        """Search ``items`` as saved under ``key`` (checked: a FormatError). A file without
        use_index's own parameters (written before they were saved) takes the index's."""
        meta = saved.value(key, dict)
        kind = meta.get("kind")
        names = SAVED_SETTINGS.get(kind, ())
        fields = {"kind", "storage", *names}
        if (
            kind not in KINDS
            or set(meta) - {USE_INDEX} != fields
            or (USE_INDEX in meta and kind not in BLOBS)
            or meta["storage"] not in STORAGES
        ):
            raise saved.error(key, f"is not an item index description: {meta!r}")
        storage, params, graph = meta["storage"], {}, None
        blob = saved.array(f"{key}/{BLOBS[kind][0]}", np.uint8, (None,)) if kind in BLOBS else None
        try:
            exact = ItemIndex(items, metric="dot", storage=storage, num_threads=threads, copy=False)
            if blob is not None:
                live = checked_params(kind, {name: meta[name] for name in PARAMS[kind]})
                extra = {name: meta[name] for name in names if name not in live}
                graph = approximate_index(kind).from_bytes(exact, blob, **live, **extra)
                chosen = meta.get(USE_INDEX, live)
                if not isinstance(chosen, dict):
                    raise TypeError(f"{USE_INDEX} must be a dict, got {type(chosen).__name__}")
                params = checked_params(kind, chosen)
        except (TypeError, ValueError) as exc:
            raise saved.error(key, f"does not fit the model ({exc})") from None
        with self._lock:
            self.kind, self.storage, self.params = kind, storage, params
            self._source, self._changed_from, self._reported = items, None, None
            self._exact, self._approx = exact, graph

    @property
    def approximate(self) -> Any:
        """The approximate index (HNSWIndex, PQIndex) when one is built, else None."""
        return self._approx


def checked_params(kind: str, params: dict[str, Any]) -> dict[str, int]:
    """``use_index(kind, **params)``'s parameters checked by name (a TypeError for one ``kind``
    does not take) and value (:func:`semrec._approximate.setting`)."""
    allowed = PARAMS[kind]
    for name in params:
        if name not in allowed:
            raise TypeError(
                f"use_index({kind!r}) takes no parameter {name!r}; it takes "
                f"{', '.join(('storage', *allowed))}"
            )
    return {name: approx.setting(kind, name, value) for name, value in params.items()}


def approximate_index(kind: str) -> Any:
    """The class of an approximate ``kind`` (imported on demand: faiss is an optional extra)."""
    if kind == "hnsw":
        from semrec.ann import HNSWIndex

        return HNSWIndex
    from semrec.ann_pq import PQIndex

    return PQIndex
