"""TextCF's save file: the network weights, the vectors and the streaming state as ``.npz``
arrays, hyperparameters and history as JSON (``semrec._persist``: atomic, versioned, no pickle).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from semrec.textcf.network import WEIGHT_NAMES, Graph, UserState

_ARRAYS = ("user_factors", "item_factors", "item_embeddings", "item_layers", "item_degree")
_USER_STATE = ("input_sum", "mass", "graph_sum", "degree")


def state(model: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Metadata and arrays of a fitted TextCF (see ``Recommender._state``)."""
    arrays = {f"weight:{name}": w for name, w in model.weights_.items()}
    arrays |= {
        "user_factors": model.user_factors_,
        "item_factors": model.item_factors_,
        "item_embeddings": model.item_embeddings_,
        "item_layers": model.graph_.item_layers,
        "item_degree": model.graph_.item_degree,
    }
    s = model.user_state_
    arrays |= {"input_sum": s.input_sum, "mass": s.mass, "graph_sum": s.graph_sum}
    arrays["degree"] = s.degree
    # The constructor's catalogue (items added later come after it): load rebuilds the
    # same hyperparameters, so the repr round-trips.
    arrays["constructor_items"] = np.array(np.shape(model.item_embeddings)[0], dtype=np.int64)
    if model.user_embeddings is not None:
        arrays["user_embeddings"] = np.asarray(model.user_embeddings, dtype=np.float32)
    meta = {"history": model.history_, "best_epoch": model.best_epoch_}
    return meta, arrays


def from_params(cls: type, params: dict[str, Any], arrays: dict[str, np.ndarray]) -> Any:
    """A fresh, unfitted TextCF with the saved hyperparameters and embeddings."""
    users = arrays.get("user_embeddings")
    items = np.ascontiguousarray(arrays["item_embeddings"], dtype=np.float32)
    return cls(
        items[: int(arrays["constructor_items"])],
        user_embeddings=None if users is None else np.ascontiguousarray(users),
        **params,
    )


def restore(model: Any, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Install the saved state; raises KeyError / ValueError on any inconsistency."""
    model._settings()  # the saved hyperparameters must still be valid
    weights = {n: arrays[f"weight:{n}"] for n in WEIGHT_NAMES if f"weight:{n}" in arrays}
    if set(weights) != set(WEIGHT_NAMES[: 2 if model.network == "linear" else 4]):
        raise ValueError(f"the network weights do not match network={model.network!r}")
    for name in (*_ARRAYS, *_USER_STATE):
        if not np.isfinite(arrays[name]).all():
            raise ValueError(f"{name} holds NaN or infinite values")
    users, items = model.interactions_.shape
    f, dim = int(model.factors), arrays["item_embeddings"].shape[1]
    expected = {
        "user_factors": (users, f),
        "item_factors": (items, f),
        "item_embeddings": (items, dim),
        "item_layers": (int(model.layers), items, f),
        "item_degree": (items,),
        "input_sum": (users, dim),
        "mass": (users,),
        "graph_sum": (users, int(model.layers), f),
        "degree": (users,),
    }
    for name, shape in expected.items():
        if arrays[name].shape != shape:
            raise ValueError(f"{name} has shape {arrays[name].shape}, expected {shape}")
    hidden = weights["l1.weight"].shape[0]
    first = (hidden, dim) if model.network == "mlp" else (f, dim)
    if weights["l1.weight"].shape != first or weights["l1.bias"].shape != first[:1]:
        raise ValueError("the first layer's weights do not match the embeddings")
    if model.network == "mlp" and weights["l2.weight"].shape != (f, hidden):
        raise ValueError("the second layer's weights do not match factors")
    model.weights_ = {n: np.ascontiguousarray(w, dtype=np.float32) for n, w in weights.items()}
    model.user_factors_ = np.ascontiguousarray(arrays["user_factors"], dtype=np.float32)
    model.item_factors_ = np.ascontiguousarray(arrays["item_factors"], dtype=np.float32)
    model.item_embeddings_ = np.ascontiguousarray(arrays["item_embeddings"], dtype=np.float32)
    model.graph_ = Graph(
        np.ascontiguousarray(arrays["item_layers"], dtype=np.float32),
        np.asarray(arrays["item_degree"], dtype=np.int64),
    )
    model.user_state_ = UserState(
        np.asarray(arrays["input_sum"], dtype=np.float64),
        np.asarray(arrays["mass"], dtype=np.float64),
        np.asarray(arrays["graph_sum"], dtype=np.float64),
        np.asarray(arrays["degree"], dtype=np.int64),
    )
    model.history_ = list(meta["history"])
    model.best_epoch_ = int(meta["best_epoch"])
