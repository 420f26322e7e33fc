"""TextCF's network outside training, in NumPy: initial weights, node inputs, the forward pass.

Training runs in C++ (``cpp/semrec/train/textcf.cpp``). Everything after it — a new user folded
in, a streaming update, a text-only item, an explanation — is one forward pass through the
fitted weights, done here in float64 and stored as float32.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from semrec._histories import RowBuffer

WEIGHT_NAMES = ("l1.weight", "l1.bias", "l2.weight", "l2.bias", "bias.weight")


def initial_weights(
    dim: int, hidden: int, factors: int, rng: np.random.Generator, *, item_bias: bool = False
) -> dict[str, np.ndarray]:
    """Weights drawn like ``torch.nn.Linear``'s default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    ``hidden == 0`` gives the linear variant (``l1`` only, ``dim -> factors``). With
    ``item_bias``, ``bias.weight`` (1, hidden or dim) starts at zero: no item is favoured
    before training.
    """
    shapes = [(hidden, dim), (factors, hidden)] if hidden else [(factors, dim)]
    weights = {}
    for n, (rows, cols) in enumerate(shapes, start=1):
        bound = 1.0 / math.sqrt(cols)
        weights[f"l{n}.weight"] = rng.uniform(-bound, bound, (rows, cols)).astype(np.float32)
        weights[f"l{n}.bias"] = rng.uniform(-bound, bound, rows).astype(np.float32)
    if item_bias:
        weights["bias.weight"] = np.zeros((1, hidden or dim), dtype=np.float32)
    return weights


def mlp(weights: dict[str, np.ndarray], x: np.ndarray, negative_slope: float) -> np.ndarray:
    """The network on rows of ``x`` (float64 result)."""
    h = x.astype(np.float64) @ weights["l1.weight"].T.astype(np.float64) + weights["l1.bias"]
    if "l2.weight" not in weights:
        return h
    h = np.where(h > 0, h, negative_slope * h)
    return h @ weights["l2.weight"].T.astype(np.float64) + weights["l2.bias"]


def item_biases(weights: dict[str, np.ndarray], x: np.ndarray, negative_slope: float) -> np.ndarray:
    """``b(i) = w_b . g_i`` of item embeddings ``x`` (rows), float64: ``g_i`` the MLP's hidden
    layer, or the embedding itself in the linear variant. A function of text alone, so a cold
    or added item gets its bias as a trained one does."""
    g = x.astype(np.float64)
    if "l2.weight" in weights:
        g = g @ weights["l1.weight"].T.astype(np.float64) + weights["l1.bias"]
        g = np.where(g > 0, g, negative_slope * g)
    return g @ weights["bias.weight"][0].astype(np.float64)


def linearised(
    weights: dict[str, np.ndarray], x: np.ndarray, negative_slope: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(J, c)`` with ``mlp(y) = y @ J.T + c`` for every ``y`` that gives the hidden layer the
    same signs as ``x`` (one row): LeakyReLU is piecewise linear, so this is exact at ``x``."""
    w1 = weights["l1.weight"].astype(np.float64)
    b1 = weights["l1.bias"].astype(np.float64)
    if "l2.weight" not in weights:
        return w1, b1
    slope = np.where(x.astype(np.float64) @ w1.T + b1 > 0, 1.0, negative_slope)
    w2 = weights["l2.weight"].astype(np.float64)
    jacobian = (w2 * slope) @ w1
    return jacobian, (w2 * slope) @ b1 + weights["l2.bias"]


def normalised_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, as float32 (zero rows stay zero)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0).astype(np.float32)


