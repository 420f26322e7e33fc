"""Hybrid blends: normalisations against NumPy, weight behaviour, fitting, tuning, errors."""

from __future__ import annotations

import itertools
import math
import threading

import numpy as np
import pytest
import scipy.sparse as sp

import semrec
from semrec.datasets import synthetic
from semrec.hybrid import normalize_rows
from semrec.split import last_fraction


class Fixed:
    """A test model with the common verbs whose scores are a given dense matrix."""

    def __init__(self, scores: np.ndarray, interactions: sp.csr_array) -> None:
        self.table = np.asarray(scores, dtype=np.float32)
        self.interactions_ = interactions
        self.calls = 0

    def score(self, users, items):
        self.calls += 1
        return self.table[np.asarray(users)][:, np.asarray(items)]

    def recommend(self, users, k=10, *, exclude_seen=True, items=None):
        raise AssertionError("Hybrid must use score when a model has it")


class Broken(Fixed):
    def score(self, users, items):
        raise AssertionError("a model with weight 0 must never be called")


@pytest.fixture
def clicks() -> sp.csr_array:
    return sp.random_array((40, 50), density=0.15, format="csr", rng=3, dtype=np.float32)


@pytest.fixture
def als(clicks) -> semrec.ALS:
    return semrec.ALS(factors=6, iterations=4, random_state=0, show_progress=False).fit(clicks)


def rank_reference(row: np.ndarray) -> np.ndarray:
    """Average ranks among the finite entries, scaled to [0, 1], by counting."""
    finite = np.isfinite(row)
    v = row[finite]
    below = (v[None, :] < v[:, None]).sum(axis=1)
    equal = (v[None, :] == v[:, None]).sum(axis=1)
    ranks = below + (equal + 1) / 2
    out = np.full(row.shape, -np.inf)
    out[finite] = (ranks - 1) / max(v.size - 1, 1)
    return out


@pytest.mark.parametrize("how", ["zscore", "minmax", "rank"])
def test_normalisations_equal_numpy(rng, how):
    s = rng.standard_normal((6, 30))
    s[1, 5:9] = s[1, 4]  # ties
    s[2] = 3.0  # constant row
    s[3, [0, 7, 11]] = -np.inf  # excluded items
    got = normalize_rows(s, how)
    for r, row in enumerate(s):
        finite = np.isfinite(row)
        v = row[finite]
        if how == "zscore":
            expected = (v - v.mean()) / v.std() if v.std() > 0 else np.zeros_like(v)
            np.testing.assert_allclose(got[r, finite], expected, rtol=1e-10, atol=1e-12)
        elif how == "minmax":
            span = v.max() - v.min()
            expected = (v - v.min()) / span if span > 0 else np.zeros_like(v)
            np.testing.assert_allclose(got[r, finite], expected, rtol=1e-12, atol=1e-12)
        else:
            np.testing.assert_allclose(got[r], rank_reference(row), rtol=1e-12)
        assert np.isneginf(got[r, ~finite]).all()


@pytest.mark.parametrize("how", ["zscore", "minmax"])
def test_normalisations_of_float32_huge_and_empty_rows(rng, how):
    # float32 blocks are read as they are (no float64 copy), and equal the float64 result.
    s32 = rng.standard_normal((5, 37)).astype(np.float32)
    s32[0, :3] = -np.inf
    np.testing.assert_array_equal(normalize_rows(s32, how), normalize_rows(s32.astype(float), how))
    # Finite scores whose sum or range overflows float64 still normalise (scaled first).
    huge = np.array([[1e308, -1e308, 5e307, -np.inf]])
    v = huge[0, :3] / 1e308
    want = (v - v.mean()) / v.std() if how == "zscore" else (v - v.min()) / np.ptp(v)
    got = normalize_rows(huge, how)
    np.testing.assert_allclose(got[0, :3], want, rtol=1e-12)
    assert got[0, 3] == -np.inf
    with pytest.raises(ValueError, match=r"2-D block .* got 0-D"):
        normalize_rows(3.0, how)
    with pytest.raises(ValueError, match="2-D"):
        normalize_rows(np.array([1.0, 2.0]), how)
    # A row with every item excluded stays -inf; an empty block stays empty.
    assert np.isneginf(normalize_rows(np.full((2, 3), -np.inf), how)).all()
    assert normalize_rows(np.empty((0, 4)), how).shape == (0, 4)


def test_normalize_rejects_nan():
    for how in ("zscore", "minmax", "rank"):
        for bad in (np.nan, np.inf):
            with pytest.raises(ValueError, match="NaN or \\+inf"):
                normalize_rows(np.array([[1.0, 2.0], [1.0, bad]]), how)


def test_blend_equals_weighted_numpy(rng, clicks, als):
    other = Fixed(rng.standard_normal((40, 50)) * 100 + 5, clicks)
    hybrid = semrec.Hybrid([(als, 0.3), (other, 0.7)])
    users, items = np.arange(40), np.arange(50)
    a = als.score(users, items).astype(np.float64)
    b = other.table.astype(np.float64)

    def z(x):
        return (x - x.mean(axis=1, keepdims=True)) / x.std(axis=1, keepdims=True)

    expected = 0.3 * z(a) + 0.7 * z(b)
    np.testing.assert_allclose(hybrid.score(users, items), expected, rtol=1e-4, atol=1e-4)
    # recommend ranks by the same blend, seen items excluded, ties to the lower id.
    ids, _ = hybrid.recommend(users, k=5)
    masked = np.where(clicks.toarray() > 0, -np.inf, expected)
    for u in range(40):
        ref = np.lexsort((np.arange(50), -masked[u]))[:5]
        np.testing.assert_array_equal(ids[u], ref)


@pytest.mark.parametrize("how", ["zscore", "minmax", "rank"])
def test_weight_one_alone_reproduces_the_model(rng, clicks, als, how):
    other = Broken(rng.standard_normal((40, 50)), clicks)
    hybrid = semrec.Hybrid([(other, 0.0), (als, 1.0)], normalize=how)
    users = np.arange(40)
    got, _ = hybrid.recommend(users, k=10)
    scores = np.where(clicks.toarray() > 0, -np.inf, als.score(users, np.arange(50)))
    ref = np.stack([np.lexsort((np.arange(50), -row))[:10] for row in scores])
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(got, als.recommend(users, k=10)[0])


def test_model_without_score_uses_recommend(clicks):
    pop = semrec.MostPopular().fit(clicks)
    hybrid = semrec.Hybrid([(pop, 2.0)], normalize="minmax")
    np.testing.assert_array_equal(
        hybrid.recommend(np.arange(40), k=8)[0], pop.recommend(np.arange(40), k=8)[0]
    )


