"""How a Hybrid reads its members: their score rows, their fitted shape and their seen items.

Shared by :class:`semrec.Hybrid` and its weight search (``semrec._hybrid_tuning``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from semrec import _validation as check
from semrec._base import Recommender
from semrec._histories import runs


def member_scores(model: Any, users: np.ndarray, n_items: int) -> np.ndarray:
    """Scores of every item for ``users`` (float32 or float64) from ``model.score``, or from a
    full-catalogue ``recommend`` (unlisted items -inf) for models without ``score``."""
    if hasattr(model, "score"):
        out = np.asarray(model.score(users, np.arange(n_items)))
        if out.dtype != np.float32:  # float32 stays: the blend reads it as it is
            out = out.astype(np.float64)
    else:
        ids, scores = model.recommend(users, k=n_items, exclude_seen=False)
        ids = np.asarray(ids).reshape(users.size, -1)
        scores = np.asarray(scores, dtype=np.float64).reshape(users.size, -1)
        out = np.full((users.size, n_items), -np.inf)
        rows, cols = np.nonzero(ids >= 0)
        out[rows, ids[rows, cols]] = scores[rows, cols]
    if out.shape != (users.size, n_items):
        raise ValueError(
            f"{type(model).__name__} returned scores of shape {out.shape}, expected "
            f"{(users.size, n_items)}"
        )
    return out


def seen_union(rows: Sequence[Any]) -> sp.csr_array:
    """The union of several users x items matrices' entries (1 where any has an entry; a
    stored 0 counts: it is a seen item)."""
    patterns = []
    for m in rows:
        m = sp.csr_array(m)
        patterns.append(
            sp.csr_array((np.ones(m.nnz, dtype=np.float32), m.indices, m.indptr), shape=m.shape)
        )
    union = check.summed(*patterns)
    union.data[:] = 1.0
    return union


def fitted_rows(fitted: sp.csr_array, users: np.ndarray, n_items: int) -> sp.csr_array:
    """The rows of ``users`` in ``fitted`` (the interactions given to ``Hybrid.fit``), users
    past its rows empty, ``n_items`` columns, in O(those rows): ``fitted[users]`` casts the
    whole index arrays of a CSR with int64 indptr and int32 indices on every call."""
    n = fitted.shape[0]
    first = fitted.indptr[np.minimum(users, n)]
    lengths = fitted.indptr[np.minimum(users + 1, n)] - first
    indptr, indices, data = runs(fitted.indices, fitted.data, first, lengths)
    return sp.csr_array((data, indices, indptr), shape=(users.size, n_items))


def fitted_shape(model: Any) -> tuple[int, int] | None:
    """(users, items) of a fitted model, None when it is not fitted. A semrec model's own
    counts: its ``interactions_`` merges the clicks since its last read (O(all interactions),
    seconds at 10M), and a Hybrid asks on every call; ``interactions_.shape`` for others."""
    try:
        if isinstance(model, Recommender):
            return (int(model.n_users_), int(model.n_items_))
        shape = model.interactions_.shape
    except (AttributeError, ValueError, RuntimeError):  # NotFittedError is both of the first
        return None
    return (int(shape[0]), int(shape[1]))
