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

faiss ships its own OpenMP runtime; searches use ``num_threads`` of it.
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
_VERSION = 1
_CODE_BITS = 4  # fast scan: 16 centroids per sub-space, looked up in SIMD registers
_KSUB = 1 << _CODE_BITS
_TRAIN_SAMPLE = 65536  # items the codebooks are trained on (a seeded sample)


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


class PQIndex:
    """Approximate nearest-neighbour search by a scan of product-quantised codes, exact scores.

    Every item is coded in ``m`` sub-spaces of 4 bits each (``m / 2`` bytes); a query ranks all
    codes (faiss fast scan), and its best ``rerank`` (at least ``2 * k``, plus one per item it
    excludes) are re-scored exactly by semrec's kernel through the wrapped :class:`ItemIndex`.
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
        at 1000 and 0.98 at 2000, a query taking 3.2-5.7 ms (benchmarks/README.md); over 200k,
        0.93 at 200 and 0.99 at 1000.
    random_state : int, default 0
        Seeds the training sample and the k-means.
    num_threads : int, optional
        Threads for training, adding and searching.

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
        self._lock = threading.Lock()
        self._codes = faiss.IndexPQFastScan(
            _padded_dim(dim, self.m), self.m, _CODE_BITS, faiss.METRIC_INNER_PRODUCT
        )
        self._codes.pq.cp.seed = self.random_state
        self._codes.pq.cp.min_points_per_centroid = 1  # small catalogues train quietly
        self._add_codes(self.items.vectors, num_threads)

    @property
    def metric(self) -> str:
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
        """The codebooks and codes serialised by faiss (uint8), for :meth:`from_bytes`.

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
            return np.asarray(faiss.serialize_index(self._codes), dtype=np.uint8)

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
        loaded = approx.deserialized(codes, "PQIndex")
        if not isinstance(loaded, faiss.IndexPQFastScan) or loaded.metric_type != (
            faiss.METRIC_INNER_PRODUCT
        ):
            raise ValueError(f"codes are a {type(loaded).__name__}, not inner-product PQ codes")
        dim = _padded_dim(items.dim, m)
        untrained = not loaded.is_trained and loaded.ntotal == 0 and len(items) < _KSUB
        coded = loaded.is_trained and loaded.ntotal == len(items)
        if not (coded or untrained) or loaded.d != dim or loaded.pq.M != m or loaded.pq.nbits != 4:
            raise ValueError(
                f"codes hold {loaded.ntotal} vectors of dimension {loaded.d} in {loaded.pq.M} "
                f"sub-spaces, the items {len(items)} of dimension {dim} (padded) in {m}"
            )
        self = cls.__new__(cls)
        self.items = items
        self.m = m
        self.rerank = check.positive_int(rerank, "rerank")
        self.random_state = _seed(random_state)
        self._lock = threading.Lock()
        self._codes = loaded
        return self

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Pickled as its ItemIndex and the serialised codes (sent to worker processes).
        return _unpickle_pq, (self.items, self.code_bytes(), self.settings())

    def _code_rows(self, x: np.ndarray) -> np.ndarray:
        """Rows as the codes see them: unit for cosine, zero-padded to ``m`` equal sub-spaces."""
        x = approx.unit_rows(x, self.items.metric)
        pad = self._codes.d - x.shape[1]
        return np.ascontiguousarray(np.pad(x, ((0, 0), (0, pad))) if pad else x, np.float32)

    def _add_codes(self, x: np.ndarray, num_threads: int | None) -> None:
        """Code rows ``x`` (the items' last rows); the codebooks are trained on the first
        :data:`_KSUB` or more items (until then every search is exact)."""
        faiss = approx.load_faiss("PQIndex")
        faiss.omp_set_num_threads(resolve_num_threads(num_threads))
        if not self._codes.is_trained:
            if len(self.items) < _KSUB:
                return
            x = self.items.vectors  # everything so far
            rng = np.random.default_rng(self.random_state)
            take = rng.choice(x.shape[0], min(x.shape[0], _TRAIN_SAMPLE), replace=False)
            self._codes.train(self._code_rows(x[np.sort(take)]))
        for s in range(0, x.shape[0], 1 << 16):  # blocks: the padded copy stays small
            self._codes.add(self._code_rows(x[s : s + (1 << 16)]))

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
                self._add_codes(self.items.vectors[ids[0] :], num_threads)
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
        if depth >= n or self._codes.ntotal != n:
            return approx.exactly(self.items, req, req.allowed)
        faiss = approx.load_faiss("PQIndex")
        faiss.omp_set_num_threads(req.threads)
        found = self._codes.search(self._code_rows(req.queries), depth)[1]
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


def _unpickle_pq(items: ItemIndex, codes: np.ndarray, settings: dict[str, int]) -> PQIndex:
    return PQIndex.from_bytes(items, codes, **settings)
