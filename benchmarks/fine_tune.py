"""TextEncoder.fine_tune on MovieLens-100k (PROTOCOL.md cold-item split), in parts.

How to run (project root, project virtualenv with the test extra; ../shared/datasets/ml-100k):

    python benchmarks/fine_tune.py --parts speed
    python benchmarks/fine_tune.py --parts memory
    python benchmarks/fine_tune.py --parts cold --seeds 0,1 --test      # about 15 min a split
    python benchmarks/fine_tune.py --parts cold --seeds 0,1 --test --precision fp32
    python benchmarks/fine_tune.py --parts cold --seeds 0,1 --test --items-per-step 512
    python benchmarks/fine_tune.py --parts sampling --copies 1,4
    python benchmarks/fine_tune.py --parts attention

Parts
-----
speed
    Seconds for one epoch of fine-tuning in fp32 (``--layers``, default 2; batch 4,096, the
    defaults) on the cold-item test split's train set: semrec's ``TextEncoder.fine_tune`` (C++
    on LibTorch; its setup and the writing of the model included) against the plain-PyTorch and
    Hugging Face loop of ``benchmarks/finetune_probe.py`` (variant ``top``, the same model and
    schedule; its setup excluded); ratio = semrec / reference. Where the CPU has native bf16,
    also ``fine_tune(precision="bf16")``'s epoch and its ratio to fp32's.
memory
    One epoch of ``fine_tune`` (as ``speed``) with ``recompute=False`` (every item's
    activations kept) and ``recompute=True`` (each chunk's tuned layers run again in backward),
    each in a fresh process, in fp32 and, where the CPU has native bf16, in bf16: seconds, the
    process's peak resident memory, and the ratios.
cold
    Cold-item Recall@20 of ColdStartALS on ``[x, TF-IDF]`` scored as ``finetune_probe.py
    --stack`` does (ALS on the ratings >= 4 as 1s with alpha 5, the map fitted on the items with
    >= 5 interactions, ridge penalty 30 / 100), with ``x`` the frozen encoder's embedding and
    the embedding of the encoder fine-tuned on the split's fit set (``--layers``, ``--epochs``);
    the gain, the training seconds, and the ratio to ColdStartALS on the frozen embedding alone
    (ALS 64 factors, regularization 10, alpha 1 on every rating; the better of penalties 30 and
    100): #15's cold target is 1.2x. Splits: the validation carves ``--seeds`` carved from the
    test split's train set, and with ``--test`` the test split itself. ``--precision`` is
    ``fine_tune``'s (the training's, default ``auto``; every ``x`` is encoded in fp32), and so
    is ``--items-per-step`` (default: every item at every step).
attention
    The tuned layers' attention block (the query, key and value projections, the attention and
    its backward pass) over one chunk of 64 texts of the MovieLens texts' median token count:
    as semrec's tuner writes it (two matrix products around a softmax) against LibTorch's
    ``scaled_dot_product_attention``, in fp32 and, where the CPU has native bf16, under bf16
    autocast; alternating, 1 warm-up, median [min-max] of 7 rounds of 5 calls, and the ratio.
sampling
    What ``items_per_step`` buys as the catalogue grows: MovieLens's items ``--copies`` times
    over (each interaction moved to a random copy of its item; 16,384 of the cold-item test
    split's train interactions, 4 steps an epoch), the seconds of an epoch's steps (epochs 2
    and 3, timed between the epoch callbacks: the setup left out) with every item, 1,024 and
    512 items per step, and the ratios (``--precision``, default ``auto``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time
from collections.abc import Callable

import _bench

THREADS: int = _bench.pin_threads(default=2)  # before numpy, BLAS, OpenMP or torch load
# The fine-tuned models (about 90 MB each) go here, and go when the process ends.
SCRATCH = tempfile.TemporaryDirectory(prefix="semrec-fine-tune-")

import finetune_probe as probe  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import semantic  # noqa: E402
import torch  # noqa: E402

import semrec  # noqa: E402
from semrec import split  # noqa: E402
from semrec.text import cpu_features  # noqa: E402


def splits(args: argparse.Namespace) -> list[tuple]:
    """The (name, fit set, held-out set) splits ``--seeds`` / ``--test`` ask for."""
    data = semrec.datasets.movielens("100k", path=probe.DATA)
    train_set, test = split.cold_items(data, 0.1, 5, random_state=0)
    out = [
        (f"validation seed {seed}",
         *split.cold_items(train_set, 0.1, 5, random_state=seed, permute_items=False))
        for seed in (int(s) for s in args.seeds.split(",") if s)
    ]  # fmt: skip
    if args.test:
        out.append(("test", train_set, test))
    return out


def tuned_encoder(fit_set: semrec.datasets.Dataset, args: argparse.Namespace, epochs: int,
                  recompute: bool | None = None, precision: str = "fp32",
                  items_per_step: int | None = None, callback=None):  # fmt: skip
    """The fp32 encoder fine-tuned on ``fit_set`` (training in ``precision``, ``items_per_step``
    items run per step, ``callback`` after each epoch), and the seconds it took."""
    start = time.perf_counter()
    tuned = semrec.TextEncoder(precision="fp32").fine_tune(
        fit_set, tempfile.mkdtemp(dir=SCRATCH.name) + "/model", layers=args.layers,
        epochs=epochs, num_threads=args.threads, show_progress=False, recompute=recompute,
        precision=precision, items_per_step=items_per_step, callback=callback,
    )  # fmt: skip
    return tuned, time.perf_counter() - start


def data_and_train_set() -> tuple[semrec.datasets.Dataset, semrec.datasets.Dataset]:
    """MovieLens-100k and the cold-item test split's train set."""
    data = semrec.datasets.movielens("100k", path=probe.DATA)
    return data, split.cold_items(data, 0.1, 5, random_state=0)[0]


