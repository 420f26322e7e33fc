"""The weight search behind :meth:`semrec.Hybrid.tune`: a simplex grid, or coordinate ascent.

Both evaluate weight vectors the same way, one batch of validation users at a time: each
member scores the batch once, its rows are normalised and held, and every weight vector being
tried blends those rows exactly as :meth:`semrec.Hybrid.recommend` would (same float64 sums in
the same order, same seen items, same selection) and ranks them as :func:`semrec.evaluate`
does; the per-user metric values are kept, and the next batch replaces this one. A vector's
metric is then the mean ``evaluate`` takes of the same per-user values, bit for bit.

Memory is one batch (``BATCH_BYTES`` of the members' float64 rows) plus, per thread, a blend
of ``BLEND_ROWS`` users and the per-user values, whatever the number of validation users. The
price, when the users need several batches: the members score a batch again for each group
of weight vectors evaluated together. The grid is one group (several only past
``VALUES_BYTES`` of per-user values); coordinate ascent picks its next vectors from the
metrics of the last ones, so each of its steps (at most ``1 + rounds * n_models``) scores
the members again, save for the batch held from the step before. Users that fit in one batch
(a MovieLens-100k: 943 users x 1682 items, 3 members, 38 MB) are scored once.
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
from semrec.metrics import RANKING_METRICS, ranking_metrics

logger = logging.getLogger("semrec")

SEARCHES = ("grid", "coordinate")

# The members' normalised float64 rows held at once (a batch: at least one user). Past it, the
# users go in several batches, each scored again per group of vectors (see above).
BATCH_BYTES = 64 << 20
# Users blended at once by each thread (a float64 blend and a product: 2 x rows x n_items).
BLEND_ROWS = 64
# Per-user metric values of the weight vectors evaluated together (n_vectors x n_users
# floats); past it, the vectors go in several groups.
VALUES_BYTES = 64 << 20

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
    check_members([(m, 1.0) for m in models])
    cache = _BlendCache(models, normalize)
    scorer = _Scorer(cache, train, validation, k, metric, relevance_threshold, items)

    show = hyperparameters.progress(show_progress)
    tried: dict[Weights, float] = {}
    with (
        tqdm(total=len(vectors) if vectors else None, desc="Hybrid.tune", disable=not show) as bar,
        ThreadPoolExecutor(resolve_num_threads(None)) as pool,
    ):

        def run(batch: list[Weights]) -> list[float]:
            """The metric of each vector (each distinct vector evaluated once)."""
            new = [w for w in dict.fromkeys(batch) if w not in tried]
            for w, v in zip(new, scorer.values(new, pool, bar), strict=True):
                tried[w] = v
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


class _Scorer:
    """The metric ``evaluate(Hybrid(models, w), train, validation, k=k, metrics=[metric])``
    gives each weight vector ``w``, computed one batch of validation users at a time.

    ``evaluate`` ranks every user by itself (a user's list and metric depend on that user's
    rows alone), so its per-user values are gathered batch by batch and averaged as it does.
    """

    def __init__(
        self,
        cache: _BlendCache,
        train: Dataset,
        validation: Dataset,
        k: int,
        metric: str,
        relevance_threshold: float | None,
        items: Any,
    ) -> None:
        from semrec.evaluation import known_history, relevant_entries

        self.cache = cache
        self.k = k
        self.metric = RANKING_METRICS.index(metric)
        self.width, self.items = _checked_by_evaluate(
            cache, train, validation, k, metric, relevance_threshold, items
        )
        self.relevant = relevant_entries(validation.interactions, relevance_threshold)
        # evaluate's users: those with a relevant validation item, in index order.
        self.users = np.flatnonzero(np.diff(self.relevant.indptr) > 0).astype(np.int32)
        self.history = known_history(train, validation)
        self.n_items = train.n_items
        self.batch = max(1, BATCH_BYTES // (8 * cache.n_items * len(cache.models)))

    def values(self, vectors: list[Weights], pool: ThreadPoolExecutor, bar: Any) -> list[float]:
        """Each vector's metric, in order (``bar`` advances by the vectors done)."""
        group = max(1, VALUES_BYTES // (8 * self.users.size))
        out: list[float] = []
        for start in range(0, len(vectors), group):
            out += self._group(vectors[start : start + group], pool, bar)
        return out

    def _group(self, vectors: list[Weights], pool: ThreadPoolExecutor, bar: Any) -> list[float]:
        n = self.users.size
        columns = np.empty((len(vectors), n))  # per-user metric values, one row per vector
        starts = list(range(0, n, self.batch))
        if self.cache.holds(self.users[starts[-1] :]):
            starts.reverse()  # begin with the batch still held from the last group
        shown = 0
        for done, start in enumerate(starts, 1):
            batch = self.users[start : start + self.batch]
            self.cache.load(batch)  # drops the batch before
            relevant = sp.csr_array(self.relevant[batch])

            scored = pool.map(  # the vectors run in parallel
                self._per_user, vectors, itertools.repeat(batch), itertools.repeat(relevant)
            )
            for i, values in enumerate(scored):
                columns[i, start : start + batch.size] = values
            bar.update(len(vectors) * done // len(starts) - shown)
            shown = len(vectors) * done // len(starts)
        return [_mean(column, self.metric) for column in columns]

    def _per_user(self, w: Weights, batch: np.ndarray, relevant: sp.csr_array) -> np.ndarray:
        """The metric of each user of ``batch`` for ``w``: evaluate's lists and kernel."""
        from semrec.evaluation import check_distinct, recommend_lists

        recs = recommend_lists(
            _Blend(self.cache, w),
            batch,
            self.width,
            self.items,
            batch.size,
            self.history,
            self.n_items,
        )
        check_distinct(recs, batch)
        # One thread each: tune already evaluates the weight vectors on a pool of threads.
        values = ranking_metrics(recs, relevant, (self.k,), per_user=True, num_threads=1)
        return values[:, 0, self.metric]


def _mean(column: np.ndarray, metric: int) -> float:
    """The mean ``evaluate`` takes of the per-user values: over the ``(users, 1, metrics)``
    block of ``ranking_metrics``, so that the sum runs in the same order, bit for bit."""
    block = np.zeros((column.size, 1, len(RANKING_METRICS)))
    block[:, 0, metric] = column
    return float(block[:, :, metric].mean(axis=0)[0])


class _Checked(Exception):
    """Raised by :class:`_Probe` once ``evaluate`` has checked its arguments and asks for lists."""

    def __init__(self, width: int, items: Any) -> None:
        super().__init__("evaluate's checks passed")
        self.width = width
        self.items = items


class _Probe:
    """A model that stops ``evaluate`` at its first ``recommend``, all arguments checked.

    Its seen items are the members' (a Hybrid's), so that evaluate also refuses members that
    have seen validation items (fitted on them, or updated with them): they would exclude
    them as seen and score 0 for every weight vector."""

    def __init__(self, cache: _BlendCache, validation: Dataset) -> None:
        self.n_users_ = cache.n_users
        self.n_items_ = cache.n_items
        self._models = cache.models
        self._validation = validation

    @property
    def interactions_(self) -> sp.csr_array:
        """The union of the members' seen items on the rows of the users with a validation
        entry (evaluate's check reads no others), the other rows empty. A property: read
        only once evaluate's earlier checks have passed, in evaluate's order."""
        held = self._validation.interactions
        users = np.flatnonzero(np.diff(held.indptr)[: self.n_users_] > 0)
        union = seen_union([m.interactions_[users] for m in self._models])
        counts = np.zeros(self.n_users_ + 1, dtype=np.int64)
        counts[users + 1] = np.diff(union.indptr)
        indptr = np.cumsum(counts)
        return sp.csr_array(
            (union.data, union.indices, indptr), shape=(self.n_users_, self.n_items_)
        )

    def recommend(
        self, users: Any, k: int = 10, *, exclude_seen: bool = True, items: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        raise _Checked(k, items)


def _checked_by_evaluate(
    cache: _BlendCache,
    train: Dataset,
    validation: Dataset,
    k: int,
    metric: str,
    relevance_threshold: float | None,
    items: Any,
) -> tuple[int, Any]:
    """``evaluate``'s own checks, so that tune refuses what ``evaluate(Hybrid(...))`` refuses,
    with its messages, before any member scores; returns the list width and the candidate
    items (checked) that evaluate passes to ``recommend``."""
    from semrec.evaluation import evaluate  # evaluation imports the model modules

    try:
        evaluate(
            _Probe(cache, validation),
            train,
            validation,
            k=k,
            metrics=[metric],
            relevance_threshold=relevance_threshold,
            items=items,
        )
    except _Checked as checked:
        return checked.width, checked.items
    raise RuntimeError("evaluate of a ranking metric did not call recommend")  # unreachable


class _BlendCache:
    """Each member's normalised rows for one batch of users, and their seen items; read by the
    weight vectors blended in parallel (thread-safe), replaced batch by batch."""

    def __init__(self, models: Sequence[Any], normalize: str) -> None:
        self.models = list(models)
        self.normalize = normalize
        self.n_users, self.n_items = fitted_shape(self.models[0])  # type: ignore[misc]
        self.users = np.empty(0, dtype=np.int64)
        self.normed: list[np.ndarray] = []
        self.seen_rows: list[sp.csr_array] = []
        self.unions: dict[tuple[int, ...], sp.csr_array] = {}
        self.lock = threading.Lock()

    def holds(self, users: np.ndarray) -> bool:
        """Whether the batch held is ``users``."""
        return bool(self.normed) and np.array_equal(self.users, users)

    def load(self, users: np.ndarray) -> None:
        """Score and normalise the batch ``users`` (sorted) with every member, unless held."""
        if self.holds(users):
            return
        self.drop()  # first: two batches are never held at once
        users = np.asarray(users, dtype=np.int64)
        self.normed = [
            normalize_rows(
                member_scores(m, users, self.n_items), self.normalize, name=type(m).__name__
            )
            for m in self.models
        ]
        self.seen_rows = [sp.csr_array(m.interactions_[users]) for m in self.models]
        self.users = users

    def drop(self) -> None:
        self.normed, self.seen_rows, self.unions = [], [], {}
        self.users = np.empty(0, dtype=np.int64)

    def positions(self, users: np.ndarray) -> slice | np.ndarray:
        """The rows of ``users`` in the batch held: a slice for the whole batch."""
        if np.array_equal(users, self.users):
            return slice(0, users.size)
        pos = np.minimum(np.searchsorted(self.users, users), max(self.users.size - 1, 0))
        if self.users.size == 0 or not np.array_equal(self.users[pos], users):
            # recommend_lists only asks again for some users of the batch it is given.
            raise RuntimeError("Hybrid.tune blended users outside the batch it holds")
        return pos

    def seen(self, active: tuple[int, ...]) -> sp.csr_array:
        """The union of the active members' seen items in the batch (once per member set)."""
        with self.lock:
            if active not in self.unions:
                self.unions[active] = seen_union([self.seen_rows[j] for j in active])
            return self.unions[active]


class _Blend:
    """One weight vector over a :class:`_BlendCache`: a model ``recommend_lists`` can rank
    with, for the users of the batch held."""

    def __init__(self, cache: _BlendCache, weights: Weights) -> None:
        self.cache = cache
        self.weights = weights

    def recommend(
        self, users: Any, k: int = 10, *, exclude_seen: bool = True, items: Any = None
    ) -> tuple[np.ndarray, np.ndarray]:
        users = np.asarray(users, dtype=np.int64).reshape(-1)
        rows = self.cache.positions(users)
        n_items = self.cache.n_items
        allowed = None
        if items is not None:
            allowed = np.zeros(n_items, dtype=bool)
            allowed[check.item_ids(items, "items", n_items)] = True
        if isinstance(rows, slice):
            blocks = [
                slice(s, min(s + BLEND_ROWS, users.size)) for s in range(0, users.size, BLEND_ROWS)
            ]
        else:
            blocks = [rows[s : s + BLEND_ROWS] for s in range(0, users.size, BLEND_ROWS)]
        found = [self._top(block, k, exclude_seen, allowed) for block in blocks]
        return np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found])

    def _top(
        self, rows: slice | np.ndarray, k: int, exclude_seen: bool, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The top ``k`` of some rows of the batch (each row is ranked by itself)."""
        active = tuple(j for j, w in enumerate(self.weights) if w > 0)
        size = rows.stop - rows.start if isinstance(rows, slice) else rows.size
        total = np.zeros((size, self.cache.n_items), dtype=np.float64)
        term = np.empty_like(total)
        for j in active:  # the blend's exact float64 arithmetic (a slice of rows is a view)
            np.multiply(self.cache.normed[j][rows], self.weights[j], out=term)
            total += term
        exclude = sp.csr_array(self.cache.seen(active)[rows]) if exclude_seen else None
        # One thread each: tune already evaluates the weight vectors on a pool of threads.
        return select_topk(total, k, exclude=exclude, allowed=allowed, num_threads=1)
