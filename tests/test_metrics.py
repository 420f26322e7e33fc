"""Metric kernels against a straightforward Python reference and the published ranx library."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

from semrec import metrics
from semrec.metrics import RANKING_METRICS


def reference_ranking(lst: list[int], relevant: set[int], k: int) -> dict[str, float]:
    """PROTOCOL.md definitions, one user at a time."""
    top = [i for i in lst[:k]]
    hits = [1 if (i >= 0 and i in relevant) else 0 for i in top]
    n_hits = sum(hits)
    dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
    ideal = sum(1 / math.log2(r + 2) for r in range(min(len(relevant), k)))
    ap, seen = 0.0, 0
    for r, h in enumerate(hits):
        if h:
            seen += 1
            ap += seen / (r + 1)
    first = next((r for r, h in enumerate(hits) if h), None)
    return {
        "precision": n_hits / k,
        "recall": n_hits / len(relevant),
        "ndcg": dcg / ideal,
        "map": ap / min(len(relevant), k),
        "hit_rate": float(n_hits > 0),
        "mrr": 0.0 if first is None else 1 / (first + 1),
    }


def random_case(rng: np.random.Generator, n_users: int, n_items: int, width: int, pad: bool):
    recs = np.stack([rng.permutation(n_items)[:width] for _ in range(n_users)]).astype(np.int32)
    if pad:  # trailing padding on some rows, as topk produces
        for u in range(n_users):
            cut = rng.integers(1, width + 1)
            recs[u, cut:] = -1
    dense = rng.random((n_users, n_items)) < rng.uniform(0.02, 0.3)
    dense[0] = False  # a user without relevant items
    relevant = sp.csr_array(dense.astype(np.float32))
    return recs, relevant


@pytest.mark.parametrize("seed", range(6))
def test_ranking_matches_python_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    recs, relevant = random_case(rng, 60, 50, 20, pad=seed % 2 == 1)
    ks = (1, 5, 10, 20)
    values = metrics.ranking_metrics(recs, relevant, ks, per_user=True, num_threads=2)
    expected_sum = {(k, m): 0.0 for k in ks for m in RANKING_METRICS}
    n_eval = 0
    for u in range(recs.shape[0]):
        rel = set(relevant.indices[relevant.indptr[u] : relevant.indptr[u + 1]].tolist())
        if not rel:
            assert (values[u] == 0).all()
            continue
        n_eval += 1
        for c, k in enumerate(ks):
            ref = reference_ranking(recs[u].tolist(), rel, k)
            for j, name in enumerate(RANKING_METRICS):
                assert values[u, c, j] == pytest.approx(ref[name], abs=1e-12), (u, k, name)
                expected_sum[(k, name)] += ref[name]
    table = metrics.ranking_metrics(recs, relevant, ks)
    for (k, name), total in expected_sum.items():
        assert table.loc[k, name] == pytest.approx(total / n_eval, abs=1e-12)


@pytest.mark.slow  # ranx compiles its numba kernels on first use
@pytest.mark.parametrize("seed", range(3))
def test_ranking_matches_ranx(seed: int) -> None:
    ranx = pytest.importorskip("ranx")
    rng = np.random.default_rng(100 + seed)
    recs, relevant = random_case(rng, 80, 40, 20, pad=True)
    users = [u for u in range(recs.shape[0]) if relevant.indptr[u + 1] > relevant.indptr[u]]
    qrels = ranx.Qrels(
        {
            f"q{u:06d}": {
                f"d{i}": 1 for i in relevant.indices[relevant.indptr[u] : relevant.indptr[u + 1]]
            }
            for u in users
        }
    )
    run = ranx.Run(
        {
            f"q{u:06d}": {
                f"d{i}": float(recs.shape[1] - r) for r, i in enumerate(recs[u]) if i >= 0
            }
            for u in users
        }
    )
    ours = metrics.ranking_metrics(recs, relevant, (5, 10, 20), per_user=True)[users]
    n_rel = np.diff(relevant.indptr)[users]
    for c, k in enumerate((5, 10, 20)):
        names = [f"precision@{k}", f"recall@{k}", f"ndcg@{k}", f"map@{k}", f"hit_rate@{k}"]
        names.append(f"mrr@{k}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numba's own type-safety warnings inside ranx
            theirs = ranx.evaluate(qrels, run, names, return_mean=False, make_comparable=True)
        for j, name in enumerate(names):
            expected = np.asarray(theirs[name], dtype=np.float64)
            if name.startswith("map"):
                # ranx divides average precision by |relevant|; the protocol by min(|rel|, k).
                expected = expected * n_rel / np.minimum(n_rel, k)
            np.testing.assert_allclose(ours[:, c, j], expected, rtol=1e-12, atol=1e-12)


def test_ranking_is_independent_of_thread_count(rng: np.random.Generator) -> None:
    recs, relevant = random_case(rng, 3000, 200, 20, pad=False)
    one = metrics.ranking_metrics(recs, relevant, (10, 20), per_user=True, num_threads=1)
    two = metrics.ranking_metrics(recs, relevant, (10, 20), per_user=True, num_threads=2)
    np.testing.assert_array_equal(one, two)


def test_coverage_novelty_diversity_match_reference(rng: np.random.Generator) -> None:
    recs, _ = random_case(rng, 40, 30, 10, pad=True)
    k = 7
    real = [[i for i in row[:k] if i >= 0] for row in recs.tolist()]
    assert metrics.catalog_coverage(recs, 30, k) == len({i for r in real for i in r}) / 30

    popularity = rng.integers(0, 20, 30)
    info = [-math.log2(max(p, 1) / 25) for p in popularity]
    expected_novelty = np.mean([np.mean([info[i] for i in r]) for r in real])
    assert metrics.novelty(recs, popularity, 25, k) == pytest.approx(expected_novelty, rel=1e-12)

    emb = rng.standard_normal((30, 8)).astype(np.float32)
    per_list = []
    for r in real:
        if len(r) < 2:
            continue
        dists = []
        for a in range(len(r)):
            for b in range(a + 1, len(r)):
                x, y = emb[r[a]].astype(np.float64), emb[r[b]].astype(np.float64)
                dists.append(1 - x @ y / np.linalg.norm(x) / np.linalg.norm(y))
        per_list.append(np.mean(dists))
    got = metrics.intra_list_diversity(recs, emb, k)
    assert got == pytest.approx(np.mean(per_list), rel=1e-13)  # float64, not float32 unit rows
    twins = np.vstack([emb[:1], emb[:1], np.zeros((2, 8), np.float32)])
    twin_distance = metrics.intra_list_diversity(np.array([[0, 1]], np.int32), twins, 2)
    assert 0.0 <= twin_distance < 1e-15  # float32 unit rows gave -9e-9
    assert metrics.intra_list_diversity(np.array([[2, 3]], np.int32), twins, 2) == 1.0  # zeros


def test_rmse_mae_closed_form() -> None:
    p = np.array([1.0, 2.0, 4.0])
    a = np.array([2.0, 2.0, 1.0])
    assert metrics.rmse(p, a) == pytest.approx(math.sqrt((1 + 0 + 9) / 3))
    assert metrics.mae(p, a) == pytest.approx(4 / 3)


def test_bad_inputs_raise_clear_errors() -> None:
    rel = sp.csr_array(np.eye(3, dtype=np.float32))
    recs = np.array([[0, 1], [1, 2], [2, 0]], dtype=np.int32)
    with pytest.raises(ValueError, match="fewer than k=5"):
        metrics.ranking_metrics(recs, rel, 5)
    with pytest.raises(IndexError, match="outside"):
        metrics.ranking_metrics(np.array([[0, 9]] * 3), rel, 2)
    with pytest.raises(TypeError, match="integer"):
        metrics.ranking_metrics(recs.astype(float), rel, 2)
    with pytest.raises(ValueError, match="shape"):
        metrics.ranking_metrics(recs[:2], rel, 2)
    with pytest.raises(TypeError, match="CSR"):
        metrics.ranking_metrics(recs, np.eye(3), 2)
    with pytest.raises(ValueError, match="differ in length"):
        metrics.rmse([1.0], [1.0, 2.0])


def test_a_list_repeating_an_item_is_refused_by_every_list_metric() -> None:
    """A repeated id would count one relevant item several times (recall 4.0 from one hit)."""
    rel = sp.csr_array(np.eye(2, 20, dtype=np.float32))
    dup = np.array([[0, 1, 2, 3], [1, 5, 1, -1]], dtype=np.int32)
    emb = np.eye(20, 4, dtype=np.float32)
    for call in (
        lambda: metrics.ranking_metrics(dup, rel, k=4),
        lambda: metrics.catalog_coverage(dup, 20, k=4),
        lambda: metrics.novelty(dup, np.ones(20), n_users=2, k=4),
        lambda: metrics.intra_list_diversity(dup, emb, k=4),
    ):
        with pytest.raises(ValueError, match=r"recommendations row 1 lists item 1 more than once"):
            call()
    with pytest.raises(ValueError, match=r"recommendations row 0 lists item 0"):
        metrics.ranking_metrics(np.array([[0, 0, 0, 0]]), sp.csr_array(np.eye(1, 20)), k=4)
    # Repeated -1 padding is fine, and the values stay those of the definitions.
    padded = np.array([[0, -1, -1, -1], [7, 1, -1, -1]], dtype=np.int32)
    table = metrics.ranking_metrics(padded, rel, k=4)
    assert table.loc[4, "recall"] == 1.0 and table.loc[4, "map"] == pytest.approx(0.75)
    assert table.loc[4, "ndcg"] == pytest.approx(np.mean([1.0, 1 / np.log2(3)]), rel=1e-12)


def test_novelty_refuses_popularity_above_n_users() -> None:
    recs = np.array([[0, 1]], dtype=np.int32)
    with pytest.raises(ValueError, match=r"popularity .* between 0 and n_users \(30\); item 0"):
        metrics.novelty(recs[:, :1], np.full(20, 100), n_users=30, k=1)
    with pytest.raises(TypeError, match="popularity must hold real numbers"):
        metrics.novelty(recs, np.array(["1", "2"]), n_users=30, k=1)
    # A count equal to n_users is the largest allowed: information 0.
    got = metrics.novelty(recs, np.array([30, 15]), n_users=30, k=2)
    assert got == pytest.approx(np.mean(-np.log2(np.array([30, 15]) / 30)), rel=1e-12)


def test_rmse_and_mae_are_computed_in_float64_on_matching_shapes() -> None:
    assert metrics.rmse([100000001.0], [100000000.0]) == 1.0
    assert metrics.mae([100000001.0], [100000000.0]) == 1.0
    rng = np.random.default_rng(3)
    p, a = rng.standard_normal((2, 3)) * 1e3, rng.standard_normal((2, 3)) * 1e3
    assert metrics.rmse(p, a) == pytest.approx(np.sqrt(np.mean((p - a) ** 2)), rel=1e-14)
    assert metrics.mae(p, a) == pytest.approx(np.mean(np.abs(p - a)), rel=1e-14)
    # Errors whose squares overflow float64 still give the right root.
    huge = np.array([1e200, -3e200])
    want = 1e200 * np.sqrt(np.mean((huge / 1e200) ** 2))
    assert metrics.rmse(huge, np.zeros(2)) == pytest.approx(want, rel=1e-14)
    for fn in (metrics.rmse, metrics.mae):
        with pytest.raises(ValueError, match=r"predicted and actual differ in shape"):
            fn(np.ones((2, 3)), np.ones((3, 2)))
        with pytest.raises(ValueError, match=r"predicted and actual differ in shape"):
            fn(np.ones(3), np.ones((3, 1)))


def test_a_1d_sparse_truth_is_refused_clearly() -> None:
    recs = np.array([[0, 1], [2, 3]], dtype=np.int32)
    with pytest.raises(ValueError, match=r"relevant must be 2-D \(users x items\)"):
        metrics.ranking_metrics(recs, sp.csr_array(np.eye(2, 20))[0], k=2)


def test_ragged_or_non_numeric_lists_get_named_errors() -> None:
    rel = sp.csr_array(np.eye(2, 20, dtype=np.float32))
    with pytest.raises(ValueError, match=r"recommendations has rows of different lengths.*-1"):
        metrics.ranking_metrics([[1, 2], [3]], rel, k=1)
    with pytest.raises(ValueError, match="predicted has rows of different lengths"):
        metrics.rmse([[1.0, 2.0], [3.0]], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="actual has rows of different lengths"):
        metrics.mae([1.0, 2.0], [[1.0], [2.0, 3.0]])
    for call, name in (
        (lambda: metrics.rmse(["a"], ["b"]), "predicted"),
        (lambda: metrics.mae([1j], [0]), "predicted"),
        (lambda: metrics.mae([0.0], [1j]), "actual"),
        (lambda: metrics.rmse([1.0, None], [1.0, 2.0]), "predicted"),
        (lambda: metrics.rmse([1.0], [True]), "actual"),
    ):
        with pytest.raises(TypeError, match=f"{name} must hold real numbers"):
            call()


def test_coverage_refuses_a_catalogue_beyond_int32_ids():
    # The kernel marks each of n_items: 10**12 reached std::bad_alloc, 2**63 pybind11.
    for n_items in (10**12, 2**63):
        with pytest.raises(ValueError, match="n_items must be < 2"):
            metrics.catalog_coverage(np.array([[0, 1]]), n_items=n_items, k=2)


def test_rmse_and_mae_overflow_is_one_clean_error_without_a_numpy_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a leaked RuntimeWarning would fail here
        for fn, name in ((metrics.rmse, "rmse"), (metrics.mae, "mae")):
            with pytest.raises(ValueError, match=f"the {name} of predicted and actual overflows"):
                fn([1e308, -1e308], [-1e308, 1e308])