class UserState:
    """What a user's vector is computed from, kept so that one interaction updates it in O(dim).

    ``input_sum`` is ``sum_j w_uj e_j`` (plus ``user_text_weight * t_u``) and ``mass`` the sum of
    those weights: the network's input is ``input_sum / mass``. ``graph_sum[l]`` is
    ``sum_j item_layer[l][j] / sqrt(deg_j)`` over the user's distinct items and ``degree`` their
    number, so that propagation layer ``l + 1`` of the user is ``graph_sum[l] / sqrt(degree)``.
    With ``user_vectors="items"``, ``item_sum`` is ``sum_j w_uj v_j`` over the items' unit
    vectors (the user's vector is its normalisation; None otherwise).
    """

    def __init__(
        self, input_sum: np.ndarray, mass: np.ndarray, graph_sum: np.ndarray, degree: np.ndarray
    ) -> None:
        self.input_sum = input_sum  # (users, dim) float64
        self.mass = mass  # (users,) float64
        self.graph_sum = graph_sum  # (users, layers, factors) float64
        self.degree = degree  # (users,) int64
        self.item_sum: np.ndarray | None = None  # (users, factors) float64, user_vectors="items"

    def grow(self, n_users: int) -> None:
        """Append users with no history (zero rows) up to ``n_users``: O(the new rows), the
        arrays keep spare rows (a new user would otherwise copy every user's state)."""
        names = ("input_sum", "mass", "graph_sum", "degree", "item_sum")
        present = [name for name in names if getattr(self, name) is not None]
        if all(getattr(self, name).shape[0] >= n_users for name in present):
            return  # (each array checked: a growth a Ctrl-C cut short is finished here)
        buffers = self.__dict__.setdefault("_buffers", {})  # (absent from pickles)
        grown = {}
        for name in present:
            rows = getattr(self, name)
            buffer = buffers.get(name)
            if buffer is None or buffer.rows is not rows:  # set anew since: buffer it
                fill = np.zeros(rows.shape[1:], dtype=rows.dtype)
                buffer = buffers[name] = RowBuffer(rows, fill=fill)
            grown[name] = rows if rows.shape[0] >= n_users else buffer.grow(n_users)
        self.__dict__.update(grown)  # every array at once

    def __getstate__(self) -> dict[str, object]:
        # Pickles and deep copies hold the users' rows, not the spare ones.
        return {k: v for k, v in vars(self).items() if k != "_buffers"}


class Graph(NamedTuple):
    """The fitted graph's item side: per-layer item outputs and item degrees."""

    item_layers: np.ndarray  # (layers, items, factors) float32: outputs of layers 0..L-1
    item_degree: np.ndarray  # (items,) int64, training degree (0 for cold and added items)

    def item_scale(self, items: np.ndarray) -> np.ndarray:
        """``1 / sqrt(deg_j)`` with a floor of one edge: a new user's edge is the item's first."""
        return 1.0 / np.sqrt(np.maximum(self.item_degree[items], 1).astype(np.float64))


def user_inputs(
    interactions: sp.csr_array,
    item_embeddings: np.ndarray,
    user_embeddings: np.ndarray | None = None,
    user_text_weight: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``(input_sum, mass)`` of every row of ``interactions`` (canonical CSR, weights > 0)."""
    weights = sp.csr_array(
        (interactions.data.astype(np.float64), interactions.indices, interactions.indptr),
        shape=interactions.shape,
    )
    input_sum = weights @ item_embeddings.astype(np.float64)
    mass = np.asarray(weights.sum(axis=1), dtype=np.float64).ravel()
    if user_embeddings is not None and user_text_weight > 0:
        input_sum += user_text_weight * user_embeddings.astype(np.float64)
        mass += user_text_weight
    return input_sum, mass


def graph_sums(interactions: sp.csr_array, graph: Graph) -> tuple[np.ndarray, np.ndarray]:
    """``(graph_sum, degree)`` of every row of ``interactions`` (see :class:`UserState`)."""
    binary = sp.csr_array(
        (graph.item_scale(interactions.indices), interactions.indices, interactions.indptr),
        shape=interactions.shape,
    )
    layers, _, factors = graph.item_layers.shape
    graph_sum = np.empty((interactions.shape[0], layers, factors))
    for layer in range(layers):
        graph_sum[:, layer] = binary @ graph.item_layers[layer].astype(np.float64)
    return graph_sum, np.diff(interactions.indptr).astype(np.int64)


def item_sums(interactions: sp.csr_array, item_vectors: np.ndarray) -> np.ndarray:
    """``sum_j w_uj v_j`` of every row of ``interactions`` (canonical CSR, weights > 0) over the
    items' unit vectors (float64): ``user_vectors="items"``'s users before normalisation."""
    weights = sp.csr_array(
        (interactions.data.astype(np.float64), interactions.indices, interactions.indptr),
        shape=(interactions.shape[0], item_vectors.shape[0]),
    )
    return weights @ item_vectors.astype(np.float64)


def means(input_sum: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """The network inputs of users: weighted means (zero without any history), float64."""
    return np.divide(
        input_sum, mass[:, None], out=np.zeros_like(input_sum), where=mass[:, None] > 0
    )


def user_vectors(
    weights: dict[str, np.ndarray],
    state: UserState,
    users: np.ndarray,
    negative_slope: float,
) -> np.ndarray:
    """Unit vectors of ``users``: mean of the network output and the propagation layers."""
    h = mlp(weights, means(state.input_sum[users], state.mass[users]), negative_slope)
    degree = state.degree[users].astype(np.float64)
    scale = np.divide(1.0, np.sqrt(degree), out=np.zeros_like(degree), where=degree > 0)
    layers = state.graph_sum.shape[1]
    total = h + (state.graph_sum[users] * scale[:, None, None]).sum(axis=1)
    return normalised_rows(total / (layers + 1))
