"""Property-based tests (Hypothesis) of the search kernels' entry points: ``topk`` (matrix and
``ItemIndex``), ``item_neighbours`` and the private kernel module called directly.

Every generated call either returns what the float64 NumPy reference of ``test_similarity``
returns (within float32 rounding) or raises one of the documented exception types. Inputs span
random shapes, dtypes, magnitudes from 1e-30 to 1e30, zero vectors, NaN/inf, malformed CSR
matrices and ids at the edges of the valid range.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_similarity import assert_close, reference, tolerances

import semrec
from semrec._native import core
from semrec.similarity import ItemIndex, item_neighbours, topk

pytestmark = pytest.mark.property

# Fast enough for every `make test`: small shapes, a bounded number of examples.
FAST = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
DOCUMENTED = (TypeError, ValueError, IndexError)


@st.composite
def matrices(draw, rows: st.SearchStrategy[int], dim: int, metric: str) -> np.ndarray:
    """float32 rows of random direction, each at its own magnitude; some rows are zero."""
    n = draw(rows)
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, dim))
    # Cosine takes any finite magnitude; dot products must stay inside float32's range.
    low, high = (-30, 30) if metric == "cosine" else (-8, 8)
    exponents = rng.integers(low, high + 1, size=(n, 1)) if draw(st.booleans()) else 0
    a = a * 10.0 ** np.asarray(exponents, dtype=np.float64)
    if n and draw(st.booleans()):
        a[rng.integers(0, n)] = 0.0
    if n > 1 and draw(st.booleans()):
        a[rng.integers(0, n)] = a[0]  # a duplicate: ties must go to the lower id
    return a.astype(np.float32)


@st.composite
def searches(draw):
    metric = draw(st.sampled_from(["cosine", "dot"]))
    dim = draw(st.integers(0, 20))
    items = draw(matrices(st.integers(1, 70), dim, metric))
    queries = draw(matrices(st.integers(1, 30), dim, metric))
    n_q, n_i = queries.shape[0], items.shape[0]
    k = draw(st.integers(1, n_i + 3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    exclude = candidates = None
    if draw(st.booleans()):
        exclude = sp.random(n_q, n_i, density=draw(st.floats(0, 1)), format="csr", rng=rng)
    mode = draw(st.sampled_from(["all", "shared", "per-query"]))
    if mode == "shared":
        # Edge ids included: the first and the last item.
        candidates = np.concatenate([[0, n_i - 1], rng.integers(0, n_i, size=rng.integers(0, 9))])
    elif mode == "per-query":
        candidates = sp.random(n_q, n_i, density=draw(st.floats(0, 1)), format="csr", rng=rng)
    return queries, items, k, metric, exclude, candidates


@FAST
@given(searches())
def test_topk_matches_the_reference(case):
    queries, items, k, metric, exclude, candidates = case
    ids, scores = topk(queries, items, k, metric=metric, exclude=exclude, candidates=candidates)
    _, _, full, allowed = reference(queries, items, k, metric, exclude, candidates)
    assert_close(ids, scores, full, allowed, k, tolerances(queries, items, metric))


@FAST
@given(searches(), st.sampled_from(["float32", "float16", "int8"]))
def test_item_index_gives_the_same_bits(case, storage):
    queries, items, k, metric, exclude, candidates = case
    want = topk(queries, items, k, metric=metric, exclude=exclude, candidates=candidates)
    index = ItemIndex(items, metric=metric, storage=storage)
    got = topk(queries, index, k, exclude=exclude, candidates=candidates)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    # Built in pieces: the same index.
    pieces = ItemIndex(items[:1], metric=metric, storage=storage)
    for start in range(1, items.shape[0], 7):
        pieces.add(items[start : start + 7])
    got = topk(queries, pieces, k, exclude=exclude, candidates=candidates)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


@FAST
@given(searches())
def test_one_query_at_a_time_gives_the_batch_bits(case):
    queries, items, k, metric, exclude, _ = case
    ids, scores = topk(queries, items, k, metric=metric, exclude=exclude)
    for i in range(0, queries.shape[0], 5):
        one = topk(
            queries[i],
            items,
            k,
            metric=metric,
            exclude=None if exclude is None else exclude[[i]],
        )
        np.testing.assert_array_equal(one[0], ids[i])
        np.testing.assert_array_equal(one[1], scores[i])


@FAST
@given(st.integers(1, 60), st.integers(1, 12), st.integers(-30, 30), st.sampled_from([0, 1]))
def test_item_neighbours_at_any_magnitude(n, k, exponent, seed):
    rng = np.random.default_rng(seed + n)
    emb = (rng.standard_normal((n, 8)) * 10.0**exponent).astype(np.float32)
    graph = item_neighbours(emb, k)
    assert graph.shape == (n, n)
    np.testing.assert_array_equal(np.diff(graph.indptr), min(k, n - 1))
    rows = np.repeat(np.arange(n), np.diff(graph.indptr))
    full = reference(emb, emb, n, "cosine")[2]
    np.testing.assert_allclose(graph.data, full[rows, graph.indices], rtol=0, atol=2e-5)
    assert (rows != graph.indices).all()


def test_cosine_of_huge_and_tiny_vectors_is_the_cosine():
    rng = np.random.default_rng(5)
    q = rng.standard_normal((3, 16)).astype(np.float32)
    x = rng.standard_normal((50, 16)).astype(np.float32)
    want = topk(q, x, 5)
    for scale in (1e20, 1e-22, 1e36, 1e-30, 1e-40):
        qs, xs = q * np.float32(scale), x * np.float32(scale)
        got = topk(qs, xs, 5)
        # The cosine of the vectors received (1e-40 is subnormal: they lost digits).
        _, _, full, allowed = reference(qs, xs, 5, "cosine")
        assert_close(*got, full, allowed, 5, tolerances(qs, xs, "cosine"))
        if scale >= 1e-30:
            np.testing.assert_array_equal(got[0], want[0])
    graph = item_neighbours(x * np.float32(1e20), 2)
    assert graph.nnz == 100
    np.testing.assert_allclose(graph.toarray(), item_neighbours(x, 2).toarray(), atol=2e-6)


# ---------------------------------------------------------------------------------------------
# Bad input: a documented exception, never a crash or a silent answer.


@st.composite
def bad_searches(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_q, n_i, dim = draw(st.integers(1, 5)), draw(st.integers(1, 12)), draw(st.integers(1, 6))
    args = {
        "queries": rng.standard_normal((n_q, dim)).astype(np.float32),
        "items": rng.standard_normal((n_i, dim)).astype(np.float32),
        "k": 3,
    }
    kind = draw(
        st.sampled_from(
            [
                "nan",
                "inf",
                "dtype",
                "k",
                "csr-indptr",
                "csr-index",
                "csr-shape",
                "candidate-id",
                "threads",
                "metric",
            ]
        )
    )
    if kind in ("nan", "inf"):
        name = draw(st.sampled_from(["queries", "items"]))
        a = args[name]
        a[rng.integers(0, a.shape[0]), rng.integers(0, dim)] = np.nan if kind == "nan" else -np.inf
    elif kind == "dtype":
        name = draw(st.sampled_from(["queries", "items"]))
        args[name] = args[name].astype(draw(st.sampled_from([np.float64, np.float16, np.int32])))
    elif kind == "k":
        args["k"] = draw(st.sampled_from([0, -1, 2**31, 2**64, 1.5, True, "3", None]))
    elif kind.startswith("csr"):
        m = sp.random(n_q, n_i, density=0.5, format="csr", rng=rng)
        if kind == "csr-indptr":
            m.indptr = m.indptr.copy()
            m.indptr[draw(st.integers(0, n_q))] += draw(st.sampled_from([-1, 1, 50]))
        elif kind == "csr-index":
            if m.nnz == 0:
                m = sp.csr_array((np.ones(1), ([0], [0])), shape=(n_q, n_i))
            m.indices = m.indices.copy()
            m.indices[rng.integers(0, m.nnz)] = draw(st.sampled_from([-1, n_i, 2**31 - 1]))
        else:
            m = sp.random(n_q + 1, n_i, density=0.5, format="csr", rng=rng)
        args[draw(st.sampled_from(["exclude", "candidates"]))] = m
    elif kind == "candidate-id":
        bad = draw(st.sampled_from([-1, n_i, 2**40, -(2**40)]))
        args["candidates"] = np.array([0, bad], dtype=np.int64)
    elif kind == "threads":
        args["num_threads"] = draw(st.sampled_from([-1, 1.5, "2", True]))
    else:
        args["metric"] = draw(st.sampled_from(["l2", "", None, 3]))
        if args["metric"] is None:
            args["metric"] = "COSINE"
    return args


@FAST
@given(bad_searches(), st.booleans())
def test_bad_input_raises_a_documented_exception(args, through_index):
    if through_index and args["items"].dtype == np.float32 and np.isfinite(args["items"]).all():
        args = args | {"items": ItemIndex(args["items"], metric="cosine")}
        args.pop("metric", None)
    with pytest.raises(DOCUMENTED):
        topk(**args)


@FAST
@given(st.integers(1, 2**62), st.integers(1, 4))
def test_any_thread_count_runs_on_the_cores_there_are(threads, n_q):
    rng = np.random.default_rng(n_q)
    q = rng.standard_normal((n_q, 5)).astype(np.float32)
    x = rng.standard_normal((40, 5)).astype(np.float32)
    want = topk(q, x, 4, metric="dot", num_threads=1)
    got = topk(q, x, 4, metric="dot", num_threads=threads)
    np.testing.assert_array_equal(got[0], want[0])
    # The private module called directly: capped too, never thousands of threads.
    direct = core.topk(q, x, 4, "dot", None, None, threads)
    np.testing.assert_array_equal(direct[0], want[0])
    np.testing.assert_array_equal(direct[1], want[1])


def test_direct_kernel_calls_reject_bad_thread_counts_and_arrays():
    q = np.ones((2, 3), np.float32)
    for threads in (0, -5, -(2**70)):
        with pytest.raises(ValueError, match="num_threads"):
            core.topk(q, q, 1, "dot", None, None, threads)
    with pytest.raises(TypeError):
        core.topk(q, q, 1, "dot", None, None, 1.5)
    with pytest.raises(TypeError):
        core.topk(q.astype(np.float64), q, 1, "dot", None, None, 1)
    bad_indptr = np.array([0, 5, 1], np.int64)
    with pytest.raises(ValueError):
        core.topk(q, q, 1, "dot", bad_indptr, np.zeros(1, np.int32), 1)
    with pytest.raises(ValueError, match="prepared"):
        core.topk_prepared(q, core.PreparedItems(3, "dot", "float32"), q, 1, None, None, 1)
    assert semrec.topk is topk
