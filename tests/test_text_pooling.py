"""The LibTorch module: masked mean pooling against a NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest

from semrec.text import mean_pool


def _reference(hidden: np.ndarray, lengths: np.ndarray, normalize: bool) -> np.ndarray:
    out = np.zeros((hidden.shape[0], hidden.shape[2]))
    for i, n in enumerate(lengths):
        if n:
            out[i] = hidden[i, :n].astype(np.float64).mean(axis=0)
    if normalize:
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out = np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)
    return out


@pytest.mark.parametrize("normalize", [True, False])
@pytest.mark.parametrize(("n", "seq_len", "dim"), [(1, 1, 1), (7, 13, 32), (64, 40, 384)])
def test_mean_pool_matches_numpy(
    rng: np.random.Generator, n: int, seq_len: int, dim: int, normalize: bool
) -> None:
    hidden = rng.standard_normal((n, seq_len, dim)).astype(np.float32)
    lengths = rng.integers(0, seq_len + 1, size=n)
    lengths[0] = seq_len
    got = mean_pool(hidden, lengths, normalize=normalize)
    assert got.dtype == np.float32 and got.shape == (n, dim)
    np.testing.assert_allclose(got, _reference(hidden, lengths, normalize), rtol=1e-5, atol=1e-6)


def test_padding_is_ignored(rng: np.random.Generator) -> None:
    hidden = rng.standard_normal((2, 6, 8)).astype(np.float32)
    changed = hidden.copy()
    changed[:, 3:] = 1e6  # garbage in the padding positions
    lengths = np.array([3, 3])
    np.testing.assert_array_equal(mean_pool(hidden, lengths), mean_pool(changed, lengths))


def test_bad_input() -> None:
    h = np.ones((2, 3, 4), dtype=np.float32)
    with pytest.raises(TypeError, match="hidden"):
        mean_pool(h.astype(np.float64), np.array([1, 1]))
    with pytest.raises(ValueError, match="hidden"):
        mean_pool(h[0], np.array([1]))
    with pytest.raises(ValueError, match="lengths"):
        mean_pool(h, np.array([1]))
    with pytest.raises(ValueError, match="lengths"):
        mean_pool(h, np.array([1, 4]))
    with pytest.raises(TypeError, match="lengths"):
        mean_pool(h, np.array([1.0, 2.0]))
    bad = h.copy()
    bad[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        mean_pool(bad, np.array([1, 1]))


def test_values_whose_sum_or_norm_overflows_float32_are_refused() -> None:
    """Finite input near float32's limit summed to inf (NaN once normalised), and a mean whose
    norm overflows was normalised to zeros; the float64 reference is finite and nonzero."""
    four = np.full((1, 4, 3), 1e38, dtype=np.float32)
    assert np.isfinite(_reference(four, np.array([4]), normalize=True)).all()
    for normalize in (True, False):
        with pytest.raises(ValueError, match="hidden's values overflow float32"):
            mean_pool(four, [4], normalize=normalize)
    one = np.full((1, 1, 3), 1e38, dtype=np.float32)  # its mean is fine, its norm is not
    np.testing.assert_array_equal(mean_pool(one, [1], normalize=False), one[:, 0])
    with pytest.raises(ValueError, match="hidden's values overflow float32"):
        mean_pool(one, [1])
    # A mean that is zero, or no token, stays a zero vector.
    cancel = np.array([[[1, -2], [-1, 2]], [[5, 5], [0, 0]]], dtype=np.float32)
    np.testing.assert_array_equal(mean_pool(cancel, [2, 0]), np.zeros((2, 2)))
