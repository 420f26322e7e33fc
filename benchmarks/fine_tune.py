"""TextEncoder.fine_tune on MovieLens-100k (PROTOCOL.md cold-item split), in parts.

How to run (project root, project virtualenv with the test extra; ../shared/datasets/ml-100k):

    python benchmarks/fine_tune.py --parts speed
    python benchmarks/fine_tune.py --parts memory
    python benchmarks/fine_tune.py --parts cold --seeds 0,1 --test      # about 15 min a split
    python benchmarks/fine_tune.py --parts cold --seeds 0,1 --test --precision fp32

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
    One fp32 epoch of ``fine_tune`` (as ``speed``) with ``recompute=False`` (every item's
    activations kept) and ``recompute=True`` (each chunk's tuned layers run again in backward),
    each in a fresh process: seconds, the process's peak resident memory, and the ratios.
cold
    Cold-item Recall@20 of ColdStartALS on ``[x, TF-IDF]`` scored as ``finetune_probe.py
    --stack`` does (ALS on the ratings >= 4 as 1s with alpha 5, the map fitted on the items with
    >= 5 interactions, ridge penalty 30 / 100), with ``x`` the frozen encoder's embedding and
    the embedding of the encoder fine-tuned on the split's fit set (``--layers``, ``--epochs``);
    the gain, the training seconds, and the ratio to ColdStartALS on the frozen embedding alone
    (ALS 64 factors, regularization 10, alpha 1 on every rating; the better of penalties 30 and
    100): #15's cold target is 1.2x. Splits: the validation carves ``--seeds`` carved from the
    test split's train set, and with ``--test`` the test split itself. ``--precision`` is
    ``fine_tune``'s (the training's, default ``auto``; every ``x`` is encoded in fp32).
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import tempfile
import time

import _bench

THREADS: int = _bench.pin_threads(default=2)  # before numpy, BLAS, OpenMP or torch load

import finetune_probe as probe  # noqa: E402
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
                  recompute: bool | None = None, precision: str = "fp32"):  # fmt: skip
    """The fp32 encoder fine-tuned on ``fit_set`` (training in ``precision``), and the seconds
    it took."""
    start = time.perf_counter()
    tuned = semrec.TextEncoder(precision="fp32").fine_tune(
        fit_set, tempfile.mkdtemp(prefix="semrec-fine-tune-") + "/model", layers=args.layers,
        epochs=epochs, num_threads=args.threads, show_progress=False, recompute=recompute,
        precision=precision,
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


def one_epoch(args: argparse.Namespace, recompute: bool, results: multiprocessing.Queue) -> None:
    """(seconds, peak resident GiB) of one epoch in this (fresh) process."""
    torch.set_num_threads(args.threads)
    _, seconds = tuned_encoder(data_and_train_set()[1], args, epochs=1, recompute=recompute)
    results.put((seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20))


def part_memory(args: argparse.Namespace) -> None:
    spawn = multiprocessing.get_context("spawn")  # a fresh process: its own peak memory
    figures = {}
    for recompute in (False, True):
        results = spawn.Queue()
        worker = spawn.Process(target=one_epoch, args=(args, recompute, results))
        worker.start()
        figures[recompute] = results.get()
        worker.join()
    (kept_s, kept_gib), (again_s, again_gib) = figures[False], figures[True]
    print(f"# one epoch of fine-tuning the top {args.layers} layer(s) on the cold-item test "
          f"split's train set, {THREADS} threads; {_bench.machine_line()}")  # fmt: skip
    print("| recompute | seconds | peak resident memory |")
    print("|---|---|---|")
    print(f"| False (activations kept) | {kept_s:.0f} s | {kept_gib:.2f} GiB |")
    print(f"| True (chunks run again in backward) | {again_s:.0f} s | {again_gib:.2f} GiB |")
    print(f"| ratio True / False | {again_s / kept_s:.2f}x | {again_gib / kept_gib:.2f}x |")


def part_cold(args: argparse.Namespace) -> None:
    chosen = splits(args)
    frozen_encoder = semrec.TextEncoder(precision="fp32")
    print(f"# cold-item Recall@20, ColdStartALS on [x, TF-IDF] (stacked map), penalty 30 / 100; "
          f"top {args.layers} layer(s) fine-tuned for {args.epochs} epochs, precision="
          f"{args.precision!r}; {THREADS} threads; {_bench.machine_line()}")  # fmt: skip
    print("| split | frozen | fine-tuned | gain (penalty 30) | training s | ColdStartALS on the "
          "frozen embedding alone | fine-tuned vs it |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for name, fit_set, held_out in chosen:
        texts = [str(t) for t in fit_set.item_text]
        frozen = frozen_encoder.encode(texts)
        tuned, seconds = tuned_encoder(fit_set, args, args.epochs, precision=args.precision)
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


PARTS = _bench.parts_of(globals())


def main() -> None:
    parser = _bench.parts_parser(__doc__, PARTS, THREADS)
    parser.add_argument("--layers", type=int, default=2, help="top layers fine-tuned")
    parser.add_argument("--epochs", type=int, default=4, help="cold: fine-tuning epochs")
    parser.add_argument("--seeds", default="0", help="cold: the validation carves' seeds")
    parser.add_argument("--test", action="store_true", help="cold: also the test split")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                        help="cold: fine_tune's training precision")  # fmt: skip
    args = parser.parse_args()
    if not (probe.DATA / "u.data").exists():
        raise SystemExit(f"MovieLens-100k not found at {probe.DATA}")
    torch.set_num_threads(args.threads)
    _bench.run_parts(parser, args, PARTS)


if __name__ == "__main__":
    main()
