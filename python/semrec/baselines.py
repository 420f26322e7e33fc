"""Baseline recommenders printed beside every model: uniformly random and most popular."""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from semrec import _hyperparameters as hyperparameters
from semrec import _validation as check
from semrec._base import Recommender
from semrec._knn_graph import replace_rows
from semrec._model_lock import fits_model
from semrec._persist import Saved
from semrec._seen import KeepsSeen

_HINTS = {
    "add_items": "a baseline knows items by their interactions only; refit it",
    "similar_items": "a baseline has no notion of item similarity; use ItemKNN or ALS",
    "explain": "a baseline's score comes from no user history (popularity or chance)",
}


class _Baseline(KeepsSeen, Recommender):
    _PARAMS: ClassVar[tuple[str, ...]] = ()
    _HINTS = _HINTS
    _FITTED_BY: ClassVar[str] = "_seen"  # the kernels' layout; interactions_ is scipy's

    @fits_model
    def fit(self, interactions: Any) -> Self:
        """Remember the training interactions (users x items CSR); returns ``self``."""
        self._seen = check.canonical_csr(interactions, "interactions")
        self._fit()
        return self

    def _fit(self) -> None:
        pass

    # Real time: a baseline's scores need no user state, so fold_in and update only record
    # what the user has seen (and new users); the scores stay those of fit (MostPopular's
    # counts are the training users', as ItemKNN's graph waits for the next fit).
    def _fold_in(
        self, history: Any, users: np.ndarray | None, times: np.ndarray | None
    ) -> np.ndarray:
        rows = check.canonical_csr(history, "history", allow_empty=True)
        if users is not None:
            self._seen = replace_rows(self._seen, users, rows, self.n_items_)
        return np.zeros((rows.shape[0], 0), dtype=np.float32)

    def _update(self, user: int, item: int, weight: float, t: float | None) -> np.ndarray:
        n_users, n_items = self._seen.shape
        old = self._seen[[user]] if user < n_users else sp.csr_array((1, n_items), dtype=np.float32)
        cols = np.r_[old.indices, item].astype(np.int32)  # a seen 0 stays an entry
        values = np.r_[old.data, np.float32(weight)]
        row = sp.csr_array((values, cols, np.array([0, cols.size])), shape=(1, n_items))
        self._seen = replace_rows(self._seen, np.array([user]), row, n_items)
        return np.zeros(0, dtype=np.float32)

    # The state is the training matrix; the rest is derived from it.
    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        from semrec._persist import csr_arrays

        shape = list(self._seen.shape)
        return {"shape": shape}, csr_arrays(self._seen, "interactions")

    def _restore(self, saved: Saved) -> None:
        self._seen = saved.csr("interactions", saved.shape("shape"))
        self._fit()


class MostPopular(_Baseline):
    """Recommend the items most users interacted with (ties: lower item index first).

    ``score(user, item)`` is the item's number of training users, the same for everyone.
    ``update`` and ``fold_in`` add users and seen items (returning empty user vectors: the
    scores need none); the counts stay those of ``fit`` until the next fit.

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from semrec import MostPopular
    >>> model = MostPopular().fit(sp.csr_array([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0]]))
    >>> model.recommend(1, k=2)[0].tolist()
    [0, 2]
    """

    _FORMAT_NAME = "semrec.MostPopular"

    def _fit(self) -> None:
        counts = np.bincount(self._seen.indices, minlength=self.n_items_)
        self.popularity_ = counts.astype(np.float32)
        self._counts = np.ascontiguousarray(self.popularity_[:, None])  # one array: indexed once

    def _vectors(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # A dot product of 1 with each item's count: the count, for every user.
        return np.ones((users.size, 1), dtype=np.float32), self._counts


class Random(_Baseline):
    """Recommend uniformly random items (never seen ones when ``exclude_seen``).

    Each user's scores are uniform in [0, 1), drawn from a generator seeded by
    ``(seed, user)``: the same user gets the same list in any batch or call. ``update`` and
    ``fold_in`` add users and seen items (returning empty user vectors).

    Parameters
    ----------
    random_state : None, int or numpy.random.Generator
        Seed (a generator or ``None`` draws the seed once, at ``fit``).

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> from semrec import Random
    >>> model = Random(random_state=0).fit(sp.csr_array([[1.0, 0.0, 0.0]]))
    >>> sorted(model.recommend(0, k=3)[0].tolist())
    [-1, 1, 2]
    """

    _PARAMS = ("random_state",)
    _FORMAT_NAME = "semrec.Random"

    def __init__(self, random_state: Any = 0) -> None:
        self.random_state = random_state

    def _fit(self) -> None:
        seed = hyperparameters.random_state(self.random_state)  # the errors every model gives
        if isinstance(seed, int | np.integer):
            self.seed_ = int(seed)
        else:  # a generator, a seed sequence or fresh entropy picks the seed base, at fit time
            self.seed_ = int(np.random.default_rng(seed).integers(2**63))

    def _score_rows(self, users: np.ndarray) -> np.ndarray:
        out = np.empty((users.size, self.n_items_), dtype=np.float32)
        for row, user in enumerate(users.tolist()):
            out[row] = np.random.default_rng([self.seed_, user]).random(
                self.n_items_, dtype=np.float32
            )
        return out

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = super()._state()
        return {**meta, "seed": self.seed_}, arrays

    def _restore(self, saved: Saved) -> None:
        super()._restore(saved)
        self.seed_ = saved.value("seed", int, minimum=0)
