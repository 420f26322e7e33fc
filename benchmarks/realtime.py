"""Benchmark real-time recommendation: one click (update + top-10), and one query over a catalogue.

How to run (from the project root, in the project's virtualenv; faiss-cpu is the ``bench`` extra):

    python benchmarks/realtime.py                 # 20k-item clicks, then 1M x 384 single queries
    python benchmarks/realtime.py --quick         # 200k items for the single-query part
    python benchmarks/realtime.py --isa avx2      # emulate an AVX2-only CPU (see _bench.py)
    python benchmarks/realtime.py --only clicks   # one part (repeatable: clicks, scan, ann)

Part 1, the click. A ContentRecommender over ``--click-items`` items (384-d, unit length, in 20
topics) is fitted on seeded synthetic interactions; then the same ``--clicks`` random (user,
item) clicks are replayed by every method, which each keep their own state:

* semrec model: ``model.update(user, item)`` then ``model.recommend(user, k=10)`` (seen items
  excluded), the model as it is (its items in an exact ItemIndex with int8 panels, the
  candidates re-scored exactly: ContentRecommender's default).
* semrec model f16 / f32: the same with ``model.use_index("exact", storage="float16")`` /
  ``"float32"``.
* semrec model hnsw: the same with ``model.use_index("hnsw")`` (approximate; faiss): its
  recall@10 against NumPy's exact lists is the last column.
* semrec index: ``model.update(user, item)`` (returns the new profile) then
  ``semrec.topk(profile, index, 10, exclude=seen_ids)`` over an ``ItemIndex`` of the
  embeddings, the user's seen ids a plain sorted array: the kernel path without the model.
* numpy: the reference. Profile sum += weight * embedding, normalise, ``E @ p``, seen items set
  to -inf, ``argpartition`` and a sort of the 10 (by score, then id). ``numpy 1 thread``: the
  same with the BLAS on one thread for the click (``E @ p`` on two threads waits for the
  second one, which a busy sibling core delays; the ratios stay to the two-thread row).

Each click runs the methods in a new random order (seeded; see ``run_alternating``); the table
gives p50 / p99 / mean latency, the ratio of medians to NumPy (< 1: semrec faster), min-max of
that ratio over 5 equal slices of the clicks, the ratio to ``numpy 1 thread``, how many of the
clicks gave exactly NumPy's top-10 ids (the rest, if any, differ only at a score tie within
float32 rounding, checked) and the mean recall@10 against NumPy. Then every method replays the
next ``--clicks`` clicks back to back, the methods in turn (what a service running only that
method sees: no other method's arrays in the cache or threads on the cores), in a second table
(p50, p99 and the ratio to NumPy's back-to-back clicks); the recall and identical-list columns
count both runs' clicks.

Part 2, one query. Exact top-10 of single queries over ``--items`` items x 384 (unit rows): the
raw matrix (``topk(q, X, 10, metric="dot", check_finite=False)``), an ``ItemIndex`` in float32,
float16 and int8 storage (exact answers each: asserted equal to the float32 index), NumPy
(``X @ q`` + argpartition + sort) and faiss ``IndexFlatIP``. Methods alternate query by query.
GB/s = bytes of the float32 matrix / time (the float16 and int8 indexes stream a half and a
quarter of them; their "streamed" rate is shown too). The memory bandwidth probe is a plain
NumPy ``X.sum()`` over the same array (one thread), and the same sum split over ``--threads``
Python threads (NumPy releases the GIL): "% of bandwidth" divides by the larger of the two.

Part 3, approximate. ``--ann-items`` items (100k; --quick 50k) of each ``--ann-data`` catalogue
(``_catalogues.py``: ``minilm`` shaped like real sentence embeddings, ``topics`` and ``gaussian``
as hard and worst cases), queries drawn fresh from the same generator: single-query top-10
through the exact ``ItemIndex`` in float16 (the reference lists), float32 and int8 (exact
answers each), and through each ``--ann-kind``: ``hnsw``, a ``semrec.HNSWIndex`` over the
float16 index (faiss HNSW, ``--ann-m``, ``--ann-ef-construction``) at every ``--ef`` value of
``ef_search``; ``pq``, a
``semrec.PQIndex`` (semrec's scan of 4-bit product-quantised codes of every item, ``--pq-m``
sub-spaces, codebooks by faiss's k-means, built in the run) at every ``--rerank``
value (items re-scored exactly). Returned scores are exact. Methods in a random order query by
query: recall@10 against the exact lists (mean and worst query), p50/p99 and the speed-up
(ratio of p50s) over each exact index: float32, float16 and int8. A second table times each
method's queries back to back (no other method's threads still spinning on the second core).
Building an HNSW graph of 1M items takes most of an hour on 2 cores: ``--ann-graphs DIR
--ann-build-only`` builds and saves them (run it under the shared lock), the same command
without ``--ann-build-only`` loads them and times only the queries (the build time printed is
the saved one).
"""

