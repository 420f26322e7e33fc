"""ItemKNN / UserKNN against a dense NumPy re-implementation written here (and implicit)."""

from __future__ import annotations

import re
import warnings
import zipfile

import numpy as np
import pytest
import scipy.sparse as sp

import semrec
from semrec import ItemKNN, UserKNN

# ---------------------------------------------------------------------------------------------
# The reference: weighting, cosine with shrinkage, top-K, scores, all dense float64.


def weigh_ref(docs: np.ndarray, weighting: str, k1: float = 1.2, b: float = 0.75) -> np.ndarray:
    """Re-weight a dense documents x terms matrix (module docstring of semrec.knn)."""
    n = docs.shape[0]
    present = docs > 0
    df = present.sum(axis=0).astype(np.float64)
    if weighting == "none":
        return docs.astype(np.float64)
    if weighting == "tfidf":
        idf = np.log(n / np.maximum(df, 1))
        return np.where(present, np.sqrt(docs) * idf, 0.0)
    idf = np.log(1 + (n - df + 0.5) / (df + 0.5))
    lengths = docs.sum(axis=1, keepdims=True)
    norm = k1 * (1 - b + b * lengths / lengths.mean())
    with np.errstate(invalid="ignore", divide="ignore"):
        w = docs * (k1 + 1) / (docs + norm) * idf
    return np.where(present, w, 0.0)


def cosine_ref(a: np.ndarray, t: np.ndarray, shrink: float) -> np.ndarray:
    """dot / (|a| |t| + shrink) between the rows of a and the rows of t."""
    dots = a @ t.T
    denom = np.outer(np.linalg.norm(a, axis=1), np.linalg.norm(t, axis=1)) + shrink
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(dots != 0, dots / denom, 0.0)


def graph_ref(sims: np.ndarray, k: int, self_ids: np.ndarray | None = None) -> np.ndarray:
    """Keep each row's k largest positive entries (ties by lower id), self excluded."""
    out = np.zeros_like(sims)
    for r in range(sims.shape[0]):
        row = sims[r].copy()
        if self_ids is not None and self_ids[r] >= 0:
            row[self_ids[r]] = 0.0
        cand = np.flatnonzero(row > 0)
        order = cand[np.lexsort((cand, -row[cand]))][:k]
        out[r, order] = row[order]
    return out


def reference_graph(r: np.ndarray, kind: str, k: int, weighting: str, shrink: float, **kw):
    docs = r.T if kind == "item" else r
    w = weigh_ref(docs, weighting, **kw)
    sims = cosine_ref(w, w, shrink)
    return graph_ref(sims, k, np.arange(docs.shape[0])), sims


def assert_graph_matches(got: sp.csr_array, sims: np.ndarray, k: int) -> None:
    """Every kept similarity is correct, the kept ones are the k best, self never kept.

    Only near-ties (within float32 rounding) at the k-th place may be resolved differently.
    """
    got = sp.csr_array(got)
    for row in range(sims.shape[0]):
        cols = got.indices[got.indptr[row] : got.indptr[row + 1]]
        vals = got.data[got.indptr[row] : got.indptr[row + 1]]
        assert row not in cols
        assert np.all(np.diff(cols) > 0)
        np.testing.assert_allclose(vals, sims[row, cols], rtol=2e-5, atol=1e-7)
        ref = np.delete(sims[row], row)
        best = np.sort(ref[ref > 0])[::-1][:k]
        np.testing.assert_allclose(np.sort(vals)[::-1], best, rtol=2e-5, atol=1e-7)


def topk_ref(scores: np.ndarray, k: int, exclude: np.ndarray | None = None, allowed=None):
    """Brute-force top-k (score desc, id asc) with -1 / -inf padding."""
    scores = scores.astype(np.float64).copy()
    if exclude is not None:
        scores[exclude] = -np.inf
    if allowed is not None:
        scores[:, ~allowed] = -np.inf
    ids = np.full((scores.shape[0], k), -1)
    out = np.full((scores.shape[0], k), -np.inf)
    for r in range(scores.shape[0]):
        cand = np.flatnonzero(scores[r] > -np.inf)
        order = cand[np.lexsort((cand, -scores[r, cand]))][:k]
        ids[r, : order.size] = order
        out[r, : order.size] = scores[r, order]
    return ids, out


def random_interactions(rng, n_users=60, n_items=40, density=0.2, integer=False):
    mask = rng.random((n_users, n_items)) < density
    mask[np.arange(n_users), rng.integers(0, n_items, n_users)] = True
    if integer:
        values = rng.integers(1, 6, (n_users, n_items)).astype(np.float32)
    else:
        values = rng.uniform(0.5, 5.0, (n_users, n_items)).astype(np.float32)
    return sp.csr_array(np.where(mask, values, 0).astype(np.float32))


def make(cls, k=10, **kw):
    kw.setdefault("show_progress", False)
    return cls(k, **kw)


# Both shapes: a dense one (every row takes the dense accumulator) and a sparse one (rows track
# what they touch), so both kernel paths meet the reference.
SHAPES = {"dense": (60, 40, 0.25), "sparse": (400, 900, 0.006)}
MODELS = {"item": ItemKNN, "user": UserKNN}


# ---------------------------------------------------------------------------------------------
# Similarities


# Counts (at most 256 distinct values) take the kernel's packed 4-byte cells, floats the wide ones.
@pytest.mark.parametrize("integer", [False, True], ids=["floats", "counts"])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", MODELS)
@pytest.mark.parametrize(
    ("weighting", "shrink"), [("none", 0.0), ("none", 3.0), ("tfidf", 0.0), ("bm25", 1.0)]
)
def test_graph_matches_dense_reference(rng, shape, kind, weighting, shrink, integer):
    n_users, n_items, density = SHAPES[shape]
    r = random_interactions(rng, n_users, n_items, density, integer=integer)
    k = 7
    model = make(MODELS[kind], k, weighting=weighting, shrinkage=shrink, bm25_k1=1.5, bm25_b=0.6)
    model.fit(r)
    _, sims = reference_graph(r.toarray(), kind, k, weighting, shrink, k1=1.5, b=0.6)
    n = n_items if kind == "item" else n_users
    assert model.similarity_.shape == (n, n)
    assert model.similarity_.dtype == np.float32
    assert_graph_matches(model.similarity_, sims, k)


