"""Splitters: invariants (no leakage, reproducible seeds, warm users in train) and definitions."""

from __future__ import annotations

import numpy as np
import pytest

from semrec import split
from semrec.datasets import Dataset, synthetic


@pytest.fixture(scope="module")
def data() -> Dataset:
    return synthetic(200, 300, 5_000, random_state=3)


def pairs(ds: Dataset) -> set[tuple[int, int]]:
    coo = ds.interactions.tocoo()
    return set(zip(coo.row.tolist(), coo.col.tolist(), strict=True))


def check_partition(ds: Dataset, train: Dataset, test: Dataset, *, same_maps: bool = True) -> None:
    assert train.interactions.shape == test.interactions.shape == ds.interactions.shape
    if same_maps:
        assert train.user_ids is ds.user_ids and test.item_ids is ds.item_ids
    else:
        assert (train.item_ids == ds.item_ids).all() and (test.item_ids == ds.item_ids).all()
    assert not pairs(train) & pairs(test)  # no leakage
    assert pairs(train) | pairs(test) == pairs(ds)
    # weights and timestamps travel with their interaction
    full = {
        (u, i): (w, t)
        for (u, i), w, t in zip(_coo(ds), ds.interactions.tocoo().data, ds.timestamps, strict=True)
    }
    for part in (train, test):
        for (u, i), w, t in zip(
            _coo(part), part.interactions.tocoo().data, part.timestamps, strict=True
        ):
            assert full[(u, i)] == (w, t)


def _coo(ds: Dataset) -> list[tuple[int, int]]:
    coo = ds.interactions.tocoo()
    return list(zip(coo.row.tolist(), coo.col.tolist(), strict=True))


def per_user(ds: Dataset) -> dict[int, list[tuple[int, int]]]:
    out: dict[int, list[tuple[int, int]]] = {}
    for (u, i), t in zip(_coo(ds), ds.timestamps.tolist(), strict=True):
        out.setdefault(u, []).append((t, i))
    return out


def test_last_fraction_matches_definition(data: Dataset) -> None:
    train, test = split.last_fraction(data, 0.2)
    check_partition(data, train, test)
    got = per_user(test)
    for u, events in per_user(data).items():
        events.sort()
        n_test = min(max(1, int(0.2 * len(events))), len(events) - 1)
        assert sorted(got.get(u, [])) == events[len(events) - n_test :]
    test_users = set(got)
    train_users = set(per_user(train))
    assert test_users <= train_users  # warm: every test user is in train


def test_leave_last_k(data: Dataset) -> None:
    train, test = split.leave_last_k(data, 2)
    check_partition(data, train, test)
    for u, events in per_user(test).items():
        assert len(events) == 2
        assert min(events) > max(per_user(train)[u])


def test_random_holdout_is_seeded(data: Dataset) -> None:
    a_train, a_test = split.random_holdout(data, 0.25, random_state=5)
    _, b_test = split.random_holdout(data, 0.25, random_state=5)
    _, c_test = split.random_holdout(data, 0.25, random_state=6)
    check_partition(data, a_train, a_test)
    assert pairs(a_test) == pairs(b_test) and pairs(a_test) != pairs(c_test)
    counts = np.diff(data.interactions.indptr)
    np.testing.assert_array_equal(np.diff(a_test.interactions.indptr), np.floor(0.25 * counts))


def test_temporal_global(data: Dataset) -> None:
    train, test = split.temporal_global(data, 0.2)
    check_partition(data, train, test)
    assert train.timestamps.max() <= test.timestamps.min()
    assert test.n_interactions == pytest.approx(0.2 * data.n_interactions, abs=5)


def test_cold_items(data: Dataset) -> None:
    train, test = split.cold_items(data, 0.1, min_interactions=5, random_state=0)
    # The items are renumbered first (seeded); the split is then a partition of that data.
    permuted = data.permute_items(0)
    perm = permuted.split_info["item_permutation"]
    assert (test.split_info["item_permutation"] == perm).all()
    assert (train.item_ids == data.item_ids[perm]).all()
    check_partition(permuted, train, test, same_maps=False)
    plain_train, plain_test = split.cold_items(data, 0.1, 5, random_state=0, permute_items=False)
    check_partition(data, plain_train, plain_test)
    original, data = data, permuted
    cold = test.split_info["cold_items"]
    counts = np.bincount(data.interactions.indices, minlength=data.n_items)
    eligible = np.flatnonzero(counts >= 5)
    assert len(cold) == round(0.1 * len(eligible)) and set(cold) <= set(eligible)
    assert train.interactions[:, cold].nnz == 0
    assert set(np.unique(test.interactions.indices)) == set(cold)
    again = split.cold_items(original, 0.1, min_interactions=5, random_state=0)[1]
    assert (again.split_info["cold_items"] == cold).all()


