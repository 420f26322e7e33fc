"""Property-based tests of ALS's exact solve: ``fold_in`` (Cholesky on the kernel's normal
equations) against ``numpy.linalg.solve`` of the same least-squares problem in float64, for
implicit (linear and log confidence) and explicit feedback, and histories that must raise one
of the documented exception types."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st
from properties import PROPERTY, csr_matrices

import semrec

pytestmark = pytest.mark.property


@st.composite
def fitted(draw: st.DrawFn) -> semrec.ALS:
    n_users, n_items = draw(st.integers(2, 15)), draw(st.integers(2, 20))
    train = draw(csr_matrices(n_users, n_items, density=0.4))
    if train.nnz == 0:
        train = sp.csr_array(np.eye(n_users, n_items, dtype=np.float32))
    feedback = draw(st.sampled_from(["implicit", "explicit"]))
    model = semrec.ALS(
        draw(st.sampled_from([1, 2, 5, 8, 17])),
        regularization=draw(st.sampled_from([0.01, 0.1, 1.0, 10.0])),
        alpha=draw(st.sampled_from([0.5, 4.0, 40.0])),
        iterations=2,
        feedback=feedback,
        confidence=draw(st.sampled_from(["linear", "log"])),
        random_state=draw(st.integers(0, 1000)),
        num_threads=1,
        show_progress=False,
    )
    return model.fit(train)


def reference(model: semrec.ALS, history: sp.csr_array) -> np.ndarray:
    """argmin_x Σ_i c_i (p_i - x·v_i)² + λ|x|² (implicit) or Σ_obs (r - x·v)² + λ|x|² (explicit)."""
    v = model.item_factors_.astype(np.float64)
    lam = model.regularization
    out = np.zeros((history.shape[0], v.shape[1]))
    for u in range(history.shape[0]):
        sl = slice(history.indptr[u], history.indptr[u + 1])
        idx, r = history.indices[sl], history.data[sl].astype(np.float64)
        if idx.size == 0:
            continue
        vi = v[idx]
        if model.feedback == "implicit":
            extra = model.alpha * (np.log1p(r / model.epsilon) if model.confidence == "log" else r)
            a = v.T @ v + vi.T @ (extra[:, None] * vi) + lam * np.eye(v.shape[1])
            b = vi.T @ (1.0 + extra)
        else:
            a = vi.T @ vi + lam * np.eye(v.shape[1])
            b = vi.T @ (r - model.global_mean_)
        out[u] = np.linalg.solve(a, b)
    return out


@given(model=fitted(), data=st.data())
@PROPERTY
def test_fold_in_is_the_exact_least_squares_solution(model: semrec.ALS, data) -> None:
    n = data.draw(st.integers(0, 6))
    history = data.draw(csr_matrices(n, model.n_items_))
    got = model.fold_in(history)
    want = reference(model, history)
    assert got.shape == want.shape and got.dtype == np.float32
    scale = np.linalg.norm(want, axis=1, keepdims=True) + 1e-6
    assert np.all(np.abs(got - want) <= 2e-3 * scale + 1e-6), np.abs(got - want).max()


@given(
    model=fitted(),
    damage=st.sampled_from(["nan", "inf", "negative", "huge", "shape", "dense", "coo", "item id"]),
)
@PROPERTY
def test_bad_histories_raise_the_documented_error(model: semrec.ALS, damage: str) -> None:
    history = sp.csr_array(np.ones((2, model.n_items_), dtype=np.float32))
    expected: type[Exception] | tuple[type[Exception], ...] = ValueError
    if damage in ("nan", "inf", "huge"):
        history.data[1] = {"nan": np.nan, "inf": np.inf, "huge": 1e30}[damage]
        if damage == "huge":
            with np.errstate(over="ignore"):
                confidence = np.float32(model.alpha) * np.float32(1e30)
            if model.feedback == "explicit" or model.confidence == "log" or np.isfinite(confidence):
                # A large but representable weight is valid input: a finite solution, or, when
                # it swamps the other weights beyond float64's digits, the documented refusal.
                try:
                    assert np.isfinite(model.fold_in(history)).all()
                except ValueError as exc:
                    assert "too large to solve for" in str(exc) and "rescale" in str(exc)
                return
    elif damage == "negative":
        history.data[1] = -1.0
        if model.feedback == "explicit":
            return  # explicit ratings may be negative (they are centred anyway)
    elif damage == "shape":
        history = sp.csr_array(np.ones((2, model.n_items_ + 1), dtype=np.float32))
    elif damage == "dense":
        history, expected = history.toarray(), TypeError
    elif damage == "coo":
        history, expected = history.tocoo(), TypeError
    elif damage == "item id":
        history.indices[0] = model.n_items_ + 3
        expected = (IndexError, ValueError)
    with pytest.raises(expected):
        model.fold_in(history)


@pytest.mark.parametrize("weight", [1e3, 1e6])
def test_fold_in_stays_exact_at_large_weights(weight: float) -> None:
    # The normal equations are accumulated in float64: in float32, weights near 1e6 left the
    # solution ~1% off the float64 least-squares answer.
    train = sp.random(60, 40, density=0.2, random_state=1, format="csr", dtype=np.float32)
    model = semrec.ALS(16, regularization=0.1, alpha=1.0, iterations=3, random_state=0,
                       num_threads=1, show_progress=False).fit(sp.csr_array(train))  # fmt: skip
    history = np.zeros((3, 40), np.float32)
    history[0, [1, 5, 9]] = [weight, 1, 2]
    history[1, [2, 3, 4, 7, 8]] = weight
    history[2, 10] = weight
    got = model.fold_in(sp.csr_array(history))
    want = reference(model, sp.csr_array(history))
    scale = np.linalg.norm(want, axis=1, keepdims=True)
    assert np.all(np.abs(got - want) <= 1e-5 * scale), (np.abs(got - want) / scale).max()
