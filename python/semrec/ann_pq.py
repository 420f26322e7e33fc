"""Approximate top-k by scanning compact codes: 4-bit product-quantised copies of every item
(faiss ``IndexPQFastScan``) rank the whole catalogue cheaply, and the best ``rerank`` of them are
re-scored exactly by semrec (optional extra ``semrec[ann]``, which installs ``faiss-cpu``).

Why a full scan of codes rather than a partition (IVF) or a graph (HNSW): on sentence-embedding
shaped vectors (``benchmarks/_catalogues.py``'s ``minilm``: high intrinsic dimension, no cluster
structure at scale) an IVF index with 1,024 lists found only 0.70 of the true top 10 after
scanning 128 of them (200k items), and the HNSW graph needed 1024-wide searches at 1M for 0.83;
a product-quantised copy of every item keeps the true top 10 within its best thousand
(recall@10 0.99 at 200k, 0.95 at 1M, with ``m=96`` and ``rerank=1000``), and faiss's fast-scan
kernel reads the 48 bytes per item (1/32 of float32) with in-register table lookups. The build
is a k-means per sub-space on a sample: seconds, not the hours of a dense graph. Recall and
latency at 1M: ``benchmarks/realtime.py --only ann --ann-kind pq`` and benchmarks/README.md.

One query uses several cores: the codes are split into ``shards`` faiss indexes (item ``i`` in
shard ``i % shards``), scanned and re-scored side by side on ``num_threads`` threads, and the
best of each shard merged (faiss scans one query on one core). Batches of queries run faiss's
own OpenMP threads over the queries, shard after shard. The answer depends on ``shards``, never
on the thread count.
"""

from __future__ import annotations

import math
import os
import threading
from typing import Any

import numpy as np
import scipy.sparse as sp

from semrec import _approximate as approx
from semrec import _validation as check
from semrec._threads import resolve_num_threads
from semrec.similarity import ItemIndex

_FORMAT = "semrec.PQIndex"
_VERSION = 2  # 2: the codes are shards behind a header (see _packed); 1: one faiss index
_MAGIC = b"semrec.PQshards\n"  # starts the codes of a sharded index (a faiss index starts "I")
_MAX_SHARDS = 256
_CODE_BITS = 4  # fast scan: 16 centroids per sub-space, looked up in SIMD registers
_KSUB = 1 << _CODE_BITS
_TRAIN_SAMPLE = 65536  # items the codebooks are trained on (a seeded sample)
# Codes per block of the scan: 64 scanned 500k items 10% faster than faiss's default 32 with
# both AVX-512 and AVX2 (128: faster with AVX-512, 13% slower with AVX2).
_BLOCK = 64


