"""PQIndex's code scan against the faiss fast scan it replaced, in one process.

How to run (from the project root, in the project's virtualenv; faiss-cpu is the ``bench`` extra):

    python benchmarks/pq_scan.py [--items 1000000] [--queries 60] [--isa avx2]

Both scan the same 4-bit codes of the same codebooks (a ``semrec.PQIndex`` built over a
MiniLM-shaped catalogue, ``benchmarks/_catalogues.py``) and propose 1,000 items per query, with
no re-scoring: semrec's OpenMP kernel on ``--threads`` threads, and faiss ``IndexPQFastScan`` in
two shards (item ``i`` in shard ``i % 2``, 500 each) searched side by side on a Python thread
and the calling one, as semrec's PQIndex did before its own scan. The two run query by query in
turn (alternating which goes first), then each back to back; p50 and min per query, and the
ratio of p50s. The faiss side needs ``--threads 2`` to be the old design.
"""

from __future__ import annotations

import _bench

KNOWN = _bench.pin_environment()

import argparse  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402

import numpy as np  # noqa: E402
from _catalogues import DIM, catalogue  # noqa: E402

import semrec  # noqa: E402
from semrec._native import core  # noqa: E402

DEPTH = 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    _bench.add_common_arguments(parser, KNOWN.threads)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=60)
    args = parser.parse_args()
    import faiss

    print(_bench.machine_line())
    print(_bench.paths_line())
    x, queries = catalogue("minilm", args.items, args.queries, 5)
    index = semrec.ItemIndex(x, metric="dot", num_threads=args.threads, copy=False)
    pq = semrec.PQIndex(index, num_threads=args.threads)
    codes = pq.code_bytes()  # header (magic, m, dims per sub-space, items), codebooks, blocks
    m, dsub, _ = (int(v) for v in codes[16:40].view("<u8"))
    book = codes[40 : 40 + m * 16 * dsub * 4].view("<f4").reshape(m, 16, dsub).copy()
    blocks = codes[40 + book.size * 4 :].copy()
    quantizer = faiss.ProductQuantizer(DIM, pq.m, 4)
    faiss.copy_array_to_vector(book.reshape(-1), quantizer.centroids)
    shards = []
    for s in range(2):
        shard = faiss.IndexPQFastScan(DIM, pq.m, 4, faiss.METRIC_INNER_PRODUCT, 64)
        shard.pq = quantizer
        shard.is_trained = True
        shard.add(x[s::2])
        shards.append(shard)
    faiss.omp_set_num_threads(1)
    pool = ThreadPoolExecutor(1)

    def faiss_two_shards(q: np.ndarray) -> None:
        other = pool.submit(shards[1].search, q, DEPTH // 2)
        shards[0].search(q, DEPTH // 2)
        other.result()

    def semrec_scan(q: np.ndarray) -> None:
        core.pq_search(q, book, blocks, len(x), DEPTH, args.threads)

    methods = {"semrec scan": semrec_scan, "faiss fast scan, 2 shards": faiss_two_shards}
    for fn in methods.values():
        fn(queries[:1])  # warm-up
    turns: dict[str, list[float]] = {name: [] for name in methods}
    for i in range(args.queries):
        names = list(methods) if i % 2 else list(methods)[::-1]
        for name in names:
            t0 = time.perf_counter()
            methods[name](queries[i : i + 1])
            turns[name].append(time.perf_counter() - t0)
    rows = []
    for name, fn in methods.items():
        alone = []
        for i in range(args.queries):
            t0 = time.perf_counter()
            fn(queries[i : i + 1])
            alone.append(time.perf_counter() - t0)
        rows.append((name, turns[name], alone))
    print(
        f"\n{args.items} x {DIM}, m={pq.m} ({pq.m // 2} bytes per item), {DEPTH} proposed per "
        f"query, {args.queries} queries, {args.threads} threads; ms per query"
    )
    print("scan                       | in turn p50 |  min  | back to back p50 |  min")
    print("---------------------------+-------------+-------+------------------+------")
    for name, a, b in rows:
        print(
            f"{name:<26} | {np.median(a) * 1e3:11.3f} | {min(a) * 1e3:5.3f} | "
            f"{np.median(b) * 1e3:16.3f} | {min(b) * 1e3:5.3f}"
        )
    (_, a0, b0), (_, a1, b1) = rows
    print(
        f"faiss / semrec (p50): {np.median(a1) / np.median(a0):.2f}x in turn, "
        f"{np.median(b1) / np.median(b0):.2f}x back to back"
    )


if __name__ == "__main__":
    main()
