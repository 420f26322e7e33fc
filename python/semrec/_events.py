"""The events a streaming model has seen, kept in order (who, what, how much, when).

``EventLog`` grows by amortised O(1) appends; ``events_matrix`` turns events into a canonical
users x items CSR in which every (user, item) pair with an event has an entry, a sum of 0
included: an item whose like and dislike cancel is still an item the user has seen.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from semrec import _validation as check


class EventLog:
    """Every event the model has seen, in order, in growable arrays (amortised O(1) append)."""

    def __init__(self, capacity: int = 1024) -> None:
        self._n = 0
        self._users = np.empty(capacity, dtype=np.int32)
        self._items = np.empty(capacity, dtype=np.int32)
        self._weights = np.empty(capacity, dtype=np.float32)
        self._times = np.empty(capacity, dtype=np.float64)

    @classmethod
    def from_arrays(
        cls, users: np.ndarray, items: np.ndarray, weights: np.ndarray, times: np.ndarray
    ) -> EventLog:
        log = cls(max(1024, users.size))
        log.extend(users, items, weights, times)
        return log

    def __len__(self) -> int:
        return self._n

    def _reserve(self, n: int) -> None:
        if n <= self._users.size:
            return
        capacity = max(n, 2 * self._users.size)
        for name in ("_users", "_items", "_weights", "_times"):
            old = getattr(self, name)
            new = np.empty(capacity, dtype=old.dtype)
            new[: self._n] = old[: self._n]
            setattr(self, name, new)

    def append(self, user: int, item: int, weight: float, t: float) -> None:
        self._reserve(self._n + 1)
        n = self._n
        self._users[n], self._items[n], self._weights[n], self._times[n] = user, item, weight, t
        self._n = n + 1

    def extend(
        self, users: np.ndarray, items: np.ndarray, weights: np.ndarray, times: np.ndarray
    ) -> None:
        m = users.size
        self._reserve(self._n + m)
        end = self._n + m
        self._users[self._n : end] = users
        self._items[self._n : end] = items
        self._weights[self._n : end] = weights
        self._times[self._n : end] = times
        self._n = end

    def arrays(self, part: slice) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        n = self._n
        return (
            self._users[:n][part],
            self._items[:n][part],
            self._weights[:n][part],
            self._times[:n][part],
        )

    def of_user(self, user: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        users, items, weights, times = self.arrays(slice(None))
        mine = users == user
        return items[mine], weights[mine], times[mine]

    def remove_users(self, users: np.ndarray) -> None:
        keep = ~np.isin(self._users[: self._n], users)
        kept = [a[: self._n][keep] for a in (self._users, self._items, self._weights, self._times)]
        self._n = 0
        self.extend(*kept)

    def matrix(self, part: slice, shape: tuple[int, int]) -> sp.csr_array:
        """Summed weights of a slice of the log as a users x items CSR; every item with an
        event has an entry (a sum of 0 included: it is seen)."""
        users, items, weights, _ = self.arrays(part)
        return events_matrix(users, items, weights, shape)


def csr_rows(m: sp.csr_array, rows: np.ndarray) -> sp.csr_array:
    """``m[rows]`` in O(selected entries); scipy's fancy indexing copies the whole indptr."""
    starts = m.indptr[rows]
    counts = m.indptr[rows + 1] - starts
    indptr = np.zeros(rows.size + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    pos = np.arange(indptr[-1]) + np.repeat(starts - indptr[:-1], counts)
    return sp.csr_array((m.data[pos], m.indices[pos], indptr), shape=(rows.size, m.shape[1]))


def events_matrix(
    users: np.ndarray, items: np.ndarray, weights: np.ndarray, shape: tuple[int, int]
) -> sp.csr_array:
    """Events as a canonical users x items CSR: weights of repeated pairs summed, an entry for
    every pair with an event (sums of 0 kept)."""
    order = np.argsort(users, kind="stable")
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(users, minlength=shape[0]), out=indptr[1:])
    raw = sp.csr_array((weights[order], items[order], indptr), shape=shape)
    return check.canonical_csr(raw, "events", allow_empty=True)


class TailIndex:
    """The events logged after the consolidated seen matrix (from ``start`` on), by user,
    indexed as they arrive.

    A click then reads its user's few later items instead of scanning the whole tail (a tail of
    60k events took about 80 us per click to scan). Between consolidations the log only
    grows at its end (a fold-in that rewrites users drops the matrix, and the next read
    consolidates, which starts a new index).
    """

    def __init__(self, start: int) -> None:
        self.start = start  # the log's events before it are in the matrix
        self.upto = start
        self.by_user: dict[int, list[int]] = {}

    def logged(self, user: int, item: int, log: EventLog) -> None:
        """``log`` has just taken the event (user, item): indexed now if the index was current
        (a click; a later ``items_of`` would read it back from the log's arrays)."""
        if self.upto == len(log) - 1:
            self.by_user.setdefault(user, []).append(item)
            self.upto += 1

    def items_of(self, user: int, log: EventLog) -> list[int]:
        """``user``'s items among ``log``'s events since the matrix (the new ones indexed first)."""
        if self.upto < len(log):
            users, items, _, _ = log.arrays(slice(self.upto, None))
            for u, i in zip(users.tolist(), items.tolist(), strict=True):
                self.by_user.setdefault(u, []).append(i)
            self.upto = len(log)
        return self.by_user.get(user, [])