from __future__ import annotations

import _bench

KNOWN = _bench.pin_environment()

import argparse  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from _catalogues import DIM, KINDS, catalogue  # noqa: E402
from threadpoolctl import ThreadpoolController, threadpool_limits  # noqa: E402

import semrec  # noqa: E402

try:
    import faiss
except ImportError:  # pragma: no cover - depends on the environment
    faiss = None

SEED = 20240601


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _bench.add_common_arguments(parser, KNOWN.threads)
    parser.add_argument("--quick", action="store_true", help="200k items in part 2")
    parser.add_argument("--click-items", type=int, default=20_000)
    parser.add_argument("--clicks", type=int, default=300)
    parser.add_argument("--items", type=int, help="items in part 2 (1M; --quick: 200k)")
    parser.add_argument("--queries", type=int, default=60, help="single queries in part 2")
    parser.add_argument("--ann-items", type=int, help="items in part 3 (100k; --quick: 50k)")
    parser.add_argument(
        "--ann-data", default="minilm,topics,gaussian", help=f"catalogues of part 3: {KINDS}"
    )
    parser.add_argument("--ef", default="16,32,64,128,256,512", help="ef_search values, part 3")
    parser.add_argument("--ann-kind", default="hnsw,pq", help="approximate indexes: hnsw, pq")
    parser.add_argument("--rerank", default="100,200,500,1000,2000", help="PQIndex rerank values")
    parser.add_argument("--pq-m", type=int, help="PQIndex sub-spaces (default: dim / 4)")
    parser.add_argument(
        "--tune",
        type=float,
        help="part 3: also tune each approximate index (its tune method) to this recall@10 on "
        "--tune-queries further draws, then time it on the usual queries (the catalogue's "
        "random draws then differ from a run without --tune)",
    )
    parser.add_argument("--tune-queries", type=int, default=200)
    parser.add_argument("--ann-m", type=int, default=32, help="HNSW graph degree (m)")
    parser.add_argument("--ann-ef-construction", type=int, default=100)
    parser.add_argument("--ann-graphs", help="directory: save built graphs there, load them next")
    parser.add_argument(
        "--ann-build-only", action="store_true", help="part 3: build (and save) the graphs only"
    )
    parser.add_argument(
        "--only", choices=["clicks", "scan", "ann"], action="append", help="run these parts only"
    )
    args = parser.parse_args()
    if args.items is None:
        args.items = 200_000 if args.quick else 1_000_000
    if args.ann_items is None:
        args.ann_items = 50_000 if args.quick else 100_000
    if not set(args.ann_kind.split(",")) <= {"hnsw", "pq"}:
        parser.error(f"--ann-kind takes hnsw and/or pq, got {args.ann_kind!r}")
    return args


