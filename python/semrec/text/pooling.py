"""Sentence pooling of token states (C++/LibTorch kernel: ``cpp/semrec/text/pooling.cpp``)."""

from __future__ import annotations

import numpy as np

from semrec import _validation as check
from semrec.text._torch import text_ext


def mean_pool(hidden: np.ndarray, lengths: np.ndarray, *, normalize: bool = True) -> np.ndarray:
    """Average each sequence's first ``lengths[i]`` token vectors (padding is ignored).

    This is the pooling sentence-transformers models such as all-MiniLM-L6-v2 apply to the
    transformer's last hidden states.

    Parameters
    ----------
    hidden : ndarray of float32, shape (n, seq_len, dim)
        Token states, C-contiguous.
    lengths : array of int, shape (n,)
        Number of real (non-padding) tokens in each sequence, in ``[0, seq_len]``. A length of
        0 gives a zero vector.
    normalize : bool, default True
        L2-normalise each pooled vector.

    Returns
    -------
    ndarray of float32, shape (n, dim)

    Raises
    ------
    ValueError
        When values so large that their float32 sum or norm overflows would give infinite,
        NaN or zero vectors.

    Examples
    --------
    >>> import numpy as np
    >>> from semrec.text import mean_pool
    >>> h = np.array([[[1, 0], [3, 0], [9, 9]]], dtype=np.float32)
    >>> mean_pool(h, np.array([2]), normalize=False).tolist()
    [[2.0, 0.0]]
    """
    if not isinstance(hidden, np.ndarray) or hidden.dtype != np.float32:
        raise TypeError("hidden must be a float32 ndarray of shape (n, seq_len, dim)")
    if hidden.ndim != 3:
        raise ValueError(f"hidden must be 3-D (n, seq_len, dim), got shape {hidden.shape}")
    if not hidden.flags.c_contiguous:
        raise ValueError("hidden must be C-contiguous; pass np.ascontiguousarray(hidden)")
    if not np.isfinite(hidden).all():
        raise ValueError("hidden contains NaN or infinite values")
    try:
        lengths = np.asarray(lengths)
    except ValueError:  # a ragged list: NumPy's message names no argument
        raise ValueError(
            f"lengths must have shape ({hidden.shape[0]},), one per sequence, got a ragged list"
        ) from None
    if lengths.shape != (hidden.shape[0],):
        raise ValueError(
            f"lengths must have shape ({hidden.shape[0]},), one per sequence, got {lengths.shape}"
        )
    if lengths.size and not np.issubdtype(lengths.dtype, np.integer):
        raise TypeError(f"lengths must hold integers, got dtype {lengths.dtype}")
    if lengths.size and (lengths.min() < 0 or lengths.max() > hidden.shape[1]):
        raise ValueError(f"lengths must lie in [0, {hidden.shape[1]}] (the sequence length)")
    normalize = check.flag(normalize, "normalize")
    lengths = np.ascontiguousarray(lengths, dtype=np.int64)
    pooled = text_ext.mean_pool(hidden, lengths, normalize)
    # The kernel sums and takes norms in float32: finite values near its limit overflow (to
    # inf, or NaN once normalised), and a norm that overflows turns its row into zeros.
    overflow = not np.isfinite(pooled).all()
    if not overflow and normalize:
        zero = (lengths > 0) & ~pooled.any(axis=1)  # rare: check those rows' means
        overflow = zero.any() and text_ext.mean_pool(hidden[zero], lengths[zero], False).any()
    if overflow:
        raise ValueError(
            "hidden's values overflow float32 when pooled (their sum or norm exceeds "
            f"{np.finfo(np.float32).max:.3g}); scale them down first"
        )
    return pooled
