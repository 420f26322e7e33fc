"""Benchmarks of the semantic recommenders, in parts (``--parts a,b``; default: all).

How to run (from the project root, in the project's virtualenv):

    python benchmarks/semantic.py --parts mmr --quick   # 2k users, a few seconds
    python benchmarks/semantic.py --parts mmr           # 10k users x 200 candidates

Parts
-----
profiles
    ``semrec.interest.user_profiles`` with a 30-day half-life on synthetic M and L (``--sizes``;
    L skipped with --quick) against scipy.sparse: build the decayed weight matrix, multiply it
    by the embedding matrix, row-normalise. dim 384; semrec on ``--threads``, scipy's product
    is single-threaded. Timing: alternate, 1 warm-up round, 0.3 s settle pause before each call.
streaming
    Events per second of ``StreamingProfiles.update_many`` on one thread at dim 384 (the 5M
    synthetic-M events replayed in time order, with and without decay), then the latency of
    one Python ``update()`` call (StreamingProfiles, ContentRecommender) and of update +
    ``recommend(k=10)`` for one user of a ContentRecommender fitted on synthetic M.
mmr
    MMR diversity re-ranking (``semrec.diversify``): per user, keep k=10 of 200 candidates
    (random item ids out of 20k, relevance sorted descending as a model's output would be) with
    lambda=0.5, item embeddings of dimension 384 (random, L2-normalised). The peer is a
    vectorised NumPy implementation of the same greedy rule (batches of users, the candidate
    embeddings gathered once per batch, one batched matrix-vector product per pick, running
    max-similarity). Both get the same relevance (already in [0, 1]; semrec with
    ``normalize="none"``) and must pick the same items (checked, printed).

mmr_quality, hybrid, coldstart (quality, MovieLens-100k at ../shared/datasets/ml-100k)
    Item embeddings: semrec.TextEncoder (all-MiniLM-L6-v2) over the protocol's item text, or
    hashed random-projection embeddings of the same text when the encoder is unavailable (the
    table header says which). ALS hyperparameters are picked on a validation split carved from
    train the same way (``last_fraction`` / ``cold_items``) from a grid of (factors, reg, alpha)
    (8 points, 4 with --quick), 15 iterations. "text profile" is a minimal content model
    written here (rating-weighted mean of a user's item embeddings, cosine to every item).

    * mmr_quality: warm split; ALS top-100 candidates re-ranked by ``diversify`` for a sweep
      of lambda; NDCG@10, intra-list diversity@10 (text embeddings), coverage@10.
    * hybrid: warm split; ``Hybrid.tune`` picks the (ALS, text profile) weights on validation
      (simplex grid, step 0.1), members then refitted on the full train; NDCG@10 beside each
      member, random and most-popular.
    * coldstart: cold-item split (10% of items with >= 5 interactions, seed 0); users rank the
      cold items only; ``ColdStartALS`` (ridge regularization picked on a validation cold split
      from 1, 10, ..., 10^4) vs plain ALS, text profile, a (ColdStartALS, text profile) hybrid
      tuned on validation, random and most-popular; Recall@20 and NDCG@20.

Speed protocol (PROTOCOL.md): same data and threads for everyone (``--threads``: semrec's
``num_threads``, OMP_NUM_THREADS and ``threadpoolctl`` for NumPy's BLAS), methods alternate,
one warm-up each, then the median and [min-max] of ``--repeats`` rounds; ratio = NumPy median /
semrec median.
"""

from __future__ import annotations

import argparse
import os

_pre = argparse.ArgumentParser(add_help=False)
_pre.add_argument("--threads", type=int, default=2)
THREADS: int = _pre.parse_known_args()[0].threads
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ[_var] = str(THREADS)

import statistics  # noqa: E402
import time  # noqa: E402
import zlib  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import semrec  # noqa: E402
from semrec import split  # noqa: E402
from semrec.datasets import Dataset, synthetic_size  # noqa: E402
from semrec.interest import StreamingProfiles, user_profiles  # noqa: E402

