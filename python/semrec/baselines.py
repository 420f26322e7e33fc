"""Baseline recommenders printed beside every model: uniformly random and most popular."""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from semrec import _hyperparameters as hyperparameters
from semrec import _validation as check
from semrec._base import Recommender
from semrec._histories import Histories
from semrec._model_lock import fits_model
from semrec._persist import Saved
from semrec._seen import KeepsHistories

_HINTS = {
    "add_items": "a baseline knows items by their interactions only; refit it",
    "similar_items": "a baseline has no notion of item similarity; use ItemKNN or ALS",
    "explain": "a baseline's score comes from no user history (popularity or chance)",
}


class _Baseline(KeepsHistories, Recommender):
    _PARAMS: ClassVar[tuple[str, ...]] = ()
    _HINTS = _HINTS

    @fits_model
    def fit(self, interactions: Any) -> Self:
        """Remember the training interactions (users x items CSR); returns ``self``."""
        self._histories = Histories(check.canonical_csr(interactions, "interactions"))
        self._fit()
        return self

    def _fit(self) -> None:
        pass

    # Real time: a baseline's scores need no user state, so fold_in and update only record
    # what the user has seen (and new users); the scores stay those of fit (MostPopular's
    # counts are the training users', as ItemKNN's graph waits for the next fit). Each costs
    # O(the changed rows): the histories keep them beside the matrix until a merge pays.
    def _fold_in(
        self, history: Any, users: np.ndarray | None, times: np.ndarray | None
    ) -> np.ndarray:
        rows = check.canonical_csr(history, "history", allow_empty=True)
        if users is not None:
            self._histories.set_rows(users, rows)
        return np.zeros((rows.shape[0], 0), dtype=np.float32)

    def _update(self, user: int, item: int, weight: float, t: float | None) -> np.ndarray:
        indices, weights = self._histories.row(user)
        pos = int(np.searchsorted(indices, item))
        prior = weights[pos] if pos < indices.size and indices[pos] == item else np.float32(0)
        # Summed as the whole matrix was (float32): refused, before anything changes, where
        # the weight or the stored sum would be inf (the matrix and its file must stay finite).
        with np.errstate(over="ignore"):
            total = prior + np.float32(weight)
        if abs(weight) > check.FLOAT32_MAX or not np.isfinite(total):
            raise ValueError(
                f"weight: update would make interaction ({user}, {item}) {float(prior):.3g} + "
                f"{weight:.3g}, past float32's range (max ~3.4e38), which semrec stores weights "
                "in; rescale the weights"
            )
        cols = np.r_[indices, item].astype(np.int32)  # a seen 0 stays an entry
        values = np.r_[weights, np.float32(weight)]
        row = sp.csr_array((values, cols, np.array([0, cols.size])), shape=(1, self.n_items_))
        row = check.canonical_csr(row, "weight", allow_empty=True)
        self._histories.set_row(user, row.indices, row.data)
        return np.zeros(0, dtype=np.float32)

    # The state is the training matrix; the rest is derived from it.
    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        from semrec._persist import csr_arrays

        seen = self._histories.matrix()
        return {"shape": list(seen.shape)}, csr_arrays(seen, "interactions")

    def _restore(self, saved: Saved) -> None:
        self._histories = Histories(saved.csr("interactions", saved.shape("shape")))
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

    def _fit(self, counts: np.ndarray | None = None) -> None:
        if counts is None:  # the training users' interactions per item
            counts = np.bincount(self._histories.matrix().indices, minlength=self.n_items_)
        self.popularity_ = counts.astype(np.float32)
        self._counts = np.ascontiguousarray(self.popularity_[:, None])  # one array: indexed once

    # Saved apart from the interactions, which hold the clicks since fit as well: counted
    # again at load, they gave the loaded model other scores than the saved one.
    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta, arrays = super()._state()
        return meta, {**arrays, "popularity": self.popularity_}

    def _restore(self, saved: Saved) -> None:
        super()._restore(saved)  # files of earlier versions: counted on the saved interactions
        if "popularity" in saved.arrays:
            self._fit(saved.array("popularity", np.float32, (self.n_items_,), minimum=0))

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
