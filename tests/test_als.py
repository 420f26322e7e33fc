"""ALS against an independent dense NumPy implementation of the normal equations."""

from __future__ import annotations

import itertools
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import semrec
from semrec import ALS
from semrec import _persist as persist


def random_interactions(rng, n_users=40, n_items=30, density=0.2, explicit=False):
    mask = rng.random((n_users, n_items)) < density
    mask[np.arange(n_users), rng.integers(0, n_items, n_users)] = True  # no empty user
    values = rng.integers(1, 6, (n_users, n_items)).astype(np.float32)
    return sp.csr_array(np.where(mask, values, 0).astype(np.float32))


def implicit_half_step(r: np.ndarray, other: np.ndarray, reg: float, alpha: float) -> np.ndarray:
    """Exact Hu-Koren-Volinsky update of every row of one side, in float64."""
    y = other.astype(np.float64)
    out = np.zeros((r.shape[0], y.shape[1]))
    for u in range(r.shape[0]):
        c = 1.0 + alpha * r[u]
        p = (r[u] > 0).astype(np.float64)
        a = y.T @ (c[:, None] * y) + reg * np.eye(y.shape[1])
        out[u] = np.linalg.solve(a, y.T @ (c * p))
    return out


def explicit_half_step(r: np.ndarray, other: np.ndarray, reg: float) -> np.ndarray:
    y = other.astype(np.float64)
    out = np.zeros((r.shape[0], y.shape[1]))
    for u in range(r.shape[0]):
        seen = r[u] != 0
        a = y[seen].T @ y[seen] + reg * np.eye(y.shape[1])
        out[u] = np.linalg.solve(a, y[seen].T @ r[u, seen])
    return out


def implicit_loss(r: np.ndarray, u: np.ndarray, v: np.ndarray, reg: float, alpha: float) -> float:
    s = u.astype(np.float64) @ v.astype(np.float64).T
    c = 1.0 + alpha * r
    p = (r > 0).astype(np.float64)
    return float((c * (p - s) ** 2).sum() + reg * ((u**2).sum() + (v**2).sum()))


def make(**kw):
    kw.setdefault("show_progress", False)
    kw.setdefault("random_state", 7)
    return ALS(**kw)


# ---------------------------------------------------------------------------------------------
# Solvers against the reference


@pytest.mark.parametrize("feedback", ["implicit", "explicit"])
def test_cholesky_half_steps_match_dense_reference(rng, feedback):
    r = random_interactions(rng)
    dense = r.toarray().astype(np.float64)
    kw = {
        "factors": 6,
        "regularization": 0.5,
        "alpha": 3.0,
        "solver": "cholesky",
        "feedback": feedback,
    }
    one = make(iterations=1, **kw).fit(r)
    two = make(iterations=2, **kw).fit(r)
    if feedback == "implicit":
        users = implicit_half_step(dense, one.item_factors_, 0.5, 3.0)
        items = implicit_half_step(dense.T, users.astype(np.float32), 0.5, 3.0)
    else:
        users = explicit_half_step(dense, one.item_factors_, 0.5)
        items = explicit_half_step(dense.T, users.astype(np.float32), 0.5)
    np.testing.assert_allclose(two.user_factors_, users, rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose(two.item_factors_, items, rtol=2e-3, atol=2e-4)


def test_cg_converges_to_cholesky_as_cg_steps_grows(rng):
    r = random_interactions(rng)
    kw = {"factors": 8, "regularization": 0.5, "alpha": 2.0, "iterations": 2}
    exact = make(solver="cholesky", **kw).fit(r).user_factors_
    errors = []
    for steps in (1, 2, 4, 8, 16):
        approx = make(solver="cg", cg_steps=steps, **kw).fit(r).user_factors_
        errors.append(np.abs(approx - exact).max())
    assert all(b <= a * 1.01 + 1e-6 for a, b in itertools.pairwise(errors)), errors
    assert errors[0] > 10 * errors[-1]
    assert errors[-1] < 1e-3 * np.abs(exact).max()


@pytest.mark.parametrize("solver", ["cg", "cholesky"])
def test_training_loss_decreases_and_matches_reference(rng, solver):
    r = random_interactions(rng)
    losses = []
    model = make(
        factors=5,
        regularization=0.1,
        alpha=2.0,
        iterations=8,
        solver=solver,
        calculate_training_loss=True,
    )
    model.fit(r, callback=lambda it, sec, loss: losses.append(loss))
    assert len(losses) == 8
    assert all(b <= a * (1 + 1e-6) for a, b in itertools.pairwise(losses)), losses
    ref = implicit_loss(r.toarray(), model.user_factors_, model.item_factors_, 0.1, 2.0)
    assert losses[-1] == pytest.approx(ref, rel=1e-4)


def test_log_confidence(rng):
    r = random_interactions(rng)
    kw = {"factors": 4, "regularization": 0.5, "solver": "cholesky"}
    one = make(iterations=1, confidence="log", alpha=2.0, epsilon=0.5, **kw).fit(r)
    two = make(iterations=2, confidence="log", alpha=2.0, epsilon=0.5, **kw).fit(r)
    # log confidence c = 1 + 2 log1p(r / 0.5) is linear confidence with alpha=1 on these values
    weights = 2.0 * np.log1p(r.toarray() / 0.5)
    users = implicit_half_step(weights, one.item_factors_, 0.5, 1.0)
    np.testing.assert_allclose(two.user_factors_, users, rtol=2e-3, atol=2e-4)


# ---------------------------------------------------------------------------------------------
# Quality


def test_recovers_planted_low_rank_ratings():
    gen = np.random.default_rng(3)
    truth = gen.standard_normal((120, 3)) @ gen.standard_normal((3, 90))
    observed = gen.random(truth.shape) < 0.5
    r = sp.csr_array(np.where(observed, truth, 0).astype(np.float32))
    model = make(
        factors=3, feedback="explicit", regularization=1e-3, iterations=40, solver="cholesky"
    ).fit(r)
    users, items = np.nonzero(~observed)
    error = model.predict(users, items) - truth[users, items]
    assert np.sqrt(np.mean(error**2)) < 0.05 * truth.std()


def test_implicit_recovers_planted_blocks():
    gen = np.random.default_rng(4)
    n_users, n_items, groups = 90, 60, 3
    user_group = np.arange(n_users) % groups
    item_group = np.arange(n_items) % groups
    same = user_group[:, None] == item_group[None, :]
    clicks = same & (gen.random(same.shape) < 0.5)
    model = make(factors=3, regularization=0.1, alpha=10.0, iterations=10)
    model.fit(sp.csr_array(clicks.astype(np.float32)))
    ids, _ = model.recommend(np.arange(n_users), k=5)
    assert (item_group[ids] == user_group[:, None]).mean() > 0.95


def test_explicit_beats_global_mean_on_movielens(movielens_dir: Path):
    raw = np.loadtxt(movielens_dir / "u.data", dtype=np.int64)
    users, items, ratings = raw[:, 0] - 1, raw[:, 1] - 1, raw[:, 2].astype(np.float32)
    shape = (users.max() + 1, items.max() + 1)
    test = np.random.default_rng(0).random(len(raw)) < 0.2
    train = sp.csr_array((ratings[~test], (users[~test], items[~test])), shape=shape)
    model = make(
        factors=16,
        feedback="explicit",
        biases=True,
        regularization=8.0,
        iterations=10,
        solver="cholesky",
    ).fit(train)
    rmse = np.sqrt(np.mean((model.predict(users[test], items[test]) - ratings[test]) ** 2))
    baseline = np.sqrt(np.mean((ratings[~test].mean() - ratings[test]) ** 2))
    assert rmse < 0.9 * baseline, (rmse, baseline)


# ---------------------------------------------------------------------------------------------
# Verbs


def test_recommend_matches_numpy_and_excludes_seen(rng):
    r = random_interactions(rng)
    model = make(factors=4).fit(r)
    scores = model.user_factors_ @ model.item_factors_.T
    scores[r.toarray() > 0] = -np.inf
    ids, got = model.recommend(np.arange(r.shape[0]), k=5)
    expected = np.take_along_axis(scores, ids.astype(np.int64), axis=1)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[:, 0], scores.max(axis=1), rtol=1e-5, atol=1e-6)
    single_ids, _ = model.recommend(3, k=5)
    assert single_ids.tolist() == ids[3].tolist()
    allowed = np.array([0, 5, 9])
    cand_ids, _ = model.recommend(0, k=3, items=allowed, exclude_seen=False)
    assert set(cand_ids[cand_ids >= 0].tolist()) <= set(allowed.tolist())


