"""Hybrid's blend: the per-row normalisation of its members' score blocks, their top-k, and
recommend end to end.

How to run (project root, project virtualenv):

    python benchmarks/hybrid.py                 # native
    python benchmarks/hybrid.py --quick         # a smaller catalogue

What it measures. ``Hybrid.recommend`` scores each member on blocks of 256 users x every item,
normalises each block row by row and adds the blocks up (``semrec.hybrid.normalize_rows``), then
takes each row's top-k without the seen items (``semrec._scoring.select_topk``). Since session 45
both run in a native kernel (OpenMP over rows, one pass per statistic, no block-sized
temporaries); until then they were NumPy. The NumPy ways are kept here as the peers, in their
fastest form (session 44's in-place normalisation; ``argpartition`` with the lower-id tie-break).
Table 1 times one block each way, alternating, one warm-up, the median [min-max] of
``--repeats`` rounds: ``normalize_rows`` allocates its float64 result (page faults on a fresh
40 MB block cost as much as the arithmetic on some machines), the kernel alone adds into a block
already allocated, as a Hybrid's members after the first do. It prints how far the results
differ (the native sums run in another order: the last bits may differ; top-k ids are
compared). Table 2 times
``Hybrid(ALS, ItemKNN).recommend`` of ``--users`` users beside its two members' own
``recommend`` of the same users (a Hybrid cannot cost less than its members' scoring).
"""

from __future__ import annotations

import argparse
import time

import _bench

PINNED = _bench.pin_environment()  # threads and --isa, before numpy or OpenMP load

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

import semrec  # noqa: E402
from semrec._native import core  # noqa: E402
from semrec._scoring import select_topk  # noqa: E402
from semrec.datasets import synthetic  # noqa: E402
from semrec.hybrid import normalize_rows  # noqa: E402


def normalize_rows_numpy(s: np.ndarray, how: str) -> np.ndarray:
    """Session 44's NumPy normalisation (zscore and minmax): a handful of in-place passes."""
    s = np.array(s, dtype=np.float64)
    excluded = s == -np.inf
    finite = ~excluded
    count = finite.sum(axis=1, keepdims=True)
    if how == "zscore":
        s[excluded] = 0.0
        center = s.sum(axis=1, keepdims=True) / np.maximum(count, 1)
        s -= center
        s[excluded] = 0.0
        spread = np.sqrt(np.square(s).sum(axis=1, keepdims=True) / np.maximum(count, 1))
        ok = (count > 0) & (spread > 0)
    else:
        center = np.min(s, axis=1, keepdims=True, where=finite, initial=np.inf)
        spread = np.max(s, axis=1, keepdims=True, where=finite, initial=-np.inf) - center
        ok = (count > 0) & (spread > 0)
        s -= np.where(ok, center, 0.0)
    s /= np.where(ok, spread, 1.0)
    s[~ok[:, 0]] = 0.0
    s[excluded] = -np.inf
    return s


def select_topk_numpy(scores: np.ndarray, k: int, exclude: sp.csr_array) -> np.ndarray:
    """The top-k ids by ``argpartition`` (session 44's way), ties by the lower id."""
    scores = scores.copy()
    rows = np.repeat(np.arange(exclude.shape[0]), np.diff(exclude.indptr))
    scores[rows, exclude.indices] = -np.inf
    n_items = scores.shape[1]
    top = np.argpartition(scores, n_items - k, axis=1)[:, n_items - k :]
    top_scores = np.take_along_axis(scores, top, axis=1)
    kth = top_scores.min(axis=1, keepdims=True)
    ties = (scores == kth).sum(axis=1) > (top_scores == kth).sum(axis=1)
    for row in np.flatnonzero(ties):
        above = np.flatnonzero(scores[row] > kth[row, 0])
        tied = np.flatnonzero(scores[row] == kth[row, 0])[: k - above.size]
        top[row] = np.concatenate([above, tied])
        top_scores[row] = scores[row, top[row]]
    order = np.lexsort((top, -top_scores), axis=1)
    return np.take_along_axis(top, order, axis=1)


