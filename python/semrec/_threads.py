"""The package-wide thread count that every semrec kernel (and LibTorch) uses by default."""

from __future__ import annotations

import operator
import os
import sys

from semrec._native import core

_num_threads: int | None = None


def _default() -> int:
    env = os.environ.get("SEMREC_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
    if env:
        try:
            return max(1, int(env.split(",")[0]))
        except ValueError:
            pass
    return max(1, core.max_threads())


def set_num_threads(n: int) -> None:
    """Set how many threads semrec kernels use when a call passes ``num_threads=None``.

    Parameters
    ----------
    n : int
        Number of threads; ``0`` means all cores. The setting also applies to LibTorch (the text
        encoder), which shares the same OpenMP runtime.

    Examples
    --------
    >>> import semrec
    >>> semrec.set_num_threads(2)
    >>> semrec.get_num_threads()
    2
    """
    global _num_threads
    n = resolve_num_threads(n)
    _num_threads = n
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)


def get_num_threads() -> int:
    """Return the thread count semrec kernels use by default.

    It starts at ``SEMREC_NUM_THREADS`` or ``OMP_NUM_THREADS`` when set, else the number of
    cores this process may run on.
    """
    return _num_threads if _num_threads is not None else _default()


def resolve_num_threads(num_threads: int | None) -> int:
    """Turn a ``num_threads`` argument into a positive count (``None``: default, ``0``: all)."""
    if num_threads is None:
        return get_num_threads()
    if isinstance(num_threads, bool):
        raise TypeError("num_threads must be an int or None, got bool")
    try:
        n = operator.index(num_threads)
    except TypeError:
        raise TypeError(
            f"num_threads must be an int or None, got {type(num_threads).__name__}"
        ) from None
    if n < 0:
        raise ValueError(f"num_threads must be >= 0 (0 means all cores), got {n}")
    return n if n > 0 else max(1, core.max_threads())
