"""TextCF's argument checks: numbers, embeddings, interactions, and the sizes of training.

Sizes are checked before anything is allocated: ``layers`` has a maximum (AlphaRec uses 2 or
3; each layer is one more pass over the graph per batch), and ``hidden``, ``factors`` and
``negatives`` must leave the network, its activations and a batch's scores within the
machine's memory. Embeddings must be of a scale the float32 network can take.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp

from semrec import _hyperparameters as hyperparameters
from semrec import _validation as check
from semrec._id_checks import check_same_id_maps
from semrec.datasets import Dataset, ItemEmbeddings

MAX_LAYERS = 16
# Largest embedding row norm taken: the float32 network's activations and their squares
# overflow from about 1e19 on (every vector then comes out zero); this leaves a margin.
MAX_NORM = 1e15
# Smallest largest item-embedding row norm taken: the network starts with weights and biases
# for inputs of norm ~1; from inputs this small its outputs are the biases', nearly equal for
# every item and user (x1e-6: hit@10 at chance), and training does not recover.
MIN_NORM = 1e-3


def number(value: Any, name: str, *, positive: bool = False) -> float:
    """``value`` as a finite float ``>= 0`` (``> 0`` with ``positive``).

    Examples
    --------
    >>> from semrec.textcf._checks import number
    >>> number(0.15, "tau", positive=True)
    0.15
    """
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    ok = math.isfinite(value) and (value > 0 if positive else value >= 0)
    if not ok:
        raise ValueError(
            f"{name} must be a finite number {'> 0' if positive else '>= 0'}, got {value}"
        )
    if value > check.FLOAT32_MAX:  # the trainer computes in float32
        raise ValueError(f"{name} must be at most {check.FLOAT32_MAX:.3g} (float32), got {value}")
    return float(value)


def non_negative_int(value: Any, name: str) -> int:
    """``value`` as an int ``>= 0``.

    Examples
    --------
    >>> from semrec.textcf._checks import non_negative_int
    >>> non_negative_int(2, "layers")
    2
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return int(value)


def layers(value: Any) -> int:
    """``layers`` as an int in ``[0, MAX_LAYERS]``.

    Examples
    --------
    >>> from semrec.textcf._checks import layers
    >>> layers(2)
    2
    """
    n = non_negative_int(value, "layers")
    if n > MAX_LAYERS:
        raise ValueError(
            f"layers must be at most {MAX_LAYERS}, got {n}: each layer is one more pass over "
            "the interaction graph per batch, and past a few layers every node averages the "
            "whole graph (AlphaRec uses 2 or 3)"
        )
    return n


def interactions(x: Any, name: str, *, nonnegative: bool = True) -> sp.csr_array:
    """A CSR matrix or a Dataset's interactions, canonical (at least one entry).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from semrec.textcf._checks import interactions
    >>> interactions(sp.csr_array(np.eye(2, dtype=np.float32)), "interactions").nnz
    2
    """
    if isinstance(x, Dataset):
        x = x.interactions
    return check.interactions(x, name, nonnegative=nonnegative)


def validation(x: Any, shape: tuple[int, int], train: Any = None) -> sp.csr_array | None:
    """``fit``'s ``validation``: held-out interactions of the training users and items (None:
    none).

    When both it and ``train`` (``fit``'s interactions) are Datasets, their id maps must be
    equal, as :func:`semrec.evaluate` requires of train and test: a shape alone does not say
    that row ``u`` / column ``i`` is the same user / item in both.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from semrec.textcf._checks import validation
    >>> validation(sp.csr_array(np.eye(2, dtype=np.float32)), (2, 2)).nnz
    2
    """
    if x is None:
        return None
    if isinstance(x, Dataset):
        if isinstance(train, Dataset):
            check_same_id_maps(train, x, ("interactions", "validation"))
        x = x.interactions
    relevant = check.canonical_csr(x, "validation", allow_empty=True)
    if relevant.shape != shape:
        raise ValueError(
            f"validation must have the shape of interactions {shape} (the same users and "
            f"items, held-out entries), got {relevant.shape}"
        )
    if relevant.nnz == 0:
        raise ValueError(
            "validation has no entries: it holds held-out interactions (each stored entry a "
            "relevant item) that early stopping measures NDCG@10 on; pass validation=None to "
            "train every epoch without it"
        )
    return relevant


