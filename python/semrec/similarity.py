"""Exact top-k similarity search (C++ kernel: ``cpp/semrec/similarity.cpp``).

The kernel multiplies blocks of queries by blocks of items with a register-tiled micro-kernel
(AVX-512, AVX2 or SSE, chosen at import) and keeps each query's best ``k`` while the block is
still in cache, so the full score matrix is never materialised. Every score is summed in one
fixed order, so identical items tie exactly and results do not depend on the batch or the
thread count. Work is spread over query blocks (and over item ranges when
there are few queries); the GIL is released and Ctrl-C interrupts a long search.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from semrec import _validation as check
from semrec._native import core
from semrec._threads import resolve_num_threads

METRICS = ("cosine", "dot")


def topk(
    queries: np.ndarray,
    items: np.ndarray,
    k: int,
    *,
    metric: str = "cosine",
    exclude: sp.csr_array | sp.csr_matrix | None = None,
    candidates: np.ndarray | sp.csr_array | sp.csr_matrix | None = None,
    num_threads: int | None = None,
    check_finite: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Find the ``k`` most similar items for every query, exactly.

    Parameters
    ----------
    queries : ndarray of float32, shape (n_queries, dim) or (dim,)
        Query vectors, C-contiguous. A single 1-D query gives 1-D results.
    items : ndarray of float32, shape (n_items, dim)
        Item vectors, C-contiguous.
    k : int
        Number of results per query (>= 1). ``k`` larger than the number of eligible items is
        allowed: the rest of the row is padding.
    metric : {"cosine", "dot"}
        ``"dot"`` is the inner product; ``"cosine"`` divides it by both norms (a zero vector
        scores 0 against everything). For embeddings already L2-normalised, ``"dot"`` gives the
        same ranking and skips computing the norms.
    exclude : scipy.sparse CSR of shape (n_queries, n_items), optional
        Item ids never to return for each query (typically the items a user has already seen).
        Values are ignored; unsorted rows and duplicates are accepted.
    candidates : 1-D int array or scipy.sparse CSR of shape (n_queries, n_items), optional
        Restrict the search to these item ids: one list shared by all queries, or one row of
        ids per query. Returned ids are always ids into ``items``.
    num_threads : int, optional
        ``None`` uses :func:`semrec.get_num_threads`, ``0`` all cores. The result does not
        depend on it.
    check_finite : bool, default True
        Reject NaN and infinite inputs. Turning it off saves one pass over ``items`` per call
        when the caller already guarantees finite values.

    Returns
    -------
    ids : ndarray of int32, shape (n_queries, k)
        Item ids, best first; ties are broken by the lower id. Padding is ``-1``.
    scores : ndarray of float32, shape (n_queries, k)
        The matching scores; padding is ``-inf``.

    Raises
    ------
    TypeError
        Wrong dtype (only float32 is accepted, to avoid hidden copies) or container type.
    ValueError
        Wrong shape or layout, NaN/inf, ``k < 1``, unknown metric, malformed CSR, no items.
    IndexError
        A candidate or excluded id outside ``[0, n_items)``.

    Examples
    --------
    >>> import numpy as np, semrec
    >>> items = np.eye(4, dtype=np.float32)
    >>> ids, scores = semrec.topk(np.array([1, 0.5, 0, 0], dtype=np.float32), items, k=2)
    >>> ids.tolist()
    [0, 1]
    """
    q, single = check.as_float32_matrix(
        queries, "queries", allow_1d=True, check_finite=check_finite
    )
    x, _ = check.as_float32_matrix(items, "items", check_finite=check_finite)
    k = check.positive_int(k, "k")
    if k > np.iinfo(np.int32).max:
        raise ValueError(f"k must be < 2**31, got {k}")
    metric = check.choice(metric, "metric", METRICS)
    threads = resolve_num_threads(num_threads)
    if x.shape[0] == 0:
        raise ValueError("items is empty (0 rows); there is nothing to search")
    if q.shape[1] != x.shape[1]:
        raise ValueError(
            f"queries have dimension {q.shape[1]} but items have dimension {x.shape[1]}"
        )
    shape = (q.shape[0], x.shape[0])
    ex = (None, None) if exclude is None else check.csr_structure(exclude, "exclude", shape)

    if candidates is None:
        ids, scores = core.topk(q, x, k, metric, *ex, threads)
    elif sp.issparse(candidates):
        cand = check.csr_structure(candidates, "candidates", shape)
        ids, scores = core.topk_candidates(q, x, *cand, k, metric, *ex, threads)
    else:
        ids, scores = _topk_shared_candidates(q, x, k, metric, candidates, exclude, ex, threads)
    return (ids[0], scores[0]) if single else (ids, scores)