def part_speed(args: argparse.Namespace) -> None:
    data, train_set = data_and_train_set()
    _, seconds = tuned_encoder(train_set, args, epochs=1)
    states = probe.TokenStates([str(t) for t in data.item_text], args.layers)
    position = {item: row for row, item in enumerate(data.item_ids)}
    rows = torch.tensor([position[item] for item in train_set.item_ids])
    reference = probe.train("top", states, train_set, rows, 1)[3]
    print(f"# one epoch of fine-tuning the top {args.layers} layer(s), {THREADS} threads; "
          f"{_bench.machine_line()}")  # fmt: skip
    print("| semrec fine_tune (setup included) | plain PyTorch + HF (setup excluded) | ratio |")
    print("|---|---|---|")
    print(f"| {seconds:.0f} s | {reference:.0f} s | {seconds / reference:.2f}x |")
    if not cpu_features().bf16_native:
        print("\nprecision='bf16': no native bf16 on this CPU (it would train in fp32)")
        return
    _, low = tuned_encoder(train_set, args, epochs=1, precision="bf16")
    print("\n| fine_tune precision='fp32' | precision='bf16' | ratio bf16 / fp32 |")
    print("|---|---|---|")
    print(f"| {seconds:.0f} s | {low:.0f} s | {low / seconds:.2f}x |")


def one_epoch(args: argparse.Namespace, recompute: bool, precision: str,
              results: multiprocessing.Queue) -> None:  # fmt: skip
    """(seconds, peak resident GiB) of one epoch in this (fresh) process."""
    torch.set_num_threads(args.threads)
    _, seconds = tuned_encoder(data_and_train_set()[1], args, epochs=1, recompute=recompute,
                               precision=precision)  # fmt: skip
    results.put((seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20))


def part_memory(args: argparse.Namespace) -> None:
    spawn = multiprocessing.get_context("spawn")  # a fresh process: its own peak memory
    print(f"# one epoch of fine-tuning the top {args.layers} layer(s) on the cold-item test "
          f"split's train set, {THREADS} threads; {_bench.machine_line()}")  # fmt: skip
    print("| precision | recompute | seconds | peak resident memory |")
    print("|---|---|---|---|")
    precisions = ["fp32"] + ["bf16"] * cpu_features().bf16_native
    for precision in precisions:
        figures = {}
        for recompute in (False, True):
            results = spawn.Queue()
            worker = spawn.Process(target=one_epoch, args=(args, recompute, precision, results))
            worker.start()
            figures[recompute] = results.get()
            worker.join()
        (kept_s, kept_gib), (again_s, again_gib) = figures[False], figures[True]
        print(f"| {precision} | False (activations kept) | {kept_s:.0f} s | {kept_gib:.2f} GiB |")
        print(f"| {precision} | True (chunks run again in backward) | {again_s:.0f} s | "
              f"{again_gib:.2f} GiB |")  # fmt: skip
        print(f"| {precision} | ratio True / False | {again_s / kept_s:.2f}x | "
              f"{again_gib / kept_gib:.2f}x |", flush=True)  # fmt: skip
    if len(precisions) == 1:
        print("\nprecision='bf16': no native bf16 on this CPU (it would train in fp32)")


