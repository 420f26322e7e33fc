"""Plain-PyTorch reference of TextCF, independent of semrec's C++ trainer.

Written the straightforward way one would in Python: ``torch.nn`` modules, autograd for every
step, the propagation as a ``torch.sparse`` product with the symmetric-normalised adjacency built
here with SciPy, and the sampled-softmax loss from the gathered vectors of every positive's own
negatives (``batch x negatives x factors``). The tests compare semrec's forward pass, loss and
gradients with it; ``benchmarks/textcf.py`` times its training loop against the C++ one.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch


def binary(interactions: sp.csr_array) -> sp.csr_array:
    """Ones where an interaction is stored (float64, int64 indices: one dtype for scipy)."""
    return sp.csr_array(
        (
            np.ones(interactions.nnz),
            np.asarray(interactions.indices, dtype=np.int64),
            np.asarray(interactions.indptr, dtype=np.int64),
        ),
        shape=interactions.shape,
    )


def normalised_adjacency(interactions: sp.csr_array) -> sp.csr_array:
    """``D^-1/2 A D^-1/2`` of the bipartite graph (users first, then items), binary edges."""
    r = binary(interactions)
    n_users, n_items = r.shape
    a = sp.block_array([[None, r], [r.T, None]], format="csr")
    a.resize((n_users + n_items, n_users + n_items))
    degree = np.asarray(a.sum(axis=1)).ravel()
    scale = np.divide(1.0, np.sqrt(degree), out=np.zeros_like(degree), where=degree > 0)
    return sp.csr_array(sp.diags_array(scale) @ a @ sp.diags_array(scale))


def propagation_matrix(interactions: sp.csr_array, layers: int) -> np.ndarray:
    """The dense operator ``(1 / (L + 1)) sum_l A^l`` (small problems only)."""
    a = normalised_adjacency(interactions).toarray()
    power = np.eye(a.shape[0])
    total = power.copy()
    for _ in range(layers):
        power = a @ power
        total += power
    return total / (layers + 1)


def torch_adjacency(interactions: sp.csr_array) -> torch.Tensor:
    a = normalised_adjacency(interactions).tocoo()
    index = torch.from_numpy(np.vstack([a.row, a.col]).astype(np.int64))
    values = torch.from_numpy(a.data.astype(np.float32))
    return torch.sparse_coo_tensor(index, values, a.shape, check_invariants=True).coalesce()


class ReferenceTextCF(torch.nn.Module):
    """The model: shared MLP (or one linear layer), optional propagation, L2 normalisation;
    with a ``bias.weight`` among the weights, an item bias ``b(i)``: a bias-free linear layer
    on the item's hidden layer (on its embedding without a hidden layer)."""

    def __init__(self, weights: dict[str, np.ndarray], negative_slope: float = 0.01) -> None:
        super().__init__()
        w1 = torch.from_numpy(np.array(weights["l1.weight"], dtype=np.float32))
        self.l1 = torch.nn.Linear(w1.shape[1], w1.shape[0])
        self.l2 = None
        if "l2.weight" in weights:
            w2 = torch.from_numpy(np.array(weights["l2.weight"], dtype=np.float32))
            self.l2 = torch.nn.Linear(w2.shape[1], w2.shape[0])
        self.bias = None
        if "bias.weight" in weights:
            self.bias = torch.nn.Linear(weights["bias.weight"].shape[1], 1, bias=False)
        self.negative_slope = negative_slope
        with torch.no_grad():
            for name, p in self.named_parameters():
                p.copy_(torch.from_numpy(np.array(weights[name], dtype=np.float32)))

    def mlp(self, x: torch.Tensor) -> torch.Tensor:
        h = self.l1(x)
        if self.l2 is None:
            return h
        return self.l2(torch.nn.functional.leaky_relu(h, self.negative_slope))

    def item_biases(self, item_inputs: torch.Tensor) -> torch.Tensor | None:
        """``b(i)`` of every item input row (None without the bias)."""
        if self.bias is None:
            return None
        g = item_inputs
        if self.l2 is not None:
            g = torch.nn.functional.leaky_relu(self.l1(item_inputs), self.negative_slope)
        return self.bias(g)[:, 0]

    def forward(self, inputs: torch.Tensor, adjacency: torch.Tensor, layers: int) -> torch.Tensor:
        h = self.mlp(inputs)
        outputs = [h]
        for _ in range(layers):
            h = torch.sparse.mm(adjacency, h)
            outputs.append(h)
        p = torch.stack(outputs).mean(dim=0)
        return torch.nn.functional.normalize(p, dim=1)


