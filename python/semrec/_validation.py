"""Input checks shared by the public API: one place for the messages users see.

Every check names the argument, says what was received and what is expected, and raises the
exception type the conventions assign (TypeError / ValueError / IndexError).
"""

from __future__ import annotations

import math
import operator
from typing import Any

import numpy as np
import scipy.sparse as sp

from semrec._encoder_output import encoded as encoded
from semrec._id_checks import index_array as index_array
from semrec._id_checks import new_user_ids as new_user_ids


def as_float32_matrix(
    x: Any, name: str, *, allow_1d: bool = False, check_finite: bool = True
) -> tuple[np.ndarray, bool]:
    """Return ``x`` as a 2-D C-contiguous float32 array without copying, and whether it was 1-D.

    Lists are converted; an ndarray of another dtype or layout is rejected rather than copied
    silently, because a hidden copy of an embedding matrix costs memory and time on every call.
    """
    if isinstance(x, np.ma.MaskedArray):  # its arithmetic is not ndarray's
        raise TypeError(f"{name} must be a float32 array, got a masked one; pass {name}.filled(0)")
    x = np.asarray(x) if isinstance(x, np.ndarray) else x  # a subclass computes as its base
    if not isinstance(x, np.ndarray):
        if sp.issparse(x) or x is None:  # NumPy would read None as a NaN
            what = "None" if x is None else "a sparse matrix"
            raise TypeError(f"{name} must be a dense float32 array, got {what}")
        x = _converted(x, name)
    if x.dtype != np.float32:
        raise TypeError(
            f"{name} must have dtype float32, got {x.dtype}; pass {name}.astype(np.float32)"
        )
    was_1d = x.ndim == 1
    if was_1d and allow_1d:
        x = x.reshape(1, -1)
    if x.ndim != 2:
        expected = "1-D or 2-D" if allow_1d else "2-D (rows, dim)"
        raise ValueError(f"{name} must be {expected}, got an array of shape {x.shape}")
    if not x.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous; pass np.ascontiguousarray({name})")
    if check_finite and x.size and not np.isfinite(x).all():
        bad_row = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
        raise ValueError(
            f"{name} contains NaN or infinite values (first in row {bad_row}); "
            "clean or drop those rows"
        )
    return x, was_1d


def _converted(x: Any, name: str) -> np.ndarray:
    """A list (or other array-like) of numbers as float32, with NumPy's errors named."""
    try:
        with np.errstate(over="raise"):
            return np.asarray(x, dtype=np.float32)
    except FloatingPointError:
        raise ValueError(f"{name} holds numbers too large for float32 (max ~3.4e38)") from None
    except (TypeError, ValueError):
        if not isinstance(x, list | tuple):
            raise TypeError(
                f"{name} must be a float32 array (or a list of numbers), got {type(x).__name__}"
            ) from None
        flat = [v for row in x for v in (row if isinstance(row, list | tuple) else [row])]
        scalar = (int, float, np.number, list, tuple, np.ndarray)
        bad = next((j for j, v in enumerate(flat) if not isinstance(v, scalar)), None)
        if bad is not None:
            raise TypeError(
                f"{name} must hold numbers, got {flat[bad]!r} ({type(flat[bad]).__name__}) "
                f"as its element {bad} (counting row by row)"
            ) from None
        raise ValueError(
            f"{name} must be a rectangular array of numbers (every row the same length); "
            "pad or drop the short rows"
        ) from None


def positive_int(value: Any, name: str) -> int:
    """Return ``value`` as an int >= 1."""
    if type(value) is int and value >= 1:  # a plain int (k of a click): no more checks
        return value
    if isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be an int, got bool")
    try:
        n = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__}") from None
    if n < 1:
        raise ValueError(f"{name} must be >= 1, got {n}")
    return n


INT32_MAX = int(np.iinfo(np.int32).max)  # the largest id or k the kernels take
FLOAT32_MAX = float(np.finfo(np.float32).max)  # what the kernels compute in
# Entries a top-k result may hold when k exceeds the catalogue (the rest is -1/-inf padding):
# 2**27 entries (1 GiB of ids and scores); past that, a huge k is a mistake, not a request.
MAX_PADDED = 2**27