def test_only_weight_ratios_matter(rng, clicks, als):
    other = Fixed(rng.standard_normal((40, 50)), clicks)
    a = semrec.Hybrid([(als, 1.0), (other, 3.0)]).recommend(np.arange(40), k=10)[0]
    b = semrec.Hybrid([(als, 0.25), (other, 0.75)]).recommend(np.arange(40), k=10)[0]
    np.testing.assert_array_equal(a, b)


def test_items_and_exclude_seen(rng, clicks, als):
    other = Fixed(rng.standard_normal((40, 50)), clicks)
    hybrid = semrec.Hybrid([(als, 0.5), (other, 0.5)])
    allowed = np.arange(10, 30)
    ids, scores = hybrid.recommend(np.arange(40), k=25, items=allowed)
    real = ids >= 0
    assert np.isin(ids[real], allowed).all()
    assert (np.isneginf(scores) == ~real).all()
    for u in range(40):
        seen = set(clicks[[u]].indices)
        assert not seen & set(ids[u][real[u]])
        assert real[u].sum() == len(set(allowed) - seen)
    ids_all, _ = hybrid.recommend(np.arange(40), k=50, exclude_seen=False)
    assert (ids_all >= 0).all()
    one_ids, _ = hybrid.recommend(7, k=5)
    assert one_ids.shape == (5,)
    np.testing.assert_array_equal(one_ids, hybrid.recommend([7], k=5)[0][0])


def test_fit_fits_only_unfitted_members(clicks, als):
    before = als.item_factors_
    fresh = semrec.ALS(factors=3, iterations=2, random_state=1, show_progress=False)
    hybrid = semrec.Hybrid([(als, 1.0), (fresh, 1.0)])
    with pytest.raises(semrec.NotFittedError, match="not fitted"):  # the contract's error
        hybrid.recommend(0)
    assert not hasattr(hybrid, "n_users_")  # an AttributeError too, as for any model
    assert hybrid.fit(clicks) is hybrid
    assert als.item_factors_ is before
    assert fresh.item_factors_.shape == (50, 3)
    hybrid.fit(clicks, refit=True)
    assert als.item_factors_ is not before


def test_fit_fits_a_member_listed_twice_once(clicks):
    """A member listed under two weights is one model: Hybrid.fit fits it once."""
    fits = []
    model = semrec.MostPopular()
    original = model.fit

    def counted(interactions):
        fits.append(interactions.shape)
        return original(interactions)

    model.fit = counted
    semrec.Hybrid([(model, 0.5), (model, 0.5)]).fit(clicks)
    assert fits == [clicks.shape]
    semrec.Hybrid([(model, 0.5), (model, 0.5)]).fit(clicks, refit=True)
    assert fits == [clicks.shape] * 2


class CountedALS(semrec.ALS):
    """An ALS that records its fits."""

    fits: list[int]

    def fit(self, interactions, **kwargs):
        self.fits.append(interactions.shape[0])
        return super().fit(interactions, **kwargs)


def counted_als(seed=None) -> CountedALS:
    model = CountedALS(factors=3, iterations=2, random_state=seed, show_progress=False)
    model.fits = []
    return model


@pytest.mark.parametrize("als_first", [True, False])
def test_fit_fits_an_als_shared_with_a_coldstart_member_once(clicks, als_first):
    """A ColdStartALS's ALS that is also a member is fitted once (random_state=None: a second
    fit would change its factors under the map), and kept as it is when already fitted."""
    emb = np.random.default_rng(0).standard_normal((clicks.shape[1], 6)).astype(np.float32)
    inner = counted_als()
    members = [(semrec.ColdStartALS(inner, emb), 0.5), (inner, 0.5)]
    hybrid = semrec.Hybrid(members if als_first else members[::-1]).fit(clicks)
    assert inner.fits == [clicks.shape[0]]
    cold = members[0][0]
    # The map was fitted on the ALS's final factors: the warm rows are the ALS's own.
    np.testing.assert_array_equal(cold.item_factors_, inner.item_factors_)
    ids, _ = hybrid.recommend(0, k=5)
    assert ids.shape == (5,)
    hybrid.fit(clicks)  # everything fitted: nothing is refitted
    assert inner.fits == [clicks.shape[0]]
    hybrid.fit(clicks, refit=True)
    assert inner.fits == [clicks.shape[0]] * 2
    np.testing.assert_array_equal(cold.item_factors_, inner.item_factors_)
    fitted = counted_als(seed=0)
    fitted.fit(clicks)
    fresh_cold = semrec.ColdStartALS(fitted, emb)
    semrec.Hybrid([(fresh_cold, 0.5), (fitted, 0.5)]).fit(clicks)
    assert fitted.fits == [clicks.shape[0]]  # the fitted ALS member is used as it is
    assert fresh_cold.n_items_ == clicks.shape[1]


def test_fit_checks_a_coldstart_members_shape_before_fitting(clicks):
    """A ColdStartALS covers every row of its item embeddings: a blend with a member over that
    many items fits, and one over fewer is refused before any member is fitted."""
    n_users, n_items = clicks.shape
    emb = np.random.default_rng(0).standard_normal((n_items + 2, 6)).astype(np.float32)
    wide = sp.csr_array((clicks.data, clicks.indices, clicks.indptr), shape=(n_users, n_items + 2))
    content = semrec.ContentRecommender(emb, show_progress=False).fit(wide)
    cold = semrec.ColdStartALS(counted_als(0), emb)
    hybrid = semrec.Hybrid([(cold, 1.0), (content, 1.0)]).fit(clicks)
    assert hybrid.n_items_ == n_items + 2
    inner = counted_als(0)
    narrow = semrec.ItemKNN().fit(clicks)
    with pytest.raises(ValueError, match="disagree"):
        semrec.Hybrid([(semrec.ColdStartALS(inner, emb), 1.0), (narrow, 1.0)]).fit(clicks)
    assert inner.fits == []


def test_fit_refuses_a_dataset_with_the_recipe(clicks):
    data = synthetic(30, 40, 300, random_state=0)
    with pytest.raises(TypeError, match=r"pass dataset\.interactions.*member\.fit\(dataset\)"):
        semrec.Hybrid([(semrec.MostPopular(), 1.0)]).fit(data)


def test_a_model_class_as_member_is_refused():
    with pytest.raises(TypeError, match=r"models\[0\] is the class ALS, not a model"):
        semrec.Hybrid([(semrec.ALS, 1.0)])


def test_tune_refuses_members_with_fewer_users_clearly():
    data = synthetic(120, 80, 2_000, random_state=0)
    train, validation = last_fraction(data)
    fewer = train.interactions[:100]
    members = [semrec.MostPopular().fit(fewer), semrec.ItemKNN().fit(fewer)]
    with pytest.raises(ValueError, match="model knows 100 users"):
        semrec.Hybrid.tune(members, train, validation, grid=2, k=5, show_progress=False)


