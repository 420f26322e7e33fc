"""Ranking and rating metrics over many users at once (C++ kernels: ``cpp/semrec/metrics.cpp``).

Definitions (binary relevance; the evaluation guide has them too): precision@k = hits/k; recall@k =
hits/``|relevant|``; NDCG@k with a log2 discount and the ideal DCG over ``min(|relevant|, k)``;
MAP@k = sum of precision at each hit / ``min(|relevant|, k)``; hit rate@k; MRR@k = 1/rank of
the first hit (0 without one); catalog coverage = distinct recommended items / all items; intra-list
diversity = mean pairwise (1 - cosine) of a list's item embeddings; novelty = mean
-log2(popularity share) of the recommended items. Padding ids (-1) never count as hits and
are skipped by coverage, diversity and novelty. A list holds distinct items (a repeated id
is refused: it would count one hit several times).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from semrec import _candidates as lists
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
        Distinct item ids per user, best first, ``-1`` for padding; ``width >= max(k)``.
    relevant : scipy.sparse CSR, shape (n_users, n_items)
        Row ``u`` lists the items relevant to list ``u`` (values are ignored, stored entries
        are relevant; an item stored twice counts once).
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
        at least one relevant item (NaN when no user has one: a mean over nobody; use
        ``per_user=True`` to tell the cases apart).

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
    indptr, indices = check.csr_structure(relevant, "relevant", shape, distinct=True)
    values = core.ranking_metrics(
        recs, indptr, indices, shape[1], list(ks), resolve_num_threads(num_threads)
    )
    if check.flag(per_user, "per_user"):
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
    if n_items > check.INT32_MAX:  # ids are int32; the kernel marks each of n_items
        raise ValueError(f"n_items must be < 2**31 (item ids are int32), got {n_items}")
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

    ``popularity[i]`` is the number of (train) users who interacted with item ``i``, between 0
    and ``n_users``; an item nobody interacted with counts as if one user had. Users whose list
    is all padding are skipped (NaN per user).

    Examples
    --------
    >>> import numpy as np
    >>> from semrec.metrics import novelty
    >>> novelty(np.array([[0]], dtype=np.int32), np.array([2, 4]), n_users=8, k=1)
    2.0
    """
    n_users = check.positive_int(n_users, "n_users")
    pop = _real_values(popularity, "popularity")
    if pop.ndim != 1:
        raise ValueError(f"popularity must be a 1-D array of counts, got shape {pop.shape}")
    bad = ~(np.isfinite(pop) & (pop >= 0) & (pop <= n_users))
    if bad.any():
        item = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"popularity must hold finite counts of users per item, between 0 and n_users "
            f"({n_users}); item {item} has {pop[item]}: count the users in the same (train) "
            "matrix as n_users"
        )
    recs = _recommendations(recommendations, "recommendations", len(pop))
    k = _width_cutoff(k, recs)
    info = -np.log2(np.maximum(pop, 1.0) / n_users)
    values = core.mean_item_value(recs, k, info, resolve_num_threads(num_threads))
    return values if check.flag(per_user, "per_user") else _nanmean(values)


def intra_list_diversity(
    recommendations: np.ndarray,
    item_embeddings: np.ndarray,
    k: int,
    *,
    per_user: bool = False,
    num_threads: int | None = None,
) -> float | np.ndarray:
    """Mean pairwise cosine distance ``1 - cos`` within each list (lists of < 2 items skipped).

    Computed in float64 from the float32 rows; a zero vector (an item without text) is at
    distance 1 from every item, itself included.

    Examples
    --------
    >>> import numpy as np
    >>> from semrec.metrics import intra_list_diversity
    >>> emb = np.eye(3, dtype=np.float32)
    >>> intra_list_diversity(np.array([[0, 1]], dtype=np.int32), emb, k=2)
    1.0
    """
    emb, _ = check.as_float32_matrix(item_embeddings, "item_embeddings")
    # Norms in float64 (a float32 sum of squares underflows for tiny vectors and overflows for
    # huge ones); the kernel divides the float64 dot products of the rows by them.
    e64 = emb.astype(np.float64)
    norms = np.sqrt(np.einsum("ij,ij->i", e64, e64))
    inverse = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    recs = _recommendations(recommendations, "recommendations", emb.shape[0])
    k = _width_cutoff(k, recs)
    values = core.intra_list_diversity(recs, k, emb, inverse, resolve_num_threads(num_threads))
    return values if check.flag(per_user, "per_user") else _nanmean(values)