def test_new_users(data: Dataset) -> None:
    train, test = split.new_users(data, 0.1, n_reveal=5, random_state=0)
    history = test.split_info["history"]
    chosen = test.split_info["users"]
    assert len(chosen) == 20
    assert train.interactions[chosen].nnz == 0
    assert not pairs(history) & pairs(test) and not pairs(history) & pairs(train)
    assert pairs(train) | pairs(test) | pairs(history) == pairs(data)
    full = per_user(data)
    hist = per_user(history)
    for u in chosen.tolist():
        events = sorted(full[u])
        assert sorted(hist[u]) == events[:5]


def test_errors(data: Dataset) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        split.last_fraction(data, 1.5)
    with pytest.raises(TypeError, match="Dataset"):
        split.random_holdout(data.interactions)
    no_time = Dataset(data.interactions)
    with pytest.raises(ValueError, match="no timestamps"):
        split.last_fraction(no_time)
    for bad in (1.0, "1"):
        with pytest.raises(TypeError, match="min_test must be an int"):
            split.last_fraction(data, 0.2, bad)
    with pytest.raises(ValueError, match="every user, leaving train empty"):
        split.new_users(data, 0.999)
    with pytest.raises(ValueError, match="n_reveal=100000 reveals every interaction"):
        split.new_users(data, 0.1, n_reveal=100_000)


def test_permute_items_moves_every_item_attribute_together(data: Dataset) -> None:
    shuffled = data.permute_items(random_state=7)
    perm = shuffled.split_info["item_permutation"]
    assert sorted(perm.tolist()) == list(range(data.n_items))
    assert not (perm == np.arange(data.n_items)).all()
    np.testing.assert_array_equal(
        shuffled.interactions.toarray(), data.interactions.toarray()[:, perm]
    )
    assert (shuffled.item_ids == data.item_ids[perm]).all()
    assert shuffled.items["text"].tolist() == [data.items["text"][p] for p in perm]

    # each (user, raw item) keeps its weight and timestamp
    def events(ds: Dataset) -> set[tuple[int, object, float, int]]:
        coo = ds.interactions.tocoo()
        return set(
            zip(
                coo.row.tolist(),
                ds.item_ids[coo.col].tolist(),
                coo.data.tolist(),
                ds.timestamps.tolist(),
                strict=True,
            )
        )

    assert events(shuffled) == events(data)
    assert (shuffled.permute_items(7).split_info["item_permutation"] == perm[perm]).all()
    assert shuffled.item_index(data.item_ids[perm[3]]) == 3


def test_a_model_scoring_every_cold_item_alike_scores_like_random() -> None:
    """Items numbered by popularity (as MovieLens roughly is): with the catalogue's order the
    tie-break of a model without information (most-popular: every cold item has count 0)
    looks like skill; with the split's default permutation it is worth exactly random,
    whose expected Recall@k is k / (number of cold items) (issue 13)."""
    import semrec

    base = synthetic(300, 400, 12_000, n_topics=4, random_state=1)
    counts = np.bincount(base.interactions.indices, minlength=base.n_items)
    by_popularity = np.argsort(-counts, kind="stable")
    m = base.interactions[:, by_popularity]
    m.sort_indices()
    ds = Dataset(m, item_ids=base.item_ids[by_popularity])

    def recall(train: Dataset, test: Dataset, k: int) -> float:
        model = semrec.MostPopular().fit(train.interactions)
        cold = test.split_info["cold_items"]
        table = semrec.evaluate(model, train, test, k=k, items=cold, metrics=["recall"])
        return float(table.loc[k, "recall"])

    k = 5
    train, test = split.cold_items(ds, 0.1, 5, random_state=0, permute_items=False)
    expected = k / test.split_info["cold_items"].size
    assert recall(train, test, k) > 2 * expected  # the leak
    seeds = range(24)
    permuted = [recall(*split.cold_items(ds, 0.1, 5, random_state=s), k) for s in seeds]
    cold_sizes = {
        split.cold_items(ds, 0.1, 5, random_state=s)[1].split_info["cold_items"].size for s in seeds
    }
    assert cold_sizes == {test.split_info["cold_items"].size}
    mean, sem = np.mean(permuted), np.std(permuted, ddof=1) / np.sqrt(len(permuted))
    assert abs(mean - expected) < 3 * sem + 0.01, (mean, expected, sem)


