"""A probe for TextCF's stretch goal: does adapting the language model itself to the interactions
help cold items? Plain PyTorch and Hugging Face transformers, not semrec's trainer.

How to run (project root, project virtualenv with the test extra; ../shared/datasets/ml-100k):

    python benchmarks/finetune_probe.py                          # mean and top, seeds 0-2
    python benchmarks/finetune_probe.py --variants mean,attention --epochs 4,8 --test
    python benchmarks/finetune_probe.py --seeds 0,1,2,3,4,5 --test --cold-map
    python benchmarks/finetune_probe.py --variants top --layers 2 --seeds 0 --test --stack

One small trainer for every variant, so that only the item input differs: a shared MLP
384 -> 768 -> 64 (LeakyReLU), item vector = normalise(MLP(x_i)), user vector =
normalise(MLP(rating-weighted mean of the x_i of the user's history)), InfoNCE at tau 0.15 with
the full softmax over the warm items, Adam (MLP 1e-3), batches of 4,096 interactions. Variants
of ``x_i`` (all-MiniLM-L6-v2 on the item's protocol text):

mean
    The frozen encoder's mean-pooled output, as TextCF gets it (the control).
attention
    The frozen last layer's token states, pooled with learned softmax weights (one query
    vector, Adam 1e-2).
top
    The top transformer layer fine-tuned (Adam 1e-4) on the frozen fifth layer's token
    states, then mean-pooled: the language model adapted to the interactions. ``--layers N``
    fine-tunes the top N layers on the frozen output of the layer below them.

Scored on the PROTOCOL.md cold-item split's validation carves (``split.cold_items`` of the
test split's train set, seeds ``--seeds``; ``--test`` adds the test split itself): cold-item
Recall@20 of the network's own vectors for the cold items (no cold map), users ranking the
cold items only; and the training seconds (2 threads). ``--cold-map`` also scores each variant's
``x_i`` as ColdStartALS's input beside the items' TF-IDF vectors (the benchmark's strongest cold
baseline, ``textcf.py --parts cold_words``: ALS 64 factors, regularization 10, alpha 1; ridge
penalty 30 and 100), so that the adapted encoder is measured where the text helps most.
``--stack`` scores it with session 32's stacked cold map instead: ALS on the ratings >= 4 as
1s with alpha 5, the ridge map fitted on the items with >= 5 interactions.
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Iterable
from pathlib import Path

import _bench

THREADS: int = _bench.pin_threads(default=2)  # before numpy, BLAS, OpenMP or torch load

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import semantic  # noqa: E402
import textcf  # noqa: E402
import torch  # noqa: E402

import semrec  # noqa: E402
from semrec import split  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "ml-100k"
BATCH = 4096
TAU = 0.15


class TokenStates:
    """The items' token states from the frozen encoder: the last layer's, and the input of its
    top ``layers`` layers (the fifth layer's output for one)."""

    def __init__(self, texts: list[str], layers: int = 1) -> None:
        from transformers import AutoModel, AutoTokenizer

        path = semrec.TextEncoder().model_path  # the bundled model files, offline
        tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()
        batch = tokenizer(texts, padding=True, truncation=True, max_length=128,
                          return_tensors="pt")  # fmt: skip
        with torch.no_grad():
            out = self.model(**batch, output_hidden_states=True)
        self.layers = layers
        self.last, self.below = out.last_hidden_state, out.hidden_states[-1 - layers]
        self.mask = batch["attention_mask"].float()
        self.additive = (1.0 - self.mask)[:, None, None, :] * torch.finfo(torch.float32).min
        # Items in length buckets of 64, each padded to its longest: little wasted work.
        lengths = self.mask.sum(1).long()
        self.buckets = list(torch.split(torch.argsort(lengths), 64))
        self.lengths = lengths
        with torch.no_grad():  # the top layers on the states below them give the last's
            check = self.run(self.top_layers(), self.below[:8], self.additive[:8])
        gap = float(((check - self.last[:8]).abs() * self.mask[:8, :, None]).max())
        assert gap < 1e-4, f"the top layers do not reproduce the encoder's output ({gap})"

    def top_layers(self) -> list[torch.nn.Module]:
        return list(self.model.encoder.layer[-self.layers :])

    @staticmethod
    def run(
        layers: Iterable[torch.nn.Module], h: torch.Tensor, additive: torch.Tensor
    ) -> torch.Tensor:
        for layer in layers:
            h = layer(h, attention_mask=additive)
            h = h[0] if isinstance(h, tuple) else h
        return h

    def mean(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (states * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)


class Inputs(torch.nn.Module):
    """``x_i`` of every item under one variant, and the shared MLP."""

    def __init__(self, variant: str, states: TokenStates) -> None:
        super().__init__()
        self.variant, self.states = variant, states
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(384, 768), torch.nn.LeakyReLU(0.01), torch.nn.Linear(768, 64)
        )
        if variant == "attention":
            self.query = torch.nn.Parameter(torch.zeros(384))
        if variant == "top":
            # eval mode: no dropout
            self.layers = torch.nn.ModuleList(copy.deepcopy(states.top_layers()))

    def groups(self) -> list[dict]:
        groups = [{"params": list(self.mlp.parameters()), "lr": 1e-3}]
        if self.variant == "attention":
            groups.append({"params": [self.query], "lr": 1e-2})
        if self.variant == "top":
            groups.append({"params": list(self.layers.parameters()), "lr": 1e-4})
        return groups

    def items(self) -> torch.Tensor:
        s = self.states
        if self.variant == "mean":
            x = s.mean(s.last, s.mask)
        elif self.variant == "attention":
            logits = (s.last @ self.query).masked_fill(s.mask == 0, -1e9)
            x = (torch.softmax(logits, 1)[..., None] * s.last).sum(1)
        else:
            parts = []
            for rows in s.buckets:
                n = int(s.lengths[rows].max())
                h = s.run(self.layers, s.below[rows, :n], s.additive[rows][..., :n])
                parts.append(s.mean(h, s.mask[rows, :n]))
            x = torch.zeros(s.last.shape[0], 384).index_put((torch.cat(s.buckets),),
                                                           torch.cat(parts))  # fmt: skip
        return torch.nn.functional.normalize(x, dim=1)


def train(variant: str, states: TokenStates, fit_set: semrec.datasets.Dataset, rows: torch.Tensor,
          epochs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:  # fmt: skip
    """User vectors, item vectors and the items' ``x_i`` (fit_set's numbering) after ``epochs``,
    and the seconds taken."""
    torch.manual_seed(0)
    net = Inputs(variant, states)
    opt = torch.optim.Adam(net.groups())
    m = sp.csr_array(fit_set.interactions)
    dense_history = torch.from_numpy(m.toarray()).float()  # 943 x 1,682: small
    mass = dense_history.sum(1, keepdim=True).clamp(min=1e-9)
    warm = torch.from_numpy(np.diff(sp.csc_array(m).indptr) > 0)
    coo = m.tocoo()
    users, items = torch.from_numpy(coo.row).long(), torch.from_numpy(coo.col).long()
    order = torch.Generator().manual_seed(0)

    def vectors() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = net.items()[rows]  # dataset rows -> fit_set's item numbering
        item_vectors = torch.nn.functional.normalize(net.mlp(x), dim=1)
        user_vectors = torch.nn.functional.normalize(net.mlp(dense_history @ x / mass), dim=1)
        return user_vectors, item_vectors, x

    start = time.perf_counter()
    for _ in range(epochs):
        shuffled = torch.randperm(users.numel(), generator=order)
        for b in range(0, shuffled.numel(), BATCH):
            batch = shuffled[b : b + BATCH]
            user_vectors, item_vectors, _ = vectors()
            logits = (user_vectors[users[batch]] @ item_vectors.T / TAU).masked_fill(~warm, -1e9)
            loss = torch.nn.functional.cross_entropy(logits, items[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        user_vectors, item_vectors, x = vectors()
    return user_vectors.numpy(), item_vectors.numpy(), x.numpy(), seconds


def cold_recall(users: np.ndarray, items: np.ndarray, held_out: semrec.datasets.Dataset) -> float:
    """Recall@20 over the cold items, users with a relevant (rating >= 4) cold item."""
    cold = held_out.split_info["cold_items"]
    relevant = sp.csr_array(held_out.interactions)
    relevant = sp.csr_array(relevant.multiply(relevant >= 4))[:, cold]
    relevant.eliminate_zeros()
    recalls = []
    for u in np.flatnonzero(np.diff(relevant.indptr) > 0):
        top = np.argsort(-(items[cold] @ users[u]), kind="stable")[:20]
        hits = np.intersect1d(top, relevant.indices[relevant.indptr[u] : relevant.indptr[u + 1]])
        recalls.append(hits.size / (relevant.indptr[u + 1] - relevant.indptr[u]))
    return float(np.mean(recalls))


def cold_map_als(fit_set: semrec.datasets.Dataset, stack: bool) -> semrec.ALS:
    """What ColdStartALS maps into, fitted once per split: the benchmark's tuned ALS (64
    factors, regularization 10, alpha 1) on every interaction, or with ``stack`` on the ratings
    >= 4 alone, as 1s, with alpha 5 (session 29's best view for the cold map)."""
    m = sp.csr_array(fit_set.interactions)
    if not stack:
        return semantic.make_als((64, 10.0, 1.0)).fit(m)
    liked = sp.csr_array((m >= 4).astype(np.float32))
    liked.eliminate_zeros()
    return semantic.make_als((64, 10.0, 5.0)).fit(liked)


def cold_map_recalls(x: np.ndarray, als: semrec.ALS, fit_set: semrec.datasets.Dataset,
                     held_out: semrec.datasets.Dataset, stack: bool) -> list[float]:  # fmt: skip
    """Cold-item Recall@20 of ColdStartALS on ``[x, TF-IDF]`` (``textcf.with_words``), ridge
    penalties 30 and 100, mapping into ``als``; with ``stack`` the map is fitted on the items
    with >= 5 interactions (``min_interactions``: like the protocol's cold items)."""
    features = textcf.with_words(fit_set, x)
    cold = held_out.split_info["cold_items"]
    least = 5 if stack else 1
    return [
        semantic.metric(semrec.ColdStartALS(als, features, regularization=penalty,
                                            min_interactions=least).fit(),
                        fit_set, held_out, "recall", 20, items=cold)
        for penalty in (30.0, 100.0)
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="read before torch loads")
    parser.add_argument("--variants", default="mean,top")
    parser.add_argument("--epochs", default="4", help="comma-separated epoch counts")
    parser.add_argument("--seeds", default="0,1,2", help="the validation carves' seeds")
    parser.add_argument("--test", action="store_true", help="also the test split (info only)")
    parser.add_argument("--cold-map", action="store_true",
                        help="also ColdStartALS on [x_i, TF-IDF] (penalties 30, 100)")  # fmt: skip
    parser.add_argument("--stack", action="store_true",
                        help="--cold-map with ALS on the ratings >= 4 (alpha 5) and the map "
                             "fitted on items with >= 5 interactions (session 32)")  # fmt: skip
    parser.add_argument("--layers", type=int, default=1, choices=range(1, 7),
                        help="how many top transformer layers 'top' fine-tunes")  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    if not (DATA / "u.data").exists():
        raise SystemExit(f"MovieLens-100k not found at {DATA}")
    data = semrec.datasets.movielens("100k", path=DATA)
    states = TokenStates([str(t) for t in data.item_text], args.layers)
    train_set, test = split.cold_items(data, 0.1, 5, random_state=0)
    position = {item: row for row, item in enumerate(data.item_ids)}
    rows = torch.tensor([position[item] for item in train_set.item_ids])
    splits = [
        (f"validation seed {seed}",
         *split.cold_items(train_set, 0.1, 5, random_state=seed, permute_items=False))
        for seed in (int(s) for s in args.seeds.split(","))
    ]  # fmt: skip
    if args.test:
        splits.append(("test", train_set, test))
    args.cold_map = args.cold_map or args.stack
    print(
        f"# cold-item Recall@20 of the network's own cold vectors; {THREADS} threads; 'top' "
        f"fine-tunes the top {args.layers} layer(s)"
        + ("; the cold map stacked" if args.stack else "")
    )
    mapped = " ColdStartALS on [x_i, TF-IDF], penalty 30 / 100 |" if args.cold_map else ""
    print(f"| split | variant | epochs | Recall@20 | vs mean | training seconds |{mapped}")
    print("|---|---|---|---|---|---|" + ("---|" if args.cold_map else ""))
    for name, fit_set, held_out in splits:
        control = {}
        als = cold_map_als(fit_set, args.stack) if args.cold_map else None
        for variant in args.variants.split(","):
            for epochs in (int(e) for e in args.epochs.split(",")):
                users, items, x, seconds = train(variant, states, fit_set, rows, epochs)
                recall = cold_recall(users, items, held_out)
                if variant == "mean":
                    control[epochs] = recall
                base = control.get(epochs)
                ratio = f"{recall / base:.2f}x" if base else "-"
                line = f"| {name} | {variant} | {epochs} | {recall:.4f} | {ratio} | {seconds:.0f} |"
                if args.cold_map:
                    recalls = cold_map_recalls(x, als, fit_set, held_out, args.stack)
                    line += " {:.4f} / {:.4f} |".format(*recalls)
                print(line, flush=True)


if __name__ == "__main__":
    main()
