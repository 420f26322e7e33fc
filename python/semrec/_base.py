"""The contract every recommender keeps, and the shared pieces that implement it.

A model subclasses :class:`Recommender`, lists its hyperparameters in ``_PARAMS``, sets
``interactions_`` in ``fit`` and implements ``_score_rows(users)`` (dense scores of every item
for a batch of users). It then gets ``recommend``, ``score``, ``__repr__`` and the checks for
free, and ``save`` / ``load`` by implementing ``_state`` / ``_restore``. Models with a faster
path (a dot-product model uses :func:`semrec.topk`) override ``recommend``.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from semrec import _persist as persist
from semrec import _validation as check
from semrec.errors import FormatError, NotFittedError

# Users scored per dense block in the default recommend: bounds memory at 256 x n_items floats.
BATCH_USERS = 256


def dot_scores(queries: np.ndarray, items: np.ndarray, offset: float = 0.0) -> np.ndarray:
    """``queries @ items.T + offset`` as float32, the same for a row alone or in any batch.

    Computed in float64: BLAS sums one row (gemv) and a batch (gemm) in different orders, and
    a user's scores must not depend on who else is asked at the same time.
    """
    out = queries.astype(np.float64) @ items.T.astype(np.float64)
    return (out + offset).astype(np.float32)


def select_topk(
    scores: np.ndarray,
    k: int,
    *,
    exclude: sp.csr_array | None = None,
    allowed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` columns of each row of a dense score block, best first.

    ``exclude`` (CSR, same shape) and ``allowed`` (bool mask over columns) remove items; ties go
    to the lower id; rows with fewer than ``k`` eligible items are padded with ``-1`` / ``-inf``.
    Modifies ``scores`` in place.
    """
    n, n_items = scores.shape
    if allowed is not None:
        scores[:, ~allowed] = -np.inf
    if exclude is not None:
        rows = np.repeat(np.arange(exclude.shape[0]), np.diff(exclude.indptr))
        scores[rows, exclude.indices] = -np.inf
    ids = np.full((n, k), -1, dtype=np.int32)
    out = np.full((n, k), -np.inf, dtype=np.float32)
    width = min(k, n_items)
    if n == 0 or width == 0:
        return ids, out
    top = np.argpartition(-scores, width - 1, axis=1)[:, :width]
    top_scores = np.take_along_axis(scores, top, axis=1)
    # Sort by (score desc, id asc); a partition may cut a tie at the boundary, so re-select the
    # boundary ties by id to keep the documented tie-break.
    kth = top_scores.min(axis=1, keepdims=True)
    if width < n_items:
        ties = (scores == kth).sum(axis=1) > (top_scores == kth).sum(axis=1)
        for row in np.flatnonzero(ties):
            above = np.flatnonzero(scores[row] > kth[row, 0])
            tied = np.flatnonzero(scores[row] == kth[row, 0])[: width - above.size]
            top[row] = np.concatenate([above, tied])
            top_scores[row] = scores[row, top[row]]
    order = np.lexsort((top, -top_scores), axis=1)
    top = np.take_along_axis(top, order, axis=1)
    top_scores = np.take_along_axis(top_scores, order, axis=1)
    valid = top_scores > -np.inf
    ids[:, :width] = np.where(valid, top, -1)
    out[:, :width] = top_scores
    return ids, out


