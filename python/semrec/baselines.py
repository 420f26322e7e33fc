"""Baseline recommenders printed beside every model: uniformly random and most popular."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from semrec import _validation as check
from semrec.similarity import topk


class _Baseline:
    interactions_: sp.csr_array
    n_items_: int

    def fit(self, interactions: Any) -> Any:
        if not sp.issparse(interactions) or interactions.format != "csr":
            raise TypeError(
                "interactions must be a scipy.sparse CSR matrix (users x items), "
                f"got {type(interactions).__name__}"
            )
        self.interactions_ = sp.csr_array(interactions)
        self.n_items_ = int(interactions.shape[1])
        self._fit()
        return self

    def _fit(self) -> None:
        pass

    def _users(self, users: Any) -> tuple[np.ndarray, bool]:
        if not hasattr(self, "interactions_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit(interactions)")
        arr = np.asarray(users)
        single = arr.ndim == 0
        arr = arr.reshape(-1)
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"users must be integer user indices, got dtype {arr.dtype}")
        n = self.interactions_.shape[0]
        if arr.size and (arr.min() < 0 or arr.max() >= n):
            bad = arr[(arr < 0) | (arr >= n)][0]
            raise IndexError(f"users holds user index {bad}, outside [0, {n})")
        return arr.astype(np.int32), single

    def _exclude(self, users: np.ndarray, exclude_seen: bool) -> sp.csr_array | None:
        return self.interactions_[users] if exclude_seen else None

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items() if not k.endswith("_"))
        return f"{type(self).__name__}({params})"


class MostPopular(_Baseline):
    """Recommend the items most users interacted with (ties: lower item index first).

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from semrec import MostPopular
    >>> model = MostPopular().fit(sp.csr_array([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0]]))
    >>> model.recommend(1, k=2)[0].tolist()
    [0, 2]
    """

    def _fit(self) -> None:
        counts = np.bincount(self.interactions_.indices, minlength=self.n_items_)
        self.popularity_ = counts.astype(np.float32)

    def recommend(
        self, users: Any, k: int = 10, *, exclude_seen: bool = True, items: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items by popularity per user; ``items`` restricts the candidates."""
        u, single = self._users(users)
        k = check.positive_int(k, "k")
        queries = np.ones((len(u), 1), dtype=np.float32)
        ids, scores = topk(
            queries,
            self.popularity_[:, None].copy(),
            k,
            metric="dot",
            exclude=self._exclude(u, exclude_seen),
            candidates=None if items is None else check.item_ids(items, "items", self.n_items_),
        )
        return (ids[0], scores[0]) if single else (ids, scores)


class Random(_Baseline):
    """Recommend uniformly random items (never seen ones when ``exclude_seen``).

    Parameters
    ----------
    random_state : None, int or numpy.random.Generator
        Seed; a call with the same users gives the same lists.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from semrec import Random
    >>> model = Random(random_state=0).fit(sp.csr_array([[1.0, 0.0, 0.0]]))
    >>> sorted(model.recommend(0, k=3)[0].tolist())
    [-1, 1, 2]
    """

    def __init__(self, random_state: Any = 0) -> None:
        self.random_state = random_state

    def recommend(
        self, users: Any, k: int = 10, *, exclude_seen: bool = True, items: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``k`` random items per user, scores uniform in [0, 1); padding ``-1`` / ``-inf``."""
        u, single = self._users(users)
        k = check.positive_int(k, "k")
        rng = np.random.default_rng(self.random_state)
        allowed = np.ones(self.n_items_, dtype=bool)
        if items is not None:
            allowed[:] = False
            allowed[check.item_ids(items, "items", self.n_items_)] = True
        ids = np.full((len(u), k), -1, dtype=np.int32)
        scores = np.full((len(u), k), -np.inf, dtype=np.float32)
        width = min(k, self.n_items_)
        for start in range(0, len(u), 1024):
            batch = u[start : start + 1024]
            s = rng.random((len(batch), self.n_items_), dtype=np.float32)
            s[:, ~allowed] = -np.inf
            if exclude_seen:
                seen = self.interactions_[batch].tocoo()
                s[seen.row, seen.col] = -np.inf
            top = np.argpartition(-s, width - 1, axis=1)[:, :width]
            top_scores = np.take_along_axis(s, top, axis=1)
            order = np.argsort(-top_scores, axis=1, kind="stable")
            top = np.take_along_axis(top, order, axis=1)
            top_scores = np.take_along_axis(top_scores, order, axis=1)
            valid = np.isfinite(top_scores)
            ids[start : start + len(batch), :width] = np.where(valid, top, -1)
            scores[start : start + len(batch), :width] = top_scores
        return (ids[0], scores[0]) if single else (ids, scores)
