"""One lock per model: reads side by side, or one change at a time.

A server's threads may recommend, record clicks, add items, switch the index and save at once
(docs/guides/realtime.md). The verbs that change a model (``fit``, ``update``, ``fold_in``
with ``users=``, ``add_items``, ``use_index``, ``save``) hold its lock alone; the verbs that read
it (``recommend``, ``score``, ``similar_items``, ``explain``, ``fold_in`` of new users) share
it, so searches run side by side but never while a change is half made (a user's row grown
but not yet its vector, native state resized under a read).

A Ctrl-C can land between any two bytecodes, this module's own included, and a lock it left
held would hang every later call. So each thread's share of the lock is one entry (its depth of
reads, or its mark as the writer) set or cleared in one step under a mutex held for a few
bytecodes; a release puts the thread's entry back to what it was before the verb (and lets go
of the mutex should an interrupt have kept it), so that it can simply be run again when an
interrupt cut it short, and the verbs do run it again then.
"""

from __future__ import annotations

import copy
import functools
import threading
import weakref
from collections.abc import Callable
from threading import get_ident
from typing import Any, TypeVar

_LOCKS: weakref.WeakKeyDictionary[Any, ModelLock] = weakref.WeakKeyDictionary()
_CACHE_LOCKS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_RECHECK = 0.1  # seconds a waiting thread sleeps before it looks again: a wake-up that an
# interrupt cut short then costs this delay, never a hang

Method = TypeVar("Method", bound=Callable[..., Any])


