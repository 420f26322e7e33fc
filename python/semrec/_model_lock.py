"""One lock per model: reads side by side, or one change at a time.

A server's threads may recommend, record clicks, add items, switch the index and save at once
(docs/guides/realtime.md). The verbs that change a model (``fit``, ``update``, ``fold_in``
with ``users=``, ``add_items``, ``use_index``, ``save``) hold its lock alone; the verbs that read
it (``recommend``, ``score``, ``similar_items``, ``explain``, ``fold_in`` of new users) share
it, so searches run side by side but never while a change is half made (a user's row grown
but not yet its vector, native state resized under a read).
"""

from __future__ import annotations

import contextlib
import functools
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

_LOCKS: weakref.WeakKeyDictionary[Any, ModelLock] = weakref.WeakKeyDictionary()
_CACHE_LOCKS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()  # held while a model's lock is made

Method = TypeVar("Method", bound=Callable[..., Any])


class ModelLock:
    """Many readers at once, or one writer (a model's verbs; an HNSW graph's searches and
    adds, as faiss cannot search a graph while it grows). A waiting writer holds new readers
    back, so a stream of reads cannot starve a click. Reentrant: a writer may read or write
    again (a save reads the model), and a reader may read again (a verb that calls another).
    A reader that asks to write is refused: two such readers would wait for each other."""

    def __init__(self) -> None:
        self._state = threading.Condition(threading.Lock())
        self._readers = 0
        self._waiting = 0
        self._writer: int | None = None  # the writing thread
        self._mine = threading.local()  # this thread's depth of reads

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        depth = self.enter_read()
        try:
            yield
        finally:
            self.exit_read(depth)

    def enter_read(self) -> int:
        """Start a read (what :meth:`reading` does, for the hot path without a generator);
        returns the depth to give :meth:`exit_read`."""
        depth = getattr(self._mine, "reads", 0)
        if not depth and self._writer != threading.get_ident():
            with self._state:
                while self._writer is not None or self._waiting:
                    self._state.wait()
                self._readers += 1
        self._mine.reads = depth + 1
        return depth

    def exit_read(self, depth: int) -> None:
        self._mine.reads = depth
        if not depth and self._writer != threading.get_ident():
            with self._state:
                self._readers -= 1
                if not self._readers:
                    self._state.notify_all()

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        me = threading.get_ident()
        if self._writer == me:  # a change inside this thread's own change
            yield
            return
        if getattr(self._mine, "reads", 0):
            raise RuntimeError("a read of this model cannot change it (it would wait forever)")
        with self._state:
            self._waiting += 1
            try:
                while self._writer is not None or self._readers:
                    self._state.wait()
            finally:
                self._waiting -= 1
            self._writer = me
        try:
            yield
        finally:
            with self._state:
                self._writer = None
                self._state.notify_all()


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
    with _GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = ModelLock()
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
    with _GUARD:
        lock = _CACHE_LOCKS.get(model)
        if lock is None:
            lock = _CACHE_LOCKS[model] = threading.RLock()
        return lock


def changes_model(method: Method) -> Method:
    """``method`` (a verb that changes its model) run while it holds the model's lock alone."""

    @functools.wraps(method)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with model_lock(self).writing():
            return method(self, *args, **kwargs)

    return locked  # type: ignore[return-value]


def fits_model(method: Method) -> Method:
    """``fit``: a change that happens whole or not at all. It holds the model's lock alone, and
    when it raises (data refused late, training diverged, a callback's exception, Ctrl-C) the
    model's attributes are put back as they were: a fitted model stays the model it was, a new
    one stays unfitted. Models build their new state on the side or in new arrays (ALS trains
    arrays it has just made), so the attributes kept here are untouched by the failed fit."""

    @functools.wraps(method)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with model_lock(self).writing():
            before = dict(vars(self))
            try:
                return method(self, *args, **kwargs)
            except BaseException:
                vars(self).clear()
                vars(self).update(before)
                raise

    return locked  # type: ignore[return-value]


def reads_model(method: Method) -> Method:
    """``method`` (a verb that reads its model) run beside other reads, never during a change."""

    @functools.wraps(method)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        lock = _LOCKS.get(self) or model_lock(self)
        depth = lock.enter_read()
        try:
            return method(self, *args, **kwargs)
        finally:
            lock.exit_read(depth)

    return locked  # type: ignore[return-value]


def changes_model_with_users(method: Method) -> Method:
    """``fold_in``: a change when given ``users=`` (their rows are stored), else a read."""

    @functools.wraps(method)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        lock = model_lock(self)
        with lock.writing() if kwargs.get("users") is not None else lock.reading():
            return method(self, *args, **kwargs)

    return locked  # type: ignore[return-value]


def fills_cache(method: Method) -> Method:
    """``method`` (a read that fills a cache of its model) run under :func:`cache_lock`."""

    @functools.wraps(method)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with cache_lock(self):
            return method(self, *args, **kwargs)

    return locked  # type: ignore[return-value]
