"""Scoring pieces the models share: batch-independent dot products, top-k of dense score
rows, and nearest neighbours among a model's own vectors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from semrec._native import core
from semrec._threads import resolve_num_threads
from semrec.similarity import ItemIndex, topk, topk_of_model_query


def kernel_scores(
    queries: np.ndarray,
    items: np.ndarray,
    columns: np.ndarray | None = None,
    offset: float = 0.0,
    num_threads: int | None = None,
) -> np.ndarray:
    """``queries @ items[columns].T + offset`` as float32, summed as :func:`semrec.topk` sums.

    The search kernel adds up every dot product in one fixed order on every path (batch, one
    query, candidates, any thread count), so these are bitwise the scores a dot-product model's
    ``recommend`` returns (ties included), and a user's scores do not depend on who else is
    asked at the same time. ``columns`` (default: every item) may repeat items, in any order.

    Examples
    --------
    >>> import numpy as np
    >>> from semrec._scoring import kernel_scores
    >>> users, items = np.ones((1, 2), np.float32), np.eye(2, dtype=np.float32)
    >>> kernel_scores(users, items, np.array([1, 0, 1]), 0.5)
    array([[1.5, 1.5, 1.5]], dtype=float32)
    """
    if columns is not None and not np.array_equal(columns, np.arange(items.shape[0])):
        items = np.ascontiguousarray(items[columns])  # a Hybrid asks for every item: no copy
    out = core.dot_products(queries, items, resolve_num_threads(num_threads))
    if offset:
        out += np.float32(offset)  # in float32, as recommend adds it
    return out


def select_in_batches(
    users: np.ndarray,
    k: int,
    rank_rows: Callable[[np.ndarray], np.ndarray],
    seen_rows: Callable[[np.ndarray], sp.csr_array] | None,
    n_items: int,
    candidates: np.ndarray | None,
    batch: int,
    num_threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`select_topk` of ``rank_rows(part)`` for ``batch`` users at a time (the dense
    score rows of a whole catalogue stay bounded), without ``seen_rows(part)`` when given and
    only among ``candidates`` when given.

    Examples
    --------
    >>> import numpy as np
    >>> from semrec._scoring import select_in_batches
    >>> rows = lambda users: np.array([[0.1, 0.9, 0.5]] * users.size)
    >>> select_in_batches(np.arange(3), 2, rows, None, 3, np.array([0, 2]), 2)[0].tolist()
    [[2, 0], [2, 0], [2, 0]]
    """
    allowed = None
    if candidates is not None:
        allowed = np.zeros(n_items, dtype=bool)
        allowed[candidates] = True
    ids = np.empty((users.size, k), dtype=np.int32)
    scores = np.empty((users.size, k), dtype=np.float32)
    for start in range(0, users.size, batch):
        part = users[start : start + batch]
        exclude = seen_rows(part) if seen_rows is not None else None
        ids[start : start + part.size], scores[start : start + part.size] = select_topk(
            rank_rows(part), k, exclude=exclude, allowed=allowed, num_threads=num_threads
        )
    return ids, scores


def score_columns(
    users: np.ndarray,
    items: np.ndarray,
    score_rows: Callable[[np.ndarray], np.ndarray],
    n_items: int,
    batch: int,
) -> np.ndarray:
    """``score_rows(part)[:, items]`` as float32, for ``batch`` users at a time (the dense
    score rows of a whole catalogue stay bounded). ``items`` are checked ids, in any order,
    repeats allowed; one block of at most ``batch`` users asking for every item in order is
    returned as ``score_rows`` made it (fresh: no copy).

    Examples
    --------
    >>> import numpy as np
    >>> from semrec._scoring import score_columns
    >>> rows = lambda users: np.array([[0.1, 0.9, 0.5]] * users.size, dtype=np.float32)
    >>> score_columns(np.arange(3), np.array([2, 0, 2]), rows, 3, 2).tolist()[0]
    [0.5, 0.10000000149011612, 0.5]
    """
    if users.size <= batch and np.array_equal(items, np.arange(n_items)):
        return np.asarray(score_rows(users), dtype=np.float32)  # one fresh block, no copy
    out = np.empty((users.size, items.size), dtype=np.float32)
    for start in range(0, users.size, batch):
        rows = score_rows(users[start : start + batch])
        mode = "clip" if rows.shape[1] == n_items else "raise"  # items are checked ids
        np.take(rows, items, axis=1, out=out[start : start + batch], mode=mode)
    return out


