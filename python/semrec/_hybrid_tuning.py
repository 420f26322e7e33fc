"""The weight search behind :meth:`semrec.Hybrid.tune`: a simplex grid, or coordinate ascent.

Both evaluate weight vectors the same way: each member scores the validation users once, its
rows are normalised and cached, and a weight vector blends the cached rows exactly as
:meth:`semrec.Hybrid.recommend` would (same float64 sums in the same order, same seen items,
same selection), ranked by :func:`semrec.evaluate`.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from tqdm import tqdm

from semrec import _hyperparameters as hyperparameters
from semrec import _validation as check
from semrec._hybrid_scores import fitted_shape, member_scores, seen_union
from semrec._scoring import select_topk
from semrec._threads import resolve_num_threads
from semrec.datasets import Dataset
from semrec.hybrid import normalize_rows
from semrec.metrics import RANKING_METRICS

logger = logging.getLogger("semrec")

SEARCHES = ("grid", "coordinate")

Weights = tuple[float, ...]


def tune(
    models: Sequence[Any],
    train: Dataset,
    validation: Dataset,
    *,
    grid: Any,
    search: str,
    rounds: int,
    k: int,
    metric: str,
    normalize: str,
    relevance_threshold: float | None,
    items: np.ndarray | None,
    show_progress: bool | None,
    check_members: Callable[[list[tuple[Any, float]]], None],
) -> tuple[list[Weights], list[float], int]:
    """Every weight vector evaluated (in order), its metric, and the index of the chosen one.

    ``check_members`` validates the members as a Hybrid would (fitted, same shapes).
    """
    check.choice(metric, "metric", RANKING_METRICS)
    check.choice(search, "search", SEARCHES)
    k = check.positive_int(k, "k")
    rounds = check.positive_int(rounds, "rounds")
    if isinstance(models, str | bytes) or not isinstance(models, Sequence) or not models:
        raise TypeError("models must be a non-empty list of fitted models")
    if search == "coordinate" and not (
        isinstance(grid, int | np.integer) and not isinstance(grid, bool)
    ):
        raise TypeError(
            f"search='coordinate' needs grid to be an int (the weight steps 0, 1/grid, ..., 1), "
            f"got {grid!r}"
        )
    vectors = _grid(grid, len(models)) if search == "grid" else None
    from semrec.evaluation import evaluate  # evaluation imports the model modules

    check_members([(m, 1.0) for m in models])
    cache = _BlendCache(models, normalize)

    def value(w: Weights) -> float:
        table = evaluate(
            _Blend(cache, w),
            train,
            validation,
            k=k,
            metrics=[metric],
            relevance_threshold=relevance_threshold,
            items=items,
            num_threads=1,  # the weight vectors run in parallel instead
        )
        return float(table.loc[k, metric])

    show = hyperparameters.progress(show_progress)
    tried: dict[Weights, float] = {}
    with (
        tqdm(total=len(vectors) if vectors else None, desc="Hybrid.tune", disable=not show) as bar,
        ThreadPoolExecutor(resolve_num_threads(None)) as pool,
    ):

        def run(batch: list[Weights]) -> list[float]:
            """The metric of each vector; the first is scored alone, so that the members
            score the validation users once, before the parallel blends."""
            new = [w for w in dict.fromkeys(batch) if w not in tried]
            if new and not tried:
                tried[new[0]] = value(new[0])
                bar.update(1)
                new = new[1:]
            for w, v in zip(new, pool.map(value, new), strict=True):
                tried[w] = v
                bar.update(1)
            return [tried[w] for w in batch]

        if vectors is not None:
            run(vectors)
        else:
            _coordinate_ascent(len(models), check.positive_int(grid, "grid"), rounds, run)
    order = list(tried)
    values = [tried[w] for w in order]
    for w, v in zip(order, values, strict=True):
        logger.debug("Hybrid.tune weights %s: %s@%d = %.5f", w, metric, k, v)
    return order, values, int(np.argmax(values))  # argmax: the first best in order


def tuning_table(weights: list[Weights], values: list[float], metric: str, k: int) -> pd.DataFrame:
    """One row per evaluated weight vector: ``w0, w1, ...`` and ``<metric>@<k>``."""
    columns = [f"w{j}" for j in range(len(weights[0]))] + [f"{metric}@{k}"]
    return pd.DataFrame([(*w, v) for w, v in zip(weights, values, strict=True)], columns=columns)


def _coordinate_ascent(
    n_models: int, steps: int, rounds: int, run: Callable[[list[Weights]], list[float]]
) -> None:
    """Start from the best member alone (weight 1); then, member by member in order, try each
    of its weights in ``0, 1/steps, ..., 1`` with the others fixed and keep the best if it
    beats the current metric (the first such weight on ties); stop after a pass with no change
    or after ``rounds`` passes. A member weighted alone keeps its weight (only ratios matter).
    ``run`` records every vector it scores; the caller picks the best of that record."""
    levels = [j / steps for j in range(steps + 1)]
    alone = [tuple(float(i == j) for i in range(n_models)) for j in range(n_models)]
    values = run(alone)
    start = int(np.argmax(values))
    current, best = alone[start], values[start]
    for _ in range(rounds):
        changed = False
        for j in range(n_models):
            if not any(x for i, x in enumerate(current) if i != j):
                continue  # j alone: its other steps only rescale the blend
            candidates = [(*current[:j], level, *current[j + 1 :]) for level in levels]
            candidates = [w for w in candidates if w[j] != current[j] and any(w)]
            if not candidates:
                continue
            scored = run(candidates)
            top = int(np.argmax(scored))
            if scored[top] > best:
                current, best, changed = candidates[top], scored[top], True
        if not changed:
            break


def _grid(grid: Any, n_models: int) -> list[Weights]:
    """The weight vectors of ``grid``: the simplex of an int, or the given rows, each checked
    as Hybrid checks its weights (before anything is evaluated)."""
    if isinstance(grid, int | np.integer) and not isinstance(grid, bool):
        return simplex(check.positive_int(grid, "grid"), n_models)
    if isinstance(grid, str | bytes | dict):
        rows = None
    else:
        try:
            rows = list(grid)
        except TypeError:
            rows = None
    if rows is None:
        raise TypeError(
            f"grid must be an int (simplex steps) or a list of weight vectors, got {grid!r}"
        )
    if not rows:
        raise ValueError("grid is empty; give at least one weight vector")
    return [_grid_row(r, row, n_models) for r, row in enumerate(rows)]


def _grid_row(r: int, row: Any, n_models: int) -> Weights:
    """One explicit weight vector: one number per model, each finite and >= 0, not all 0."""
    weights = None
    if not isinstance(row, str | bytes | dict):
        try:
            weights = list(row)
        except TypeError:
            pass
    if weights is None:
        raise TypeError(f"grid[{r}] must be a weight vector (one weight per model), got {row!r}")
    if len(weights) != n_models:
        raise ValueError(
            f"every grid row needs {n_models} weights (one per model); grid[{r}] is {row!r}"
        )
    # The bounds of Hybrid's own weights: a blend of normalised scores stays finite.
    out = tuple(
        check.number(w, f"grid[{r}][{j}] (row {row!r})", minimum=0, maximum=1e30)
        for j, w in enumerate(weights)
    )
    if not any(out):
        raise ValueError(f"grid[{r}] is all 0 ({row!r}); give at least one model a weight > 0")
    return out


def simplex(steps: int, n_models: int) -> list[Weights]:
    """Every vector of ``n_models`` weights in ``0, 1/steps, ..., 1`` summing to 1, in
    decreasing lexicographic order (the first model alone first).

    Stars and bars: ``n_models - 1`` bars among ``steps + n_models - 1`` slots; the weights
    are the numbers of stars between them. ``combinations`` yields the bar positions in
    increasing lexicographic order, which is that of the weight vectors, so reversing it gives
    the order above at a cost proportional to the vectors kept.
    """
    slots = steps + n_models - 1
    points = []
    for bars in itertools.combinations(range(slots), n_models - 1):
        edges = (-1, *bars, slots)
        points.append(tuple((edges[j + 1] - edges[j] - 1) / steps for j in range(n_models)))
    points.reverse()
    return points


class _BlendCache:
    """Each member's normalised rows, scored once per batch of users; thread-safe (the weight
    vectors are evaluated in parallel)."""

    def __init__(self, models: Sequence[Any], normalize: str) -> None:
        self.models = list(models)
        self.normalize = normalize
        self.n_users, self.n_items = fitted_shape(self.models[0])  # type: ignore[misc]
        self.batches: dict[bytes, tuple[list[np.ndarray], list[sp.csr_array]]] = {}
        self.unions: dict[tuple[bytes, tuple[int, ...]], sp.csr_array] = {}
        self.lock = threading.Lock()

    def rows(self, users: np.ndarray) -> tuple[list[np.ndarray], list[sp.csr_array]]:
        key = users.tobytes()
        with self.lock:
            if key not in self.batches:
                normed = [
                    normalize_rows(
                        member_scores(m, users, self.n_items),
                        self.normalize,
                        name=type(m).__name__,
                    )
                    for m in self.models
                ]
                seen = [sp.csr_array(m.interactions_[users]) for m in self.models]
                self.batches[key] = (normed, seen)
            return self.batches[key]

    def seen(self, users: np.ndarray, active: tuple[int, ...]) -> sp.csr_array:
        """The union of the active members' seen items (cached per batch and member set)."""
        key = (users.tobytes(), active)
        with self.lock:
            if key not in self.unions:
                rows = self.batches[key[0]][1]
                self.unions[key] = seen_union([rows[j] for j in active])
            return self.unions[key]