def part_cold(args: argparse.Namespace) -> None:
    chosen = splits(args)
    frozen_encoder = semrec.TextEncoder(precision="fp32")
    print(f"# cold-item Recall@20, ColdStartALS on [x, TF-IDF] (stacked map), penalty 30 / 100; "
          f"top {args.layers} layer(s) fine-tuned for {args.epochs} epochs, precision="
          f"{args.precision!r}, items_per_step={args.items_per_step}; {THREADS} threads; "
          f"{_bench.machine_line()}")  # fmt: skip
    print("| split | frozen | fine-tuned | gain (penalty 30) | training s | ColdStartALS on the "
          "frozen embedding alone | fine-tuned vs it |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for name, fit_set, held_out in chosen:
        texts = [str(t) for t in fit_set.item_text]
        frozen = frozen_encoder.encode(texts)
        tuned, seconds = tuned_encoder(fit_set, args, args.epochs, precision=args.precision,
                                       items_per_step=args.items_per_step)  # fmt: skip
        x = tuned.encode(texts)
        stack = probe.cold_map_als(fit_set, True)
        before = probe.cold_map_recalls(frozen, stack, fit_set, held_out, True)
        after = probe.cold_map_recalls(x, stack, fit_set, held_out, True)
        plain = probe.cold_map_als(fit_set, False)
        alone = max(
            semantic.metric(semrec.ColdStartALS(plain, frozen, regularization=p).fit(), fit_set,
                            held_out, "recall", 20, items=held_out.split_info["cold_items"])
            for p in (30.0, 100.0)
        )  # fmt: skip
        print(f"| {name} | {before[0]:.4f} / {before[1]:.4f} | {after[0]:.4f} / {after[1]:.4f} "
              f"| {after[0] / before[0] - 1:+.1%} | {seconds:.0f} | {alone:.4f} | "
              f"{after[0] / alone:.2f}x |", flush=True)  # fmt: skip


def copies_of(train_set: semrec.datasets.Dataset, copies: int, interactions: int):
    """``interactions`` of ``train_set``'s interactions (drawn at random) over its catalogue
    ``copies`` times as large: copy k of an item has the item's text plus " (copy k)", and each
    interaction goes to a random copy of its item. The same users and tastes; more items."""
    rng = np.random.default_rng(0)
    m = sp.coo_array(train_set.interactions)
    keep = rng.choice(m.nnz, size=min(interactions, m.nnz), replace=False)
    copy = rng.integers(0, copies, keep.size)
    events = pd.DataFrame({"user": m.row[keep], "item": m.col[keep] * copies + copy,
                           "rating": m.data[keep]})  # fmt: skip
    texts = [f"{t} (copy {k})" for t in train_set.item_text for k in range(copies)]
    items = pd.DataFrame({"item": np.arange(len(texts)), "text": texts})
    return semrec.datasets.Dataset.from_pandas(events, "user", "item", "rating", items=items)


def part_sampling(args: argparse.Namespace) -> None:
    _, train_set = data_and_train_set()
    batches = 4
    print(f"# seconds of one epoch of fine_tune's steps ({batches} batches of 4,096 "
          "interactions; the mean of epochs 2 and 3, timed between the epoch callbacks, so the "
          f"setup is left out), top {args.layers} layer(s), precision={args.precision!r}, "
          f"{THREADS} threads; {_bench.machine_line()}")  # fmt: skip
    print("| catalogue | items with interactions | every item | items_per_step=1024 | ratio | "
          "items_per_step=512 | ratio |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for copies in (int(c) for c in args.copies.split(",")):
        data = copies_of(train_set, copies, batches * 4096)
        trained = int((np.diff(sp.csc_array(data.interactions).indptr) > 0).sum())
        seconds = {}
        for per_step in (None, 1024, 512):
            ends: list[float] = []
            tuned_encoder(data, args, 3, precision=args.precision, items_per_step=per_step,
                          callback=lambda *_, e=ends: e.append(time.perf_counter()))  # fmt: skip
            seconds[per_step] = (ends[2] - ends[0]) / 2
        every = seconds[None]
        print(f"| MovieLens x {copies} ({data.n_items} items) | {trained} | {every:.1f} s | "
              f"{seconds[1024]:.1f} s | {seconds[1024] / every:.2f}x | {seconds[512]:.1f} s | "
              f"{seconds[512] / every:.2f}x |", flush=True)  # fmt: skip


def part_attention(args: argparse.Namespace) -> None:
    data = data_and_train_set()[0]
    lengths = [len(t) for t in semrec.TextEncoder().tokenize([str(t) for t in data.item_text])]
    b, heads, d, length = 64, 12, 32, int(np.median(lengths))
    gen = torch.Generator().manual_seed(0)
    h = torch.randn(b, length, heads * d, generator=gen, requires_grad=True)
    w = [(0.05 * torch.randn(heads * d, heads * d, generator=gen)).requires_grad_() for _ in "qkv"]
    valid = torch.arange(length)[None, :] < torch.randint(length // 2, length + 1, (b, 1))
    additive = torch.where(valid, 0.0, -1e4)[:, None, None, :]  # padded keys, as the tuner's

    def heads_of(t: torch.Tensor) -> torch.Tensor:
        return t.view(b, length, heads, d).transpose(1, 2)

    def written_out() -> torch.Tensor:  # semrec's layer_forward
        q, k, v = (heads_of(h @ x.t()) for x in w)
        p = torch.softmax((q @ k.transpose(-1, -2)) * d**-0.5 + additive, -1)
        return p @ v

    def sdpa() -> torch.Tensor:
        q, k, v = (heads_of(h @ x.t()) for x in w)
        mask = additive.to(q.dtype)
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)

    def step(f: Callable[[], torch.Tensor], bf16: bool) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = f()
        out.float().square().sum().backward()

    print(f"# attention forward + backward, {b} texts x {length} tokens, 12 heads, "
          f"{THREADS} threads; {_bench.machine_line()}")  # fmt: skip
    print(
        "| precision | written out (semrec) | scaled_dot_product_attention | ratio sdpa / semrec |"
    )
    print("|---|---|---|---|")
    for bf16 in (False, True) if cpu_features().bf16_native else (False,):
        times: dict[str, list[float]] = {"written": [], "sdpa": []}
        for rnd in range(8):
            for name, f in (("written", written_out), ("sdpa", sdpa)):
                start = time.perf_counter()
                for _ in range(5):
                    step(f, bf16)
                if rnd:  # round 0 warms up
                    times[name].append((time.perf_counter() - start) / 5)
        a, s = (float(np.median(times[k])) for k in ("written", "sdpa"))
        written, fused = (_bench.fmt_time(times[k], 1e-3) for k in ("written", "sdpa"))
        print(f"| {'bf16' if bf16 else 'fp32'} | {written} ms | {fused} ms | {s / a:.2f}x |",
              flush=True)  # fmt: skip
    if not cpu_features().bf16_native:
        print("\nbf16: no native bf16 on this CPU (fine_tune trains in fp32 there)")


PARTS = _bench.parts_of(globals())


def main() -> None:
    parser = _bench.parts_parser(__doc__, PARTS, THREADS)
    parser.add_argument("--layers", type=int, default=2, help="top layers fine-tuned")
    parser.add_argument("--epochs", type=int, default=4, help="cold: fine-tuning epochs")
    parser.add_argument("--seeds", default="0", help="cold: the validation carves' seeds")
    parser.add_argument("--test", action="store_true", help="cold: also the test split")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                        help="cold: fine_tune's training precision")  # fmt: skip
    parser.add_argument("--items-per-step", type=int, default=None,
                        help="cold: fine_tune's items_per_step (default: every item)")  # fmt: skip
    parser.add_argument("--copies", default="1,4", help="sampling: catalogue sizes, in copies")
    args = parser.parse_args()
    if not (probe.DATA / "u.data").exists():
        raise SystemExit(f"MovieLens-100k not found at {probe.DATA}")
    torch.set_num_threads(args.threads)
    _bench.run_parts(parser, args, PARTS)


if __name__ == "__main__":
    main()
