"""evaluate / compare and the Random / MostPopular baselines."""

from __future__ import annotations

import inspect
import math
import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import semrec
from semrec import split
from semrec.datasets import Dataset, synthetic


@pytest.fixture(scope="module")
def warm() -> tuple[Dataset, Dataset]:
    return split.last_fraction(synthetic(150, 120, 3_000, random_state=4))


def test_most_popular_ranks_by_count_and_excludes_seen() -> None:
    x = sp.csr_array(np.array([[1, 0, 1, 0], [0, 0, 1, 0], [1, 0, 1, 0]], dtype=np.float32))
    model = semrec.MostPopular().fit(x)
    ids, scores = model.recommend([0, 1], k=4)
    assert ids.tolist() == [[1, 3, -1, -1], [0, 1, 3, -1]]  # ties by lower index, -1 padding
    assert np.isneginf(scores[0, 2:]).all() and scores[1, 0] == 2
    assert model.recommend(1, k=2, items=[3, 2])[0].tolist() == [3, -1]
    assert model.recommend(1, k=1, exclude_seen=False)[0].tolist() == [2]
    with pytest.raises(IndexError, match="outside"):
        model.recommend([5])


def test_random_is_seeded_uniform_and_excludes_seen() -> None:
    x = sp.csr_array(np.array([[1, 0, 1, 0, 0]] * 300, dtype=np.float32))
    model = semrec.Random(random_state=7).fit(x)
    ids, _ = model.recommend(np.arange(300), k=4)
    again, _ = model.recommend(np.arange(300), k=4)
    np.testing.assert_array_equal(ids, again)
    assert set(ids[:, :3].ravel().tolist()) == {1, 3, 4}
    assert (ids[:, 3] == -1).all()
    first = np.bincount(ids[:, 0], minlength=5)[[1, 3, 4]]
    assert first.min() > 60  # about 100 each
    assert "random_state=7" in repr(model)
    for seed in (np.random.SeedSequence(3), np.random.PCG64(3)):  # as every seeded API takes
        a = semrec.Random(random_state=seed).fit(x).recommend(np.arange(30), k=2)[0]
        fresh = type(seed)(3)
        np.testing.assert_array_equal(semrec.Random(random_state=fresh).fit(x).recommend(
            np.arange(30), k=2)[0], a)  # fmt: skip


def reference_table(recs: np.ndarray, relevant: list[set[int]], k: int) -> dict[str, float]:
    prec, rec, ndcg, hit = [], [], [], []
    for lst, rel in zip(recs.tolist(), relevant, strict=True):
        hits = [1 if i in rel else 0 for i in lst[:k]]
        prec.append(sum(hits) / k)
        rec.append(sum(hits) / len(rel))
        dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
        ndcg.append(dcg / sum(1 / math.log2(r + 2) for r in range(min(k, len(rel)))))
        hit.append(float(sum(hits) > 0))
    return {
        "precision": np.mean(prec),
        "recall": np.mean(rec),
        "ndcg": np.mean(ndcg),
        "hit_rate": np.mean(hit),
    }


def test_evaluate_matches_reference(warm: tuple[Dataset, Dataset]) -> None:
    train, test = warm
    model = semrec.MostPopular().fit(train.interactions)
    table, detail = semrec.evaluate(model, train, test, k=(5, 10), per_user=True)
    t = test.interactions
    users = [u for u in range(test.n_users) if (t[[u]].data >= 4).any()]
    relevant = [
        set(t.indices[t.indptr[u] : t.indptr[u + 1]][t[[u]].data >= 4].tolist()) for u in users
    ]
    recs, _ = model.recommend(np.array(users), k=10)
    assert table.attrs["n_users"] == len(users)
    for k in (5, 10):
        for name, value in reference_table(recs, relevant, k).items():
            assert table.loc[k, name] == pytest.approx(value, abs=1e-12)
        distinct = len({i for row in recs[:, :k].tolist() for i in row if i >= 0})
        assert table.loc[k, "coverage"] == pytest.approx(distinct / train.n_items)
    assert len(detail) == 2 * len(users)
    assert detail.groupby("k")["ndcg"].mean().to_numpy() == pytest.approx(table["ndcg"].to_numpy())


