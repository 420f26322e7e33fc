"""Diversity re-ranking by maximal marginal relevance (C++ kernel: ``cpp/semrec/rerank.cpp``).

MMR (Carbonell & Goldstein, 1998) turns a relevance-ordered candidate list into a list that is
both relevant and varied: it picks the most relevant candidate first, then repeatedly the one
that maximises ``lambda_ * relevance - (1 - lambda_) * max cosine to the items already picked``.
It works on the output of any model's ``recommend`` (take, say, 200 candidates and keep 10).
To measure the effect, use :func:`semrec.metrics.intra_list_diversity` and
:func:`semrec.metrics.catalog_coverage`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from semrec import _candidates as lists
from semrec import _validation as check
from semrec._native import core
from semrec._threads import resolve_num_threads

NORMALIZE = ("minmax", "none")

# Rows whose norm is this close to 1 count as normalised (float32 rounding of a unit vector).
_UNIT_TOLERANCE = 1e-4


def diversify(
    ids: np.ndarray,
    scores: np.ndarray,
    item_embeddings: np.ndarray,
    k: int,
    lambda_: float = 0.5,
    *,
    normalize: str = "minmax",
    num_threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Re-rank candidate lists with MMR, trading relevance for diversity.

    Parameters
    ----------
    ids : int array, shape (n_users, n_candidates) or (n_candidates,)
        Candidate item ids per user (e.g. ``model.recommend(users, k=200)[0]``); ``-1`` marks
        padding and is never picked. A repeated id is picked at most once. A 1-D list gives
        1-D results.
    scores : float array, same shape as ``ids``
        The candidates' relevance (higher is better), finite wherever the id is real.
    item_embeddings : ndarray of float32, shape (n_items, dim)
        Item vectors (typically text embeddings), C-contiguous. Rows that are not unit length
        are L2-normalised in a copy, so the similarity is always the cosine.
    k : int
        Items to keep per user (rows with fewer distinct candidates are padded). A ``k`` past
        the candidates whose padded result would exceed 2**27 entries is refused.
    lambda_ : float in [0, 1], default 0.5
        Weight of relevance. ``1`` keeps the plain relevance order (the top ``k`` by
        ``scores``, compared as given, in float64); ``0`` picks the most relevant item, then
        only maximises diversity. Ties (equal scores at ``1``, equal trade-offs otherwise) go
        to the candidate with the higher score, then to the lower item id, wherever the
        candidates sit in the row.
    normalize : {"minmax", "none"}, default "minmax"
        How relevance is put on the scale of cosine similarity before the trade-off.
        ``"minmax"`` rescales each user's candidate scores to [0, 1] (the best candidate 1, the
        worst 0; a row of equal scores becomes all 1), so ``lambda_`` means the same for every
        model and user whatever the scale of its scores. ``"none"`` uses the scores as given
        (when they already are similarities, e.g. a content model's cosine).
    num_threads : int, optional
        ``None`` uses :func:`semrec.get_num_threads`, ``0`` all cores. The result does not
        depend on it.

    Returns
    -------
    ids : ndarray of int32, shape (n_users, k)
        The picked items in pick order; padding ``-1``.
    scores : ndarray of float32, shape (n_users, k)
        Their original ``scores`` (not normalised); padding ``-inf``.

    Raises
    ------
    TypeError
        Non-integer ids, non-float scores, or embeddings that are not float32.
    ValueError
        Shapes that do not match, NaN/inf scores on real ids, ``lambda_`` outside [0, 1],
        ``k < 1``, an unknown ``normalize``.
    IndexError
        An id outside ``[0, n_items)`` other than the ``-1`` padding.

    Examples
    --------
    >>> import numpy as np, semrec
    >>> emb = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)
    >>> ids = np.array([0, 1, 2], dtype=np.int32)            # 0 and 1 are the same item kind
    >>> scores = np.array([0.9, 0.8, 0.5], dtype=np.float32)
    >>> semrec.diversify(ids, scores, emb, k=2, lambda_=0.5)[0].tolist()
    [0, 2]
    >>> semrec.diversify(ids, scores, emb, k=2, lambda_=1.0)[0].tolist()
    [0, 1]
    """
    emb, _ = check.as_float32_matrix(item_embeddings, "item_embeddings")
    if emb.shape[0] == 0:
        raise ValueError("item_embeddings is empty (0 rows); there is nothing to re-rank")
    cand, rel, exact, single = _candidates(ids, scores, emb.shape[0])
    k = check.result_width(k, cand.shape[0], cand.shape[1], "candidates per user")
    lambda_ = check.number(lambda_, "lambda_", minimum=0, maximum=1)
    normalize = check.choice(normalize, "normalize", NORMALIZE)
    threads = resolve_num_threads(num_threads)
    cand, rel, exact = _relevance_order(cand, rel, exact)
    relevance = minmax_rows(exact, cand >= 0) if normalize == "minmax" else rel
    picked, _, positions = core.mmr(cand, relevance, unit_rows(emb), k, lambda_, threads)
    out_scores = np.full(picked.shape, -np.inf, dtype=np.float32)
    rows, cols = np.nonzero(positions >= 0)
    out_scores[rows, cols] = rel[rows, positions[rows, cols]]
    return (picked[0], out_scores[0]) if single else (picked, out_scores)


