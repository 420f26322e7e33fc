"""``interactions_`` as scipy reads it: the kernels' CSR (int64 indptr, int32 indices) shown
with one index dtype, sharing the entries, built once per matrix and freed with it."""

from __future__ import annotations

import gc

import numpy as np
import pytest
import scipy.sparse as sp

from semrec import _seen
from semrec._validation import canonical_csr


def _kernel_matrix() -> sp.csr_array:
    dense = np.array([[0, 2, 0, 1], [0, 0, 0, 0], [3, 0, 0.5, 0]], dtype=np.float32)
    m = canonical_csr(sp.csr_array(dense))
    assert (m.indptr.dtype, m.indices.dtype) == (np.int64, np.int32)
    return m


def test_the_view_is_the_same_matrix_with_one_index_dtype() -> None:
    m = _kernel_matrix()
    view = _seen.scipy_view(m)
    assert view.indptr.dtype == view.indices.dtype == np.int32
    np.testing.assert_array_equal(view.toarray(), m.toarray())
    assert view.indices is m.indices and view.data is m.data  # shared, not copied
    rows, cols = view.nonzero()
    assert list(zip(rows.tolist(), cols.tolist(), strict=True)) == [(0, 1), (0, 3), (2, 0), (2, 2)]
    assert _seen.scipy_view(m) is view  # built once per matrix
    m.data[0] = 7.0  # an in-place weight change (TextCF's update) shows through
    assert view[0, 1] == 7.0


def test_the_view_follows_a_matrix_resized_in_place() -> None:
    m = _kernel_matrix()
    before = _seen.scipy_view(m)
    m.resize((5, 6))  # what ContentRecommender does when users and items are added
    after = _seen.scipy_view(m)
    assert after.shape == (5, 6) and before.shape == (3, 4)
    np.testing.assert_array_equal(after.toarray(), m.toarray())
    m.indptr = m.indptr.copy()  # arrays replaced: built again
    assert _seen.scipy_view(m) is not after


def test_entries_beyond_int32_widen_both_index_arrays(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_seen, "_INT32_MAX", 3)  # as if the matrix held more than 2^31 entries
    m = _kernel_matrix()
    view = _seen.scipy_view(m)
    assert view.indptr.dtype == view.indices.dtype == np.int64
    np.testing.assert_array_equal(sp.csr_array(view).tocoo().toarray(), m.toarray())


def test_a_view_leaves_with_its_matrix() -> None:
    m = _kernel_matrix()
    _seen.scipy_view(m)
    key = id(m)
    assert key in _seen._VIEWS
    del m
    gc.collect()
    assert key not in _seen._VIEWS


def test_a_matrix_with_one_index_dtype_is_its_own_view() -> None:
    m = sp.csr_array(np.eye(3, dtype=np.float32))
    assert _seen.scipy_view(m) is m
