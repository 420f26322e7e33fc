"""The events a streaming model has seen, kept in order (who, what, how much, when).

``EventLog`` grows by amortised O(1) appends; ``events_matrix`` turns events into a canonical
users x items CSR in which every (user, item) pair with an event has an entry, a sum of 0
included: an item whose like and dislike cancel is still an item the user has seen;
``merged_tail`` changes a few rows of such a CSR without sorting the others (``with_rows``);
``add_events`` applies events grouped by user to a streaming state, in chunks;
``logged_update`` gives one event to a state and a log together, Ctrl-C or not.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from tqdm import tqdm

from semrec import _validation as check
from semrec._histories import with_rows

if TYPE_CHECKING:
    from semrec.interest import StreamingProfiles

# add_events adds users in this many chunks (progress bar steps, Ctrl-C checks between them).
_FIT_CHUNKS = 32
_MIN_CHUNK = 4096
# Weights from here on are inf in float32 (half an ulp past its largest).
_PAST_FLOAT32 = 2.0**128 - 2.0**103


class EventLog:
    """Every event the model has seen, in order, in growable arrays (amortised O(1) append),
    chained by user (each event knows its user's previous one): a user's events are read in
    O(their number), not by scanning the log."""

    def __init__(self, capacity: int = 1024) -> None:
        self._n = 0
        self._users = np.empty(capacity, dtype=np.int32)
        self._items = np.empty(capacity, dtype=np.int32)
        self._weights = np.empty(capacity, dtype=np.float32)
        self._times = np.empty(capacity, dtype=np.float64)
        self._prev = np.empty(capacity, dtype=np.int64)  # the user's previous event, or -1
        self._last = np.full(1024, -1, dtype=np.int64)  # each user's latest event, or -1
        self._count = np.zeros(1024, dtype=np.int64)  # each user's number of events

    @classmethod
    def from_arrays(
        cls,
        users: np.ndarray,
        items: np.ndarray,
        weights: np.ndarray,
        times: np.ndarray,
        order: np.ndarray | None = None,
    ) -> EventLog:
        """A log of these events; ``order``: a stable argsort of ``users`` if the caller has one."""
        log = cls(max(1024, users.size))
        log.extend(users, items, weights, times, order)
        return log

    def __len__(self) -> int:
        return self._n

    def _reserve(self, n: int, n_users: int = 0) -> None:
        # Ctrl-C may land between any two statements: each array's size is checked on its own
        # (a growth left half done is finished by the next call), and the new arrays replace
        # the old ones in one statement, once all are made.
        if n_users > (users := min(self._last.size, self._count.size)):
            size = max(n_users, 2 * users)
            self._last, self._count = _grown(self._last, size, -1), _grown(self._count, size, 0)
        arrays = (self._users, self._items, self._weights, self._times, self._prev)
        if n > (have := min(values.size for values in arrays)):
            grown = [_grown(values, max(n, 2 * have), None, self._n) for values in arrays]
            self._users, self._items, self._weights, self._times, self._prev = grown

    def append(self, user: int, item: int, weight: float, t: float) -> None:
        """Log one event, whole or not at all: nothing shows before its last statement (a
        Ctrl-C lands between statements, never inside one)."""
        self._reserve(self._n + 1, user + 1)
        n = self._n
        self._users[n], self._items[n], self._weights[n], self._times[n] = user, item, weight, t
        self._prev[n] = self._last[user]  # (place n is past the log's end until it is counted)
        self._last[user], self._count[user], self._n = n, self._count[user] + 1, n + 1

    def undo_append(self, n: int) -> None:
        """Take back the event :meth:`append` put at place ``n`` if it is the last one (else the
        append did not happen: nothing to do). In one statement, so it may be retried."""
        if self._n == n + 1:
            user = int(self._users[n])
            self._last[user], self._count[user], self._n = self._prev[n], self._count[user] - 1, n

    def extend(
        self,
        users: np.ndarray,
        items: np.ndarray,
        weights: np.ndarray,
        times: np.ndarray,
        order: np.ndarray | None = None,
    ) -> None:
        m = users.size
        self._reserve(self._n + m, int(users.max()) + 1 if m else 0)
        start, end = self._n, self._n + m
        self._users[start:end] = users
        self._items[start:end] = items
        self._weights[start:end] = weights
        self._times[start:end] = times
        if m:  # chained user by user: events grouped by user, in log order within a group
            if order is None and not (users[1:] >= users[:-1]).all():  # (fit's are sorted)
                order = np.argsort(users, kind="stable")
            grouped = users if order is None else users[order]
            at = np.arange(start, end) if order is None else start + order
            first = np.ones(m, dtype=bool)
            first[1:] = grouped[1:] != grouped[:-1]
            prev = np.empty(m, dtype=np.int64)
            prev[1:] = at[:-1]
            prev[first] = self._last[grouped[first]]
            self._prev[at] = prev
            last = np.append(first[1:], True)
            self._last[grouped[last]] = at[last]
            self._count[grouped[first]] += np.diff(np.append(np.flatnonzero(first), m))
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
        """``user``'s (items, weights, times), in log order."""
        at = self._positions(np.array([user]))
        return self._items[at], self._weights[at], self._times[at]

    def _positions(self, users: np.ndarray) -> np.ndarray:
        """The places of the events of ``users`` (distinct), sorted: their chains walked, or for
        many events (a long walk in Python) the log scanned."""
        users = users[users < self._count.size]
        count = int(self._count[users].sum())
        if count > 4096:
            return np.flatnonzero(np.isin(self._users[: self._n], users))
        at, filled, prev = np.empty(count, dtype=np.int64), 0, self._prev
        for user in users.tolist():
            p = int(self._last[user])
            while p >= 0:
                at[filled], p = p, int(prev[p])
                filled += 1
        return np.sort(at)

    def remove_users(self, users: np.ndarray) -> np.ndarray:
        """Drop every event of ``users`` (distinct); returns the places they had (sorted)."""
        gone = self._positions(users)
        if gone.size:  # the events before the first one gone keep their places
            n, first, size = self._n, int(gone[0]), self._n - gone.size
            names = ("_users", "_items", "_weights", "_times", "_prev")
            if gone.size <= 64:  # a few: move each run between them up, whole
                ends = [*gone.tolist(), n]
                for values in (getattr(self, name) for name in names):
                    for j, (lo, hi) in enumerate(itertools.pairwise(ends)):
                        values[lo - j : hi - j - 1] = values[lo + 1 : hi]
            else:
                keep = np.ones(n - first, dtype=bool)
                keep[gone - first] = False
                for values in (getattr(self, name) for name in names):
                    values[first:size] = values[first:n][keep]
            prev = self._prev[first:size]  # the users' earlier events moved up too
            self._prev[first:size] = np.where(prev >= 0, prev - np.searchsorted(gone, prev), -1)
            known = users[users < self._last.size]
            self._last[known], self._count[known] = -1, 0
            moved = self._last >= first
            self._last[moved] -= np.searchsorted(gone, self._last[moved])
            self._n = size
        return gone

    def matrix(self, part: slice, shape: tuple[int, int]) -> sp.csr_array:
        """Summed weights of a slice of the log as a users x items CSR; every item with an
        event has an entry (a sum of 0 included: it is seen)."""
        users, items, weights, _ = self.arrays(part)
        return events_matrix(users, items, weights, shape)


def _grown(old: np.ndarray, size: int, fill: int | None, used: int | None = None) -> np.ndarray:
    """``old`` if it has ``size`` entries, else a new array of ``size`` starting with its first
    ``used`` (default all), the rest ``fill`` (``None``: left unset)."""
    if old.size >= size:
        return old
    new = np.empty(size, old.dtype) if fill is None else np.full(size, fill, old.dtype)
    used = old.size if used is None else used
    new[:used] = old[:used]
    return new


def logged_update(
    stream: StreamingProfiles, log: EventLog, user: int, item: int, weight: float, t: float
) -> None:
    """One event into ``stream`` and ``log`` together: both take it or neither does, whatever
    interrupts it (Ctrl-C included).

    The log's append is taken back exactly, the stream's update cannot be (its clock never goes
    back), so it comes last. A refusal (ValueError) changes nothing in the stream: the append is
    taken back. Anything else interrupts the stream's update before or after it took the event,
    which cannot be told apart: the user's profile is then rebuilt from the log, which keeps it.
    """
    start = len(log)
    try:
        if abs(weight) < _PAST_FLOAT32:
            log.append(user, item, weight, t)
        else:  # inf in the log's float32, which the stream refuses: no overflow warning
            with np.errstate(over="ignore"):
                log.append(user, item, weight, t)
        stream.update(user, item, weight, t)
    except ValueError:
        _finish(log.undo_append, start)
        raise
    except BaseException:
        if len(log) > start:
            _finish(_rebuild, stream, log, user, start)
        raise


def _rebuild(stream: StreamingProfiles, log: EventLog, user: int, start: int) -> None:
    """``user``'s profile made again from their logged events (with the one at ``start``, or if
    the stream refuses it, without): the same profile whether it was applied before or not."""
    try:
        _replay_user(stream, log, user)
    except ValueError:  # a sum past float32's range: an event the stream would have refused
        log.undo_append(start)
        _replay_user(stream, log, user)


def _replay_user(stream: StreamingProfiles, log: EventLog, user: int) -> None:
    items, weights, times = log.of_user(user)
    users = np.full(items.size, user, dtype=np.int64)
    reset = np.array([user]) if user < stream.n_users else None
    stream.update_many(users, items, weights, times, reset=reset, name="weight")


def _finish(step: Callable[..., None], *args: Any) -> None:
    """``step(*args)`` (which may be done again) run to its end: a Ctrl-C pressed again while
    an interrupted update is set right is part of the one already being raised."""
    while True:
        try:
            return step(*args)
        except KeyboardInterrupt:
            continue


def add_events(
    stream: StreamingProfiles,
    events: tuple[np.ndarray, ...],
    n_users: int,
    name: str,
    *,
    show: bool,
) -> None:
    """Every user's events (indptr, indices, weights, times) into a new stream, in chunks
    (a progress bar if ``show``, Ctrl-C between); ``name`` is what an overflow's message calls
    them. Weight-0 events move no profile, but their times set the clock ("now") as others do."""
    indptr, indices, weights, times = events
    stream.grow(n_users)
    step = max(_MIN_CHUNK, -(-n_users // _FIT_CHUNKS))
    with tqdm(total=n_users, desc="profiles", unit="user", disable=not show) as bar:
        for first in range(0, n_users, step):
            last = min(n_users, first + step)
            lo, hi = indptr[first], indptr[last]
            chunk = sp.csr_array((last - first, stream.n_items), dtype=np.float32)
            chunk.indptr, chunk.indices = indptr[first : last + 1] - lo, indices[lo:hi]
            chunk.data = weights[lo:hi]
            stream.add_rows(chunk, times[lo:hi], first_user=first, name=name)
            bar.update(last - first)


def csr_rows(m: sp.csr_array, rows: np.ndarray, n_cols: int | None = None) -> sp.csr_array:
    """``m[rows]`` in O(selected entries) (scipy's fancy indexing copies the whole indptr), with
    ``n_cols`` columns (default ``m``'s); rows past ``m``'s last are empty."""
    n = m.shape[0]
    starts = m.indptr[np.minimum(rows, n)]
    counts = m.indptr[np.minimum(rows + 1, n)] - starts
    indptr = np.zeros(rows.size + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    pos = np.arange(indptr[-1]) + np.repeat(starts - indptr[:-1], counts)
    shape = (rows.size, m.shape[1] if n_cols is None else n_cols)
    return sp.csr_array((m.data[pos], m.indices[pos], indptr), shape=shape)


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


def merged_tail(
    seen: sp.csr_array, log: EventLog, start: int, shape: tuple[int, int]
) -> sp.csr_array:
    """``seen`` (the sums of ``log``'s events before ``start``) plus the later events, as a new
    canonical CSR of ``shape``: only the rows with later events are summed and sorted again."""
    users, items, weights, _ = log.arrays(slice(start, None))
    rows = np.unique(users)
    tail = events_matrix(np.searchsorted(rows, users), items, weights, (rows.size, shape[1]))
    return with_rows(seen, rows, check.summed(csr_rows(seen, rows, shape[1]), tail), shape)


def emptied(seen: sp.csr_array, users: np.ndarray) -> sp.csr_array:
    """``seen`` with the rows of ``users`` (those it has) emptied, as a new CSR."""
    rows = np.unique(users[users < seen.shape[0]])
    empty = sp.csr_array((rows.size, seen.shape[1]), dtype=np.float32)
    return with_rows(seen, rows, empty, seen.shape)


class TailIndex:
    """The events logged after the consolidated seen matrix (from ``start`` on), by user,
    indexed as they arrive.

    A click then reads its user's few later items instead of scanning the whole tail (a tail of
    60k events took about 80 us per click to scan). Between consolidations the log grows at
    its end, or loses every event of the users a fold-in rewrites (``dropped``).
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

    def dropped(self, gone: np.ndarray, users: np.ndarray) -> None:
        """The log has lost its events at the places ``gone`` (sorted), all of ``users``'."""
        self.start -= int(np.searchsorted(gone, self.start))
        self.upto -= int(np.searchsorted(gone, self.upto))
        for user in users.tolist():
            self.by_user.pop(user, None)

    def items_of(self, user: int, log: EventLog) -> list[int]:
        """``user``'s items among ``log``'s events since the matrix (the new ones indexed first)."""
        if self.upto < len(log):
            users, items, _, _ = log.arrays(slice(self.upto, None))
            for u, i in zip(users.tolist(), items.tolist(), strict=True):
                self.by_user.setdefault(u, []).append(i)
            self.upto = len(log)
        return self.by_user.get(user, [])
