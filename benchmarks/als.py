"""semrec.ALS beside implicit==0.7.3: seconds per iteration, ranking quality, time-to-quality.

Usage: python benchmarks/als.py [--quick] [--threads 2] [--sizes S,M,L] [--factors 64,128]
       [--no-quality] [--no-speed] [--ttq ML,M] [--streaming ML,M]
       [--cache /tmp/semrec-bench] [--iterations 3] [--repeats N] [--no-ml]

Both libraries solve the same problem: semrec's confidence is c = 1 + alpha * r and implicit
receives 1 + alpha * r with its own alpha = 1 (its confidence is alpha * r). Same factors,
regularization, iterations and cg_steps (3, hard-coded in implicit), same thread count.
Protocol: ../shared/PROTOCOL.md. Data, the warm split, the metrics and the random /
most-popular baselines are the package's own (semrec.datasets, semrec.split, semrec.metrics).
Generated synthetic data is cached as .npz under --cache (L takes minutes to generate).

Time-to-quality (--ttq): each library trains once with `iterations` set to the full budget and
its own per-iteration callback (semrec's `callback`, implicit's `fit(callback=...)`); the clock
starts when fit is called (so each library's own setup - validation, transpose, initial
factors - counts) and stops while the callback evaluates NDCG@10 of the current factors, so
only training time is measured. Both are evaluated the same way (exact dot-product top-10 over
the same users, seen items excluded). The time to quality is the training time until the first
iteration whose NDCG@10 reaches 99% of that library's NDCG@10 after the last iteration.
"""

from __future__ import annotations

import argparse
import importlib.util
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


def shared_settings(factors, reg, iterations, seed) -> dict:
    """The hyperparameters both libraries take under the same names."""
    return dict(
        factors=factors,
        regularization=reg,
        iterations=iterations,
        random_state=seed,
        num_threads=THREADS,
    )


def semrec_model(factors, reg, alpha, iterations, seed=0):
    settings = shared_settings(factors, reg, iterations, seed)
    return semrec.ALS(**settings, alpha=alpha, cg_steps=3, show_progress=False)


def implicit_model(factors, reg, alpha, iterations, seed=0):
    from implicit.cpu.als import AlternatingLeastSquares

    settings = shared_settings(factors, reg, iterations, seed)
    model = AlternatingLeastSquares(**settings, alpha=1.0, use_cg=True)
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
# Data


