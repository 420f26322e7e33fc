"""semrec.TextCF's text-predicted popularity (``popularity``) and item-mean user vectors
(``user_vectors="items"``) against independent references: a ridge regression solved as a
least-squares problem (NumPy's ``lstsq`` on the augmented system, not the normal equations),
NumPy products and norms for the user vectors, a NumPy NDCG@10 for what validation measures
(contract, save/load: tests/test_model_contract.py, tests/test_persist.py,
tests/test_textcf.py)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from textcf_reference import planted_with_cold_items

import semrec


@pytest.fixture(scope="module")
def data() -> tuple[sp.csr_array, np.ndarray]:
    """Planted topics, ratings as weights; items 0 and 1 have no interactions (cold)."""
    return planted_with_cold_items(2, 3)


SMALL = dict(
    hidden=16, factors=6, layers=0, negatives=16, batch_size=256, learning_rate=5e-3,
    epochs=3, patience=None, random_state=0, num_threads=1, show_progress=False,
)  # fmt: skip


def _model(emb: np.ndarray, **kw) -> semrec.TextCF:
    return semrec.TextCF(emb, **(SMALL | kw))


def _ridge_reference(emb: np.ndarray, m: sp.csr_array, penalty: float) -> np.ndarray:
    """Centred log(1 + users) predicted for every item: min ||X w - y||^2 + penalty ||w||^2 over
    the items with interactions, as the least-squares problem [X; sqrt(penalty) I] w = [y; 0]."""
    counts = np.asarray((m != 0).sum(axis=0)).ravel()
    trained = counts > 0
    x = emb[trained].astype(np.float64)
    mean = x.mean(axis=0)
    y = np.log1p(counts[trained])
    a = np.vstack([x - mean, np.sqrt(penalty) * np.eye(x.shape[1])])
    b = np.concatenate([y - y.mean(), np.zeros(x.shape[1])])
    w = np.linalg.lstsq(a, b, rcond=None)[0]
    return (emb.astype(np.float64) - mean) @ w


@pytest.mark.parametrize("penalty", [0.1, 10.0])
def test_popularity_is_beta_times_the_ridge_prediction_and_leaves_training_alone(
    data, penalty
) -> None:
    m, emb = data
    plain = _model(emb).fit(m)
    model = _model(emb, popularity=0.7, popularity_penalty=penalty).fit(m)
    want = 0.7 * _ridge_reference(emb, m, penalty)
    np.testing.assert_allclose(model.item_bias_, want, rtol=1e-5, atol=1e-6)
    assert plain.item_bias_ is None and plain.popularity_prior_ is None
    # The network and the vectors are the ones trained without it.
    np.testing.assert_array_equal(model.user_factors_, plain.user_factors_)
    np.testing.assert_array_equal(model.item_factors_, plain.item_factors_)
    users = np.arange(12)
    cos = model.user_factors_[users].astype(np.float64) @ model.item_factors_.T
    np.testing.assert_allclose(model.score(users, np.arange(60)), cos + 0.15 * want, atol=1e-5)


def test_observed_popularity_mixes_the_counts_in_for_trained_items_only(data) -> None:
    m, emb = data
    model = _model(emb, popularity=2.0, observed_popularity=0.25).fit(m)
    counts = np.asarray((m != 0).sum(axis=0)).ravel()
    trained = counts > 0
    observed = np.log1p(counts[trained]) - np.log1p(counts[trained]).mean()
    text = _ridge_reference(emb, m, 10.0)
    want = text.copy()
    want[trained] = 0.75 * text[trained] + 0.25 * observed
    np.testing.assert_allclose(model.item_bias_, 2.0 * want, rtol=1e-5, atol=1e-5)
    assert not trained[:2].any()  # the cold items keep the text prediction
    # An added item has no interactions: the text prediction, even with a trained item's text.
    ids = model.add_items(emb[[0, 9]])
    np.testing.assert_allclose(model.item_bias_[ids], 2.0 * text[[0, 9]], rtol=1e-5, atol=1e-5)


def test_popularity_is_added_to_the_learned_bias(data) -> None:
    m, emb = data
    learned = _model(emb, item_bias=True).fit(m)
    both = _model(emb, item_bias=True, popularity=0.4).fit(m)
    want = learned.item_bias_ + 0.4 * _ridge_reference(emb, m, 10.0)
    np.testing.assert_allclose(both.item_bias_, want, rtol=1e-5, atol=1e-5)


def test_the_ridge_reads_popularity_from_text(data) -> None:
    """Control: when one coordinate of the text is the log popularity, the prediction follows
    it (and cold items, without interactions, still get a finite prediction)."""
    m, emb = data
    counts = np.asarray((m != 0).sum(axis=0)).ravel()
    emb = emb.copy()
    emb[:, 0] = 3 * np.log1p(counts)
    model = _model(emb, popularity=1.0, popularity_penalty=0.1).fit(m)
    warm = counts > 0
    assert np.corrcoef(model.item_bias_[warm], np.log1p(counts[warm]))[0, 1] > 0.99
    assert np.isfinite(model.item_bias_[:2]).all()


@pytest.mark.parametrize("item_bias", [False, True])
def test_added_items_get_their_text_predicted_popularity(data, item_bias) -> None:
    m, emb = data
    model = _model(emb, popularity=0.5, item_bias=item_bias).fit(m)
    ids = model.add_items(emb[[0, 1, 9]])
    np.testing.assert_allclose(model.item_bias_[ids], model.item_bias_[[0, 1, 9]], atol=1e-6)
    np.testing.assert_allclose(model.score(5, ids[:2]), model.score(5, [0, 1]), atol=1e-6)


def _item_mean(m: sp.csr_array, items: np.ndarray) -> np.ndarray:
    s = m.toarray().astype(np.float64) @ items.astype(np.float64)
    norms = np.linalg.norm(s, axis=1, keepdims=True)
    return np.divide(s, norms, out=np.zeros_like(s), where=norms > 0)  # no history: zeros


@pytest.mark.parametrize("layers", [0, 2])
def test_item_mean_users_are_the_normalised_weighted_sums_of_their_items(data, layers) -> None:
    m, emb = data
    model = _model(emb, user_vectors="items", layers=layers).fit(m)
    network = _model(emb, layers=layers).fit(m)
    # The items are the trained network's (the option changes how users are built only).
    np.testing.assert_array_equal(model.item_factors_, network.item_factors_)
    np.testing.assert_allclose(model.user_factors_, _item_mean(m, model.item_factors_), atol=1e-6)
    # fold_in of a user's own history gives their fitted vector; update adds one item.
    np.testing.assert_allclose(model.fold_in(m[[3, 8]]), model.user_factors_[[3, 8]], atol=1e-6)
    row = m[[4]].toarray()
    item = int(np.flatnonzero(row[0] == 0)[0])
    row[0, item] += 2.0
    got = model.update(4, item, 2.0)
    np.testing.assert_allclose(
        got, _item_mean(sp.csr_array(row), model.item_factors_)[0], atol=1e-6
    )


def test_item_mean_explanations_add_up_to_the_cosine(data) -> None:
    m, emb = data
    model = _model(emb, user_vectors="items", popularity=0.3).fit(m)
    u, i = 6, 20
    table = model.explain(u, i, k=100)
    cosine = float(model.user_factors_[u].astype(np.float64) @ model.item_factors_[i])
    assert table["contribution"].sum() == pytest.approx(cosine, abs=1e-5)
    j = m[[u]].indices[0]  # one item by hand: w_j v_j . v_i / ||sum_j w_j v_j||
    s = m[[u]].toarray()[0].astype(np.float64) @ model.item_factors_.astype(np.float64)
    want = m[[u]].data[0] * (model.item_factors_[j].astype(np.float64) @ model.item_factors_[i])
    got = table.set_index("item").loc[j, "contribution"]
    assert got == pytest.approx(want / np.linalg.norm(s), abs=1e-6)


def _ndcg10(queries: np.ndarray, items: np.ndarray, train: sp.csr_array, relevant) -> float:
    values = []
    for u in np.flatnonzero(np.diff(relevant.indptr) > 0):
        scores = items.astype(np.float64) @ queries[u].astype(np.float64)
        scores[train[[u]].indices] = -np.inf
        top = np.argsort(-scores, kind="stable")[:10]
        hits = np.isin(top, relevant[[u]].indices)
        dcg = (hits / np.log2(np.arange(2, 12))).sum()
        ideal = (1 / np.log2(np.arange(2, 2 + min(10, relevant[[u]].nnz)))).sum()
        values.append(dcg / ideal)
    return float(np.mean(values))


@pytest.mark.parametrize("user_vectors", ["network", "items"])
def test_validation_measures_the_vectors_that_are_kept(data, user_vectors) -> None:
    m, emb = data
    coo = sp.coo_array(m)
    held = np.random.default_rng(0).random(coo.nnz) < 0.2

    def part(mask):
        return sp.csr_array((coo.data[mask], (coo.row[mask], coo.col[mask])), shape=m.shape)

    train, valid = part(~held), part(held)
    model = _model(emb, user_vectors=user_vectors, epochs=4).fit(train, validation=valid)
    best = model.history_[model.best_epoch_]["ndcg"]
    want = _ndcg10(model.user_factors_, model.item_factors_, train, valid)
    assert best == pytest.approx(want, abs=1e-6)


def test_same_seed_same_model(data) -> None:
    m, emb = data
    a = _model(emb, user_vectors="items", popularity=0.5, observed_popularity=0.5).fit(m)
    b = _model(emb, user_vectors="items", popularity=0.5, observed_popularity=0.5).fit(m)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.item_bias_, b.item_bias_)


@pytest.mark.parametrize(
    ("kw", "error", "match"),
    [
        (dict(user_vectors="mean"), ValueError, "user_vectors"),
        (dict(popularity=-0.1), ValueError, "popularity must be a finite number >= 0, got -0.1"),
        (dict(popularity="high"), TypeError, "popularity must be a number, got str"),
        (
            dict(popularity_penalty=0.0),
            ValueError,
            "popularity_penalty must be a finite number > 0",
        ),
    ],
)
def test_bad_options_are_named(data, kw, error, match) -> None:
    m, emb = data
    with pytest.raises(error, match=match):
        _model(emb, **kw).fit(m)


def test_item_mean_users_refuse_user_text(data) -> None:
    m, emb = data
    users = np.zeros((m.shape[0], emb.shape[1]), dtype=np.float32)
    with pytest.raises(ValueError, match='user_vectors="items" builds users from their items'):
        _model(emb, user_vectors="items", user_embeddings=users).fit(m)
