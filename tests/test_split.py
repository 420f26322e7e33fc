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


def check_partition(ds: Dataset, train: Dataset, test: Dataset) -> None:
    assert train.interactions.shape == test.interactions.shape == ds.interactions.shape
    assert train.user_ids is ds.user_ids and test.item_ids is ds.item_ids
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
    check_partition(data, train, test)
    cold = test.split_info["cold_items"]
    counts = np.bincount(data.interactions.indices, minlength=data.n_items)
    eligible = np.flatnonzero(counts >= 5)
    assert len(cold) == round(0.1 * len(eligible)) and set(cold) <= set(eligible)
    assert train.interactions[:, cold].nnz == 0
    assert set(np.unique(test.interactions.indices)) == set(cold)
    again = split.cold_items(data, 0.1, min_interactions=5, random_state=0)[1]
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