def test_evaluate_rating_metrics_and_diversity(warm: tuple[Dataset, Dataset]) -> None:
    train, test = warm

    class Constant(semrec.MostPopular):
        def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
            return np.full(len(users), 3.0)

    model = Constant().fit(train.interactions)
    emb = np.random.default_rng(0).standard_normal((train.n_items, 4)).astype(np.float32)
    table = semrec.evaluate(
        model, train, test, k=10, metrics=["rmse", "mae", "diversity"], item_embeddings=emb
    )
    r = test.interactions.data
    assert table.loc[10, "rmse"] == pytest.approx(math.sqrt(np.mean((r - 3.0) ** 2)))
    assert table.loc[10, "mae"] == pytest.approx(np.mean(np.abs(r - 3.0)))
    assert 0.5 < table.loc[10, "diversity"] < 1.5


def test_compare_includes_baselines(warm: tuple[Dataset, Dataset]) -> None:
    train, test = warm
    table = semrec.compare(
        {"mine": semrec.MostPopular().fit(train.interactions)}, train, test, k=10
    )
    assert set(table.index.get_level_values("model")) == {"mine", "Random", "MostPopular"}
    assert table.loc[("mine", 10), "ndcg"] == table.loc[("MostPopular", 10), "ndcg"]
    assert table.loc[("Random", 10), "ndcg"] < table.loc[("MostPopular", 10), "ndcg"]


def test_evaluate_errors(warm: tuple[Dataset, Dataset]) -> None:
    train, test = warm
    model = semrec.MostPopular().fit(train.interactions)
    with pytest.raises(ValueError, match="unknown metric"):
        semrec.evaluate(model, train, test, metrics=["auc"])
    with pytest.raises(ValueError, match="item_embeddings"):
        semrec.evaluate(model, train, test, metrics=["diversity"])
    rows = np.ones((train.n_items + 1, 4), dtype=np.float32)  # one row too many: misaligned
    with pytest.raises(ValueError, match=r"item_embeddings has shape .* one row per item"):
        semrec.evaluate(model, train, test, metrics=["diversity"], item_embeddings=rows)
    with pytest.raises(ValueError, match="k lists a cutoff twice"):
        semrec.evaluate(model, train, test, k=[10, 10])
    with pytest.raises(TypeError, match="recommend"):
        semrec.evaluate(object(), train, test)
    with pytest.raises(ValueError, match="no user has a relevant"):
        semrec.evaluate(model, train, test, relevance_threshold=99)
    with pytest.raises(TypeError, match="predict"):
        semrec.evaluate(model, train, test, metrics=["rmse"])


def test_evaluate_never_counts_an_item_seen_in_train(warm: tuple[Dataset, Dataset]) -> None:
    """A model whose own seen set misses train items (here: it excludes nothing) is scored on
    lists with those removed and refilled from its next items (issue 13)."""
    train, test = warm

    class Forgetful(semrec.MostPopular):
        def recommend(self, users, k=10, *, exclude_seen=True, items=None):
            return super().recommend(users, k, exclude_seen=False, items=items)

    forgetful = Forgetful().fit(train.interactions)
    honest = semrec.MostPopular().fit(train.interactions)
    want = semrec.evaluate(honest, train, test, k=(5, 10))
    got = semrec.evaluate(forgetful, train, test, k=(5, 10))
    assert (
        forgetful.recommend(np.arange(150), k=10)[0] != honest.recommend(np.arange(150), k=10)[0]
    ).any()
    assert got.equals(want)


