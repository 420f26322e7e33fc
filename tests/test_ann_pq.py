"""semrec.PQIndex (optional extra: faiss): recall against the exact search (NumPy reference),
exact scores for what it returns, filters honoured, incremental adds, save/load and pickling,
bad arguments and damaged files refused."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.stats as scipy_stats
from ann_data import two_regions
from child_python import run_python
from fuzzing import corruptions

import semrec
from semrec import _persist as persist
from semrec._native import core
from semrec.similarity import ItemIndex, topk, topk_of_native_proposals

faiss = pytest.importorskip("faiss", reason="faiss-cpu is not installed (pip install .[ann])")
PQIndex = semrec.PQIndex
N = 6000


def planted(n: int, dim: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` items and 40 queries around 300 planted unit centres (noise of the centres' norm):
    a query's true top 10 are mostly items of its cluster, closer than the rest by a margin
    that 4-bit codes blur (recall of the codes alone is about 0.86)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((300, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    c = centres[rng.integers(0, 300, n + 40)]
    x = (c + rng.standard_normal(c.shape) / np.sqrt(dim)).astype(np.float32)
    return x[:n], x[n:]


@pytest.fixture(scope="module")
def data():
    x, q = planted(N)
    return x, q, PQIndex(x, m=16, rerank=100, num_threads=1)


def numpy_top(q, x, k, drop=None, keep=None):
    """The exact top-k ids by float64 cosine, ``drop[i]`` excluded, only ``keep`` allowed."""
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float64) @ xn.T.astype(np.float64)
    if keep is not None:
        out = np.ones(x.shape[0], bool)
        out[keep] = False
        s[:, out] = -np.inf
    for i, ids in enumerate(drop or []):
        s[i, ids] = -np.inf
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


def recall(got: np.ndarray, want: np.ndarray) -> float:
    return float(
        np.mean([np.intersect1d(g, w).size / w.size for g, w in zip(got, want, strict=True)])
    )


def test_recall_and_exact_scores(data):
    x, q, pq = data
    got = topk(q, pq, 10)
    assert recall(got[0], numpy_top(q, x, 10)) >= 0.95
    # The scores are the exact kernel's for the returned ids, in its order.
    rows = np.repeat(np.arange(40), 10)
    cand = sp.csr_array((np.ones(400), (rows, got[0].reshape(-1))), shape=(40, N))
    again = topk(q, pq.items, 10, candidates=cand)
    np.testing.assert_array_equal(got[0], again[0])
    np.testing.assert_array_equal(got[1], again[1])
    one = topk(q[3], pq, 10)
    np.testing.assert_array_equal(one[0], got[0][3])
    # Re-scoring the codes' best 100 matters: their best 2k alone miss more.
    pq.rerank = 1
    try:
        shallow = recall(topk(q, pq, 10)[0], numpy_top(q, x, 10))
    finally:
        pq.rerank = 100
    assert 0.5 < shallow < 0.95


def scan_reference(q: np.ndarray, book: np.ndarray, codes: np.ndarray, depth: int) -> np.ndarray:
    """The scan's answer re-derived in NumPy: per sub-space the query's inner products with the
    16 centroids (float64), shifted to 0 and rounded on one step that maps the widest row to
    ``levels``; items ranked by the integer sum of their codes' entries, ties to the lower id."""
    m, _, dsub = book.shape
    dots = np.einsum("sd,scd->sc", q.reshape(m, dsub).astype(np.float64), book.astype(np.float64))
    stored = (m + 3) // 4 * 4
    levels = min(63, 32767 // stored)
    step = (dots.max(1) - dots.min(1)).max() / levels
    table = np.clip(np.rint((dots - dots.min(1, keepdims=True)) / step), 0, levels)
    sums = table.astype(np.int64)[np.arange(m), codes].sum(1)
    return np.lexsort((np.arange(codes.shape[0]), -sums))[:depth]


@pytest.mark.parametrize("m", [10, 13, 16, 22, 96])
def test_scan_ranks_as_a_numpy_reference_on_any_thread_count(m):
    """The kernel alone, on random codebooks and codes (m = 13 leaves padded sub-spaces; 10 ends
    on a partial group of the byte sums in the AVX2 and the AVX-512 kernel, 22 in the AVX-512
    one; 96 is the default for 384-d vectors)."""
    rng = np.random.default_rng(m)
    n, dsub = 5000, 3
    book = rng.standard_normal((m, 16, dsub)).astype(np.float32)
    codes = rng.integers(0, 16, (n, m), dtype=np.uint8)
    blocks = np.zeros(-(-n // 32) * ((m + 3) // 4 * 64), np.uint8)
    core.pq_pack(codes[:1001], blocks, 0)  # in two parts: the second starts mid-block
    core.pq_pack(codes[1001:], blocks, 1001)
    np.testing.assert_array_equal(core.pq_unpack(blocks, 0, n, m), codes)
    q = rng.standard_normal((3, m * dsub)).astype(np.float32)
    for threads in (1, 2):
        for queries in (q[:1], q):  # one query split over the threads, or one per thread
            got = core.pq_search(queries, book, blocks, n, 700, threads)
            for i, row in enumerate(queries):
                np.testing.assert_array_equal(got[i], scan_reference(row, book, codes, 700))
    assert (core.pq_search(q[:1], book, blocks, 40, 64, 2)[0, 40:] == -1).all()  # n < depth
    # Each row's code: its nearest centroid per sub-space (squared distance, NumPy).
    rows = rng.standard_normal((300, m * dsub)).astype(np.float32)
    diff = rows.reshape(300, m, 1, dsub) - book  # float32, as the kernel
    want = np.argmin((diff**2).sum(-1), axis=-1)
    np.testing.assert_array_equal(core.pq_encode(rows, book, 2), want)


@pytest.mark.parametrize("storage", ["float32", "float16"])
def test_fused_query_is_the_scan_then_the_exact_top_k_of_its_proposals(storage):
    """core.pq_query (what PQIndex.search runs: the scan and the exact re-scoring in one call)
    equals the scan's proposals re-scored by topk's per-query candidates path, bitwise, with and
    without exclusions, on one and two threads; its scores are the items' true dot products."""
    rng = np.random.default_rng(7)
    n, m, dsub, depth = 3000, 12, 4, 300
    book = rng.standard_normal((m, 16, dsub)).astype(np.float32)
    codes = rng.integers(0, 16, (n, m), dtype=np.uint8)
    blocks = np.zeros(core.pq_blocks_bytes(n, m), np.uint8)
    core.pq_pack(codes, blocks, 0)
    x = rng.standard_normal((n, m * dsub)).astype(np.float32)
    index = ItemIndex(x, metric="dot", storage=storage)
    q = rng.standard_normal((3, m * dsub)).astype(np.float32)
    proposed = core.pq_search(q, book, blocks, n, depth, 1)
    drop = [proposed[i, i : i + 20] for i in range(3)]  # excluded: some proposed, some not
    drop[1] = np.concatenate([drop[1], rng.integers(0, n, 30)])
    rows = np.repeat(np.arange(3), [d.size for d in drop])
    ex = sp.csr_array((np.ones(rows.size), (rows, np.concatenate(drop))), shape=(3, n))
    ex.sum_duplicates()
    ex.sort_indices()
    ex.indptr, ex.indices = ex.indptr.astype(np.int64), ex.indices.astype(np.int32)
    rows = np.repeat(np.arange(3), depth)
    cand = sp.csr_array((np.ones(rows.size), (rows, proposed.reshape(-1))), shape=(3, n))
    stored = index.vectors.astype(np.float64)  # what the float16 index holds, widened

    def fused(queries, excluded, threads):  # through the seam PQIndex.search uses
        return topk_of_native_proposals(
            q,
            index,
            excluded,
            lambda items, rows, *e: core.pq_query(
                q, book, blocks, n, depth, queries, items, rows, 10, *e, threads
            ),
        )

    for exclude in (None, ex):
        want = topk(q, index, 10, candidates=cand, exclude=exclude)
        e = None if exclude is None else (exclude.indptr, exclude.indices)
        for threads in (1, 2):
            got = fused(q, e, threads)
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
        truth = np.einsum("qd,qkd->qk", q.astype(np.float64), stored[got[0]])
        np.testing.assert_allclose(got[1], truth, rtol=1e-5, atol=1e-4)
        if exclude is not None:
            assert not any(np.isin(got[0][i], drop[i]).any() for i in range(3))
    with pytest.raises(ValueError, match="queries must match"):
        fused(q[:2], None, 1)


@pytest.mark.parametrize("order", ["rising", "tied", "random"])
def test_scan_selection_under_adversarial_orders(order):
    """The selection keeps the best `depth` whatever order the scores come in: rising with the
    id (every item enters and the buffer is filtered again and again), all tied (ties go to the
    lower id), or random; at depths 1, 10 and 300, on one and two threads."""
    rng = np.random.default_rng(7)
    m, dsub, n = 8, 2, 6000
    # Sub-space s's centroid c is (c, 0): a query (1, 0, ...) scores code c as c everywhere.
    book = np.zeros((m, 16, dsub), np.float32)
    book[:, :, 0] = np.arange(16)
    if order == "rising":
        level = np.arange(n) * (16 * m) // n  # the summed code rises with the id
        codes = np.minimum(15, level[:, None] // m + (np.arange(m) < level[:, None] % m))
    elif order == "tied":
        codes = np.full((n, m), 9)
    else:
        codes = rng.integers(0, 16, (n, m))
    codes = codes.astype(np.uint8)
    blocks = np.zeros(-(-n // 32) * ((m + 3) // 4 * 64), np.uint8)
    core.pq_pack(codes, blocks, 0)
    q = np.tile(np.array([1.0, 0.0], np.float32), m)[None, :]
    for depth in (1, 10, 300):
        want = scan_reference(q[0], book, codes, depth)
        for threads in (1, 2):
            got = core.pq_search(q, book, blocks, n, depth, threads)[0]
            np.testing.assert_array_equal(got, want)


def test_one_query_equals_its_batch_row_on_any_thread_count(data):
    x, q, pq = data
    top3 = numpy_top(q, x, 3)
    rows = np.repeat(np.arange(40), 3)
    ex = sp.csr_array((np.ones(rows.size), (rows, top3.reshape(-1))), shape=(40, N))
    keep = np.random.default_rng(4).choice(N, 5000, replace=False)
    for extra in ({}, {"exclude": ex}, {"exclude": ex, "candidates": keep}):
        batch = topk(q, pq, 10, num_threads=1, **extra)
        np.testing.assert_array_equal(batch[0], topk(q, pq, 10, num_threads=2, **extra)[0])
        drop = extra.get("exclude") is not None
        want = numpy_top(q, x, 10, drop=list(top3) if drop else None, keep=extra.get("candidates"))
        assert recall(batch[0], want) >= 0.95
        for i in (0, 5, 39):
            one = {**extra, "exclude": top3[i]} if drop else extra
            for threads in (1, 2):  # the scan split over two threads, or on one
                got = topk(q[i], pq, 10, num_threads=threads, **one)
                np.testing.assert_array_equal(got[0], batch[0][i])
                np.testing.assert_array_equal(got[1], batch[1][i])


def test_items_added_later_are_coded_and_found():
    x, q = planted(5000, seed=5)
    pq = PQIndex(x[:3001], m=16, rerank=100)
    np.testing.assert_array_equal(pq.add(x[3001:4500]), np.arange(3001, 4500))
    for i in range(4500, 5000, 100):  # one by one too: the blocks grow in place
        pq.add(x[i : i + 100])
    assert recall(topk(q, pq, 10)[0], numpy_top(q, x, 10)) >= 0.95
    added = np.arange(3001, 5000, 97)  # each added item is its own nearest neighbour
    np.testing.assert_array_equal(topk(x[added], pq, 1)[0][:, 0], added)
    for i in range(5):
        np.testing.assert_array_equal(topk(q[i], pq, 10)[0], topk(q, pq, 10)[0][i])
    # Coded in parts or at once: the same codes, so the same answers.
    whole = PQIndex.from_bytes(pq.items, pq.code_bytes(), **pq.settings())
    np.testing.assert_array_equal(whole.code_bytes(), pq.code_bytes())


def test_codes_saved_by_faiss_before_load_recoded():
    """semrec saved faiss fast-scan indexes (one, or shards behind a header) before its own
    scan: their codebooks are kept, the items coded again."""
    x, q = planted(3000, seed=6)
    shards = []
    for s in range(2):
        part = faiss.IndexPQFastScan(32, 16, 4, faiss.METRIC_INNER_PRODUCT)
        if s == 0:
            part.train(x)
        else:
            part.pq = shards[0].pq
            part.is_trained = True
        part.add(x[s::2])
        shards.append(part)
    blobs = [np.asarray(faiss.serialize_index(p), dtype=np.uint8) for p in shards]
    sizes = np.array([2, *(b.size for b in blobs)], dtype="<u8").view(np.uint8)
    sharded = np.concatenate([np.frombuffer(b"semrec.PQshards\n", np.uint8), sizes, *blobs])
    book = faiss.vector_to_array(shards[0].pq.centroids)
    for vectors, blob in ((np.ascontiguousarray(x[0::2]), blobs[0]), (x, sharded)):
        pq = PQIndex.from_bytes(ItemIndex(vectors, metric="dot"), blob, m=16, rerank=100,
                                random_state=0)  # fmt: skip
        head = len(b"semrec.PQblocks\n") + 24
        saved = pq.code_bytes()[head : head + book.size * 4].view("<f4")
        np.testing.assert_array_equal(saved, book)  # the same codebooks
        want = np.argsort(-(q.astype(np.float64) @ vectors.T.astype(np.float64)), axis=1)[:, :10]
        assert recall(topk(q, pq, 10)[0], want) >= 0.95
    for bad in (sharded[:20], sharded[:-1], np.concatenate([sharded, sharded[-3:]])):
        with pytest.raises(ValueError, match="codes"):
            PQIndex.from_bytes(ItemIndex(x, metric="dot"), bad, m=16, rerank=100, random_state=0)
    ours = PQIndex(x, metric="dot", m=16).code_bytes()
    for bad in (ours[:30], ours[:-1], np.concatenate([ours, ours[-3:]])):
        with pytest.raises(ValueError, match="codes"):
            PQIndex.from_bytes(ItemIndex(x, metric="dot"), bad, m=16, rerank=100, random_state=0)
    with pytest.warns(DeprecationWarning, match="shards"):
        PQIndex(x[:100], shards=2)


def test_dimensions_not_divisible_by_m_are_padded():
    x, q = planted(3000, dim=30, seed=3)
    pq = PQIndex(x, m=16, rerank=100)  # 2 dimensions per sub-space, the last one padded
    assert pq.settings()["m"] == 16 and PQIndex(x).m == 8  # default: ceil(30 / 4)
    assert recall(topk(q, pq, 10)[0], numpy_top(q, x, 10)) >= 0.95


def test_exclusion_and_candidates_are_honoured(data):
    x, q, pq = data
    rng = np.random.default_rng(1)
    top3 = numpy_top(q, x, 3)
    rows = np.repeat(np.arange(40), 3)
    ex = sp.csr_array((np.ones(rows.size), (rows, top3.reshape(-1))), shape=(40, N))
    got = topk(q, pq, 10, exclude=ex)[0]
    assert not any(np.isin(got[i], top3[i]).any() for i in range(40))
    assert recall(got, numpy_top(q, x, 10, drop=list(top3))) >= 0.95
    # A large shared candidate list goes through the codes (searched deeper), a small one is
    # exact.
    for size in (5000, 30):
        keep = rng.choice(N, size, replace=False)
        got = topk(q, pq, 10, candidates=keep, exclude=ex)[0]
        assert np.isin(got[got >= 0], keep).all()
        want = numpy_top(q, x, 10, drop=list(top3), keep=keep)
        assert recall(got, want) >= (0.95 if size > 30 else 1.0)
    # One query's excluded ids as a plain array: the same as its CSR row.
    for i in (0, 7):
        a = topk(q[i], pq, 10, exclude=top3[i])
        b = topk(q[i], pq, 10, exclude=ex[[i]])
        np.testing.assert_array_equal(a[0], b[0])
    per_query = sp.random(40, N, density=0.01, format="csr", rng=rng)
    np.testing.assert_array_equal(
        topk(q, pq, 5, candidates=per_query)[0], topk(q, x, 5, candidates=per_query)[0]
    )
    # The same lists as rows padded with -1: searched exactly, like the CSR.
    padded = np.full((40, int(np.diff(per_query.indptr).max())), -1)
    for i in range(40):
        row = per_query.indices[per_query.indptr[i] : per_query.indptr[i + 1]]
        padded[i, : row.size] = row[::-1]
    np.testing.assert_array_equal(
        topk(q, pq, 5, candidates=padded)[0], topk(q, x, 5, candidates=per_query)[0]
    )


def test_add_small_catalogues_and_wrap_an_item_index():
    x, q = planted(1200, seed=2)
    pq = PQIndex(ItemIndex(x[:10], metric="dot"), m=16, rerank=50)  # too few to train: exact
    np.testing.assert_array_equal(topk(x[:3], pq, 2)[0], topk(x[:3], x[:10], 2, metric="dot")[0])
    np.testing.assert_array_equal(pq.add(x[10:1000]), np.arange(10, 1000))  # trains now
    np.testing.assert_array_equal(pq.add(x[1000:]), np.arange(1000, 1200))
    assert pq.metric == "dot" and len(pq) == 1200
    want = np.argsort(-(q.astype(np.float64) @ x.T.astype(np.float64)), axis=1)[:, :10]
    assert recall(topk(q, pq, 10)[0], want) >= 0.95
    with pytest.raises(ValueError, match="differs"):
        PQIndex(pq.items, metric="cosine")
    with pytest.raises(ValueError, match="dimension"):
        pq.search(np.ones((1, 5), np.float32), 1)
    with pytest.raises(ValueError, match="queries contains NaN"):
        pq.search(np.full((1, 32), np.nan, np.float32), 1)
    assert "PQIndex(n_items=1200" in repr(pq)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"m": 0}, ValueError, "m"),
        ({"m": 33}, ValueError, "m=33 sub-spaces exceed the 32 dimensions"),
        ({"rerank": 0}, ValueError, "rerank"),
        ({"rerank": 2.5}, TypeError, "rerank"),
        ({"random_state": -1}, ValueError, "random_state"),
        ({"random_state": "0"}, TypeError, "random_state"),
    ],
)
def test_bad_parameters_are_named(data, kwargs, error, match):
    with pytest.raises(error, match=match):
        PQIndex(data[0][:100], **kwargs)


def test_rerank_set_after_construction_is_checked(data):
    pq = PQIndex(data[0][:300], m=8, rerank=20)
    for value, error in [(0, ValueError), (-3, ValueError), (2.5, TypeError), ("20", TypeError)]:
        with pytest.raises(error, match="rerank"):
            pq.rerank = value
    assert pq.rerank == 20
    pq.rerank = np.int32(40)
    assert type(pq.rerank) is int and pq.search_depth(5) == 40


def test_every_seed_semrec_takes_is_taken(data):
    """A pipeline passing one Generator (or None, or a 64-bit seed) everywhere: faiss wants a C
    int, drawn from the seed, so equal seeds build equal indexes."""
    x = data[0][:600]
    for seed in (lambda: np.random.default_rng(5), lambda: 2**40):
        a, b = PQIndex(x, m=8, random_state=seed()), PQIndex(x, m=8, random_state=seed())
        assert 0 <= a.random_state < 2**31
        np.testing.assert_array_equal(a.code_bytes(), b.code_bytes())
    assert 0 <= PQIndex(x, m=8, random_state=None).random_state < 2**31


def test_save_load_pickle_roundtrip(data, tmp_path):
    x, q, pq = data
    path = tmp_path / "pq.npz"
    pq.save(path)
    for back in (PQIndex.load(path), pickle.loads(pickle.dumps(pq))):
        assert repr(back) == repr(pq)
        for a, b in zip(topk(q, pq, 10), topk(q, back, 10), strict=True):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="codes hold 6000 vectors"):  # of other items
        PQIndex.from_bytes(ItemIndex(x[:50]), pq.code_bytes(), **pq.settings())
    graph = semrec.HNSWIndex(x[:50]).graph_bytes()
    with pytest.raises(ValueError, match="not inner-product PQ codes"):
        PQIndex.from_bytes(ItemIndex(x[:50]), graph, **pq.settings())


@pytest.mark.fuzz
def test_damaged_files_are_refused(data, tmp_path):
    x, q, _ = data
    path = tmp_path / "pq.npz"
    small = PQIndex(x[:200], rerank=20)
    small.save(path)
    blob = path.read_bytes()
    for what, damaged in corruptions(blob, cases=60):
        path.write_bytes(damaged)
        try:
            back = PQIndex.load(path)
        except semrec.FormatError:
            continue
        for a, b in zip(topk(q, small, 5), topk(q, back, 5), strict=True):
            np.testing.assert_array_equal(a, b, err_msg=what)


def test_recall_method_matches_a_numpy_reference(data):
    x, q, pq = data
    want = numpy_top(q, x, 10)
    assert pq.recall(q, k=10) == pytest.approx(recall(pq.search(q, 10)[0], want))
    # With exclusions: the exact side excludes the same items.
    drop = [want[i, :3] for i in range(len(q))]
    rows = np.repeat(np.arange(len(q)), 3)
    seen = sp.csr_array((np.ones(rows.size), (rows, np.concatenate(drop))), shape=(len(q), N))
    got = pq.search(q, 10, exclude=seen)[0]
    assert pq.recall(q, k=10, exclude=seen) == pytest.approx(recall(got, numpy_top(q, x, 10, drop)))


def binary_items(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """0/1 items and queries: every dot product is a small integer, so the float32 kernel and
    float64 NumPy agree exactly, and many different items tie (codes of different vectors
    differ, so the scan does not propose tied items in id order)."""
    rng = np.random.default_rng(seed)
    x = (rng.random((5000, 32)) < 0.3).astype(np.float32)
    return x, (rng.random((60, 32)) < 0.5).astype(np.float32)


def tie_recall(q: np.ndarray, x: np.ndarray, got: np.ndarray, k: int) -> float:
    """Recall@k with ties, by float64 dot products (exact here): each distinct returned id
    counts when its score is at least the query's k-th best, at most k per query."""
    s = q.astype(np.float64) @ x.T.astype(np.float64)
    kth = -np.sort(-s, axis=1)[:, k - 1]
    pairs = zip(s, got, kth, strict=True)
    return float(np.mean([min((r[np.unique(g[g >= 0])] >= t).sum(), k) / k for r, g, t in pairs]))


def test_recall_and_tune_count_ties_as_a_numpy_reference():
    x, q = binary_items(1)
    pq = PQIndex(x, metric="dot", m=8, rerank=20, num_threads=1)
    got = pq.search(q, 10)[0]
    overlap = recall(got, topk(q, x, 10, metric="dot")[0])
    want = tie_recall(q, x, got, 10)
    assert overlap < want < 1.0  # ties the id overlap misses; misses all the same
    assert pq.recall(q, k=10) == pytest.approx(want)
    tuned = pq.tune(q, k=10, target=0.99, confidence=0.5)
    reached = tie_recall(q, x, pq.search(q, 10)[0], 10)
    assert tuned["recall"] == pytest.approx(reached) and reached >= 0.99
    assert tuned["rerank"] > 20  # the smallest: one less falls short
    pq.rerank = tuned["rerank"] - 1
    assert tie_recall(q, x, pq.search(q, 10)[0], 10) < 0.99


def test_recall_and_tune_count_copies_of_an_item():
    """20 copies of each vector: any 5 copies of the query are an exact answer."""
    base = np.random.default_rng(0).standard_normal((100, 16)).astype(np.float32)
    x = np.repeat(base, 20, axis=0)
    pq = PQIndex(x, m=4, rerank=40, num_threads=1)
    np.testing.assert_array_equal(pq.search(base[:20], 5)[1], topk(base[:20], x, 5)[1])
    assert pq.recall(base[:20], k=5) == 1.0
    assert pq.tune(base[:20], k=5, target=0.9)["recall"] == 1.0


def test_recall_without_ties_is_the_id_overlap(data):
    x, q, pq = data
    shallow = PQIndex(pq.items, m=16, rerank=20, num_threads=1)
    got, want = shallow.search(q, 10)[0], topk(q, x, 10)[0]
    overlap = np.mean([len(set(g) & set(w)) / 10 for g, w in zip(got, want, strict=True)])
    assert 0 < overlap < 1 and shallow.recall(q, k=10) == pytest.approx(overlap)


@pytest.mark.parametrize("target", [0.6, 0.9, 0.99])
def test_tune_finds_the_smallest_rerank_reaching_the_target(target):
    """Checked by searching: with confidence 0.5 (the mean of these queries) the tuned rerank
    reaches the target (NumPy's exact top 10 as the reference), one less does not, and the
    recall it reports is the one measured."""
    x, q = planted(3000, seed=1)
    pq = PQIndex(x, m=8, rerank=5, num_threads=1)
    tuned = pq.tune(q, k=10, target=target, confidence=0.5)
    assert tuned["lower_bound"] == pytest.approx(tuned["recall"])
    want = numpy_top(q, x, 10)
    assert pq.rerank == tuned["rerank"]
    reached = recall(pq.search(q, 10)[0], want)
    assert reached >= target
    assert tuned["recall"] == pytest.approx(reached)
    if tuned["rerank"] > 20:  # below 2 k every depth searches 2 k deep
        pq.rerank = tuned["rerank"] - 1
        assert recall(pq.search(q, 10)[0], want) < target


def query_recalls(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    return np.array([np.intersect1d(g, w).size / w.size for g, w in zip(got, want, strict=True)])


def lower_bound(shares: np.ndarray, confidence: float) -> float:
    """The mean less z standard errors (scipy's normal quantile, NumPy's sample deviation)."""
    z = scipy_stats.norm.ppf(confidence)
    return float(shares.mean() - z * shares.std(ddof=1) / np.sqrt(shares.size))


@pytest.mark.parametrize("confidence", [0.8, 0.99])
def test_tune_holds_the_target_to_a_lower_confidence_bound(confidence):
    """Checked by searching: the bound recomputed from each query's recall (NumPy's exact top 10
    as the reference) reaches the target at the tuned rerank and not one below it, and it is
    the bound reported."""
    x, q = planted(3000, seed=1)
    pq = PQIndex(x, m=8, rerank=5, num_threads=1)
    tuned = pq.tune(q, k=10, target=0.9, confidence=confidence)
    want = numpy_top(q, x, 10)
    shares = query_recalls(pq.search(q, 10)[0], want)
    assert lower_bound(shares, confidence) >= 0.9
    assert tuned["lower_bound"] == pytest.approx(lower_bound(shares, confidence))
    assert tuned["recall"] == pytest.approx(shares.mean()) and tuned["recall"] > 0.9
    assert tuned["rerank"] > pq.tune(q, k=10, target=0.9, confidence=0.5)["rerank"] > 20
    pq.rerank = tuned["rerank"] - 1
    assert lower_bound(query_recalls(pq.search(q, 10)[0], want), confidence) < 0.9


def test_a_tuned_rerank_holds_on_other_queries():
    """The point of the bound: tuned on 100 queries to mean recall 0.9, other queries drawn
    the same way fall short of 0.9 on some draws; held to a 0.95 bound, they reach it on all."""
    x = planted(8000, seed=2)[0]
    items, queries = x[:3000], x[3000:]
    pq = PQIndex(items, m=8, rerank=5, num_threads=1)
    fresh, want = queries[1000:], numpy_top(queries[1000:], items, 10)
    short = []
    for draw in range(5):
        tuning = queries[draw * 100 : (draw + 1) * 100]
        pq.tune(tuning, k=10, target=0.9, confidence=0.5)
        short.append(recall(pq.search(fresh, 10)[0], want) < 0.9)
        pq.tune(tuning, k=10, target=0.9, confidence=0.95)
        assert recall(pq.search(fresh, 10)[0], want) >= 0.9
    assert any(short)


def test_tune_refuses_an_unreachable_target_and_bad_arguments(data):
    x, q, pq = data
    before = pq.rerank
    with pytest.raises(ValueError, match="max_rerank=30"):
        pq.tune(q, target=1.0, max_rerank=30)
    assert pq.rerank == before  # nothing changed
    bad = [(0, ValueError), (1.5, ValueError), (np.nan, ValueError), ("x", TypeError)]
    for target, error in bad:
        with pytest.raises(error, match="target"):
            pq.tune(q, target=target)
    with pytest.raises(ValueError, match="dimension"):
        pq.tune(np.ascontiguousarray(q[:, :5]))
    with pytest.raises(ValueError, match="max_rerank"):
        pq.tune(q, max_rerank=0)
    for confidence, error in [(0.4, ValueError), (1.0, ValueError), ("x", TypeError)]:
        with pytest.raises(error, match="confidence"):
            pq.tune(q, confidence=confidence)
    # A catalogue searched exactly anyway (too small to code): recall 1, rerank unchanged.
    tiny = PQIndex(x[:10], rerank=7)
    assert tiny.tune(q) == {"rerank": 7, "recall": 1.0, "lower_bound": 1.0}


def test_vectors_too_large_to_code_are_refused_not_aborting():
    """faiss's k-means aborts the process when squared distances overflow float32: semrec must
    refuse such vectors first, and an add of them must leave the index as it was."""
    x = np.random.default_rng(0).standard_normal((40, 16)).astype(np.float32)
    for scale in (1e19, 1e30):
        with pytest.raises(ValueError, match="too large for PQIndex"):
            PQIndex(x * np.float32(scale), metric="dot")
    pq = PQIndex(x, metric="dot")
    with pytest.raises(ValueError, match="too large for PQIndex"):
        pq.add(np.full((1, 16), 1e30, np.float32))
    assert len(pq) == len(pq.items) == 40
    assert PQIndex(x * np.float32(1e12), metric="dot").search(x[0] * 1e12, 1)[0][0] == 0
    with pytest.raises(ValueError, match="0 dimensions"):
        PQIndex(np.zeros((20, 0), np.float32))


def test_items_added_to_the_wrapped_item_index_are_coded_and_found(data):
    x, q, _ = data
    items = ItemIndex(x[:3000])
    pq = PQIndex(items, m=16, rerank=100, num_threads=1)
    items.add(x[3000:])  # not through pq.add
    got = pq.search(q, 10)[0]
    assert pq._codes[1] == N  # coded at the search
    assert recall(got, numpy_top(q, x, 10)) >= 0.95


@pytest.mark.parametrize("n", [300, 10])  # 10: no codebooks until the catch-up trains them
def test_items_added_to_the_wrapped_item_index_are_saved_pickled_and_copied(n, tmp_path):
    x, q = planted(n + 40, dim=16)
    pq = PQIndex(x[:n], m=8, rerank=20, num_threads=1)
    pq.items.add(x[n:])  # not through pq.add: searched too, so saved too
    ref = PQIndex(x[:n], m=8, rerank=20, num_threads=1)
    ref.add(x[n:])
    path = tmp_path / "pq.npz"
    pq.save(path)
    for back in (PQIndex.load(path), pickle.loads(pickle.dumps(pq)), copy.deepcopy(pq)):
        assert len(back) == n + 40
        np.testing.assert_array_equal(back.items.vectors, x)
        np.testing.assert_array_equal(back.code_bytes(), ref.code_bytes())
        for a, b in zip(topk(q, back, 10), topk(q, ref, 10), strict=True):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(pq.code_bytes(), ref.code_bytes())


@pytest.mark.parametrize("n", [100, 10])  # 10: no codebooks yet
def test_a_refused_add_changes_nothing(n):
    x, q = planted(n, dim=8)
    pq = PQIndex(x, metric="dot", m=4, rerank=5, num_threads=1)
    codes, found = pq.code_bytes(), topk(q, pq, 5)
    for huge in ([[1e19] * 8], [1e19] * 8, np.full((2, 8), 1e19, np.float32)):
        with pytest.raises(ValueError, match="too large for PQIndex"):
            pq.add(huge)
        assert len(pq) == len(pq.items) == n
        np.testing.assert_array_equal(pq.code_bytes(), codes)
        for a, b in zip(topk(q, pq, 5), found, strict=True):
            np.testing.assert_array_equal(a, b)
    more = np.resize(x, (20, 8))  # n = 10: 20 more train the codebooks
    assert pq.add(more.tolist()).tolist() == list(range(n, n + 20))  # still usable
    again = PQIndex.from_bytes(pq.items, pq.code_bytes(), **pq.settings())
    for a, b in zip(topk(q, pq, 5), topk(q, again, 5), strict=True):
        np.testing.assert_array_equal(a, b)


def test_huge_k_is_refused_by_name(data):
    _, q, pq = data
    with pytest.raises(ValueError, match=f"pass k <= {N}"):
        pq.search(q, 2**31 - 1)


def test_filters_that_leave_the_scan_short_fall_back_to_the_exact_search():
    """The scan goes rerank (plus the excluded count, at most 2048; times the share a
    candidate list leaves out) deep, then filters: a user who has seen the whole region around
    their profile, or a category outside it, used to get -1 padding although thousands of
    items are eligible. Such a row is answered exactly (NumPy brute force of the eligible)."""
    x, q = two_regions(20000)
    pq = PQIndex(x, m=8, rerank=1000, num_threads=1)
    region_a, region_b = np.arange(14000), np.arange(14000, 20000)
    for extra, drop, keep in [
        ({"exclude": region_a}, region_a, None),
        ({"candidates": region_b}, None, region_b),
        ({"exclude": region_b[:5995], "candidates": region_b}, region_b[:5995], region_b),
    ]:
        ids, scores = topk(q[0], pq, 10, **extra)
        want = numpy_top(q, x, 10, drop=None if drop is None else [drop], keep=keep)[0]
        if drop is not None and keep is not None:  # 5 eligible: the rest is padding
            want = np.r_[want[:5], [-1] * 5]
        np.testing.assert_array_equal(ids, want)
        assert np.isfinite(scores[ids >= 0]).all() and (scores[ids < 0] == -np.inf).all()


def test_each_query_is_scanned_to_its_own_depth_whatever_its_batch(data):
    """A query's scan goes as deep as its own exclusions ask, not its batch's most: its
    answer is bitwise the same alone or in any batch (rows deep enough to reach the whole
    catalogue are searched exactly, also alone)."""
    x, q, pq = data
    ranked = numpy_top(q, x, 2000)
    rows = np.repeat(np.arange(40), np.arange(40) * 50)
    ex = sp.csr_array(
        (np.ones(rows.size), (rows, np.concatenate([ranked[i, : i * 50] for i in range(40)]))),
        shape=(40, N),
    )
    keep = np.random.default_rng(11).choice(N, 5000, replace=False)
    deep = PQIndex.from_bytes(pq.items, pq.code_bytes(), **{**pq.settings(), "rerank": 4500})
    for index in (pq, deep):
        for extra in ({"exclude": ex}, {"exclude": ex, "candidates": keep}):
            batch = topk(q, index, 10, **extra)
            for i in range(0, 40, 3):
                one = topk(q[i], index, 10, **{**extra, "exclude": ranked[i, : i * 50]})
                np.testing.assert_array_equal(one[0], batch[0][i])
                np.testing.assert_array_equal(one[1], batch[1][i])
            halves = [topk(q[s], index, 10, **{**extra, "exclude": ex[s]}) for s in (
                slice(0, 20), slice(20, 40))]  # fmt: skip
            np.testing.assert_array_equal(np.concatenate([h[0] for h in halves]), batch[0])


def test_tune_catches_up_with_items_added_to_the_wrapped_item_index():
    x, q = planted(3000, seed=12)
    grown = PQIndex(x[:1500], m=8, rerank=100)
    grown.items.add(x[1500:])  # not through grown.add: coded at the next search or tune
    added = PQIndex(x[:1500], m=8, rerank=100)
    added.add(x[1500:])
    tuned = grown.tune(q, k=10, target=0.9)
    assert tuned == added.tune(q, k=10, target=0.9) and tuned["recall"] < 1.0
    assert grown.recall(q, k=10) == pytest.approx(tuned["recall"])


def test_tune_does_not_depend_on_the_rerank_it_starts_from():
    """A rerank covering the catalogue (set for a larger one, say) is tuned like any other:
    only 2 k >= the catalogue makes every search exact."""
    x, q = planted(3000, seed=13)
    wide, narrow = PQIndex(x, m=8, rerank=3000), PQIndex(x, m=8, rerank=100)
    tuned = wide.tune(q, k=10, target=0.9)
    assert tuned == narrow.tune(q, k=10, target=0.9) and wide.rerank < 3000
    small = PQIndex(x[:19], m=8, rerank=5)
    assert small.tune(q, k=10, target=0.9) == {"rerank": 5, "recall": 1.0, "lower_bound": 1.0}


def test_codes_as_bytes_and_unreadable_codes_get_clean_messages(data):
    x = data[0]
    small = PQIndex(x[:500], m=8)
    for blob in (small.code_bytes().tobytes(), memoryview(small.code_bytes())):
        again = PQIndex.from_bytes(small.items, blob, **small.settings())
        np.testing.assert_array_equal(again.code_bytes(), small.code_bytes())
    with pytest.raises(TypeError, match="codes must be a uint8 array or bytes"):
        PQIndex.from_bytes(small.items, small.code_bytes().astype(np.int16), **small.settings())
    with pytest.raises(TypeError, match="codes must be a uint8 array or bytes"):
        PQIndex.from_bytes(small.items, small.code_bytes().tolist(), **small.settings())
    legacy = faiss.IndexPQFastScan(32, 8, 4, faiss.METRIC_INNER_PRODUCT)
    legacy.train(x[:500])
    legacy.add(x[:500])
    blob = np.asarray(faiss.serialize_index(legacy), dtype=np.uint8)
    for bad, match in [
        (np.arange(64, dtype=np.uint8), "codes: not inner-product PQ codes"),
        (blob[:-1], "codes is damaged"),
        (blob[:80], "codes"),
    ]:
        with pytest.raises(ValueError, match=match) as caught:
            PQIndex.from_bytes(small.items, bad, **small.settings())
        assert "graph" not in str(caught.value) and "faiss::" not in str(caught.value)


def test_legacy_codes_declaring_a_huge_part_are_refused_before_faiss_allocates_it(tmp_path):
    """faiss allocates whatever a serialised index declares (here 64 GiB of codes) before
    reading it: the declared sizes are checked against the bytes first, and the file is named.
    A fresh process with its address space capped, so that nothing large can be allocated."""
    x, _ = planted(2000, seed=14)
    legacy = faiss.IndexPQFastScan(32, 8, 4, faiss.METRIC_INNER_PRODUCT)
    legacy.train(x)
    legacy.add(x)
    blob = np.asarray(faiss.serialize_index(legacy), dtype=np.uint8).copy()
    size = legacy.codes.size()
    assert blob[-size - 8 : -size].view("<u8")[0] == size  # the codes come last
    blob[-size - 8 : -size] = np.array([2**36], dtype="<u8").view(np.uint8)
    path = tmp_path / "pq.npz"
    meta = {"format": "semrec.PQIndex", "version": 2, "metric": "dot", "storage": "float32"}
    persist.write(
        path, {**meta, "m": 8, "rerank": 50, "random_state": 0}, {"vectors": x, "codes": blob}
    )
    out = run_python(
        f"""
        import resource
        import semrec
        resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))
        try:
            semrec.PQIndex.load({str(path)!r})
        except semrec.FormatError as exc:
            print(exc)
        """
    )
    assert "pq.npz" in out and "codes is damaged" in out
