"""semrec.TextCF against independent references: a plain-PyTorch model (tests/
textcf_reference.py) for the forward pass, loss and gradients, dense NumPy for the propagation,
closed forms for fold-in, updates and explanations, and ContentRecommender on planted topics."""

from __future__ import annotations

import itertools
import pickle
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
from interrupts import ctrl_c
from text_helpers import PlantedEncoder, refused_encoder_answers
from textcf_reference import (
    loss_and_gradients,
    ndcg_beside_content,
    normalised_adjacency,
    planted_topics,
    propagation_matrix,
    small_settings,
)

import semrec
from semrec import split
from semrec.textcf import _network as network
from semrec.textcf import _training as training


def _problem(n_users: int = 7, n_items: int = 9, dim: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    dense = (rng.random((n_users, n_items)) < 0.35) * rng.integers(1, 6, (n_users, n_items))
    dense[0, 0] = dense[1, 3] = 2  # every user and most items get an edge
    dense[np.flatnonzero(dense.sum(axis=1) == 0), 1] = 1
    dense[:, n_items - 1] = 0  # one cold item
    m = sp.csr_array(dense.astype(np.float32))
    emb = rng.standard_normal((n_items, dim)).astype(np.float32)
    return m, emb, rng


def _inputs(m: sp.csr_array, emb: np.ndarray) -> np.ndarray:
    input_sum, mass = network.user_inputs(m, emb)
    return np.vstack([network.means(input_sum, mass), emb]).astype(np.float32)


# -- propagation ------------------------------------------------------------------------------
@pytest.mark.parametrize("layers", [0, 1, 2, 3])
def test_propagation_equals_dense_numpy_product(layers: int) -> None:
    m, _, rng = _problem(11, 8)
    x = rng.standard_normal((19, 6)).astype(np.float32)
    want = propagation_matrix(m, layers) @ x.astype(np.float64)
    got = training.propagate(m, x, layers)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_adjacency_reference_is_symmetric_normalised() -> None:
    m, _, _ = _problem()
    a = normalised_adjacency(m).toarray()
    r = (m.toarray() > 0).astype(float)
    du, di = r.sum(axis=1), r.sum(axis=0)
    i = np.flatnonzero(r[2])[0]
    assert a[2, m.shape[0] + i] == pytest.approx(1 / np.sqrt(du[2] * di[i]))
    np.testing.assert_array_equal(a, a.T)


# -- forward, loss and gradients against plain PyTorch --------------------------------------
@pytest.mark.parametrize("means", [True, False], ids=["user-means", "user-inputs"])
@pytest.mark.parametrize(
    ("hidden", "layers", "k"), [(7, 2, 3), (7, 0, 3), (0, 2, 3), (0, 0, 3), (6, 3, 3), (7, 2, 0)]
)
def test_forward_loss_and_gradients_equal_the_pytorch_reference(
    hidden: int, layers: int, k: int, means: bool
) -> None:
    m, emb, rng = _problem()
    s = small_settings(hidden=hidden, layers=layers, negatives=k)
    weights = network.initial_weights(emb.shape[1], hidden, s.factors, rng)
    inputs = _inputs(m, emb)
    if not means:  # users with inputs of their own (text): any vectors
        inputs[: m.shape[0]] = rng.standard_normal((m.shape[0], emb.shape[1]))
    dense = m.toarray()
    dense[-1] = 0  # a user without history
    m = sp.csr_array(dense)
    if means:
        inputs[m.shape[0] - 1] = 0
    trainer = training.make_trainer(s, inputs, m, weights, user_means=means)
    coo = sp.coo_array(m)
    pick = rng.choice(coo.nnz, 10)
    users = coo.row[pick].astype(np.int32)
    items = coo.col[pick].astype(np.int32)
    negatives = rng.integers(0, m.shape[1], (10, s.negatives)).astype(np.int32)
    if k:
        negatives[0, :2] = items[0]  # repeats and the positive itself among the negatives
    loss, grads = trainer.batch_gradients(users, items, negatives)
    ref_loss, ref_grads, ref_vectors = loss_and_gradients(
        weights, inputs, m, layers, users, items, negatives, s.tau
    )
    np.testing.assert_allclose(trainer.vectors(), ref_vectors, rtol=1e-5, atol=1e-6)
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    assert set(grads) == set(ref_grads)
    for name, g in grads.items():
        np.testing.assert_allclose(g, ref_grads[name], rtol=1e-4, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("width", [1, 4])
def test_batch_gradients_refuses_negatives_of_another_width(width: int) -> None:
    """The kernel reads n x negatives ids: a narrower array would be read past its end."""
    m, emb, rng = _problem()
    s = small_settings(hidden=7, layers=0, negatives=3)
    weights = network.initial_weights(emb.shape[1], 7, s.factors, rng)
    trainer = training.make_trainer(s, _inputs(m, emb), m, weights, user_means=True)
    coo = sp.coo_array(m)
    users, items = coo.row[:2].astype(np.int32), coo.col[:2].astype(np.int32)
    with pytest.raises(ValueError, match="the trainer's negatives"):
        trainer.batch_gradients(users, items, np.zeros((2, width), np.int32))


def test_large_batch_gradients_equal_the_reference_across_score_chunks() -> None:
    """Many users; the dense score matrix processed in blocks of 7 rows (7 * 40 floats)."""
    m, emb, rng = _problem(300, 40, 6, seed=3)
    s = small_settings(layers=1, negatives=5)
    weights = network.initial_weights(emb.shape[1], s.hidden, s.factors, rng)
    inputs = _inputs(m, emb)
    trainer = training.make_trainer(s, inputs, m, weights, score_block=7 * 40 + 3)
    coo = sp.coo_array(m)
    users, items = coo.row.astype(np.int32), coo.col.astype(np.int32)
    negatives = rng.integers(0, m.shape[1], (users.size, s.negatives)).astype(np.int32)
    loss, grads = trainer.batch_gradients(users, items, negatives)
    ref_loss, ref_grads, _ = loss_and_gradients(
        weights, inputs, m, s.layers, users, items, negatives, s.tau
    )
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    for name, g in grads.items():
        np.testing.assert_allclose(g, ref_grads[name], rtol=1e-4, atol=1e-5, err_msg=name)


# -- training ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def topics() -> tuple[semrec.datasets.Dataset, np.ndarray]:
    """Synthetic data with 8 planted topics among 200 items (textcf_reference.planted_topics)."""
    return planted_topics(200, seed=4)


def _model(emb: np.ndarray, **kw) -> semrec.TextCF:
    params = dict(
        hidden=64, factors=16, layers=1, negatives=32, batch_size=512, learning_rate=5e-3,
        epochs=8, patience=None, random_state=0, num_threads=1, show_progress=False,
    )  # fmt: skip
    params.update(kw)
    return semrec.TextCF(emb, **params)


def test_loss_decreases(topics) -> None:
    ds, emb = topics
    losses: list[float] = []
    _model(emb).fit(ds, callback=lambda epoch, loss, metric: losses.append(loss))
    assert len(losses) == 8
    assert losses[-1] < 0.95 * losses[0]
    assert all(b < a for a, b in itertools.pairwise(losses[:5]))


def test_planted_topics_recovered_better_than_content(topics) -> None:
    ds, emb = topics
    train, test = split.last_fraction(ds)
    ours, content = ndcg_beside_content(_model(emb).fit(train), emb, train, test)
    # Measured: about 0.49 against 0.25 (1.95x) for seeds 4 and 5.
    assert ours > 1.5 * content, (ours, content)


def test_validation_keeps_the_best_epoch_and_stops_early(topics) -> None:
    ds, emb = topics
    train, valid = split.last_fraction(ds)
    seen: list[tuple[int, float | None]] = []
    model = _model(emb, epochs=30, patience=2, learning_rate=5e-2)
    model.fit(train, validation=valid, callback=lambda e, loss, metric: seen.append((e, metric)))
    metrics = [m for _, m in seen]
    assert all(m is not None for m in metrics)
    best = int(np.argmax(metrics))
    assert model.best_epoch_ == best
    assert len(seen) == 30 or len(seen) - 1 - best == 2, "stops 2 epochs after the best"
    # The kept weights are the best epoch's: its validation NDCG is measured again.
    again = training.validation_ndcg(
        np.vstack([model.user_factors_, model.item_factors_]),
        model.n_users_,
        model.interactions_,
        sp.csr_array(valid.interactions),
        1,
    )
    assert again == pytest.approx(metrics[best], abs=1e-6)


def test_averaging_keeps_the_moving_average_of_each_epochs_weights(topics) -> None:
    ds, emb = topics
    # Training is a deterministic prefix: the fit with e epochs has epoch e's own weights.
    own = [_model(emb, epochs=e, averaging=0.0).fit(ds).weights_ for e in (1, 2, 3)]
    expected = {k: w.astype(np.float64) for k, w in own[0].items()}
    for w in own[1:]:
        expected = {k: 0.6 * a + 0.4 * w[k] for k, a in expected.items()}
    got = _model(emb, epochs=3, averaging=0.6).fit(ds).weights_
    for name, w in expected.items():
        np.testing.assert_allclose(got[name], w, rtol=0, atol=1e-6, err_msg=name)


def test_averaging_does_not_change_the_training_trajectory(topics) -> None:
    ds, emb = topics
    train, valid = split.last_fraction(ds)
    plain = _model(emb, epochs=3, averaging=0.0).fit(train, validation=valid)
    averaged = _model(emb, epochs=3, averaging=0.8).fit(train, validation=valid)
    assert [h["loss"] for h in averaged.history_] == [h["loss"] for h in plain.history_]
    assert [h["ndcg"] for h in averaged.history_] != [h["ndcg"] for h in plain.history_]


@pytest.mark.parametrize("item_bias", [False, True])
def test_same_seed_same_model_other_seed_other_model(topics, item_bias) -> None:
    ds, emb = topics
    a = _model(emb, epochs=2, item_bias=item_bias).fit(ds)
    b = _model(emb, epochs=2, item_bias=item_bias).fit(ds)
    c = _model(emb, epochs=2, item_bias=item_bias, random_state=1).fit(ds)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    assert not np.array_equal(a.item_factors_, c.item_factors_)
    if item_bias:  # the biases too
        np.testing.assert_array_equal(a.item_bias_, b.item_bias_)
        assert not np.array_equal(a.item_bias_, c.item_bias_)


def test_two_threads_are_deterministic_too(topics) -> None:
    ds, emb = topics
    a = _model(emb, epochs=2, num_threads=2).fit(ds)
    b = _model(emb, epochs=2, num_threads=2).fit(ds)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)


@pytest.mark.parametrize("threads", [1, 2])
def test_repeated_fits_are_identical_wherever_their_buffers_land(threads) -> None:
    # Compiled with contracted multiply-adds, the AVX-512 training loops fused the products of
    # their vector body and not those of the alignment peel: a fit's rounding followed the
    # addresses of its buffers, and 12 fits of this problem with one seed gave 2-5 models.
    ds = semrec.datasets.synthetic(120, 150, 2000, random_state=0)
    rng = np.random.default_rng(1)
    topic = ds.items["topic"].to_numpy()
    emb = rng.standard_normal((topic.max() + 1, 16))[topic] + 0.3 * rng.standard_normal((150, 16))
    params = dict(hidden=32, factors=8, epochs=2, negatives=16, random_state=0, averaging=0.0,
                  num_threads=threads, show_progress=False)  # fmt: skip
    held, factors = [], set()
    for _ in range(12):
        held.append(np.empty(int(rng.integers(1, 5000)), np.float32))  # moves the allocator
        model = semrec.TextCF(emb.astype(np.float32), **params).fit(ds.interactions[::-1])
        factors.add(model.user_factors_.tobytes())
    assert len(factors) == 1


def test_fit_leaves_the_users_torch_generator_alone(topics) -> None:
    # torch::nn::Linear draws its first weights from torch's global generator (the user's
    # torch.manual_seed); TextCF overwrites them with its own, so it must not consume the draws.
    import torch

    ds, emb = topics
    torch.manual_seed(5)
    expected = torch.rand(4)
    torch.manual_seed(5)
    _model(emb, epochs=1, item_bias=True).fit(ds)
    np.testing.assert_array_equal(torch.rand(4).numpy(), expected.numpy())


# -- real time --------------------------------------------------------------------------------
@pytest.mark.parametrize("layers", [0, 2])
def test_fold_in_of_a_training_users_history_gives_its_fitted_vector(topics, layers) -> None:
    ds, emb = topics
    model = _model(emb, epochs=2, layers=layers).fit(ds)
    users = np.array([0, 5, 17, 299])
    got = model.fold_in(ds.interactions[users])
    np.testing.assert_allclose(got, model.user_factors_[users], atol=2e-5)
    # Without propagation it is exactly normalise(MLP(weighted mean of the history)).
    if layers == 0:
        x = ds.interactions[users].toarray().astype(np.float64)
        x = (x @ emb) / x.sum(axis=1, keepdims=True)
        want = network.normalised_rows(network.mlp(model.weights_, x, 0.01))
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_fold_in_stores_new_users_and_update_equals_fold_in(topics) -> None:
    ds, emb = topics
    model = _model(emb, epochs=2, layers=2).fit(ds)
    n = model.n_users_
    history = sp.csr_array(np.eye(200, dtype=np.float32)[[3, 40]].sum(axis=0, keepdims=True))
    v = model.fold_in(history, users=[n])
    assert model.n_users_ == n + 1
    np.testing.assert_array_equal(model.user_factors_[n], v[0])
    ids, _ = model.recommend(n, k=5)
    assert not {3, 40} & set(ids.tolist())
    after = model.update(n, 7, weight=2.0)
    changed = history.toarray()
    changed[0, 7] = 2.0
    np.testing.assert_allclose(after, model.fold_in(sp.csr_array(changed))[0], atol=1e-6)
    # A repeated interaction changes the weights, not the graph.
    again = model.update(n, 7, weight=1.0)
    changed[0, 7] = 3.0
    np.testing.assert_allclose(again, model.fold_in(sp.csr_array(changed))[0], atol=1e-6)
    assert model.interactions_[[n]].toarray()[0, 7] == 3.0
    new = model.update(n + 1, 9)  # a brand-new user
    assert model.n_users_ == n + 2
    np.testing.assert_allclose(new, model.fold_in(history[[0]] * 0 + _one_hot(9))[0], atol=1e-6)


@pytest.mark.parametrize("layers", [0, 2])
def test_a_long_sequence_of_verbs_equals_a_numpy_replay_and_fold_in_of_each_history(
    topics, layers, tmp_path
) -> None:
    """update / fold_in / add_items change one user's row at a time: after a long random
    sequence, interactions_ equals a NumPy replay of the changes, every user's vector equals
    fold_in of the whole history, and recommend never returns a seen item (0-weight ones too);
    a pickle and a save/load keep all of it."""
    ds, emb = topics
    model = _model(emb, epochs=1, layers=layers).fit(ds)
    start = ds.interactions.toarray()
    dense, seen = start.astype(np.float32), start != 0
    rng = np.random.default_rng(3)
    for step in range(300):
        n_users, n_items = dense.shape
        op = rng.integers(0, 10)
        if op < 7 or step < 3:  # a click (on a new user now and then)
            u, i = int(rng.integers(0, n_users + 1)), int(rng.integers(0, n_items))
            w = float(rng.choice([0.0, 1.0, 2.5]))
            if u == n_users:
                dense = np.vstack([dense, np.zeros((1, n_items), np.float32)])
                seen = np.vstack([seen, np.zeros((1, n_items), bool)])
            model.update(u, i, w)
            dense[u, i] += np.float32(w)
            seen[u, i] = True
        elif op < 9:  # a history replaced or a new user stored
            u = int(rng.choice([rng.integers(0, n_users), n_users]))
            row = (rng.random(n_items) < 0.05) * rng.integers(0, 3, n_items).astype(np.float32)
            if u == n_users:
                dense, seen = np.vstack([dense, row[None]]), np.vstack([seen, row[None] != 0])
            dense[u], seen[u] = row, row != 0
            model.fold_in(sp.csr_array(row[None]), users=[u])
        else:
            model.add_items(emb[int(rng.integers(0, 200))][None] + 0.1)
            dense = np.hstack([dense, np.zeros((n_users, 1), np.float32)])
            seen = np.hstack([seen, np.zeros((n_users, 1), bool)])
    for m in (model, pickle.loads(pickle.dumps(model))):
        np.testing.assert_array_equal(m.interactions_.toarray(), dense)
        view, pattern = m.interactions_, np.zeros(dense.shape, dtype=bool)
        pattern[np.repeat(np.arange(view.shape[0]), np.diff(view.indptr)), view.indices] = True
        np.testing.assert_array_equal(pattern, seen)  # stored zeros included
        want = m.fold_in(sp.csr_array(dense))
        np.testing.assert_allclose(m.user_factors_, want, atol=2e-5)
        users = np.arange(0, dense.shape[0], 7)
        ids, _ = m.recommend(users, k=20)
        assert not seen[users[:, None], np.maximum(ids, 0)][ids >= 0].any()
    model.save(tmp_path / "m")
    loaded = semrec.TextCF.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.interactions_.toarray(), dense)
    np.testing.assert_array_equal(loaded.update(3, 5), model.update(3, 5))