class Diversified:
    """Any fitted model with its recommendations re-ranked by MMR.

    ``recommend(users, k)`` takes the model's top ``candidates`` per user and keeps ``k`` of
    them with :func:`diversify`, so a diversified model can be served, or measured with
    :func:`semrec.evaluate` (which only calls ``recommend``), like any other.

    Parameters
    ----------
    model : fitted model
        Anything with ``recommend(users, k, exclude_seen=..., items=...)``.
    item_embeddings : ndarray of float32, shape (n_items, dim)
        The vectors whose cosine measures how alike two items are: one row per item of
        ``model``, in its id order (checked against ``model.n_items_`` when it has one).
    lambda_ : float in [0, 1], default 0.5
        Weight of relevance, as in :func:`diversify`.
    candidates : int, default 100
        Items per user taken from ``model`` (at least ``k``).
    normalize : {"minmax", "none"}, default "minmax"
        As in :func:`diversify`.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, semrec
    >>> from semrec.rerank import Diversified
    >>> clicks = sp.random_array((20, 30), density=0.2, format="csr", rng=0, dtype=np.float32)
    >>> emb = np.random.default_rng(0).standard_normal((30, 8), dtype=np.float32)
    >>> varied = Diversified(semrec.MostPopular().fit(clicks), emb, lambda_=0.3, candidates=15)
    >>> varied.recommend([0, 1], k=5)[0].shape
    (2, 5)
    """

    def __init__(
        self,
        model: Any,
        item_embeddings: np.ndarray,
        lambda_: float = 0.5,
        *,
        candidates: int = 100,
        normalize: str = "minmax",
    ) -> None:
        if isinstance(model, type) or not hasattr(model, "recommend"):
            if isinstance(model, type):
                raise TypeError(
                    f"model must be a fitted model, got the class {model.__name__}; pass an "
                    "instance (a model fitted on your interactions)"
                )
            raise TypeError(f"model must have a recommend method, got {type(model).__name__}")
        self.model = model
        self.item_embeddings, _ = check.as_float32_matrix(item_embeddings, "item_embeddings")
        self._check_aligned()
        self.lambda_ = check.number(lambda_, "lambda_", minimum=0, maximum=1)
        self.candidates = check.positive_int(candidates, "candidates")
        self.normalize = check.choice(normalize, "normalize", NORMALIZE)

    def _check_aligned(self) -> None:
        """Rows of another catalogue would re-rank by the wrong items' vectors, silently."""
        n_items = getattr(self.model, "n_items_", None)  # None: unfitted, or not a semrec model
        rows = self.item_embeddings.shape[0]
        if n_items is not None and rows != n_items:
            raise ValueError(
                f"item_embeddings has {rows} rows but the model has {n_items} items "
                "(model.n_items_); pass one row per item, in the model's item id order"
            )

    def __repr__(self) -> str:
        return (
            f"Diversified({type(self.model).__name__}, lambda_={self.lambda_}, "
            f"candidates={self.candidates}, normalize={self.normalize!r})"
        )

    def recommend(self, users: Any, k: int = 10, **options: Any) -> tuple[np.ndarray, np.ndarray]:
        """The model's top ``candidates`` for each user, re-ranked to ``k`` by MMR.

        ``options`` (``exclude_seen``, ``items``) go to the model's ``recommend``, which sees
        the same users; the scores are the model's (padding ``-1`` / ``-inf``).
        """
        k = check.positive_int(k, "k")
        self._check_aligned()  # the model may have grown (add_items) since
        ids, scores = self.model.recommend(users, max(self.candidates, k), **options)
        return diversify(
            ids, scores, self.item_embeddings, k, self.lambda_, normalize=self.normalize
        )