def test_explicit_biases_scores_are_predicted_ratings(rng):
    r = random_interactions(rng, explicit=True)
    model = make(factors=3, feedback="explicit", biases=True, regularization=1.0).fit(r)
    assert model.user_biases_.shape == (r.shape[0],)
    dense = (
        model.user_factors_ @ model.item_factors_.T
        + model.user_biases_[:, None]
        + model.item_biases_[None, :]
        + model.global_mean_
    )
    np.testing.assert_allclose(model.score(2, np.arange(r.shape[1])), dense[2], rtol=1e-5)
    np.testing.assert_allclose(model.predict([1, 2], [3, 4]), dense[[1, 2], [3, 4]], rtol=1e-5)
    _, scores = model.recommend(2, k=3, exclude_seen=False)
    np.testing.assert_allclose(scores, np.sort(dense[2])[::-1][:3], rtol=1e-5)


def test_similar_items_and_users_cosine(rng):
    model = make(factors=4).fit(random_interactions(rng))
    v = model.item_factors_ / np.linalg.norm(model.item_factors_, axis=1, keepdims=True)
    sims = v @ v.T
    np.fill_diagonal(sims, -np.inf)
    ids, scores = model.similar_items(0, k=3)
    assert 0 not in ids.tolist()
    np.testing.assert_allclose(scores, np.sort(sims[0])[::-1][:3], rtol=1e-5)
    uids, _ = model.similar_users([1, 2], k=2)
    assert uids.shape == (2, 2) and 1 not in uids[0].tolist()


def test_fold_in_is_one_more_exact_half_step(rng):
    r = random_interactions(rng)
    model = make(factors=5, regularization=0.3, alpha=4.0, solver="cg").fit(r)
    rows = np.array([0, 7, 11])
    folded = model.fold_in(r[rows])
    ref = implicit_half_step(r.toarray()[rows], model.item_factors_, 0.3, 4.0)
    np.testing.assert_allclose(folded, ref, rtol=2e-3, atol=2e-4)


def test_update_reacts_at_once_and_new_users(rng):
    r = random_interactions(rng)
    model = make(factors=5, regularization=0.3, alpha=4.0).fit(r)
    ids, _ = model.recommend(0, k=1)
    item = int(ids[0])
    factors = model.update(0, item, 2.0)
    assert item not in model.recommend(0, k=5)[0].tolist()  # now seen
    history = r.toarray()[0]
    history[item] += 2.0
    ref = implicit_half_step(history[None], model.item_factors_, 0.3, 4.0)[0]
    np.testing.assert_allclose(factors, ref, rtol=2e-3, atol=2e-4)
    n = model.n_users_
    model.update(n, 3)
    assert model.n_users_ == n + 1 and model.interactions_.shape[0] == n + 1
    assert model.recommend(n, k=2)[0].shape == (2,)
    with pytest.raises(IndexError, match="user"):
        model.update(n + 5, 3)


