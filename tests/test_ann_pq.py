"""semrec.PQIndex (optional extra: faiss): recall against the exact search (NumPy reference),
exact scores for what it returns, filters honoured, incremental adds, save/load and pickling,
bad arguments and damaged files refused."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from fuzzing import corruptions

import semrec
from semrec.similarity import ItemIndex, topk

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


@pytest.mark.parametrize("shards", [1, 3])
def test_shards_one_query_equals_its_batch_row_on_any_thread_count(data, shards):
    x, q, _ = data
    pq = PQIndex(x, m=16, rerank=100, shards=shards)
    assert pq.shards == shards and f"shards={shards}" in repr(pq)
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
            for threads in (1, 2):  # shards side by side, or one after another
                got = topk(q[i], pq, 10, num_threads=threads, **one)
                np.testing.assert_array_equal(got[0], batch[0][i])
                np.testing.assert_array_equal(got[1], batch[1][i])


def test_items_added_later_go_to_every_shard():
    x, q = planted(5000, seed=5)
    pq = PQIndex(x[:3001], m=16, rerank=100, shards=3)
    np.testing.assert_array_equal(pq.add(x[3001:4500]), np.arange(3001, 4500))
    pq.add(x[4500:])
    assert recall(topk(q, pq, 10)[0], numpy_top(q, x, 10)) >= 0.95
    added = np.arange(3001, 5000, 97)  # each added item is its own nearest neighbour
    np.testing.assert_array_equal(topk(x[added], pq, 1)[0][:, 0], added)
    for i in range(5):
        np.testing.assert_array_equal(topk(q[i], pq, 10)[0], topk(q, pq, 10)[0][i])


def test_codes_of_one_bare_faiss_index_load_as_one_shard():
    x, q = planted(3000, seed=6)
    bare = faiss.IndexPQFastScan(32, 16, 4, faiss.METRIC_INNER_PRODUCT)  # as semrec saved it
    bare.train(x)
    bare.add(x)
    blob = np.asarray(faiss.serialize_index(bare), dtype=np.uint8)
    pq = PQIndex.from_bytes(ItemIndex(x, metric="dot"), blob, m=16, rerank=100, random_state=0)
    assert pq.shards == 1
    want = np.argsort(-(q.astype(np.float64) @ x.T.astype(np.float64)), axis=1)[:, :10]
    assert recall(topk(q, pq, 10)[0], want) >= 0.95
    sharded = PQIndex(x, metric="dot", m=16, shards=2).code_bytes()
    for bad in (sharded[:20], sharded[:-1], np.concatenate([sharded, sharded[-3:]])):
        with pytest.raises(ValueError, match="codes"):
            PQIndex.from_bytes(ItemIndex(x, metric="dot"), bad, m=16, rerank=100, random_state=0)
    with pytest.raises(ValueError, match="shards"):
        PQIndex(x, shards=1000)


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
