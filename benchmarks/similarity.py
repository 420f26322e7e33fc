"""Benchmark exact top-k similarity search: semrec vs NumPy vs faiss, against a GEMM ceiling.

How to run (from the project root, in the project's virtualenv; faiss-cpu is the ``bench`` extra):

    python benchmarks/similarity.py --quick     # 1k queries x 100k items: a few minutes
    python benchmarks/similarity.py             # 10k queries x {100k, 1M} items: ~2 h on 2 cores
    python benchmarks/similarity.py --threads 2 --repeats 5 --queries 2000 --items 100000,1000000
    python benchmarks/similarity.py --quick --isa avx2   # emulate an AVX2-only CPU (see _bench.py)
    python benchmarks/similarity.py --dims 384 --ks 100 --exclude 0 --peers faiss   # one row

What it measures. Every configuration (items x dim x k, without and with exclusion) solves the
same problem: exact top-k by inner product of L2-normalised float32 queries against
L2-normalised float32 items, i.e. cosine similarity. The methods, side by side:

* semrec: ``semrec.similarity.topk(Q, X, k, metric="dot", exclude=csr, check_finite=False)``.
* numpy:  chunked ``Q @ X.T`` into a preallocated buffer, ``np.argpartition`` for the top k (a few
  rows per call, to keep its index array small), then a sort of the k; with exclusion the
  excluded entries of the chunk are set to -inf first.
* faiss:  ``IndexFlatIP.search`` (the index is built outside the timing). With exclusion
  ("faiss+filter") it searches ``k + max excluded per row`` and drops the excluded ids afterwards.
* GEMM:   the bare float32 matrix product of the same total shape (chunked ``np.matmul`` into a
  preallocated buffer, with NumPy's BLAS): the compute ceiling of any exact method. Reported as
  GFLOP/s = 2 * queries * items * dim / seconds, and semrec's GFLOP/s as a share of it.

The header names the CPU's features and the code path every library took (semrec's kernel
variant and register tile, each BLAS and its core type, faiss's SIMD level); with ``--isa avx2``
all of them take their AVX2 paths, which emulates an AVX2-only CPU (AMD Zen 3) on this one.

Protocol. Every library runs on ``--threads`` threads: OMP_NUM_THREADS (and the BLAS variables) are
set before numpy and faiss are imported, then ``faiss.omp_set_num_threads``,
``threadpoolctl.threadpool_limits`` (BLAS) and semrec's ``num_threads``. Within a configuration the
methods alternate: one warm-up call each, then ``--repeats`` timed rounds (each round starting with
the next method, each call after a short idle pause); the table shows the median and [min-max]
wall-clock seconds. Ratios are other method's median / semrec's median (> 1 means semrec is
faster). Once per configuration semrec's top-k scores are checked against NumPy's (max abs
difference <= 1e-4). Nothing of size queries x items is ever materialised: the NumPy paths work on
chunks of at most CHUNK_BYTES of scores.
"""

from __future__ import annotations

import _bench

KNOWN = _bench.pin_environment()

import argparse  # noqa: E402
import gc  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from importlib.metadata import version  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

try:
    import faiss
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit("faiss is missing: pip install faiss-cpu (or the project's 'bench' extra)")

import semrec  # noqa: E402
import semrec.similarity  # noqa: E402

CHUNK_BYTES = 512 * 2**20  # score buffer of the NumPy baseline and of the GEMM reference
MAX_CHUNK = 1024  # queries per chunk when the buffer allows it
PARTITION_BYTES = 8 * 2**20  # int64 indices that one np.argpartition call may return
SETTLE_SECONDS = 0.3  # idle pause before every timed call, outside the timing
TOLERANCE = 1e-4  # max abs difference between semrec's and NumPy's top-k scores
SEED = 20240601