def _seed(value: Any) -> int:
    """A k-means seed: an int in [0, 2**31) (faiss takes a C int)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"random_state must be an int, got {type(value).__name__}")
    if not 0 <= value < 2**31:
        raise ValueError(f"random_state must be in [0, 2**31), got {value}")
    return int(value)


def _padded_dim(dim: int, m: int) -> int:
    """Dimensions after zero padding to ``m`` equal sub-spaces (zeros change no product)."""
    return m * math.ceil(dim / m)


def _packed(blobs: list[np.ndarray]) -> np.ndarray:
    """Serialised shards as one uint8 array: :data:`_MAGIC`, the shard count and each blob's
    length (little-endian uint64), then the blobs."""
    head = np.frombuffer(_MAGIC, np.uint8)
    sizes = np.array([len(blobs), *(b.size for b in blobs)], dtype="<u8").view(np.uint8)
    return np.concatenate([head, sizes, *blobs])


def _unpacked(codes: np.ndarray) -> list[np.ndarray]:
    """The shards' blobs of :func:`_packed` (a bare faiss index is one shard, as saved by
    semrec before shards); ValueError when the header does not describe the bytes."""
    codes = np.ascontiguousarray(codes, dtype=np.uint8).reshape(-1)
    if codes[: len(_MAGIC)].tobytes() != _MAGIC:
        return [codes]
    start = len(_MAGIC) + 8
    count = int(codes[len(_MAGIC) : start].view("<u8")[0]) if codes.size >= start else 0
    if not 1 <= count <= _MAX_SHARDS or codes.size < start + 8 * count:
        raise ValueError(f"codes: the header names {count} shards (expected 1-{_MAX_SHARDS})")
    sizes = codes[start : start + 8 * count].view("<u8")
    if (sizes == 0).any() or (sizes > codes.size).any():
        raise ValueError("codes: a shard's size in the header is 0 or beyond the array")
    ends = start + 8 * count + np.cumsum(sizes.astype(np.int64))
    if ends[-1] != codes.size:
        raise ValueError(f"codes: the shards hold {ends[-1]} bytes, the array {codes.size}")
    return [codes[e - int(s) : e] for s, e in zip(sizes, ends, strict=True)]


class PQIndex:
    """Approximate nearest-neighbour search by a scan of product-quantised codes, exact scores.

    Every item is coded in ``m`` sub-spaces of 4 bits each (``m / 2`` bytes); a query ranks all
    codes (faiss fast scan, ``shards`` parts side by side), and its best ``rerank`` (at least
    ``2 * k``, plus one per item it excludes; each shard its share) are re-scored exactly by
    semrec's kernel from the wrapped :class:`ItemIndex`'s float32 vectors.
    :func:`semrec.topk` accepts this index in place of the item matrix, with the same
    ``exclude`` and ``candidates`` semantics: the scan goes deeper by the excluded items (and by
    the catalogue's share a shared candidate list leaves out), then filters; a small candidate
    list is searched exactly.

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
        at 1000 and 0.98 at 2000, a query at 1000 taking 1.5-1.7 ms on 2 threads (2 shards,
        queries back to back; 2.6-3.3 ms alternating with exact scans, benchmarks/README.md);
        over 200k, 0.93 at 200 and 0.99 at 1000.
    random_state : int, default 0
        Seeds the training sample and the k-means.
    shards : int, default 2
        Parts the codes are split into (item ``i`` in part ``i % shards``): one query scans
        them on up to ``shards`` threads. Results depend on it (each part proposes its share
        of ``rerank``), not on the threads; 1 reproduces an index of one part.
    num_threads : int, optional
        Threads for training, adding and searching (one query: at most ``shards``).

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
        shards: int = 2,
        num_threads: int | None = None,
    ) -> None:
        faiss = approx.load_faiss("PQIndex")
        if isinstance(items, ItemIndex):
            if metric is not None and metric != items.metric:
                raise ValueError(f"metric={metric!r} differs from the ItemIndex's {items.metric!r}")
            self.items = items
        else:
            self.items = ItemIndex(items, metric=metric or "cosine", num_threads=num_threads)
        dim = self.items.dim
        self.m = math.ceil(dim / 4) if m is None else check.positive_int(m, "m")
        if self.m > dim:
            raise ValueError(f"m={self.m} sub-spaces exceed the {dim} dimensions; use m <= {dim}")
        self.rerank = check.positive_int(rerank, "rerank")
        self.random_state = _seed(random_state)
        shards = check.positive_int(shards, "shards")
        if shards > _MAX_SHARDS:
            raise ValueError(f"shards must be at most {_MAX_SHARDS}, got {shards}")
        self._lock = threading.Lock()
        codes = faiss.IndexPQFastScan(
            _padded_dim(dim, self.m), self.m, _CODE_BITS, faiss.METRIC_INNER_PRODUCT, _BLOCK
        )
        codes.pq.cp.seed = self.random_state
        codes.pq.cp.min_points_per_centroid = 1  # small catalogues train quietly
        self._shards = [codes] * shards  # one untrained index until the codebooks exist
        self._add_codes(0, num_threads)

    @property
    def metric(self) -> str:
        return self.items.metric

    @property
    def shards(self) -> int:
        """Parts the codes are split into (scanned side by side)."""
        return len(self._shards)

    def __len__(self) -> int:
        return len(self.items)

    def __repr__(self) -> str:
        return (
            f"PQIndex(n_items={len(self)}, dim={self.items.dim}, metric={self.items.metric!r}, "
            f"m={self.m}, rerank={self.rerank}, shards={self.shards})"
        )

    def settings(self) -> dict[str, int]:
        """``m``, ``rerank`` and ``random_state``, as given to (or chosen by) the constructor
        (the shard count travels with :meth:`code_bytes`).

        Examples
        --------
        >>> import numpy as np, semrec
        >>> semrec.PQIndex(np.eye(8, dtype=np.float32), m=4).settings()["m"]
        4
        """
        return {"m": self.m, "rerank": self.rerank, "random_state": self.random_state}

    def code_bytes(self) -> np.ndarray:
        """The codebooks and codes of every shard serialised by faiss behind a short header
        (uint8), for :meth:`from_bytes`.

        Examples
        --------
        >>> import numpy as np, semrec
        >>> pq = semrec.PQIndex(np.eye(8, dtype=np.float32))
        >>> again = semrec.PQIndex.from_bytes(pq.items, pq.code_bytes(), **pq.settings())
        >>> len(again)
        8
        """
        faiss = approx.load_faiss("PQIndex")
        with self._lock:
            parts = self._shards if self._shards[0].is_trained else self._shards[:1]
            blobs = [np.asarray(faiss.serialize_index(p), dtype=np.uint8) for p in parts]
        return _packed(blobs * (len(self._shards) // len(parts)))

    @classmethod
    def from_bytes(
        cls, items: ItemIndex, codes: np.ndarray, *, m: int, rerank: int, random_state: int
    ) -> PQIndex:
        """An index over ``items`` from codes serialised by :meth:`code_bytes` over them.

        Raises ValueError when ``codes`` are not faiss fast-scan PQ codes of ``len(items)``
        vectors of ``items.dim`` dimensions in ``m`` sub-spaces.
        """
        faiss = approx.load_faiss("PQIndex")
        if not isinstance(items, ItemIndex):
            raise TypeError(f"items must be a semrec.ItemIndex, got {type(items).__name__}")
        m = check.positive_int(m, "m")
        blobs = _unpacked(codes)
        parts = [approx.deserialized(blob, "PQIndex") for blob in blobs]
        for part in parts:
            if not isinstance(part, faiss.IndexPQFastScan) or part.metric_type != (
                faiss.METRIC_INNER_PRODUCT
            ):
                raise ValueError(f"codes are a {type(part).__name__}, not inner-product PQ codes")
        n, count, dim = len(items), len(parts), _padded_dim(items.dim, m)
        total = sum(p.ntotal for p in parts)
        trained = {p.is_trained for p in parts}
        untrained = trained == {False} and total == 0 and n < _KSUB
        coded = trained == {True} and [p.ntotal for p in parts] == _shard_sizes(n, count)
        shapes = {(p.d, p.pq.M, p.pq.nbits) for p in parts}
        if not (coded or untrained) or shapes != {(dim, m, _CODE_BITS)}:
            p = parts[0]
            raise ValueError(
                f"codes hold {total} vectors of dimension {p.d} in {p.pq.M} sub-spaces "
                f"({count} shards), the items {n} of dimension {dim} (padded) in {m}"
            )
        books = [faiss.vector_to_array(p.pq.centroids) for p in parts]
        if any(not np.array_equal(books[0], b) for b in books[1:]):
            raise ValueError("codes: the shards were coded with different codebooks")
        self = cls.__new__(cls)
        self.items = items
        self.m = m
        self.rerank = check.positive_int(rerank, "rerank")
        self.random_state = _seed(random_state)
        self._lock = threading.Lock()
        self._shards = [parts[0]] * count if untrained else parts
        return self

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Pickled as its ItemIndex and the serialised codes (sent to worker processes).
        return _unpickle_pq, (self.items, self.code_bytes(), self.settings())

    def _code_rows(self, x: np.ndarray) -> np.ndarray:
        """Rows as the codes see them: unit for cosine, zero-padded to ``m`` equal sub-spaces."""
        x = approx.unit_rows(x, self.items.metric)
        pad = self._shards[0].d - x.shape[1]
        return np.ascontiguousarray(np.pad(x, ((0, 0), (0, pad))) if pad else x, np.float32)

    def _add_codes(self, start: int, num_threads: int | None) -> None:
        """Code the items from id ``start`` on, each into shard ``id % shards``; the codebooks
        are trained on the first :data:`_KSUB` or more items (until then every search is exact)
        and shared by every shard."""
        faiss = approx.load_faiss("PQIndex")
        faiss.omp_set_num_threads(resolve_num_threads(num_threads))
        x = self.items.vectors
        if not self._shards[0].is_trained:
            if len(x) < _KSUB:
                return
            rng = np.random.default_rng(self.random_state)
            take = rng.choice(x.shape[0], min(x.shape[0], _TRAIN_SAMPLE), replace=False)
            self._shards[0].train(self._code_rows(x[np.sort(take)]))
            blob = faiss.serialize_index(self._shards[0])  # trained, empty: one copy per shard
            self._shards = [self._shards[0]] + [
                faiss.deserialize_index(blob) for _ in self._shards[1:]
            ]
            start = 0
        count = len(self._shards)
        for s, part in enumerate(self._shards):
            first = start + (s - start) % count  # this shard's first new item
            for b in range(first, x.shape[0], count << 16):  # blocks: the padded copy stays small
                part.add(self._code_rows(x[b : b + (count << 16) : count]))

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
        with self._lock:
            ids = self.items.add(vectors, num_threads=num_threads)
            if ids.size:
                self._add_codes(int(ids[0]), num_threads)
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
        req = approx.request(self.items, queries, k, exclude, candidates, num_threads)
        if isinstance(req, tuple):
            return req
        n = len(self.items)
        depth = self.search_depth(req.k, req.most_excluded())
        if req.allowed is not None:  # the scan cannot filter: deeper by the share left out
            depth = math.ceil(depth * n / max(1, req.allowed.size))
        shards = self._shards  # a snapshot: items added during this search are not searched
        if depth >= n or [p.ntotal for p in shards] != _shard_sizes(n, len(shards)):
            return approx.exactly(self.items, req, req.allowed)
        faiss = approx.load_faiss("PQIndex")
        rows = self._code_rows(req.queries)
        if rows.shape[0] == 1:  # one query: shards side by side, each re-scoring its own

            def one_shard(s: int) -> tuple[np.ndarray, np.ndarray]:
                faiss.omp_set_num_threads(1)
                ids = _proposed(shards, s, rows, depth, n)[0]
                ids = ids[ids >= 0]
                if req.allowed is not None:
                    ids = ids[np.isin(ids, req.allowed, assume_unique=True)]
                return approx.best_of(self.items, req, ids)

            tasks = [lambda s=s: one_shard(s) for s in range(len(shards))]
            best = approx.merged(approx.in_parallel(tasks, req.threads), req.k)
            return approx.shaped(best, req.single)
        faiss.omp_set_num_threads(req.threads)  # over the queries
        found = np.hstack([_proposed(shards, s, rows, depth, n) for s in range(len(shards))])
        if req.allowed is not None:
            found[~np.isin(found, req.allowed)] = -1
        return approx.rescored(self.items, req, found)

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
        approx.save(
            path, _FORMAT, _VERSION, self.items, self.settings(), "codes", self.code_bytes()
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, num_threads: int | None = None) -> PQIndex:
        """Load an index written by :meth:`save`; damage raises :class:`semrec.FormatError`."""
        names = ("m", "rerank", "random_state")
        return approx.load(path, _FORMAT, _VERSION, "codes", names, cls.from_bytes, num_threads)


def _shard_sizes(n: int, count: int) -> list[int]:
    """Items in each of ``count`` shards of ``n`` items (item ``i`` in shard ``i % count``)."""
    return [(n - s + count - 1) // count for s in range(count)]


def _proposed(shards: list[Any], s: int, rows: np.ndarray, depth: int, n: int) -> np.ndarray:
    """Shard ``s``'s best ids for each row (-1: none): its share of ``depth``, as many as its
    share of the ``n`` items."""
    take = min(shards[s].ntotal, math.ceil(depth * shards[s].ntotal / n))
    if take == 0:
        return np.empty((rows.shape[0], 0), dtype=np.int64)
    local = shards[s].search(rows, take)[1]
    return np.where(local >= 0, local * len(shards) + s, -1)


def _unpickle_pq(items: ItemIndex, codes: np.ndarray, settings: dict[str, int]) -> PQIndex:
    return PQIndex.from_bytes(items, codes, **settings)
