"""Cold-start items in collaborative-filtering space: a ridge map from text to ALS factors.

ALS learns nothing about an item nobody interacted with. A linear map fitted on the warm items,
from their text embeddings to their ALS item factors, gives a text-only item factors that live
in the same space as everyone else's, so it is scored by ``user · item`` like any warm item and
can be ranked, blended (:class:`semrec.Hybrid`) and compared with them. The map is ridge
regression in closed form: ``[W; b] = (E'E + lambda D)^-1 E'F`` with ``E`` the warm items'
embeddings (plus a column of ones for the intercept ``b``), ``F`` their factors and ``D`` the
identity without the intercept entry (the intercept is not penalised).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from semrec import _validation as check
from semrec._base import Recommender, load_nested, nest
from semrec._encoding import holds_text
from semrec._model_lock import fits_model
from semrec._persist import Saved, constructor_count, constructor_rows
from semrec.als import ALS, user_rows
from semrec.datasets import Dataset
from semrec.datasets._embeddings import check_alignment


def ridge_map(
    embeddings: np.ndarray,
    targets: np.ndarray,
    regularization: float = 1.0,
    *,
    fit_intercept: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form ridge regression from embeddings to target vectors.

    Minimises ``||E W + 1 b' - F||^2 + regularization * ||W||^2`` (``b`` unpenalised), solved
    in float64 from the normal equations (summed over blocks of rows: no float64 copy of
    ``embeddings`` is made).

    Parameters
    ----------
    embeddings : float array, shape (n, dim)
        Inputs ``E`` (one row per warm item).
    targets : float array, shape (n, f)
        Outputs ``F`` (e.g. ALS item factors).
    regularization : float, default 1.0
        ``lambda >= 0``; 0 is plain least squares (needs ``E`` of full column rank).
    fit_intercept : bool, default True
        Also fit the offset ``b`` (otherwise ``b = 0``).

    Returns
    -------
    weights : ndarray of float64, shape (dim, f)
    intercept : ndarray of float64, shape (f,)

    Examples
    --------
    >>> import numpy as np
    >>> from semrec.coldstart import ridge_map
    >>> e = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> w, b = ridge_map(e, 2 * e + 1, regularization=0.0)
    >>> bool(np.allclose(w, [[2, 0], [0, 2]]) and np.allclose(b, [1, 1]))
    True
    """
    e = _real_matrix(embeddings, "embeddings")
    f = _real_matrix(targets, "targets")
    if e.shape[0] != f.shape[0]:
        raise ValueError(
            f"embeddings and targets need one row per item each, got {e.shape[0]} and "
            f"{f.shape[0]} rows"
        )
    if e.shape[0] == 0:
        raise ValueError("embeddings is empty (0 rows); the map needs warm items to learn from")
    reg = check.number(regularization, "regularization", minimum=0)
    intercept = check.flag(fit_intercept, "fit_intercept")  # "no" is truthy
    return _ridge(e, f, None, reg, intercept, ("embeddings", "targets"))


# Rows converted to float64 at a time: E'E and E'F are summed over blocks, so no float64 copy
# of all the embeddings (4x their float32 bytes with the ones column) is ever made.
_BLOCK_ROWS = 4096


