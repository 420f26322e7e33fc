"""The shared top-k selection every score-matrix model uses, against a brute-force sort."""

import numpy as np
import pytest
import scipy.sparse as sp

from semrec._scoring import select_topk


def brute(scores, k, exclude, allowed):
    out_ids, out_scores = [], []
    for r, row in enumerate(scores):
        keep = [
            j
            for j in range(row.size)
            if allowed[j] and (exclude is None or exclude[r, j] == 0) and row[j] > -np.inf
        ]
        keep.sort(key=lambda j: (-row[j], j))
        keep = keep[:k]
        out_ids.append(keep + [-1] * (k - len(keep)))
        out_scores.append([row[j] for j in keep] + [-np.inf] * (k - len(keep)))
    return np.array(out_ids), np.array(out_scores, dtype=np.float32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_select_topk_matches_brute_force_with_ties_and_padding(rng, dtype):
    for trial in range(20):
        n, m, k = 7, 12, int(rng.integers(1, 15))
        # few distinct values, so ties cross the k-th position often
        scores = rng.integers(0, 4, size=(n, m)).astype(dtype)
        if dtype != np.int64:
            scores[rng.random((n, m)) < 0.1] = -np.inf  # never returned
        exclude = sp.csr_array(rng.random((n, m)) < 0.3, dtype=np.float32)
        allowed = rng.random(m) < 0.8
        want_ids, want_scores = brute(scores, k, exclude.toarray(), allowed)
        ids, got = select_topk(scores.copy(), k, exclude=exclude, allowed=allowed)
        np.testing.assert_array_equal(ids, want_ids, err_msg=f"trial {trial}")
        np.testing.assert_array_equal(got, want_scores)


def test_select_topk_ranks_float64_in_float64_and_any_thread_count(rng):
    # Two scores equal in float32 but not in float64: the float64 order decides, and the
    # result is the same on one thread and on two.
    scores = np.array([[1.0, 1.0 + 1e-12, 0.5, 1.0 + 2e-12]])
    ids, got = select_topk(scores, 3)
    assert ids.tolist() == [[3, 1, 0]]
    assert got.dtype == np.float32 and got.tolist() == [[1.0, 1.0, 1.0]]
    big = rng.standard_normal((300, 2_000))
    exclude = sp.csr_array(rng.random(big.shape) < 0.05, dtype=np.float32)
    one = select_topk(big, 50, exclude=exclude, num_threads=1)
    two = select_topk(big, 50, exclude=exclude, num_threads=2)
    np.testing.assert_array_equal(one[0], two[0])
    want_ids, _ = brute(big[:5], 50, exclude.toarray()[:5], np.ones(2_000, bool))
    np.testing.assert_array_equal(one[0][:5], want_ids)


def test_select_topk_refuses_exclusions_outside_the_block_rather_than_wrapping():
    # An int64 id of 2^32 + 1 must not wrap onto item 1 when the kernel takes int32 ids.
    exclude = sp.csr_array(
        (np.ones(1, np.float32), np.array([2**32 + 1], np.int64), np.array([0, 1], np.int64)),
        shape=(1, 2**33),
    )
    exclude._shape = (1, 3)  # a matrix whose shape check passes: only the ids are wrong
    with pytest.raises(IndexError, match=r"outside \[0, 3\)"):
        select_topk(np.array([[0.1, 0.2, 0.3]]), 2, exclude=exclude)


def test_an_item_with_a_zero_vector_has_no_similar_items():
    """ALS's item without interactions and Content's item without text have zero vectors:
    every cosine is 0, and the "most similar" would be the first k items by index. They get
    padding; other items still get NumPy's cosine ranking (zero rows score 0 there)."""
    import semrec

    rng = np.random.default_rng(0)
    dense = (rng.random((60, 12)) < 0.3).astype(np.float32)
    dense[:, 3] = 0
    clicks = sp.csr_array(dense)
    als = semrec.ALS(4, iterations=3, random_state=0, show_progress=False).fit(clicks)
    emb = rng.standard_normal((12, 5)).astype(np.float32)
    emb[3] = 0
    content = semrec.ContentRecommender(emb, show_progress=False).fit(clicks)
    for model, vectors in ((als, np.asarray(als.item_factors_)), (content, emb)):
        assert not vectors[3].any()
        ids, scores = model.similar_items(3, k=4)
        assert ids.tolist() == [-1] * 4 and np.isneginf(scores).all()
        norms = np.linalg.norm(vectors, axis=1)
        cos = vectors @ vectors[5] / np.maximum(norms * norms[5], 1e-30)
        cos[5] = -np.inf
        ids, scores = model.similar_items([5, 3], k=3)
        np.testing.assert_allclose(scores[0], np.sort(cos)[::-1][:3], rtol=1e-5, atol=1e-6)
        assert ids[1].tolist() == [-1] * 3


def test_raw_string_ids_point_to_the_dataset_index_maps():
    """A Dataset's raw ids (strings) given where indices go: the error names the map to use,
    and that map gives the indices the models take."""
    import pandas as pd

    import semrec
    from semrec.datasets import Dataset

    events = pd.DataFrame({"user": ["ann", "bob", "bob"], "item": ["tea", "tea", "mug"]})
    data = Dataset.from_pandas(events, "user", "item")
    model = semrec.ItemKNN(show_progress=False).fit(data.interactions)
    with pytest.raises(TypeError, match=r"not raw ids: map yours with dataset\.user_index"):
        model.recommend("ann")
    with pytest.raises(TypeError, match=r"dataset\.item_index\(ids\)"):
        model.similar_items(np.array(["mug"], dtype=object))
    ann = int(data.user_index(["ann"])[0])
    ids, _ = model.recommend(ann, k=1)
    assert data.item_ids[ids].tolist() == ["mug"]  # bob's other item, the only one unseen
    with pytest.raises(TypeError, match=r"got dtype float64$"):
        model.recommend(1.5)
