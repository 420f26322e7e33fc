"""TextCF on large catalogues: shared negatives (``shared_negatives=True``) against negatives
drawn per positive, in seconds per epoch as the catalogue grows (up to the protocol's size
M) and in quality on MovieLens-100k (PROTOCOL.md warm split). Parts (``--parts a,b``):

epoch
    One training epoch of ``semrec.TextCF`` on synthetic interactions (``semrec.datasets.
    synthetic``, planted topics) with 384-d MiniLM-shaped item vectors (benchmarks/
    _catalogues.py), MLP 384-768-64, 256 negatives, batch 2048, at growing sizes: the defaults
    (2 propagation layers, own negatives) where they finish in minutes, ``layers=0`` with own
    negatives, and ``layers=0`` with 256 and 1,024 shared negatives (1,024 shared matched 256
    per positive in quality on MovieLens-100k: ``quality``); ratios of the 1,024 shared to own
    negatives and to the defaults (the median of a fit's 2nd and 3rd epochs; --quick: smaller
    sizes, 1 epoch, no defaults).
size_m
    One epoch at the protocol's size M (100k users x 20k items x 5M interactions, synthetic)
    with ``layers=0`` and 1,024 shared negatives, the fit's seconds and the process's peak
    memory (about 4 minutes; the per-positive epoch, some 20 minutes by the row above, is
    not run).
quality
    Warm-split NDCG@10 (relevant = rating >= 4) of TextCF with the benchmark's tuned settings
    (layers 0, tau 0.15, learning rate 1e-3) and own or shared negatives (256 and 1,024): the
    epochs early-stopped on validation carved from train, then refitted on train and scored on
    test; seconds per epoch beside them.

How to run (project root, project virtualenv; ../shared/datasets/ml-100k for ``quality``):

    python benchmarks/textcf_scale.py --parts epoch --quick
    python benchmarks/textcf_scale.py                  # every part, about 50 minutes

Threads: --threads (default 2) for semrec, torch, OMP_NUM_THREADS and BLAS.
"""

from __future__ import annotations

import argparse

import _bench

THREADS: int = _bench.pin_threads(default=2)  # before numpy, BLAS, OpenMP or torch load

import resource  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import textcf  # noqa: E402  (a sibling script: the MovieLens data and the tuned settings)
from _catalogues import catalogue  # noqa: E402

import semrec  # noqa: E402
from semrec import split  # noqa: E402
from semrec.datasets import synthetic  # noqa: E402

SEED = 0
# (users, items, interactions); the defaults (2 layers) run on the first two only
SIZES = ((4_000, 800, 200_000), (16_000, 3_200, 800_000), (50_000, 20_000, 1_000_000))
QUICK_SIZES = ((2_000, 400, 100_000), (4_000, 8_000, 200_000))  # without the defaults
DEFAULTS_UP_TO = 800_000  # interactions: beyond, an epoch with propagation takes many minutes
CONFIGS = {
    "defaults (2 layers, own negatives)": dict(layers=2),
    "layers=0, own negatives": dict(layers=0),
    "layers=0, shared negatives": dict(layers=0, shared_negatives=True),
    "layers=0, 1,024 shared negatives": dict(layers=0, shared_negatives=True, negatives=1024),
}


def epoch_seconds(data: semrec.datasets.Dataset, emb: np.ndarray, epochs: int, **kw: Any) -> list:
    """Seconds of each epoch after the first (the first too when only one is run)."""
    model = semrec.TextCF(
        emb, epochs=epochs, patience=None, random_state=SEED, num_threads=THREADS,
        show_progress=False, **kw,
    )  # fmt: skip
    seconds = [h["seconds"] for h in model.fit(data).history_]
    return seconds[1:] or seconds


