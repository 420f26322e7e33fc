"""semrec.distributed on a LocalCluster (2 worker processes x 1 thread) beside one process with
2 threads: seconds per operation and the overhead ratio (distributed / single).

Usage: python benchmarks/distributed.py [--size L|M|S] [--quick] [--repeats 5]
       [--ops encode,profiles,recommend,als,evaluate,broadcast] [--cache /tmp/semrec-bench]

Protocol: ../shared/PROTOCOL.md (1 warm-up, then the median and min-max of --repeats runs, the
two sides alternating). --quick uses synthetic M instead of L. Both sides get the same data
(the synthetic set's warm split, train for everything, test for evaluate); the distributed side
reads it from Parquet files written in user order (index ``user`` with known divisions, so no
operation but the item side of ALS shuffles). Every distributed operation includes sending its
model / item matrix to the workers; results stay on the workers (persisted) where a real job
would write them out (profiles), and are gathered where they are small (top-k lists, metrics).

- encode: --texts texts (synthetic item text), TextEncoder loaded beforehand on both sides.
- profiles: user_profiles of every train user, 384-dim unit item embeddings.
- recommend: ALS (64 factors) top-10 for --users users; with the model scattered per call, and
  with a model future scattered once beforehand.
- als: fits of 2 iterations (64 factors); the second iteration's time (the callback's; the
  distributed one includes both broadcasts and gathers) and the whole fit; and fit_als's
  one-off setup (CSR blocks, the shuffle by item, gathering the interactions at the end).
- evaluate: semrec.evaluate vs semrec.distributed.evaluate on the test users among the first
  --users users, k = (10, 20).
- broadcast: client.scatter(broadcast=True) of the user factors to both workers.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ["OMP_NUM_THREADS"] = "2"  # the single-process side; workers get their share
# This file's name would shadow the distributed package: take its folder off the path.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import dask.array as da  # noqa: E402
import dask.dataframe as dd  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from distributed import Client, LocalCluster, wait  # noqa: E402

import semrec  # noqa: E402
from semrec import distributed as sd  # noqa: E402
from semrec.datasets import synthetic  # noqa: E402
from semrec.interest import user_profiles  # noqa: E402
from semrec.split import last_fraction  # noqa: E402


def synthetic_cached(size: str, cache: Path) -> semrec.datasets.Dataset:
    """benchmarks/als.py's cached synthetic data (the same .npz files)."""
    spec = importlib.util.spec_from_file_location("bench_als", HERE / "als.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.synthetic_cached(size, cache)


SIZES = {"S": "1k x 2k x 100k", "M": "100k x 20k x 5M", "L": "1M x 100k x 50M"}


def write_parquet(m: sp.csr_array, path: Path, parts: int) -> None:
    """Rows of ``m`` as (user, item, weight) files in user order, one per range of users."""
    if path.exists():
        return
    tmp = path.with_suffix(".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, m.shape[0], parts + 1).astype(np.int64)
    for p in range(parts):
        block = m[bounds[p] : bounds[p + 1]].tocoo()
        table = pa.table(
            {
                "user": (block.row + bounds[p]).astype(np.int32),
                "item": block.col.astype(np.int32),
                "weight": block.data.astype(np.float32),
            }
        )
        pq.write_table(table, tmp / f"part.{p:03d}.parquet")
    tmp.rename(path)


def read_frame(path: Path) -> dd.DataFrame:
    frame = dd.read_parquet(path, index="user", calculate_divisions=True)
    assert frame.known_divisions, "the Parquet statistics should give the divisions"
    return frame


def measure(
    single: Callable[[], object], dist: Callable[[], object], repeats: int
) -> tuple[list[float], list[float]]:
    """Alternating runs; the first of each side is the warm-up and is dropped."""
    a, b = [], []
    for _ in range(repeats + 1):
        for fn, out in ((single, a), (dist, b)):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
    return a[1:], b[1:]


def fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}–{max(values):.3f})"


