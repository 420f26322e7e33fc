"""Reading and validating a safetensors header.

The C++ reader (``cpp/semrec/text/safetensors.cpp``) checks the framing (the 8-byte header
length against the file size) and later reads the tensors; everything in the JSON header is
checked here first, so that a corrupt or hostile file is refused with a :class:`FormatError`
that names the file and the field before a single tensor is allocated: entries of the right
types, known dtypes, shape x dtype size = byte length, offsets inside the data block, sorted,
neither overlapping nor leaving holes (the format's own rule), and a bounded nesting depth.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semrec.errors import FormatError
from semrec.text._torch import text_ext

# Bytes per element of every dtype the safetensors format defines.
DTYPE_SIZE = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1,
    "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1,
}  # fmt: skip
# A header is {name: {"dtype", "shape": [...], "data_offsets": [b, e]}, "__metadata__": {..}}:
# three levels of brackets. Anything deeper is refused before the JSON parser recurses into it.
_MAX_DEPTH = 3
_MAX_RANK = 16
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


@dataclass(frozen=True)
class TensorInfo:
    dtype: str
    shape: tuple[int, ...]
    begin: int  # byte offsets relative to the data block
    end: int


@dataclass(frozen=True)
class SafetensorsHeader:
    path: Path
    data_start: int  # file offset of the data block
    data_size: int
    tensors: dict[str, TensorInfo]
    digest: str  # SHA-256 of the header bytes


def _nesting_depth(raw: bytes) -> int:
    """Deepest bracket nesting outside JSON strings (an upper bound for malformed input)."""
    stripped = np.frombuffer(_STRING.sub(b'""', raw), dtype=np.uint8)
    if stripped.size == 0:
        return 0
    step = np.isin(stripped, (ord("{"), ord("["))).astype(np.int64)
    step -= np.isin(stripped, (ord("}"), ord("]")))
    return int(np.cumsum(step).max(initial=0))


def _no_duplicates(path: Path):
    def hook(pairs: list) -> dict:
        out: dict = {}
        for key, value in pairs:
            if key in out:
                raise FormatError(f"{path}: safetensors header names {key!r} twice")
            out[key] = value
        return out

    return hook


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _tensor_info(path: Path, name: str, info: object, data_size: int) -> TensorInfo:
    where = f"{path}: safetensors header, tensor {name!r}"
    if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
        raise FormatError(f"{where}: expected an object with dtype, shape and data_offsets")
    dtype, shape, offsets = info["dtype"], info["shape"], info["data_offsets"]
    if dtype not in DTYPE_SIZE:
        raise FormatError(f"{where}: unknown dtype {dtype!r}")
    if not isinstance(shape, list) or len(shape) > _MAX_RANK or not all(map(_is_count, shape)):
        raise FormatError(f"{where}: shape must be a list of non-negative integers, got {shape!r}")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_count, offsets))):
        raise FormatError(f"{where}: data_offsets must be [begin, end], got {offsets!r}")
    begin, end = offsets
    if not begin <= end <= data_size:
        raise FormatError(
            f"{where}: data_offsets [{begin}, {end}] lie outside the {data_size}-byte data block "
            "(file truncated?)"
        )
    count = 1
    for d in shape:
        count *= d
    if count * DTYPE_SIZE[dtype] != end - begin:
        raise FormatError(
            f"{where}: shape {shape} x {DTYPE_SIZE[dtype]} bytes ({dtype}) does not match its "
            f"{end - begin} bytes of data_offsets"
        )
    return TensorInfo(dtype, tuple(shape), begin, end)


def read_header(path: Path) -> SafetensorsHeader:
    """The validated header of the safetensors file at ``path`` (FormatError if corrupt)."""
    try:
        raw, data_start, data_size = text_ext.read_safetensors_header(str(path))
    except text_ext.SafetensorsError as exc:
        raise FormatError(f"{path}: not a valid safetensors file ({exc})") from exc
    except RuntimeError as exc:  # the C++ reader could not open it
        raise OSError(f"cannot read {path}: {exc}") from exc
    depth = _nesting_depth(raw)
    if depth > _MAX_DEPTH:
        raise FormatError(
            f"{path}: safetensors header nests {depth} levels deep (a valid one has {_MAX_DEPTH})"
        )
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates(path))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise FormatError(f"{path}: safetensors header is not valid JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise FormatError(f"{path}: safetensors header must be a JSON object")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise FormatError(f"{path}: safetensors __metadata__ must map strings to strings")
    tensors = {name: _tensor_info(path, name, info, data_size) for name, info in header.items()}
    # The format's rule: tensors tile the data block in offset order, no overlap, no hole.
    position, previous = 0, None
    for name, t in sorted(tensors.items(), key=lambda kv: (kv[1].begin, kv[1].end)):
        if t.begin != position:
            what = "overlaps" if t.begin < position else "leaves a gap after"
            other = repr(previous) if previous is not None else "the start of the data block"
            raise FormatError(
                f"{path}: safetensors tensor {name!r} (bytes {t.begin}-{t.end}) {what} {other}"
            )
        position, previous = t.end, name
    if position != data_size:
        raise FormatError(
            f"{path}: safetensors tensors cover {position} of the {data_size} bytes of data "
            "(extra bytes at the end)"
        )
    digest = hashlib.sha256(raw).hexdigest()
    return SafetensorsHeader(Path(path), data_start, data_size, tensors, digest)


def read_float32(header: SafetensorsHeader, names: list[str]) -> dict[str, np.ndarray]:
    """The named tensors of a validated file as float32 arrays (F32, F16 or BF16 stored)."""
    raw = np.memmap(header.path, dtype=np.uint8, mode="r")
    out = {}
    for name in names:
        t = header.tensors[name]
        data = raw[header.data_start + t.begin : header.data_start + t.end]
        if t.dtype == "F32":
            values = data.view("<f4")
        elif t.dtype == "F16":
            values = data.view("<f2").astype(np.float32)
        elif t.dtype == "BF16":  # the top half of a float32
            values = (data.view("<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise FormatError(f"{header.path}: tensor {name!r} has dtype {t.dtype}, not a float")
        out[name] = np.array(values, dtype=np.float32).reshape(t.shape)
    return out


def raw_tensors(header: SafetensorsHeader) -> dict[str, tuple[str, tuple[int, ...], bytes]]:
    """Every tensor of a validated file as (dtype, shape, stored bytes)."""
    with open(header.path, "rb") as f:
        f.seek(header.data_start)
        data = f.read(header.data_size)
    return {n: (t.dtype, t.shape, data[t.begin : t.end]) for n, t in header.tensors.items()}


def write_tensors(
    path: Path, tensors: dict[str, tuple[str, tuple[int, ...], bytes]], metadata: dict[str, str]
) -> None:
    """A safetensors file of (dtype, shape, little-endian bytes) tensors, names sorted, the data
    tiled in that order, flushed to disk."""
    header: dict[str, object] = {"__metadata__": metadata}
    offset = 0
    for name in sorted(tensors):
        dtype, shape, data = tensors[name]
        end = offset + len(data)
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, end]}
        offset = end
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the format pads the header to 8 bytes
    with open(path, "wb") as f:
        f.write(len(raw).to_bytes(8, "little"))
        f.write(raw)
        for name in sorted(tensors):
            f.write(tensors[name][2])
        f.flush()
        os.fsync(f.fileno())