class ModelLock:
    """Many readers at once, or one writer (a model's verbs; an HNSW graph's searches and
    adds, as faiss cannot search a graph while it grows). A waiting writer holds new readers
    back, so a stream of reads cannot starve a click. Reentrant: a writer may read or write
    again (a save reads the model), and a reader may read again (a verb that calls another).
    A reader that asks to write is refused: two such readers would wait for each other.

    Examples
    --------
    >>> from semrec._model_lock import ModelLock
    >>> lock = ModelLock()
    >>> with lock.reading(), lock.reading():
    ...     pass
    >>> lock.call_writing(sum, [1, 2])
    3
    """

    def __init__(self) -> None:
        self._mutex = threading.RLock()  # held for a few bytecodes, never to wait; an RLock
        # knows its owner, so a release can let go of a hold an interrupt kept (_drop_mutex)
        self._readers: dict[int, int] = {}  # reading thread -> its depth of reads
        self._waiting: set[int] = set()  # threads waiting to write
        self._writer: int | None = None  # the writing thread
        self._sleepers: list[Any] = []  # held locks the waiting threads sleep on, released
        # to wake them: the threads wait outside the mutex, so no wait has to take it back

    def reading(self) -> _Held:
        """A context manager holding the lock to read."""
        return _Held(self, True)

    def writing(self) -> _Held:
        """A context manager holding the lock alone."""
        return _Held(self, False)

    def call_reading(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` run while holding the lock to read (what the read verbs do)."""
        me = get_ident()
        depth = self._readers.get(me, 0)
        try:
            try:  # entered inside the try: the release undoes an entry an interrupt cut short
                self._enter_read(me, depth)
                return fn(*args, **kwargs)
            finally:
                self._leave_read(me, depth)
        except BaseException:  # an interrupt may have cut the release short: finish it
            self._leave_read(me, depth)
            raise

    def call_writing(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` run while holding the lock alone (what the change verbs do)."""
        me = get_ident()
        if self._writer == me:  # a change inside this thread's own change
            return fn(*args, **kwargs)
        self._refuse_reader(me)
        try:
            try:  # as in call_reading
                self._enter_write(me)
                return fn(*args, **kwargs)
            finally:
                self._leave_write(me)
        except BaseException:
            self._leave_write(me)
            raise

    def _refuse_reader(self, me: int) -> None:
        if me in self._readers:
            raise RuntimeError("a read of this model cannot change it (it would wait forever)")

    def _enter_read(self, me: int, depth: int) -> None:
        """Take a read, this thread's depth of reads being ``depth``."""
        if depth:
            self._readers[me] = depth + 1
            return
        if self._writer == me:  # the writer reads its own change
            return
        sleeper = None
        while True:
            with self._mutex:
                if self._writer is None and not self._waiting:
                    self._readers[me] = 1
                    return
                if sleeper is None:
                    sleeper = self._sleeper()
            if sleeper.acquire(timeout=_RECHECK):  # woken: the next wait needs a new sleeper
                sleeper = None

    def _leave_read(self, me: int, depth: int) -> None:
        """Put this thread's depth of reads back to ``depth``; run twice, the second is a
        no-op (or the wake-up that an interrupt kept the first from making)."""
        if self._mutex._is_owned():
            self._drop_mutex()
        if depth:
            self._readers[me] = depth
        elif me in self._readers or (not self._readers and self._sleepers and self._writer != me):
            with self._mutex:
                self._readers.pop(me, None)
                if not self._readers:
                    self._wake()

    def _enter_write(self, me: int) -> None:
        sleeper = None
        while True:
            with self._mutex:
                if self._writer is None and not self._readers:
                    self._writer = me
                    self._waiting.discard(me)
                    return
                self._waiting.add(me)
                if sleeper is None:
                    sleeper = self._sleeper()
            if sleeper.acquire(timeout=_RECHECK):
                sleeper = None

    def _leave_write(self, me: int) -> None:
        """Stop writing or waiting to write; as :meth:`_leave_read`, safe to run again."""
        if self._mutex._is_owned():
            self._drop_mutex()
        with self._mutex:
            if self._writer == me:
                self._writer = None
            self._waiting.discard(me)
            self._wake()

    def _drop_mutex(self) -> None:
        """Let go of the mutex this thread still holds: an exception raised by a trace function
        (``sys.settrace``) on a ``with self._mutex`` line as its block ends skips the release.
        CPython delivers signals only at a function's start, after a call into C and at a
        loop's back edge, never there; a debugger's trace function may."""
        while self._mutex._is_owned():
            self._mutex.release()

    def _sleeper(self) -> Any:
        """A held lock to sleep on until :meth:`_wake` (called with the mutex held)."""
        sleeper = threading.Lock()
        sleeper.acquire()
        self._sleepers.append(sleeper)
        return sleeper

    def _wake(self) -> None:
        """Wake every waiting thread to look again (called with the mutex held). Run again
        after an interrupt, it releases the ones it had not reached; the woken ones dropped
        theirs, and a sleeper is only ever released under the mutex."""
        for sleeper in self._sleepers:
            if sleeper.locked():
                sleeper.release()
        self._sleepers.clear()


class _Exit:
    """``_Held.__exit__``, looked up as the ``with`` statement starts: a partial, C code, so no
    interrupt lands between the statement and the release; and should one cut even the
    release's first line, a weak reference to the partial runs it again as the statement drops
    the partial. A release that ran to its end drops the weak reference (no code then runs
    when the partial goes). Looked up on the class (``contextlib.ExitStack``): the method."""

    def __get__(self, held: _Held | None, owner: type[_Held]) -> Callable[..., None]:
        if held is None:
            return owner.close
        return held.release_guarded()


class _Held:
    """``with lock.reading()`` or ``with lock.writing()``: what :meth:`__enter__` takes it
    releases itself when interrupted, what the ``with`` block holds :meth:`close` releases."""

    __slots__ = ("_depth", "_lock", "_me", "_net", "_open", "_read")

    def __init__(self, lock: ModelLock, read: bool) -> None:
        self._lock, self._read, self._open, self._net = lock, read, False, None

    def __enter__(self) -> None:
        lock, me = self._lock, get_ident()
        self._me = me
        if self._read:
            self._depth = lock._readers.get(me, 0)
        elif lock._writer == me:  # a change inside this thread's own change
            return
        else:
            lock._refuse_reader(me)
        self._open = True
        try:
            if self._read:
                lock._enter_read(me, self._depth)
            else:
                lock._enter_write(me)
        except BaseException:  # the release undoes what an interrupt left half done
            self.close()
            raise

    __exit__ = _Exit()

    def release_guarded(self) -> Callable[..., None]:
        """:meth:`close` as a partial, with a weak reference to it that runs :meth:`close`
        again should an interrupt cut the first run short (see :class:`_Exit`)."""
        release = functools.partial(type(self).close, self)
        self._net = weakref.ref(release, functools.partial(type(self).close, self))
        return release

    def close(self, *exc: object) -> None:
        """Release what :meth:`__enter__` took, once however often it is called."""
        if self._open:
            if self._read:
                self._lock._leave_read(self._me, self._depth)
            else:
                self._lock._leave_write(self._me)
            self._open = False
        self._net = None


def model_lock(model: Any) -> ModelLock:
    """``model``'s lock. It is kept here, not on the model, so that copies and pickles of a
    model neither share nor carry it.

    Examples
    --------
    >>> from semrec._model_lock import model_lock
    >>> class Model: ...
    >>> a, b = Model(), Model()
    >>> model_lock(a) is model_lock(a), model_lock(a) is model_lock(b)
    (True, False)
    >>> with model_lock(a).writing(), model_lock(a).reading():  # a change may read
    ...     pass
    """
    lock = _LOCKS.get(model)
    if lock is None:  # setdefault: one step, so two threads asking at once get the same lock
        lock = _LOCKS.setdefault(model, ModelLock())
    return lock


def cache_lock(model: Any) -> Any:
    """``model``'s lock for the caches its reads fill side by side (a merged seen matrix):
    one filler at a time. Kept here for the same reason as :func:`model_lock`.

    Examples
    --------
    >>> from semrec._model_lock import cache_lock
    >>> class Model: ...
    >>> with cache_lock(Model()):
    ...     pass
    """
    lock = _CACHE_LOCKS.get(model)
    if lock is None:
        lock = _CACHE_LOCKS.setdefault(model, threading.RLock())
    return lock


def changes_model(method: Method) -> Method:
    """``method`` (a verb that changes its model) run while it holds the model's lock alone."""

    @functools.wraps(method)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        return model_lock(self).call_writing(method, self, *args, **kwargs)

    return locked  # type: ignore[return-value]


def fits_model(method: Method) -> Method:
    """``fit``: a change that happens whole or not at all. It holds the model's lock alone, and
    when it raises (data refused late, training diverged, a callback's exception, Ctrl-C) the
    model's attributes are put back as they were: a fitted model stays the model it was, a new
    one stays unfitted. Models build their new state on the side or in new arrays (ALS trains
    arrays it has just made), so the attributes kept here are untouched by the failed fit."""

    def whole(self: Any, *args: Any, **kwargs: Any) -> Any:
        before = dict(vars(self))
        try:
            return method(self, *args, **kwargs)
        except BaseException:
            vars(self).clear()
            vars(self).update(before)
            raise

    @functools.wraps(method)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        return model_lock(self).call_writing(whole, self, *args, **kwargs)

    return locked  # type: ignore[return-value]


def reads_model(method: Method) -> Method:
    """``method`` (a verb that reads its model) run beside other reads, never during a change."""

    @functools.wraps(method)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        lock = _LOCKS.get(self) or model_lock(self)
        return lock.call_reading(method, self, *args, **kwargs)

    return locked  # type: ignore[return-value]


def changes_model_with_users(method: Method) -> Method:
    """``fold_in``: a change when given ``users=`` (their rows are stored), else a read."""

    @functools.wraps(method)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        lock = model_lock(self)
        call = lock.call_writing if kwargs.get("users") is not None else lock.call_reading
        return call(method, self, *args, **kwargs)

    return locked  # type: ignore[return-value]


def fills_cache(method: Method) -> Method:
    """``method`` (a read that fills a cache of its model) run under :func:`cache_lock`."""

    @functools.wraps(method)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with cache_lock(self):
            return method(self, *args, **kwargs)

    return locked  # type: ignore[return-value]


class CopiedWhole:
    """Mixin: ``copy.deepcopy`` and pickling read the model under its lock, so that another
    thread's ``update`` or ``add_items`` cannot land half-way through the copy (a copy holding
    the users of one moment and the seen items of another). A pickle is made from a private
    deep copy (transiently twice the model's memory): serialising runs after ``__reduce_ex__``
    returns, outside any lock."""

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return model_lock(self).call_reading(_copied, self, memo)

    def __reduce_ex__(self, protocol: Any) -> Any:
        snapshot = copy.deepcopy(self)  # no other thread knows it: reduced without a lock
        return object.__reduce_ex__(snapshot, protocol)

    def __copy__(self) -> Any:  # as before: shares the state (not a pickle's deep snapshot)
        return _copied(self, None)


def _copied(model: Any, memo: dict[int, Any] | None) -> Any:
    """What ``copy.deepcopy`` (``memo``) or ``copy.copy`` (None) does for a plain object: a new
    instance given the model's state (``__getstate__``, then ``__setstate__`` where the class
    has one), deep-copied or shared."""
    out = type(model).__new__(type(model))
    state = model.__getstate__()
    if memo is not None:
        memo[id(model)] = out
        state = copy.deepcopy(state, memo)
    elif state is vars(model):
        state = dict(state)
    if hasattr(out, "__setstate__"):
        out.__setstate__(state)
    else:
        vars(out).update(state)
    return out
