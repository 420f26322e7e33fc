"""ContentRecommender: recommendations equal a NumPy cosine reference; real-time verbs work."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from text_helpers import PlantedEncoder, refused_encoder_answers

import semrec
from semrec import ContentRecommender, FormatError
from semrec.datasets import SYNTHETIC_THEMES, synthetic


def unit(x):
    x = np.asarray(x, dtype=np.float64)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0)


def ref_profiles(m, emb, times=None, half_life=None):
    m = sp.csr_array(m)
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    f = m.data.astype(np.float64)
    if half_life is not None:
        f = f * 0.5 ** ((np.max(times) - times) / half_life)
    sums = np.zeros((m.shape[0], emb.shape[1]))
    np.add.at(sums, rows, f[:, None] * unit(emb)[m.indices])
    return unit(sums)


@pytest.fixture
def case(rng):
    n_users, n_items, dim = 50, 120, 24
    m = sp.random_array((n_users, n_items), density=0.05, format="csr", rng=rng)
    m.data = rng.uniform(1, 5, m.nnz)
    m.data[rng.random(m.nnz) < 0.2] *= -1
    m = sp.csr_array(m, dtype=np.float32)
    emb = rng.standard_normal((n_items, dim)).astype(np.float32)
    times = rng.integers(0, 10_000, m.nnz)
    return m, emb, times


def fitted(m, emb, times=None, half_life=None):
    model = ContentRecommender(emb, half_life=half_life, show_progress=False)
    return model.fit(m, timestamps=times)


def test_recommend_and_score_match_numpy_cosine(case):
    m, emb, times = case
    model = fitted(m, emb, times, half_life=2000.0)
    prof = ref_profiles(m, emb, times, 2000.0)
    scores = prof @ unit(emb).T
    np.testing.assert_allclose(model.score(np.arange(50), np.arange(120)), scores, atol=2e-5)
    np.testing.assert_allclose(model.score(3, [7, 1]), scores[3, [7, 1]], atol=2e-5)
    ids, got = model.recommend(np.arange(50), k=5)
    dense = m.toarray()
    for u in range(50):
        if not prof[u].any():
            continue
        s = np.where(dense[u] != 0, -np.inf, scores[u])
        want = np.sort(s)[::-1][:5]
        np.testing.assert_allclose(got[u], want, atol=2e-5)
        assert not (dense[u, ids[u]] != 0).any()
    ids_all, _ = model.recommend(0, k=120, exclude_seen=False)
    assert ids_all.shape == (120,) and set(ids_all) == set(range(120))
    only, _ = model.recommend([1, 2], k=3, items=np.array([5, 6, 7, 8]), exclude_seen=False)
    assert set(only.ravel()) <= {5, 6, 7, 8}


def test_similar_items_is_cosine_without_itself(case):
    _, emb, _ = case
    model = fitted(sp.csr_array((1, 120), dtype=np.float32), emb)
    ids, scores = model.similar_items([0, 9], k=4)
    cos = unit(emb) @ unit(emb).T
    for row, item in enumerate([0, 9]):
        c = cos[item].copy()
        c[item] = -np.inf
        np.testing.assert_allclose(scores[row], np.sort(c)[::-1][:4], atol=1e-5)
        assert item not in ids[row]


def test_users_without_history_score_zero(case):
    m, emb, _ = case
    m = sp.vstack([m, sp.csr_array((2, 120), dtype=np.float32)]).tocsr()
    model = fitted(m, emb)
    assert not model.score(50, np.arange(120)).any()
    assert model.recommend(51, k=3)[0].tolist() == [0, 1, 2]  # all tie at 0: lowest ids


def test_update_changes_recommendations_at_once_and_equals_refit(case):
    m, emb, times = case
    model = fitted(m, emb, times, half_life=500.0)
    before, _ = model.recommend(4, k=5)
    target = int(before[0])
    # A strong dislike of the current favourite, now: it and its neighbours drop.
    model.update(4, target, weight=-50.0)
    after, _ = model.recommend(4, k=5, exclude_seen=False)
    assert target not in after
    # The same events as a batch give the same profile (t=None meant "latest").
    rows = np.repeat(np.arange(50), np.diff(m.indptr))
    t_all = np.r_[times, times.max()]
    f = np.r_[m.data, -50.0] * 0.5 ** ((t_all.max() - t_all) / 500.0)
    mine = np.r_[rows, 4] == 4
    items_all = np.r_[m.indices, target]
    want = unit((f[mine][:, None] * unit(emb)[items_all[mine]]).sum(axis=0))
    np.testing.assert_allclose(model.profiles(4), want, atol=2e-5)
    # A new user starts with update(n_users_).
    n = model.n_users_
    profile = model.update(n, 17, t=float(times.max()))
    assert model.n_users_ == n + 1
    np.testing.assert_allclose(profile, unit(emb[17]), atol=1e-6)
    ids, _ = model.recommend(n, k=3, exclude_seen=False)
    assert ids[0] == 17
    assert 17 not in model.recommend(n, k=3)[0]  # seen at once
    assert model.interactions_[n, 17] == 1.0


def test_update_seen_and_interactions_stay_consistent(case):
    m, emb, _ = case
    model = fitted(m, emb)
    model.update(0, 3, 2.0)
    model.update(0, 3, 1.0)
    model.update(1, 4, 1.0)
    assert model.interactions_[0, 3] == pytest.approx(m[0, 3] + 3.0)
    assert 3 not in model.recommend(0, k=119)[0] or m[0, 3] + 3.0 == 0
    expected_seen = (m.toarray() != 0).sum(axis=1)
    expected_seen[0] += m[0, 3] == 0
    expected_seen[1] += m[1, 4] == 0
    ids, _ = model.recommend(np.arange(50), k=120)
    np.testing.assert_array_equal((ids >= 0).sum(axis=1), 120 - expected_seen)


def test_clicks_after_fit_and_fold_in_exclude_exactly_the_seen_items(case, rng):
    # One user's recommend excludes what a plain Python record of every event says is seen:
    # fit, clicks (new users too), a fold-in that rewrites users, more clicks (the events after
    # the consolidated seen matrix are indexed as they arrive, and restarted on a rewrite).
    m, emb, _ = case
    model = fitted(m, emb)
    seen = [set(m.indices[m.indptr[u] : m.indptr[u + 1]].tolist()) for u in range(50)]
    n_items = m.shape[1]

    def check_users(users):
        for u in users:
            ids, _ = model.recommend(u, k=n_items)
            assert set(ids[ids >= 0].tolist()) == set(range(n_items)) - seen[u], u

    for step in range(150):
        u, i = int(rng.integers(0, len(seen) + 1)), int(rng.integers(0, n_items))
        if u == len(seen):
            seen.append(set())
        model.update(u, i, weight=float(rng.choice([1.0, 0.0, -2.0])))
        seen[u].add(i)
        if step % 3:  # and every third click is read only with the next ones
            check_users([u])
    check_users(range(len(seen)))
    rewrite = sp.csr_array(m[[5, 6]])
    model.fold_in(rewrite, users=[0, 1])
    seen[0] = set(rewrite[[0]].indices.tolist())
    seen[1] = set(rewrite[[1]].indices.tolist())
    check_users([0, 1])
    for u, i in [(0, 7), (1, 8), (0, 9), (2, 7)]:
        model.update(u, i)
        seen[u].add(i)
    check_users(range(len(seen)))


def test_fold_in_matches_batch_and_stores_users(case):
    m, emb, times = case
    model = fitted(m, emb, times, half_life=800.0)
    history = sp.csr_array(m[[2, 3]])
    t = np.asarray(times)[np.r_[m.indptr[2] : m.indptr[4]]]
    got = model.fold_in(history, timestamps=t)
    np.testing.assert_allclose(got, ref_profiles(history, emb, t, 800.0), atol=2e-5)
    assert model.n_users_ == 50
    # Store: replace user 0 with user 2's history, append one new user.
    stored = model.fold_in(sp.csr_array(m[[2, 3]]), timestamps=t, users=[0, 50])
    np.testing.assert_allclose(stored, got, atol=2e-5)
    np.testing.assert_allclose(model.profiles([0, 50]), got, atol=2e-5)
    assert model.n_users_ == 51
    np.testing.assert_array_equal(model.interactions_[[0]].toarray(), m[[2]].toarray())
    with pytest.raises(IndexError, match="next new ids 51"):
        model.fold_in(history, users=[0, 60])
    with pytest.raises(ValueError, match="one id per history row"):
        model.fold_in(history, users=[0])


def test_a_half_life_set_after_fit_waits_for_the_next_fit(case):
    # explain and fold_in follow the profiles, which decay with the fitted half_life.
    m, emb, times = case
    model = fitted(m, emb, times, half_life=800.0)
    model.half_life = 150.0
    table = model.explain(4, 9, k=1000)
    assert table["contribution"].sum() == pytest.approx(float(model.score(4, [9])[0]), abs=1e-5)
    history = sp.csr_array(m[[2, 3]])
    t = np.asarray(times)[np.r_[m.indptr[2] : m.indptr[4]]]
    got = model.fold_in(history, timestamps=t)
    np.testing.assert_allclose(got, ref_profiles(history, emb, t, 800.0), atol=2e-5)
    refit = model.fit(m, timestamps=times)  # the next fit takes the new one
    np.testing.assert_allclose(
        refit.profiles(np.arange(50)), ref_profiles(m, emb, times, 150.0), atol=2e-5
    )


def test_explain_contributions_sum_to_the_score(case):
    m, emb, times = case
    model = fitted(m, emb, times, half_life=3000.0)
    model.update(7, 11, 2.0)
    for user, item in [(7, 11), (7, 90), (12, 0)]:
        table = model.explain(user, item, k=1000)
        score = float(model.score(user, [item])[0])
        assert table.attrs["score"] == pytest.approx(score)
        assert table["contribution"].sum() == pytest.approx(score, abs=1e-5)
        assert abs(table.attrs["rest"]) < 1e-5
        history = set(model.interactions_[[user]].indices) | ({11} if user == 7 else set())
        assert set(table["item"]) == history
        assert (np.diff(table["contribution"]) <= 0).all()
        np.testing.assert_allclose(np.abs(table["share"]).sum(), 1.0)
    # Reference for one pair: w * decay * cos / |decayed sum|, events of the same item summed.
    rows = np.repeat(np.arange(50), np.diff(m.indptr))
    mine = rows == 12
    f = m.data[mine] * 0.5 ** ((times[mine].max() - times[mine]) / 3000.0)
    e = unit(emb)
    total = (f[:, None] * e[m.indices[mine]]).sum(axis=0)
    shares = f * (e[m.indices[mine]] @ e[0]) / np.linalg.norm(total)
    want = dict(zip(m.indices[mine], shares, strict=True))
    table = model.explain(12, 0, k=1000)
    got = dict(zip(table["item"], table["contribution"], strict=True))
    assert got.keys() == want.keys()
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-6)
    assert len(model.explain(7, 90, k=2)) == 2


def test_add_items_embedding_is_recommendable_without_interactions():
    emb = np.eye(4, dtype=np.float32)
    likes = sp.csr_array(np.array([[1, 0, 0, 0], [0, 0, 1, 0]], dtype=np.float32))
    model = fitted(likes, emb)
    new = model.add_items(np.array([[3.0, 0.3, 0, 0], [0, 0, 0.2, 2.0]], dtype=np.float32))
    assert new.tolist() == [4, 5] and model.n_items_ == 6
    ids, _ = model.recommend([0, 1], k=1)
    assert ids.ravel().tolist() == [4, 5]
    np.testing.assert_allclose(np.linalg.norm(model.item_embeddings_[4:], axis=1), 1.0)
    model.update(0, 5)
    assert 5 in model.interactions_[[0]].indices


def test_fit_accepts_a_dataset_with_its_timestamps():
    ds = synthetic(80, 60, 800, n_topics=4, with_text=False, random_state=1)
    emb = np.random.default_rng(0).standard_normal((60, 8)).astype(np.float32)
    a = ContentRecommender(emb, half_life=86_400.0, show_progress=False).fit(ds)
    b = fitted(ds.interactions, emb, ds.timestamps, half_life=86_400.0)
    np.testing.assert_array_equal(a.profiles(np.arange(80)), b.profiles(np.arange(80)))
    want = ref_profiles(ds.interactions, emb, ds.timestamps.astype(float), 86_400.0)
    np.testing.assert_allclose(a.profiles(np.arange(80)), want, atol=2e-5)


def test_save_load_roundtrip(tmp_path, case):
    m, emb, times = case
    model = fitted(m, emb, times, half_life=700.0)
    model.update(3, 5, -2.0, t=9_999)
    model.update(model.n_users_, 8)
    model.add_items(np.ones((1, 24), dtype=np.float32))
    path = tmp_path / "content.npz"
    model.save(path)
    loaded = ContentRecommender.load(path)
    assert loaded.n_users_ == 51 and loaded.n_items_ == 121 and loaded.half_life == 700.0
    users = np.arange(51)
    np.testing.assert_allclose(loaded.profiles(users), model.profiles(users), atol=1e-6)
    np.testing.assert_array_equal(loaded.recommend(users, k=5)[0], model.recommend(users, k=5)[0])
    assert (loaded.interactions_ != model.interactions_).nnz == 0
    loaded.update(3, 6)  # still live after loading
    assert repr(loaded) == repr(model)  # the constructor's 120 items; the added one follows
    assert repr(loaded).startswith("ContentRecommender(item_embeddings=<array (120, 24)>")


def test_repr_names_what_the_constructor_was_given():
    texts = ContentRecommender(["a film", "a book"], show_progress=False)
    assert repr(texts).startswith("ContentRecommender(item_embeddings=<list>, half_life=None")
    rows = ContentRecommender(((1.0, 0.0), (0.0, 1.0)), show_progress=False)
    assert repr(rows).startswith("ContentRecommender(item_embeddings=<tuple>")


def test_pickle_roundtrip_keeps_profiles_events_and_index(case):
    # Dask sends models to workers by pickle: the unpickled model must be the same model
    # (profiles rebuilt from the events, as load does) and stay live.
    import pickle

    m, emb, times = case
    model = fitted(m, emb, times, half_life=700.0)
    model.update(3, 5, -2.0, t=9_999)
    model.update(model.n_users_, 8)
    model.add_items(np.ones((1, 24), dtype=np.float32))
    copy = pickle.loads(pickle.dumps(model))
    users = np.arange(model.n_users_)
    np.testing.assert_allclose(copy.profiles(users), model.profiles(users), atol=1e-6)
    for u in (3, 50, users):
        np.testing.assert_array_equal(copy.recommend(u, k=5)[0], model.recommend(u, k=5)[0])
    assert (copy.interactions_ != model.interactions_).nnz == 0
    copy.update(3, 6)  # still live
    model.update(3, 6)
    np.testing.assert_array_equal(copy.recommend(3, k=5)[0], model.recommend(3, k=5)[0])
    assert 6 not in copy.recommend(3, k=120)[0]


def test_load_rejects_damaged_files(tmp_path, case):
    m, emb, _ = case
    path = tmp_path / "content.npz"
    fitted(m, emb).save(path)
    raw = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(FormatError):
        ContentRecommender.load(tmp_path / "cut.npz")
    semrec.ALS(factors=2, show_progress=False).fit(abs(m)).save(tmp_path / "als.npz")
    with pytest.raises(FormatError, match=r"not a semrec\.ContentRecommender file"):
        ContentRecommender.load(tmp_path / "als.npz")
    with np.load(path) as z:
        arrays = dict(z)
    arrays["event_items"] = arrays["event_items"] + 500
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(FormatError, match="corrupt"):
        ContentRecommender.load(tmp_path / "bad.npz")
    with pytest.raises(FileNotFoundError):
        ContentRecommender.load(tmp_path / "missing.npz")


def test_bad_inputs_raise_clear_errors(case):
    m, emb, _ = case
    with pytest.raises(ValueError, match="not fitted"):
        ContentRecommender(emb).recommend(0)
    with pytest.raises(ValueError, match="half_life needs timestamps"):
        ContentRecommender(emb, half_life=5.0, show_progress=False).fit(m)
    with pytest.raises(TypeError, match="float32"):
        ContentRecommender(emb.astype(np.float64), show_progress=False).fit(m)
    with pytest.raises(ValueError, match="one column per item"):
        ContentRecommender(emb[:10], show_progress=False).fit(m)
    model = fitted(m, emb)
    with pytest.raises(IndexError, match="user 52 is outside"):
        model.update(52, 0)
    with pytest.raises(IndexError, match="item 120 is outside"):
        model.update(0, 120)
    with pytest.raises(TypeError, match="user must be an int"):
        model.update("alice", 0)
    with pytest.raises(ValueError, match="weight must be finite"):
        model.update(0, 0, float("nan"))
    with pytest.raises(IndexError, match="outside"):
        model.recommend(50)
    with pytest.raises(ValueError, match="k must be >= 1"):
        model.recommend(0, k=0)
    with pytest.raises(ValueError, match="dimension 24"):
        model.add_items(np.ones((2, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="one column per item"):
        model.fold_in(sp.csr_array((1, 3), dtype=np.float32))
    with pytest.raises(TypeError, match="query must be a string"):
        model.recommend_text(42)
    with pytest.raises(ValueError, match="query is empty"):
        model.recommend_text([])
    with pytest.raises(IndexError, match="999"):
        model.explain(0, 999)


# -- text: the real encoder on a catalogue whose topics are known ------------------------------


@pytest.fixture(scope="module")
def topical():
    ds = synthetic(150, 200, 3000, n_topics=5, random_state=0)
    encoder = semrec.TextEncoder()
    model = ContentRecommender(encoder.encode(ds.item_text), encoder=encoder, show_progress=False)
    return ds, model.fit(ds)


@pytest.mark.slow
def test_recommend_text_returns_the_topic_of_the_query(topical):
    ds, model = topical
    topic = ds.items["topic"].to_numpy()
    queries = [" ".join(SYNTHETIC_THEMES[t]) for t in range(5)]
    ids, scores = model.recommend_text(queries, k=10)
    assert ids.shape == (5, 10) and (np.diff(scores, axis=1) <= 0).all()
    for t in range(5):
        assert (topic[ids[t]] == t).mean() >= 0.8, (queries[t], topic[ids[t]])
    one, _ = model.recommend_text("a story about a " + SYNTHETIC_THEMES[2][0], k=3)
    assert one.shape == (3,) and (topic[one] == 2).all()


@pytest.mark.slow
def test_added_text_item_reaches_users_of_its_topic(topical):
    ds, base = topical
    model = ContentRecommender(base.item_embeddings, encoder=base.encoder, show_progress=False)
    model.fit(ds)
    user_topic = ds.users["topic"].to_numpy()
    texts = [
        f"strange {SYNTHETIC_THEMES[t][1]} and the {SYNTHETIC_THEMES[t][3]} #new" for t in range(5)
    ]
    new = model.add_items(texts)
    assert new.tolist() == list(range(200, 205))
    k = 200 // 5  # about one topic's worth of items
    ids, _ = model.recommend(np.arange(150), k=k)
    for t in range(5):
        hit = (ids == new[t]).any(axis=1)
        assert hit[user_topic == t].mean() >= 0.9
        assert hit[user_topic != t].mean() <= 0.1


def test_fit_is_identical_for_any_thread_count_and_zero_entries_are_seen(case):
    m, emb, times = case
    a = ContentRecommender(emb, half_life=900.0, num_threads=1, show_progress=False)
    b = ContentRecommender(emb, half_life=900.0, num_threads=3, show_progress=False)
    a.fit(m, timestamps=times)
    b.fit(m, timestamps=times)
    users = np.arange(50)
    np.testing.assert_array_equal(a.profiles(users), b.profiles(users))
    z = m.copy()
    z.data[0] = 0.0  # an explicit zero: an event of weight 0, seen (issue 13)
    c = ContentRecommender(emb, half_life=900.0, show_progress=False).fit(z, timestamps=times)
    assert c.interactions_.nnz == m.nnz
    u = int(np.searchsorted(m.indptr, 0, side="right") - 1)
    assert z.indices[0] not in c.recommend(u, k=120)[0]
    # ... and it moves no profile: the same as without the entry.
    kept = np.ones(m.nnz, dtype=bool)
    kept[0] = False
    dropped = sp.csr_array(z.toarray())  # rows are sorted: the order of times[kept]
    d = ContentRecommender(emb, half_life=900.0, show_progress=False)
    d.fit(dropped, timestamps=times[kept])
    np.testing.assert_array_equal(c.profiles(users), d.profiles(users))


def test_centred_rating_of_zero_and_cancelled_weights_stay_seen(case):
    """Centred ratings: a rating equal to the centre becomes weight 0; a like and a dislike
    of one item cancel. Both are still items the user interacted with (issue 13)."""
    m, emb, times = case
    ratings = m.copy()
    ratings.data = np.abs(ratings.data)
    centre = float(ratings.data[0])
    centred = ratings.copy()
    centred.data = centred.data - np.float32(centre)  # the first event becomes a 0
    ds = semrec.datasets.Dataset(centred, timestamps=times)
    assert ds.interactions.nnz == m.nnz  # the Dataset keeps it, timestamps aligned
    model = ContentRecommender(emb, show_progress=False).fit(ds)
    u = int(np.searchsorted(m.indptr, 0, side="right") - 1)
    assert centred.indices[0] not in model.recommend(u, k=120)[0]
    fresh = int(np.setdiff1d(np.arange(120), centred[[7]].indices)[0])
    model.update(7, fresh, 1.0)
    model.update(7, fresh, -1.0)  # cancels: still seen, in recommend and after a reload
    assert fresh not in model.recommend(7, k=120)[0]
    model.update(8, fresh, 0.0)
    assert fresh not in model.recommend(8, k=120)[0]
    new = model.n_users_
    model.fold_in(sp.csr_array(([0.0, 2.0], [3, 4], [0, 2]), shape=(1, 120)), users=[new])
    assert not {3, 4} & set(model.recommend(new, k=120)[0].tolist())


@pytest.mark.slow
def test_encode_items_carries_the_ids_through_a_cold_split(topical):
    """encode_items keeps each vector with its item; after the cold split renumbers the
    items, from_dataset matches them by id: the same vectors as encoding the split's own
    text (issue 13)."""
    ds, model = topical
    emb = model.encoder.encode_items(ds)
    assert (emb.item_ids == ds.item_ids).all()
    np.testing.assert_array_equal(np.asarray(emb), model.encoder.encode(ds.item_text))
    train, _ = semrec.split.cold_items(ds, 0.1, 5, random_state=0)
    direct = model.encoder.encode(train.item_text)
    cold_model = ContentRecommender.from_dataset(train, emb, show_progress=False)
    np.testing.assert_allclose(cold_model.item_embeddings_, direct, atol=1e-6)
    with pytest.raises(ValueError, match="not aligned"):
        ContentRecommender(emb, show_progress=False).fit(train)
    with pytest.raises(ValueError, match="no item text"):
        model.encoder.encode_items(semrec.datasets.Dataset(ds.interactions))


def test_encoder_without_encode_is_a_type_error_naming_encoder() -> None:
    emb = np.eye(3, dtype=np.float32)
    r = sp.csr_array(np.eye(3, dtype=np.float32))
    with pytest.raises(TypeError, match=r"encoder must be None .* encode"):
        ContentRecommender(emb, encoder=3, show_progress=False).fit(r)
    model = ContentRecommender(emb, show_progress=False).fit(r)
    model.encoder = "not an encoder"  # set after fit
    with pytest.raises(TypeError, match="encoder"):
        model.recommend_text("x")
    with pytest.raises(TypeError, match="encoder"):
        model.add_items(["x"])


def test_huge_and_tiny_embeddings_still_give_unit_rows() -> None:
    base = np.random.default_rng(0).standard_normal((5, 4))
    for scale in (np.float32(1e37), np.float32(1e-30)):
        emb = base.astype(np.float32) * scale
        model = ContentRecommender(emb, show_progress=False).fit(
            sp.csr_array(np.eye(5, dtype=np.float32))
        )
        expected = unit(emb.astype(np.float64))
        np.testing.assert_allclose(model.item_embeddings_, expected, rtol=1e-6, atol=1e-7)
        new = model.add_items(emb[:2])
        np.testing.assert_allclose(model.item_embeddings_[new], expected[:2], rtol=1e-6, atol=1e-7)
        _, scores = model.recommend(0, k=2)
        assert np.isfinite(scores).all() and scores[0] > 0


@pytest.mark.parametrize("half_life", [None, 10.0])
def test_update_whose_weight_overflows_the_profile_is_refused(half_life) -> None:
    emb = np.array([[1, 0], [0.6, 0.8], [0, 1]], dtype=np.float32)
    r = sp.csr_array(np.array([[1, 0, 0]], dtype=np.float32))
    model = ContentRecommender(emb, half_life=half_life, show_progress=False)
    model.fit(r, timestamps=np.zeros(1))
    model.update(0, 1, 3e38)  # 1.8e38 and 2.4e38: still finite
    before, profile = model._stream.decayed_sum(0), model.profiles(0)
    with pytest.raises(ValueError, match=r"weight=3e\+38 would take user 0's profile.*4.8e\+38"):
        model.update(0, 1, 3e38)
    # The kernel refused it: sum, reference time and profile are bit for bit as they were.
    after = model._stream.decayed_sum(0)
    np.testing.assert_array_equal(after[0], before[0])
    assert after[1] == before[1]
    np.testing.assert_array_equal(model.profiles(0), profile)
    _, scores = model.recommend(0, k=3, exclude_seen=False)
    assert np.isfinite(scores).all()
    assert model.interactions_[0, 1] == np.float32(3e38)
    with pytest.raises(ValueError, match=r"weight=1e\+39 would take user 1's profile"):
        model.update(1, 1, 1e39)  # a new user: not created
    assert model.n_users_ == 1 and model.interactions_.shape == (1, 3)
    model.update(0, 2, 1.0)


@pytest.mark.parametrize("half_life", [None, 10.0])
def test_fit_whose_weights_overflow_a_profile_is_refused_and_keeps_the_model(half_life) -> None:
    """Summed weights past float32's range made a NaN profile: fit went through, score gave
    NaN and recommend failed naming "queries", an argument the caller never passed."""
    emb = np.array([[1, 0], [0.6, 0.8], [0, 1]], dtype=np.float32)
    huge = sp.csr_array(np.array([[1, 0, 0], [3e38, 3e38, 0]], dtype=np.float32))
    model = ContentRecommender(emb, half_life=half_life, show_progress=False)
    says = r"interactions would take user 1's profile sum past float32's range \(to 4.8e\+38\)"
    with pytest.raises(ValueError, match=says + "; use weights of a moderate scale"):
        model.fit(huge, timestamps=np.zeros(3))
    assert not hasattr(model, "n_users_")  # still unfitted
    model.fit(sp.csr_array(np.eye(3, dtype=np.float32)), timestamps=np.zeros(3))
    before = model.profiles(np.arange(3))
    with pytest.raises(ValueError, match=says):
        model.fit(huge, timestamps=np.zeros(3))
    assert model.n_users_ == 3  # the earlier fit stands
    np.testing.assert_array_equal(model.profiles(np.arange(3)), before)
    model.fit(huge.multiply(np.float32(0.5)).tocsr(), timestamps=np.zeros(3))  # 2.4e38: fits
    assert np.isfinite(model.score(1, [0, 1, 2])).all()


@pytest.mark.parametrize("half_life", [None, 10.0])
def test_fold_in_whose_weights_overflow_a_profile_is_refused_and_changes_nothing(half_life):
    """fold_in(users=...) stored a NaN profile (an existing user's history already replaced);
    without users the message did not name history."""
    emb = np.array([[1, 0], [0.6, 0.8], [0, 1]], dtype=np.float32)
    model = ContentRecommender(emb, half_life=half_life, show_progress=False)
    model.fit(sp.csr_array(np.array([[1, 0, 0], [0, 0, 1]], np.float32)), timestamps=np.zeros(2))
    huge = sp.csr_array(np.array([[0, 0, 1], [3e38, 3e38, 0]], dtype=np.float32))
    before, seen = model.profiles([0, 1]), model.interactions_.toarray()
    with pytest.raises(ValueError, match=r"history: user 1's profile overflows float32"):
        model.fold_in(huge)
    for users in ([0, 1], [2, 3], [1, 2]):  # existing users replaced, new ones appended
        says = f"history would take user {users[1]}'s profile sum past float32's range"
        with pytest.raises(ValueError, match=says):
            model.fold_in(huge, users=users, timestamps=np.zeros(3))
        assert model.n_users_ == 2
        np.testing.assert_array_equal(model.profiles([0, 1]), before)
        np.testing.assert_array_equal(model.interactions_.toarray(), seen)
    fine = huge.multiply(np.float32(1e-30)).tocsr()
    np.testing.assert_allclose(model.fold_in(fine, users=[1, 2])[1], [0.894427, 0.447214], 1e-6)
    assert model.n_users_ == 3 and model.interactions_[2, 0] == np.float32(3e8)


def test_update_after_a_history_that_cancels_out_is_refused_when_it_overflows() -> None:
    """The sum is 0 but the reference time stays at the first event, so an event 15 half-lives
    later counts 2**15 times its weight: 3e34 becomes 9.8e38. (Predicted in Python, a zero sum
    was taken for no history and the event accepted: the sum became [inf, nan].)"""
    emb = np.array([[1, 0], [0.6, 0.8]], dtype=np.float32)
    model = ContentRecommender(emb, half_life=1.0, show_progress=False)
    model.fit(sp.csr_array((1, 2), dtype=np.float32), timestamps=np.zeros(0))
    model.update(0, 0, 1.0, t=0.0)
    model.update(0, 0, -1.0, t=0.0)
    with pytest.raises(ValueError, match=r"weight=3e\+34 would take user 0's .*9.83e\+38"):
        model.update(0, 0, 3e34, t=15.0)
    total, ref = model._stream.decayed_sum(0)
    assert ref == 0.0 and not total.any()
    model.update(0, 1, 3e28, t=15.0)  # 2**15 times 3e28 fits
    np.testing.assert_allclose(model.profiles(0), [0.6, 0.8], rtol=1e-6)


def test_update_refused_after_a_rebase_keeps_the_reference_time() -> None:
    """An event 16+ half-lives after the user's reference time shrinks the sum to a new one
    first (the kernel's rebase): a refusal there must leave both as they were."""
    emb = np.array([[1, 0], [0.6, 0.8]], dtype=np.float32)
    model = ContentRecommender(emb, half_life=1.0, show_progress=False)
    model.fit(sp.csr_array(np.array([[3e38, 0]], dtype=np.float32)), timestamps=np.zeros(1))
    before = model._stream.decayed_sum(0)
    with pytest.raises(ValueError, match="would take user 0's profile sum past float32"):
        # Rebased to t=20, the sum is 3e38 * 2**-20 = 2.9e32 along item 0: adding the largest
        # float32 there passes float32's range (its last step is 2e31).
        model.update(0, 0, float(np.finfo(np.float32).max), t=20.0)
    after = model._stream.decayed_sum(0)
    np.testing.assert_array_equal(after[0], before[0])
    assert after[1] == before[1] == 0.0


def test_a_loaded_model_refuses_the_bundled_encoder_when_another_encoded_its_texts(tmp_path):
    # The encoder is not saved, only what it was: after load, encoding a query with the bundled
    # model instead would give vectors of the same width that mean something else.
    class Words:  # an encoder of one's own
        def encode(self, texts, **kwargs):
            return np.array([[len(t), t.count("a"), 1.0, 0.5] for t in texts], np.float32)

    class Tuned(Words):  # what a semrec.TextEncoder shows of its model files
        identity = "0123abcd:fp32"
        model_path = "/models/tuned"

    emb = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32)
    clicks = sp.csr_array(np.eye(3, 6, dtype=np.float32))
    path = tmp_path / "content.npz"
    cases = [(Words(), "a Words of your own"),
             (Tuned(), r"TextEncoder of '/models/tuned'.*TextEncoder\('/models")]  # fmt: skip
    for encoder, match in cases:
        model = ContentRecommender(emb, encoder=encoder, show_progress=False).fit(clicks)
        model.save(path)
        loaded = ContentRecommender.load(path)
        with pytest.raises(ValueError, match=match):
            loaded.recommend_text("a story", k=3)
        loaded.save(tmp_path / "again.npz")  # saved again without its encoder: the record stays
        with pytest.raises(ValueError, match=match):
            ContentRecommender.load(tmp_path / "again.npz").recommend_text("a story", k=3)
        loaded.encoder = encoder  # given again, as the message says
        np.testing.assert_array_equal(loaded.recommend_text("a story", k=3)[0],
                                      model.recommend_text("a story", k=3)[0])  # fmt: skip


def test_recommend_while_another_thread_adds_items():
    # A search reads the item vectors, then the seen rows; add_items in between grew the seen
    # rows past the vectors read ("exclude must have shape (20, N)"). Every call now succeeds
    # and never lists a user's seen item.
    import threading

    rng = np.random.default_rng(0)
    items = rng.standard_normal((2000, 16)).astype(np.float32)
    clicks = sp.csr_array(sp.random_array((50, 2000), density=0.02, rng=rng) > 0, dtype=np.float32)
    model = ContentRecommender(items, show_progress=False).fit(clicks)
    done, errors, listed = threading.Event(), [], []

    def reader() -> None:
        while not done.is_set():
            try:
                for users in (np.arange(20), np.array([3])):
                    listed.append((users, model.recommend(users, k=10)[0]))
            except Exception as exc:  # any failure is the finding
                errors.append(exc)
                return

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    more = np.random.default_rng(1)
    for _ in range(150):
        model.add_items(more.standard_normal((20, 16)).astype(np.float32))
    done.set()
    for t in threads:
        t.join()
    assert not errors, errors[0]
    assert listed
    for users, ids in listed:
        for user, row in zip(users, ids, strict=True):
            assert not np.isin(row, clicks[[user]].indices).any()


def test_add_items_checks_the_encoders_rows_and_keeps_the_model_on_error(case):
    m, emb, _ = case
    model = ContentRecommender(emb, encoder=PlantedEncoder(emb), show_progress=False).fit(m)
    texts = ["ab", "abc", "a"]
    # Texts go the embeddings' way: the same unit vectors and scores as the encoder's rows.
    by_text, by_rows = model.add_items(texts), model.add_items(PlantedEncoder(emb).encode(texts))
    assert by_text.tolist() == [120, 121, 122] and by_rows.tolist() == [123, 124, 125]
    np.testing.assert_allclose(model.item_embeddings_[by_text], unit(emb[[2, 3, 1]]), atol=1e-6)
    np.testing.assert_array_equal(model.item_embeddings_[by_text], model.item_embeddings_[by_rows])
    users = np.arange(m.shape[0])
    np.testing.assert_array_equal(model.score(users, by_text), model.score(users, by_rows))
    model.encoder = PlantedEncoder(emb)  # a str is one text, handed to the encoder in a list
    assert model.add_items("abcd").tolist() == [126] and model.encoder.calls == [["abcd"]]
    n = model.n_items_
    for answer, error, match in refused_encoder_answers(emb):
        model.encoder = PlantedEncoder(emb, answer)
        with pytest.raises(error, match=match):
            model.add_items(texts)
        assert model.n_items_ == n and model.item_embeddings_.shape[0] == n
        assert model.recommend(users[:2], k=n)[0].max() < n  # nothing half-added
    model.encoder = PlantedEncoder(emb, emb[:1])  # queries are checked the same way
    with pytest.raises(ValueError, match=r"shape \(1, 24\) for 3 texts; it must give one row"):
        model.recommend_text(texts, k=2)


def test_a_half_life_changed_after_fit_is_not_saved_and_copies_keep_the_fitted_one(tmp_path, case):
    """The profiles decay with the half-life of fit; load replays the events with the saved
    one, so a file written after ``model.half_life = ...`` loaded a model that recommended
    differently. The save refuses it, naming half_life; a pickled copy decays as the model."""
    import pickle

    m, emb, times = case
    model = fitted(m, emb, times, half_life=700.0)
    want = ref_profiles(m, emb, times, 700.0)
    path = tmp_path / "content.npz"
    model.half_life = 50_000.0
    with pytest.raises(ValueError, match=r"half_life is 50000\.0, but .* fitted with 700\.0"):
        model.save(path)
    with pytest.raises(ValueError, match="half_life"):  # inside a Hybrid too
        semrec.Hybrid([(model, 1.0)]).save(path)
    assert not path.exists()
    copy = pickle.loads(pickle.dumps(model))
    users = np.arange(50)
    np.testing.assert_allclose(copy.profiles(users), want, atol=2e-5)
    for value in (700.0, 700):  # set back (as an int too): saved, and loads the same model
        model.half_life = value
        model.save(path)
        loaded = ContentRecommender.load(path)
        np.testing.assert_allclose(loaded.profiles(users), want, atol=2e-5)
        ids = model.recommend(users, k=5)[0]
        np.testing.assert_array_equal(loaded.recommend(users, k=5)[0], ids)
        assert repr(loaded) == repr(model)
    model.half_life = None
    with pytest.raises(ValueError, match=r"half_life is None, but .* fitted with 700"):
        model.save(path)


def test_item_embeddings_are_read_only_so_the_search_index_cannot_go_stale(case):
    """``item_embeddings_`` was writable: an edit in place reached ``score`` but not the int8
    search index, so ``recommend`` returned a wrong top-k without a word."""
    m, emb, _ = case
    model = fitted(m, emb)
    top = int(model.recommend(0, k=1)[0][0])
    with pytest.raises(ValueError, match="read-only"):
        model.item_embeddings_[top] *= -1
    assert model.item_embeddings_ is model.item_embeddings_  # one view: no index rebuild
    editable = model.item_embeddings_.copy()  # the way to edit: a copy, for a new model
    editable[top] *= -1
    scores = ref_profiles(m, emb) @ unit(emb).T  # the catalogue as fitted, in float64
    scores[m.toarray() != 0] = -np.inf
    want = np.lexsort((np.arange(emb.shape[0]), -scores[0]))[:5]
    np.testing.assert_array_equal(model.recommend(0, k=5)[0], want)
    new = model.add_items(np.ones((1, emb.shape[1]), np.float32))
    with pytest.raises(ValueError, match="read-only"):  # the grown catalogue too
        model.item_embeddings_[new] = 0


def test_an_untimed_event_needs_a_clock_with_a_half_life():
    """Before any timed event, ``update`` without ``t`` (and ``fold_in`` without timestamps)
    was dated t=0 and then vanished at the first epoch timestamp: refused now, as the
    streaming state refuses it, and nothing changes."""
    emb = np.eye(3, dtype=np.float32)
    model = ContentRecommender(emb, half_life=86_400.0, show_progress=False)
    model.fit(sp.csr_array((1, 3), dtype=np.float32), timestamps=np.array([]))
    one = sp.csr_array(np.array([[1, 0, 0]], np.float32))
    with pytest.raises(ValueError, match=r"^t is needed: .*half_life.*give t"):
        model.update(0, 0)
    with pytest.raises(ValueError, match=r"^t is needed"):  # seen, so dated: weight 0 too
        model.update(0, 0, weight=0.0)
    for users in ([1], [0], None):
        with pytest.raises(ValueError, match=r"^timestamps are needed: .*give timestamps"):
            model.fold_in(one, users=users)
    assert model.n_users_ == 1 and model.interactions_.nnz == 0
    np.testing.assert_array_equal(model.fold_in(sp.csr_array((1, 3), dtype=np.float32)), [[0] * 3])
    model.update(0, 1, t=1.7e9)
    model.update(0, 0)  # "now" is 1.7e9: the two events weigh the same
    np.testing.assert_allclose(model.profiles(0), unit([1, 1, 0]), atol=1e-6)
    got = model.fold_in(one + 2 * sp.csr_array(np.array([[0, 0, 1]], np.float32)))
    np.testing.assert_allclose(got, unit([[1, 0, 2]]), atol=1e-6)


def test_zero_weight_events_move_the_clock_as_other_events_do(tmp_path):
    """Weight-0 events were dropped before the profiles saw their times: a fit whose only
    timed event had weight 0 left no clock (later untimed events were dated 0), and an update
    of weight 0 at a later time did not move "now"."""
    emb = np.eye(3, dtype=np.float32)
    half_life = 100_000.0
    zero = sp.csr_array((np.array([0.0], np.float32), [2], [0, 1]), shape=(1, 3))
    model = ContentRecommender(emb, half_life=half_life, show_progress=False)
    model.fit(zero, timestamps=np.array([1.7e9]))
    model.update(0, 1)  # dated 1.7e9, the latest time given to fit
    model.update(0, 0, t=1.7e9)
    np.testing.assert_allclose(model.profiles(0), unit([1, 1, 0]), atol=1e-6)
    assert model.interactions_.toarray().tolist() == [[1, 1, 0]]  # the weight-0 item is seen
    model.update(1, 0, t=100.0)
    model.update(1, 1, weight=0.0, t=1.7e9 + half_life)  # moves no profile, but the clock
    model.update(1, 2)
    history = sp.csr_array(np.array([[1.0, 0.0, 1.0]], np.float32))
    want = ref_profiles(history, emb, np.array([100.0, 1.7e9 + half_life]), half_life)
    np.testing.assert_allclose(model.profiles(1), want[0], atol=1e-6)
    # a fold-in's weight-0 events too; and a loaded model keeps the same clock
    later = sp.csr_array((np.array([0.0], np.float32), [0], [0, 1]), shape=(1, 3))
    model.fold_in(later, users=[2], timestamps=[1.7e9 + 3 * half_life])
    model.save(tmp_path / "m.npz")
    loaded = ContentRecommender.load(tmp_path / "m.npz")
    for copy in (model, loaded):
        copy.update(2, 0, t=1.7e9 + 2 * half_life)
        copy.update(2, 1)  # dated 1.7e9 + 3 half-lives: counts twice as much
        np.testing.assert_allclose(copy.profiles(2), unit([1, 2, 0]), atol=1e-6)


def copies(model, tmp_path):
    """A model loaded from ``model``'s file, a pickled, a deep and a shallow copy of it, and
    a deep copy of the loaded one (every copy replays the events, as a load does)."""
    import copy
    import pickle

    model.save(tmp_path / "clock.npz")
    loaded = ContentRecommender.load(tmp_path / "clock.npz")
    return {
        "load": loaded,
        "pickle": pickle.loads(pickle.dumps(model)),
        "deepcopy": copy.deepcopy(model),
        "copy": copy.copy(model),
        "load+deepcopy": copy.deepcopy(loaded),
    }


def decayed(times, items, half_life, now, emb):
    """The normalised sum of unit weights on ``items``, each decayed by 2^-((now - t)/half_life)."""
    w = 2.0 ** (-(now - np.asarray(times, np.float64)) / half_life)
    return unit(w @ np.asarray(emb, np.float64)[items])


def test_copies_and_loads_keep_the_clock_when_a_fold_in_dropped_its_latest_events(tmp_path):
    """A copy or a load replays the events still in the log: once a fold-in had dropped the
    events that set the latest time, the copy's "now" went back in time (to 0 here), and an
    untimed event weighed 2^10 times more than in the model it came from."""
    emb = np.eye(3, dtype=np.float32)
    model = ContentRecommender(emb, half_life=1.0, show_progress=False)
    model.fit(sp.csr_array(np.array([[1, 0, 0], [1, 0, 0]], np.float32)), timestamps=[0.0, 0.0])
    model.update(1, 2, t=10.0)  # the latest time seen: 10
    model.fold_in(sp.csr_array((1, 3), dtype=np.float32), users=[1])  # user 1 forgets it
    want = decayed([0.0, 10.0], [0, 1], 1.0, 10.0, emb)  # item 0 at 0, item 1 "now" = 10
    for how, copy in {**copies(model, tmp_path), "model": model}.items():
        copy.update(0, 1)
        np.testing.assert_allclose(copy.profiles(0), want, atol=1e-6, err_msg=how)
        assert copy.explain(0, 1)["contribution"].tolist()[0] > 0.99, how
    assert want[1] > 0.99


def test_copies_and_loads_keep_the_clock_of_a_model_whose_timed_events_are_all_gone(tmp_path):
    """With a half_life, an untimed event needs a clock: a model whose only timed event a
    fold-in dropped accepted untimed events, its loads and copies refused them ("t is needed")."""
    emb = np.eye(4, dtype=np.float32)
    model = ContentRecommender(emb, half_life=5.0, show_progress=False)
    model.fit(sp.csr_array((1, 4), dtype=np.float32), timestamps=np.array([]))
    model.update(0, 2, t=100.0)
    model.fold_in(sp.csr_array((1, 4), dtype=np.float32), users=[0])  # no events left
    assert model.interactions_.nnz == 0
    want = decayed([100.0, 105.0], [3, 0], 5.0, 105.0, emb)  # item 3 dated "now" = 100
    for how, copy in {**copies(model, tmp_path), "model": model}.items():
        copy.update(1, 3)
        copy.update(1, 0, t=105.0)
        np.testing.assert_allclose(copy.profiles(1), want, atol=1e-6, err_msg=how)
        np.testing.assert_allclose(copy.profiles(0), [0, 0, 0, 0], err_msg=how)
    np.testing.assert_allclose(want, unit([1, 0, 0, 0.5]), atol=1e-12)


def test_files_saved_without_the_clock_load_with_the_clock_of_their_events(tmp_path):
    """Files of earlier versions carry no clock: they load as they did, dated by their events;
    a clock that contradicts the events is a corrupt file."""
    from semrec import _persist as persist

    emb = np.eye(3, dtype=np.float32)
    model = ContentRecommender(emb, half_life=1.0, show_progress=False)
    model.fit(sp.csr_array(np.array([[1, 0, 0], [0, 0, 1]], np.float32)), timestamps=[0.0, 4.0])
    model.update(1, 2, t=10.0)
    model.fold_in(sp.csr_array((1, 3), dtype=np.float32), users=[1])
    path = tmp_path / "m.npz"

    def rewritten(**clock):
        model.save(path)
        saved = persist.read(path, ContentRecommender._FORMAT_NAME, 2)
        meta = {k: v for k, v in saved.meta.items() if k not in ("checksums", "latest", "timed")}
        persist.write(path, {**meta, **clock}, dict(saved.arrays))
        return lambda: ContentRecommender.load(path)

    old = rewritten()()  # the latest time of its events, 0: not the model's 10
    old.update(0, 1)
    np.testing.assert_allclose(old.profiles(0), decayed([0.0, 0.0], [0, 1], 1.0, 0.0, emb))
    for clock in ({"latest": -1.0, "timed": True}, {"latest": 0.0, "timed": False}):
        with pytest.raises(FormatError, match=r"corrupt: latest and timed .* contradict"):
            rewritten(**clock)()
    with pytest.raises(FormatError, match=r"corrupt: timed must be"):
        rewritten(latest=10.0, timed=1)()
    with pytest.raises(FormatError, match=r"corrupt: latest must be"):
        rewritten(latest="10", timed=True)()


def test_clicks_fold_ins_and_new_items_across_consolidations_match_a_dense_reference(
    monkeypatch,
):
    # A tail limit of a few events: the seen matrix is merged with its tail every few clicks,
    # with rows added, replaced by fold_in and widened by add_items in between.
    monkeypatch.setattr(semrec.content, "_TAIL_LIMIT", 5)
    rng = np.random.default_rng(7)
    emb = rng.standard_normal((30, 6)).astype(np.float32)
    start = sp.random_array((20, 30), density=0.15, format="csr", rng=1, dtype=np.float32)
    start.data[:] = rng.choice([-2.0, -1.0, 1.0, 2.0], start.nnz)  # integers: exact sums
    model = ContentRecommender(emb, show_progress=False).fit(start)
    sums, seen = start.toarray().astype(np.float64), start.toarray() != 0

    def check_user_rows(users):
        ids, scores = model.recommend(users, k=emb.shape[0])
        expected = unit(sums[users] @ unit(emb)) @ unit(emb).T
        for row, u in enumerate(users.tolist()):
            got = ids[row][ids[row] >= 0]
            assert sorted(got.tolist()) == np.flatnonzero(~seen[u]).tolist()
            np.testing.assert_allclose(scores[row][: got.size], expected[row][got], atol=1e-5)

    for step in range(400):
        n_users, n_items = sums.shape
        op = rng.integers(0, 8)
        if op <= 3:  # a click (weights that cancel out leave a seen 0), sometimes a new user
            u, i = int(rng.integers(0, n_users + 1)), int(rng.integers(0, n_items))
            w = float(rng.choice([-2.0, -1.0, 1.0, 2.0]))
            model.update(u, i, w)
            if u == n_users:
                sums, seen = (
                    np.vstack([sums, np.zeros(n_items)]),
                    np.vstack([seen, [False] * n_items]),
                )
            sums[u, i] += w
            seen[u, i] = True
        elif op == 4:  # histories replaced (existing users) or added (the next new one)
            users = np.append(rng.choice(n_users, int(rng.integers(1, 3)), replace=False), n_users)
            history = sp.random_array((users.size, n_items), density=0.1, format="csr", rng=step)
            history.data[:] = rng.choice([-1.0, 1.0, 2.0], history.nnz)
            model.fold_in(sp.csr_array(history, dtype=np.float32), users=users)
            sums, seen = np.vstack([sums, np.zeros(n_items)]), np.vstack([seen, [False] * n_items])
            sums[users], seen[users] = history.toarray(), history.toarray() != 0
        elif op == 5 and step % 4 == 0:
            emb = np.vstack([emb, rng.standard_normal((1, 6)).astype(np.float32)])
            model.add_items(emb[-1:])
            sums, seen = (
                np.hstack([sums, np.zeros((n_users, 1))]),
                np.hstack([seen, np.zeros((n_users, 1), bool)]),
            )
        elif op == 6:
            got = model.interactions_
            assert got.shape == sums.shape
            pattern = np.zeros(sums.shape, bool)
            pattern[np.repeat(np.arange(got.shape[0]), np.diff(got.indptr)), got.indices] = True
            np.testing.assert_array_equal(pattern, seen)  # stored zeros are seen
            np.testing.assert_array_equal(got.toarray(), sums)
        else:
            check_user_rows(np.array([rng.integers(0, n_users)]))
            check_user_rows(rng.choice(n_users, 4, replace=False))
            u, j = int(rng.integers(0, n_users)), int(rng.integers(0, n_items))
            table = model.explain(u, j, k=n_items)  # per item: summed weight * cos / norm
            total = np.linalg.norm(sums[u] @ unit(emb))
            want = sums[u] * (unit(emb) @ unit(emb)[j]) / (total if total > 0 else np.inf)
            assert sorted(table["item"]) == np.flatnonzero(seen[u]).tolist()
            np.testing.assert_allclose(table["contribution"], want[table["item"]], atol=1e-5)
    check_user_rows(np.arange(sums.shape[0]))
    np.testing.assert_array_equal(model.interactions_.toarray(), sums)


def test_clicks_fold_ins_and_new_users_do_not_rebuild_the_whole_seen_matrix(monkeypatch):
    rng = np.random.default_rng(3)
    emb = rng.standard_normal((200, 8)).astype(np.float32)
    start = sp.random_array((500, 200), density=0.1, format="csr", rng=2, dtype=np.float32)
    model = ContentRecommender(emb, show_progress=False).fit(start)
    model.recommend(0)  # the seen matrix is built (all 10k events, once)
    sorted_sizes = []
    canonical = semrec._validation.canonical_csr

    def recording(m, *args, **kwargs):
        sorted_sizes.append(m.nnz)
        return canonical(m, *args, **kwargs)

    monkeypatch.setattr(semrec._validation, "canonical_csr", recording)
    monkeypatch.setattr(semrec.content, "_TAIL_LIMIT", 1)  # every second click consolidates
    one = sp.csr_array(([1.0], [7], [0, 1]), shape=(1, 200), dtype=np.float32)
    model.fold_in(one, users=[3])  # its row replaced, the matrix kept
    for u in (3, 4, 4, 5, 500, 500):
        if u == 500:  # a new user: no copy of the matrix's row offsets either
            monkeypatch.setattr(sp.csr_array, "resize", None)
        model.update(u, int(rng.integers(0, 200)))
        model.recommend(u)
        model.recommend([u, 0])
    assert model.interactions_.shape == (501, 200)
    # explain reads the user's events without scanning the log (nor a new user's)
    history = set(model.interactions_[[4]].indices)
    monkeypatch.setattr(semrec._events.EventLog, "arrays", None)
    assert set(model.explain(4, 9, k=200)["item"]) == history
    assert 1 <= len(model.explain(500, 9, k=200)) <= 2
    assert max(sorted_sizes) <= 2 * start.shape[1] * 0.1 + 10  # a few rows, never 10k entries
    assert start.nnz > 5000


def test_explain_for_a_user_with_thousands_of_events_sums_them_per_item():
    rng = np.random.default_rng(9)
    emb = rng.standard_normal((40, 5)).astype(np.float32)
    model = ContentRecommender(emb, show_progress=False).fit(
        sp.csr_array((3, 40), dtype=np.float32)
    )
    sums = np.zeros((3, 40))
    for _ in range(5000):  # a long chain of events: read by a scan instead
        i, w, other = (
            int(rng.integers(0, 40)),
            float(rng.choice([1.0, 2.0])),
            int(rng.choice([0, 2])),
        )
        model.update(1, i, w)
        model.update(other, i, 1.0)  # other users' events interleaved
        sums[1, i] += w
        sums[other, i] += 1.0
    np.testing.assert_array_equal(model.interactions_.toarray(), sums)
    for user in (1, 2):
        table = model.explain(user, 3, k=40)
        want = sums[user] * (unit(emb) @ unit(emb)[3]) / np.linalg.norm(sums[user] @ unit(emb))
        np.testing.assert_allclose(table["contribution"], want[table["item"]], atol=1e-5)
        assert sorted(table["item"]) == np.flatnonzero(sums[user]).tolist()
    # Their events dropped from the log (found by a scan): the others' stay
    model.fold_in(sp.csr_array(([2.0], [7], [0, 1]), shape=(1, 40), dtype=np.float32), users=[1])
    sums[1] = 0
    sums[1, 7] = 2.0
    assert model.explain(1, 3)["item"].tolist() == [7]
    assert sorted(model.explain(0, 3, k=40)["item"]) == np.flatnonzero(sums[0]).tolist()
    np.testing.assert_array_equal(model.interactions_.toarray(), sums)


def test_a_tail_of_many_users_merges_into_the_seen_matrix_as_a_dense_sum():
    rng = np.random.default_rng(5)
    start = sp.random_array((3000, 50), density=0.05, format="csr", rng=4, dtype=np.float32)
    start.data[:] = rng.choice([-1.0, 1.0, 2.0], start.nnz)
    emb = rng.standard_normal((50, 4)).astype(np.float32)
    model = ContentRecommender(emb, show_progress=False).fit(start)
    model.recommend(0)
    sums = np.vstack([start.toarray(), np.zeros(50)]).astype(np.float64)
    seen = sums != 0
    for u in [*rng.choice(3000, 2000, replace=False).tolist(), 3000, 5]:  # 2000 rows change
        i, w = int(rng.integers(0, 50)), float(rng.choice([-1.0, 1.0]))
        model.update(u, i, w)
        sums[u, i] += w
        seen[u, i] = True
    got = model.interactions_
    pattern = np.zeros(sums.shape, bool)
    pattern[np.repeat(np.arange(got.shape[0]), np.diff(got.indptr)), got.indices] = True
    np.testing.assert_array_equal(pattern, seen)
    np.testing.assert_array_equal(got.toarray(), sums)


def test_empty_additions_and_blank_queries_are_refused():
    """add_items([]) is empty (not "a row of no columns"); a blank query has no words to
    match, and its vector would rank the items by nothing the user said."""
    calls = []

    class Words:  # any object with encode(texts) is an encoder
        def encode(self, texts):
            calls.append(list(texts))
            return np.ones((len(texts), 3), dtype=np.float32)

    emb = np.eye(3, dtype=np.float32)
    model = semrec.ContentRecommender(emb, encoder=Words(), show_progress=False)
    model.fit(sp.csr_array((2, 3), dtype=np.float32))
    for empty in ([], ()):
        with pytest.raises(ValueError, match="items is empty; pass the new items' texts"):
            model.add_items(empty)
    for query, position in ((" ", 0), (["a film", "\t\n"], 1), ("", 0)):
        with pytest.raises(ValueError, match=rf"query\[{position}\] is blank; describe"):
            model.recommend_text(query)
    assert not calls and model.n_items_ == 3
    ids, scores = model.recommend_text("a film", k=3)
    assert sorted(ids.tolist()) == [0, 1, 2]
    np.testing.assert_allclose(scores, np.full(3, 1 / np.sqrt(3)), rtol=1e-6)  # cosine to ones
