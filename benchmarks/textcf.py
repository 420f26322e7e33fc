"""TextCF benchmarks on MovieLens-100k (PROTOCOL.md splits), in parts (``--parts a,b``).

How to run (project root, project virtualenv; ../shared/datasets/ml-100k must exist):

    python benchmarks/textcf.py                       # every part
    python benchmarks/textcf.py --parts speed --quick
    SEMREC_ISA=avx2 ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 \\
        python benchmarks/textcf.py --parts speed       # the AVX2 (Zen 3) column

Item embeddings are semrec.TextEncoder (all-MiniLM-L6-v2) vectors of the protocol's item text,
cached in ``--cache`` (default /tmp/semrec-textcf).

Parts
-----
speed
    Seconds per training epoch on the warm split's train set (the issue's configuration: MLP
    384 -> 768 -> 64, 2 layers, tau 0.15, 256 negatives per positive, batch 2048, Adam 5e-4):
    semrec's C++ trainer against the plain-PyTorch reference loop of tests/textcf_reference.py
    (each positive's negative vectors gathered), and against the same loop reading the scores
    from the dense batch-users x items product as the C++ trainer does (a control: it shows how
    much of the gain is the algorithm and how much the C++). Alternating, 1 warm-up epoch each,
    median [min-max] of --repeats epochs; ratio = semrec / peer (target <= 0.8).
propagation
    One forward propagation (2 layers) of (users + items) x 64 vectors: semrec's CSR kernel
    against torch.sparse (COO and CSR) products with the same normalised adjacency.
curve
    Training curve with the defaults on the warm split's train set, validation carved from it
    (last 20% per user, relevant = rating >= 4): cumulative seconds and validation NDCG@10 per
    epoch; time to 99% of the final (best) validation NDCG (target <= 60 s on 2 cores).
warm, cold, new_users
    The quality tables on the PROTOCOL.md splits, every family tuned on validation; cold also
    shows TextCF, ColdStartALS and their hybrid on ``[text embedding, TF-IDF]``.
cold_words
    ColdStartALS on the text embedding alone against ``[embedding, TF-IDF]``
    (``semrec.TfidfEncoder``, vocabulary from the warm items' texts), penalties 30 and 100,
    on six cold validation splits carved from train (seeds 0-5) and on the test split.
cold_ceiling
    How far any map from text could go on the test cold split: ColdStartALS's cold Recall@20
    beside an ALS whose cold items keep the interactions of the other users (5 folds of users:
    the factors a perfect map would predict) and the cold items' observed popularity (counted
    over every user); the share of the gap from random to that ALS each closes; and how well
    the maps' inputs predict popularity (Spearman).

Threads: --threads (default 2) for semrec, torch, OMP_NUM_THREADS and BLAS.
"""

from __future__ import annotations

import argparse

import _bench

THREADS: int = _bench.pin_threads(default=2)  # before numpy, BLAS, OpenMP or torch load

import hashlib  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import torch  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

import semrec  # noqa: E402
from semrec import split  # noqa: E402
from semrec.datasets import Dataset  # noqa: E402
from semrec.textcf import _network as network  # noqa: E402
from semrec.textcf import _training as training  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from textcf_reference import ReferenceLoop, torch_adjacency  # noqa: E402

SEED = 0
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
ISSUE = dict(
    hidden=768, factors=64, layers=2, tau=0.15, negatives=256, batch_size=2048,
    learning_rate=5e-4,
)  # fmt: skip


_CACHE: dict[Any, Any] = {}


def movielens() -> Dataset:
    if "ml" not in _CACHE:
        if not (DATA / "ml-100k" / "u.data").exists():
            raise SystemExit(f"MovieLens-100k not found at {DATA / 'ml-100k'}")
        _CACHE["ml"] = semrec.datasets.movielens("100k", path=DATA / "ml-100k")
    return _CACHE["ml"]


def item_embeddings(cache: Path) -> np.ndarray:
    """MiniLM vectors of the items' protocol text, cached on disk by a hash of the texts."""
    if "emb" not in _CACHE:
        texts = [str(t) for t in movielens().items["text"]]
        key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
        path = cache / f"ml100k-minilm-{key}.npy"
        if path.exists():
            emb = np.load(path)
        else:
            emb = semrec.TextEncoder().encode(texts)
            cache.mkdir(parents=True, exist_ok=True)
            np.save(path, emb)
        _CACHE["emb"] = np.ascontiguousarray(emb, dtype=np.float32)
    return _CACHE["emb"]


def relevant(ds: Dataset, threshold: float = 4) -> sp.csr_array:
    m = sp.csr_array(ds.interactions)
    out = sp.csr_array(m.multiply(m >= threshold))
    out.eliminate_zeros()
    return out


def summary(seconds: list[float]) -> str:
    return f"{statistics.median(seconds):.3f} [{min(seconds):.3f}-{max(seconds):.3f}]"