def test_new_user_baselines_know_and_exclude_the_revealed_history() -> None:
    """compare's baselines see train + the revealed histories, as the folded-in models do,
    and never recommend a revealed item (issue 13)."""
    data = synthetic(200, 60, 4_000, random_state=5)
    train, test = split.new_users(data, 0.2, 5, random_state=0)
    history = test.split_info["history"]
    new = test.split_info["users"]
    table = semrec.compare({}, train, test, k=10, users=new, metrics=["ndcg"])
    # Reference: popularity counted over train + history, revealed items excluded.
    known = train.interactions.toarray() + history.interactions.toarray()
    counts = (known != 0).sum(axis=0)
    t = test.interactions
    ndcg = []
    for u in new:
        relevant = set(t.indices[t.indptr[u] : t.indptr[u + 1]][t[[u]].data >= 4].tolist())
        if not relevant:
            continue
        allowed = [i for i in range(60) if known[u, i] == 0]
        ranked = sorted(allowed, key=lambda i: (-counts[i], i))[:10]
        dcg = sum(1 / math.log2(r + 2) for r, i in enumerate(ranked) if i in relevant)
        ndcg.append(dcg / sum(1 / math.log2(r + 2) for r in range(min(10, len(relevant)))))
    assert table.loc[("MostPopular", 10), "ndcg"] == pytest.approx(np.mean(ndcg), abs=1e-12)


def test_evaluate_refuses_a_model_fitted_on_other_items() -> None:
    train, test = split.last_fraction(synthetic(200, 20, 2_000, random_state=1))
    narrow = semrec.MostPopular().fit(sp.csr_array(train.interactions[:, :10]))
    with pytest.raises(ValueError, match="model was fitted on 10 items but the split has 20"):
        semrec.evaluate(narrow, train, test, k=2)


def test_evaluate_checks_relevance_threshold(warm: tuple[Dataset, Dataset]) -> None:
    train, test = warm
    model = semrec.MostPopular().fit(train.interactions)
    with pytest.raises(TypeError, match="relevance_threshold must be a number, got str"):
        semrec.evaluate(model, train, test, relevance_threshold="4")
    with pytest.raises(ValueError, match="relevance_threshold must be finite"):
        semrec.evaluate(model, train, test, relevance_threshold=float("nan"))
    as_float = semrec.evaluate(model, train, test, k=5, relevance_threshold=np.float32(4))
    assert as_float.equals(semrec.evaluate(model, train, test, k=5, relevance_threshold=4))


def test_evaluate_refuses_a_huge_k_before_allocating(warm: tuple[Dataset, Dataset]) -> None:
    train, test = warm
    model = semrec.MostPopular().fit(train.interactions)
    with pytest.raises(ValueError, match=r"k must be < 2\*\*31.*pass k <= 120"):
        semrec.evaluate(model, train, test, k=2**31)
    with pytest.raises(ValueError, match=r"k=268435456 asks for .*pass k <= 120"):
        semrec.evaluate(model, train, test, k=(10, 2**28))
    # k past the catalogue but small is padded, as recommend does: recall can only reach 1.
    table = semrec.evaluate(model, train, test, k=130, metrics=["recall"])
    assert table.loc[130, "recall"] == pytest.approx(1.0)


def test_evaluate_refuses_lists_that_repeat_an_item(warm: tuple[Dataset, Dataset]) -> None:
    train, test = warm

    class Stutter(semrec.MostPopular):
        def recommend(self, users, k=10, *, exclude_seen=True, items=None):
            ids, scores = super().recommend(users, k, exclude_seen=exclude_seen, items=items)
            ids[-1, 1] = ids[-1, 0]
            return ids, scores

    model = Stutter().fit(train.interactions)
    with pytest.raises(ValueError, match=r"model.recommend listed item \d+ more than once"):
        semrec.evaluate(model, train, test, k=5)


def test_evaluate_refuses_a_test_set_of_another_split() -> None:
    """Shapes alike, id maps not: cold_items permutes the items, so its test set read against
    another split's train would score other items (it returned a table)."""
    data = synthetic(200, 40, 3_000, random_state=2)
    train, _ = split.last_fraction(data)
    _, cold_test = split.cold_items(data, 0.2, 3, random_state=0)
    assert cold_test.interactions.shape == train.interactions.shape
    model = semrec.MostPopular().fit(train.interactions)
    with pytest.raises(ValueError, match="train and test must share id maps"):
        semrec.evaluate(model, train, cold_test, k=5)