def row(name: str, a: list[float], b: list[float]) -> str:
    ratio = statistics.median(b) / statistics.median(a)
    return f"| {name} | {fmt(a)} | {fmt(b)} | {ratio:.2f}× |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="L", choices=tuple(SIZES))
    parser.add_argument("--quick", action="store_true", help="synthetic M instead of L")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ops", default="encode,profiles,recommend,als,evaluate,broadcast")
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--parts", type=int, default=8, help="partitions (Parquet files)")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/semrec-bench"))
    args = parser.parse_args()
    size = "M" if args.quick else args.size
    ops = set(args.ops.split(","))
    semrec.set_num_threads(2)

    data = synthetic_cached(size, args.cache)
    train, test = last_fraction(data)
    n_users, n_items = train.interactions.shape
    base = args.cache / f"dask-{size}"
    write_parquet(train.interactions, base.with_name(base.name + "-train"), args.parts)
    write_parquet(test.interactions, base.with_name(base.name + "-test"), args.parts)
    train_frame = read_frame(base.with_name(base.name + "-train"))
    test_frame = read_frame(base.with_name(base.name + "-test"))
    rows = []
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        print(
            f"synthetic {size} ({SIZES[size]}; train {train.interactions.nnz:,} interactions), "
            f"single process: 2 semrec threads; Dask: LocalCluster 2 workers x 1 thread "
            "(semrec threads per task: "
            f"{sorted(set(sd._cluster.worker_threads(client, None).values()))}), "
            f"median (min–max) of {args.repeats} after 1 warm-up",
            flush=True,
        )
        if "encode" in ops:
            texts = synthetic(1000, args.texts, 10_000, random_state=0).items["text"].tolist()
            encoder = semrec.TextEncoder(num_threads=2)
            frame = dd.from_pandas(pd.DataFrame({"text": texts}), npartitions=4)

            def dist_encode() -> None:
                out = sd.encode(frame, "text", client=client)
                client.compute(out).result()

            a, b = measure(lambda: encoder.encode(texts), dist_encode, args.repeats)
            rows.append(row(f"encode {args.texts:,} texts", a, b))
            print(rows[-1], flush=True)
        if "profiles" in ops:
            rng = np.random.default_rng(0)
            emb = rng.standard_normal((n_items, 384), dtype=np.float32)
            emb /= np.linalg.norm(emb, axis=1, keepdims=True)

            def dist_profiles() -> None:
                persisted = client.persist(sd.interest_profiles(train_frame, emb, client=client))
                wait(persisted)
                del persisted

            a, b = measure(
                lambda: user_profiles(train.interactions, emb), dist_profiles, args.repeats
            )
            rows.append(row(f"profiles, {n_users:,} users x 384", a, b))
            print(rows[-1], flush=True)
        if {"recommend", "evaluate", "broadcast"} & ops:
            model = semrec.ALS(factors=64, iterations=3, random_state=0, show_progress=False)
            model.fit(train.interactions)
        if "recommend" in ops:
            users = np.arange(min(args.users, n_users), dtype=np.int32)
            dusers = da.from_array(users, chunks=max(1, users.size // 4))

            def dist_recommend(sent: object) -> None:
                ids, scores = sd.recommend(sent, dusers, k=10, client=client)
                client.gather(client.compute([ids, scores]))

            a, b = measure(
                lambda: model.recommend(users, k=10), lambda: dist_recommend(model), args.repeats
            )
            rows.append(row(f"recommend {users.size:,} users, model sent per call", a, b))
            print(rows[-1], flush=True)
            sent = client.scatter(model, broadcast=True, hash=False)
            a, b = measure(
                lambda: model.recommend(users, k=10), lambda: dist_recommend(sent), args.repeats
            )
            rows.append(row(f"recommend {users.size:,} users, model scattered once", a, b))
            print(rows[-1], flush=True)
            del sent
        if "als" in ops:
            # Two iterations per fit: the second one's time is the steady-state iteration.
            single_iter, dist_iter, setup = [], [], []

            def single_als() -> None:
                semrec.ALS(factors=64, iterations=2, random_state=0, show_progress=False).fit(
                    train.interactions, callback=lambda i, s, loss: single_iter.append(s)
                )

            def dist_als() -> None:
                start = time.perf_counter()
                sd.fit_als(
                    train_frame,
                    factors=64,
                    iterations=2,
                    random_state=0,
                    shape=(n_users, n_items),
                    client=client,
                    show_progress=False,
                    callback=lambda i, s, loss: dist_iter.append(s),
                )
                setup.append(time.perf_counter() - start - sum(dist_iter[-2:]))

            a, b = measure(single_als, dist_als, args.repeats)
            rows.append(row("ALS iteration (64 factors)", single_iter[3::2], dist_iter[3::2]))
            print(rows[-1], flush=True)
            rows.append(row("ALS fit, 2 iterations, incl. setup", a, b))
            print(rows[-1], flush=True)
            print(f"  fit_als setup (blocks, item shuffle, gather): {fmt(setup[1:])} s", flush=True)
        if "evaluate" in ops:
            limit = min(args.users, n_users)
            first = test_frame.loc[: limit - 1]  # index-based: keeps the known divisions

            def single_eval() -> pd.DataFrame:
                return semrec.evaluate(model, train, test, users=np.arange(limit))

            def dist_eval() -> pd.DataFrame:
                return sd.evaluate(model, train_frame, first, client=client)

            a, b = measure(single_eval, dist_eval, args.repeats)
            diff = (single_eval() - dist_eval()).abs().to_numpy().max()
            rows.append(row(f"evaluate, test users among the first {limit:,}", a, b))
            print(rows[-1], flush=True)
            print(f"  evaluate: largest metric difference {diff:.1e}", flush=True)
        if "broadcast" in ops:
            factors = model.user_factors_
            mb = factors.nbytes / 1e6
            a, b = measure(
                lambda: factors.copy(),
                lambda: client.scatter(factors, broadcast=True, hash=False).result(),
                args.repeats,
            )
            rows.append(row(f"broadcast user factors ({mb:.0f} MB; single: a copy)", a, b))
            print(rows[-1], flush=True)
    print()
    print("| operation | single, 2 threads s | Dask 2 x 1 s | overhead |")
    print("|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