def test_update_equals_fold_in_of_the_changed_history(rng):
    r = random_interactions(rng)
    model = make(factors=5, regularization=0.3, alpha=4.0).fit(r)
    history = r.toarray()
    seen = np.flatnonzero(history[3])
    for item, weight in ((int(seen[0]), 1.5), (int(np.flatnonzero(history[3] == 0)[0]), 2.0)):
        got = model.update(3, item, weight)
        history[3, item] += weight
        want = model.fold_in(sp.csr_array(history[[3]]))[0]
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(model.user_factors_[3], want)
        ref = implicit_half_step(history[[3]], model.item_factors_, 0.3, 4.0)[0]
        np.testing.assert_allclose(got, ref, rtol=2e-3, atol=2e-4)
    # Taking a whole weight back leaves an interaction of weight 0: it carries nothing in the
    # solve, but the user did interact with the item, so it stays seen (issue 13).
    item = int(seen[0])
    got = model.update(3, item, -float(history[3, item]))
    history[3, item] = 0.0
    np.testing.assert_array_equal(got, model.fold_in(sp.csr_array(history[[3]]))[0])
    assert model.interactions_[[3]].toarray()[0, item] == 0
    assert model.interactions_.nnz == np.count_nonzero(history) + 1
    ids = model.recommend(3, k=r.shape[1])[0]
    assert item not in ids.tolist()
    with pytest.raises(ValueError, match=">= 0"):
        model.update(3, int(seen[1]), -100.0)
    with pytest.raises(ValueError, match="finite"):
        model.update(3, 0, float("nan"))


def test_exclude_seen_sees_an_update_at_once(rng):
    r = random_interactions(rng, n_users=100)
    model = make(factors=5, regularization=0.3, alpha=4.0).fit(r)
    users = np.arange(100)
    best = model.recommend(users, k=1)[0][:, 0]
    for u in (5, 60):
        model.update(u, int(best[u]))
    assert best[5] not in model.recommend(5, k=10)[0].tolist()  # few users: no merge
    batch = model.recommend(users, k=10)[0]  # many users: reads the merged matrix
    assert best[5] not in batch[5].tolist() and best[60] not in batch[60].tolist()
    # Candidate filter and exclusion together, against a NumPy reference.
    candidates = np.unique([int(best[60]), 1, 2, 3])
    ids, _ = model.recommend(60, k=4, items=candidates)
    scores = model.user_factors_[60] @ model.item_factors_[candidates].T
    allowed = [c for c in candidates[np.argsort(-scores, kind="stable")] if c != best[60]]
    allowed = [c for c in allowed if not r[[60]].toarray()[0, c]]
    assert ids[: len(allowed)].tolist() == allowed


def test_many_updates_then_save_load_give_the_same_model(rng, tmp_path):
    r = random_interactions(rng, n_users=30, n_items=20)
    model = make(factors=4, regularization=0.3, alpha=2.0).fit(r)
    dense = r.toarray()
    events = np.random.default_rng(1)
    for _ in range(200):
        n = dense.shape[0]
        u = int(events.integers(0, n + 1))
        i = int(events.integers(0, 20))
        w = float(events.integers(1, 4))
        model.update(u, i, w)
        if u == n:
            dense = np.vstack([dense, np.zeros((1, 20), np.float32)])
        dense[u, i] += w
    # Many new users at once push the per-user overlay over its merge threshold.
    extra = sp.csr_array(events.integers(0, 2, (1100, 20)).astype(np.float32))
    model.fold_in(extra, users=np.arange(dense.shape[0], dense.shape[0] + 1100))
    dense = np.vstack([dense, extra.toarray()])
    model.update(2, 3, 1.0)
    dense[2, 3] += 1.0
    np.testing.assert_array_equal(model.interactions_.toarray(), dense)
    path = tmp_path / "streamed.npz"
    model.save(path)
    loaded = ALS.load(path)
    np.testing.assert_array_equal(loaded.interactions_.toarray(), dense)
    np.testing.assert_array_equal(loaded.user_factors_, model.user_factors_)
    users = np.arange(dense.shape[0])
    for got, want in zip(loaded.recommend(users), model.recommend(users), strict=True):
        np.testing.assert_array_equal(got, want)
    # Every streamed user's factors are its exact fold-in against the final item factors.
    ref = implicit_half_step(dense[:40], model.item_factors_, 0.3, 2.0)
    changed = np.flatnonzero((dense[:30] != r.toarray()).any(axis=1))
    np.testing.assert_allclose(model.user_factors_[changed], ref[changed], rtol=2e-3, atol=2e-4)


def test_explicit_fold_in_with_biases(rng):
    r = random_interactions(rng)
    model = make(factors=3, feedback="explicit", biases=True, regularization=1.0).fit(r)
    history = sp.csr_array(r[[4]])
    model.fold_in(history, users=[4])
    dense = r.toarray()[4]
    seen = dense != 0
    design = np.hstack([model.item_factors_, np.ones((r.shape[1], 1), np.float32)])[seen]
    target = dense[seen] - model.global_mean_ - model.item_biases_[seen]
    ref = np.linalg.solve(design.T.astype(np.float64) @ design + np.eye(4), design.T @ target)
    np.testing.assert_allclose(model.user_factors_[4], ref[:3], rtol=2e-3, atol=2e-4)
    assert model.user_biases_[4] == pytest.approx(ref[3], rel=2e-3, abs=2e-4)