def select_topk(
    scores: np.ndarray,
    k: int,
    *,
    exclude: sp.csr_array | None = None,
    allowed: np.ndarray | None = None,
    num_threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` columns of each row of a dense score block, best first (float32 scores).

    ``exclude`` (CSR, same shape) and ``allowed`` (bool mask over columns) remove items, and so
    does a score of ``-inf`` or NaN; ties go to the lower id; rows with fewer than ``k``
    eligible items are padded with ``-1`` / ``-inf``. float32 and float64 blocks are ranked in
    their own precision (a Hybrid's float64 blend keeps its members' ties apart); other dtypes
    as float64.

    Examples
    --------
    >>> import numpy as np
    >>> from semrec._scoring import select_topk
    >>> select_topk(np.array([[0.5, 2.0, 2.0]]), 2)[0].tolist()
    [[1, 2]]
    """
    dtype = np.float32 if np.asarray(scores).dtype == np.float32 else np.float64
    scores = np.ascontiguousarray(scores, dtype=dtype)
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D, got {scores.ndim}-D")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    indptr = indices = None
    if exclude is not None:
        if exclude.shape != scores.shape:
            raise ValueError(f"exclude has shape {exclude.shape}, expected {scores.shape}")
        indptr = np.asarray(exclude.indptr, dtype=np.int64)
        indices = np.asarray(exclude.indices)
        if indices.size and (indices.min() < 0 or indices.max() >= scores.shape[1]):
            raise IndexError(f"exclude holds item ids outside [0, {scores.shape[1]})")
        indices = np.ascontiguousarray(indices, dtype=np.int32)  # in range: no wrap-around
    if allowed is not None:
        allowed = np.ascontiguousarray(allowed, dtype=bool)
    return core.topk_dense_rows(
        scores, k, indptr, indices, allowed, resolve_num_threads(num_threads)
    )


def itself(ids: np.ndarray, n: int) -> sp.csr_array:
    """A CSR with one entry per row, ``ids[r]``: excludes each query's own row from a search.

    Examples
    --------
    >>> import numpy as np
    >>> from semrec._scoring import itself
    >>> itself(np.array([2, 0]), 3).toarray().tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    rows = np.asarray(ids).size
    return sp.csr_array(
        (np.ones(rows, dtype=np.float32), np.asarray(ids, dtype=np.int32), np.arange(rows + 1)),
        shape=(rows, n),
    )


def nearest(
    vectors: np.ndarray, ids: np.ndarray, k: int, metric: str, threads: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows of ``vectors`` closest to each row ``ids`` (itself excluded); none for a
    zero row (an item without interactions or text), whose every score would be 0."""
    queries = np.ascontiguousarray(vectors[ids])
    found = topk(
        queries,
        vectors,
        min(k, max(vectors.shape[0], 1)),  # the kernel allocates by k: pad past the rows here
        metric=metric,
        exclude=itself(ids, vectors.shape[0]),
        num_threads=threads,
        check_finite=False,
    )
    unknown = ~queries.any(axis=1)
    if unknown.any():  # its "neighbours" would be the first k items, by index order alone
        found[0][unknown], found[1][unknown] = -1, -np.inf
    return padded_to(found, k)


def padded_to(found: tuple[np.ndarray, np.ndarray], k: int) -> tuple[np.ndarray, np.ndarray]:
    """A top-k result ``(ids, scores)`` widened to ``k`` columns with ``-1`` / ``-inf``.

    Examples
    --------
    >>> import numpy as np
    >>> from semrec._scoring import padded_to
    >>> padded_to((np.array([[2]], np.int32), np.array([[0.5]], np.float32)), 2)[0].tolist()
    [[2, -1]]
    """
    ids, scores = found
    if ids.shape[1] >= k:
        return ids, scores
    out_ids = np.full((ids.shape[0], k), -1, dtype=np.int32)
    out_scores = np.full((ids.shape[0], k), -np.inf, dtype=np.float32)
    out_ids[:, : ids.shape[1]], out_scores[:, : ids.shape[1]] = ids, scores
    return out_ids, out_scores


def seen_within(seen: np.ndarray | sp.csr_array, n_items: int) -> np.ndarray | sp.csr_array:
    """``seen`` (one user's sorted item ids, or a CSR of users' rows) fitted to the first
    ``n_items`` items: a search reads the item vectors first, and ``add_items`` in another
    thread may grow the seen rows before they are read (its new items are not searched).

    Examples
    --------
    >>> import numpy as np
    >>> from semrec._scoring import seen_within
    >>> seen_within(np.array([1, 4, 7]), 5).tolist()
    [1, 4]
    """
    if isinstance(seen, np.ndarray):
        return seen[: np.searchsorted(seen, n_items)]
    if seen.shape[1] > n_items:
        return sp.csr_array(seen[:, :n_items])
    if seen.shape[1] < n_items:  # the rows read before the vectors grew: no entry past them
        return sp.csr_array((seen.data, seen.indices, seen.indptr), (seen.shape[0], n_items))
    return seen


def search_unseen(
    queries: np.ndarray,
    index: Any,
    k: int,
    seen: np.ndarray | sp.csr_array | None,
    candidates: Any,
    num_threads: int | None,
    n_read: int,
) -> tuple[np.ndarray, np.ndarray]:
    """A dot-product model's top-k: its ``queries`` (2-D) over ``index`` (the ``n_read`` item
    vectors it read, or an index of them), without the ``seen`` items (one user's sorted ids,
    or a CSR of the users' rows), fitted to those items. One query over an
    :class:`ItemIndex` (a click) takes the query path without a matrix."""
    seen = None if seen is None else seen_within(seen, n_read)
    if queries.shape[0] == 1 and candidates is None and isinstance(index, ItemIndex):
        return topk_of_model_query(queries, index, k, seen, num_threads)
    return topk(queries, index, k, exclude=seen, candidates=candidates, num_threads=num_threads)
