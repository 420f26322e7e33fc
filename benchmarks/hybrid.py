"""Hybrid's blend: the per-row normalisation of its members' score blocks, and recommend.

How to run (project root, project virtualenv):

    python benchmarks/hybrid.py                 # native
    python benchmarks/hybrid.py --quick         # a smaller catalogue

What it measures. ``Hybrid.recommend`` scores each member on blocks of 256 users x every item,
normalises each block row by row (``semrec.hybrid.normalize_rows``) and adds the blocks up.
Until session 44 the normalisation made about twenty float64 passes over each block (masks,
``np.where`` copies, the statistics twice); it now makes a handful, in place, with the same
arithmetic (the results are checked equal bit for bit here). Table 1 times one block, before
and now, alternating, one warm-up, the median [min-max] of ``--repeats`` rounds. Table 2 times
``Hybrid(ALS, ItemKNN).recommend`` of ``--users`` users beside its two members' own
``recommend`` of the same users (a Hybrid cannot cost less than its members' scoring).
"""

from __future__ import annotations

import argparse
import time

import _bench

PINNED = _bench.pin_environment()  # threads and --isa, before numpy or OpenMP load

import numpy as np  # noqa: E402

import semrec  # noqa: E402
from semrec.datasets import synthetic  # noqa: E402
from semrec.hybrid import normalize_rows  # noqa: E402


def normalize_rows_before(s: np.ndarray, how: str) -> np.ndarray:
    """The normalisation as it was before session 44 (zscore and minmax), for the ratio."""
    s = np.asarray(s, dtype=np.float64)
    if np.isnan(s).any() or np.isposinf(s).any():
        raise ValueError("NaN or +inf scores")
    finite = np.isfinite(s)
    count = finite.sum(axis=1, keepdims=True)
    zeroed = np.where(finite, s, 0.0)
    if how == "zscore":
        center = np.where(finite, s, 0.0).sum(axis=1, keepdims=True) / np.maximum(count, 1)
        deviation = np.where(finite, s - center, 0.0)
        spread = np.sqrt(np.square(deviation).sum(axis=1, keepdims=True) / np.maximum(count, 1))
    else:
        center = np.min(s, axis=1, keepdims=True, where=finite, initial=np.inf)
        spread = np.max(s, axis=1, keepdims=True, where=finite, initial=-np.inf) - center
    ok = (count > 0) & (spread > 0)
    scaled = np.where(ok, (zeroed - np.where(ok, center, 0.0)) / np.where(ok, spread, 1.0), 0.0)
    out = np.full_like(s, -np.inf)
    np.copyto(out, scaled, where=finite)
    return out


def timed(call, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _bench.add_common_arguments(parser, PINNED.threads)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--users", type=int, default=5_000, help="users recommended in table 2")
    parser.add_argument("--quick", action="store_true", help="5k users x 5k items")
    args = parser.parse_args()
    n_users, n_items, nnz = (5_000, 5_000, 250_000) if args.quick else (20_000, 20_000, 1_000_000)
    start_cpu = _bench.cpu_seconds()
    print(f"# Hybrid: {n_users:,} users x {n_items:,} items x {nnz:,} interactions (synthetic, "
          f"seed 0), {args.threads} threads\n{_bench.machine_line()}")  # fmt: skip

    rng = np.random.default_rng(0)
    block = rng.standard_normal((256, n_items)).astype(np.float32)
    block[rng.random(block.shape) < 0.01] = -np.inf  # seen items, excluded
    print("\n| normalize (256 x every item) | before, ms | now, ms | ratio now / before | "
          "bitwise equal |")  # fmt: skip
    print("|---|---|---|---|---|")
    for how in ("zscore", "minmax"):
        calls = {"before": lambda how=how: normalize_rows_before(block, how),
                 "now": lambda how=how: normalize_rows(block, how)}  # fmt: skip
        times: dict[str, list[float]] = {name: [] for name in calls}
        for call in calls.values():
            call()  # warm-up
        for _ in range(args.repeats):
            for name, call in calls.items():
                times[name] += timed(call, 1)
        equal = np.array_equal(normalize_rows_before(block, how), normalize_rows(block, how))
        ratio = np.median(times["now"]) / np.median(times["before"])
        print(f"| {how} | {_bench.fmt_time(times['before'], 1e-3)} | "
              f"{_bench.fmt_time(times['now'], 1e-3)} | {ratio:.2f} | {equal} |")  # fmt: skip

    data = synthetic(n_users, n_items, nnz, with_text=False, random_state=0).interactions
    als = semrec.ALS(64, iterations=5, random_state=0, show_progress=False).fit(data)
    knn = semrec.ItemKNN(100, show_progress=False).fit(data)
    hybrid = semrec.Hybrid([(als, 0.5), (knn, 0.5)]).fit(data)
    users = np.arange(min(args.users, n_users))
    calls = {"ALS": lambda: als.recommend(users, k=10),
             "ItemKNN": lambda: knn.recommend(users, k=10),
             "Hybrid": lambda: hybrid.recommend(users, k=10)}  # fmt: skip
    times = {name: [] for name in calls}
    for call in calls.values():
        call()  # warm-up
    for _ in range(max(3, args.repeats // 2)):
        for name, call in calls.items():
            times[name] += timed(call, 1)
    members = np.median(times["ALS"]) + np.median(times["ItemKNN"])
    print(f"\n| recommend, {users.size:,} users, k=10 | seconds | ratio to the members' sum |")
    print("|---|---|---|")
    for name, ts in times.items():
        print(f"| {name} | {_bench.fmt_time(ts)} | {np.median(ts) / members:.2f} |")
    print(f"\n{_bench.contention_note(start_cpu)}")


if __name__ == "__main__":
    main()
