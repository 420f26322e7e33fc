"""Property-based tests of semrec.metrics: NumPy re-implementations of PROTOCOL.md's definitions
on random lists, relevance sets, cutoffs, popularities, embeddings of any magnitude, and bad
input that must raise one of the documented exception types."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st
from properties import DIMS, DOCUMENTED, PROPERTY, csr_matrices, float_matrices

from semrec import metrics

pytestmark = pytest.mark.property


@st.composite
def lists(draw: st.DrawFn, n_users: int | None = None) -> tuple[np.ndarray, int]:
    """(recommendations, n_items): distinct ids per row, then -1 padding."""
    n_users = draw(st.integers(0, 12)) if n_users is None else n_users
    n_items = draw(st.integers(1, 25))
    width = draw(st.integers(1, 12))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    recs = np.full((n_users, width), -1, dtype=np.int32)
    for u in range(n_users):
        n = int(rng.integers(0, min(width, n_items) + 1))
        recs[u, :n] = rng.permutation(n_items)[:n]
    return recs, n_items


def reference_ranking(recs: np.ndarray, relevant: sp.csr_array, ks: list[int]) -> np.ndarray:
    rel = relevant.toarray() != 0
    out = np.zeros((recs.shape[0], len(ks), 6))
    for u, row in enumerate(recs):
        n_rel = rel[u].sum()
        if n_rel == 0:
            continue
        hits = np.array([i >= 0 and rel[u, i] for i in row], dtype=float)
        for c, k in enumerate(ks):
            h = hits[:k]
            ranks = np.arange(1, k + 1)
            denom = min(n_rel, k)
            ideal = (1 / np.log2(np.arange(denom) + 2)).sum()
            first = np.flatnonzero(h)
            out[u, c] = [
                h.sum() / k,
                h.sum() / n_rel,
                (h / np.log2(ranks + 1)).sum() / ideal,
                (np.cumsum(h) / ranks * h).sum() / denom,
                float(h.any()),
                1 / (first[0] + 1) if first.size else 0.0,
            ]
    return out


@given(case=lists(), data=st.data())
@PROPERTY
def test_ranking_metrics_equal_the_definitions(case: tuple[np.ndarray, int], data) -> None:
    recs, n_items = case
    relevant = data.draw(csr_matrices(recs.shape[0], n_items))
    ks = data.draw(st.lists(st.integers(1, recs.shape[1]), min_size=1, max_size=3, unique=True))
    want = reference_ranking(recs, relevant, ks)
    got = metrics.ranking_metrics(recs, relevant, k=ks, per_user=True)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    means = metrics.ranking_metrics(recs, relevant, k=ks)
    has = np.diff(relevant.indptr) > 0
    if has.any():
        np.testing.assert_allclose(means.to_numpy(), want[has].mean(axis=0), rtol=1e-12)
    else:
        assert np.isnan(means.to_numpy()).all()


@given(case=lists(), data=st.data())
@PROPERTY
def test_ranking_metrics_on_any_ids_and_cutoffs(case: tuple[np.ndarray, int], data) -> None:
    """Ids and cutoffs drawn past their valid ranges: the definitions, or the documented error."""
    recs, n_items = case
    recs = recs.copy()
    if recs.size and data.draw(st.booleans()):
        recs.flat[data.draw(st.integers(0, recs.size - 1))] = data.draw(
            st.sampled_from([-2, n_items, n_items + 5, -(2**31)])
        )
    k = data.draw(st.integers(-1, recs.shape[1] + 2))
    relevant = data.draw(csr_matrices(recs.shape[0], n_items))
    bad_k = k < 1 or k > recs.shape[1]
    bad_id = bool(recs.size) and bool(recs.min() < -1 or recs.max() >= n_items)
    if bad_k or bad_id:
        expected = tuple(e for e, bad in ((ValueError, bad_k), (IndexError, bad_id)) if bad)
        with pytest.raises(expected):
            metrics.ranking_metrics(recs, relevant, k=k, per_user=True)
    else:
        got = metrics.ranking_metrics(recs, relevant, k=k, per_user=True)
        np.testing.assert_allclose(got, reference_ranking(recs, relevant, [k]), rtol=1e-12)


@given(case=lists(), data=st.data())
@PROPERTY
def test_coverage_and_novelty_equal_the_definitions(case: tuple[np.ndarray, int], data) -> None:
    recs, n_items = case
    k = data.draw(st.integers(1, recs.shape[1]))
    top = recs[:, :k]
    real = top[top >= 0]
    assert metrics.catalog_coverage(recs, n_items, k) == pytest.approx(
        np.unique(real).size / n_items, rel=1e-12
    )
    n_users = data.draw(st.integers(1, 10**6))
    # Counts of the users who saw each item: at most n_users (more is refused, see test_metrics).
    popularity = np.array(data.draw(st.lists(st.integers(0, n_users), min_size=n_items,
                                             max_size=n_items)))  # fmt: skip
    info = -np.log2(np.maximum(popularity, 1) / n_users)
    want = np.array([info[row[row >= 0]].mean() if (row >= 0).any() else np.nan for row in top])
    got = metrics.novelty(recs, popularity, n_users, k, per_user=True)
    np.testing.assert_allclose(got, want, rtol=1e-12)


@given(case=lists(n_users=4), bad=st.sampled_from([np.nan, np.inf, -1.0, -np.inf]))
@PROPERTY
def test_novelty_refuses_popularity_that_is_not_a_count(
    case: tuple[np.ndarray, int], bad: float
) -> None:
    recs, n_items = case
    popularity = np.ones(n_items)
    popularity[-1] = bad
    with pytest.raises(ValueError, match="popularity"):
        metrics.novelty(recs, popularity, 10, 1)


@given(case=lists(), data=st.data())
@PROPERTY
def test_intra_list_diversity_is_the_mean_cosine_distance(
    case: tuple[np.ndarray, int], data
) -> None:
    recs, n_items = case
    k = data.draw(st.integers(1, recs.shape[1]))
    dim = data.draw(DIMS)
    emb = data.draw(float_matrices(n_items, dim, special=True))
    if not np.isfinite(emb).all():
        with pytest.raises(ValueError, match="item_embeddings"):
            metrics.intra_list_diversity(recs, emb, k)
        return
    e64 = emb.astype(np.float64)
    norms = np.linalg.norm(e64, axis=1, keepdims=True)
    unit = e64 / np.where(norms > 0, norms, 1.0)
    want = []
    for row in recs[:, :k]:
        ids = row[row >= 0]
        if ids.size < 2:
            want.append(np.nan)
            continue
        cos = unit[ids] @ unit[ids].T
        want.append(np.clip(1 - cos[np.triu_indices(ids.size, 1)], 0, 2).mean())
    got = metrics.intra_list_diversity(recs, emb, k, per_user=True)
    np.testing.assert_allclose(got, np.array(want), rtol=1e-12, atol=1e-12)


@given(
    n=st.integers(0, 50),
    data=st.data(),
    dtype=st.sampled_from([np.float32, np.float64]),
)
@PROPERTY
def test_rmse_and_mae_equal_numpy(n: int, data, dtype: type) -> None:
    predicted = data.draw(float_matrices(1, n, special=True, dtype=dtype)).ravel()
    actual = data.draw(float_matrices(1, n, dtype=dtype)).ravel()
    # Computed in float64, as given (a float32 cast would round 100000001 to 100000000).
    p64, a64 = predicted.astype(np.float64), actual.astype(np.float64)
    if n == 0 or not (np.isfinite(p64).all() and np.isfinite(a64).all()):
        with pytest.raises(ValueError):
            metrics.rmse(predicted, actual)
        with pytest.raises(ValueError):
            metrics.mae(predicted, actual)
        return
    err = p64 - a64
    assert metrics.rmse(predicted, actual) == pytest.approx(np.sqrt(np.mean(err**2)), rel=1e-12)
    assert metrics.mae(predicted, actual) == pytest.approx(np.mean(np.abs(err)), rel=1e-12)


@given(
    recs=st.sampled_from(
        [
            np.zeros(3, dtype=np.int32),  # 1-D
            np.zeros((2, 2), dtype=np.float64),  # not ids
            "abc",
            [[0, 1], [1]],  # ragged
        ]
    ),
    relevant=st.sampled_from(
        [np.eye(2), sp.csr_array(np.eye(3)), sp.coo_array(np.eye(2)), [[1, 0], [0, 1]]]
    ),
)
@PROPERTY
def test_bad_arguments_raise_documented_errors(recs, relevant) -> None:
    with pytest.raises(DOCUMENTED):
        metrics.ranking_metrics(recs, relevant, k=1)