TopK = tuple[np.ndarray, np.ndarray]  # (ids (nq, k), scores (nq, k)), best first


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="1k queries, 100k items only")
    _bench.add_common_arguments(parser, KNOWN.threads)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per method")
    parser.add_argument("--queries", type=int, help="number of queries (10000; --quick: 1000)")
    parser.add_argument("--items", type=_int_list, help="item counts (100000,1000000)")
    parser.add_argument("--dims", type=_int_list, default=[64, 384], help="dimensions (64,384)")
    parser.add_argument("--ks", type=_int_list, default=[10, 100], help="values of k (10,100)")
    parser.add_argument("--exclude", type=int, default=100, help="excluded items per query (100)")
    parser.add_argument(
        "--peers",
        type=lambda text: [p for p in text.split(",") if p],
        default=["numpy", "faiss"],
        help="peers timed beside semrec and GEMM (numpy,faiss); leaving NumPy out (the slowest) "
        "lets one 384-d row of the full shapes fit in a few minutes",
    )
    args = parser.parse_args()
    if not args.peers or not set(args.peers) <= {"numpy", "faiss"}:
        parser.error(f"--peers must name numpy and/or faiss, got {args.peers}")
    if args.queries is None:
        args.queries = 1000 if args.quick else 10_000
    if args.items is None:
        args.items = [100_000] if args.quick else [100_000, 1_000_000]
    if args.repeats < 1 or args.threads < 1 or args.queries < 1:
        parser.error("--repeats, --threads and --queries must be >= 1")
    if max(args.ks) + args.exclude > min(args.items):
        parser.error("every item count must be at least max(k) + --exclude")
    return args


def _int_list(text: str) -> list[int]:
    return [int(float(x)) for x in text.split(",") if x]


def chunk_rows(n_items: int) -> int:
    """Queries per chunk: the largest power of two <= MAX_CHUNK whose scores fit CHUNK_BYTES."""
    rows = MAX_CHUNK
    while rows > 1 and rows * n_items * 4 > CHUNK_BYTES:
        rows //= 2
    return rows


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    """n random L2-normalised float32 rows, normalised in place block by block."""
    a = rng.standard_normal((n, dim), dtype=np.float32)
    for s in range(0, n, 1 << 16):
        block = a[s : s + (1 << 16)]
        block /= np.linalg.norm(block, axis=1, keepdims=True)
    return a


def random_exclusion(
    rng: np.random.Generator, n_queries: int, n_items: int, per_query: int
) -> sp.csr_matrix:
    """About per_query random item ids per query (fewer where a draw repeats), sorted per row."""
    rows = np.repeat(np.arange(n_queries), per_query)
    cols = rng.integers(0, n_items, size=n_queries * per_query)
    data = np.ones(rows.size, dtype=np.float32)
    m = sp.csr_matrix((data, (rows, cols)), shape=(n_queries, n_items))
    m.sum_duplicates()  # canonical: unique, sorted column ids in every row
    return m


def semrec_topk(
    q: np.ndarray, x: np.ndarray, k: int, exclude: sp.csr_matrix | None, threads: int
) -> TopK:
    return semrec.similarity.topk(
        q, x, k, metric="dot", exclude=exclude, num_threads=threads, check_finite=False
    )