def topic_vectors(rng: np.random.Generator, topics: np.ndarray, n_topics: int) -> np.ndarray:
    """Unit rows: a topic's direction plus as much noise (within-topic cosine about 0.5)."""
    centres = rng.standard_normal((n_topics, DIM), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((topics.size, DIM), dtype=np.float32)
    for s in range(0, topics.size, 1 << 16):
        block = rng.standard_normal((min(1 << 16, topics.size - s), DIM), dtype=np.float32)
        block *= np.float32(1 / np.sqrt(DIM))
        block += centres[topics[s : s + block.shape[0]]]
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[s : s + block.shape[0]] = block
    return out


def percentiles(ts: list[float]) -> tuple[float, float, float]:
    a = np.asarray(ts)
    return float(np.percentile(a, 50)), float(np.percentile(a, 99)), float(a.mean())


def time_back_to_back(
    methods: dict[str, Callable[[int], object]], cases: range, warm_up: int | None = None
) -> dict[str, list[float]]:
    """Each method's cases one after another, the methods in turn (after an untimed
    ``warm_up`` case, if given): seconds per case."""
    times: dict[str, list[float]] = {}
    for name, fn in methods.items():
        if warm_up is not None:
            fn(warm_up)
        times[name] = []
        for case in cases:
            t0 = time.perf_counter()
            fn(case)
            times[name].append(time.perf_counter() - t0)
    return times


def run_alternating(methods: dict[str, Callable[[int], object]], n: int) -> dict[str, list[float]]:
    """Calls every method on case 0..n-1, in a new (seeded) random order for every case.

    Not a fixed rotation: with one, a method always follows the same other method, and on two
    cores what that one leaves behind decides the time (its worker threads still spinning on
    the second core: OpenBLAS after NumPy, an OpenMP runtime after semrec or faiss; its arrays
    in the cache). Measured: ``recommend`` over 20k x 384 took 3.0 ms right after NumPy's
    ``E @ p`` and 1.7 ms right after another ``recommend``; so the first method of the list,
    always after NumPy in a rotation, was the slow one.
    """
    times: dict[str, list[float]] = {name: [] for name in methods}
    names = list(methods)
    rng = np.random.default_rng(SEED + 7)
    for case in range(n):
        for j in rng.permutation(len(names)):
            name = names[j]
            t0 = time.perf_counter()
            methods[name](case)
            times[name].append(time.perf_counter() - t0)
    return times


# ---------------------------------------------------------------------------------------------
# Part 1: clicks


class NumpyClicks:
    """The reference: profile sums, a GEMV, a mask and argpartition."""

    def __init__(self, emb: np.ndarray, history: sp.csr_array) -> None:
        self.emb = emb
        self.sums = (history @ emb.astype(np.float64)).astype(np.float64)
        self.seen = [history.indices[history.indptr[u] : history.indptr[u + 1]].copy()
                     for u in range(history.shape[0])]  # fmt: skip

    def click(self, user: int, item: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        self.sums[user] += self.emb[item]
        if item not in self.seen[user]:
            self.seen[user] = np.append(self.seen[user], item)
        p = self.sums[user]
        p = (p / np.linalg.norm(p)).astype(np.float32)
        scores = self.emb @ p
        scores[self.seen[user]] = -np.inf
        top = np.argpartition(-scores, k)[:k]
        order = np.lexsort((top, -scores[top]))
        return top[order], scores[top[order]]


def bench_clicks(args: argparse.Namespace) -> list[str]:
    rng = np.random.default_rng(SEED)
    n_items = args.click_items
    ds = semrec.datasets.synthetic(5_000, n_items, 100_000, with_text=False, random_state=SEED)
    history = sp.csr_array(ds.interactions)
    history.data[:] = 1.0  # one click, weight 1, as update() records
    emb = topic_vectors(rng, ds.items["topic"].to_numpy(), ds.items["topic"].nunique())
    # Case 0 warms up; 1..clicks run in the mixed order, the rest back to back.
    users = rng.integers(0, history.shape[0], size=2 * args.clicks + 1)
    items = rng.integers(0, n_items, size=2 * args.clicks + 1)

    def model() -> semrec.ContentRecommender:
        return semrec.ContentRecommender(emb, show_progress=False, num_threads=args.threads).fit(
            history
        )

    m_model, m_f16, m_f32, m_index = model(), model(), model(), model()
    m_f16.use_index("exact", storage="float16")
    m_f32.use_index("exact", storage="float32")
    m_hnsw = model().use_index("hnsw") if faiss is not None else None
    index = semrec.ItemIndex(m_index.item_embeddings_, metric="dot", num_threads=args.threads)
    seen = [history.indices[history.indptr[u] : history.indptr[u + 1]].copy()
            for u in range(history.shape[0])]  # fmt: skip
    reference = NumpyClicks(m_model.item_embeddings_, history)
    single = NumpyClicks(m_model.item_embeddings_, history)
    blas = ThreadpoolController().select(user_api="blas").lib_controllers
    results: dict[str, list] = {}

    def via(name: str, m: semrec.ContentRecommender) -> Callable[[int], None]:
        def click(c: int) -> None:
            m.update(int(users[c]), int(items[c]))
            results.setdefault(name, []).append(m.recommend(int(users[c]), k=10))

        return click

    def via_index(c: int) -> None:
        u, i = int(users[c]), int(items[c])
        profile = m_index.update(u, i)
        if i not in seen[u]:
            seen[u] = np.sort(np.append(seen[u], i))
        results.setdefault("semrec index", []).append(
            semrec.topk(profile, index, 10, exclude=seen[u], num_threads=args.threads)
        )

    def via_numpy(c: int) -> None:
        results.setdefault("numpy", []).append(reference.click(int(users[c]), int(items[c])))

    methods = {"semrec model": via("semrec model", m_model)}
    methods["semrec model f16"] = via("semrec model f16", m_f16)
    methods["semrec model f32"] = via("semrec model f32", m_f32)
    if m_hnsw is not None:
        methods["semrec model hnsw"] = via("semrec model hnsw", m_hnsw)

    def via_numpy_1(c: int) -> None:  # the BLAS switched to one thread (a ctypes call) and back
        for lib in blas:
            lib.set_num_threads(1)
        results.setdefault("numpy 1 thread", []).append(single.click(int(users[c]), int(items[c])))
        for lib in blas:
            lib.set_num_threads(args.threads)

    methods.update({"semrec index": via_index, "numpy": via_numpy, "numpy 1 thread": via_numpy_1})
    for fn in methods.values():  # warm-up click (case 0), not timed
        fn(0)
    for r in results.values():
        r.clear()
    times = run_alternating({n: (lambda c, f=f: f(c + 1)) for n, f in methods.items()}, args.clicks)
    # What a service running only one method sees: its clicks one after another.
    alone = time_back_to_back(methods, range(args.clicks + 1, 2 * args.clicks + 1))

    ref_ids = [ids for ids, _ in results["numpy"]]
    ref_scores = [s for _, s in results["numpy"]]  # both runs' lists, in click order
    rows = []
    med_np = statistics.median(times["numpy"])
    med_np1 = statistics.median(times["numpy 1 thread"])
    slices = np.array_split(np.arange(args.clicks), 5)
    for name in methods:
        same = tie_only = 0
        hits = 0
        for c, (ids, scores) in enumerate(results[name]):
            hits += np.intersect1d(ids, ref_ids[c]).size
            if np.array_equal(ids, ref_ids[c]):
                same += 1
            elif np.allclose(scores, ref_scores[c], rtol=0, atol=2e-6):
                tie_only += 1
        p50, p99, mean = percentiles(times[name])
        ratios = [
            statistics.median(np.take(times[name], part))
            / statistics.median(np.take(times["numpy"], part))
            for part in slices
        ]
        rows.append(
            f"{name:<17} | {p50 * 1e3:7.3f} | {p99 * 1e3:7.3f} | {mean * 1e3:7.3f} | "
            f"{statistics.median(times[name]) / med_np:9.2f} | {min(ratios):4.2f}-"
            f"{max(ratios):4.2f} | {statistics.median(times[name]) / med_np1:11.2f} | "
            f"{hits / (10 * len(results[name])):6.3f} | {same}/{len(results[name])}"
            + (f" (+{tie_only} at float32 ties)" if tie_only else "")
        )
    med_alone = statistics.median(alone["numpy"])
    rows += [
        "",
        f"Back to back: each method's next {args.clicks} clicks one after another (the methods "
        "in turn), as a service running only that method sees them",
        "method            | p50 ms  | p99 ms  | p50/numpy | /numpy 1 th",
        "------------------+---------+---------+-----------+------------",
    ]
    for name, ts in alone.items():
        p50, p99, _ = percentiles(ts)
        rows.append(
            f"{name:<17} | {p50 * 1e3:7.3f} | {p99 * 1e3:7.3f} | {p50 / med_alone:9.2f} | "
            f"{p50 / statistics.median(alone['numpy 1 thread']):11.2f}"
        )
    header = [
        f"Part 1: one click = update(user, item) + top-10, {n_items} items x {DIM} "
        f"(20 topics, unit rows), {history.shape[0]} users fitted on {history.nnz} events, "
        f"{args.clicks} clicks, methods in random order click by click (recall, identical "
        "top-10s: these and the back-to-back clicks)",
        "method            | p50 ms  | p99 ms  | mean ms | p50/numpy | min-max   | /numpy 1 th "
        "| recall | identical top-10 ids",
        "------------------+---------+---------+---------+-----------+-----------+-------------"
        "+--------+---------------------",
    ]
    return header + rows


# ---------------------------------------------------------------------------------------------
# Part 2: single queries over a large catalogue


def parallel_sum(x: np.ndarray, threads: int) -> float:
    parts = np.array_split(np.arange(x.shape[0]), threads)
    out = [0.0] * threads

    def work(j: int) -> None:
        out[j] = float(x[parts[j][0] : parts[j][-1] + 1].sum()) if parts[j].size else 0.0

    workers = [threading.Thread(target=work, args=(j,)) for j in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(out)


def numpy_top10(x: np.ndarray, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = x @ q
    top = np.argpartition(-s, 10)[:10]
    order = np.lexsort((top, -s[top]))
    return top[order], s[top[order]]


def bench_scan(args: argparse.Namespace) -> list[str]:
    rng = np.random.default_rng(SEED + 1)
    n = args.items
    topics = rng.integers(0, 200, size=n)
    x = topic_vectors(rng, topics, 200)
    index32 = semrec.ItemIndex(x, metric="dot", num_threads=args.threads)
    del x
    x = index32.vectors  # the one float32 copy everybody reads
    index16 = semrec.ItemIndex(x, metric="dot", storage="float16", num_threads=args.threads)
    index8 = semrec.ItemIndex(x, metric="dot", storage="int8", num_threads=args.threads)
    queries = topic_vectors(rng, rng.integers(0, 200, size=args.queries + 1), 200)
    flat = None
    if faiss is not None:
        flat = faiss.IndexFlatIP(DIM)
        flat.add(x)
    t = args.threads
    results: dict[str, list] = {}

    def keep(name: str, value: object) -> None:
        results.setdefault(name, []).append(value)

    methods: dict[str, Callable[[int], object]] = {
        "numpy sum (1 thread)": lambda c: x.sum(),
        f"numpy sum ({t} threads)": lambda c: parallel_sum(x, t),
        "semrec ItemIndex float32": lambda c: keep(
            "f32", semrec.topk(queries[c], index32, 10, num_threads=t)
        ),
        "semrec ItemIndex float16": lambda c: keep(
            "f16", semrec.topk(queries[c], index16, 10, num_threads=t)
        ),
        "semrec ItemIndex int8": lambda c: keep(
            "i8", semrec.topk(queries[c], index8, 10, num_threads=t)
        ),
        "semrec topk(matrix)": lambda c: semrec.topk(
            queries[c], x, 10, metric="dot", check_finite=False, num_threads=t
        ),
        "numpy X @ q + argpartition": lambda c: keep("np", numpy_top10(x, queries[c])),
    }
    if flat is not None:
        methods["faiss IndexFlatIP"] = lambda c: flat.search(queries[c][None], 10)
    for fn in methods.values():
        fn(args.queries)  # warm-up on the extra query
    results.clear()
    times = run_alternating(methods, args.queries)
    for kind in ("f16", "i8"):
        for a, b in zip(results["f32"], results[kind], strict=True):
            assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]), f"{kind} not exact"
    pairs = zip(results["f32"], results["np"], strict=True)
    agree = sum(np.array_equal(a[0], b[0]) for a, b in pairs)

    gb = x.nbytes / 1e9
    bandwidth = max(
        gb / statistics.median(times["numpy sum (1 thread)"]),
        gb / statistics.median(times[f"numpy sum ({t} threads)"]),
    )
    med32 = statistics.median(times["semrec ItemIndex float32"])
    rows = [
        f"Part 2: exact top-10 of one query over {n} x {DIM} float32 ({gb:.2f} GB), "
        f"{args.queries} queries, methods in random order query by query; ItemIndex float16, "
        f"int8 == float32 on every query (asserted); float32 index == NumPy ids on "
        f"{agree}/{args.queries}",
        "method                     |  p50 ms  |  p99 ms  | GB/s (p50) | % of bandwidth "
        "| index32 p50 / this p50",
        "---------------------------+----------+----------+------------+----------------"
        "+----------------------",
    ]
    for name, ts in times.items():
        p50, p99, _ = percentiles(ts)
        rate = gb / p50
        share = 2 if "float16" in name else 4 if "int8" in name else 0
        note = f" (streams {gb / share / p50:.1f})" if share else ""
        rows.append(
            f"{name:<26} | {p50 * 1e3:8.2f} | {p99 * 1e3:8.2f} | {rate:10.1f} | "
            f"{100 * rate / bandwidth:13.0f}% | {med32 / p50:8.2f}{note}"
        )
    return rows


# ---------------------------------------------------------------------------------------------
# Part 3: the approximate index


def ann_graph(args: argparse.Namespace, kind: str, index: semrec.ItemIndex) -> tuple:
    """The HNSW graph over ``index``: built (and, with --ann-graphs, saved) or loaded."""
    settings = {"m": args.ann_m, "ef_construction": args.ann_ef_construction, "ef_search": 64}
    path = None
    if args.ann_graphs:
        name = f"{kind}-{len(index)}-m{args.ann_m}-efc{args.ann_ef_construction}.faiss"
        path = os.path.join(args.ann_graphs, name)
        if os.path.exists(path):
            graph = np.fromfile(path, dtype=np.uint8)
            with open(path + ".seconds") as f:
                build = float(f.read())
            return semrec.HNSWIndex.from_bytes(index, graph, **settings), build, "loaded"
    t0 = time.perf_counter()
    ann = semrec.HNSWIndex(index, num_threads=args.threads, **settings)
    build = time.perf_counter() - t0
    if path is not None:
        ann.graph_bytes().tofile(path)
        with open(path + ".seconds", "w") as f:
            f.write(f"{build:.1f}")
    return ann, build, "built"


def bench_ann(args: argparse.Namespace) -> list[str]:
    if faiss is None:
        return ["Part 3 skipped: faiss-cpu is not installed (pip install semrec[ann])"]
    rows: list[str] = []
    for kind in args.ann_data.split(","):
        rows += ann_table(args, kind)
    return rows


def ann_indexes(args: argparse.Namespace, kind: str, index: semrec.ItemIndex) -> list[tuple]:
    """(index, what it is, its knob's name, the knob's values) for each of --ann-kind."""
    out = []
    for which in args.ann_kind.split(","):
        if which == "hnsw":
            ann, build, how = ann_graph(args, kind, index)
            what = f"HNSWIndex(m={ann.m}, ef_construction={ann.ef_construction}) {how}"
            out.append((ann, f"{what}, build {build:.1f} s", "ef_search", args.ef))
        else:
            t0 = time.perf_counter()
            ann = semrec.PQIndex(index, m=args.pq_m, num_threads=args.threads)
            build = time.perf_counter() - t0
            what = f"PQIndex(m={ann.m}, {ann.m // 2} bytes per item) built in {build:.1f} s"
            out.append((ann, what, "rerank", args.rerank))
    return out


def ann_table(args: argparse.Namespace, kind: str) -> list[str]:
    """Part 3 on one catalogue: the exact indexes vs each approximate one at every knob value."""
    n, t = args.ann_items, args.threads
    extra = args.tune_queries if args.tune else 0
    x, queries = catalogue(kind, n, args.queries + 1 + extra, SEED + 2)
    queries, held_out = queries[: args.queries + 1], queries[args.queries + 1 :]
    index = semrec.ItemIndex(x, metric="dot", storage="float16", num_threads=t, copy=False)
    exact = {
        "exact f32": semrec.ItemIndex(
            x, metric="dot", storage="float32", num_threads=t, copy=False
        ),
        "exact": index,
        "exact i8": semrec.ItemIndex(x, metric="dot", storage="int8", num_threads=t, copy=False),
    }
    approximate = ann_indexes(args, kind, index)
    tuned = [tuned_setting(args, ann, knob, held_out) for ann, _, knob, _ in approximate]
    if args.tune:
        approximate = [
            (ann, what, knob, values if value is None else f"{values},{value}")
            for (ann, what, knob, values), (value, _) in zip(approximate, tuned, strict=True)
        ]
    if args.ann_build_only:
        return [f"{kind}: {what} over {n} x {DIM}" for _, what, _, _ in approximate]
    results: dict[str, list] = {name: [] for name in exact}
    methods: dict[str, Callable[[int], object]] = {
        name: lambda c, name=name, e=e: results[name].append(
            semrec.topk(queries[c], e, 10, num_threads=t)
        )
        for name, e in exact.items()
    }

    def approx(c: int, name: str, ann: object, knob: str, value: int) -> None:
        setattr(ann, knob, value)
        results[name].append(semrec.topk(queries[c], ann, 10, num_threads=t))

    for ann, _, knob, values in approximate:
        short = "ef" if knob == "ef_search" else knob
        for value in (int(v) for v in values.split(",")):
            name = f"{type(ann).__name__[:-5].lower()} {short}={value}"
            results[name] = []
            methods[name] = lambda c, a=(name, ann, knob, value): approx(c, *a)
    for fn in methods.values():
        fn(args.queries)  # warm-up on the extra query
    for r in results.values():
        r.clear()
    times = run_alternating(methods, args.queries)
    med = {name: statistics.median(times[name]) for name in exact}
    rows = [
        f"Part 3 ({kind}): top-10 of one query over {n} x {DIM}, {args.queries} queries "
        f"(fresh draws), methods in random order, {t} threads; exact = ItemIndex float16, "
        "exact f32 / i8 = ItemIndex float32 / int8 (exact answers each); returned scores exact; "
        "the last three columns: that exact index's p50 / this p50",
        *(f"  {what}" for _, what, _, _ in approximate),
        *(f"  {line}" for _, line in tuned if line),
        "method            | recall@10 | min recall |  p50 ms  |  p99 ms  | f32 / this "
        "| f16 / this | i8 / this",
        "------------------+-----------+------------+----------+----------+------------"
        "+------------+----------",
    ]
    for name, ts in times.items():
        per_query = [
            np.intersect1d(a[0], b[0]).size / 10
            for a, b in zip(results["exact"], results[name], strict=True)
        ]
        p50, p99, _ = percentiles(ts)
        rows.append(
            f"{name:<17} | {np.mean(per_query):9.3f} | {min(per_query):10.1f} | "
            f"{p50 * 1e3:8.3f} | {p99 * 1e3:8.3f} | {med['exact f32'] / p50:10.1f} | "
            f"{med['exact'] / p50:10.1f} | {med['exact i8'] / p50:9.1f}"
        )
    return [*rows, *back_to_back(methods, args.queries, list(exact))]


def tuned_setting(
    args: argparse.Namespace, ann: object, knob: str, held_out: np.ndarray
) -> tuple[int | None, str]:
    """``ann.tune`` to ``--tune`` on the held-out queries: (the value, a line saying so)."""
    if not args.tune:
        return None, ""
    t0 = time.perf_counter()
    try:
        got = ann.tune(held_out, k=10, target=args.tune, num_threads=args.threads)  # type: ignore[attr-defined]
    except ValueError as exc:
        return None, f"{type(ann).__name__}.tune: {exc}"
    took = time.perf_counter() - t0
    return int(got[knob]), (
        f"{type(ann).__name__}.tune(target={args.tune:g}) on {len(held_out)} other draws: "
        f"{knob}={got[knob]} (recall@10 {got['recall']:.3f} there, lower bound "
        f"{got['lower_bound']:.3f} at confidence 0.95; {took:.1f} s); the row "
        f"{knob}={got[knob]} below is measured on the usual queries"
    )


def back_to_back(
    methods: dict[str, Callable[[int], object]], n: int, exact: list[str]
) -> list[str]:
    """Each method's queries run one after another (the methods in turn): what a service that
    runs only that search sees, without the spinning threads of the method before it."""
    # The warm-up on the extra query n: the method before has left the cores.
    times = time_back_to_back(methods, range(n), warm_up=n)
    med = [statistics.median(times[name]) for name in exact]  # f32, f16, i8
    rows = [
        "Back to back (each method's queries one after another, the methods in turn):",
        "method            |  p50 ms  |  min ms  | f32 / this | f16 / this | i8 / this",
        "------------------+----------+----------+------------+------------+----------",
    ]
    for name, ts in times.items():
        p50 = statistics.median(ts)
        rows.append(
            f"{name:<17} | {p50 * 1e3:8.3f} | {min(ts) * 1e3:8.3f} | {med[0] / p50:10.1f} | "
            f"{med[1] / p50:10.1f} | {med[2] / p50:9.1f}"
        )
    return [*rows, ""]


def main() -> None:
    args = parse_args()
    semrec.set_num_threads(args.threads)
    if faiss is not None:
        faiss.omp_set_num_threads(args.threads)
    start = _bench.cpu_seconds()
    with threadpool_limits(limits=args.threads):
        print("semrec real-time benchmark")
        print(_bench.machine_line())
        print(_bench.paths_line())
        print(
            f"versions : semrec {_bench.semrec_version()}, numpy {np.__version__}"
            + (f", faiss {faiss.__version__}" if faiss is not None else ", faiss missing")
        )
        print(
            f"threads  : {args.threads} for all (semrec num_threads, OMP_NUM_THREADS, "
            "threadpool_limits for BLAS, faiss.omp_set_num_threads)"
        )
        print()
        parts = {"clicks": bench_clicks, "scan": bench_scan, "ann": bench_ann}
        for name, part in parts.items():
            if args.only is None or name in args.only:
                print("\n".join(part(args)), flush=True)
                print()
    print()
    print(_bench.contention_note(start))


if __name__ == "__main__":
    main()
