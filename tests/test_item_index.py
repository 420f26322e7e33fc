"""semrec.ItemIndex: the same answers as the item matrix, checked once, safe to grow while searched.

Expected results come from ``topk`` over the plain matrix (itself checked against the float64
NumPy reference in test_similarity) and from that reference directly.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import scipy.sparse as sp
from test_similarity import assert_close, assert_same_results, reference, tolerances

import semrec
from semrec.similarity import ItemIndex, topk


def clustered(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """Rows near a few directions, with exact duplicates: many near-ties at the top."""
    centres = rng.standard_normal((5, dim))
    x = centres[rng.integers(0, 5, n)] + 0.05 * rng.standard_normal((n, dim))
    x[1::50] = x[0]
    return x.astype(np.float32)


@pytest.mark.parametrize("storage", ["float32", "float16", "int8"])
@pytest.mark.parametrize("metric", ["cosine", "dot"])
@pytest.mark.parametrize("n_queries", [1, 3, 8, 9, 700])
def test_bitwise_equal_to_the_matrix(metric, storage, n_queries):
    rng = np.random.default_rng(n_queries)
    x = clustered(rng, 5000, 48)
    q = clustered(rng, n_queries, 48)
    ex = sp.random(n_queries, 5000, density=0.01, format="csr", rng=rng)
    index = ItemIndex(x, metric=metric, storage=storage)
    for kwargs in ({}, {"exclude": ex}):
        want = topk(q, x, 25, metric=metric, **kwargs)
        got = topk(q, index, 25, **kwargs)
        assert_same_results(got, want)
    _, _, full, allowed = reference(q, x, 25, metric, ex)
    assert_close(*topk(q, index, 25, exclude=ex), full, allowed, 25, tolerances(q, x, metric))


@pytest.mark.parametrize("storage", ["float32", "float16", "int8"])
@pytest.mark.parametrize("n_queries", [1, 5])
def test_few_queries_bitwise_for_any_thread_count(storage, n_queries):
    # From 3 MiB of panels (here the float32 ones) a few-query scan is cut into
    # item ranges that helper threads join (tests/test_single_query_threads.py); answers stay
    # bitwise those of the batch kernel for any thread count.
    rng = np.random.default_rng(40 + n_queries)
    x = clustered(rng, 23_000, 40)
    q = clustered(rng, n_queries, 40)
    ex = sp.random(n_queries, x.shape[0], density=0.002, format="csr", rng=rng)
    index = ItemIndex(x, metric="dot", storage=storage)
    want = topk(q, x, 12, metric="dot", exclude=ex, num_threads=1)
    for threads in (1, 2):
        got = topk(q, index, 12, exclude=ex, num_threads=threads)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    _, _, full, allowed = reference(q, x, 12, "dot", ex)
    assert_close(*want, full, allowed, 12, tolerances(q, x, "dot"))


def test_float16_is_exact_even_when_its_scores_cannot_rank():
    # Items that differ below float16's precision: the certificate fails and the query is
    # searched again in float32; the answer is still exact.
    rng = np.random.default_rng(3)
    base = rng.standard_normal(32).astype(np.float32)
    x = np.tile(base, (3000, 1)) + np.float32(1e-5) * rng.standard_normal((3000, 32)).astype(
        np.float32
    )
    q = base + np.float32(1e-3) * rng.standard_normal(32).astype(np.float32)
    want = topk(q, x, 10, metric="dot")
    got = topk(q, ItemIndex(x, metric="dot", storage="float16"), 10)
    assert_same_results(got, want)


def half_steps(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """Int8's worst case: every component but the largest half-way between two of the row's
    int8 levels (the largest rounding error), around a few shared directions, so that many
    items score within int8's error of each other; duplicates tie exactly."""
    base = rng.integers(-120, 120, (4, dim))
    x = (
        base[rng.integers(0, 4, n)]
        + rng.integers(-1, 2, (n, dim))
        + rng.choice([-0.5, 0.5], (n, dim))
    )
    x[:, 0] = 127.0  # the row's largest: its int8 scale is exactly one unit of the grid
    x[1::40] = x[0]
    return (x * rng.uniform(0.5, 2.0, (n, 1)) / 127).astype(np.float32)