class Recommender:
    """Base of every model: the common verbs, argument checks, repr and persistence."""

    _PARAMS: ClassVar[tuple[str, ...]] = ()
    _FORMAT_NAME: ClassVar[str] = ""
    _FORMAT_VERSION: ClassVar[int] = 1
    interactions_: sp.csr_array

    def __repr__(self) -> str:
        params = ", ".join(f"{p}={getattr(self, p)!r}" for p in self._PARAMS)
        return f"{type(self).__name__}({params})"

    # -- state -------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "interactions_"):
            name = type(self).__name__
            raise NotFittedError(f"this {name} is not fitted yet; call fit(interactions) first")

    @property
    def n_users_(self) -> int:
        self._check_fitted()
        return int(self.interactions_.shape[0])

    @property
    def n_items_(self) -> int:
        self._check_fitted()
        return int(self.interactions_.shape[1])

    def _users(self, users: Any) -> tuple[np.ndarray, bool]:
        self._check_fitted()
        return check.index_array(users, "users", self.n_users_, "user")

    def _seen_rows(self, users: np.ndarray) -> sp.csr_array:
        """The items each listed user has interacted with (what ``exclude_seen`` removes)."""
        return sp.csr_array(self.interactions_[users])

    # -- scoring -----------------------------------------------------------------------------
    def _score_rows(self, users: np.ndarray) -> np.ndarray:
        """Dense float32 scores of every item for each user id, shape (len(users), n_items)."""
        raise NotImplementedError

    def _rank_rows(self, users: np.ndarray) -> np.ndarray:
        """The scores ``recommend`` ranks by: ``_score_rows`` unless a model keeps a finer
        dtype for its ties (its returned scores are float32 either way)."""
        return np.array(self._score_rows(users), dtype=np.float32)

    def score(self, users: int | np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores of every listed item for every listed user.

        Returns an array of shape (n_users, n_items) (1-D for a scalar user); higher is better.
        """
        u, scalar = self._users(users)
        i, _ = check.index_array(items, "items", self.n_items_, "item")
        out = np.empty((u.size, i.size), dtype=np.float32)
        for start in range(0, u.size, BATCH_USERS):
            out[start : start + BATCH_USERS] = self._score_rows(u[start : start + BATCH_USERS])[
                :, i
            ]
        return out[0] if scalar else out

    def recommend(
        self,
        users: int | np.ndarray,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        items: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items for each user, best first.

        Parameters
        ----------
        users : int or 1-D array of int
            User ids; a scalar gives 1-D results.
        k : int, default 10
        exclude_seen : bool, default True
            Never return items in the user's training interactions.
        items : 1-D array of int, optional
            Only recommend among these item ids.

        Returns
        -------
        ids : ndarray of int32, shape (n_users, k)
            Padded with -1 when fewer than ``k`` items are eligible.
        scores : ndarray of float32, shape (n_users, k)
            Padded with -inf.
        """
        u, scalar = self._users(users)
        k = check.positive_int(k, "k")
        allowed = None
        if items is not None:
            allowed = np.zeros(self.n_items_, dtype=bool)
            allowed[check.item_ids(items, "items", self.n_items_)] = True
        ids = np.empty((u.size, k), dtype=np.int32)
        scores = np.empty((u.size, k), dtype=np.float32)
        for start in range(0, u.size, BATCH_USERS):
            batch = u[start : start + BATCH_USERS]
            exclude = self._seen_rows(batch) if exclude_seen else None
            ids[start : start + batch.size], scores[start : start + batch.size] = select_topk(
                self._rank_rows(batch), k, exclude=exclude, allowed=allowed
            )
        return (ids[0], scores[0]) if scalar else (ids, scores)

    # -- persistence -------------------------------------------------------------------------
    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-serialisable metadata and the arrays that make up the fitted model."""
        raise NotImplementedError

    def _restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        """Inverse of ``_state``; raise KeyError/ValueError/TypeError on damaged content."""
        raise NotImplementedError

    def _params(self) -> dict[str, Any]:
        params = {p: getattr(self, p) for p in self._PARAMS}
        if "random_state" in params and not (
            params["random_state"] is None or isinstance(params["random_state"], int)
        ):
            params["random_state"] = None  # a Generator is not data; its job is done after fit
        return params

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the fitted model to ``path`` (``.npz`` arrays plus JSON metadata; no pickle)."""
        self._check_fitted()
        meta, arrays = self._state()
        arrays = arrays | persist.csr_arrays(self.interactions_, "interactions")
        meta = {"params": self._params(), "shape": list(self.interactions_.shape), **meta}
        persist.write(path, self._FORMAT_NAME, self._FORMAT_VERSION, meta, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Any:
        """Read a model written by ``save``.

        Raises ``FileNotFoundError`` for a missing file and :class:`semrec.FormatError` for a
        corrupt file or one of another format or version.
        """
        meta, arrays = persist.read(path, cls._FORMAT_NAME, cls._FORMAT_VERSION)
        try:
            model = cls._from_params(meta["params"], arrays)
            shape = tuple(int(n) for n in meta["shape"])
            model.interactions_ = persist.csr_from(arrays, "interactions", shape)
            model._restore(meta, arrays)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise FormatError(f"{path} is corrupt: {exc}") from None
        return model

    @classmethod
    def _from_params(cls, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> Any:
        """A fresh model from saved hyperparameters (override when __init__ needs arrays)."""
        return cls(**params)
