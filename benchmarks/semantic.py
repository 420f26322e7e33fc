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
knn
    ItemKNN.fit against implicit==0.7.3 CosineRecommender and BM25Recommender (K=100, the
    same thread count through implicit's num_threads, OMP_NUM_THREADS and threadpoolctl) on
    MovieLens-100k and synthetic S, M and L (``--knn-sizes``; L skipped with --quick), and
    recommend throughput (users per second, k=10, seen items excluded) of the fitted models.
mmr
    MMR diversity re-ranking (``semrec.diversify``): per user, keep k=10 of 200 candidates
    (random item ids out of 20k, relevance sorted descending as a model's output would be) with
    lambda=0.5, item embeddings of dimension 384 (random, L2-normalised). The peer is a
    vectorised NumPy implementation of the same greedy rule (batches of users, the candidate
    embeddings gathered once per batch, one batched matrix-vector product per pick, running
    max-similarity). Both get the same relevance (already in [0, 1]; semrec with
    ``normalize="none"``) and must pick the same items (checked, printed).

warm, cold, new_users (quality, MovieLens-100k at ../shared/datasets/ml-100k, PROTOCOL.md)
    Item embeddings: semrec.TextEncoder (all-MiniLM-L6-v2) over the protocol's item text, or
    hashed random-projection embeddings of the same text when the encoder is unavailable (the
    table header says which). Every family is tuned on a validation split carved from train
    the same way (last 20% per user), 8 configurations each (4 with --quick): ALS (factors,
    reg, alpha; 15 iterations), ItemKNN (K, weighting, shrinkage), content (half-life, raw or
    centred ratings); the hybrid's weights (content, ALS, ItemKNN; z-scored) are picked with
    ``Hybrid.tune`` on the same validation split (simplex step 0.1).

    * warm: warm split, NDCG@10 / Recall@10 / coverage / diversity for content, ALS, ItemKNN,
      hybrid, most-popular and random; then the MMR sweep: the hybrid's top 100 re-ranked to 10
      by ``diversify`` for several lambda (NDCG@10 against intra-list diversity and coverage).
    * cold: cold-item split (10% of the items with >= 5 interactions, seed 0), users rank the
      cold items only: content, ridge-mapped ALS (``ColdStartALS``, penalty picked on a cold
      split carved from train), their hybrid (weights tuned on that split) and random;
      Recall@20, NDCG@20 and the ratio to random.
    * new_users: new-user split (10% of users, 5 revealed interactions folded in with
      ``fold_in``); NDCG@10 / Recall@10 for each model, the hybrid, most-popular and random.

Speed protocol (PROTOCOL.md): same data and threads for everyone (``--threads``: semrec's
``num_threads``, OMP_NUM_THREADS and ``threadpoolctl`` for NumPy's BLAS), methods alternate,
one warm-up each, then the median and [min-max] of ``--repeats`` rounds; ratio = NumPy median /
semrec median.
"""

from __future__ import annotations

import argparse

import _bench

THREADS: int = _bench.pin_threads(default=2)  # before numpy, BLAS, OpenMP or torch load

import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
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
from semrec.rerank import Diversified  # noqa: E402

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


# --------------------------------------------------------------------------------------------
# Part: knn

KNN_K = 100
RECOMMEND_USERS = 10_000


def knn_data(args: argparse.Namespace) -> list[tuple[str, sp.csr_array]]:
    data = []
    if (DATA / "ml-100k" / "u.data").exists():
        ml = semrec.datasets.movielens(
            "100k", path=DATA / "ml-100k", show_progress=False
        ).interactions
        data.append(("MovieLens-100k", ml))
    else:
        print(f"(MovieLens-100k skipped: not found at {DATA / 'ml-100k'})")
    sizes = [s for s in args.knn_sizes.split(",") if s and not (args.quick and s == "L")]
    for size in sizes:
        data.append((f"synthetic {size}", synthetic_interactions(size, args.cache)))
    return data


def synthetic_interactions(size: str, cache: Path) -> sp.csr_array:
    """synthetic_size(size)'s interactions through benchmarks/als.py's .npz cache (L takes
    minutes to generate; both benchmarks share the files)."""
    from als import synthetic_cached  # a sibling script: benchmarks/ is on sys.path

    return synthetic_cached(size, cache).interactions


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


# -- quality on MovieLens ---------------------------------------------------------------------
_CACHE: dict[str, Any] = {}
SOURCE: dict[str, Any] = {"variant": "100k", "path": None, "tags": False, "embeddings": "encoder"}


def movielens() -> Dataset:
    """The quality parts' data set (``--movielens``, ``--data-path``; default ml-100k)."""
    if "ml" not in _CACHE:
        variant = SOURCE["variant"]
        folder = {"100k": "ml-100k", "1m": "ml-1m", "latest-small": "ml-latest-small"}[variant]
        path = Path(SOURCE["path"]) if SOURCE["path"] else DATA / folder
        try:
            _CACHE["ml"] = semrec.datasets.movielens(variant, path=path, tags=SOURCE["tags"])
        except FileNotFoundError as exc:
            raise SystemExit(f"MovieLens {variant} not found: {exc}") from None
    return _CACHE["ml"]


def data_label() -> str:
    names = {
        "100k": "MovieLens-100k",
        "1m": "MovieLens-1M",
        "latest-small": "MovieLens latest-small",
    }
    return names[SOURCE["variant"]] + (" (+ tags)" if SOURCE["tags"] else "")


def hashed_embeddings(texts: list[str]) -> np.ndarray:
    """Hashed bag-of-words vectors randomly projected to 384 dimensions (no model needed)."""
    rng = np.random.default_rng(SEED)
    rows, cols = [], []
    for i, text in enumerate(texts):
        for word in text.lower().split():
            rows.append(i)
            cols.append(zlib.crc32(word.encode()) % 4096)
    bag = sp.csr_array((np.ones(len(rows)), (rows, cols)), shape=(len(texts), 4096))
    emb = bag @ rng.standard_normal((4096, 384))
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    return emb.astype(np.float32)


def item_embeddings() -> tuple[semrec.datasets.ItemEmbeddings, str]:
    """Text embeddings of the items (they carry the item ids), and where they came from."""
    if "emb" not in _CACHE:
        data = movielens()
        fallback = SOURCE["embeddings"] == "hashed"
        if not fallback:
            try:
                emb = semrec.TextEncoder().encode_items(data)
                _CACHE["emb"] = (emb, "semrec.TextEncoder (all-MiniLM-L6-v2)")
            except Exception as exc:  # no model files: say so and fall back
                fallback = f"random projection ({exc.__class__.__name__})"
        if fallback:
            label = fallback if isinstance(fallback, str) else "hashed random projection"
            vectors = hashed_embeddings([str(t) for t in data.item_text])
            _CACHE["emb"] = (semrec.datasets.ItemEmbeddings(vectors, data.item_ids), label)
    return _CACHE["emb"]


DAY = 86_400.0


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


def centred(ds: Dataset) -> Dataset:
    """Ratings minus 2.5: low ratings become dislikes (negative weights) for the content model.

    A rating of 2.5 (half-star data) becomes an interaction of weight 0: still seen.
    """
    m = ds.interactions.copy()
    m.data = m.data - np.float32(2.5)
    return Dataset(m, timestamps=ds.timestamps, user_ids=ds.user_ids, item_ids=ds.item_ids)


class Content:
    """ContentRecommender with a choice of rating transform (raw or centred), for tuning."""

    def __init__(
        self, emb: semrec.datasets.ItemEmbeddings, half_life: float | None, centre: bool
    ) -> None:
        self.emb, self.half_life, self.centre = emb, half_life, centre

    def fit(self, ds: Dataset) -> semrec.ContentRecommender:
        """A ContentRecommender of ``ds``'s items (embeddings matched by item id)."""
        return semrec.ContentRecommender.from_dataset(
            centred(ds) if self.centre else ds,
            self.emb,
            half_life=self.half_life,
            show_progress=False,
        )


KNN_CONFIGS = [
    (50, "none", 0.0),
    (200, "none", 10.0),
    (50, "bm25", 0.0),
    (200, "bm25", 0.0),
    (100, "tfidf", 0.0),
    (400, "bm25", 10.0),
    (100, "none", 50.0),
    (400, "none", 0.0),
]


def grids(emb: Any, quick: bool) -> dict[str, list[tuple[str, Callable[[], Any]]]]:
    """The tuning budget: the same number of configurations for every model family."""
    als = [
        (f"factors={f} reg={r:g} alpha={a:g}", lambda p=(f, r, a): make_als(p))
        for f, r, a in als_grid(quick)
    ]

    def knn(cls: type) -> list[tuple[str, Callable[[], Any]]]:
        return [
            (
                f"K={n} {w} shrink={sh:g}",
                lambda n=n, w=w, sh=sh: cls(n, weighting=w, shrinkage=sh, show_progress=False),
            )
            for n, w, sh in KNN_CONFIGS
        ]

    content = [
        (
            f"half_life={'none' if h is None else f'{h / DAY:g}d'} "
            f"{'centred' if c else 'raw'} ratings",
            lambda h=h, c=c: Content(emb, h, c),
        )
        for c in (False, True)
        for h in (None, 30 * DAY, 180 * DAY, 1000 * DAY)
    ]
    item_knn, user_knn = knn(semrec.ItemKNN), knn(semrec.UserKNN)
    if quick:
        item_knn, user_knn, content = item_knn[::2], user_knn[::2], content[::2]
    return {"ALS": als, "ItemKNN": item_knn, "UserKNN": user_knn, "content": content}


def fit_on(make: Callable[[], Any], ds: Dataset) -> Any:
    model = make()
    return model.fit(ds) if isinstance(model, Content) else model.fit(ds.interactions)


def tuned(emb: Any, train: Dataset, quick: bool) -> dict[str, tuple[str, Callable]]:
    """Each family's best configuration by validation NDCG@10 (validation carved from train)."""
    key = ("tuned", id(train))
    if key in _CACHE:
        return _CACHE[key]
    fit_set, valid = split.last_fraction(train)
    chosen = {}
    for family, grid in grids(emb, quick).items():
        scored = [
            (metric(fit_on(make, fit_set), fit_set, valid, "ndcg", 10), i)
            for i, (_, make) in enumerate(grid)
        ]
        best, i = max(scored)
        chosen[family] = (f"{grid[i][0]} (valid {best:.4f})", grid[i][1])
    _CACHE[key] = chosen
    _CACHE[("valid", id(train))] = (fit_set, valid)
    return chosen


def hybrid_weights(members: list[Any], fit_set: Dataset, valid: Dataset, grid: int) -> list:
    """Hybrid weights picked on validation (simplex grid), for the members as given."""
    best = semrec.Hybrid.tune(
        members, fit_set, valid, grid=grid, k=10, metric="ndcg", show_progress=False
    )
    return [w for _, w in best.models]


def row(name: str, table: Any, k: int, cols: list[str]) -> list[Any]:
    return [name, *(float(table.loc[k, c]) for c in cols)]


def print_rows(title: str, header: list[str], rows: list[list[Any]]) -> None:
    print(f"\n{title}")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in rows:
        cells = [f"{v:.4f}" if isinstance(v, float) else str(v) for v in r]
        print("| " + " | ".join(cells) + " |")


def weights_label(families: Any, weights: list[float]) -> str:
    return ", ".join(f"{f} {w:.1f}" for f, w in zip(families, weights, strict=True))


def part_warm(args: argparse.Namespace) -> None:
    """Warm split: every model tuned on validation, then the MMR sweep on the hybrid."""
    data = movielens()
    emb, source = item_embeddings()
    train, test = split.last_fraction(data)
    chosen = tuned(emb, train, args.quick)
    fit_set, valid = _CACHE[("valid", id(train))]
    members = [fit_on(make, fit_set) for _, make in chosen.values()]
    weights = hybrid_weights(members, fit_set, valid, 4 if args.quick else 10)
    final = {f: fit_on(make, train) for f, (_, make) in chosen.items()}
    final["hybrid"] = semrec.Hybrid(list(zip(final.values(), weights, strict=True)))
    final["most-popular"] = semrec.MostPopular().fit(train.interactions)
    final["random"] = semrec.Random(random_state=SEED).fit(train.interactions)
    cols = ["ndcg", "recall", "coverage", "diversity"]
    rows = []
    for name, model in final.items():
        table = semrec.evaluate(model, train, test, k=10, metrics=cols, item_embeddings=emb)
        label = chosen[name][0] if name in chosen else ""
        if name == "hybrid":
            label = "weights " + weights_label(chosen, weights)
        rows.append([*row(name, table, 10, cols), label])
    print(
        f"\nQuality on {data_label()}, warm split; item embeddings: {source}. Each family "
        f"tuned on a validation split carved from train ({len(grids(emb, args.quick)['ALS'])} "
        "configurations each); the hybrid's weights on the same validation split."
    )
    print_rows(
        "Warm split (relevant = rating >= 4)",
        ["model", "NDCG@10", "Recall@10", "coverage@10", "diversity@10", "chosen"],
        rows,
    )
    single = max((r[1], r[0]) for r in rows if r[0] in chosen)
    hybrid = next(r[1] for r in rows if r[0] == "hybrid")
    print(
        f"hybrid NDCG@10 / best single model ({single[1]}): {hybrid / single[0]:.3f}x (target >= 1)"
    )

    rows = []
    for lam in (1.0, 0.9, 0.8, 0.7, 0.5, 0.3):
        table = semrec.evaluate(
            Diversified(final["hybrid"], emb, lam),
            train,
            test,
            k=10,
            metrics=["ndcg", "diversity", "coverage"],
            item_embeddings=emb,
        )
        rows.append(row(f"{lam:g}", table, 10, ["ndcg", "diversity", "coverage"]))
    print_rows(
        "MMR sweep: the hybrid's top 100 re-ranked to 10 by diversify (warm split)",
        ["lambda", "NDCG@10", "intra-list diversity@10", "coverage@10"],
        rows,
    )


def part_cold(args: argparse.Namespace) -> None:
    """Cold-item split (item indices permuted by split.cold_items): users rank the cold items
    only. The embeddings follow the new item order by their item ids."""
    emb, source = item_embeddings()
    warm_train, _ = split.last_fraction(movielens())
    chosen = tuned(emb, warm_train, args.quick)  # hyperparameters from the warm validation
    train, test = split.cold_items(movielens(), 0.1, 5, random_state=SEED)
    cold = test.split_info["cold_items"]
    content = fit_on(chosen["content"][1], train)
    als = fit_on(chosen["ALS"][1], train)
    # Ridge penalty picked on a cold split carved from train the same way (train's items are
    # already in a random order).
    fit_set, valid = split.cold_items(train, 0.1, 5, random_state=SEED, permute_items=False)
    valid_cold = valid.split_info["cold_items"]
    valid_als = fit_on(chosen["ALS"][1], fit_set)
    aligned = emb.aligned_to(train)
    penalties = [10.0**e for e in range(-1, 6)]
    best_penalty = max(
        penalties,
        key=lambda lam: metric(
            semrec.ColdStartALS(valid_als, aligned, regularization=lam).fit(),
            fit_set,
            valid,
            "recall",
            20,
            items=valid_cold,
        ),
    )
    mapped = semrec.ColdStartALS(als, aligned, regularization=best_penalty).fit()
    valid_members = [
        fit_on(chosen["content"][1], fit_set),
        semrec.ColdStartALS(valid_als, aligned, regularization=best_penalty).fit(),
    ]
    tuned_hybrid = semrec.Hybrid.tune(
        valid_members,
        fit_set,
        valid,
        grid=10,
        k=20,
        metric="recall",
        items=valid_cold,
        show_progress=False,
    )
    weights = [w for _, w in tuned_hybrid.models]
    models = {
        "content": content,
        f"ridge-mapped ALS (penalty {best_penalty:g})": mapped,
        f"hybrid content {weights[0]:.1f} + mapped ALS {weights[1]:.1f}": semrec.Hybrid(
            [(content, weights[0]), (mapped, weights[1])]
        ),
        "most-popular (cold items: no counts, all tied)": semrec.MostPopular().fit(
            train.interactions
        ),
        "random": semrec.Random(random_state=SEED).fit(train.interactions),
    }
    rows = []
    for name, model in models.items():
        table = semrec.evaluate(model, train, test, k=20, items=cold, metrics=["recall", "ndcg"])
        rows.append(row(name, table, 20, ["recall", "ndcg"]))
    for r in rows:
        r.append(f"{r[1] / rows[-1][1]:.2f}x")
    print_rows(
        f"Cold-item split, {data_label()} ({cold.size} cold items, users rank the cold "
        f"items only; item indices permuted; embeddings: {source})",
        ["model", "Recall@20", "NDCG@20", "Recall@20 vs random (target >= 3x)"],
        rows,
    )


def fold_in_new_users(models: dict[str, Any], chosen: dict[str, Any], test: Dataset) -> None:
    """Each new user's revealed history folded into every model (content: its timestamps and
    the same rating transform as in its fit)."""
    new = test.split_info["users"]
    history = test.split_info["history"]
    for family, model in models.items():
        if family == "content":
            source = centred(history) if chosen["content"][1]().centre else history
            m = source.interactions
            times = np.concatenate([source.timestamps[m.indptr[u] : m.indptr[u + 1]] for u in new])
            model.fold_in(m[new], timestamps=times, users=new)
        else:
            model.fold_in(history.interactions[new], users=new)


def part_new_users(args: argparse.Namespace) -> None:
    """New-user split: each new user reveals 5 interactions, folded into every model; the
    hybrid's weights are tuned on a new-user split carved from train the same way."""
    data = movielens()
    emb, source = item_embeddings()
    train, test = split.new_users(data, 0.1, 5, random_state=SEED)
    new = test.split_info["users"]
    warm_train, _ = split.last_fraction(data)
    chosen = tuned(emb, warm_train, args.quick)
    # Another seed: the same one would draw the very users already taken out of train.
    fit_set, valid = split.new_users(train, 0.1, 5, random_state=SEED + 1)
    members = {f: fit_on(make, fit_set) for f, (_, make) in chosen.items()}
    fold_in_new_users(members, chosen, valid)
    weights = hybrid_weights(list(members.values()), fit_set, valid, 4 if args.quick else 10)
    models = {f: fit_on(make, train) for f, (_, make) in chosen.items()}
    fold_in_new_users(models, chosen, test)
    models["hybrid"] = semrec.Hybrid(list(zip(list(models.values()), weights, strict=True)))
    # The baselines know what the models know: train plus the revealed histories.
    known = semrec.evaluation.known_history(train, test)
    models["most-popular"] = semrec.MostPopular().fit(known)
    models["random"] = semrec.Random(random_state=SEED).fit(known)
    rows = []
    for name, model in models.items():
        table = semrec.evaluate(model, train, test, k=10, users=new, metrics=["ndcg", "recall"])
        rows.append(row(name, table, 10, ["ndcg", "recall"]))
    rows[len(chosen)].append("weights " + weights_label(chosen, weights))
    print_rows(
        f"New-user split, {data_label()} ({new.size} users, 5 revealed interactions "
        f"folded in; hybrid weights tuned on a new-user split carved from train; "
        f"embeddings: {source})",
        ["model", "NDCG@10", "Recall@10", "hybrid weights"],
        [r + [""] * (4 - len(r)) for r in rows],
    )


def part_tune(args: argparse.Namespace) -> None:
    """Hybrid.tune (members scored once, cached rows blended) against the same search done
    the plain way, one evaluate() of a Hybrid per weight vector; the tables must be equal."""
    emb, _ = item_embeddings()
    warm_train, _ = split.last_fraction(movielens())
    chosen = tuned(emb, warm_train, args.quick)
    fit_set, valid = _CACHE[("valid", id(warm_train))]
    members = [fit_on(make, fit_set) for _, make in chosen.values()]
    grid = 4 if args.quick else 10

    def cached() -> Any:
        return semrec.Hybrid.tune(
            members, fit_set, valid, grid=grid, k=10, metric="ndcg", show_progress=False
        ).tuning_

    def plain() -> Any:
        rows = []
        for w in cached_table[[f"w{j}" for j in range(len(members))]].to_numpy():
            hybrid = semrec.Hybrid(list(zip(members, w.tolist(), strict=True)))
            rows.append(metric(hybrid, fit_set, valid, "ndcg", 10))
        return rows

    cached_table = cached()
    same = cached_table["ndcg@10"].tolist() == plain()
    repeats = max(1, args.tune_repeats)
    times = alternate({"cached": cached, "plain": plain}, repeats)
    ratio = np.median(times["plain"]) / np.median(times["cached"])
    print(
        f"\nHybrid.tune on {data_label()} ({len(members)} members: {', '.join(chosen)}; "
        f"{len(cached_table)} weight vectors, simplex step 1/{grid}; {valid.n_users} users, "
        f"{valid.n_items} items; median (min-max) of {repeats} after 1 warm-up, alternating; "
        f"{THREADS} threads)"
    )
    print(f"identical tables: {same}")
    print("| method | seconds | speed-up |")
    print("|---|---:|---:|")
    print(f"| Hybrid.tune (members scored once) | {summary(times['cached'])} | {ratio:.1f}x |")
    print(f"| evaluate(Hybrid(...)) per weight vector | {summary(times['plain'])} | 1.0x |")


# Every part_<name> function above, in its order.
PARTS: dict[str, Callable[[argparse.Namespace], None]] = _bench.parts_of(globals())


def main() -> None:
    parser = _bench.parts_parser(__doc__, PARTS, THREADS)
    parser.add_argument("--sizes", default="M,L", help="synthetic sizes for the profiles part")
    parser.add_argument("--knn-sizes", default="S,M,L", help="synthetic sizes for the knn part")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path("/tmp/semrec-bench"),
        help="where the knn part caches generated synthetic data (.npz)",
    )
    parser.add_argument(
        "--movielens",
        default="100k",
        choices=("100k", "1m", "latest-small"),
        help="release for the quality parts (warm, cold, new_users, tune)",
    )
    parser.add_argument("--data-path", help="folder of that release (default ../shared/datasets)")
    parser.add_argument("--tags", action="store_true", help="latest-small: user tags in the text")
    parser.add_argument(
        "--embeddings",
        default="encoder",
        choices=("encoder", "hashed"),
        help="item vectors: the bundled text encoder, or hashed random projections (no model)",
    )
    parser.add_argument("--tune-repeats", type=int, default=5, help="timed rounds of part tune")
    args = parser.parse_args()
    SOURCE.update(
        variant=args.movielens, path=args.data_path, tags=args.tags, embeddings=args.embeddings
    )
    _bench.run_parts(parser, args, PARTS)


if __name__ == "__main__":
    main()
