"""Weighted blends of fitted recommenders, with per-user score normalisation.

Scores of different models live on different scales (ALS dot products, cosines, counts), so
each member's scores for a user are first normalised over the whole catalogue, then summed with
the member weights. That is the seeds' ``alpha * CF + (1 - alpha) * content`` for two members.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from semrec import _validation as check
from semrec._base import Recommender, load_nested, nest
from semrec._hybrid_scores import fitted_rows, fitted_shape, member_scores, seen_union
from semrec._model_lock import fits_model, model_lock
from semrec._native import core
from semrec._persist import Saved, csr_arrays
from semrec._seen import scipy_view
from semrec._threads import resolve_num_threads
from semrec.coldstart import ColdStartALS
from semrec.datasets import Dataset
from semrec.errors import NotFittedError

NORMALIZE = ("zscore", "minmax", "rank")


class Hybrid(Recommender):
    """Blend the per-user normalised scores of several fitted models.

    For each user, every member with a non-zero weight scores every item; the scores are
    normalised over the user's row (see ``normalize``) and summed with the weights. Ranking
    then follows the blended score (ties to the lower item id).

    Parameters
    ----------
    models : sequence of (model, weight)
        Models with the common verbs (``score(users, items)``, or at least ``recommend``, and
        ``interactions_``), all over the same users and items, and weights ``>= 0``, not all 0.
        A weight of 0 drops that model (it is never called); the weights' overall scale does
        not matter, only their ratios.
    normalize : {"zscore", "minmax", "rank"}, default "zscore"
        Per user over all items: ``"zscore"`` subtracts the mean and divides by the standard
        deviation; ``"minmax"`` maps the row to [0, 1]; ``"rank"`` replaces scores by their
        rank (ties averaged) scaled to [0, 1]. A constant row becomes all 0, or all 0.5 with
        ``"rank"`` (one tie): either way that model then has no say in the user's ranking
        (with ``"rank"`` it only shifts the blended scores). Scores of ``-inf`` (an item the
        model must never return) are left out of the statistics and stay ``-inf`` in the blend.

    Notes
    -----
    Fitting is optional: members fitted beforehand are used as they are, and the items a user
    has seen (for ``exclude_seen``) are the union of what the weighted members have seen.
    ``fit(interactions)`` fits the members that are not fitted yet (all of them with
    ``refit=True``) and adds ``interactions`` to that union. The Hybrid scores with its
    members as they are: ``fold_in`` / ``update`` each member and the blend follows at once
    (a model listed twice, or an ALS that is also a ColdStartALS member's ``als``, is one
    model: give it each change once).
    ``save`` writes every member in the same file, those of weight 0 included (members must be
    fitted semrec models: fit a weight-0 member, or drop it from ``models``, before saving).
    Each member is saved on its own, so a model shared by two members loads as two
    independent copies: after ``load``, give each member its changes.

    Ranking follows the float64 blend, while ``score`` and ``recommend`` return it rounded to
    float32: two items whose returned scores are equal can come in either id order (their
    float64 blends differ), most often with ``"rank"``.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, semrec
    >>> clicks = sp.random_array((40, 30), density=0.2, format="csr", rng=0, dtype=np.float32)
    >>> als = semrec.ALS(factors=4, iterations=3, random_state=0, show_progress=False)
    >>> hybrid = semrec.Hybrid([(als, 0.7), (semrec.MostPopular(), 0.3)]).fit(clicks)
    >>> hybrid.recommend([0, 1], k=5)[0].shape
    (2, 5)
    """

    _PARAMS = ("models", "normalize")
    _FORMAT_NAME = "semrec.Hybrid"
    _HINTS = {  # noqa: RUF012 (class constant)
        "fold_in": "fold the histories into each member (hybrid.models); the blend follows",
        "update": "update each member (hybrid.models); the blend follows at once",
        "add_items": "members take new items in different forms; add them to each member",
        "similar_items": "ask a member (hybrid.models) for similar items",
    }

    def __init__(self, models: Sequence[tuple[Any, float]], normalize: str = "zscore") -> None:
        self.models = models
        self.normalize = normalize
        self._interactions: sp.csr_array | None = None
        self._members()  # fail early on a malformed list

    # -- members -----------------------------------------------------------------------------
    def _members(self) -> list[tuple[Any, float]]:
        """The validated (model, weight) pairs with a non-zero weight."""
        if isinstance(self.models, str | bytes) or not isinstance(self.models, Sequence):
            raise TypeError(
                f"models must be a list of (model, weight) pairs, got {type(self.models).__name__}"
                " (e.g. Hybrid([(als, 0.7), (popular, 0.3)]), not Hybrid(als, popular))"
            )
        check.choice(self.normalize, "normalize", NORMALIZE)
        if len(self.models) == 0:
            raise ValueError("models is empty; give at least one (model, weight) pair")
        active = []
        for n, pair in enumerate(self.models):
            if not (isinstance(pair, tuple | list) and len(pair) == 2):
                raise TypeError(f"models[{n}] must be a (model, weight) pair, got {pair!r}")
            model, weight = pair
            # Bounded so that a blend of normalised scores stays finite (only ratios matter).
            weight = check.number(weight, f"the weight of models[{n}]", minimum=0, maximum=1e30)
            if isinstance(model, type):
                raise TypeError(
                    f"models[{n}] is the class {model.__name__}, not a model; pass an instance, "
                    f"e.g. {model.__name__}(...)"
                )
            if not (hasattr(model, "score") or hasattr(model, "recommend")):
                raise TypeError(
                    f"models[{n}] ({type(model).__name__}) has neither score nor recommend"
                )
            if weight > 0:
                active.append((model, float(weight)))
        if not active:
            raise ValueError("every weight is 0; give at least one model a weight > 0")
        return active

    @property
    def interactions_(self) -> sp.csr_array:  # type: ignore[override]
        """Seen items: those given to ``fit`` and the weighted members' own seen items, which
        grow with the members' ``update`` and ``fold_in`` (an entry of 1 where any has one).
        Read-only, as the members' are: ``.copy()`` it to edit."""
        self._check_fitted()
        return scipy_view(self._seen_rows(np.arange(self.n_users_)))

    def _seen_rows(self, users: np.ndarray) -> sp.csr_array:
        rows = [_member_seen(model, users) for model, _ in self._members()]
        if self._interactions is not None:
            rows.append(fitted_rows(self._interactions, users, self._shape()[1]))
        return seen_union(rows)

    def _shape(self) -> tuple[int, int]:
        return fitted_shape(self._members()[0][0])  # type: ignore[return-value]

    def _check_fitted(self) -> None:
        self._members()
        shapes = []
        for n, (model, weight) in enumerate(self.models):
            if weight == 0:
                continue
            shape = fitted_shape(model)
            if shape is None:
                raise NotFittedError(
                    f"models[{n}] ({type(model).__name__}) is not fitted; fit it first or call "
                    "Hybrid.fit(interactions)"
                )
            shapes.append(shape)
        fitted = self._interactions
        self._check_shapes(shapes, None if fitted is None else fitted.shape)

    @staticmethod
    def _check_shapes(shapes: list[tuple[int, int]], given: tuple[int, int] | None) -> None:
        """The weighted members' (users, items) must agree and cover the matrix given to fit."""
        if len(set(shapes)) > 1:
            raise ValueError(
                f"the models disagree on the number of users and items: {shapes}; fit them on "
                "the same interactions, and give every member the same fold_in, update and "
                "add_items (from several threads: all of one change's calls before a read)"
            )
        if given is not None and (given[0] > shapes[0][0] or given[1] > shapes[0][1]):
            raise ValueError(
                f"the models know {shapes[0][0]} users and {shapes[0][1]} items, fewer than the "
                f"interactions given to Hybrid.fit ({given[0]} x {given[1]}); "
                "refit them: Hybrid.fit(interactions, refit=True)"
            )

    @fits_model
    def fit(self, interactions: Any, *, refit: bool = False) -> Hybrid:
        """Fit the members that are not fitted yet on ``interactions`` (every one if ``refit``).

        ``interactions`` (users x items CSR) is also added to the seen items for
        ``exclude_seen``, which stay the union with the weighted members' own. Each model is
        fitted at most once, however often it appears: a member listed twice, or an ALS that is
        also a :class:`semrec.ColdStartALS` member's ``als`` (fitted first; the ColdStartALS
        then maps its items with ``fit()``). A fit that fails (the members' shapes, checked
        before any member is fitted, or a member's own fit refusing) changes neither the Hybrid
        nor any member, nor the ALS inside a ColdStartALS member.

        Returns
        -------
        self
        """
        weighted, refit = self._members(), check.flag(refit, "refit")
        if isinstance(interactions, Dataset):
            raise TypeError(
                "interactions must be a scipy.sparse CSR matrix (users x items), got a Dataset; "
                "pass dataset.interactions. A member that needs the Dataset itself (its "
                "timestamps for a ContentRecommender's half_life, its item ids) is fitted on it "
                "first: member.fit(dataset), then Hybrid(...).fit(dataset.interactions)"
            )
        check.require_csr(interactions, "interactions", "(users x items)")
        given = check.interactions(interactions, "interactions", nonnegative=False)
        plan = _fit_plan([model for model, _ in weighted], refit)
        # The shapes the members will have, checked before any of them is fitted.
        self._check_shapes(
            [_shape_after(model, plan, given.shape) for model, _ in weighted], given.shape
        )

        def fit_members() -> None:
            for model, inner_fitted in plan:
                model.fit() if inner_fitted else model.fit(interactions)
            self._interactions = given
            self._check_fitted()  # a member's own fit could still give another shape

        # A member failing after others were fitted: every model of the plan is put back.
        _all_or_none(self, _changed_by(plan), fit_members)
        return self

    # -- scoring -----------------------------------------------------------------------------
    def _blend(self, users: np.ndarray) -> np.ndarray:
        """Blended float64 scores of every item for each user (float64 keeps member ties)."""
        n_items = self.n_items_
        total = np.zeros((users.size, n_items), dtype=np.float64)
        for model, weight in self._members():
            scores = member_scores(model, users, n_items)
            name = type(model).__name__
            if self.normalize == "rank":
                part = normalize_rows(scores, self.normalize, name=name)
                part *= weight  # in place: a block is users x every item
                total += part
            else:  # normalised and added in one native pass per row, no block-sized temporaries
                _add_normalized(scores, self.normalize, weight, total, name, self._threads)
        return total

    def _score_rows(self, users: np.ndarray) -> np.ndarray:
        return self._blend(users).astype(np.float32)

    def _rank_rows(self, users: np.ndarray) -> np.ndarray:
        return self._blend(users)  # float64: members' ties stay ties

    # -- explanations ------------------------------------------------------------------------
    def _explain(self, u: int, i: int, k: int) -> pd.DataFrame:
        """How the blended score splits into terms (see :meth:`explain`).

        The blend is ``sum_m w_m * norm_m(s_m)``. With ``"zscore"`` and ``"minmax"`` each
        member's normalisation is affine for a given user, ``norm_m(s) = (s - c_m) / d_m`` (its
        row mean and standard deviation, or minimum and range), so each member's own history
        contributions (its ``explain``) carry over scaled by ``w_m / d_m`` and are summed per
        item; that decomposition is exact. What no history item carries goes to
        ``attrs["rest"]``: the members' offsets ``-w_m c_m / d_m`` and their own ``rest``, and
        the whole part of members without an item-keyed ``explain`` (MostPopular, Random, and
        UserKNN, whose terms are neighbours). With ``"rank"``, which is not linear, each
        member's normalised part is split in proportion to its raw contributions: an
        approximation, said here rather than hidden. The table's ``attrs["members"]`` holds one
        dict per weighted member: its ``model`` name, ``weight``, ``part`` (its term of the
        blended score) and ``explained`` (the part its history items carry here). A member
        that gives the item a score of ``-inf`` (never recommends it) makes it a ValueError.

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> clicks = sp.random_array((40, 30), density=0.2, format="csr", rng=0, dtype=np.float32)
        >>> knn = semrec.ItemKNN(neighbours=10, show_progress=False)
        >>> hybrid = semrec.Hybrid([(knn, 0.8), (semrec.MostPopular(), 0.2)]).fit(clicks)
        >>> why = hybrid.explain(0, 5, k=3)
        >>> [m["model"] for m in why.attrs["members"]]
        ['ItemKNN', 'MostPopular']
        >>> bool(abs(why.attrs["explained"] + why.attrs["rest"] - why.attrs["score"]) < 1e-9)
        True
        """
        from semrec.explain import explanation

        n_items = self.n_items_
        score = 0.0
        items, parts, members = [], [], []
        for model, weight in self._members():
            name = type(model).__name__
            raw = member_scores(model, np.array([u]), n_items)
            normed = normalize_rows(raw, self.normalize, name=name)[0, i]
            if not np.isfinite(normed):
                raise ValueError(
                    f"{name} scores item {i} -inf for user {u} (it never recommends it), so the "
                    "blend has nothing to explain"
                )
            part = weight * float(normed)
            score += part
            table = _item_contributions(model, u, i, n_items)
            explained = 0.0
            if table is not None:
                ids, values = table
                if self.normalize == "rank":
                    total = values.sum()
                    scale = part / total if abs(total) > 1e-12 * np.abs(values).sum() else 0.0
                else:
                    scale = _weight_per_spread(raw[0], self.normalize, weight)
                items.append(ids)
                parts.append(values * scale)
                explained = float(parts[-1].sum())
            members.append({"model": name, "weight": weight, "part": part, "explained": explained})
        ids = np.concatenate(items) if items else np.empty(0, dtype=np.int32)
        values = np.concatenate(parts) if parts else np.empty(0)
        history, inverse = np.unique(ids, return_inverse=True)
        summed = np.zeros(history.size)
        np.add.at(summed, inverse, values)
        frame = explanation(history, summed, k, user=u, item=i, score=score)
        frame.attrs["members"] = members
        return frame

    # -- weight search -----------------------------------------------------------------------
    @classmethod
    def tune(
        cls,
        models: Sequence[Any],
        train: Dataset,
        validation: Dataset,
        *,
        grid: int | Sequence[Sequence[float]] = 10,
        search: str = "grid",
        rounds: int = 10,
        k: int = 10,
        metric: str = "ndcg",
        normalize: str = "zscore",
        relevance_threshold: float | None = 4,
        items: np.ndarray | None = None,
        show_progress: bool | None = None,
    ) -> Hybrid:
        """Pick the weights that maximise a ranking metric on a validation split.

        Every weight vector tried is evaluated with :func:`semrec.evaluate`, exactly as
        ``evaluate(Hybrid(models, weights), train, validation)`` would: each member scores a
        batch of validation users once, and every weight vector blends those normalised rows
        before the next batch replaces them (batches of 64 MB of rows: MovieLens-100k's
        validation users fit in one; larger splits rescore per batch, memory stays bounded).
        ``search="grid"`` tries every vector of ``grid``; ``search="coordinate"`` climbs one
        weight at a time, for many members (the simplex grid has ``C(n + grid - 1, grid)``
        vectors: 1001 for 5 members at ``grid=10``, 92378 for 10).

        Parameters
        ----------
        models : sequence of models
            Fitted on ``train.interactions`` (carve ``validation`` from the training data, e.g.
            ``train, validation = semrec.split.last_fraction(train)``; never tune on test).
        train, validation : Dataset
            Output of a splitter, sharing id maps.
        grid : int or sequence of weight vectors, default 10
            An int ``n`` searches every weight vector on the simplex with step ``1 / n``
            (each single model alone included); or give the weight vectors to try, each
            checked first as Hybrid's weights are (one number ``>= 0`` per model, not all 0).
            With ``search="coordinate"``: an int, the weight steps ``0, 1/grid, ..., 1``.
        search : {"grid", "coordinate"}, default "grid"
            ``"coordinate"``: coordinate ascent. Start from the best member alone (weight 1);
            then, member by member in the given order, try each of its weight steps with the
            others fixed and keep the best one if it beats the current metric (the lowest such
            step on ties); stop after a pass over the members that changes nothing, or after
            ``rounds`` passes (the weight of a member weighted alone is not varied: only
            ratios matter). At most ``n + rounds * n * grid`` evaluations, each weight
            vector evaluated once. Deterministic; it finds a local optimum, which the
            grid's finer ratios (e.g. 0.75 : 0.35) can miss at a coarse step.
        rounds : int, default 10
            Most passes of ``search="coordinate"`` (ignored by ``"grid"``).
        k : int, default 10
            Cutoff of the metric.
        metric : str, default "ndcg"
            One of ``precision, recall, ndcg, map, hit_rate, mrr``.
        normalize : str, default "zscore"
            As in :class:`Hybrid`.
        relevance_threshold : float or None, default 4
            As in :func:`semrec.evaluate`.
        items : 1-D int array, optional
            Rank only these items (e.g. the validation split's cold items), as in
            :func:`semrec.evaluate`.
        show_progress : bool, optional
            A tqdm bar over the grid; ``None`` shows it when stderr is a terminal.

        Returns
        -------
        Hybrid
            With the best weights (the first in grid order on a tie), ready to use: like any
            Hybrid not given to ``fit``, it excludes the union of what its weighted members
            have seen. Its ``tuning_`` attribute is a DataFrame of every weight vector tried
            (in the order tried) and its metric.

        Examples
        --------
        >>> import semrec
        >>> data = semrec.datasets.synthetic(200, 300, 4_000)
        >>> train, validation = semrec.split.last_fraction(data)
        >>> pop = semrec.MostPopular().fit(train.interactions)
        >>> rnd = semrec.Random(random_state=0).fit(train.interactions)
        >>> best = semrec.Hybrid.tune([pop, rnd], train, validation, grid=2, show_progress=False)
        >>> best.tuning_.shape
        (3, 3)
        >>> climbed = semrec.Hybrid.tune([pop, rnd], train, validation, grid=4,
        ...                              search="coordinate", show_progress=False)
        >>> [w for _, w in climbed.models], len(climbed.tuning_)  # pop alone, then + rnd
        ([1.0, 1.0], 9)
        """
        from semrec._hybrid_tuning import tune, tuning_table  # it imports this module

        tried, values, best = tune(
            models,
            train,
            validation,
            grid=grid,
            search=search,
            rounds=rounds,
            k=k,
            metric=metric,
            normalize=normalize,
            relevance_threshold=relevance_threshold,
            items=items,
            show_progress=show_progress,
            check_members=lambda pairs: cls(pairs, normalize=normalize)._check_fitted(),
        )
        chosen = cls(list(zip(models, tried[best], strict=True)), normalize=normalize)
        chosen.tuning_ = tuning_table(tried, values, metric, k)
        return chosen

    # -- persistence: every member in the same file ---------------------------------------------
    def _params(self) -> dict[str, Any]:
        return {"normalize": self.normalize}

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta: dict[str, Any] = {"weights": [float(w) for _, w in self.models]}
        arrays: dict[str, np.ndarray] = {}
        for j, (model, _) in enumerate(self.models):
            # A weight-0 member is never called, so it may be unfitted; a member is saved
            # with its state, so say which one and how to save the rest.
            if isinstance(model, Recommender) and fitted_shape(model) is None:
                raise NotFittedError(
                    f"models[{j}] ({type(model).__name__}, weight 0) is not fitted, and save "
                    "stores every member's fitted state; fit it, or drop it from models, then save"
                )
            member_meta, member_arrays = nest(f"member{j}", model)
            meta |= member_meta
            arrays |= member_arrays
        if self._interactions is not None:
            meta["shape"] = list(self._interactions.shape)
            arrays |= csr_arrays(self._interactions, "interactions")
        return meta, arrays

    @classmethod
    def _from_params(cls, params: dict[str, Any], saved: Saved) -> Any:
        weights = saved.value("weights", list)
        if not weights:
            raise saved.error("weights", "is empty")
        if f"member{len(weights)}" in saved.meta:  # a member saved without its weight
            raise saved.error("weights", f"lists {len(weights)} weights for more members")
        members = [load_nested(saved, f"member{j}") for j in range(len(weights))]
        return cls(list(zip(members, weights, strict=True)), **params)

    def _restore(self, saved: Saved) -> None:
        if "shape" in saved.meta:
            self._interactions = saved.csr("interactions", saved.shape("shape"))
        self._check_fitted()