def test_a_threshold_at_or_below_zero_keeps_stored_zero_weights() -> None:
    """A stored 0 (a centred rating) is an interaction: with relevance_threshold=0 it is
    relevant, as with None; it was dropped by a sparse comparison (and warned)."""
    weights = sp.csr_array(np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 0]], np.float32))
    test_weights = sp.csr_array(
        (np.array([0.0, 0.5], np.float32), np.array([2, 3]), np.array([0, 1, 2])), shape=(2, 4)
    )
    ids = np.array(["a", "b", "c", "d"])
    train = Dataset(weights, item_ids=ids)
    test = Dataset(test_weights, user_ids=train.user_ids, item_ids=ids)
    model = semrec.MostPopular().fit(train.interactions)
    want = semrec.evaluate(model, train, test, k=2, relevance_threshold=None)
    for threshold in (0, -1.0):
        table = semrec.evaluate(model, train, test, k=2, relevance_threshold=threshold)
        assert table.attrs["n_users"] == 2
        assert table.equals(want)


def test_evaluate_refuses_empty_candidates_and_a_model_of_fewer_users(
    warm: tuple[Dataset, Dataset],
) -> None:
    train, test = warm
    model = semrec.MostPopular().fit(train.interactions)
    with pytest.raises(ValueError, match="items is empty"):
        semrec.evaluate(model, train, test, k=5, items=[])
    few = semrec.MostPopular().fit(sp.csr_array(train.interactions[:10]))
    with pytest.raises(ValueError, match="model knows 10 users but the split evaluates users"):
        semrec.evaluate(few, train, test, k=5)


# -- session 44 audit ----------------------------------------------------------------------------
class _Lists:
    """A user-written model: recommend returns whatever ``make(users, k)`` builds."""

    def __init__(self, make, n_items: int) -> None:
        self.make, self.n_items_ = make, n_items

    def recommend(self, users, k=10, exclude_seen=True, **options):
        return self.make(np.asarray(users), k)


def test_evaluate_checks_the_ids_model_recommend_returns(warm: tuple[Dataset, Dataset]) -> None:
    train, test = warm
    base = semrec.MostPopular().fit(train.interactions)

    def good(users, k):
        return base.recommend(users, k=k)[0]

    want = semrec.evaluate(base, train, test, k=5)
    # int64 ids in range are fine (cast only after the check)
    same = _Lists(lambda u, k: (good(u, k).astype(np.int64), None), train.n_items)
    assert semrec.evaluate(same, train, test, k=5).equals(want)
    bad = {
        "float ids": (TypeError, "model.recommend must return integer item ids, got dtype float"),
        "wrapped": (IndexError, r"model.recommend returned item id 4294967\d+, outside"),
        "negative": (IndexError, r"model.recommend returned item id -2,"),
        "past": (IndexError, rf"item id {train.n_items}, outside \[0, {train.n_items}\)"),
        "int": (TypeError, r"model.recommend must return a pair \(ids, scores\), got int"),
        "none": (TypeError, "model.recommend must return integer item ids, got None"),
        "triple": (TypeError, "got a tuple of length 3"),
    }
    makers = {
        "float ids": lambda u, k: (good(u, k) + 0.9, None),
        "wrapped": lambda u, k: (good(u, k).astype(np.int64) + 2**32, None),
        "negative": lambda u, k: (np.where(good(u, k) == good(u, k)[0, 0], -2, good(u, k)), 0),
        "past": lambda u, k: (np.full((len(u), k), train.n_items), None),
        "int": lambda u, k: 3,
        "none": lambda u, k: (None, None),
        "triple": lambda u, k: (good(u, k), None, None),
    }
    for name, make in makers.items():
        error, message = bad[name]
        with pytest.raises(error, match=message):
            semrec.evaluate(_Lists(make, train.n_items), train, test, k=5)


def test_evaluate_rmse_covers_only_the_users_given(warm: tuple[Dataset, Dataset]) -> None:
    train, test = warm

    class Noisy(semrec.MostPopular):
        def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
            return (users % 5 + items % 3).astype(np.float64)  # errors differ between users

    model = Noisy().fit(train.interactions)
    relevant = semrec.evaluation.relevant_entries(test.interactions, 4)
    users = np.flatnonzero(np.diff(relevant.indptr) > 0)[[0, 3, 5]]
    table = semrec.evaluate(
        model, train, test, k=5, metrics=["ndcg", "rmse", "mae"], users=[*users, users[0]]
    )
    coo = test.interactions.tocoo()
    mine = np.isin(coo.row, users)  # every test rating of these users, relevant or not
    error = (coo.row[mine] % 5 + coo.col[mine] % 3) - coo.data[mine].astype(np.float64)
    assert table.attrs["n_users"] == 3
    assert table.loc[5, "rmse"] == pytest.approx(math.sqrt(np.mean(error**2)))
    assert table.loc[5, "mae"] == pytest.approx(np.mean(np.abs(error)))
    everyone = semrec.evaluate(model, train, test, k=5, metrics=["rmse"])
    assert everyone.loc[5, "rmse"] != pytest.approx(table.loc[5, "rmse"])


