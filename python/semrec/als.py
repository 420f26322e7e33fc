"""Alternating least squares matrix factorisation (C++ kernel: ``cpp/semrec/als.cpp``).

Implicit feedback follows Hu, Koren & Volinsky (2008): every user-item cell has preference 1
if the user interacted with the item and 0 otherwise, weighted by the confidence
``c = 1 + alpha * r`` (or ``1 + alpha * log1p(r / epsilon)``). Explicit feedback fits the observed
ratings only, optionally with global, user and item biases. Each half-step solves every row of
one side exactly (Cholesky) or approximately (a few warm-started conjugate-gradient steps that
never form the per-row matrix), in parallel, with the GIL released.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
from tqdm import tqdm

from semrec import _persist as persist
from semrec import _validation as check
from semrec._native import core
from semrec._threads import resolve_num_threads
from semrec.errors import FormatError
from semrec.similarity import topk

logger = logging.getLogger("semrec")

FORMAT_NAME = "semrec.ALS"
FORMAT_VERSION = 1
SOLVERS = ("cg", "cholesky")
FEEDBACK = ("implicit", "explicit")
CONFIDENCE = ("linear", "log")

Callback = Callable[[int, float, float | None], Any]


class ALS:
    """Matrix factorisation by alternating least squares, for implicit or explicit feedback.

    Parameters
    ----------
    factors : int, default 64
        Dimension of the user and item factors.
    regularization : float, default 0.01
        L2 penalty ``lambda`` on every factor (and bias), not scaled by the number of entries.
    alpha : float, default 40.0
        Implicit feedback: confidence slope, ``c = 1 + alpha * r`` (``"linear"``) or
        ``c = 1 + alpha * log1p(r / epsilon)`` (``"log"``). Ignored for explicit feedback.
    iterations : int, default 15
        Full sweeps (users, then items).
    solver : {"cg", "cholesky"}, default "cg"
        ``"cg"``: ``cg_steps`` conjugate-gradient steps per row, warm-started from the previous
        solution (fast, converges over the iterations). ``"cholesky"``: the exact solution.
    cg_steps : int, default 3
        Conjugate-gradient steps per row and half-step (only for ``solver="cg"``).
    feedback : {"implicit", "explicit"}, default "implicit"
        Interaction weights are confidences (clicks, counts) or ratings to reproduce.
    confidence : {"linear", "log"}, default "linear"
        Implicit confidence formula, see ``alpha``.
    epsilon : float, default 1.0
        Scale inside the ``"log"`` confidence.
    biases : bool, default False
        Explicit feedback: also learn a global mean and user and item biases.
    calculate_training_loss : bool, default False
        Compute the training loss after each iteration (passed to the callback and the progress
        bar; costs about one extra half-step).
    random_state : None, int or numpy.random.Generator
        Seeds the initial factors. The same seed gives the same factors for any thread count.
    num_threads : int, optional
        ``None`` uses :func:`semrec.get_num_threads`, ``0`` all cores.
    show_progress : bool, optional
        Show a tqdm progress bar during ``fit``; ``None`` shows it when stderr is a terminal.

    Attributes
    ----------
    user_factors_, item_factors_ : ndarray of float32, shape (n, factors)
    user_biases_, item_biases_ : ndarray of float32 or None
        Learned biases (explicit feedback with ``biases=True``), else None.
    global_mean_ : float
        Mean training rating with ``biases=True``, else 0.
    interactions_ : scipy.sparse.csr_array
        The training interactions (users x items), updated by ``update`` and ``fold_in``.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, semrec
    >>> clicks = sp.random_array((50, 30), density=0.2, format="csr", rng=0, dtype=np.float32)
    >>> model = semrec.ALS(factors=8, iterations=5, random_state=0, show_progress=False)
    >>> ids, scores = model.fit(clicks).recommend(0, k=3)
    >>> ids.shape
    (3,)
    """

    def __init__(
        self,
        factors: int = 64,
        *,
        regularization: float = 0.01,
        alpha: float = 40.0,
        iterations: int = 15,
        solver: str = "cg",
        cg_steps: int = 3,
        feedback: str = "implicit",
        confidence: str = "linear",
        epsilon: float = 1.0,
        biases: bool = False,
        calculate_training_loss: bool = False,
        random_state: int | np.random.Generator | None = None,
        num_threads: int | None = None,
        show_progress: bool | None = None,
    ) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.solver = solver
        self.cg_steps = cg_steps
        self.feedback = feedback
        self.confidence = confidence
        self.epsilon = epsilon
        self.biases = biases
        self.calculate_training_loss = calculate_training_loss
        self.random_state = random_state
        self.num_threads = num_threads
        self.show_progress = show_progress

    _PARAMS = (
        "factors",
        "regularization",
        "alpha",
        "iterations",
        "solver",
        "cg_steps",
        "feedback",
        "confidence",
        "epsilon",
        "biases",
        "calculate_training_loss",
        "random_state",
        "num_threads",
        "show_progress",
    )

    def __repr__(self) -> str:
        args = ", ".join(f"{p}={getattr(self, p)!r}" for p in self._PARAMS)
        return f"ALS({args})"

    # ------------------------------------------------------------------------------------------
    # Training

    def _check_params(self) -> None:
        check.positive_int(self.factors, "factors")
        check.positive_int(self.iterations, "iterations")
        check.positive_int(self.cg_steps, "cg_steps")
        check.choice(self.solver, "solver", SOLVERS)
        check.choice(self.feedback, "feedback", FEEDBACK)
        check.choice(self.confidence, "confidence", CONFIDENCE)
        for name in ("regularization", "alpha", "epsilon"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float | np.floating):
                raise TypeError(f"{name} must be a number, got {type(value).__name__}")
            if not math.isfinite(value) or value < 0 or (name == "epsilon" and value == 0):
                raise ValueError(f"{name} must be a finite number >= 0 (epsilon > 0), got {value}")
        if self.biases and self.feedback != "explicit":
            raise ValueError('biases=True needs feedback="explicit" (implicit ALS has no biases)')

    @property
    def _implicit(self) -> bool:
        return self.feedback == "implicit"

    @property
    def _dims(self) -> int:
        """Columns of the internal factor matrices: factors, plus [bias, 1] with biases."""
        return self.factors + (2 if self.biases else 0)

    def _values(self, weights: np.ndarray) -> np.ndarray:
        """What the kernel sees per entry: c - 1 (implicit) or the centred rating (explicit)."""
        if self._implicit:
            if self.confidence == "log":
                values = self.alpha * np.log1p(weights.astype(np.float64) / self.epsilon)
            else:
                values = self.alpha * weights.astype(np.float64)
        else:
            values = weights.astype(np.float64) - self.global_mean_
        if values.size and np.abs(values).max() > np.finfo(np.float32).max:
            raise ValueError(
                f"confidence alpha * r overflows float32 (alpha={self.alpha}, max weight "
                f"{weights.max()}); reduce alpha or rescale the interaction weights"
            )
        return np.ascontiguousarray(values, dtype=np.float32)

    def fit(
        self, interactions: sp.csr_array | sp.csr_matrix, *, callback: Callback | None = None
    ) -> ALS:
        """Learn user and item factors from a users x items interaction matrix.

        Parameters
        ----------
        interactions : scipy.sparse CSR, shape (n_users, n_items)
            Weights: counts or other confidences (implicit, >= 0) or ratings (explicit).
            Explicit zeros are dropped, duplicates summed.
        callback : callable, optional
            Called as ``callback(iteration, seconds, loss)`` after each iteration; ``loss`` is
            None unless ``calculate_training_loss=True``.

        Returns
        -------
        self

        Raises
        ------
        TypeError, ValueError
            Not a CSR matrix, empty, NaN/inf weights, negative weights for implicit feedback,
            bad hyperparameters, or training diverged (NaN/inf factors).

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> r = sp.csr_array(np.array([[5, 0, 3], [0, 4, 1]], dtype=np.float32))
        >>> model = semrec.ALS(factors=2, feedback="explicit", regularization=0.1,
        ...                    random_state=0, show_progress=False).fit(r)
        >>> model.user_factors_.shape
        (2, 2)
        """
        self._check_params()
        train = check.interactions(interactions, "interactions", nonnegative=self._implicit)
        threads = resolve_num_threads(self.num_threads)
        rng = np.random.default_rng(self.random_state)
        n_users, n_items = train.shape
        self.interactions_ = train
        self.global_mean_ = float(train.data.mean(dtype=np.float64)) if self.biases else 0.0
        # Initial factors come from NumPy's generator; every later step is deterministic C++.
        scale = np.float32(0.01 if self._implicit else 0.1 / math.sqrt(self.factors))
        users = rng.standard_normal((n_users, self._dims), dtype=np.float32) * scale
        items = rng.standard_normal((n_items, self._dims), dtype=np.float32) * scale
        if self.biases:  # layout: users [x, b_u, 1], items [y, 1, b_i]; dot = x·y + b_u + b_i
            users[:, -2:] = (0.0, 1.0)
            items[:, -2:] = (1.0, 0.0)
        by_user = _kernel_csr(train, self._values(train.data))
        by_item = _kernel_csr(by_user.T.tocsr(), None)
        self._users, self._items = users, items

        show = self.show_progress if self.show_progress is not None else sys.stderr.isatty()
        bar = tqdm(total=self.iterations, desc="ALS", unit="it", disable=not show)
        try:
            for iteration in range(self.iterations):
                start = time.perf_counter()
                self._half_step(by_user, self._items, self._users, threads, swap=False)
                self._half_step(by_item, self._users, self._items, threads, swap=True)
                seconds = time.perf_counter() - start
                if not (np.isfinite(self._users).all() and np.isfinite(self._items).all()):
                    raise ValueError(
                        f"ALS diverged at iteration {iteration}: the factors contain NaN or inf. "
                        "Increase regularization, or reduce alpha or the interaction weights."
                    )
                loss = self._loss(by_user, threads) if self.calculate_training_loss else None
                bar.update(1)
                if loss is not None:
                    bar.set_postfix(loss=f"{loss:.5g}")
                logger.debug("ALS iteration %d: %.3fs, loss %s", iteration, seconds, loss)
                if callback is not None:
                    callback(iteration, seconds, loss)
        finally:
            bar.close()
        self._publish()
        return self

    def _half_step(
        self,
        ratings: sp.csr_array,
        other: np.ndarray,
        target: np.ndarray,
        threads: int,
        *,
        swap: bool,
        solver: str | None = None,
    ) -> None:
        """Solve every row of ``target`` in place against ``other``."""
        if self.biases and swap:
            # The item side solves [y, b_i] with the fixed column last: present both sides with
            # their last two columns swapped, solve, and swap back.
            perm = np.r_[np.arange(self.factors), self.factors + 1, self.factors]
            other = np.ascontiguousarray(other[:, perm])
            swapped = np.ascontiguousarray(target[:, perm])
            self._half_step(ratings, other, swapped, threads, swap=False, solver=solver)
            target[:] = swapped[:, perm]
            return
        solve_dims = self.factors + 1 if self.biases else self.factors
        gram = core.als_gram(other, solve_dims, threads) if self._implicit else None
        core.als_solve(
            ratings.indptr,
            ratings.indices,
            ratings.data,
            other,
            gram,
            target,
            self._implicit,
            solve_dims,
            float(self.regularization),
            solver or self.solver,
            int(self.cg_steps),
            threads,
        )

    def _loss(self, by_user: sp.csr_array, threads: int) -> float:
        """Training objective: data term plus ``regularization`` times the squared norms."""
        u, v = self._users, self._items
        gram = core.als_gram(v, v.shape[1], threads) if self._implicit else None
        data = core.als_loss(
            by_user.indptr, by_user.indices, by_user.data, u, v, gram, self._implicit, threads
        )
        if self.biases:  # the constant columns carry no penalty
            penalised = np.square(u[:, :-1]).sum(dtype=np.float64)
            penalised += np.square(v[:, : self.factors]).sum(dtype=np.float64)
            penalised += np.square(v[:, -1]).sum(dtype=np.float64)
        else:
            penalised = np.square(u).sum(dtype=np.float64) + np.square(v).sum(dtype=np.float64)
        return float(data + self.regularization * penalised)

    def _publish(self) -> None:
        """Expose the learned state as the documented attributes."""
        f = self.factors
        self.user_factors_ = np.ascontiguousarray(self._users[:, :f])
        self.item_factors_ = np.ascontiguousarray(self._items[:, :f])
        self.user_biases_ = self._users[:, f].copy() if self.biases else None
        self.item_biases_ = self._items[:, f + 1].copy() if self.biases else None
        self._gram = (
            core.als_gram(self._items, self.factors, resolve_num_threads(self.num_threads))
            if self._implicit
            else None
        )

    # ------------------------------------------------------------------------------------------
    # Queries

    def _check_fitted(self) -> None:
        if not hasattr(self, "_users"):
            raise ValueError("this ALS model is not fitted yet; call fit(interactions) first")

    @property
    def n_users_(self) -> int:
        self._check_fitted()
        return self._users.shape[0]

    @property
    def n_items_(self) -> int:
        self._check_fitted()
        return self._items.shape[0]

    def recommend(
        self,
        users: int | np.ndarray,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        items: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items for each user, by predicted score (``user · item`` plus biases).

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
            Best first; padded with -1 when fewer than ``k`` items are eligible.
        scores : ndarray of float32, shape (n_users, k)
            Padded with -inf.

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> clicks = sp.csr_array(np.eye(4, dtype=np.float32))
        >>> model = semrec.ALS(factors=2, random_state=0, show_progress=False).fit(clicks)
        >>> model.recommend([0, 1], k=2)[0].shape
        (2, 2)
        """
        self._check_fitted()
        ids, scalar = check.index_array(users, "users", self.n_users_, "user")
        exclude = self.interactions_[ids] if exclude_seen else None
        queries = np.ascontiguousarray(self._users[ids])
        result_ids, scores = topk(
            queries,
            self._items,
            k,
            metric="dot",
            exclude=exclude,
            candidates=None if items is None else check.item_ids(items, "items", self.n_items_),
            num_threads=self.num_threads,
            check_finite=False,
        )
        if self.global_mean_:
            scores = scores + np.float32(self.global_mean_)
        return (result_ids[0], scores[0]) if scalar else (result_ids, scores)

    def score(self, users: int | np.ndarray, items: np.ndarray) -> np.ndarray:
        """Predicted scores of every listed item for every listed user.

        Returns an array of shape (n_users, n_items) (1-D for a scalar user). With biases, the
        score is the predicted rating.

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> model = semrec.ALS(factors=2, random_state=0, show_progress=False)
        >>> model.fit(sp.csr_array(np.eye(3, dtype=np.float32))).score(0, [0, 1, 2]).shape
        (3,)
        """
        self._check_fitted()
        u, scalar = check.index_array(users, "users", self.n_users_, "user")
        i, _ = check.index_array(items, "items", self.n_items_, "item")
        out = self._users[u] @ self._items[i].T + np.float32(self.global_mean_)
        return out[0] if scalar else out

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Predicted rating (or score) of each (user, item) pair, elementwise.

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> r = sp.csr_array(np.array([[5, 0], [0, 3]], dtype=np.float32))
        >>> model = semrec.ALS(factors=2, feedback="explicit", biases=True, regularization=0.1,
        ...                    random_state=0, show_progress=False).fit(r)
        >>> model.predict([0, 1], [0, 1]).shape
        (2,)
        """
        self._check_fitted()
        u, _ = check.index_array(users, "users", self.n_users_, "user")
        i, _ = check.index_array(items, "items", self.n_items_, "item")
        if u.shape != i.shape:
            raise ValueError(
                f"users and items must have the same length, got {u.size} and {i.size}"
            )
        pred = np.einsum("ij,ij->i", self._users[u], self._items[i], dtype=np.float32)
        return pred + np.float32(self.global_mean_)

    def _similar(self, vectors: np.ndarray, ids: Any, k: int, metric: str, what: str) -> Any:
        self._check_fitted()
        rows, scalar = check.index_array(ids, what + "s", vectors.shape[0], what)
        n = rows.size
        itself = sp.csr_array(
            (np.ones(n, dtype=np.float32), rows.astype(np.int32), np.arange(n + 1)),
            shape=(n, vectors.shape[0]),
        )
        found, scores = topk(
            np.ascontiguousarray(vectors[rows]),
            vectors,
            k,
            metric=metric,
            exclude=itself,
            num_threads=self.num_threads,
            check_finite=False,
        )
        return (found[0], scores[0]) if scalar else (found, scores)

    def similar_items(
        self, items: int | np.ndarray, k: int = 10, *, metric: str = "cosine"
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items whose factors are closest to each given item (itself excluded).

        ``metric`` is ``"cosine"`` (default) or ``"dot"``, as in :func:`semrec.topk`.

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> model = semrec.ALS(factors=2, random_state=0, show_progress=False)
        >>> model.fit(sp.csr_array(np.eye(3, dtype=np.float32))).similar_items(0, k=2)[0].shape
        (2,)
        """
        self._check_fitted()
        return self._similar(self.item_factors_, items, k, metric, "item")

    def similar_users(
        self, users: int | np.ndarray, k: int = 10, *, metric: str = "cosine"
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` users whose factors are closest to each given user (itself excluded).

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> model = semrec.ALS(factors=2, random_state=0, show_progress=False)
        >>> model.fit(sp.csr_array(np.eye(3, dtype=np.float32))).similar_users(0, k=1)[0].shape
        (1,)
        """
        self._check_fitted()
        return self._similar(self.user_factors_, users, k, metric, "user")

    # ------------------------------------------------------------------------------------------
    # Real time

    def fold_in(
        self, history: sp.csr_array | sp.csr_matrix, *, users: np.ndarray | None = None
    ) -> np.ndarray:
        """Solve users' factors exactly against the fixed item factors.

        Parameters
        ----------
        history : scipy.sparse CSR, shape (n, n_items)
            Each row is one user's full interaction history (weights as in ``fit``).
        users : 1-D array of int, optional
            Store the result in the model under these user ids: an existing id replaces that
            user's history and factors; ids ``n_users_, n_users_ + 1, ...`` append new users.
            Without it the model is unchanged.

        Returns
        -------
        ndarray of float32, shape (n, factors)
            The users' factors (what one more exact user half-step of ``fit`` would give).

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> model = semrec.ALS(factors=2, random_state=0, show_progress=False)
        >>> model = model.fit(sp.csr_array(np.eye(3, dtype=np.float32)))
        >>> new = sp.csr_array(np.array([[1, 0, 1]], dtype=np.float32))
        >>> model.fold_in(new, users=[3]).shape
        (1, 2)
        """
        self._check_fitted()
        if not sp.issparse(history):
            raise TypeError(
                f"history must be a scipy.sparse CSR matrix (users x items), "
                f"got {type(history).__name__}"
            )
        if history.ndim != 2 or history.shape[1] != self.n_items_:
            raise ValueError(
                f"history must have shape (n_users, {self.n_items_}) (one row per user, one "
                f"column per item of the model), got {history.shape}"
            )
        rows = _canonical_rows(history, nonnegative=self._implicit)
        target = np.zeros((rows.shape[0], self._dims), dtype=np.float32)
        if self.biases:
            target[:, -1] = 1.0
        by_user = _kernel_csr(rows, self._values(rows.data))
        solve_dims = self.factors + 1 if self.biases else self.factors
        core.als_solve(
            by_user.indptr,
            by_user.indices,
            by_user.data,
            self._items,
            self._gram,
            target,
            self._implicit,
            solve_dims,
            float(self.regularization),
            "cholesky",
            1,
            1,
        )
        if users is not None:
            self._store_users(users, rows, target)
        return np.ascontiguousarray(target[:, : self.factors])

    def _store_users(self, users: Any, rows: sp.csr_array, target: np.ndarray) -> None:
        ids = np.asarray(users)
        if ids.ndim != 1 or ids.size != rows.shape[0]:
            raise ValueError(f"users must be a 1-D array with one id per history row, got {ids}")
        if ids.size and not np.issubdtype(ids.dtype, np.integer):
            raise TypeError(f"users must hold integer user ids, got dtype {ids.dtype}")
        n = self.n_users_
        new = ids[ids >= n]
        if (ids < 0).any() or not np.array_equal(np.sort(new), np.arange(n, n + new.size)):
            raise IndexError(
                f"users must be existing ids in [0, {n}) or the next new ids {n}, {n + 1}, ...; "
                f"got {ids.tolist()}"
            )
        if new.size:
            grow = np.zeros((new.size, self._dims), dtype=np.float32)
            self._users = np.vstack([self._users, grow])
        self._users[ids] = target
        total = n + new.size
        old = self.interactions_
        keep = np.ones(total, dtype=bool)
        keep[ids] = False
        kept = sp.diags_array(keep[:n].astype(np.float32)) @ old
        kept = sp.vstack([kept, sp.csr_array((new.size, old.shape[1]), dtype=np.float32)])
        placed = sp.csr_array(
            (np.ones(ids.size, dtype=np.float32), (ids, np.arange(ids.size))),
            shape=(total, ids.size),
        ) @ rows.astype(np.float32)
        merged = sp.csr_array(kept + placed)
        merged.eliminate_zeros()
        merged.sort_indices()
        merged.indptr = merged.indptr.astype(np.int64)
        merged.indices = merged.indices.astype(np.int32)
        self.interactions_ = merged
        self._publish_users()

    def _publish_users(self) -> None:
        self.user_factors_ = np.ascontiguousarray(self._users[:, : self.factors])
        self.user_biases_ = self._users[:, self.factors].copy() if self.biases else None

    def update(self, user: int, item: int, weight: float = 1.0) -> np.ndarray:
        """Add ``weight`` to one interaction and re-solve that user at once (streaming).

        ``user`` may be ``n_users_`` to start a new user. Returns the user's new factors.

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> model = semrec.ALS(factors=2, random_state=0, show_progress=False)
        >>> model = model.fit(sp.csr_array(np.eye(3, dtype=np.float32)))
        >>> model.update(0, 2).shape
        (2,)
        """
        self._check_fitted()
        (u,), _ = check.index_array(user, "user", self.n_users_ + 1, "user")
        (i,), _ = check.index_array(item, "item", self.n_items_, "item")
        if isinstance(weight, bool) or not isinstance(weight, int | float | np.number):
            raise TypeError(f"weight must be a number, got {type(weight).__name__}")
        if u < self.n_users_:
            row = sp.csr_array(self.interactions_[[u]])
        else:
            row = sp.csr_array((1, self.n_items_), dtype=np.float32)
        row = sp.csr_array(row + sp.csr_array(([weight], ([0], [i])), shape=row.shape))
        return self.fold_in(row.astype(np.float32), users=[u])[0]

    # ------------------------------------------------------------------------------------------
    # Persistence

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model to ``path`` (a ``.npz`` archive with JSON metadata; no pickle).

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec, tempfile, os
        >>> model = semrec.ALS(factors=2, random_state=0, show_progress=False)
        >>> model = model.fit(sp.csr_array(np.eye(3, dtype=np.float32)))
        >>> path = os.path.join(tempfile.mkdtemp(), "als.npz")
        >>> model.save(path); semrec.ALS.load(path).factors
        2
        """
        self._check_fitted()
        params = {p: getattr(self, p) for p in self._PARAMS}
        if not (params["random_state"] is None or isinstance(params["random_state"], int)):
            params["random_state"] = None  # a Generator is not data; its job is done after fit
        meta = {"params": params, "global_mean": self.global_mean_}
        train = self.interactions_
        arrays = {"users": self._users, "items": self._items}
        arrays |= {"indptr": train.indptr, "indices": train.indices, "data": train.data}
        persist.write(path, FORMAT_NAME, FORMAT_VERSION, meta, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ALS:
        """Read a model written by :meth:`save`.

        Raises ``FileNotFoundError`` for a missing file and :class:`semrec.FormatError` for a
        corrupt file or one of another format version.
        """
        meta, arrays = persist.read(path, FORMAT_NAME, FORMAT_VERSION)
        try:
            model = cls(**meta["params"])
            model._check_params()
            users = np.ascontiguousarray(arrays["users"], dtype=np.float32)
            items = np.ascontiguousarray(arrays["items"], dtype=np.float32)
            train = sp.csr_array(
                (arrays["data"], arrays["indices"], arrays["indptr"]),
                shape=(users.shape[0], items.shape[0]),
            )
            if users.ndim != 2 or items.ndim != 2 or users.shape[1] != model._dims:
                raise ValueError("factor shapes do not match the metadata")
            train.check_format(full_check=True)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise FormatError(f"{path} is corrupt: {exc}") from None
        model._users, model._items = users, items
        model.interactions_ = train
        model.global_mean_ = float(meta.get("global_mean", 0.0))
        model._publish()
        return model

    # ------------------------------------------------------------------------------------------
    # Explanations

    def explain(self, user: int, item: int, k: int = 5) -> Any:
        """The items of ``user``'s history that contribute most to the score of ``item``.

        ALS is linear in the user's history (Hu, Koren & Volinsky 2008, section 5): the user's
        factors are ``x_u = W_u sum_j c_uj p_uj y_j`` with ``W_u = (Y^T C_u Y + lambda I)^-1``,
        so the score splits into one term per history item, ``c_uj * y_i^T W_u y_j`` (implicit;
        explicit feedback: ``(r_uj - mean - b_j) * z_i^T W_u z_j`` over the rated items, with
        ``z = [y, 1]`` when there are biases). The terms add up to the score (``attrs["rest"]``
        is then ``mean + b_i``, 0 without biases) **exactly, up to float rounding, when the
        user's factors are the exact solve against the current item factors**: after
        :meth:`fold_in` or :meth:`update`. After ``fit`` the user was last solved against the
        previous iteration's item factors (and only approximately with ``solver="cg"``), so a
        small ``rest`` remains, shrinking as training converges.

        Parameters
        ----------
        user, item : int
        k : int, default 5
            Rows to return.

        Returns
        -------
        pandas.DataFrame
            Columns ``item``, ``contribution``, ``share`` (largest contribution first) and
            ``attrs`` ``user``, ``item``, ``score``, ``explained``, ``rest``; see
            :mod:`semrec.explain`.

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> clicks = sp.random_array((40, 30), density=0.2, format="csr", rng=0, dtype=np.float32)
        >>> model = semrec.ALS(factors=4, random_state=0, show_progress=False).fit(clicks)
        >>> _ = model.fold_in(model.interactions_[[0]], users=[0])  # exact solve of user 0
        >>> why = model.explain(0, 5, k=3)
        >>> list(why.columns)
        ['item', 'contribution', 'share']
        >>> bool(abs(why.attrs["rest"]) < 1e-4)
        True
        """
        from semrec.explain import explanation, scalar_id

        self._check_fitted()
        u = scalar_id(user, "user", self.n_users_, "user")
        i = scalar_id(item, "item", self.n_items_, "item")
        history, contributions = _history_contributions(self, u, i)
        score = float(self.score(u, [i])[0])
        return explanation(history, contributions, k, user=u, item=i, score=score)


def _kernel_csr(m: sp.csr_array, values: np.ndarray | None) -> sp.csr_array:
    """A CSR with the exact dtypes the kernel takes (int64 indptr, int32 indices, float32)."""
    out = sp.csr_array(
        (m.data if values is None else values, m.indices, m.indptr), shape=m.shape, copy=False
    )
    out.sort_indices()
    out.indptr = np.ascontiguousarray(out.indptr, dtype=np.int64)
    out.indices = np.ascontiguousarray(out.indices, dtype=np.int32)
    out.data = np.ascontiguousarray(out.data, dtype=np.float32)
    return out


def _canonical_rows(history: Any, *, nonnegative: bool) -> sp.csr_array:
    """Histories for fold_in: the same checks as fit's input, but empty rows are allowed."""
    if history.format != "csr":
        raise TypeError(f"history must be in CSR format, got {history.format.upper()}")
    if history.nnz == 0:
        return sp.csr_array(history.shape, dtype=np.float32)
    return check.interactions(history, "history", nonnegative=nonnegative)


def _history_contributions(model: ALS, u: int, i: int) -> tuple[np.ndarray, np.ndarray]:
    """Each history item's term of ``model``'s score for (u, i), by the linear decomposition
    of the exact user solve (float64; see ALS.explain)."""
    row = sp.csr_array(model.interactions_[[u]])
    history = row.indices.astype(np.int32)
    dims = model.factors + 1 if model.biases else model.factors
    z = model._items[:, :dims].astype(np.float64)
    z_hist = z[history]
    values = model._values(row.data).astype(np.float64)  # c - 1, or the centred rating
    if model._implicit:
        system = z.T @ z + (z_hist.T * values) @ z_hist
        weights = 1.0 + values  # confidence times preference 1
    else:
        system = z_hist.T @ z_hist
        # With biases the fixed item bias b_j moves to the right-hand side.
        offset = model._items[history, -1].astype(np.float64) if model.biases else 0.0
        weights = values - offset
    system[np.diag_indices(dims)] += model.regularization
    similarity = z_hist @ np.linalg.solve(system, z[i])  # y_j^T W_u y_i (W_u symmetric)
    return history, weights * similarity