def result_width(k: Any, rows: int, n_items: int, what: str = "items") -> int:
    """``k`` of a top-k call as an int >= 1 whose padded ``(rows, k)`` result fits in memory.

    Results are padded to ``k`` columns even past the catalogue; a ``k`` past the catalogue
    whose padded result would exceed ``MAX_PADDED`` entries is refused here, naming ``k``,
    rather than failing later inside an allocation (or taking the machine's memory).

    Examples
    --------
    >>> from semrec._validation import result_width
    >>> result_width(5, 2, 3)
    5
    >>> result_width(2**31, 1, 3)
    Traceback (most recent call last):
    ...
    ValueError: k must be < 2**31, got 2147483648; there are 3 items: pass k <= 3
    """
    k = positive_int(k, "k")
    # Only a k past the catalogue (a padded result) can be refused: no message built otherwise.
    fix = f"there are {n_items} {what}: pass k <= {n_items}" if k > n_items else ""
    if k > INT32_MAX:
        raise ValueError(f"k must be < 2**31, got {k}; {fix}")
    if fix and max(rows, 1) * k > MAX_PADDED:
        raise ValueError(
            f"k={k} asks for a {rows} x {k} result, mostly padding (more than 2**27 entries); {fix}"
        )
    return k


def number(
    value: Any,
    name: str,
    *,
    minimum: float | None = None,
    above: float | None = None,
    maximum: float | None = None,
    below: float | None = None,
) -> float:
    """Return ``value`` as a finite float, optionally ``>= minimum`` or ``> above``, and
    ``<= maximum`` or ``< below``.

    Python and NumPy ints and floats are numbers; bools, strings and arrays are not.

    Examples
    --------
    >>> from semrec._validation import number
    >>> number(3, "alpha", minimum=0)
    3.0
    >>> number(-1.0, "alpha", minimum=0)
    Traceback (most recent call last):
    ...
    ValueError: alpha must be a finite number >= 0, got -1.0
    >>> number(1.0, "fraction", above=0, below=1)
    Traceback (most recent call last):
    ...
    ValueError: fraction must be a finite number strictly between 0 and 1, got 1.0
    """
    if type(value) is not float and type(value) is not int:  # a click's weight: no more checks
        if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
            raise TypeError(f"{name} must be a number, got {type(value).__name__}")
        if isinstance(value, complex | np.complexfloating):
            raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    out = float(value)
    low = minimum if minimum is not None else above
    high = maximum if maximum is not None else below
    ok = math.isfinite(out)
    ok = ok and (minimum is None or out >= minimum) and (above is None or out > above)
    ok = ok and (maximum is None or out <= maximum) and (below is None or out < below)
    if not ok:
        if above is not None and below is not None:
            bounds = f" strictly between {low:g} and {high:g}"
        elif low is not None and high is not None:
            left = "[" if minimum is not None else "("
            right = "]" if maximum is not None else ")"
            bounds = f" in {left}{low:g}, {high:g}{right}"
        elif low is not None:
            bounds = f" {'>=' if minimum is not None else '>'} {low:g}"
        elif high is not None:
            bounds = f" {'<=' if maximum is not None else '<'} {high:g}"
        else:
            bounds = ""
        what = f"a finite number{bounds}" if bounds else "finite"
        raise ValueError(f"{name} must be {what}, got {value}")
    return out


def one_id(value: Any, name: str, n: int | None) -> int:
    """One user or item id as a Python int, in ``[0, n)`` (``n=None``: any id >= 0).

    Examples
    --------
    >>> from semrec._validation import one_id
    >>> one_id(2, "item", 5)
    2
    >>> one_id(7, "item", 5)
    Traceback (most recent call last):
    ...
    IndexError: item 7 is outside [0, 5) (there is no item id 7)
    """
    if type(value) is int and 0 <= value and (n is None or value < n):  # a click: no array calls
        return value
    if isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be an int id, got bool")
    if np.ndim(value) != 0:
        raise TypeError(f"{name} must be a single {name} id, got an array of {np.shape(value)}")
    try:
        out = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int id, got {type(value).__name__}") from None
    if out < 0 and n is None:
        raise IndexError(f"{name} must be >= 0, got {out}")
    if n is not None and not 0 <= out < n:
        raise IndexError(f"{name} {out} is outside [0, {n}) (there is no {name} id {out})")
    return int(out)