def numpy_topk(
    q: np.ndarray, x: np.ndarray, k: int, exclude: sp.csr_matrix | None, buf: np.ndarray
) -> TopK:
    """Chunked exact top-k: scores of a chunk of queries, argpartition, then sort the k."""
    nq, n = q.shape[0], x.shape[0]
    chunk = buf.shape[0]
    part = max(1, PARTITION_BYTES // (8 * n))
    ids = np.empty((nq, k), dtype=np.int64)
    scores = np.empty((nq, k), dtype=np.float32)
    for s in range(0, nq, chunk):
        e = min(s + chunk, nq)
        block = buf[: e - s]
        np.matmul(q[s:e], x.T, out=block)
        if exclude is not None:
            ptr = exclude.indptr
            rows = np.repeat(np.arange(e - s), np.diff(ptr[s : e + 1]))
            block[rows, exclude.indices[ptr[s] : ptr[e]]] = -np.inf
        # argpartition returns an int64 index array as large as its input: partition a few
        # rows at a time so that it stays small (one huge allocation per chunk costs page
        # faults and THP compaction, and made this baseline both slower and erratic).
        for r in range(s, e, part):
            r_end = min(r + part, e)
            rows_scores = block[r - s : r_end - s]
            top = np.argpartition(rows_scores, n - k, axis=1)[:, n - k :]
            top.sort(axis=1)  # so that the stable sort below puts equal scores by lower id
            top_scores = np.take_along_axis(rows_scores, top, axis=1)
            order = np.argsort(-top_scores, axis=1, kind="stable")
            ids[r:r_end] = np.take_along_axis(top, order, axis=1)
            scores[r:r_end] = np.take_along_axis(top_scores, order, axis=1)
    return ids, scores


def faiss_topk(
    index: faiss.IndexFlatIP, q: np.ndarray, k: int, exclude: sp.csr_matrix | None
) -> TopK:
    """IndexFlatIP search; with exclusion search k + max excluded per row, then filter."""
    if exclude is None:
        scores, ids = index.search(q, k)
        return ids, scores
    nq, n = q.shape[0], index.ntotal
    counts = np.diff(exclude.indptr)
    scores, ids = index.search(q, k + int(counts.max()))
    # Excluded (query, item) pairs as sorted keys query * n + item: CSR rows are sorted.
    banned = np.repeat(np.arange(nq, dtype=np.int64), counts) * n + exclude.indices
    keys = np.arange(nq, dtype=np.int64)[:, None] * n + ids
    pos = np.minimum(np.searchsorted(banned, keys), banned.size - 1)
    keep = banned[pos] != keys
    keep &= np.cumsum(keep, axis=1) <= k  # the first k survivors of every row
    return ids[keep].reshape(nq, k), scores[keep].reshape(nq, k)


def gemm(q: np.ndarray, x: np.ndarray, buf: np.ndarray) -> None:
    """The bare score computation: chunked float32 Q @ X.T into a preallocated buffer."""
    chunk = buf.shape[0]
    for s in range(0, q.shape[0], chunk):
        e = min(s + chunk, q.shape[0])
        np.matmul(q[s:e], x.T, out=buf[: e - s])


def time_alternating(
    methods: dict[str, Callable[[], TopK | None]], repeats: int
) -> tuple[dict[str, list[float]], dict[str, TopK | None]]:
    """One warm-up call per method, then `repeats` rounds that call every method in turn.

    Each round starts one method later than the previous one, and every call is preceded by a
    pause of SETTLE_SECONDS: OpenBLAS worker threads busy-wait for a while after a product, and
    without the pause they would steal a core from whichever method runs next.
    """
    results = {name: fn() for name, fn in methods.items()}
    times: dict[str, list[float]] = {name: [] for name in methods}
    names = list(methods)
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            time.sleep(SETTLE_SECONDS)
            t0 = time.perf_counter()
            methods[name]()
            times[name].append(time.perf_counter() - t0)
    return times, results


def fmt_time(ts: list[float]) -> str:
    return f"{statistics.median(ts):.3g} [{min(ts):.3g}–{max(ts):.3g}]"


def fmt_count(n: int) -> str:
    for unit, div in (("M", 1_000_000), ("k", 1_000)):
        if n >= div and n % (div // 10) == 0:
            return f"{n / div:g}{unit}"
    return str(n)


def machine_header(args: argparse.Namespace) -> str:
    chunks = ", ".join(f"{chunk_rows(n)} at {fmt_count(n)} items" for n in args.items)
    t = args.threads
    load = os.getloadavg()[0]
    return "\n".join(
        [
            "semrec.similarity.topk benchmark",
            _bench.machine_line(),
            _bench.paths_line(),
            f"versions : semrec {_bench.semrec_version()}, numpy {np.__version__}, "
            f"faiss {faiss.__version__}, scipy {version('scipy')}",
            f"load     : {load:.2f} (1-min load average at the start; the last line measures "
            "what else ran during the benchmark)",
            f"threads  : {t} for all — semrec num_threads={t}, OMP_NUM_THREADS="
            f"{os.environ['OMP_NUM_THREADS']}, faiss.omp_set_num_threads({t}), "
            f"threadpool_limits({t}) for BLAS",
            f"problem  : {args.queries} queries, L2-normalised float32, metric='dot' (= cosine); "
            "semrec timed with check_finite=False",
            f"exclusion: ~{args.exclude} random item ids per query (CSR); faiss+filter searches "
            "k + max excluded per row, then drops them",
            f"numpy    : chunked Q @ X.T (queries per chunk: {chunks}) + argpartition (a few rows "
            "at a time) + sort of the k; "
            "GEMM = the same chunked np.matmul alone",
            f"timing   : methods alternate (rotating order), 1 warm-up each, then median "
            f"[min–max] of {args.repeats} runs, seconds; a {SETTLE_SECONDS:g} s pause before "
            "each call lets spinning thread pools (OpenBLAS) go idle",
            "ratios   : vs faiss = faiss s / semrec s, vs numpy = numpy s / semrec s "
            "(> 1: semrec is faster)",
            "GFLOP/s  : 2·queries·items·dim / median s; % GEMM = semrec GFLOP/s / GEMM GFLOP/s",
            f"ok       : semrec's top-k scores match {args.peers[0]}'s within {TOLERANCE:g} "
            "(checked on the warm-up results)",
            f"peers    : {', '.join(args.peers)} (a peer left out shows nan)",
        ]
    )


COLUMNS = [
    ("items", 5), ("dim", 4), ("k", 4), ("excl", 4), ("semrec s", 25), ("numpy s", 25),
    ("faiss s", 33), ("vs faiss", 8), ("vs numpy", 8), ("semrec GF/s", 11), ("GEMM GF/s", 9),
    ("% GEMM", 6), ("ok", 2),
]  # fmt: skip


def table_row(cells: list[str]) -> str:
    return " | ".join(
        c.rjust(w) if i < 4 or i > 6 else c.ljust(w)
        for i, (c, (_, w)) in enumerate(zip(cells, COLUMNS, strict=True))
    )


def bench_config(
    q: np.ndarray,
    x: np.ndarray,
    index: faiss.IndexFlatIP,
    buf: np.ndarray,
    k: int,
    exclude: sp.csr_matrix | None,
    args: argparse.Namespace,
) -> str:
    """Times the four methods on one configuration and returns its table row."""
    peers: dict[str, Callable[[], TopK | None]] = {
        "numpy": lambda: numpy_topk(q, x, k, exclude, buf),
        "faiss": lambda: faiss_topk(index, q, k, exclude),
    }
    methods: dict[str, Callable[[], TopK | None]] = {
        "semrec": lambda: semrec_topk(q, x, k, exclude, args.threads),
        **{name: peers[name] for name in ("numpy", "faiss") if name in args.peers},
        "gemm": lambda: gemm(q, x, buf),
    }
    times, results = time_alternating(methods, args.repeats)
    # The reference scores: NumPy's when it ran, otherwise faiss's (both exact, BLAS-summed).
    (s_ids, s_scores), (_, n_scores) = results["semrec"], results[args.peers[0]]
    ok = (
        s_ids.dtype == np.int32
        and s_scores.dtype == np.float32
        and s_scores.shape == n_scores.shape == (q.shape[0], k)
        and bool(np.all(np.abs(s_scores - n_scores) <= TOLERANCE))
    )
    med = {name: statistics.median(ts) for name, ts in times.items()}
    skipped = {"numpy": [float("nan")], "faiss": [float("nan")]}
    times = {**skipped, **times}
    med = {**{name: float("nan") for name in skipped}, **med}
    gflop = 2.0 * q.shape[0] * x.shape[0] * x.shape[1] / 1e9
    return table_row(
        [
            fmt_count(x.shape[0]),
            str(x.shape[1]),
            str(k),
            "yes" if exclude is not None else "no",
            fmt_time(times["semrec"]),
            fmt_time(times["numpy"]),
            fmt_time(times["faiss"]) + (" +filter" if exclude is not None else ""),
            f"{med['faiss'] / med['semrec']:.2f}",
            f"{med['numpy'] / med['semrec']:.2f}",
            f"{gflop / med['semrec']:.1f}",
            f"{gflop / med['gemm']:.1f}",
            f"{100 * med['gemm'] / med['semrec']:.0f}%",
            "✓" if ok else "✗",
        ]
    )


def main() -> None:
    args = parse_args()
    rng = np.random.default_rng(SEED)
    semrec.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    start = _bench.cpu_seconds()
    with threadpool_limits(limits=args.threads):
        print(machine_header(args))
        print()
        print(table_row([name for name, _ in COLUMNS]))
        print("-+-".join("-" * w for _, w in COLUMNS), flush=True)
        for n_items in args.items:
            exclude = random_exclusion(rng, args.queries, n_items, args.exclude)
            buf = np.empty((min(chunk_rows(n_items), args.queries), n_items), dtype=np.float32)
            for dim in args.dims:
                x = unit_rows(rng, n_items, dim)
                q = unit_rows(rng, args.queries, dim)
                index = faiss.IndexFlatIP(dim)
                index.add(x)
                for k in args.ks:
                    for excl in (None, exclude) if args.exclude > 0 else (None,):
                        print(bench_config(q, x, index, buf, k, excl, args), flush=True)
                del x, q, index
                gc.collect()
    print()
    print(_bench.contention_note(start))


if __name__ == "__main__":
    main()