@pytest.mark.parametrize("baseline", [semrec.MostPopular(), semrec.Random(random_state=3)])
def test_a_blend_with_a_baseline_follows_new_users(clicks, baseline):
    """The class docstring's blend: update and fold_in reach every member, baselines too, and
    the Hybrid serves the new users (and the old ones) at once."""
    als = semrec.ALS(factors=4, iterations=3, random_state=0, show_progress=False)
    hybrid = semrec.Hybrid([(als, 0.7), (baseline, 0.3)]).fit(clicks)
    before = baseline.score(0, np.arange(clicks.shape[1]))
    n_users = clicks.shape[0]
    for model in (als, baseline):
        assert model.update(n_users, 3).ndim == 1
        model.fold_in(clicks[[0, 1]], users=[n_users + 1, 0])
    assert hybrid.n_users_ == n_users + 2
    ids, _ = hybrid.recommend(n_users, k=clicks.shape[1])
    assert 3 not in ids  # seen through the update
    assert set(ids[ids >= 0]) == set(range(clicks.shape[1])) - {3}
    seen = set(clicks[[0]].indices)  # user 0's history, folded in as the new user's
    ids, _ = hybrid.recommend(n_users + 1, k=5)
    assert not seen & set(ids)
    # The baseline's scores are those of fit: the counts wait for the next fit.
    np.testing.assert_array_equal(baseline.score(0, np.arange(clicks.shape[1])), before)
    assert baseline.interactions_[[n_users]].indices.tolist() == [3]


def test_shape_mismatch_raises(clicks, als):
    other = Fixed(np.zeros((40, 49)), clicks[:, :49])
    with pytest.raises(ValueError, match="disagree"):
        semrec.Hybrid([(als, 1.0), (other, 1.0)]).recommend(0)


def test_tune_picks_the_planted_model():
    data = synthetic(150, 200, 5_000, random_state=0)
    train, validation = last_fraction(data)
    # The oracle scores exactly the validation items high; the other model is noise.
    oracle = Fixed(validation.interactions.toarray(), train.interactions)
    noise = Fixed(np.random.default_rng(0).random((150, 200)), train.interactions)
    best = semrec.Hybrid.tune([noise, oracle], train, validation, grid=4, k=10, show_progress=False)
    table = best.tuning_
    assert list(table.columns) == ["w0", "w1", "ndcg@10"]
    assert table[["w0", "w1"]].values.tolist() == [
        [1, 0],
        [0.75, 0.25],
        [0.5, 0.5],
        [0.25, 0.75],
        [0, 1],
    ]
    scores = table["ndcg@10"].to_numpy()
    assert scores[-1] == pytest.approx(1.0)  # the oracle alone ranks validation items first
    assert scores[0] == scores.min() < 0.2  # noise alone
    first_best = int(np.flatnonzero(scores == scores.max())[0])
    assert [w for _, w in best.models] == table.iloc[first_best][["w0", "w1"]].tolist()
    refit = semrec.evaluate(best, train, validation, k=10, metrics=["ndcg"])
    assert scores.max() == pytest.approx(float(refit.loc[10, "ndcg"]))
    two = semrec.Hybrid.tune(
        [noise, oracle], train, validation, grid=[(1, 0), (0, 1)], show_progress=False
    )
    assert [w for _, w in two.models] == [0.0, 1.0]
    chosen = semrec.Hybrid.tune(
        [noise, oracle], train, validation, grid=[(1, 0), (0.5, 0.5)], show_progress=False
    )
    assert [w for _, w in chosen.models] == [0.5, 0.5]


def test_repr_and_persistence(clicks, als, tmp_path):
    hybrid = semrec.Hybrid([(als, 1.0)], normalize="rank")
    assert repr(hybrid).startswith("Hybrid(models=[(ALS(") and "normalize='rank'" in repr(hybrid)
    # Members are saved in the hybrid's file (the round trip: the contract's mixin); a member
    # that is not a semrec model cannot be.
    with pytest.raises(TypeError, match="not a semrec model"):
        semrec.Hybrid([(Fixed(np.zeros((40, 50)), clicks), 1.0)]).save(tmp_path / "h.npz")
    assert not (tmp_path / "h.npz").exists()


@pytest.mark.parametrize(
    ("models", "kwargs", "error", "match"),
    [
        ([], {}, ValueError, "empty"),
        ("als", {}, TypeError, "list of"),
        ([("x", 1.0, 2)], {}, TypeError, "pair"),
        ([(None, 1.0)], {}, TypeError, "neither score nor recommend"),
        ([("als", -1.0)], {}, ValueError, r"in \[0, 1e\+30\]"),
        ([("als", "1")], {}, TypeError, "number"),
        ([("als", 0.0)], {}, ValueError, "every weight is 0"),
        ([("als", 1.0)], {"normalize": "l2"}, ValueError, "normalize"),
    ],
)
def test_bad_arguments_raise(als, models, kwargs, error, match):
    if not isinstance(models, str):
        models = [tuple(als if m == "als" else m for m in pair) for pair in models]
    with pytest.raises(error, match=match):
        semrec.Hybrid(models, **kwargs)


def test_nan_member_scores_raise(clicks):
    bad = Fixed(np.full((40, 50), np.nan), clicks)
    with pytest.raises(ValueError, match="NaN"):
        semrec.Hybrid([(bad, 1.0)]).recommend(0)


def test_tune_bad_arguments(clicks):
    data = synthetic(50, 80, 1_000, random_state=0)
    train, validation = last_fraction(data)
    pop = semrec.MostPopular().fit(train.interactions)
    with pytest.raises(ValueError, match="metric"):
        semrec.Hybrid.tune([pop], train, validation, metric="auc")
    with pytest.raises(ValueError, match="needs 1 weights"):
        semrec.Hybrid.tune([pop], train, validation, grid=[(1, 0)])
    with pytest.raises(TypeError, match="non-empty list"):
        semrec.Hybrid.tune([], train, validation)


class Linear(Fixed):
    """Additive test model: score(u, i) = sum_j r_uj * sim[j, i], explained term by term."""

    def __init__(self, sim: np.ndarray, interactions: sp.csr_array) -> None:
        super().__init__(interactions.toarray() @ sim, interactions)
        self.sim = sim

    def explain(self, user, item, k=5):
        from semrec.explain import explanation

        row = self.interactions_[[user]]
        parts = row.data * self.sim[row.indices, item]
        score = float(self.table[user, item])
        return explanation(row.indices, parts, k, user=user, item=item, score=score)


