"""Explanations: which items of a user's history make a recommendation, and by how much.

Every model's ``explain(user, item, k=5)`` returns the same shape, built by
:func:`explanation`: a :class:`pandas.DataFrame` with one row per history item, the largest
contributions first (at most ``k`` rows), and the columns

``item`` (int32)
    Index of the history item.
``contribution`` (float64)
    Its additive part of the score, in the score's units.
``share`` (float64)
    ``contribution / sum(|contribution|)`` over the *whole* history (not only the ``k`` rows
    shown): in [-1, 1], sign kept, and the absolute shares of the whole history add up to 1.
    When every contribution is positive and the model is purely additive, this is the
    fraction of the score the item explains ("recommended because you liked X (40%)").

``frame.attrs`` holds ``user``, ``item`` (the explained pair), ``score`` (the model's score
for it), ``explained`` (the sum of all history contributions; +-inf only when that sum is past
float64's range, the shares stay exact) and ``rest`` (``score - explained``: intercepts and
biases that no history item carries, or the approximation gap when the model's score is not
exactly the sum; each model documents when it is exact).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from semrec import _validation as check

COLUMNS = ("item", "contribution", "share")


def explanation(
    items: Any, contributions: Any, k: int, *, user: int, item: int, score: float
) -> pd.DataFrame:
    """The common explanation table from all history items and their contributions.

    Rows are sorted by contribution (largest first, ties by item index) and cut to ``k``.
    ``contributions`` must be finite real numbers, ``user`` and ``item`` int ids >= 0
    (ValueError / TypeError otherwise: a NaN would make every share meaningless).

    Examples
    --------
    >>> from semrec.explain import explanation
    >>> table = explanation([3, 7, 9], [0.5, 1.5, -0.5], 2, user=0, item=4, score=1.5)
    >>> table.to_dict("list")
    {'item': [7, 3], 'contribution': [1.5, 0.5], 'share': [0.6, 0.2]}
    >>> table.attrs["rest"]
    0.0
    """
    k = check.positive_int(k, "k")
    ids = check.id_array(np.asarray(items).reshape(-1), "items", np.int32)  # 3.7 is no id
    user = check.one_id(user, "user", None)
    item = check.one_id(item, "item", None)
    score = float(score)  # a model's own score, as it computed it
    raw = np.asarray(contributions)
    if raw.dtype == np.bool_ or not (
        np.issubdtype(raw.dtype, np.integer) or np.issubdtype(raw.dtype, np.floating)
    ):
        raise TypeError(f"contributions must hold real numbers, got dtype {raw.dtype}")
    values = raw.astype(np.float64).reshape(-1)
    if not np.isfinite(values).all():
        bad = int(np.flatnonzero(~np.isfinite(values))[0])
        raise ValueError(
            f"contributions must be finite, got {values[bad]} (entry {bad}); the shares of a "
            "NaN or infinite contribution mean nothing"
        )
    if ids.shape != values.shape:
        raise ValueError(
            f"items and contributions must have the same length, got {ids.size} and {values.size}"
        )
    # Finite contributions near float64's limit (1e308 + 1e308) overflow their sums, which
    # made every share 0: those are summed scaled by a power of two (exact), and only the
    # total, ``explained``, rounds to +-inf when it is past float64's range.
    big = float(np.abs(values).max(initial=0.0))
    shift = int(np.frexp(big)[1]) if big > np.finfo(np.float64).max / max(values.size, 1) else 0
    scaled = np.ldexp(values, -shift)
    scale = np.abs(scaled).sum()
    shares = scaled / scale if scale > 0 else np.zeros_like(values)
    order = np.lexsort((ids, -values))[:k]
    frame = pd.DataFrame(
        {"item": ids[order], "contribution": values[order], "share": shares[order]}
    )
    with np.errstate(over="ignore"):
        explained = float(np.ldexp(scaled.sum(), shift))
    frame.attrs.update(
        user=user, item=item, score=score, explained=explained, rest=score - explained
    )
    return frame