def largest_norm(x: np.ndarray) -> float:
    """The largest row norm of ``x`` (computed in float64; 0 without entries)."""
    return float(np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64).max())) if x.size else 0.0


def scale(x: np.ndarray, name: str) -> np.ndarray:
    """``x`` unchanged if its rows' norms (in float64) are at most ``MAX_NORM``.

    Examples
    --------
    >>> import numpy as np
    >>> from semrec.textcf._checks import scale
    >>> scale(np.ones((2, 3), dtype=np.float32), "item_embeddings").shape
    (2, 3)
    """
    if (top := largest_norm(x)) > MAX_NORM:
        raise ValueError(
            f"{name} has rows of norm up to {top:.3g}; TextCF's float32 network overflows on "
            f"inputs this large (norms must be at most {MAX_NORM:g}): rescale the embeddings, "
            "e.g. normalise their rows or divide them by their largest norm"
        )
    return x


def embeddings(x: Any, name: str, rows: int, what: str) -> np.ndarray:
    """One float32 embedding per user or item (``what``), of a scale the network takes: row
    norms at most ``MAX_NORM`` and, for items (every node's input is made of theirs), the
    largest at least ``MIN_NORM``.

    Examples
    --------
    >>> import numpy as np
    >>> from semrec.textcf._checks import embeddings
    >>> embeddings(np.ones((3, 2), dtype=np.float32), "item_embeddings", 3, "item").shape
    (3, 2)
    >>> embeddings(np.full((3, 2), 1e-6, np.float32), "item_embeddings", 3, "item")
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: item_embeddings has rows of norm at most 1.41e-06; ... Normalise the rows ...
    """
    emb, _ = check.as_float32_matrix(np.asarray(x) if isinstance(x, ItemEmbeddings) else x, name)
    if emb.shape[1] == 0:
        raise ValueError(f"{name} has dimension 0 (shape {emb.shape}); give real embeddings")
    if emb.shape[0] != rows:
        raise ValueError(
            f"{name} has {emb.shape[0]} rows but the interactions have {rows} {what}s; give "
            f"one embedding per {what}, in index order"
        )
    emb = scale(emb, name)
    if what == "item" and (top := largest_norm(emb)) < MIN_NORM:
        raise ValueError(
            f"{name} has rows of norm at most {top:.3g}; TextCF's network needs inputs of norm "
            f"~1 (at least one row of norm >= {MIN_NORM:g}): from smaller ones every item and "
            "user gets nearly the same vector. Normalise the rows (x / np.linalg.norm(x, "
            "axis=1, keepdims=True))"
        )
    return emb


def batch_size(settings: Any, shape: tuple[int, int], dim: int, positives: int) -> int:
    """``settings.batch_size`` clamped to the ``positives`` (a larger batch is one batch of
    them all, exactly), after checking that the sizes of training fit in memory: the network
    (weights, gradients, Adam's moments and the average), every node's activations and one
    batch's sampled negatives (a lower bound: the check refuses absurd sizes, before they are
    allocated). The ValueError names the largest of them.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from semrec.textcf._checks import batch_size
    >>> s = SimpleNamespace(hidden=8, factors=4, layers=2, negatives=16, batch_size=2048)
    >>> batch_size(s, (8, 10), 6, 30)
    30
    """
    s = settings
    batch = min(int(s.batch_size), max(int(positives), 1))
    nodes = shape[0] + shape[1]
    need = {  # bytes at the least (weights: with gradients, Adam's moments, the average)
        "hidden": 24.0 * s.hidden * (dim + 1) + 4.0 * nodes * s.hidden,
        "factors": 4.0 * nodes * s.factors * (s.layers + 2),
        "negatives": 8.0 * batch * s.negatives,
    }
    # The last layer (factors x hidden, or x dim) counts for the larger of the two.
    need["hidden" if s.hidden > s.factors else "factors"] += (
        24.0 * s.factors * ((s.hidden or dim) + 1)
    )
    name = max(need, key=need.__getitem__)
    hyperparameters.memory(
        sum(need.values()),
        f"{name}={getattr(s, name)}",
        f"lower {name} ({shape[0]} users x {shape[1]} items, embedding dimension {dim})",
    )
    return batch