@pytest.mark.parametrize("layers", [0, 2])
def test_a_click_or_a_new_user_allocates_o_of_the_row_not_of_all_interactions(layers) -> None:
    """A click, an explanation and a new user read and copy that user's row only: not the
    whole seen matrix (a fancy-indexed row, an insert into every entry, a re-sort) nor every
    user's factors and state (a copy per new user)."""
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((200, 16)).astype(np.float32)
    clicks = sp.random_array((20_000, 200), density=0.05, format="csr", rng=1, dtype=np.float32)
    model = semrec.TextCF(
        emb, hidden=8, factors=4, layers=layers, epochs=1, negatives=4, batch_size=8192,
        random_state=0, show_progress=False,
    ).fit(clicks)  # fmt: skip
    row = sp.csr_array(np.eye(1, 200, 7, dtype=np.float32))
    model.update(0, 1)
    model.explain(0, 1)
    model.fold_in(row, users=[model.n_users_])  # the first new user makes spare rows
    tracemalloc.start()
    try:
        model.update(5, 199)  # a new item for the user
        model.update(5, 199)  # the same item again
        model.explain(5, 3)
        model.update(model.n_users_, 3)  # a new user
        model.fold_in(row, users=[model.n_users_])
        model.fold_in(row, users=[9])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The seen matrix's indices alone are 4 bytes per interaction, the user factors 16 a user
    # (a fold-in reads the items' side in float64: 200 items, 25 kB).
    assert peak < min(clicks.nnz * 4, model.n_users_ * 16) / 4, peak
    assert model.interactions_[[5]].toarray()[0, 199] == 2.0