def alternate(methods: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """1 warm-up round, then ``repeats`` timed rounds, the methods in turn."""
    times: dict[str, list[float]] = {name: [] for name in methods}
    for attempt in range(repeats + 1):
        for name, run in methods.items():
            start = time.perf_counter()
            run()
            if attempt:
                times[name].append(time.perf_counter() - start)
    return times


def settings(**kw: Any) -> training.Settings:
    params = dict(ISSUE, negative_slope=0.01, weight_decay=0.0, epochs=1, patience=None,
                  seed=SEED, threads=THREADS, show_progress=False)  # fmt: skip
    params.update(kw)
    return training.Settings(**params)


def problem(cache: Path) -> tuple[sp.csr_array, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The warm split's train set, node inputs, embeddings and initial weights."""
    train, _ = split.last_fraction(movielens())
    m = semrec._validation.interactions(train.interactions, "train", nonnegative=True)
    emb = item_embeddings(cache)
    input_sum, mass = network.user_inputs(m, emb)
    inputs = np.vstack([network.means(input_sum, mass), emb]).astype(np.float32)
    weights = network.initial_weights(emb.shape[1], 768, 64, np.random.default_rng(SEED))
    return m, emb, inputs, weights


# -- speed ------------------------------------------------------------------------------------
def part_speed(args: argparse.Namespace) -> None:
    m, _, inputs, weights = problem(args.cache)
    s = settings()
    trainer = training.make_trainer(s, inputs, m, weights)
    loops = {
        scores: ReferenceLoop(
            weights,
            inputs,
            m,
            layers=s.layers,
            tau=s.tau,
            negatives=s.negatives,
            batch_size=s.batch_size,
            learning_rate=s.learning_rate,
            seed=SEED,
            scores=scores,
        )
        for scores in ("gather", "dense")
    }
    epoch = iter(range(10**6))
    repeats = 3 if args.quick else args.repeats
    times = alternate(
        {
            "semrec": lambda: trainer.epoch(next(epoch)),
            "gather": loops["gather"].epoch,
            "dense": loops["dense"].epoch,
        },
        repeats,
    )
    print(
        f"\n## speed: seconds per epoch, ML-100k warm-split train ({m.nnz:,} interactions, "
        f"{m.shape[0]} users, {m.shape[1]} items), MiniLM 384-d, MLP 384-768-64, 2 layers, "
        f"256 negatives, batch 2048; {THREADS} threads; {_bench.machine_line()}; median "
        f"[min-max] of {repeats} after 1 warm-up, alternating\n"
    )
    print("| trainer | s/epoch | semrec / this |")
    print("|---|---:|---:|")
    ours = statistics.median(times["semrec"])
    rows = (
        ("semrec C++ (LibTorch)", "semrec"),
        ("plain-PyTorch reference loop (gathered negatives)", "gather"),
        ("plain-PyTorch loop, dense batch-user scores (control)", "dense"),
    )
    for label, key in rows:
        ratio = ours / statistics.median(times[key])
        print(f"| {label} | {summary(times[key])} | {ratio:.2f} |", flush=True)
    print("target: semrec / reference loop <= 0.8")


# -- propagation ------------------------------------------------------------------------------
def part_propagation(args: argparse.Namespace) -> None:
    m, _, _, _ = problem(args.cache)
    n = sum(m.shape)
    x = np.random.default_rng(SEED).standard_normal((n, 64), dtype=np.float32)
    coo = torch_adjacency(m)
    csr = coo.to_sparse_csr()
    xt = torch.from_numpy(x)

    def torch_prop(a: torch.Tensor) -> torch.Tensor:
        h, total = xt, xt.clone()
        for _ in range(2):
            h = a @ h
            total += h
        return total / 3

    graph = training.graph(m)  # built once, like the adjacency tensors and in training
    want = torch_prop(coo).numpy()
    got = graph.propagate(x, 2)
    diff = float(np.abs(got - want).max())
    repeats = 20 if args.quick else 100

    def many(fn: Callable[[], object]) -> Callable[[], None]:
        return lambda: [fn() for _ in range(repeats)]  # type: ignore[func-returns-value]

    times = alternate(
        {
            "semrec": many(lambda: graph.propagate(x, 2)),
            "coo": many(lambda: torch_prop(coo)),
            "csr": many(lambda: torch_prop(csr)),
        },
        args.repeats,
    )
    print(
        f"\n## propagation: 2 layers over the ML-100k warm-train graph ({n:,} nodes, "
        f"{2 * m.nnz:,} edges), 64 columns; ms per call (median [min-max] of {args.repeats} "
        f"rounds of {repeats} calls); {THREADS} threads; max abs diff to torch {diff:.1e}\n"
    )
    print("| method | ms per call | semrec speed-up |")
    print("|---|---:|---:|")
    ours = statistics.median(times["semrec"])
    for label, key in (
        ("semrec CSR kernel", "semrec"),
        ("torch.sparse COO mm", "coo"),
        ("torch.sparse CSR mm", "csr"),
    ):
        t = [1000 * v / repeats for v in times[key]]
        print(f"| {label} | {summary(t)} | {statistics.median(times[key]) / ours:.2f}x |")


# -- curve ------------------------------------------------------------------------------------
def part_curve(args: argparse.Namespace) -> None:
    train, _ = split.last_fraction(movielens())
    fit_set, valid = split.last_fraction(train)
    emb = item_embeddings(args.cache)
    marks: list[tuple[int, float, float, float]] = []
    start = time.perf_counter()

    def record(epoch: int, loss: float, metric: float | None) -> None:
        marks.append((epoch, time.perf_counter() - start, loss, float(metric)))

    model = semrec.TextCF(
        emb, random_state=SEED, num_threads=THREADS, show_progress=False, **args.textcf
    )
    start = time.perf_counter()
    model.fit(fit_set, validation=relevant(valid), callback=record)
    final = max(mk[3] for mk in marks)
    reach = next(mk for mk in marks if mk[3] >= 0.99 * final)
    print(
        f"\n## curve: {model!r}\nML-100k warm-split train minus validation "
        f"({fit_set.n_interactions:,} interactions); validation NDCG@10 (relevant = rating "
        f">= 4) after each epoch; "
        f"{THREADS} threads; {_bench.machine_line()}\n"
    )
    print("| epoch | seconds (cumulative, incl. validation) | loss | validation NDCG@10 |")
    print("|---:|---:|---:|---:|")
    for epoch, seconds, loss, metric in marks:
        print(f"| {epoch} | {seconds:.1f} | {loss:.4f} | {metric:.4f} |")
    print(
        f"best {final:.4f} at epoch {model.best_epoch_}; 99% of it ({0.99 * final:.4f}) reached "
        f"at epoch {reach[0]} after {reach[1]:.1f} s (target <= 60 s)"
    )


# -- quality ----------------------------------------------------------------------------------
# The quality parts reuse benchmarks/semantic.py's data, tuned families and helpers, so that the
# tables put TextCF beside exactly the README's rows.


def peers() -> Any:
    """benchmarks/semantic.py (a sibling script: benchmarks/ is on sys.path)."""
    import semantic

    return semantic


def quality_data(args: argparse.Namespace) -> tuple[Any, Dataset, Any]:
    """semantic.py, its MovieLens data set and its item embeddings (ids attached), the vectors
    cached on disk by a hash of the item texts."""
    sem = peers()
    data = sem.movielens()
    if "emb" not in sem._CACHE:
        texts = [str(t) for t in data.item_text]
        key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
        path = args.cache / f"ml100k-items-{key}.npy"
        if path.exists():
            vectors = np.load(path)
        else:
            vectors = np.asarray(semrec.TextEncoder().encode_items(data), dtype=np.float32)
            args.cache.mkdir(parents=True, exist_ok=True)
            np.save(path, vectors)
        emb = semrec.datasets.ItemEmbeddings(vectors, data.item_ids)
        sem._CACHE["emb"] = (emb, "semrec.TextEncoder (all-MiniLM-L6-v2)")
    return sem, data, sem._CACHE["emb"][0]


def warm_split(data: Dataset) -> tuple[Dataset, Dataset]:
    """The warm split, one object per run (semantic.py caches its tuning by the train set)."""
    if "warm" not in _CACHE:
        _CACHE["warm"] = split.last_fraction(data)
    return _CACHE["warm"]


BASE = dict(layers=0, tau=0.15, learning_rate=1e-3)  # the session 4-5 validation winner
# (popularity, observed_popularity): the weight of p(i), and the share of the observed log
# popularity in it for items with training interactions (the text prediction otherwise)
POPULARITY = ((0.0, 0.0), (0.3, 0.0), (0.6, 0.0), (4.0, 0.5))
POPULARITY_OPTIONS = [dict(popularity=b, observed_popularity=s) for b, s in POPULARITY]
# The cold split's after-training options, 4 as before: the ridge map from text to the warm
# items' vectors (cold_penalty 30, 100) or the mean vector of the k warm items nearest in text
# (cold_neighbours 50, 100). The network's own vectors for cold items (the session 4 model) lost
# to both maps on the 3 cold validation carves tried (seeds 0-2), so they left the grid (the
# table still shows them).
COLD_OPTIONS = [dict(cold_penalty=c, cold_neighbours=None) for c in (30.0, 100.0)] + [
    dict(cold_penalty=None, cold_neighbours=k) for k in (50, 100)
]


def textcf_grid(quick: bool) -> list[dict[str, Any]]:
    """TextCF's tuning budget: 8 configurations (4 with --quick), like every family: 2 trained
    networks (user_vectors "network" / "items"; --quick: "network") x 4 popularity settings
    (POPULARITY), each pair scored on validation; popularity is applied after training (the same
    network, tests/test_textcf_popularity.py), so the 4 settings cost 1 training. Layers 0, tau
    0.15 and learning rate 1e-3: the best of the session 4-5 grids (layers {0, 2} x tau
    {0.15, 0.1} x learning rate {5e-4, 1e-3} / item_bias) on this validation split. The epoch
    count is early-stopped on validation (the weights' per-epoch average is validated)."""
    trained = [dict(BASE, user_vectors=v) for v in ("network", "items")]
    return trained[:1] if quick else trained


def label(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items() if k not in BASE)


def choose(
    fitted: dict[str, semrec.TextCF],
    score: Callable[[Any], float],
    what: str,
    options: list[dict[str, Any]] = POPULARITY_OPTIONS,
) -> tuple[dict[str, Any], semrec.TextCF, str, float]:
    """The (user_vectors, after-training options) pair with the best validation ``score`` among
    the fitted networks (keyed by user_vectors) x ``options`` (each applied with
    ``TextCF.with_options``: no training); prints every pair's figure. Returns the pair's
    params, the model, a label and its validation figure."""
    scored = []
    for vectors, model in fitted.items():
        for chosen in options:
            variant = model.with_options(**chosen)
            value = score(variant)
            params = dict(user_vectors=vectors, **chosen)
            scored.append((value, params, variant))
            print(f"  {what} TextCF {label(params)}: {value:.4f}", flush=True)
    value, params, variant = max(scored, key=lambda t: t[0])
    return params, variant, f"{label(params)} (valid {value:.4f})", value


def tuned_textcf(args: argparse.Namespace, train: Dataset, emb: Any) -> tuple[dict, str, float]:
    """The configuration with the best validation NDCG@10 (validation carved from the warm
    train set), with ``epochs`` set to its network's best epoch + 1 for the final fits, its
    label and that NDCG@10; ``_CACHE["epochs"]`` holds the epochs for each user_vectors."""
    if "textcf" not in _CACHE:
        fit_set, valid = split.last_fraction(train)
        fitted, epochs = {}, {}
        for params in textcf_grid(args.quick):
            model = make_textcf(emb, dict(params, epochs=40, patience=4))
            model.fit(fit_set, validation=relevant(valid))
            fitted[params["user_vectors"]] = model
            epochs[params["user_vectors"]] = model.best_epoch_ + 1
            print(f"  tuning TextCF {label(params)}: best epoch {model.best_epoch_}", flush=True)
        params, _, note, value = choose(
            fitted, lambda m: sem_metric(m, fit_set, valid, "ndcg", 10), "warm validation"
        )
        params = dict(BASE, **params, epochs=epochs[params["user_vectors"]])
        _CACHE["epochs"] = epochs
        _CACHE["textcf"] = (params, f"{note} epochs={params['epochs']}", value)
    return _CACHE["textcf"]


def sem_metric(model: Any, train: Dataset, test: Dataset, name: str, k: int, **kw: Any) -> float:
    return peers().metric(model, train, test, name, k, **kw)


def split_textcf(
    emb: Any,
    fit_set: Dataset,
    score: Callable[[Any], float],
    what: str,
    prepare: Callable[[semrec.TextCF], None] = lambda m: None,
    options: list[dict[str, Any]] = POPULARITY_OPTIONS,
) -> tuple[dict[str, Any], semrec.TextCF, str, float]:
    """TextCF's (user_vectors, after-training options) chosen on a split's own validation (the
    training hyperparameters and epochs from the warm validation): 2 networks x ``options``
    (POPULARITY_OPTIONS as in the warm grid, or COLD_OPTIONS); ``prepare`` folds in the
    validation's new users. Returns what :func:`choose` does, epochs added."""
    fitted = {}
    for vectors, n in _CACHE["epochs"].items():
        model = make_textcf(emb, dict(BASE, user_vectors=vectors, epochs=n)).fit(fit_set)
        prepare(model)
        fitted[vectors] = model
    params, variant, note, value = choose(fitted, score, what, options)
    params = dict(BASE, **params, epochs=_CACHE["epochs"][params["user_vectors"]])
    return params, variant, f"{note} epochs={params['epochs']}", value


def make_textcf(emb: Any, params: dict[str, Any]) -> semrec.TextCF:
    return semrec.TextCF(emb, random_state=SEED, num_threads=THREADS, show_progress=False, **params)


def print_table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    print(f"\n{title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for r in rows:
        print("| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in r) + " |")


VIEWS = ("all", "positives")  # the training data every warm model is tuned on, both ways


def positives(ds: Dataset) -> Dataset:
    """``ds`` with only the interactions rated >= 4 (the relevance threshold; ratings stay the
    weights, timestamps follow): lower-rated items become unobserved for a model fitted on it.
    The warm table tunes every family on both views (``view``)."""
    m = sp.csr_array(ds.interactions)
    keep = m.data >= 4
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows[keep], minlength=m.shape[0]))])
    kept = sp.csr_array((m.data[keep], m.indices[keep], indptr), shape=m.shape)
    times = None if ds.timestamps is None else ds.timestamps[keep]
    return Dataset(kept, timestamps=times, user_ids=ds.user_ids, item_ids=ds.item_ids)