class _Blend:
    """One weight vector over a :class:`_BlendCache`: a model ``evaluate`` can rank with."""

    def __init__(self, cache: _BlendCache, weights: Weights) -> None:
        self.cache = cache
        self.weights = weights

    @property
    def n_users_(self) -> int:
        """The members' user count: ``evaluate`` refuses a split with users past it clearly."""
        return self.cache.n_users

    @property
    def n_items_(self) -> int:
        """The members' item count: ``evaluate`` refuses it when the split has another one,
        exactly as it refuses ``Hybrid(models, weights)``."""
        return self.cache.n_items

    def recommend(
        self, users: Any, k: int = 10, *, exclude_seen: bool = True, items: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        users = np.asarray(users, dtype=np.int64).reshape(-1)
        normed, _ = self.cache.rows(users)
        n_items = self.cache.n_items
        active = tuple(j for j, w in enumerate(self.weights) if w > 0)
        total = np.zeros((users.size, n_items), dtype=np.float64)
        term = np.empty_like(total)
        for j in active:  # total += weight * rows, the blend's exact float64 arithmetic
            np.multiply(normed[j], self.weights[j], out=term)
            total += term
        allowed = None
        if items is not None:
            allowed = np.zeros(n_items, dtype=bool)
            allowed[check.item_ids(items, "items", n_items)] = True
        exclude = self.cache.seen(users, active) if exclude_seen else None
        # One thread each: tune already evaluates the weight vectors on a pool of threads.
        return select_topk(total, k, exclude=exclude, allowed=allowed, num_threads=1)
