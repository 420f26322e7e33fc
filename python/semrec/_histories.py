"""Users' interaction histories that change one user at a time (streaming models).

A canonical users x items CSR plus an overlay of the rows replaced or added since, merged into
a new CSR only once the overlay is a sizeable share of it: a click costs O(that user's
history), not O(all interactions), and whole-matrix reads stay cheap.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import scipy.sparse as sp


class Histories:
    """Per-user histories: a canonical CSR (rows ``[0, base rows)``) plus changed rows.

    Parameters
    ----------
    matrix : scipy.sparse.csr_array
        Canonical (sorted rows, no duplicates; explicit zeros are entries), float32 data,
        int64 ``indptr`` and int32 ``indices``. Kept by reference, never written to.
    square : bool, default False
        The columns are the rows too (a graph among the users, UserKNN's): they grow with them.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from semrec._histories import Histories
    >>> h = Histories(sp.csr_array(np.array([[1, 0, 2]], dtype=np.float32)))
    >>> h.set_row(1, np.array([1], np.int32), np.array([5.0], np.float32))   # a new user
    >>> h.matrix().toarray().tolist()
    [[1.0, 0.0, 2.0], [0.0, 5.0, 0.0]]
    """

    _square = False  # (a class default: histories pickled before it existed are not square)

    def __init__(self, matrix: sp.csr_array, *, square: bool = False) -> None:
        self._base = matrix
        self._changed: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.n_users = int(matrix.shape[0])
        self.n_items = int(matrix.shape[1])
        if square:
            self._square = True
        # Readers merge too (a batch's rows, a whole-matrix read), side by side: one at a time.
        self._lock = threading.RLock()

    def __getstate__(self) -> dict[str, Any]:
        with self._lock:
            return {k: v for k, v in self.__dict__.items() if k != "_lock"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    def __copy__(self) -> Histories:
        """Histories that change apart from these: the arrays are shared (never written to,
        a change replaces a row), the overlay's index is not."""
        with self._lock:
            out = Histories.__new__(Histories)
            out.__setstate__(self.__getstate__())
            out._changed = dict(self._changed)
            return out

    def row(self, user: int) -> tuple[np.ndarray, np.ndarray]:
        """User's current history as (sorted item ids int32, weights float32), read-only."""
        with self._lock:
            return self._row(user)

    def _row(self, user: int) -> tuple[np.ndarray, np.ndarray]:
        if user in self._changed:
            return self._changed[user]
        base = self._base
        if user >= base.shape[0]:
            return np.empty(0, dtype=np.int32), np.empty(0, dtype=np.float32)
        start, end = base.indptr[user], base.indptr[user + 1]
        return base.indices[start:end], base.data[start:end]

    def set_row(self, user: int, indices: np.ndarray, weights: np.ndarray) -> None:
        """Replace (or, for ``user >= n_users``, add) one user's history (sorted ids)."""
        with self._lock:
            # The rows first, then the row: a Ctrl-C between leaves an empty history, never a
            # row past the matrix's end (which a merge cannot place).
            self._grow(user + 1)
            self._changed[user] = (indices, weights)
            self._maybe_merge()

    def set_rows(self, users: np.ndarray, rows: sp.csr_array) -> None:
        """Replace or add the histories of ``users`` (one canonical CSR row each)."""
        with self._lock:
            new = {}
            for pos, u in enumerate(users.tolist()):
                start, end = rows.indptr[pos], rows.indptr[pos + 1]
                new[u] = (rows.indices[start:end].copy(), rows.data[start:end].copy())
            if users.size:
                self._grow(int(users.max()) + 1)
            self._changed.update(new)  # all the rows in one step (Ctrl-C: none of them)
            self._maybe_merge()

    def grow_items(self, n_items: int) -> None:
        """Widen every history to ``n_items`` columns (items added): O(1), no row changes."""
        with self._lock:
            self.n_items = max(self.n_items, int(n_items))

    def _grow(self, n_users: int) -> None:
        n = max(self.n_users, n_users)
        self.n_users, self.n_items = n, n if self._square else self.n_items  # one step

    def structure(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The histories of ``users`` as CSR (indptr int64, indices int32), without a merge
        for a few users."""
        with self._lock:
            if users.size > 64 and self._changed:
                self._merge()
            if self._changed or users.size == 1:
                rows = [self._row(u)[0] for u in users.tolist()]
                indptr = np.zeros(len(rows) + 1, dtype=np.int64)
                np.cumsum([r.size for r in rows], out=indptr[1:])
                indices = rows[0] if len(rows) == 1 else np.concatenate(rows)
                return indptr, np.ascontiguousarray(indices, dtype=np.int32)
            base = self._base
        picked = base[users]
        return picked.indptr.astype(np.int64), picked.indices.astype(np.int32)

    def rows(self, users: np.ndarray) -> sp.csr_array:
        """The histories of ``users`` (weights included), a canonical CSR of shape
        (n, n_items), without a merge: O(their entries), whatever has changed since."""
        users = np.asarray(users, dtype=np.int64)
        with self._lock:
            base, changed = self._base, self._changed
            n_base = base.shape[0]
            hit = np.zeros(users.size, dtype=bool)
            if changed and users.size <= len(changed):
                hit[:] = [u in changed for u in users.tolist()]
            elif changed:
                hit = np.isin(users, np.fromiter(changed, np.int64, len(changed)))
            first = base.indptr[np.minimum(users, n_base)]
            lengths = np.where(hit, 0, base.indptr[np.minimum(users + 1, n_base)] - first)
            patched = np.flatnonzero(hit)
            for pos in patched.tolist():
                lengths[pos] = changed[int(users[pos])][0].size
            # A changed row's run in the base is a placeholder, overwritten below.
            indptr, indices, data = runs(base.indices, base.data, first, lengths)
            for pos in patched.tolist():
                row_indices, row_weights = changed[int(users[pos])]
                indices[indptr[pos] : indptr[pos + 1]] = row_indices
                data[indptr[pos] : indptr[pos + 1]] = row_weights
            n_items = self.n_items
        out = sp.csr_array((users.size, n_items), dtype=np.float32)  # filled, not re-checked
        out.indptr, out.indices, out.data = indptr, indices, data
        out.has_sorted_indices = True
        out.has_canonical_format = True
        return out

    def seen(self, users: np.ndarray) -> sp.csr_array:
        """The pattern of ``users``' histories (entries of 1), a CSR of shape (n, n_items)."""
        indptr, indices = self.structure(users)
        ones = np.ones(indices.size, dtype=np.float32)
        return sp.csr_array((ones, indices, indptr), shape=(users.size, self.n_items))

    def matrix(self) -> sp.csr_array:
        """Every history as one canonical CSR (merging the changed rows first): the model's
        own arrays, handed to users only as ``semrec._seen.scipy_view`` (read-only) of it."""
        with self._lock:
            if self._changed or self._base.shape != (self.n_users, self.n_items):
                self._merge()
            return self._base

    def _maybe_merge(self) -> None:
        # Merging is O(all interactions): only once the overlay is a sizeable share of it.
        if len(self._changed) > max(1024, self.n_users // 8):
            self._merge()

    def _merge(self) -> None:
        """Fold the changed rows into a new canonical CSR (unchanged runs of rows copied whole)."""
        users = sorted(self._changed)
        rows = [self._changed[u] for u in users]
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum([indices.size for indices, _ in rows], out=indptr[1:])
        indices = np.concatenate([r[0] for r in rows]) if rows else np.empty(0, np.int32)
        data = np.concatenate([r[1] for r in rows]) if rows else np.empty(0, np.float32)
        new = _canonical((len(rows), self.n_items), indptr, indices, data)
        shape = (self.n_users, self.n_items)
        self._base = with_rows(self._base, np.array(users, dtype=np.int64), new, shape)
        self._changed = {}


def _canonical(
    shape: tuple[int, int], indptr: np.ndarray, indices: np.ndarray, data: np.ndarray
) -> sp.csr_array:
    out = sp.csr_array(shape, dtype=np.float32)  # filled, not re-checked: canonical arrays
    out.indptr, out.indices, out.data = indptr, indices, data
    out.has_sorted_indices = True
    out.has_canonical_format = True
    return out


def with_rows(
    m: sp.csr_array, rows: np.ndarray, new: sp.csr_array, shape: tuple[int, int]
) -> sp.csr_array:
    """A new canonical CSR of ``shape`` (at least ``m``'s): ``m`` with its ``rows`` (sorted,
    unique) replaced by ``new``'s, one each; rows past ``m``'s last are empty. Unchanged runs of
    rows are copied whole, never re-sorted; ``m`` is not modified."""
    n_old = m.shape[0]
    if not rows.size:  # rows added at the end (or columns): the entries are shared
        indptr = m.indptr
        if shape[0] > n_old:
            indptr = np.full(shape[0] + 1, m.indptr[-1], dtype=np.int64)
            indptr[: n_old + 1] = m.indptr
        return _canonical(shape, indptr, m.indices, m.data)
    lengths = np.zeros(shape[0], dtype=np.int64)
    lengths[:n_old] = np.diff(m.indptr)
    lengths[rows] = np.diff(new.indptr)
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    indices = np.empty(indptr[-1], dtype=np.int32)
    data = np.empty(indptr[-1], dtype=np.float32)
    if rows.size <= 1024:  # a few rows: copy the runs between them

        def copy(first: int, last: int) -> None:  # m's rows [first, last)
            last = min(last, n_old)
            if first < last:
                src = slice(m.indptr[first], m.indptr[last])
                dst = slice(indptr[first], indptr[last])
                indices[dst], data[dst] = m.indices[src], m.data[src]

        following = 0
        for pos, r in enumerate(rows.tolist()):
            copy(following, r)
            dst = slice(indptr[r], indptr[r + 1])
            src = slice(new.indptr[pos], new.indptr[pos + 1])
            indices[dst], data[dst] = new.indices[src], new.data[src]
            following = r + 1
        copy(following, n_old)
    else:  # many: place every entry by masks over the rows changed
        changed = np.zeros(shape[0], dtype=bool)
        changed[rows] = True
        kept = ~np.repeat(changed[:n_old], np.diff(m.indptr))
        placed = np.repeat(changed, lengths)
        indices[~placed], data[~placed] = m.indices[kept], m.data[kept]
        indices[placed], data[placed] = new.indices, new.data
    return _canonical(shape, indptr, indices, data)


def runs(
    indices: np.ndarray, data: np.ndarray, first: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The runs ``[first[r], first[r] + lengths[r])`` of a CSR's ``indices`` and ``data``, one
    after another, as a CSR's (int64 indptr, int32 indices, float32 data): O(rows + entries
    taken). A run past the arrays' end is clipped to their last entry (the caller's to fill).

    Examples
    --------
    >>> import numpy as np
    >>> from semrec._histories import runs
    >>> runs(np.array([4, 5, 6]), np.ones(3), np.array([2, 0]), np.array([1, 2]))[:2]
    (array([0, 1, 3]), array([6, 4, 5], dtype=int32))
    """
    indptr = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    # Each entry's place: its run's start, plus its rank in the run.
    source = np.arange(indptr[-1], dtype=np.int64)
    source += np.repeat(first - indptr[:-1], lengths)
    if not indices.size:  # nothing to take from: every run is the caller's to fill
        return indptr, np.empty(source.size, np.int32), np.empty(source.size, np.float32)
    taken = np.take(indices, source, mode="clip").astype(np.int32, copy=False)
    return indptr, taken, np.take(data, source, mode="clip").astype(np.float32, copy=False)


class RowBuffer:
    """A matrix (or any array) that grows by rows with spare capacity, so that adding one row
    is O(row).

    ``grow(n)`` returns a view of the first ``max(n, rows)`` rows; new rows hold ``fill``.

    Examples
    --------
    >>> import numpy as np
    >>> from semrec._histories import RowBuffer
    >>> buffer = RowBuffer(np.ones((2, 3), np.float32), fill=np.zeros(3, np.float32))
    >>> buffer.grow(3).tolist()
    [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]
    """

    def __init__(self, rows: np.ndarray, fill: np.ndarray) -> None:
        self.rows = rows
        self.fill = fill
        self._buffer: np.ndarray | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Pickles and copies hold the used rows once (``rows`` is the owner's array too, so
        # pickle's memo shares it), not the spare ones: the next ``grow`` makes room anew.
        return {"rows": self.rows, "fill": self.fill, "_buffer": None}

    def grow(self, n: int) -> np.ndarray:
        old = self.rows
        if n <= old.shape[0]:
            return old
        buffer = self._buffer
        if buffer is None or buffer.shape[0] < n or old.base is not buffer:
            capacity = max(n, old.shape[0] + old.shape[0] // 2 + 16)
            buffer = np.zeros((capacity, *old.shape[1:]), dtype=old.dtype)  # any row shape
            buffer[: old.shape[0]] = old
        # The new rows filled before they show, and shown in one step: a Ctrl-C in between
        # leaves the rows as they were (the next grow finishes the work).
        buffer[old.shape[0] : n] = self.fill
        self._buffer, self.rows = buffer, buffer[:n]
        return self.rows
