"""MMR re-ranking (semrec.diversify) against a brute-force NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest

import semrec
from semrec.metrics import intra_list_diversity
from semrec.rerank import minmax_rows


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def mmr_reference(ids, rel, emb, k, lam):
    """Brute force: every step recomputes each candidate's max cosine to all picks (float64)."""
    e = emb.astype(np.float64)
    e = e / np.linalg.norm(e, axis=1, keepdims=True)
    out_ids = np.full((ids.shape[0], k), -1)
    out_rel = np.full((ids.shape[0], k), -np.inf)
    for row in range(ids.shape[0]):
        picked: list[int] = []
        for step in range(k):
            best, best_value = -1, -np.inf
            for col in range(ids.shape[1]):
                item = ids[row, col]
                if item < 0 or item in [ids[row, p] for p in picked]:
                    continue
                if step == 0:
                    value = rel[row, col]
                else:
                    sim = max(float(e[item] @ e[ids[row, p]]) for p in picked)
                    value = lam * float(rel[row, col]) - (1 - lam) * sim
                if best < 0 or value > best_value:
                    best, best_value = col, value
            if best < 0:
                break
            picked.append(best)
            out_ids[row, step] = ids[row, best]
            out_rel[row, step] = rel[row, best]
    return out_ids, out_rel


def candidates(rng, n_users=12, n_cand=25, n_items=60):
    ids = np.stack([rng.permutation(n_items)[:n_cand] for _ in range(n_users)]).astype(np.int32)
    rel = rng.random((n_users, n_cand), dtype=np.float32)
    return ids, rel


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.7, 1.0])
def test_picks_what_brute_force_picks(rng, lam):
    emb = unit(rng.standard_normal((60, 16), dtype=np.float32))
    ids, rel = candidates(rng)
    got_ids, got_scores = semrec.diversify(ids, rel, emb, k=8, lambda_=lam, normalize="none")
    ref_ids, ref_rel = mmr_reference(ids, rel, emb, 8, lam)
    np.testing.assert_array_equal(got_ids, ref_ids)
    np.testing.assert_array_equal(got_scores, ref_rel.astype(np.float32))


def test_minmax_default_equals_reference_on_rescaled_scores(rng):
    emb = unit(rng.standard_normal((60, 16), dtype=np.float32))
    ids, rel = candidates(rng)
    raw = rel * 40.0 - 7.0  # a model's own scale
    lo, hi = raw.min(axis=1, keepdims=True), raw.max(axis=1, keepdims=True)
    ref_ids, _ = mmr_reference(ids, (raw - lo) / (hi - lo), emb, 6, 0.5)
    got_ids, got_scores = semrec.diversify(ids, raw, emb, k=6, lambda_=0.5)
    np.testing.assert_array_equal(got_ids, ref_ids)
    # Returned scores are the caller's, not the normalised ones.
    expected = np.array([[raw[r, list(ids[r]).index(i)] for i in got_ids[r]] for r in range(12)])
    np.testing.assert_array_equal(got_scores, expected)


def test_minmax_rows_equals_numpy(rng):
    s = rng.standard_normal((5, 9)).astype(np.float32)
    valid = rng.random((5, 9)) > 0.3
    valid[0] = False
    valid[1] = [True] + [False] * 8  # a single candidate: constant row
    got = minmax_rows(s, valid)
    for r in range(5):
        v = s[r, valid[r]].astype(np.float64)
        if v.size:
            span = v.max() - v.min()
            expected = (v - v.min()) / span if span > 0 else np.ones_like(v)
            np.testing.assert_allclose(got[r, valid[r]], expected, rtol=1e-6)
        np.testing.assert_array_equal(got[r, ~valid[r]], s[r, ~valid[r]])


