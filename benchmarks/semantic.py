"""Semantic recommenders: speed of the kernels behind them (and, in other parts, quality).

Usage: python benchmarks/semantic.py [--quick] [--parts profiles,streaming] [--threads 2]

Each part prints its own table; parts run in the order given. Protocol: ../shared/PROTOCOL.md
(the methods alternate, 1 warm-up, median and min-max of at least 5 repeats, threads pinned).

- profiles: semrec.interest.user_profiles with time decay on synthetic M and L (L skipped with
  --quick) against scipy.sparse: build the decayed weight matrix, multiply it by the embedding
  matrix, row-normalise. dim 384.
- streaming: events per second of StreamingProfiles.update_many on one thread at dim 384 (the
  synthetic M interactions replayed in time order), and the latency of one Python update()
  call and of update + recommend for one user of a ContentRecommender fitted on synthetic M.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

THREADS = int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 2
os.environ["OMP_NUM_THREADS"] = str(THREADS)  # before any OpenMP runtime starts
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import semrec  # noqa: E402
from semrec.datasets import synthetic_size  # noqa: E402
from semrec.interest import StreamingProfiles, user_profiles  # noqa: E402

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


# --------------------------------------------------------------------------------------------
# Part: profiles


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


# --------------------------------------------------------------------------------------------
# Part: streaming


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


PARTS: dict[str, Callable[[argparse.Namespace], None]] = {
    "profiles": part_profiles,
    "streaming": part_streaming,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="skip the largest data")
    parser.add_argument("--parts", default=",".join(PARTS), help="comma list, run in order")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", default="M,L", help="synthetic sizes for profiles")
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
