"""A model's seen-items matrix as its users read it (``interactions_``).

Models keep their interactions in the kernels' layout: an int64 ``indptr`` (more than 2^31
entries fit) beside int32 ``indices`` (half the memory of int64). scipy's own routines
(``tocoo``, ``nonzero``, ``eliminate_zeros``, even ``scipy.sparse.csr_array(m)``) refuse
index arrays of two dtypes, so ``interactions_`` hands out the same matrix with one index
dtype. The view shares the entries and the column indices. It is built once per matrix and
built again when the matrix's shape or arrays change (``resize`` grows a matrix in place).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

# id(kernel matrix) -> (its view, the indptr and indices it was built from); an entry leaves
# with its matrix (weakref.finalize), so the cache never keeps a dropped matrix's arrays alive.
_VIEWS: dict[int, tuple[sp.csr_array, np.ndarray, np.ndarray]] = {}
_INT32_MAX = int(np.iinfo(np.int32).max)


def scipy_view(m: sp.csr_array) -> sp.csr_array:
    """``m`` with one dtype for ``indptr`` and ``indices``: int32 when its entries and columns
    allow it (only ``indptr`` is copied), else int64 (``indices`` widened).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> m = sp.csr_array(np.eye(3, dtype=np.float32))
    >>> m.indptr = m.indptr.astype(np.int64)  # the kernels' layout
    >>> view = scipy_view(m)
    >>> view.indptr.dtype, view.indices.dtype, view.nonzero()[1].tolist()
    (dtype('int32'), dtype('int32'), [0, 1, 2])
    >>> scipy_view(m) is view
    True
    """
    if m.indptr.dtype == m.indices.dtype:
        return m
    key = id(m)
    cached = _VIEWS.get(key)
    if cached is not None:
        view, indptr, indices = cached
        same = indptr is m.indptr and indices is m.indices and view.data is m.data
        if same and view.shape == m.shape:
            return view
    else:
        weakref.finalize(m, _VIEWS.pop, key, None)
    view = _one_index_dtype(m)
    _VIEWS[key] = (view, m.indptr, m.indices)
    return view


def _one_index_dtype(m: sp.csr_array) -> sp.csr_array:
    small = m.nnz <= _INT32_MAX and m.shape[1] <= _INT32_MAX
    index = np.int32 if small else np.int64
    out = sp.csr_array(m.shape, dtype=m.dtype)
    out.indptr = m.indptr.astype(index, copy=False)
    out.indices = m.indices.astype(index, copy=False)
    out.data = m.data
    out.has_sorted_indices = m.has_sorted_indices
    out.has_canonical_format = m.has_canonical_format
    return out


class KeepsSeen:
    """Mixin of a model that keeps its seen matrix in ``_seen``, in the kernels' layout:
    ``interactions_`` is its scipy view."""

    _seen: sp.csr_array
    _check_fitted: Callable[[], None]  # Recommender's

    @property
    def interactions_(self) -> sp.csr_array:
        """The training interactions (users x items), with the changes of ``update`` and
        ``fold_in``."""
        self._check_fitted()
        return scipy_view(self._seen)
