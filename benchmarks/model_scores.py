"""A dot-product model's ``score``: the search kernel's sums against the float64 product.

How to run (project root, project virtualenv):

    python benchmarks/model_scores.py                 # native
    python benchmarks/model_scores.py --isa avx2      # emulate an AVX2-only CPU (see _bench.py)

What it measures. ``Recommender.score`` of ALS, ColdStartALS, ContentRecommender and TextCF
computes ``users @ items.T`` through ``semrec._scoring.kernel_scores``: the search kernel's own
blocks and fixed summation order (``core.dot_products``), so that its values are bitwise those
``recommend`` returns. Until session 40 it was a float64 product rounded to float32, which
differed from ``recommend``'s scores by an ulp. Both are timed here on the shape a ``Hybrid``
asks for (256 users, every item), alternating, one warm-up each, the median of ``--repeats``
rounds; the ratio is kernel / float64 (below 1: the kernel is faster). Every shape also checks
that the kernel's scores equal ``semrec.topk``'s bit for bit.
"""

from __future__ import annotations

import argparse
import time

import _bench

PINNED = _bench.pin_environment()  # threads and --isa, before numpy or OpenMP load

import numpy as np  # noqa: E402

import semrec  # noqa: E402
from semrec._scoring import kernel_scores  # noqa: E402

SHAPES = [(1_682, 64), (20_000, 64), (100_000, 64), (20_000, 384)]  # items x dim
USERS = 256  # one batch of a Hybrid's member scores (semrec._base.BATCH_USERS)


def float64_product(q: np.ndarray, x: np.ndarray) -> np.ndarray:
    """What score computed before: the product in float64, rounded to float32."""
    return (q.astype(np.float64) @ x.T.astype(np.float64)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    _bench.add_common_arguments(parser, PINNED.threads)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"# score(): {USERS} users x every item, {args.threads} threads\n"
          f"{_bench.machine_line()}")  # fmt: skip
    print("| items x dim | float64 product (before) | kernel (now) | ratio now / before | "
          "bitwise equal to topk |")  # fmt: skip
    print("|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for n, dim in SHAPES:
        q = rng.standard_normal((USERS, dim)).astype(np.float32)
        x = rng.standard_normal((n, dim)).astype(np.float32)
        methods = {"before": float64_product, "now": kernel_scores}
        times: dict[str, list[float]] = {name: [] for name in methods}
        for call in methods.values():
            call(q, x)  # warm-up
        for _ in range(args.repeats):
            for name, call in methods.items():
                start = time.perf_counter()
                call(q, x)
                times[name].append(time.perf_counter() - start)
        before, now = (float(np.median(times[name])) for name in ("before", "now"))
        ids, top = semrec.topk(q, x, n, metric="dot")
        same = np.array_equal(np.take_along_axis(kernel_scores(q, x), ids, axis=1), top)
        print(f"| {n:,} x {dim} | {before * 1e3:.1f} ms | {now * 1e3:.1f} ms | "
              f"{now / before:.2f}x | {same} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
