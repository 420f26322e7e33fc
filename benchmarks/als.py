"""semrec.ALS beside implicit==0.7.3: seconds per iteration, ranking quality, time-to-quality.

Usage: python benchmarks/als.py [--quick] [--threads 2]

Both libraries solve the same problem: semrec's confidence is c = 1 + alpha * r and implicit
receives 1 + alpha * r with its own alpha = 1 (its confidence is alpha * r). Same factors,
regularization, iterations and cg_steps (3, hard-coded in implicit), same thread count.
Protocol: ../shared/PROTOCOL.md. Data, the warm split, the metrics and the random /
most-popular baselines are the package's own (semrec.datasets, semrec.split, semrec.metrics).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

THREADS = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 2
os.environ["OMP_NUM_THREADS"] = str(THREADS)  # before any OpenMP runtime starts
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import semrec  # noqa: E402
from semrec import datasets, split  # noqa: E402
from semrec.metrics import ranking_metrics  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "ml-100k"


# --------------------------------------------------------------------------------------------
# Quality on the protocol's warm split


def relevant(test: datasets.Dataset) -> sp.csr_array:
    """Test interactions rated >= 4 (the protocol's relevance)."""
    m = test.interactions.copy()
    m.data = (m.data >= 4).astype(np.float32)
    m.eliminate_zeros()
    return m


def ranking_quality(recommend, test: datasets.Dataset, k: int = 10) -> tuple[float, float]:
    """Mean NDCG@k and Recall@k over users with a relevant test item."""
    rel = relevant(test)
    users = np.flatnonzero(np.diff(rel.indptr) > 0)
    table = ranking_metrics(np.asarray(recommend(users, k), dtype=np.int32), rel[users], k=k)
    return float(table.loc[k, "ndcg"]), float(table.loc[k, "recall"])


# --------------------------------------------------------------------------------------------
# The two models behind one interface


def semrec_model(factors, reg, alpha, iterations, seed=0):
    return semrec.ALS(
        factors,
        regularization=reg,
        alpha=alpha,
        iterations=iterations,
        cg_steps=3,
        random_state=seed,
        num_threads=THREADS,
        show_progress=False,
    )


def implicit_model(factors, reg, alpha, iterations, seed=0):
    from implicit.cpu.als import AlternatingLeastSquares

    model = AlternatingLeastSquares(
        factors=factors,
        regularization=reg,
        alpha=1.0,
        iterations=iterations,
        use_cg=True,
        num_threads=THREADS,
        random_state=seed,
    )
    model.semrec_alpha = alpha
    return model


def fit(model, train: sp.csr_array, callback=None):
    if isinstance(model, semrec.ALS):
        return model.fit(train, callback=callback)
    confidence = train.copy().astype(np.float32)
    confidence.data = 1.0 + model.semrec_alpha * confidence.data
    model.fit(sp.csr_matrix(confidence), show_progress=False, callback=callback)
    return model


def recommender(model, train: sp.csr_array):
    if isinstance(model, semrec.ALS):
        return lambda users, k: model.recommend(users, k)[0]
    seen = sp.csr_matrix(train)
    return lambda users, k: model.recommend(users, seen[users], N=k)[0]


# --------------------------------------------------------------------------------------------
# Benchmarks


def seconds_per_iteration(name, train, factors, repeats, iterations=3):
    times = {"semrec": [], "implicit": []}
    for attempt in range(repeats + 1):  # the first round is the warm-up
        for lib, make in (("semrec", semrec_model), ("implicit", implicit_model)):
            model = make(factors, 0.01, 10.0, iterations)
            start = time.perf_counter()
            fit(model, train)
            if attempt:
                times[lib].append((time.perf_counter() - start) / iterations)
    s, i = np.array(times["semrec"]), np.array(times["implicit"])
    print(
        f"| {name:<22} | {factors:>3} | {np.median(s):.4f} ({s.min():.4f}-{s.max():.4f}) "
        f"| {np.median(i):.4f} ({i.min():.4f}-{i.max():.4f}) "
        f"| {np.median(i) / np.median(s):5.2f}x |",
        flush=True,
    )


def quality_table(quick: bool):
    train_set, test = split.last_fraction(datasets.movielens("100k", path=DATA))
    fit_set, valid = split.last_fraction(train_set)
    train, fit_train = train_set.interactions, fit_set.interactions
    # The same search budget for both: this grid on the validation split.
    grid = [(f, reg, alpha) for f in (32, 64) for reg in (0.1, 10.0) for alpha in (1.0, 10.0)]
    if quick:
        grid = grid[::2]
    iterations = 15
    print(
        f"\nQuality, MovieLens-100k warm split ({THREADS} threads; grid of {len(grid)} "
        f"(factors, regularization, alpha) on validation, {iterations} iterations each)\n"
    )
    print("| model | best (factors, reg, alpha) | NDCG@10 | Recall@10 | time to 99% NDCG (s) |")
    print("|---|---|---|---|---|")
    for name, baseline in (("random", semrec.Random(0)), ("most popular", semrec.MostPopular())):
        baseline.fit(train)
        ndcg, recall = ranking_quality(lambda u, k, m=baseline: m.recommend(u, k)[0], test)
        print(f"| {name} | - | {ndcg:.4f} | {recall:.4f} | - |")
    for lib, make in (("semrec", semrec_model), ("implicit 0.7.3", implicit_model)):
        scored = []
        for params in grid:
            model = fit(make(*params, iterations), fit_train)
            scored.append((ranking_quality(recommender(model, fit_train), valid)[0], params))
        best = max(scored)[1]
        model = make(*best, iterations)
        curve, clock = [], [time.perf_counter(), 0.0]

        def track(iteration, *_, model=model, curve=curve, clock=clock):
            # Quality is measured outside the clock: only training time counts.
            clock[1] += time.perf_counter() - clock[0]
            quality = ranking_quality(recommender(model, train), test)[0]
            curve.append((clock[1], quality))
            clock[0] = time.perf_counter()

        fit(model, train, callback=track)
        ndcg, recall = ranking_quality(recommender(model, train), test)
        reached = next(t for t, q in curve if q >= 0.99 * curve[-1][1])
        print(f"| {lib} | {best} | {ndcg:.4f} | {recall:.4f} | {reached:.3f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small data only (a few minutes)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", default="S,M,L", help="synthetic sizes without --quick")
    parser.add_argument("--no-quality", action="store_true", help="speed table only")
    args = parser.parse_args()
    with threadpool_limits(1):
        ml = datasets.movielens("100k", path=DATA, show_progress=False).interactions
        sizes = ["S"] if args.quick else args.sizes.split(",")
        repeats = 5
        print(
            f"Seconds per ALS iteration (CG, 3 steps; {args.threads} threads, BLAS 1 thread; "
            f"median (min-max) of {repeats} after 1 warm-up; fit of 3 iterations / 3)\n"
        )
        print("| data | factors | semrec s/iter | implicit s/iter | speed-up |")
        print("|---|---|---|---|---|")
        data_sets = [("MovieLens-100k", ml)]
        for size in sizes:
            n_u, n_i, _ = datasets.SYNTHETIC_SIZES[size]
            data = datasets.synthetic_size(size, with_text=False).interactions
            data_sets.append((f"synthetic {size} ({n_u}x{n_i})", data))
        for name, data in data_sets:
            big = data.nnz > 10_000_000
            for factors in (64, 128):
                seconds_per_iteration(name, data, factors, 2 if big else repeats)
        if not args.no_quality:
            quality_table(args.quick)


if __name__ == "__main__":
    main()