SEED = 0
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def timed_pair(
    fns: dict[str, Callable[[], object]], repeats: int
) -> dict[str, tuple[float, float, float]]:
    """Alternate the functions, one warm-up each, then ``repeats`` timed rounds."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {n: (statistics.median(t), min(t), max(t)) for n, t in times.items()}


def fmt(t: tuple[float, float, float]) -> str:
    return f"{t[0]:.3f} [{t[1]:.3f}-{t[2]:.3f}]"


DIM = 384
DAY = 86_400
HALF_LIFE = 30 * DAY


def embeddings(n_items: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n_items, DIM), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


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


# -- profiles ---------------------------------------------------------------------------------


def scipy_profiles(m: sp.csr_array, emb: np.ndarray, ts: np.ndarray, t_now: float) -> np.ndarray:
    weights = sp.csr_array(
        ((m.data * 0.5 ** ((t_now - ts) / HALF_LIFE)).astype(np.float32), m.indices, m.indptr),
        shape=m.shape,
    )
    p = weights @ emb
    norms = np.linalg.norm(p, axis=1, keepdims=True)
    return np.divide(p, norms, out=np.zeros_like(p), where=norms > 0)


def part_profiles(args: argparse.Namespace) -> None:
    sizes = ["M"] if args.quick else args.sizes.split(",")
    print(
        f"\n## profiles: user_profiles with time decay vs scipy.sparse (dim {DIM}, "
        f"half-life 30 days, {THREADS} threads for semrec, scipy single-threaded product, "
        f"median (min-max) of {args.repeats} after 1 warm-up, alternating)\n"
    )
    print("| data | users | events | semrec s | scipy.sparse s | speed-up | max abs diff |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for size in sizes:
        profiles_row(size, args.repeats)


def profiles_row(size: str, repeats: int) -> None:
    ds = synthetic_size(size, with_text=False)
    m, ts = ds.interactions, ds.timestamps
    emb = embeddings(m.shape[1])
    t_now = float(ts.max())

    def ours() -> np.ndarray:
        return user_profiles(
            m, emb, timestamps=ts, t_now=t_now, half_life=HALF_LIFE, num_threads=THREADS
        )

    diff = float(np.abs(ours() - scipy_profiles(m, emb, ts, t_now)).max())
    with threadpool_limits(1):
        times = alternate(
            {"semrec": ours, "scipy": lambda: scipy_profiles(m, emb, ts, t_now)}, repeats
        )
    ratio = np.median(times["scipy"]) / np.median(times["semrec"])
    print(
        f"| synthetic {size} | {m.shape[0]:,} | {m.nnz:,} | {summary(times['semrec'])} "
        f"| {summary(times['scipy'])} | {ratio:.2f}x | {diff:.1e} |",
        flush=True,
    )


# -- streaming --------------------------------------------------------------------------------


def part_streaming(args: argparse.Namespace) -> None:
    ds = synthetic_size("M", with_text=False)
    m, ts = ds.interactions, ds.timestamps
    emb = embeddings(m.shape[1])
    order = np.argsort(ts, kind="stable")
    users = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))[order]
    items = m.indices[order].astype(np.int32)
    weights = m.data[order]
    times = ts[order]
    print(
        f"\n## streaming: StreamingProfiles.update_many, one thread, dim {DIM}, synthetic M "
        f"events ({users.size:,}) in time order, half-life 30 days, median (min-max) of "
        f"{args.repeats} after 1 warm-up\n"
    )

    def replay(half_life: float | None) -> None:
        state = StreamingProfiles(emb, half_life=half_life, num_threads=1)
        state.update_many(users, items, weights, times if half_life else None)

    seconds = alternate(
        {"decay": lambda: replay(HALF_LIFE), "plain": lambda: replay(None)}, args.repeats
    )
    print("| mode | seconds | events/s | target |")
    print("|---|---:|---:|---:|")
    for name, label in (("decay", "half-life 30 days"), ("plain", "no decay")):
        rate = users.size / np.median(seconds[name])
        print(f"| {label} | {summary(seconds[name])} | {rate / 1e6:.2f}M | >= 1M |", flush=True)

    model = semrec.ContentRecommender(
        emb, half_life=HALF_LIFE, num_threads=THREADS, show_progress=False
    )
    start = time.perf_counter()
    model.fit(ds)
    fit_seconds = time.perf_counter() - start
    state = StreamingProfiles(emb, half_life=HALF_LIFE)
    state.update_many(users, items, weights, times)
    rng = np.random.default_rng(0)
    n_calls = 2_000
    picks_u = rng.integers(0, m.shape[0], n_calls)
    picks_i = rng.integers(0, m.shape[1], n_calls)
    t_now = float(ts.max())

    def single_state() -> None:
        for u, i in zip(picks_u.tolist(), picks_i.tolist(), strict=True):
            state.update(u, i, 1.0, t_now)

    def single_model() -> None:
        for u, i in zip(picks_u.tolist(), picks_i.tolist(), strict=True):
            model.update(u, i, 1.0, t_now)

    def update_recommend() -> None:
        for u, i in zip(picks_u[:200].tolist(), picks_i[:200].tolist(), strict=True):
            model.update(u, i, 1.0, t_now)
            model.recommend(u, k=10)

    lat = alternate(
        {"state": single_state, "model": single_model, "both": update_recommend}, args.repeats
    )
    print(
        f"\nLatency per call (Python, {THREADS} threads for recommend; ContentRecommender "
        f"fitted on synthetic M in {fit_seconds:.2f} s, {m.shape[1]:,} items):\n"
    )
    print("| call | microseconds (median, min-max) |")
    print("|---|---:|")
    for name, label, calls in (
        ("state", "StreamingProfiles.update(user, item, w, t)", n_calls),
        ("model", "ContentRecommender.update(user, item, w, t)", n_calls),
        ("both", "ContentRecommender.update + recommend(user, k=10)", 200),
    ):
        us = np.asarray(lat[name]) / calls * 1e6
        print(f"| {label} | {np.median(us):.1f} ({us.min():.1f}-{us.max():.1f}) |", flush=True)


# -- mmr --------------------------------------------------------------------------------------
def mmr_numpy(
    ids: np.ndarray, rel: np.ndarray, emb: np.ndarray, k: int, lam: float, batch: int = 256
) -> np.ndarray:
    """The same greedy MMR rule, vectorised over a batch of users with NumPy."""
    n = ids.shape[0]
    out = np.empty((n, k), dtype=np.int32)
    for start in range(0, n, batch):
        cand = ids[start : start + batch]
        r = rel[start : start + batch].astype(np.float64)
        rows = np.arange(cand.shape[0])
        vectors = emb[cand]  # (b, width, dim)
        max_sim = np.full(cand.shape, -np.inf)
        alive = np.ones(cand.shape, dtype=bool)
        for step in range(k):
            value = r if step == 0 else lam * r - (1.0 - lam) * max_sim
            best = np.where(alive, value, -np.inf).argmax(axis=1)
            out[start : start + batch, step] = cand[rows, best]
            alive[rows, best] = False
            if step + 1 < k:
                sims = np.matmul(vectors, vectors[rows, best][:, :, None])[:, :, 0]
                max_sim = np.maximum(max_sim, sims)
    return out


def part_mmr(args: argparse.Namespace) -> None:
    n_users = 2_000 if args.quick else 10_000
    n_items, width, dim, k, lam = 20_000, 200, 384, 10, 0.5
    rng = np.random.default_rng(SEED)
    emb = rng.standard_normal((n_items, dim), dtype=np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    ids = np.stack([rng.choice(n_items, width, replace=False) for _ in range(n_users)])
    ids = ids.astype(np.int32)
    rel = -np.sort(-rng.random((n_users, width), dtype=np.float32), axis=1)

    def run_semrec() -> np.ndarray:
        return semrec.diversify(ids, rel, emb, k, lam, normalize="none", num_threads=args.threads)[
            0
        ]

    def run_numpy() -> np.ndarray:
        return mmr_numpy(ids, rel, emb, k, lam)

    same = float((run_semrec() == run_numpy()).all(axis=1).mean())
    result = timed_pair({"semrec": run_semrec, "numpy": run_numpy}, args.repeats)
    ratio = result["numpy"][0] / result["semrec"][0]
    print(
        f"\nMMR re-ranking: {n_users} users x {width} candidates -> k={k}, dim {dim}, "
        f"lambda={lam}, {n_items} items; threads={args.threads} (semrec num_threads, "
        f"OMP_NUM_THREADS, BLAS via threadpoolctl); median [min-max] of {args.repeats} rounds "
        "after 1 warm-up, alternating"
    )
    print(f"identical picks: {same:.1%} of users")
    print(f"| {'method':<28} | {'seconds':>22} | {'users/s':>10} | {'ratio':>6} |")
    print(f"|{'-' * 30}|{'-' * 24}|{'-' * 12}|{'-' * 8}|")
    for name, label in (("semrec", "semrec.diversify"), ("numpy", "NumPy vectorised (peer)")):
        t = result[name]
        r = ratio if name == "semrec" else 1.0
        print(f"| {label:<28} | {fmt(t):>22} | {n_users / t[0]:>10.0f} | {r:>5.2f}x |")


# -- quality on MovieLens-100k ----------------------------------------------------------------
_CACHE: dict[str, Any] = {}


def movielens() -> Dataset:
    if "ml" not in _CACHE:
        if not (DATA / "ml-100k" / "u.data").exists():
            raise SystemExit(f"MovieLens-100k not found at {DATA / 'ml-100k'}")
        _CACHE["ml"] = semrec.datasets.movielens("100k", path=DATA / "ml-100k")
    return _CACHE["ml"]


def item_embeddings() -> tuple[np.ndarray, str]:
    """Text embeddings of the items, and a label saying where they came from."""
    if "emb" not in _CACHE:
        texts = [str(t) for t in movielens().items["text"]]
        try:
            encoder = semrec.TextEncoder()
            _CACHE["emb"] = (encoder.encode(texts), "semrec.TextEncoder (all-MiniLM-L6-v2)")
        except Exception as exc:  # no model files: say so and fall back
            rng = np.random.default_rng(SEED)
            rows, cols = [], []
            for i, text in enumerate(texts):
                for word in text.lower().split():
                    rows.append(i)
                    cols.append(zlib.crc32(word.encode()) % 4096)
            bag = sp.csr_array((np.ones(len(rows)), (rows, cols)), shape=(len(texts), 4096))
            emb = bag @ rng.standard_normal((4096, 384))
            emb /= np.linalg.norm(emb, axis=1, keepdims=True)
            _CACHE["emb"] = (
                emb.astype(np.float32),
                f"random projection ({exc.__class__.__name__})",
            )
    return _CACHE["emb"]


class TextProfile:
    """Minimal content model: rating-weighted mean of a user's item embeddings, cosine."""

    def __init__(self, emb: np.ndarray) -> None:
        self.emb = emb

    def fit(self, interactions: sp.csr_array) -> TextProfile:
        self.interactions_ = sp.csr_array(interactions, dtype=np.float32)
        profiles = self.interactions_ @ self.emb
        norms = np.linalg.norm(profiles, axis=1, keepdims=True)
        self.profiles = np.ascontiguousarray(profiles / np.where(norms > 0, norms, 1), np.float32)
        return self

    def score(self, users: Any, items: Any) -> np.ndarray:
        return self.profiles[np.asarray(users)] @ self.emb[np.asarray(items)].T

    def recommend(self, users, k=10, *, exclude_seen=True, items=None):
        u = np.asarray(users).reshape(-1)
        ids, scores = semrec.topk(
            self.profiles[u],
            self.emb,
            k,
            metric="dot",
            exclude=self.interactions_[u] if exclude_seen else None,
            candidates=None if items is None else np.asarray(items),
        )
        return (ids[0], scores[0]) if np.ndim(users) == 0 else (ids, scores)


