"""Issue 16, the Python layer: hostile inputs get an exception that names the argument, what was
received and the fix; never NaN factors, a raw NumPy/pybind11 message, an AttributeError or a
std::bad_alloc. (Per-model rules on huge k, huge ids and malformed CSR: the contract suite.)"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import semrec
from semrec import split
from semrec.datasets import Dataset, synthetic
from semrec.interest import StreamingProfiles


@pytest.fixture(scope="module")
def clicks() -> sp.csr_array:
    rng = np.random.default_rng(4)
    return sp.csr_array((rng.random((30, 20)) < 0.3).astype(np.float32))


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return pd.DataFrame({"u": [1, 1, 2], "i": ["a", "b", "a"], "t": [1, 2, 3]})


def _history(n_items: int, weights: dict[int, float]) -> sp.csr_array:
    row = np.zeros((1, n_items), dtype=np.float32)
    for item, w in weights.items():
        row[0, item] = w
    return sp.csr_array(row)


# -- ALS with weights near the float32 limit ---------------------------------------------------
def test_als_fold_in_with_huge_weights_is_a_clear_error_and_changes_nothing(clicks):
    als = semrec.ALS(4, random_state=0, show_progress=False).fit(clicks)
    n, before = als.n_users_, als.recommend(np.arange(30), k=5)
    for weight, says in ((3e38, "overflows float32"), (1e30, "too large to solve for")):
        with pytest.raises(ValueError, match=f"history.*{says}.*rescale") as err:
            als.fold_in(_history(20, {0: weight, 3: 1.0}), users=[n])
        assert "positive definite" not in str(err.value)  # the old, misleading message
        with pytest.raises(ValueError, match=r"weight .*rescale"):
            als.update(0, 3, weight)
    assert als.n_users_ == n
    for got, want in zip(als.recommend(np.arange(30), k=5), before, strict=True):
        np.testing.assert_array_equal(got, want)


def test_als_fold_in_of_ordinary_weights_matches_a_float64_solve(clicks):
    """The guard refuses only what cannot be solved: a weight of 100 still gives the exact
    solve of the normal equations (Hu, Koren & Volinsky 2008), computed here in NumPy."""
    als = semrec.ALS(4, random_state=0, show_progress=False).fit(clicks)
    y = als.item_factors_.astype(np.float64)
    idx, w = np.array([0, 3]), np.array([100.0, 1.0])
    c = 1.0 + als.alpha * w
    a = y.T @ y + (y[idx].T * (c - 1.0)) @ y[idx] + als.regularization * np.eye(4)
    want = np.linalg.solve(a, y[idx].T @ c)
    got = als.fold_in(_history(20, {0: 100.0, 3: 1.0}))[0]
    np.testing.assert_allclose(got, want, rtol=2e-3, atol=1e-4)


def test_explicit_als_with_ratings_near_float32_max_never_gives_nan(clicks):
    als = semrec.ALS(4, feedback="explicit", random_state=0, show_progress=False).fit(clicks)
    with pytest.raises(ValueError, match=r"history holds ratings up to 3e\+38 .*rescale"):
        als.fold_in(_history(20, {0: 3e38, 1: 3e38, 2: 3e38}))


# -- malformed scipy.sparse ----------------------------------------------------------------------
@pytest.mark.parametrize("part", ["indptr", "indices"])
def test_csr_with_float_index_arrays_is_named(clicks, part):
    bad = clicks.copy()
    setattr(bad, part, getattr(bad, part).astype(np.float64))
    message = f"interactions is malformed: its {part} must be a 1-D integer array.*float64"
    for call in (
        lambda: semrec.ALS(2, show_progress=False).fit(bad),
        lambda: semrec.ItemKNN(3, show_progress=False).fit(bad),
        lambda: semrec.MostPopular().fit(bad),
        lambda: Dataset(bad),
    ):
        with pytest.raises(ValueError, match=message):
            call()


# -- a Dataset where one is expected, and the Dataset constructors ------------------------------
def test_functions_expecting_a_dataset_say_so(clicks):
    data = synthetic(20, 30, 300, random_state=0)
    train, test = split.last_fraction(data)
    model = semrec.MostPopular().fit(train.interactions)
    calls = {
        "dataset": [
            lambda: split.last_fraction(clicks),
            lambda: split.leave_last_k(clicks),
            lambda: split.random_holdout(clicks),
            lambda: split.temporal_global(clicks),
            lambda: split.cold_items(clicks),
            lambda: split.new_users(clicks),
            lambda: semrec.ContentRecommender.from_dataset(clicks, np.eye(20, dtype=np.float32)),
        ],
        "train": [
            lambda: semrec.evaluate(model, clicks, test),
            lambda: semrec.compare({}, clicks, test),
        ],
        "test": [
            lambda: semrec.evaluate(model, train, [1, 2]),
            lambda: semrec.compare({}, train, {}),
        ],
    }
    for name, group in calls.items():
        for call in group:
            with pytest.raises(TypeError, match=f"^{name} must be a semrec.datasets.Dataset, got"):
                call()
    with pytest.raises(TypeError, match=r"Dataset\(dataset\)"):  # the fix for a matrix
        split.last_fraction(clicks)


def test_dataset_constructors_name_the_wrong_argument(clicks, frame):
    cases = [
        (lambda: Dataset.from_pandas(frame, "u", "i", users=[1, 2]), "users must be a pandas"),
        (lambda: Dataset.from_pandas(frame, "u", "i", items=["a"]), "items must be a pandas"),
        (lambda: Dataset.from_pandas(frame, "u", "i", item_text=5), "item_text must be"),
        (lambda: Dataset.from_pandas(clicks, "u", "i"), r"interactions must be a pandas.*Dataset"),
        (lambda: Dataset(clicks, user_ids=7), "user_ids must be a sequence of 30"),
        (lambda: Dataset(clicks, item_ids="abc"), "item_ids must be a sequence of 20"),
        (lambda: Dataset([[1, 0]]), "interactions must be a scipy.sparse CSR"),
        (lambda: Dataset.from_csv(None, "u", "i"), "path must be a file path"),
        (lambda: Dataset.from_csv(42, "u", "i"), "path must be a file path"),
    ]
    for call, message in cases:
        with pytest.raises(TypeError, match=message):
            call()


# -- arguments that used to be blamed on another ------------------------------------------------
def test_evaluate_blames_batch_size():
    train, test = split.last_fraction(synthetic(20, 30, 300, random_state=0))
    model = semrec.MostPopular().fit(train.interactions)
    for bad in (0, -3):
        with pytest.raises(ValueError, match=f"batch_size must be >= 1, got {bad}"):
            semrec.evaluate(model, train, test, batch_size=bad)
    with pytest.raises(TypeError, match="batch_size must be an int"):
        semrec.evaluate(model, train, test, batch_size=2.5)
    one = semrec.evaluate(model, train, test, k=5, relevance_threshold=None, batch_size=1)
    many = semrec.evaluate(model, train, test, k=5, relevance_threshold=None)
    pd.testing.assert_frame_equal(one, many)


def test_cold_start_als_says_it_needs_an_als(clicks):
    knn = semrec.ItemKNN(3, show_progress=False).fit(clicks)
    emb = np.eye(20, dtype=np.float32)
    for call in (
        lambda: semrec.ColdStartALS(knn, emb).fit(),
        lambda: semrec.ColdStartALS(knn, emb).fit(clicks),
    ):
        with pytest.raises(TypeError, match=r"als must be a semrec.ALS .*got ItemKNN") as err:
            call()
        assert "not fitted" not in str(err.value)


def test_add_items_names_the_bad_element(clicks):
    rng = np.random.default_rng(0)
    content = semrec.ContentRecommender(
        rng.standard_normal((20, 3)).astype(np.float32), show_progress=False
    ).fit(clicks)
    with pytest.raises(TypeError, match=r"items\[1\] is None \(NoneType\), not a string"):
        content.add_items(["x", None])
    with pytest.raises(TypeError, match=r"items\[0\] is 3"):
        content.add_items([3, "x"])
    with pytest.raises(ValueError, match=r"items must be a rectangular array.*same length"):
        content.add_items([[1.0, 2.0, 3.0], [1.0]])
    cold = semrec.ColdStartALS(
        semrec.ALS(2, random_state=0, show_progress=False), np.eye(20, 3, dtype=np.float32)
    )
    cold.fit(clicks)
    with pytest.raises(TypeError, match=r"items must hold numbers, got 'x' \(str\)"):
        cold.add_items([[0.0, 1.0, "x"]])
    assert content.n_items_ == 20 and cold.n_items_ == 20, "refused calls add nothing"


# -- ids used as allocation sizes -----------------------------------------------------------------
def test_a_user_id_of_1e12_is_refused_before_any_allocation(clicks):
    huge = 10**12
    emb = np.eye(20, 4, dtype=np.float32)
    state = StreamingProfiles(emb)
    state.update(2, 1)
    for call, names in (
        (lambda: state.update(huge, 0), f"user {huge}"),
        (lambda: state.update_many([0, huge], [1, 2]), f"users \\(holding id {huge}\\)"),
        (lambda: state.add_rows(clicks, first_user=huge), f"first_user={huge}"),
        (lambda: state.grow(huge), f"n_users={huge}"),
        (lambda: StreamingProfiles(emb, n_users=huge), f"n_users={huge}"),
    ):
        with pytest.raises(ValueError, match=f"{names} would need .* GiB.*user_index"):
            call()
    assert state.n_users == 3, "refused calls add no user"
    state.update(5, 0)  # ids past the known users still create them
    assert state.n_users == 6
    np.testing.assert_allclose(state.profile(5), emb[0])


# -- temporal_global's cut and from_pandas ids -----------------------------------------------------
def test_temporal_global_at_must_be_one_timestamp():
    data = synthetic(50, 40, 600, random_state=2)
    for at in ("2020-01-01", [1, 2], np.array([1, 2]), pd.Timestamp("2020-01-01"), True):
        with pytest.raises(TypeError, match="at must be one timestamp"):
            split.temporal_global(data, at=at)
    with pytest.raises(ValueError, match="at must be finite"):
        split.temporal_global(data, at=float("nan"))
    t = data.timestamps
    for at in (int(np.median(t)), float(np.median(t)) + 0.5, np.int64(t.max())):
        train, test = split.temporal_global(data, at=at)
        assert test.n_interactions == int((t > at).sum())
        assert train.n_interactions == int((t <= at).sum())


def test_from_pandas_refuses_mixed_or_list_ids_naming_the_column():
    mixed = pd.DataFrame({"u": ["a", 1], "i": ["x", "y"]})
    with pytest.raises(TypeError, match=r"interactions\['u'\] mixes id types \(int, str\)"):
        Dataset.from_pandas(mixed, "u", "i")
    listed = pd.DataFrame({"u": [1, 2], "i": [["x"], ["y"]]})
    with pytest.raises(TypeError, match=r"interactions\['i'\] holds ids of type list"):
        Dataset.from_pandas(listed, "u", "i")
    items = pd.DataFrame({"i": ["x", 3]})
    with pytest.raises(TypeError, match=r"interactions\['i'\] \(with items\['i'\]\) mixes"):
        Dataset.from_pandas(pd.DataFrame({"u": [1], "i": ["x"]}), "u", "i", items=items)
    same = Dataset.from_pandas(mixed.astype({"u": str}), "u", "i")  # the suggested fix works
    assert same.n_users == 2


# -- flags: a string is truthy, so "no" would do the opposite of what was meant ------------------
def test_flags_must_be_bools(clicks):
    als = semrec.ALS(factors=2, iterations=1, random_state=0, show_progress=False).fit(clicks)
    with pytest.raises(TypeError, match=r"exclude_seen must be True or False, got 'no'"):
        als.recommend(0, exclude_seen="no")
    emb = np.random.default_rng(0).standard_normal((20, 4)).astype(np.float32)
    with pytest.raises(TypeError, match="fit_intercept must be True or False"):
        semrec.ColdStartALS(als, emb, fit_intercept="no").fit()
    with pytest.raises(TypeError, match=r"show_progress must be True, False or None"):
        semrec.ItemKNN(2, show_progress="yes").fit(clicks)
    with pytest.raises(TypeError, match="biases must be True or False"):
        semrec.ALS(feedback="explicit", biases="yes").fit(clicks)
    np.testing.assert_array_equal(  # NumPy's bools are bools
        als.recommend(0, exclude_seen=np.True_)[0], als.recommend(0, exclude_seen=True)[0]
    )


def test_progress_bars_default_to_the_terminal_only(clicks, capsys):
    # Every model draws its bar by default only when stderr is a terminal (pytest's is not).
    emb = np.random.default_rng(0).standard_normal((20, 4)).astype(np.float32)
    for model in (semrec.ItemKNN(2), semrec.UserKNN(2), semrec.ContentRecommender(emb)):
        model.fit(clicks)
    assert capsys.readouterr().err == ""


# -- values that pass as finite numbers but overflow the float32 the models compute in -----------
def test_an_update_weight_beyond_float32_is_refused_and_changes_nothing(clicks):
    emb = np.random.default_rng(0).standard_normal((20, 8)).astype(np.float32)
    model = semrec.TextCF(emb, hidden=8, factors=4, epochs=1, random_state=0, show_progress=False)
    model.fit(clicks)
    before = model.interactions_.copy()
    with pytest.raises(ValueError, match=r"weight=1e\+39 would take user 0's stored weights past"):
        model.update(0, 3, 1e39)
    with pytest.raises(ValueError, match="would take user 30's"):  # a new user: not created
        model.update(30, 3, 1e39)
    assert model.n_users_ == 30
    assert (model.interactions_ != before).nnz == 0
    assert np.isfinite(model.recommend(0)[1]).all()


def test_textcf_settings_that_overflow_or_diverge_are_clear_errors(clicks):
    emb = np.random.default_rng(0).standard_normal((20, 8)).astype(np.float32)

    def fit(embeddings=emb, **settings):
        return semrec.TextCF(embeddings, hidden=16, factors=4, epochs=2, random_state=0,
                             show_progress=False, **settings).fit(clicks)  # fmt: skip

    for name in ("weight_decay", "negative_slope", "popularity"):
        with pytest.raises(ValueError, match=rf"{name} must be at most 3.4e\+38 \(float32\)"):
            fit(**{name: 1e300})
    with pytest.raises(ValueError, match=r"TextCF diverged: .* lower learning_rate"):
        fit(learning_rate=1e10)
    with pytest.raises(ValueError, match=r"item_embeddings has dimension 0 \(shape \(20, 0\)\)"):
        fit(np.zeros((20, 0), np.float32))
    model = fit()
    with pytest.raises(ValueError, match="items is empty"):
        model.add_items([])
    with pytest.raises(TypeError, match="callback must be callable"):
        semrec.TextCF(emb, hidden=8, factors=4, epochs=1, show_progress=False).fit(
            clicks, callback=3
        )


def test_hybrid_weights_are_bounded_so_the_blend_stays_finite(clicks):
    pop = semrec.MostPopular().fit(clicks)
    with pytest.raises(ValueError, match=r"weight of models\[0\] must be a finite number in"):
        semrec.Hybrid([(pop, 1e308)])


# -- NumPy scalars (a grid's values) are numbers everywhere, saves included ----------------------
def test_numpy_scalar_hyperparameters_save_and_load(clicks, tmp_path):
    from semrec.text import TfidfEncoder

    emb = np.random.default_rng(0).standard_normal((20, 8)).astype(np.float32)
    model = semrec.TextCF(emb, hidden=8, factors=np.int64(4), tau=np.float32(0.2), epochs=1,
                          random_state=np.int64(3), show_progress=False).fit(clicks)  # fmt: skip
    model.save(tmp_path / "textcf.npz")
    loaded = semrec.TextCF.load(tmp_path / "textcf.npz")
    assert (loaded.factors, loaded.random_state) == (4, 3)
    assert loaded.tau == pytest.approx(0.2)
    np.testing.assert_array_equal(loaded.recommend(0)[0], model.recommend(0)[0])
    words = TfidfEncoder(min_df=np.int64(1), sublinear_tf=np.True_).fit(["red apple", "apple"])
    words.save(tmp_path / "words.npz")
    assert TfidfEncoder.load(tmp_path / "words.npz").sublinear_tf is True


# -- TfidfEncoder -------------------------------------------------------------------------------
def test_tfidf_refuses_a_huge_weight_a_nan_encoder_and_a_non_encoder_at_load(tmp_path):
    from semrec.text import TfidfEncoder

    texts = ["red apple", "green apple", "red wine"]
    with pytest.raises(ValueError, match=r"weight must be a finite number in \[0, 1e\+30\]"):
        TfidfEncoder(min_df=1, weight=1e39).fit(texts)

    class NaNEncoder:
        def encode(self, texts, **kwargs):
            return np.full((len(texts), 2), np.nan, np.float32)

    nan_message = r"encoder.encode \(NaNEncoder\) gave NaN .* text 0: 'red apple'"
    with pytest.raises(ValueError, match=nan_message):
        TfidfEncoder(NaNEncoder(), min_df=1).fit(texts).encode(texts)
    TfidfEncoder(min_df=1).fit(texts).save(tmp_path / "words.npz")
    with pytest.raises(TypeError, match="encoder must be None or an object with an encode"):
        TfidfEncoder.load(tmp_path / "words.npz", encoder="all-MiniLM-L6-v2")


# -- the second round: the rest of the API -------------------------------------------------------
def test_timestamps_missing_zoned_or_beyond_int64_are_handled(frame):
    events = frame.assign(t=pd.to_datetime(["2020-01-01", None, "2020-01-03"]))
    with pytest.raises(ValueError, match=r"interactions\['t'\] has missing timestamps"):
        Dataset.from_pandas(events, "u", "i", time_col="t")  # NaT would read as -2**63
    zoned = pd.to_datetime(["2020-01-01 01:00", "2020-01-02 00:00", "2020-01-03 00:00"])
    data = Dataset.from_pandas(
        frame.assign(t=zoned.tz_localize("Europe/Paris")), "u", "i", time_col="t"
    )
    utc = [datetime(2020, 1, 1, 0, tzinfo=UTC), datetime(2020, 1, 1, 23, tzinfo=UTC),
           datetime(2020, 1, 2, 23, tzinfo=UTC)]  # fmt: skip
    assert sorted(data.timestamps.tolist()) == [int(t.timestamp()) for t in utc]
    huge = frame.assign(t=np.array([1, 2, 2**64 - 1], dtype=np.uint64))
    with pytest.raises(ValueError, match="beyond int64"):
        Dataset.from_pandas(huge, "u", "i", time_col="t")


def test_weights_beyond_float32_are_refused_not_stored_as_inf():
    m = sp.csr_array(np.array([[1e300, 0.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"weights up to 1e\+300, beyond float32"):
        Dataset(m)


def test_knn_refuses_weights_whose_squares_underflow(clicks):
    tiny = clicks * np.float32(1e-18)
    with pytest.raises(ValueError, match="weights as small as 1e-18"):
        semrec.ItemKNN(2, show_progress=False).fit(sp.csr_array(tiny))


def test_relevant_items_stored_twice_count_once():
    from semrec.metrics import ranking_metrics

    recs = np.array([[0, 1, 2]], dtype=np.int32)
    once = sp.csr_array((np.ones(1, np.float32), np.array([0]), np.array([0, 1])), shape=(1, 3))
    twice = sp.csr_array((np.ones(2, np.float32), np.array([0, 0]), np.array([0, 2])), shape=(1, 3))
    expected = ranking_metrics(recs, once, k=3)
    assert expected.loc[3, "recall"] == 1.0
    pd.testing.assert_frame_equal(ranking_metrics(recs, twice, k=3), expected)


def test_evaluate_names_empty_users_and_index_flags_and_hnsw_settings(clicks):
    train = Dataset(clicks)
    model = semrec.MostPopular().fit(clicks)
    with pytest.raises(ValueError, match="users is empty"):
        semrec.evaluate(model, train, train, users=[])
    items = np.random.default_rng(0).standard_normal((20, 4)).astype(np.float32)
    with pytest.raises(TypeError, match="copy must be True or False"):
        semrec.ItemIndex(items, copy="no")
    with pytest.raises(TypeError, match="path must be a folder path"):
        semrec.datasets.movielens("100k", path=3)
    with pytest.raises(ValueError, match="random_state must be an int >= 0"):
        semrec.Random(random_state=-1).fit(clicks)
    pytest.importorskip("faiss")
    with pytest.raises(ValueError, match="m must be >= 2"):
        semrec.HNSWIndex(items, m=1)  # faiss crashed the process on it
    index = semrec.HNSWIndex(items, m=4)
    with pytest.raises(ValueError, match="m=16 but the graph was built with m=4"):
        semrec.HNSWIndex.from_bytes(index.items, index.graph_bytes(), m=16, ef_construction=40,
                                    ef_search=16)  # fmt: skip


def test_diversified_checks_one_embedding_row_per_model_item(clicks):
    from semrec.rerank import Diversified, diversify

    model = semrec.MostPopular().fit(clicks)  # 20 items
    rng = np.random.default_rng(5)
    for rows in (30, 12):  # another catalogue: re-ranked by the wrong vectors, or an IndexError
        says = rf"item_embeddings has {rows} rows but the model has 20 items \(model.n_items_\)"
        with pytest.raises(ValueError, match=says + "; pass one row per item"):
            Diversified(model, rng.standard_normal((rows, 4)).astype(np.float32))
    emb = rng.standard_normal((20, 4)).astype(np.float32)
    varied = Diversified(model, emb, 0.3, candidates=10)
    got = varied.recommend([0, 1], k=4)
    want = diversify(*model.recommend([0, 1], k=10), emb, 4, 0.3)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)
    varied.item_embeddings = emb[:12]  # the same check before serving
    with pytest.raises(ValueError, match="item_embeddings has 12 rows"):
        varied.recommend([0], k=4)


def test_finite_float64_beyond_float32_is_named_not_called_infinite():
    """1e39 is finite: cast to float32 first, it was reported as "NaN or infinite" with a raw
    NumPy overflow warning (an error under this suite's filterwarnings)."""
    from semrec.interest import user_profiles
    from semrec.rerank import diversify

    emb = np.eye(4, dtype=np.float32)
    beyond = "up to 1e\\+39, beyond float32's 3.4e38, which semrec computes in; rescale them"
    with pytest.raises(ValueError, match=f"interactions holds weights {beyond}"):
        user_profiles(sp.csr_array(np.array([[1e39, 0, 0, 0]])), emb)
    with pytest.raises(ValueError, match=f"history holds weights {beyond}"):
        StreamingProfiles(emb).add_rows(sp.csr_array(np.array([[0, 1e39, 0, 0]])))
    with pytest.raises(ValueError, match=f"weights holds values {beyond}"):
        StreamingProfiles(emb).update_many([0], [0], weights=[1e39])
    with pytest.raises(ValueError, match=f"scores holds values {beyond}"):
        diversify(np.array([0, 1]), np.array([1e39, 0.5]), emb, 2)
    with pytest.raises(ValueError, match="scores holds NaN or infinite values"):
        diversify(np.array([0, 1]), np.array([np.inf, 0.5]), emb, 2)
    # float64 within range still works; a padding slot (-1) may hold any number, unread
    ids, scores = diversify(np.array([1, -1, 2]), np.array([3e38, 1e300, 0.5]), emb, 3)
    np.testing.assert_array_equal(ids, [1, 2, -1])
    np.testing.assert_array_equal(scores, np.float32([3e38, 0.5, -np.inf]))
    profile = user_profiles(sp.csr_array(np.array([[3e38, 0, 1e38, 0]])), emb)
    np.testing.assert_allclose(profile, [[0.9486833, 0, 0.3162278, 0]], rtol=1e-6)


def test_uint64_timestamps_beyond_int64_are_refused_not_wrapped():
    from semrec.interest import user_profiles

    emb = np.eye(4, dtype=np.float32)
    m = sp.csr_array(np.array([[1, 0, 2, 0]], np.float32))
    says = r"timestamps holds values beyond int64 \(up to 18446744073709551615\); give seconds"
    with pytest.raises(ValueError, match=says):
        user_profiles(m, emb, timestamps=np.array([2**64 - 1, 0], np.uint64), half_life=1.0)
    with pytest.raises(ValueError, match="times holds values beyond int64"):
        StreamingProfiles(emb).update_many([0], [0], times=np.array([2**63], np.uint64))
    # uint64 times that fit int64 are the same times: the newest event (item 0) dominates
    small = user_profiles(m, emb, timestamps=np.array([50, 0], np.uint64), half_life=1.0)
    np.testing.assert_allclose(small, [[1, 0, 2 * 0.5**50, 0]], atol=1e-7)


# -- found by the session 43 hostile-input audit ------------------------------------------------
def test_a_failed_fit_leaves_the_model_as_it_was(clicks):
    als = semrec.ALS(4, iterations=3, random_state=0, show_progress=False).fit(clicks)
    ids, scores = als.recommend(np.arange(5), k=3)
    diverging = clicks.astype(np.float64)
    diverging.data[-1] = 1e30  # finite, within float32: the factors overflow in training
    with pytest.raises(ValueError, match="diverged"):
        als.fit(diverging)
    np.testing.assert_array_equal(als.recommend(np.arange(5), k=3)[0], ids)
    np.testing.assert_array_equal(als.recommend(np.arange(5), k=3)[1], scores)
    fresh = semrec.ALS(4, iterations=3, random_state=0, show_progress=False)
    with pytest.raises(ValueError, match="diverged"):
        fresh.fit(diverging)
    with pytest.raises(semrec.NotFittedError):  # not NaN factors named "vectors"
        fresh.recommend(0, k=3)

    def stop(iteration, seconds, loss):
        raise KeyboardInterrupt  # Ctrl-C in a callback: the fit happens whole or not at all

    with pytest.raises(KeyboardInterrupt):
        als.fit(clicks[:, :10], callback=stop)
    assert als.n_items_ == 20
    np.testing.assert_array_equal(als.recommend(np.arange(5), k=3)[0], ids)


def test_cold_start_als_refuses_short_embeddings_before_refitting_its_als(clicks):
    emb = np.random.default_rng(0).standard_normal((20, 8)).astype(np.float32)
    model = semrec.ColdStartALS(semrec.ALS(4, iterations=2, show_progress=False), emb).fit(clicks)
    ids = model.recommend(np.arange(5), k=3)[0]
    wider = sp.csr_array((clicks.data, clicks.indices, clicks.indptr), shape=(30, 23))
    with pytest.raises(ValueError, match="item_embeddings has 20 rows but the ALS has 23"):
        model.fit(wider)
    assert model.als.n_items_ == 20
    np.testing.assert_array_equal(model.recommend(np.arange(5), k=3)[0], ids)


def test_masked_arrays_ragged_ids_and_non_string_metrics_are_named(clicks):
    emb = np.random.default_rng(0).standard_normal((20, 8)).astype(np.float32)
    model = semrec.ColdStartALS(semrec.ALS(4, iterations=2, show_progress=False), emb).fit(clicks)
    with pytest.raises(ValueError, match="users must be one user id or a 1-D array of them, got a "
                                         "ragged sequence"):  # fmt: skip
        model.recommend([[0, 1], [2]], k=3)
    with pytest.raises(ValueError, match=r"users must be .* ragged"):
        model.fold_in(clicks[[0, 1]], users=[[0], [1, 2]])
    with pytest.raises(TypeError, match=r"items must be a float32 array, got a masked one"):
        model.add_items(np.ma.masked_array(emb[:2]))

    class Tagged(np.ndarray):  # another subclass computes as the plain array it holds
        pass

    assert model.add_items(emb[:2].view(Tagged)).tolist() == [20, 21]
    assert model.add_items(emb[:2]).tolist() == [22, 23]
    np.testing.assert_array_equal(model.item_factors_[20:22], model.item_factors_[22:24])
    ds = synthetic(40, 30, 500, with_text=False, random_state=0)
    train, test = split.random_holdout(ds, 0.2, random_state=0)
    knn = semrec.ItemKNN(5, show_progress=False).fit(train.interactions)
    for bad in (5, True, ["ndcg", 3]):
        with pytest.raises(TypeError, match="metrics must be a metric name or a list of them"):
            semrec.evaluate(knn, train, test, k=5, metrics=bad)
    table = semrec.evaluate(knn, train, test, k=5, metrics=(m for m in ["ndcg"]))
    assert list(table.columns) == ["ndcg"]


def test_yes_no_options_refuse_strings_instead_of_taking_their_truth(clicks):
    ds = synthetic(40, 30, 500, with_text=False, random_state=0)
    train, test = split.random_holdout(ds, 0.2, random_state=0)
    knn = semrec.ItemKNN(5, show_progress=False).fit(train.interactions)
    recs, relevant, x = knn.recommend(np.arange(5), k=3)[0], test.interactions[:5], clicks
    cases = [
        ("per_user", lambda: semrec.evaluate(knn, train, test, k=5, per_user="no")),
        ("per_user", lambda: semrec.metrics.ranking_metrics(recs, relevant, 3, per_user="no")),
        ("baselines", lambda: semrec.compare({"knn": knn}, train, test, k=5, baselines="no")),
        ("permute_items", lambda: split.cold_items(ds, permute_items="false")),
        ("with_text", lambda: synthetic(10, 10, 50, with_text="no")),
        ("refit", lambda: semrec.Hybrid([(knn, 1.0)]).fit(train.interactions, refit="no")),
        ("calculate_training_loss", lambda: semrec.ALS(2, calculate_training_loss="no").fit(x)),
    ]
    for name, call in cases:
        with pytest.raises(TypeError, match=f"{name} must be True or False, got 'no'|'false'"):
            call()


def test_dataset_columns_ids_and_split_sizes_are_named(frame):
    for bad in (None, ["u"], {"u": 1}):
        with pytest.raises(TypeError, match="user_col must be a column name of interactions"):
            Dataset.from_pandas(frame, bad, "i")
    with pytest.raises(TypeError, match="weight_col must be a column name"):
        Dataset.from_pandas(frame, "u", "i", weight_col=["t"])
    ds = Dataset.from_pandas(frame, "u", "i", time_col="t")
    for ragged in ([[1, 2], [1]], sp.csr_array(np.eye(2)), [{1}, {2}]):
        with pytest.raises(TypeError, match="raw ids must be one user id or a list or array"):
            ds.user_index(ragged)
    np.testing.assert_array_equal(ds.item_index(np.array([["a", "b"]], dtype=object)), [[0, 1]])
    with pytest.raises(ValueError, match=r"keep must be a boolean mask .* got a ragged sequence"):
        ds.subset([[True], [True, False]])
    from semrec.text import mean_pool

    with pytest.raises(ValueError, match=r"lengths must have shape \(2,\), .* got a ragged list"):
        mean_pool(np.ones((2, 3, 4), np.float32), [[3, 1], [1]])
    for call in (
        lambda: split.leave_last_k(ds, k=2**63),
        lambda: split.last_fraction(ds, min_test=2**63),
    ):
        train, test = call()  # at most n_u - 1 per user, as for any k above it
        assert train.n_interactions == 2 and test.n_interactions == 1


def test_a_callback_that_cannot_be_called_and_a_model_class_are_named_up_front(clicks):
    als = semrec.ALS(2, iterations=2, random_state=0, show_progress=False)
    with pytest.raises(TypeError, match="callback must be a function"):
        als.fit(clicks, callback=5)  # it failed after a whole iteration, with Python's message
    ds = synthetic(40, 30, 500, with_text=False, random_state=0)
    train, test = split.random_holdout(ds, 0.2, random_state=0)
    with pytest.raises(TypeError, match="model must be a fitted model"):
        semrec.compare({"als": semrec.ALS}, train, test, k=5)


def test_an_index_files_bad_setting_is_named_not_blamed_on_the_graph(tmp_path):
    pytest.importorskip("faiss")
    from semrec import _persist as persist

    vectors = np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32)
    path = tmp_path / "index.npz"
    semrec.HNSWIndex(vectors).save(path)
    saved = persist.read(path, "semrec.HNSWIndex", 1)  # edited, checksums recomputed
    meta = {k: v for k, v in saved.meta.items() if k != "checksums"} | {"metric": None}
    persist.write(path, meta, {k: np.array(v) for k, v in saved.arrays.items()})
    with pytest.raises(semrec.FormatError, match="metric must be str") as caught:
        semrec.HNSWIndex.load(path)
    assert "graph" not in str(caught.value)