@pytest.mark.parametrize("kind", MODELS)
def test_graph_without_truncation_is_every_positive_similarity(rng, kind):
    r = random_interactions(rng, 50, 30, 0.2)
    model = make(MODELS[kind], 1000, weighting="bm25").fit(r)
    ref, _ = reference_graph(r.toarray(), kind, 1000, "bm25", 0.0)
    got = model.similarity_.toarray()
    np.testing.assert_array_equal(got > 0, ref > 0)
    np.testing.assert_allclose(got, ref, rtol=2e-5, atol=1e-7)


@pytest.mark.parametrize("kind", MODELS)
def test_ties_at_the_cut_go_to_the_lower_id(kind):
    # Entity 0 overlaps entities 1..4 identically: four exact ties for two places.
    base = np.array([[1, 1, 0, 0], [0, 1, 1, 0], [1, 0, 1, 1]], dtype=np.float32)
    block = np.concatenate([base[:, [0]]] + [base[:, [1]]] * 4 + [base[:, [2]]], axis=1)
    r = block if kind == "item" else block.T
    model = make(MODELS[kind], 2).fit(sp.csr_array(r))
    ids, scores = (model.similar_items if kind == "item" else model.similar_users)(1, k=3)
    # 1's twins are 2, 3, 4 (cosine 1); only two are kept and they are the lowest ids.
    np.testing.assert_array_equal(ids, [2, 3, -1])
    assert scores[0] == scores[1] and scores[2] == -np.inf


def test_similar_items_of_userknn_and_users_of_itemknn_are_cosines(rng):
    r = random_interactions(rng, 50, 30, 0.25)
    dense = r.toarray()
    user_model = make(UserKNN, 5, weighting="tfidf", shrinkage=2.0).fit(r)
    w = weigh_ref(dense, "tfidf")  # users are the documents: item vectors are its columns
    ids, scores = user_model.similar_items(np.arange(30), k=4)
    sims = cosine_ref(w.T, w.T, 2.0)
    for item in range(30):
        np.testing.assert_allclose(
            scores[item], np.sort(np.delete(sims[item], item))[::-1][:4], rtol=2e-5
        )
        np.testing.assert_allclose(sims[item, ids[item]], scores[item], rtol=2e-5)
    item_model = make(ItemKNN, 5).fit(r)
    ids, scores = item_model.similar_users(3, k=4)
    sims = cosine_ref(dense, dense, 0.0)[3]
    np.testing.assert_allclose(scores, np.sort(np.delete(sims, 3))[::-1][:4], rtol=2e-5)
    assert 3 not in ids


# ---------------------------------------------------------------------------------------------
# Scores and recommendations


def dense_scores(model, r: np.ndarray) -> np.ndarray:
    g = model.similarity_.toarray().astype(np.float64)
    return r @ g if isinstance(model, ItemKNN) else g @ r


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("kind", MODELS)
def test_recommend_matches_brute_force(rng, shape, kind):
    n_users, n_items, density = SHAPES[shape]
    r = random_interactions(rng, n_users, n_items, density)
    model = make(MODELS[kind], 8, weighting="bm25").fit(r)
    users = np.arange(n_users)
    ref = dense_scores(model, r.toarray())
    np.testing.assert_allclose(model.score(users, np.arange(n_items)), ref, rtol=1e-5, atol=1e-6)
    for exclude_seen in (True, False):
        ids, scores = model.recommend(users, k=12, exclude_seen=exclude_seen)
        _, ref_scores = topk_ref(ref, 12, r.toarray() > 0 if exclude_seen else None)
        np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-6)
        got = np.take_along_axis(ref, np.maximum(ids, 0), axis=1)
        np.testing.assert_allclose(np.where(ids >= 0, got, -np.inf), scores, rtol=1e-5, atol=1e-6)
        if exclude_seen:
            assert not (r.toarray()[users[:, None], np.maximum(ids, 0)] > 0)[ids >= 0].any()


@pytest.mark.parametrize("kind", MODELS)
def test_recommend_with_candidates_matches_brute_force(rng, kind):
    r = random_interactions(rng, 60, 40, 0.2)
    model = make(MODELS[kind], 6).fit(r)
    allowed = np.zeros(40, dtype=bool)
    allowed[rng.choice(40, 9, replace=False)] = True
    ids, scores = model.recommend(np.arange(60), k=5, items=np.flatnonzero(allowed)[::-1])
    ref = dense_scores(model, r.toarray())
    _, ref_scores = topk_ref(ref, 5, r.toarray() > 0, allowed)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-6)
    assert allowed[ids[ids >= 0]].all()