def _ridge(
    e: np.ndarray,
    f: np.ndarray,
    rows: np.ndarray | None,
    reg: float,
    fit_intercept: bool,
    names: tuple[str, str],
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`ridge_map` from the rows of ``e`` and ``f`` selected by the mask ``rows`` (all
    of ``f``'s rows when None; ``e`` may have more); ``names`` are theirs in errors."""
    dim = e.shape[1]
    size = dim + 1 if fit_intercept else dim
    gram, rhs = np.zeros((size, size)), np.zeros((size, f.shape[1]))
    with np.errstate(over="ignore", invalid="ignore"):
        for eb, fb in _blocks(e, f, rows, names):
            gram[:dim, :dim] += eb.T @ eb
            rhs[:dim] += eb.T @ fb
            if fit_intercept:  # the ones column of E, without making it: sums and the count
                sums = eb.sum(axis=0)
                gram[dim, :dim] += sums
                gram[:dim, dim] += sums
                gram[dim, dim] += eb.shape[0]
                rhs[dim] += fb.sum(axis=0)
    if not (np.isfinite(gram).all() and np.isfinite(rhs).all()):
        raise _too_large(e, f, rows, names, reg, "E'E overflows float64")
    gram[np.arange(dim), np.arange(dim)] += reg  # the intercept (last) is not penalised
    # Equilibrated by powers of two (D G D y = D rhs, solution D y): embeddings of norm 1e10
    # beside the intercept's count span 20 orders on the diagonal, which LAPACK's condition
    # estimate reads as ill-conditioned (a LinAlgWarning) though the scaled system is not.
    # Scaling by powers of two is exact, so Cholesky's roundings are the unscaled ones.
    scale = np.ldexp(1.0, -(np.frexp(np.diag(gram))[1] // 2))
    try:
        solution = scale[:, None] * scipy.linalg.solve(
            gram * scale[:, None] * scale, rhs * scale[:, None], assume_a="pos"
        )
    except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
        if reg > 0:  # positive definite in exact arithmetic: the penalty was lost in rounding
            top = float(np.abs(np.diag(gram)).max())
            raise _too_large(e, f, rows, names, reg, f"E'E reaches {top:.3g}") from None
        raise ValueError(
            "the normal equations are singular (too few warm items for the embedding "
            f"dimension, or duplicate items); use regularization > 0 (got {reg})"
        ) from None
    if not np.isfinite(solution).all():
        raise _too_large(e, f, rows, names, reg, "the solution overflows")
    if fit_intercept:
        return solution[:dim], solution[dim]
    return solution, np.zeros(f.shape[1])


def _blocks(
    e: np.ndarray, f: np.ndarray, rows: np.ndarray | None, names: tuple[str, str]
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Blocks of the selected rows of ``e`` and ``f``, checked finite, as float64."""
    n = f.shape[0]  # e may have more rows (text-only items), never selected
    for start in range(0, n, _BLOCK_ROWS):
        part = slice(start, min(start + _BLOCK_ROWS, n))
        eb, fb = e[part], f[part]
        if rows is not None:
            eb, fb = eb[rows[part]], fb[rows[part]]
        for block, name in ((eb, names[0]), (fb, names[1])):
            if not np.isfinite(block).all():
                raise ValueError(f"{name} contains NaN or infinite values")
        yield eb.astype(np.float64), fb.astype(np.float64)


def _too_large(
    e: np.ndarray,
    f: np.ndarray,
    rows: np.ndarray | None,
    names: tuple[str, str],
    reg: float,
    what: str,
) -> ValueError:
    tops = [float(np.abs(eb).max()) for eb, _ in _blocks(e, f, rows, names) if eb.size]
    top = max(tops, default=0.0)
    return ValueError(
        f"{names[0]} are too large for the ridge map (values up to {top:.3g}: {what}, beside "
        f"which regularization={reg:g} is lost in floating point); rescale the embeddings, e.g. "
        "normalise their rows to unit length (or raise regularization)"
    )


class ColdStartALS(Recommender):
    """ALS whose items without interactions get factors mapped from their text embeddings.

    Warm items keep their ALS factors; items with fewer than ``min_interactions`` training
    interactions (and every item added later with :meth:`add_items`) get
    ``embedding @ weights_ + intercept_`` from a ridge map (:func:`ridge_map`) fitted on the
    warm items. Users are the ALS's users, read live (``ALS.fold_in`` / ``update`` apply).

    Parameters
    ----------
    als : semrec.ALS
        Fitted, or fitted by :meth:`fit` when interactions are given.
    item_embeddings : ndarray of float32, shape (n_items, dim)
        One text embedding per item. Rows beyond the ALS's items are text-only items that come
        after them (ids ``als.n_items_, ...``).
    regularization : float, default 1.0
        Ridge penalty ``lambda`` of the map.
    fit_intercept : bool, default True
        Fit an unpenalised offset in the map.
    min_interactions : int, default 1
        Items with fewer non-zero interactions in the ALS's fitted data (``als.item_counts_``:
        streamed ``update`` / ``fold_in`` clicks do not count, they refit no item) are cold
        (mapped); the rest are warm and train the map.

    Attributes
    ----------
    weights_ : ndarray of float32, shape (dim, outputs)
    intercept_ : ndarray of float32, shape (outputs,)
        The map; ``outputs`` is ``factors``, plus one (the item bias, last) with an explicit
        ALS with biases.
    item_factors_ : ndarray of float32, shape (n_items, factors)
        ALS factors of warm items, mapped factors of cold and added items.
    item_biases_ : ndarray of float32 or None
        With an explicit ALS with biases, its item biases (mapped as one more output).
    cold_items_ : ndarray of int32
        Ids of the mapped items.
    item_embeddings_ : ndarray of float32, shape (n_items, dim)

    Notes
    -----
    ``fold_in`` and ``update`` go to the ALS (the users are its users) and return its user
    factors; they take interactions with the ALS's items only (a text-only item has no
    factors to learn from until the ALS is refitted). ``save`` writes the ALS in the same file.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, semrec
    >>> rng = np.random.default_rng(0)
    >>> clicks = sp.random_array((40, 30), density=0.2, format="csr", rng=0, dtype=np.float32)
    >>> emb = rng.standard_normal((32, 8), dtype=np.float32)  # 2 text-only items at the end
    >>> als = semrec.ALS(factors=4, iterations=3, random_state=0, show_progress=False)
    >>> model = semrec.ColdStartALS(als, emb).fit(clicks)
    >>> model.n_items_, model.recommend(0, k=3, items=[30, 31])[0].shape
    (32, (3,))
    """

    _PARAMS = ("als", "regularization", "fit_intercept", "min_interactions")
    _FORMAT_NAME = "semrec.ColdStartALS"
    _FITTED_BY = "item_factors_"

    def __init__(
        self,
        als: Any,
        item_embeddings: np.ndarray,
        *,
        regularization: float = 1.0,
        fit_intercept: bool = True,
        min_interactions: int = 1,
    ) -> None:
        self.item_embeddings = item_embeddings
        self._set_params(locals())

    @fits_model
    def fit(self, interactions: Any = None) -> ColdStartALS:
        """Fit the map on the warm items (fitting the ALS first when ``interactions`` is given).

        Parameters
        ----------
        interactions : scipy.sparse CSR or semrec.datasets.Dataset, optional
            Fit the ALS on these first. A Dataset is checked against ``item_embeddings`` when
            those carry item ids (:class:`semrec.datasets.ItemEmbeddings`).

        Returns
        -------
        self

        Raises
        ------
        TypeError, ValueError
            A refused fit (bad settings or inputs, no warm item, a singular map) leaves this
            model and its ALS as they were.
        """
        if isinstance(interactions, Dataset):
            check_alignment(self.item_embeddings, interactions)
            interactions = interactions.interactions
        reg, min_count, fit_intercept = self._settings()
        if not isinstance(self.als, ALS):
            raise TypeError(
                f"als must be a semrec.ALS (fitted, or fitted by fit(interactions)), got "
                f"{type(self.als).__name__}: ColdStartALS maps item embeddings to ALS item "
                "factors, which other models do not have"
            )
        emb, _ = check.as_float32_matrix(self.item_embeddings, "item_embeddings")
        if interactions is None:
            if not hasattr(self.als, "item_factors_"):
                raise ValueError(
                    f"als is not fitted; fit it first or call fit(interactions), got {self.als!r}"
                )
            self._fit_map(emb, reg, min_count, fit_intercept)
            return self
        # What can be refused from the interactions is refused before the ALS refits; what
        # fails after its fit (a singular map) puts it back: a refused fit changes nothing.
        if len(shape := getattr(interactions, "shape", ())) == 2:
            _enough_rows(emb, shape[1])
        _check_warm(interactions, min_count)
        _fit_als_then(
            self.als, interactions, lambda: self._fit_map(emb, reg, min_count, fit_intercept)
        )
        return self

    def _fit_map(self, emb: np.ndarray, reg: float, min_count: int, fit_intercept: bool) -> None:
        """Fit the map on the fitted ALS's warm items and map the others (``fit``'s work)."""
        n_cf = self.als.n_items_
        _enough_rows(emb, n_cf)
        counts = self.als.item_counts_  # what the factors learnt from (not streamed clicks)
        warm = np.zeros(emb.shape[0], dtype=bool)
        warm[:n_cf] = counts >= min_count
        if not warm.any():
            raise _no_warm_items(min_count)
        targets = self._targets()
        weights, intercept = _ridge(  # the warm rows, taken block by block (no copy)
            emb,
            targets,
            warm[:n_cf],
            reg,
            fit_intercept,
            ("item_embeddings", "the ALS item factors"),
        )
        self.weights_ = weights.astype(np.float32)
        self.intercept_ = intercept.astype(np.float32)
        self.item_embeddings_ = emb
        mapped = np.empty((emb.shape[0], targets.shape[1]), dtype=np.float32)
        mapped[:n_cf] = targets
        cold = np.flatnonzero(~warm).astype(np.int32)
        mapped[cold] = self._map(emb[cold], "item_embeddings")
        self._set_items(mapped, cold)

    def _targets(self) -> np.ndarray:
        """What the map predicts: item factors, plus the item bias as a last column."""
        factors = np.asarray(self.als.item_factors_, dtype=np.float32)
        biases = self.als.item_biases_
        return factors if biases is None else np.hstack([factors, biases[:, None]])

    def _map(self, emb: np.ndarray, name: str) -> np.ndarray:
        """Mapped factors of embeddings ``emb`` (argument ``name``), float32 and finite."""
        with np.errstate(over="ignore", invalid="ignore"):
            mapped = (emb @ self.weights_ + self.intercept_).astype(np.float32)
        if not np.isfinite(mapped).all():
            raise ValueError(
                f"{name} are too large: their mapped factors overflow float32 (values up to "
                f"{float(np.abs(emb).max()):.3g}); rescale them like the embeddings the map "
                "was fitted on (e.g. normalise the rows)"
            )
        return mapped

    def _set_items(self, mapped: np.ndarray, cold: np.ndarray) -> None:
        f = self.als.factors
        self.item_factors_ = np.ascontiguousarray(mapped[:, :f])
        self.item_biases_ = mapped[:, f].copy() if mapped.shape[1] > f else None
        self.cold_items_ = cold
        self._items = self._item_vectors(self.item_factors_, self.item_biases_)
        self._mapped_for = self.als.item_factors_  # the ALS fit these items are mapped for

    def _check_als(self) -> None:
        """Refuse to score once the ALS inside was refitted: its users would then meet item
        factors mapped for another fit (silently wrong, or a shape error with other factors).
        A refit allocates new factors; update and fold_in change only the user side. A copy
        or an unpickled model holds equal factors in new memory: compared once, then kept."""
        now, mapped_for = self.als.item_factors_, self._mapped_for
        if now.shape == mapped_for.shape and (
            np.may_share_memory(now, mapped_for) or np.array_equal(now, mapped_for)
        ):
            self._mapped_for = now
            return
        raise ValueError(
            "the ALS inside this ColdStartALS was refitted after the map was fitted, so the "
            "mapped item factors belong to another fit; call fit() again (with no arguments "
            "it keeps the ALS as it is and refits the map). Like every fit it starts from "
            "item_embeddings: to keep the items added with add_items, set "
            "model.item_embeddings = model.item_embeddings_ first"
        )

    @staticmethod
    def _item_vectors(factors: np.ndarray, biases: np.ndarray | None) -> np.ndarray:
        """What the users' vectors meet in the dot product: ``[y, b_i, 1]`` with biases."""
        if biases is None:
            return factors
        ones = np.ones((factors.shape[0], 1), np.float32)
        return np.ascontiguousarray(np.hstack([factors, biases[:, None], ones]))

    # -- state -------------------------------------------------------------------------------
    def _shape(self) -> tuple[int, int]:
        return self.als.n_users_, self.item_factors_.shape[0]

    @property
    def interactions_(self) -> sp.csr_array:
        """The ALS's interactions, with empty columns for the items it does not know: its
        read-only arrays (``.copy()`` it to edit)."""
        self._check_fitted()
        seen = self.als.interactions_
        return sp.csr_array((seen.data, seen.indices, seen.indptr), (self.n_users_, self.n_items_))

    @property
    def _threads(self) -> int | None:
        return self.als.num_threads

    # -- the contract's hooks --------------------------------------------------------------------
    def _seen_rows(self, users: np.ndarray) -> sp.csr_array:
        # The ALS's own rows of these users (its interactions_ merges the clicks since its
        # last read: O(all interactions)), widened to the text-only items.
        rows = self.als._seen_rows(users)
        shape = (users.size, self.n_items_)
        return sp.csr_array((rows.data, rows.indices, rows.indptr), shape=shape)

    def _vectors(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """User and item vectors whose dot product is the score (biases folded in)."""
        self._check_als()
        # These users' rows only: with biases, user_factors_ copies every user after a click.
        factors, biases = user_rows(self.als, users)
        queries = np.asarray(factors, dtype=np.float32)
        if self.item_biases_ is not None:
            offset = biases + np.float32(self.als.global_mean_)
            queries = np.hstack([queries, np.ones((users.size, 1), np.float32), offset[:, None]])
        return np.ascontiguousarray(queries), self._items  # built once per change of the items

    def _item_space(self) -> tuple[np.ndarray, str]:
        self._check_als()  # the items' neighbours change with the ALS's fit
        return self.item_factors_, "cosine"

    def _fold_in(
        self, history: Any, users: np.ndarray | None, times: np.ndarray | None
    ) -> np.ndarray:
        self._check_als()
        n_cf = self.als.n_items_
        history = check.canonical_csr(history, "history", allow_empty=True)  # before slicing
        if history[:, n_cf:].nnz:
            raise ValueError(
                f"history holds interactions with text-only items (ids >= {n_cf}); the ALS has "
                "no factors for them to learn from: refit the ALS and the map"
            )
        return self.als.fold_in(sp.csr_array(history[:, :n_cf]), users=users)

    def _update(self, user: int, item: int, weight: float, t: float | None) -> np.ndarray:
        self._check_als()
        if item >= self.als.n_items_:
            raise ValueError(
                f"item {item} is a text-only item; the ALS has no factors for it to learn "
                "from: refit the ALS and the map"
            )
        return self.als.update(user, item, weight)

    def _explain(self, u: int, i: int, k: int) -> Any:
        """How the score splits into terms (see :meth:`explain`): the ALS's own decomposition
        (:meth:`semrec.ALS.explain`), one term per history item, ``c_uj * y_i^T W_u y_j``, with
        ``y_i`` the item's factors here, mapped from its text for a cold item. The user's
        factors depend on the warm items only, so the split holds for a cold item exactly as
        for a warm one: exact up to rounding once the user was solved against the current item
        factors (after ``fold_in`` or ``update``), nearly so after ``fit``; ``attrs["rest"]``
        holds ``mean + b_i`` with biases."""
        from semrec.als import history_terms
        from semrec.explain import explanation

        self._check_als()
        vector = self.item_factors_[i]
        if self.item_biases_ is not None:
            vector = np.append(vector, np.float32(1))  # [y_i, 1]: the solve's z_i
        ids, parts = history_terms(self.als, u, vector)
        score = float(self.score(u, [i])[0])
        return explanation(ids, parts, k, user=u, item=i, score=score)

    def _add_items(self, items: Any) -> np.ndarray:
        self._check_als()  # the current map belongs to another fit of the ALS
        if holds_text(items):
            raise TypeError(
                "ColdStartALS.add_items takes the new items' embeddings, not their texts: "
                "encode the texts with the encoder that embedded item_embeddings, e.g. "
                "model.add_items(encoder.encode(texts))"
            )
        new, _ = check.as_float32_matrix(items, "items", allow_1d=True)
        dim = self.item_embeddings_.shape[1]
        if new.shape[1] == 0:  # add_items([]); rows of the right width may be none (a no-op)
            raise ValueError("items is empty; give at least one embedding")
        if new.shape[1] != dim:
            raise ValueError(
                f"items have dimension {new.shape[1]}, the model's item embeddings {dim}; "
                "embed them with the encoder that embedded item_embeddings"
            )
        start = self.n_items_
        ids = np.arange(start, start + new.shape[0], dtype=np.int32)
        mapped = self._map(new, "items")
        biases = self.item_biases_
        self.item_factors_ = np.vstack(
            [self.item_factors_, mapped[:, : self.item_factors_.shape[1]]]
        )
        if biases is not None:
            self.item_biases_ = np.concatenate([biases, mapped[:, -1]])
        self.item_embeddings_ = np.vstack([self.item_embeddings_, new])
        self.cold_items_ = np.concatenate([self.cold_items_, ids])
        self._items = self._item_vectors(self.item_factors_, self.item_biases_)
        self._items_changed(start, self._items)  # rows appended: only those are indexed
        return ids

    # -- persistence: the ALS inside the same file -----------------------------------------------
    def _params(self) -> dict[str, Any]:
        return {p: v for p, v in super()._params().items() if p != "als"}

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        self._check_als()
        meta, arrays = nest("als", self.als)
        arrays |= {
            "item_embeddings": self.item_embeddings_,
            "constructor_items": constructor_count(self.item_embeddings),
            "weights": self.weights_,
            "intercept": self.intercept_,
            "item_factors": self.item_factors_,
            "cold_items": self.cold_items_,
        }
        if self.item_biases_ is not None:
            arrays["item_biases"] = self.item_biases_
        return meta, arrays

    @classmethod
    def _from_params(cls, params: dict[str, Any], saved: Saved) -> Any:
        als = load_nested(saved, "als")
        return cls(als, constructor_rows(saved), **params)

    def _settings(self) -> tuple[float, int, bool]:
        """The map's hyperparameters, checked: (regularization, min_interactions,
        fit_intercept)."""
        return (
            check.number(self.regularization, "regularization", minimum=0),
            check.positive_int(self.min_interactions, "min_interactions"),
            check.flag(self.fit_intercept, "fit_intercept"),
        )

    def _restore(self, saved: Saved) -> None:
        self._settings()  # the saved hyperparameters, checked as fit checks them
        emb = saved.array("item_embeddings", np.float32, (None, None))  # added items too
        n_items, dim = emb.shape
        factors = self.als.factors + (1 if self.als.biases else 0)
        self.weights_ = saved.array("weights", np.float32, (dim, factors))
        self.intercept_ = saved.array("intercept", np.float32, (factors,))
        self.item_embeddings_ = emb
        mapped = saved.array("item_factors", np.float32, (n_items, self.als.factors))
        if self.als.biases:
            biases = saved.array("item_biases", np.float32, (n_items,))
            mapped = np.column_stack([mapped, biases])
        cold = saved.array("cold_items", np.int32, (None,), minimum=0, below=n_items)
        if n_items < self.als.n_items_:
            raise saved.error("item_embeddings", "has fewer rows than the ALS has items")
        self._set_items(np.ascontiguousarray(mapped, dtype=np.float32), cold)


@fits_model  # on the ALS inside: put back as it was when what follows its fit raises
def _fit_als_then(als: ALS, interactions: Any, then: Callable[[], None]) -> None:
    """Fit ``als`` on ``interactions``, then call ``then``; all of it or none."""
    als.fit(interactions)
    then()


def _check_warm(interactions: Any, min_count: int) -> None:
    """Refuse interactions in which no item reaches ``min_count`` training interactions,
    counted as the ALS counts them (``item_counts_``: non-zero weights, duplicates summed)."""
    if min_count <= 1:  # one non-zero weight is enough, and the ALS refuses none at all
        return
    train = check.canonical_csr(interactions, "interactions")
    counts = np.bincount(train.indices[train.data != 0], minlength=train.shape[1])
    if counts.any() and counts.max() < min_count:  # only zeros: the ALS's own refusal says so
        raise _no_warm_items(min_count)


def _no_warm_items(min_count: int) -> ValueError:
    return ValueError(
        f"no item has >= {min_count} training interactions (min_interactions); the map has no "
        "warm items to learn from"
    )


def _enough_rows(emb: np.ndarray, n_items: int) -> None:
    if emb.shape[0] < n_items:
        raise ValueError(
            f"item_embeddings has {emb.shape[0]} rows but the ALS has {n_items} items; give one "
            "embedding per item (extra rows are text-only items)"
        )


def _real_matrix(x: Any, name: str) -> np.ndarray:
    if sp.issparse(x):
        raise TypeError(f"{name} must be a dense array, got a sparse matrix")
    arr = np.asarray(x)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (rows, dim), got shape {arr.shape}")
    return arr  # checked finite and converted to float64 block by block (_blocks)
