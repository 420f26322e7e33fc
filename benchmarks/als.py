"""semrec.ALS beside implicit==0.7.3: seconds per iteration, ranking quality, time-to-quality.

Usage: python benchmarks/als.py [--quick] [--threads 2]

Both libraries solve the same problem: semrec's confidence is c = 1 + alpha * r and implicit
receives 1 + alpha * r with its own alpha = 1 (its confidence is alpha * r). Same factors,
regularization, iterations and cg_steps (3, hard-coded in implicit), same thread count.
Protocol: ../shared/PROTOCOL.md. The split/metric helpers below are local stand-ins until
semrec.split / semrec.metrics land.
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

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "ml-100k"
SIZES = {
    "S": (1_000, 2_000, 100_000),
    "M": (100_000, 20_000, 5_000_000),
    "L": (1_000_000, 100_000, 50_000_000),
}


# --------------------------------------------------------------------------------------------
# Data


def synthetic(n_users: int, n_items: int, nnz: int, seed: int = 0) -> sp.csr_array:
    """Zipf(1) item popularity, log-normal user activity, counts as weights (seeded)."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, n_items + 1)
    popularity /= popularity.sum()
    activity = rng.lognormal(0.0, 1.0, n_users)
    per_user = np.maximum(1, np.round(activity / activity.sum() * nnz)).astype(np.int64)
    per_user = np.minimum(per_user, n_items // 2)
    users = np.repeat(np.arange(n_users), per_user)
    items = rng.choice(n_items, size=users.size, p=popularity)
    items = rng.permutation(n_items)[items]  # popular items spread over the id range
    weights = rng.integers(1, 5, users.size).astype(np.float32)
    m = sp.csr_array((weights, (users, items)), shape=(n_users, n_items))
    m.sum_duplicates()
    return m


def movielens() -> tuple[np.ndarray, ...]:
    raw = np.loadtxt(DATA / "u.data", dtype=np.int64)
    return raw[:, 0] - 1, raw[:, 1] - 1, raw[:, 2].astype(np.float32), raw[:, 3]


def warm_split(users, items, ratings, times, fraction=0.2):
    """Per user, sorted by (timestamp, item): the last 20% (at least 1) is test."""
    order = np.lexsort((items, times, users))
    users, items, ratings, times = users[order], items[order], ratings[order], times[order]
    starts = np.r_[0, np.flatnonzero(np.diff(users)) + 1]
    counts = np.diff(np.r_[starts, users.size])
    rank = np.arange(users.size) - np.repeat(starts, counts)
    n_test = np.maximum(1, np.floor(counts * fraction).astype(np.int64))
    test = rank >= np.repeat(counts - n_test, counts)
    part = lambda mask: (users[mask], items[mask], ratings[mask], times[mask])  # noqa: E731
    return part(~test), part(test)


def ranking_quality(recommend, train: sp.csr_array, test, k: int = 10) -> tuple[float, float]:
    """Mean NDCG@k and Recall@k over users with a relevant (rating >= 4) test item."""
    users, items, ratings, _ = test
    keep = ratings >= 4
    relevant = sp.csr_array(
        (np.ones(keep.sum(), np.float32), (users[keep], items[keep])), shape=train.shape
    )
    evaluated = np.flatnonzero(np.diff(relevant.indptr) > 0)
    ids = recommend(evaluated, k)
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ndcg, recall = [], []
    for row, u in zip(ids, evaluated, strict=True):
        rel = set(relevant.indices[relevant.indptr[u] : relevant.indptr[u + 1]].tolist())
        hits = np.array([i in rel for i in row])
        ideal = discount[: min(len(rel), k)].sum()
        ndcg.append((hits * discount).sum() / ideal)
        recall.append(hits.sum() / len(rel))
    return float(np.mean(ndcg)), float(np.mean(recall))


def to_csr(part, shape) -> sp.csr_array:
    users, items, ratings, _ = part
    m = sp.csr_array((ratings, (users, items)), shape=shape)
    m.sum_duplicates()
    return m


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
    users, items, ratings, times = movielens()
    shape = (users.max() + 1, items.max() + 1)
    train_part, test_part = warm_split(users, items, ratings, times)
    fit_part, valid_part = warm_split(*train_part)
    train, fit_train = to_csr(train_part, shape), to_csr(fit_part, shape)
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
    rng = np.random.default_rng(0)
    rand = lambda u, k: np.array([rng.permutation(shape[1])[:k] for _ in u])  # noqa: E731
    popular = np.argsort(-np.diff(train.tocsc().indptr), kind="stable")

    def most_popular(us, k):
        out = []
        for u in us:
            seen = set(train.indices[train.indptr[u] : train.indptr[u + 1]].tolist())
            out.append([i for i in popular[: k + len(seen)] if i not in seen][:k])
        return np.array(out)

    for name, rec in (("random", rand), ("most popular", most_popular)):
        ndcg, recall = ranking_quality(rec, train, test_part)
        print(f"| {name} | - | {ndcg:.4f} | {recall:.4f} | - |")
    for lib, make in (("semrec", semrec_model), ("implicit 0.7.3", implicit_model)):
        scored = []
        for params in grid:
            model = fit(make(*params, iterations), fit_train)
            scored.append(
                (ranking_quality(recommender(model, fit_train), fit_train, valid_part)[0], params)
            )
        best = max(scored)[1]
        model = make(*best, iterations)
        curve, clock = [], [time.perf_counter(), 0.0]

        def track(iteration, *_, model=model, curve=curve, clock=clock):
            # Quality is measured outside the clock: only training time counts.
            clock[1] += time.perf_counter() - clock[0]
            quality = ranking_quality(recommender(model, train), train, test_part)[0]
            curve.append((clock[1], quality))
            clock[0] = time.perf_counter()

        fit(model, train, callback=track)
        ndcg, recall = ranking_quality(recommender(model, train), train, test_part)
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
        users, items, ratings, _ = movielens()
        ml = sp.csr_array((ratings, (users, items)), shape=(users.max() + 1, items.max() + 1))
        sizes = ["S"] if args.quick else args.sizes.split(",")
        repeats = 5
        print(
            f"Seconds per ALS iteration (CG, 3 steps; {args.threads} threads, BLAS 1 thread; "
            f"median (min-max) of {repeats} after 1 warm-up; fit of 3 iterations / 3)\n"
        )
        print("| data | factors | semrec s/iter | implicit s/iter | speed-up |")
        print("|---|---|---|---|---|")
        datasets = [("MovieLens-100k", ml)]
        for size in sizes:
            n_u, n_i, nnz = SIZES[size]
            datasets.append((f"synthetic {size} ({n_u}x{n_i})", synthetic(n_u, n_i, nnz)))
        for name, data in datasets:
            big = data.nnz > 10_000_000
            for factors in (64, 128):
                seconds_per_iteration(name, data, factors, 2 if big else repeats)
        if not args.no_quality:
            quality_table(args.quick)


if __name__ == "__main__":
    main()
