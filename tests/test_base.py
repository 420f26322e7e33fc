"""The shared top-k selection every score-matrix model uses, against a brute-force sort."""

import numpy as np
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


def test_select_topk_matches_brute_force_with_ties_and_padding(rng):
    for trial in range(20):
        n, m, k = 7, 12, int(rng.integers(1, 15))
        # few distinct values, so ties cross the k-th position often
        scores = rng.integers(0, 4, size=(n, m)).astype(np.float32)
        exclude = sp.csr_array(rng.random((n, m)) < 0.3, dtype=np.float32)
        allowed = rng.random(m) < 0.8
        want_ids, want_scores = brute(scores, k, exclude.toarray(), allowed)
        ids, got = select_topk(scores.copy(), k, exclude=exclude, allowed=allowed)
        np.testing.assert_array_equal(ids, want_ids, err_msg=f"trial {trial}")
        np.testing.assert_array_equal(got, want_scores)