def test_lambda_one_is_plain_topk(rng):
    emb = unit(rng.standard_normal((60, 8), dtype=np.float32))
    ids, rel = candidates(rng)
    got, _ = semrec.diversify(ids, rel, emb, k=10, lambda_=1.0)
    order = np.argsort(-rel, axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(got, np.take_along_axis(ids, order, axis=1))


def test_padding_and_short_rows(rng):
    emb = unit(rng.standard_normal((30, 8), dtype=np.float32))
    ids, rel = candidates(rng, n_users=4, n_cand=10, n_items=30)
    ids[0, [1, 4, 7]] = -1
    rel[0, [1, 4, 7]] = -np.inf  # the usual padding of recommend output
    ids[1] = -1
    ids[2, 3:] = -1  # only 3 real candidates for k=5
    got_ids, got_scores = semrec.diversify(ids, rel, emb, k=5, lambda_=0.4)
    lo = np.where(ids >= 0, rel, np.inf).min(axis=1, keepdims=True)
    hi = np.where(ids >= 0, rel, -np.inf).max(axis=1, keepdims=True)
    scaled = np.where(ids >= 0, (rel - lo) / np.where(hi > lo, hi - lo, 1), 0)
    ref_ids, _ = mmr_reference(ids, scaled, emb, 5, 0.4)
    np.testing.assert_array_equal(got_ids, ref_ids)
    assert (got_ids[1] == -1).all() and np.isneginf(got_scores[1]).all()
    assert (got_ids[2, 3:] == -1).all() and set(got_ids[2, :3]) == set(ids[2, :3])
    assert -1 not in got_ids[0]


def test_empty_inputs(rng):
    emb = unit(rng.standard_normal((5, 4), dtype=np.float32))
    ids, scores = semrec.diversify(np.zeros((3, 0), np.int32), np.zeros((3, 0)), emb, k=2)
    assert (ids == -1).all() and np.isneginf(scores).all() and ids.shape == (3, 2)
    ids, scores = semrec.diversify(np.zeros((0, 4), np.int32), np.zeros((0, 4)), emb, k=2)
    assert ids.shape == scores.shape == (0, 2)


def test_repeated_id_is_picked_once(rng):
    emb = unit(rng.standard_normal((5, 4), dtype=np.float32))
    ids = np.array([[3, 3, 1, 3]], dtype=np.int32)
    rel = np.array([[0.9, 0.8, 0.1, 0.7]], dtype=np.float32)
    got, _ = semrec.diversify(ids, rel, emb, k=3, lambda_=1.0)
    assert got.tolist() == [[3, 1, -1]]


def test_twin_candidates_tie_to_the_lower_id(rng):
    # Two candidates with the same embedding and relevance tie at every step: the first
    # (lower id) must win, whatever the dimension and position (a GEMV's sums differ by a
    # row's position, which used to break such ties by rounding, ~1.5% of these cases).
    later_twin = 0
    for _ in range(600):
        d, n = int(rng.integers(2, 64)), int(rng.integers(3, 12))
        emb = unit(rng.standard_normal((n + 1, d), dtype=np.float32))
        emb[n] = emb[n - 1]
        scores = rng.random(n + 1)
        scores[n], scores[0] = scores[n - 1], 2.0
        picked, _ = semrec.diversify(np.arange(n + 1), scores, emb, k=2, lambda_=0.5,
                                     normalize="none")  # fmt: skip
        later_twin += int(picked[1] == n)
    assert later_twin == 0


def test_unnormalised_embeddings_use_cosine(rng):
    emb = unit(rng.standard_normal((60, 16), dtype=np.float32))
    scaled = emb * rng.uniform(0.2, 5.0, (60, 1)).astype(np.float32)
    ids, rel = candidates(rng)
    a = semrec.diversify(ids, rel, emb, k=7, lambda_=0.5)
    b = semrec.diversify(ids, rel, scaled, k=7, lambda_=0.5)
    np.testing.assert_array_equal(a[0], b[0])


def test_same_result_for_any_thread_count(rng):
    emb = unit(rng.standard_normal((500, 32), dtype=np.float32))
    ids, rel = candidates(rng, n_users=300, n_cand=50, n_items=500)
    runs = [semrec.diversify(ids, rel, emb, k=10, num_threads=t) for t in (1, 2, 3)]
    for other in runs[1:]:
        np.testing.assert_array_equal(runs[0][0], other[0])
        np.testing.assert_array_equal(runs[0][1], other[1])


def test_single_list_gives_1d(rng):
    emb = unit(rng.standard_normal((60, 8), dtype=np.float32))
    ids, rel = candidates(rng)
    one_ids, one_scores = semrec.diversify(ids[3], rel[3], emb, k=4)
    many_ids, many_scores = semrec.diversify(ids, rel, emb, k=4)
    assert one_ids.shape == (4,)
    np.testing.assert_array_equal(one_ids, many_ids[3])
    np.testing.assert_array_equal(one_scores, many_scores[3])


def test_lower_lambda_raises_intra_list_diversity(rng):
    # Items come in tight clusters; relevance favours one cluster, so plain top-k is redundant.
    centres = np.eye(6, 16, dtype=np.float32)  # orthogonal clusters
    emb = unit(np.repeat(centres, 10, axis=0) + 0.05 * rng.standard_normal((60, 16)))
    ids = np.tile(np.arange(60, dtype=np.int32), (5, 1))
    rel = (np.repeat([1.0, 0.8, 0.6, 0.4, 0.2, 0.1], 10) + 0.01 * rng.random((5, 60))).astype(
        np.float32
    )
    plain, _ = semrec.diversify(ids, rel, emb, k=6, lambda_=1.0)
    diverse, _ = semrec.diversify(ids, rel, emb, k=6, lambda_=0.3)
    assert intra_list_diversity(plain, emb, k=6) < 0.1
    assert intra_list_diversity(diverse, emb, k=6) > 0.8
    assert {i // 10 for i in diverse[0]} == set(range(6))  # one item per cluster


def test_works_on_model_output(rng):
    import scipy.sparse as sp

    clicks = sp.random_array((30, 80), density=0.1, format="csr", rng=1, dtype=np.float32)
    model = semrec.ALS(factors=4, iterations=2, random_state=0, show_progress=False).fit(clicks)
    ids, scores = model.recommend(np.arange(30), k=40)
    emb = rng.standard_normal((80, 8), dtype=np.float32)
    out_ids, _out_scores = semrec.diversify(ids, scores, emb, k=10, lambda_=0.6)
    assert out_ids.shape == (30, 10)
    for r in range(30):
        assert set(out_ids[r]) <= set(ids[r])
        assert out_ids[r, 0] == ids[r, 0]  # first pick is the most relevant


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"item_embeddings": np.ones((60, 4))}, TypeError, "float32"),
        ({"ids": np.zeros((12, 25))}, TypeError, "integer"),
        ({"scores": np.zeros((12, 24), np.float32)}, ValueError, "same shape"),
        ({"lambda_": 1.5}, ValueError, r"\[0, 1\]"),
        ({"lambda_": "high"}, TypeError, "lambda_"),
        ({"k": 0}, ValueError, "k must be >= 1"),
        ({"normalize": "zscore"}, ValueError, "normalize"),
        ({"item_embeddings": np.ones((10, 4), np.float32)}, IndexError, "outside"),
        ({"item_embeddings": np.ones((0, 4), np.float32)}, ValueError, "empty"),
    ],
)
def test_bad_inputs_raise(rng, kwargs, error, match):
    ids, rel = candidates(rng)
    args = {
        "ids": ids,
        "scores": rel,
        "item_embeddings": unit(rng.standard_normal((60, 4), dtype=np.float32)),
        "k": 5,
    } | kwargs
    with pytest.raises(error, match=match):
        semrec.diversify(**args)