def _fit_plan(members: list[Any], refit: bool) -> list[tuple[Any, bool]]:
    """The members to fit, each distinct model once, in order: ``(model, inner_fitted)`` where
    ``inner_fitted`` says a ColdStartALS's ALS is a member too, fitted (or kept) on its own, so
    the ColdStartALS maps items with ``fit()`` rather than refitting that ALS."""
    plan: list[tuple[Any, bool]] = []
    for model in members:
        if any(model is m for m, _ in plan) or not (refit or fitted_shape(model) is None):
            continue
        inner = getattr(model, "als", None) if isinstance(model, ColdStartALS) else None
        shared = inner is not None and any(inner is m for m in members)
        if shared and (refit or fitted_shape(inner) is None):
            if not any(inner is m for m, _ in plan):
                plan.append((inner, False))  # before the ColdStartALS that reads its factors
        plan.append((model, shared))
    return plan


def _changed_by(plan: list[tuple[Any, bool]]) -> list[Any]:
    """Every model that ``plan``'s fits change: its models, the ALS a ColdStartALS refits
    itself and what a Hybrid member fits. Sorted so that locks are taken in one order across
    threads, a container before what it holds (as ColdStartALS.fit locks itself, then its ALS)."""
    found: dict[int, Any] = {}
    for model, inner_fitted in plan:
        found[id(model)] = model
        if isinstance(model, ColdStartALS) and not inner_fitted:  # its fit refits its ALS
            found[id(model.als)] = model.als
        elif isinstance(model, Hybrid):
            nested = _fit_plan([m for m, _ in model._members()], refit=False)
            found |= {id(m): m for m in _changed_by(nested)}
    kept = (m for m in found.values() if hasattr(m, "__dict__"))  # fits_model reads vars()
    return sorted(kept, key=lambda m: (-isinstance(m, Hybrid), -isinstance(m, ColdStartALS), id(m)))