# Options fitted from text after training (TextCF.with_options changes them without training).
AFTER_TRAINING = (
    "popularity", "popularity_penalty", "observed_popularity", "cold_penalty", "cold_neighbours"
)  # fmt: skip
# What the fitted state was computed with and the verbs or a file's loader read again from the
# model (network, hidden, factors and layers are its arrays' shapes: load refuses those).
FITTED = ("item_bias", "tau", "negative_slope", "user_text_weight", "user_vectors", *AFTER_TRAINING)


def fitted_with(model: Any) -> dict[str, Any]:
    """The hyperparameters of :data:`FITTED` a fitted TextCF ``model`` has now.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from semrec.textcf._checks import FITTED, fitted_with
    >>> fitted_with(SimpleNamespace(**dict.fromkeys(FITTED, 0)))["tau"]
    0
    """
    return {name: getattr(model, name) for name in FITTED}


def unchanged_since_fit(model: Any, fitted: dict[str, Any]) -> None:
    """Refuse a hyperparameter of ``model`` (a fitted TextCF) changed since ``fitted``
    (:func:`fitted_with` at fit, load or ``with_options``) that its state depends on: verbs
    would mix the old value (in its arrays) with the new one, a file would misdescribe it.

    ``tau`` counts only for a model with item biases (its scores add ``tau * b(i)``),
    ``popularity_penalty`` and ``observed_popularity`` only with ``popularity``,
    ``negative_slope`` only for the MLP, ``user_text_weight`` only with user embeddings.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> from semrec.textcf._checks import FITTED, fitted_with, unchanged_since_fit
    >>> model = SimpleNamespace(**dict.fromkeys(FITTED, 0), weights_={}, user_embeddings=None)
    >>> fitted = fitted_with(model)
    >>> model.popularity = 0.5
    >>> unchanged_since_fit(model, fitted)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: popularity=0.5 does not describe the fitted TextCF (fitted with popularity=0): \
a hyperparameter changed after fit? Refit the model, or set it back; with_options(popularity=0.5) \
makes a copy with the new value, without training
    """
    unused = set()
    if not (fitted["item_bias"] or fitted["popularity"] > 0):
        unused.add("tau")
    if not fitted["popularity"] > 0:
        unused |= {"popularity_penalty", "observed_popularity"}
    if "l2.weight" not in model.weights_:  # the linear network has no activation
        unused.add("negative_slope")
    if model.user_embeddings is None:
        unused.add("user_text_weight")
    now = {name: getattr(model, name) for name in fitted if name not in unused}
    if all(value is fitted[name] for name, value in now.items()):
        return  # the common case, cheap (every verb asks)
    for name, value in now.items():
        if value is not fitted[name] and np.ndim(value) != 0:  # no array comparisons
            raise TypeError(f"{name} must be a single value, got {type(value).__name__}")
    try:
        hyperparameters.unchanged_since_fit(now, fitted, "the fitted TextCF")
    except ValueError as changed:
        options = [n for n in AFTER_TRAINING if n in now and now[n] != fitted[n]]
        if not options:
            raise
        call = ", ".join(f"{name}={now[name]!r}" for name in options)
        raise ValueError(
            f"{changed}; with_options({call}) makes a copy with the new "
            f"{'value' if len(options) == 1 else 'values'}, without training"
        ) from None