def _one_hot(i: int) -> sp.csr_array:
    row = np.zeros((1, 200), dtype=np.float32)
    row[0, i] = 1.0
    return sp.csr_array(row)


def test_cold_and_added_items_get_finite_scores(topics) -> None:
    ds, emb = topics
    keep = np.ones(200, dtype=np.float32)
    keep[[10, 11]] = 0  # two items nobody interacted with
    m = sp.csr_array(ds.interactions @ sp.diags_array(keep))
    m.eliminate_zeros()
    model = _model(emb, epochs=2, layers=2).fit(m)
    scores = model.score(np.arange(20), [10, 11])
    assert np.isfinite(scores).all()
    ids = model.add_items(emb[[10, 11]])
    assert ids.tolist() == [200, 201]
    # An item without interactions is normalise(MLP(e)) whether it was there at fit or added.
    np.testing.assert_allclose(model.item_factors_[200:], model.item_factors_[[10, 11]], atol=1e-6)
    ids, scores = model.recommend(np.arange(5), k=3, items=[200, 201])
    assert np.isfinite(scores[:, :2]).all() and set(ids[:, :2].ravel()) <= {200, 201}


def test_explain_splits_the_score_exactly(topics) -> None:
    ds, emb = topics
    for layers, net in ((2, "mlp"), (0, "linear")):
        model = _model(emb, epochs=2, layers=layers, network=net).fit(ds)
        why = model.explain(3, 50, k=4)
        assert why.attrs["score"] == pytest.approx(float(model.score(3, [50])[0]))
        assert len(why) == 4
        assert abs(why.attrs["explained"] + why.attrs["rest"] - why.attrs["score"]) < 1e-12
        # Exact split: the rest is only the network's offset, far from the whole score.
        if net == "linear":  # closed form: (w_j / W) (W1 e_j) . v_i / ||h||, rest b1 . v_i / ||h||
            row = ds.interactions[[3]]
            w1, b1 = model.weights_["l1.weight"], model.weights_["l1.bias"]
            x = row.data @ emb[row.indices] / row.data.sum()
            h = w1 @ x + b1
            v = model.item_factors_[50]
            parts = row.data / row.data.sum() * (emb[row.indices] @ w1.T @ v) / np.linalg.norm(h)
            assert why.attrs["rest"] == pytest.approx(b1 @ v / np.linalg.norm(h), abs=1e-5)
            top = np.sort(parts)[::-1][:4]
            np.testing.assert_allclose(why["contribution"], top, atol=1e-5)