def als_grid(quick: bool) -> list[tuple[int, float, float]]:
    grid = [(f, reg, alpha) for f in (32, 64) for reg in (0.1, 10.0) for alpha in (1.0, 10.0)]
    return grid[::2] if quick else grid


def make_als(params: tuple[int, float, float]) -> semrec.ALS:
    factors, reg, alpha = params
    return semrec.ALS(
        factors, regularization=reg, alpha=alpha, iterations=15, random_state=0, show_progress=False
    )


def metric(model: Any, train: Dataset, test: Dataset, name: str, k: int, **kw: Any) -> float:
    table = semrec.evaluate(model, train, test, k=k, metrics=[name], **kw)
    return float(table.loc[k, name])


def tuned_als(train: Dataset, quick: bool, score: Callable[[Any, Dataset, Dataset], float]):
    """ALS with the grid point that scores best on a validation split carved from train."""
    fit_set, valid = split.last_fraction(train)
    results = [
        (score(make_als(p).fit(fit_set.interactions), fit_set, valid), p) for p in als_grid(quick)
    ]
    return max(results)[1]


def part_mmr_quality(args: argparse.Namespace) -> None:
    data = movielens()
    emb, source = item_embeddings()
    train, test = split.last_fraction(data)
    params = tuned_als(train, args.quick, lambda m, a, b: metric(m, a, b, "ndcg", 10))
    als = make_als(params).fit(train.interactions)

    class Diversified:
        def __init__(self, lam: float) -> None:
            self.lam = lam

        def recommend(self, users, k=10, *, exclude_seen=True, items=None):
            ids, scores = als.recommend(users, k=100, exclude_seen=exclude_seen, items=items)
            return semrec.diversify(ids, scores, emb, k, self.lam)

    print(
        f"\nMMR lambda sweep, MovieLens-100k warm split; ALS {params} (tuned on validation) "
        f"top-100 -> diversify -> 10; embeddings: {source}"
    )
    print("| lambda | NDCG@10 | intra-list diversity@10 | coverage@10 |")
    print("|---:|---:|---:|---:|")
    for lam in (1.0, 0.9, 0.8, 0.7, 0.5, 0.3):
        table = semrec.evaluate(
            Diversified(lam),
            train,
            test,
            k=10,
            metrics=["ndcg", "diversity", "coverage"],
            item_embeddings=emb,
        )
        row = table.loc[10]
        print(f"| {lam:.1f} | {row.ndcg:.4f} | {row.diversity:.4f} | {row.coverage:.4f} |")


