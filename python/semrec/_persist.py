"""One save-file format for every model: an uncompressed ``.npz`` of arrays plus JSON metadata.

No pickle anywhere. The metadata names the format (``"semrec.ALS"`` ...) and its version, and
holds a SHA-256 of every array, so loading a file of another kind or version, a truncated file
or one with flipped bytes fails with a clear :class:`semrec.FormatError`. Reading checks every
array's header against the bytes actually stored before anything is allocated (a header that
claims 10^12 elements is refused, not attempted), and :class:`Saved` gives each model checked
access to its fields, so that a load validates everything it reads up front and every error
names the file and the field.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import struct
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp

from semrec import _files as files
from semrec import _validation as check
from semrec._hyperparameters import memory_bytes
from semrec.errors import FormatError

# The metadata is JSON; deeper nesting than this is not something semrec writes.
_MAX_JSON_DEPTH = 64
_ALLOWED_KINDS = "biuf"  # bool, ints, unsigned ints, floats: no objects, strings or voids


def write(
    path: str | os.PathLike[str],
    meta: dict[str, Any],
    arrays: dict[str, Any],
    loads: Callable[[Saved], Any] | None = None,
) -> None:
    """Write ``arrays`` and ``meta`` (JSON-serialisable, with ``format`` and ``version``).

    Each array is stored C-contiguous with its SHA-256 in ``meta["checksums"]``. The archive is
    written to a temporary file next to ``path``, flushed to disk and renamed over it, so a
    crash or a full disk never leaves a half-written file where a good one was; a file it
    replaces keeps its permission bits, and a leading ``~`` in ``path`` is the home. With
    ``loads`` (a loader of the content), what it would refuse is a ValueError and nothing is
    written: a model whose hyperparameters were changed after ``fit`` no longer matches its
    arrays, and its file would not load back.
    """
    stored = {name: np.ascontiguousarray(a) for name, a in arrays.items()}
    for name, a in stored.items():
        if a.dtype.kind not in _ALLOWED_KINDS:
            raise TypeError(f"cannot save array {name!r} of dtype {a.dtype} (numbers only)")
    text = json.dumps(meta, default=_plain)
    if loads is not None:
        _check_loads(loads, path, json.loads(text), stored)
    header = {**meta, "checksums": {name: _digest(a.data) for name, a in stored.items()}}
    blob = np.frombuffer(json.dumps(header, default=_plain).encode(), dtype=np.uint8)
    target = files.writable_path(path)
    tmp = files.temporary_beside(target)
    try:
        with open(tmp, "xb") as f:
            np.savez(f, metadata=blob, **stored)
            f.flush()
            os.fsync(f.fileno())
        files.replace(tmp, target)  # an existing file keeps its permission bits
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _check_loads(
    loads: Callable[[Saved], Any], path: Any, meta: dict[str, Any], arrays: dict[str, Any]
) -> None:
    """Load the content in memory as ``load`` would read it back (the item index aside: it is
    rebuilt from the model's own vectors); what it refuses is a ValueError."""
    meta.pop("item_index", None)
    try:
        loads(Saved(path, meta, arrays))
    except FormatError as refused:
        problem = str(refused).split(" is corrupt: ", 1)[-1]
        hint = (
            "The model holds too many users or items without any interaction for a file to "
            "vouch for them; drop the empty rows or columns of the interactions before fit"
            if isinstance(refused, _UnbackedCount)
            else "A hyperparameter changed after fit? Refit the model, or set it back. Was it "
            "changed by another thread during the save? Save again"
        )
        raise ValueError(f"not saved: the model would not load back ({problem}). {hint}") from None


def _plain(value: Any) -> Any:
    """JSON for the NumPy scalars a hyperparameter may be given as (``np.int64(4)`` from a
    grid): their Python value. Anything else is not data a model saves."""
    if isinstance(value, np.bool_ | np.integer | np.floating):
        return value.item()
    raise TypeError(
        f"cannot save {type(value).__name__} {value!r} (numbers, strings and lists only)"
    )


# Users or items without any event take no stored value, so no array backs their count; a file
# may claim this much memory worth of them (2^26 at 16 bytes each) beyond what it stores. A
# crafted file can make a load allocate about this much, no more; a real model past it (rows or
# columns without events by the tens of millions) is refused at save time, saying why.
_UNBACKED_BYTES = 2**30


class _UnbackedCount(FormatError):
    """A count of users or items past what the file stores and the allowance beyond it."""


# What a load derives per user or item from a count, at the least: an int64 offset and a
# float64 value (a model whose entries cost more, e.g. a profile each, says so).
_ENTRY_BYTES = 16


def load_error(saved: Saved, exc: Exception) -> FormatError:
    """The FormatError for what a model's own checks refused while it was restored from
    ``saved`` (their message), or for a MemoryError: the counts the file claims, not NumPy's
    "Unable to allocate" (a count no check could bound, or a machine short of memory)."""
    if not isinstance(exc, MemoryError):
        return FormatError(f"{saved.path} is corrupt: {saved.prefix}{exc}")
    claims = "; ".join(f"{key} claims {count}" for key, count in saved.claims)
    return FormatError(
        f"{saved.path} is corrupt, or too large for this machine: restoring it ran out of "
        f"memory ({claims or 'counts from its arrays'}); load it on a machine with more memory"
    )


def read(path: str | os.PathLike[str], format_name: str, version: int) -> Saved:
    """Read and verify a file written by :func:`write`.

    Raises ``FileNotFoundError`` for a missing file and :class:`semrec.FormatError` for a
    corrupt file, a file of another format, or another version.
    """
    # Members are read one at a time from the file: no copy of the whole file beside them.
    with open(files.loadable_path(path), "rb") as f:
        members = _read_archive(f, path, format_name)
    digests = {name: digest for name, (_, digest) in members.items()}
    arrays = {name: a for name, (a, _) in members.items()}
    blob = arrays.pop("metadata", None)
    digests.pop("metadata", None)
    if blob is None or blob.dtype != np.uint8 or blob.ndim != 1:
        raise FormatError(f"{path} is not a {format_name} file (no metadata)")
    meta = _json(blob, path, format_name)
    if meta.get("format") != format_name:
        raise FormatError(
            f"{path} is not a {format_name} file (its format is {meta.get('format')!r})"
        )
    if meta.get("version") != version:
        raise FormatError(
            f"{path} has {format_name} format version {meta.get('version')!r}; this semrec "
            f"reads version {version}. Re-train and save with this version."
        )
    checksums = meta.get("checksums")
    if not isinstance(checksums, dict) or set(checksums) != set(arrays):
        raise FormatError(f"{path} is corrupt: its arrays and their checksums do not match")
    for name, digest in digests.items():
        if checksums[name] != digest:
            raise FormatError(f"{path} is corrupt: array {name!r} does not match its checksum")
    return Saved(path, meta, arrays)


def csr_arrays(m: sp.csr_array, prefix: str) -> dict[str, np.ndarray]:
    """The three arrays of a CSR matrix, named ``<prefix>_indptr`` etc., for :func:`write`."""
    return {f"{prefix}_indptr": m.indptr, f"{prefix}_indices": m.indices, f"{prefix}_data": m.data}


def constructor_count(items: Any) -> np.ndarray:
    """How many rows the constructor's ``item_embeddings`` had, saved beside the grown catalogue
    (items added later come after them): load rebuilds the same hyperparameters, so the repr
    round-trips and a refit drops the added items, as the original's does."""
    return np.array([np.shape(items)[0]], dtype=np.int64)


def constructor_rows(saved: Saved) -> np.ndarray:
    """The constructor's ``item_embeddings`` of a saved model: the first ``constructor_items``
    rows of the saved catalogue (all of them in files written before that count was)."""
    items = saved.array("item_embeddings", np.float32, (None, None))
    if "constructor_items" not in saved.arrays:
        return items
    count = saved.array("constructor_items", np.int64, (1,), minimum=0, below=items.shape[0] + 1)
    return np.ascontiguousarray(items[: int(count[0])])


class Saved:
    """The verified content of a saved model, with checked access to each field.

    Every accessor raises :class:`semrec.FormatError` naming the file and the field when the
    content is not what the model wrote: a wrong dtype or shape, NaN, a negative weight where
    none can be, an id outside its range, a missing key.
    """

    def __init__(
        self, path: Any, meta: dict[str, Any], arrays: dict[str, np.ndarray], prefix: str = ""
    ) -> None:
        self.path = path
        self.meta = meta
        self.arrays = arrays
        self.prefix = prefix
        self.claims: list[tuple[str, int]] = []  # the counts read from metadata, for errors

    def error(self, field: str, problem: str) -> FormatError:
        """The error for a damaged field (the message says "corrupt", the file and the field)."""
        return FormatError(f"{self.path} is corrupt: {self.prefix}{field} {problem}")

    # -- metadata --------------------------------------------------------------------------------
    def value(
        self, key: str, kind: type | tuple[type, ...], *, minimum: float | None = None
    ) -> Any:
        """``meta[key]``, of the JSON type ``kind`` (int excludes bool), ``>= minimum``."""
        if key not in self.meta:
            raise self.error(key, "is missing from the metadata")
        value = self.meta[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds:
            raise self.error(key, f"must be {_names(kinds)}, got {value!r}")
        if not isinstance(value, kinds):
            raise self.error(key, f"must be {_names(kinds)}, got {type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.error(key, f"must be finite, got {value}")
        if minimum is not None and isinstance(value, int | float) and value < minimum:
            raise self.error(key, f"must be >= {minimum}, got {value}")
        return value

    def count(self, key: str, *, entry_bytes: int = _ENTRY_BYTES) -> int:
        """A number of users or items from the metadata: an int in [0, 2^31 - 1] (ids are
        int32; a larger count in an edited file would size an allocation of terabytes), and
        loadable (:meth:`_loadable`; ``entry_bytes``: what the load derives per entry)."""
        value = self.value(key, int, minimum=0)
        if value > check.INT32_MAX:
            raise self.error(key, f"must be <= {check.INT32_MAX} (int32 ids), got {value}")
        self._loadable(key, value, entry_bytes)
        return value

    def shape(self, key: str) -> tuple[int, int]:
        """A (rows, columns) pair of counts (:meth:`count`) from the metadata."""
        value = self.value(key, list)
        if len(value) != 2 or not all(
            isinstance(n, int) and not isinstance(n, bool) for n in value
        ):
            raise self.error(key, f"must be [rows, columns], got {value!r}")
        if min(value) < 0 or max(value) > check.INT32_MAX:
            raise self.error(key, f"must hold sizes in [0, {check.INT32_MAX}], got {value!r}")
        for n in value:
            self._loadable(key, n, _ENTRY_BYTES)
        return int(value[0]), int(value[1])

    def _loadable(self, key: str, count: int, entry_bytes: int) -> None:
        """Refuse a count of users or items that the file's arrays do not back, before a load
        derives per-user or per-item arrays from it (a 10 KB file that claimed 2^31 - 1 items
        made loads allocate 16 GiB; one that claimed 10^8 allocated 1.6 GB).

        Every user or item a model holds takes at least one stored value (its row of factors,
        its offset in a CSR, an event), except those without any event. So a count may pass
        the number of values the file stores by at most :data:`_UNBACKED_BYTES` worth of
        entries, whatever the machine; and in any case the entries must fit in half of its
        memory."""
        self.claims.append((self.prefix + key, count))
        largest = memory_bytes() // (2 * entry_bytes)
        if count > largest:
            raise self.error(
                key,
                f"claims {count} users or items: loading them would need more than half of this "
                f"machine's memory ({largest} at most here); the file is corrupt, or was "
                "written on a machine with far more memory",
            )
        stored = sum(a.size for a in self.arrays.values())
        unbacked = _UNBACKED_BYTES // entry_bytes
        if count > stored + unbacked:
            refused = self.error(
                key,
                f"claims {count} users or items, but the file stores only {stored} values: "
                f"at most {unbacked} of them may go without stored data of their own (an "
                "event, a row)",
            )
            raise _UnbackedCount(str(refused))

    def params(self, allowed: tuple[str, ...]) -> dict[str, Any]:
        """The saved hyperparameters (only names the model takes; values checked by its
        ``__init__`` / ``fit`` checks, whose errors ``load`` reports as FormatErrors)."""
        params = self.value("params", dict)
        unknown = set(params) - set(allowed)
        if unknown:
            raise self.error("params", f"name unknown hyperparameters {sorted(unknown)}")
        return dict(params)

    def nested(self, key: str) -> Saved:
        """The state of a model saved inside this one (a Hybrid's member, an ALS in a
        ColdStartALS): its metadata ``meta[key]``, its arrays under ``<key>/``."""
        meta = self.value(key, dict)
        prefix = f"{key}/"
        arrays = {n[len(prefix) :]: a for n, a in self.arrays.items() if n.startswith(prefix)}
        return Saved(self.path, meta, arrays, self.prefix + prefix)

    # -- arrays ----------------------------------------------------------------------------------
    def array(
        self,
        name: str,
        dtype: Any,
        shape: tuple[int | None, ...],
        *,
        finite: bool = True,
        minimum: float | None = None,
        below: int | None = None,
    ) -> np.ndarray:
        """Array ``name``, exactly of ``dtype`` (an integer dtype: any integer dtype, cast),
        of ``shape`` (``None`` matches any length), finite, ``>= minimum`` and ``< below``."""
        if name not in self.arrays:
            raise self.error(name, "is missing")
        a = self.arrays[name]
        want = np.dtype(dtype)
        if want.kind in "iu" and a.dtype.kind in "iu":
            info = np.iinfo(want)  # checked before the cast: 2**32 + 7 would wrap to 7
            if (
                a.size
                and not np.can_cast(a.dtype, want)
                and (a.min() < info.min or a.max() > info.max)
            ):
                raise self.error(name, f"holds values beyond {want} ({a.min()} to {a.max()})")
            a = a.astype(want, copy=False)
        elif a.dtype != want:
            raise self.error(name, f"must have dtype {want}, got {a.dtype}")
        fits = a.ndim == len(shape)
        if not fits or any(n is not None and n != m for n, m in zip(shape, a.shape, strict=True)):
            expected = tuple("any" if n is None else n for n in shape)
            raise self.error(name, f"must have shape {expected}, got {a.shape}")
        if finite and a.dtype.kind == "f" and not np.isfinite(a).all():
            raise self.error(name, "holds NaN or infinite values")
        if a.size and minimum is not None and a.min() < minimum:
            raise self.error(name, f"must hold values >= {minimum}, found {a.min()}")
        if a.size and below is not None and a.max() >= below:
            raise self.error(name, f"must hold values < {below}, found {a.max()}")
        return a

    def csr(
        self, prefix: str, shape: tuple[int, int], *, nonnegative: bool = False
    ) -> sp.csr_array:
        """The CSR matrix saved with :func:`csr_arrays`, fully checked, canonical."""
        indptr = self.array(f"{prefix}_indptr", np.int64, (shape[0] + 1,))
        indices = self.array(f"{prefix}_indices", np.int32, (None,))
        data = self.array(f"{prefix}_data", np.float32, (indices.size,))
        if nonnegative and data.size and data.min() < 0:
            raise self.error(f"{prefix}_data", f"holds negative weights (min {data.min()})")
        m = sp.csr_array(shape, dtype=np.float32)
        m.indptr, m.indices, m.data = indptr, indices, data
        try:
            return check.canonical_csr(m, prefix, allow_empty=True)
        except (ValueError, IndexError, TypeError) as exc:
            raise self.error(prefix, f"is not a valid CSR matrix ({exc})") from None


# -- reading the archive -------------------------------------------------------------------------


def _read_archive(
    file: io.BufferedReader, path: Any, format_name: str
) -> dict[str, tuple[np.ndarray, str]]:
    """Every ``.npy`` member, each checked against its stored size before it is read."""
    try:
        size = os.fstat(file.fileno()).st_size
        with zipfile.ZipFile(file) as z:
            return dict(_members(z, size, path))
    except FormatError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, KeyError, EOFError,
            NotImplementedError, OverflowError, RuntimeError, UnicodeDecodeError, MemoryError,
            IndexError, TypeError, SyntaxError, RecursionError, struct.error) as exc:  # fmt: skip
        raise FormatError(f"{path} is not a readable {format_name} file ({exc})") from None


def _members(
    z: zipfile.ZipFile, file_size: int, path: Any
) -> Iterator[tuple[str, tuple[np.ndarray, str]]]:
    seen = set()
    for info in z.infolist():
        if not info.filename.endswith(".npy") or info.filename in seen:
            raise FormatError(f"{path} is corrupt: unexpected member {info.filename!r}")
        seen.add(info.filename)
        if info.compress_type != zipfile.ZIP_STORED or info.file_size > file_size:
            raise FormatError(f"{path} is corrupt: member {info.filename!r} is not stored plainly")
        yield info.filename[:-4], _npy(z.read(info), f"{path}: {info.filename}")


def _npy(blob: bytes, where: str) -> tuple[np.ndarray, str]:
    """An array from the bytes of one ``.npy`` member (header checked against the size), and
    the SHA-256 of its data bytes."""
    f = io.BytesIO(blob)
    major, _ = np.lib.format.read_magic(f)
    if major == 1:
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
    elif major in (2, 3):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise FormatError(f"{where} has an unknown .npy version {major}")
    if dtype.kind not in _ALLOWED_KINDS or dtype.hasobject:
        raise FormatError(f"{where} holds dtype {dtype}, not numbers")
    offset = f.tell()
    count = math.prod(int(n) for n in shape)
    if count * dtype.itemsize != len(blob) - offset:
        raise FormatError(
            f"{where}: its header claims {count} values of {dtype}, the file holds "
            f"{len(blob) - offset} bytes"
        )
    body = bytearray(memoryview(blob)[offset:])  # one writable copy of the data bytes
    data = np.frombuffer(body, dtype=dtype, count=count)
    return data.reshape(shape, order="F" if fortran else "C"), _digest(body)


def _json(blob: np.ndarray, path: Any, format_name: str) -> dict[str, Any]:
    try:
        text = blob.tobytes().decode("utf-8")
        if _depth(text) > _MAX_JSON_DEPTH:
            raise ValueError("nested too deeply")
        meta = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise FormatError(
            f"{path} is not a readable {format_name} file (metadata: {exc})"
        ) from None
    if not isinstance(meta, dict):
        raise FormatError(f"{path} is not a {format_name} file (metadata is not an object)")
    return meta


def _depth(text: str) -> int:
    """Upper bound of the JSON nesting depth (brackets inside strings count too)."""
    depth = deepest = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _digest(buffer: Any) -> str:
    view = memoryview(buffer)  # an empty array's view has a zero in its shape: cannot cast
    return hashlib.sha256(view.cast("B") if view.nbytes else b"").hexdigest()


def _names(kinds: tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in kinds)
