"""Semantic recommenders: speed of the kernels behind them (and, in other parts, quality).

Usage: python benchmarks/semantic.py [--quick] [--parts knn] [--threads 2]

Each part prints its own table; parts run in the order given. Protocol: ../shared/PROTOCOL.md
(the methods alternate, 1 warm-up, median and min-max of at least 5 repeats, threads pinned).

- knn: ItemKNN.fit against implicit==0.7.3 CosineRecommender and BM25Recommender (K=100, the
  same thread count through implicit's num_threads, OMP_NUM_THREADS and threadpoolctl) on
  MovieLens-100k and synthetic S, M and L (L skipped with --quick), and recommend throughput
  (users per second, k=10, seen items excluded) of the fitted models.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

THREADS = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 2
os.environ["OMP_NUM_THREADS"] = str(THREADS)  # before any OpenMP runtime starts
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import semrec  # noqa: E402
from semrec import datasets  # noqa: E402
from semrec.datasets import synthetic_size  # noqa: E402

ML100K = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "ml-100k"


def summary(seconds: list[float]) -> str:
    s = np.asarray(seconds)
    return f"{np.median(s):.3f} ({s.min():.3f}-{s.max():.3f})"


def alternate(methods: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Run the methods in turn, 1 warm-up round then ``repeats`` timed rounds."""
    times: dict[str, list[float]] = {name: [] for name in methods}
    for attempt in range(repeats + 1):
        for name, run in methods.items():
            time.sleep(0.3)  # let spinning BLAS/OpenMP threads of the previous call settle
            start = time.perf_counter()
            run()
            if attempt:
                times[name].append(time.perf_counter() - start)
    return times


# --------------------------------------------------------------------------------------------
# Part: knn

KNN_K = 100
RECOMMEND_USERS = 10_000


def knn_data(args: argparse.Namespace) -> list[tuple[str, sp.csr_array]]:
    data = []
    if (ML100K / "u.data").exists():
        ml = datasets.movielens("100k", path=ML100K, show_progress=False).interactions
        data.append(("MovieLens-100k", ml))
    else:
        print(f"(MovieLens-100k skipped: not found at {ML100K})")
    sizes = [s for s in args.knn_sizes.split(",") if s and not (args.quick and s == "L")]
    for size in sizes:
        ds = synthetic_size(size, with_text=False)
        data.append((f"synthetic {size}", ds.interactions))
    return data


def implicit_model(weighting: str):
    from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

    if weighting == "none":
        return CosineRecommender(K=KNN_K, num_threads=THREADS)
    return BM25Recommender(K=KNN_K, K1=1.2, B=0.75, num_threads=THREADS)


def neighbour_overlap(ours: sp.csr_array, theirs: Any) -> float:
    """Share of our neighbours that implicit also keeps (its own item removed from its lists)."""
    theirs = sp.csr_array(theirs)
    hits = total = 0
    for row in range(ours.shape[0]):
        a = ours.indices[ours.indptr[row] : ours.indptr[row + 1]]
        b = theirs.indices[theirs.indptr[row] : theirs.indptr[row + 1]]
        hits += np.intersect1d(a, b[b != row]).size
        total += a.size
    return hits / max(total, 1)


def part_knn(args: argparse.Namespace) -> None:
    try:
        import implicit  # noqa: F401
    except ImportError:
        print("\n## knn: skipped, implicit is not installed (pip install implicit==0.7.3)")
        return
    warnings.filterwarnings("ignore", message="Method expects CSR input")  # implicit's own COO
    print(
        f"\n## knn: ItemKNN.fit vs implicit 0.7.3 (K={KNN_K}; {THREADS} threads for both: "
        f"num_threads={THREADS}, OMP_NUM_THREADS={THREADS}, BLAS 1 thread via threadpoolctl; "
        f"median (min-max) of {args.repeats} after 1 warm-up, alternating). implicit's K counts "
        "the item itself, ours does not. BM25 K1=1.2, B=0.75 for both; implicit's BM25 ranks by "
        "the raw dot product, ours by the cosine of the BM25 vectors.\n"
    )
    print(
        "| data | users x items | nnz | weighting | semrec fit s | implicit fit s | speed-up "
        "| same neighbours |"
    )
    print("|---|---|---:|---|---:|---:|---:|---:|")
    rec_rows = []
    with threadpool_limits(1, user_api="blas"):
        for name, m in knn_data(args):
            big = m.nnz > 10_000_000
            repeats = 2 if big else args.repeats  # L: 2 timed repeats keep the run short
            seen = sp.csr_matrix(m)
            for weighting in ("none", "bm25"):
                ours = semrec.ItemKNN(
                    KNN_K, weighting=weighting, num_threads=THREADS, show_progress=False
                )
                theirs = implicit_model(weighting)
                times = alternate(
                    {
                        "semrec": lambda ours=ours, m=m: ours.fit(m),
                        "implicit": lambda t=theirs, s=seen: t.fit(s, show_progress=False),
                    },
                    repeats,
                )
                ratio = np.median(times["implicit"]) / np.median(times["semrec"])
                overlap = (
                    f"{neighbour_overlap(ours.similarity_, theirs.similarity):.1%}"
                    if weighting == "none"
                    else "-"
                )
                print(
                    f"| {name} | {m.shape[0]:,} x {m.shape[1]:,} | {m.nnz:,} | {weighting} "
                    f"| {summary(times['semrec'])} | {summary(times['implicit'])} "
                    f"| {ratio:.2f}x | {overlap} |",
                    flush=True,
                )
                if weighting == "none":
                    rec_rows.append(recommend_row(name, m, seen, ours, theirs, repeats))
    print(
        f"\n## knn: recommend throughput (k=10, seen items excluded, the first "
        f"{RECOMMEND_USERS:,} users in one batched call each; {THREADS} threads; users/s, "
        "median of the repeats; implicit's batched recommend loops over users in Python)\n"
    )
    print("| data | users | semrec users/s | implicit users/s | speed-up |")
    print("|---|---:|---:|---:|---:|")
    for row in rec_rows:
        print(row)


def recommend_row(name, m, seen, ours, theirs, repeats) -> str:
    users = np.arange(min(RECOMMEND_USERS, m.shape[0]))
    batch = seen[users]
    times = alternate(
        {
            "semrec": lambda: ours.recommend(users, k=10),
            "implicit": lambda: theirs.recommend(users, batch, N=10),
        },
        repeats,
    )
    rate_s = users.size / np.median(times["semrec"])
    rate_i = users.size / np.median(times["implicit"])
    return f"| {name} | {users.size:,} | {rate_s:,.0f} | {rate_i:,.0f} | {rate_s / rate_i:.1f}x |"


PARTS: dict[str, Callable[[argparse.Namespace], None]] = {
    "knn": part_knn,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="skip the largest data")
    parser.add_argument("--parts", default=",".join(PARTS), help="comma list, run in order")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--knn-sizes", default="S,M,L", help="synthetic sizes for knn")
    args = parser.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        parser.error(f"unknown parts {unknown}; choose from {', '.join(PARTS)}")
    semrec.set_num_threads(args.threads)
    print(f"semrec {semrec.__version__}, kernels {semrec._native.core.isa}, {args.threads} threads")
    for name in parts:
        PARTS[name](args)


if __name__ == "__main__":
    main()
