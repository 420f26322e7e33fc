"""TextCF's popularity read from text: a closed-form ridge regression from the item embeddings to
the items' log popularity in the training interactions.

Cosines know nothing of popularity, yet on MovieLens-100k most-popular alone is a strong
baseline. The text carries part of it (a film's description says something of how many will
watch it), and a ridge fit is the simplest reader of it; since it is a function of text, cold and
added items get their prediction as trained ones do.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from semrec.textcf._coldmap import ridge


class PopularityPrior(NamedTuple):
    """``p(e) = e . weights + offset``: the predicted (centred) log popularity of an item whose
    text embedding is ``e``."""

    weights: np.ndarray  # (dim,) float64
    offset: float

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        """Predictions for rows of ``embeddings`` (float64)."""
        return embeddings.astype(np.float64) @ self.weights + self.offset


def fit_prior(
    embeddings: np.ndarray, interactions: sp.csr_array, penalty: float
) -> PopularityPrior:
    """Ridge regression of ``log(1 + n_i)`` on the embeddings of the items with ``n_i >= 1``
    training users (``interactions``: canonical CSR, non-zero weights), both centred over those
    items: ``w = (X^T X + penalty I)^-1 X^T y``. Items without interactions take no part (their
    count says nothing of their text); the prediction is centred to 0 over the trained items."""
    counts = np.bincount(interactions.indices, minlength=interactions.shape[1])
    trained = counts > 0
    y = np.log1p(counts[trained].astype(np.float64))
    fitted = ridge(embeddings[trained], (y - y.mean())[:, None], penalty)
    return PopularityPrior(fitted.weights[:, 0], float(fitted.offset[0]))


def popularity(
    prior: PopularityPrior,
    embeddings: np.ndarray,
    interactions: sp.csr_array | None = None,
    observed: float = 0.0,
) -> np.ndarray:
    """``p(i)`` of every item (float64): the text prediction; for the items with training
    ``interactions`` (canonical CSR, non-zero weights), a share ``observed`` of it replaced by
    their observed log popularity ``log(1 + n_i)``, centred over them like the prediction."""
    p = prior.predict(embeddings)
    if interactions is not None and observed > 0:
        counts = np.bincount(interactions.indices, minlength=p.size)
        trained = counts > 0
        y = np.log1p(counts[trained].astype(np.float64))
        p[trained] = (1 - observed) * p[trained] + observed * (y - y.mean())
    return p


def biases(learned: np.ndarray | None, popular: np.ndarray | None, weight: float) -> Any:
    """The items' logit biases, float32: the learned ``b(i)`` (``item_bias``; None without)
    plus ``weight * p(i)`` (``popular``: p, None without); None when there is neither."""
    if popular is None:
        return learned
    total = weight * popular
    if learned is not None:
        total += learned.astype(np.float64)
    return total.astype(np.float32)
