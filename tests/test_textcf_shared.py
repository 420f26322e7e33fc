"""TextCF's shared negatives and its batches over few items, against the plain-PyTorch
reference (tests/textcf_reference.py): the loss and gradients of a batch that runs the network
over its touched items only, the one draw per batch, and training with it end to end."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from textcf_reference import (
    loss_and_gradients,
    ndcg_beside_content,
    planted_topics,
    small_settings,
)

import semrec
from semrec import split
from semrec.textcf import _network as network
from semrec.textcf import _training as training


def _settings(**kw) -> training.Settings:
    return small_settings(**{"layers": 0, **kw})  # no propagation: batches over few items


def _catalogue(n_users: int, warm: int, cold: int, dim: int, seed: int):
    """Interactions (weights 1-5) on the first ``warm`` items only, ``cold`` more items
    without any, and one embedding per item: a batch touches under half the catalogue."""
    rng = np.random.default_rng(seed)
    dense = np.zeros((n_users, warm + cold), dtype=np.float32)
    dense[:, :warm] = (rng.random((n_users, warm)) < 0.5) * rng.integers(1, 6, (n_users, warm))
    dense[np.flatnonzero(dense.sum(axis=1) == 0), 0] = 3
    m = sp.csr_array(dense)
    emb = rng.standard_normal((warm + cold, dim)).astype(np.float32)
    return m, emb, rng


def _inputs(m: sp.csr_array, emb: np.ndarray) -> np.ndarray:
    input_sum, mass = network.user_inputs(m, emb)
    return np.vstack([network.means(input_sum, mass), emb]).astype(np.float32)


def _weights(dim: int, s: training.Settings, rng: np.random.Generator) -> dict[str, np.ndarray]:
    weights = network.initial_weights(dim, s.hidden, s.factors, rng, item_bias=s.item_bias)
    if s.item_bias:  # a bias that is not zero, so that its forward path counts
        weights["bias.weight"] = rng.standard_normal(weights["bias.weight"].shape).astype(
            np.float32
        )
    return weights


@pytest.mark.parametrize("shared", [False, True], ids=["own-negatives", "shared-negatives"])
@pytest.mark.parametrize("means", [True, False], ids=["user-means", "user-inputs"])
@pytest.mark.parametrize(("hidden", "item_bias"), [(7, False), (7, True), (0, False), (0, True)])
def test_a_batch_over_its_touched_items_equals_the_reference(
    shared: bool, means: bool, hidden: int, item_bias: bool
) -> None:
    # 12 positives and 3 negatives each touch at most 48 of 400 items: the trainer runs the
    # network over those alone (under half the catalogue, no propagation).
    m, emb, rng = _catalogue(30, 40, 360, 6, seed=2)
    s = _settings(hidden=hidden, item_bias=item_bias)
    weights = _weights(emb.shape[1], s, rng)
    inputs = _inputs(m, emb)
    if not means:  # users with inputs of their own (text): any vectors
        inputs[: m.shape[0]] = rng.standard_normal((m.shape[0], emb.shape[1]))
    trainer = training.make_trainer(s, inputs, m, weights, user_means=means)
    coo = sp.coo_array(m)
    pick = rng.choice(coo.nnz, 12, replace=False)
    users, items = coo.row[pick].astype(np.int32), coo.col[pick].astype(np.int32)
    users[1] = users[0]  # a user with two positives in the batch
    negatives = rng.integers(0, 40, (12, s.negatives)).astype(np.int32)
    negatives[0, 0] = items[0]  # the positive itself among the negatives
    if shared:
        negatives[:] = negatives[0]
    loss, grads = trainer.batch_gradients(users, items, negatives)
    ref_loss, ref_grads, _ = loss_and_gradients(weights, inputs, m, 0, users, items, negatives, 0.2)
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    assert set(grads) == set(ref_grads)
    for name, g in grads.items():
        np.testing.assert_allclose(g, ref_grads[name], rtol=1e-4, atol=1e-5, err_msg=name)


def test_an_epoch_draws_one_set_of_negatives_for_the_whole_batch() -> None:
    # Three warm items, two negatives, one batch of every positive: the epoch's loss (at the
    # initial weights) must be the reference loss for one multiset of two of the three items
    # shared by every positive; negatives drawn per positive match none of them.
    m, emb, _ = _catalogue(25, 3, 60, 5, seed=4)
    coo = sp.coo_array(m)
    users, items = coo.row.astype(np.int32), coo.col.astype(np.int32)
    candidates = [
        loss_and_gradients(
            _weights(5, _settings(), np.random.default_rng(0)),
            _inputs(m, emb),
            m,
            0,
            users,
            items,
            np.tile(np.array(pair, dtype=np.int32), (users.size, 1)),
            0.2,
        )[0]
        for pair in itertools.combinations_with_replacement(range(3), 2)
    ]
    for shared in (True, False):
        s = _settings(negatives=2, batch_size=1000, shared_negatives=shared)
        weights = _weights(5, s, np.random.default_rng(0))
        trainer = training.make_trainer(s, _inputs(m, emb), m, weights)
        losses = [trainer.epoch(0)]
        for seed in (2, 3):  # other draws: each still one of the candidates when shared
            s.seed = seed
            losses.append(training.make_trainer(s, _inputs(m, emb), m, weights).epoch(0))
        matched = [min(abs(x - c) / c for c in candidates) < 1e-5 for x in losses]
        assert all(matched) if shared else not any(matched), (shared, losses, candidates)


# -- training end to end ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def topics() -> tuple[semrec.datasets.Dataset, np.ndarray]:
    """Planted topics among 600 items (a batch touches under half of them)."""
    return planted_topics(600, seed=6)


def _model(emb: np.ndarray, **kw) -> semrec.TextCF:
    params = dict(
        hidden=64, factors=16, layers=0, negatives=32, shared_negatives=True, batch_size=64,
        learning_rate=5e-3, epochs=6, patience=None, random_state=0, num_threads=1,
        show_progress=False,
    )  # fmt: skip
    params.update(kw)
    return semrec.TextCF(emb, **params)


def test_shared_negatives_train_and_recover_planted_topics(topics) -> None:
    ds, emb = topics
    train, test = split.last_fraction(ds)
    losses: list[float] = []
    ours = _model(emb).fit(train, callback=lambda epoch, loss, metric: losses.append(loss))
    assert all(b < a for a, b in itertools.pairwise(losses[:4])), losses
    shared, content = ndcg_beside_content(ours, emb, train, test)
    assert shared > 1.5 * content, (shared, content)


def test_shared_negatives_are_deterministic_and_differ_from_own_negatives(topics) -> None:
    ds, emb = topics
    a = _model(emb, epochs=2).fit(ds)
    b = _model(emb, epochs=2).fit(ds)
    own = _model(emb, epochs=2, shared_negatives=False).fit(ds)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    assert not np.allclose(a.item_factors_, own.item_factors_)


def test_shared_negatives_survive_save_and_load(topics, tmp_path) -> None:
    ds, emb = topics
    model = _model(emb, epochs=1).fit(ds)
    model.save(tmp_path / "m.npz")
    loaded = semrec.TextCF.load(tmp_path / "m.npz")
    assert loaded.shared_negatives is True
    np.testing.assert_array_equal(loaded.recommend([0, 1], k=5)[0], model.recommend([0, 1], k=5)[0])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"negatives": "all"}, ValueError, 'negatives="all" samples none'),
        ({"shared_negatives": "yes"}, TypeError, "shared_negatives must be True or False"),
        (
            {"negatives": "ALL"},
            ValueError,
            r"negatives must be a positive int or \"all\", got 'ALL'",
        ),
        ({"negatives": "256"}, ValueError, r"negatives must be a positive int or \"all\""),
        ({"negatives": 2.5}, TypeError, "negatives must be an int, got float"),
    ],
)
def test_bad_shared_negatives_are_refused(topics, kwargs, error, match) -> None:
    ds, emb = topics
    with pytest.raises(error, match=match):
        _model(emb, **kwargs).fit(ds)