def minmax_rows(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Rescale each row's ``valid`` entries to [0, 1] (a constant row becomes 1); float32.

    Entries outside ``valid`` are left as they are (the kernel never reads them).

    Examples
    --------
    >>> import numpy as np
    >>> from semrec.rerank import minmax_rows
    >>> minmax_rows(np.array([[1.0, 3.0, 9.0]]), np.array([[True, True, False]])).tolist()
    [[0.0, 1.0, 9.0]]
    """
    s = scores.astype(np.float64)
    lo = np.min(s, axis=1, keepdims=True, where=valid, initial=np.inf)
    hi = np.max(s, axis=1, keepdims=True, where=valid, initial=-np.inf)
    span = hi - lo
    with np.errstate(invalid="ignore"):
        scaled = np.where(span > 0, (s - lo) / np.where(span > 0, span, 1.0), 1.0)
    return np.ascontiguousarray(np.where(valid, scaled, s), dtype=np.float32)


def unit_rows(emb: np.ndarray) -> np.ndarray:
    """``emb`` itself when every row is unit length (or zero), else an L2-normalised copy.

    Examples
    --------
    >>> import numpy as np
    >>> from semrec.rerank import unit_rows
    >>> unit_rows(np.array([[3, 4], [0, 0]], dtype=np.float32)).tolist()
    [[0.6000000238418579, 0.800000011920929], [0.0, 0.0]]
    """
    norms = np.sqrt(np.einsum("ij,ij->i", emb, emb, dtype=np.float64))
    if np.all((np.abs(norms - 1.0) <= _UNIT_TOLERANCE) | (norms == 0)):
        return emb
    safe = np.where(norms > 0, norms, 1.0)[:, None]
    return np.ascontiguousarray(emb / safe, dtype=np.float32)


def _candidates(
    ids: Any, scores: Any, n_items: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """(ids int32, scores float32, scores float64 with -inf padding, whether 1-D), checked."""
    cand = lists.rectangular(ids, "ids", "pad the short rows with -1")
    rel = lists.rectangular(scores, "scores", "pad them like ids (any number where the id is -1)")
    if cand.size == 0 and not isinstance(ids, np.ndarray):  # [] reads as float64: no ids given
        cand = cand.astype(np.int32)
    if not np.issubdtype(cand.dtype, np.integer):
        raise TypeError(f"ids must hold integer item ids, got dtype {cand.dtype}")
    if not (np.issubdtype(rel.dtype, np.floating) or np.issubdtype(rel.dtype, np.integer)):
        raise TypeError(f"scores must hold real numbers, got dtype {rel.dtype}")
    single = cand.ndim == 1
    if single:
        cand, rel = cand.reshape(1, -1), rel.reshape(1, -1) if rel.ndim == 1 else rel
    if cand.ndim != 2:
        raise ValueError(
            f"ids must be 2-D (n_users, n_candidates) or 1-D, got an array of shape {cand.shape}"
        )
    if rel.shape != cand.shape:
        raise ValueError(
            f"scores must have the same shape as ids {np.shape(ids)}, got {np.shape(scores)}"
        )
    if cand.size and (cand.min() < -1 or cand.max() >= n_items):
        bad = cand[(cand < -1) | (cand >= n_items)][0]
        raise IndexError(
            f"ids holds item id {bad}, outside [0, {n_items}) (the rows of item_embeddings) "
            "or -1 padding"
        )
    real = cand >= 0
    given = rel[real]  # checked as given: float32 would turn 1e39 into inf
    if not np.isfinite(given).all():
        row = int(np.flatnonzero((~np.isfinite(rel) & real).any(axis=1))[0])
        raise ValueError(
            f"scores holds NaN or infinite values for real candidate ids (first in row {row}); "
            "mark missing candidates with id -1"
        )
    check.finite_float32(given, "scores", "values")  # NaN: refused above, naming the row
    exact = np.full(rel.shape, -np.inf)
    exact[real] = given
    with np.errstate(over="ignore"):  # padding may hold any number: the kernel never reads it
        rel = np.ascontiguousarray(rel, dtype=np.float32)
    return np.ascontiguousarray(cand, dtype=np.int32), rel, exact, single


def _relevance_order(
    cand: np.ndarray, rel: np.ndarray, exact: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's candidates by score (``exact``, float64) descending, then id ascending,
    padding last. The kernel compares float32 relevance and gives a tie to the first column:
    in this order that is the higher score, then the lower id (the documented rule), and
    ``lambda_=1`` is the exact score order. Rows already in order (``recommend`` output) are
    left as they are."""
    if cand.shape[1] < 2:
        return cand, rel, exact
    a, b = exact[:, :-1], exact[:, 1:]  # padding holds -inf: after any real candidate
    ordered = (a > b) | ((a == b) & (cand[:, :-1] <= cand[:, 1:]))
    rows = np.flatnonzero(~ordered.all(axis=1))
    if rows.size == 0:
        return cand, rel, exact
    cand, rel, exact = cand.copy(), rel.copy(), exact.copy()
    order = np.lexsort((cand[rows], -exact[rows]), axis=-1)
    for part in (cand, rel, exact):
        part[rows] = np.take_along_axis(part[rows], order, axis=1)
    return cand, rel, exact