def callback(value: Any, name: str = "callback") -> None:
    """Refuse a ``callback`` that cannot be called, before the work whose end would call it."""
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be a function (or None), got {value!r}")


def flag(value: Any, name: str) -> bool:
    """Return ``value`` if it is True or False (a NumPy bool too): a string such as ``"no"``
    is truthy, so taking any value by its truth would do the opposite of what was meant.

    Examples
    --------
    >>> from semrec._validation import flag
    >>> flag(False, "overwrite")
    False
    >>> flag("no", "overwrite")
    Traceback (most recent call last):
    ...
    TypeError: overwrite must be True or False, got 'no' (str)
    """
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def choice(value: Any, name: str, options: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``options``."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}, got {value!r}")
    return value


def require_csr(m: Any, name: str, expected: str) -> None:
    """Raise a TypeError unless ``m`` is a scipy.sparse matrix or array in CSR format."""
    if not sp.issparse(m):
        kind = type(m).__name__  # hints for the two natural first attempts
        hint = {"Dataset": "; pass dataset.interactions",
                "DataFrame": "; make one: Dataset.from_pandas(frame, 'user', 'item')"}  # fmt: skip
        raise TypeError(f"{name} must be a scipy.sparse CSR matrix {expected}, got {kind}"
                        f"{hint.get(kind, '')}")  # fmt: skip
    if m.format != "csr":
        raise TypeError(f"{name} must be in CSR format, got {m.format}; pass {name}.tocsr()")


