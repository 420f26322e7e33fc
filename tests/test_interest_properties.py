"""Property-based tests of semrec.interest: batch and streaming profiles against the decayed,
normalised sums computed in NumPy (float64), for embeddings of any magnitude, any time spread,
and bad input that must raise one of the documented exception types."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st
from properties import DIMS, PROPERTY, float_matrices

from semrec.interest import StreamingProfiles, user_profiles

pytestmark = pytest.mark.property


@st.composite
def histories(draw: st.DrawFn) -> dict:
    """Events (duplicates allowed, unsorted rows), their times, item vectors and a half-life."""
    n_users = draw(st.integers(0, 8))
    n_items = draw(st.integers(1, 12))
    dim = draw(DIMS)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    counts = rng.integers(0, 6, size=n_users)
    indptr = np.concatenate([[0], np.cumsum(counts)])
    nnz = int(indptr[-1])
    indices = rng.integers(0, n_items, size=nnz)
    weights = rng.choice([-1.0, 0.5, 1.0, 2.0, 5.0], size=nnz)
    spread = draw(st.sampled_from([0, 10, 1_000, 10**9]))
    times = rng.integers(0, spread + 1, size=nnz)
    if draw(st.booleans()):
        times = times.astype(np.float64) + rng.random(nnz)
    m = sp.csr_array((weights, indices, indptr), shape=(n_users, n_items))
    half_life = draw(st.sampled_from([None, 1.0, 50.0, 1e6]))
    emb = draw(float_matrices(n_items, dim))
    return {"m": m, "times": times, "emb": emb, "half_life": half_life}


def reference(h: dict) -> tuple[np.ndarray, np.ndarray]:
    """Profiles in float64 and, per user, how well conditioned they are (|sum| / mass)."""
    m, times, emb, half_life = h["m"], h["times"], h["emb"].astype(np.float64), h["half_life"]
    out = np.zeros((m.shape[0], emb.shape[1]))
    condition = np.full(m.shape[0], np.inf)
    for u in range(m.shape[0]):
        sl = slice(m.indptr[u], m.indptr[u + 1])
        idx, w, t = m.indices[sl], m.data[sl], np.asarray(times[sl], dtype=np.float64)
        if idx.size == 0:
            continue
        f = w * (np.exp2(-(t.max() - t) / half_life) if half_life else 1.0)
        total = f @ emb[idx]
        norm = np.linalg.norm(total)
        mass = np.abs(f) @ np.linalg.norm(emb[idx], axis=1)
        condition[u] = norm / mass if mass > 0 else 0.0
        if norm > 0:
            out[u] = total / norm
    return out, condition


def assert_profiles(got: np.ndarray, want: np.ndarray, condition: np.ndarray) -> None:
    assert got.dtype == np.float32 and got.shape == want.shape
    for u in range(want.shape[0]):
        if condition[u] > 1e-3:  # a clear direction: the unit vector, to float32 accuracy
            np.testing.assert_allclose(got[u], want[u], atol=1e-5 / condition[u] + 1e-5)
        elif condition[u] < 1e-9:  # empty or cancelled out: a zero row
            assert not got[u].any(), f"user {u}: expected a zero profile"


@given(h=histories())
@PROPERTY
def test_user_profiles_equal_the_decayed_normalised_sums(h: dict) -> None:
    want, condition = reference(h)
    got = user_profiles(h["m"], h["emb"], timestamps=h["times"], half_life=h["half_life"])
    assert_profiles(got, want, condition)


@given(h=histories(), seed=st.integers(0, 2**32 - 1))
@PROPERTY
def test_streaming_profiles_in_any_order_equal_the_batch(h: dict, seed: int) -> None:
    want, condition = reference(h)
    m = h["m"]
    users = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    order = np.random.default_rng(seed).permutation(m.nnz)
    state = StreamingProfiles(h["emb"], half_life=h["half_life"], n_users=m.shape[0])
    state.update_many(users[order], m.indices[order], m.data[order], h["times"][order])
    assert_profiles(state.profiles(), want, condition)


@given(
    h=histories(),
    damage=st.sampled_from(
        ["nan weight", "item id", "negative id", "nan time", "short times", "half_life 0",
         "half_life nan", "no times", "dense", "float64 embeddings", "nan embedding"]
    ),
)  # fmt: skip
@PROPERTY
def test_bad_input_raises_the_documented_error(h: dict, damage: str) -> None:
    m, times, emb, half_life = h["m"].copy(), h["times"].copy(), h["emb"].copy(), h["half_life"]
    expected: type[Exception] = ValueError
    if damage in ("nan weight", "item id", "negative id", "nan time", "short times"):
        if m.nnz == 0:
            return
        if damage == "nan weight":
            m.data[0] = np.nan
        elif damage == "nan time":
            times = times.astype(np.float64)
            times[-1] = np.nan
        elif damage == "short times":
            times = times[:-1]
        else:
            m.indices[0] = m.shape[1] if damage == "item id" else -1
            expected = IndexError
    elif damage.startswith("half_life"):
        half_life = 0.0 if damage == "half_life 0" else float("nan")
    elif damage == "no times":
        half_life, times = 5.0, None
    elif damage == "dense":
        m, expected = m.toarray(), TypeError
    elif damage == "float64 embeddings":
        emb, expected = emb.astype(np.float64), TypeError
    else:
        emb[0, 0] = np.nan
    with pytest.raises(expected):
        user_profiles(m, emb, timestamps=times, half_life=half_life)