@fits_model  # on ``model``: put back as it was when what follows raises
def _all_or_none(model: Any, rest: list[Any], then: Callable[[], None]) -> None:
    """Call ``then`` with ``model`` and ``rest`` locked, all put back if it raises (fits replace
    attributes, not change them: the references ``fits_model`` keeps are the old state)."""
    _all_or_none(rest[0], rest[1:], then) if rest else then()


def _shape_after(model: Any, plan: list[tuple[Any, bool]], given: tuple[int, int]) -> Any:
    """The (users, items) ``model`` will have after ``plan`` runs on interactions of shape
    ``given``: a ColdStartALS covers every row of its item embeddings (at least the ALS's
    items; its own fit refuses fewer), over the users of its ALS."""
    planned = [inner for m, inner in plan if m is model]
    if not planned:
        return fitted_shape(model)
    if not isinstance(model, ColdStartALS):
        return given
    users = given[0] if not planned[0] else _shape_after(model.als, plan, given)[0]
    try:
        rows = len(model.item_embeddings)
    except TypeError:  # not an array: the ColdStartALS's own fit says what is wrong
        return given
    return users, max(rows, given[1])


def normalize_rows(scores: np.ndarray, how: str, *, name: str = "scores") -> np.ndarray:
    """Normalise each row of a score block (float64 result), as :class:`Hybrid` documents.

    ``-inf`` entries are ignored by the statistics and stay ``-inf``; NaN or ``+inf`` raise.

    Examples
    --------
    >>> import numpy as np
    >>> from semrec.hybrid import normalize_rows
    >>> normalize_rows(np.array([[1.0, 2.0, 3.0]]), "minmax").tolist()
    [[0.0, 0.5, 1.0]]
    """
    check.choice(how, "normalize", NORMALIZE)
    if how != "rank":
        out = np.zeros(np.shape(scores), dtype=np.float64)
        _add_normalized(scores, how, 1.0, out, name, None)  # 0 + 1 * x is x, bit for bit
        return out
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"scores must be a 2-D block (users x items), got {s.ndim}-D ({name})")
    top = s.max() if s.size else 0.0
    if np.isnan(top) or top == np.inf:  # max() propagates NaN
        raise ValueError(f"{name} returned NaN or +inf scores; only -inf may mark excluded items")
    finite = s != -np.inf
    count = finite.sum(axis=1, keepdims=True)
    import scipy.stats  # here: importing it takes about half of `import semrec`

    # rankdata puts the -inf entries first; shift them out so finite ranks start at 1.
    ranks = scipy.stats.rankdata(s, axis=1, method="average") - (s.shape[1] - count)
    return np.where(finite, (ranks - 1.0) / np.maximum(count - 1, 1), -np.inf)