def csr_structure(
    m: Any, name: str, shape: tuple[int, int], *, distinct: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """A checked CSR's (indptr int64, indices int32), rows sorted in a copy. An item stored
    twice in a row stays twice (masks tolerate it), or once with ``distinct`` (sets of items)."""
    indptr, indices = _structure(m, name, shape)
    indptr = indptr.astype(np.int64, copy=False)
    indices = indices.astype(np.int32, copy=False)
    if not _rows_sorted(indptr, indices, strict=distinct):
        rows = np.repeat(np.arange(shape[0]), np.diff(indptr))
        indices = indices[np.lexsort((indices, rows))]
        if distinct:
            repeated = np.zeros(indices.size, dtype=bool)
            repeated[1:] = (indices[1:] == indices[:-1]) & (rows[1:] == rows[:-1])
            indptr = np.zeros(shape[0] + 1, dtype=np.int64)
            np.cumsum(np.bincount(rows[~repeated], minlength=shape[0]), out=indptr[1:])
            indices = indices[~repeated]
    return np.ascontiguousarray(indptr), np.ascontiguousarray(indices)


def _structure(m: Any, name: str, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """csr_structure's checks, without sorting: (indptr, indices) as stored."""
    require_csr(m, name, f"of shape {shape}")
    if m.shape != shape:
        raise ValueError(f"{name} must have shape {shape} (queries x items), got {m.shape}")
    indptr = np.asarray(m.indptr)
    indices = np.asarray(m.indices)
    for part, arr in (("indptr", indptr), ("indices", indices)):
        if not np.issubdtype(arr.dtype, np.integer) or arr.ndim != 1:
            raise ValueError(
                f"{name} is malformed: its {part} must be a 1-D integer array, got dtype "
                f"{arr.dtype} and shape {arr.shape}; rebuild it with "
                f"scipy.sparse.csr_array((data, indices, indptr)) from integer index arrays"
            )
    if indptr.ndim != 1 or indptr.shape[0] != shape[0] + 1:
        raise ValueError(
            f"{name} is malformed: indptr has length {indptr.shape}, expected {shape[0] + 1}"
        )
    if indptr[0] != 0 or indptr[-1] != indices.shape[0] or (np.diff(indptr) < 0).any():
        raise ValueError(
            f"{name} is malformed: indptr must start at 0, never decrease and end at nnz "
            f"({indices.shape[0]}); rebuild it with scipy.sparse.csr_array"
        )
    if indices.size and (indices.min() < 0 or indices.max() >= shape[1]):
        bad = indices[(indices < 0) | (indices >= shape[1])][0]
        raise IndexError(f"{name} holds item id {bad}, outside [0, {shape[1]})")
    return indptr, indices


def _row_starts(indptr: np.ndarray, nnz: int) -> np.ndarray:
    """A mask over the entries: True where a row begins (empty rows mark nothing)."""
    starts = np.zeros(nnz, dtype=bool)
    first = indptr[:-1]
    starts[first[first < nnz]] = True
    return starts


def _rows_sorted(indptr: np.ndarray, indices: np.ndarray, strict: bool = False) -> bool:
    """Each row's indices non-decreasing, or (``strict``) increasing: sorted, no duplicates
    (one vectorised pass, no set lookups)."""
    if indices.size < 2:
        return True
    ok = np.diff(indices) > 0 if strict else np.diff(indices) >= 0
    ok |= _row_starts(indptr, indices.size)[1:]  # a decrease is fine where a new row starts
    return bool(ok.all())


def item_ids(ids: Any, name: str, n_items: int) -> np.ndarray:
    """Validate a 1-D array of item indices and return it as int32."""
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of item ids, got shape {arr.shape}")
    if arr.size == 0:
        return arr.astype(np.int32)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integer item ids, got dtype {arr.dtype}")
    if arr.min() < 0 or arr.max() >= n_items:
        bad = arr[(arr < 0) | (arr >= n_items)][0]
        raise IndexError(f"{name} holds item id {bad}, outside [0, {n_items})")
    return arr.astype(np.int32, copy=False)


def events(m: Any, name: str, n_items: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr int64, indices int32, weights float32) of a users x items CSR of events.

    Every stored entry is one event: entries keep their order (timestamps stay aligned),
    duplicates and zeros included; copies are made only to fix dtypes.
    """
    require_csr(m, name, "(users x items)")
    if m.ndim != 2 or m.shape[1] != n_items:
        raise ValueError(
            f"{name} must have one column per item ({n_items}, the rows of item_embeddings), "
            f"got shape {m.shape}"
        )
    indptr, indices = _structure(m, name, m.shape)
    data = np.asarray(m.data)
    if data.shape != indices.shape:
        raise ValueError(f"{name} is malformed: indptr/indices/data lengths do not match")
    if not (np.issubdtype(data.dtype, np.number) and not np.iscomplexobj(data)):
        raise TypeError(f"{name} must hold real numbers, got dtype {data.dtype}")
    finite_float32(data, name)
    weights = np.ascontiguousarray(data, dtype=np.float32)
    return np.ascontiguousarray(indptr, np.int64), np.ascontiguousarray(indices, np.int32), weights


def timestamps(times: Any, n: int, name: str = "timestamps") -> np.ndarray | None:
    """Times as int64 (integers, no copy when already int64) or float64, finite, length n."""
    if times is None:
        return None
    arr = np.asarray(times)
    if arr.ndim != 1 or arr.size != n:
        raise ValueError(
            f"{name} must be a 1-D array with one time per event ({n}), got shape {arr.shape}"
        )
    if np.issubdtype(arr.dtype, np.integer):
        if arr.dtype == np.uint64 and arr.size and arr.max() > np.iinfo(np.int64).max:
            fix = "give seconds since the epoch"  # as int64 they would wrap to negative times
            raise ValueError(f"{name} holds values beyond int64 (up to {arr.max()}); {fix}")
        return np.ascontiguousarray(arr, dtype=np.int64)
    if arr.dtype.kind != "f":
        raise TypeError(f"{name} must hold integers or floats, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if arr.size and not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def id_array(ids: Any, name: str, dtype: type) -> np.ndarray:
    """A 1-D array of integer ids as ``dtype`` (range checks are the caller's)."""
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of ids, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integer ids, got dtype {arr.dtype}")
    info = np.iinfo(dtype)  # an id past dtype's range would wrap: range-checked, not compared
    if (
        arr.size
        and not np.can_cast(arr.dtype, dtype)
        and (arr.min() < info.min or arr.max() > info.max)
    ):
        raise IndexError(f"{name} holds ids beyond the {info.dtype} range (ids are 0, 1, ...)")
    return np.ascontiguousarray(arr, dtype=dtype)


def float_array(values: Any, name: str, n: int) -> np.ndarray:
    """A 1-D array of ``n`` finite real numbers as float32."""
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.size != n:
        raise ValueError(f"{name} must be a 1-D array of length {n}, got shape {arr.shape}")
    if arr.size and not (np.issubdtype(arr.dtype, np.integer) or arr.dtype.kind == "f"):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    finite_float32(arr, name, "values")
    return np.ascontiguousarray(arr, dtype=np.float32)


def finite_float32(values: np.ndarray, name: str, what: str = "weights") -> None:
    """Refuse NaN, inf and values beyond float32 (checked before a cast would make them inf)."""
    if not np.isfinite(values).all():
        raise ValueError(f"{name} contains NaN or infinite {what}; drop or fix those entries")
    if values.dtype.kind == "f" and values.dtype.itemsize > 4 and values.size:
        if (peak := np.abs(values).max()) > FLOAT32_MAX:
            raise ValueError(
                f"{name} holds {what} up to {peak:.3g}, beyond float32's 3.4e38, which semrec "
                "computes in; rescale them"
            )


def canonical_csr(
    m: Any,
    name: str = "interactions",
    *,
    nonnegative: bool = False,
    trusted: bool = False,
    allow_empty: bool = False,
) -> sp.csr_array:
    """Validate a users x items CSR matrix and return a canonical float32 copy.

    The copy has int64 ``indptr``, int32 ``indices``, sorted rows and duplicates summed (in
    float32: a sum past its range is a ValueError naming the entry). Every stored entry is an
    interaction, explicit zeros included: a weight of 0 (a centred rating equal to the mean, a
    like and a dislike that cancel) is still "seen"; models that learn from the weights drop
    them from their training values (:func:`without_zeros`). The caller's matrix is never
    modified.

    ``trusted=True`` takes scipy's ``has_canonical_format`` flag at its word (for matrices
    semrec built itself); otherwise the rows are verified in one vectorised pass.
    ``allow_empty`` accepts a matrix without entries (a history of new users).
    """
    require_csr(m, name, "(users x items)")
    if m.ndim != 2 or m.shape[1] == 0 or (m.shape[0] == 0 and not allow_empty):
        raise ValueError(f"{name} must be a non-empty users x items matrix, got shape {m.shape}")
    indptr, indices = _structure(m, name, m.shape)  # structure and index checks
    data = np.asarray(m.data)
    if not (np.issubdtype(data.dtype, np.number) and not np.iscomplexobj(data)):
        raise TypeError(f"{name} must hold real numbers, got dtype {m.dtype}")
    if data.shape != indices.shape:
        raise ValueError(f"{name} is malformed: data and indices have different lengths")
    finite_float32(data, name)
    if nonnegative and data.size and data.min() < 0:
        raise ValueError(
            f"{name} contains negative weights (min {data.min()}); implicit feedback needs "
            "weights >= 0 (counts, durations, ratings)"
        )
    if data.size == 0 and not allow_empty:
        raise ValueError(f"{name} has no non-zero entries; there is nothing to learn from")
    canonical = trusted and bool(m.has_canonical_format)
    canonical = canonical or _rows_sorted(indptr, indices, strict=True)
    if canonical:
        # Already canonical: one copy with the kernels' dtypes (the caller's arrays are never
        # shared), no scipy round trip.
        return csr_from_arrays(
            m.shape, indptr.astype(np.int64), indices.astype(np.int32), data.astype(np.float32)
        )
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(indptr))
    order = np.lexsort((indices, rows))  # stable: duplicates keep their stored order
    rows, cols = rows[order], indices[order].astype(np.int32)
    values = data[order].astype(np.float32)
    first = np.ones(cols.size, dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    if not first.all():  # duplicates add up; a sum of 0 stays an entry (still seen)
        starts = np.flatnonzero(first)
        values = _duplicate_sums(values, starts, rows, cols, name)
        rows, cols = rows[starts], cols[starts]
    new_indptr = np.zeros(m.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=m.shape[0]), out=new_indptr[1:])
    return csr_from_arrays(m.shape, new_indptr, cols, values)


def _duplicate_sums(
    values: np.ndarray, starts: np.ndarray, rows: np.ndarray, cols: np.ndarray, name: str
) -> np.ndarray:
    """The float32 sum of each run of entries (one (user, item) each, from ``starts``),
    refused where it overflows: an inf weight breaks every model's arithmetic and its file."""
    with np.errstate(over="ignore"):  # refused below, naming the entry
        sums = np.add.reduceat(values, starts).astype(np.float32)
    if not np.isfinite(sums).all():
        run = int(np.flatnonzero(~np.isfinite(sums))[0])
        lo, hi = starts[run], (starts[run + 1] if run + 1 < starts.size else values.size)
        exact = float(values[lo:hi].sum(dtype=np.float64))
        raise ValueError(
            f"{name} holds {hi - lo} entries for (user {rows[lo]}, item {cols[lo]}) whose sum "
            f"overflows float32, which semrec stores weights in (max ~3.4e38; their sum is "
            f"{exact:.3g}): rescale the weights, e.g. divide them by their maximum"
        )
    return sums


def without_zeros(m: sp.csr_array) -> sp.csr_array:
    """A canonical CSR without its explicit zeros (``m`` itself when it has none).

    What a model learns from: a stored 0 is an interaction (seen) but carries no weight.
    """
    keep = m.data != 0
    if keep.all():
        return m
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))[keep]
    indptr = np.zeros(m.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=m.shape[0]), out=indptr[1:])
    return csr_from_arrays(m.shape, indptr, m.indices[keep], m.data[keep])