def _topk_shared_candidates(
    q: np.ndarray,
    x: np.ndarray,
    k: int,
    metric: str,
    candidates: Any,
    exclude: Any,
    ex: tuple[np.ndarray | None, np.ndarray | None],
    threads: int,
) -> tuple[np.ndarray, np.ndarray]:
    """One candidate list for every query: search the gathered rows, then map ids back."""
    cand = np.unique(check.item_ids(candidates, "candidates", x.shape[0]))
    if cand.size == 0:
        return (
            np.full((q.shape[0], k), -1, dtype=np.int32),
            np.full((q.shape[0], k), -np.inf, dtype=np.float32),
        )
    sub_ex: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
    if exclude is not None:
        # Translate excluded ids into positions within the candidate list (sorted, so the
        # translated rows stay sorted); ids that are not candidates drop out.
        indptr, indices = ex
        position = np.full(x.shape[0], -1, dtype=np.int32)
        position[cand] = np.arange(cand.size, dtype=np.int32)
        mapped = position[indices]
        keep = mapped >= 0
        rows = np.repeat(np.arange(q.shape[0]), np.diff(indptr))[keep]
        sub_indptr = np.zeros(q.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=q.shape[0]), out=sub_indptr[1:])
        sub_ex = (sub_indptr, np.ascontiguousarray(mapped[keep]))
    sub_ids, scores = core.topk(q, np.ascontiguousarray(x[cand]), k, metric, *sub_ex, threads)
    ids = np.where(sub_ids >= 0, cand[np.maximum(sub_ids, 0)], -1).astype(np.int32)
    return ids, scores


def item_neighbours(
    embeddings: np.ndarray,
    k: int,
    *,
    metric: str = "cosine",
    num_threads: int | None = None,
) -> sp.csr_array:
    """Build the k-nearest-neighbour graph of a set of items.

    Parameters
    ----------
    embeddings : ndarray of float32, shape (n_items, dim)
        One row per item, C-contiguous.
    k : int
        Neighbours kept per item (an item is never its own neighbour). Rows hold
        ``min(k, n_items - 1)`` entries.
    metric : {"cosine", "dot"}
        As in :func:`topk`.
    num_threads : int, optional
        As in :func:`topk`.

    Returns
    -------
    scipy.sparse.csr_array of float32, shape (n_items, n_items)
        Row ``i`` holds the similarity of item ``i`` to each of its neighbours, columns
        sorted by id. Similarities of 0 are stored explicitly, so every row keeps its
        neighbours.

    Examples
    --------
    >>> import numpy as np, semrec
    >>> emb = np.array([[1, 0], [0.9, 0.1], [0, 1]], dtype=np.float32)
    >>> graph = semrec.item_neighbours(emb, k=1)
    >>> graph.indices.tolist()
    [1, 0, 1]
    """
    x, _ = check.as_float32_matrix(embeddings, "embeddings")
    k = check.positive_int(k, "k")
    n = x.shape[0]
    if n == 0:
        raise ValueError("embeddings is empty (0 rows)")
    diagonal = sp.csr_array(
        (np.ones(n, dtype=np.float32), np.arange(n, dtype=np.int32), np.arange(n + 1)),
        shape=(n, n),
    )
    ids, scores = topk(
        x, x, k, metric=metric, exclude=diagonal, num_threads=num_threads, check_finite=False
    )
    keep = ids >= 0
    rows = np.repeat(np.arange(n), keep.sum(axis=1))
    graph = sp.csr_array((scores[keep], (rows, ids[keep])), shape=(n, n), dtype=np.float32)
    graph.sort_indices()
    return graph
