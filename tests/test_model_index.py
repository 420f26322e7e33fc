"""How dot-product models search their items: an ItemIndex kept in step with the item vectors
(fit, refit, add_items, load) and the approximate HNSW index behind ``recommend``.

The reference is NumPy: ``queries @ items.T``, seen items set to -inf, a stable sort."""

from __future__ import annotations

import importlib.util
import pickle

import numpy as np
import pytest
import scipy.sparse as sp

import semrec
from semrec._search import ItemSearch

N_USERS, N_ITEMS, DIM = 30, 400, 16


def numpy_topk(queries, items, k):
    scores = queries.astype(np.float64) @ items.astype(np.float64).T
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def clicks(seed=0, n_users=N_USERS, n_items=N_ITEMS):
    return sp.random_array(
        (n_users, n_items), density=0.05, format="csr", rng=seed, dtype=np.float32
    )


def embeddings(n=N_ITEMS, seed=0):
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((4, DIM))
    return (rng.standard_normal((n, 4)) @ basis + 0.3 * rng.standard_normal((n, DIM))).astype(
        np.float32
    )


def content_model():
    return semrec.ContentRecommender(embeddings(), show_progress=False).fit(clicks())


def reference(model, users):
    """Every item's score (``model.score``: float64 NumPy products) with seen items at -inf."""
    scores = model.score(users, np.arange(model.n_items_)).astype(np.float64)
    seen = model.interactions_[users]
    scores[seen.toarray() != 0] = -np.inf
    return scores


def same_top(model, users, k=10):
    """The model's lists against the NumPy reference (ties aside: the same top-k sets)."""
    want = np.argsort(-reference(model, users), axis=1, kind="stable")[:, :k]
    got = model.recommend(users, k=k)[0]
    for g, w in zip(got, want, strict=True):
        assert set(g.tolist()) == set(w.tolist())


def test_content_index_built_once_and_follows_clicks_and_new_items():
    model = content_model()
    users = np.arange(N_USERS)
    same_top(model, users)
    index = model.item_index_
    assert isinstance(index, semrec.ItemIndex) and len(index) == N_ITEMS
    model.update(3, 7)
    model.update(3, 11)
    same_top(model, users)
    assert model.item_index_ is index  # clicks do not touch the items: no re-indexing
    new = model.add_items(embeddings(5, seed=9))
    assert len(model.item_index_) == N_ITEMS + 5
    same_top(model, users)
    # New items are recommendable: a user whose profile is a new item gets it first.
    model.update(4, int(new[2]), weight=100.0)
    ids = model.recommend(4, k=1, exclude_seen=False)[0]
    assert ids[0] == new[2]


def test_als_refit_reindexes_in_place_factors():
    model = semrec.ALS(factors=8, iterations=2, random_state=0, show_progress=False)
    model.fit(clicks(0))
    same_top(model, np.arange(N_USERS))
    model.fit(clicks(1))  # new factors, possibly written into the same arrays
    same_top(model, np.arange(N_USERS))


def test_coldstart_add_items_indexes_the_new_rows():
    emb = embeddings()
    als = semrec.ALS(factors=8, iterations=2, random_state=0, show_progress=False)
    model = semrec.ColdStartALS(als, emb).fit(clicks())
    same_top(model, np.arange(N_USERS))
    model.add_items(embeddings(7, seed=5))
    assert len(model.item_index_) == N_ITEMS + 7
    same_top(model, np.arange(N_USERS))