def test_nan_score_on_real_id_raises(rng):
    ids, rel = candidates(rng)
    rel[2, 5] = np.nan
    emb = unit(rng.standard_normal((60, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="row 2"):
        semrec.diversify(ids, rel, emb, k=5)
    ids[2, 5] = -1  # padding may carry any score
    assert semrec.diversify(ids, rel, emb, k=5)[0].shape == (12, 5)


class Ranked:
    """A model whose recommend returns fixed candidate lists (best first)."""

    def __init__(self, ids, rel):
        order = np.argsort(-rel, axis=1, kind="stable")
        self.ids = np.take_along_axis(ids, order, axis=1)
        self.rel = np.take_along_axis(rel, order, axis=1)
        self.asked = []

    def recommend(self, users, k=10, *, exclude_seen=True, items=None):
        self.asked.append(k)
        return self.ids[users, :k], self.rel[users, :k]


def test_diversified_model_reranks_its_top_candidates(rng):
    from semrec.rerank import Diversified

    emb = unit(rng.standard_normal((60, 16), dtype=np.float32))
    ids, rel = candidates(rng)
    model = Ranked(ids, rel)
    varied = Diversified(model, emb, 0.4, candidates=15, normalize="none")
    users = np.arange(ids.shape[0])
    got_ids, got_scores = varied.recommend(users, k=6)
    ref_ids, ref_rel = mmr_reference(model.ids[:, :15], model.rel[:, :15], emb, 6, 0.4)
    np.testing.assert_array_equal(got_ids, ref_ids)
    np.testing.assert_array_equal(got_scores, ref_rel.astype(np.float32))
    varied.recommend(users, k=20)  # more than `candidates`: asks the model for k
    assert model.asked == [15, 20]
    assert "lambda_=0.4" in repr(varied)
    with pytest.raises(TypeError, match="recommend"):
        Diversified(object(), emb)
    with pytest.raises(ValueError, match="lambda_"):
        Diversified(model, emb, 1.5)


def test_ragged_candidate_lists_are_refused_clearly():
    emb = np.eye(5, dtype=np.float32)
    with pytest.raises(ValueError, match=r"ids has rows of different lengths.*; pad .* -1"):
        semrec.diversify([[1, 2], [3]], [[1.0, 2.0], [3.0]], emb, 1)
    with pytest.raises(ValueError, match="scores has rows of different lengths"):
        semrec.diversify([[1, 2], [3, -1]], [[1.0, 2.0], [3.0]], emb, 1)


def test_a_huge_k_is_refused_at_once_and_a_small_one_pads():
    import time

    emb = np.eye(5, dtype=np.float32)
    ids, scores = np.array([[0, 1, 2]]), np.array([[1.0, 2.0, 3.0]])
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"k=1000000000 asks .*3 candidates per user: pass k <= 3"):
        semrec.diversify(ids, scores, emb, k=10**9)
    with pytest.raises(ValueError, match=r"k must be < 2\*\*31"):
        semrec.diversify(ids, scores, emb, k=2**31)
    assert time.perf_counter() - start < 5
    got_ids, got_scores = semrec.diversify(ids, scores, emb, k=5, lambda_=1.0)
    assert got_ids.tolist() == [[2, 1, 0, -1, -1]]
    assert got_scores.tolist() == [[3.0, 2.0, 1.0, -np.inf, -np.inf]]


# -- session 44 audit: the documented order and tie rule -------------------------------------------
def mmr_float64(ids, scores, emb, k, lam, normalize):
    """An independent MMR in float64 with the documented tie rule: the larger trade-off, then
    the higher score, then the lower id, wherever a candidate sits in its row."""
    ids = np.atleast_2d(ids)
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    e = emb.astype(np.float64)
    norms = np.linalg.norm(e, axis=1)
    e = e / np.where(norms > 0, norms, 1.0)[:, None]
    out = np.full((ids.shape[0], k), -1)
    for r in range(ids.shape[0]):
        real = [c for c in range(ids.shape[1]) if ids[r, c] >= 0]
        rel = scores[r].copy()
        if normalize == "minmax" and real:
            lo, hi = rel[real].min(), rel[real].max()
            rel[real] = (rel[real] - lo) / (hi - lo) if hi > lo else 1.0
        picked: list[int] = []
        for step in range(k):
            alive = [c for c in real if ids[r, c] not in picked]
            if not alive:
                break

            def value(c, picked=picked, rel=rel, r=r):
                if not picked:
                    return rel[c]
                return lam * rel[c] - (1 - lam) * max(e[ids[r, c]] @ e[p] for p in picked)

            best = max(alive, key=lambda c, r=r: (value(c), scores[r, c], -ids[r, c]))
            picked.append(int(ids[r, best]))
            out[r, step] = ids[r, best]
    return out


def test_lambda_one_is_the_exact_score_order_ties_to_the_lower_id(rng):
    emb = np.eye(8, dtype=np.float32)
    # scores distinct in float64 only, or in float32 only once an outlier stretches min-max
    got = semrec.diversify([0, 1, 2], [1.0, 1.0 + 1e-9, 0.5], emb, k=2, lambda_=1.0,
                           normalize="none")[0]  # fmt: skip
    assert got.tolist() == [1, 0]
    close = np.array([1000.0, np.nextafter(np.float32(1000), np.float32(2000)), -1e7], np.float32)
    assert semrec.diversify([0, 1, 2], close, emb, k=2, lambda_=1.0)[0].tolist() == [1, 0]
    # an exact tie goes to the lower id, not to the first column
    assert semrec.diversify([5, 2], [1.0, 1.0], emb, k=2, lambda_=1.0)[0].tolist() == [2, 5]
    for normalize in ("minmax", "none"):
        for _ in range(200):
            width = int(rng.integers(2, 9))
            ids = rng.integers(0, 8, width)  # repeats too
            ids[rng.random(width) < 0.2] = -1
            steps = rng.integers(0, 4, width).astype(np.float64)
            scores = 1000 + steps * 6.1e-5  # ulps of 1000 in float32, distinct in float64
            scores[rng.random(width) < 0.2] = -1e7
            got, got_scores = semrec.diversify(ids, scores, emb, k=4, lambda_=1.0,
                                               normalize=normalize)  # fmt: skip
            real = ids >= 0
            order = np.lexsort((ids[real], -scores[real]))
            want = list(dict.fromkeys(ids[real][order].tolist()))[:4]
            assert got.tolist() == want + [-1] * (4 - len(want))
            best = {i: scores[real][ids[real] == i].max() for i in want}
            np.testing.assert_array_equal(got_scores[: len(want)],
                                          np.float32([best[i] for i in want]))  # fmt: skip


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.5, 0.7, 1.0])
@pytest.mark.parametrize("normalize", ["minmax", "none"])
def test_unsorted_lists_match_a_float64_reference(rng, lam, normalize):
    for trial in range(40):
        n_items = 30
        # orthogonal items tie every trade-off (the score then the id decide); random ones not
        emb = np.eye(n_items, dtype=np.float32) if trial % 2 else rng.standard_normal(
            (n_items, 6)).astype(np.float32)  # fmt: skip
        ids = rng.integers(-1, n_items, (4, 10))
        scores = rng.integers(0, 4, (4, 10)).astype(np.float64)  # many exact ties
        got, _ = semrec.diversify(ids, scores, emb, k=5, lambda_=lam, normalize=normalize)
        np.testing.assert_array_equal(
            got, mmr_float64(ids, scores, emb, 5, lam, normalize), err_msg=f"trial {trial}"
        )


def test_empty_python_lists_are_no_candidates():
    ids, scores = semrec.diversify([], [], np.eye(3, dtype=np.float32), 3)
    assert ids.tolist() == [-1, -1, -1] and np.isneginf(scores).all()
    with pytest.raises(TypeError, match="integer item ids, got dtype float64"):
        semrec.diversify(np.array([1.0]), [1.0], np.eye(3, dtype=np.float32), 3)


def test_diversified_refuses_a_model_class():
    emb = np.eye(10, dtype=np.float32)
    for cls in (semrec.MostPopular, semrec.ALS, semrec.rerank.Diversified):
        with pytest.raises(TypeError, match=f"got the class {cls.__name__}; pass an instance"):
            semrec.rerank.Diversified(cls, emb)