def rmse(predicted: Any, actual: Any) -> float:
    """Root mean squared error.

    Examples
    --------
    >>> from semrec.metrics import rmse
    >>> rmse([1.0, 3.0], [2.0, 3.0])
    0.7071067811865476
    """
    scale, d = _scaled_errors(predicted, actual)
    with np.errstate(over="ignore"):  # an overflow is refused below, naming rmse
        value = float(scale * np.sqrt(np.mean(d * d)))
    return _finite_error(value, "rmse")


def mae(predicted: Any, actual: Any) -> float:
    """Mean absolute error.

    Examples
    --------
    >>> from semrec.metrics import mae
    >>> mae([1.0, 3.0], [2.0, 3.0])
    0.5
    """
    scale, d = _scaled_errors(predicted, actual)
    with np.errstate(over="ignore"):  # an overflow is refused below, naming mae
        value = float(scale * np.mean(np.abs(d)))
    return _finite_error(value, "mae")


def check_rating_model(model: Any, metric: str = "rmse/mae") -> None:
    """Refuse a model whose ``predict`` gives no ratings to compare with test ratings.

    A model without ``predict(users, items)`` raises a TypeError. One whose ``feedback`` is
    not ``"explicit"``, such as ``ALS(feedback="implicit")`` (the default: its scores are
    preferences near 0 and 1, learnt from confidences), raises a ValueError: comparing them
    with ratings means nothing. Only ``ALS(feedback="explicit")`` among semrec's models
    predicts ratings; another object with ``predict`` and no ``feedback`` is trusted.
    ``metric`` (the metrics asking) is named in the errors.

    Examples
    --------
    >>> import scipy.sparse as sp, semrec
    >>> from semrec.metrics import check_rating_model
    >>> check_rating_model(semrec.ALS(2, feedback="explicit"))
    >>> check_rating_model(semrec.ALS(2), "rmse")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: rating metrics (rmse) compare model.predict with the test ratings, but ...
    """
    if not hasattr(model, "predict"):
        raise TypeError(
            f"rating metrics ({metric}) need model.predict(users, items); "
            f"{type(model).__name__} has none"
        )
    feedback = getattr(model, "feedback", "explicit")  # a model without it is trusted
    if isinstance(feedback, str) and feedback != "explicit":
        raise ValueError(
            f"rating metrics ({metric}) compare model.predict with the test ratings, but this "
            f"{type(model).__name__} has feedback={feedback!r}: its scores are preferences, "
            f'not ratings; fit {type(model).__name__}(feedback="explicit") on the ratings for '
            f"{metric}, or evaluate it with the ranking metrics (ndcg, recall, ...)"
        )


def predicted_ratings(
    model: Any, ratings: Any, users: np.ndarray | None = None, *, metric: str = "rmse/mae"
) -> tuple[np.ndarray, np.ndarray]:
    """``model.predict`` and the stored rating of every entry of ``ratings``: what rmse and
    mae compare. The model is checked first (:func:`check_rating_model`).

    Parameters
    ----------
    model : object with ``predict(users, items)``
        A model that predicts ratings.
    ratings : scipy.sparse CSR, shape (n_users, n_items)
        The test ratings; every stored entry counts.
    users : sorted int array, optional
        Only these rows' entries (default: every row).
    metric : str
        The metrics asking, named in the errors.

    Returns
    -------
    predicted, actual : ndarray
        One value per entry, in CSR order.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, semrec
    >>> from semrec.metrics import predicted_ratings
    >>> r = sp.csr_array(np.array([[5, 0], [0, 3]], dtype=np.float32))
    >>> model = semrec.ALS(2, feedback="explicit", regularization=0.01, random_state=0,
    ...                    show_progress=False).fit(r)
    >>> predicted, actual = predicted_ratings(model, r)
    >>> predicted.shape, actual.tolist()
    ((2,), [5.0, 3.0])
    """
    check_rating_model(model, metric)
    coo = sp.coo_array(ratings)
    rows, cols, actual = coo.row, coo.col, coo.data
    if users is not None:
        keep = np.isin(rows, users)
        rows, cols, actual = rows[keep], cols[keep], actual[keep]
    predicted = np.asarray(model.predict(rows.astype(np.int32), cols.astype(np.int32)))
    if predicted.shape != actual.shape:
        raise ValueError(
            f"model.predict returned shape {predicted.shape} for {actual.size} (user, item) "
            f"pairs; it must return one prediction per pair, shape {actual.shape}"
        )
    return predicted, actual


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
    if len(relevant.shape) != 2:
        raise ValueError(
            f"relevant must be 2-D (users x items), got a {len(relevant.shape)}-D sparse array "
            f"of shape {relevant.shape}; for one user pass relevant.reshape(1, -1).tocsr()"
        )
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
    ks = tuple(check.positive_int(v, "k") for v in ks)
    if len(set(ks)) != len(ks):
        raise ValueError(f"k lists a cutoff twice, got {list(ks)}; name each once")
    return ks


