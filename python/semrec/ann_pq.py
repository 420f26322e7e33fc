"""Approximate top-k by scanning compact codes: 4-bit product-quantised copies of every item
rank the whole catalogue cheaply, and the best ``rerank`` of them are re-scored exactly by semrec.
faiss (optional extra ``semrec[ann]``, which installs ``faiss-cpu``) trains the codebooks; semrec
codes the items and scans the codes in its own OpenMP kernel (``cpp/semrec/pq_scan.cpp``).

Why a full scan of codes rather than a partition (IVF) or a graph (HNSW): on sentence-embedding
shaped vectors (``benchmarks/_catalogues.py``'s ``minilm``: high intrinsic dimension, no cluster
structure at scale) an IVF index with 1,024 lists found only 0.70 of the true top 10 after
scanning 128 of them (200k items), and the HNSW graph needed 1024-wide searches at 1M for 0.83;
a product-quantised copy of every item keeps the true top 10 within its best thousand
(recall@10 0.99 at 200k, 0.95 at 1M, with ``m=96`` and ``rerank=1000``), and the scan reads the
48 bytes per item (1/32 of float32) with in-register table lookups. The build is a k-means per
sub-space on a sample: seconds, not the hours of a dense graph. Recall and latency at 1M:
``benchmarks/realtime.py --only ann --ann-kind pq`` and benchmarks/README.md.

Why semrec's own scan rather than faiss's (``IndexPQFastScan``, used before): faiss scans one
query on one core, so one query used two cores only through Python threads, and those competed
with the OpenMP workers that semrec's other kernels leave spinning for a few milliseconds (one
query took 3.4 ms right after an exact scan against 1.7 ms back to back). semrec's scan runs one
query on ``num_threads`` cores of the same OpenMP pool as every other kernel, and its answer
(the best ``rerank`` by the integer sum of the query's rounded tables, ties to the lower id)
does not depend on the thread count or the instruction set.
"""

from __future__ import annotations

import math
import os
import threading
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp

from semrec import _approximate as approx
from semrec import _hyperparameters as hyperparameters
from semrec import _pq_legacy as legacy
from semrec import _validation as check
from semrec._native import core
from semrec._threads import resolve_num_threads
from semrec.similarity import ItemIndex, topk_of_native_proposals

_FORMAT = "semrec.PQIndex"
_VERSION = 2  # the file; its codes array names its own layout (see PQIndex.from_bytes)
_MAGIC = b"semrec.PQblocks\n"  # semrec's codebooks and blocks (code_bytes); else _pq_legacy's
_CODE_BITS = 4  # 16 centroids per sub-space, looked up in SIMD registers
_KSUB = 1 << _CODE_BITS
_TRAIN_SAMPLE = 65536  # items the codebooks are trained on (a seeded sample)
_ENCODE_ROWS = 65536  # items coded per call: the padded float copy stays small
_LARGEST_SQUARE = 1e36  # squared norms beyond this overflow float32 distance sums (3.4e38)


def _seed(value: Any) -> int:
    """A k-means seed: an int in [0, 2**31), as faiss takes a C int. Any other seed every
    semrec API takes (None, a Generator, a larger int) draws one from NumPy's generator."""
    value = hyperparameters.random_state(value)
    if isinstance(value, int | np.integer) and value < 2**31:
        return int(value)
    return int(np.random.default_rng(value).integers(2**31))


def _check_scale(rows: np.ndarray) -> None:
    """k-means and the coding square distances in float32 (faiss aborts the process when they
    overflow): rows whose squared norm could are refused."""
    if rows.size == 0 or rows.dtype.kind != "f":
        return
    peak = float(np.abs(rows).max())
    if peak * peak * rows.shape[-1] > _LARGEST_SQUARE:
        raise ValueError(
            f"items hold values up to {peak:.3g}, too large for PQIndex's codebooks (their "
            "squared distances overflow float32); divide the vectors by a common factor (the "
            "ranking by dot product does not change), or use metric='cosine'"
        )