@pytest.mark.parametrize(
    "kw",
    [
        {"solver": "cg"},
        {"solver": "cholesky"},
        {"feedback": "explicit", "biases": True, "regularization": 1.0},
    ],
)
def test_same_seed_same_factors_for_1_and_2_threads(rng, kw):
    r = random_interactions(rng, n_users=300, n_items=200, density=0.05)
    one = make(factors=8, iterations=3, num_threads=1, **kw).fit(r)
    two = make(factors=8, iterations=3, num_threads=2, **kw).fit(r)
    np.testing.assert_array_equal(one.user_factors_, two.user_factors_)
    np.testing.assert_array_equal(one.item_factors_, two.item_factors_)


def test_save_load_roundtrip(rng, tmp_path):
    model = make(factors=3, feedback="explicit", biases=True, regularization=1.0)
    model.fit(random_interactions(rng))
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = ALS.load(path)
    assert repr(loaded) == repr(model)
    np.testing.assert_array_equal(loaded.user_factors_, model.user_factors_)
    np.testing.assert_array_equal(loaded.item_biases_, model.item_biases_)
    for got, want in zip(loaded.recommend([0, 1]), model.recommend([0, 1]), strict=True):
        np.testing.assert_array_equal(got, want)


def test_load_rejects_corrupt_and_other_versions(rng, tmp_path):
    model = make(factors=2).fit(random_interactions(rng))
    path = tmp_path / "m.npz"
    model.save(path)
    with pytest.raises(FileNotFoundError):
        ALS.load(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    with pytest.raises(semrec.FormatError):
        ALS.load(tmp_path / "junk.npz")
    truncated = tmp_path / "cut.npz"
    truncated.write_bytes(path.read_bytes()[:200])
    with pytest.raises(semrec.FormatError):
        ALS.load(truncated)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays["metadata"].tobytes())
    meta["version"] = 99
    arrays["metadata"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(tmp_path / "v99.npz", **arrays)
    with pytest.raises(semrec.FormatError, match="version"):
        ALS.load(tmp_path / "v99.npz")
    assert zipfile.is_zipfile(path)


def test_repr_shows_hyperparameters():
    text = repr(ALS(factors=12, solver="cholesky"))
    assert text.startswith("ALS(factors=12") and "solver='cholesky'" in text


def test_bad_inputs(rng):
    r = random_interactions(rng)
    model = make(factors=2)
    with pytest.raises(TypeError, match="CSR"):
        model.fit(r.tocoo())
    with pytest.raises(TypeError, match=r"scipy\.sparse"):
        model.fit(r.toarray())
    bad = r.copy()
    bad.data[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.fit(bad)
    neg = r.copy()
    neg.data[0] = -1
    with pytest.raises(ValueError, match="negative"):
        model.fit(neg)
    make(factors=2, feedback="explicit").fit(neg)  # ratings may be negative
    with pytest.raises(ValueError, match=r"non-empty|no non-zero"):
        model.fit(sp.csr_array((0, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="no non-zero"):
        model.fit(sp.csr_array((3, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="solver"):
        make(solver="lu").fit(r)
    with pytest.raises(ValueError, match="biases"):
        make(biases=True).fit(r)
    with pytest.raises(ValueError, match="cg_steps must be < 2"):
        make(cg_steps=2**31).fit(r)  # pybind11's message before
    with pytest.raises(ValueError, match="global_mean"):  # every score would be inf
        semrec.ALS.from_factors(
            np.ones((2, 2), np.float32), np.ones((3, 2), np.float32),
            sp.csr_array((2, 3), dtype=np.float32), global_mean=1e308,
        )  # fmt: skip
    explicit = make(factors=2, feedback="explicit", biases=True).fit(r)
    with pytest.raises(ValueError, match=r"weight \(user 0's history\) holds ratings up to 1e\+38"):
        explicit.update(0, 1, 1e38)  # fit and fold_in refuse such ratings too
    with pytest.raises(ValueError, match="not fitted"):
        make().recommend(0)
    model.fit(r)
    with pytest.raises(ValueError, match="shape"):
        model.fold_in(sp.csr_array((1, r.shape[1] + 1), dtype=np.float32))
    with pytest.raises(TypeError, match="CSR"):
        model.fold_in(np.zeros((1, r.shape[1])))
    with pytest.raises(IndexError, match="user"):
        model.recommend(r.shape[0])
    with pytest.raises(ValueError, match="overflows"):
        make(factors=2, alpha=1e38).fit(r * 1e30)


def test_divergence_is_reported(rng, monkeypatch):
    import semrec.als

    real = semrec.als.core

    class Poisoned:
        """The real kernels, except that a half-step leaves a NaN behind."""

        def __getattr__(self, name):
            return getattr(real, name)

        def als_solve(self, *args):
            real.als_solve(*args)
            args[5][0, 0] = np.nan

    monkeypatch.setattr(semrec.als, "core", Poisoned())
    with pytest.raises(ValueError, match="diverged at iteration 0"):
        make(factors=2).fit(random_interactions(rng))


@pytest.mark.parametrize("threads", [1, 2])
def test_kernel_transpose_matches_scipy(rng, threads):
    from semrec._native import core

    m = sp.random_array((9000, 300), density=0.01, format="csr", rng=rng, dtype=np.float32)
    m.sort_indices()
    indptr, indices, values = core.csr_transpose(
        m.indptr.astype(np.int64), m.indices.astype(np.int32), m.data, 300, threads
    )
    want = sp.csr_array(m.T)
    want.sort_indices()
    np.testing.assert_array_equal(indptr, want.indptr)
    np.testing.assert_array_equal(indices, want.indices)
    np.testing.assert_array_equal(values, want.data)


def test_fit_canonicalises_unsorted_duplicate_input(rng):
    r = random_interactions(rng)
    coo = r.tocoo()
    # The same matrix with shuffled rows, an entry split in two and an explicit zero.
    order = rng.permutation(coo.nnz)
    rows = np.r_[coo.row[order], coo.row[0], 0]
    cols = np.r_[coo.col[order], coo.col[0], (coo.col[coo.row == 0].max() + 1) % r.shape[1]]
    vals = np.r_[coo.data[order], 0.0, 0.0].astype(np.float64)
    vals[np.flatnonzero(order == 0)[0]] -= 1.0
    vals[-2] = 1.0
    messy = sp.csr_matrix((vals, (rows, cols)), shape=r.shape)
    messy.has_canonical_format = False
    kw = {"factors": 4, "iterations": 2}
    want = make(**kw).fit(r)
    got = make(**kw).fit(messy)
    np.testing.assert_array_equal(got.interactions_.toarray(), r.toarray())
    np.testing.assert_array_equal(got.user_factors_, want.user_factors_)


@pytest.mark.parametrize("feedback", ["implicit", "explicit"])
def test_zero_weights_are_seen_but_carry_nothing(rng, feedback):
    """A stored 0 (e.g. a centred rating equal to the mean) is an interaction: excluded from
    recommend like any seen item, and left out of the solve (issue 13). The factors equal a
    fit without those entries, bit for bit."""
    r = random_interactions(rng)
    zeroed = r.copy()
    zeroed.data[::4] = 0.0
    dropped = sp.csr_array(zeroed.toarray())  # the same weights without the zero entries
    kw = {"factors": 4, "iterations": 3, "feedback": feedback, "regularization": 0.5}
    a, b = make(**kw).fit(zeroed), make(**kw).fit(dropped)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    assert a.interactions_.nnz == r.nnz
    ids, _ = a.recommend(np.arange(r.shape[0]), k=r.shape[1])
    for u in range(r.shape[0]):
        seen = set(zeroed.indices[zeroed.indptr[u] : zeroed.indptr[u + 1]].tolist())
        assert not seen & set(ids[u][ids[u] >= 0].tolist())
    # fold_in and update: the zero stays seen, the solve ignores it.
    np.testing.assert_array_equal(a.fold_in(zeroed[[3]]), b.fold_in(dropped[[3]]))
    u, (i,) = 5, np.flatnonzero(r[[5]].toarray()[0] == 0)[:1]
    a.update(u, int(i), 2.0)
    a.update(u, int(i), -2.0)  # the weights cancel: still an interaction
    assert int(i) not in a.recommend(u, k=r.shape[1])[0]


BAD_SEEDS = [(1.5, TypeError), (True, TypeError), ("0", TypeError), (-1, ValueError)]


@pytest.mark.parametrize(("seed", "error"), BAD_SEEDS)
def test_bad_random_state_is_refused_naming_it(seed, error) -> None:
    r = sp.csr_array(np.eye(4, dtype=np.float32))
    with pytest.raises(error, match="random_state"):
        ALS(factors=2, iterations=1, random_state=seed, show_progress=False).fit(r)


def test_numpy_int_none_and_generator_seeds_are_accepted() -> None:
    r = sp.csr_array(np.eye(4, dtype=np.float32))
    fit = {
        s: ALS(factors=2, iterations=1, random_state=s, show_progress=False).fit(r)
        for s in (3, np.int64(3))
    }
    assert np.array_equal(fit[3].item_factors_, fit[np.int64(3)].item_factors_)
    for seed in (None, np.random.default_rng(0)):
        ALS(factors=2, iterations=1, random_state=seed, show_progress=False).fit(r)


def test_factors_too_large_for_memory_are_refused_before_allocating() -> None:
    r = sp.csr_array(np.eye(4, dtype=np.float32))
    with pytest.raises(ValueError, match=r"factors=1000000 would need .* GiB.*fewer factors"):
        ALS(factors=10**6, iterations=1, show_progress=False).fit(r)
    users = np.zeros((2, 10**6), dtype=np.float32)
    with pytest.raises(ValueError, match="factors=1000000"):
        ALS.from_factors(users, np.zeros((3, 10**6), dtype=np.float32))


def test_from_factors_without_items_names_item_factors() -> None:
    users, items = np.zeros((2, 4), np.float32), np.zeros((0, 4), np.float32)
    with pytest.raises(ValueError, match="item_factors has 0 rows"):
        ALS.from_factors(users, items)


@pytest.mark.parametrize("biases", [False, True])
def test_learned_arrays_are_read_only(biases: bool) -> None:
    """An edit would reach score but not the search index or the cached Gram matrix, so
    score and recommend would disagree: the documented read-only attributes refuse it."""
    rng = np.random.default_rng(0)
    r = sp.csr_array((rng.random((30, 20)) < 0.3) * rng.integers(1, 6, (30, 20)), dtype=np.float32)
    kw = {"feedback": "explicit", "biases": True, "regularization": 0.1} if biases else {}
    model = ALS(factors=4, iterations=3, random_state=0, show_progress=False, **kw).fit(r)
    ids, _ = model.recommend(0, k=5)
    names = ["user_factors_", "item_factors_"] + (["user_biases_", "item_biases_"] * biases)
    for name in names:
        before = getattr(model, name).copy()
        with pytest.raises(ValueError, match="read-only"):
            getattr(model, name)[0] = 9.0
        np.testing.assert_array_equal(getattr(model, name), before)
    model.update(0, int(ids[0]), 2.0)  # the model's own writes still work
    model.fold_in(r[[1]], users=[30])
    assert model.n_users_ == 31
    again_ids, again = model.recommend(0, k=5)
    np.testing.assert_allclose(again, model.score(0, again_ids), rtol=1e-6)


def test_verbs_refuse_a_layout_changed_after_fit_with_the_way_out() -> None:
    """factors or biases set after fit no longer describe the learned arrays: the verbs that
    read them through the settings say so, instead of misreading them."""
    rng = np.random.default_rng(1)
    r = sp.csr_array((rng.random((12, 15)) < 0.3) * rng.integers(1, 6, (12, 15)), dtype=np.float32)
    model = ALS(factors=4, iterations=2, random_state=0, show_progress=False).fit(r)
    ids = model.recommend(0, k=3)[0]
    for name, value in (("factors", 6), ("biases", True)):
        if name == "biases":
            model.feedback = "explicit"
        setattr(model, name, value)
        message = r"not describe the learned arrays .* Refit the model, or set it back"
        for verb in (
            lambda: model.user_factors_,
            lambda: model.update(0, 1),
            lambda: model.fold_in(r[[0]]),
            lambda: model.explain(0, 1),
        ):
            with pytest.raises(ValueError, match=message):
                verb()
        model.factors, model.biases, model.feedback = 4, False, "implicit"  # set back: works
        assert model.user_factors_.shape == (12, 4)
        np.testing.assert_array_equal(model.recommend(0, k=3)[0], ids)


@pytest.mark.parametrize("feedback", ["implicit", "explicit"])
def test_fold_in_inside_a_fit_callback_solves_against_that_iterations_items(rng, feedback) -> None:
    """A callback may fold in (to evaluate new users every iteration): on a first fit and on a
    refit it solves against the current item factors, not a missing or previous fit's Gram."""
    r = random_interactions(rng)
    kw = {"factors": 4, "regularization": 0.3, "alpha": 4.0, "feedback": feedback}
    kw |= {"biases": True} if feedback == "explicit" else {}
    history, seen = r[[0, 3]], []

    def check(iteration: int, seconds: float, loss: float | None) -> None:
        got = model.fold_in(history)
        parts = {"user_biases": model.user_biases_, "item_biases": model.item_biases_}
        parts = {k: v.copy() for k, v in parts.items() if v is not None}
        exact = ALS.from_factors(
            model.user_factors_.copy(), model.item_factors_.copy(), **parts,
            global_mean=model.global_mean_, **kw,
        ).fold_in(history)  # fmt: skip
        np.testing.assert_allclose(got, exact, rtol=1e-6, atol=1e-6)
        if feedback == "implicit":  # and the NumPy normal equations
            ref = implicit_half_step(history.toarray(), model.item_factors_, 0.3, 4.0)
            np.testing.assert_allclose(got, ref, rtol=2e-3, atol=2e-4)
        seen.append(iteration)

    model = make(iterations=3, **kw)
    model.fit(r, callback=check)  # first fit: no Gram yet
    model.fit(r * 3, callback=check)  # refit: the first fit's Gram is stale
    assert seen == [0, 1, 2, 0, 1, 2]


@pytest.mark.parametrize(
    ("fitted", "changed"), [("explicit", "implicit"), ("implicit", "explicit")]
)
def test_verbs_refuse_a_feedback_changed_after_fit_with_the_way_out(
    rng, tmp_path, fitted, changed
) -> None:
    """Explicit factors solved as confidences (or clicks taken as ratings) would be silently
    wrong or a raw kernel message: fold_in, update and save name feedback and the way out."""
    r = random_interactions(rng)
    model = make(factors=4, iterations=2, regularization=0.3, feedback=fitted).fit(r)
    expected = model.fold_in(r[[2]])
    model.feedback = changed
    message = (
        f"feedback='{changed}' does not describe the learned arrays \\(fitted with "
        f"feedback='{fitted}'\\).* Refit the model, or set it back"
    )
    for verb in (
        lambda: model.update(0, 1),
        lambda: model.fold_in(r[[2]]),
        lambda: model.save(tmp_path / "changed.npz"),
    ):
        with pytest.raises(ValueError, match=message):
            verb()
    model.feedback = fitted  # set back: works again
    np.testing.assert_array_equal(model.fold_in(r[[2]]), expected)
    history = r[[0]].toarray()
    history[0, 1] += 1.0
    np.testing.assert_allclose(
        model.update(0, 1), model.fold_in(sp.csr_array(history))[0], rtol=1e-6, atol=1e-6
    )


def test_a_layout_of_the_same_width_is_refused_too(rng, tmp_path) -> None:
    """factors=4 with biases (4 + 2 columns) and factors=6 without have the same width: the
    learned arrays would be read in the wrong layout, silently."""
    r = random_interactions(rng)
    model = make(factors=4, biases=True, iterations=2, feedback="explicit").fit(r)
    model.factors, model.biases = 6, False
    message = (
        r"factors=6, biases=False do not describe the learned arrays "
        r"\(fitted with factors=4, biases=True\)"
    )
    for verb in (
        lambda: model.fold_in(r[[2]]),
        lambda: model.update(0, 1),
        lambda: model.user_factors_,
        lambda: model.save(tmp_path / "m.npz"),
    ):
        with pytest.raises(ValueError, match=message):
            verb()
    assert not (tmp_path / "m.npz").exists()


def test_a_copy_made_inside_a_fit_callback_folds_in_as_the_model(rng) -> None:
    """Before its first use the items' gram is a marker: a copy (pickle, deepcopy) must keep
    it a marker, or the copy's fold_in would solve against the marker object itself."""
    import copy
    import pickle

    r = random_interactions(rng)
    checked = []

    def callback(iteration, seconds, loss):
        for twin in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
            np.testing.assert_allclose(twin.fold_in(r[[0]]), model.fold_in(r[[0]]), atol=1e-6)
        checked.append(iteration)

    model = make(factors=4, iterations=2)
    model.fit(r, callback=callback)
    assert len(checked) == 2


# ---------------------------------------------------------------------------------------------
# Copies: the users' factors once, not the spare rows kept for new users


def _with_new_user(kind, rng):
    """A fitted ALS (or ColdStartALS) whose user factors dominate its size."""
    r = random_interactions(rng, n_users=2000, n_items=40, density=0.05)
    als = make(factors=16, iterations=2)
    if kind == "als":
        return als.fit(r), r
    emb = rng.standard_normal((40, 8)).astype(np.float32)
    return semrec.ColdStartALS(als, emb).fit(r), r


def _copy_bytes(copier, model) -> int:
    """Bytes a copy allocates (NumPy reports its arrays to tracemalloc)."""
    import tracemalloc

    tracemalloc.start()
    try:
        twin = copier(model)
        size = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del twin
    return size


@pytest.mark.parametrize("kind", ["als", "coldstart"])
def test_a_new_user_does_not_grow_pickles_and_copies_by_the_spare_rows(kind, rng) -> None:
    """A new user grows the factors into spare rows (O(factors) per user); a pickle or
    deepcopy holds the users' factors once, about the size it had before that user."""
    import copy
    import pickle

    model, _ = _with_new_user(kind, rng)
    before = len(pickle.dumps(model)), _copy_bytes(copy.deepcopy, model)
    model.update(model.n_users_, 3)
    after = len(pickle.dumps(model)), _copy_bytes(copy.deepcopy, model)
    assert after[0] < 1.2 * before[0], (before, after)
    assert after[1] < 1.2 * before[1], (before, after)


@pytest.mark.parametrize("kind", ["als", "coldstart"])
@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_a_copy_after_a_new_user_keeps_updating_as_the_model(kind, how, rng) -> None:
    """The copy grows its own rows: its updates and fold-ins give what the model's give, and
    leave the model as it was."""
    import copy
    import pickle

    model, r = _with_new_user(kind, rng)
    model.update(model.n_users_, 3)
    twin = pickle.loads(pickle.dumps(model)) if how == "pickle" else copy.deepcopy(model)
    users, items = np.arange(model.n_users_), np.arange(5)
    kept = model.recommend(users, k=5), model.score(users, items)

    def stream(m):
        n = m.n_users_
        m.update(n - 1, 7)  # the new user again
        m.update(5, 9)
        for extra in range(40):  # past the spare rows the copy had, had it kept them
            m.update(n + extra, extra % 40, 2.0)
        return m.fold_in(r[[1, 2]]), m.fold_in(r[[3]], users=[m.n_users_])

    twin_out = stream(twin)
    assert twin.n_users_ == model.n_users_ + 41
    np.testing.assert_array_equal(model.recommend(users, k=5)[0], kept[0][0])
    np.testing.assert_array_equal(model.score(users, items), kept[1])  # the copy's own rows
    model_out = stream(model)
    everyone = np.arange(model.n_users_)
    for a, b in zip(twin_out, model_out, strict=True):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(twin.recommend(everyone, k=5), model.recommend(everyone, k=5), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(twin.score(everyone, items), model.score(everyone, items))


# -- Numerical extremes: one rule on weights, hyperparameters within float32 ------------------
WEIGHT_CASES = [  # (settings, ratings' scale: the largest weight is 5x it, accepted, refusal)
    ({"alpha": 1e-35}, 2e34, True, None),  # confidences 1 + 1e-35 * r: 1.4 to 3
    ({"alpha": 40.0}, 1e37, False, r"alpha \* r overflows"),
    ({"confidence": "log", "epsilon": 1e-30}, 1e10, False, r"epsilon=1e-30 is too small"),
    ({"feedback": "explicit"}, 1e35, False, r"ratings up to \de\+35 in magnitude.*±1e\+30"),
    ({"feedback": "explicit", "biases": True}, 1e35, False, r"ratings up to \de\+35.*±1e\+30"),
    ({"feedback": "explicit", "solver": "cholesky"}, 1e29, True, None),
]


def _verdict(call, name: str, refusal: str | None, error=ValueError) -> bool:
    """Whether ``call`` accepts; a refusal must name the argument ``name`` and say why."""
    try:
        call()
    except error as exc:
        assert refusal is not None, exc
        assert name in str(exc) and re.search(refusal, str(exc)), exc
        return False
    return True


@pytest.mark.parametrize(("settings", "scale", "accepted", "refusal"), WEIGHT_CASES)
def test_fit_fold_in_update_from_factors_and_load_agree_on_weights(
    rng, tmp_path, settings, scale, accepted, refusal
) -> None:
    """The weights one verb accepts, every verb accepts (fit's, fold_in's, update's; load
    refused a fitted explicit model's mean, update every click of a fitted implicit user)."""
    base = random_interactions(rng, n_users=12, n_items=8, density=0.4)
    big = base * np.float32(scale)
    small = make(factors=2, **settings).fit(base)  # a model that already holds the small data
    kw = {"user_biases": small.user_biases_, "item_biases": small.item_biases_}
    kw = kw if settings.get("biases") else {}
    path = tmp_path / "big.npz"
    small.save(path)  # then its interactions replaced by the big ones, checksums recomputed
    with np.load(path) as z:
        version = json.loads(z["metadata"].tobytes())["version"]
    saved = persist.read(path, "semrec.ALS", version)
    arrays = {k: np.array(v) for k, v in saved.arrays.items()}
    np.testing.assert_array_equal(arrays["interactions_indices"], big.indices)
    arrays["interactions_data"] = big.data
    persist.write(path, {k: v for k, v in saved.meta.items() if k != "checksums"}, arrays)
    item = int(np.flatnonzero(base[[0]].toarray()[0] == 0)[0])
    verdicts = {
        "fit": _verdict(lambda: make(factors=2, **settings).fit(big), "interactions", refusal),
        "fold_in": _verdict(lambda: small.fold_in(big[[0, 1]]), "history", refusal),
        "update": _verdict(lambda: small.update(0, item, 5 * scale), "weight", refusal),
        "from_factors": _verdict(
            lambda: ALS.from_factors(
                small.user_factors_, small.item_factors_, big, factors=2, **settings, **kw
            ),
            "interactions",
            refusal,
        ),
        "load": _verdict(lambda: ALS.load(path), "interactions", refusal, semrec.FormatError),
    }
    assert verdicts == dict.fromkeys(verdicts, accepted)


@pytest.mark.parametrize(
    ("settings", "scale"), [(s, scale) for s, scale, ok, _ in WEIGHT_CASES if ok]
)
def test_a_model_fitted_on_large_accepted_weights_takes_a_click(rng, tmp_path, settings, scale):
    """update(u, i, 1.0) after a fit on weights near the bound: the exact solve of the
    changed history (a NumPy reference), and the model saves and loads back."""
    r = random_interactions(rng, n_users=12, n_items=8, density=0.4) * np.float32(scale)
    model = make(factors=2, regularization=0.1, **settings).fit(r)
    item = int(np.flatnonzero(r[[0]].toarray()[0] == 0)[0])
    got = model.update(0, item, 1.0)
    history = r[[0]].toarray().astype(np.float64)
    history[0, item] += 1.0
    if model.feedback == "implicit":
        want = implicit_half_step(history, model.item_factors_, 0.1, settings["alpha"])[0]
    else:
        want = explicit_half_step(history, model.item_factors_, 0.1)[0]
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-6 * np.abs(want).max())
    model.save(tmp_path / "m.npz")
    np.testing.assert_array_equal(ALS.load(tmp_path / "m.npz").user_factors_[0], got)


def test_an_update_past_float32_names_weight_and_changes_nothing(rng) -> None:
    """The sum is checked before the float32 cast (which stored inf, with NumPy's warning)."""
    model = make(factors=2, alpha=1e-37).fit(random_interactions(rng))
    item = int(model.interactions_[[0]].indices[0])
    model.update(0, item, 2e38)  # a confidence of 1 + 20: accepted
    before = model.interactions_.copy(), model.user_factors_.copy()
    with pytest.raises(ValueError, match=r"weight: update would give user 0 a weight of 4e\+38"):
        model.update(0, item, 2e38)
    np.testing.assert_array_equal(model.interactions_.toarray(), before[0].toarray())
    np.testing.assert_array_equal(model.user_factors_, before[1])


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"confidence": "log", "epsilon": 1e-45}, r"epsilon must be at least 1\.18e-38"),
        ({"epsilon": 1e39}, r"epsilon must be at most 3\.4e\+38 \(float32\)"),
        ({"epsilon": 0.0}, r"epsilon must be a finite number > 0"),
        ({"regularization": 1e25}, r'regularization must be at most 1e\+18 with solver="cg"'),
        ({"regularization": 1e39, "solver": "cholesky"}, r"regularization must be at most 3\.4e"),
        ({"alpha": 1e39}, r"alpha must be at most 3\.4e\+38 \(float32\)"),
    ],
)
def test_hyperparameters_beyond_float32_are_refused_naming_them(settings, message) -> None:
    """Not "confidence overflows, reduce alpha", "diverged, increase regularization" or
    "weights too large", each of which blamed something else."""
    r = sp.csr_array(np.array([[1, 0, 2], [0, 1, 1], [1, 1, 0]], np.float32))
    with pytest.raises(ValueError, match=message):
        make(factors=2, **settings).fit(r)
    with pytest.raises(ValueError, match=message):
        ALS.from_factors(np.ones((3, 2), np.float32), np.ones((3, 2), np.float32), **settings)


def test_hyperparameters_at_the_bounds_fit() -> None:
    """Just inside each bound: finite factors, and the log confidence of the smallest epsilon
    is the exact solve of a NumPy reference (r / epsilon near 1e38, log1p of it about 88)."""
    r = sp.csr_array(np.array([[1, 0, 2], [0, 1, 1], [1, 1, 0]], np.float32))
    tiny = float(np.finfo(np.float32).tiny)
    for settings in (
        {"regularization": 1e18},
        {"regularization": 1e38, "solver": "cholesky"},
        {"alpha": 1e38, "feedback": "explicit"},  # ignored there, but still a float32
    ):
        assert np.isfinite(make(factors=2, **settings).fit(r).user_factors_).all(), settings
    model = make(factors=2, confidence="log", epsilon=tiny, alpha=1e-2).fit(r)
    history = r[[0]].toarray()[0].astype(np.float64)
    c = 1e-2 * np.log1p(history / np.float64(np.float32(tiny)))
    y = model.item_factors_.astype(np.float64)
    a = y.T @ y + y.T @ (c[:, None] * y) + 0.01 * np.eye(2)
    want = np.linalg.solve(a, y.T @ ((1 + c) * (history > 0)))
    np.testing.assert_allclose(model.fold_in(r[[0]])[0], want, rtol=1e-3)