def view(ds: Dataset, name: str) -> Dataset:
    return positives(ds) if name == "positives" else ds


def warm_families(args: argparse.Namespace, emb: Any, fit_set: Dataset, valid: Dataset) -> dict:
    """{(family, view): (label, valid NDCG@10, make, model fitted on view(fit_set))}: each
    family's best configuration on validation in each view (semantic.py's 8 configurations; the
    first best on ties)."""
    sem = peers()
    out = {}
    for family, grid in sem.grids(emb, args.quick).items():
        for name in VIEWS:
            best = None
            for label, make in grid:
                model = sem.fit_on(make, view(fit_set, name))
                value = sem_metric(model, fit_set, valid, "ndcg", 10)
                print(f"  warm validation {family} {name} {label}: {value:.4f}", flush=True)
                if best is None or value > best[1]:
                    best = (label, value, make, model)
            out[family, name] = best
    return out


def warm_textcf(args: argparse.Namespace, emb: Any, train: Dataset, fit_set: Dataset,
                valid: Dataset) -> dict:  # fmt: skip
    """TextCF's best (user_vectors, popularity) on validation in each view, as warm_families:
    the "all" view is tuned_textcf's choice (refitted on fit_set); the "positives" view trains
    both networks on the positives with the all view's epochs (as split_textcf does for the
    other splits) and chooses among POPULARITY the same way. Values: (label, valid NDCG@10,
    params with epochs, model fitted on view(fit_set))."""
    params, note, value = tuned_textcf(args, train, emb)
    out = {("TextCF", "all"): (note, value, params, make_textcf(emb, params).fit(fit_set))}
    chosen, member, label, positives_value = split_textcf(
        emb,
        positives(fit_set),
        lambda m: sem_metric(m, fit_set, valid, "ndcg", 10),
        "warm validation positives",
    )
    out["TextCF", "positives"] = (label, positives_value, chosen, member)
    return out


