"""TextCF's training loop driver: the C++ trainer runs each epoch (GIL released); this module
measures validation NDCG@10 between epochs, stops early, reports progress and calls back."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from tqdm import tqdm

from semrec.metrics import ranking_metrics
from semrec.similarity import topk
from semrec.text._torch import text_ext, torch
from semrec.textcf._network import item_sums, normalised_rows

logger = logging.getLogger("semrec")

Callback = Callable[[int, float, float | None], Any]

VALIDATION_K = 10


@dataclass
class Settings:
    """The hyperparameters the trainer needs (already validated)."""

    hidden: int
    factors: int
    negative_slope: float
    layers: int
    tau: float
    negatives: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    epochs: int
    patience: int | None
    seed: int
    threads: int
    show_progress: bool
    averaging: float = 0.0  # per-epoch EMA decay of the weights (0: the last epoch's weights)
    item_bias: bool = False  # logits gain a bias b(i) predicted from the item's text
    user_vectors: str = "network"  # "items": users are the mean of their items' unit vectors
    shared_negatives: bool = False  # one draw of negatives per batch, shared by its positives


@dataclass
class Result:
    """The trained network and its node vectors (users first), with the per-epoch history."""

    weights: dict[str, np.ndarray]
    vectors: np.ndarray  # (nodes, factors) float32, unit rows
    layer_outputs: np.ndarray  # (layers + 1, nodes, factors) float32
    item_biases: np.ndarray | None  # (items,) float32 b(i) of the logits, None without
    best_epoch: int
    history: list[dict[str, float | None]] = field(default_factory=list)


class Average:
    """Exponential moving average of the weights over epochs: after epoch t,
    ``a_t = decay * a_(t-1) + (1 - decay) * w_t`` with ``a_0 = w_0`` (float64 sums; decay 0:
    the epoch's own weights). Averaging damps the epoch-to-epoch swing of the rankings that
    Adam's last steps cause."""

    def __init__(self, decay: float) -> None:
        self.decay = decay
        self.sums: dict[str, np.ndarray] | None = None

    def add(self, weights: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
        """Fold in one epoch's weights (None: none) and return the average as float32."""
        if weights is not None:
            if self.sums is None or self.decay == 0:
                self.sums = {k: w.astype(np.float64) for k, w in weights.items()}
            else:
                d = self.decay
                self.sums = {k: d * a + (1 - d) * weights[k] for k, a in self.sums.items()}
        assert self.sums is not None
        return {k: a.astype(np.float32) for k, a in self.sums.items()}


def scored(
    users: np.ndarray, items: np.ndarray, biases: np.ndarray | None, tau: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(queries, item vectors)`` whose dot products rank as the logits do: the unit vectors,
    or with item biases ``[v_u, 1] . [v_i, tau b(i)] = cos + tau b(i)`` (the logit times tau,
    so scores stay on the cosine scale)."""
    if biases is None:
        return np.ascontiguousarray(users), np.ascontiguousarray(items)
    return biased_queries(users), biased_items(items, biases, tau)


def biased_queries(users: np.ndarray) -> np.ndarray:
    """``[v_u, 1]`` rows, for :func:`biased_items` (see :func:`scored`)."""
    return np.hstack([users, np.ones((users.shape[0], 1), dtype=np.float32)])


def biased_items(items: np.ndarray, biases: np.ndarray, tau: float) -> np.ndarray:
    """``[v_i, tau b(i)]`` rows, for :func:`biased_queries` (see :func:`scored`)."""
    return np.hstack([items, (tau * biases.astype(np.float64)).astype(np.float32)[:, None]])


def validation_ndcg(
    vectors: np.ndarray,
    n_users: int,
    train: sp.csr_array,
    relevant: sp.csr_array,
    threads: int,
    biases: np.ndarray | None = None,
    tau: float = 1.0,
) -> float:
    """Mean NDCG@10 over users with a relevant validation item, training items excluded
    (``biases``: the items' logit biases, see :func:`scored`)."""
    users = np.flatnonzero(np.diff(relevant.indptr) > 0)
    queries, items = scored(vectors[users], vectors[n_users:], biases, tau)
    ids, _ = topk(
        queries,
        items,
        VALIDATION_K,
        metric="dot",
        exclude=train[users],
        num_threads=threads,
        check_finite=False,
    )
    table = ranking_metrics(ids, relevant[users], VALIDATION_K, num_threads=threads)
    return float(table.loc[VALIDATION_K, "ndcg"])


def node_vectors(trainer: Any, interactions: sp.csr_array, user_vectors: str) -> np.ndarray:
    """The trainer's unit node vectors (users first); with ``user_vectors="items"`` the users'
    rows are the normalised weighted sums of their items' vectors instead of the network's."""
    vectors = trainer.vectors()
    if user_vectors == "items":
        n_users = interactions.shape[0]
        vectors[:n_users] = normalised_rows(item_sums(interactions, vectors[n_users:]))
    return vectors


def make_trainer(
    settings: Settings,
    inputs: np.ndarray,
    interactions: sp.csr_array,
    weights: dict[str, np.ndarray],
    *,
    user_means: bool = True,
    score_block: int = 1 << 24,
) -> Any:
    """The C++ trainer (``semrec._text.TextCFTrainer``) over canonical interactions.

    ``inputs`` holds the node inputs, users first, as float32 (users + items, dim). With
    ``user_means`` the users' inputs are the weighted means of their items' (the interaction
    weights) and the trainer derives their first layer from the items' (a sparse product
    instead of a dense one); their rows of ``inputs`` are then not read. ``score_block``
    bounds the floats of one block of the dense score matrix (tests make it small).
    """
    s = settings
    n_users, n_items = interactions.shape
    return text_ext.TextCFTrainer(
        np.ascontiguousarray(inputs, dtype=np.float32),
        np.ascontiguousarray(interactions.indptr, dtype=np.int64),
        np.ascontiguousarray(interactions.indices, dtype=np.int32),
        n_users,
        n_items,
        {name: np.ascontiguousarray(w, dtype=np.float32) for name, w in weights.items()},
        s.hidden,
        s.factors,
        s.negative_slope,
        s.layers,
        s.tau,
        s.negatives,
        s.batch_size,
        s.learning_rate,
        s.weight_decay,
        s.seed,
        score_block,
        np.ascontiguousarray(interactions.data, dtype=np.float32) if user_means else None,
        s.item_bias,
        s.shared_negatives,
    )


def graph(interactions: sp.csr_array) -> Any:
    """The user-item graph of canonical ``interactions``, built once (``semrec._text.TextCFGraph``:
    ``.propagate(x, layers)`` gives ``(1 / (L + 1)) sum_l A^l x``, users' rows first)."""
    n_users, n_items = interactions.shape
    return text_ext.TextCFGraph(
        np.ascontiguousarray(interactions.indptr, dtype=np.int64),
        np.ascontiguousarray(interactions.indices, dtype=np.int32),
        n_users,
        n_items,
    )


def propagate(interactions: sp.csr_array, x: np.ndarray, layers: int) -> np.ndarray:
    """``(1 / (L + 1)) sum_l A^l x`` over the user-item graph (users' rows first), in C++."""
    return graph(interactions).propagate(np.ascontiguousarray(x, dtype=np.float32), layers)


def train(
    settings: Settings,
    inputs: np.ndarray,
    interactions: sp.csr_array,
    weights: dict[str, np.ndarray],
    validation: sp.csr_array | None,
    callback: Callback | None,
    *,
    user_means: bool = True,
) -> Result:
    """Train from ``weights``; with ``validation``, keep the epoch with the best NDCG@10.

    ``user_means``: see :func:`make_trainer` (False when users also have text embeddings).
    """
    n_users = interactions.shape[0]
    s = settings
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(s.threads)
    # Counted in positives (interactions), batch by batch: an epoch on a large catalogue takes
    # minutes, and a bar of epochs would stand still all that time.
    positives = int(interactions.nnz)
    bar = tqdm(
        total=s.epochs * positives,
        desc="TextCF",
        unit="pos",
        unit_scale=True,
        disable=not s.show_progress,
    )
    try:
        trainer = make_trainer(s, inputs, interactions, weights, user_means=user_means)
        history: list[dict[str, float | None]] = []
        average = Average(s.averaging)
        best = (-np.inf, -1, trainer.parameters())
        for epoch in range(s.epochs):
            start = time.perf_counter()

            def advance(done: int, first: int = epoch * positives) -> None:
                bar.update(first + done - bar.n)  # done: this epoch's positives so far

            loss = trainer.epoch(epoch, advance if s.show_progress else None)
            if not np.isfinite(loss):
                raise ValueError(
                    f"TextCF diverged at epoch {epoch} (loss {loss}); lower learning_rate or "
                    "raise tau"
                )
            own = trainer.parameters()
            kept = average.add(own)  # the network this epoch stands for
            metric = None
            if validation is not None:
                trainer.set_parameters(kept)
                metric = validation_ndcg(
                    node_vectors(trainer, interactions, s.user_vectors),
                    n_users,
                    interactions,
                    validation,
                    s.threads,
                    trainer.item_biases() if s.item_bias else None,
                    s.tau,
                )
                trainer.set_parameters(own)  # training goes on from its own weights
                if metric > best[0]:
                    best = (metric, epoch, kept)
            seconds = time.perf_counter() - start
            history.append({"epoch": epoch, "loss": loss, "ndcg": metric, "seconds": seconds})
            logger.debug("TextCF epoch %d: loss %.5f, ndcg %s, %.2fs", epoch, loss, metric, seconds)
            bar.update((epoch + 1) * positives - bar.n)
            bar.set_postfix(
                epoch=epoch, loss=f"{loss:.4f}", **({} if metric is None else {"ndcg": metric})
            )
            if callback is not None:
                callback(epoch, loss, metric)
            if s.patience is not None and metric is not None and epoch - best[1] >= s.patience:
                logger.debug("TextCF: early stop after epoch %d (best %d)", epoch, best[1])
                break
        best_epoch = len(history) - 1
        if validation is not None:
            trainer.set_parameters(best[2])
            best_epoch = best[1]
        elif s.averaging > 0:
            trainer.set_parameters(average.add(None))
        vectors, layer_outputs = trainer.vectors(s.layers)
        if s.user_vectors == "items":
            vectors[:n_users] = normalised_rows(item_sums(interactions, vectors[n_users:]))
        biases = trainer.item_biases() if s.item_bias else None
        weights = trainer.parameters()
        # A finite loss can hide a collapse: weights that overflowed give NaN outputs, which the
        # normalisation turns into zero vectors, and every score into 0.
        finite = all(np.isfinite(w).all() for w in weights.values())
        if not finite or not np.linalg.norm(vectors, axis=1).any():
            what = "weights overflowed" if not finite else "vectors are all zero"
            raise ValueError(
                f"TextCF diverged: the network's {what} after {len(history)} epoch(s) "
                f"(learning_rate={s.learning_rate:g}); lower learning_rate"
            )
        if biases is not None and not np.isfinite(biases).all():
            raise ValueError(
                "TextCF's item biases overflowed (popularity or item_bias too large for the "
                "embeddings); lower popularity"
            )
        return Result(weights, vectors, layer_outputs, biases, best_epoch, history)
    finally:
        bar.close()
        torch.set_num_threads(previous_threads)
