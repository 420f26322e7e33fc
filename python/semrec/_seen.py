"""A model's seen-items matrix as its users read it (``interactions_``).

Models keep their interactions in the kernels' layout: an int64 ``indptr`` (more than 2^31
entries fit) beside int32 ``indices`` (half the memory of int64). scipy's own routines
(``tocoo``, ``nonzero``, ``eliminate_zeros``, even ``scipy.sparse.csr_array(m)``) refuse
index arrays of two dtypes, so ``interactions_`` hands out the same matrix with one index
dtype. Its arrays are read-only views of the model's (a write raises instead of changing the
model's history behind its back; a ``.copy()`` is editable). The view is built once per
matrix, and again when the matrix's arrays or shape change (``resize`` grows a matrix in
place) or when whoever holds it resized it or set its arrays. Models that change a user at a
time keep :class:`semrec._histories.Histories` (:class:`KeepsHistories`): a click replaces a
row beside the matrix, which is merged (and its view built) on the next whole read only.
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from semrec._histories import Histories

# id(kernel matrix) -> (its view; the view's read-only indptr, indices and data; the indptr,
# indices and data they were built from); an entry leaves with its matrix (weakref.finalize),
# so the cache never keeps a dropped matrix's arrays alive.
_VIEWS: dict[int, tuple[Any, ...]] = {}
_INT32_MAX = int(np.iinfo(np.int32).max)


def scipy_view(m: sp.csr_array) -> sp.csr_array:
    """``m`` with read-only arrays and one dtype for ``indptr`` and ``indices``: int32 when
    its entries and columns allow it (only ``indptr`` is copied), else int64 (``indices``
    widened).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> m = sp.csr_array(np.eye(3, dtype=np.float32))
    >>> m.indptr = m.indptr.astype(np.int64)  # the kernels' layout
    >>> view = scipy_view(m)
    >>> view.indptr.dtype, view.indices.dtype, view.nonzero()[1].tolist()
    (dtype('int32'), dtype('int32'), [0, 1, 2])
    >>> view.data[0] = 5.0
    Traceback (most recent call last):
    ValueError: assignment destination is read-only
    >>> editable = view.copy()
    >>> editable.data[0] = 5.0
    """
    key = id(m)
    cached = _VIEWS.get(key)
    sources = (m.indptr, m.indices, m.data)
    if cached is None:
        weakref.finalize(m, _VIEWS.pop, key, None)
    elif all(a is b for a, b in zip(cached[4:], sources, strict=True)):
        view, arrays = cached[0], cached[1:4]
        # Reused (a click reads it several times) unless it was resized or its arrays were
        # set by whoever holds it, or the model's matrix was resized in place.
        kept = (view.indptr, view.indices, view.data)
        if view.shape == m.shape and all(a is b for a, b in zip(kept, arrays, strict=True)):
            return view
    arrays = _read_only_arrays(m)
    view = sp.csr_array((arrays[2], arrays[1], arrays[0]), shape=m.shape, copy=False)
    view.has_sorted_indices = m.has_sorted_indices
    view.has_canonical_format = m.has_canonical_format
    _VIEWS[key] = (view, view.indptr, view.indices, view.data, *sources)  # as scipy keeps them
    return view


def _read_only_arrays(m: sp.csr_array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``m``'s indptr, indices and data with one index dtype, as read-only arrays: views of
    ``m``'s own (flags set on new view objects, never on the arrays the model writes)."""
    small = m.nnz <= _INT32_MAX and m.shape[1] <= _INT32_MAX
    index = np.int32 if small else np.int64
    arrays = (m.indptr.astype(index, copy=False), m.indices.astype(index, copy=False), m.data)
    views = tuple(a.view() for a in arrays)
    for view in views:
        view.flags.writeable = False
    return views  # type: ignore[return-value]


class KeepsSeen:
    """Mixin of a model that keeps its seen matrix in ``_seen``, in the kernels' layout:
    ``interactions_`` is its scipy view."""

    _seen: sp.csr_array
    _check_fitted: Callable[[], None]  # Recommender's

    @property
    def interactions_(self) -> sp.csr_array:
        """The training interactions (users x items), with the changes of ``update`` and
        ``fold_in``: read-only views of the model's arrays (a write raises ``ValueError``,
        ``eliminate_zeros`` too); ``.copy()`` it to edit."""
        self._check_fitted()
        return scipy_view(self._seen)


class KeepsHistories:
    """Mixin of a model that keeps its users' histories in ``_histories`` (a
    :class:`semrec._histories.Histories`): ``update`` and ``fold_in`` replace rows in
    O(those rows), reads take rows without a merge, and ``interactions_`` is the scipy view of
    the merged matrix (merged, and its view built, on the first read after a change)."""

    _histories: Histories
    _check_fitted: Callable[[], None]  # Recommender's
    _FITTED_BY: ClassVar[str] = "_histories"

    @property
    def interactions_(self) -> sp.csr_array:
        """The training interactions (users x items), with the changes of ``update`` and
        ``fold_in``: read-only views of the model's arrays (a write raises ``ValueError``,
        ``eliminate_zeros`` too); ``.copy()`` it to edit."""
        self._check_fitted()
        return scipy_view(self._histories.matrix())

    def _shape(self) -> tuple[int, int]:
        return self._histories.n_users, self._histories.n_items  # no merge to find out

    def _seen_rows(self, users: np.ndarray) -> sp.csr_array:
        return self._histories.rows(users)

    def __copy__(self) -> Any:
        # A shallow copy shares the arrays, as before histories changed in place: a click on
        # the copy replaced the copy's matrix only, so it still reaches the copy only.
        out = type(self).__new__(type(self))
        for name, value in vars(self).items():
            vars(out)[name] = copy.copy(value) if isinstance(value, Histories) else value
        return out

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "_seen" in state and "_histories" not in state:  # pickled with one seen CSR
            state = dict(state)
            state["_histories"] = Histories(state.pop("_seen"))
        vars(self).update(state)