def part_warm(args: argparse.Namespace) -> None:
    """Every family tuned on validation in both views (VIEWS x 8 configurations, TextCF 2 x 4);
    the single-model rows are each family's best over both; the hybrid's members are each
    family's best in each view plus most-popular, weighted by coordinate ascent on the same
    validation split, then refitted on their view of train."""
    sem, data, emb = quality_data(args)
    train, test = warm_split(data)
    fit_set, valid = split.last_fraction(train)
    tuned = warm_textcf(args, emb, train, fit_set, valid) | warm_families(args, emb, fit_set, valid)

    def final(key: tuple[str, str]) -> Any:
        """The (family, view) choice refitted on its view of train (once)."""
        if key not in finals:
            family, name = key
            made = tuned[key][2]
            if family == "TextCF":
                finals[key] = make_textcf(emb, made).fit(view(train, name))
            else:
                finals[key] = sem.fit_on(made, view(train, name))
        return finals[key]

    finals: dict[tuple[str, str], Any] = {}
    families = list(dict.fromkeys(f for f, _ in tuned))
    models = {}
    for family in families:  # the single model: the better view on validation (all on ties)
        key = max(((family, v) for v in VIEWS), key=lambda k: tuned[k][1])
        label, value = tuned[key][:2]
        models[family] = (final(key), f"{key[1]}: {label}" + ("" if "valid" in label else
                                                              f" (valid {value:.4f})"))  # fmt: skip
    keys = list(tuned)
    pool = [tuned[k][3] for k in keys] + [semrec.MostPopular().fit(fit_set.interactions)]
    names = [f"{f} {v}" for f, v in keys] + ["most-popular"]
    grid = 10 if args.quick else 20
    tuned_hybrid = semrec.Hybrid.tune(
        pool, fit_set, valid, grid=grid, search="coordinate", k=10, metric="ndcg",
        show_progress=False,
    )  # fmt: skip
    weights = [w for _, w in tuned_hybrid.models]
    valid_best = float(tuned_hybrid.tuning_["ndcg@10"].max())
    members = [(final(key), w) for key, w in zip(keys, weights[:-1], strict=True) if w > 0]
    if weights[-1] > 0:
        members.append((semrec.MostPopular().fit(train.interactions), weights[-1]))
    label = ", ".join(f"{n} {w:g}" for n, w in zip(names, weights, strict=True) if w > 0)
    models["hybrid"] = (
        semrec.Hybrid(members),
        f"{len(pool)} members, coordinate ascent (grid {grid}, "
        f"{len(tuned_hybrid.tuning_)} weight vectors; valid {valid_best:.4f}): {label}",
    )
    # Session 6's hybrid for reference: the families' "all" choices, simplex grid 10.
    old = [tuned[f, "all"][3] for f in families]
    old_weights = sem.hybrid_weights(old, fit_set, valid, 4 if args.quick else 10)
    models["hybrid, session 6 (all view, simplex grid)"] = (
        semrec.Hybrid([(final((f, "all")), w) for f, w in zip(families, old_weights, strict=True)]),
        "weights " + sem.weights_label(families, old_weights),
    )
    models["most-popular"] = (semrec.MostPopular().fit(train.interactions), "")
    models["random"] = (semrec.Random(random_state=SEED).fit(train.interactions), "")
    cols = ["ndcg", "recall", "coverage", "diversity"]
    rows = []
    for name, (model, note) in models.items():
        table = semrec.evaluate(model, train, test, k=10, metrics=cols, item_embeddings=emb)
        rows.append([name, *(float(table.loc[10, c]) for c in cols), note])
    print_table(
        "## warm split, MovieLens-100k (relevant = rating >= 4); each family tuned on a "
        f"validation split carved from train: {len(textcf_grid(args.quick)) * len(POPULARITY)} "
        f"configurations x {len(VIEWS)} views (all interactions / positives only) each; the "
        f"hybrid's weights there too; {THREADS} threads; {_bench.machine_line()}",
        ["model", "NDCG@10", "Recall@10", "coverage@10", "diversity@10", "chosen on validation"],
        rows,
    )
    each = []
    for key in keys:
        table = semrec.evaluate(final(key), train, test, k=10, metrics=["ndcg"])
        each.append([f"{key[0]} {key[1]}", tuned[key][1], float(table.loc[10, "ndcg"]),
                     tuned[key][0]])  # fmt: skip
    print_table(
        "## each family's choice in each view (the hybrid's members)",
        ["family, view", "valid NDCG@10", "test NDCG@10", "configuration"],
        each,
    )
    ndcg = {r[0]: r[1] for r in rows}
    single = max((v, k) for k, v in ndcg.items() if k in families)
    print(f"TextCF NDCG@10 / ALS: {ndcg['TextCF'] / ndcg['ALS']:.3f}x (target >= 1)")
    print(f"hybrid NDCG@10 / best single model ({single[1]}): {ndcg['hybrid'] / single[0]:.3f}x "
          "(target >= 1.10)")  # fmt: skip
    every = max(r[2] for r in each)
    print(f"hybrid NDCG@10 / best (family, view) choice on test ({every:.4f}): "
          f"{ndcg['hybrid'] / every:.3f}x")  # fmt: skip