def _add_normalized(
    scores: np.ndarray, how: str, weight: float, total: np.ndarray, name: str, threads: int | None
) -> None:
    """``total += weight * normalize_rows(scores, how)`` for ``"zscore"`` / ``"minmax"``, in
    the native kernel (float32 or float64 scores as they are; other dtypes as float64)."""
    scores = np.asarray(scores)
    if scores.ndim != 2:  # before ascontiguousarray, which makes a scalar 1-D
        raise ValueError(
            f"scores must be a 2-D block (users x items), got {scores.ndim}-D ({name})"
        )
    scores = np.ascontiguousarray(scores, np.float32 if scores.dtype == np.float32 else np.float64)
    if not core.add_normalized_rows(scores, how, weight, total, resolve_num_threads(threads)):
        raise ValueError(f"{name} returned NaN or +inf scores; only -inf may mark excluded items")


def _weight_per_spread(row: np.ndarray, how: str, weight: float) -> float:
    """``weight / spread`` of the affine normalisation of one score row (the standard
    deviation or the range of its finite entries), 0 without spread. The spread is measured in
    units of 2^e (exact), so that scores past ~1e154, whose spread overflows, keep their scale."""
    v = row[np.isfinite(row)]
    if v.size == 0:
        return 0.0
    e = int(np.frexp(np.abs(v).max())[1])
    v = np.ldexp(v, -e)
    spread = v.std() if how == "zscore" else np.ptp(v)
    return float(np.ldexp(weight, -e) / spread) if spread > 0 else 0.0


def _member_seen(model: Any, users: np.ndarray) -> Any:
    """A member's seen rows of ``users``: a semrec model's own hook reads only those (its
    ``interactions_`` would merge the clicks since its last read: O(all interactions))."""
    if not isinstance(model, Recommender):
        return model.interactions_[users]
    with model_lock(model).reading():  # as its own verbs read it
        return model._seen_rows(users)


def _item_contributions(
    model: Any, user: int, item: int, n_items: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """A member's per-history-item contributions, or None when it has no item-keyed explain."""
    if not hasattr(model, "explain"):
        return None
    try:
        table = model.explain(user, item, k=n_items)
    except NotImplementedError:  # a baseline: no history terms
        return None
    if "item" not in table.columns:  # UserKNN explains by neighbour
        return None
    return table["item"].to_numpy(np.int32), table["contribution"].to_numpy(np.float64)
