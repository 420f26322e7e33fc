"""Property-based tests of semrec.diversify (MMR): every pick maximises the MMR value computed in
NumPy (float64) given the picks before it, scores and padding as documented, for candidate lists
with padding and repeats, embeddings of any magnitude, and bad input that must raise one of the
documented exception types."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from properties import DIMS, DOCUMENTED, PROPERTY, float_matrices

import semrec

pytestmark = pytest.mark.property


@st.composite
def candidates(draw: st.DrawFn) -> dict:
    n_items = draw(st.integers(1, 30))
    rows = draw(st.integers(0, 6))
    width = draw(st.integers(1, 15))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    ids = rng.integers(-1, n_items, size=(rows, width))  # -1 padding and repeats
    scale = draw(st.sampled_from([1e-20, 1.0, 1e15]))
    scores = (rng.standard_normal((rows, width)) * scale).astype(np.float32)
    return {
        "ids": ids,
        "scores": scores,
        "emb": draw(float_matrices(n_items, draw(DIMS))),
        "k": draw(st.integers(1, 20)),
        "lambda_": draw(st.sampled_from([0.0, 0.25, 0.5, 0.9, 1.0])),
        "normalize": draw(st.sampled_from(["minmax", "none"])),
    }


def check_row(c: dict, r: int, picked: np.ndarray, out_scores: np.ndarray) -> None:
    ids, scores, lam = c["ids"][r], c["scores"][r].astype(np.float64), c["lambda_"]
    emb = c["emb"].astype(np.float64)
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    unit = emb / np.where(norms > 0, norms, 1.0)
    real = ids >= 0
    rel = scores.copy()
    if c["normalize"] == "minmax" and real.any():
        lo, hi = scores[real].min(), scores[real].max()
        rel = (scores - lo) / (hi - lo) if hi > lo else np.ones_like(scores)
    distinct = np.unique(ids[real])
    n = min(c["k"], distinct.size)
    chosen: list[int] = []
    for t in range(n):
        item = int(picked[t])
        assert item in distinct and item not in chosen, f"row {r} pick {t}: {item}"
        alive = real & ~np.isin(ids, chosen)
        if chosen:
            max_sim = (unit[ids[alive]] @ unit[chosen].T).max(axis=1)
            values = lam * rel[alive] - (1 - lam) * max_sim
        else:
            values = rel[alive]
        best = values.max()
        mine = values[ids[alive] == item].max()
        assert mine >= best - 1e-5 * (1 + abs(best)), f"row {r} pick {t}: {mine} < {best}"
        # The returned score is the original score of the picked candidate column.
        assert out_scores[t] in scores[ids == item].astype(np.float32)
        chosen.append(item)
    assert (picked[n:] == -1).all() and np.isneginf(out_scores[n:]).all()


@given(c=candidates())
@PROPERTY
def test_each_pick_maximises_the_mmr_value(c: dict) -> None:
    picked, out = semrec.diversify(
        c["ids"], c["scores"], c["emb"], c["k"], c["lambda_"], normalize=c["normalize"]
    )
    assert picked.shape == out.shape == (c["ids"].shape[0], c["k"])
    assert picked.dtype == np.int32 and out.dtype == np.float32
    for r in range(c["ids"].shape[0]):
        check_row(c, r, picked[r], out[r])


@given(c=candidates())
@PROPERTY
def test_lambda_one_is_the_plain_relevance_order(c: dict) -> None:
    picked, _ = semrec.diversify(c["ids"], c["scores"], c["emb"], c["k"], 1.0)
    for r, row in enumerate(c["ids"]):
        best: dict[int, float] = {}
        for i, s in zip(row, c["scores"][r], strict=True):
            if i >= 0:
                best[int(i)] = max(best.get(int(i), -np.inf), float(s))
        ranked = sorted(best.values(), reverse=True)[: c["k"]]
        got = [best[int(i)] for i in picked[r] if i >= 0]
        assert got == ranked


@given(
    c=candidates(),
    damage=st.sampled_from(
        ["id too large", "id below -1", "nan score", "inf score", "lambda", "k", "shape",
         "float ids", "float64 embeddings", "normalize"]
    ),
)  # fmt: skip
@PROPERTY
def test_bad_input_raises_the_documented_error(c: dict, damage: str) -> None:
    ids, scores, emb = c["ids"].copy(), c["scores"].copy(), c["emb"]
    k, lam, normalize = c["k"], c["lambda_"], c["normalize"]
    expected: type[Exception] = ValueError
    if damage in ("id too large", "id below -1", "nan score", "inf score") and ids.size == 0:
        return
    if damage == "id too large":
        ids[0, 0], expected = emb.shape[0], IndexError
    elif damage == "id below -1":
        ids[0, 0], expected = -2, IndexError
    elif damage in ("nan score", "inf score"):
        ids[0, 0] = 0
        scores[0, 0] = np.nan if damage == "nan score" else np.inf
    elif damage == "lambda":
        lam = 1.5
    elif damage == "k":
        k = 0
    elif damage == "shape":
        scores = scores[:, :-1]
    elif damage == "float ids":
        ids, expected = ids.astype(np.float64), TypeError
    elif damage == "float64 embeddings":
        emb, expected = emb.astype(np.float64), TypeError
    else:
        normalize = "zscore"
    with pytest.raises(expected):
        semrec.diversify(ids, scores, emb, k, lam, normalize=normalize)
    assert issubclass(expected, DOCUMENTED)