def infonce(
    v: torch.Tensor,
    n_users: int,
    users: torch.Tensor,
    items: torch.Tensor,
    negatives: torch.Tensor,
    tau: float,
    *,
    dense: bool = False,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean over the batch of -log softmax of each positive against its own negatives.

    Each positive's negative vectors are gathered; ``dense=True`` reads the same scores from
    the dense (batch users x items) product instead, the way semrec's C++ trainer computes
    them (a control for the benchmark). ``bias``: each item's bias, added to its logits.
    """
    if dense:
        rows, row_of = torch.unique(users, return_inverse=True)
        scores = v[rows] @ v[n_users:].T / tau
        positive = scores[row_of, items]
        negative = scores[row_of[:, None], negatives]
    else:
        vu = v[users]
        vi = v[n_users + items]
        vn = v[n_users + negatives]  # (batch, negatives, factors): the gather the issue describes
        positive = (vu * vi).sum(dim=1) / tau
        negative = torch.einsum("bf,bkf->bk", vu, vn) / tau
    if bias is not None:
        positive = positive + bias[items]
        negative = negative + bias[negatives]
    logits = torch.cat([positive[:, None], negative], dim=1)
    return (torch.logsumexp(logits, dim=1) - positive).mean()


def infonce_full(
    v: torch.Tensor,
    n_users: int,
    users: torch.Tensor,
    items: torch.Tensor,
    pool: torch.Tensor,
    tau: float,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """The full softmax: each positive against every item of ``pool`` (itself included)."""
    scores = v[users] @ v[n_users + pool].T / tau
    positive = (v[users] * v[n_users + items]).sum(dim=1) / tau
    if bias is not None:
        scores = scores + bias[pool]
        positive = positive + bias[items]
    return (torch.logsumexp(scores, dim=1) - positive).mean()


def loss_and_gradients(
    weights: dict[str, np.ndarray],
    inputs: np.ndarray,
    interactions: sp.csr_array,
    layers: int,
    users: np.ndarray,
    items: np.ndarray,
    negatives: np.ndarray,
    tau: float,
    negative_slope: float = 0.01,
) -> tuple[float, dict[str, np.ndarray], np.ndarray]:
    """Loss, the gradient of every weight, and the node vectors, for one batch (``negatives``
    with 0 columns: the full softmax)."""
    model = ReferenceTextCF(weights, negative_slope)
    x = torch.from_numpy(inputs)
    v = model(x, torch_adjacency(interactions), layers)
    bias = model.item_biases(x[interactions.shape[0] :])
    u = torch.from_numpy(users.astype(np.int64))
    i = torch.from_numpy(items.astype(np.int64))
    if negatives.shape[1] == 0:  # full softmax over the items with interactions
        pool = torch.from_numpy(np.unique(interactions.indices).astype(np.int64))
        loss = infonce_full(v, interactions.shape[0], u, i, pool, tau, bias)
    else:
        n = torch.from_numpy(negatives.astype(np.int64))
        loss = infonce(v, interactions.shape[0], u, i, n, tau, bias=bias)
    loss.backward()
    grads = {name: p.grad.numpy().copy() for name, p in model.named_parameters()}
    return float(loss.detach()), grads, v.detach().numpy()


class ReferenceLoop:
    """The training loop in plain PyTorch: shuffle, sample negatives, forward, loss, Adam.

    ``scores="gather"`` is the plain formulation (each positive's negative vectors gathered);
    ``"dense"`` reads the scores from the batch users x items product like semrec's trainer.
    """

    def __init__(
        self,
        weights: dict[str, np.ndarray],
        inputs: np.ndarray,
        interactions: sp.csr_array,
        *,
        layers: int,
        tau: float,
        negatives: int,
        batch_size: int,
        learning_rate: float,
        weight_decay: float = 0.0,
        negative_slope: float = 0.01,
        seed: int = 0,
        scores: str = "gather",
    ) -> None:
        self.dense = {"gather": False, "dense": True}[scores]
        self.model = ReferenceTextCF(weights, negative_slope)
        self.inputs = torch.from_numpy(inputs)
        self.adjacency = torch_adjacency(interactions)
        coo = sp.coo_array(binary(interactions))
        self.users = torch.from_numpy(coo.row.astype(np.int64))
        self.items = torch.from_numpy(coo.col.astype(np.int64))
        self.pool = torch.from_numpy(np.unique(coo.col).astype(np.int64))
        self.n_users = interactions.shape[0]
        self.layers, self.tau, self.negatives, self.batch_size = layers, tau, negatives, batch_size
        self.optimizer = torch.optim.Adam(
            self.model.parameters(), lr=learning_rate, weight_decay=weight_decay
        )
        self.generator = torch.Generator().manual_seed(seed)

    def epoch(self) -> float:
        order = torch.randperm(self.users.numel(), generator=self.generator)
        total = 0.0
        for start in range(0, order.numel(), self.batch_size):
            batch = order[start : start + self.batch_size]
            draws = torch.randint(
                self.pool.numel(), (batch.numel(), self.negatives), generator=self.generator
            )
            self.optimizer.zero_grad()
            v = self.model(self.inputs, self.adjacency, self.layers)
            loss = infonce(
                v,
                self.n_users,
                self.users[batch],
                self.items[batch],
                self.pool[draws],
                self.tau,
                dense=self.dense,
            )
            loss.backward()
            self.optimizer.step()
            total += float(loss.detach()) * batch.numel()
        return total / order.numel()

    def vectors(self) -> np.ndarray:
        with torch.no_grad():
            return self.model(self.inputs, self.adjacency, self.layers).numpy()


def planted_with_cold_items(cold: int, seed: int) -> tuple[sp.csr_array, np.ndarray]:
    """Test data: 200 users x 60 items with 4 planted topics, ratings 1-5 as weights, and
    embeddings (12-d) drawn around per-topic centres; items ``0 .. cold - 1`` have no
    interactions (cold)."""
    from semrec.datasets import synthetic

    ds = synthetic(200, 60, 3000, n_topics=4, with_text=True, random_state=seed)
    m = sp.csr_array(ds.interactions).astype(np.float32)
    keep = np.r_[np.zeros(cold), np.ones(60 - cold)]
    m = sp.csr_array(m @ sp.diags_array(keep)).astype(np.float32)
    m.eliminate_zeros()
    m.data = np.random.default_rng(seed).integers(1, 6, m.nnz).astype(np.float32)
    rng = np.random.default_rng(seed + 1)
    centres = rng.standard_normal((4, 12))
    emb = centres[ds.items["topic"].to_numpy()] + rng.standard_normal((60, 12))
    return m, emb.astype(np.float32)


def ndcg_beside_content(model: object, emb: np.ndarray, train: object, test: object) -> tuple:
    """NDCG@10 on ``test`` of a fitted model and of ``ContentRecommender`` on the same item
    embeddings fitted on ``train`` (the planted-topics check: training on interactions should
    recover topics the noisy text alone recovers poorly)."""
    import semrec

    content = semrec.ContentRecommender(emb, show_progress=False).fit(train.interactions)
    return tuple(
        float(semrec.evaluate(m, train, test, k=10, metrics=["ndcg"]).loc[10, "ndcg"])
        for m in (model, content)
    )


def planted_topics(n_items: int, seed: int) -> tuple:
    """Test data: 300 users x ``n_items`` items x 6,000 interactions with 8 planted topics, and
    unit item embeddings (32-d) that are noisy topic directions (noisy enough that text alone
    recovers the topics poorly: behaviour has to fill in)."""
    from semrec.datasets import synthetic

    ds = synthetic(300, n_items, 6000, n_topics=8, with_text=True, random_state=seed)
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((8, 32))
    emb = centres[ds.items["topic"].to_numpy()] + 2.5 * rng.standard_normal((n_items, 32))
    return ds, (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)


def small_settings(**kw: object) -> object:
    """semrec's trainer settings for the tiny gradient checks (a 7-wide hidden layer, 4
    factors, 2 layers, tau 0.2, 3 negatives); ``kw`` overrides any of them."""
    from semrec.textcf._training import Settings

    base = dict(
        hidden=7, factors=4, negative_slope=0.01, layers=2, tau=0.2, negatives=3,
        batch_size=64, learning_rate=1e-2, weight_decay=0.0, epochs=1, patience=None,
        seed=1, threads=1, show_progress=False,
    )  # fmt: skip
    base.update(kw)
    return Settings(**base)
