"""The codes :class:`semrec.PQIndex` saved before its own scan: faiss fast-scan indexes
(``IndexPQFastScan``, 4-bit codes, inner product), one serialised index or several shards behind
:data:`SHARDS_MAGIC`. Only their codebooks are kept (the items are coded again), and their
layout is checked before faiss reads them: faiss allocates whatever size a blob declares.
"""

from __future__ import annotations

import math

import numpy as np

from semrec import _approximate as approx

SHARDS_MAGIC = b"semrec.PQshards\n"  # faiss fast-scan shards behind a header
_MAX_SHARDS = 256
_CODE_BITS = 4  # the only width semrec saved
_KSUB = 1 << _CODE_BITS
_WHAT = "inner-product PQ codes"


def faiss_codebook(codes: np.ndarray, n: int, dim: int, m: int) -> np.ndarray | None:
    """The codebooks (None: untrained) of the faiss fast-scan ``codes`` (uint8) of ``n``
    items of ``dim`` dimensions in ``m`` sub-spaces; ValueError naming ``codes`` otherwise."""
    faiss = approx.load_faiss("PQIndex")
    blobs = _faiss_blobs(codes)
    for blob in blobs:
        _check_layout(blob)
    parts = [approx.deserialized(blob, "PQIndex", "codes") for blob in blobs]
    for part in parts:
        if not isinstance(part, faiss.IndexPQFastScan) or part.metric_type != (
            faiss.METRIC_INNER_PRODUCT
        ):
            raise ValueError(f"codes are a {type(part).__name__}, not {_WHAT}")
    total = sum(p.ntotal for p in parts)
    trained = {p.is_trained for p in parts}
    untrained = trained == {False} and total == 0 and n < _KSUB
    shapes = {(p.d, p.pq.M, p.pq.nbits) for p in parts}
    if not (untrained or (trained == {True} and total == n)) or shapes != {
        (m * math.ceil(dim / m), m, _CODE_BITS)
    }:
        p = parts[0]
        raise ValueError(
            f"codes hold {total} vectors of dimension {p.d} in {p.pq.M} sub-spaces, the items "
            f"{n} of dimension {dim} in {m}"
        )
    if untrained:
        return None
    books = [faiss.vector_to_array(p.pq.centroids) for p in parts]
    if any(not np.array_equal(books[0], b) for b in books[1:]):
        raise ValueError("codes: the shards were coded with different codebooks")
    return books[0].astype(np.float32).reshape(m, _KSUB, -1)


def _faiss_blobs(codes: np.ndarray) -> list[np.ndarray]:
    """The serialised faiss indexes of older codes: behind :data:`SHARDS_MAGIC`, the shard
    count and each blob's length (little-endian uint64), or one bare index."""
    if codes[: len(SHARDS_MAGIC)].tobytes() != SHARDS_MAGIC:
        return [codes]
    start = len(SHARDS_MAGIC) + 8
    count = int(codes[len(SHARDS_MAGIC) : start].view("<u8")[0]) if codes.size >= start else 0
    if not 1 <= count <= _MAX_SHARDS or codes.size < start + 8 * count:
        raise ValueError(f"codes: the header names {count} shards (expected 1-{_MAX_SHARDS})")
    sizes = codes[start : start + 8 * count].view("<u8")
    if (sizes == 0).any() or (sizes > codes.size).any():
        raise ValueError("codes: a shard's size in the header is 0 or beyond the array")
    ends = start + 8 * count + np.cumsum(sizes.astype(np.int64))
    if ends[-1] != codes.size:
        raise ValueError(f"codes: the shards hold {ends[-1]} bytes, the array {codes.size}")
    return [codes[e - int(s) : e] for s, e in zip(sizes, ends, strict=True)]


def _check_layout(blob: np.ndarray) -> None:
    """``blob`` laid out as faiss writes an inner-product ``IndexPQFastScan``, every size it
    declares within its bytes (ValueError naming ``codes`` otherwise)."""
    walk = approx.FaissLayout(blob, "codes")
    d, _ = walk.header(b"IPfs", f"{_WHAT} (neither semrec's nor faiss fast-scan ones)")
    pq_d, _, nbits = walk.fields("<QQQ")
    if (pq_d, nbits) != (d, _CODE_BITS) or walk.vector(4) != d * _KSUB:  # the centroids
        raise ValueError(f"codes are damaged: their codebooks are not {_CODE_BITS}-bit ones of {d}")
    walk.fields("<iiiqQ")  # implementation, block sizes, padded item count, padded m
    walk.vector(1)  # the codes
    walk.end()