def summed(*matrices: sp.csr_array, name: str = "matrices") -> sp.csr_array:
    """The entries of several same-shape CSR matrices in one canonical CSR, duplicates summed
    (a sum past float32 is a ValueError naming ``name``).

    Unlike scipy's ``a + b``, an entry whose values cancel stays (as a 0): it is still seen.
    """
    shape = matrices[0].shape
    rows = [np.repeat(np.arange(shape[0], dtype=np.int64), np.diff(m.indptr)) for m in matrices]
    rows_all = np.concatenate(rows)
    order = np.argsort(rows_all, kind="stable")
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows_all, minlength=shape[0]), out=indptr[1:])
    indices = np.concatenate([np.asarray(m.indices) for m in matrices])[order]
    data = np.concatenate([np.asarray(m.data, dtype=np.float32) for m in matrices])[order]
    raw = sp.csr_array((data, indices, indptr), shape=shape)
    return canonical_csr(raw, name, allow_empty=True)


def exclusions(
    exclude: Any, name: str, shape: tuple[int, int], single: bool
) -> tuple[np.ndarray, np.ndarray]:
    """The CSR structure (indptr, sorted indices) of a top-k call's ``exclude``: a CSR of
    ``shape``, or for a single query (``single``) a 1-D array of item ids (no matrix to build)."""
    if not (single and isinstance(exclude, np.ndarray | list | tuple)):
        return csr_structure(exclude, name, shape)
    ids = item_ids(exclude, name, shape[1])
    if ids.size > 1 and not (ids[1:] >= ids[:-1]).all():
        ids = np.sort(ids)
    return np.array([0, ids.size], dtype=np.int64), np.ascontiguousarray(ids)