def with_words(train: Dataset, aligned: Any) -> semrec.datasets.ItemEmbeddings:
    """``[text embedding, TF-IDF]`` of train's items (``semrec.TfidfEncoder``, defaults), the
    vocabulary fitted on the texts of the items with training interactions only (the cold
    items' words unseen, as for items that arrive after fitting)."""
    warm = np.diff(sp.csc_array(train.interactions).indptr) > 0
    texts = [str(t) for t in train.item_text]
    words = semrec.TfidfEncoder().fit([t for t, w in zip(texts, warm, strict=True) if w])
    vectors = np.hstack([np.asarray(aligned), words.encode(texts)])
    return semrec.datasets.ItemEmbeddings(vectors, train.item_ids)


def cold_penalty_of(als: Any, emb: Any, score: Callable[[Any], float]) -> float:
    """ColdStartALS's ridge penalty (0.1, 1, ..., 10^5) with the best validation ``score``."""
    return max(
        (10.0**e for e in range(-1, 6)),
        key=lambda lam: score(semrec.ColdStartALS(als, emb, regularization=lam).fit()),
    )


def part_cold(args: argparse.Namespace) -> None:
    sem, data, emb = quality_data(args)
    tuned_textcf(args, warm_split(data)[0], emb)  # the epochs
    families = sem.tuned(emb, warm_split(data)[0], args.quick)
    train, test = split.cold_items(data, 0.1, 5, random_state=SEED)  # item indices permuted
    cold = test.split_info["cold_items"]
    aligned = emb.aligned_to(train)
    worded = with_words(train, aligned)
    fit_set, valid = split.cold_items(train, 0.1, 5, random_state=SEED, permute_items=False)
    valid_cold = valid.split_info["cold_items"]
    valid_als = sem.fit_on(families["ALS"][1], fit_set)

    def score(m: Any) -> float:
        return sem_metric(m, fit_set, valid, "recall", 20, items=valid_cold)

    penalty = {name: cold_penalty_of(valid_als, e, score)
               for name, e in (("embedding", aligned), ("words", worded))}  # fmt: skip

    def blend(members: list[Any]) -> list[float]:
        tuned = semrec.Hybrid.tune(members, fit_set, valid, grid=10, k=20, metric="recall",
                                   items=valid_cold, show_progress=False)  # fmt: skip
        return [w for _, w in tuned.models]

    textcf_fits, valid_members = {}, {}
    for name, e in (("embedding", aligned), ("words", worded)):
        params, model, note, _ = split_textcf(
            e, fit_set, score, f"cold validation Recall@20 ({name})", options=COLD_OPTIONS
        )
        members = [model, semrec.ColdStartALS(valid_als, e, regularization=penalty[name]).fit()]
        textcf_fits[name] = (params, note, blend(members))
        valid_members[name] = members
    # TextCF on the embedding with ColdStartALS on the words: the two inputs in one blend
    wm = blend([valid_members["embedding"][0], valid_members["words"][1]])
    final_als = sem.fit_on(families["ALS"][1], train)
    mapped = semrec.ColdStartALS(final_als, aligned, regularization=penalty["embedding"]).fit()
    mapped_words = semrec.ColdStartALS(final_als, worded, regularization=penalty["words"]).fit()
    textcf = make_textcf(aligned, textcf_fits["embedding"][0]).fit(train)
    textcf_words = make_textcf(worded, textcf_fits["words"][0]).fit(train)
    w, ww = textcf_fits["embedding"][2], textcf_fits["words"][2]
    models = {
        f"ColdStartALS (penalty {penalty['embedding']:g})": mapped,
        f"TextCF ({textcf_fits['embedding'][1]})": textcf,
        "TextCF, the network's vectors for cold items (no cold map)": textcf.with_options(
            cold_penalty=None, cold_neighbours=None
        ),
        f"hybrid TextCF {w[0]:.1f} + ColdStartALS {w[1]:.1f}": semrec.Hybrid(
            [(textcf, w[0]), (mapped, w[1])]
        ),
        f"ColdStartALS on embedding + TF-IDF (penalty {penalty['words']:g})": mapped_words,
        f"TextCF on embedding + TF-IDF ({textcf_fits['words'][1]})": textcf_words,
        f"hybrid of both on embedding + TF-IDF, TextCF {ww[0]:.1f} + ColdStartALS "
        f"{ww[1]:.1f}": semrec.Hybrid([(textcf_words, ww[0]), (mapped_words, ww[1])]),
        f"hybrid TextCF (embedding) {wm[0]:.1f} + ColdStartALS on embedding + TF-IDF "
        f"{wm[1]:.1f}": semrec.Hybrid([(textcf, wm[0]), (mapped_words, wm[1])]),
        "content": sem.fit_on(families["content"][1], train),
        "random": semrec.Random(random_state=SEED).fit(train.interactions),
    }
    rows = []
    for name, model in models.items():
        table = semrec.evaluate(model, train, test, k=20, items=cold, metrics=["recall", "ndcg"])
        rows.append([name, float(table.loc[20, "recall"]), float(table.loc[20, "ndcg"])])
    words_row = rows[4][1]
    for r in rows:
        r.append(f"{r[1] / rows[0][1]:.2f}x")
        r.append(f"{r[1] / words_row:.2f}x")
        r.append(f"{r[1] / rows[-1][1]:.2f}x")
    print_table(
        f"## cold-item split, MovieLens-100k, item indices permuted (seed 0); {cold.size} cold "
        f"items (the pool: random Recall@20 ~ 20/{cold.size}); users rank the cold items only; "
        "TextCF's training hyperparameters from the warm validation, its user_vectors and "
        "cold map (2 x 4: cold_penalty 30, 100 / cold_neighbours 50, 100), ColdStartALS's "
        "ridge penalty (7) and the hybrid weights from a cold split carved from train; "
        "'embedding + TF-IDF': each item's text embedding beside its semrec.TfidfEncoder "
        "vector (defaults; vocabulary from the warm items' texts)",
        ["model", "Recall@20", "NDCG@20", "vs ColdStartALS (target >= 1.2x)",
         "vs ColdStartALS on embedding + TF-IDF", "vs random"],
        rows,
    )  # fmt: skip


