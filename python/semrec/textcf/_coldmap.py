"""Closed-form ridge maps from item text embeddings, fitted on the items with interactions.

TextCF uses them for what text must predict about items it has never seen interact: their log
popularity (``popularity``, :mod:`semrec.textcf._popularity`) and, with ``cold_penalty``, their
vectors. The network is trained on warm items only and, trained long enough to rank them well,
fits details of their texts that do not carry over to new texts (on MovieLens-100k's cold
validation split its cold-item Recall@20 falls from 0.389 after 1 epoch to 0.355 after 9). A
ridge map from the embeddings to the warm items' fitted vectors is the smoothest reader of the
same space: it averages what the network learned over many items instead of interpolating
between them.
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