@pytest.mark.parametrize("how", ["zscore", "minmax"])
def test_explain_scales_member_contributions_exactly(rng, clicks, how):
    a = Linear(rng.random((50, 50)), clicks)
    b = Linear(rng.standard_normal((50, 50)), clicks)
    pop = semrec.MostPopular().fit(clicks)
    hybrid = semrec.Hybrid([(a, 0.6), (b, 0.3), (pop, 0.1)], normalize=how)
    user, item = 4, 17
    why = hybrid.explain(user, item, k=100)
    history = clicks[[user]]
    expected = np.zeros(50)
    for model, weight in ((a, 0.6), (b, 0.3)):
        row = model.table[user].astype(np.float64)
        scale = row.std() if how == "zscore" else np.ptp(row)
        terms = history.data * model.sim[history.indices, item]
        expected[history.indices] += weight / scale * terms
    got = np.zeros(50)
    got[why["item"].to_numpy()] = why["contribution"].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-9)
    assert why.attrs["score"] == pytest.approx(float(hybrid.score(user, [item])[0]), rel=1e-6)
    assert why.attrs["explained"] + why.attrs["rest"] == pytest.approx(why.attrs["score"])
    parts = {m["model"]: m for m in why.attrs["members"]}
    assert parts["MostPopular"]["explained"] == 0.0  # no history terms: all in rest
    assert sum(m["part"] for m in why.attrs["members"]) == pytest.approx(why.attrs["score"])


class Linear64(Linear):
    """:class:`Linear` in float64 (a custom member may score past float32's range)."""

    def __init__(self, sim: np.ndarray, interactions: sp.csr_array) -> None:
        Fixed.__init__(self, np.zeros((interactions.shape[0], sim.shape[1])), interactions)
        self.sim = sim
        self.table = interactions.toarray() @ sim


@pytest.mark.parametrize("how", ["zscore", "minmax"])
def test_explain_of_huge_scores_equals_that_of_the_same_scores_scaled_down(rng, clicks, how):
    # A member's scores times 2^520 (past 1e156: their spread overflows float64) normalise
    # to the same blend, and explain splits them the same way.
    sim = rng.random((50, 50))
    small = semrec.Hybrid([(Linear64(sim, clicks), 1.0)], normalize=how).explain(4, 17, k=100)
    huge = semrec.Hybrid([(Linear64(np.ldexp(sim, 520), clicks), 1.0)], normalize=how)
    why = huge.explain(4, 17, k=100)
    np.testing.assert_allclose(why["contribution"], small["contribution"], rtol=1e-12)
    assert why.attrs["explained"] == pytest.approx(small.attrs["explained"], rel=1e-12)
    assert why.attrs["score"] == pytest.approx(small.attrs["score"], rel=1e-12)


def test_explain_with_real_members_and_rank(clicks):
    knn = semrec.ItemKNN(neighbours=20, show_progress=False).fit(clicks)
    user_knn = semrec.UserKNN(neighbours=10, show_progress=False).fit(clicks)
    user, item = 2, 9
    alone = semrec.Hybrid([(knn, 1.0)], normalize="rank").explain(user, item, k=100)
    own = knn.explain(user, item, k=100)
    # rank is not linear: the member's normalised part is split in proportion to its terms
    assert alone.attrs["explained"] == pytest.approx(alone.attrs["score"])
    np.testing.assert_allclose(
        alone["contribution"].to_numpy(),
        own["contribution"].to_numpy() * alone.attrs["score"] / own["contribution"].sum(),
    )
    mixed = semrec.Hybrid([(knn, 0.5), (user_knn, 0.5)]).explain(user, item)
    parts = {m["model"]: m for m in mixed.attrs["members"]}
    assert parts["UserKNN"]["explained"] == 0.0  # its terms are neighbours, not items


def test_explain_rejects_an_excluded_item(clicks):
    table = np.ones((40, 50), dtype=np.float32)
    table[1, 3] = -np.inf
    hybrid = semrec.Hybrid([(Fixed(table, clicks), 1.0)])
    with pytest.raises(ValueError, match="-inf"):
        hybrid.explain(1, 3)
    with pytest.raises(IndexError):
        hybrid.explain(1, 50)


def test_seen_items_are_the_union_of_the_members(rng, clicks):
    """Members fitted on different data: the hybrid excludes what any weighted member has
    seen (issue 13), or exactly what fit was given."""
    more = clicks.copy().tolil()
    more[0, [1, 2, 3]] = 1.0  # the second member has seen three more items of user 0
    more = sp.csr_array(more.tocsr())
    a = Fixed(rng.standard_normal((40, 50)), clicks)
    b = Fixed(rng.standard_normal((40, 50)), more)
    hybrid = semrec.Hybrid([(a, 0.5), (b, 0.5)])
    union = (clicks.toarray() != 0) | (more.toarray() != 0)
    np.testing.assert_array_equal(hybrid.interactions_.toarray() != 0, union)
    ids, _ = hybrid.recommend(np.arange(40), k=50)
    for u in range(40):
        assert not set(np.flatnonzero(union[u])) & set(ids[u][ids[u] >= 0].tolist())
        assert (ids[u] >= 0).sum() == 50 - union[u].sum()
    # A weight-0 member is not part of the blend, nor of the seen items.
    only_a = semrec.Hybrid([(a, 1.0), (b, 0.0)])
    np.testing.assert_array_equal(only_a.interactions_.toarray() != 0, clicks.toarray() != 0)
    # fit(interactions) adds those to the members' seen items (here: the same union).
    fitted = semrec.Hybrid([(a, 0.5), (b, 0.5)]).fit(clicks)
    np.testing.assert_array_equal(fitted.interactions_.toarray() != 0, union)


def test_members_updated_after_fit_move_the_seen_items_and_the_users(clicks):
    # The guide's advice: update or fold_in each member, and the blend follows at once.
    emb = np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32)
    textcf = semrec.TextCF(emb, hidden=16, factors=4, epochs=2, random_state=0,
                           show_progress=False)  # fmt: skip
    als = semrec.ALS(factors=4, iterations=3, random_state=0, show_progress=False)
    hybrid = semrec.Hybrid([(textcf, 0.7), (als, 0.3)]).fit(clicks)
    top = int(hybrid.recommend(0, k=1)[0][0])
    for member, _ in hybrid.models:
        member.update(0, top)
    assert top not in hybrid.recommend(0, k=50)[0]  # seen now: excluded
    assert hybrid.interactions_[0, top] == 1
    for member, _ in hybrid.models:  # a new user, added to every member alike
        member.update(40, 3)
    ids, _ = hybrid.recommend(40, k=5)
    assert hybrid.n_users_ == 41 and 3 not in ids
    np.testing.assert_allclose(  # the blend of the members' own scores for the new user
        hybrid.score(40, np.arange(50)),
        0.7 * normalize_rows(textcf.score(40, np.arange(50))[None], "zscore")[0]
        + 0.3 * normalize_rows(als.score(40, np.arange(50))[None], "zscore")[0],
        rtol=1e-5, atol=1e-5,
    )  # fmt: skip
    textcf.add_items(emb[:1])  # one member only: the others do not know the item
    with pytest.raises(ValueError, match="give every member the same fold_in, update and"):
        hybrid.recommend(0)