def test_evaluate_argument_messages_name_the_argument(warm: tuple[Dataset, Dataset]) -> None:
    train, test = warm
    model = semrec.MostPopular().fit(train.interactions)
    with pytest.raises(ValueError, match=r"users must be one user id .* ragged"):
        semrec.evaluate(model, train, test, k=5, users=[[0], [1, 2]])
    with pytest.raises(ValueError, match="items has rows of different lengths"):
        semrec.evaluate(model, train, test, k=5, items=[[1], [2, 3]])
    with pytest.raises(ValueError, match="metrics is empty"):
        semrec.evaluate(model, train, test, k=5, metrics=[])
    emb = np.random.default_rng(0).standard_normal((train.n_items, 4)).astype(np.float32)
    with pytest.raises(TypeError, match="item_embeddings must be a dense float32 array"):
        semrec.evaluate(
            model, train, test, k=5, metrics=["diversity"], item_embeddings=sp.csr_array(emb)
        )
    # a list of lists is the same matrix (as for intra_list_diversity and diversify)
    as_list = semrec.evaluate(model, train, test, k=5, item_embeddings=emb.tolist())
    as_array = semrec.evaluate(model, train, test, k=5, item_embeddings=emb)
    assert as_list.equals(as_array) and "diversity" in as_list.columns
    # users holding no relevant item: the message blames users=
    weights = test.interactions
    low = np.flatnonzero(
        (np.diff(weights.indptr) > 0)
        & (np.diff(semrec.evaluation.relevant_entries(weights, 4).indptr) == 0)
    )
    with pytest.raises(ValueError, match=r"none of the 1 user\(s\) given in users="):
        semrec.evaluate(model, train, test, k=5, users=low[:1])


def test_compare_per_user_returns_both_tables(warm: tuple[Dataset, Dataset]) -> None:
    train, test = warm
    mine = semrec.MostPopular().fit(train.interactions)
    table, detail = semrec.compare({"mine": mine}, train, test, k=(5, 10), per_user=True)
    assert table.equals(semrec.compare({"mine": mine}, train, test, k=(5, 10)))
    _, own = semrec.evaluate(mine, train, test, k=(5, 10), per_user=True)
    assert list(detail.columns) == ["model", *own.columns]
    assert set(detail["model"]) == {"mine", "Random", "MostPopular"}
    got = detail[detail["model"] == "mine"].drop(columns="model").reset_index(drop=True)
    assert got.equals(own)
    with pytest.raises(TypeError, match="per_user must be True or False"):
        semrec.compare({"mine": mine}, train, test, k=5, per_user="yes")


# -- session 48 audit ----------------------------------------------------------------------------
class _PredictOnly:
    """A user-written rating model: ``predict`` and nothing else (no recommend, no n_*_)."""

    def __init__(self, predict) -> None:
        self.predict = predict