def _recommendations(recs: Any, name: str, n_items: int) -> np.ndarray:
    arr = lists.rectangular(recs, name, "pad the short rows with -1")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (users, list length), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integer item ids, got dtype {arr.dtype}")
    if arr.size and (arr.min() < -1 or arr.max() >= n_items):
        bad = arr[(arr < -1) | (arr >= n_items)][0]
        raise IndexError(f"{name} holds item id {bad}, outside [0, {n_items}) (or -1 padding)")
    arr = np.ascontiguousarray(arr, dtype=np.int32)
    repeat = lists.first_repeat(arr)
    if repeat is not None:
        row, item, rows = repeat
        raise ValueError(
            f"{name} row {row} lists item {item} more than once ({rows} row(s) repeat an "
            "item); a ranked list holds distinct items: keep each item's first position and "
            "pad the end with -1"
        )
    return arr


def _width_cutoff(k: int, recs: np.ndarray) -> int:
    k = check.positive_int(k, "k")
    if k > recs.shape[1]:
        raise ValueError(f"k={k} exceeds the {recs.shape[1]} recommendations per user")
    return k


def _real_values(values: Any, name: str) -> np.ndarray:
    """``values`` as a float64 array of real numbers (a TypeError naming ``name`` otherwise)."""
    arr = lists.rectangular(values, name, "pass one flat list of numbers")
    if arr.dtype.kind == "O":  # e.g. a list mixing numbers and None or strings
        real = (int, float, np.integer, np.floating)
        for v in arr.ravel():
            if isinstance(v, bool) or not isinstance(v, real):
                raise TypeError(f"{name} must hold real numbers, got {v!r} ({type(v).__name__})")
    elif arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold real numbers (ints or floats), got dtype {arr.dtype}")
    return arr.astype(np.float64)


def _scaled_errors(predicted: Any, actual: Any) -> tuple[float, np.ndarray]:
    """``(scale, d)`` with ``predicted - actual == scale * d`` in float64, ``|d| < 4``: the
    power-of-two scale is exact and keeps squares of huge errors from overflowing."""
    p = _real_values(predicted, "predicted")
    a = _real_values(actual, "actual")
    if p.shape != a.shape:
        what = "differ in length" if p.ndim == a.ndim == 1 else "differ in shape"
        raise ValueError(
            f"predicted and actual {what}: {p.shape} vs {a.shape}; pass one prediction per "
            "actual value, in the same order and shape"
        )
    if p.size == 0:
        raise ValueError("predicted and actual are empty")
    for arr, name in ((p, "predicted"), (a, "actual")):
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} must be finite (found NaN or inf); drop those pairs")
    largest = max(float(np.abs(p).max()), float(np.abs(a).max()))
    if largest == 0:
        return 1.0, np.zeros(p.size)
    exponent = int(np.frexp(largest)[1]) - 1  # 2**exponent <= largest: a finite scale
    d = np.ldexp(p.ravel(), -exponent) - np.ldexp(a.ravel(), -exponent)
    return float(np.ldexp(1.0, exponent)), d


def _finite_error(value: float, name: str) -> float:
    if not np.isfinite(value):
        raise ValueError(
            f"the {name} of predicted and actual overflows float64 (errors near 1e308); "
            "rescale both, e.g. divide them by the same constant"
        )
    return value


def _nanmean(values: np.ndarray) -> float:
    ok = ~np.isnan(values)
    return float(values[ok].mean()) if ok.any() else float("nan")