def _header(m: int, dsub: int, n: int) -> np.ndarray:
    return np.concatenate(
        [np.frombuffer(_MAGIC, np.uint8), np.array([m, dsub, n], dtype="<u8").view(np.uint8)]
    )


class PQIndex(approx.Measurable):
    """Approximate nearest-neighbour search by a scan of product-quantised codes, exact scores.

    Every item is coded in ``m`` sub-spaces of 4 bits each (``m / 2`` bytes); a query ranks all
    codes (one OpenMP scan on ``num_threads`` threads), and its best ``rerank`` (at least
    ``2 * k``, plus one per item it excludes) are re-scored exactly by semrec's kernel from the
    wrapped :class:`ItemIndex`'s vectors. :func:`semrec.topk` accepts this index in place of the
    item matrix, with the same ``exclude`` and ``candidates`` semantics: each query's scan goes
    deeper by its own excluded items (and by the catalogue's share a shared candidate list
    leaves out), then filters; a small candidate list is searched exactly, and so is a query the
    filters left with fewer than ``k`` items while more are eligible. Results do not depend on
    the thread count, the CPU or the batch.

    Parameters
    ----------
    items : ItemIndex or ndarray of float32, shape (n_items, dim)
        The exact index to wrap (its metric is used), or vectors to build one from.
    metric : {"cosine", "dot"}, optional
        Only when ``items`` is an array (default ``"cosine"``).
    m : int, optional
        Sub-spaces (codes of ``m / 2`` bytes); default ``ceil(dim / 4)``: 96 for 384-d vectors.
        More is slower to scan and more accurate.
    rerank : int, default 1000
        Items re-scored exactly per query: the recall/speed knob, may be changed at any time.
        Over 1M MiniLM-shaped vectors (384-d, default ``m``) recall@10 was 0.87 at 250, 0.95
        at 1000 and 0.98 at 2000 (benchmarks/README.md has the latencies); over 200k, 0.93 at
        200 and 0.99 at 1000. :meth:`tune` picks the smallest reaching a target recall on
        given queries; :meth:`recall` measures it.
    random_state : None, int or numpy.random.Generator, default 0
        Seeds the training sample and the k-means. faiss takes a C int: an int in
        [0, 2**31) is used as it is, any other seed draws one (kept in ``random_state``, so
        a saved index records it).
    shards : int, optional
        Deprecated, ignored: one query's scan is split over ``num_threads`` threads by itself.
    num_threads : int, optional
        Threads for training, coding and searching.

    Attributes
    ----------
    items : ItemIndex
        The exact index (vectors, metric).

    Examples
    --------
    >>> import numpy as np, semrec
    >>> vectors = np.random.default_rng(0).standard_normal((1000, 16)).astype(np.float32)
    >>> pq = semrec.PQIndex(vectors, rerank=50)
    >>> ids, scores = semrec.topk(vectors[:2], pq, k=3)
    >>> ids[:, 0].tolist()
    [0, 1]
    """

    def __init__(
        self,
        items: ItemIndex | np.ndarray,
        *,
        metric: str | None = None,
        m: int | None = None,
        rerank: int = 1000,
        random_state: int = 0,
        shards: int | None = None,
        num_threads: int | None = None,
    ) -> None:
        approx.load_faiss("PQIndex")  # the codebooks' k-means: fail now, not at the 16th item
        if shards is not None:
            warnings.warn(
                "PQIndex(shards=...) is deprecated and ignored: one query's scan is split "
                "over num_threads threads by itself; drop the argument",
                DeprecationWarning,
                stacklevel=2,
            )
        if isinstance(items, ItemIndex):
            if metric is not None and metric != items.metric:
                raise ValueError(f"metric={metric!r} differs from the ItemIndex's {items.metric!r}")
            self.items = items
        else:
            self.items = ItemIndex(items, metric=metric or "cosine", num_threads=num_threads)
        self._setup(m, rerank, random_state)
        self._add_codes(num_threads)

    @property
    def rerank(self) -> int:
        """Items re-scored exactly per query (the recall/speed knob); checked when set."""
        return self._rerank

    @rerank.setter
    def rerank(self, value: Any) -> None:
        self._rerank = check.positive_int(value, "rerank")

    def _setup(self, m: int | None, rerank: int, random_state: int) -> None:
        dim = self.items.dim
        if dim == 0:
            raise ValueError("items have 0 dimensions; PQIndex needs vectors of dimension >= 1")
        self.m = math.ceil(dim / 4) if m is None else check.positive_int(m, "m")
        if self.m > dim:
            raise ValueError(f"m={self.m} sub-spaces exceed the {dim} dimensions; use m <= {dim}")
        self.rerank = check.positive_int(rerank, "rerank")
        self.random_state = _seed(random_state)
        self._dsub = math.ceil(dim / self.m)  # dimensions per sub-space (zero-padded)
        self._lock = threading.Lock()
        self._book: np.ndarray | None = None  # (m, 16, dsub) float32 once trained
        self._codes = (np.zeros(0, np.uint8), 0)  # (blocks, items coded): replaced as one

    @property
    def metric(self) -> str:
        """``"dot"`` or ``"cosine"``: that of the exact index it re-scores with."""
        return self.items.metric

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        return (
            f"PQIndex(n_items={len(self)}, dim={self.items.dim}, metric={self.items.metric!r}, "
            f"m={self.m}, rerank={self.rerank})"
        )

    def settings(self) -> dict[str, int]:
        """``m``, ``rerank`` and ``random_state``, as given to (or chosen by) the constructor.

        Examples
        --------
        >>> import numpy as np, semrec
        >>> semrec.PQIndex(np.eye(8, dtype=np.float32), m=4).settings()["m"]
        4
        """
        return {"m": self.m, "rerank": self.rerank, "random_state": self.random_state}

    def code_bytes(self) -> np.ndarray:
        """The codebooks and codes as one uint8 array, for :meth:`from_bytes`: a header
        (:data:`_MAGIC`, then ``m``, the dimensions per sub-space and the items coded as
        little-endian uint64; 0 dimensions before training), the centroids (float32, ``m x 16
        x dims``) and the scan's blocks of codes.

        Examples
        --------
        >>> import numpy as np, semrec
        >>> pq = semrec.PQIndex(np.eye(8, dtype=np.float32))
        >>> again = semrec.PQIndex.from_bytes(pq.items, pq.code_bytes(), **pq.settings())
        >>> len(again)
        8
        """
        return self._snapshot()[1]

    def _snapshot(self) -> tuple[np.ndarray, np.ndarray]:
        """The vectors and their :meth:`code_bytes`, read together, the items added to the
        wrapped ItemIndex directly (``index.items.add``) coded first: a file or a pickle of
        them loads back."""
        with self._lock:  # no add meanwhile: it would write into the blocks being copied
            vectors = self._add_codes(None)
            book, (blocks, coded) = self._book, self._codes
            if book is None:  # fewer than 16 items: none coded yet
                return vectors, _header(self.m, 0, 0)
            centroids = np.ascontiguousarray(book, "<f4").reshape(-1).view(np.uint8)
            used = blocks[: core.pq_blocks_bytes(coded, self.m)]
            return vectors[:coded], np.concatenate(
                [_header(self.m, self._dsub, coded), centroids, used]
            )

    @classmethod
    def from_bytes(
        cls, items: ItemIndex, codes: np.ndarray, *, m: int, rerank: int, random_state: int
    ) -> PQIndex:
        """An index over ``items`` from the codes :meth:`code_bytes` wrote over them. Codes
        saved by semrec before its own scan (faiss fast-scan indexes) load too: their codebooks
        are kept and the items coded again (this needs faiss).

        ``codes`` is a uint8 array or a bytes-like object. Raises ValueError when it does not
        hold the codes of ``len(items)`` vectors of ``items.dim`` dimensions in ``m`` sub-spaces.
        """
        if not isinstance(items, ItemIndex):
            raise TypeError(f"items must be a semrec.ItemIndex, got {type(items).__name__}")
        codes = approx.blob_bytes(codes, "codes", "PQIndex.code_bytes")
        self = cls.__new__(cls)
        self.items = items
        self._setup(m, rerank, random_state)
        if codes[: len(_MAGIC)].tobytes() != _MAGIC:
            self._book = legacy.faiss_codebook(codes, len(items), items.dim, self.m)
            self._add_codes(None)
            return self
        start = len(_MAGIC) + 24
        if codes.size < start:
            raise ValueError(f"codes: {codes.size} bytes, shorter than their header")
        saved_m, dsub, coded = (int(v) for v in codes[len(_MAGIC) : start].view("<u8"))
        n = len(items)
        if saved_m != self.m or dsub not in (0, self._dsub) or coded != (n if dsub else 0):
            raise ValueError(
                f"codes hold {coded} vectors in {saved_m} sub-spaces of {dsub} dimensions, "
                f"the items {n} in {self.m} of {self._dsub}"
            )
        book_bytes = self.m * _KSUB * dsub * 4
        if codes.size != start + book_bytes + (core.pq_blocks_bytes(n, self.m) if dsub else 0):
            raise ValueError(f"codes: {codes.size} bytes do not match their header")
        if dsub == 0:
            if n >= _KSUB:
                raise ValueError(f"codes: no codebooks, yet {n} items (training starts at 16)")
            return self
        book = codes[start : start + book_bytes].view("<f4").astype(np.float32)
        if not np.isfinite(book).all():
            raise ValueError("codes: the codebooks contain NaN or infinity")
        self._book = book.reshape(self.m, _KSUB, dsub)
        self._codes = (codes[start + book_bytes :].copy(), n)
        return self

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Pickled as its ItemIndex and the serialised codes (sent to worker processes).
        return _unpickle_pq, (self.items, self.code_bytes(), self.settings())

    def _code_rows(self, x: np.ndarray) -> np.ndarray:
        """Rows as the codes see them: unit for cosine, zero-padded to ``m`` equal sub-spaces
        (rows too large to code refused)."""
        rows = approx.unit_rows(x, self.items.metric)
        _check_scale(rows)
        return self._padded(rows)

    def _padded(self, x: np.ndarray) -> np.ndarray:
        """Float32 rows zero-padded to ``m`` equal sub-spaces."""
        pad = self.m * self._dsub - x.shape[1]
        return np.ascontiguousarray(np.pad(x, ((0, 0), (0, pad))) if pad else x, np.float32)

    def _add_codes(self, num_threads: int | None) -> np.ndarray:
        """Code the items not coded yet; the codebooks are trained on the first :data:`_KSUB`
        or more items (until then every search is exact). Returns the vectors it went by."""
        threads = resolve_num_threads(num_threads)
        x = self.items.vectors
        if self._book is None:
            if len(x) < _KSUB:
                return x
            self._book = self._trained(x, threads)
        blocks, start = self._codes
        need = core.pq_blocks_bytes(len(x), self.m)
        if blocks.size < need:  # grown by half again: adding item by item stays linear
            grown = np.zeros(max(need, core.pq_blocks_bytes(len(x) * 3 // 2, self.m)), np.uint8)
            grown[: blocks.size] = blocks
            blocks = grown
        for b in range(start, len(x), _ENCODE_ROWS):
            rows = self._code_rows(x[b : b + _ENCODE_ROWS])
            core.pq_pack(core.pq_encode(rows, self._book, threads), blocks, b)
        self._codes = (blocks, len(x))  # searches see the new items from here on
        return x

    def _trained(self, x: np.ndarray, threads: int) -> np.ndarray:
        """Codebooks (m, 16, dims per sub-space) from faiss's k-means on a seeded sample."""
        faiss = approx.load_faiss("PQIndex")
        rng = np.random.default_rng(self.random_state)
        take = rng.choice(x.shape[0], min(x.shape[0], _TRAIN_SAMPLE), replace=False)
        quantizer = faiss.ProductQuantizer(self.m * self._dsub, self.m, _CODE_BITS)
        quantizer.cp.seed = self.random_state
        quantizer.cp.min_points_per_centroid = 1  # small catalogues train quietly
        with approx.faiss_threads(faiss, threads):
            quantizer.train(self._code_rows(x[np.sort(take)]))
        centroids = faiss.vector_to_array(quantizer.centroids)
        return centroids.astype(np.float32).reshape(self.m, _KSUB, self._dsub)

    def add(self, vectors: np.ndarray, *, num_threads: int | None = None) -> np.ndarray:
        """Add items to the exact index and code them (with the existing codebooks); returns
        their ids.

        Examples
        --------
        >>> import numpy as np, semrec
        >>> pq = semrec.PQIndex(np.eye(20, dtype=np.float32))
        >>> pq.add(np.ones((1, 20), dtype=np.float32)).tolist()
        [20]
        """
        x, _ = check.as_float32_matrix(vectors, "vectors", allow_1d=True)
        if self.items.metric == "dot":
            _check_scale(x)  # before the items change: coding them would fail
        with self._lock:
            ids = self.items.add(x, num_threads=num_threads)
            if ids.size:
                self._add_codes(num_threads)
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
        >>> pq = semrec.PQIndex(np.eye(20, dtype=np.float32), rerank=4)
        >>> pq.search(np.eye(20, dtype=np.float32)[7], k=1)[0].tolist()
        [7]
        """
        self._catch_up(num_threads)
        req = approx.request(self.items, queries, k, exclude, candidates, num_threads)
        if isinstance(req, tuple):
            return req
        n = len(self.items)
        # Each query is scanned to its own depth (its exclusions'), never to its batch's.
        batch = req.excluded is not None and req.queries.shape[0] > 1
        if batch:
            depths = self._depths(req, n, req.excluded_counts())
            depth, shallowest = int(depths.max()), int(depths.min())
        else:
            depth = shallowest = self._depths(req, n, req.most_excluded())
        book, (blocks, coded) = self._book, self._codes  # items added meanwhile: not searched
        if book is None or shallowest >= n or coded != n:
            return approx.exactly(self.items, req, req.allowed)
        # Queries as they are: the scan ranks by the query's tables rounded on a step that scales
        # with them, so a cosine query needs no normalising (one NumPy pass less per click).
        rows = self._padded(req.queries)
        if req.allowed is None and depth == shallowest:  # scan and re-scoring in one native call
            scan = (rows, book, blocks, n, depth, req.queries)
            found = topk_of_native_proposals(
                req.queries,
                self.items,
                req.excluded,
                lambda items, vectors, *ex: core.pq_query(
                    *scan, items, vectors, req.k, *ex, req.threads
                ),
            )
            if req.excluded is not None:  # a row they left short is searched exactly
                found = approx.completed(self.items, req, found)
            return approx.shaped(found, req.single)
        redo = None  # rows searched exactly: those whose depth reaches the catalogue
        if depth != shallowest:
            redo = depths >= n
            depth = int(depths[~redo].max())
        found = core.pq_search(rows, book, blocks, n, depth, req.threads)
        if redo is not None:  # the scan lists each query's best first: cut at its own depth
            found[np.arange(depth) >= depths[:, None]] = -1
            found[redo] = -1
        if req.allowed is not None:
            found[~np.isin(found, req.allowed)] = -1
        return approx.rescored(self.items, req, found, redo)

    def _catch_up(self, num_threads: int | None) -> None:
        """Code the items added to the wrapped ItemIndex directly (``index.items.add``)."""
        if self._codes[1] < len(self.items):
            with self._lock:
                self._add_codes(num_threads)

    def _depths(self, req: approx.Request, n: int, excluded: Any) -> Any:
        """:meth:`search_depth` of queries excluding ``excluded`` items (a count or an array
        of counts); with a shared candidate list deeper by the share of the ``n`` items it
        leaves out (the scan cannot filter)."""
        if isinstance(excluded, int):  # one depth (a click): no NumPy call
            depths: Any = max(self.rerank, 2 * req.k) + min(excluded, approx.MAX_FILTER_DEPTH)
        else:
            depths = max(self.rerank, 2 * req.k) + np.minimum(excluded, approx.MAX_FILTER_DEPTH)
        if req.allowed is not None:
            depths = -(-depths * n // max(1, req.allowed.size))  # rounded up
        return depths

    def tune(
        self,
        queries: np.ndarray,
        *,
        k: int = 10,
        target: float = 0.95,
        confidence: float = 0.95,
        max_rerank: int | None = None,
        num_threads: int | None = None,
    ) -> dict[str, float]:
        """Set :attr:`rerank` to the smallest depth at which queries like these find
        ``target`` of their exact top ``k`` (mean recall@k, with ``confidence``; filters,
        which deepen every search, aside).

        One scan per query, ``max_rerank`` deep, ranks each query's exact top ``k`` among the
        proposals; a search re-scoring the best ``r`` finds exactly those ranked below ``r``,
        so every depth's recall is known at once, without a search per candidate depth. Ties
        count as :meth:`recall` counts them: an item scoring at least a query's k-th exact
        score is found.

        A depth whose mean recall on these queries just reaches the target falls short of it
        on other queries about half the time, so the target is held to a lower confidence
        bound instead: the mean less ``z(confidence)`` standard errors of the per-query
        recalls. The more queries, the closer the bound to the mean.

        Parameters
        ----------
        queries : array of float32, shape (n_queries, dim) or (dim,)
            Queries like the ones to be served (held-out user vectors, say): a few hundred.
        k : int, default 10
        target : float, default 0.95
            Mean recall@k to reach, in (0, 1].
        confidence : float, default 0.95
            How sure to be that the mean recall of queries drawn like these reaches
            ``target``, in [0.5, 1): 0.5 tunes to the mean recall of these queries.
        max_rerank : int, optional
            The deepest setting tried (default: the larger of 16 x the current ``rerank`` and
            20,000, at most the catalogue).
        num_threads : int, optional
            Threads of the tuning searches (default: ``semrec.get_num_threads()``).

        Returns
        -------
        dict
            ``rerank`` (now set), the ``recall`` it reaches on these queries and the
            ``lower_bound`` the target was held to.

        Raises
        ------
        ValueError
            When no depth up to ``max_rerank`` reaches ``target`` (nothing is changed); a larger
            ``m`` codes the items more finely, and more queries give a tighter bound.

        Examples
        --------
        >>> import numpy as np, semrec
        >>> vectors = np.random.default_rng(0).standard_normal((5000, 32)).astype(np.float32)
        >>> pq = semrec.PQIndex(vectors, m=8)
        >>> tuned = pq.tune(vectors[:100] + 0.5, k=10, target=0.9)
        >>> pq.rerank == tuned["rerank"], pq.recall(vectors[:100] + 0.5, k=10) >= 0.9
        (True, True)
        """
        self._catch_up(num_threads)  # items added through index.items: tuned on them too
        req, target, confidence, exact = approx.tuning_request(
            self.items, queries, k, target, confidence, num_threads
        )
        n = len(self.items)
        limit = min(n, max(16 * self.rerank, 20_000))
        if max_rerank is not None:
            limit = min(n, check.positive_int(max_rerank, "max_rerank"))
        book, (blocks, coded) = self._book, self._codes
        if book is None or coded != n or 2 * req.k >= n:  # every rerank searches exactly
            return {"rerank": self.rerank, "recall": 1.0, "lower_bound": 1.0}
        proposed = core.pq_search(self._padded(req.queries), book, blocks, n, limit, req.threads)
        # The places among its proposals of the first items each query finds (ties with its
        # k-th exact score count; ascending; limit: not proposed), and how much finding each
        # adds to its query's recall and recall squared.
        hits, counts = approx.found_items(
            self.items, req.queries, exact, proposed, None, req.threads
        )
        places, gains, square_gains = [], [], []
        for wanted, row in zip(counts, hits, strict=True):
            if wanted:
                place = np.full(wanted, limit, dtype=np.int64)
                hit = np.flatnonzero(row)[:wanted]
                place[: hit.size] = hit
                places.append(place)
                after = np.arange(1, wanted + 1) / wanted  # the recall once found
                gains.append(np.full(wanted, 1.0 / wanted))
                square_gains.append(after**2 - (after - 1.0 / wanted) ** 2)
        if not places:
            return {"rerank": self.rerank, "recall": 1.0, "lower_bound": 1.0}
        place = np.concatenate(places)
        order = np.argsort(place, kind="stable")
        place = place[order]
        total = np.cumsum(np.concatenate(gains)[order])
        squares = np.cumsum(np.concatenate(square_gains)[order])
        # Every depth's sums: those of the last item placed above it.
        last = np.flatnonzero(np.append(place[1:] != place[:-1], True) & (place < limit))
        bounds = approx.recall_bound(total[last], squares[last], len(places), confidence)

        def recall_at(depth: int) -> tuple[float, float]:  # the mean, and its bound
            found = np.searchsorted(place, depth) - 1
            if found < 0:
                return 0.0, 0.0
            bound = approx.recall_bound(total[found], squares[found], len(places), confidence)
            return round(float(total[found] / len(places)), 12), round(float(bound), 12)

        reached = np.flatnonzero(bounds >= target - 1e-12)
        if reached.size == 0:
            mean, bound = recall_at(limit)
            raise ValueError(
                f"no rerank up to max_rerank={limit} reaches recall@{req.k} {target:g} with "
                f"confidence {confidence:g} on these queries (recall {mean:.3f}, lower bound "
                f"{bound:.3f}); pass a larger max_rerank or more queries, or build the index "
                "with a larger m"
            )
        depth = int(place[last[reached[0]]]) + 1
        self.rerank = depth
        mean, bound = recall_at(self.search_depth(req.k))
        return {"rerank": depth, "recall": mean, "lower_bound": bound}

    def search_depth(self, k: int, excluded: int = 0) -> int:
        """How many items a top-``k`` query re-scores exactly with ``excluded`` items filtered
        out: ``rerank``, at least ``2 * k``, plus the excluded count (at most 2048 more).

        Examples
        --------
        >>> import numpy as np, semrec
        >>> pq = semrec.PQIndex(np.eye(3, dtype=np.float32), rerank=64)
        >>> pq.search_depth(10), pq.search_depth(100), pq.search_depth(10, excluded=30)
        (64, 200, 94)
        """
        return max(self.rerank, 2 * k) + min(excluded, approx.MAX_FILTER_DEPTH)

    # -- persistence -------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> None:
        """Save vectors and codes to ``path`` (``.npz`` + JSON metadata with a SHA-256 of each
        array, written atomically, no pickle).

        Examples
        --------
        >>> import numpy as np, semrec, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "pq.npz")
        >>> semrec.PQIndex(np.eye(20, dtype=np.float32)).save(path)
        >>> len(semrec.PQIndex.load(path))
        20
        """
        vectors, codes = self._snapshot()
        approx.save(path, _FORMAT, _VERSION, self.items, self.settings(), "codes", codes, vectors)

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, num_threads: int | None = None) -> PQIndex:
        """Load an index written by :meth:`save`; damage raises :class:`semrec.FormatError`."""
        names = ("m", "rerank", "random_state")
        return approx.load(path, _FORMAT, _VERSION, "codes", names, cls.from_bytes, num_threads)


def _unpickle_pq(items: ItemIndex, codes: np.ndarray, settings: dict[str, int]) -> PQIndex:
    return PQIndex.from_bytes(items, codes, **settings)