def test_unreached_items_score_zero_after_positives_by_id_then_padding():
    # Item 0 and 1 co-occur; items 2..4 are reached by no neighbour of user 0.
    r = sp.csr_array(np.array([[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [0, 0, 1, 1, 1]], np.float32))
    model = make(ItemKNN, 5).fit(r)
    ids, scores = model.recommend(0, k=5)
    np.testing.assert_array_equal(ids, [1, 2, 3, 4, -1])
    assert scores[0] > 0 and (scores[1:4] == 0).all() and scores[4] == -np.inf
    ids, _ = model.recommend(0, k=3, items=[4, 3, 0])
    np.testing.assert_array_equal(ids, [3, 4, -1])


def test_scalar_and_batch_agree(rng):
    r = random_interactions(rng)
    model = make(UserKNN, 5).fit(r)
    ids, scores = model.recommend([4, 7], k=6)
    one_ids, one_scores = model.recommend(7, k=6)
    assert one_ids.shape == (6,)
    np.testing.assert_array_equal(one_ids, ids[1])
    np.testing.assert_array_equal(one_scores, scores[1])


@pytest.mark.parametrize("kind", MODELS)
def test_identical_for_any_thread_count(rng, kind):
    r = random_interactions(rng, 400, 900, 0.01)
    r = sp.csr_array(sp.vstack([r, random_interactions(rng, 30, 900, 0.3)]))  # some dense rows
    runs = []
    for threads in (1, 2, 3):
        model = make(MODELS[kind], 20, weighting="bm25", shrinkage=1.0, num_threads=threads)
        model.fit(r)
        runs.append((model.similarity_, model.recommend(np.arange(430), k=15)))
    for graph, (ids, scores) in runs[1:]:
        for name in ("indptr", "indices", "data"):
            np.testing.assert_array_equal(getattr(graph, name), getattr(runs[0][0], name))
        np.testing.assert_array_equal(ids, runs[0][1][0])
        np.testing.assert_array_equal(scores, runs[0][1][1])


def test_progress_bar_reaches_the_end_and_does_not_change_the_graph(rng, capsys):
    r = random_interactions(rng, 100, 80, 0.1)
    quiet = make(ItemKNN, 5).fit(r).similarity_
    shown = ItemKNN(5, show_progress=True).fit(r).similarity_
    assert (quiet != shown).nnz == 0
    assert "80/80" in capsys.readouterr().err  # tqdm's final count: every item


def test_a_failing_progress_callback_stops_the_kernel_cleanly(rng):
    from semrec import _knn_graph as knn_graph

    r = random_interactions(rng, 300, 200, 0.1)
    model = make(ItemKNN, 5).fit(r)

    def fail(done):
        raise RuntimeError("progress display broke")

    n = model._weighted.shape[0]
    with pytest.raises(RuntimeError, match="progress display broke"):
        knn_graph.graph_rows(
            model._weighted, 0, n, model._targets, model._norms, model, 1,
            self_ids=np.arange(n, dtype=np.int32), progress=fail,
        )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Real time: fold_in, update, explain


def test_itemknn_fold_in_is_history_times_graph(rng):
    r = random_interactions(rng)
    model = make(ItemKNN, 6, weighting="tfidf").fit(r)
    rows = np.array([3, 10, 11])
    np.testing.assert_allclose(model.fold_in(r[rows]), model.score(rows, np.arange(40)), rtol=1e-6)
    new = random_interactions(rng, 2, 40, 0.2)
    expected = new.toarray() @ model.similarity_.toarray()
    np.testing.assert_allclose(model.fold_in(new, users=[60, 61]), expected, rtol=1e-5)
    assert model.n_users_ == 62
    _, scores = model.recommend(61, k=5)
    _, ref_scores = topk_ref(expected[[1]], 5, new.toarray()[[1]] > 0)
    np.testing.assert_allclose(scores, ref_scores[0], rtol=1e-5)


@pytest.mark.parametrize("shrink", [0.0, 2.0])
def test_userknn_fold_in_equals_the_row_of_a_refit(rng, shrink):
    r = random_interactions(rng, 60, 40, 0.2)
    full = make(UserKNN, 8, shrinkage=shrink).fit(r)
    without = make(UserKNN, 8, shrinkage=shrink).fit(r[np.arange(59)])
    scores = without.fold_in(r[[59]])
    np.testing.assert_allclose(scores[0], full.score(59, np.arange(40)), rtol=1e-5, atol=1e-7)
    # Stored under the next id it recommends what the refit recommends.
    without.fold_in(r[[59]], users=[59])
    np.testing.assert_allclose(
        without.recommend(59, k=10)[1], full.recommend(59, k=10)[1], rtol=1e-5
    )


@pytest.mark.parametrize("cls", [ItemKNN, UserKNN])
@pytest.mark.parametrize("weight", [1e30, 1e-30])
def test_fold_in_keeps_the_weight_bounds_of_fit_and_update(rng, cls, weight):
    """Stored, such weights would make the model refuse a refit on its own interactions_."""
    r = random_interactions(rng, 30, 20, 0.3)
    model = make(cls, 5).fit(r)
    before = model.interactions_.copy()
    history = sp.csr_array((np.array([1.0, weight], np.float32), [2, 5], [0, 2]), shape=(1, 20))
    with pytest.raises(ValueError, match=r"^history holds weights .*keep weights"):
        model.fold_in(history, users=[3])
    assert (model.interactions_ != before).nnz == 0  # unchanged


@pytest.mark.parametrize("cls", [ItemKNN, UserKNN])
def test_fold_in_of_no_users_returns_no_rows(rng, cls):
    model = make(cls, 5).fit(random_interactions(rng, 30, 20, 0.3))
    out = model.fold_in(sp.csr_array((0, 20), dtype=np.float32), users=[])
    assert out.shape == (0, 20) and model.n_users_ == 30


def test_userknn_fold_in_of_a_fitted_user_reproduces_its_row(rng):
    r = random_interactions(rng, 60, 40, 0.2)
    model = make(UserKNN, 8, weighting="bm25").fit(r)
    before = model.similarity_[[5]].toarray()
    model.fold_in(r[[5]], users=[5])
    np.testing.assert_array_equal(model.similarity_[[5]].toarray(), before)


def test_userknn_fold_in_of_neighbours_together_returns_their_new_scores(rng):
    # Users folded in by one call may be each other's neighbours: the returned rows use the
    # histories this call stores (they used the others' old ones), so they equal score()
    # afterwards and a fold-in of one user at a time.
    r = random_interactions(rng, 40, 30, 0.2)
    together = make(UserKNN, 6).fit(r)
    one_by_one = make(UserKNN, 6).fit(r)
    new = random_interactions(np.random.default_rng(7), 4, 30, 0.3)
    users = np.array([3, 4, 5, 6])
    rows = together.fold_in(new, users=users)
    np.testing.assert_allclose(rows, together.score(users, np.arange(30)), rtol=1e-6)
    for j, u in enumerate(users):
        one_by_one.fold_in(new[[j]], users=[u])
    np.testing.assert_allclose(rows, one_by_one.score(users, np.arange(30)), rtol=1e-5, atol=1e-7)


def test_update_changes_recommendations_at_once(rng):
    r = random_interactions(rng)
    model = make(ItemKNN, 6).fit(r)
    item = int(model.recommend(0, k=1)[0][0])
    model.update(0, item, 2.0)
    assert item not in model.recommend(0, k=10)[0]
    changed = r.toarray()
    changed[0, item] += 2.0
    np.testing.assert_allclose(
        model.score(0, np.arange(40)), changed[0] @ model.similarity_.toarray(), rtol=1e-5
    )
    model.update(60, 3)  # a new user
    assert model.n_users_ == 61
    # Beyond what fit takes (similarities would be inf or 0), as a weight or as a sum.
    with pytest.raises(ValueError, match=r"^weight must be in \[-1e\+15, 1e\+15\]"):
        model.update(1, 2, 1e38)
    with pytest.raises(ValueError, match=r"weight: update would make interaction \(1, 2\) 1e-20"):
        model.update(1, 2, 1e-20)
    model.update(1, 2, 1e15)
    with pytest.raises(ValueError, match=r"weight: update would make interaction \(1, 2\) 2e\+15"):
        model.update(1, 2, 1e15)
    ref = model.similarity_.toarray()[3]
    _, ref_scores = topk_ref(ref[None, :], 5, np.eye(40, dtype=bool)[[3]])
    np.testing.assert_allclose(model.recommend(60, k=5)[1], ref_scores[0], rtol=1e-6)


def test_userknn_update_recomputes_that_users_neighbours(rng):
    r = random_interactions(rng, 60, 40, 0.2)
    model = make(UserKNN, 6).fit(r)
    model.update(2, 7, 3.0)
    changed = r.toarray()
    changed[2, 7] += 3.0
    sims = cosine_ref(changed[[2]], r.toarray(), 0.0)  # against the users as fitted
    ref = graph_ref(sims, 6, np.array([2]))
    np.testing.assert_allclose(model.similarity_[[2]].toarray(), ref, rtol=2e-5, atol=1e-7)
    with pytest.raises(ValueError, match="negative"):
        model.update(2, 7, -100.0)


@pytest.mark.parametrize("kind", MODELS)
def test_explain_contributions_sum_to_the_score(rng, kind):
    r = random_interactions(rng)
    model = make(MODELS[kind], 6, weighting="bm25").fit(r)
    item = int(model.recommend(4, k=1)[0][0])
    table = model.explain(4, item, k=1000)
    ids = table["item" if kind == "item" else "neighbour"].to_numpy()
    parts = table["contribution"].to_numpy()
    assert parts.size > 0 and np.all(np.diff(parts) <= 0)
    np.testing.assert_allclose(parts.sum(), model.score(4, [item])[0], rtol=1e-5)
    assert abs(table.attrs["rest"]) < 1e-5
    np.testing.assert_allclose(np.abs(table["share"]).sum(), 1.0, rtol=1e-6)
    g = model.similarity_.toarray()
    dense = r.toarray()
    expected = dense[4, ids] * g[ids, item] if kind == "item" else g[4, ids] * dense[ids, item]
    np.testing.assert_allclose(parts, expected, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Persistence


@pytest.mark.parametrize("kind", MODELS)
def test_save_load_roundtrip(rng, tmp_path, kind):
    r = random_interactions(rng)
    model = make(MODELS[kind], 6, weighting="tfidf", shrinkage=1.5).fit(r)
    model.fold_in(random_interactions(rng, 1, 40), users=[60])
    path = tmp_path / "knn.npz"
    model.save(path)
    loaded = MODELS[kind].load(path)
    assert repr(loaded) == repr(model)
    for a, b in zip(
        loaded.recommend(np.arange(61), k=7), model.recommend(np.arange(61), k=7), strict=True
    ):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.similar_items(2, k=4)[0], model.similar_items(2, k=4)[0])
    new = random_interactions(rng, 2, 40)
    np.testing.assert_array_equal(loaded.fold_in(new), model.fold_in(new))


def test_load_rejects_corrupt_and_foreign_files(rng, tmp_path):
    r = random_interactions(rng)
    path = tmp_path / "item.npz"
    make(ItemKNN, 5).fit(r).save(path)
    with pytest.raises(semrec.FormatError, match="UserKNN"):
        UserKNN.load(path)
    raw = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(semrec.FormatError):
        ItemKNN.load(tmp_path / "cut.npz")
    # A structurally valid file whose graph points outside the catalogue.
    with zipfile.ZipFile(path) as z:
        members = {name: z.read(name) for name in z.namelist()}
    bad = tmp_path / "bad.npz"
    with zipfile.ZipFile(bad, "w") as z:
        for name, data in members.items():
            if name == "similarity_indices.npy":
                arr = np.load(path)["similarity_indices"].copy()
                arr[0] = 10_000
                from io import BytesIO

                buf = BytesIO()
                np.save(buf, arr)
                data = buf.getvalue()
            z.writestr(name, data)
    with pytest.raises(semrec.FormatError, match="corrupt"):
        ItemKNN.load(bad)
    with pytest.raises(FileNotFoundError):
        ItemKNN.load(tmp_path / "missing.npz")


# ---------------------------------------------------------------------------------------------
# Bad inputs


def test_bad_inputs_raise_clear_errors(rng):
    r = random_interactions(rng)
    with pytest.raises(TypeError, match="CSR"):
        make(ItemKNN).fit(r.toarray())
    with pytest.raises(TypeError, match="CSR format"):
        make(ItemKNN).fit(sp.coo_array(r))
    nan = r.copy()
    nan.data[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        make(UserKNN).fit(nan)
    neg = r.copy()
    neg.data[0] = -1
    with pytest.raises(ValueError, match="negative"):
        make(ItemKNN).fit(neg)
    with pytest.raises(ValueError, match="neighbours must be >= 1"):
        make(ItemKNN, -3).fit(r)
    with pytest.raises(TypeError, match="neighbours must be an int"):
        make(ItemKNN, 2.5).fit(r)
    with pytest.raises(ValueError, match="weighting must be one of"):
        make(ItemKNN, weighting="idf").fit(r)
    with pytest.raises(ValueError, match="shrinkage"):
        make(ItemKNN, shrinkage=-1.0).fit(r)
    with pytest.raises(ValueError, match="bm25_b"):
        make(UserKNN, bm25_b=1.5).fit(r)
    with pytest.raises(ValueError, match="not fitted"):
        make(ItemKNN).recommend(0)
    model = make(ItemKNN, 5).fit(r)
    with pytest.raises(IndexError, match="user id 60"):
        model.recommend([0, 60])
    with pytest.raises(IndexError, match="item id -1"):
        model.recommend(0, items=[-1, 2])
    with pytest.raises(ValueError, match="k must be >= 1"):
        model.recommend(0, k=0)
    with pytest.raises(IndexError, match="item id 40"):
        model.similar_items(40)
    with pytest.raises(ValueError, match="shape"):
        model.fold_in(sp.csr_array((1, 39), dtype=np.float32))
    with pytest.raises(TypeError, match="CSR"):
        model.fold_in(np.zeros((1, 40), dtype=np.float32))
    with pytest.raises(IndexError, match="next new ids"):
        model.fold_in(r[[0]], users=[65])
    with pytest.raises(IndexError, match="item id 40"):
        model.update(0, 40)
    with pytest.raises(TypeError, match="weight"):
        model.update(0, 1, "1")
    with pytest.raises(IndexError, match="user id 61"):
        model.explain(61, 0)


def test_kernel_rejects_malformed_arrays_without_crashing():
    core = semrec._native.core
    indptr = np.array([0, 2], dtype=np.int64)
    indices = np.array([0, 5], dtype=np.int32)  # column 5 of a 3-column matrix
    values = np.ones(2, dtype=np.float32)
    with pytest.raises((ValueError, IndexError)):
        core.knn_topk(
            indptr,
            indices,
            values,
            np.array([0, 0, 0, 0], np.int64),
            np.zeros(0, np.int32),
            np.zeros(0, np.float32),
            3,
            2,
            None,
            None,
            None,
            1,
        )
    with pytest.raises(TypeError):
        core.knn_topk(
            indptr,
            indices,
            values.astype(np.float64),
            indptr,
            indices,
            values,
            3,
            2,
            None,
            None,
            None,
            1,
        )


def test_repr_shows_hyperparameters():
    text = repr(ItemKNN(50, weighting="bm25", shrinkage=10.0))
    assert text.startswith("ItemKNN(neighbours=50, weighting='bm25', shrinkage=10.0")


# ---------------------------------------------------------------------------------------------
# implicit, when installed


# implicit's own fit passes itself a COO matrix and warns about it.
@pytest.mark.filterwarnings("ignore:Method expects CSR input")
def test_cosine_graph_matches_implicit(rng):
    nn = pytest.importorskip(
        "implicit.nearest_neighbours", reason="implicit is not installed (pip install .[bench])"
    )
    r = random_interactions(rng, 80, 50, 0.15)
    ours = make(ItemKNN, 1000).fit(r).similarity_.toarray()
    theirs = nn.CosineRecommender(K=1000, num_threads=1)
    theirs.fit(sp.csr_matrix(r), show_progress=False)
    full = theirs.similarity.toarray()
    np.fill_diagonal(full, 0.0)  # implicit counts each item as its own neighbour
    np.testing.assert_allclose(ours, full, rtol=1e-5, atol=1e-6)
    # Truncated at K: implicit's K includes the item itself, ours does not.
    ours = make(ItemKNN, 9).fit(r).similarity_
    theirs = nn.CosineRecommender(K=10, num_threads=1)
    theirs.fit(sp.csr_matrix(r), show_progress=False)
    other = theirs.similarity.tolil()
    other.setdiag(0)
    other = sp.csr_array(other.tocsr())
    other.eliminate_zeros()
    for row in range(50):
        a = np.sort(ours.data[ours.indptr[row] : ours.indptr[row + 1]])
        b = np.sort(other.data[other.indptr[row] : other.indptr[row + 1]])
        np.testing.assert_allclose(a, b[-a.size :] if b.size else b, rtol=1e-5)
        assert a.size == min(9, b.size) or a.size == b.size


def test_fit_canonicalises_messy_input_even_when_flagged_canonical(rng):
    # Each row reversed, one entry split in two (a duplicate) and an explicit zero added; the
    # scipy flag claims canonical form, which fit must verify rather than trust.
    r = random_interactions(rng, 80, 50, 0.2)
    rows, vals = [], []
    for u in range(r.shape[0]):
        lo, hi = r.indptr[u], r.indptr[u + 1]
        c, v = list(r.indices[lo:hi][::-1]), list(r.data[lo:hi][::-1])
        if u % 3 == 0:
            c, v = [*c, c[0]], [v[0] / 2, *v[1:], v[0] / 2]  # a duplicate that sums back
        if u % 5 == 0:
            free = np.setdiff1d(np.arange(r.shape[1]), c)[0]
            c, v = [*c, free], [*v, 0.0]
        rows.append(c)
        vals.append(v)
    indptr = np.concatenate([[0], np.cumsum([len(c) for c in rows])])
    messy = sp.csr_array(
        (np.concatenate(vals).astype(np.float32), np.concatenate(rows), indptr), shape=r.shape
    )
    messy.has_canonical_format = True
    clean = make(ItemKNN, 10).fit(r)
    fitted = make(ItemKNN, 10).fit(messy)
    assert fitted.interactions_.has_canonical_format
    # The explicit zeros stay as entries (they are seen items, issue 13); the rest is clean's.
    nonzero = fitted.interactions_.data != 0
    assert (~nonzero).sum() == len(range(0, r.shape[0], 5))
    np.testing.assert_array_equal(
        fitted.interactions_.indices[nonzero], clean.interactions_.indices
    )
    np.testing.assert_allclose(
        fitted.interactions_.data[nonzero], clean.interactions_.data, rtol=1e-6
    )
    np.testing.assert_array_equal(fitted.similarity_.indices, clean.similarity_.indices)
    np.testing.assert_allclose(fitted.similarity_.data, clean.similarity_.data, rtol=1e-5)


@pytest.mark.parametrize("kind", ["item", "user"])
def test_zero_weights_are_seen_but_carry_nothing(rng, kind):
    """A stored 0 is an interaction (excluded from recommend, kept by update and fold_in) but
    adds nothing to the graph or the scores (issue 13)."""
    cls = semrec.ItemKNN if kind == "item" else semrec.UserKNN
    r = sp.random_array((30, 25), density=0.25, format="csr", rng=rng, dtype=np.float32)
    zeroed = r.copy()
    zeroed.data[::3] = 0.0
    dropped = sp.csr_array(zeroed.toarray())
    a = cls(5, show_progress=False).fit(zeroed)
    b = cls(5, show_progress=False).fit(dropped)
    assert (a.similarity_ != b.similarity_).nnz == 0
    users = np.arange(30)
    np.testing.assert_array_equal(a.score(users, np.arange(25)), b.score(users, np.arange(25)))
    ids, _ = a.recommend(users, k=25)
    for u in users:
        seen = set(zeroed.indices[zeroed.indptr[u] : zeroed.indptr[u + 1]].tolist())
        assert not seen & set(ids[u][ids[u] >= 0].tolist())
        assert (ids[u] >= 0).sum() == 25 - len(seen)
    a.update(0, 24, 0.0)  # a new interaction of weight 0
    assert 24 not in a.recommend(0, k=25)[0]
    assert a.interactions_[[0]].indices.tolist().count(24) == 1


@pytest.mark.parametrize("cls", [ItemKNN, UserKNN])
def test_neighbours_beyond_the_catalogue_keep_them_all(cls) -> None:
    r = sp.csr_array((np.random.default_rng(0).random((8, 10)) < 0.4).astype(np.float32))
    huge = cls(2**40, show_progress=False).fit(r)
    every = cls(100, show_progress=False).fit(r)
    assert (huge.similarity_ != every.similarity_).nnz == 0
    np.testing.assert_array_equal(huge.recommend(0, k=3)[0], every.recommend(0, k=3)[0])
    np.testing.assert_array_equal(huge.fold_in(r[[0]]), every.fold_in(r[[0]]))


@pytest.mark.parametrize("cls", [semrec.ItemKNN, semrec.UserKNN])
def test_weights_that_overflow_the_similarities_are_refused(cls):
    # Squared in float32, 3e38 became inf and every similarity 0: all scores 0, silently.
    huge = sp.csr_array(np.array([[3e38, 3e38, 0], [3e38, 0, 3e38]], np.float32))
    with pytest.raises(ValueError, match="weights up to 3e\\+38"):
        cls(5).fit(huge)
    scaled = sp.csr_array(huge.toarray() / np.float32(3e38))
    assert np.isfinite(cls(5).fit(scaled).score([0, 1], [0, 1, 2])).all()


# ---------------------------------------------------------------------------------------------
# Hyperparameters changed after fit, extreme update weights, users added after fit

# (fitted with, changed to): each shapes the graph or the weighted matrix.
CHANGES = {
    "none->bm25": ({}, {"weighting": "bm25"}),
    "tfidf->bm25": ({"weighting": "tfidf"}, {"weighting": "bm25"}),
    "neighbours": ({}, {"neighbours": 3}),
    "shrinkage": ({}, {"shrinkage": 2.0}),
    "bm25_k1": ({"weighting": "bm25"}, {"bm25_k1": 2.0}),
    "bm25_b": ({"weighting": "bm25"}, {"bm25_b": 0.1}),
}


@pytest.mark.parametrize("change", CHANGES)
def test_userknn_refuses_hyperparameters_changed_after_fit(rng, tmp_path, change):
    fitted_with, changed = CHANGES[change]
    r = random_interactions(rng, 40, 30, 0.25)
    model = make(UserKNN, 6, **fitted_with).fit(r)
    before = (model.interactions_.copy(), model.similarity_.copy())
    for name, value in changed.items():
        setattr(model, name, value)
    (name, value), *_ = changed.items()
    refused = rf"^{name}={value!r} does not describe the fitted UserKNN .*changed after fit\? Refit"
    new = random_interactions(rng, 1, 30, 0.3)
    for verb in (
        lambda: model.fold_in(new),
        lambda: model.fold_in(new, users=[40]),
        lambda: model.update(2, 5),
        lambda: model.update(40, 5),
        lambda: model.save(tmp_path / "m.npz"),
    ):
        with pytest.raises(ValueError, match=refused):
            verb()
    if name != "neighbours":  # item similarities are computed with the weighting and shrinkage
        with pytest.raises(ValueError, match=refused):
            model.similar_items(0)
    assert not (tmp_path / "m.npz").exists() and model.n_users_ == 40
    assert (model.interactions_ != before[0]).nnz == 0
    assert (model.similarity_ != before[1]).nnz == 0
    # Set back, the model is the one fitted: fold_in as an untouched twin's, save works.
    for name in changed:
        setattr(model, name, getattr(make(UserKNN, 6, **fitted_with), name))
    twin = make(UserKNN, 6, **fitted_with).fit(r)
    np.testing.assert_array_equal(model.fold_in(new), twin.fold_in(new))
    model.save(tmp_path / "m.npz")
    assert repr(UserKNN.load(tmp_path / "m.npz")) == repr(twin)


def test_itemknn_refuses_changed_hyperparameters_where_they_are_used(rng, tmp_path):
    r = random_interactions(rng, 40, 30, 0.25)
    model = make(ItemKNN, 6, weighting="tfidf").fit(r)
    model.neighbours = 3
    with pytest.raises(ValueError, match=r"^neighbours=3 does not describe the fitted ItemKNN"):
        model.save(tmp_path / "m.npz")  # the file would say 3 over a graph of 6
    # fold_in / update read the graph as fitted, similar_users does not use neighbours.
    new = random_interactions(rng, 1, 30, 0.3)
    np.testing.assert_allclose(
        model.fold_in(new), new.toarray() @ model.similarity_.toarray(), rtol=1e-5
    )
    sims = cosine_ref(weigh_ref(r.toarray().T, "tfidf").T, weigh_ref(r.toarray().T, "tfidf").T, 0)
    np.testing.assert_allclose(
        model.similar_users(3, k=4)[1], np.sort(np.delete(sims[3], 3))[::-1][:4], rtol=2e-5
    )
    model.neighbours, model.weighting, model.shrinkage = 6, "bm25", 1.0
    with pytest.raises(ValueError, match=r"^weighting='bm25', shrinkage=1.0 do not describe"):
        model.similar_users(3)


@pytest.mark.parametrize("cls", [ItemKNN, UserKNN])
@pytest.mark.parametrize(
    ("name", "value", "error", "message"),
    [
        ("neighbours", "x", TypeError, "neighbours must be an int, got str"),
        ("shrinkage", -5, ValueError, "shrinkage must be a finite number >= 0, got -5"),
        ("weighting", "idf", ValueError, "weighting must be one of 'none', 'tfidf', 'bm25'"),
        ("bm25_b", 2.0, ValueError, "bm25_b must be a finite number"),
    ],
)
def test_bad_hyperparameters_set_after_fit_are_named(
    rng, tmp_path, cls, name, value, error, message
):
    model = make(cls, 6).fit(random_interactions(rng, 30, 20, 0.3))
    setattr(model, name, value)
    with pytest.raises(error, match=f"^{message}"):
        model.save(tmp_path / "m.npz")
    if cls is UserKNN:  # ItemKNN's fold_in / update use no hyperparameter
        with pytest.raises(error, match=f"^{message}"):
            model.update(0, 1)
        with pytest.raises(error, match=f"^{message}"):
            model.fold_in(model.interactions_[[0]])


@pytest.mark.parametrize("cls", [ItemKNN, UserKNN])
def test_settings_that_shape_nothing_may_change_after_fit(rng, tmp_path, cls):
    r = random_interactions(rng, 30, 20, 0.3)
    model = make(cls, 6, weighting="bm25").fit(r)
    twin = make(cls, 6, weighting="bm25").fit(r)
    model.num_threads, model.show_progress, model.neighbours = 2, False, np.int64(6)
    np.testing.assert_array_equal(model.update(3, 4), twin.update(3, 4))
    model.save(tmp_path / "m.npz")
    assert cls.load(tmp_path / "m.npz").num_threads == 2
    model.weighting = "none"  # bm25's parameters shape nothing then; weighting does
    with pytest.raises(ValueError, match=r"^weighting='none' does not describe"):
        model.save(tmp_path / "m.npz")


@pytest.mark.parametrize("cls", [ItemKNN, UserKNN])
@pytest.mark.parametrize("weight", [1e300, -1e300, 1e16])
def test_update_names_a_weight_past_the_bound_before_casting_it(rng, cls, weight):
    model = make(cls, 6).fit(random_interactions(rng, 30, 20, 0.3))
    before = model.interactions_.copy()
    expected = r"^weight must be in \[-1e\+15, 1e\+15\] .*got " + re.escape(f"{weight:.3g}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # float32(1e300) warned "overflow" before
        with pytest.raises(ValueError, match=expected):
            model.update(0, 0, weight)
    assert (model.interactions_ != before).nnz == 0


def test_itemknn_similar_users_says_later_users_need_a_refit(rng):
    r = random_interactions(rng, 40, 30, 0.25)
    model = make(ItemKNN, 6).fit(r)
    expected = model.similar_users(3, k=4)
    model.fold_in(random_interactions(rng, 1, 30, 0.3), users=[40])
    model.update(41, 2)
    assert model.n_users_ == 42
    late = r"users holds user id {}, added after fit: ItemKNN's user similarities cover the "
    late += r"fitted users \[0, 40\) only; refit to include later ones"
    for users, bad in ((40, 40), (np.array([3, 41]), 41)):
        with pytest.raises(IndexError, match="^" + late.format(bad)):
            model.similar_users(users)
    with pytest.raises(IndexError, match=r"^users holds user id 42, outside \[0, 42\)"):
        model.similar_users(42)
    for got, want in zip(model.similar_users(3, k=4), expected, strict=True):
        np.testing.assert_array_equal(got, want)  # the fitted users' are unchanged
    refit = make(ItemKNN, 6).fit(model.interactions_)
    assert refit.similar_users(41, k=3)[0].shape == (3,)


# ---------------------------------------------------------------------------------------------
# A long stream of clicks: the changed histories (and UserKNN's graph rows) are kept beside the
# matrix and merged now and then, so that a click costs O(that user's history)


def _stream_reference_scores(name, hist, graph):
    """Every user's scores from the dense state: ItemKNN history @ graph, UserKNN graph rows @
    the fitted users' current histories, MostPopular the fitted counts (``graph`` there)."""
    if name == "ItemKNN":
        return hist @ graph
    if name == "UserKNN":
        return graph @ hist[: graph.shape[1]]
    return np.broadcast_to(graph, hist.shape)


def _assert_stream_reads(name, model, hist, seen, graph, users, k=8):
    """scores, the returned top-k scores and the excluded seen items against the dense state."""
    ref = _stream_reference_scores(name, hist, graph)[users]
    np.testing.assert_allclose(
        model.score(users, np.arange(hist.shape[1])), ref, rtol=1e-5, atol=1e-6
    )
    ids, scores = model.recommend(users, k=k)
    _, ref_scores = topk_ref(ref, k, seen[users])
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-6)
    for row, u in zip(ids, users, strict=True):
        assert not seen[u, row[row >= 0]].any()
        assert (row >= 0).sum() == min(k, hist.shape[1] - seen[u].sum())


@pytest.mark.parametrize("name", ["ItemKNN", "UserKNN", "MostPopular"])
def test_a_long_stream_of_clicks_matches_a_dense_reference(name):
    """1,500 updates and fold-ins (more than 1,024 changed users between whole-matrix reads,
    so the kept rows are merged on the way) read as a dense NumPy model of the same clicks:
    interactions_ (stored zeros included), UserKNN's new graph rows, scores, recommendations,
    before and after the merges, and through a shallow copy, a pickle and a file."""
    import copy
    import pickle
    import tempfile

    rng = np.random.default_rng(11)
    n_fit, n_items, k = 1200, 50, 6
    r = random_interactions(rng, n_fit, n_items, 0.06)
    r.data[::9] = 0.0  # stored zeros: seen, weightless
    model = {
        "ItemKNN": lambda: make(ItemKNN, k, shrinkage=1.0),
        "UserKNN": lambda: make(UserKNN, k, shrinkage=1.0),
        "MostPopular": semrec.MostPopular,
    }[name]().fit(r)
    hist = r.toarray().astype(np.float64)
    seen = np.zeros(hist.shape, dtype=bool)
    seen[np.repeat(np.arange(n_fit), np.diff(r.indptr)), r.indices] = True
    fitted = hist.copy()
    if name == "MostPopular":  # each item's number of fitted users (stored zeros included)
        graph = np.bincount(r.indices, minlength=n_items).astype(np.float64)
    else:  # the fitted graph (checked against the reference above); update keeps ItemKNN's
        graph = model.similarity_.toarray().astype(np.float64)
    merged_at_fit = model._histories.matrix()

    def grow(n):  # users appended by fold_in / update
        nonlocal hist, seen, graph
        extra = n - hist.shape[0]
        if extra > 0:
            hist = np.vstack([hist, np.zeros((extra, n_items))])
            seen = np.vstack([seen, np.zeros((extra, n_items), dtype=bool)])
            if name == "UserKNN":
                graph = np.vstack([graph, np.zeros((extra, n_fit))])

    def new_graph_row(u):  # UserKNN: the user's new neighbours among the users as fitted
        sims = cosine_ref(hist[[u]], fitted, 1.0)
        return graph_ref(sims, k, np.array([u if u < n_fit else -1]))[0]

    order = rng.permutation(n_fit)  # distinct users first: many kept rows before a merge
    for step in range(1500):
        n = model.n_users_
        if step % 5 == 4:  # fold_in of a few users (their whole histories), some appended
            users = rng.choice(n, size=int(rng.integers(1, 4)), replace=False)
            if step % 3 == 0:
                users = np.r_[users, n]
            rows = random_interactions(rng, users.size, n_items, 0.1)
            rows.data[::4] = 0.0
            got = model.fold_in(rows, users=users)
            grow(int(users.max()) + 1)
            hist[users] = rows.toarray()
            seen[users] = False
            for j, u in enumerate(users):
                seen[u, rows.indices[rows.indptr[j] : rows.indptr[j + 1]]] = True
        else:
            u = n if step % 50 == 49 else int(order[step % n_fit])
            item = int(rng.integers(0, n_items))
            weight = float(rng.choice([1.0, 0.0, 2.5]))  # 0: a new seen item of no weight
            got = model.update(u, item, weight)
            users = np.array([u])
            grow(u + 1)
            hist[u, item] += weight
            seen[u, item] = True
        if name == "UserKNN":
            for u in users:
                graph[u] = new_graph_row(u)
        ref = _stream_reference_scores(name, hist, graph)[users]
        if name == "MostPopular":
            assert got.size == 0
        else:
            np.testing.assert_allclose(got.reshape(ref.shape), ref, rtol=1e-5, atol=1e-6)
        if step % 100 == 0:  # reads of a few users, between merges
            _assert_stream_reads(name, model, hist, seen, graph, np.r_[users, 0, 7])
    # The clicks merged the kept rows themselves (no whole-matrix read since fit).
    assert model._histories._base is not merged_at_fit

    def check_everything(m):
        view = m.interactions_
        assert view.shape == hist.shape
        np.testing.assert_array_equal(view.toarray(), hist.astype(np.float32))
        pattern = np.zeros(hist.shape, dtype=bool)
        pattern[np.repeat(np.arange(view.shape[0]), np.diff(view.indptr)), view.indices] = True
        np.testing.assert_array_equal(pattern, seen)  # stored zeros stay seen
        if name == "UserKNN":
            got = m.similarity_.toarray()
            assert got.shape == (hist.shape[0], hist.shape[0])
            assert not got[:, n_fit:].any()
            np.testing.assert_allclose(got[:, :n_fit], graph, rtol=2e-5, atol=1e-7)
        _assert_stream_reads(name, m, hist, seen, graph, np.arange(hist.shape[0]))

    check_everything(model)
    for u, item in ((3, 5), (hist.shape[0], 2)):  # clicks after a whole read, then read again
        model.update(u, item, 1.5)
        grow(u + 1)
        hist[u, item] += 1.5
        seen[u, item] = True
        if name == "UserKNN":
            graph[u] = new_graph_row(u)
    shallow = copy.copy(model)
    shallow.update(0, 1, 3.0)  # a shallow copy's click changes the copy only
    assert shallow.interactions_[0, 1] == hist[0, 1] + 3.0
    check_everything(model)
    check_everything(pickle.loads(pickle.dumps(model)))
    with tempfile.TemporaryDirectory() as tmp:
        model.save(f"{tmp}/model")
        loaded = type(model).load(f"{tmp}/model")
        check_everything(loaded)  # MostPopular too: its fitted counts are saved


# ---------------------------------------------------------------------------------------------
# Shrinkage at the edges of float32


@pytest.mark.parametrize("kind", MODELS)
def test_shrinkage_beyond_float32_is_refused(rng, kind):
    r = random_interactions(rng, 20, 15, 0.3)
    with np.errstate(over="ignore"):  # what the kernel would divide by: every similarity 0
        assert np.float32(1e39) == np.inf
    with pytest.raises(ValueError, match=r"^shrinkage must be at most 3.4e\+38 \(float32"):
        make(MODELS[kind], 5, shrinkage=1e39).fit(r)


def _reference_scores(r: np.ndarray, kind: str, k: int, shrink: float) -> np.ndarray:
    graph, _ = reference_graph(r, kind, k, "none", shrink)
    return r @ graph if kind == "item" else graph @ r


@pytest.mark.parametrize("kind", MODELS)
def test_weights_whose_shrunk_scores_underflow_are_refused_the_rest_match_float64(rng, kind):
    r = random_interactions(rng, 50, 30, 0.2)  # weights in [0.5, 5)
    tiny = sp.csr_array(r * np.float32(4e-15))  # accepted without shrinkage (>= 1e-15)
    # The float64 reference: with shrinkage 10 the scores (~w^3 / 10) are below float32's
    # smallest normal number, where float32 keeps a few bits or none (other top-5s).
    ref = _reference_scores(tiny.toarray().astype(np.float64), kind, 10, 10.0)
    assert 0 < ref[ref > 0].max() < np.finfo(np.float32).tiny
    with pytest.raises(ValueError, match=r"^interactions holds weights as small as 2.*e-15; "
                       r"with shrinkage=10 .* keep weights above 2.15e-10"):  # fmt: skip
        make(MODELS[kind], 10, shrinkage=10.0).fit(tiny)
    make(MODELS[kind], 10).fit(tiny)  # without shrinkage the bounds are as before
    # Just above the bound the model is the float64 formula's, to float32 rounding.
    small = sp.csr_array(r * np.float32(1e-9))
    model = make(MODELS[kind], 10, shrinkage=10.0).fit(small)
    ref = _reference_scores(small.toarray().astype(np.float64), kind, 10, 10.0)
    got = model.score(np.arange(50), np.arange(30))
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=0)
    ids, _ = model.recommend(np.arange(50), k=5)
    np.testing.assert_array_equal(ids, topk_ref(ref, 5, exclude=small.toarray() > 0)[0])
    # fold_in and update keep the bound of the fitted shrinkage.
    hist = sp.csr_array(np.where(np.arange(30) == 3, 1e-12, 0).astype(np.float32)[None])
    with pytest.raises(ValueError, match="history holds weights as small as 1e-12; with shrinkage"):
        model.fold_in(hist)
    with pytest.raises(ValueError, match=r"^weight: .* 1e-12; .* keep them in \[2.15e-10, 1e\+15"):
        model.update(0, int(np.flatnonzero(small.toarray()[0] == 0)[0]), 1e-12)
