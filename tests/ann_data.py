"""Test data shared by the approximate indexes' tests."""

from __future__ import annotations

import numpy as np


def two_regions(n: int, dim: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Items around +c (the first 70%) and -c, and a query near +c: a filter that removes the
    region around the query leaves an approximate search with nothing nearby."""
    rng = np.random.default_rng(7)
    centre = 3 * rng.standard_normal(dim)
    x = rng.standard_normal((n, dim))
    x[: n * 7 // 10] += centre
    x[n * 7 // 10 :] -= centre
    return x.astype(np.float32), (centre + rng.standard_normal(dim)).astype(np.float32)[None]
