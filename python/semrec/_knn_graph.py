"""Neighbour graphs over sparse vectors: the weighting, the packed targets and the kernel calls
that :mod:`semrec.knn`'s models are built from (C++: ``cpp/semrec/knn.cpp``).

The compared rows are the "documents", their columns the "terms" (see :mod:`semrec.knn` for the
weightings). Targets are packed once, most frequent first, so that the kernel's accumulator
stays small on power-law data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from semrec import _validation as check
from semrec._histories import runs
from semrec._native import core

_FEW_QUERIES = 64  # graph_rows passes such few queries only the target rows they reach
_ROWS_PER_TASK = 8  # the kernel's (cpp/semrec/knn.cpp kRowsPerTask): rows of one thread's task


def kernel_arrays(m: sp.csr_array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The kernel's view of a CSR: (int64 indptr, int32 indices, float32 data), contiguous."""
    return (
        np.ascontiguousarray(m.indptr, dtype=np.int64),
        np.ascontiguousarray(m.indices, dtype=np.int32),
        np.ascontiguousarray(m.data, dtype=np.float32),
    )


def transpose(m: sp.csr_array, threads: int = 1) -> sp.csr_array:
    """The transpose as CSR, canonical (rows sorted, no duplicates) when ``m`` is: the kernel's
    parallel counting sort writes each row in input-row order (scipy's serial one takes
    seconds at scale)."""
    indptr, indices, data = core.csr_transpose(*kernel_arrays(m), m.shape[1], threads)
    out = sp.csr_array((m.shape[1], m.shape[0]), dtype=np.float32)
    out.indptr, out.indices, out.data = indptr, indices, data  # no constructor: no re-check
    out.has_sorted_indices = True  # rows are filled in input-row order
    return out


# Interaction weights above this could overflow the float32 similarity sums (their squares,
# summed over up to millions of users, must stay below 3.4e38); below the smallest, their
# squares underflow to 0 and every similarity with them.
LARGEST_WEIGHT = 1e15
SMALLEST_WEIGHT = 1e-15
# With shrinkage s, the similarities of the smallest weights w are about w**2 / s and the
# scores through them w**3 / s: both are kept above SMALLEST_WEIGHT's square, as the
# similarity sums are without shrinkage (float32's smallest normal number is 1.2e-38).
SMALLEST_PRODUCT = SMALLEST_WEIGHT**2


def check_shrinkage(shrinkage: float) -> None:
    """Refuse a ``shrinkage`` (a finite number >= 0) past float32's range: the kernel divides
    by ``|a| |b| + shrinkage`` in float32, where it would be inf (every similarity 0)."""
    if shrinkage > check.FLOAT32_MAX:
        raise ValueError(
            f"shrinkage must be at most {check.FLOAT32_MAX:.3g} (float32, which neighbour "
            f"similarities are computed in), got {shrinkage}"
        )


def smallest_weight(shrinkage: float) -> float:
    """The smallest non-zero weight whose similarities and scores stay clear of float32's
    underflow with ``shrinkage`` (``SMALLEST_WEIGHT`` without shrinkage).

    Examples
    --------
    >>> from semrec._knn_graph import smallest_weight
    >>> smallest_weight(0.0), float(f"{smallest_weight(1000.0):.3g}")
    (1e-15, 1e-09)
    """
    floor = SMALLEST_PRODUCT * float(shrinkage)
    return max(SMALLEST_WEIGHT, floor**0.5, floor ** (1 / 3))


def check_weight_range(weights: np.ndarray, name: str, shrinkage: float = 0.0) -> None:
    """Neighbour similarities square the weights in float32 (and divide them by
    ``|a| |b| + shrinkage``): refuse weights whose squares overflow (past 3.4e38 every
    similarity becomes 0), or whose similarities or scores underflow there."""
    peak = float(weights.max(initial=0.0))
    if peak > LARGEST_WEIGHT:
        raise ValueError(
            f"{name} holds weights up to {peak:.3g}; neighbour similarities square them in "
            f"float32 (past 3.4e38 every similarity becomes 0): keep weights below "
            f"{LARGEST_WEIGHT:g}, e.g. divide them by their maximum"
        )
    low = float(np.abs(weights[weights != 0]).min(initial=np.inf))
    if low < SMALLEST_WEIGHT:
        raise ValueError(
            f"{name} holds weights as small as {low:.3g}; neighbour similarities square them "
            f"in float32 (below ~1e-19 a square is 0, and so is every similarity): keep "
            f"weights above {SMALLEST_WEIGHT:g}, e.g. divide them by their maximum"
        )
    if low < (bound := smallest_weight(shrinkage)):
        most = min(low**2, low**3) / SMALLEST_PRODUCT  # the shrinkage these weights bear
        raise ValueError(
            f"{name} holds weights as small as {low:.3g}; with shrinkage={shrinkage:g} their "
            f"neighbour similarities (~w^2/shrinkage) and scores (~w^3/shrinkage) fall below "
            f"{SMALLEST_PRODUCT:g}, towards float32's underflow: keep weights above "
            f"{bound:.3g} (multiply them all by one constant) or pass shrinkage <= {most:.3g}"
        )


