"""Explanations: the common table, and ALS's linear decomposition of the score."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from semrec import ALS
from semrec.explain import COLUMNS, explanation


def test_explanation_table_sorts_cuts_and_shares() -> None:
    table = explanation([4, 2, 9, 7], [0.5, 2.0, -1.0, 0.5], 3, user=1, item=5, score=2.5)
    assert list(table.columns) == list(COLUMNS)
    assert table["item"].tolist() == [2, 4, 7]  # ties (0.5) go to the smaller item
    np.testing.assert_allclose(table["contribution"], [2.0, 0.5, 0.5])
    np.testing.assert_allclose(table["share"], [0.5, 0.125, 0.125])  # over sum |c| = 4
    assert table.attrs == {"user": 1, "item": 5, "score": 2.5, "explained": 2.0, "rest": 0.5}
    empty = explanation([], [], 5, user=0, item=0, score=0.0)
    assert len(empty) == 0 and empty.attrs["explained"] == 0.0
    with pytest.raises(ValueError, match="same length"):
        explanation([1, 2], [1.0], 2, user=0, item=0, score=0.0)
    with pytest.raises(TypeError, match="items must hold integer ids"):  # was truncated to 3
        explanation([3.7], [1.0], 2, user=0, item=0, score=1.0)
    with pytest.raises(IndexError, match="items holds ids beyond the int32 range"):
        explanation([2**40], [1.0], 2, user=0, item=0, score=1.0)
    assert explanation(np.int64(6), [1.0], 1, user=0, item=0, score=1.0)["item"].tolist() == [6]


def _clicks(rng: np.random.Generator) -> sp.csr_array:
    counts = rng.poisson(0.4, size=(120, 60)).astype(np.float32)
    return sp.csr_array(counts)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"solver": "cholesky", "confidence": "log"},
        {"feedback": "explicit", "regularization": 0.5},
        {"feedback": "explicit", "biases": True, "regularization": 0.5},
    ],
    ids=["implicit-cg", "implicit-log", "explicit", "explicit-biases"],
)
def test_contributions_sum_to_the_score_of_an_exactly_solved_user(rng, params) -> None:
    model = ALS(factors=6, iterations=6, random_state=0, show_progress=False, **params)
    model.fit(_clicks(rng) * 2)
    user = 7
    model.fold_in(model.interactions_[[user]], users=[user])  # exact solve, current items
    history = model.interactions_[[user]].indices
    for item in (0, 13, int(history[0])):
        table = model.explain(user, item, k=100)
        score = float(model.score(user, [item])[0])
        intercept = model.global_mean_ + (model.item_biases_[item] if model.biases else 0.0)
        assert sorted(table["item"]) == sorted(history)
        assert table.attrs["score"] == pytest.approx(score)
        np.testing.assert_allclose(
            table["contribution"].sum() + intercept, score, rtol=1e-4, atol=1e-5
        )
        np.testing.assert_allclose(table["share"].abs().sum(), 1.0)
        assert table["contribution"].is_monotonic_decreasing


def test_contributions_match_a_leave_one_in_reference(rng) -> None:
    # Implicit ALS is linear in the confidence-weighted history: the user factor built from
    # item j's term alone, W_u c_uj y_j, scores item i with exactly j's contribution.
    model = ALS(factors=5, iterations=4, random_state=1, show_progress=False, alpha=3.0)
    model.fit(_clicks(rng))
    user, item = 3, 11
    row = model.interactions_[[user]]
    y = model.item_factors_.astype(np.float64)
    c = 1.0 + 3.0 * row.data
    a = y.T @ y + (y[row.indices].T * (c - 1.0)) @ y[row.indices] + model.regularization * np.eye(5)
    reference = {
        int(j): float(y[item] @ np.linalg.solve(a, cj * y[j]))
        for j, cj in zip(row.indices, c, strict=True)
    }
    table = model.explain(user, item, k=len(reference))
    for j, value in zip(table["item"], table["contribution"], strict=True):
        assert value == pytest.approx(reference[int(j)], rel=1e-6, abs=1e-9)


def test_the_responsible_item_ranks_first_on_a_planted_case(rng) -> None:
    # Items 0-9 and 10-19 are two genres; item 20 ("the sequel") is watched by everyone who
    # watched item 21 ("the original") and by nobody else.
    n_users = 200
    clicks = np.zeros((n_users, 22), dtype=np.float32)
    genre = rng.integers(0, 2, n_users)
    for u in range(n_users):
        clicks[u, rng.choice(10, 4, replace=False) + 10 * genre[u]] = 1.0
    fans = rng.choice(np.arange(1, n_users), 60, replace=False)
    clicks[fans, 20] = clicks[fans, 21] = 1.0
    clicks[0] = 0.0
    clicks[0, [2, 5, 13, 21]] = 1.0  # user 0: both genres and the original, not the sequel
    model = ALS(factors=8, iterations=15, regularization=0.1, random_state=0, show_progress=False)
    model.fit(sp.csr_array(clicks))
    table = model.explain(0, 20, k=4)
    assert table["item"].iloc[0] == 21
    assert table["share"].iloc[0] > 0.5
    assert table.attrs["rest"] == pytest.approx(0.0, abs=0.05 * abs(table.attrs["score"]))


def test_explain_checks_its_arguments(rng) -> None:
    model = ALS(factors=3, iterations=2, random_state=0, show_progress=False).fit(_clicks(rng))
    with pytest.raises(TypeError, match="single user"):
        model.explain([0, 1], 2)
    with pytest.raises(IndexError):
        model.explain(0, 60)
    with pytest.raises(ValueError, match="k"):
        model.explain(0, 1, k=0)
    with pytest.raises(ValueError, match="not fitted"):
        ALS().explain(0, 0)


def test_explanation_checks_contributions_and_ids() -> None:
    with pytest.raises(ValueError, match=r"contributions must be finite, got nan \(entry 0\)"):
        explanation([1, 2], [np.nan, 1.0], 3, user=0, item=1, score=1.0)
    with pytest.raises(ValueError, match="contributions must be finite, got inf"):
        explanation([1, 2], [1.0, np.inf], 3, user=0, item=1, score=1.0)
    with pytest.raises(TypeError, match="contributions must hold real numbers"):
        explanation([1, 2], ["a", "b"], 3, user=0, item=1, score=1.0)
    with pytest.raises(TypeError, match="user must be an int id, got str"):
        explanation([1], [1.0], 3, user="a", item=1, score=1.0)
    with pytest.raises(TypeError, match="user must be an int id, got float"):
        explanation([1], [1.0], 3, user=1.7, item=1, score=1.0)
    with pytest.raises(IndexError, match="item must be >= 0"):
        explanation([1], [1.0], 3, user=0, item=-1, score=1.0)
    table = explanation([1], [2.0], 3, user=np.int64(4), item=np.int32(5), score=np.float32(2))
    assert table.attrs == {"user": 4, "item": 5, "score": 2.0, "explained": 2.0, "rest": 0.0}
    assert type(table.attrs["user"]) is int and type(table.attrs["score"]) is float


def test_shares_of_contributions_whose_sum_passes_float64_are_exact() -> None:
    # Finite contributions near float64's limit: their sums overflowed, every share came out 0
    # with a RuntimeWarning (an error here) and explained was inf (session 44 verify, N3).
    contributions = np.array([1e308, 1e308, -1e308, 5e307, 3.0])
    table = explanation([4, 2, 9, 7, 1], contributions, 5, user=0, item=3, score=1.0)
    scaled = contributions / 1e308  # the same computation at a scale that cannot overflow
    want = dict(zip([4, 2, 9, 7, 1], scaled / np.abs(scaled).sum(), strict=True))
    np.testing.assert_allclose(table["share"], [want[i] for i in table["item"]], rtol=1e-15)
    np.testing.assert_allclose(table.attrs["explained"], scaled.sum() * 1e308, rtol=1e-15)
    assert table["item"].tolist() == [2, 4, 7, 1, 9]
    # A total past float64's range is +-inf, the shares are still right.
    table = explanation([1, 2], [1e308, 1e308], 2, user=0, item=3, score=1.0)
    assert table["share"].tolist() == [0.5, 0.5]
    assert table.attrs["explained"] == np.inf and table.attrs["rest"] == -np.inf
    table = explanation([1, 2], [1.7e308, -1.7e308], 2, user=0, item=3, score=1.0)
    assert table["share"].tolist() == [0.5, -0.5] and table.attrs["explained"] == 0.0