def test_fit_on_a_dataset_or_a_dataframe_says_what_to_pass() -> None:
    """The two natural first attempts at fit get the way out in the message."""
    data = semrec.datasets.synthetic(20, 30, 100, random_state=0)
    frame = pd.DataFrame({"user": [1, 2], "item": ["a", "b"]})
    for model in (semrec.ALS(factors=2, show_progress=False), semrec.MostPopular()):
        with pytest.raises(TypeError, match=r"got Dataset; pass dataset\.interactions"):
            model.fit(data)
        with pytest.raises(TypeError, match=r"got DataFrame; make one: Dataset\.from_pandas"):
            model.fit(frame)


def test_none_for_a_vector_argument_is_a_type_error_naming_it(clicks):
    # NumPy reads None as a NaN scalar: the message used to speak of an array of shape ().
    emb = np.eye(3, dtype=np.float32)
    with pytest.raises(TypeError, match="queries must be a dense float32 array, got None"):
        semrec.topk(None, emb, 2)
    with pytest.raises(TypeError, match="item_embeddings must be a dense float32 array, got None"):
        semrec.diversify([0, 1], [1.0, 0.5], None, 2)
    with pytest.raises(TypeError, match="item_embeddings must be a dense float32 array, got None"):
        semrec.ContentRecommender(None, show_progress=False).fit(clicks)