def part_hybrid(args: argparse.Namespace) -> None:
    data = movielens()
    emb, source = item_embeddings()
    train, test = split.last_fraction(data)
    fit_set, valid = split.last_fraction(train)
    params = tuned_als(train, args.quick, lambda m, a, b: metric(m, a, b, "ndcg", 10))
    members = [
        make_als(params).fit(fit_set.interactions),
        TextProfile(emb).fit(fit_set.interactions),
    ]
    tuned = semrec.Hybrid.tune(members, fit_set, valid, grid=10, k=10, show_progress=False)
    weights = [w for _, w in tuned.models]
    als = make_als(params).fit(train.interactions)
    profile = TextProfile(emb).fit(train.interactions)
    hybrid = semrec.Hybrid([(als, weights[0]), (profile, weights[1])])
    models = {
        "random": semrec.Random(random_state=0).fit(train.interactions),
        "most popular": semrec.MostPopular().fit(train.interactions),
        f"ALS {params}": als,
        "text profile": profile,
        f"Hybrid zscore, weights {weights} (tuned)": hybrid,
    }
    print(
        f"\nHybrid, MovieLens-100k warm split; embeddings: {source}; weights by Hybrid.tune on "
        "validation (simplex step 0.1, 11 points), ALS grid as above"
    )
    print("| model | NDCG@10 | Recall@10 |")
    print("|---|---:|---:|")
    for name, model in models.items():
        table = semrec.evaluate(model, train, test, k=10, metrics=["ndcg", "recall"])
        print(f"| {name} | {table.loc[10, 'ndcg']:.4f} | {table.loc[10, 'recall']:.4f} |")


