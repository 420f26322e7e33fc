"""Corrupted copies of valid files, for the file readers' fuzz tests.

Every reader of a file (safetensors, model config and tokenizer files, saved models, the
embedding cache) gets a test marked ``fuzz`` that feeds it the corruptions of a valid file made
here and checks that each one either raises :class:`semrec.FormatError` or reads back exactly
what was written: never a crash, a hang, a raw library error or unbounded memory.

``make test`` runs ``SEMREC_FUZZ_CASES`` cases per reader (200 by default); ``make fuzz`` runs
the same tests with many more.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

FUZZ_CASES = int(os.environ.get("SEMREC_FUZZ_CASES", "200"))


def corruptions(blob: bytes, cases: int = FUZZ_CASES, seed: int = 0) -> Iterator[tuple[str, bytes]]:
    """``cases`` damaged copies of ``blob``, each with a short description of the damage.

    The kinds alternate: a truncation (to any length, the empty file included), one flipped
    bit, a run of random bytes written over the file, and a run of bytes removed from the
    middle. The same ``seed`` gives the same cases.
    """
    rng = np.random.default_rng(seed)
    n = len(blob)
    if n == 0:
        raise ValueError("blob is empty: corrupt a valid, non-empty file")
    for case in range(cases):
        kind = case % 4
        if kind == 0:
            cut = int(rng.integers(0, n))
            yield f"truncated to {cut} of {n} bytes", blob[:cut]
        elif kind == 1:
            pos, bit = int(rng.integers(0, n)), int(rng.integers(0, 8))
            damaged = bytearray(blob)
            damaged[pos] ^= 1 << bit
            yield f"bit {bit} of byte {pos} flipped", bytes(damaged)
        elif kind == 2:
            pos = int(rng.integers(0, n))
            length = int(rng.integers(1, min(64, n - pos) + 1))
            noise = rng.integers(0, 256, size=length, dtype=np.uint8).tobytes()
            yield f"{length} random bytes at {pos}", blob[:pos] + noise + blob[pos + length :]
        else:
            pos = int(rng.integers(0, n))
            length = int(rng.integers(1, min(64, n - pos) + 1))
            yield f"{length} bytes removed at {pos}", blob[:pos] + blob[pos + length :]
