"""What semrec's approximate indexes (:class:`semrec.HNSWIndex`, :class:`semrec.PQIndex`) share:
loading faiss, the unit rows a cosine index is built on, one check of a search's queries and
filters, and the exact re-scoring of the items the approximate pass proposed (so the returned
scores are the exact kernel's, bitwise, and ties still go to the lower id).
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, cast

import numpy as np
import scipy.sparse as sp

from semrec import _candidates as candidate_lists
from semrec import _persist as persist
from semrec import _validation as check
from semrec._threads import resolve_num_threads
from semrec.similarity import ItemIndex, topk, topk_of_proposals

# A shared candidate list this small (or this share of the catalogue) is searched exactly.
EXACT_CANDIDATES = 4096
EXACT_SHARE = 0.02
# Excluded items of a query deepen its approximate search by as many (a user's seen items crowd
# the neighbourhood of their profile), at most by this much.
MAX_FILTER_DEPTH = 2048
# HNSW graphs larger than these only cost memory and time (faiss takes C ints; m = 10**9 would
# ask for terabytes, ef_construction = 2**31 makes every insertion a full scan).
MAX_M = 1024
MAX_EF = 2**20


def setting(kind: str, name: str, value: Any) -> int:
    """One setting of an approximate index ``kind`` (``"hnsw"``, ``"pq"``) checked as far as
    it can be before the index sees its items: a positive int; an HNSW graph's ``m`` in [2,
    1024] (one neighbour per node gives no levels: faiss crashes on it), its ``ef_construction``
    and ``ef_search`` at most 2**20. (A PQIndex's ``m`` at most the dimension: checked once the
    items are known.)"""
    value = check.positive_int(value, name)
    if kind == "hnsw":
        most = MAX_M if name == "m" else MAX_EF
        if value > most:
            raise ValueError(f"{name} must be <= {most}, got {value}")
        if name == "m" and value < 2:
            raise ValueError(f"m must be >= 2 (neighbours per node), got {value}")
    return value


def load_faiss(what: str) -> Any:
    """The faiss module, or an ImportError saying how to install it."""
    try:
        import faiss
    except ImportError:
        raise ImportError(
            f"semrec.{what} needs faiss: pip install 'semrec[ann]' (or pip install faiss-cpu)"
        ) from None
    return faiss


@contextlib.contextmanager
def faiss_threads(faiss: Any, threads: int) -> Iterator[None]:
    """faiss's OpenMP thread count for one call, the previous one restored after: once torch
    is loaded faiss shares its OpenMP runtime, and a count left set would change torch's
    threads for the whole process."""
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def unit_rows(x: np.ndarray, metric: str) -> np.ndarray:
    """``x`` as the faiss index sees it: rows normalised for cosine (zero rows stay zero)."""
    if metric != "cosine":
        return x
    norms = np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0).astype(np.float32)


def blob_bytes(blob: Any, name: str, writer: str) -> np.ndarray:
    """A serialised index (``writer``'s output) as a 1-D uint8 array: a uint8 array, or a
    bytes-like object read as it is (no copy)."""
    if isinstance(blob, bytes | bytearray | memoryview):
        return np.frombuffer(blob, dtype=np.uint8)
    if isinstance(blob, np.ndarray) and blob.dtype == np.uint8:
        return np.ascontiguousarray(blob).reshape(-1)
    got = f"an array of {blob.dtype}" if isinstance(blob, np.ndarray) else type(blob).__name__
    raise TypeError(f"{name} must be a uint8 array or bytes, as {writer}() returns; got {got}")


class FaissLayout:
    """A walk through a serialised faiss index before faiss reads it: faiss allocates (and
    zero-fills) whatever size a blob declares, up to 1 TiB, before reading the bytes, so every
    declared size is checked against the bytes that follow; ValueError naming ``name``."""

    def __init__(self, blob: np.ndarray, name: str) -> None:
        self.view, self.name, self.pos = memoryview(blob), name, 0

    def fields(self, fmt: str) -> tuple[Any, ...]:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.view):
            raise ValueError(f"{self.name}: {len(self.view)} bytes end inside the index")
        out = struct.unpack_from(fmt, self.view, self.pos)
        self.pos += size
        return out

    def header(self, fourcc: bytes, what: str) -> tuple[int, int]:
        """A faiss index header of type ``fourcc`` (inner product): its dimension and size."""
        (kind,) = self.fields("<4s")
        if kind != fourcc:
            raise ValueError(f"{self.name}: not {what} (it starts with {kind!r})")
        d, ntotal, _, _, _, metric = self.fields("<iqqqBi")
        if metric != 0:  # faiss's METRIC_INNER_PRODUCT
            raise ValueError(f"{self.name}: not {what} (faiss metric {metric})")
        return d, ntotal

    def vector(self, itemsize: int) -> int:
        """Skip a vector (its uint64 length, then its entries): its length."""
        (count,) = self.fields("<Q")
        left = len(self.view) - self.pos
        if count > left // itemsize:
            raise ValueError(
                f"{self.name} is damaged: a part declares {count * itemsize} bytes where "
                f"{left} remain"
            )
        self.pos += count * itemsize
        return int(count)

    def end(self) -> None:
        if self.pos != len(self.view):
            raise ValueError(f"{self.name}: {len(self.view) - self.pos} bytes after the index")


def deserialized(blob: np.ndarray, what: str, name: str) -> Any:
    """A faiss index from the serialised bytes ``name`` (their layout checked by
    :class:`FaissLayout` first); ValueError when faiss cannot read them."""
    faiss = load_faiss(what)
    try:
        return faiss.deserialize_index(blob)
    except RuntimeError:  # faiss's message is C++ internals: file paths and function names
        raise ValueError(f"{name} is damaged: faiss cannot read it") from None
    except MemoryError:  # a size the layout check could not see
        raise ValueError(f"{name} is damaged: it declares more memory than there is") from None


@dataclass
class Request:
    """One checked search: float32 queries, ``k``, threads and the filters."""

    queries: np.ndarray
    single: bool
    k: int
    threads: int
    exclude: Any  # as topk takes it (CSR, or one query's checked ids)
    excluded: tuple[np.ndarray, np.ndarray] | None  # (indptr, ids) per query
    allowed: np.ndarray | None  # a shared candidate list (sorted ids), searched approximately

    def excluded_of(self, i: int) -> np.ndarray:
        """Query ``i``'s excluded ids (int64)."""
        if self.excluded is None:
            return np.empty(0, dtype=np.int64)
        indptr, ids = self.excluded
        return ids[indptr[i] : indptr[i + 1]].astype(np.int64)

    def most_excluded(self) -> int:
        """The largest number of ids one query excludes."""
        return 0 if self.excluded is None else int(np.diff(self.excluded[0]).max(initial=0))

    def excluded_counts(self) -> np.ndarray:
        """How many ids each query excludes (int64)."""
        if self.excluded is None:
            return np.zeros(self.queries.shape[0], dtype=np.int64)
        return np.diff(self.excluded[0])

    def eligible(self, n: int) -> np.ndarray:
        """How many of ``n`` items each query may be given: the catalogue, or the shared
        candidates, less the distinct ids it excludes among them."""
        total = n if self.allowed is None else self.allowed.size
        if self.excluded is None:
            return np.full(self.queries.shape[0], total, dtype=np.int64)
        indptr, ids = self.excluded  # each row sorted: a repeat follows its first
        counted = np.ones(ids.size, dtype=bool)
        counted[1:] = ids[1:] != ids[:-1]
        counted[indptr[:-1][indptr[:-1] < ids.size]] = True  # a row's first id
        if self.allowed is not None:
            place = np.minimum(np.searchsorted(self.allowed, ids), self.allowed.size - 1)
            counted &= self.allowed[place] == ids
        ends = np.concatenate([[0], np.cumsum(counted)])
        return total - (ends[indptr[1:]] - ends[indptr[:-1]])


def request(
    items: ItemIndex,
    queries: np.ndarray,
    k: int,
    exclude: Any,
    candidates: Any,
    num_threads: int | None,
) -> Request | tuple[np.ndarray, np.ndarray]:
    """Check a search (the arguments of :func:`semrec.topk`); the exact answer when candidate
    lists make the exact search the cheaper one."""
    q, single = check.as_float32_matrix(queries, "queries", allow_1d=True)
    n = len(items)
    if n == 0:
        raise ValueError("the index is empty (0 items); add items before searching")
    k = check.result_width(k, q.shape[0], n)
    threads = resolve_num_threads(num_threads)
    if q.shape[1] != items.dim:
        raise ValueError(
            f"queries have dimension {q.shape[1]} but items have dimension {items.dim}"
        )
    shape = (q.shape[0], n)
    ex = None if exclude is None else check.exclusions(exclude, "exclude", shape, q.shape[0] == 1)
    if ex is not None and not sp.issparse(exclude):
        exclude = ex[1]  # one query's ids, checked and sorted: topk takes them as they are
    req = Request(q, single, k, threads, exclude, ex, None)
    if candidates is None:  # a click's usual search: nothing more to check
        return req
    if sp.issparse(candidates) or candidate_lists.is_padded(candidates):
        # Per-query candidate lists: exact over them (their cost is their length).
        return exactly(items, req, candidates)
    req.allowed = np.unique(check.item_ids(candidates, "candidates", n))
    if req.allowed.size <= max(EXACT_CANDIDATES, EXACT_SHARE * n):
        return exactly(items, req, req.allowed)
    return req


def exactly(items: ItemIndex, req: Request, candidates: Any = None) -> tuple[np.ndarray, ...]:
    """The exact answer to ``req`` (over ``candidates`` when given)."""
    found = topk(
        req.queries,
        items,
        req.k,
        exclude=req.exclude,
        candidates=candidates,
        num_threads=req.threads,
    )
    return shaped(found, req.single)


def rescored(
    items: ItemIndex, req: Request, found: np.ndarray, redo: np.ndarray | None = None
) -> tuple[np.ndarray, ...]:
    """The exact top-k of the proposed ids ``found`` (one row per query, -1: none; proposals
    already inside ``req.allowed``), the exclusions applied: :func:`semrec.topk`'s per-query
    candidates path, which scores each proposed row where it lies (prefetched; one query's list
    split over the request's threads). Then :func:`completed` (``redo``: rows to search
    exactly whatever they found)."""
    result = topk_of_proposals(
        req.queries, items, found, req.k, req.excluded, req.threads, queries_checked=True
    )
    return shaped(completed(items, req, result, redo), req.single)


def completed(
    items: ItemIndex,
    req: Request,
    result: tuple[np.ndarray, np.ndarray],
    redo: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``result`` (2-D) with the exact answer in every row that found fewer than ``min(k,
    eligible items)`` ids (its filters left the approximate pass too few) or is marked in
    ``redo``: padding only where fewer than ``k`` items are eligible. Each row's answer depends
    on that row alone, never on the batch."""
    ids, scores = result
    if redo is None and ids.size and ids.min() >= 0:  # the usual case: every row full
        return result
    short = (ids >= 0).sum(axis=1) < req.k
    if redo is not None:
        short |= redo
    if not short.any():
        return result
    rows = np.flatnonzero(short)
    want = np.minimum(req.k, req.eligible(len(items))[rows])
    again = (ids[rows] >= 0).sum(axis=1) < want
    rows = rows[again if redo is None else again | redo[rows]]
    if not rows.size:
        return result
    while True:
        n = len(items)
        try:
            exact = topk(
                req.queries[rows],
                items,
                req.k,
                exclude=_exclusions_of(req, rows, n),
                candidates=req.allowed,
                num_threads=req.threads,
            )
        except ValueError:
            if len(items) == n:
                raise
            continue  # an add between reading n and the search widened the catalogue
        break
    ids[rows], scores[rows] = exact  # fresh arrays of this search: filled in place
    return ids, scores


def _exclusions_of(req: Request, rows: np.ndarray, n: int) -> sp.csr_array | None:
    """The exclusions of the request's ``rows``, as a CSR over a catalogue of ``n`` items."""
    if req.excluded is None:
        return None
    indptr, excluded = req.excluded
    starts, lengths = indptr[rows], indptr[rows + 1] - indptr[rows]
    sub_indptr = np.concatenate([[0], np.cumsum(lengths)])
    take = np.repeat(starts - sub_indptr[:-1], lengths) + np.arange(sub_indptr[-1])
    return sp.csr_array(
        (np.ones(take.size, np.float32), excluded[take], sub_indptr), shape=(rows.size, n)
    )


def found_items(
    items: ItemIndex,
    queries: np.ndarray,
    exact: tuple[np.ndarray, np.ndarray],
    found: np.ndarray,
    exclude: Any = None,
    num_threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Which ids of ``found`` (a row per query, ``-1``: none) count towards their query's
    recall, as a mask of ``found``'s shape, and how many items each query has to find (its
    ``exact`` top-k, ids and scores as :func:`semrec.topk` returns them, less the padding).

    An id counts when its exact score is at least the query's k-th exact score: an item that
    ties the last exact one is as good an answer as the one the lower-id rule kept (identical
    texts embed alike). The scores are :func:`semrec.topk`'s over the found ids, bitwise those
    of the exact search; padding, an excluded id and a repeat of an id never count.
    """
    exact_ids, exact_scores = np.atleast_2d(exact[0]), np.atleast_2d(exact[1])
    found = np.atleast_2d(found)
    wanted = (exact_ids >= 0).sum(axis=1)
    if not found.size:
        return np.zeros(found.shape, dtype=bool), wanted
    ids, scores = topk(
        np.atleast_2d(queries),
        items,
        found.shape[1],  # every distinct found id, scored
        exclude=exclude,
        candidates=found,
        num_threads=num_threads,
    )
    last = exact_scores[np.arange(wanted.size), np.maximum(wanted - 1, 0)]
    good = (ids >= 0) & (scores >= np.where(wanted > 0, last, np.inf)[:, None])
    # Match (query, id) pairs: a key per pair, each id's first place in its row only.
    stride = int(found.max(initial=0)) + 1
    rows = np.arange(found.shape[0], dtype=np.int64)[:, None]
    keys = np.where(found >= 0, rows * stride + found, -1).ravel()
    order = np.argsort(keys, kind="stable")
    first = np.ones(keys.size, dtype=bool)
    first[order[1:]] = keys[order[1:]] != keys[order[:-1]]
    hit = np.isin(keys, (rows * stride + ids)[good]) & first & (keys >= 0)
    return hit.reshape(found.shape), wanted


def found_shares(mask: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Each query's recall from :func:`found_items`: the items it found that count, at most
    the ``wanted`` number, over that number; queries with nothing to find are left out."""
    has = wanted > 0
    return np.minimum(mask.sum(axis=1), wanted)[has] / wanted[has]


def recall_bound(total: Any, squares: Any, count: int, confidence: float) -> Any:
    """One-sided lower confidence bounds on the mean recall of queries drawn like the tuning
    ones, from the sums of ``count`` per-query recalls and of their squares (numbers, or
    arrays with one sum per setting): the sample mean less ``z(confidence)`` standard errors
    (normal approximation; ``confidence`` 0.5 gives the mean itself). A single query has no
    spread to measure, so it is given the largest variance a recall with its mean can have,
    ``mean * (1 - mean)``."""
    mean = total / count
    if count > 1:
        variance = np.maximum(squares - count * mean**2, 0.0) / (count - 1)
    else:
        variance = mean * (1.0 - mean)
    z = NormalDist().inv_cdf(confidence)
    return mean - z * np.sqrt(variance / count)


def measured_recall(
    index: Any, queries: Any, k: Any, exclude: Any, num_threads: int | None
) -> float:
    """Recall@k of ``index.search`` against the exact search of ``index.items``, ties at
    the k-th exact score counted as found (:func:`found_items`); 1 when no query has
    anything to find."""
    found = index.search(queries, k, exclude=exclude, num_threads=num_threads)[0]
    exact = topk(queries, index.items, k, exclude=exclude, num_threads=num_threads)
    shares = found_shares(*found_items(index.items, queries, exact, found, exclude, num_threads))
    return float(shares.mean()) if shares.size else 1.0


class Measurable:
    """What semrec's approximate indexes share besides their search: recall on given queries."""

    def recall(
        self,
        queries: np.ndarray,
        k: int = 10,
        *,
        exclude: sp.csr_array | sp.csr_matrix | None = None,
        num_threads: int | None = None,
    ) -> float:
        """Recall@k of ``search`` on these queries: the mean share of each query's exact top
        ``k`` (the wrapped :class:`semrec.ItemIndex` searched exactly) that it returns.

        Ties count: a returned item whose exact score is at least the query's k-th exact
        score counts as found, whatever its id (duplicate items score alike, and the exact
        search keeps the lower ids among them). Padding and repeated ids never count, and a
        query finds at most as many items as its exact top ``k`` holds.

        Recall depends on the data: measure it on queries like the ones to be served (a
        model's user vectors, say) before relying on it; ``tune`` picks the setting.

        Examples
        --------
        >>> import numpy as np, semrec
        >>> vectors = np.random.default_rng(0).standard_normal((2000, 16)).astype(np.float32)
        >>> semrec.PQIndex(vectors, rerank=2000).recall(vectors[:20], k=5)
        1.0
        >>> semrec.HNSWIndex(vectors, ef_search=512).recall(vectors[:20], k=5)
        1.0
        """
        return measured_recall(self, queries, k, exclude, num_threads)


def tuning_request(
    items: ItemIndex,
    queries: Any,
    k: Any,
    target: Any,
    confidence: Any,
    num_threads: int | None,
) -> tuple[Request, float, float, tuple[np.ndarray, np.ndarray]]:
    """The checked arguments of an index's ``tune``: the request, the target recall, the
    confidence and the exact top-k (ids, scores) of every query (2-D)."""
    target = check.number(target, "target", above=0, maximum=1)
    confidence = check.number(confidence, "confidence", minimum=0.5, below=1)
    # Without candidates a request is never answered on the spot.
    req = cast(Request, request(items, queries, k, None, None, num_threads))
    exact = topk(req.queries, items, req.k, num_threads=req.threads)
    return req, target, confidence, exact


def shaped(result: tuple[np.ndarray, np.ndarray], single: bool) -> tuple[np.ndarray, ...]:
    """One query's row when the query was one vector."""
    ids, scores = result
    return (ids[0], scores[0]) if single and ids.ndim == 2 else (ids, scores)


def save(
    path: str | os.PathLike[str],
    format_name: str,
    version: int,
    items: ItemIndex,
    settings: dict[str, int],
    name: str,
    blob: np.ndarray,
    vectors: np.ndarray | None = None,
) -> None:
    """Save an index's vectors (``items.vectors`` unless given: those ``blob`` was made of),
    settings and serialised state (``blob`` under ``name``) to ``path`` (``.npz`` + JSON
    metadata with a SHA-256 of each array, written atomically, no pickle)."""
    meta = {
        "format": format_name,
        "version": version,
        "metric": items.metric,
        "storage": items.storage,
        **settings,
    }
    vectors = items.vectors if vectors is None else vectors
    persist.write(path, meta, {"vectors": np.ascontiguousarray(vectors), name: blob})


def load(
    path: str | os.PathLike[str],
    format_name: str,
    version: int,
    name: str,
    settings: tuple[str, ...],
    from_bytes: Callable[..., Any],
    num_threads: int | None,
) -> Any:
    """The index :func:`save` wrote, through ``from_bytes(items, blob, **settings)``; damage
    raises :class:`semrec.FormatError`."""
    saved = persist.read(path, format_name, version)
    vectors = saved.array("vectors", np.float32, (None, None))
    blob = saved.array(name, np.uint8, (None,))
    # The metadata first: its own FormatErrors name the field, not the graph or the codes.
    metric, storage = saved.value("metric", str), saved.value("storage", str)
    values = {key: saved.value(key, int) for key in settings}
    try:
        items = ItemIndex(
            vectors, metric=metric, storage=storage, num_threads=num_threads, copy=False
        )
        return from_bytes(items, blob, **values)
    except (TypeError, ValueError) as exc:
        raise saved.error(name, f"does not match the vectors ({exc})") from None