def test_tune_equals_evaluate_of_each_hybrid_and_returns_a_usable_one(rng):
    """The cached search gives exactly the table of evaluate(Hybrid(models, w)) per weight
    vector, with real members whose seen sets differ; the result recommends at once."""
    data = synthetic(120, 150, 4_000, random_state=2)
    train, validation = last_fraction(data)
    x = train.interactions
    als = semrec.ALS(factors=8, iterations=4, random_state=0, show_progress=False).fit(x)
    knn = semrec.UserKNN(15, show_progress=False).fit(x)
    extra = x.copy()
    extra.data[::7] = 0.0  # zero weights: still seen
    pop = semrec.MostPopular().fit(extra)
    for how in ("zscore", "rank"):
        members = [als, knn, pop]
        best = semrec.Hybrid.tune(
            members, train, validation, grid=3, k=10, normalize=how, show_progress=False
        )
        for _, row in best.tuning_.iterrows():
            weights = [row["w0"], row["w1"], row["w2"]]
            hybrid = semrec.Hybrid(list(zip(members, weights, strict=True)), normalize=how)
            table = semrec.evaluate(hybrid, train, validation, k=10, metrics=["ndcg"])
            assert float(table.loc[10, "ndcg"]) == row["ndcg@10"]
    ids, _ = best.recommend(np.arange(120), k=5)
    assert ids.shape == (120, 5)
    assert not any(set(ids[u]) & set(x[[u]].indices) for u in range(120))


@pytest.fixture(scope="module")
def small_split():
    data = synthetic(60, 80, 1_200, random_state=0)
    return last_fraction(data)


@pytest.mark.parametrize(
    ("grid", "error", "match"),
    [
        ([(1, 0), (-3, 1)], ValueError, r"grid\[1\]\[0\] \(row \(-3, 1\)\) must be a finite"),
        ([(float("nan"), 1)], ValueError, r"grid\[0\]\[0\] \(row \(nan, 1\)\) must be a finite"),
        ([(1, 0), (1, -1)], ValueError, r"grid\[1\]\[1\] .* in \[0, 1e\+30\]"),
        ([(1, np.inf)], ValueError, r"grid\[0\]\[1\] .* finite"),
        ([(0, 0), (1, 0)], ValueError, r"grid\[0\] is all 0 \(\(0, 0\)\)"),
        ([("a", "b")], TypeError, r"grid\[0\]\[0\] .* must be a number, got str"),
        ([(True, 1)], TypeError, r"grid\[0\]\[0\] .* must be a number, got bool"),
        ([(1, 0), 1], TypeError, r"grid\[1\] must be a weight vector"),
        ([(1, 0), "10"], TypeError, r"grid\[1\] must be a weight vector"),
        ([(1, 0, 0)], ValueError, r"needs 2 weights .* grid\[0\] is \(1, 0, 0\)"),
        ("ab", TypeError, "grid must be an int"),
        ([], ValueError, "grid is empty"),
    ],
)
def test_tune_checks_every_grid_row_before_evaluating(small_split, grid, error, match):
    """Explicit weight vectors are held to Hybrid's weight rules, all before any scoring."""
    train, validation = small_split
    a = Fixed(np.zeros((60, 80)), train.interactions)
    b = Fixed(np.ones((60, 80)), train.interactions)
    with pytest.raises(error, match=match):
        semrec.Hybrid.tune([a, b], train, validation, grid=grid, show_progress=False)
    assert a.calls == b.calls == 0
    # The same rows as NumPy arrays are accepted when valid (and scored).
    best = semrec.Hybrid.tune(
        [a, b], train, validation, grid=np.array([[1, 0], [0.5, 0.5]]), show_progress=False
    )
    assert best.tuning_[["w0", "w1"]].values.tolist() == [[1, 0], [0.5, 0.5]]


@pytest.mark.parametrize("extra", [-30, 25])
def test_tune_refuses_members_with_another_item_count(small_split, extra):
    """tune gives the ValueError of evaluate(Hybrid(...)): the members know another item
    count than the split (fewer: items never ranked; more: ids outside the split)."""
    train, validation = small_split
    x = train.interactions
    if extra < 0:
        other = sp.csr_array(x[:, :extra])
    else:
        more = sp.random_array((60, extra), density=0.3, format="csr", rng=0, dtype=np.float32)
        other = sp.csr_array(sp.hstack([x, more]).tocsr())
    members = [semrec.MostPopular().fit(other), Fixed(np.zeros(other.shape), other)]
    with pytest.raises(ValueError) as expected:
        semrec.evaluate(semrec.Hybrid([(m, 1.0) for m in members]), train, validation)
    assert "items but the split has 80" in str(expected.value)
    for search in ("grid", "coordinate"):
        with pytest.raises(ValueError) as got:
            semrec.Hybrid.tune(members, train, validation, grid=2, search=search)
        assert str(got.value) == str(expected.value)
    assert members[1].calls == 0


def test_a_refused_fit_changes_nothing(clicks, als):
    """The shape check runs before anything is stored or fitted."""
    hybrid = semrec.Hybrid([(als, 1.0), (semrec.MostPopular().fit(clicks), 1.0)]).fit(clicks)
    before_ids, before_seen = hybrid.recommend(np.arange(40), k=5)[0], hybrid.interactions_
    bigger = sp.csr_array(sp.vstack([clicks, clicks[:5]]).tocsr())
    with pytest.raises(ValueError, match="fewer than the interactions given"):
        hybrid.fit(bigger)
    np.testing.assert_array_equal(hybrid.recommend(np.arange(40), k=5)[0], before_ids)
    assert (hybrid.interactions_ != before_seen).nnz == 0
    # An unfitted member is not fitted by a fit that is refused.
    fresh = semrec.ALS(factors=3, iterations=2, random_state=1, show_progress=False)
    with pytest.raises(ValueError, match="disagree"):
        semrec.Hybrid([(als, 1.0), (fresh, 1.0)]).fit(bigger)
    assert not hasattr(fresh, "item_factors_")


def answers(model) -> list[np.ndarray]:
    """Every user's top 8 (ids, scores) and scores of every item: what a model answers."""
    users = np.arange(model.n_users_)
    return [*model.recommend(users, k=8), model.score(users, np.arange(model.n_items_))]


def assert_answers(models, before) -> None:
    for model, expected in zip(models, before, strict=True):
        for got, want in zip(answers(model), expected, strict=True):
            np.testing.assert_array_equal(got, want)


