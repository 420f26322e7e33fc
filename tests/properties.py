"""Shared Hypothesis settings and strategies for the property-based tests (``property`` marker).

Each property test draws many inputs (random shapes, extreme magnitudes, NaN/inf, malformed
CSR, ids at the edges) and checks that every call either equals an independent NumPy reference
or raises one of the documented exception types (TypeError, ValueError, IndexError).

``make test`` runs ``SEMREC_PROPERTY_CASES`` examples per test (60 by default), derandomized so
that CI sees the same cases every run; set it higher locally for a longer search.
"""

from __future__ import annotations

import os

import numpy as np
import scipy.sparse as sp
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

PROPERTY_CASES = int(os.environ.get("SEMREC_PROPERTY_CASES", "60"))

PROPERTY = settings(
    max_examples=PROPERTY_CASES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# The exception types semrec documents for bad input (CONVENTIONS.md, "Errors").
DOCUMENTED = (TypeError, ValueError, IndexError)

# Magnitudes that break naive code: tiny (subnormal products), ordinary, huge (overflowing
# squares in float32), each with either sign.
SCALES = st.sampled_from([1e-30, 1e-3, 1.0, 1e3, 1e18])

# Vector widths on both sides of the kernels' SIMD and lane-block boundaries (8, 16, 64).
DIMS = st.sampled_from([1, 2, 3, 7, 8, 16, 17, 63, 64, 65, 130])


@st.composite
def float_matrices(
    draw: st.DrawFn,
    rows: int,
    cols: int,
    *,
    special: bool = False,
    dtype: type = np.float32,
) -> np.ndarray:
    """A ``rows x cols`` array: standard normal times a drawn scale, optionally with NaN/inf."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    out = rng.standard_normal((rows, cols)) * draw(SCALES)
    if special and out.size and draw(st.booleans()):
        flat = out.reshape(-1)
        flat[draw(st.integers(0, flat.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return np.ascontiguousarray(out, dtype=dtype)


@st.composite
def csr_matrices(
    draw: st.DrawFn,
    rows: int,
    cols: int,
    *,
    density: float | None = None,
    values: st.SearchStrategy[float] | None = None,
) -> sp.csr_array:
    """A canonical (sorted, no duplicates, no explicit zeros) ``rows x cols`` CSR array."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    p = draw(st.sampled_from([0.0, 0.1, 0.3, 1.0])) if density is None else density
    mask = rng.random((rows, cols)) < p
    data = np.zeros((rows, cols), dtype=np.float32)
    n = int(mask.sum())
    if values is None:
        data[mask] = rng.integers(1, 6, size=n)
    else:
        data[mask] = np.array([draw(values) for _ in range(n)], dtype=np.float32)
    m = sp.csr_array(data)
    m.eliminate_zeros()
    return m
