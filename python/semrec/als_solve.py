"""The numerical core of ALS, one object shared by ``ALS.fit`` and ``semrec.distributed.fit_als``.

:class:`ALSSolve` holds one problem's settings and does every step of it: the values the C++
kernel (``cpp/semrec/als.cpp``) sees per interaction, the initial factors, the layout and
gram matrix of the fixed side, the solve of any block of rows (each row's solve depends only
on its ratings, its start, the fixed side and the gram, so blocks solved apart give exactly
the rows of one solve), the exact solve of users' histories (fold-in), and the loss.

Internal layouts: without biases both sides are ``(n, factors)``. With biases (explicit
feedback), users are ``[x, b_u, 1]`` and items ``[y, 1, b_i]``, so that ``user · item = x · y +
b_u + b_i``; the constant columns are never solved.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from semrec import _hyperparameters as hyperparameters
from semrec import _validation as check
from semrec._native import core

SOLVERS = ("cg", "cholesky")
FEEDBACK = ("implicit", "explicit")
CONFIDENCE = ("linear", "log")
# The ALS hyperparameters that define the problem (the rest: seeds, threads, display).
SETTINGS = (
    "factors", "regularization", "alpha", "feedback", "confidence", "epsilon", "biases",
    "solver", "cg_steps",
)  # fmt: skip
# Explicit scores, the global mean and the biases are on the ratings' scale: ratings past this
# would leave float32 scores (3.4e38) no headroom. Implicit weights are confidences, not scores.
LARGEST_RATING = 1e30
# solver="cg" squares its float32 residual, which holds regularization times the factors: past
# this (about the square root of float32's largest) it overflows at the first half-step.
LARGEST_CG_REGULARIZATION = 1e18
_FLOAT32_TINY = float(np.finfo(np.float32).tiny)  # the smallest normal float32


class KernelRows(NamedTuple):
    """CSR arrays exactly as the kernel takes them: int64 indptr, int32 indices, float32
    values (``c - 1`` for implicit feedback, the centred rating for explicit).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from semrec.als_solve import ALSSolve
    >>> rows = ALSSolve(factors=2, regularization=0.1, alpha=2.0).kernel_rows(
    ...     sp.csr_array(np.array([[1.0, 0.0, 3.0]], dtype=np.float32)))
    >>> rows.indices.tolist(), rows.data.tolist()
    ([0, 2], [2.0, 6.0])
    """

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray


class ALSSolve:
    """Settings and steps of one ALS problem (see the module docstring).

    Parameters
    ----------
    factors, regularization, alpha, feedback, confidence, epsilon, biases, solver, cg_steps
        As in :class:`semrec.ALS` (checked here, with the same messages).
    kernels : module, optional
        The compiled kernels to call (default ``semrec._native.core``; tests substitute it).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from semrec.als_solve import ALSSolve
    >>> solve = ALSSolve(factors=2, regularization=0.1, alpha=1.0)
    >>> rows = solve.kernel_rows(sp.csr_array(np.eye(3, dtype=np.float32)))
    >>> users, items = solve.initial_factors(np.random.default_rng(0), 3, 3)
    >>> solve.half_step(rows, items, users, threads=1, swap=False)
    >>> users.shape
    (3, 2)
    """

    def __init__(
        self,
        *,
        factors: int,
        regularization: float,
        alpha: float = 40.0,
        feedback: str = "implicit",
        confidence: str = "linear",
        epsilon: float = 1.0,
        biases: bool = False,
        solver: str = "cg",
        cg_steps: int = 3,
        kernels: Any = None,
    ) -> None:
        self._kernels = None if kernels is core else kernels  # a module does not pickle
        self.factors = check.positive_int(factors, "factors")
        self.cg_steps = check.positive_int(cg_steps, "cg_steps")
        if self.cg_steps > check.INT32_MAX:  # the kernel counts in int32; 3 is the default
            raise ValueError(f"cg_steps must be < 2**31, got {self.cg_steps}")
        self.solver = check.choice(solver, "solver", SOLVERS)
        self.feedback = check.choice(feedback, "feedback", FEEDBACK)
        self.confidence = check.choice(confidence, "confidence", CONFIDENCE)
        self.regularization = _float32(regularization, "regularization", minimum=0)
        if self.solver == "cg" and self.regularization > LARGEST_CG_REGULARIZATION:
            raise ValueError(
                f"regularization must be at most {LARGEST_CG_REGULARIZATION:g} with "
                f'solver="cg" (its float32 steps square regularization times the factors), got '
                f'{regularization}; use solver="cholesky" or a smaller regularization'
            )
        self.alpha = _float32(alpha, "alpha", minimum=0)
        self.epsilon = _float32(epsilon, "epsilon", above=0)
        if self.epsilon < _FLOAT32_TINY:  # float32 would make it 0 or lose its digits
            raise ValueError(
                f"epsilon must be at least {_FLOAT32_TINY:.3g} (float32's smallest "
                f"normal number; the log confidence divides by it), got {epsilon}"
            )
        self.biases = check.flag(biases, "biases")
        if self.biases and self.feedback != "explicit":
            raise ValueError('biases=True needs feedback="explicit" (implicit ALS has no biases)')

    @classmethod
    def for_model(cls, model: Any, kernels: Any = None) -> ALSSolve:
        """The problem an :class:`semrec.ALS` describes (its hyperparameters, checked)."""
        return cls(**{name: getattr(model, name) for name in SETTINGS}, kernels=kernels)

    @property
    def kernels(self) -> Any:
        return core if self._kernels is None else self._kernels

    @property
    def implicit(self) -> bool:
        """Whether ``feedback`` is ``"implicit"``."""
        return self.feedback == "implicit"

    @property
    def dims(self) -> int:
        """Columns of the internal factor matrices: factors, plus [bias, 1] with biases."""
        return self.factors + (2 if self.biases else 0)

    @property
    def solve_dims(self) -> int:
        """Columns a row solve finds: factors, plus the bias with biases."""
        return self.factors + (1 if self.biases else 0)

    def check_memory(self, n_users: int, n_items: int, threads: int) -> None:
        """Refuse ``factors`` whose arrays cannot fit in memory, before allocating them: the
        float32 factors of both sides (and their working copies) and the float64
        ``dims x dims`` gram and per-thread systems of the solve."""
        rows = 3 * 4 * self.dims * (n_users + n_items)
        systems = 8 * self.dims**2 * (max(int(threads), 1) + 2)
        hyperparameters.memory(
            rows + systems,
            f"factors={self.factors}",
            f"use fewer factors (typically 32 to 512; {n_users} users x {n_items} items)",
        )

    # -- what the kernel sees ------------------------------------------------------------------
    def values(
        self, weights: np.ndarray, global_mean: float = 0.0, name: str = "interactions"
    ) -> np.ndarray:
        """Per entry: ``c - 1`` (implicit) or the centred rating ``r - global_mean``.

        Computed in float32 (one pass, no float64 copy of every weight); an overflow shows up
        as inf and is reported. The one rule on weights of ``fit``, ``fold_in``, ``update``,
        ``from_factors`` and ``load`` (see :meth:`check_weights`): explicit ratings within
        ``±LARGEST_RATING``, implicit weights whose confidence is finite in float32.
        """
        weights = np.asarray(weights, dtype=np.float32)
        if not self.implicit and weights.size:
            if (peak := np.abs(weights).max()) > np.float32(LARGEST_RATING):
                raise ValueError(
                    f"{name} holds ratings up to {peak:.3g} in magnitude; explicit ALS takes "
                    f"ratings within ±{LARGEST_RATING:g} (its float32 scores, mean and biases "
                    "are on their scale); rescale them, e.g. divide by their maximum"
                )
        with np.errstate(over="ignore"):
            if not self.implicit:
                values = weights - np.float32(global_mean)
            elif self.confidence == "log":
                values = weights / np.float32(self.epsilon)
                if values.size and not np.isfinite(values).all():
                    raise ValueError(
                        f"epsilon={self.epsilon:g} is too small for {name}: r / epsilon "
                        f"overflows float32 (max weight {weights.max():g}); use a larger "
                        "epsilon (above max weight / 3.4e38) or rescale the weights"
                    )
                values = np.log1p(values, out=values)
                values *= np.float32(self.alpha)
            else:
                values = weights * np.float32(self.alpha)
        if values.size and not np.isfinite(values).all():
            log = self.confidence == "log"
            what = "confidence alpha * " + ("log1p(r / epsilon)" if log else "r")
            what = what if self.implicit else "r - mean"
            raise ValueError(
                f"{name}: {what} overflows float32 (alpha={self.alpha}, max weight "
                f"{weights.max()}); reduce alpha or rescale the interaction weights"
            )
        return values

    def check_weights(self, weights: np.ndarray, name: str = "interactions") -> None:
        """:meth:`values`'s refusals for a whole matrix's weights in one pass: the weight
        largest in magnitude is the one refused (the confidence grows with ``r >= 0``).

        Parameters
        ----------
        weights : array of float
            The stored weights (``interactions.data``).
        name : str, default "interactions"
            The argument the weights came from, named in the error.
        """
        weights = np.asarray(weights, dtype=np.float32)
        if weights.size:
            self.values(np.abs(weights).max(keepdims=True), 0.0, name)

    def kernel_rows(
        self, m: sp.csr_array, global_mean: float = 0.0, name: str = "interactions"
    ) -> KernelRows:
        """A canonical CSR's non-zero entries as the kernel's rows (a stored 0 is seen but
        carries nothing: it is left out)."""
        m = check.without_zeros(m)
        indptr = np.ascontiguousarray(m.indptr, dtype=np.int64)
        indices = np.ascontiguousarray(m.indices, dtype=np.int32)
        return KernelRows(indptr, indices, self.values(m.data, global_mean, name))

    # -- factors -----------------------------------------------------------------------------------
    def initial_users(self, n_users: int) -> np.ndarray:
        """User factors before the first solve: zero (they only seed CG, as in a fold-in)."""
        users = np.zeros((n_users, self.dims), dtype=np.float32)
        if self.biases:
            users[:, -1] = 1.0
        return users

    def initial_factors(
        self, rng: np.random.Generator, n_users: int, n_items: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Initial (users, items): only the item side draws from ``rng``.

        Implicit feedback starts from small positive item factors: the first user solve then
        points every user along the popularity direction, which the next iterations refine
        (on MovieLens this reaches a given NDCG in fewer iterations than a centred start).
        """
        users = self.initial_users(n_users)
        if self.implicit:
            items = rng.random((n_items, self.dims), dtype=np.float32)
            items *= np.float32(0.01)
        else:
            items = rng.standard_normal((n_items, self.dims), dtype=np.float32)
            items *= np.float32(0.1 / math.sqrt(self.factors))
        if self.biases:
            items[:, -2:] = (1.0, 0.0)
        return users, items

    def split(self, internal: np.ndarray, *, users: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """(factors, biases or None) of an internal matrix (copies only with biases)."""
        if not self.biases:
            return internal, None
        f = self.factors
        bias = internal[:, f] if users else internal[:, f + 1]
        return np.ascontiguousarray(internal[:, :f]), bias.copy()

    def join(self, factors: np.ndarray, biases: np.ndarray | None, *, users: bool) -> np.ndarray:
        """The internal matrix of given factors (and biases): the inverse of :meth:`split`."""
        if not self.biases:
            return np.array(factors, dtype=np.float32, order="C")
        ones = np.ones(factors.shape[0], dtype=np.float32)
        columns = [biases, ones] if users else [ones, biases]
        return np.ascontiguousarray(np.column_stack([factors, *columns]), dtype=np.float32)

    def internal(
        self,
        user_factors: Any,
        item_factors: Any,
        user_biases: Any = None,
        item_biases: Any = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The internal (users, items) matrices of given factors and biases, checked."""
        x, _ = check.as_float32_matrix(user_factors, "user_factors")
        y, _ = check.as_float32_matrix(item_factors, "item_factors")
        if x.shape[1] != self.factors or y.shape[1] != self.factors:
            raise ValueError(
                f"user_factors and item_factors must have {self.factors} columns (factors), "
                f"got {x.shape[1]} and {y.shape[1]}"
            )
        if (user_biases is not None, item_biases is not None) != (self.biases, self.biases):
            raise ValueError(
                "user_biases and item_biases go together with biases=True (and only then)"
            )
        if self.biases:
            user_biases = check.float_array(user_biases, "user_biases", x.shape[0])
            item_biases = check.float_array(item_biases, "item_biases", y.shape[0])
        return self.join(x, user_biases, users=True), self.join(y, item_biases, users=False)

    # -- solving ---------------------------------------------------------------------------------
    def _swap_perm(self) -> np.ndarray:
        """Column order that puts the item side's fixed column last: [y, b_i, 1]."""
        return np.r_[np.arange(self.factors), self.factors + 1, self.factors]

    def gram(self, other: np.ndarray, threads: int, dims: int | None = None) -> np.ndarray | None:
        """``other``'s first ``dims`` columns' gram (implicit feedback only), else None."""
        if not self.implicit:
            return None
        return self.kernels.als_gram(other, self.solve_dims if dims is None else dims, threads)

    def solving_side(
        self, other: np.ndarray, threads: int, *, swap: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``other`` in the layout the kernel solves against, and its gram (implicit only).

        Separate from the solve so that a distributed fit computes both once per half-step
        and broadcasts them to every block of rows.
        """
        if self.biases and swap:
            other = np.ascontiguousarray(other[:, self._swap_perm()])
        return other, self.gram(other, threads)

    def solve_rows(
        self,
        rows: KernelRows,
        other: np.ndarray,
        gram: np.ndarray | None,
        target: np.ndarray,
        threads: int,
        *,
        swap: bool,
        solver: str | None = None,
        name: str = "interactions",
    ) -> None:
        """Solve the rows of ``target`` (one per row of ``rows``) in place.

        ``other`` and ``gram`` come from :meth:`solving_side`. Each row's solve depends only
        on its own ratings, its start value, ``other`` and ``gram``: any block of rows solved
        alone gives exactly the rows of the full solve. ``name`` is the argument the rows came
        from, for the error when their normal equations cannot be solved.
        """
        if self.biases and swap:
            # The item side solves [y, b_i] with the fixed column last: present it with its
            # last two columns swapped, solve, and swap back.
            perm = self._swap_perm()
            swapped = np.ascontiguousarray(target[:, perm])
            self.solve_rows(
                rows, other, gram, swapped, threads, swap=False, solver=solver, name=name
            )
            target[:] = swapped[:, perm]
            return
        try:
            self.kernels.als_solve(
                rows.indptr,
                rows.indices,
                rows.data,
                other,
                gram,
                target,
                self.implicit,
                self.solve_dims,
                float(self.regularization),
                solver or self.solver,
                int(self.cg_steps),
                threads,
            )
        except ValueError as exc:
            if "positive definite" not in str(exc):
                raise
            raise self.unsolvable(rows, name) from None

    def unsolvable(self, rows: KernelRows, name: str) -> ValueError:
        """The error for rows whose normal equations failed (or gave NaN/inf) in floating
        point: in exact arithmetic they are positive definite whenever regularization > 0,
        so the cause is the weights' range (one confidence 1e30 times larger than the rest)."""
        if self.regularization == 0:
            return ValueError(
                f"the normal equations of {name} are singular (a user or item whose history "
                "does not determine its factors); use regularization > 0"
            )
        top = float(np.abs(rows.data).max()) if rows.data.size else 0.0
        if self.implicit:
            what, fix = (
                "alpha * r",
                "divide them by their maximum, use confidence='log' or reduce alpha",
            )
        else:
            what, fix = "r - mean", "divide the ratings by their maximum"
        return ValueError(
            f"{name} has weights too large to solve for in floating point ({what} reaches "
            f"{top:g} beside regularization={self.regularization:g}); rescale them: {fix}"
        )

    def half_step(
        self, rows: KernelRows, other: np.ndarray, target: np.ndarray, threads: int, *, swap: bool
    ) -> None:
        """Solve every row of ``target`` in place against ``other``."""
        other, gram = self.solving_side(other, threads, swap=swap)
        self.solve_rows(rows, other, gram, target, threads, swap=swap)

    def solve_histories(
        self,
        history: sp.csr_array,
        items: np.ndarray,
        gram: np.ndarray | None,
        global_mean: float = 0.0,
        name: str = "history",
    ) -> np.ndarray:
        """Exact (Cholesky) user rows for canonical histories against fixed ``items``
        (internal layout; ``gram`` from :meth:`gram` of the items); a ValueError naming
        ``name`` when the weights are too large to solve for (never NaN factors)."""
        rows = self.kernel_rows(history, global_mean, name)
        target = self.initial_users(rows.indptr.size - 1)
        self.solve_rows(rows, items, gram, target, 1, swap=False, solver="cholesky", name=name)
        if not np.isfinite(target).all():
            raise self.unsolvable(rows, name)
        return target

    # -- loss ------------------------------------------------------------------------------------
    def loss(self, rows: KernelRows, users: np.ndarray, items: np.ndarray, threads: int) -> float:
        """Training objective: data term plus ``regularization`` times the squared norms."""
        return float(self.data_loss(rows, users, items, threads) + self.penalty(users, items))

    def data_loss(
        self, rows: KernelRows, users: np.ndarray, items: np.ndarray, threads: int
    ) -> float:
        """The data term of the loss over ``rows`` (users ``users``, one row each)."""
        gram = self.kernels.als_gram(items, items.shape[1], threads) if self.implicit else None
        return float(
            self.kernels.als_loss(
                rows.indptr, rows.indices, rows.data, users, items, gram, self.implicit, threads
            )
        )

    def penalty(self, users: np.ndarray, items: np.ndarray) -> float:
        """``regularization`` times the squared norms of the factors (the loss's second term)."""
        if self.biases:  # the constant columns carry no penalty
            penalised = np.square(users[:, :-1]).sum(dtype=np.float64)
            penalised += np.square(items[:, : self.factors]).sum(dtype=np.float64)
            penalised += np.square(items[:, -1]).sum(dtype=np.float64)
        else:
            penalised = np.square(users).sum(dtype=np.float64)
            penalised += np.square(items).sum(dtype=np.float64)
        return float(self.regularization * penalised)

    # -- explanations ------------------------------------------------------------------------------
    def contributions(
        self,
        history: sp.csr_array,
        items: np.ndarray,
        item: int | np.ndarray,
        global_mean: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each history item's term of the exact user solve's score for ``item`` (float64):
        ``c_uj * y_i^T W_u y_j`` (implicit) or ``(r_uj - mean - b_j) * z_i^T W_u z_j``.
        ``item`` is a row of ``items`` (internal layout), or the vector ``z_i`` itself for an
        item the solve never saw (a cold item's mapped factors)."""
        row = check.without_zeros(history)  # a stored 0 carries nothing
        ids = row.indices.astype(np.int32)
        dims = self.solve_dims
        z = items[:, :dims].astype(np.float64)
        z_hist = z[ids]
        values = self.values(row.data, global_mean).astype(np.float64)
        if self.implicit:
            system = z.T @ z + (z_hist.T * values) @ z_hist
            weights = 1.0 + values  # confidence times preference 1
        else:
            system = z_hist.T @ z_hist
            # With biases the fixed item bias b_j moves to the right-hand side.
            offset = items[ids, -1].astype(np.float64) if self.biases else 0.0
            weights = values - offset
        system[np.diag_indices(dims)] += self.regularization
        target = z[item] if np.ndim(item) == 0 else np.asarray(item, dtype=np.float64)[:dims]
        similarity = z_hist @ np.linalg.solve(system, target)  # y_j^T W_u y_i (W_u symmetric)
        return ids, weights * similarity


def _float32(value: Any, name: str, **bounds: float) -> float:
    """A hyperparameter the kernels take as a float32: :func:`check.number` with ``bounds``,
    and at most float32's largest (past it the kernel would see inf)."""
    out = check.number(value, name, **bounds)
    if out > check.FLOAT32_MAX:
        raise ValueError(f"{name} must be at most {check.FLOAT32_MAX:.3g} (float32), got {value}")
    return out


def add_weight(
    indices: np.ndarray, weights: np.ndarray, user: int, item: int, weight: float
) -> tuple[np.ndarray, np.ndarray]:
    """``user``'s history (sorted item ids, float32 weights) with ``weight`` added to
    ``item``'s: a new interaction if it has none (seen even with weight 0). A sum beyond
    float32 is refused naming ``weight`` (the cast would store inf); the problem's own bounds
    are :meth:`ALSSolve.values`'s, as for every weight.

    Parameters
    ----------
    indices, weights : ndarray
        The user's history: sorted item ids and their float32 weights.
    user, item : int
        The user (named in the error) and the item whose weight changes.
    weight : float
        What the click adds.

    Examples
    --------
    >>> import numpy as np
    >>> from semrec.als_solve import add_weight
    >>> ids, w = add_weight(np.array([1, 4]), np.array([2, 3], np.float32), 0, 2, 1.0)
    >>> ids.tolist(), w.tolist()
    ([1, 2, 4], [2.0, 1.0, 3.0])
    """
    pos = int(np.searchsorted(indices, item))
    present = pos < indices.size and indices[pos] == item
    total = float(weights[pos]) + weight if present else weight
    if abs(total) > check.FLOAT32_MAX:
        raise ValueError(
            f"weight: update would give user {user} a weight of {total:.3g} on item {item}, "
            f"beyond float32's {check.FLOAT32_MAX:.3g}; rescale the weights"
        )
    if present:
        weights = weights.copy()
        weights[pos] = np.float32(total)
        return indices, weights
    return _insert(indices, pos, item), _insert(weights, pos, weight)


def _insert(values: np.ndarray, pos: int, value: Any) -> np.ndarray:
    """``values`` with ``value`` inserted at ``pos`` (np.insert's generality costs 10x here)."""
    out = np.empty(values.size + 1, dtype=values.dtype)
    out[:pos], out[pos], out[pos + 1 :] = values[:pos], value, values[pos:]
    return out