def check_updated_weight(total: float, user: int, item: int, shrinkage: float) -> None:
    """Refuse an update that leaves interaction (user, item) outside the bounds fit keeps."""
    low = smallest_weight(shrinkage)
    if total > LARGEST_WEIGHT or 0 < total < low:
        raise ValueError(
            f"weight: update would make interaction ({user}, {item}) {total:.3g}; neighbour "
            f"similarities square weights in float32 (with shrinkage={shrinkage:g}): keep them "
            f"in [{low:.3g}, {LARGEST_WEIGHT:g}] (or 0)"
        )


def row_sums(indptr: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = np.zeros(indptr.size - 1)
    filled = np.diff(indptr) > 0
    if values.size:
        # Segments start at the non-empty rows only, so each sums exactly its own row.
        out[filled] = np.add.reduceat(values, indptr[:-1][filled])
    return out


def row_norms(m: sp.csr_array) -> np.ndarray:
    return np.sqrt(row_sums(m.indptr, np.square(m.data, dtype=np.float64))).astype(np.float32)


def rows_of(m: sp.csr_array, ids: np.ndarray) -> sp.csr_array:
    """Rows ``ids`` of a canonical ``m``, in that order."""
    return sp.csr_array(m[ids])


class Targets:
    """Documents prepared as the kernel's targets from the transposed (terms x documents)
    weighted matrix: documents renumbered most frequent first, which keeps the hot part of the
    kernel's accumulator small (power-law data put most sums on few targets). The kernel maps
    the numbers back, so results are in the original ids."""

    def __init__(self, docs_t: sp.csr_array, norms: np.ndarray, counts: np.ndarray) -> None:
        self.order = np.argsort(-counts, kind="stable").astype(np.int32)
        self.rank = np.empty_like(self.order)
        self.rank[self.order] = np.arange(self.order.size, dtype=np.int32)
        # Renumbering leaves each row's columns unsorted; the kernel does not need them sorted.
        # Kept in the kernel's dtypes (scipy's constructor would widen the indices to int64):
        # UserKNN's fold_in and update pass it on every call, which must not convert it.
        indptr, indices, data = kernel_arrays(docs_t)
        self.matrix = sp.csr_array(docs_t.shape, dtype=np.float32)
        self.matrix.indptr, self.matrix.indices, self.matrix.data = indptr, self.rank[indices], data
        self.norms = np.ascontiguousarray(norms[self.order])

    def transposed_docs(self) -> sp.csr_array:
        """The terms x documents matrix in the original document ids (rows sorted)."""
        out = sp.csr_array(
            (self.matrix.data, self.order[self.matrix.indices], self.matrix.indptr),
            shape=self.matrix.shape,
        )
        out.sort_indices()
        return out


def padded(graph: sp.csr_array, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k largest values, best first (ties by lower id), padded with -1 / -inf."""
    n = graph.shape[0]
    ids = np.full((n, k), -1, dtype=np.int32)
    scores = np.full((n, k), -np.inf, dtype=np.float32)
    for r in range(n):
        lo, hi = graph.indptr[r], graph.indptr[r + 1]
        cols, vals = graph.indices[lo:hi], graph.data[lo:hi]
        order = np.lexsort((cols, -vals))[:k]
        ids[r, : order.size] = cols[order]
        scores[r, : order.size] = vals[order]
    return ids, scores


def neighbour_columns(graph: sp.csr_array) -> tuple[sp.csr_array, np.ndarray]:
    """``graph`` with its columns renumbered to the ones it uses, and those (sorted): in the
    same order, so a product with their rows sums the same terms in the same order as one with
    every row (and reads O(those rows))."""
    ids = np.unique(graph.indices)
    local = np.searchsorted(ids, graph.indices).astype(np.int32)
    indptr = graph.indptr.astype(np.int64, copy=False)
    shape = (graph.shape[0], ids.size)
    return check.csr_from_arrays(shape, indptr, local, graph.data), ids


def weight_stats(
    doc: np.ndarray, term: np.ndarray, values: np.ndarray, n_docs: int, n_terms: int, weighting: str
) -> tuple[np.ndarray | None, float, np.ndarray | None]:
    """Per-term idf, the mean document length and each document's length, from the entries."""
    if weighting == "none":
        return None, 0.0, None
    lengths = np.bincount(doc, weights=values, minlength=n_docs)
    df = np.bincount(term, minlength=n_terms).astype(np.float64)
    if weighting == "tfidf":
        with np.errstate(divide="ignore"):
            idf = np.where(df > 0, np.log(n_docs / np.maximum(df, 1.0)), 0.0)
    else:
        idf = np.log1p((n_docs - df + 0.5) / (df + 0.5))
    return idf, float(lengths.sum() / n_docs), lengths


def entry_weights(
    x: np.ndarray,
    doc: np.ndarray,
    term: np.ndarray,
    lengths: np.ndarray,
    weighting: str,
    idf: np.ndarray,
    avg_len: float,
    k1: float,
    b: float,
) -> np.ndarray:
    """The weight of each entry (value x of document ``doc`` and term ``term``), float32."""
    x = x.astype(np.float64)
    if weighting == "tfidf":
        return (np.sqrt(x) * idf[term]).astype(np.float32)
    rel = lengths[doc] / (avg_len if avg_len > 0 else 1.0)
    return (x * (k1 + 1.0) / (x + k1 * (1.0 - b + b * rel)) * idf[term]).astype(np.float32)


def apply_weights(
    docs: sp.csr_array,
    weighting: str,
    idf: np.ndarray | None,
    avg_len: float,
    k1: float,
    b: float,
    docs_t: sp.csr_array | None = None,
) -> tuple[sp.csr_array, sp.csr_array | None]:
    """Re-weight a documents x terms matrix (and its transpose, when given) with the fitted
    term statistics; weights are per entry, so both layouts get them without a transpose."""
    if weighting == "none":
        return docs, docs_t
    lengths = row_sums(docs.indptr, docs.data.astype(np.float64))
    rows = np.repeat(np.arange(docs.shape[0]), np.diff(docs.indptr))
    stats = (lengths, weighting, idf, avg_len, k1, b)
    w = entry_weights(docs.data, rows, docs.indices, *stats)
    out = sp.csr_array((w, docs.indices, docs.indptr), shape=docs.shape)
    if docs_t is None:
        return out, None
    rows_t = np.repeat(np.arange(docs_t.shape[0]), np.diff(docs_t.indptr))
    w_t = entry_weights(docs_t.data, docs_t.indices, rows_t, *stats)
    return out, sp.csr_array((w_t, docs_t.indices, docs_t.indptr), shape=docs_t.shape)


class Settings:
    """Hyperparameters for one neighbour computation (k and shrinkage)."""

    def __init__(self, neighbours: int, shrinkage: float) -> None:
        self.neighbours = neighbours
        self.shrinkage = shrinkage


def graph_rows(
    queries: sp.csr_array,
    lo: int,
    hi: int,
    targets: Targets,
    query_norms: np.ndarray,
    settings: Any,
    threads: int,
    *,
    self_ids: np.ndarray,
    progress: Callable[[int], None] | None = None,
) -> sp.csr_array:
    """Neighbour rows lo..hi of ``queries`` (zero-copy slices) among the targets' documents.

    ``query_norms`` covers the rows lo..hi; ``self_ids`` names, per row, one document that is
    never its neighbour (-1: none); ``progress(rows_done)`` is called now and then.
    ``settings.neighbours`` above the number of documents keeps them all (the kernel
    allocates by k: it is clamped, so ``ItemKNN(2**40)`` is ``ItemKNN(n_items)``).
    """
    k = min(int(settings.neighbours), max(targets.order.size, 1))
    q_indptr, q_indices, q_data = kernel_arrays(queries)
    start, stop = q_indptr[lo], q_indptr[hi]
    t_indptr, t_indices, t_data = kernel_arrays(targets.matrix)
    if hi - lo <= _FEW_QUERIES:
        # The kernel packs every target entry it is given: a click's user is given only the
        # rows its terms reach (the same rows, in the same order: the same sums), so that it
        # costs O(those rows), not O(every interaction).
        reached = np.zeros(t_indptr.size - 1, dtype=bool)
        reached[q_indices[start:stop]] = True
        first = t_indptr[:-1]
        lengths = np.where(reached, t_indptr[1:] - first, 0)
        t_indptr, t_indices, t_data = runs(t_indices, t_data, first, lengths)
    if hi - lo <= _ROWS_PER_TASK:  # one task: a second thread would only wait at the barrier
        threads = 1
    me = np.asarray(self_ids, dtype=np.int32)
    me = np.where(me >= 0, targets.rank[np.maximum(me, 0)], -1).astype(np.int32)
    g_indptr, g_indices, g_values = core.knn_graph(
        q_indptr[lo : hi + 1] - start,
        q_indices[start:stop],
        q_data[start:stop],
        t_indptr,
        t_indices,
        t_data,
        targets.order.size,
        np.ascontiguousarray(query_norms, dtype=np.float32),
        targets.norms,
        me,
        targets.order,
        k,
        float(settings.shrinkage),
        threads,
        progress,
    )
    return sp.csr_array((g_values, g_indices, g_indptr), shape=(hi - lo, targets.order.size))
