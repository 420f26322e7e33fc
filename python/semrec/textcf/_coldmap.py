"""Closed-form ridge maps from item text embeddings, fitted on the items with interactions.

TextCF uses them for what text must predict about items it has never seen interact: their log
popularity (``popularity``, :mod:`semrec.textcf._popularity`) and, with ``cold_penalty``, their
vectors. The network is trained on warm items only and, trained long enough to rank them well,
fits details of their texts that do not carry over to new texts (on MovieLens-100k's cold
validation split its own cold vectors score Recall@20 0.359, the ridge map of them 0.43). A
ridge map from the embeddings to the warm items' fitted vectors is the smoothest reader of the
same space: it averages what the network learned over many items instead of interpolating
between them. With ``cold_neighbours`` a cold item instead gets the mean of the fitted vectors of
its nearest warm items by text (cosine of the embeddings): a local average, where the ridge map is
one global linear map.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class TextMap(NamedTuple):
    """``f(e) = e @ weights + offset``: an affine map of text embeddings (rows)."""

    weights: np.ndarray  # (dim, outputs) float64
    offset: np.ndarray  # (outputs,) float64

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        """The map of rows of ``embeddings`` (float64)."""
        return embeddings.astype(np.float64) @ self.weights + self.offset


def ridge(x: np.ndarray, y: np.ndarray, penalty: float) -> TextMap:
    """Ridge regression with an unpenalised intercept: ``x`` and ``y`` (rows, float64 or
    float32; ``y`` 2-D) are centred over their rows, ``W = (X^T X + penalty I)^-1 X^T Y``, and
    the offset makes the map pass through the means."""
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    xc = x - x_mean
    gram = xc.T @ xc
    gram[np.diag_indices_from(gram)] += penalty
    weights = np.linalg.solve(gram, xc.T @ (y - y_mean))
    return TextMap(weights, y_mean - x_mean @ weights)


def cold_map(
    embeddings: np.ndarray, item_vectors: np.ndarray, warm: np.ndarray, penalty: float
) -> TextMap:
    """The ridge map from the embeddings of the ``warm`` items (boolean mask) to their fitted
    vectors (``item_vectors`` rows), with ``penalty``."""
    if not warm.any():
        raise ValueError("cold_penalty needs items with training interactions to fit its map")
    return ridge(embeddings[warm], item_vectors[warm], penalty)


class NeighbourMap(NamedTuple):
    """``f(e)``: the mean of the ``values`` rows of the ``k`` ``keys`` rows (unit vectors) with the
    highest cosine to ``e`` (ties: the lower row first)."""

    keys: np.ndarray  # (n, dim) float32, unit rows: the warm items' embeddings
    values: np.ndarray  # (n, outputs) float64: their fitted vectors
    k: int

    def predict(self, embeddings: np.ndarray, batch: int = 1024) -> np.ndarray:
        """The map of rows of ``embeddings`` (float64), ``batch`` rows at a time."""
        k = min(self.k, self.keys.shape[0])
        out = np.empty((embeddings.shape[0], self.values.shape[1]))
        for start in range(0, embeddings.shape[0], batch):
            rows = np.asarray(embeddings[start : start + batch], dtype=np.float32)
            cosines = rows @ self.keys.T  # row scale does not change the order
            nearest = np.argsort(-cosines, axis=1, kind="stable")[:, :k]
            out[start : start + batch] = self.values[nearest].mean(axis=1)
        return out


def neighbour_map(
    embeddings: np.ndarray, item_vectors: np.ndarray, warm: np.ndarray, k: int
) -> NeighbourMap:
    """The ``k``-nearest-neighbour map from text embeddings to the fitted vectors of the
    ``warm`` items (boolean mask)."""
    if not warm.any():
        raise ValueError("cold_neighbours needs items with training interactions to average")
    keys = np.asarray(embeddings[warm], dtype=np.float32)
    norms = np.linalg.norm(keys, axis=1, keepdims=True)
    keys = keys / np.where(norms > 0, norms, 1)
    return NeighbourMap(keys, item_vectors[warm].astype(np.float64), int(k))


def fit_cold_map(
    embeddings: np.ndarray,
    item_vectors: np.ndarray,
    warm: np.ndarray,
    penalty: float | None,
    neighbours: int | None,
) -> TextMap | NeighbourMap | None:
    """TextCF's cold map: the ridge map with ``penalty``, the neighbour map with ``neighbours``
    (at most one of them given), or None with neither."""
    if neighbours is not None:
        return neighbour_map(embeddings, item_vectors, warm, neighbours)
    if penalty is not None:
        return cold_map(embeddings, item_vectors, warm, penalty)
    return None