def test_hnsw_recall_filters_and_exact_scores():
    pytest.importorskip("faiss", reason="faiss-cpu is not installed (pip install .[ann])")
    model = content_model()
    for u in range(5):
        model.update(u, 3 * u + 1)
    users = np.arange(N_USERS)
    exact_ids, _ = model.recommend(users, k=10)
    model.use_index("hnsw", m=16, ef_search=64)
    assert isinstance(model.item_index_, semrec.HNSWIndex)
    ids, scores = model.recommend(users, k=10)
    hits = [np.intersect1d(a, b).size for a, b in zip(ids, exact_ids, strict=True)]
    assert np.mean(hits) / 10 >= 0.95
    want = reference(model, users)
    for u in range(N_USERS):
        assert np.isfinite(want[u, ids[u]]).all()  # no seen item
        np.testing.assert_allclose(scores[u], want[u, ids[u]], rtol=1e-5, atol=1e-6)
    # items= restricts the approximate search too.
    allowed = np.arange(0, N_ITEMS, 3)
    got = model.recommend(users[:4], k=5, items=allowed)[0]
    assert np.isin(got, allowed).all()
    # add_items grows the graph; a new item equal to a profile is found.
    new = model.add_items(embeddings(3, seed=11))
    assert len(model.item_index_) == N_ITEMS + 3
    model.update(6, int(new[1]), weight=100.0)
    assert model.recommend(6, k=1, exclude_seen=False)[0][0] == new[1]
    model.use_index("exact")
    assert isinstance(model.item_index_, semrec.ItemIndex)


def test_hnsw_is_saved_and_loaded_with_the_model(tmp_path):
    pytest.importorskip("faiss", reason="faiss-cpu is not installed (pip install .[ann])")
    model = content_model().use_index("hnsw", m=8, ef_search=32)
    path = tmp_path / "model.npz"
    model.save(path)
    again = semrec.ContentRecommender.load(path)
    assert isinstance(again.item_index_, semrec.HNSWIndex)
    assert again.item_index_.settings() == {"m": 8, "ef_construction": 100, "ef_search": 32}
    users = np.arange(N_USERS)
    for a, b in zip(model.recommend(users, k=10), again.recommend(users, k=10), strict=True):
        np.testing.assert_array_equal(a, b)


def test_use_index_checks_its_arguments():
    model = content_model()
    with pytest.raises(ValueError, match="kind"):
        model.use_index("ivf")
    with pytest.raises(TypeError, match="ef_serach"):
        model.use_index("hnsw", ef_serach=10)
    with pytest.raises(TypeError, match="m"):
        model.use_index("exact", m=10)
    with pytest.raises(ValueError, match="ef_search"):
        model.use_index("hnsw", ef_search=0)


def test_use_index_refuses_before_fit_what_the_index_would_refuse():
    # Checked when given, not at the first recommend or save after fit.
    cases = [
        ("hnsw", {"m": 1}, "m must be >= 2"),
        ("hnsw", {"m": 2000}, "m must be <= 1024"),
        ("hnsw", {"ef_construction": 2**21}, "ef_construction must be <= 1048576"),
        ("hnsw", {"ef_search": 2**21}, "ef_search must be <= 1048576"),
        ("pq", {"rerank": 0}, "rerank"),
    ]
    for kind, params, match in cases:
        model = semrec.ContentRecommender(embeddings(), show_progress=False)
        with pytest.raises(ValueError, match=match):
            model.use_index(kind, **params)
        model.fit(clicks())  # the refused choice left no trace: exact search
        assert isinstance(model.item_index_, semrec.ItemIndex)
        np.testing.assert_array_equal(
            model.recommend(np.arange(N_USERS), k=5)[0],
            np.argsort(-reference(model, np.arange(N_USERS)), axis=1, kind="stable")[:, :5],
        )
        with pytest.raises(ValueError, match=match):
            model.use_index(kind, **params)