# -- duplicate entries whose float32 sum overflows -------------------------------------------------
def _duplicates_past_float32() -> sp.csr_array:
    """User 1 holds item 2 twice at 2e38 (each within float32, their sum 4e38 is not)."""
    data = np.array([1.0, 1.0, 2e38, 2e38], np.float32)
    return sp.csr_array((data, np.array([0, 1, 2, 2]), np.array([0, 2, 4])), shape=(2, 3))


_TINY_TEXTCF = dict(hidden=4, factors=2, epochs=1, negatives=1, random_state=0, show_progress=False)


@pytest.mark.parametrize(
    "make",
    [
        semrec.MostPopular,
        lambda: semrec.Random(0),
        lambda: semrec.ALS(2, iterations=1, random_state=0, show_progress=False),
        lambda: semrec.TextCF(np.eye(3, dtype=np.float32), **_TINY_TEXTCF),
    ],
    ids=["MostPopular", "Random", "ALS", "TextCF"],
)
def test_duplicates_summing_past_float32_are_refused_naming_the_entry(make):
    m = _duplicates_past_float32()
    assert np.float64(2e38) * 2 > np.finfo(np.float32).max  # the NumPy reference: it overflows
    # Warnings are errors here: NumPy's "overflow encountered in reduceat" must not leak.
    with pytest.raises(ValueError, match=r"^interactions holds 2 entries for \(user 1, item 2\) "
                       r"whose sum overflows float32.*their sum is 4e\+38"):  # fmt: skip
        make().fit(m)


