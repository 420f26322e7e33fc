"""Benchmark ranking-metric evaluation: semrec's C++ kernel vs the ranx library.

How to run (from the project root, in the project's virtualenv; ranx is in the ``test`` extra):

    python benchmarks/evaluation.py --quick   # 20k users x 10k items x 1M interactions, < 1 min
    python benchmarks/evaluation.py           # synthetic M: 100k users x 20k items x 5M

What it measures. Synthetic data (``semrec.datasets.synthetic``, seeded) is split with the
protocol's warm split (``semrec.split.last_fraction``); a test item is relevant when its rating
is >= 4. One fixed recommendation list of k=20 items per evaluated user (MostPopular, seen
items excluded) is computed once, outside the timing. Both sides then compute precision,
recall, NDCG, MAP, hit rate and MRR at k=20 for every user:

* semrec: ``semrec.metrics.ranking_metrics(recs, relevant, 20)`` from the arrays.
* ranx:   ``ranx.evaluate(qrels, run, metrics)`` on ``Qrels`` / ``Run`` objects built outside
  the timing (its numba kernels compiled in the warm-up). A second row adds the cost of
  building those objects from the same arrays, which a user of ranx pays on every evaluation.

Protocol (PROTOCOL.md): same data and threads for everyone (``--threads``; semrec's
``num_threads``, NUMBA_NUM_THREADS and OMP_NUM_THREADS), methods alternate, one warm-up each,
then the median and [min-max] of ``--repeats`` rounds. Ratio = ranx median / semrec median.
The per-user values of both are compared (ranx's MAP divides by |relevant|, the protocol's by
min(|relevant|, k): converted before the comparison) and the maximum difference printed.
"""

from __future__ import annotations

import argparse

import _bench

THREADS: int = _bench.pin_threads(default=2)  # before numpy, BLAS, OpenMP or torch load

import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable  # noqa: E402
from importlib.metadata import version  # noqa: E402

import numpy as np  # noqa: E402

import semrec  # noqa: E402
from semrec import metrics, split  # noqa: E402
from semrec.datasets import synthetic  # noqa: E402

K = 20
NAMES = ("precision", "recall", "ndcg", "map", "hit_rate", "mrr")


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, float, float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), max(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller data, under a minute")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    import ranx  # the reference library (test extra)

    size = (20_000, 10_000, 1_000_000) if args.quick else semrec.datasets.SYNTHETIC_SIZES["M"]
    t0 = time.perf_counter()
    data = synthetic(*size, with_text=False, random_state=0)
    train, test = split.last_fraction(data)
    relevant = test.interactions.copy()
    relevant.data = (relevant.data >= 4).astype(np.float32)
    relevant.eliminate_zeros()
    users = np.flatnonzero(np.diff(relevant.indptr) > 0).astype(np.int32)
    rel = relevant[users]
    recs, _ = semrec.MostPopular().fit(train.interactions).recommend(users, k=K)
    print(
        f"data: synthetic {size[0]:,} users x {size[1]:,} items x {size[2]:,} interactions; "
        f"{len(users):,} evaluated users, k={K}; prepared in {time.perf_counter() - t0:.1f} s"
    )

    def build_ranx() -> tuple[object, object]:
        qrels, run = {}, {}
        scores = [float(K - r) for r in range(K)]
        for row, u in enumerate(users.tolist()):
            q = str(u)
            qrels[q] = dict.fromkeys(
                map(str, rel.indices[rel.indptr[row] : rel.indptr[row + 1]]), 1
            )
            run[q] = {str(i): s for i, s in zip(recs[row].tolist(), scores, strict=True) if i >= 0}
        return ranx.Qrels(qrels), ranx.Run(run)

    qrels, run = build_ranx()
    ranx_names = [f"{n}@{K}" for n in NAMES]

    def run_semrec() -> np.ndarray:
        return metrics.ranking_metrics(recs, rel, K, per_user=True, num_threads=args.threads)

    def run_ranx() -> dict:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ranx.evaluate(qrels, run, ranx_names, return_mean=False, make_comparable=True)

    def run_ranx_with_build() -> dict:
        nonlocal qrels, run
        qrels, run = build_ranx()
        return run_ranx()

    # warm-up (numba compiles here) and the value check
    ours = run_semrec()[:, 0, :]
    theirs = run_ranx()
    order = np.argsort(users.astype(str), kind="stable")  # ranx reports queries sorted by id
    n_rel = np.diff(rel.indptr)
    diffs = []
    for j, name in enumerate(ranx_names):
        expected = np.empty(len(users))
        expected[order] = np.asarray(theirs[name], dtype=np.float64)
        if name.startswith("map"):
            expected = expected * n_rel / np.minimum(n_rel, K)
        diffs.append(float(np.abs(ours[:, j] - expected).max()))
    run_ranx_with_build()

    rows = {"semrec": [], "ranx (prebuilt Qrels/Run)": [], "ranx incl. building Qrels/Run": []}
    fns = {
        "semrec": run_semrec,
        "ranx (prebuilt Qrels/Run)": run_ranx,
        "ranx incl. building Qrels/Run": run_ranx_with_build,
    }
    for _ in range(args.repeats):  # alternate the methods
        for name, fn in fns.items():
            rows[name].append(timed(fn, 1)[0])
    base = statistics.median(rows["semrec"])
    print(
        f"\nranking metrics ({', '.join(NAMES)}) @ {K}, threads={args.threads} "
        f"(semrec num_threads, NUMBA_NUM_THREADS, OMP_NUM_THREADS), "
        f"median [min-max] of {args.repeats}, ranx {version('ranx')}"
    )
    print(f"{'method':32s} {'seconds':>28s} {'ratio vs semrec':>16s}")
    for name, times in rows.items():
        med = statistics.median(times)
        print(f"{name:32s} {med:10.4f} [{min(times):.4f}-{max(times):.4f}] {med / base:15.1f}x")
    print(f"max |semrec - ranx| per metric: {dict(zip(NAMES, diffs, strict=True))}")


if __name__ == "__main__":
    main()
