"""Lists of ids given as a 2-D array, one row per query or user padded with -1: per-query
candidates (what an approximate index proposes, and a form :func:`semrec.topk` takes besides
the CSR), recognised here and checked before the kernels read them, and ranked lists (the
metrics' and re-rankers' input), whose rows must be rectangular and hold distinct ids. Also
:func:`semrec.topk`'s search among one candidate list shared by every query.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from semrec import _validation as check
from semrec._native import core


def is_padded(candidates: Any) -> bool:
    """Whether ``candidates`` are per-query id lists as a 2-D array (rows padded with -1)."""
    if candidates is None or sp.issparse(candidates):
        return False
    try:
        return np.ndim(candidates) == 2
    except ValueError:  # NumPy's word for a ragged nested sequence
        raise ValueError(
            "candidates must be one id list shared by all queries (1-D), per-query lists of "
            "equal length (a 2-D array; pad short rows with -1) or a scipy.sparse CSR; got "
            "rows of different lengths"
        ) from None


def checked(ids: Any, name: str, shape: tuple[int, int]) -> np.ndarray:
    """Validate per-query id lists given as a 2-D integer array (one row per query, ``-1`` for
    an empty slot) and return it as C-contiguous int32. The ids of an int32 array are checked
    by the kernel that reads them (no extra pass here); other dtypes are checked before the
    cast, which could otherwise wrap them into range."""
    arr = np.asarray(ids)
    if arr.ndim != 2 or arr.shape[0] != shape[0]:
        raise ValueError(
            f"{name} as an array of per-query lists must have shape ({shape[0]}, slots) (one row "
            f"per query, -1 for an empty slot), got {arr.shape}"
        )
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integer item ids, got dtype {arr.dtype}")
    if arr.dtype != np.int32 and arr.size and (arr.min() < -1 or arr.max() >= shape[1]):
        bad = arr[(arr < -1) | (arr >= shape[1])][0]
        raise IndexError(f"{name} holds item id {bad}, outside [0, {shape[1]}) (-1: empty slot)")
    return np.ascontiguousarray(arr, dtype=np.int32)


def rectangular(values: Any, name: str, fix: str) -> np.ndarray:
    """``values`` as an ndarray; a ValueError naming ``name`` (and saying ``fix``) for rows of
    different lengths, where NumPy would speak of an "inhomogeneous shape"."""
    if sp.issparse(values):
        raise TypeError(f"{name} must be a dense array or a list, got a scipy.sparse matrix")
    try:
        return np.asarray(values)
    except ValueError:
        raise ValueError(
            f"{name} has rows of different lengths (or mixes lists and numbers); {fix}"
        ) from None


def evaluated_items(items: Any) -> np.ndarray:
    """``items=`` of an evaluation (one shared candidate list) as a non-empty 1-D array; its
    ids are checked against the split's item count by the caller."""
    items = rectangular(items, "items", "pass a 1-D array of item indices")
    items = items.reshape(-1) if items.ndim == 0 else items  # one candidate item
    if items.ndim != 1:
        raise ValueError(f"items must be a 1-D array of item indices, got shape {items.shape}")
    if items.size == 0:
        raise ValueError("items is empty; give the candidate item indices, or None (every item)")
    return items


def first_repeat(lists: np.ndarray) -> tuple[int, int, int] | None:
    """``(row, id, rows affected)`` for the first row of 2-D ``lists`` holding an id twice (-1
    padding may repeat), or None."""
    if lists.ndim != 2 or lists.shape[1] < 2 or lists.shape[0] == 0:
        return None
    ordered = np.sort(lists, axis=1)
    repeated = (ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)
    rows = np.flatnonzero(repeated.any(axis=1))
    if not rows.size:
        return None
    return int(rows[0]), int(ordered[rows[0], 1:][repeated[rows[0]]][0]), int(rows.size)


def structure(candidates: Any, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Per-query candidates (CSR, or a 2-D array padded with -1) as a sorted CSR structure."""
    if sp.issparse(candidates):
        return check.csr_structure(candidates, "candidates", shape)
    return core.padded_lists(checked(candidates, "candidates", shape), shape[1])


def topk_among_shared(
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
