"""Ridge map from text embeddings to ALS factors, and cold items made recommendable."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import scipy.sparse as sp

import semrec
from semrec.coldstart import ridge_map

N_TOPICS, USERS_PER_TOPIC, ITEMS_PER_TOPIC, COLD_PER_TOPIC, DIM = 3, 30, 20, 3, 16


def normal_equations(e, f, reg, intercept):
    if intercept:
        e = np.hstack([e, np.ones((e.shape[0], 1))])
    penalty = np.eye(e.shape[1]) * reg
    if intercept:
        penalty[-1, -1] = 0.0
    return np.linalg.solve(e.T @ e + penalty, e.T @ f)


@pytest.mark.parametrize("intercept", [True, False])
@pytest.mark.parametrize("reg", [0.0, 0.5, 10.0])
def test_ridge_map_solves_the_normal_equations(rng, intercept, reg):
    e = rng.standard_normal((80, 12))
    f = rng.standard_normal((80, 5))
    w, b = ridge_map(e.astype(np.float32), f, reg, fit_intercept=intercept)
    ref = normal_equations(e.astype(np.float32).astype(np.float64), f, reg, intercept)
    np.testing.assert_allclose(w, ref[:12], rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(b, ref[12] if intercept else np.zeros(5), rtol=1e-8, atol=1e-10)


def test_ridge_map_singular_without_regularization_raises(rng):
    e = rng.standard_normal((3, 10))  # fewer rows than dimensions
    with pytest.raises(ValueError, match="regularization > 0"):
        ridge_map(e, rng.standard_normal((3, 2)), 0.0)


def topic_catalogue(rng):
    """Users like items of one topic; item text embeddings cluster by topic; some items cold."""
    n_items = N_TOPICS * ITEMS_PER_TOPIC
    item_topic = np.repeat(np.arange(N_TOPICS), ITEMS_PER_TOPIC)
    user_topic = np.repeat(np.arange(N_TOPICS), USERS_PER_TOPIC)
    centres = np.eye(N_TOPICS, DIM)
    emb = centres[item_topic] + 0.15 * rng.standard_normal((n_items, DIM))
    emb = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)
    cold = np.concatenate(
        [np.arange(t * ITEMS_PER_TOPIC, t * ITEMS_PER_TOPIC + COLD_PER_TOPIC) for t in range(3)]
    )
    rows, cols = [], []
    for u, t in enumerate(user_topic):
        warm = np.setdiff1d(np.flatnonzero(item_topic == t), cold)
        picks = rng.choice(warm, size=8, replace=False)
        rows += [u] * picks.size
        cols += picks.tolist()
    clicks = sp.csr_array(
        (np.ones(len(rows), np.float32), (rows, cols)), shape=(len(user_topic), n_items)
    )
    return clicks, emb, item_topic, user_topic, cold


def fitted(rng, **kwargs):
    clicks, emb, item_topic, user_topic, cold = topic_catalogue(rng)
    als = semrec.ALS(factors=8, iterations=10, regularization=0.1, random_state=0)
    als.show_progress = False
    model = semrec.ColdStartALS(als, emb, **kwargs).fit(clicks)
    return model, clicks, emb, item_topic, user_topic, cold


def test_mapped_factors_equal_the_reference_map(rng):
    model, clicks, emb, _, _, cold = fitted(rng, regularization=0.3)
    warm = np.setdiff1d(np.arange(emb.shape[0]), cold)
    np.testing.assert_array_equal(np.sort(model.cold_items_), cold)
    ref = normal_equations(
        emb[warm].astype(np.float64), model.als.item_factors_[warm].astype(np.float64), 0.3, True
    )
    np.testing.assert_allclose(model.weights_, ref[:DIM], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(model.intercept_, ref[DIM], rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(model.item_factors_[warm], model.als.item_factors_[warm])
    expected = emb[cold].astype(np.float64) @ ref[:DIM] + ref[DIM]
    np.testing.assert_allclose(model.item_factors_[cold], expected, rtol=1e-4, atol=1e-5)
    users = np.arange(clicks.shape[0])
    np.testing.assert_allclose(
        model.score(users, np.arange(60)),
        model.als.user_factors_ @ model.item_factors_.T,
        rtol=1e-5,
        atol=1e-6,
    )


def test_cold_items_rank_for_the_right_users(rng):
    model, clicks, _, item_topic, user_topic, cold = fitted(rng)
    users = np.arange(clicks.shape[0])
    ids, _scores = model.recommend(users, k=1, items=cold)
    hits = item_topic[ids[:, 0]] == user_topic
    assert hits.mean() >= 0.9
    # Plain ALS knows nothing about the cold items: its choice among them is near chance.
    plain, _ = model.als.recommend(users, k=1, items=cold)
    assert (item_topic[plain[:, 0]] == user_topic).mean() < hits.mean()
    # Across the whole catalogue the mapped cold items are ranked, not buried.
    top, _ = model.recommend(users, k=20)
    assert np.isin(top, cold).any(axis=1).mean() > 0.5


def test_add_items_makes_text_only_items_recommendable(rng):
    model, clicks, _emb, _, user_topic, _cold = fitted(rng)
    new = np.eye(N_TOPICS, DIM, dtype=np.float32)  # one new item per topic, pure topic text
    ids = model.add_items(new)
    np.testing.assert_array_equal(ids, [60, 61, 62])
    assert model.n_items_ == 63 and model.item_embeddings_.shape == (63, DIM)
    assert model.interactions_.shape == (clicks.shape[0], 63)
    np.testing.assert_array_equal(model.cold_items_[-3:], ids)
    got, _ = model.recommend(np.arange(clicks.shape[0]), k=1, items=ids)
    assert (got[:, 0] - 60 == user_topic).mean() >= 0.9
    one = model.add_items(new[0])
    assert one.tolist() == [63]
    np.testing.assert_allclose(
        model.item_factors_[63], new[0] @ model.weights_ + model.intercept_, rtol=1e-6
    )


def test_extra_embedding_rows_are_text_only_items(rng):
    clicks, emb, _item_topic, user_topic, _ = topic_catalogue(rng)
    extra = np.vstack([emb, np.eye(N_TOPICS, DIM, dtype=np.float32)])
    als = semrec.ALS(factors=8, iterations=10, regularization=0.1, random_state=0)
    als.show_progress = False
    model = semrec.ColdStartALS(als, extra).fit(clicks)
    assert model.n_items_ == 63 and set(model.cold_items_) >= {60, 61, 62}
    got, _ = model.recommend(np.arange(90), k=1, items=[60, 61, 62])
    assert (got[:, 0] - 60 == user_topic).mean() >= 0.9


def test_blends_in_hybrid(rng):
    model, clicks, *_ = fitted(rng)
    hybrid = semrec.Hybrid([(model, 1.0), (semrec.MostPopular().fit(clicks), 0.0)])
    users = np.arange(clicks.shape[0])
    np.testing.assert_array_equal(hybrid.recommend(users, k=10)[0], model.recommend(users, k=10)[0])


def test_explicit_als_with_biases_maps_the_bias_too(rng):
    clicks, emb, *_ = topic_catalogue(rng)
    ratings = clicks.copy()
    ratings.data = rng.integers(1, 6, ratings.nnz).astype(np.float32)
    als = semrec.ALS(
        factors=4, feedback="explicit", biases=True, regularization=0.1, random_state=0
    )
    als.show_progress = False
    model = semrec.ColdStartALS(als, emb).fit(ratings)
    warm = np.flatnonzero(np.bincount(ratings.indices, minlength=60) > 0)
    cold = np.setdiff1d(np.arange(60), warm)
    targets = np.hstack([als.item_factors_, als.item_biases_[:, None]]).astype(np.float64)
    ref = normal_equations(emb[warm].astype(np.float64), targets[warm], 1.0, True)
    mapped_bias = emb[cold] @ ref[:DIM, -1] + ref[DIM, -1]
    np.testing.assert_allclose(model.item_biases_[cold], mapped_bias, rtol=1e-4, atol=1e-5)
    users = np.arange(5)
    expected = (
        als.user_factors_[users] @ model.item_factors_.T
        + als.user_biases_[users, None]
        + model.item_biases_[None, :]
        + als.global_mean_
    )
    np.testing.assert_allclose(model.score(users, np.arange(60)), expected, rtol=1e-4, atol=1e-4)
    ids, _scores = model.recommend(users, k=5, exclude_seen=False)
    ref_ids = np.argsort(-expected, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(ids, ref_ids)


def test_bad_inputs_raise(rng, tmp_path):
    clicks, emb, *_ = topic_catalogue(rng)
    als = semrec.ALS(factors=4, iterations=2, random_state=0, show_progress=False)
    with pytest.raises(ValueError, match="not fitted"):
        semrec.ColdStartALS(als, emb).fit()
    with pytest.raises(TypeError, match="float32"):
        semrec.ColdStartALS(als, emb.astype(np.float64)).fit(clicks)
    with pytest.raises(ValueError, match="one embedding per item"):
        semrec.ColdStartALS(als, emb[:10]).fit(clicks)
    with pytest.raises(ValueError, match="regularization"):
        semrec.ColdStartALS(als, emb, regularization=-1.0).fit(clicks)
    with pytest.raises(ValueError, match="no item has"):
        semrec.ColdStartALS(als, emb, min_interactions=10_000).fit(clicks)
    with pytest.raises(TypeError, match=r"semrec\.ALS"):
        semrec.ColdStartALS(semrec.MostPopular().fit(clicks), emb).fit()
    with pytest.raises(ValueError, match="not fitted"):
        semrec.ColdStartALS(als, emb).recommend(0)
    model = semrec.ColdStartALS(als, emb).fit(clicks)
    with pytest.raises(ValueError, match=f"items have dimension {DIM + 1}, the model's"):
        model.add_items(np.ones((2, DIM + 1), np.float32))
    with pytest.raises(ValueError, match="items is empty"):
        model.add_items([])
    with pytest.raises(IndexError, match="outside"):
        model.recommend(0, items=[60])
    # save/load: the contract's round trip (tests/test_model_contract.py), ALS inside the file
    assert repr(model).startswith("ColdStartALS(als=ALS(") and "regularization=1.0" in repr(model)


def test_min_interactions_maps_rare_items_too(rng):
    clicks, emb, *_ = topic_catalogue(rng)
    counts = np.bincount(clicks.indices, minlength=60)
    threshold = int(np.median(counts[counts > 0]))
    als = semrec.ALS(factors=4, iterations=3, random_state=0, show_progress=False)
    model = semrec.ColdStartALS(als, emb, min_interactions=threshold, fit_intercept=False)
    model.fit(clicks)
    rare = np.flatnonzero(counts < threshold)
    np.testing.assert_array_equal(model.cold_items_, rare)
    warm = np.flatnonzero(counts >= threshold)
    ref = normal_equations(
        emb[warm].astype(np.float64), als.item_factors_[warm].astype(np.float64), 1.0, False
    )
    np.testing.assert_allclose(model.item_factors_[rare], emb[rare] @ ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(model.intercept_, np.zeros(4, np.float32))


def test_streamed_clicks_make_no_item_warm(rng, tmp_path):
    """update / fold_in refit users, never items: the map's warm items are those the ALS was
    fitted on (an item whose ALS factors were never learnt must stay mapped)."""
    clicks, emb, *_ = topic_catalogue(rng)
    clicks = sp.csr_array(clicks.multiply(np.arange(60) != 7))  # item 7: no interactions
    clicks.eliminate_zeros()
    als = semrec.ALS(factors=4, iterations=3, random_state=0, show_progress=False)
    model = semrec.ColdStartALS(als, emb, min_interactions=2).fit(clicks)
    counts = np.bincount(clicks.indices, minlength=60)
    np.testing.assert_array_equal(als.item_counts_, counts)
    weights, cold = model.weights_.copy(), model.cold_items_.copy()
    np.testing.assert_array_equal(cold, np.flatnonzero(counts < 2))
    als.update(0, 7, 1.0)
    als.update(1, 7, 1.0)  # two clicks: 2 >= min_interactions if streamed clicks counted
    model.fit()  # the map refitted, the ALS kept
    np.testing.assert_array_equal(model.cold_items_, cold)
    np.testing.assert_array_equal(model.weights_, weights)
    assert np.abs(model.item_factors_[7]).max() > 0  # mapped, not the ALS's zero factors
    als.save(tmp_path / "als.npz")
    again = semrec.ALS.load(tmp_path / "als.npz")
    np.testing.assert_array_equal(again.item_counts_, counts)  # saved: not the streamed counts


@pytest.mark.parametrize("block", [4096, 7])
def test_huge_embeddings_are_reported_as_too_large_not_as_singular(monkeypatch, block) -> None:
    import semrec.coldstart as coldstart

    monkeypatch.setattr(coldstart, "_BLOCK_ROWS", block)  # the overflow found over blocks too
    r = sp.csr_array((np.random.default_rng(1).random((20, 20)) < 0.3).astype(np.float32))
    als = semrec.ALS(factors=4, iterations=2, random_state=0, show_progress=False).fit(r)
    huge = np.full((20, 8), 1e38, dtype=np.float32)
    with pytest.raises(ValueError, match=r"item_embeddings are too large.*rescale"):
        semrec.ColdStartALS(als, huge).fit()
    with pytest.raises(ValueError, match=r"embeddings are too large.*rescale"):
        ridge_map(huge.astype(np.float64), np.ones((20, 2)))


def _cold_model(rng, **als_params):
    """ColdStartALS over 60 items of which 50-59 have no interactions (cold)."""
    counts = rng.poisson(0.4, size=(120, 60)).astype(np.float32) * 2
    counts[:, 50:] = 0
    clicks = sp.csr_array(counts)
    als = semrec.ALS(factors=6, iterations=6, random_state=0, show_progress=False, **als_params)
    emb = rng.standard_normal((60, 8)).astype(np.float32)
    return semrec.ColdStartALS(als, emb).fit(clicks)


@pytest.mark.parametrize(
    "params", [{}, {"feedback": "explicit", "biases": True, "regularization": 0.5}],
    ids=["implicit", "explicit-biases"],
)  # fmt: skip
def test_explain_splits_warm_and_cold_scores_over_the_history(rng, params):
    model = _cold_model(rng, **params)
    user = 7
    model.fold_in(model.interactions_[[user]], users=[user])  # exact solve, current items
    history = sorted(model.interactions_[[user]].indices)
    for item in (3, 55):  # a warm item (its ALS factors) and a cold one (mapped from text)
        table = model.explain(user, item, k=100)
        score = float(model.score(user, [item])[0])
        intercept = 0.0
        if model.item_biases_ is not None:
            intercept = model.als.global_mean_ + model.item_biases_[item]
        assert sorted(table["item"]) == history
        np.testing.assert_allclose(table["contribution"].sum() + intercept, score, rtol=1e-4,
                                   atol=1e-5)  # fmt: skip
    warm = model.explain(user, 3, k=100)  # a warm item: exactly the ALS's own explanation
    als = model.als.explain(user, 3, k=100)
    np.testing.assert_allclose(warm["contribution"], als["contribution"], rtol=1e-6)


def test_a_refitted_als_makes_the_map_stale_and_says_so(rng):
    model = _cold_model(rng)
    before = model.recommend(0, k=5)[0]
    model.update(0, 4)  # the ALS's users move; its items do not: still fine
    model.als.random_state = 1
    model.als.fit(model.als.interactions_)
    for call in (lambda: model.recommend(0), lambda: model.score(0, [1]),
                 lambda: model.update(0, 2), lambda: model.explain(0, 55)):  # fmt: skip
        with pytest.raises(ValueError, match=r"refitted after the map was fitted.*call fit\(\)"):
            call()
    model.fit()  # the map refitted on the new ALS
    assert model.recommend(0, k=5)[0].shape == before.shape
    # A copy holds equal factors in other memory: not stale.
    for copied in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        np.testing.assert_array_equal(copied.recommend(0, k=5)[0], model.recommend(0, k=5)[0])


def test_add_items_takes_embeddings_and_says_so_for_texts(rng):
    model = _cold_model(rng)
    with pytest.raises(TypeError, match=r"embeddings, not their texts.*encoder.encode\(texts\)"):
        model.add_items(["a lighthouse keeper's story"])
    new = model.add_items(rng.standard_normal((2, 8)).astype(np.float32))
    assert new.tolist() == [60, 61]


def _many_items(rng, n_items=10_000, dim=24, biases=False):
    """10,000 items (every 7th without interactions, plus 5 text-only rows) for the blocked
    ridge: with coldstart._BLOCK_ROWS patched to 7, many blocks and a ragged last one."""
    counts = (rng.random((300, n_items)) < 0.01).astype(np.float32)
    counts[:, ::7] = 0
    params = {"feedback": "explicit", "biases": True} if biases else {}
    als = semrec.ALS(factors=4, iterations=2, random_state=0, show_progress=False, **params)
    als.fit(sp.csr_array(counts * (rng.integers(1, 6, counts.shape) if biases else 1)))
    emb = rng.standard_normal((n_items + 5, dim), dtype=np.float32)
    return als, emb


@pytest.mark.parametrize("block", [7, 4096])
@pytest.mark.parametrize("intercept", [True, False])
@pytest.mark.parametrize("biases", [False, True], ids=["implicit", "explicit-biases"])
def test_blocked_fit_equals_a_plain_float64_ridge(rng, monkeypatch, block, intercept, biases):
    """The Gram matrix summed over row blocks of the warm items (no float64 copy of the
    embeddings, no ones column) gives the plain normal equations' solution."""
    import semrec.coldstart as coldstart

    monkeypatch.setattr(coldstart, "_BLOCK_ROWS", block)
    als, emb = _many_items(rng, biases=biases)
    model = semrec.ColdStartALS(als, emb, regularization=0.7, fit_intercept=intercept).fit()
    warm = np.flatnonzero(als.item_counts_ >= 1)
    assert 8000 < warm.size < 9000 and 10_000 % 7 != 0  # a ragged last block
    targets = als.item_factors_
    if biases:
        targets = np.column_stack([targets, als.item_biases_])
    e, f = emb[warm].astype(np.float64), targets[warm].astype(np.float64)
    if intercept:
        e = np.hstack([e, np.ones((e.shape[0], 1))])
    penalty = 0.7 * np.eye(e.shape[1])
    if intercept:
        penalty[-1, -1] = 0.0  # the intercept is not penalised
    ref = np.linalg.solve(e.T @ e + penalty, e.T @ f)
    weights, bias = ref[:24], ref[24] if intercept else np.zeros(f.shape[1])
    # weights_ / intercept_ are float32: equal to the float64 solution up to float32 rounding
    np.testing.assert_allclose(model.weights_, weights, rtol=2e-7, atol=1e-12)
    np.testing.assert_allclose(model.intercept_, bias, rtol=2e-7, atol=1e-12)
    # The float64 solution itself (ridge_map, same blocks) agrees to rounding.
    w64, b64 = ridge_map(emb[warm], targets[warm], 0.7, fit_intercept=intercept)
    np.testing.assert_allclose(w64, weights, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(b64, bias, rtol=1e-8, atol=1e-12)
    cold = np.setdiff1d(np.arange(emb.shape[0]), warm)
    np.testing.assert_array_equal(model.cold_items_, cold)  # text-only rows 10000-10004 too


def test_nan_in_a_later_block_is_refused(rng, monkeypatch):
    import semrec.coldstart as coldstart

    monkeypatch.setattr(coldstart, "_BLOCK_ROWS", 7)
    e = rng.standard_normal((1000, 6), dtype=np.float32)
    f = rng.standard_normal((1000, 3))
    bad = e.copy()
    bad[993, 2] = np.nan  # the 142nd block
    with pytest.raises(ValueError, match=r"^embeddings contains NaN or infinite values"):
        ridge_map(bad, f)
    bad_f = f.copy()
    bad_f[500, 1] = np.inf
    with pytest.raises(ValueError, match=r"^targets contains NaN or infinite values"):
        ridge_map(e, bad_f, fit_intercept=False)
    als, emb = _many_items(rng)
    emb[9_001, 3] = np.nan
    with pytest.raises(ValueError, match=r"item_embeddings contains NaN or infinite values"):
        semrec.ColdStartALS(als, emb).fit()


def test_fit_makes_no_float64_copy_of_the_embeddings(rng):
    """The map's fit peaks well below the embeddings' own size (a float64 copy of the warm
    rows with a ones column, as the map once made, is 2-4x their float32 bytes)."""
    import tracemalloc

    als, emb = _many_items(rng, n_items=50_000, dim=64)
    model = semrec.ColdStartALS(als, emb)
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        model.fit()
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak < 0.6 * emb.nbytes, f"fit peaked at {peak / emb.nbytes:.2f}x the embeddings"


def _added_then_als_refitted(rng):
    """A model given 3 items with add_items (ids 60-62), whose ALS is then refitted alone."""
    model = _cold_model(rng)
    new = rng.standard_normal((3, 8)).astype(np.float32)
    assert model.add_items(new).tolist() == [60, 61, 62]
    model.als.random_state = 1
    model.als.fit(model.als.interactions_)
    return model, new


def test_after_an_als_refit_the_message_says_how_to_keep_added_items(rng):
    """Every verb refuses (add_items and similar_items too); the message's recipe keeps the
    added items, equal to a new model given every embedding on the same ALS."""
    model, new = _added_then_als_refitted(rng)
    message = r"refitted after the map was fitted.*model.item_embeddings = model.item_embeddings_"
    for verb in (
        lambda: model.recommend(0),
        lambda: model.similar_items(0, k=3),
        lambda: model.add_items(rng.standard_normal((1, 8)).astype(np.float32)),
    ):
        with pytest.raises(ValueError, match=message):
            verb()
    assert model.n_items_ == 63  # nothing appended on the stale map
    every = np.vstack([model.item_embeddings, new])
    model.item_embeddings = model.item_embeddings_
    model.fit()
    assert model.n_items_ == 63
    ref = semrec.ColdStartALS(model.als, every).fit()  # an independent model, same ALS
    np.testing.assert_array_equal(model.cold_items_, ref.cold_items_)
    assert set(model.cold_items_) >= {60, 61, 62}
    np.testing.assert_array_equal(model.item_factors_, ref.item_factors_)
    np.testing.assert_array_equal(model.recommend(0, k=5)[0], ref.recommend(0, k=5)[0])
    assert model.add_items(np.ones(8, np.float32)).tolist() == [63]
    assert model.similar_items(63, k=3)[0].shape == (3,)


def test_a_plain_refit_starts_from_item_embeddings(rng):
    """As every model's fit does (ContentRecommender, TextCF): the added items are dropped."""
    model, _ = _added_then_als_refitted(rng)
    model.fit()
    assert model.n_items_ == 60
    with pytest.raises(IndexError):
        model.score(0, [61])


def _state(model):
    """What a fitted ColdStartALS answers: every user's top 10 and scores of every item."""
    users = np.arange(model.n_users_)
    return model.recommend(users, k=10), model.score(users, np.arange(model.n_items_))


@pytest.mark.parametrize("why", ["no warm item", "singular map", "through Hybrid"])
def test_a_refused_fit_leaves_the_model_and_its_als_as_they_were(rng, monkeypatch, why):
    """A refused fit is all or nothing: refused before the ALS refits (no item reaches
    min_interactions), or after it (the map is singular without regularization: 12 warm items
    for 16 dimensions), the ALS inside is the one the map was fitted for, and the model still
    recommends exactly as before."""
    model, clicks, *_ = fitted(rng)
    als_fits = []
    fit = model.als.fit
    monkeypatch.setattr(model.als, "fit", lambda *a, **kw: als_fits.append(1) or fit(*a, **kw))
    (ids, scores), before = _state(model), model.als.user_factors_.copy()
    other = sp.csr_array(clicks[:50])
    if why == "singular map":
        other = sp.csr_array(clicks[:50].multiply(np.arange(60) < 12))  # warm items 0-11 only
        other.eliminate_zeros()
        assert 0 < np.count_nonzero(np.bincount(other.indices, minlength=60)) <= DIM
        model.regularization = 0.0
        match = "singular"
    else:
        model.min_interactions = 10_000
        match = "no item has >= 10000"
    with pytest.raises(ValueError, match=match):
        if why == "through Hybrid":
            semrec.Hybrid([(model, 1.0)]).fit(other, refit=True)
        else:
            model.fit(other)
    assert len(als_fits) == (why == "singular map")  # what the interactions show, refused first
    monkeypatch.undo()
    model.regularization, model.min_interactions = 1.0, 1
    assert model.als.n_users_ == clicks.shape[0]
    np.testing.assert_array_equal(model.als.user_factors_, before)
    ids_after, scores_after = _state(model)
    np.testing.assert_array_equal(ids_after[0], ids[0])
    np.testing.assert_array_equal(ids_after[1], ids[1])
    np.testing.assert_array_equal(scores_after, scores)


def test_ridge_map_refuses_a_non_boolean_fit_intercept():
    """The string "no" is truthy: taken by its truth, it would fit the intercept it skips."""
    e = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    with pytest.raises(TypeError, match=r"fit_intercept must be True or False, got 'no'"):
        ridge_map(e, 2 * e + 1, 0.0, fit_intercept="no")


@pytest.mark.parametrize(
    "params", [{}, {"feedback": "explicit", "biases": True, "regularization": 0.5}],
    ids=["implicit", "explicit-biases"],
)  # fmt: skip
def test_clicks_are_read_per_user_without_a_merge(rng, params):
    """After clicks, recommend, score and explain equal NumPy on the public factors and the
    histories, and read only the clicked users' rows: the ALS's histories are not merged
    (O(all interactions): recommend went from 0.4 to 16 ms at 10M) and, with biases, its
    user factors are not copied whole (``user_factors_`` after a click: 48 ms at 1M users)."""
    model = _cold_model(rng, **params)
    als = model.als
    model.recommend(0), model.score(0, [1]), model.explain(0, 55)
    seen = np.vstack([als.interactions_.toarray(), np.zeros((1, 60), np.float32)])
    is_seen = seen != 0
    base = als._histories._base
    for user, item, weight in [(1, 5, 2.0), (7, 12, 1.0), (120, 3, 1.0), (2, 4, 0.0)]:
        model.update(user, item, weight)  # 120: a new user
        seen[user, item] += weight
        is_seen[user, item] = True  # a weight of 0 too
    users = [1, 2, 7, 120]
    answers = {u: (model.recommend(u, k=60), model.score(u, np.arange(60))) for u in users}
    batch = model.recommend(users, k=60)
    why = {(u, i): model.explain(u, i, k=100) for u, i in [(1, 55), (7, 3), (120, 57)]}
    als_why = als.explain(1, 3, k=100)
    assert als._histories._base is base  # no merge
    assert als._user_views is None  # user_factors_ not rebuilt: read per user
    np.testing.assert_array_equal(als.interactions_.toarray(), seen)  # (merged now)
    x, y = als.user_factors_, model.item_factors_
    expected = x @ y.T
    if model.item_biases_ is not None:
        expected += als.user_biases_[:, None] + model.item_biases_ + als.global_mean_
    for n, u in enumerate(users):
        (ids, scores), full = answers[u]
        np.testing.assert_allclose(full, expected[u], rtol=1e-5, atol=1e-5)
        ref = np.lexsort((np.arange(60), -np.where(is_seen[u], -np.inf, expected[u])))
        np.testing.assert_array_equal(ids[ids >= 0], ref[: 60 - is_seen[u].sum()])
        np.testing.assert_array_equal(batch[0][n], ids)
        np.testing.assert_allclose(scores[ids >= 0], expected[u, ids[ids >= 0]], rtol=1e-5,
                                   atol=1e-5)  # fmt: skip
    for (u, i), table in [*why.items(), ((1, 3), als_why)]:
        assert sorted(table["item"]) == np.flatnonzero(seen[u]).tolist()  # weight 0 adds 0
        rest = 0.0 if model.item_biases_ is None else als.global_mean_ + model.item_biases_[i]
        np.testing.assert_allclose(table["contribution"].sum() + rest, expected[u, i],
                                   rtol=1e-4, atol=1e-4)  # fmt: skip


@pytest.mark.parametrize("intercept", [True, False])
def test_ridge_of_huge_embeddings_is_the_rescaled_solve_without_a_warning(rng, intercept):
    # Normal scale: the equilibrated solve is the plain one (NumPy) to 1e-10.
    e = rng.standard_normal((40, 8)).astype(np.float32)
    f = rng.standard_normal((40, 3))
    w, b = ridge_map(e, f, 0.5, fit_intercept=intercept)
    ref = normal_equations(e.astype(np.float64), f, 0.5, intercept)
    np.testing.assert_allclose(w, ref[:8], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(b, ref[8] if intercept else np.zeros(3), rtol=1e-10, atol=1e-12)
    # Norm ~1e10: E'E reaches 1e20 beside the intercept's count of 40, which SciPy's condition
    # estimate took for ill-conditioning (a LinAlgWarning; warnings are errors here). With
    # E = c E0 the answer is W = W0 / c of the ridge on E0 with penalty reg / c^2 (b alike).
    c = 1e10
    big = (e * np.float32(c)).astype(np.float32)
    w, b = ridge_map(big, f, 0.5, fit_intercept=intercept)
    ref = normal_equations(big.astype(np.float64) / c, f, 0.5 / c**2, intercept)
    np.testing.assert_allclose(w, ref[:8] / c, rtol=1e-9, atol=0)
    np.testing.assert_allclose(b, ref[8] if intercept else np.zeros(3), rtol=1e-9, atol=1e-12)


def test_cold_start_als_of_embeddings_of_norm_1e10_fits_without_a_warning(rng):
    clicks = sp.random_array((40, 30), density=0.2, format="csr", rng=0, dtype=np.float32)
    emb = rng.standard_normal((30, 8)).astype(np.float32) * np.float32(1e10)
    als = semrec.ALS(4, iterations=3, random_state=0, show_progress=False)
    model = semrec.ColdStartALS(als, emb).fit(clicks)  # a LinAlgWarning would be an error
    warm = als.item_counts_ >= 1
    x = np.hstack([emb[warm].astype(np.float64) / 1e10, np.ones((warm.sum(), 1))])
    penalty = np.diag(np.r_[np.full(8, model.regularization / 1e20), 0.0])
    ref = np.linalg.solve(x.T @ x + penalty, x.T @ als.item_factors_[warm].astype(np.float64))
    np.testing.assert_allclose(model.weights_, (ref[:8] / 1e10).astype(np.float32), rtol=1e-5)
    np.testing.assert_allclose(model.intercept_, ref[8].astype(np.float32), rtol=1e-5, atol=1e-6)