def assert_int8_exact(q, x, k, metric, exclude=None):
    """int8 panels give the float32 search's bits, and the float64 NumPy reference's top k."""
    index = ItemIndex(x, metric=metric, storage="int8")
    got = topk(q, index, k, exclude=exclude)
    assert_same_results(got, topk(q, x, k, metric=metric, exclude=exclude))
    _, _, full, allowed = reference(np.atleast_2d(q), x, k, metric, exclude)
    assert_close(*(np.atleast_2d(a) for a in got), full, allowed, k, tolerances(q, x, metric))


@pytest.mark.parametrize("metric", ["cosine", "dot"])
@pytest.mark.parametrize("n_queries", [1, 2, 4])
def test_int8_is_exact_where_its_rounding_is_largest(metric, n_queries):
    rng = np.random.default_rng(70 + n_queries)
    x = half_steps(rng, 6000, 96)
    # Queries along the rounding errors' signs: int8's approximate scores err the most.
    signs = np.sign(x[:n_queries] * 127 - np.rint(x[:n_queries] * 127))
    q = (x[:n_queries] + 0.02 * signs).astype(np.float32)
    ex = sp.random(n_queries, x.shape[0], density=0.01, format="csr", rng=rng)
    for kwargs in ({}, {"exclude": ex}):
        assert_int8_exact(q, x, 20, metric, **kwargs)


@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_int8_falls_back_to_float32_where_it_cannot_rank(metric):
    rng = np.random.default_rng(8)
    # Items that differ far below int8's precision (every item a candidate: searched again in
    # float32), a zero query, and a dimension where the query's 16-bit codes must shrink.
    base = rng.standard_normal(32).astype(np.float32)
    x = np.tile(base, (3000, 1)) + np.float32(1e-5) * rng.standard_normal((3000, 32), np.float32)
    assert_int8_exact(base + np.float32(1e-3) * rng.standard_normal(32, np.float32), x, 10, metric)
    assert_int8_exact(np.zeros((2, 32), np.float32), x, 5, metric)
    wide = rng.standard_normal((500, 1500)).astype(np.float32)
    assert_int8_exact(wide[:3] + 0.1 * wide[3:6], wide, 10, metric)


@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_int8_at_extreme_magnitudes(metric):
    # Rows from 1e-30 to 1e30: scales outside float's comfortable range (dot: searched in
    # float32; cosine: unit-scaled first), and tiny or huge queries.
    rng = np.random.default_rng(9)
    x = rng.standard_normal((2000, 16)) * 10.0 ** rng.integers(-30, 31, (2000, 1))
    x = x.astype(np.float32)
    for magnitude in (1e-30, 1.0, 1e5):  # scores stay finite in float32
        q = (rng.standard_normal((3, 16)) * magnitude).astype(np.float32)
        assert_int8_exact(q, x, 10, metric)
    same = rng.standard_normal((2000, 16)).astype(np.float32)  # one magnitude: int8 scan
    assert_int8_exact((rng.standard_normal(16) * 1e20).astype(np.float32), same, 10, metric)


@pytest.mark.slow
def test_int8_over_a_catalogue_split_between_threads():
    # 35 MiB of int8 panels, cut into item ranges of at most 16 MiB on two threads; the
    # ranges' bounds and candidates merge into the same exact answer.
    rng = np.random.default_rng(10)
    x = rng.standard_normal((1_100_000, 32), np.float32)
    q = rng.standard_normal((2, 32), np.float32)
    ex = sp.random(2, x.shape[0], density=1e-4, format="csr", rng=rng)
    index = ItemIndex(x, metric="dot", storage="int8")
    want = topk(q, x, 10, metric="dot", exclude=ex, num_threads=1)
    for threads in (1, 2):
        assert_same_results(topk(q, index, 10, exclude=ex, num_threads=threads), want)


