"""The check of what a text encoder gives (re-exported by ``_validation``)."""

from __future__ import annotations

from typing import Any

import numpy as np


def encoded(encoder: Any, texts: list[str], dim: int | None, **kwargs: Any) -> np.ndarray:
    """``encoder.encode(texts, **kwargs)`` as a C-contiguous float32 ``(len(texts), dim)`` array
    (any width for ``dim=None``) of finite values, else an error naming the encoder, before the
    caller changes anything (a wrong row count would add the wrong number of items; a wrong
    width or NaN, meaningless ones)."""
    who, n = f"encoder.encode ({type(encoder).__name__})", len(texts)
    raw = encoder.encode(texts, **kwargs)
    try:
        with np.errstate(over="ignore"):  # a float64 beyond float32 becomes inf: refused below
            out = np.ascontiguousarray(raw, dtype=np.float32)
    except (TypeError, ValueError):
        raise TypeError(
            f"{who} gave {type(raw).__name__}: give numbers, one row per text"
        ) from None
    if out.ndim != 2 or out.shape[0] != n:
        raise ValueError(
            f"{who} gave an array of shape {out.shape} for {n} texts; it must give one row per "
            f"text, shape ({n}, {'dim' if dim is None else dim})"
        )
    if dim is not None and out.shape[1] != dim:
        raise ValueError(
            f"{who} gave vectors of dimension {out.shape[1]}, but the items have dimension "
            f"{dim}; use the encoder that embedded the items"
        )
    bad = np.flatnonzero(~np.isfinite(out).all(axis=1))
    if bad.size:
        raise ValueError(
            f"{who} gave NaN or infinite values (first for text {bad[0]}: "
            f"{texts[bad[0]][:60]!r}); check the encoder"
        )
    return out
