"""State kept in each worker process between tasks: the loaded text encoders."""

from __future__ import annotations

import threading
from typing import Any

_encoders: dict[tuple[str | None, str], Any] = {}
_lock = threading.Lock()
loads = 0  # how many encoders this process has loaded (read by the tests through client.run)


def encoder(model: str | None, precision: str) -> Any:
    """The TextEncoder for ``(model, precision)``, loaded once per worker process.

    A lock: the worker's threads may ask at the same time, and loading twice wastes the
    model's memory.
    """
    global loads
    key = (model, precision)
    with _lock:
        if key not in _encoders:
            from semrec.text import TextEncoder

            _encoders[key] = TextEncoder(model, precision=precision)
            loads += 1
        return _encoders[key]


def load_count() -> int:
    return loads