def test_a_loaded_model_rebuilds_its_index_with_the_use_index_settings(tmp_path, monkeypatch):
    # The live index's settings (ef_search as tuned) come back with the file; a refit
    # rebuilds from use_index's, as on the model that was saved.
    pytest.importorskip("faiss", reason="faiss-cpu is not installed (pip install .[ann])")
    model = semrec.ALS(factors=8, iterations=2, random_state=0, show_progress=False)
    model.fit(clicks()).use_index("hnsw", m=4)
    model.item_index_.ef_search = 1
    path = tmp_path / "als.npz"
    model.save(path)
    loaded = semrec.ALS.load(path)
    assert loaded.item_index_.settings() == {"m": 4, "ef_construction": 100, "ef_search": 1}
    model.fit(clicks(seed=3))
    loaded.fit(clicks(seed=3))
    want = {"m": 4, "ef_construction": 100, "ef_search": 128}
    assert model.item_index_.settings() == loaded.item_index_.settings() == want
    users = np.arange(N_USERS)
    for a, b in zip(model.recommend(users), loaded.recommend(users), strict=True):
        np.testing.assert_array_equal(a, b)
    # A file written before use_index's settings were saved takes the index's own.
    model.item_index_.ef_search = 7
    writes = ItemSearch.save_into

    def written_before(self, meta, arrays, key, index):
        writes(self, meta, arrays, key, index)
        del meta[key]["use_index"]

    monkeypatch.setattr(ItemSearch, "save_into", written_before)
    model.save(path)
    monkeypatch.undo()
    old = semrec.ALS.load(path)
    assert old.item_index_.settings() == {**want, "ef_search": 7}
    assert old.fit(clicks(seed=3)).item_index_.settings() == {**want, "ef_search": 7}
    # An entry the index would refuse is a damaged file.
    for entry, match in [({"m": 1}, "m must be >= 2"), ({"rerank": 9}, "rerank"), (3, "dict")]:

        def written_with(self, meta, arrays, key, index, entry=entry):
            writes(self, meta, arrays, key, index)
            meta[key]["use_index"] = entry

        monkeypatch.setattr(ItemSearch, "save_into", written_with)
        model.save(path)
        monkeypatch.undo()
        with pytest.raises(semrec.FormatError, match=match):
            semrec.ALS.load(path)


def test_hnsw_ties_go_to_the_lower_item_as_in_the_exact_search():
    # MostPopular scores every item of equal counts alike: the lower ids first.
    pytest.importorskip("faiss", reason="faiss-cpu is not installed (pip install .[ann])")
    model = semrec.MostPopular().fit(sp.csr_array(np.ones((2, 50), np.float32)))
    exact = model.recommend(0, k=5, exclude_seen=False)
    approx = model.use_index("hnsw").recommend(0, k=5, exclude_seen=False)
    np.testing.assert_array_equal(exact[0], np.arange(5))
    for a, b in zip(approx, exact, strict=True):
        np.testing.assert_array_equal(a, b)