def test_duplicates_within_float32_are_summed_in_float32_as_numpy_does():
    m = _duplicates_past_float32()
    m.data[2:] = np.float32(1e38)
    expected = np.zeros(m.shape, np.float32)
    np.add.at(expected, (np.array([0, 0, 1, 1]), m.indices), m.data)  # float32, stored order
    pop = semrec.MostPopular().fit(m)
    np.testing.assert_array_equal(pop.interactions_.toarray(), expected)
    with pytest.raises(ValueError, match=r"^history holds 2 entries for \(user 1, item 2\)"):
        pop.fold_in(_duplicates_past_float32())


@pytest.mark.parametrize("make", [semrec.MostPopular, lambda: semrec.Random(0)])
def test_baseline_updates_past_float32_are_refused_and_change_nothing(tmp_path, make):
    model = make().fit(sp.csr_array(np.ones((1, 2), np.float32)))
    model.update(0, 0, 3e38)
    before = model.interactions_.toarray()
    assert before[0, 0] == np.float32(1) + np.float32(3e38)  # summed in float32, finite
    pattern = r"^weight: update would make interaction \(0, 0\) 3e\+38 \+ 3e\+38, past float32"
    with pytest.raises(ValueError, match=pattern):
        model.update(0, 0, 3e38)
    with pytest.raises(ValueError, match=r"^weight: .* \(1, 1\) 0 \+ 1e\+39, past float32"):
        model.update(1, 1, 1e39)  # a new user, whose weight alone is past float32
    np.testing.assert_array_equal(model.interactions_.toarray(), before)
    assert model.n_users_ == 1
    model.save(tmp_path / "m.npz")  # finite weights: the file is written
