"""One lock per model for the verbs that change it: a server's threads may record clicks, add
items, switch the index and save at once without losing an update (docs/guides/realtime.md)."""

from __future__ import annotations

import functools
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

_LOCKS: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()  # held while a model's lock is made

Method = TypeVar("Method", bound=Callable[..., Any])


def model_lock(model: Any) -> Any:
    """``model``'s reentrant lock. It is kept here, not on the model, so that copies and
    pickles of a model neither share nor carry it.

    Examples
    --------
    >>> from semrec._model_lock import model_lock
    >>> class Model: ...
    >>> a, b = Model(), Model()
    >>> model_lock(a) is model_lock(a), model_lock(a) is model_lock(b)
    (True, False)
    """
    with _GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.RLock()
        return lock


def changes_model(method: Method) -> Method:
    """``method`` (a verb that changes its model) run under the model's lock."""

    @functools.wraps(method)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with model_lock(self):
            return method(self, *args, **kwargs)

    return locked  # type: ignore[return-value]