@pytest.mark.parametrize(
    ("seed", "error"), [(1.5, TypeError), (True, TypeError), ("0", TypeError), (-1, ValueError)]
)
@pytest.mark.parametrize("splitter", [split.random_holdout, split.cold_items, split.new_users])
def test_bad_random_state_is_refused_naming_it(data, splitter, seed, error) -> None:
    with pytest.raises(error, match="random_state"):
        splitter(data, random_state=seed)


@pytest.mark.parametrize("splitter", [split.random_holdout, split.cold_items, split.new_users])
def test_numpy_int_and_generator_seeds_are_accepted(data, splitter) -> None:
    a, _ = splitter(data, random_state=np.int64(4))
    b, _ = splitter(data, random_state=4)
    assert pairs(a) == pairs(b)
    splitter(data, random_state=np.random.default_rng(0))
    splitter(data, random_state=None)


def _reference_cut(t: list[int], fraction: float) -> int:
    """The distinct timestamp whose test share (t > cut) is closest to fraction, the larger
    test on a tie, both sides non-empty (a plain loop over the candidates)."""
    best, best_gap = None, None
    for cut in sorted(set(t))[:-1]:
        n_test = sum(1 for v in t if v > cut)
        gap = abs(n_test / len(t) - fraction)
        if best_gap is None or gap < best_gap - 1e-12:
            best, best_gap = cut, gap
    return best


def test_temporal_global_with_tied_timestamps_picks_the_closest_cut() -> None:
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    for case in range(30):
        x = sp.random_array((40, 30), density=0.2, format="csr", rng=rng, dtype=np.float32)
        x.sort_indices()
        n_days = int(rng.integers(2, 7))
        p = rng.dirichlet(np.ones(n_days))
        days = rng.choice(n_days, x.nnz, p=p) * 86400
        if np.unique(days).size < 2:
            continue
        data = Dataset(x, timestamps=days)
        for fraction in (0.05, 0.1, 0.2, 0.3, 0.5, 0.9):
            train, test = split.temporal_global(data, fraction)
            cut = _reference_cut(days.tolist(), fraction)
            assert test.n_interactions == int((days > cut).sum()), (case, fraction)
            assert train.n_interactions > 0 and test.n_interactions > 0
            assert train.timestamps.max() <= cut < test.timestamps.min()
    # the audit's case: the last day holds 30% of the rows; a small fraction is no empty test
    x = sp.random_array((50, 40), density=0.2, format="csr", rng=0, dtype=np.float32)
    x.sort_indices()
    days = np.random.default_rng(0).choice(5, x.nnz, p=[0.15, 0.15, 0.2, 0.2, 0.3]) * 86400
    _, test = split.temporal_global(Dataset(x, timestamps=days), 0.1)
    assert test.n_interactions == int((days == days.max()).sum())
    with pytest.raises(ValueError, match="every interaction has the same timestamp"):
        split.temporal_global(Dataset(x, timestamps=np.full(x.nnz, 7)), 0.2)


def test_cold_items_refuses_to_leave_train_empty() -> None:
    """Every item cold (round(0.9 * 4) = 4 of 4): train would hold no interaction."""
    import scipy.sparse as sp

    everything = Dataset(sp.csr_array(np.ones((6, 4), np.float32)))
    with pytest.raises(ValueError, match="leaving train empty"):
        split.cold_items(everything, 0.9, 5)
    train, test = split.cold_items(everything, 0.5, 5)
    assert train.n_interactions == 12 and test.n_interactions == 12