def test_a_refusal_after_a_shared_als_was_refitted_changes_nothing(clicks):
    """Hybrid.fit is all or nothing: an ALS that is a member and a ColdStartALS member's ALS
    is refitted first; when the ColdStartALS's own fit then refuses, the ALS is put back, and
    every model answers as before the fit (the ColdStartALS's map still fits its ALS)."""
    emb = np.random.default_rng(0).standard_normal((clicks.shape[1], 6)).astype(np.float32)
    inner = counted_als(seed=0)
    cold = semrec.ColdStartALS(inner, emb)
    hybrid = semrec.Hybrid([(inner, 0.5), (cold, 0.5)]).fit(clicks)
    models = (inner, cold, hybrid)
    before = [answers(model) for model in models]
    cold.min_interactions = 10_000
    with pytest.raises(ValueError, match="min_interactions"):
        hybrid.fit(clicks[:20], refit=True)
    assert inner.fits == [40, 20]  # it was refitted, then put back
    cold.min_interactions = 1
    assert_answers(models, before)


def test_a_refusal_of_the_last_member_leaves_the_others_as_they_were(clicks):
    """A ColdStartALS (refitting its own ALS) and an ItemKNN are refitted, then the third
    member refuses (half_life without timestamps): all three and the blend answer as before.
    A member of a nested Hybrid, fitted by the nested Hybrid's fit, is put back too."""
    n_users, n_items = clicks.shape
    emb = np.random.default_rng(0).standard_normal((n_items, 6)).astype(np.float32)
    inner = counted_als(seed=0)
    cold = semrec.ColdStartALS(inner, emb).fit(clicks)
    knn = semrec.ItemKNN(neighbours=10, show_progress=False).fit(clicks)
    times = np.arange(clicks.nnz, dtype=np.float64)
    content = semrec.ContentRecommender(emb, half_life=5.0, show_progress=False)
    content.fit(clicks, timestamps=times)
    hybrid = semrec.Hybrid([(cold, 1.0), (knn, 1.0), (content, 1.0)]).fit(clicks)
    models = (cold, inner, knn, content, hybrid)
    before = [answers(model) for model in models]
    other = sp.random_array((n_users, n_items), density=0.2, format="csr", rng=9, dtype=np.float32)
    with pytest.raises(ValueError, match="half_life needs timestamps"):
        hybrid.fit(other, refit=True)
    assert inner.fits == [n_users, n_users]  # refitted with the ColdStartALS, then put back
    assert_answers(models, before)
    fresh = semrec.ItemKNN(neighbours=10, show_progress=False)
    nested = semrec.Hybrid([(fresh, 1.0)])
    with pytest.raises(ValueError, match="half_life needs timestamps"):
        semrec.Hybrid([(nested, 1.0), (content, 1.0)]).fit(other, refit=True)
    assert not hasattr(fresh, "similarity_")
    assert_answers(models, before)


def old_simplex(steps: int, n: int) -> list[tuple[float, ...]]:
    """The simplex as Hybrid.tune built it before (all (steps + 1) ** n products, filtered)."""
    points = [
        tuple(c / steps for c in combo)
        for combo in itertools.product(range(steps + 1), repeat=n)
        if sum(combo) == steps
    ]
    return sorted(points, reverse=True)


def brute_simplex(steps: int, n: int) -> list[tuple[int, ...]]:
    """Every integer vector of n entries in [0, steps] summing to steps, by counting up."""
    found, vector = [], [0] * n
    while True:
        if sum(vector) == steps:
            found.append(tuple(vector))
        j = 0
        while j < n and vector[j] == steps:
            vector[j] = 0
            j += 1
        if j == n:
            return found
        vector[j] += 1


