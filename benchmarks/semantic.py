"""Benchmarks of the semantic recommenders, in parts (``--parts a,b``; default: all).

How to run (from the project root, in the project's virtualenv):

    python benchmarks/semantic.py --parts mmr --quick   # 2k users, a few seconds
    python benchmarks/semantic.py --parts mmr           # 10k users x 200 candidates

Parts
-----
mmr
    MMR diversity re-ranking (``semrec.diversify``): per user, keep k=10 of 200 candidates
    (random item ids out of 20k, relevance sorted descending as a model's output would be) with
    lambda=0.5, item embeddings of dimension 384 (random, L2-normalised). The peer is a
    vectorised NumPy implementation of the same greedy rule (batches of users, the candidate
    embeddings gathered once per batch, one batched matrix-vector product per pick, running
    max-similarity). Both get the same relevance (already in [0, 1]; semrec with
    ``normalize="none"``) and must pick the same items (checked, printed).

Protocol (PROTOCOL.md): same data and threads for everyone (``--threads``: semrec's
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
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

import semrec  # noqa: E402

SEED = 0


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


PARTS: dict[str, Callable[[argparse.Namespace], None]] = {"mmr": part_mmr}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller data")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"any of {', '.join(PARTS)}")
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--repeats", type=int, default=5)
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