def part_cold_words(args: argparse.Namespace) -> None:
    sem, data, emb = quality_data(args)
    families = sem.tuned(emb, warm_split(data)[0], args.quick)
    train, test = split.cold_items(data, 0.1, 5, random_state=SEED)
    aligned = emb.aligned_to(train)
    worded = with_words(train, aligned)
    carves = [
        (f"validation seed {seed}",
         *split.cold_items(train, 0.1, 5, random_state=seed, permute_items=False))
        for seed in range(6)
    ]  # fmt: skip
    rows = []
    for name, fit_set, held_out in [*carves, ("test", train, test)]:
        cold = held_out.split_info["cold_items"]
        als = sem.fit_on(families["ALS"][1], fit_set)
        row = [name, cold.size]
        for penalty in (30.0, 100.0):
            pair = [
                sem_metric(semrec.ColdStartALS(als, e, regularization=penalty).fit(), fit_set,
                           held_out, "recall", 20, items=cold)
                for e in (aligned, worded)
            ]  # fmt: skip
            row += [f"{pair[0]:.4f}", f"{pair[1]:.4f}", f"{pair[1] / pair[0]:.2f}x"]
        rows.append(row)
    print_table(
        "## ColdStartALS's cold-item Recall@20, MovieLens-100k: the text embedding alone against "
        "[embedding, TF-IDF] (semrec.TfidfEncoder defaults, vocabulary from the warm items' "
        f"texts); ALS {families['ALS'][0]}",
        ["split", "cold items", "embedding, penalty 30", "+ TF-IDF", "ratio",
         "embedding, penalty 100", "+ TF-IDF", "ratio"],
        rows,
    )  # fmt: skip