def test_rmse_and_mae_alone_ignore_relevance_and_need_only_predict() -> None:
    """rmse/mae alone made top-k lists, refused a split without a rating >= the threshold and
    a model without recommend; now they are model.predict against every test rating."""
    data = synthetic(200, 300, 5_000, random_state=0)
    data.interactions.data /= 5  # every rating below the default threshold of 4
    train, test = split.last_fraction(data)
    als = semrec.ALS(8, feedback="explicit", random_state=0, show_progress=False)
    als.fit(train.interactions)
    coo = test.interactions.tocoo()

    def reference(users: np.ndarray) -> tuple[float, float]:
        mine = np.isin(coo.row, users)
        predicted = als.predict(coo.row[mine], coo.col[mine]).astype(np.float64)
        error = predicted - coo.data[mine].astype(np.float64)
        return math.sqrt(np.mean(error**2)), np.mean(np.abs(error))

    rated = np.flatnonzero(np.diff(test.interactions.indptr) > 0)
    some = rated[[0, 4, 9]]  # their test ratings are all below the threshold
    predict_only = _PredictOnly(als.predict)
    for model in (als, predict_only):
        table = semrec.evaluate(model, train, test, k=(5, 10), metrics=["rmse", "mae"])
        rmse, mae = reference(rated)
        assert table.attrs["n_users"] == rated.size
        assert table["rmse"].tolist() == pytest.approx([rmse] * 2, rel=1e-9)
        assert table["mae"].tolist() == pytest.approx([mae] * 2, rel=1e-9)
        table = semrec.evaluate(model, train, test, k=10, metrics=["rmse", "mae"], users=some)
        rmse, mae = reference(some)
        assert table.attrs["n_users"] == 3
        assert table.loc[10, "rmse"] == pytest.approx(rmse, rel=1e-9)
        assert table.loc[10, "mae"] == pytest.approx(mae, rel=1e-9)
    # the ranking part of a mixed request keeps its relevant-user rule
    with pytest.raises(ValueError, match="no user has a relevant test item"):
        semrec.evaluate(als, train, test, k=10, metrics=["ndcg", "rmse"])
    with pytest.raises(TypeError, match=r"model must be a fitted model \(one with recommend\)"):
        semrec.evaluate(predict_only, train, test, k=10, metrics=["ndcg", "rmse"])
    with pytest.raises(TypeError, match=r"model must be a fitted model \(one with predict\)"):
        semrec.evaluate(semrec.ALS, train, test, k=10, metrics=["rmse"])
    unrated = np.setdiff1d(np.arange(test.n_users), rated)[:1]
    with pytest.raises(ValueError, match=r"none of the 1 user\(s\) given in users= has a test"):
        semrec.evaluate(als, train, test, k=10, metrics=["mae"], users=unrated)


def test_rmse_alone_never_asks_for_lists(warm: tuple[Dataset, Dataset]) -> None:
    train, test = warm

    class NoLists(semrec.MostPopular):
        def recommend(self, *args, **kwargs):
            raise AssertionError("recommend called for rmse alone")

        def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
            return np.full(len(users), 3.0)

    table = semrec.evaluate(NoLists().fit(train.interactions), train, test, metrics=["rmse"])
    r = test.interactions.data.astype(np.float64)
    assert table.loc[10, "rmse"] == pytest.approx(math.sqrt(np.mean((r - 3.0) ** 2)))


def test_relevant_entries_treats_python_and_numpy_thresholds_alike() -> None:
    """NumPy 2 compared float32 weights with a NumPy float64 threshold in float64 (float32
    0.7 < 0.7, dropped) but with a Python float in float32 (kept)."""
    relevant_entries = semrec.evaluation.relevant_entries
    values = np.array([0.1, 0.3, 0.7, 1.1, 3.3, 4.0], dtype=np.float32)
    m = sp.csr_array(values.reshape(2, 3))
    for t in (0.1, 0.3, 0.7, 1.1, 3.3, 3.9, 4.0):
        want = int((values >= np.float32(t)).sum())  # compared in the matrix's dtype
        for threshold in (t, np.float64(t), np.float32(t)):
            assert relevant_entries(m, threshold).nnz == want, (t, type(threshold))
    one = sp.csr_array(np.array([[0.7]], dtype=np.float32))
    assert relevant_entries(one, 0.7).nnz == relevant_entries(one, np.float64(0.7)).nnz == 1
    counts = sp.csr_array(np.array([[3, 4, 5]], dtype=np.int64))  # integers: no rounding
    for threshold in (4.5, np.float64(4.5), np.float32(4.5)):
        assert relevant_entries(counts, threshold).data.tolist() == [5]
    with pytest.raises(TypeError, match="threshold must be a number, got str"):
        relevant_entries(m, "4")


