"""TextCF's save file: the network weights, the vectors, the seen interactions and the
streaming state as ``.npz`` arrays, hyperparameters and history as JSON (``semrec._persist``:
atomic, versioned, checksummed, no pickle).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from semrec._persist import Saved, constructor_count, constructor_rows
from semrec.textcf._coldmap import TextMap, neighbour_map
from semrec.textcf._network import WEIGHT_NAMES, Graph, UserState
from semrec.textcf._popularity import PopularityPrior


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
    if model.item_bias_ is not None:
        arrays["item_bias"] = model.item_bias_
    if model.popularity_prior_ is not None:
        arrays["popularity_weights"] = model.popularity_prior_.weights
        arrays["popularity_offset"] = np.array([model.popularity_prior_.offset])
    if isinstance(model.cold_map_, TextMap):  # a NeighbourMap is rebuilt from the items
        arrays["cold_weights"] = model.cold_map_.weights
        arrays["cold_offset"] = model.cold_map_.offset
    if s.item_sum is not None:
        arrays["item_sum"] = s.item_sum
    arrays["constructor_items"] = constructor_count(model.item_embeddings)
    if model.user_embeddings is not None:
        arrays["user_embeddings"] = np.asarray(model.user_embeddings, dtype=np.float32)
    meta = {"history": model.history_, "best_epoch": model.best_epoch_}
    return meta, arrays


def from_params(cls: type, params: dict[str, Any], saved: Saved) -> Any:
    """A fresh, unfitted TextCF with the saved hyperparameters and embeddings."""
    items = constructor_rows(saved)
    users = None
    if "user_embeddings" in saved.arrays:
        users = saved.array("user_embeddings", np.float32, (None, items.shape[1]))
    return cls(
        items,
        user_embeddings=None if users is None else np.ascontiguousarray(users),
        **params,
    )


def restore(model: Any, saved: Saved) -> sp.csr_array:
    """Install the saved state; every field is checked first (``saved`` raises FormatError).
    Returns the seen matrix, which the model keeps itself."""
    f, layers = int(model.factors), int(model.layers)
    user_factors = saved.array("user_factors", np.float32, (None, f))
    item_factors = saved.array("item_factors", np.float32, (None, f))
    users, items = user_factors.shape[0], item_factors.shape[0]
    emb = saved.array("item_embeddings", np.float32, (items, None))
    dim = emb.shape[1]
    hidden = int(model.hidden) if model.network == "mlp" else f
    shapes = {"l1.weight": (hidden, dim), "l1.bias": (hidden,)}
    if model.network == "mlp":
        shapes |= {"l2.weight": (f, hidden), "l2.bias": (f,)}
    if model.item_bias:
        shapes["bias.weight"] = (1, hidden if model.network == "mlp" else dim)
    extra = [n for n in WEIGHT_NAMES if n not in shapes and f"weight:{n}" in saved.arrays]
    if extra:
        raise saved.error(
            f"weight:{extra[0]}",
            f"does not belong to network={model.network!r}, item_bias={model.item_bias!r}",
        )
    weights = {n: saved.array(f"weight:{n}", np.float32, shape) for n, shape in shapes.items()}
    item_layers = saved.array("item_layers", np.float32, (layers, items, f))
    item_degree = saved.array("item_degree", np.int64, (items,), minimum=0)
    prior = None
    if float(model.popularity) > 0:
        prior = PopularityPrior(
            saved.array("popularity_weights", np.float64, (dim,)),
            float(saved.array("popularity_offset", np.float64, (1,))[0]),
        )
    mapped = None
    if model.cold_penalty is not None:
        mapped = TextMap(
            saved.array("cold_weights", np.float64, (dim, f)),
            saved.array("cold_offset", np.float64, (f,)),
        )
    elif model.cold_neighbours is not None:
        mapped = neighbour_map(emb, item_factors, item_degree > 0, model.cold_neighbours)
    biased = model.item_bias or prior is not None
    item_bias = saved.array("item_bias", np.float32, (items,)) if biased else None
    user_state = UserState(
        saved.array("input_sum", np.float64, (users, dim)),
        saved.array("mass", np.float64, (users,), minimum=0),
        saved.array("graph_sum", np.float64, (users, layers, f)),
        saved.array("degree", np.int64, (users,), minimum=0),
    )
    if model.user_vectors == "items":
        user_state.item_sum = saved.array("item_sum", np.float64, (users, f))
    seen = saved.csr("interactions", (users, items), nonnegative=True)
    history = saved.value("history", list)
    if not history or not all(isinstance(h, dict) for h in history):
        raise saved.error("history", "must be a non-empty list of per-epoch records")
    best_epoch = saved.value("best_epoch", int, minimum=0)
    if best_epoch >= len(history):
        raise saved.error("best_epoch", f"must name one of the {len(history)} epochs in history")
    model.weights_ = {n: np.ascontiguousarray(w) for n, w in weights.items()}
    model.item_factors_ = np.ascontiguousarray(item_factors)
    model.item_bias_ = item_bias
    model.popularity_prior_ = prior
    model.cold_map_ = mapped
    model.item_embeddings_ = np.ascontiguousarray(emb)
    model.graph_ = Graph(np.ascontiguousarray(item_layers), np.asarray(item_degree))
    model.user_state_ = user_state
    model.history_ = list(history)
    model.best_epoch_ = int(best_epoch)
    model.user_factors_ = np.ascontiguousarray(user_factors)  # last: marks the model fitted
    return seen