def part_coldstart(args: argparse.Namespace) -> None:
    data = movielens()
    emb, source = item_embeddings()
    train, test = split.cold_items(data, 0.1, 5, random_state=0)
    cold = test.split_info["cold_items"]
    fit_set, valid = split.cold_items(train, 0.1, 5, random_state=0)
    valid_cold = valid.split_info["cold_items"]

    def recall(model: Any, a: Dataset, b: Dataset, items: np.ndarray) -> float:
        return metric(model, a, b, "recall", 20, items=items)

    # ALS and the ridge penalty picked together on the validation cold split.
    scored = []
    for p in als_grid(args.quick):
        als = make_als(p).fit(fit_set.interactions)
        for reg in (1.0, 10.0, 100.0, 1000.0, 10000.0):
            model = semrec.ColdStartALS(als, emb, regularization=reg).fit()
            scored.append((recall(model, fit_set, valid, valid_cold), p, reg))
    _, params, reg = max(scored)
    als_v = make_als(params).fit(fit_set.interactions)
    members = [
        semrec.ColdStartALS(als_v, emb, regularization=reg).fit(),
        TextProfile(emb).fit(fit_set.interactions),
    ]
    # Hybrid weights for cold items: tuned on the validation cold split, ranking its cold items.
    tuned = semrec.Hybrid.tune(
        members, fit_set, valid, k=20, metric="recall", items=valid_cold, show_progress=False
    )
    best_w = tuple(w for _, w in tuned.models)
    als = make_als(params).fit(train.interactions)
    coldstart = semrec.ColdStartALS(als, emb, regularization=reg).fit()
    profile = TextProfile(emb).fit(train.interactions)
    models = {
        "random": semrec.Random(random_state=0).fit(train.interactions),
        "most popular": semrec.MostPopular().fit(train.interactions),
        f"plain ALS {params}": als,
        "text profile": profile,
        f"ColdStartALS (ridge reg {reg})": coldstart,
        f"Hybrid(ColdStartALS, text profile) {best_w}": semrec.Hybrid(
            [(coldstart, best_w[0]), (profile, best_w[1])]
        ),
    }
    print(
        f"\nCold-item split, MovieLens-100k: {cold.size} cold items, users rank them only; "
        f"embeddings: {source}; ALS {params} and ridge reg picked on a validation cold split"
    )
    print("| model | Recall@20 | NDCG@20 | Recall@20 / random |")
    print("|---|---:|---:|---:|")
    base = None
    for name, model in models.items():
        table = semrec.evaluate(model, train, test, k=20, metrics=["recall", "ndcg"], items=cold)
        r, n = table.loc[20, "recall"], table.loc[20, "ndcg"]
        base = base or r
        print(f"| {name} | {r:.4f} | {n:.4f} | {r / base:.2f}x |")


PARTS: dict[str, Callable[[argparse.Namespace], None]] = {
    "profiles": part_profiles,
    "streaming": part_streaming,
    "mmr": part_mmr,
    "mmr_quality": part_mmr_quality,
    "hybrid": part_hybrid,
    "coldstart": part_coldstart,
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller data")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"any of {', '.join(PARTS)}")
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", default="M,L", help="synthetic sizes for the profiles part")
    args = parser.parse_args()
    chosen = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in chosen if p not in PARTS]
    if unknown:
        parser.error(f"unknown part(s) {unknown}; choose from {list(PARTS)}")
    semrec.set_num_threads(args.threads)
    with threadpool_limits(limits=args.threads):
        for name in chosen:
            PARTS[name](args)


if __name__ == "__main__":
    main()