def test_a_model_that_has_seen_the_test_set_is_refused() -> None:
    """Fitted on the whole data (or updated with a test event), a model excludes the test
    items as seen: evaluate would score exactly 0 without a word."""
    data = synthetic(200, 300, 6_000, random_state=0)
    train, test = split.last_fraction(data)
    leaky = semrec.ItemKNN(show_progress=False).fit(data.interactions)
    with pytest.raises(ValueError, match=r"already seen \d+ relevant test interaction"):
        semrec.evaluate(leaky, train, test, k=10, relevance_threshold=None)
    model = semrec.ItemKNN(show_progress=False).fit(train.interactions)
    clean = semrec.evaluate(model, train, test, k=10, relevance_threshold=None)
    assert clean["ndcg"].iloc[0] > 0
    user = int(np.flatnonzero(np.diff(test.interactions.indptr))[0])
    model.update(user, int(test.interactions[[user]].indices[0]))  # a test event streamed in
    with pytest.raises(ValueError, match=r"already seen 1 relevant test interaction"):
        semrec.evaluate(model, train, test, k=10, relevance_threshold=None)
    # An item in both train and test (a re-consumption) is the split's, not a leak.
    both = sp.csr_array(train.interactions + test.interactions[:, :])
    again = Dataset(both, user_ids=train.user_ids, item_ids=train.item_ids)
    fitted = semrec.ItemKNN(show_progress=False).fit(again.interactions)
    again_table = semrec.evaluate(fitted, again, test, k=10, relevance_threshold=None)
    assert again_table["ndcg"].iloc[0] == 0  # every test item is a train item: never listed


def _relevant_sets(test: Dataset) -> tuple[np.ndarray, list[set[int]]]:
    """The users with a test weight >= 4 and their relevant items, from the raw CSR."""
    t = test.interactions
    users, relevant = [], []
    for u in range(test.n_users):
        row = slice(t.indptr[u], t.indptr[u + 1])
        items = set(t.indices[row][t.data[row] >= 4].tolist())
        if items:
            users.append(u)
            relevant.append(items)
    return np.array(users), relevant


