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

import math
import os
from typing import Any, NoReturn

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from semrec import _validation as check
from semrec._base import Recommender, dot_scores
from semrec.datasets import Dataset
from semrec.datasets._embeddings import check_alignment
from semrec.errors import NotFittedError
from semrec.similarity import topk


def ridge_map(
    embeddings: np.ndarray,
    targets: np.ndarray,
    regularization: float = 1.0,
    *,
    fit_intercept: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form ridge regression from embeddings to target vectors.

    Minimises ``||E W + 1 b' - F||^2 + regularization * ||W||^2`` (``b`` unpenalised), solved
    in float64 from the normal equations.

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
    reg = _non_negative(regularization, "regularization")
    dim = e.shape[1]
    if fit_intercept:
        e = np.hstack([e, np.ones((e.shape[0], 1))])
    gram = e.T @ e
    gram[np.arange(dim), np.arange(dim)] += reg
    try:
        solution = scipy.linalg.solve(gram, e.T @ f, assume_a="pos")
    except (np.linalg.LinAlgError, scipy.linalg.LinAlgError):
        raise ValueError(
            "the normal equations are singular (too few warm items for the embedding "
            f"dimension, or duplicate items); use regularization > 0 (got {reg})"
        ) from None
    if fit_intercept:
        return solution[:dim], solution[dim]
    return solution, np.zeros(f.shape[1])


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
        Items with fewer stored training interactions are cold (mapped); the rest are warm and
        train the map.

    Attributes
    ----------
    weights_ : ndarray of float32, shape (dim, factors)
    intercept_ : ndarray of float32, shape (factors,)
    item_factors_ : ndarray of float32, shape (n_items, factors)
        ALS factors of warm items, mapped factors of cold and added items.
    item_biases_ : ndarray of float32 or None
        With an explicit ALS with biases, its item biases (mapped as one more output).
    cold_items_ : ndarray of int32
        Ids of the mapped items.
    item_embeddings_ : ndarray of float32, shape (n_items, dim)

    Notes
    -----
    ``save`` is not supported: save the ALS (``als.save``) and ``item_embeddings_`` and rebuild
    ``ColdStartALS(ALS.load(path), embeddings).fit()`` (the map is closed-form and cheap).

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

    def __init__(
        self,
        als: Any,
        item_embeddings: np.ndarray,
        *,
        regularization: float = 1.0,
        fit_intercept: bool = True,
        min_interactions: int = 1,
    ) -> None:
        self.als = als
        self.item_embeddings = item_embeddings
        self.regularization = regularization
        self.fit_intercept = fit_intercept
        self.min_interactions = min_interactions

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
        """
        if isinstance(interactions, Dataset):
            check_alignment(self.item_embeddings, interactions)
            interactions = interactions.interactions
        _non_negative(self.regularization, "regularization")
        min_count = check.positive_int(self.min_interactions, "min_interactions")
        if not hasattr(self.als, "fold_in"):
            raise TypeError(f"als must be a semrec.ALS, got {type(self.als).__name__}")
        if not hasattr(self.als, "item_factors_") and interactions is None:
            raise ValueError(
                f"als is not fitted; fit it first or call fit(interactions), got {self.als!r}"
            )
        if interactions is not None:
            self.als.fit(interactions)
        emb, _ = check.as_float32_matrix(self.item_embeddings, "item_embeddings")
        n_cf = self.als.n_items_
        if emb.shape[0] < n_cf:
            raise ValueError(
                f"item_embeddings has {emb.shape[0]} rows but the ALS has {n_cf} items; give one "
                "embedding per item (extra rows are text-only items)"
            )
        trained = check.without_zeros(self.als.interactions_)  # what the factors learnt from
        counts = np.bincount(trained.indices, minlength=n_cf)
        warm = np.zeros(emb.shape[0], dtype=bool)
        warm[:n_cf] = counts >= min_count
        if not warm.any():
            raise ValueError(
                f"no item has >= {min_count} training interactions; the map has no warm items "
                "to learn from"
            )
        targets = self._targets()
        weights, intercept = ridge_map(
            emb[warm],
            targets[warm[:n_cf]],
            self.regularization,
            fit_intercept=bool(self.fit_intercept),
        )
        self.weights_ = weights.astype(np.float32)
        self.intercept_ = intercept.astype(np.float32)
        self._n_cf_items = n_cf
        self.item_embeddings_ = emb
        mapped = np.empty((emb.shape[0], targets.shape[1]), dtype=np.float32)
        mapped[:n_cf] = targets
        cold = np.flatnonzero(~warm).astype(np.int32)
        mapped[cold] = self._map(emb[cold])
        self._set_items(mapped, cold)
        return self

    def _targets(self) -> np.ndarray:
        """What the map predicts: item factors, plus the item bias as a last column."""
        factors = np.asarray(self.als.item_factors_, dtype=np.float32)
        biases = getattr(self.als, "item_biases_", None)
        return factors if biases is None else np.hstack([factors, biases[:, None]])

    def _map(self, emb: np.ndarray) -> np.ndarray:
        return (emb @ self.weights_ + self.intercept_).astype(np.float32)

    def _set_items(self, mapped: np.ndarray, cold: np.ndarray) -> None:
        f = self.als.item_factors_.shape[1]
        self.item_factors_ = np.ascontiguousarray(mapped[:, :f])
        self.item_biases_ = mapped[:, f].copy() if mapped.shape[1] > f else None
        self.cold_items_ = cold

    # -- state -------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "item_factors_"):
            raise NotFittedError("this ColdStartALS is not fitted yet; call fit() first")

    @property
    def n_users_(self) -> int:
        self._check_fitted()
        return int(self.als.n_users_)

    @property
    def n_items_(self) -> int:
        self._check_fitted()
        return int(self.item_factors_.shape[0])

    @property
    def interactions_(self) -> sp.csr_array:  # type: ignore[override]
        """The ALS's interactions, with empty columns for the items it does not know."""
        self._check_fitted()
        return self._seen(np.arange(self.n_users_))

    def _seen(self, users: np.ndarray) -> sp.csr_array:
        rows = sp.csr_array(self.als.interactions_[users])
        return sp.csr_array(
            (rows.data, rows.indices, rows.indptr), shape=(users.size, self.n_items_)
        )

    # -- queries -----------------------------------------------------------------------------
    def _vectors(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """User and item vectors whose dot product is the score (biases folded in)."""
        queries = np.asarray(self.als.user_factors_[users], dtype=np.float32)
        items = self.item_factors_
        if self.item_biases_ is not None:
            offset = self.als.user_biases_[users] + np.float32(self.als.global_mean_)
            queries = np.hstack([queries, np.ones((users.size, 1), np.float32), offset[:, None]])
            items = np.hstack(
                [items, self.item_biases_[:, None], np.ones((items.shape[0], 1), np.float32)]
            )
        return np.ascontiguousarray(queries), np.ascontiguousarray(items)

    def _score_rows(self, users: np.ndarray) -> np.ndarray:
        return dot_scores(*self._vectors(users))

    def recommend(
        self,
        users: int | np.ndarray,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        items: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items (warm and cold alike) by ``user · item``, best first.

        Parameters and returns as :meth:`semrec.ALS.recommend`; ``items=model.cold_items_``
        ranks the text-only items only.
        """
        u, scalar = self._users(users)
        k = check.positive_int(k, "k")
        queries, vectors = self._vectors(u)
        ids, scores = topk(
            queries,
            vectors,
            k,
            metric="dot",
            exclude=self._seen(u) if exclude_seen else None,
            candidates=None if items is None else check.item_ids(items, "items", self.n_items_),
            num_threads=self.als.num_threads,
            check_finite=False,
        )
        return (ids[0], scores[0]) if scalar else (ids, scores)

    def similar_items(
        self, items: int | np.ndarray, k: int = 10, *, metric: str = "cosine"
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items whose factors are closest to each given item (itself excluded)."""
        self._check_fitted()
        rows, scalar = check.index_array(items, "items", self.n_items_, "item")
        itself = sp.csr_array(
            (np.ones(rows.size, np.float32), rows.astype(np.int32), np.arange(rows.size + 1)),
            shape=(rows.size, self.n_items_),
        )
        ids, scores = topk(
            np.ascontiguousarray(self.item_factors_[rows]),
            self.item_factors_,
            k,
            metric=metric,
            exclude=itself,
            num_threads=self.als.num_threads,
        )
        return (ids[0], scores[0]) if scalar else (ids, scores)

    # -- real time ---------------------------------------------------------------------------
    def add_items(self, embeddings: np.ndarray) -> np.ndarray:
        """Append text-only items; they are recommendable at once, with mapped factors.

        Parameters
        ----------
        embeddings : ndarray of float32, shape (n_new, dim) or (dim,)
            The new items' text embeddings (same encoder as ``item_embeddings``).

        Returns
        -------
        ndarray of int32
            The new items' ids (``n_items_`` before the call, onwards).

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> clicks = sp.csr_array(np.eye(4, dtype=np.float32))
        >>> emb = np.eye(4, dtype=np.float32)
        >>> als = semrec.ALS(factors=2, random_state=0, show_progress=False)
        >>> model = semrec.ColdStartALS(als, emb).fit(clicks)
        >>> model.add_items(np.array([0.5, 0.5, 0, 0], dtype=np.float32)).tolist()
        [4]
        """
        self._check_fitted()
        new, _ = check.as_float32_matrix(embeddings, "embeddings", allow_1d=True)
        dim = self.item_embeddings_.shape[1]
        if new.shape[1] != dim:
            raise ValueError(
                f"embeddings have dimension {new.shape[1]}, the model's item embeddings {dim}"
            )
        start = self.n_items_
        ids = np.arange(start, start + new.shape[0], dtype=np.int32)
        mapped = self._map(new)
        biases = self.item_biases_
        self.item_factors_ = np.vstack(
            [self.item_factors_, mapped[:, : self.item_factors_.shape[1]]]
        )
        if biases is not None:
            self.item_biases_ = np.concatenate([biases, mapped[:, -1]])
        self.item_embeddings_ = np.vstack([self.item_embeddings_, new])
        self.cold_items_ = np.concatenate([self.cold_items_, ids])
        return ids

    # -- persistence -------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> NoReturn:
        """Not supported: save the ALS and ``item_embeddings_``, then rebuild and ``fit()``."""
        raise NotImplementedError(
            "ColdStartALS.save is not supported: save model.als (als.save(path)) and "
            "model.item_embeddings_ (numpy.save), then rebuild "
            "ColdStartALS(ALS.load(path), embeddings).fit()"
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> NoReturn:
        """Not supported: see :meth:`save`."""
        raise NotImplementedError(
            "ColdStartALS.load is not supported: load the ALS with semrec.ALS.load and rebuild "
            "ColdStartALS(als, embeddings).fit()"
        )


def _real_matrix(x: Any, name: str) -> np.ndarray:
    if sp.issparse(x):
        raise TypeError(f"{name} must be a dense array, got a sparse matrix")
    arr = np.asarray(x)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (rows, dim), got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr.astype(np.float64)


def _non_negative(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return float(value)