def test_simplex_grid_is_the_old_list_without_the_products():
    from semrec._hybrid_tuning import simplex

    for n in range(1, 6):
        for steps in range(1, 7):
            got = simplex(steps, n)
            assert got == old_simplex(steps, n)  # same vectors, same order, same floats
            brute = brute_simplex(steps, n)
            assert len(got) == len(brute) == math.comb(steps + n - 1, n - 1)
            assert sorted(got) == sorted(tuple(c / steps for c in v) for v in brute)
            assert all(a > b for a, b in itertools.pairwise(got))  # strictly decreasing
    # 10 members at grid=10: 92378 vectors; the old scan of 11 ** 10 products took ~1 h.
    done = {}
    worker = threading.Thread(target=lambda: done.update(out=simplex(10, 10)), daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert "out" in done, "simplex(10, 10) did not finish within 60 s"
    out = done["out"]
    assert len(out) == 92378 == len(set(out))
    assert out[0] == (1.0,) + (0.0,) * 9 and out[-1] == (0.0,) * 9 + (1.0,)
    assert all(abs(sum(w) - 1) < 1e-9 for w in out[::997])


def test_save_names_an_unfitted_weight_0_member(clicks, tmp_path):
    pop = semrec.MostPopular().fit(clicks)
    fresh = semrec.ALS(4, iterations=2, random_state=0, show_progress=False)
    hybrid = semrec.Hybrid([(pop, 1.0), (fresh, 0.0)])
    assert hybrid.recommend(0, k=3)[0].shape == (3,)  # the member is never called
    path = tmp_path / "h.npz"
    with pytest.raises(semrec.NotFittedError, match=r"models\[1\] \(ALS, weight 0\) is not"):
        hybrid.save(path)
    with pytest.raises(semrec.NotFittedError, match="fit it, or drop it from models"):
        hybrid.save(path)
    assert not path.exists()
    fresh.fit(clicks)  # the fix the message gives: the weight-0 member is saved too
    hybrid.save(path)
    loaded = semrec.Hybrid.load(path)
    assert [w for _, w in loaded.models] == [1.0, 0.0]
    np.testing.assert_array_equal(loaded.recommend(np.arange(40), k=5)[0],
                                  hybrid.recommend(np.arange(40), k=5)[0])  # fmt: skip


def flat(text: str | None) -> str:
    return " ".join((text or "").split())


def test_docs_match_constant_rows_seen_items_and_fold_in(clicks):
    # A constant row: all 0 with zscore/minmax, all 0.5 with rank, as the docstring says.
    row = np.full((1, 4), 2.0)
    assert normalize_rows(row, "zscore").tolist() == normalize_rows(row, "minmax").tolist()
    assert normalize_rows(row, "zscore").tolist() == [[0.0] * 4]
    assert normalize_rows(row, "rank").tolist() == [[0.5] * 4]
    doc = flat(semrec.Hybrid.__doc__)
    assert 'A constant row becomes all 0, or all 0.5 with ``"rank"``' in doc
    # fit adds its interactions to the members' seen items (a union, not instead).
    pop = semrec.MostPopular().fit(clicks)
    first = sp.csr_array((np.ones(1, np.float32), [0], [0] + [1] * 40), shape=(40, 50))
    hybrid = semrec.Hybrid([(pop, 1.0)]).fit(first)
    assert set(hybrid.interactions_[[0]].indices) == {0} | set(clicks[[0]].indices)
    assert "instead" not in doc and "adds ``interactions`` to that union" in doc
    assert "union with the weighted members' own" in flat(semrec.Hybrid.fit.__doc__)
    # fold_in's docstring (shown by every model) no longer says a Hybrid returns scores.
    with pytest.raises(NotImplementedError, match="each member"):
        hybrid.fold_in(first[[0]])
    fold_doc = flat(semrec.Hybrid.fold_in.__doc__)
    assert "a Hybrid has no fold_in of its own" in fold_doc
    assert "neighbourhood models, Hybrid" not in fold_doc


def tune_split_and_members():
    """A split, and members whose seen items miss some of train's (so evaluate asks some users
    again, for longer lists, when the ALS has weight 0)."""
    data = synthetic(60, 90, 1_500, random_state=4)
    train, validation = last_fraction(data)
    x = train.interactions
    thin = x.copy()
    thin.data[::4] = 0.0
    thin.eliminate_zeros()  # no longer seen by the Fixed members
    rng = np.random.default_rng(5)
    als = semrec.ALS(factors=6, iterations=3, random_state=0, show_progress=False).fit(x)
    members = [als, Fixed(rng.random((60, 90)), thin), Fixed(rng.random((60, 90)), thin)]
    return train, validation, members


def test_tune_results_do_not_depend_on_the_batches(monkeypatch):
    """Users scored in batches of 7, blended 3 at a time, vectors in groups of 3, on 1 or 3
    threads: the same tuning_ as one batch, each row evaluate(Hybrid(models, w)) exactly."""
    import semrec._hybrid_tuning as tuning

    train, validation, members = tune_split_and_members()
    runs = [
        dict(grid=3, normalize="zscore", items=np.arange(0, 90, 2)),
        dict(grid=4, search="coordinate", normalize="rank"),
    ]
    common = dict(k=5, relevance_threshold=None, show_progress=False)
    whole = [semrec.Hybrid.tune(members, train, validation, **common, **kw).tuning_ for kw in runs]
    n_users = int((np.diff(validation.interactions.indptr) > 0).sum())
    monkeypatch.setattr(tuning, "BATCH_BYTES", 7 * 8 * 90 * len(members), raising=False)
    monkeypatch.setattr(tuning, "BLEND_ROWS", 3, raising=False)
    monkeypatch.setattr(tuning, "VALUES_BYTES", 3 * 8 * n_users, raising=False)
    for kw, expected in zip(runs, whole, strict=True):
        for threads in (1, 3):  # the weight vectors run on a pool of that many threads
            semrec.set_num_threads(threads)
            calls = members[1].calls
            try:
                table = semrec.Hybrid.tune(members, train, validation, **common, **kw).tuning_
            finally:
                semrec.set_num_threads(None)
            assert members[1].calls - calls >= 2 * math.ceil(n_users / 7)  # several batches
            assert table.equals(expected)
        for _, row in table.iterrows():
            weights = row[["w0", "w1", "w2"]].tolist()
            hybrid = semrec.Hybrid(list(zip(members, weights, strict=True)), kw["normalize"])
            reference = semrec.evaluate(
                hybrid,
                train,
                validation,
                k=5,
                metrics=["ndcg"],
                relevance_threshold=None,
                items=kw.get("items"),
            )
            assert row["ndcg@5"] == float(reference.loc[5, "ndcg"])


def test_tune_holds_one_batch_of_member_rows_at_a_time(monkeypatch):
    """The normalised member rows alive at any time are those of one batch (8 users here),
    not every validation user's: memory does not grow with the validation split."""
    import weakref

    import semrec._hybrid_tuning as tuning

    train, validation, members = tune_split_and_members()
    n_users = int((np.diff(validation.interactions.indptr) > 0).sum())
    assert n_users > 40
    monkeypatch.setattr(tuning, "BATCH_BYTES", 8 * 8 * 90 * len(members), raising=False)
    alive: list[weakref.ref] = []
    rows = {"scored": 0, "most alive": 0}
    real = tuning.normalize_rows

    def tracked(scores, how, *, name="scores"):
        out = real(scores, how, name=name)
        alive.append(weakref.ref(out))
        rows["scored"] += out.shape[0]
        held = sum(r().shape[0] for r in alive if r() is not None)
        rows["most alive"] = max(rows["most alive"], held)
        return out

    monkeypatch.setattr(tuning, "normalize_rows", tracked)
    for search in ("grid", "coordinate"):
        rows.update({"scored": 0, "most alive": 0})
        semrec.Hybrid.tune(
            members,
            train,
            validation,
            grid=3,
            search=search,
            k=5,
            relevance_threshold=None,
            show_progress=False,
        )
        assert rows["scored"] >= len(members) * n_users  # every user scored, in batches
        assert rows["most alive"] <= len(members) * 8


def test_models_given_positionally_get_the_list_form_in_the_message(clicks, als):
    with pytest.raises(TypeError, match=r"Hybrid\(\[\(als, 0\.7\), \(popular, 0\.3\)\]\)"):
        semrec.Hybrid(als, semrec.MostPopular())
    with pytest.raises(TypeError, match="list of \\(model, weight\\) pairs"):
        semrec.Hybrid(als, 0.5)


def test_clicks_on_members_are_read_per_user_without_a_merge(clicks, monkeypatch):
    """After clicks on an ALS and a ContentRecommender member, the Hybrid's recommend, score
    and explain equal the NumPy blend of the members' scores, excluding their histories; and
    they read only the clicked users' rows: neither member's histories are merged (each
    merge is O(all interactions): seconds per call at 10M before, for a Content member)."""
    from semrec._histories import Histories

    emb = np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32)
    als = semrec.ALS(factors=4, iterations=3, random_state=0, show_progress=False).fit(clicks)
    content = semrec.ContentRecommender(emb, show_progress=False).fit(clicks)
    hybrid = semrec.Hybrid([(als, 0.6), (content, 0.4)])
    hybrid.recommend(0)  # (Content consolidates its seen matrix at its first read)
    merges: list[str] = []
    merge, consolidate = Histories.matrix, semrec.ContentRecommender._consolidate
    monkeypatch.setattr(Histories, "matrix", lambda h: merges.append("als") or merge(h))
    monkeypatch.setattr(semrec.ContentRecommender, "_consolidate",
                        lambda m: merges.append("content") or consolidate(m))  # fmt: skip
    seen = clicks.toarray() != 0
    seen = np.vstack([seen, np.zeros((1, 50), bool)])
    for user, item, weight in [(1, 9, 1.0), (40, 3, 1.0), (2, 7, 0.0)]:  # 40: a new user
        for member in (als, content):
            member.update(user, item, weight)
        seen[user, item] = True  # a weight of 0 is seen too
    answers = {u: (hybrid.recommend(u, k=50), hybrid.score(u, np.arange(50))) for u in (1, 2, 40)}
    why = hybrid.explain(1, 20, k=50)
    assert hybrid.n_users_ == 41 and merges == []
    monkeypatch.undo()

    def z(x):
        return (x - x.mean()) / x.std()

    for u, ((ids, scores), blend) in answers.items():
        expected = 0.6 * z(als.score(u, np.arange(50)).astype(float))
        expected += 0.4 * z(content.score(u, np.arange(50)).astype(float))
        np.testing.assert_allclose(blend, expected, rtol=1e-5, atol=1e-5)
        ref = np.lexsort((np.arange(50), -np.where(seen[u], -np.inf, expected)))
        np.testing.assert_array_equal(ids[ids >= 0], ref[: 50 - seen[u].sum()])
        np.testing.assert_allclose(scores[ids >= 0], expected[ids[ids >= 0]], atol=1e-5)
    np.testing.assert_array_equal(hybrid.interactions_.toarray() != 0, seen)
    assert sorted(why["item"]) == np.flatnonzero(seen[1]).tolist()  # both members' history
    np.testing.assert_allclose(why.attrs["score"], answers[1][1][20], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(why.attrs["explained"] + why.attrs["rest"], why.attrs["score"],
                               rtol=1e-6, atol=1e-9)  # fmt: skip


def test_the_matrix_given_to_fit_is_read_per_user(monkeypatch):
    """Hybrid.fit(R) with R's indptr int64 and indices int32 (as semrec keeps them): a click's
    recommend takes the user's rows of R in O(those rows), where ``R[users]`` made scipy
    cast both whole index arrays to one dtype on every call (12 ms at 10M interactions);
    and excludes R's items with the members', users added since included."""
    import tracemalloc

    n_users, n_items = 60_000, 40
    rng = np.random.default_rng(1)
    items = rng.integers(0, n_items, n_users * 8).astype(np.int32)
    indptr = np.arange(0, n_users * 8 + 1, 8, dtype=np.int64)
    given = sp.csr_array((np.ones(items.size, np.float32), items, indptr), (n_users, n_items))
    given.sum_duplicates()
    als = semrec.ALS(factors=2, iterations=1, random_state=0, show_progress=False).fit(given)
    hybrid = semrec.Hybrid([(als, 1.0)]).fit(given)
    # The ALS forgets users 0-499: their seen items are then those of R only.
    als.fold_in(sp.csr_array((500, n_items), dtype=np.float32), users=np.arange(500))
    als.update(n_users, 5)  # a new user, in the members only
    fitted = hybrid._interactions
    assert (fitted.indptr.dtype, fitted.indices.dtype) == (np.int64, np.int32)
    hybrid.recommend(3)
    tracemalloc.start()
    try:
        ids, _ = hybrid.recommend(3, k=n_items)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < fitted.indices.nbytes / 4  # a cast of the indices takes 2x their bytes
    assert set(ids[ids >= 0].tolist()) == set(range(n_items)) - set(given[[3]].indices)
    for u, history in [(3, given[[3]].indices), (n_users, [5]), (700, given[[700]].indices)]:
        ids, _ = hybrid.recommend(u, k=n_items)
        assert sorted(ids[ids >= 0].tolist()) == sorted(set(range(n_items)) - set(history))
    batch, _ = hybrid.recommend([3, n_users, 700], k=n_items)
    np.testing.assert_array_equal(batch[1], hybrid.recommend(n_users, k=n_items)[0])
    seen = np.vstack([given.toarray(), np.eye(1, n_items, 5)]) != 0
    np.testing.assert_array_equal(hybrid.interactions_[[3, 700, n_users]].toarray() != 0,
                                  seen[[3, 700, n_users]])  # fmt: skip


@pytest.mark.parametrize("leak", ["fitted_on_all", "updated_with_validation"])
def test_tune_refuses_members_that_have_seen_the_validation_set(leak):
    """Members fitted on train + validation, or updated with validation events, would exclude
    the validation items as seen and score 0 for every weight vector: tune raises the
    ValueError of evaluate(Hybrid(...)), counting the leaked relevant pairs as NumPy does,
    before any member scores."""
    data = synthetic(300, 200, 6_000, random_state=0, with_text=False)
    train, validation = last_fraction(data)
    if leak == "fitted_on_all":
        members = [
            semrec.ItemKNN(20, show_progress=False).fit(data.interactions),
            semrec.MostPopular().fit(data.interactions),
        ]
    else:
        members = [
            semrec.ItemKNN(20, show_progress=False).fit(train.interactions),
            semrec.MostPopular().fit(train.interactions),
        ]
        held = sp.coo_array(validation.interactions)
        first = held.row < 30  # the validation events of users 0-29, on one member each
        for u, i, w in zip(held.row[first], held.col[first], held.data[first], strict=True):
            members[int(u) % 2].update(int(u), int(i), float(w))
    # The reference count: relevant validation pairs (>= 4) seen by a member, not in train.
    relevant = validation.interactions.toarray() >= 4
    seen = np.zeros_like(relevant)
    for m in members:
        seen |= m.interactions_.toarray()[: relevant.shape[0]] != 0
    leaked = int((relevant & seen & (train.interactions.toarray() == 0)).sum())
    assert leaked > 0
    with pytest.raises(ValueError) as expected:
        semrec.evaluate(semrec.Hybrid([(m, 1.0) for m in members]), train, validation, k=10)
    assert f"already seen {leaked} relevant test interaction(s)" in str(expected.value)
    calls = Fixed(np.random.default_rng(0).random((300, 200)), train.interactions)
    for search in ("grid", "coordinate"):
        with pytest.raises(ValueError) as got:
            semrec.Hybrid.tune(
                [*members, calls], train, validation, grid=2, search=search, show_progress=False
            )
        assert str(got.value) == str(expected.value)
    assert calls.calls == 0
    # Members fitted on train alone are tuned, each vector as evaluate scores it.
    clean = [semrec.MostPopular().fit(train.interactions), calls]
    best = semrec.Hybrid.tune(clean, train, validation, grid=2, show_progress=False)
    for _, row in best.tuning_.iterrows():
        hybrid = semrec.Hybrid(list(zip(clean, row[["w0", "w1"]].tolist(), strict=True)))
        table = semrec.evaluate(hybrid, train, validation, k=10, metrics=["ndcg"])
        assert row["ndcg@10"] == float(table.loc[10, "ndcg"]) > 0
