"""semrec.TextCF's text-predicted item bias (``item_bias=True``) against independent references:
the plain-PyTorch model of tests/textcf_reference.py for the forward pass, loss and gradients,
closed forms for scores, cold and added items, and the popularity it learns (determinism:
tests/test_textcf.py)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from textcf_reference import ReferenceTextCF, loss_and_gradients

import semrec
from semrec.datasets import synthetic
from semrec.textcf import _network as network
from semrec.textcf import _training as training


def _problem(n_users: int = 7, n_items: int = 9, dim: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < 0.35) * rng.integers(1, 6, (n_users, n_items))
    dense[0, 0] = dense[1, 3] = 2
    dense[np.flatnonzero(dense.sum(axis=1) == 0), 1] = 1
    dense[:, n_items - 1] = 0  # one cold item
    emb = rng.standard_normal((n_items, dim)).astype(np.float32)
    return sp.csr_array(dense.astype(np.float32)), emb, rng


def _settings(**kw) -> training.Settings:
    base = dict(
        hidden=7, factors=4, negative_slope=0.01, layers=2, tau=0.2, negatives=3,
        batch_size=64, learning_rate=1e-2, weight_decay=0.0, epochs=1, patience=None,
        seed=1, threads=1, show_progress=False, item_bias=True,
    )  # fmt: skip
    base.update(kw)
    return training.Settings(**base)


def _reference_biases(weights: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        out = ReferenceTextCF(weights).item_biases(torch.from_numpy(x.astype(np.float32)))
    return out.numpy()


@pytest.mark.parametrize(
    ("hidden", "layers", "k"), [(7, 2, 3), (7, 0, 3), (0, 2, 3), (0, 0, 3), (7, 2, 0)]
)
def test_biased_loss_and_gradients_equal_the_pytorch_reference(
    hidden: int, layers: int, k: int
) -> None:
    m, emb, rng = _problem()
    s = _settings(hidden=hidden, layers=layers, negatives=k)
    weights = network.initial_weights(emb.shape[1], hidden, s.factors, rng, item_bias=True)
    # A bias weight that is not zero, so that the bias reaches the loss and the other grads.
    weights["bias.weight"] = rng.standard_normal(weights["bias.weight"].shape).astype(np.float32)
    input_sum, mass = network.user_inputs(m, emb)
    inputs = np.vstack([network.means(input_sum, mass), emb]).astype(np.float32)
    trainer = training.make_trainer(s, inputs, m, weights)
    coo = sp.coo_array(m)
    pick = rng.choice(coo.nnz, 10)
    users, items = coo.row[pick].astype(np.int32), coo.col[pick].astype(np.int32)
    negatives = rng.integers(0, m.shape[1], (10, k)).astype(np.int32)
    loss, grads = trainer.batch_gradients(users, items, negatives)
    ref_loss, ref_grads, _ = loss_and_gradients(
        weights, inputs, m, layers, users, items, negatives, s.tau
    )
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    assert set(grads) == set(ref_grads) and "bias.weight" in grads
    for name, g in grads.items():
        np.testing.assert_allclose(g, ref_grads[name], rtol=1e-4, atol=1e-5, err_msg=name)
    want = _reference_biases(weights, emb)
    np.testing.assert_allclose(trainer.item_biases(), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(network.item_biases(weights, emb, 0.01), want, rtol=1e-5, atol=1e-5)


def test_the_bias_changes_the_loss() -> None:
    """Control for the test above: the same batch without the bias has another loss."""
    m, emb, rng = _problem()
    weights = network.initial_weights(emb.shape[1], 7, 4, rng, item_bias=True)
    weights["bias.weight"] = rng.standard_normal(weights["bias.weight"].shape).astype(np.float32)
    inputs = np.vstack([network.means(*network.user_inputs(m, emb)), emb]).astype(np.float32)
    users, items = np.array([0, 1], np.int32), np.array([0, 3], np.int32)
    negatives = rng.integers(0, m.shape[1], (2, 3)).astype(np.int32)
    biased = training.make_trainer(_settings(), inputs, m, weights)
    with_bias, _ = biased.batch_gradients(users, items, negatives)
    plain = {k: w for k, w in weights.items() if k != "bias.weight"}
    unbiased = training.make_trainer(_settings(item_bias=False), inputs, m, plain)
    without, _ = unbiased.batch_gradients(users, items, negatives)
    assert abs(with_bias - without) > 1e-3


@pytest.fixture(scope="module")
def skewed() -> tuple[sp.csr_array, np.ndarray, np.ndarray]:
    """Planted topics; items 0 and 1 have no interactions (cold). Item embeddings carry the
    topic, noise, and in one coordinate the item's log popularity: like a film's text, which
    tells something of how many will watch it."""
    ds = synthetic(300, 120, 5000, n_topics=6, with_text=True, random_state=5)
    m = sp.csr_array(ds.interactions)
    keep = np.ones(m.shape[1])
    keep[[0, 1]] = 0
    m = sp.csr_array(m @ sp.diags_array(keep)).astype(np.float32)
    m.eliminate_zeros()
    popularity = np.bincount(m.indices, minlength=m.shape[1])
    rng = np.random.default_rng(5)
    centres = rng.standard_normal((6, 24))
    emb = centres[ds.items["topic"].to_numpy()] + 1.5 * rng.standard_normal((120, 24))
    emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    signal = np.log1p(popularity)
    emb[:, 0] = (signal - signal.mean()) / signal.std()
    return m, emb.astype(np.float32), popularity


def _model(emb: np.ndarray, **kw) -> semrec.TextCF:
    params = dict(
        hidden=32, factors=8, layers=1, negatives=32, batch_size=256, learning_rate=5e-3,
        epochs=6, patience=None, random_state=0, num_threads=1, show_progress=False,
        item_bias=True,
    )  # fmt: skip
    params.update(kw)
    return semrec.TextCF(emb, **params)


def test_scores_are_cosines_plus_tau_times_the_bias(skewed) -> None:
    m, emb, _ = skewed
    model = _model(emb).fit(m)
    assert model.item_bias_.shape == (120,) and model.item_bias_.dtype == np.float32
    users = np.arange(10)
    want = model.user_factors_[users].astype(np.float64) @ model.item_factors_.T.astype(np.float64)
    want += model.tau * model.item_bias_.astype(np.float64)
    np.testing.assert_allclose(model.score(users, np.arange(120)), want, atol=1e-5)
    ids, _ = model.recommend(users, k=5)
    seen = m[users].toarray() > 0
    np.testing.assert_array_equal(ids, np.argsort(-np.where(seen, -np.inf, want), axis=1)[:, :5])
    # The vectors stay unit vectors: similar_items ranks by their cosines, bias aside.
    np.testing.assert_allclose(np.linalg.norm(model.item_factors_, axis=1), 1, atol=1e-5)


def test_the_bias_learns_popularity(skewed) -> None:
    """Against uniform negatives, a popular item's logit must rise: the bias (zero at the
    start) learns to read the popularity the text carries."""
    m, emb, popularity = skewed
    model = _model(emb).fit(m)
    warm = popularity > 0
    corr = np.corrcoef(model.item_bias_[warm], np.log(popularity[warm]))[0, 1]
    assert corr > 0.8


@pytest.mark.parametrize("net", ["mlp", "linear"])
def test_cold_and_added_items_get_the_text_predicted_bias(skewed, net) -> None:
    m, emb, _ = skewed
    model = _model(emb, network=net).fit(m)
    want = _reference_biases(model.weights_, emb)  # b of every item from its embedding alone
    np.testing.assert_allclose(model.item_bias_, want, rtol=1e-4, atol=1e-5)
    ids = model.add_items(emb[[0, 1, 7]])
    np.testing.assert_allclose(model.item_bias_[ids], want[[0, 1, 7]], rtol=1e-4, atol=1e-5)
    # An added item scores exactly as the same text did as a cold item at fit.
    np.testing.assert_allclose(model.score(3, ids[:2]), model.score(3, [0, 1]), atol=1e-6)


def test_save_load_round_trip_with_the_bias(skewed, tmp_path) -> None:
    m, emb, _ = skewed
    model = _model(emb, epochs=2).fit(m)
    model.add_items(emb[:2])
    model.update(1, 2)
    path = tmp_path / "biased.npz"
    model.save(path)
    loaded = semrec.TextCF.load(path)
    assert repr(loaded) == repr(model) and "item_bias=True" in repr(loaded)
    np.testing.assert_array_equal(loaded.item_bias_, model.item_bias_)
    np.testing.assert_array_equal(loaded.weights_["bias.weight"], model.weights_["bias.weight"])
    users = np.arange(40)
    for got, want in zip(loaded.recommend(users, k=7), model.recommend(users, k=7), strict=True):
        np.testing.assert_array_equal(got, want)
    assert np.array_equal(loaded.add_items(emb[[5]]), model.add_items(emb[[5]]))
    np.testing.assert_array_equal(loaded.item_bias_, model.item_bias_)


def test_item_bias_must_be_a_bool(skewed) -> None:
    m, emb, _ = skewed
    with pytest.raises(TypeError, match="item_bias must be True or False, got 'yes'"):
        _model(emb, item_bias="yes").fit(m)