def test_checked_once_and_copied():
    x = np.ones((4, 3), np.float32)
    index = ItemIndex(x)
    x[0] = np.nan  # the caller's array is not the index's
    assert np.isfinite(index.vectors).all()
    assert not index.vectors.flags.writeable
    with pytest.raises(ValueError, match="vectors contains NaN"):
        ItemIndex(x)
    with pytest.raises(ValueError, match="vectors contains NaN"):
        index.add(x)
    with pytest.raises(TypeError, match="float32"):
        ItemIndex(x.astype(np.float64))
    with pytest.raises(ValueError, match="dimension 3"):
        index.add(np.ones((1, 4), np.float32))
    with pytest.raises(ValueError, match="storage"):
        ItemIndex(np.ones((4, 3), np.float32), storage="int4")
    with pytest.raises(ValueError, match="metric='dot' differs"):
        topk(np.ones(3, np.float32), index, 1, metric="dot")
    with pytest.raises(ValueError, match="queries contains NaN"):
        topk(np.full(3, np.nan, np.float32), index, 1)
    assert len(index) == 4 and index.dim == 3 and index.nbytes > x.nbytes
    assert repr(index) == "ItemIndex(n_items=4, dim=3, metric='cosine', storage='float32')"
    assert semrec.ItemIndex is ItemIndex


def test_add_gives_the_index_of_all_rows():
    rng = np.random.default_rng(4)
    x = clustered(rng, 1000, 20)
    q = clustered(rng, 30, 20)
    index = ItemIndex(x[:10], metric="dot", storage="float16")
    assert index.add(x[10:11][0]).tolist() == [10]  # one 1-D vector
    np.testing.assert_array_equal(index.add(x[11:500]), np.arange(11, 500))
    index.add(x[500:])
    np.testing.assert_array_equal(index.vectors, x)
    want = topk(q, x, 7, metric="dot")
    got = index.search(q, 7)
    assert_same_results(got, want)


def test_a_ctrl_c_right_after_the_native_append_leaves_the_index_whole():
    # The count lived in Python beside the native one: a KeyboardInterrupt between the append's
    # return and `n += rows` left the rows packed but not counted, and later adds got ids whose
    # searches returned other rows (found in 2 of 20 runs by a re-verification, session 44).
    rng = np.random.default_rng(5)
    x = clustered(rng, 300, 16)

    class InterruptedAfter:
        def __init__(self, inner) -> None:
            self.inner = inner

        def append(self, rows, threads) -> None:
            self.inner.append(rows, threads)
            raise KeyboardInterrupt  # as if Ctrl-C arrived just as the kernel returned

        def __getattr__(self, name):
            return getattr(self.inner, name)

    index = ItemIndex(x[:100], metric="dot")
    index._prepared = InterruptedAfter(index._prepared)
    with pytest.raises(KeyboardInterrupt):
        index.add(x[100:200])
    index._prepared = index._prepared.inner
    assert len(index) == 200  # the packed rows are counted
    np.testing.assert_array_equal(index.add(x[200:]), np.arange(200, 300))
    np.testing.assert_array_equal(index.vectors, x)
    assert_same_results(index.search(x[:20], 5), topk(x[:20], x, 5, metric="dot"))


def test_candidates_through_the_index():
    rng = np.random.default_rng(5)
    x = clustered(rng, 800, 16)
    q = clustered(rng, 6, 16)
    index = ItemIndex(x)
    shared = rng.integers(0, 800, 50)
    per_query = sp.random(6, 800, density=0.1, format="csr", rng=rng)
    for cand in (shared, per_query):
        want = topk(q, x, 9, candidates=cand)
        got = topk(q, index, 9, candidates=cand)
        assert_same_results(got, want)


def test_searches_during_adds_see_a_consistent_snapshot():
    rng = np.random.default_rng(6)
    x = clustered(rng, 6000, 24)
    q = clustered(rng, 4, 24)
    index = ItemIndex(x[:1000], metric="dot")
    first = topk(q, x[:1000], 5, metric="dot")[1]  # the top 5 of the smallest snapshot
    errors: list[BaseException] = []
    done = threading.Event()

    def searcher() -> None:
        try:
            while not done.is_set():
                ids, scores = topk(q, index, 5)
                # The exact top 5 of the prefix the index held when the search started.
                n = len(index)
                assert (ids < n).all() and np.isfinite(scores).all()
                assert (scores <= topk(q, x[:n], 5, metric="dot")[1]).all()
                assert (scores >= first).all()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=searcher) for _ in range(3)]
    for t in threads:
        t.start()
    for start in range(1000, 6000, 250):
        index.add(x[start : start + 250])
    done.set()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    want = topk(q, x, 5, metric="dot")
    np.testing.assert_array_equal(topk(q, index, 5)[0], want[0])