def part_epoch(args: argparse.Namespace) -> None:
    sizes = QUICK_SIZES if args.quick else SIZES
    epochs = 1 if args.quick else 3
    print(
        f"\n## TextCF seconds per epoch as the catalogue grows: synthetic interactions, 384-d "
        f"MiniLM-shaped item vectors, MLP 384-768-64, 256 negatives, batch 2048; "
        f"{THREADS} threads; {_bench.machine_line()}; median [min-max] of "
        f"{max(1, epochs - 1)} epoch(s) after the first\n"
    )
    print("| users × items × interactions | " + " | ".join(CONFIGS) + " | 1,024 shared / own | "
          "1,024 shared / defaults |")  # fmt: skip
    print("|---|" + "---:|" * (len(CONFIGS) + 2))
    for users, items, nnz in sizes:
        data = synthetic(users, items, nnz, n_topics=max(8, items // 100), random_state=SEED)
        emb, _ = catalogue("minilm", items, 0, SEED)
        times = {}
        for name, kw in CONFIGS.items():
            if kw["layers"] and (args.quick or data.interactions.nnz > DEFAULTS_UP_TO):
                continue
            times[name] = epoch_seconds(data, emb, epochs, **kw)
        med = {name: statistics.median(t) for name, t in times.items()}
        cells = [textcf.summary(times[n]) if n in times else "not run" for n in CONFIGS]
        own, shared = med["layers=0, own negatives"], med["layers=0, 1,024 shared negatives"]
        defaults = med.get("defaults (2 layers, own negatives)")
        ratio = f"{shared / defaults:.3f}" if defaults else "—"
        size = f"{users:,} × {items:,} × {data.interactions.nnz:,}"
        print(f"| {size} | " + " | ".join(cells) + f" | {shared / own:.3f} | {ratio} |",
              flush=True)  # fmt: skip


def part_size_m(args: argparse.Namespace) -> None:
    data = synthetic(100_000, 20_000, 5_000_000, n_topics=200, random_state=SEED)
    emb, _ = catalogue("minilm", 20_000, 0, SEED)
    start = time.perf_counter()
    model = semrec.TextCF(
        emb, layers=0, shared_negatives=True, negatives=1024, epochs=1, patience=None,
        random_state=SEED, num_threads=THREADS, show_progress=False,
    ).fit(data)  # fmt: skip
    fit = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    print(
        f"\n## TextCF at size M: {data.interactions.nnz:,} interactions, 100,000 users x "
        f"20,000 items, layers=0, 1,024 shared negatives, batch 2048; {THREADS} threads; "
        f"{_bench.machine_line()}\n\none epoch {model.history_[0]['seconds']:.1f} s, the fit "
        f"{fit:.1f} s, peak memory of this process {peak:.2f} GiB"
    )


def part_quality(args: argparse.Namespace) -> None:
    _, data, emb = textcf.quality_data(args)
    train, test = textcf.warm_split(data)
    fit_set, valid = split.last_fraction(train)
    variants = [("own", 256), ("shared", 256), ("shared", 1024)]
    print(
        f"\n## TextCF warm-split quality, own against shared negatives: MovieLens-100k, "
        f"layers 0, tau 0.15, learning rate 1e-3, batch 2048; epochs early-stopped on "
        f"validation (patience 4), refitted on train; {THREADS} threads; "
        f"{_bench.machine_line()}\n"
    )
    print("| negatives | valid NDCG@10 | best epoch | test NDCG@10 | s/epoch |")
    print("|---|---:|---:|---:|---:|")
    for kind, count in variants:
        params = dict(textcf.BASE, negatives=count, shared_negatives=kind == "shared")
        tuned = textcf.make_textcf(emb, dict(params, epochs=40, patience=4))
        tuned.fit(fit_set, validation=textcf.relevant(valid))
        value = textcf.sem_metric(tuned, fit_set, valid, "ndcg", 10)
        final = textcf.make_textcf(emb, dict(params, epochs=tuned.best_epoch_ + 1)).fit(train)
        score = textcf.sem_metric(final, train, test, "ndcg", 10)
        seconds = statistics.median(h["seconds"] for h in final.history_)
        print(f"| {count}, {kind} | {value:.4f} | {tuned.best_epoch_} | {score:.4f} | "
              f"{seconds:.2f} |", flush=True)  # fmt: skip


PARTS = _bench.parts_of(globals())


def main() -> None:
    parser = _bench.parts_parser(__doc__, PARTS, THREADS)
    parser.add_argument(
        "--cache", type=Path, default=Path("/tmp/semrec-textcf"),
        help="where the MovieLens item vectors are cached",
    )  # fmt: skip
    _bench.run_parts(parser, parser.parse_args(), PARTS)


if __name__ == "__main__":
    main()
