"""Tests for semrec.similarity: exact top-k search and item neighbour graphs.

Every expected result comes from the NumPy reference below (float64 scores, a stable sort by
(-score, id), padding with -1 / -inf), never from outputs recorded from the implementation.
"""

from collections.abc import Callable

import numpy as np
import pytest
import scipy.sparse as sp
from interrupts import ctrl_c

import semrec
from semrec.similarity import item_neighbours, topk

# ---------------------------------------------------------------------------------------------
# Independent reference


def _normalise(a: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(a, axis=1, keepdims=True)
    return np.divide(a, norms, out=np.zeros_like(a), where=norms > 0)


def ref_scores(queries: np.ndarray, items: np.ndarray, metric: str) -> np.ndarray:
    """The full (n_queries, n_items) score matrix in float64."""
    q = np.atleast_2d(queries).astype(np.float64)
    x = items.astype(np.float64)
    if metric == "cosine":
        q, x = _normalise(q), _normalise(x)
    return q @ x.T


def csr_coords(m) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of every stored entry of a CSR matrix, duplicates included."""
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    return rows, np.asarray(m.indices, dtype=np.int64)


def ref_allowed(n_queries: int, n_items: int, exclude=None, candidates=None) -> np.ndarray:
    """Boolean (n_queries, n_items): which items query i may return."""
    if candidates is None:
        allowed = np.ones((n_queries, n_items), dtype=bool)
    elif sp.issparse(candidates):
        allowed = np.zeros((n_queries, n_items), dtype=bool)
        allowed[csr_coords(candidates)] = True
    else:
        allowed = np.zeros((n_queries, n_items), dtype=bool)
        allowed[:, np.asarray(candidates, dtype=np.int64)] = True
    if exclude is not None:
        allowed[csr_coords(exclude)] = False
    return allowed


def ref_topk(scores: np.ndarray, allowed: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top k allowed items per row by (-score, id), padded with -1 / -inf (scores in float64)."""
    n_queries, n_items = scores.shape
    key = np.where(allowed, -scores, np.inf)  # disallowed items sort after every allowed one
    cols = np.broadcast_to(np.arange(n_items), scores.shape)
    order = np.lexsort((cols, key), axis=-1)[:, : min(k, n_items)]
    valid = np.take_along_axis(allowed, order, axis=1)
    ids = np.full((n_queries, k), -1, dtype=np.int32)
    out = np.full((n_queries, k), -np.inf, dtype=np.float64)
    m = order.shape[1]
    ids[:, :m] = np.where(valid, order, -1)
    out[:, :m] = np.where(valid, np.take_along_axis(scores, order, axis=1), -np.inf)
    return ids, out


def reference(queries, items, k, metric="cosine", exclude=None, candidates=None):
    scores = ref_scores(queries, items, metric)
    allowed = ref_allowed(scores.shape[0], scores.shape[1], exclude, candidates)
    ids, out = ref_topk(scores, allowed, k)
    return ids, out, scores, allowed


def tolerances(queries: np.ndarray, items: np.ndarray, metric: str) -> np.ndarray:
    """Per-query absolute score tolerance: 1e-5 + 1e-5 * (largest possible |score|)."""
    q = np.atleast_2d(queries).astype(np.float64)
    if metric == "cosine":
        scale = np.ones(q.shape[0])
    else:
        scale = np.linalg.norm(q, axis=1) * np.linalg.norm(items.astype(np.float64), axis=1).max()
    return 1e-5 + 1e-5 * scale


# ---------------------------------------------------------------------------------------------
# Helpers


def int_data(rng: np.random.Generator, *shape: int) -> np.ndarray:
    """Small integers as float32: every dot product is exact and ties are plentiful."""
    return rng.integers(-3, 4, size=shape).astype(np.float32)


def normal_data(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def random_csr(
    rng: np.random.Generator,
    n_rows: int,
    n_cols: int,
    max_per_row: int,
    *,
    kind=sp.csr_array,
    empty_rows=(),
    sort: bool = False,
    index_dtype=np.int32,
):
    """A CSR matrix whose rows hold random column ids, with duplicates and (unless sort) in
    arbitrary order; the stored values are all 1."""
    counts = rng.integers(0, max_per_row + 1, size=n_rows)
    counts[list(empty_rows)] = 0
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(counts)
    indices = rng.integers(0, n_cols, size=int(indptr[-1]))
    if sort:
        for i in range(n_rows):
            indices[indptr[i] : indptr[i + 1]].sort()
    data = np.ones(indices.size, dtype=np.float32)
    m = kind(
        (data, indices.astype(index_dtype), indptr.astype(index_dtype)), shape=(n_rows, n_cols)
    )
    # The constructor may shrink the index dtype; force the one asked for.
    m.indices = m.indices.astype(index_dtype)
    m.indptr = m.indptr.astype(index_dtype)
    return m


def check_output_format(ids: np.ndarray, scores: np.ndarray, shape: tuple[int, ...]) -> None:
    assert isinstance(ids, np.ndarray)
    assert isinstance(scores, np.ndarray)
    assert ids.dtype == np.int32
    assert scores.dtype == np.float32
    assert ids.shape == shape
    assert scores.shape == shape


def assert_exact(ids, scores, ref_ids, ref_out) -> None:
    check_output_format(ids, scores, ref_ids.shape)
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_array_equal(scores, ref_out.astype(np.float32))


def assert_close(ids, scores, full, allowed, k, tol) -> None:
    """Tolerance-aware comparison of a top-k answer with the float64 reference.

    full: reference score matrix; allowed: which items each row may return; tol: per row."""
    n_queries = full.shape[0]
    check_output_format(ids, scores, (n_queries, k))
    ref_ids, ref_out = ref_topk(full, allowed, k)
    for i in range(n_queries):
        n_valid = min(k, int(allowed[i].sum()))
        row_ids, row_scores = ids[i, :n_valid], scores[i, :n_valid]
        # Padding: exactly the missing tail, and nothing else.
        np.testing.assert_array_equal(ids[i, n_valid:], -1, err_msg=f"row {i}")
        np.testing.assert_array_equal(scores[i, n_valid:], -np.inf, err_msg=f"row {i}")
        assert (row_ids >= 0).all(), f"row {i}: padding among the first {n_valid}"
        assert (row_ids < full.shape[1]).all()
        assert np.unique(row_ids).size == n_valid, f"row {i}: repeated id"
        assert allowed[i, row_ids].all(), f"row {i}: returned an excluded/non-candidate item"
        assert np.isfinite(row_scores).all(), f"row {i}: non-finite score"
        # Best first, equal scores by lower id.
        assert (np.diff(row_scores) <= 0).all(), f"row {i}: scores not descending"
        tied = row_scores[1:] == row_scores[:-1]
        assert (row_ids[1:][tied] > row_ids[:-1][tied]).all(), f"row {i}: tie not by lower id"
        # Each score is the true score of its id, and rank by rank the true top-k scores.
        np.testing.assert_allclose(row_scores, full[i, row_ids], rtol=0, atol=tol[i])
        np.testing.assert_allclose(row_scores, ref_out[i, :n_valid], rtol=0, atol=tol[i])
        # Same set of ids, except for ids whose true score is near the boundary.
        if n_valid:
            boundary = ref_out[i, n_valid - 1]
            differ = np.setxor1d(row_ids, ref_ids[i, :n_valid])
            assert (np.abs(full[i, differ] - boundary) <= 2 * tol[i]).all(), (
                f"row {i}: ids {differ} differ from the reference away from the boundary"
            )


def run_and_check_close(queries, items, k, metric, exclude=None, candidates=None) -> None:
    ids, scores = topk(queries, items, k, metric=metric, exclude=exclude, candidates=candidates)
    _, _, full, allowed = reference(queries, items, k, metric, exclude, candidates)
    assert_close(ids, scores, full, allowed, k, tolerances(queries, items, metric))


# ---------------------------------------------------------------------------------------------
# Exact answers on integer-valued data (metric="dot"): ids and scores equal the reference.

EXACT_SHAPES = [
    # (n_queries, n_items, dim, k)
    (1, 1, 1, 1),
    (1, 10, 1, 3),
    (7, 50, 3, 5),
    (3, 20, 3, 25),  # k > n_items: padding
    (5, 20, 3, 20),  # k == n_items
    (7, 4097, 3, 10),  # just past one item block
    (1, 9001, 64, 50),
    (257, 4096, 1, 100),  # dim 1: almost everything ties
    (300, 4500, 100, 20),
    (600, 9500, 64, 7),
    (7, 9000, 3, 5000),  # k spans several item blocks
]


@pytest.mark.parametrize(("n_queries", "n_items", "dim", "k"), EXACT_SHAPES)
def test_exact_dot(n_queries: int, n_items: int, dim: int, k: int) -> None:
    rng = np.random.default_rng(1000 + n_queries * 7 + n_items + dim)
    queries, items = int_data(rng, n_queries, dim), int_data(rng, n_items, dim)
    ids, scores = topk(queries, items, k, metric="dot")
    ref_ids, ref_out, _, _ = reference(queries, items, k, "dot")
    assert_exact(ids, scores, ref_ids, ref_out)


EXACT_FILTER_SHAPES = [(7, 50, 3, 5), (300, 5000, 8, 20), (1, 9001, 3, 10), (260, 4100, 1, 30)]
FILTER_MODES = ["exclude", "candidates_array", "candidates_csr", "both_array", "both_csr"]


def make_filters(rng, mode: str, n_queries: int, n_items: int):
    exclude = candidates = None
    if "exclude" in mode or "both" in mode:
        exclude = random_csr(rng, n_queries, n_items, max(1, n_items // 5))
    if "array" in mode:
        candidates = rng.integers(0, n_items, size=max(1, n_items // 2))  # with duplicates
    elif "csr" in mode:
        empty = [0] if n_queries > 1 else []
        candidates = random_csr(rng, n_queries, n_items, max(1, n_items // 3), empty_rows=empty)
    return exclude, candidates


@pytest.mark.parametrize("mode", FILTER_MODES)
@pytest.mark.parametrize(("n_queries", "n_items", "dim", "k"), EXACT_FILTER_SHAPES)
def test_exact_dot_with_filters(n_queries: int, n_items: int, dim: int, k: int, mode: str) -> None:
    rng = np.random.default_rng(2000 + n_queries + n_items + FILTER_MODES.index(mode))
    queries, items = int_data(rng, n_queries, dim), int_data(rng, n_items, dim)
    exclude, candidates = make_filters(rng, mode, n_queries, n_items)
    ids, scores = topk(queries, items, k, metric="dot", exclude=exclude, candidates=candidates)
    ref_ids, ref_out, _, _ = reference(queries, items, k, "dot", exclude, candidates)
    assert_exact(ids, scores, ref_ids, ref_out)


# ---------------------------------------------------------------------------------------------
# Float data: tolerance-aware comparison.

FLOAT_SHAPES = [
    (1, 1, 1, 1),
    (5, 100, 8, 10),
    (3, 40, 3, 50),  # padding
    (300, 5000, 64, 20),
    (7, 9001, 32, 100),
    (600, 300, 100, 300),  # k == n_items
]


@pytest.mark.parametrize("metric", ["cosine", "dot"])
@pytest.mark.parametrize(("n_queries", "n_items", "dim", "k"), FLOAT_SHAPES)
def test_float(n_queries: int, n_items: int, dim: int, k: int, metric: str) -> None:
    rng = np.random.default_rng(3000 + n_queries + n_items + dim)
    queries, items = normal_data(rng, n_queries, dim), normal_data(rng, n_items, dim)
    if metric == "dot":  # rows of very different norms
        items *= rng.uniform(0.1, 10.0, size=(n_items, 1)).astype(np.float32)
    run_and_check_close(queries, items, k, metric)


@pytest.mark.parametrize("metric", ["cosine", "dot"])
@pytest.mark.parametrize("mode", FILTER_MODES)
def test_float_with_filters(metric: str, mode: str) -> None:
    rng = np.random.default_rng(4000 + FILTER_MODES.index(mode))
    n_queries, n_items, dim, k = 40, 4200, 16, 25
    queries, items = normal_data(rng, n_queries, dim), normal_data(rng, n_items, dim)
    exclude, candidates = make_filters(rng, mode, n_queries, n_items)
    run_and_check_close(queries, items, k, metric, exclude, candidates)


def test_default_metric_is_cosine() -> None:
    rng = np.random.default_rng(5)
    queries = normal_data(rng, 6, 8)
    items = normal_data(rng, 200, 8) * rng.uniform(0.1, 50, size=(200, 1)).astype(np.float32)
    ids, scores = topk(queries, items, 10)
    ids_c, scores_c = topk(queries, items, 10, metric="cosine")
    np.testing.assert_array_equal(ids, ids_c)
    np.testing.assert_array_equal(scores, scores_c)
    assert (np.abs(scores) <= 1 + 1e-5).all()
    run_and_check_close(queries, items, 10, "cosine")


# ---------------------------------------------------------------------------------------------
# Adversarial inputs


@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_duplicate_items(metric: str) -> None:
    rng = np.random.default_rng(6)
    base = int_data(rng, 30, 4)
    items = np.ascontiguousarray(np.concatenate([base, base, base[::-1], base[:5]]))
    queries = int_data(rng, 9, 4)
    if metric == "dot":
        ids, scores = topk(queries, items, 50, metric="dot")
        assert_exact(ids, scores, *reference(queries, items, 50, "dot")[:2])
    else:
        run_and_check_close(queries, items, 50, "cosine")
        run_and_check_close(normal_data(rng, 9, 4), items, 50, "cosine")


@pytest.mark.parametrize("metric", ["cosine", "dot"])
@pytest.mark.parametrize("n_copies", [2, 9, 100, 4096, 4180])
def test_identical_item_rows_tie_by_lower_id(metric: str, n_copies: int) -> None:
    """Copies of one float row are the same item: they must score bit-identically, wherever
    they sit in an item block, so they come out in id order."""
    rng = np.random.default_rng(60 + n_copies)
    items = np.ascontiguousarray(np.tile(normal_data(rng, 24), (n_copies, 1)))
    queries = normal_data(rng, 40, 24)
    k = min(n_copies, 20)
    ids, scores = topk(queries, items, k, metric=metric)
    np.testing.assert_array_equal(ids, np.tile(np.arange(k), (40, 1)))
    np.testing.assert_array_equal(scores, np.repeat(scores[:, :1], k, axis=1))
    # Every copy, not just the best k.
    ids, scores = topk(queries, items, n_copies, metric=metric)
    np.testing.assert_array_equal(ids, np.tile(np.arange(n_copies), (40, 1)))


@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_duplicate_item_rows_among_others(metric: str) -> None:
    """Copies of 30 rows: at the start, after an item block boundary, and reversed at the end."""
    rng = np.random.default_rng(61)
    base = normal_data(rng, 30, 24)
    filler = normal_data(rng, 4090, 24)
    items = np.ascontiguousarray(np.concatenate([base, filler, base, base[::-1]]))
    n_items = items.shape[0]
    queries = normal_data(rng, 20, 24)
    ids, scores = topk(queries, items, n_items, metric=metric)
    by_id = np.empty(ids.shape, dtype=np.float32)
    np.put_along_axis(by_id, ids, scores, axis=1)
    first, second, third = by_id[:, :30], by_id[:, 4120:4150], by_id[:, 4150:][:, ::-1]
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, third)
    rank = np.empty(ids.shape, dtype=np.int64)
    np.put_along_axis(rank, ids, np.arange(n_items)[None, :], axis=1)
    assert (rank[:, :30] < rank[:, 4120:4150]).all()


@pytest.mark.parametrize("dim", [3, 24, 100])
@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_duplicate_queries_give_identical_rows(metric: str, dim: int) -> None:
    rng = np.random.default_rng(7)
    base = normal_data(rng, 5, dim)
    # The same rows at many positions, across a query block boundary.
    queries = np.ascontiguousarray(np.concatenate([base] * 61 + [base[::-1]]))
    items = normal_data(rng, 5000, dim)
    ids, scores = topk(queries, items, 15, metric=metric)
    for r in range(queries.shape[0]):
        j = r % 5 if r < 305 else 4 - (r - 305)
        np.testing.assert_array_equal(ids[r], ids[j], err_msg=f"query {r} vs {j}")
        np.testing.assert_array_equal(scores[r], scores[j], err_msg=f"query {r} vs {j}")
    run_and_check_close(queries[:10], items, 15, metric)


def test_cosine_zero_vectors() -> None:
    rng = np.random.default_rng(8)
    queries = normal_data(rng, 6, 5)
    queries[[0, 3]] = 0.0
    items = normal_data(rng, 50, 5)
    items[[0, 7, 49]] = 0.0
    k = 20
    ids, scores = topk(queries, items, k, metric="cosine")
    run_and_check_close(queries, items, k, "cosine")
    # A zero query scores exactly 0 against everything: ties, so the lowest ids, exactly.
    for r in (0, 3):
        np.testing.assert_array_equal(ids[r], np.arange(k))
        np.testing.assert_array_equal(scores[r], np.zeros(k, dtype=np.float32))
    # Zero items score exactly 0 wherever they are returned.
    zero_items = np.isin(ids, [0, 7, 49])
    np.testing.assert_array_equal(scores[zero_items], 0.0)
    # All-zero inputs: every score is 0, never NaN.
    ids, scores = topk(np.zeros((2, 5), np.float32), np.zeros((4, 5), np.float32), 6)
    np.testing.assert_array_equal(ids, [[0, 1, 2, 3, -1, -1]] * 2)
    np.testing.assert_array_equal(scores, [[0, 0, 0, 0, -np.inf, -np.inf]] * 2)


def test_cosine_ignores_norms() -> None:
    rng = np.random.default_rng(9)
    queries, items = normal_data(rng, 4, 6), normal_data(rng, 100, 6)
    scaled = items * np.float32(1000.0)
    run_and_check_close(queries, scaled, 30, "cosine")
    tiny = items * np.float32(1e-3)
    run_and_check_close(queries * np.float32(1e-3), tiny, 30, "cosine")


@pytest.mark.parametrize("k", [1, 9, 10, 11, 1000])
def test_k_around_n_items(k: int) -> None:
    rng = np.random.default_rng(10)
    queries, items = int_data(rng, 4, 3), int_data(rng, 10, 3)
    ids, scores = topk(queries, items, k, metric="dot")
    assert_exact(ids, scores, *reference(queries, items, k, "dot")[:2])
    if k >= 10:
        assert (ids[:, 10:] == -1).all()
        assert np.isneginf(scores[:, 10:]).all()
        np.testing.assert_array_equal(np.sort(ids[:, :10], axis=1), np.tile(np.arange(10), (4, 1)))


@pytest.mark.parametrize("kind", [sp.csr_array, sp.csr_matrix])
def test_exclude_everything_for_some_rows(kind) -> None:
    rng = np.random.default_rng(11)
    n_queries, n_items, k = 5, 30, 4
    queries, items = int_data(rng, n_queries, 3), int_data(rng, n_items, 3)
    mask = np.zeros((n_queries, n_items), dtype=bool)
    mask[1] = True  # every item
    mask[3, :-2] = True  # all but two: padded row
    mask[4, ::2] = True
    exclude = kind(mask)
    ids, scores = topk(queries, items, k, metric="dot", exclude=exclude)
    assert_exact(ids, scores, *reference(queries, items, k, "dot", exclude)[:2])
    np.testing.assert_array_equal(ids[1], -1)
    np.testing.assert_array_equal(scores[1], -np.inf)
    assert (ids[3, 2:] == -1).all()
    assert set(ids[3, :2]) == {n_items - 2, n_items - 1}


# k = 100 in the batch scan: the selection buffer fills, is cut back and refills many times per
# query, ties straddle its bar, and a query may have fewer than k candidates left. Few queries
# over many items split each query's items into chunks whose lists are merged afterwards.
K100_SHAPES = [
    # (n_queries, n_items, dim): dim 1 or 2 small integers, so scores take a handful of values
    (3, 9000, 1),  # one query block, items split into chunks
    (9, 6000, 2),
    (600, 3000, 1),  # more than one query block
    (520, 1200, 2),
]


@pytest.mark.parametrize(("n_queries", "n_items", "dim"), K100_SHAPES)
@pytest.mark.parametrize("excluded", [0, 3])
def test_k100_ties_and_exclusion(n_queries: int, n_items: int, dim: int, excluded: int) -> None:
    rng = np.random.default_rng(90 + n_queries + dim + excluded)
    queries, items = int_data(rng, n_queries, dim), int_data(rng, n_items, dim)
    # About excluded / 10 of the items of every query (none when 0), random and unsorted.
    exclude = random_csr(rng, n_queries, n_items, excluded * n_items // 5) if excluded else None
    ids, scores = topk(queries, items, 100, metric="dot", exclude=exclude)
    assert_exact(ids, scores, *reference(queries, items, 100, "dot", exclude)[:2])
    one = topk(queries, items, 100, metric="dot", exclude=exclude, num_threads=1)
    assert_same_results((ids, scores), one)


@pytest.mark.parametrize("n_items", [100, 101, 130, 600])
def test_k100_more_than_the_candidates_left(n_items: int) -> None:
    """Rows keep 0, 1, 99, 100, 101 or all items after exclusion: short rows are padded."""
    rng = np.random.default_rng(95 + n_items)
    queries, items = int_data(rng, 6, 2), int_data(rng, n_items, 2)
    keep = [0, 1, 99, 100, 101, n_items]
    mask = np.ones((6, n_items), dtype=bool)
    for r, m in enumerate(keep):
        mask[r, rng.permutation(n_items)[: min(m, n_items)]] = False
    exclude = sp.csr_array(mask)
    for k in (99, 100, 101, n_items + 5):
        ids, scores = topk(queries, items, k, metric="dot", exclude=exclude)
        assert_exact(ids, scores, *reference(queries, items, k, "dot", exclude)[:2])
        for r, m in enumerate(keep):
            assert (ids[r, min(m, n_items, k) :] == -1).all()


@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_k100_float_scores_many_blocks(metric: str) -> None:
    """Float scores: the k = 100 lists of a batch equal the reference within rounding, and each
    query's list is the one it gets alone (the few-query path)."""
    rng = np.random.default_rng(97)
    queries, items = normal_data(rng, 530, 24), normal_data(rng, 7000, 24)
    exclude = random_csr(rng, 530, 7000, 300)
    ids, scores = topk(queries, items, 100, metric=metric, exclude=exclude)
    sub = slice(0, 530, 53)
    _, _, full, allowed = reference(queries[sub], items, 100, metric, exclude[sub])
    assert_close(ids[sub], scores[sub], full, allowed, 100, tolerances(queries[sub], items, metric))
    for i in (0, 263, 529):
        alone = topk(queries[i], items, 100, metric=metric, exclude=exclude[[i]])
        np.testing.assert_array_equal(alone[0], ids[i])
        np.testing.assert_array_equal(alone[1], scores[i])


def test_exclude_unsorted_duplicates_zero_values_int64() -> None:
    rng = np.random.default_rng(12)
    n_queries, n_items, k = 6, 40, 8
    queries, items = int_data(rng, n_queries, 3), int_data(rng, n_items, 3)
    ex = random_csr(rng, n_queries, n_items, 30, index_dtype=np.int64)
    ex.data[:] = 0.0  # stored values are ignored: an explicit zero still excludes
    assert ex.indices.dtype == np.int64
    # The rows really are unsorted and hold duplicates.
    rows = [ex.indices[ex.indptr[i] : ex.indptr[i + 1]] for i in range(n_queries)]
    assert any((np.diff(r) < 0).any() for r in rows)
    assert any(np.unique(r).size < r.size for r in rows)
    before = (ex.data.copy(), ex.indices.copy(), ex.indptr.copy())
    ids, scores = topk(queries, items, k, metric="dot", exclude=ex)
    assert_exact(ids, scores, *reference(queries, items, k, "dot", ex)[:2])
    for old, new in zip(before, (ex.data, ex.indices, ex.indptr), strict=True):
        np.testing.assert_array_equal(old, new)  # the caller's matrix is untouched


def test_exclude_as_ids_for_one_query() -> None:
    # A single 1-D query may list its excluded ids as a plain array (unsorted, duplicated).
    rng = np.random.default_rng(14)
    queries, items = int_data(rng, 1, 3), int_data(rng, 50, 3)
    ids_out = np.array([7, 3, 3, 40, 0], dtype=np.int64)
    mask = np.zeros((1, 50), dtype=bool)
    mask[0, ids_out] = True
    want = reference(queries, items, 6, "dot", sp.csr_array(mask))[:2]
    for exclude in (ids_out, ids_out.tolist(), ids_out.astype(np.int32)):
        ids, scores = topk(queries[0], items, 6, metric="dot", exclude=exclude)
        assert_exact(ids[None], scores[None], *want)
    index = semrec.ItemIndex(items, metric="dot")
    ids, scores = topk(queries[0], index, 6, exclude=ids_out)
    assert_exact(ids[None], scores[None], *want)
    with pytest.raises(IndexError, match="exclude holds item id 50"):
        topk(queries[0], items, 3, exclude=[1, 50])
    with pytest.raises(TypeError, match="exclude must hold integer"):
        topk(queries[0], items, 3, exclude=np.array([1.0]))
    ids, scores = topk(queries, items, 6, metric="dot", exclude=ids_out)  # one row: the same
    assert_exact(ids, scores, *want)
    with pytest.raises(TypeError, match="exclude"):  # several queries: a CSR matrix only
        topk(np.vstack([queries, queries]), items, 3, exclude=ids_out)


def test_exclude_csr_matrix_and_bool_values() -> None:
    rng = np.random.default_rng(13)
    queries, items = normal_data(rng, 5, 7), normal_data(rng, 60, 7)
    mask = rng.random((5, 60)) < 0.5
    for exclude in (sp.csr_matrix(mask), sp.csr_array(mask)):
        run_and_check_close(queries, items, 12, "cosine", exclude=exclude)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_candidates_array_duplicates(dtype) -> None:
    rng = np.random.default_rng(14)
    queries, items = int_data(rng, 5, 3), int_data(rng, 50, 3)
    candidates = np.array([7, 3, 7, 7, 40, 3, 0], dtype=dtype)
    ids, scores = topk(queries, items, 6, metric="dot", candidates=candidates)
    assert_exact(ids, scores, *reference(queries, items, 6, "dot", candidates=candidates)[:2])
    # Four distinct candidates: each returned once, then padding.
    np.testing.assert_array_equal(np.sort(ids[:, :4], axis=1), np.tile([0, 3, 7, 40], (5, 1)))
    assert (ids[:, 4:] == -1).all()
    assert np.isneginf(scores[:, 4:]).all()
    ids, scores = topk(queries, items, 2, metric="dot", candidates=np.array([3, 3, 3], dtype))
    np.testing.assert_array_equal(ids, np.tile([3, -1], (5, 1)))


def test_candidates_empty_array() -> None:
    rng = np.random.default_rng(15)
    queries, items = normal_data(rng, 3, 4), normal_data(rng, 20, 4)
    ids, scores = topk(queries, items, 5, candidates=np.array([], dtype=np.int64))
    check_output_format(ids, scores, (3, 5))
    assert (ids == -1).all()
    assert np.isneginf(scores).all()


@pytest.mark.parametrize("kind", [sp.csr_array, sp.csr_matrix])
def test_candidates_csr_with_exclude(kind) -> None:
    rng = np.random.default_rng(16)
    n_queries, n_items, k = 8, 100, 6
    queries, items = int_data(rng, n_queries, 3), int_data(rng, n_items, 3)
    candidates = random_csr(rng, n_queries, n_items, 12, kind=kind, empty_rows=[2, 5], sort=True)
    # Exclude half of every row's candidates, and everything in row 7.
    mask = np.zeros((n_queries, n_items), dtype=bool)
    rows, cols = csr_coords(candidates)
    mask[rows[::2], cols[::2]] = True
    mask[7] = True
    exclude = kind(mask)
    ids, scores = topk(queries, items, k, metric="dot", exclude=exclude, candidates=candidates)
    assert_exact(ids, scores, *reference(queries, items, k, "dot", exclude, candidates)[:2])
    for r in (2, 5, 7):
        assert (ids[r] == -1).all()
    for r in range(n_queries):
        assert not mask[r, ids[r][ids[r] >= 0]].any()


def test_candidates_csr_unsorted_duplicates() -> None:
    rng = np.random.default_rng(17)
    n_queries, n_items, k = 10, 300, 15
    queries, items = int_data(rng, n_queries, 3), int_data(rng, n_items, 3)
    candidates = random_csr(rng, n_queries, n_items, 40, empty_rows=[9])
    before = candidates.indices.copy()
    ids, scores = topk(queries, items, k, metric="dot", candidates=candidates)
    assert_exact(ids, scores, *reference(queries, items, k, "dot", candidates=candidates)[:2])
    np.testing.assert_array_equal(candidates.indices, before)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_candidates_per_query_array_padded(dtype) -> None:
    # Rows in any order, repeats and -1 slots: the same lists as a CSR, and exact (NumPy).
    rng = np.random.default_rng(19)
    n_queries, n_items, k = 6, 200, 7
    queries, items = int_data(rng, n_queries, 3), int_data(rng, n_items, 3)
    lists = rng.integers(0, n_items, (n_queries, 30)).astype(dtype)
    lists[rng.random(lists.shape) < 0.3] = -1
    lists[4] = -1  # a query with no candidate
    lists[5, :5] = lists[5, 5]  # repeats
    rows, cols = np.nonzero(lists >= 0)
    csr = sp.csr_array(
        (np.ones(rows.size, np.float32), (rows, lists[rows, cols])), shape=(n_queries, n_items)
    )
    mask = rng.random((n_queries, n_items)) < 0.2
    for exclude in (None, sp.csr_array(mask)):
        ids, scores = topk(queries, items, k, metric="dot", candidates=lists, exclude=exclude)
        want = reference(queries, items, k, "dot", exclude, csr)
        assert_exact(ids, scores, *want[:2])
        index = semrec.ItemIndex(items, metric="dot")
        got = topk(queries, index, k, candidates=lists, exclude=exclude)
        np.testing.assert_array_equal(got[0], ids)
        np.testing.assert_array_equal(got[1], scores)
    assert (ids[4] == -1).all()
    as_list = topk(queries, items, k, metric="dot", candidates=lists.tolist())  # any array-like
    np.testing.assert_array_equal(
        as_list[0], topk(queries, items, k, metric="dot", candidates=csr)[0]
    )
    # One query: a 1-row array.
    one = topk(queries[0], items, k, metric="dot", candidates=lists[:1])
    np.testing.assert_array_equal(
        one[0], topk(queries[:1], items, k, metric="dot", candidates=csr[[0]])[0][0]
    )


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_candidates_per_query_array_errors(dtype) -> None:
    rng = np.random.default_rng(20)
    queries, items = normal_data(rng, 3, 4), normal_data(rng, 20, 4)
    for bad in (20, -2):
        lists = np.zeros((3, 4), dtype=dtype)
        lists[1, 2] = bad
        with pytest.raises(
            IndexError, match=rf"candidates hold.* item id {bad}, outside \[0, 20\)"
        ):
            topk(queries, items, 2, candidates=lists)
    with pytest.raises(ValueError, match=r"candidates .*shape \(3, slots\)"):
        topk(queries, items, 2, candidates=np.zeros((2, 4), dtype))
    with pytest.raises(TypeError, match="candidates must hold integer item ids"):
        topk(queries, items, 2, candidates=np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="pad short rows with -1"):
        topk(queries, items, 2, candidates=[[1, 2], [3], [4, 5]])


@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_one_long_candidate_list_split_over_threads(metric: str) -> None:
    # One query's list longer than a thread's slice: scored in parallel, same bits as the full
    # scan on any thread count, exclusions applied.
    rng = np.random.default_rng(21)
    items = rng.standard_normal((20_000, 40)).astype(np.float32)
    query = rng.standard_normal(40).astype(np.float32)
    listed = rng.choice(20_000, 3_000, replace=False)
    seen = listed[::3]
    full_ids, full_scores = topk(query, items, 20_000, metric=metric, num_threads=1)
    keep = np.isin(full_ids, listed) & ~np.isin(full_ids, seen)
    want_ids, want_scores = full_ids[keep][:50], full_scores[keep][:50]
    one_row = sp.csr_array((np.ones(3000), listed, [0, 3000]), shape=(1, 20_000))
    for threads in (1, 2, 3):
        for cand in (listed[None, :], one_row):
            ids, scores = topk(
                query, items, 50, metric=metric, candidates=cand, exclude=seen, num_threads=threads
            )
            np.testing.assert_array_equal(ids, want_ids)
            np.testing.assert_array_equal(scores, want_scores)


def test_single_query_1d() -> None:
    rng = np.random.default_rng(18)
    items = normal_data(rng, 500, 12)
    query = normal_data(rng, 12)
    for metric in ("cosine", "dot"):
        ids, scores = topk(query, items, 7, metric=metric)
        check_output_format(ids, scores, (7,))
        ids2, scores2 = topk(query[None, :], items, 7, metric=metric)
        np.testing.assert_array_equal(ids, ids2[0])
        np.testing.assert_array_equal(scores, scores2[0])
        full = ref_scores(query, items, metric)
        tol = tolerances(query, items, metric)
        assert_close(ids[None], scores[None], full, np.ones_like(full, bool), 7, tol)
    # Exact, with padding and candidates.
    items_i, query_i = int_data(rng, 5, 3), int_data(rng, 3)
    ids, scores = topk(query_i, items_i, 8, metric="dot")
    ref_ids, ref_out, _, _ = reference(query_i, items_i, 8, "dot")
    assert_exact(ids, scores, ref_ids[0], ref_out[0])
    cands = np.array([4, 1, 4], dtype=np.int64)
    ids, scores = topk(query_i, items_i, 3, metric="dot", candidates=cands)
    ref_ids, ref_out, _, _ = reference(query_i, items_i, 3, "dot", candidates=cands)
    assert_exact(ids, scores, ref_ids[0], ref_out[0])


@pytest.mark.parametrize("k", [1, 5, 30])
def test_zero_queries(k: int) -> None:
    rng = np.random.default_rng(19)
    items = normal_data(rng, 20, 4)
    queries = np.zeros((0, 4), dtype=np.float32)
    ids, scores = topk(queries, items, k)
    check_output_format(ids, scores, (0, k))
    exclude = sp.csr_array((0, 20), dtype=np.float32)
    ids, scores = topk(queries, items, k, exclude=exclude, candidates=exclude)
    check_output_format(ids, scores, (0, k))


def test_views_and_read_only_inputs() -> None:
    rng = np.random.default_rng(20)
    big_q, big_x = int_data(rng, 20, 3), int_data(rng, 80, 3)
    queries, items = big_q[3:11], big_x[1:70]  # C-contiguous views at an offset
    assert queries.flags.c_contiguous and items.flags.c_contiguous
    ids, scores = topk(queries, items, 9, metric="dot")
    assert_exact(ids, scores, *reference(queries, items, 9, "dot")[:2])
    ro_q, ro_x = queries.copy(), items.copy()
    ro_q.setflags(write=False)
    ro_x.setflags(write=False)
    ids2, scores2 = topk(ro_q, ro_x, 9, metric="dot")
    np.testing.assert_array_equal(ids, ids2)
    np.testing.assert_array_equal(scores, scores2)


def test_inputs_not_modified() -> None:
    rng = np.random.default_rng(21)
    queries, items = normal_data(rng, 6, 5), normal_data(rng, 40, 5)
    queries[0] = 0.0
    q0, x0 = queries.copy(), items.copy()
    cands = np.array([5, 1, 5, 30, 2], dtype=np.int64)
    c0 = cands.copy()
    topk(queries, items, 3, metric="cosine", candidates=cands)
    item_neighbours(items, 3, metric="cosine")
    np.testing.assert_array_equal(queries, q0)
    np.testing.assert_array_equal(items, x0)
    np.testing.assert_array_equal(cands, c0)


def test_check_finite_false_same_result() -> None:
    rng = np.random.default_rng(22)
    queries, items = normal_data(rng, 9, 6), normal_data(rng, 300, 6)
    a = topk(queries, items, 10)
    b = topk(queries, items, 10, check_finite=False)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_numpy_integer_k() -> None:
    rng = np.random.default_rng(23)
    queries, items = int_data(rng, 3, 3), int_data(rng, 30, 3)
    ids, scores = topk(queries, items, np.int64(4), metric="dot")
    assert_exact(ids, scores, *reference(queries, items, 4, "dot")[:2])


# ---------------------------------------------------------------------------------------------
# Threads: bit-identical results for any thread count.


def assert_same_results(a, b) -> None:
    """Two (ids, scores) results are bitwise equal."""
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_threads_many_queries(metric: str) -> None:
    rng = np.random.default_rng(24)
    queries, items = normal_data(rng, 700, 32), normal_data(rng, 10000, 32)
    one = topk(queries, items, 10, metric=metric, num_threads=1)
    for threads in (2, 0, None, 5):
        assert_same_results(one, topk(queries, items, 10, metric=metric, num_threads=threads))
    sub = slice(0, 700, 70)
    full = ref_scores(queries[sub], items, metric)
    tol = tolerances(queries[sub], items, metric)
    assert_close(one[0][sub], one[1][sub], full, np.ones_like(full, bool), 10, tol)


@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_threads_single_query_many_items(metric: str) -> None:
    rng = np.random.default_rng(25)
    queries, items = normal_data(rng, 1, 32), normal_data(rng, 50000, 32)
    for q in (queries, queries[0]):  # a batch of one and a single 1-D query
        one = topk(q, items, 100, metric=metric, num_threads=1)
        for threads in (2, 0):
            assert_same_results(one, topk(q, items, 100, metric=metric, num_threads=threads))
    run_and_check_close(queries, items, 100, metric)


def test_threads_with_filters() -> None:
    rng = np.random.default_rng(26)
    queries, items = normal_data(rng, 300, 16), normal_data(rng, 9000, 16)
    exclude = random_csr(rng, 300, 9000, 500)
    candidates = random_csr(rng, 300, 9000, 3000, empty_rows=[0, 299])
    kw = {"exclude": exclude, "candidates": candidates, "metric": "cosine"}
    assert_same_results(
        topk(queries, items, 20, num_threads=1, **kw), topk(queries, items, 20, num_threads=2, **kw)
    )
    arr = rng.integers(0, 9000, size=5000)
    kw = {"exclude": exclude, "candidates": arr, "metric": "dot"}
    assert_same_results(
        topk(queries, items, 20, num_threads=1, **kw), topk(queries, items, 20, num_threads=2, **kw)
    )


def test_get_num_threads() -> None:
    n = semrec.get_num_threads()
    assert isinstance(n, int)
    assert n >= 1


def test_reexports() -> None:
    assert semrec.topk is topk
    assert semrec.item_neighbours is item_neighbours


# ---------------------------------------------------------------------------------------------
# item_neighbours


def ref_neighbours(embeddings: np.ndarray, k: int, metric: str):
    n = embeddings.shape[0]
    full = ref_scores(embeddings, embeddings, metric)
    allowed = ~np.eye(n, dtype=bool)
    ids, out = ref_topk(full, allowed, k)
    return ids, out, full, allowed


def neighbour_rows(graph, k: int) -> tuple[np.ndarray, np.ndarray]:
    """A neighbour graph's rows as top-k (ids, scores), best first, ties by lower id."""
    n = graph.shape[0]
    ids = np.full((n, k), -1, dtype=np.int32)
    scores = np.full((n, k), -np.inf, dtype=np.float32)
    for i in range(n):
        cols = graph.indices[graph.indptr[i] : graph.indptr[i + 1]]
        vals = graph.data[graph.indptr[i] : graph.indptr[i + 1]]
        order = np.lexsort((cols, -vals.astype(np.float64)))[:k]
        ids[i, : order.size] = cols[order]
        scores[i, : order.size] = vals[order]
    return ids, scores


def check_graph_format(graph, n: int, k: int) -> None:
    assert isinstance(graph, sp.csr_array)
    assert graph.shape == (n, n)
    assert graph.data.dtype == np.float32
    np.testing.assert_array_equal(np.diff(graph.indptr), min(k, n - 1))
    rows, cols = csr_coords(graph)
    assert (rows != cols).all(), "self loop"
    for i in range(n):
        row = graph.indices[graph.indptr[i] : graph.indptr[i + 1]]
        assert np.unique(row).size == row.size, f"row {i}: repeated neighbour"


@pytest.mark.parametrize(
    ("n", "dim", "k"), [(1, 3, 1), (2, 3, 1), (5, 3, 4), (5, 3, 10), (50, 1, 7), (700, 3, 20)]
)
def test_item_neighbours_exact(n: int, dim: int, k: int) -> None:
    rng = np.random.default_rng(27 + n + k)
    emb = int_data(rng, n, dim)
    graph = item_neighbours(emb, k, metric="dot")
    check_graph_format(graph, n, k)
    ref_ids, ref_out, _, _ = ref_neighbours(emb, k, "dot")
    ids, scores = neighbour_rows(graph, k)
    assert_exact(ids, scores, ref_ids, ref_out)


@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_item_neighbours_float(metric: str) -> None:
    rng = np.random.default_rng(28)
    n, k = 400, 12
    emb = normal_data(rng, n, 16)
    emb[[3, 200]] = 0.0  # zero vectors
    emb[10] = emb[11]  # a duplicate: still a neighbour, only self is excluded
    graph = item_neighbours(emb, k, metric=metric)
    check_graph_format(graph, n, k)
    _, _, full, allowed = ref_neighbours(emb, k, metric)
    ids, scores = neighbour_rows(graph, k)
    assert_close(ids, scores, full, allowed, k, tolerances(emb, emb, metric))
    if metric == "cosine":
        assert 11 in ids[10] and 10 in ids[11]


def test_item_neighbours_default_metric_and_threads() -> None:
    rng = np.random.default_rng(29)
    emb = normal_data(rng, 3000, 24)
    g1 = item_neighbours(emb, 10, num_threads=1)
    g2 = item_neighbours(emb, 10, num_threads=2)
    gc = item_neighbours(emb, 10, metric="cosine", num_threads=0)
    for g in (g2, gc):
        np.testing.assert_array_equal(g1.indptr, g.indptr)
        np.testing.assert_array_equal(g1.indices, g.indices)
        np.testing.assert_array_equal(g1.data, g.data)
    sub = emb[:300]
    full = ref_scores(sub, emb, "cosine")
    allowed = ~np.eye(300, 3000, dtype=bool)
    ids, scores = neighbour_rows(g1, 10)
    tol = tolerances(sub, emb, "cosine")
    assert_close(ids[:300], scores[:300], full, allowed, 10, tol)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        pytest.param({"embeddings": np.zeros((5, 3))}, TypeError, "embeddings", id="float64"),
        pytest.param({"k": 0}, ValueError, r"\bk\b", id="k0"),
        pytest.param({"k": 1.5}, TypeError, r"\bk\b", id="k-float"),
        pytest.param({"metric": "l2"}, ValueError, "metric", id="metric"),
        pytest.param({"num_threads": -1}, ValueError, "num_threads", id="threads"),
        pytest.param(
            {"embeddings": np.zeros((3, 10), np.float32)[:, ::2]},
            ValueError,
            "embeddings",
            id="non-contiguous",
        ),
    ],
)
def test_item_neighbours_errors(kwargs: dict, exc: type[Exception], match: str) -> None:
    args = {"embeddings": np.ones((5, 3), np.float32), "k": 2} | kwargs
    with pytest.raises(exc, match=match):
        item_neighbours(**args)


# ---------------------------------------------------------------------------------------------
# Bad inputs: the right exception, naming the argument.

NQ, NI, DIM = 4, 9, 5


def _q() -> np.ndarray:
    return np.random.default_rng(30).standard_normal((NQ, DIM)).astype(np.float32)


def _x() -> np.ndarray:
    return np.random.default_rng(31).standard_normal((NI, DIM)).astype(np.float32)


def _csr(n_rows: int = NQ, n_cols: int = NI):
    m = np.zeros((n_rows, n_cols), dtype=np.float32)
    m[:, :2] = 1.0
    return sp.csr_array(m)


def _malformed_indptr_decreasing():
    m = _csr()  # indptr [0, 2, 4, 6, 8]
    m.indptr[1] = 5
    return m


def _malformed_indptr_end():
    m = _csr()
    m.indptr[-1] = m.indices.size + 3
    return m


def _index_out_of_range(value: int):
    m = _csr()
    m.indices[3] = value
    return m


def _nan_at(a: np.ndarray, value: float) -> np.ndarray:
    a[1, 2] = value
    return a


def _fortran(a: np.ndarray) -> np.ndarray:
    f = np.asfortranarray(a)
    assert not f.flags.c_contiguous
    return f


def _strided(a: np.ndarray) -> np.ndarray:
    wide = np.repeat(a, 2, axis=1)
    view = wide[:, ::2]
    assert not view.flags.c_contiguous
    return view


BAD = [
    # wrong types / dtypes
    ("queries", lambda: _q().astype(np.float64), TypeError, "queries"),
    ("queries", lambda: _q().astype(np.int32), TypeError, "queries"),
    ("queries", lambda: _q().astype(np.float16), TypeError, "queries"),
    ("items", lambda: _x().astype(np.float64), TypeError, "items"),
    ("items", lambda: _x().astype(np.int64), TypeError, "items"),
    ("exclude", lambda: _csr().tocoo(), TypeError, "exclude"),
    ("exclude", lambda: _csr().tocsc(), TypeError, "exclude"),
    ("exclude", lambda: _csr().toarray(), TypeError, "exclude"),
    ("candidates", lambda: _csr().tocoo(), TypeError, "candidates"),
    ("candidates", lambda: _csr().tocsc(), TypeError, "candidates"),
    ("candidates", lambda: np.array([1.0, 2.0]), TypeError, "candidates"),
    ("k", lambda: 2.0, TypeError, r"\bk\b"),
    ("k", lambda: "3", TypeError, r"\bk\b"),
    ("k", lambda: None, TypeError, r"\bk\b"),
    # layout
    ("queries", lambda: _fortran(_q()), ValueError, "queries"),
    ("queries", lambda: _strided(_q()), ValueError, "queries"),
    ("queries", lambda: _q()[::-1], ValueError, "queries"),
    ("queries", lambda: np.repeat(_q()[0], 2)[::2], ValueError, "queries"),
    ("items", lambda: _fortran(_x()), ValueError, "items"),
    ("items", lambda: np.ascontiguousarray(_x().T).T, ValueError, "items"),
    ("items", lambda: _strided(_x()), ValueError, "items"),
    # shapes and values
    ("queries", lambda: np.zeros((NQ, DIM + 1), np.float32), ValueError, "queries|items"),
    ("queries", lambda: np.zeros(DIM - 1, np.float32), ValueError, "queries|items"),
    ("items", lambda: np.zeros((NI, DIM + 2), np.float32), ValueError, "queries|items"),
    ("items", lambda: np.zeros((0, DIM), np.float32), ValueError, "items"),
    ("queries", lambda: _nan_at(_q(), np.nan), ValueError, "queries"),
    ("queries", lambda: _nan_at(_q(), np.inf), ValueError, "queries"),
    ("items", lambda: _nan_at(_x(), np.nan), ValueError, "items"),
    ("items", lambda: _nan_at(_x(), -np.inf), ValueError, "items"),
    ("k", lambda: 0, ValueError, r"\bk\b"),
    ("k", lambda: -3, ValueError, r"\bk\b"),
    ("metric", lambda: "euclidean", ValueError, "metric"),
    ("metric", lambda: "", ValueError, "metric"),
    ("exclude", lambda: _csr(NQ + 1, NI), ValueError, "exclude"),
    ("exclude", lambda: _csr(NQ, NI + 1), ValueError, "exclude"),
    ("exclude", lambda: _csr(NQ, NI - 1), ValueError, "exclude"),
    ("exclude", _malformed_indptr_decreasing, ValueError, "exclude"),
    ("exclude", _malformed_indptr_end, ValueError, "exclude"),
    ("candidates", lambda: _csr(NQ - 1, NI), ValueError, "candidates"),
    ("candidates", lambda: _csr(NQ, NI + 1), ValueError, "candidates"),
    ("candidates", _malformed_indptr_decreasing, ValueError, "candidates"),
    ("num_threads", lambda: -1, ValueError, "num_threads"),
    # indices out of range
    ("candidates", lambda: np.array([0, -1], np.int64), IndexError, "candidates"),
    ("candidates", lambda: np.array([NI], np.int64), IndexError, "candidates"),
    ("candidates", lambda: np.array([2, 100], np.int32), IndexError, "candidates"),
    ("candidates", lambda: _index_out_of_range(NI), IndexError, "candidates"),
    ("candidates", lambda: _index_out_of_range(-1), IndexError, "candidates"),
    ("exclude", lambda: _index_out_of_range(NI), IndexError, "exclude"),
    ("exclude", lambda: _index_out_of_range(-2), IndexError, "exclude"),
]


@pytest.mark.parametrize(
    ("arg", "make", "exc", "match"),
    [pytest.param(*case, id=f"{case[0]}-{case[2].__name__}-{i}") for i, case in enumerate(BAD)],
)
def test_bad_inputs(arg: str, make: Callable, exc: type[Exception], match: str) -> None:
    kwargs = {"queries": _q(), "items": _x(), "k": 3} | {arg: make()}
    with pytest.raises(exc, match=match):
        topk(**kwargs)


@pytest.mark.parametrize(
    ("arg", "value"),
    [("queries", np.zeros((2, 3, DIM), np.float32)), ("items", np.zeros(DIM, np.float32))],
)
def test_bad_ndim(arg: str, value: np.ndarray) -> None:
    kwargs = {"queries": _q(), "items": _x(), "k": 3} | {arg: value}
    with pytest.raises((ValueError, TypeError), match=arg):
        topk(**kwargs)


# ---------------------------------------------------------------------------------------------
# One summation order everywhere: a score does not depend on the batch or the code path


@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_scores_do_not_depend_on_batch_or_path(metric: str) -> None:
    rng = np.random.default_rng(7)
    items = rng.standard_normal((3000, 48)).astype(np.float32)
    queries = rng.standard_normal((40, 48)).astype(np.float32)
    ids, scores = topk(queries, items, 25, metric=metric)
    for i in (0, 17, 39):  # alone (per-query scan) versus inside the batch (tiled kernel)
        one_ids, one_scores = topk(queries[i], items, 25, metric=metric)
        np.testing.assert_array_equal(one_ids, ids[i])
        np.testing.assert_array_equal(one_scores, scores[i])
    # Per-query candidate lists holding every item take the gather path: same bits again.
    everything = sp.csr_array(np.ones((40, 3000), dtype=np.float32))
    cand_ids, cand_scores = topk(queries, items, 25, metric=metric, candidates=everything)
    np.testing.assert_array_equal(cand_ids, ids)
    np.testing.assert_array_equal(cand_scores, scores)


def test_ctrl_c_interrupts_a_long_search() -> None:
    out = ctrl_c(
        """
        import numpy as np, semrec
        x = np.ones((200_000, 256), np.float32)
        """,
        """
        for _ in range(100):  # hours of work
            semrec.topk(x[:20_000], x, 10, metric="dot", check_finite=False)
        """,
    )
    assert "interrupted" in out


def test_a_huge_k_is_refused_before_allocating():
    # k past the catalogue pads with -1, but not to a (3 x 10**9) result.
    x = np.eye(50, 8, dtype=np.float32)
    with pytest.raises(ValueError, match="pass k <= 50"):
        topk(np.ones((3, 8), np.float32), x, 10**9)
    assert topk(np.ones((3, 8), np.float32), x, 60)[0].shape == (3, 60)


def test_topk_of_proposals_keeps_its_cheap_checks():
    """It skips topk's full checks, not the cheap ones: a wrapped or fractional id, a wrong
    dtype, a NaN query or a raw array gets a clear error (never a wrong answer)."""
    from semrec.similarity import ItemIndex, topk_of_proposals

    index = ItemIndex(np.eye(3, dtype=np.float32))
    q = np.ones((1, 3), np.float32)
    bad = [
        ((q, index, np.array([[2**32 + 1]]), 1, None, 1), IndexError, "proposed"),
        ((q, index, np.array([[3]], np.int32), 1, None, 1), IndexError, "proposed"),
        ((q, index, np.array([[0, -2]], np.int32), 1, None, 1), IndexError, "proposed"),
        ((q, index, np.array([[1.9]]), 1, None, 1), ValueError, "proposed"),
        ((q.astype(np.float64), index, np.array([[1]]), 1, None, 1), TypeError, "queries"),
        ((q, np.eye(3, dtype=np.float32), np.array([[1]]), 1, None, 1), TypeError, "index"),
        ((q * np.nan, index, np.array([[1]]), 1, None, 1), ValueError, "queries"),
        ((q, index, np.array([[1]]), 2**31, None, 1), ValueError, "k must be"),
        (
            (q, index, np.array([[0]]), 1, (np.array([0, 1]), np.array([2**32])), 1),
            IndexError,
            "excluded",
        ),
    ]
    for args, error, match in bad:
        with pytest.raises(error, match=match):
            topk_of_proposals(*args)
    ids, _ = topk_of_proposals(
        q, index, np.array([[0, 1, 2]]), 2, (np.array([0, 1]), np.array([1])), 1
    )
    np.testing.assert_array_equal(ids, [[0, 2]])


@pytest.mark.parametrize("storage", ["float32", "float16", "int8"])
@pytest.mark.parametrize("metric", ["dot", "cosine"])
def test_topk_of_model_query_is_topk(storage: str, metric: str) -> None:
    """A model's one-user search (the click path of ``recommend``) returns what topk returns,
    bitwise, and the top k of a float64 NumPy reference, with and without seen items."""
    from semrec.similarity import ItemIndex, topk_of_model_query

    rng = np.random.default_rng(5)
    x = rng.standard_normal((3000, 24)).astype(np.float32)
    index = ItemIndex(x, metric=metric, storage=storage)
    reference = x.astype(np.float64)
    if metric == "cosine":
        reference /= np.linalg.norm(reference, axis=1, keepdims=True)
    for trial in range(20):
        q = rng.standard_normal((1, 24)).astype(np.float32)
        q *= np.float32((1.0, 1e20, 1e-30)[trial % 3])  # |q|^2 overflows, underflows float32
        seen = None if trial % 4 == 0 else rng.choice(3000, trial * 7, replace=False)
        seen = seen if seen is None or trial % 3 else np.sort(seen)  # a model's are sorted
        seen = None if seen is None else seen.astype(np.int32 if trial % 2 else np.int64)
        ids, scores = topk_of_model_query(q, index, 10, seen, 2)
        want_ids, want_scores = topk(q, index, 10, exclude=seen, num_threads=1)
        np.testing.assert_array_equal(ids, want_ids)
        np.testing.assert_array_equal(scores, want_scores)
        expected = reference @ q[0].astype(np.float64)
        if metric == "cosine":
            expected /= np.linalg.norm(q[0].astype(np.float64))
        if seen is not None:
            expected[seen] = -np.inf
        np.testing.assert_array_equal(ids[0], np.argsort(-expected, kind="stable")[:10])
        np.testing.assert_allclose(scores[0], expected[ids[0]], rtol=1e-5, atol=1e-5)


def test_topk_of_model_query_refuses_what_a_model_cannot_vouch_for() -> None:
    """A NaN or infinite query, dot products beyond float32 and seen ids outside the items
    get clear errors, never garbage."""
    from semrec.similarity import ItemIndex, topk_of_model_query

    index = ItemIndex(np.eye(3, dtype=np.float32), metric="dot")
    q = np.ones((1, 3), np.float32)
    for bad in (q * np.nan, q * np.inf):
        with pytest.raises(ValueError, match="NaN or inf"):
            topk_of_model_query(bad, index, 2, None, 1)
    huge = ItemIndex(np.full((2, 3), 1e20, np.float32), metric="dot")
    with pytest.raises(ValueError, match="beyond float32's range"):
        topk_of_model_query(q * 1e20, huge, 2, None, 1)
    for seen in ([-1, 0], [0, 3], [3, 0]):
        with pytest.raises(IndexError, match="seen item ids outside"):
            topk_of_model_query(q, index, 2, np.array(seen, np.int32), 1)


def test_dot_products_that_overflow_float32_are_refused():
    """Scores past 3.4e38 become inf (ranked above a true 2e20) or NaN (the item dropped):
    refused, for arrays and ItemIndex alike; large but safe magnitudes still rank exactly."""
    from semrec.similarity import ItemIndex

    q = np.array([1e20, 1e20], np.float32)
    x = np.array([[1e20, 1e20], [1e20, -1e20], [1, 1]], np.float32)
    for items in (x, ItemIndex(x, metric="dot")):
        with pytest.raises(ValueError, match="beyond float32's range"):
            topk(q, items, 3, metric="dot")
    index = ItemIndex(x[2:], metric="dot")
    index.add(x[:2])  # the peak follows added rows
    with pytest.raises(ValueError, match="beyond float32's range"):
        topk(q, index, 3)
    big = np.array([[1e15, 1], [1, 1]], np.float32)
    ids, scores = topk(np.array([1e15, 1], np.float32), big, 2, metric="dot")
    np.testing.assert_array_equal(ids, [0, 1])
    np.testing.assert_allclose(scores, big.astype(np.float64) @ [1e15, 1], rtol=1e-6)


def test_dot_overflow_is_refused_by_item_neighbours_too() -> None:
    """Finite vectors whose dot products pass 3.4e38 are refused by topk and by item_neighbours
    (which calls topk with check_finite=False, having checked the embeddings itself) instead of
    giving inf similarities; large but safe ones still rank exactly, as float64 NumPy ranks
    them."""
    huge = np.full((3, 3), 1e20, np.float32)
    with pytest.raises(ValueError, match="can reach 3e\\+40, beyond float32's range"):
        topk(huge, huge, 2, metric="dot")
    with pytest.raises(ValueError, match="can reach 3e\\+40, beyond float32's range"):
        item_neighbours(huge, 2, metric="dot")
    rng = np.random.default_rng(41)
    big = (rng.standard_normal((60, 8)) * 5e17).astype(np.float32)  # the cheap bound fails
    ids, scores = topk(big, big, 5, metric="dot")
    want_ids, want_scores, _, _ = reference(big, big, 5, "dot")
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5)
    graph = item_neighbours(big, 5, metric="dot")
    assert np.isfinite(graph.data).all()
    np.testing.assert_array_equal(neighbour_rows(graph, 5)[0], ref_neighbours(big, 5, "dot")[0])


@pytest.mark.parametrize("value", [None, 0, 1, "", "no", []])
def test_check_finite_must_be_a_bool(value: object) -> None:
    """None, 0 or "" used to turn the NaN check off silently (a NaN query gave all padding)."""
    items = np.eye(3, dtype=np.float32)
    with pytest.raises(TypeError, match="check_finite must be True or False"):
        topk(np.array([np.nan, 1, 0], np.float32), items, 2, check_finite=value)
    ids, _ = topk(np.array([0, 1, 0], np.float32), items, 2, check_finite=np.False_)
    np.testing.assert_array_equal(ids, [1, 0])