# -- persistence ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options",
    [
        dict(layers=2),
        dict(layers=0),
        dict(layers=1, user_vectors="items", popularity=0.5, observed_popularity=0.5),
    ],
)  # layers 0: the graph's arrays are empty; the last: item-mean users' sums, the ridge fit
def test_save_load_round_trip(topics, tmp_path, options) -> None:
    ds, emb = topics
    model = _model(emb, epochs=2, **options).fit(ds)
    model.add_items(emb[:1])
    model.update(1, 2)
    path = tmp_path / "textcf.npz"
    model.save(path)
    loaded = semrec.TextCF.load(path)
    assert repr(loaded) == repr(model)
    users = np.arange(50)
    for got, want in zip(loaded.recommend(users, k=7), model.recommend(users, k=7), strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(loaded.update(4, 9), model.update(4, 9))
    history = sp.csr_array(ds.interactions[[8]])
    history.resize((1, 201))
    np.testing.assert_array_equal(loaded.fold_in(history), model.fold_in(history))
    assert loaded.history_ == model.history_
    if "popularity" in options:  # the ridge fit gives added items their bias after loading too
        assert model.item_bias_ is not None
        np.testing.assert_array_equal(loaded.add_items(emb[[5]]), model.add_items(emb[[5]]))
        np.testing.assert_array_equal(loaded.item_bias_, model.item_bias_)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(semrec.FormatError):
        semrec.TextCF.load(path)


@pytest.mark.parametrize(
    ("fitted", "changed"),
    [
        (dict(item_bias=True), dict(tau=1.0)),  # the biased rows [v_i, tau b(i)] of fit's tau
        (dict(popularity=1.0), dict(popularity=0.0)),  # load skipped the saved biases
        (dict(popularity=1.0), dict(popularity_penalty=2.0)),  # the saved prior is of 10.0
        (dict(user_vectors="items"), dict(user_vectors="network")),  # update vs fold_in
        (dict(cold_neighbours=3), dict(cold_neighbours=5)),  # load rebuilt the map with 5
        (dict(cold_penalty=3.0), dict(cold_penalty=5.0)),
        (dict(), dict(negative_slope=0.2)),  # the network the vectors came from
    ],
)
def test_a_hyperparameter_changed_after_fit_is_refused_by_save_and_verbs(
    topics, tmp_path, fitted, changed
) -> None:
    """The file could not honour it (the loaded model scored otherwise) and the model in memory
    would mix the fitted value, in its arrays, with the new one: save and every verb raise a
    ValueError naming it (as ALS and ItemKNN do), the good file stays; set back, all is well."""
    ds, emb = topics
    model = _model(emb, epochs=1, **fitted).fit(ds)
    model.recommend(0)  # builds the cached rows a changed tau used to leave stale
    path = tmp_path / "m.npz"
    model.save(path)
    before = path.read_bytes()
    ((name, value),) = changed.items()
    was = getattr(model, name)
    setattr(model, name, value)
    match = rf"^{name}={value!r} does not describe the fitted TextCF \(fitted with {name}={was!r}"
    with pytest.raises(ValueError, match=match) as refused:
        model.save(path)
    assert "changed after fit? Refit the model, or set it back" in str(refused.value)
    if name in ("popularity", "popularity_penalty", "cold_neighbours", "cold_penalty"):
        assert f"with_options({name}={value!r})" in str(refused.value)
    assert path.read_bytes() == before
    history = sp.csr_array(ds.interactions[[3]])
    verbs = {
        "recommend": lambda: model.recommend(0),
        "score": lambda: model.score(0, [1]),
        "similar_items": lambda: model.similar_items(2),
        "update": lambda: model.update(0, 1),
        "fold_in": lambda: model.fold_in(history),
        "add_items": lambda: model.add_items(emb[:1]),
        "explain": lambda: model.explain(0, 1),
    }
    for call in verbs.values():  # a failure's traceback names the verb's line above
        with pytest.raises(ValueError, match=match):
            call()
    assert model.n_items_ == emb.shape[0] and model.interactions_[0, 1] == ds.interactions[0, 1]
    setattr(model, name, was)  # set back: the fitted model, saved and loaded as it scores
    model.update(0, 1)
    model.save(path)
    loaded = semrec.TextCF.load(path)
    users, items = np.arange(ds.interactions.shape[0]), np.arange(emb.shape[0])
    np.testing.assert_array_equal(loaded.score(users, items), model.score(users, items))


def test_settings_the_fitted_state_does_not_depend_on_may_change_after_fit(topics, tmp_path):
    """tau without item biases, user_text_weight without user texts, the training settings:
    nothing fitted holds them, so the file honours the new values (they are saved as set)."""
    ds, emb = topics
    model = _model(emb, epochs=1).fit(ds)
    changed = dict(tau=1.0, user_text_weight=3.0, epochs=5, learning_rate=0.1, num_threads=2)
    for name, value in changed.items():
        setattr(model, name, value)
    model.update(0, 1)
    model.save(tmp_path / "m.npz")
    loaded = semrec.TextCF.load(tmp_path / "m.npz")
    assert {name: getattr(loaded, name) for name in changed} == changed
    users, items = np.arange(ds.interactions.shape[0]), np.arange(emb.shape[0])
    np.testing.assert_array_equal(loaded.score(users, items), model.score(users, items))


def test_with_options_copies_are_saved_and_load_back_scoring_alike(topics, tmp_path) -> None:
    """with_options is the way to change the after-training options: its copy is fitted with
    them (it equals a fit with them), saves, and loads back scoring and adding items alike;
    a training hyperparameter changed on the original is still refused by it."""
    ds, emb = topics
    base = _model(emb, epochs=1, item_bias=True, popularity=1.0, cold_neighbours=3).fit(ds)
    options = dict(popularity=0.3, popularity_penalty=2.0, cold_neighbours=5)
    copy = base.with_options(**options)
    reference = _model(emb, epochs=1, item_bias=True, **options).fit(ds)
    path = tmp_path / "m.npz"
    copy.save(path)
    loaded = semrec.TextCF.load(path)
    assert repr(loaded) == repr(copy)
    new = emb[[4, 9]] + 0.5 * emb[[7, 1]]  # texts unlike any item: the cold map's business
    for model in (copy, loaded, reference):
        model.add_items(new)
        model.update(0, 200)
    np.testing.assert_array_equal(loaded.item_factors_, copy.item_factors_)
    np.testing.assert_allclose(copy.item_factors_, reference.item_factors_, atol=1e-5)
    np.testing.assert_allclose(copy.item_bias_, reference.item_bias_, atol=1e-5)
    users, items = np.arange(ds.interactions.shape[0]), np.arange(copy.n_items_)
    np.testing.assert_array_equal(loaded.score(users, items), copy.score(users, items))
    with pytest.raises(ValueError, match=r"^popularity=0.0 does not describe the fitted TextCF"):
        copy.popularity = 0.0
        copy.save(path)
    base.tau = 1.0
    with pytest.raises(ValueError, match=r"^tau=1.0 does not describe the fitted TextCF"):
        base.with_options(popularity=0.5)


def test_a_loaded_model_refuses_texts_until_its_own_encoder_is_given_again(topics, tmp_path):
    ds, emb = topics

    class Topics:  # an encoder of one's own, of the embeddings' width
        def encode(self, texts, **kwargs):
            return np.tile(emb[:1], (len(texts), 1))

    model = _model(emb, epochs=1, encoder=Topics()).fit(ds)
    model.save(tmp_path / "m.npz")
    loaded = semrec.TextCF.load(tmp_path / "m.npz")
    with pytest.raises(ValueError, match=r"encoded by a Topics of your own.*model.encoder ="):
        loaded.add_items(["a new film"])
    loaded.encoder = Topics()
    np.testing.assert_array_equal(loaded.add_items(["a new film"]), model.add_items(["a film"]))


def test_load_rejects_another_version(topics, tmp_path) -> None:
    ds, emb = topics
    model = _model(emb, epochs=1).fit(ds)
    path = tmp_path / "m.npz"
    model.save(path)
    from semrec import _persist

    saved = _persist.read(path, "semrec.TextCF", 2)
    meta = {k: v for k, v in saved.meta.items() if k != "checksums"} | {"version": 1}
    _persist.write(path, meta, dict(saved.arrays))
    with pytest.raises(semrec.FormatError, match="version"):
        semrec.TextCF.load(path)


# -- bad input --------------------------------------------------------------------------------
def test_bad_input_raises_clear_errors(topics) -> None:
    ds, emb = topics
    m = ds.interactions
    with pytest.raises(ValueError, match=r"no non-zero entries|non-empty"):
        _model(emb).fit(sp.csr_array(m.shape, dtype=np.float32))
    with pytest.raises(ValueError, match="item_embeddings has 199 rows"):
        _model(emb[:-1]).fit(m)
    bad = emb.copy()
    bad[4, 2] = np.nan
    with pytest.raises(ValueError, match="item_embeddings contains NaN"):
        _model(bad).fit(m)
    nan_m = sp.csr_array(m.copy())
    nan_m.data[3] = np.nan
    with pytest.raises(ValueError, match="interactions contains NaN"):
        _model(emb).fit(nan_m)
    neg = sp.csr_array(m.copy())
    neg.data[3] = -1
    with pytest.raises(ValueError, match="negative"):
        _model(emb).fit(neg)
    with pytest.raises(TypeError, match=r"interactions must be a scipy\.sparse"):
        _model(emb).fit(m.toarray())
    with pytest.raises(TypeError, match="float32"):
        _model(emb.astype(np.float64)).fit(m)
    for kw, err, word in (
        ({"tau": 0}, ValueError, "tau"),
        ({"network": "deep"}, ValueError, "network"),
        ({"layers": -1}, ValueError, "layers"),
        ({"negatives": 0}, ValueError, "negatives"),
        ({"learning_rate": float("nan")}, ValueError, "learning_rate"),
        ({"epochs": 1.5}, TypeError, "epochs"),
        ({"averaging": 1.0}, ValueError, "averaging"),
        ({"averaging": "yes"}, TypeError, "averaging"),
    ):
        with pytest.raises(err, match=word):
            _model(emb, **kw).fit(m)
    with pytest.raises(ValueError, match="validation must have the shape"):
        _model(emb).fit(m, validation=m[:10])
    with pytest.raises(semrec.NotFittedError, match="fit"):
        _model(emb).recommend(0)
    model = _model(emb, epochs=1).fit(m)
    with pytest.raises(ValueError, match="dimension 32"):
        model.add_items(np.ones((1, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="history must have shape"):
        model.fold_in(m[:, :10])
    with pytest.raises(ValueError, match="weight"):
        model.update(0, 1, weight=float("nan"))
    with pytest.raises(IndexError, match="item"):
        model.update(0, 500)
    with pytest.raises(ValueError, match="weight must be >= 0"):
        model.update(0, 1, weight=-1.0)
    with pytest.raises(IndexError, match="users must be distinct existing ids"):
        model.fold_in(m[[0]], users=[model.n_users_ + 3])
    with pytest.raises(ValueError, match="user_embeddings must have shape"):
        model.fold_in(m[[0]], user_embeddings=np.ones((2, 32), dtype=np.float32))


@pytest.mark.slow
def test_an_epoch_reports_the_positives_done_between_batches() -> None:
    # The bar counts positives batch by batch: at a million interactions an epoch takes
    # minutes, and a bar of epochs stood at 0/1 all along (a scale audit, session 44).
    m, emb, rng = _problem()
    s = small_settings(batch_size=4)
    weights = network.initial_weights(emb.shape[1], s.hidden, s.factors, rng)
    trainer = training.make_trainer(s, _inputs(m, emb), m, weights)
    told: list[int] = []
    loss = trainer.epoch(0, told.append)
    assert told and told[0] == 4  # the first batch is told at once, later ones every 100 ms
    assert told == sorted(told) and told[-1] <= m.nnz
    same = training.make_trainer(s, _inputs(m, emb), m, weights)
    assert same.epoch(0) == loss  # the report changes nothing


def test_ctrl_c_stops_training_between_batches() -> None:
    out = ctrl_c(
        """
        import numpy as np, semrec, torch
        from semrec.datasets import synthetic
        ds = synthetic(2000, 3000, 200000, with_text=False, random_state=0)
        emb = np.random.default_rng(0).standard_normal((3000, 384)).astype(np.float32)
        threads = torch.get_num_threads()
        model = semrec.TextCF(emb, batch_size=256, epochs=50, num_threads=1, show_progress=False)
        """,
        "model.fit(ds)\n",  # uninterrupted: many minutes of training
        """
        print("unfitted", not hasattr(model, "user_factors_"), torch.get_num_threads() == threads)
        """,
        wait=3.0,
    )
    assert "interrupted" in out
    assert "unfitted True True" in out


@pytest.mark.parametrize(
    ("seed", "error"), [(1.5, TypeError), (True, TypeError), ("0", TypeError), (-1, ValueError)]
)
def test_bad_random_state_is_refused_naming_it(seed, error) -> None:
    m, emb, _ = _problem()
    with pytest.raises(error, match="random_state"):
        _model(emb, epochs=1, random_state=seed).fit(m)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"layers": 17}, "layers must be at most 16"),
        ({"layers": 2**40}, "layers must be at most 16"),
        ({"hidden": 2**40}, r"hidden=1099511627776 would need .* GiB"),
        ({"factors": 2**40}, r"factors=1099511627776 would need .* GiB"),
        ({"negatives": 2**40}, r"negatives=1099511627776 would need .* GiB"),
    ],
)
def test_absurd_sizes_are_refused_before_allocating(kw, match) -> None:
    m, emb, _ = _problem()
    with pytest.raises(ValueError, match=match):
        _model(emb, epochs=1, **kw).fit(m)


