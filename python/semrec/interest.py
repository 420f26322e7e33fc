"""User-interest profiles from item embeddings (C++ kernel: ``cpp/semrec/interest.cpp``).

A user's profile is the direction of the weighted, time-decayed sum of the embeddings of the
items in their history::

    profile_u = normalise( sum_i  w_ui * 0.5 ** ((t_now - t_ui) / half_life) * e_i )

Weights may be negative (dislikes push the profile away from an item). A user with no history,
or whose likes and dislikes cancel, gets the zero vector. "Cancel" is measured in float32: a
sum whose norm is at most 1e-5 of the mass that went into it (the sum of ``|w_ui| * decay *
||e_i||``) is taken for the rounding residue of a cancellation and reported as zero. With unit
weights and unit items, one net like survives up to ~10^5 cancelled events; a like of weight
1 beside a like and a dislike of 10^5 each on one item does not.

Every decay factor shares the factor ``0.5 ** (t_now / half_life)``, so the normalised
direction does not depend on ``t_now``: the kernels keep each user's sum relative to a
reference time of its own (never overflowing however far apart the timestamps are), and a
streaming state absorbs one event in O(dim), in any time order, with the same result as the
batch computation.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import scipy.sparse as sp

from semrec import _hyperparameters as hyperparameters
from semrec import _validation as check
from semrec._native import core
from semrec._threads import resolve_num_threads

Method = TypeVar("Method", bound=Callable[..., Any])


def _serialised(method: Method) -> Method:
    """``method`` run under the state's lock, if it has one: one call at a time, so that no
    read (``profiles`` of many users runs without the GIL) meets a change that resizes the
    native arrays. A plain reentrant lock costs a click ~0.2 us, a shared-read lock ~4 us."""

    @functools.wraps(method)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        lock = self._lock
        if lock is None:  # the caller serialises its calls (the models hold their own lock)
            return method(self, *args, **kwargs)
        with lock:
            return method(self, *args, **kwargs)

    return locked  # type: ignore[return-value]


def user_profiles(
    interactions: sp.csr_array | sp.csr_matrix,
    item_embeddings: np.ndarray,
    *,
    timestamps: np.ndarray | None = None,
    t_now: float | None = None,
    half_life: float | None = None,
    num_threads: int | None = None,
    name: str = "interactions",
) -> np.ndarray:
    """L2-normalised interest profile of every user (row) of a users x items matrix.

    Parameters
    ----------
    interactions : scipy.sparse CSR, shape (n_users, n_items)
        Interaction weights (ratings, counts, ``-1`` for a dislike). Every stored entry is one
        event: duplicates add up, explicit zeros contribute nothing, rows need not be sorted.
    item_embeddings : ndarray of float32, shape (n_items, dim)
        One C-contiguous row per item (used as given; normalise them first for cosine-style
        profiles).
    timestamps : 1-D array of int or float, optional
        One time per stored entry, aligned with ``interactions.data``. Needed for ``half_life``.
    t_now : float, optional
        The time the profiles are computed at. It does not change the result (the decay factor
        it contributes is common to every event and cancels in the normalisation); accepted so
        that code can state it.
    half_life : float, optional
        An event ``half_life`` older than another counts half as much (same unit as
        ``timestamps``). ``None``: no decay, a plain weighted sum.
    num_threads : int, optional
        ``None`` uses :func:`semrec.get_num_threads`, ``0`` all cores. The result does not
        depend on it.
    name : str, default "interactions"
        What error messages call ``interactions`` (a caller's own argument).

    Returns
    -------
    ndarray of float32, shape (n_users, dim)
        Unit rows, or zero rows for users without (net) history (a sum at most 1e-5 of the
        mass that went into it counts as cancelled: see the module's notes).

    Raises
    ------
    TypeError
        Not a CSR matrix, wrong dtypes.
    ValueError
        Shape mismatch, NaN/inf weights, embeddings or timestamps, bad ``half_life``,
        ``half_life`` without ``timestamps``, malformed CSR, a profile whose sum overflows
        float32.
    IndexError
        An item id outside the embedding matrix.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from semrec.interest import user_profiles
    >>> emb = np.eye(3, dtype=np.float32)
    >>> likes = sp.csr_array(np.array([[2, 0, 0], [1, 1, 0]], dtype=np.float32))
    >>> user_profiles(likes, emb).astype(float).round(3).tolist()
    [[1.0, 0.0, 0.0], [0.707, 0.707, 0.0]]
    """
    x, _ = check.as_float32_matrix(item_embeddings, "item_embeddings")
    decay = half_life_value(half_life)
    if t_now is not None:
        check.number(t_now, "t_now")
    indptr, indices, weights = check.events(interactions, name, x.shape[0])
    times = check.timestamps(timestamps, weights.size)
    if decay and times is None:
        raise ValueError("half_life needs timestamps (one per stored interaction)")
    profiles = core.interest_profiles(
        indptr, indices, weights, times, x, decay, resolve_num_threads(num_threads)
    )
    if not np.isfinite(profiles).all():  # float32 sums past 3.4e38 (inf, or inf - inf = NaN)
        user = int(np.flatnonzero(~np.isfinite(profiles).all(axis=1))[0])
        raise ValueError(
            f"{name}: user {user}'s profile overflows float32 (the weighted sum of its item "
            "vectors passes 3.4e38); divide the embeddings or the weights by a common factor"
        )
    return profiles


class StreamingProfiles:
    """Interest profiles updated one event at a time, equal to :func:`user_profiles`.

    Each user keeps a decayed running sum, so an event costs O(dim) whatever the history
    length, events may arrive out of time order, and the profile always equals the batch
    computation over the same events. New users appear when an event names them.

    Parameters
    ----------
    item_embeddings : ndarray of float32, shape (n_items, dim)
        One C-contiguous row per item (copied unless ``copy=False``; :meth:`add_items`
        appends).
    half_life : float, optional
        Time decay as in :func:`user_profiles`; ``None`` for a plain weighted sum.
    n_users : int, default 0
        Users known from the start (more appear with their first event).
    num_threads : int, optional
        Threads for :meth:`profiles` over many users.
    thread_safe : bool, default True
        Take a lock around every call, so that threads may read and update at once (they take
        turns). ``False`` drops it, for a caller that never calls from two threads at a time or
        serialises the calls itself, as the models do with their own lock.
    copy : bool, default True
        Keep a copy of ``item_embeddings``. ``False`` keeps a reference instead (no second
        copy of a large catalogue), which the caller may still edit: :meth:`update_many` then
        bounds the norms of each batch's item rows anew (O(events x dim)) instead of once.

    Attributes
    ----------
    item_embeddings : ndarray of float32, shape (n_items, dim)
        Read-only.
    n_users : int
    latest : float
        The latest event time seen (0.0 before any timed event): "now" for an event given
        without a time.
    timed : bool
        Whether an event with a time has been seen (with a ``half_life``, "now" exists).

    Notes
    -----
    Thread-safe (unless ``thread_safe=False``): calls from several threads take turns, so a
    read (:meth:`profiles` of many users runs without the GIL) never meets a change
    (:meth:`update`, :meth:`update_many`, :meth:`add_rows`, :meth:`reset`, :meth:`grow`,
    :meth:`add_items`) that resizes the state.

    With a ``half_life``, "now" (an event without a time) exists only once an event with a
    time has been seen: until then :meth:`update` without ``t`` (and :meth:`update_many`
    without ``times``) is refused (ValueError), since an event dated 0 would count nothing
    next to one dated in epoch seconds. Without a ``half_life`` times play no part.

    Examples
    --------
    >>> import numpy as np
    >>> from semrec.interest import StreamingProfiles
    >>> state = StreamingProfiles(np.eye(3, dtype=np.float32), half_life=10.0)
    >>> state.update(0, 1, t=0.0)
    >>> state.update(0, 2, t=10.0)          # one half-life later: counts twice as much
    >>> state.profile(0).astype(float).round(3).tolist()
    [0.0, 0.447, 0.894]
    >>> state.update_many([1, 1], [0, 2], weights=[1.0, -1.0], times=[10.0, 10.0])
    >>> state.n_users
    2
    """

    def __init__(
        self,
        item_embeddings: np.ndarray,
        *,
        half_life: float | None = None,
        n_users: int = 0,
        num_threads: int | None = None,
        thread_safe: bool = True,
        copy: bool = True,
    ) -> None:
        x, _ = check.as_float32_matrix(item_embeddings, "item_embeddings")
        if x.shape[1] == 0:
            raise ValueError("item_embeddings must have at least one column")
        resolve_num_threads(num_threads)  # refused now, not at the first profiles() of many
        # profiles() of many users runs without the GIL, where another thread's update could
        # reallocate the state's arrays under it: calls take turns.
        self._lock = threading.RLock() if check.flag(thread_safe, "thread_safe") else None
        self.half_life = half_life
        self.num_threads = num_threads
        self._timed = False  # whether an event with a time was applied: "now" exists
        # update_many's bound of the item norms can be computed once only for rows of our own:
        # the caller may edit theirs, and an unchecked event could then overflow (inf/NaN).
        self._own = check.flag(copy, "copy")  # copy=None or "" would share the caller's array
        self._set_items(x.copy() if self._own else x)
        self._norm: float | None = None  # bounds the item norms, computed when first needed
        self._state = core.InterestState(x.shape[1], half_life_value(half_life))
        if n_users:
            self.grow(n_users)

    def __reduce_ex__(self, protocol: Any) -> Any:
        # The sums live in the C++ core: a shallow copy would share them, a deep one cannot
        # reach them. Refused with a way out rather than Python's "cannot pickle" message.
        raise TypeError(
            "a StreamingProfiles cannot be copied or pickled (its state lives in semrec's C++ "
            "core); build a new one and replay the events with update_many, or use a "
            "ContentRecommender, which pickles and saves"
        )

    def __repr__(self) -> str:
        return (
            f"StreamingProfiles(n_items={self.n_items}, dim={self.dim}, "
            f"half_life={self.half_life!r}, n_users={self.n_users})"
        )

    @property
    def item_embeddings(self) -> np.ndarray:
        """The item matrix events refer to, shape (n_items, dim): a read-only view (an edit
        in place would reach the profiles but not a model's search index)."""
        return self._view

    def _set_items(self, x: np.ndarray) -> None:
        self._items = x
        # One view per array: a search index rebuilds when handed another object.
        self._view = x.view()
        self._view.flags.writeable = False

    @property
    @_serialised
    def n_users(self) -> int:
        """Users with a profile (known from the start or named by an event)."""
        return int(self._state.n_users)

    @property
    def n_items(self) -> int:
        """Rows of ``item_embeddings``."""
        return int(self._items.shape[0])

    @property
    def dim(self) -> int:
        """Width of the embeddings and of the profiles."""
        return int(self._items.shape[1])

    @property
    @_serialised
    def latest(self) -> float:
        """The latest event time seen (0.0 before any timed event): "now" for untimed events."""
        return float(self._state.latest)

    @property
    def timed(self) -> bool:
        """Whether an event with a time has been seen (with a ``half_life``: "now" exists)."""
        return self._timed

    @_serialised
    def advance_clock(self, t: float) -> None:
        """Date "now" at ``t`` if it is later than :attr:`latest` or no time was seen yet, as an
        event of weight 0 at ``t`` would (no profile changes): the clock of a state rebuilt
        from the events it still holds, after a :meth:`reset` dropped those that set it. A
        state without a user or an item (no event yet) refuses (ValueError).

        Examples
        --------
        >>> import numpy as np
        >>> from semrec.interest import StreamingProfiles
        >>> state = StreamingProfiles(np.eye(2, dtype=np.float32), half_life=10.0, n_users=1)
        >>> state.advance_clock(50.0)
        >>> state.advance_clock(20.0)  # never back
        >>> state.now(), state.timed, state.profile(0).tolist()
        (50.0, True, [0.0, 0.0])
        """
        ts = check.number(t, "t")
        if not (self._state.n_users and self.n_items):
            raise ValueError(
                f"the clock cannot be set to t={ts:g}: the state has no user or no item yet "
                "(it moves with events, which name both); give the first event a time instead"
            )
        self._state.add(self._items, 0, 0, 0.0, ts)  # weight 0: moves the clock, nothing else
        self._timed = True

    @_serialised
    def update(self, user: int, item: int, weight: float = 1.0, t: float | None = None) -> None:
        """Apply one event: ``user`` interacted with ``item`` with ``weight`` at time ``t``.

        ``t=None`` means "now", the latest time seen so far. With a ``half_life`` the first
        timed event sets the clock: ``t=None`` before it is refused (ValueError; give ``t``).
        ``user`` may be any id >= 0; ids beyond the known users create them (without history).
        A weight that would take the user's float32 sum past float32's range is refused
        (ValueError) and changes nothing.
        """
        u = check.one_id(user, "user", None)
        i = check.one_id(item, "item", self._items.shape[0])
        w = check.number(weight, "weight")
        if t is None:
            self._check_clock("t")
            ts = self._state.latest
        else:
            ts = check.number(t, "t")
        self._room(u + 1, f"user {u}")  # the kernel creates the user once the event is taken
        try:
            self._state.add(self._items, u, i, w, ts)
        except core.SumOverflow as refused:
            raise _overflow_error(refused, f"weight={w:g}") from None
        self._timed = self._timed or t is not None

    @_serialised
    def now(self, name: str = "t") -> float:
        """The time an event given without one is dated at: :attr:`latest`. With a
        ``half_life`` it exists once an event with a time has been seen; before that, a
        ValueError asks for ``name`` (the caller's argument that would give the time).

        Examples
        --------
        >>> import numpy as np
        >>> from semrec.interest import StreamingProfiles
        >>> state = StreamingProfiles(np.eye(2, dtype=np.float32), half_life=10.0)
        >>> state.now()
        Traceback (most recent call last):
        ...
        ValueError: t is needed: this state has a half_life and has not seen an event with a \
time yet, so there is no 'now' to date an event without one; give t (e.g. epoch seconds) for \
the first events
        >>> state.update(0, 1, t=50.0)
        >>> state.now()
        50.0
        """
        self._check_clock(name)
        return float(self._state.latest)

    def _check_clock(self, argument: str) -> None:
        """Refuse "now" on a decayed state that has seen no time yet (it would be 0)."""
        if self.half_life is not None and not self._timed:
            verb = "are" if argument.endswith("s") else "is"  # times, timestamps
            raise ValueError(
                f"{argument} {verb} needed: this state has a half_life and has not seen an event "
                f"with a time yet, so there is no 'now' to date an event without one; give "
                f"{argument} (e.g. epoch seconds) for the first events"
            )

    @_serialised
    def update_many(
        self,
        users: np.ndarray,
        items: np.ndarray,
        weights: np.ndarray | None = None,
        times: np.ndarray | None = None,
        *,
        reset: np.ndarray | None = None,
        name: str = "weights",
    ) -> None:
        """Apply many events in the given order (one C++ call; the GIL is released).

        Parameters
        ----------
        users, items : 1-D arrays of int, same length
        weights : 1-D array of float, optional
            Default 1 for every event.
        times : 1-D array of int or float, optional
            Default: every event happens "now" (the latest time seen before the call); with a
            ``half_life``, refused (ValueError) until an event with a time has been seen.
        reset : 1-D array of int, optional
            Existing users who forget their history first (as :meth:`reset`), in the same step:
            the events replace their histories.
        name : str, default "weights"
            What a refusal's message calls the events (a caller's own argument).

        Nothing is applied if any event is invalid, or if one would take a user's float32 sum
        past float32's range (ValueError naming ``name``).

        Examples
        --------
        >>> import numpy as np
        >>> from semrec.interest import StreamingProfiles
        >>> state = StreamingProfiles(np.eye(2, dtype=np.float32))
        >>> state.update_many([0, 1], [0, 1], weights=[2.0, 1.0])
        >>> state.update_many([0], [1], reset=[0])   # user 0's history is now item 1 alone
        >>> state.profile(0).tolist()
        [0.0, 1.0]
        >>> state.update_many([1, 1], [0, 0], weights=[3e38, 3e38])
        Traceback (most recent call last):
        ...
        ValueError: weights would take user 1's profile sum past float32's range (to 6e+38); \
use weights of a moderate scale (e.g. 1 per click)
        """
        u = check.id_array(users, "users", np.int64)
        i = check.id_array(items, "items", np.int32)
        n = u.size
        if i.size != n:
            raise ValueError(f"users and items must have the same length, got {n} and {i.size}")
        w = None
        if weights is not None:
            w = check.float_array(weights, "weights", n)
        ts = check.timestamps(times, n, name="times")
        cleared = None
        if reset is not None:
            cleared, _ = check.index_array(reset, "reset", self._state.n_users, "user")
        if n == 0 and cleared is None:
            return
        if n and u.min() < 0:
            raise IndexError(f"users holds {u.min()}; user ids must be >= 0")
        if n and (i.min() < 0 or i.max() >= self._items.shape[0]):
            bad = i[(i < 0) | (i >= self._items.shape[0])][0]
            raise IndexError(f"items holds item id {bad}, outside [0, {self._items.shape[0]})")
        if n and ts is None:
            self._check_clock("times")
        if n:  # the kernel creates new users once every event is taken
            self._room(int(u.max()) + 1, f"users (holding id {u.max()})")
        try:
            self._state.add_many(self._items, u, i, w, ts, cleared, self._item_norm(i))
        except core.SumOverflow as refused:
            raise _overflow_error(refused, name) from None
        self._timed = self._timed or (n > 0 and ts is not None)

    @_serialised
    def profile(self, user: int) -> np.ndarray:
        """The normalised profile of one user, shape (dim,)."""
        u = check.one_id(user, "user", self._state.n_users)
        return self._state.profiles(np.array([u], dtype=np.int64), 1)[0]

    @_serialised
    def profiles(self, users: np.ndarray | None = None) -> np.ndarray:
        """Normalised profiles of the listed users (all users by default), shape (n, dim)."""
        if users is None:
            ids = np.arange(self._state.n_users, dtype=np.int64)
        else:
            ids, _ = check.index_array(users, "users", self._state.n_users, "user")
        threads = resolve_num_threads(self.num_threads) if ids.size > 1 else 1  # one: a click
        return self._state.profiles(ids, threads)

    @_serialised
    def reset(self, users: np.ndarray) -> None:
        """Forget the whole history of these users (their profiles become zero)."""
        ids, _ = check.index_array(users, "users", self._state.n_users, "user")
        self._state.reset(ids)

    @_serialised
    def add_items(self, embeddings: np.ndarray) -> np.ndarray:
        """Append item rows (same dim); returns their new ids."""
        x, _ = check.as_float32_matrix(embeddings, "embeddings", allow_1d=True)
        if x.shape[1] != self.dim:
            raise ValueError(
                f"embeddings must have dimension {self.dim} like the other items, got {x.shape[1]}"
            )
        start = self._items.shape[0]
        self._set_items(np.ascontiguousarray(np.vstack([self._items, x])))
        if self._norm is not None:
            self._norm = max(self._norm, _largest_norm(x))
        self._own = True  # vstack copied every row
        return np.arange(start, start + x.shape[0], dtype=np.int32)

    def _item_norm(self, items: np.ndarray) -> float:
        """A bound of the norms of the rows ``items`` names: with it the kernel sees when a
        batch of events cannot overflow and needs no copy of the users it changes to undo a
        refusal. Cached for rows of our own; the caller's are bounded anew at every batch."""
        x = self._items
        if not self._own:  # one sequential pass over all rows costs about a gather of a third
            return _largest_norm(x if 3 * items.size >= x.shape[0] else np.take(x, items, 0))
        if self._norm is None:
            self._norm = _largest_norm(x)
        return self._norm

    @_serialised
    def grow(self, n_users: int) -> None:
        """Make room for users ``0 .. n_users - 1`` (new ones start without history)."""
        n = check.one_id(n_users, "n_users", None)
        self._state.grow(self._room(n, f"n_users={n}"))

    def _room(self, rows: int, what: str) -> int:
        """``rows`` users, unless they cannot fit in memory (a raw id used as an index)."""
        if rows <= self._state.n_users:
            return rows
        return hyperparameters.room_for(rows, 4 * self.dim + 16, what)

    @_serialised
    def add_rows(
        self,
        history: sp.csr_array | sp.csr_matrix,
        times: np.ndarray | None = None,
        *,
        first_user: int = 0,
        name: str = "history",
    ) -> None:
        """Apply a CSR of events: row ``r`` is user ``first_user + r`` (in parallel over rows).

        ``history`` is users x items with one stored entry per event (duplicates add up);
        ``times`` hold one time per entry, aligned with ``history.data`` (needed with a
        ``half_life``). Users that do not exist yet are created. Nothing is applied if a row
        would take its user's float32 sum past float32's range (a ValueError that calls the
        events ``name``, naming the lowest such user).

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp
        >>> from semrec.interest import StreamingProfiles
        >>> state = StreamingProfiles(np.eye(2, dtype=np.float32))
        >>> state.add_rows(sp.csr_array(np.array([[1.0, 0.0], [1.0, 1.0]])), first_user=3)
        >>> state.n_users, state.profile(4).astype(float).round(3).tolist()
        (5, [0.707, 0.707])
        """
        indptr, indices, weights = check.events(history, "history", self.n_items)
        ts = check.timestamps(times, weights.size, name="times")
        first = check.one_id(first_user, "first_user", None)
        if ts is None and self.half_life is not None and weights.size:
            raise ValueError("times are needed with a half_life (one per stored event)")
        self._room(first + indptr.size - 1, f"first_user={first}")  # the kernel grows
        threads = resolve_num_threads(self.num_threads)
        try:
            self._state.add_rows(indptr, indices, weights, ts, self._items, first, threads)
        except core.SumOverflow as refused:
            raise _overflow_error(refused, name) from None
        self._timed = self._timed or (ts is not None and weights.size > 0)

    @_serialised
    def decayed_sum(self, user: int) -> tuple[np.ndarray, float]:
        """A user's un-normalised sum of weighted, decayed embeddings, and the reference time
        its decay is relative to (what :meth:`profile` normalises)."""
        total, reference, _, _ = self._state.raw(check.one_id(user, "user", self._state.n_users))
        return total, float(reference)


def _largest_norm(x: np.ndarray) -> float:
    """A bound of the row norms of a float32 matrix, ``sqrt(dim) * max |x|`` (exact, whatever
    the magnitudes: no square to overflow or underflow)."""
    if not x.size:
        return 0.0
    return math.sqrt(x.shape[1]) * max(float(x.max()), -float(x.min()))


def _overflow_error(refused: Exception, what: str) -> ValueError:
    """The kernel's refusal of events (``core.SumOverflow``, args ``(user, peak)``: a user's
    float32 sum would pass float32's range; nothing was applied) as the message a user reads.

    Examples
    --------
    >>> from semrec.interest import _overflow_error
    >>> print(_overflow_error(ValueError(3, 4.5e38), "weight=3e+38"))
    weight=3e+38 would take user 3's profile sum past float32's range (to 4.5e+38); use \
weights of a moderate scale (e.g. 1 per click)
    """
    user, peak = refused.args
    return ValueError(
        f"{what} would take user {user}'s profile sum past float32's range (to {peak:.3g}); "
        "use weights of a moderate scale (e.g. 1 per click)"
    )


def half_life_value(half_life: Any) -> float:
    """``half_life`` checked, as the kernel's float (0 = no decay).

    Examples
    --------
    >>> from semrec.interest import half_life_value
    >>> half_life_value(None), half_life_value(86400)
    (0.0, 86400.0)
    """
    if half_life is None:
        return 0.0
    if isinstance(half_life, bool) or not isinstance(half_life, int | float | np.number):
        raise TypeError(f"half_life must be a number or None, got {type(half_life).__name__}")
    return check.number(half_life, "half_life", above=0)