def synthetic_cached(size: str, cache: Path) -> datasets.Dataset:
    """semrec.datasets.synthetic_size(size) without text, cached as .npz between runs."""
    path = cache / f"synthetic-{size}.npz"
    if path.exists():
        z = np.load(path)
        m = sp.csr_array((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
        m.has_sorted_indices = True
        return datasets.Dataset(m, timestamps=z["timestamps"])
    data = datasets.synthetic_size(size, with_text=False)
    m = data.interactions
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        data=m.data,
        indices=m.indices,
        indptr=m.indptr,
        shape=np.array(m.shape),
        timestamps=data.timestamps,
    )
    tmp.rename(path)
    return data


# --------------------------------------------------------------------------------------------
# Benchmarks


def seconds_per_iteration(name, train, factors, repeats, iterations=3, warmup=True):
    """Each library's own per-iteration time (its fit callback's seconds: the two half-steps),
    averaged over iterations 2..n of a fit (the first also pays for touching fresh memory)."""
    times = {"semrec": [], "implicit": []}
    for attempt in range(repeats + int(warmup)):
        for lib, make in (("semrec", semrec_model), ("implicit", implicit_model)):
            model = make(factors, 0.01, 10.0, iterations)
            per = []
            fit(model, train, callback=lambda _, seconds, *rest, per=per: per.append(seconds))
            if attempt >= int(warmup):
                times[lib].append(float(np.mean(per[1:] if len(per) > 1 else per)))
    s, i = np.array(times["semrec"]), np.array(times["implicit"])
    print(
        f"| {name:<22} | {factors:>3} | {np.median(s):.4f} ({s.min():.4f}-{s.max():.4f}) "
        f"| {np.median(i):.4f} ({i.min():.4f}-{i.max():.4f}) "
        f"| {np.median(i) / np.median(s):5.2f}x |",
        flush=True,
    )


def training_curve(lib, params, train, confidence, evaluate):
    """[(training seconds, NDCG@10)] after each iteration of one fit (evaluation not timed)."""
    model = (semrec_model if lib == "semrec" else implicit_model)(*params)
    curve, clock = [], [0.0, 0.0]

    def track(*_):
        clock[1] += time.perf_counter() - clock[0]
        if lib == "semrec":
            users, items = model.user_factors_, model.item_factors_
        else:
            users, items = model.user_factors, model.item_factors
        curve.append((clock[1], evaluate(users, items)))
        clock[0] = time.perf_counter()

    clock[0] = time.perf_counter()
    if lib == "semrec":
        model.fit(train, callback=track)
    else:  # the confidence matrix 1 + alpha * r is prepared before the clock starts
        model.fit(confidence, show_progress=False, callback=track)
    return curve


def time_to_quality(name, data, params, repeats, max_users=10_000):
    """Training time until 99% of the library's own final NDCG@10 (see the module doc)."""
    train_set, test = split.last_fraction(data)
    train = train_set.interactions
    rel = relevant(test)
    users = np.flatnonzero(np.diff(rel.indptr) > 0)
    if users.size > max_users:  # a fixed seeded sample keeps evaluation (not timed) short
        users = np.sort(np.random.default_rng(0).choice(users, max_users, replace=False))
    seen, truth = train[users], rel[users]

    def evaluate(user_factors, item_factors):
        ids, _ = semrec.topk(
            np.ascontiguousarray(user_factors[users], dtype=np.float32),
            np.ascontiguousarray(item_factors, dtype=np.float32),
            10,
            metric="dot",
            exclude=seen,
            num_threads=THREADS,
        )
        return float(ranking_metrics(ids, truth, k=10).loc[10, "ndcg"])

    confidence = sp.csr_matrix(train, dtype=np.float32, copy=True)
    confidence.data = 1.0 + params[2] * confidence.data
    reached = {"semrec": [], "implicit": []}
    curves = {}
    for attempt in range(repeats + 1):  # the first round is the warm-up
        for lib in ("semrec", "implicit"):
            curve = training_curve(lib, params, train, confidence, evaluate)
            final = curve[-1][1]
            hit = next(n for n, (_, q) in enumerate(curve) if q >= 0.99 * final)
            if attempt:
                reached[lib].append((curve[hit][0], hit + 1, final))
                curves[lib] = curve
    s = np.array([t for t, _, _ in reached["semrec"]])
    i = np.array([t for t, _, _ in reached["implicit"]])
    print(
        f"| {name} | {reached['semrec'][0][2]:.4f} / {reached['implicit'][0][2]:.4f} "
        f"| {reached['semrec'][0][1]} / {reached['implicit'][0][1]} "
        f"| {np.median(s):.3f} ({s.min():.3f}-{s.max():.3f}) "
        f"| {np.median(i):.3f} ({i.min():.3f}-{i.max():.3f}) "
        f"| {np.median(i) / np.median(s):5.2f}x |",
        flush=True,
    )
    for lib, curve in curves.items():
        points = ", ".join(f"{t:.2f}s:{q:.4f}" for t, q in curve)
        print(f"  {lib} curve (last repeat): {points}", flush=True)


def streaming_latency(name, data, factors=64, events=300):
    """Milliseconds per click: record it, re-solve the user, recommend 10 (after training)."""
    train = data.interactions
    semrec_als = fit(semrec_model(factors, 0.1, 10.0, 2), train)
    implicit_als = fit(implicit_model(factors, 0.1, 10.0, 2), train)
    rng = np.random.default_rng(0)
    users = rng.integers(0, train.shape[0], events)
    items = rng.integers(0, train.shape[1], events)
    rows = {}  # implicit keeps no history: the caller does
    times = {"semrec": [], "implicit": []}
    for n, (u, i) in enumerate(zip(users.tolist(), items.tolist(), strict=True)):
        start = time.perf_counter()
        semrec_als.update(u, i, 1.0)
        semrec_als.recommend(u, k=10)
        times["semrec"].append(time.perf_counter() - start)
        # The updated history, built outside the clock.
        row = rows.get(u, sp.csr_matrix(train[[u]])) + sp.csr_matrix(
            ([1.0], ([0], [i])), shape=(1, train.shape[1]), dtype=np.float32
        )
        rows[u] = row
        confidence = row.copy()
        confidence.data = 1.0 + 10.0 * confidence.data
        start = time.perf_counter()
        implicit_als.partial_fit_users([u], confidence)
        implicit_als.recommend(u, confidence, N=10)
        if n >= 20:  # the first events warm up both
            times["implicit"].append(time.perf_counter() - start)
        else:
            times["semrec"].pop()
    s, i = np.array(times["semrec"]) * 1e3, np.array(times["implicit"]) * 1e3
    print(
        f"| {name} | {factors} | {np.median(s):.3f} ({np.percentile(s, 90):.3f}) "
        f"| {np.median(i):.3f} ({np.percentile(i, 90):.3f}) "
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
    print("| model | best (factors, reg, alpha) | NDCG@10 | Recall@10 |")
    print("|---|---|---|---|")
    for name, baseline in (("random", semrec.Random(0)), ("most popular", semrec.MostPopular())):
        baseline.fit(train)
        ndcg, recall = ranking_quality(lambda u, k, m=baseline: m.recommend(u, k)[0], test)
        print(f"| {name} | - | {ndcg:.4f} | {recall:.4f} |")
    for lib, make in (("semrec", semrec_model), ("implicit 0.7.3", implicit_model)):
        scored = []
        for params in grid:
            model = fit(make(*params, iterations), fit_train)
            scored.append((ranking_quality(recommender(model, fit_train), valid)[0], params))
        best = max(scored)[1]
        model = fit(make(*best, iterations), train)
        ndcg, recall = ranking_quality(recommender(model, train), test)
        print(f"| {lib} | {best} | {ndcg:.4f} | {recall:.4f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small data only (a few minutes)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", default="S,M,L", help="synthetic sizes without --quick")
    parser.add_argument("--factors", default="64,128", help="factor counts of the speed table")
    parser.add_argument("--no-ml", action="store_true", help="skip MovieLens in the speed table")
    parser.add_argument("--no-speed", action="store_true", help="skip the per-iteration table")
    parser.add_argument("--no-quality", action="store_true", help="skip the NDCG@10 table")
    parser.add_argument(
        "--ttq", default="ML,M", help="time-to-quality data sets (ML, S, M, L; '' for none)"
    )
    parser.add_argument(
        "--streaming", default="ML,M", help="click-latency data sets (ML, S, M, L; '' for none)"
    )
    parser.add_argument("--cache", type=Path, default=Path("/tmp/semrec-bench"))
    parser.add_argument("--iterations", type=int, default=3, help="per timed fit (speed)")
    parser.add_argument("--repeats", type=int, default=None, help="default 5 (2 above 10M nnz)")
    args = parser.parse_args()
    if importlib.util.find_spec("implicit") is None:  # every table compares with it
        raise SystemExit(
            "benchmarks/als.py compares semrec.ALS with implicit==0.7.3, which is not installed: "
            "pip install implicit==0.7.3 (make bench installs it with semrec's [bench] extra)"
        )
    factor_list = [int(f) for f in args.factors.split(",")]
    with threadpool_limits(1):
        ml = datasets.movielens("100k", path=DATA, show_progress=False)
        if not args.no_speed:
            sizes = ["S"] if args.quick else [s for s in args.sizes.split(",") if s]
            print(
                f"Seconds per ALS iteration (CG, 3 steps; {args.threads} threads, BLAS 1 thread; "
                f"each library's fit callback, mean of iterations 2-{args.iterations} of a fit; "
                "median (min-max) over 5 fits after 1 warm-up fit, or over 2 fits without a "
                "warm-up above 10M interactions)\n"
            )
            print("| data | factors | semrec s/iter | implicit s/iter | speed-up |")
            print("|---|---|---|---|---|")
            data_sets = [] if args.no_ml else [("MovieLens-100k", ml.interactions)]
            for size in sizes:
                n_u, n_i, _ = datasets.SYNTHETIC_SIZES[size]
                data = synthetic_cached(size, args.cache).interactions
                data_sets.append((f"synthetic {size} ({n_u}x{n_i})", data))
            for name, data in data_sets:
                big = data.nnz > 10_000_000  # L: no warm-up fit, 2 fits (see the header)
                repeats = args.repeats or (2 if big else 5)
                for factors in factor_list:
                    seconds_per_iteration(
                        name, data, factors, repeats, args.iterations, warmup=not big
                    )
        ttq = [] if args.quick else [s for s in args.ttq.split(",") if s]
        if ttq:
            params = (64, 0.1, 10.0, 15)
            print(
                f"\nTime to 99% of the final NDCG@10 (factors {params[0]}, regularization "
                f"{params[1]}, alpha {params[2]}, {params[3]} iterations, CG 3 steps, "
                f"{args.threads} threads; per-user last 20% test, relevant = rating >= 4, "
                "at most 10,000 evaluated users; training seconds, evaluation excluded; median "
                "(min-max) of 3 after 1 warm-up)\n"
            )
            print(
                "| data | final NDCG@10 semrec / implicit | iterations to 99% | semrec s "
                "| implicit s | speed-up |"
            )
            print("|---|---|---|---|---|---|")
            for name in ttq:
                data = ml if name == "ML" else synthetic_cached(name, args.cache)
                label = "MovieLens-100k" if name == "ML" else f"synthetic {name}"
                time_to_quality(label, data, params, 3)
        streaming = [] if args.quick else [s for s in args.streaming.split(",") if s]
        if streaming:
            print(
                "\nOne click, in milliseconds: update(user, item) + recommend(user, k=10) for "
                "semrec; partial_fit_users + recommend with the updated row for implicit (the "
                "row is prepared outside the clock). Median (90th percentile) of 280 random "
                "clicks after 20 warm-up clicks, after a 2-iteration fit; 2 threads\n"
            )
            print("| data | factors | semrec ms | implicit ms | speed-up |")
            print("|---|---|---|---|---|")
            for name in streaming:
                data = ml if name == "ML" else synthetic_cached(name, args.cache)
                label = "MovieLens-100k" if name == "ML" else f"synthetic {name}"
                streaming_latency(label, data)
        if not args.no_quality:
            quality_table(args.quick)


if __name__ == "__main__":
    main()