def timed(call, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        out.append(time.perf_counter() - start)
    return out


def alternating(calls: dict, repeats: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        call()  # warm-up
    for _ in range(repeats):
        for name, call in calls.items():
            times[name] += timed(call, 1)
    return times


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
    total = np.zeros(block.shape)  # an allocated block, as a Hybrid's later members add into
    print("\n| one block, 256 x every item | NumPy, ms | semrec, ms | semrec / NumPy | semrec "
          "into an allocated block, ms | that / NumPy | agreement |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for how in ("zscore", "minmax"):
        times = alternating({"numpy": lambda how=how: normalize_rows_numpy(block, how),
                             "semrec": lambda how=how: normalize_rows(block, how),
                             "into": lambda how=how: core.add_normalized_rows(
                                 block, how, 1.0, total, args.threads)},
                            args.repeats)  # fmt: skip
        want, got = normalize_rows_numpy(block, how), normalize_rows(block, how)
        finite = np.isfinite(want)
        same_inf = np.array_equal(finite, np.isfinite(got))
        diff = float(np.abs(want[finite] - got[finite]).max())
        ratio = np.median(times["semrec"]) / np.median(times["numpy"])
        into = np.median(times["into"]) / np.median(times["numpy"])
        print(f"| normalize {how} | {_bench.fmt_time(times['numpy'], 1e-3)} | "
              f"{_bench.fmt_time(times['semrec'], 1e-3)} | {ratio:.2f} | "
              f"{_bench.fmt_time(times['into'], 1e-3)} | {into:.2f} | max abs difference "
              f"{diff:.1e}, -inf kept: {same_inf} |")  # fmt: skip
    blend = normalize_rows(block, "zscore") * 0.5 + normalize_rows(block[::-1], "zscore") * 0.5
    seen = sp.csr_array(rng.random(blend.shape) < 0.02, dtype=np.float32)
    times = alternating({"numpy": lambda: select_topk_numpy(blend, 10, seen),
                         "semrec": lambda: select_topk(blend, 10, exclude=seen)},
                        args.repeats)  # fmt: skip
    equal = np.array_equal(
        select_topk_numpy(blend, 10, seen), select_topk(blend, 10, exclude=seen)[0]
    )
    ratio = np.median(times["semrec"]) / np.median(times["numpy"])
    print(f"| top-10 of the float64 blend, seen items excluded | "
          f"{_bench.fmt_time(times['numpy'], 1e-3)} | {_bench.fmt_time(times['semrec'], 1e-3)} | "
          f"{ratio:.2f} | | | same ids: {equal} |")  # fmt: skip

    data = synthetic(n_users, n_items, nnz, with_text=False, random_state=0).interactions
    als = semrec.ALS(64, iterations=5, random_state=0, show_progress=False).fit(data)
    knn = semrec.ItemKNN(100, show_progress=False).fit(data)
    hybrid = semrec.Hybrid([(als, 0.5), (knn, 0.5)]).fit(data)
    users = np.arange(min(args.users, n_users))
    times = alternating({"ALS": lambda: als.recommend(users, k=10),
                         "ItemKNN": lambda: knn.recommend(users, k=10),
                         "Hybrid": lambda: hybrid.recommend(users, k=10)},
                        max(3, args.repeats // 2))  # fmt: skip
    members = np.median(times["ALS"]) + np.median(times["ItemKNN"])
    print(f"\n| recommend, {users.size:,} users, k=10 | seconds | ratio to the members' sum |")
    print("|---|---|---|")
    for name, ts in times.items():
        print(f"| {name} | {_bench.fmt_time(ts)} | {np.median(ts) / members:.2f} |")
    print(f"\n{_bench.contention_note(start_cpu)}")


if __name__ == "__main__":
    main()
