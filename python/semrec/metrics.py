"""Ranking and rating metrics over many users at once (C++ kernels: ``cpp/semrec/metrics.cpp``).

Definitions follow PROTOCOL.md (binary relevance): precision@k = hits/k; recall@k =
hits/``|relevant|``; NDCG@k with a log2 discount and the ideal DCG over ``min(|relevant|, k)``;
MAP@k = sum of precision at each hit / ``min(|relevant|, k)``; hit rate@k; MRR@k = 1/rank of
the first hit (0 without one); catalog coverage = distinct recommended items / all items; intra-list
diversity = mean pairwise (1 - cosine) of a list's item embeddings; novelty = mean
-log2(popularity share) of the recommended items. Padding ids (-1) never count as hits and
are skipped by coverage, diversity and novelty. Lists are assumed to hold distinct items.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from semrec import _validation as check
from semrec._native import core
from semrec._threads import resolve_num_threads

RANKING_METRICS = ("precision", "recall", "ndcg", "map", "hit_rate", "mrr")
LIST_METRICS = ("coverage", "novelty", "diversity")
RATING_METRICS = ("rmse", "mae")


def ranking_metrics(
    recommendations: np.ndarray,
    relevant: sp.csr_array | sp.csr_matrix,
    k: int | Iterable[int] = (10, 20),
    *,
    per_user: bool = False,
    num_threads: int | None = None,
) -> pd.DataFrame | np.ndarray:
    """Precision, recall, NDCG, MAP, hit rate and MRR at each cutoff.

    Parameters
    ----------
    recommendations : int array, shape (n_users, width)
        Item ids per user, best first, ``-1`` for padding; ``width >= max(k)``.
    relevant : scipy.sparse CSR, shape (n_users, n_items)
        Row ``u`` lists the items relevant to list ``u`` (values are ignored, stored entries
        are relevant).
    k : int or sequence of int
        Cutoffs.
    per_user : bool
        Return the per-user values, an array of shape ``(n_users, len(k), 6)`` ordered as
        ``RANKING_METRICS`` (0 for users without relevant items), instead of the means.
    num_threads : int, optional
        Threads (``None``: package default); the result does not depend on it.

    Returns
    -------
    DataFrame
        One row per cutoff (index ``k``), one column per metric, averaged over the users with
        at least one relevant item.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from semrec.metrics import ranking_metrics
    >>> recs = np.array([[2, 0, 1]], dtype=np.int32)
    >>> relevant = sp.csr_array(np.array([[1.0, 0.0, 0.0]]))
    >>> float(ranking_metrics(recs, relevant, k=2).loc[2, "mrr"])
    0.5
    """
    ks = cutoffs(k)
    recs = _recommendations(recommendations, "recommendations", relevant_shape(relevant)[1])
    shape = (recs.shape[0], relevant_shape(relevant)[1])
    if recs.shape[1] < max(ks):
        raise ValueError(
            f"recommendations hold {recs.shape[1]} items per user, fewer than k={max(ks)}"
        )
    indptr, indices = check.csr_structure(relevant, "relevant", shape)
    values = core.ranking_metrics(
        recs, indptr, indices, shape[1], list(ks), resolve_num_threads(num_threads)
    )
    if per_user:
        return values
    has_relevant = np.diff(indptr) > 0
    means = (
        values[has_relevant].mean(axis=0)
        if has_relevant.any()
        else np.full(values.shape[1:], np.nan)
    )
    return pd.DataFrame(means, index=pd.Index(ks, name="k"), columns=list(RANKING_METRICS))


def catalog_coverage(recommendations: np.ndarray, n_items: int, k: int) -> float:
    """Distinct recommended items among the first ``k`` columns / ``n_items``.

    Examples
    --------
    >>> import numpy as np
    >>> from semrec.metrics import catalog_coverage
    >>> catalog_coverage(np.array([[0, 1], [1, -1]], dtype=np.int32), n_items=4, k=2)
    0.5
    """
    n_items = check.positive_int(n_items, "n_items")
    recs = _recommendations(recommendations, "recommendations", n_items)
    k = _width_cutoff(k, recs)
    return core.distinct_items(recs, k, n_items) / n_items


def novelty(
    recommendations: np.ndarray,
    popularity: np.ndarray,
    n_users: int,
    k: int,
    *,
    per_user: bool = False,
    num_threads: int | None = None,
) -> float | np.ndarray:
    """Mean self-information ``-log2(popularity[i] / n_users)`` of the recommended items.

    ``popularity[i]`` is the number of (train) users who interacted with item ``i``; an item
    nobody interacted with counts as if one user had. Users whose list is all padding are
    skipped (NaN per user).

    Examples
    --------
    >>> import numpy as np
    >>> from semrec.metrics import novelty
    >>> novelty(np.array([[0]], dtype=np.int32), np.array([2, 4]), n_users=8, k=1)
    2.0
    """
    pop = np.asarray(popularity, dtype=np.float64)
    if pop.ndim != 1:
        raise ValueError(f"popularity must be a 1-D array of counts, got shape {pop.shape}")
    bad = ~(np.isfinite(pop) & (pop >= 0))
    if bad.any():
        item = int(np.flatnonzero(bad)[0])
        raise ValueError(
            "popularity must hold finite, non-negative counts (users per item); "
            f"item {item} has {pop[item]}"
        )
    n_users = check.positive_int(n_users, "n_users")
    recs = _recommendations(recommendations, "recommendations", len(pop))
    k = _width_cutoff(k, recs)
    info = -np.log2(np.maximum(pop, 1.0) / n_users)
    values = core.mean_item_value(recs, k, info, resolve_num_threads(num_threads))
    return values if per_user else _nanmean(values)


def intra_list_diversity(
    recommendations: np.ndarray,
    item_embeddings: np.ndarray,
    k: int,
    *,
    per_user: bool = False,
    num_threads: int | None = None,
) -> float | np.ndarray:
    """Mean pairwise cosine distance ``1 - cos`` within each list (lists of < 2 items skipped).

    Examples
    --------
    >>> import numpy as np
    >>> from semrec.metrics import intra_list_diversity
    >>> emb = np.eye(3, dtype=np.float32)
    >>> intra_list_diversity(np.array([[0, 1]], dtype=np.int32), emb, k=2)
    1.0
    """
    emb, _ = check.as_float32_matrix(item_embeddings, "item_embeddings")
    # Norms in float64: a float32 sum of squares underflows for tiny vectors and overflows for
    # huge ones, and the distances would then be those of unnormalised rows.
    e64 = emb.astype(np.float64)
    norms = np.sqrt(np.einsum("ij,ij->i", e64, e64))[:, None]
    unit = np.ascontiguousarray(e64 / np.where(norms > 0, norms, 1.0), dtype=np.float32)
    recs = _recommendations(recommendations, "recommendations", emb.shape[0])
    k = _width_cutoff(k, recs)
    values = core.intra_list_diversity(recs, k, unit, resolve_num_threads(num_threads))
    return values if per_user else _nanmean(values)


def rmse(predicted: Any, actual: Any) -> float:
    """Root mean squared error.

    Examples
    --------
    >>> from semrec.metrics import rmse
    >>> rmse([1.0, 3.0], [2.0, 3.0])
    0.7071067811865476
    """
    p, a = _pair(predicted, actual)
    squared, _ = core.error_sums(p, a)
    return float(np.sqrt(squared / len(p)))


def mae(predicted: Any, actual: Any) -> float:
    """Mean absolute error.

    Examples
    --------
    >>> from semrec.metrics import mae
    >>> mae([1.0, 3.0], [2.0, 3.0])
    0.5
    """
    p, a = _pair(predicted, actual)
    _, absolute = core.error_sums(p, a)
    return float(absolute / len(p))


# -- helpers ----------------------------------------------------------------------------------
def relevant_shape(relevant: Any) -> tuple[int, int]:
    """The shape of a users x items relevance matrix (a TypeError unless it is sparse).

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from semrec.metrics import relevant_shape
    >>> relevant_shape(sp.csr_array((3, 5)))
    (3, 5)
    """
    if not sp.issparse(relevant):
        raise TypeError(f"relevant must be a scipy.sparse CSR matrix, got {type(relevant)}")
    return relevant.shape


def cutoffs(k: int | Iterable[int]) -> tuple[int, ...]:
    """Cutoffs as a tuple of ints >= 1 (an int gives one).

    Examples
    --------
    >>> from semrec.metrics import cutoffs
    >>> cutoffs(10), cutoffs([5, 20])
    ((10,), (5, 20))
    """
    ks = (k,) if np.ndim(k) == 0 else tuple(k)  # type: ignore[arg-type]
    if not ks:
        raise ValueError("k must name at least one cutoff")
    return tuple(check.positive_int(v, "k") for v in ks)


def _recommendations(recs: Any, name: str, n_items: int) -> np.ndarray:
    arr = np.asarray(recs)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (users, list length), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integer item ids, got dtype {arr.dtype}")
    if arr.size and (arr.min() < -1 or arr.max() >= n_items):
        bad = arr[(arr < -1) | (arr >= n_items)][0]
        raise IndexError(f"{name} holds item id {bad}, outside [0, {n_items}) (or -1 padding)")
    return np.ascontiguousarray(arr, dtype=np.int32)


def _width_cutoff(k: int, recs: np.ndarray) -> int:
    k = check.positive_int(k, "k")
    if k > recs.shape[1]:
        raise ValueError(f"k={k} exceeds the {recs.shape[1]} recommendations per user")
    return k


def _pair(predicted: Any, actual: Any) -> tuple[np.ndarray, np.ndarray]:
    p = np.ascontiguousarray(predicted, dtype=np.float32).ravel()
    a = np.ascontiguousarray(actual, dtype=np.float32).ravel()
    if p.shape != a.shape:
        raise ValueError(f"predicted and actual differ in length: {p.size} vs {a.size}")
    if p.size == 0:
        raise ValueError("predicted and actual are empty")
    if not (np.isfinite(p).all() and np.isfinite(a).all()):
        raise ValueError("predicted and actual must be finite (found NaN or inf)")
    return p, a


def _nanmean(values: np.ndarray) -> float:
    ok = ~np.isnan(values)
    return float(values[ok].mean()) if ok.any() else float("nan")
