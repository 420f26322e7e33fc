"""The contract every recommender keeps (CONVENTIONS.md, "Models"), run against every model.

A new model gets the whole suite by adding one factory to MODELS. Each check compares the
model with itself under a different call shape (scalar vs batch, other batch compositions,
after save/load) or with its own ``score``, plus the rules on padding, exclusion, candidate
filters and errors; the per-model test files check the values against references.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

import semrec
from semrec.datasets import synthetic

N_USERS, N_ITEMS = 60, 40


@pytest.fixture(scope="module")
def data() -> tuple[sp.csr_array, np.ndarray]:
    ds = synthetic(N_USERS, N_ITEMS, 700, n_topics=4, with_text=False, random_state=11)
    emb = np.random.default_rng(11).standard_normal((N_ITEMS, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return ds.interactions, emb


def _als() -> semrec.ALS:
    return semrec.ALS(factors=4, iterations=3, random_state=0, show_progress=False)


MODELS: dict[str, Callable[[np.ndarray], Any]] = {
    "ALS": lambda emb: _als(),
    "ALS-explicit": lambda emb: semrec.ALS(
        factors=4,
        iterations=3,
        feedback="explicit",
        biases=True,
        regularization=0.5,
        random_state=0,
        show_progress=False,
    ),
    "MostPopular": lambda emb: semrec.MostPopular(),
    "Random": lambda emb: semrec.Random(random_state=3),
    "Hybrid": lambda emb: semrec.Hybrid([(_als(), 0.7), (semrec.MostPopular(), 0.3)]),
    "ColdStartALS": lambda emb: semrec.ColdStartALS(_als(), emb),
    "ContentRecommender": lambda emb: semrec.ContentRecommender(emb, show_progress=False),
    "ItemKNN": lambda emb: semrec.ItemKNN(10, show_progress=False),
    "ItemKNN-bm25": lambda emb: semrec.ItemKNN(10, weighting="bm25", show_progress=False),
    "UserKNN": lambda emb: semrec.UserKNN(10, shrinkage=1.0, show_progress=False),
}
SAVABLE = {
    "ALS",
    "ALS-explicit",
    "MostPopular",
    "Random",
    "ContentRecommender",
    "ItemKNN",
    "ItemKNN-bm25",
    "UserKNN",
}


@pytest.fixture(params=sorted(MODELS))
def fitted(request: pytest.FixtureRequest, data: tuple[sp.csr_array, np.ndarray]) -> Any:
    x, emb = data
    model = MODELS[request.param](emb)
    model.fit(x)
    model.contract_name = request.param
    return model


def test_scalar_and_batch_agree_in_any_batch(fitted: Any) -> None:
    users = np.array([5, 0, 17, 5, 59])
    ids, scores = fitted.recommend(users, k=7)
    assert ids.shape == scores.shape == (5, 7)
    assert ids.dtype == np.int32 and scores.dtype == np.float32
    one_ids, one_scores = fitted.recommend(17, k=7)
    assert one_ids.shape == (7,)
    np.testing.assert_array_equal(one_ids, ids[2])
    np.testing.assert_allclose(one_scores, scores[2], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ids[0], ids[3])
    rev_ids, _ = fitted.recommend(users[::-1].copy(), k=7)
    np.testing.assert_array_equal(rev_ids[::-1], ids)


def test_lists_are_sorted_unique_and_padded(fitted: Any, data: Any) -> None:
    x, _ = data
    ids, scores = fitted.recommend(np.arange(N_USERS), k=N_ITEMS + 5)
    seen = np.diff(x.indptr)
    for u in range(N_USERS):
        valid = ids[u] >= 0
        n_valid = int(valid.sum())
        assert n_valid == N_ITEMS - seen[u], "every unseen item, then padding"
        assert valid[:n_valid].all() and not valid[n_valid:].any()
        assert np.isneginf(scores[u, n_valid:]).all()
        assert np.unique(ids[u, :n_valid]).size == n_valid
        assert (np.diff(scores[u, :n_valid]) <= 0).all(), "best first"


def test_exclude_seen_and_candidate_filter(fitted: Any, data: Any) -> None:
    x, _ = data
    users = np.arange(0, N_USERS, 3)
    ids, _ = fitted.recommend(users, k=10)
    for row, u in zip(ids, users, strict=True):
        assert not set(row[row >= 0].tolist()) & set(x[[u]].indices.tolist())
    ids, _ = fitted.recommend(users, k=N_ITEMS, exclude_seen=False)
    assert (ids >= 0).all(), "nothing excluded: every item is listed"
    allowed = np.array([1, 4, 9, 16, 25, 36])
    ids, _ = fitted.recommend(users, k=10, exclude_seen=False, items=allowed)
    assert set(ids[ids >= 0].tolist()) <= set(allowed.tolist())
    assert (ids[:, : allowed.size] >= 0).all() and (ids[:, allowed.size :] == -1).all()


def test_recommend_scores_match_score(fitted: Any) -> None:
    users = np.array([2, 8, 30])
    ids, scores = fitted.recommend(users, k=5)
    full = fitted.score(users, np.arange(N_ITEMS))
    assert full.shape == (3, N_ITEMS)
    np.testing.assert_allclose(np.take_along_axis(full, ids, axis=1), scores, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fitted.score(8, np.arange(N_ITEMS)), full[1], rtol=1e-6)


def test_bad_arguments_raise_clear_errors(fitted: Any) -> None:
    with pytest.raises(IndexError, match="users"):
        fitted.recommend([0, N_USERS], k=3)
    with pytest.raises(IndexError):
        fitted.recommend(-1, k=3)
    with pytest.raises(ValueError, match="k"):
        fitted.recommend(0, k=0)
    with pytest.raises(TypeError, match="users"):
        fitted.recommend([0.5], k=3)
    with pytest.raises(IndexError, match="items"):
        fitted.recommend(0, k=3, items=[N_ITEMS])


def test_unfitted_model_says_so(data: Any) -> None:
    _, emb = data
    for name, make in MODELS.items():
        if name in ("Hybrid", "ColdStartALS"):
            continue  # wrappers around fitted models; their own tests cover this
        with pytest.raises(ValueError, match="fit"):
            make(emb).recommend(0)


def test_repr_shows_class(fitted: Any) -> None:
    assert repr(fitted).startswith(type(fitted).__name__ + "(")


def test_save_load_roundtrip(fitted: Any, tmp_path: Any) -> None:
    if fitted.contract_name not in SAVABLE:
        with pytest.raises(NotImplementedError):
            fitted.save(tmp_path / "model.npz")
        return
    path = tmp_path / "model.npz"
    fitted.save(path)
    loaded = type(fitted).load(path)
    assert repr(loaded) == repr(fitted)
    users = np.arange(N_USERS)
    for got, want in zip(loaded.recommend(users, k=6), fitted.recommend(users, k=6), strict=True):
        np.testing.assert_array_equal(got, want)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(semrec.FormatError):
        type(fitted).load(path)


def test_zero_weight_interactions_stay_seen(data: Any) -> None:
    """A stored 0 (a centred rating equal to the user's mean) is an interaction: every model
    excludes it like any other seen item (issue 13)."""
    x, emb = data
    zeroed = x.copy()
    zeroed.data[::5] = 0.0  # every 5th interaction now weighs 0
    for name, make in MODELS.items():
        model = make(emb).fit(zeroed)
        ids, _ = model.recommend(np.arange(N_USERS), k=N_ITEMS)
        for u in range(N_USERS):
            seen = set(zeroed.indices[zeroed.indptr[u] : zeroed.indptr[u + 1]].tolist())
            listed = set(ids[u][ids[u] >= 0].tolist())
            assert not listed & seen, f"{name} recommends a seen item to user {u}"
            assert len(listed) == N_ITEMS - len(seen), name