def test_batch_size_beyond_the_data_is_one_batch_of_all() -> None:
    m, emb, _ = _problem()
    huge = _model(emb, epochs=2, layers=0, batch_size=2**40).fit(m)
    exact = _model(emb, epochs=2, layers=0, batch_size=int(m.nnz)).fit(m)
    np.testing.assert_array_equal(huge.item_factors_, exact.item_factors_)
    assert huge.batch_size == 2**40  # the hyperparameter is kept as given


def test_validation_is_checked_as_a_validation_set() -> None:
    m, emb, _ = _problem()
    with pytest.raises(ValueError, match=r"validation must have the shape of interactions"):
        _model(emb, epochs=1).fit(m, validation=sp.csr_array((3, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"validation has no entries.*validation=None"):
        _model(emb, epochs=1).fit(m, validation=sp.csr_array(m.shape, dtype=np.float32))


def test_huge_embeddings_and_bad_encoder_are_refused() -> None:
    m, emb, _ = _problem()
    with pytest.raises(ValueError, match=r"item_embeddings has rows of norm up to .*rescale"):
        _model(np.full_like(emb, 1e38), epochs=1).fit(m)
    with pytest.raises(TypeError, match="encoder must be None"):
        _model(emb, epochs=1, encoder=3).fit(m)
    model = _model(emb, epochs=1).fit(m)
    with pytest.raises(ValueError, match="items has rows of norm"):
        model.add_items(np.full((1, emb.shape[1]), 1e38, dtype=np.float32))
    model.encoder = 3
    with pytest.raises(TypeError, match="encoder"):
        model.add_items("a new item")


def test_add_items_checks_the_encoders_rows_and_keeps_the_model_on_error() -> None:
    m, emb, _ = _problem()
    model = _model(emb, epochs=1, layers=2, encoder=PlantedEncoder(emb)).fit(m)
    texts = ["ab", "abc", "a"]
    # Texts go the embeddings' way: the same vectors, factors and scores as the encoder's rows.
    by_text, by_rows = model.add_items(texts), model.add_items(PlantedEncoder(emb).encode(texts))
    assert by_text.tolist() == [9, 10, 11] and by_rows.tolist() == [12, 13, 14]
    np.testing.assert_array_equal(model.item_embeddings_[by_text], emb[[2, 3, 1]])
    np.testing.assert_array_equal(model.item_factors_[by_text], model.item_factors_[by_rows])
    users = np.arange(m.shape[0])
    np.testing.assert_array_equal(model.score(users, by_text), model.score(users, by_rows))
    # A str is one text (as ContentRecommender), handed to the encoder in a list.
    model.encoder = PlantedEncoder(emb)
    assert model.add_items("abcd").tolist() == [15] and model.encoder.calls == [["abcd"]]
    np.testing.assert_array_equal(model.item_embeddings_[15], emb[4])
    n = model.n_items_
    bad = [
        *refused_encoder_answers(emb),
        (emb[0], ValueError, r"shape \(5,\) for 3 texts; it must give one row per text"),
        ("oops", TypeError, r"encoder.encode \(PlantedEncoder\) gave str: give numbers, one row"),
    ]
    for answer, error, match in bad:
        model.encoder = PlantedEncoder(emb, answer)
        with pytest.raises(error, match=match):
            model.add_items(texts)
        assert model.n_items_ == n and model.item_embeddings_.shape[0] == n
        assert model.graph_.item_layers.shape[1] == n and model.interactions_.shape[1] == n
    with pytest.raises(TypeError, match=r"items\[1\] is 3.0 \(float\), not a string"):
        model.add_items(["a", 3.0])
    assert model.n_items_ == n


# -- add_items grows the item index; validation shares the training id maps -----------------
def _brute_force(model: semrec.TextCF, users: np.ndarray) -> np.ndarray:
    """NumPy's float64 scores of every item (``+ tau * b(i)``), seen items -inf."""
    scores = model.user_factors_[users].astype(np.float64) @ model.item_factors_.T.astype(float)
    if model.item_bias_ is not None:
        scores += model.tau * model.item_bias_.astype(np.float64)
    rows = sp.csr_array(model.interactions_)[users]
    scores[np.repeat(np.arange(users.size), np.diff(rows.indptr)), rows.indices] = -np.inf
    return scores


def _assert_brute_force_top(model: semrec.TextCF, users: np.ndarray, k: int) -> np.ndarray:
    ids, scores = model.recommend(users, k=k)
    want = _brute_force(model, users)
    top = -np.sort(-want, axis=1)[:, :k]
    np.testing.assert_allclose(scores, top, rtol=0, atol=2e-6)  # the true top k (ties aside)
    got = np.take_along_axis(want, ids.astype(np.int64), axis=1)
    np.testing.assert_allclose(scores, got, rtol=0, atol=2e-6)  # their own scores, none seen
    return ids


@pytest.mark.parametrize("options", [{}, {"item_bias": True}, {"popularity": 0.5}])
@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_add_items_grows_the_item_index_and_recommends_as_a_brute_force(
    topics, kind, options
) -> None:
    if kind == "hnsw":
        pytest.importorskip("faiss", reason="faiss-cpu is not installed (pip install .[ann])")
    ds, emb = topics
    model = _model(emb, epochs=2, layers=0, **options).fit(ds)
    # ef_search above the item count: the graph proposes every item, so the search is exact.
    model.use_index(kind, **({"ef_search": 512} if kind == "hnsw" else {}))
    users = np.arange(12)
    best = model.recommend(users, k=1)[0][:, 0]
    before = model.item_index_
    # Copies of users' best items (layers=0: an item's vector and bias are functions of its
    # text, so a copy scores as its original, to float rounding): they must be recommended.
    first = model.add_items(emb[best[:2]])
    second = model.add_items(emb[best[2:]])  # two additions before the next search
    ids = _assert_brute_force_top(model, users, 10)
    assert model.item_index_ is before, "add_items indexes the new rows only"
    assert len(before) == 200 + users.size
    copies = np.concatenate([first, second])
    assert all(c in row for c, row in zip(copies, ids, strict=True))
    model.add_items(emb[:3])  # and again after a search
    _assert_brute_force_top(model, users, 10)
    assert model.item_index_ is before and len(before) == 203 + users.size


def test_validation_dataset_must_share_the_training_id_maps() -> None:
    m = sp.csr_array(np.array([[1, 1, 0], [0, 1, 1], [1, 0, 1]], dtype=np.float32))
    emb = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    train = semrec.datasets.Dataset(m, user_ids=[0, 1, 2], item_ids=[0, 1, 2])
    model = _model(emb, hidden=8, factors=2, epochs=2, layers=0, negatives=2)
    others = {  # the same shape, other users or items: row u / column i is not the same one
        "items": semrec.datasets.Dataset(m, user_ids=[0, 1, 2], item_ids=[100, 101, 102]),
        "users": semrec.datasets.Dataset(m, user_ids=[7, 8, 9], item_ids=[0, 1, 2]),
        "order": semrec.datasets.Dataset(m, user_ids=[0, 1, 2], item_ids=[2, 1, 0]),
    }
    fitted = _model(emb, hidden=8, factors=2, epochs=1, layers=0, negatives=2).fit(train)
    for valid in others.values():
        with pytest.raises(ValueError) as evaluated:
            semrec.evaluate(fitted, train, valid)
        expected = str(evaluated.value).replace("train and test", "interactions and validation")
        with pytest.raises(ValueError) as refused:
            model.fit(train, validation=valid)
        assert str(refused.value) == expected
        assert "interactions and validation must share id maps" in expected
    assert not hasattr(model, "user_factors_")  # refused before training
    # The same id maps (a copy of them, as another Dataset of the same ids) are accepted.
    same = semrec.datasets.Dataset(m, user_ids=[0, 1, 2], item_ids=[0, 1, 2])
    assert model.fit(train, validation=same).history_[0]["ndcg"] is not None


def test_item_embeddings_of_tiny_norm_are_refused_normal_ones_kept_as_given() -> None:
    m, emb, _ = _problem()
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    settings = dict(hidden=8, factors=4, epochs=1, negatives=2, random_state=0,
                    show_progress=False)  # fmt: skip
    # x1e-6 the network sees only its biases: every user's scores within ~1e-7 (chance hit@10).
    tiny = emb * np.float32(1e-6)
    top = np.linalg.norm(tiny.astype(np.float64), axis=1).max()
    with pytest.raises(ValueError, match=rf"^item_embeddings has rows of norm at most {top:.3g}; "
                       r".*Normalise the rows"):  # fmt: skip
        semrec.TextCF(tiny, **settings).fit(m)
    # Accepted: unit rows, rows of norm 0.01, and one row of norm >= 1e-3 among zero ones.
    few = np.zeros_like(emb)
    few[0] = emb[0] * np.float32(2e-3)
    for ok in (emb, emb * np.float32(0.01), few):
        model = semrec.TextCF(ok, **settings).fit(m)
        assert model.item_embeddings_ is ok or np.array_equal(model.item_embeddings_, ok)
    users = np.zeros((m.shape[0], emb.shape[1]), np.float32)  # user text may be absent (zero)
    semrec.TextCF(emb, user_embeddings=users, user_text_weight=0.5, **settings).fit(m)