def test_item_index_pickles_and_can_hold_a_reference():
    x = embeddings()
    index = semrec.ItemIndex(x, metric="dot", copy=False)
    assert np.shares_memory(index.vectors, x)
    again = pickle.loads(pickle.dumps(index))
    q = embeddings(6, seed=3)
    for a, b in zip(semrec.topk(q, index, 10), semrec.topk(q, again, 10), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(semrec.topk(q, again, 10)[0], numpy_topk(q, x, 10))
    copied = semrec.ItemIndex(x, metric="dot")
    assert not np.shares_memory(copied.vectors, x)


def test_storage_choice_gives_the_same_lists_and_is_saved(tmp_path):
    model = content_model()
    users = np.arange(N_USERS)
    assert model.item_index_.storage == "int8"  # ContentRecommender's default (unit rows)
    small = [model.recommend(u, k=10) for u in range(N_USERS)]
    model.use_index("exact", storage="float32")
    assert model.item_index_.storage == "float32"
    for u in range(N_USERS):  # one query: int8 panels re-scored == float32 panels
        for a, b in zip(small[u], model.recommend(u, k=10), strict=True):
            np.testing.assert_array_equal(a, b)
    same_top(model, users)
    path = tmp_path / "model.npz"
    model.save(path)
    assert semrec.ContentRecommender.load(path).item_index_.storage == "float32"
    if importlib.util.find_spec("faiss") is not None:  # no storage given: the default again
        assert model.use_index("hnsw", m=8).item_index_.items.storage == "int8"
    model.use_index("exact", storage="float16").save(path)
    assert semrec.ContentRecommender.load(path).item_index_.storage == "float16"
    model.use_index("exact").save(path)
    assert semrec.ContentRecommender.load(path).item_index_.storage == "int8"
    als = semrec.ALS(factors=4, random_state=0, show_progress=False)
    assert als.fit(sp.eye_array(3, 5, format="csr")).item_index_.storage == "float32"


def test_a_pickled_model_keeps_its_approximate_index():
    # What semrec.distributed.recommend sends to each worker.
    pytest.importorskip("faiss", reason="faiss-cpu is not installed (pip install .[ann])")
    model = semrec.ALS(factors=8, iterations=2, random_state=0, show_progress=False)
    model.fit(clicks()).use_index("hnsw", m=8, ef_search=32)
    again = pickle.loads(pickle.dumps(model))
    assert isinstance(again.item_index_, semrec.HNSWIndex)
    assert again.item_index_.settings() == model.item_index_.settings()
    users = np.arange(N_USERS)
    for a, b in zip(model.recommend(users, k=10), again.recommend(users, k=10), strict=True):
        np.testing.assert_array_equal(a, b)


def test_pq_recall_filters_save_and_pickle(tmp_path):
    # The product-quantised scan behind the same verbs: lists against the NumPy reference.
    pytest.importorskip("faiss", reason="faiss-cpu is not installed (pip install .[ann])")
    model = content_model()
    for u in range(5):
        model.update(u, 3 * u + 1)
    users = np.arange(N_USERS)
    model.use_index("pq", m=4, rerank=40)
    assert isinstance(model.item_index_, semrec.PQIndex) and model.item_index_.m == 4
    ids, scores = model.recommend(users, k=10)
    want = reference(model, users)
    best = np.argsort(-want, axis=1, kind="stable")[:, :10]
    assert np.mean([np.intersect1d(a, b).size for a, b in zip(ids, best, strict=True)]) >= 9.5
    for u in range(N_USERS):
        assert np.isfinite(want[u, ids[u]]).all()  # no seen item
        np.testing.assert_allclose(scores[u], want[u, ids[u]], rtol=1e-5, atol=1e-6)
    allowed = np.arange(0, N_ITEMS, 3)
    assert np.isin(model.recommend(users[:4], k=5, items=allowed)[0], allowed).all()
    path = tmp_path / "model.npz"
    model.save(path)
    for again in (semrec.ContentRecommender.load(path), pickle.loads(pickle.dumps(model))):
        assert again.item_index_.settings() == {"m": 4, "rerank": 40, "random_state": 0}
        for a, b in zip(model.recommend(users), again.recommend(users), strict=True):
            np.testing.assert_array_equal(a, b)
    new = model.add_items(embeddings(3, seed=11))
    assert len(model.item_index_) == N_ITEMS + 3
    model.update(6, int(new[1]), weight=100.0)
    assert model.recommend(6, k=1, exclude_seen=False)[0][0] == new[1]
    with pytest.raises(TypeError, match="ef_search"):
        model.use_index("pq", ef_search=10)
    with pytest.raises(ValueError, match="rerank"):
        model.use_index("pq", rerank=0)


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
@pytest.mark.parametrize("model", ["content", "coldstart"])
def test_a_refit_after_add_items_reindexes_every_item(model, kind):
    """add_items tells the index which rows are new; a refit before the next search replaces
    every row, and the index must follow all of them, not only the appended ones."""
    if model == "content":
        fitted = content_model()
    else:
        als = semrec.ALS(8, iterations=3, random_state=0, show_progress=False)
        fitted = semrec.ColdStartALS(als, embeddings()).fit(clicks())
    fitted.use_index(kind, **({"ef_search": 400} if kind == "hnsw" else {}))
    users = np.arange(N_USERS)
    fitted.recommend(users, k=5)  # the index built
    fitted.add_items(embeddings(3, seed=5))
    if model == "content":
        fitted.item_embeddings = embeddings(seed=9)  # the refit's catalogue, 400 other vectors
    fitted.fit(clicks(seed=4))
    same_top(fitted, users)
    ids, scores = fitted.recommend(users, k=10)
    np.testing.assert_allclose(scores, np.take_along_axis(reference(fitted, users), ids, 1),
                               rtol=1e-5, atol=1e-6)  # fmt: skip
