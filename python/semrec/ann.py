"""Approximate top-k for catalogues of millions of items: a faiss HNSW graph proposes, semrec
re-scores exactly (optional extra ``semrec[ann]``, which installs ``faiss-cpu``).

Why faiss: it is maintained by a large team with frequent releases and wheels for every
platform semrec builds on, its HNSW index adds items incrementally, serialises to bytes (saved
inside semrec's own ``.npz`` format, behind a checksum) and filters ids *during* the graph
search (``IDSelector``), which is how excluded and non-candidate items are honoured without
searching blindly deeper. hnswlib would do the graph too, but its filters are Python callbacks
per visited node and its releases have slowed.

Recall is a property of the data and of ``ef_search``: ``benchmarks/realtime.py`` measures it
against the exact search (recall@10 and latency at 1M x 384: benchmarks/README.md). The returned
scores are always exact (semrec's fixed-order kernel over the returned ids), so an item found
by both paths has bitwise the same score, and ties still go to the lower id.

faiss ships its own OpenMP runtime; batched searches use ``num_threads`` of it, single queries
run on the calling thread.

faiss cannot search a graph while items are inserted into it: searches share a readers-writer
lock (they run side by side), and an insertion waits for the searches under way, then holds new
ones back until it is done. So ``add`` is safe mid-search, as for :class:`semrec.ItemIndex`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import scipy.sparse as sp

from semrec import _approximate as approx
from semrec import _validation as check
from semrec._model_lock import ModelLock
from semrec._threads import resolve_num_threads
from semrec.similarity import ItemIndex

_FORMAT = "semrec.HNSWIndex"
_VERSION = 1


class HNSWIndex(approx.Measurable):
    """Approximate nearest-neighbour search over item vectors, with exact scores.

    A faiss HNSW graph (inner product; cosine on normalised copies) proposes each query's
    candidates (the ``ef_search`` best it kept, at least ``2 * k``); they are re-scored exactly
    by semrec's kernel through the wrapped :class:`ItemIndex`, which keeps the best ``k``, the
    lower id first among ties. :func:`semrec.topk` accepts this index in place of the item matrix,
    with the same ``exclude`` and ``candidates`` semantics: excluded and non-candidate items are
    filtered inside the graph search, and a small candidate list is searched exactly, as is a
    query the filtered graph search left with fewer than ``k`` items while more are eligible.

    Parameters
    ----------
    items : ItemIndex or ndarray of float32, shape (n_items, dim)
        The exact index to wrap (its metric is used), or vectors to build one from.
    metric : {"cosine", "dot"}, optional
        Only when ``items`` is an array (default ``"cosine"``).
    m : int, default 32
        Graph degree (faiss ``M``): more is slower to build, larger, and more accurate.
    ef_construction : int, default 100
        Candidate list while building.
    ef_search : int, default 128
        Candidate list while searching: the recall/speed knob, may be changed at any time. A
        top-k query keeps at least ``2 * k`` candidates, plus one per item it excludes (see
        :meth:`search_depth`). On 100k MiniLM-shaped vectors recall@10 was 0.88 at 64, 0.94 at
        128, 0.97 at 256; on 1M of them (default m and ef_construction) only 0.55 at 128 and
        0.83 at 1024 (``benchmarks/realtime.py --only ann`` prints the curve). :meth:`tune`
        picks it for a target recall on given queries; :meth:`recall` measures it.
    num_threads : int, optional
        Threads for building and for batches of queries.

    Attributes
    ----------
    items : ItemIndex
        The exact index (vectors, metric).

    Examples
    --------
    >>> import numpy as np, semrec
    >>> vectors = np.random.default_rng(0).standard_normal((1000, 16)).astype(np.float32)
    >>> ann = semrec.HNSWIndex(vectors)
    >>> ids, scores = semrec.topk(vectors[:2], ann, k=3)
    >>> ids[:, 0].tolist()
    [0, 1]
    """

    def __init__(
        self,
        items: ItemIndex | np.ndarray,
        *,
        metric: str | None = None,
        m: int = 32,
        ef_construction: int = 100,
        ef_search: int = 128,
        num_threads: int | None = None,
    ) -> None:
        approx.load_faiss("HNSWIndex")  # without faiss: a clear error before any work
        if isinstance(items, ItemIndex):
            if metric is not None and metric != items.metric:
                raise ValueError(f"metric={metric!r} differs from the ItemIndex's {items.metric!r}")
            self.items = items
        else:
            self.items = ItemIndex(items, metric=metric or "cosine", num_threads=num_threads)
        self.m, self.ef_construction, self.ef_search = _graph_settings(
            m, ef_construction, ef_search
        )
        self._lock = ModelLock()  # searches share the graph, an insertion has it alone (faiss)
        self._graph = self._new_graph()
        self._add_to_graph(self.items.vectors, num_threads)

    @property
    def ef_search(self) -> int:
        """Candidates a search keeps (the recall/speed knob); checked when set."""
        return self._ef_search

    @ef_search.setter
    def ef_search(self, value: Any) -> None:
        self._ef_search = approx.setting("hnsw", "ef_search", value)

    @property
    def metric(self) -> str:
        """``"dot"`` or ``"cosine"``: that of the exact index it proposes items from."""
        return self.items.metric

    def __len__(self) -> int:
        return len(self.items)  # the graph catches up at the next search

    def __repr__(self) -> str:
        return (
            f"HNSWIndex(n_items={len(self)}, dim={self.items.dim}, metric={self.items.metric!r}, "
            f"m={self.m}, ef_construction={self.ef_construction}, ef_search={self.ef_search})"
        )

    def settings(self) -> dict[str, int]:
        """``m``, ``ef_construction`` and ``ef_search``, as given to the constructor.

        Examples
        --------
        >>> import numpy as np, semrec
        >>> semrec.HNSWIndex(np.eye(3, dtype=np.float32), m=8).settings()["m"]
        8
        """
        return {"m": self.m, "ef_construction": self.ef_construction, "ef_search": self.ef_search}

    def graph_bytes(self) -> np.ndarray:
        """The graph serialised by faiss (uint8), for :meth:`from_bytes`; without the vectors.

        Examples
        --------
        >>> import numpy as np, semrec
        >>> ann = semrec.HNSWIndex(np.eye(3, dtype=np.float32))
        >>> again = semrec.HNSWIndex.from_bytes(ann.items, ann.graph_bytes(), **ann.settings())
        >>> len(again)
        3
        """
        self._sync(None)
        with self._lock.reading():
            return np.asarray(
                approx.load_faiss("HNSWIndex").serialize_index(self._graph), dtype=np.uint8
            )

    @classmethod
    def from_bytes(
        cls, items: ItemIndex, graph: np.ndarray, *, m: int, ef_construction: int, ef_search: int
    ) -> HNSWIndex:
        """An index over ``items`` from a graph serialised by :meth:`graph_bytes` over them.

        ``graph`` is a uint8 array or a bytes-like object. Raises ValueError when it is not a
        faiss HNSW graph of ``len(items)`` vectors of ``items.dim`` dimensions.
        """
        faiss = approx.load_faiss("HNSWIndex")
        if not isinstance(items, ItemIndex):
            raise TypeError(f"items must be a semrec.ItemIndex, got {type(items).__name__}")
        graph = approx.blob_bytes(graph, "graph", "HNSWIndex.graph_bytes")
        _check_layout(graph, len(items), items.dim)  # before faiss allocates what it declares
        loaded = approx.deserialized(graph, "HNSWIndex", "graph")
        if not isinstance(loaded, faiss.IndexHNSWFlat) or loaded.metric_type != (
            faiss.METRIC_INNER_PRODUCT
        ):
            raise ValueError(f"graph is a {type(loaded).__name__}, not an inner-product HNSW")
        if loaded.ntotal != len(items) or loaded.d != items.dim:
            raise ValueError(
                f"graph holds {loaded.ntotal} vectors of dimension {loaded.d}, the items "
                f"{len(items)} of dimension {items.dim}"
            )
        settings = _graph_settings(m, ef_construction, ef_search)
        if loaded.hnsw.nb_neighbors(1) != settings[0]:  # m is the graph's, not a choice
            raise ValueError(
                f"m={settings[0]} but the graph was built with m={loaded.hnsw.nb_neighbors(1)}"
            )
        self = cls.__new__(cls)
        self.items = items
        self.m, self.ef_construction, self.ef_search = settings
        self._lock = ModelLock()
        self._graph = loaded
        return self

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Pickled as its ItemIndex and the serialised graph (sent to worker processes).
        return _unpickle_hnsw, (self.items, self.graph_bytes(), self.settings())

    def _sync(self, num_threads: int | None) -> None:
        """Put the items the graph lacks into it: those added to the wrapped ItemIndex
        directly (``index.items.add``) are then searched too, and all of them after an
        insertion that failed (:meth:`_add_to_graph` left an empty graph)."""
        if self._graph.ntotal < len(self.items):  # read without the lock: the writer rechecks
            with self._lock.writing():
                self._add_to_graph(self.items.vectors[self._graph.ntotal :], num_threads)

    def _new_graph(self) -> Any:
        """An empty faiss graph with this index's ``m`` and ``ef_construction``."""
        faiss = approx.load_faiss("HNSWIndex")
        graph = faiss.IndexHNSWFlat(self.items.dim, self.m, faiss.METRIC_INNER_PRODUCT)
        graph.hnsw.efConstruction = self.ef_construction
        return graph

    def _add_to_graph(self, x: np.ndarray, num_threads: int | None) -> None:
        """Link the rows ``x`` into the graph; should that fail or be interrupted, the graph
        is replaced by an empty one (rebuilt from the items at the next :meth:`_sync`)."""
        faiss = approx.load_faiss("HNSWIndex")
        if x.shape[0]:
            graph, unit = self._graph, approx.unit_rows(x, self.items.metric)
            empty = self._new_graph()  # made beforehand: the failure path only assigns it
            # faiss draws each new node's level from a generator it does not serialise: seeded
            # by the node count, a loaded or unpickled graph grows as the original would.
            graph.hnsw.rng = faiss.RandomGenerator(_LEVEL_SEED + graph.ntotal)
            try:
                with approx.faiss_threads(faiss, resolve_num_threads(num_threads)):
                    graph.add(unit)
            except BaseException:
                # faiss counts the new nodes before it links them: after Ctrl-C (or any error)
                # mid-add the graph holds nodes no search reaches, and its count says it is
                # complete. A single assignment, which a second Ctrl-C cannot skip.
                self._graph = empty
                raise

    def add(self, vectors: np.ndarray, *, num_threads: int | None = None) -> np.ndarray:
        """Add items to the exact index and the graph; returns their ids. Safe mid-search: the
        insertion waits for the searches under way and holds new ones back until it is done.

        Should the graph insertion be interrupted (Ctrl-C) or fail, the exception propagates,
        the items stay in the exact index (``len`` counts them) and the graph is rebuilt from
        all the items at the next search, which takes as long as a new index.

        Examples
        --------
        >>> import numpy as np, semrec
        >>> ann = semrec.HNSWIndex(np.eye(3, dtype=np.float32))
        >>> ann.add(np.ones((1, 3), dtype=np.float32)).tolist()
        [3]
        """
        ids = self.items.add(vectors, num_threads=num_threads)  # safe mid-search itself
        self._sync(num_threads)
        return ids

    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        exclude: sp.csr_array | sp.csr_matrix | None = None,
        candidates: np.ndarray | sp.csr_array | sp.csr_matrix | None = None,
        num_threads: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Approximate top-k with exact scores; the arguments are those of :func:`semrec.topk`.

        Examples
        --------
        >>> import numpy as np, semrec
        >>> ann = semrec.HNSWIndex(np.eye(4, dtype=np.float32))
        >>> ann.search(np.array([0, 1, 0, 0], dtype=np.float32), k=1)[0].tolist()
        [1]
        """
        faiss = approx.load_faiss("HNSWIndex")
        self._sync(num_threads)
        req = approx.request(self.items, queries, k, exclude, candidates, num_threads)
        if isinstance(req, tuple):
            return req
        k = min(req.k, len(self.items))
        graph_q = approx.unit_rows(req.queries, self.items.metric)
        with self._lock.reading():
            found = self._search_graph(faiss, req, graph_q, k)
        # Exact scores (and the ranking they imply) for what the graph found; a row its filters
        # left with too few items is searched exactly.
        return approx.rescored(self.items, req, found)

    def _search_graph(
        self, faiss: Any, req: approx.Request, graph_q: np.ndarray, k: int
    ) -> np.ndarray:
        """Each query's graph proposals for its top ``k`` (-1: none); the caller holds the
        readers' lock.

        Every candidate the search kept is proposed, not only faiss's ``k`` best: among items
        that tie, faiss keeps any, the exact re-scoring keeps the lower ids."""
        width = min(self.search_depth(k), len(self.items))
        if req.excluded is None and req.allowed is None:
            params = faiss.SearchParametersHNSW(efSearch=self.search_depth(k))
            with approx.faiss_threads(faiss, req.threads):
                return self._graph.search(graph_q, width, params=params)[1]
        found = np.full((req.queries.shape[0], width), -1, dtype=np.int64)
        keep = None if req.allowed is None else faiss.IDSelectorBatch(req.allowed.astype(np.int64))
        for i in range(req.queries.shape[0]):
            sel = keep
            seen = req.excluded_of(i)
            if seen.size:
                drop = faiss.IDSelectorNot(faiss.IDSelectorBatch(seen))
                sel = drop if keep is None else faiss.IDSelectorAnd(keep, drop)
            ef_i = self.search_depth(k, seen.size)
            params = faiss.SearchParametersHNSW(efSearch=ef_i, sel=sel)
            found[i] = self._graph.search(graph_q[i : i + 1], width, params=params)[1][0]
        return found

    def tune(
        self,
        queries: np.ndarray,
        *,
        k: int = 10,
        target: float = 0.95,
        confidence: float = 0.95,
        max_ef_search: int = 4096,
        num_threads: int | None = None,
    ) -> dict[str, float]:
        """Set :attr:`ef_search` to the smallest value found at which queries like these find
        ``target`` of their exact top ``k`` (mean recall@k, with ``confidence``; filters,
        which deepen every search, aside). Ties count as :meth:`recall` counts them: an item
        scoring at least a query's k-th exact score is found.

        ``ef_search`` doubles from ``2 * k`` until the target is met, then a bisection narrows
        it to within 1/16 (a graph search's recall grows with ``ef_search``, almost always
        monotonically): a dozen batched searches of the queries.

        Parameters
        ----------
        queries, k, target, confidence
            As in :meth:`semrec.PQIndex.tune`: queries like the ones to be served, the mean
            recall@k to reach (default 0.95 at k = 10), and how sure to be that other queries
            drawn like these reach it too (default 0.95; 0.5 tunes to the mean of these).
        max_ef_search : int, default 4096
            The largest setting tried.
        num_threads : int, optional
            Threads of the tuning searches (default: ``semrec.get_num_threads()``).

        Returns
        -------
        dict
            ``ef_search`` (now set), the ``recall`` it reaches on these queries and the
            ``lower_bound`` the target was held to.

        Raises
        ------
        ValueError
            When ``max_ef_search`` does not reach ``target`` (nothing is changed); a larger
            ``m`` or ``ef_construction`` builds a better graph, and more queries a tighter
            bound.

        Examples
        --------
        >>> import numpy as np, semrec
        >>> rng = np.random.default_rng(1)
        >>> ann = semrec.HNSWIndex(rng.standard_normal((3000, 24)).astype(np.float32), m=4)
        >>> users = rng.standard_normal((80, 24)).astype(np.float32)
        >>> sorted(ann.tune(users, target=0.9)), ann.recall(users) >= 0.9
        (['ef_search', 'lower_bound', 'recall'], True)
        """
        faiss = approx.load_faiss("HNSWIndex")
        self._sync(num_threads)  # items added through index.items: tuned on them too
        req, target, confidence, exact = approx.tuning_request(
            self.items, queries, k, target, confidence, num_threads
        )
        limit = check.positive_int(max_ef_search, "max_ef_search")
        if limit > approx.MAX_EF:
            raise ValueError(f"max_ef_search must be <= {approx.MAX_EF}, got {limit}")
        graph_q = approx.unit_rows(req.queries, self.items.metric)

        def recall_at(ef: int) -> tuple[float, float]:  # the mean, and its bound
            # As a search proposes: every candidate kept, the best k of them found.
            params = faiss.SearchParametersHNSW(efSearch=max(ef, 2 * req.k))
            width = min(max(ef, 2 * req.k), len(self.items))
            with self._lock.reading(), approx.faiss_threads(faiss, req.threads):
                found = self._graph.search(graph_q, width, params=params)[1]
            hits = approx.found_items(self.items, req.queries, exact, found, None, req.threads)
            shares = approx.found_shares(*hits)
            if not shares.size:
                return 1.0, 1.0
            squares = np.square(shares).sum()
            bound = approx.recall_bound(shares.sum(), squares, shares.size, confidence)
            return float(shares.mean()), round(float(bound), 12)

        failed, ef = 2 * req.k - 1, min(limit, 2 * req.k)  # below 2 k: the same search
        while (reached := recall_at(ef))[1] < target:
            if ef >= limit:
                raise ValueError(
                    f"ef_search up to max_ef_search={limit} does not reach recall@{req.k} "
                    f"{target:g} with confidence {confidence:g} on these queries (recall "
                    f"{reached[0]:.3f}, lower bound {reached[1]:.3f}); pass a larger "
                    "max_ef_search or more queries, or build the graph with a larger m or "
                    "ef_construction"
                )
            failed, ef = ef, min(limit, 2 * ef)
        while ef - failed > max(1, ef // 16):
            middle = (failed + ef) // 2
            if (found := recall_at(middle))[1] >= target:
                ef, reached = middle, found
            else:
                failed = middle
        self.ef_search = ef
        return {"ef_search": ef, "recall": reached[0], "lower_bound": reached[1]}

    def search_depth(self, k: int, excluded: int = 0) -> int:
        """The graph search's candidate list (faiss ``efSearch``) for a top-``k`` query with
        ``excluded`` items filtered out: ``ef_search``, at least ``2 * k``, plus the excluded
        count (at most 2048 more).

        Examples
        --------
        >>> import numpy as np, semrec
        >>> ann = semrec.HNSWIndex(np.eye(3, dtype=np.float32), ef_search=64)
        >>> ann.search_depth(10), ann.search_depth(100), ann.search_depth(10, excluded=30)
        (64, 200, 94)
        """
        depth = max(self.ef_search, 2 * k) + min(excluded, approx.MAX_FILTER_DEPTH)
        return min(depth, check.INT32_MAX)  # faiss takes a C int

    # -- persistence -------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> None:
        """Save vectors and graph to ``path`` (``.npz`` + JSON metadata with a SHA-256 of each
        array, written atomically, no pickle).

        Examples
        --------
        >>> import numpy as np, semrec, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "ann.npz")
        >>> semrec.HNSWIndex(np.eye(3, dtype=np.float32)).save(path)
        >>> len(semrec.HNSWIndex.load(path))
        3
        """
        approx.save(
            path, _FORMAT, _VERSION, self.items, self.settings(), "graph", self.graph_bytes()
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, num_threads: int | None = None) -> HNSWIndex:
        """Load an index written by :meth:`save`; damage raises :class:`semrec.FormatError`."""
        names = ("m", "ef_construction", "ef_search")
        return approx.load(path, _FORMAT, _VERSION, "graph", names, cls.from_bytes, num_threads)


# faiss's own seed for the levels of a graph's nodes (HNSW::rng): a fresh build draws them as
# faiss alone would.
_LEVEL_SEED = 12345


def _graph_settings(m: Any, ef_construction: Any, ef_search: Any) -> tuple[int, int, int]:
    """``m``, ``ef_construction`` and ``ef_search`` checked: ints in [2, 1024], [1, 2**20] and
    [1, 2**20] (:func:`semrec._approximate.setting`)."""
    return (
        approx.setting("hnsw", "m", m),
        approx.setting("hnsw", "ef_construction", ef_construction),
        approx.setting("hnsw", "ef_search", ef_search),
    )


def _check_layout(graph: np.ndarray, n: int, dim: int) -> None:
    """``graph`` laid out as faiss writes an inner-product ``IndexHNSWFlat`` of ``n`` vectors
    of ``dim`` dimensions, every size it declares within its bytes (ValueError otherwise)."""
    walk = approx.FaissLayout(graph, "graph")
    what = "an inner-product HNSW graph"
    d, ntotal = walk.header(b"IHNf", what)
    if (d, ntotal) != (dim, n):
        raise ValueError(
            f"graph holds {ntotal} vectors of dimension {d}, the items {n} of dimension {dim}"
        )
    walk.vector(8)  # the level probabilities (float64)
    walk.vector(4)  # the neighbours per level, cumulated (int32)
    levels, offsets = walk.vector(4), walk.vector(8)
    walk.vector(4)  # the neighbours (int32)
    walk.fields("<5i")  # entry point, top level, efConstruction, efSearch, (unused)
    if (levels, offsets) != (n, n + 1) or walk.header(b"IxFI", what) != (d, n):
        raise ValueError(f"graph is damaged: its parts disagree on {n} vectors")
    if walk.vector(4) != n * d:  # the vectors (float32, counted in 4-byte words)
        raise ValueError(f"graph is damaged: its storage is not {n} vectors of {d} dimensions")
    walk.end()


def _unpickle_hnsw(items: ItemIndex, graph: np.ndarray, settings: dict[str, int]) -> HNSWIndex:
    return HNSWIndex.from_bytes(items, graph, **settings)