def cold_recall(
    scores: np.ndarray, rel: sp.csr_array, users: np.ndarray, cold: np.ndarray
) -> float:
    """Recall@20 of ``scores`` (evaluated users x cold items, the cold items in ascending id
    order, ties to the lower id like semrec.topk) against ``rel`` (relevant test interactions)."""
    top = cold[np.argsort(-scores, axis=1, kind="stable")[:, :20]]
    rows = (rel.indices[rel.indptr[u] : rel.indptr[u + 1]] for u in users)
    return float(np.mean([np.isin(r, t).mean() for r, t in zip(rows, top, strict=True)]))


def oracle_scores(
    make_als: Callable[[], Any], train: Dataset, test: Dataset, users: np.ndarray,
    cold: np.ndarray, folds: int = 5,
) -> np.ndarray:  # fmt: skip
    """Each evaluated user's scores of the cold items from an ALS fitted on train plus the cold
    items' interactions of the users outside the user's fold (``folds`` random folds of users):
    the cold items' factors then come from interactions, which a map from text can only
    predict."""
    fold = np.random.default_rng(SEED).integers(0, folds, train.n_users)
    scores = np.empty((users.size, cold.size))
    for f in range(folds):
        others = sp.diags_array((fold != f).astype(np.float32))
        als = make_als().fit(sp.csr_array(train.interactions + others @ test.interactions))
        mine = fold[users] == f
        scores[mine] = als.user_factors_[users[mine]] @ als.item_factors_[cold].T
    return scores


def part_cold_ceiling(args: argparse.Namespace) -> None:
    sem, data, emb = quality_data(args)
    families = sem.tuned(emb, warm_split(data)[0], args.quick)
    train, test = split.cold_items(data, 0.1, 5, random_state=SEED)
    cold = np.sort(test.split_info["cold_items"])
    rel = relevant(test)
    users = np.flatnonzero(np.diff(rel.indptr))
    aligned = emb.aligned_to(train)
    als = sem.fit_on(families["ALS"][1], train)
    seen = np.diff(sp.csc_array(train.interactions + test.interactions).indptr)[cold]
    rows = [
        ["random (expected: 20 / cold items)", 20 / cold.size],
        ["observed popularity of the cold items (every user's interactions, the evaluated "
         "users' own too)", cold_recall(np.tile(seen, (users.size, 1)), rel, users, cold)],
        ["ALS fitted with the cold items' interactions of the other users (5 folds of users)",
         cold_recall(oracle_scores(families["ALS"][1], train, test, users, cold), rel, users,
                     cold)],
    ]  # fmt: skip
    counts = np.diff(sp.csc_array(train.interactions).indptr)
    warm = counts > 0
    truth = np.asarray(rel.sum(axis=0)).ravel()[cold]
    correlations = []
    for name, e in (("embedding", aligned), ("[embedding, TF-IDF]", with_words(train, aligned))):
        model = semrec.ColdStartALS(als, e, regularization=100.0).fit()
        own = cold_recall(als.user_factors_[users] @ model.item_factors_[cold].T, rel, users, cold)
        reference = sem_metric(model, train, test, "recall", 20, items=cold)
        if abs(own - reference) > 0.005:  # float32 near-ties may break apart; a bug would not
            raise SystemExit(f"cold_recall {own} differs from semrec.evaluate's {reference}")
        rows.append([f"ColdStartALS on {name} (penalty 100)", reference])
        vectors = np.asarray(e, dtype=np.float64)
        weights, bias = semrec.coldstart.ridge_map(
            vectors[warm], np.log1p(counts[warm])[:, None], 10.0
        )
        correlations.append(
            [name, f"{spearmanr(vectors[cold] @ weights[:, 0] + bias[0], truth)[0]:.3f}"]
        )
    floor, ceiling = rows[0][1], rows[2][1]
    print_table(
        f"## how far a map from text could go: cold-item Recall@20 on the test split "
        f"({cold.size} cold items, {users.size} users); ALS {families['ALS'][0]}",
        ["scores", "Recall@20", "share of the gap from random to the ALS with the cold items"],
        [[n, f"{v:.4f}", f"{(v - floor) / (ceiling - floor):.0%}"] for n, v in rows],
    )
    print_table(
        "## how well text predicts popularity: Spearman correlation of a ridge prediction "
        "(penalty 10, fitted on the warm items) of log(1 + training interactions) with each "
        "cold item's number of relevant test interactions",
        ["input", "Spearman"],
        correlations,
    )