def test_a_new_user_split_without_fold_in_warns_and_names_the_fix() -> None:
    """Without fold_in the new users have no history in the model: every item scores alike
    and the lists are the catalogue order (ALS, ItemKNN and ContentRecommender all scored
    the same 'good' NDCG on MovieLens, 4.5x Random), without a word."""
    data = synthetic(300, 200, 8_000, random_state=2)
    train, test = split.new_users(data, 0.2, 5, random_state=0)
    new = test.split_info["users"]
    revealed = test.split_info["history"].interactions
    users, relevant = _relevant_sets(test)
    known = train.interactions.toarray() + revealed.toarray()
    # Reference: each user's unknown items in index order, the lists of a model with no history.
    in_order = np.array([[i for i in range(200) if known[u, i] == 0][:10] for u in users])
    catalogue = reference_table(in_order, relevant, 10)["ndcg"]
    warning = rf"has not seen the revealed history of {users.size} of the {users.size} new user"
    fix = r"model\.fold_in\(test\.split_info\['history'\]\.interactions\[users\], users=users\)"
    for model in (
        semrec.ALS(8, random_state=0, show_progress=False).fit(train.interactions),
        semrec.ItemKNN(show_progress=False).fit(train.interactions),
    ):
        with pytest.warns(UserWarning, match=warning) as caught:
            table = semrec.evaluate(model, train, test, k=10, metrics=["ndcg"])
        assert re.search(fix, str(caught[0].message))
        assert caught[0].filename == __file__  # points at the call, not into semrec
        assert table.loc[10, "ndcg"] == pytest.approx(catalogue, abs=1e-12)
        with pytest.warns(UserWarning, match=type(model).__name__):  # compare, once per model
            semrec.compare({"m": model}, train, test, k=10, metrics=["ndcg"])
        # Half the new users folded in: evaluating those is quiet, everyone warns of the rest.
        half = new[: new.size // 2]
        model.fold_in(revealed[half], users=half)
        folded = np.intersect1d(users, half)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            semrec.evaluate(model, train, test, k=10, metrics=["ndcg"], users=folded)
        rest = users.size - folded.size
        with pytest.warns(UserWarning, match=rf"history of {rest} of the {users.size} new"):
            semrec.evaluate(model, train, test, k=10, metrics=["ndcg"])
        model.fold_in(revealed[new], users=new)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            table = semrec.evaluate(model, train, test, k=10, metrics=["ndcg"])
            compared = semrec.compare({"m": model}, train, test, k=10, metrics=["ndcg"])
        # the score with fold_in is the model's own lists, unchanged by the check
        recs, _ = model.recommend(users, k=10)
        want = reference_table(recs, relevant, 10)["ndcg"]
        assert table.loc[10, "ndcg"] == pytest.approx(want, abs=1e-12)
        assert compared.loc[("m", 10), "ndcg"] == table.loc[10, "ndcg"]
        assert table.loc[10, "ndcg"] != pytest.approx(catalogue, abs=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # refitted on train + the revealed history instead of fold_in: it has it
        refit = semrec.ItemKNN(show_progress=False).fit(known_csr := sp.csr_array(known))
        semrec.evaluate(refit, train, test, k=10, metrics=["ndcg"])
        assert known_csr.nnz == train.n_interactions + revealed.nnz
        # MostPopular's and Random's lists ignore the history (evaluate drops revealed items)
        pop = semrec.MostPopular().fit(train.interactions)
        plain = semrec.evaluate(pop, train, test, k=10, metrics=["ndcg"])
        pop.fold_in(revealed[new], users=new)
        assert semrec.evaluate(pop, train, test, k=10, metrics=["ndcg"]).equals(plain)
        semrec.evaluate(semrec.Random().fit(train.interactions), train, test, k=10)
    # the check on its own: MostPopular without fold_in would list the revealed items again
    with pytest.warns(UserWarning, match="MostPopular has not seen"):
        split.check_history_folded_in(semrec.MostPopular().fit(train.interactions), test)


def test_rating_metrics_refuse_a_model_of_implicit_feedback() -> None:
    """evaluate(implicit ALS, metrics=["rmse"]) compared preference scores near 0-1 with 1-5
    ratings and returned an RMSE of 2.83 without a word."""
    train, test = split.last_fraction(synthetic(200, 300, 5_000, random_state=0))

    class Listless(semrec.ALS):
        def recommend(self, *args, **kwargs):
            raise AssertionError("lists made before the refusal")

    implicit = Listless(8, random_state=0, show_progress=False).fit(train.interactions)
    for metrics in (["rmse"], ["mae"], ["rmse", "mae"], ["ndcg", "mae"]):
        asked = " and ".join(m for m in ("rmse", "mae") if m in metrics)
        match = rf"rating metrics \({asked}\) compare .* Listless has feedback='implicit'"
        with pytest.raises(ValueError, match=match):
            semrec.evaluate(implicit, train, test, k=10, metrics=metrics)
        with pytest.raises(ValueError, match=match):
            semrec.compare({"implicit": implicit}, train, test, k=10, metrics=metrics)
    explicit = semrec.ALS(8, feedback="explicit", random_state=0, show_progress=False)
    explicit.fit(train.interactions)
    coo = test.interactions.tocoo()
    error = explicit.predict(coo.row, coo.col).astype(np.float64) - coo.data
    table = semrec.evaluate(explicit, train, test, k=10, metrics=["rmse", "mae"])
    assert table.columns.tolist() == ["rmse", "mae"]
    assert table.loc[10, "rmse"] == pytest.approx(math.sqrt(np.mean(error**2)), rel=1e-9)
    assert table.loc[10, "mae"] == pytest.approx(np.mean(np.abs(error)), rel=1e-9)


def test_evaluate_and_compare_document_every_parameter() -> None:
    for fn in (semrec.evaluate, semrec.compare):
        doc = inspect.getdoc(fn)
        assert "Parameters\n----------" in doc and "Returns\n-------" in doc
        section = doc.split("Parameters\n----------")[1].split("Returns\n-------")[0]
        entries = [line.split(" :")[0] for line in section.splitlines() if line[:1].isalnum()]
        entries += [line for line in section.splitlines() if line.startswith("**")]
        documented = {name.strip("*") for entry in entries for name in entry.split(", ")}
        assert set(inspect.signature(fn).parameters) <= documented, fn.__name__
