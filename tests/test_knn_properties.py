"""Property-based tests (Hypothesis) of the neighbourhood kernels' entry points: ItemKNN/UserKNN
(graph and recommendations) and the private ``knn_topk`` kernel called directly.

Every generated call either matches the dense float64 reference of ``test_knn`` (within float32
rounding) or raises one of the documented exception types; malformed CSR arrays handed to the
kernel directly raise, never crash.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_knn import assert_graph_matches, reference_graph
from test_similarity import assert_close

from semrec import ItemKNN, UserKNN
from semrec._native import core

pytestmark = pytest.mark.property

FAST = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
DOCUMENTED = (TypeError, ValueError, IndexError)


def random_csr(rng, rows: int, cols: int, density: float, integer: bool) -> sp.csr_array:
    mask = rng.random((rows, cols)) < density
    values = rng.integers(1, 6, (rows, cols)) if integer else rng.uniform(0.5, 5.0, (rows, cols))
    return sp.csr_array(np.where(mask, values, 0).astype(np.float32))


@st.composite
def interactions(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_users, n_items = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    return random_csr(rng, n_users, n_items, draw(st.floats(0.0, 0.6)), draw(st.booleans()))


@FAST
@given(
    interactions(),
    st.sampled_from(["item", "user"]),
    st.integers(1, 45),
    st.sampled_from([0.0, 2.5]),
)
def test_graph_and_recommendations_match_the_reference(r, kind, k, shrink):
    cls = ItemKNN if kind == "item" else UserKNN
    if r.nnz == 0:
        with pytest.raises(ValueError, match="no non-zero entries"):
            cls(k, show_progress=False).fit(r)
        return
    model = cls(k, weighting="none", shrinkage=shrink, show_progress=False).fit(r)
    _, sims = reference_graph(r.toarray(), kind, k, "none", shrink)
    assert_graph_matches(model.similarity_, sims, k)
    dense = r.toarray().astype(np.float64)
    graph = model.similarity_.toarray().astype(np.float64)
    scores = dense @ graph if kind == "item" else graph @ dense
    users = np.arange(r.shape[0])
    n_rec = min(r.shape[1], 7)
    ids, got = model.recommend(users, k=n_rec)
    allowed = dense == 0  # exclude_seen
    tol = 1e-5 * (1 + np.abs(scores).max(axis=1))
    assert_close(ids, got, scores, allowed, n_rec, tol)


@st.composite
def knn_topk_calls(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_q, dims, n_items = (
        draw(st.integers(0, 12)),
        draw(st.integers(1, 15)),
        draw(st.integers(1, 30)),
    )
    history = random_csr(rng, n_q, dims, draw(st.floats(0, 1)), draw(st.booleans()))
    graph = random_csr(rng, dims, n_items, draw(st.floats(0, 1)), False)
    k = draw(st.integers(1, n_items + 3))
    exclude = random_csr(rng, n_q, n_items, draw(st.floats(0, 0.7)), True)
    candidates = None
    if draw(st.booleans()):
        candidates = np.unique(rng.integers(0, n_items, size=rng.integers(0, n_items + 1)))
        candidates = candidates.astype(np.int32)
    return history, graph, k, exclude, candidates


def _csr_arrays(m: sp.csr_array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        m.indptr.astype(np.int64),
        m.indices.astype(np.int32),
        m.data.astype(np.float32),
    )


@FAST
@given(knn_topk_calls(), st.booleans())
def test_knn_topk_kernel_matches_the_reference(call, use_exclude):
    history, graph, k, exclude, candidates = call
    ex = _csr_arrays(exclude)[:2] if use_exclude else (None, None)
    ids, scores = core.knn_topk(
        *_csr_arrays(history), *_csr_arrays(graph), graph.shape[1], k, *ex, candidates, 2
    )
    full = history.toarray().astype(np.float64) @ graph.toarray().astype(np.float64)
    allowed = np.ones(full.shape, dtype=bool)
    if use_exclude:
        allowed &= exclude.toarray() == 0
    if candidates is not None:
        allowed[:, np.setdiff1d(np.arange(full.shape[1]), candidates)] = False
    tol = 1e-5 * (1 + np.abs(full).max(axis=1, initial=0))
    assert_close(ids, scores, full, allowed, k, tol)


@FAST
@given(knn_topk_calls(), st.sampled_from(["h-index", "h-indptr", "ex-index", "ex-rows", "cand"]))
def test_knn_topk_kernel_rejects_malformed_arrays(call, damage):
    history, graph, k, exclude, _ = call
    h = list(_csr_arrays(history))
    ex = list(_csr_arrays(exclude)[:2])
    cand = None
    n_items = graph.shape[1]
    if damage == "h-index":
        h = list(_csr_arrays(sp.csr_array((np.ones(1, np.float32), ([0], [0])), shape=(1, 1))))
        h[1][0] = graph.shape[0] + 3
        ex = list(_csr_arrays(sp.csr_array((1, n_items), dtype=np.float32))[:2])
    elif damage == "h-indptr":
        h[0] = h[0].copy()
        h[0][-1] += 1
    elif damage == "ex-index":
        ex = list(
            _csr_arrays(
                sp.csr_array((np.ones(1), ([0], [0])), shape=(history.shape[0] or 1, n_items))
            )[:2]
        )
        ex[1][0] = n_items + 7
        if history.shape[0] == 0:
            h = list(_csr_arrays(sp.csr_array((1, graph.shape[0]), dtype=np.float32)))
    elif damage == "ex-rows":
        ex = list(_csr_arrays(sp.csr_array((history.shape[0] + 2, n_items), dtype=np.float32))[:2])
    else:
        cand = np.array([n_items - 1, 0], np.int32) if n_items > 1 else np.array([5], np.int32)
    with pytest.raises(DOCUMENTED):
        core.knn_topk(*h, *_csr_arrays(graph), n_items, k, *ex, cand, 1)