def csr_from_arrays(
    shape: tuple[int, int], indptr: np.ndarray, indices: np.ndarray, data: np.ndarray
) -> sp.csr_array:
    """A canonical CSR from arrays the caller knows to be canonical (int64 indptr, int32
    sorted indices, float32 data): filled in place, without scipy's re-checks."""
    out = sp.csr_array(shape, dtype=np.float32)
    out.indptr, out.indices, out.data = indptr, indices, data
    out.has_sorted_indices = True
    out.has_canonical_format = True
    return out


def interactions(m: Any, name: str, *, nonnegative: bool) -> sp.csr_array:
    """:func:`canonical_csr` for a model's training input (at least one entry)."""
    return canonical_csr(m, name, nonnegative=nonnegative)


def dataset(value: Any, name: str = "dataset") -> Any:
    """``value`` if it is a :class:`semrec.datasets.Dataset`, else a TypeError that names
    the argument and how to build one (a CSR or a table is the usual mistake)."""
    from semrec.datasets import Dataset  # the datasets package imports this module

    if not isinstance(value, Dataset):
        got = type(value).__name__
        hint = (
            f"; wrap a users x items matrix as semrec.datasets.Dataset({name})"
            if sp.issparse(value)
            else "; build one with semrec.datasets.Dataset.from_pandas(...) or Dataset(csr)"
        )
        raise TypeError(f"{name} must be a semrec.datasets.Dataset, got {got}{hint}")
    return value
