"""Checks of hyperparameters shared by several models: seeds, sizes, the text encoder.

``random_state`` is taken as ``numpy.random.default_rng`` takes it, but checked first, so that a
bad seed is a TypeError or ValueError that names the argument (never NumPy's "SeedSequence
expects int ..."). :func:`memory` refuses a size whose arrays could not fit in the machine's
memory before anything is allocated (never "Unable to allocate 7 TiB" or std::bad_alloc).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

# What numpy.random.default_rng accepts besides None and ints, passed through as they are.
_GENERATORS = (np.random.Generator, np.random.BitGenerator, np.random.SeedSequence)


def random_state(value: Any, name: str = "random_state") -> Any:
    """``value`` checked as a seed: None, an int >= 0 (NumPy ints too) or a Generator.

    Floats, bools, strings and negative ints are refused with a message naming ``name``.

    Examples
    --------
    >>> import numpy as np
    >>> from semrec._hyperparameters import random_state
    >>> random_state(np.int64(3)), random_state(None)
    (3, None)
    >>> random_state(1.5)
    Traceback (most recent call last):
    ...
    TypeError: random_state must be None, an int >= 0 or a numpy.random.Generator, got float 1.5
    """
    if value is None or isinstance(value, _GENERATORS):
        return value
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise TypeError(
            f"{name} must be None, an int >= 0 or a numpy.random.Generator, got "
            f"{type(value).__name__} {value!r}"
        )
    if value < 0:
        raise ValueError(f"{name} must be an int >= 0 (or None, or a Generator), got {value}")
    return int(value)


def generator(value: Any, name: str = "random_state") -> np.random.Generator:
    """``numpy.random.default_rng(value)`` of a checked ``value`` (see :func:`random_state`).

    Examples
    --------
    >>> from semrec._hyperparameters import generator
    >>> int(generator(0).integers(10)) == int(generator(0).integers(10))
    True
    """
    return np.random.default_rng(random_state(value, name))


def memory_bytes() -> int:
    """The machine's physical memory in bytes (1 TiB where it cannot be read).

    Examples
    --------
    >>> from semrec._hyperparameters import memory_bytes
    >>> memory_bytes() > 0
    True
    """
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 1 << 40


def memory(need: float, setting: str, fix: str) -> None:
    """Refuse a hyperparameter whose arrays would need ``need`` bytes, more than the memory.

    ``setting`` names the argument and its value (``"factors=1000000"``), ``fix`` says what to
    do instead; the ValueError is raised before anything is allocated.

    Examples
    --------
    >>> from semrec._hyperparameters import memory
    >>> memory(1024, "factors=8", "use fewer factors")
    >>> memory(2.0**60, "factors=10**9", "use fewer factors")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: factors=10**9 would need 1.07e+09 GiB, more than this machine's memory (...
    """
    available = memory_bytes()
    if need > available:
        raise ValueError(
            f"{setting} would need {need / 2**30:.3g} GiB, more than this machine's memory "
            f"({available / 2**30:.3g} GiB); {fix}"
        )


def encoder(value: Any) -> Any:
    """``value`` checked as a model's ``encoder``: None (the bundled TextEncoder) or an object
    with an ``encode(texts)`` method (a TypeError naming ``encoder`` otherwise).

    Examples
    --------
    >>> from semrec._hyperparameters import encoder
    >>> encoder(None) is None
    True
    >>> encoder(3)
    Traceback (most recent call last):
    ...
    TypeError: encoder must be None (the bundled semrec.TextEncoder) or an object with an \
encode(texts) method returning (n, dim) vectors, like semrec.TextEncoder; got int
    """
    if isinstance(value, str | bytes | os.PathLike):  # str.encode is no text encoder
        raise TypeError(
            f"encoder must be an encoder object, not the model name or path {value!r}; pass "
            f"semrec.TextEncoder({value!r}) (or None for the bundled model)"
        )
    if value is not None and not callable(getattr(value, "encode", None)):
        raise TypeError(
            "encoder must be None (the bundled semrec.TextEncoder) or an object with an "
            "encode(texts) method returning (n, dim) vectors, like semrec.TextEncoder; got "
            f"{type(value).__name__}"
        )
    return value


def room_for(rows: int, row_bytes: int, what: str) -> int:
    """``rows`` if ``rows`` rows of ``row_bytes`` bytes fit in the machine's memory.

    Ids address rows directly, so one id of 10**12 asks for 10**12 rows: refuse it with a
    ValueError that names the argument (``what``, e.g. ``"user 10**12"``) and the fix
    instead of a MemoryError or std::bad_alloc.

    Examples
    --------
    >>> from semrec._hyperparameters import room_for
    >>> room_for(10, 64, "user 9")
    10
    >>> room_for(10**12, 64, "user 999999999999")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: user 999999999999 would need 1000000000000 rows (...); ids are contiguous ...
    """
    need = int(rows) * max(int(row_bytes), 1)
    if need > memory_bytes():
        raise ValueError(
            f"{what} would need {rows} rows ({need / 2**30:.3g} GiB, more than this machine's "
            "memory); ids are contiguous indices 0, 1, 2, ...: map raw ids to indices with "
            "semrec.datasets.Dataset (user_index / item_index)"
        )
    return int(rows)


def progress(value: Any, name: str = "show_progress") -> bool:
    """Whether to draw a progress bar: ``value`` if True or False; None draws it only when
    stderr is a terminal (not in logs, pipes or CI)."""
    if value is None:
        return sys.stderr.isatty()
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True, False or None (a bar on a terminal only), got "
                        f"{value!r} ({type(value).__name__})")  # fmt: skip
    return bool(value)


def unchanged_since_fit(now: dict[str, Any], fitted: dict[str, Any], what: str) -> None:
    """A ValueError naming every hyperparameter of ``now`` that differs from ``fitted``, the
    values it was fitted with: ``what`` (the learned arrays, the fitted model) it no longer
    describes, and the way out.

    Examples
    --------
    >>> from semrec._hyperparameters import unchanged_since_fit
    >>> unchanged_since_fit({"factors": 8}, {"factors": 8}, "the learned arrays")
    >>> unchanged_since_fit({"factors": 6}, {"factors": 8}, "the learned arrays")
    Traceback (most recent call last):
    ValueError: factors=6 does not describe the learned arrays (fitted with factors=8): a \
hyperparameter changed after fit? Refit the model, or set it back
    """
    changed = [name for name, value in now.items() if value != fitted[name]]
    if changed:
        verb = "does" if len(changed) == 1 else "do"
        raise ValueError(
            ", ".join(f"{name}={now[name]!r}" for name in changed)
            + f" {verb} not describe {what} (fitted with "
            + ", ".join(f"{name}={fitted[name]!r}" for name in changed)
            + "): a hyperparameter changed after fit? Refit the model, or set it back"
        )
