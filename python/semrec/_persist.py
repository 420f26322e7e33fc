"""One save-file format for every model: a ``.npz`` archive of arrays plus JSON metadata.

No pickle anywhere. The metadata names the format (``"semrec.ALS"`` ...) and its version, so
loading a file of another kind or version fails with a clear :class:`semrec.FormatError`.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from typing import Any

import numpy as np
import scipy.sparse as sp

from semrec.errors import FormatError


def write(
    path: str | os.PathLike[str],
    format_name: str,
    version: int,
    meta: dict[str, Any],
    arrays: dict[str, np.ndarray],
) -> None:
    """Write ``arrays`` and ``meta`` (JSON-serialisable) to ``path``.

    The archive is written to a temporary file next to ``path`` and renamed over it, so a
    crash or a full disk never leaves a half-written file where a good one was.
    """
    header = {"format": format_name, "version": version, **meta}
    blob = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    tmp = f"{os.fspath(path)}.tmp-{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            np.savez(f, metadata=blob, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read(
    path: str | os.PathLike[str], format_name: str, version: int
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a file written by :func:`write`; returns ``(meta, arrays)``.

    Raises ``FileNotFoundError`` for a missing file and :class:`semrec.FormatError` for a
    corrupt file, a file of another format, or another version.
    """
    with open(path, "rb") as f:
        raw = f.read()
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
        meta = json.loads(arrays.pop("metadata").tobytes().decode())
    except (zipfile.BadZipFile, OSError, ValueError, KeyError, EOFError) as exc:
        raise FormatError(f"{path} is not a readable {format_name} file ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != format_name:
        found = meta.get("format") if isinstance(meta, dict) else meta
        raise FormatError(f"{path} is not a {format_name} file (its format is {found!r})")
    if meta.get("version") != version:
        raise FormatError(
            f"{path} has {format_name} format version {meta.get('version')!r}; this semrec "
            f"reads version {version}. Re-train and save with this version."
        )
    return meta, arrays


def csr_arrays(m: sp.csr_array, prefix: str) -> dict[str, np.ndarray]:
    """The three arrays of a CSR matrix, named ``<prefix>_indptr`` etc., for :func:`write`."""
    return {f"{prefix}_indptr": m.indptr, f"{prefix}_indices": m.indices, f"{prefix}_data": m.data}


def csr_from(arrays: dict[str, np.ndarray], prefix: str, shape: tuple[int, int]) -> sp.csr_array:
    """Rebuild and fully check a CSR matrix stored with :func:`csr_arrays`.

    Raises ``KeyError`` / ``ValueError`` on damage; callers turn those into ``FormatError``.
    """
    m = sp.csr_array(
        (arrays[f"{prefix}_data"], arrays[f"{prefix}_indices"], arrays[f"{prefix}_indptr"]),
        shape=shape,
    )
    m.check_format(full_check=True)
    return m
