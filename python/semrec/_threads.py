"""The package-wide thread count that every semrec kernel (and LibTorch) uses by default."""

from __future__ import annotations

import operator
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from semrec._native import core

_num_threads: int | None = None
_from_environment: int | None = None  # the environment's count, read once (first use)


class _Local(threading.local):
    count: int | None = None  # this thread's override (a class default: no getattr per call)


_local = _Local()


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells, else all)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not every OS has affinity masks
        return max(1, core.max_threads())


def _default() -> int:
    # The environment is read once, as OpenMP reads it: a lookup per call cost a click ~10 us
    # (os.environ raises and catches KeyError for an unset name).
    global _from_environment
    if _from_environment is None:
        name = "SEMREC_NUM_THREADS" if os.environ.get("SEMREC_NUM_THREADS") else "OMP_NUM_THREADS"
        env = os.environ.get(name)
        _from_environment = 0  # 0: all cores, as set_num_threads(0) means
        if env:
            try:
                _from_environment = int(env.split(",")[0])  # OpenMP's nested list: the first
            except ValueError:
                _from_environment = -1
            if _from_environment < 0:
                warnings.warn(
                    f"{name}={env!r} is not a thread count (an integer >= 0, 0 for all cores); "
                    "semrec uses all cores",
                    RuntimeWarning,
                    stacklevel=3,
                )
                _from_environment = 0
    cores = available_cores()
    return min(_from_environment, cores) if _from_environment else cores


def set_num_threads(n: int) -> None:
    """Set how many threads semrec kernels use when a call passes ``num_threads=None``.

    Parameters
    ----------
    n : int
        Number of threads; ``0`` means all cores. More threads than cores never speed up these
        compute-bound kernels, so a larger count is capped to the cores this process may use.
        The setting also applies to LibTorch (the text encoder), which shares the same OpenMP
        runtime.

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

    It starts at ``SEMREC_NUM_THREADS`` or ``OMP_NUM_THREADS`` when set (read once, when
    semrec first needs a count), else the number of cores this process may run on. Inside
    :func:`thread_num_threads` it is that block's count, in that thread only.
    """
    if _local.count is not None:
        return _local.count
    return _num_threads if _num_threads is not None else _default()


@contextmanager
def thread_num_threads(num_threads: int | None) -> Iterator[int]:
    """Within the block, the calling thread's semrec (and LibTorch) count is ``num_threads``.

    Other threads, and the process-wide :func:`set_num_threads` setting, are left alone: a
    Dask task on an in-process (threaded) worker runs in the client's process, next to the
    user's own threads and other tasks. LibTorch's intra-op count is per thread too, so setting
    it here and putting it back after races with no one. Blocks nest.

    Parameters
    ----------
    num_threads : int or None
        As elsewhere: ``None`` the current count, ``0`` all cores, capped to the cores.

    Yields
    ------
    int
        The resolved count.

    Examples
    --------
    >>> from semrec._threads import get_num_threads, thread_num_threads
    >>> with thread_num_threads(1):
    ...     get_num_threads()
    1
    """
    n = resolve_num_threads(num_threads)
    previous = _local.count
    torch = sys.modules.get("torch")
    previous_torch = torch.get_num_threads() if torch is not None else None
    _local.count = n
    if torch is not None and previous_torch != n:
        torch.set_num_threads(n)
    try:
        yield n
    finally:
        _local.count = previous
        if torch is not None and previous_torch != n:
            torch.set_num_threads(previous_torch)


def resolve_num_threads(num_threads: int | None) -> int:
    """Turn a ``num_threads`` argument into a thread count in ``[1, available_cores()]``.

    ``None`` is the package default and ``0`` all cores; a count above the cores is capped
    (this is the one place every kernel's and LibTorch's thread count goes through).
    """
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
    cores = available_cores()
    return cores if n == 0 else min(n, cores)
