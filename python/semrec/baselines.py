"""Baseline recommenders printed beside every model: uniformly random and most popular."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from semrec import _validation as check
from semrec._base import Recommender
from semrec.similarity import topk


class _Baseline(Recommender):
    _PARAMS: ClassVar[tuple[str, ...]] = ()

    def fit(self, interactions: Any) -> Any:
        """Remember the training interactions (users x items CSR); returns ``self``."""
        self.interactions_ = check.interactions(interactions, "interactions", nonnegative=False)
        self._fit()
        return self

    def _fit(self) -> None:
        pass

    # The state is the training matrix (saved by the base class); the rest is derived from it.
    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {"seed": getattr(self, "_seed", None)}, {}

    def _restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        self._fit()
        if meta.get("seed") is not None:
            self._seed = int(meta["seed"])


class MostPopular(_Baseline):
    _FORMAT_NAME = "semrec.MostPopular"

    """Recommend the items most users interacted with (ties: lower item index first).

    ``score(user, item)`` is the item's number of training users, the same for everyone.

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

    def _score_rows(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.popularity_, (users.size, self.n_items_))

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
            exclude=self.interactions_[u] if exclude_seen else None,
            candidates=None if items is None else check.item_ids(items, "items", self.n_items_),
        )
        return (ids[0], scores[0]) if single else (ids, scores)


class Random(_Baseline):
    """Recommend uniformly random items (never seen ones when ``exclude_seen``).

    Each user's scores are uniform in [0, 1), drawn from a generator seeded by
    ``(seed, user)``: the same user gets the same list in any batch or call.

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
        seed = self.random_state
        if isinstance(seed, np.random.Generator) or seed is None:
            # A generator or fresh entropy picks the per-user seed base once, at fit time.
            self._seed = int(np.random.default_rng(seed).integers(2**63))
        elif isinstance(seed, int | np.integer) and not isinstance(seed, bool) and seed >= 0:
            self._seed = int(seed)
        else:
            raise TypeError(
                f"random_state must be None, a non-negative int or a numpy Generator, got {seed!r}"
            )

    def _score_rows(self, users: np.ndarray) -> np.ndarray:
        out = np.empty((users.size, self.n_items_), dtype=np.float32)
        for row, user in enumerate(users.tolist()):
            out[row] = np.random.default_rng([self._seed, user]).random(
                self.n_items_, dtype=np.float32
            )
        return out
