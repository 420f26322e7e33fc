"""Shared fixtures. Tests run against the installed package (make test installs it first)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

# ../shared/datasets beside the project root, as CI lays it out.
DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def movielens_dir() -> Path:
    path = DATASETS / "ml-100k"
    if not (path / "u.data").exists():
        pytest.skip(f"MovieLens-100k not found at {path} (../shared/datasets is absent)")
    return path