def new_user_tuned(
    sem: Any, emb: Any, fit_set: Dataset, valid: Dataset, quick: bool
) -> dict[str, tuple[str, Callable]]:
    """Every family's configuration chosen, like TextCF's, by NDCG@10 of the new users of a
    new-user validation split (each configuration fitted, then the users folded in): the same
    grids and budget as on the warm split, so no family is judged with another split's choice."""
    users = valid.split_info["users"]
    chosen = {}
    for family, grid in sem.grids(emb, quick).items():
        scored = []
        for i, (name, make) in enumerate(grid):
            model = sem.fit_on(make, fit_set)
            sem.fold_in_new_users({family: model}, {family: (name, make)}, valid)
            scored.append((sem_metric(model, fit_set, valid, "ndcg", 10, users=users), i))
        best, i = max(scored)
        chosen[family] = (f"{grid[i][0]} (valid {best:.4f})", grid[i][1])
        print(f"  new-user validation {family}: {chosen[family][0]}", flush=True)
    return chosen


def part_new_users(args: argparse.Namespace) -> None:
    sem, data, emb = quality_data(args)
    warm_params, warm_note, _ = tuned_textcf(args, warm_split(data)[0], emb)
    train, test = split.new_users(data, 0.1, 5, random_state=SEED)
    new = test.split_info["users"]
    # Another seed: the same one would draw the very users already taken out of train.
    fit_set, valid = split.new_users(train, 0.1, 5, random_state=SEED + 1)
    valid_new = valid.split_info["users"]
    chosen = new_user_tuned(sem, emb, fit_set, valid, args.quick)
    params, textcf, note, _ = split_textcf(
        emb, fit_set, lambda m: sem_metric(m, fit_set, valid, "ndcg", 10, users=valid_new),
        "new-user validation NDCG@10",
        lambda m: m.fold_in(valid.split_info["history"].interactions[valid_new], users=valid_new),
    )  # fmt: skip
    members = {"TextCF": textcf}
    members |= {f: sem.fit_on(make, fit_set) for f, (_, make) in chosen.items()}
    sem.fold_in_new_users(members, chosen, valid)
    weights = sem.hybrid_weights(list(members.values()), fit_set, valid, 4 if args.quick else 10)
    models = {"TextCF": make_textcf(emb, params).fit(train)}
    models |= {f: sem.fit_on(make, train) for f, (_, make) in chosen.items()}
    models["TextCF, warm choice"] = make_textcf(emb, warm_params).fit(train)
    sem.fold_in_new_users(models, chosen, test)
    warm_choice = models.pop("TextCF, warm choice")
    names = list(models)
    models["hybrid"] = semrec.Hybrid(list(zip(list(models.values()), weights, strict=True)))
    models["TextCF, warm-validation choice"] = warm_choice
    known = semrec.evaluation.known_history(train, test)  # the baselines see the history too
    models["most-popular"] = semrec.MostPopular().fit(known)
    models["random"] = semrec.Random(random_state=SEED).fit(known)
    rows = []
    for name, model in models.items():
        table = semrec.evaluate(model, train, test, k=10, users=new, metrics=["ndcg", "recall"])
        rows.append([name, float(table.loc[10, "ndcg"]), float(table.loc[10, "recall"]), ""])
    rows[0][3] = note
    for r in rows:
        r[3] = chosen[r[0]][0] if r[0] in chosen else r[3]
    rows[len(names)][3] = "weights " + sem.weights_label(names, weights)
    rows[len(names) + 1][3] = warm_note
    print_table(
        f"## new-user split, MovieLens-100k ({new.size} users, 5 revealed interactions folded "
        "in; every family's configuration (TextCF: user_vectors x popularity, 2 x 4) and the "
        "hybrid weights tuned on a new-user split carved from train)",
        ["model", "NDCG@10", "Recall@10", "chosen on validation"],
        rows,
    )
    ndcg = {r[0]: r[1] for r in rows}
    knn = max(ndcg["ItemKNN"], ndcg["UserKNN"])
    print(f"TextCF NDCG@10 / best of ItemKNN, UserKNN: {ndcg['TextCF'] / knn:.3f}x (target >= 1)")


# Every part_<name> function above, in its order.
PARTS: dict[str, Callable[[argparse.Namespace], None]] = _bench.parts_of(globals())


def main() -> None:
    parser = _bench.parts_parser(__doc__, PARTS, THREADS)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/semrec-textcf"))
    parser.add_argument(
        "--textcf", default="", help="extra TextCF parameters for curve, e.g. 'epochs=30,tau=0.1'"
    )
    args = parser.parse_args()
    args.textcf = {
        k: eval(v, {}) for k, v in (kv.split("=", 1) for kv in args.textcf.split(",") if kv)
    }
    torch.set_num_threads(args.threads)
    _bench.run_parts(parser, args, PARTS)


if __name__ == "__main__":
    main()
