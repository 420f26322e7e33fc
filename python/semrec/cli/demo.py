"""``semrec demo``: the end-to-end tour, on a seeded synthetic catalogue (offline) or MovieLens.

Steps: encode the item text (cached in the output folder), fit ALS, content, ItemKNN and a
tuned hybrid, evaluate them on the protocol's warm, cold-item and new-user splits beside random
and most-popular (one table), a sample user's recommendations with explanations, a text query,
a real-time update, then figures and a self-contained HTML report written to ``--out``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

import semrec
from semrec import _files as files
from semrec import split
from semrec.cli import report
from semrec.cli.demo_user import query_part, sample_part, sample_user, update_part
from semrec.datasets import SYNTHETIC_THEMES, Dataset, ItemEmbeddings, synthetic
from semrec.rerank import Diversified

# (n_users, n_items, n_interactions) of the synthetic catalogue per --size.
SIZES: dict[str, tuple[int, int, int]] = {
    "tiny": (300, 500, 8_000),
    "small": (2_000, 1_500, 60_000),
}
KS = (5, 10, 20)
LAMBDAS = (1.0, 0.8, 0.6, 0.4, 0.2)
# Rows of the comparison table, in order.
MODELS = ("random", "most-popular", "ALS", "ItemKNN", "content", "ColdStartALS", "hybrid")
COLUMNS = ("NDCG@10 warm", "Recall@20 cold", "NDCG@10 new users")


def als_model(seed: int, *, loss: bool = False) -> semrec.ALS:
    """The demo's ALS (fixed hyperparameters; the hybrid's weights are what gets tuned)."""
    return semrec.ALS(
        64,
        regularization=1.0,
        alpha=10.0,
        iterations=15,
        calculate_training_loss=loss,
        random_state=seed,
        show_progress=False,
    )


def knn_model() -> semrec.ItemKNN:
    return semrec.ItemKNN(100, show_progress=False)


class _Console:
    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        # Progress bars on a terminal only, as the other commands (not into a log file).
        self.progress = not quiet and sys.stderr.isatty()
        self.start = time.perf_counter()

    def say(self, text: str = "") -> None:
        if not self.quiet:
            print(text, flush=True)

    def step(self, text: str) -> None:
        self.say(f"[{time.perf_counter() - self.start:6.1f}s] {text}")


# -- data -------------------------------------------------------------------------------------


def load(args: argparse.Namespace) -> tuple[Dataset, np.ndarray, np.ndarray, str]:
    """The dataset, each item's short name and label (topic / first genre), and a description."""
    if args.dataset == "synthetic":
        if args.data_dir is not None:  # it would be ignored: say so rather than run the other data
            raise ValueError(
                "--data-dir is read only with --dataset ml-100k: add --dataset ml-100k to run "
                "on MovieLens-100k, or drop --data-dir for the synthetic catalogue"
            )
        n_users, n_items, n = SIZES[args.size]
        ds = synthetic(n_users, n_items, n, random_state=args.seed)
        topics = ds.items["topic"].to_numpy()
        labels = np.array(
            [SYNTHETIC_THEMES[t % len(SYNTHETIC_THEMES)][0] for t in topics], dtype=object
        )
        names = np.array([str(t) for t in ds.items["text"]], dtype=object)
        what = f"synthetic catalogue (--size {args.size}, seed {args.seed})"
        return ds, names, labels, what
    if args.data_dir is None:
        raise ValueError("--dataset ml-100k needs --data-dir PATH (the folder holding u.data)")
    path = Path(args.data_dir)
    if not (path / "u.data").is_file() or not (path / "u.item").is_file():
        raise FileNotFoundError(
            f"--data-dir {str(path)!r}: no MovieLens-100k files there (expected u.data and "
            "u.item, as unpacked from ml-100k.zip)"
        )
    # MovieLens numbers its films roughly by popularity: a random item order keeps the models'
    # tie-break (lower index first) from looking like skill.
    ml = semrec.datasets.movielens("100k", path=path, show_progress=False)
    ds = ml.permute_items(0)
    names = np.array([str(t) for t in ds.items["title"]], dtype=object)
    labels = np.array([str(g).split("|")[0] for g in ds.items["genres"]], dtype=object)
    return ds, names, labels, f"MovieLens-100k ({path})"


class HashedEncoder:
    """Fallback when the bundled language model is unavailable: hashed bag-of-words vectors
    projected to 384 dimensions (words in common -> similar vectors)."""

    identity = "hashed-bow-384"
    dim = 384

    def __init__(self, seed: int = 0) -> None:
        self.projection = np.random.default_rng(seed).standard_normal((4096, self.dim))

    def encode(self, texts: list[str], **_: Any) -> np.ndarray:
        rows, cols = [], []
        for i, text in enumerate(texts):
            for word in text.lower().replace(",", " ").split():
                rows.append(i)
                cols.append(zlib.crc32(word.rstrip("s").encode()) % 4096)
        bag = sp.csr_array((np.ones(len(rows)), (rows, cols)), shape=(len(texts), 4096))
        x = bag @ self.projection
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def encoder_for(console: _Console) -> Any:
    try:
        return semrec.TextEncoder()
    except Exception as exc:  # no model files or no LibTorch: say so, keep going
        print(
            f"semrec demo: the bundled TextEncoder is unavailable ({type(exc).__name__}: {exc}); "
            "using hashed bag-of-words embeddings instead",
            file=sys.stderr,
        )
        return HashedEncoder()


def embed(texts: list[str], encoder: Any, out: Path, console: _Console) -> tuple[np.ndarray, str]:
    """Item embeddings, cached in ``out/cache`` as .npy keyed by the model and the texts."""
    key = hashlib.sha256(
        "\n".join([str(encoder.identity), *texts]).encode("utf-8", "surrogatepass")
    ).hexdigest()[:20]
    path = out / "cache" / f"item-embeddings-{key}.npy"
    if path.is_file():
        try:
            emb = np.load(path)
        except (ValueError, OSError, EOFError):  # a damaged cache (e.g. cut short): encode again
            emb = None
        if isinstance(emb, np.ndarray) and emb.dtype.kind == "f":
            if emb.shape == (len(texts), encoder.dim):
                return np.ascontiguousarray(emb, dtype=np.float32), f"cached ({path})"
    start = time.perf_counter()
    if isinstance(encoder, HashedEncoder):
        emb = encoder.encode(texts)
    else:
        emb = encoder.encode(texts, show_progress=console.progress)
    seconds = time.perf_counter() - start
    buffer = io.BytesIO()
    np.save(buffer, emb)
    write_atomic(path, buffer.getvalue())
    return emb, f"encoded in {seconds:.1f} s, cached to {path}"


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, then rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path = Path(files.writable_path(path))
    tmp = Path(files.temporary_beside(str(path)))
    try:
        tmp.write_bytes(data)
        files.replace(str(tmp), str(path))  # an existing file's permission bits kept
    finally:
        if tmp.exists():
            tmp.unlink()


# -- evaluation -------------------------------------------------------------------------------


def value(model: Any, train: Dataset, test: Dataset, metric: str, k: int, **kw: Any) -> float:
    table = semrec.evaluate(model, train, test, k=k, metrics=[metric], **kw)
    return float(table.loc[k, metric])


def warm_part(ds: Dataset, emb: np.ndarray, encoder: Any, seed: int) -> dict[str, Any]:
    """Warm split: the three families, the hybrid (weights tuned on validation), baselines."""
    train, test = split.last_fraction(ds)
    fit_set, valid = split.last_fraction(train)
    members = [
        semrec.ContentRecommender(emb, show_progress=False).fit(fit_set),
        als_model(seed).fit(fit_set.interactions),
        knn_model().fit(fit_set.interactions),
    ]
    tuned = semrec.Hybrid.tune(members, fit_set, valid, grid=4, k=10, show_progress=False)
    weights = [w for _, w in tuned.models]
    losses: list[float] = []
    models: dict[str, Any] = {
        "random": semrec.Random(random_state=seed).fit(train.interactions),
        "most-popular": semrec.MostPopular().fit(train.interactions),
        "ALS": als_model(seed, loss=True).fit(
            train.interactions, callback=lambda it, seconds, loss: losses.append(loss)
        ),
        "ItemKNN": knn_model().fit(train.interactions),
        "content": semrec.ContentRecommender(emb, encoder=encoder, show_progress=False).fit(train),
    }
    models["hybrid"] = semrec.Hybrid(
        [(models[n], w) for n, w in zip(("content", "ALS", "ItemKNN"), weights, strict=True)]
    )
    tables = {
        name: semrec.evaluate(model, train, test, k=KS, metrics=["ndcg", "recall"])
        for name, model in models.items()
    }
    sweep = []
    for lam in LAMBDAS:
        t = semrec.evaluate(
            Diversified(models["hybrid"], emb, lam, candidates=50),
            train,
            test,
            k=10,
            metrics=["ndcg", "diversity", "coverage"],
            item_embeddings=emb,
        )
        sweep.append({"lambda": lam, **{c: float(t.loc[10, c]) for c in t.columns}})
    return {
        "train": train,
        "test": test,
        "models": models,
        "tables": tables,
        "weights": dict(zip(("content", "ALS", "ItemKNN"), weights, strict=True)),
        "losses": losses,
        "sweep": pd.DataFrame(sweep),
    }


def cold_part(ds: Dataset, emb: np.ndarray, seed: int) -> dict[str, float]:
    """Cold-item split: users rank the cold items only (Recall@20)."""
    train, test = split.cold_items(ds, 0.1, 5, random_state=seed)  # items renumbered
    cold = test.split_info["cold_items"]
    aligned = ItemEmbeddings(emb, ds.item_ids).aligned_to(train)
    als = als_model(seed).fit(train.interactions)
    models = {
        "random": semrec.Random(random_state=seed).fit(train.interactions),
        "most-popular": semrec.MostPopular().fit(train.interactions),
        "content": semrec.ContentRecommender(aligned, show_progress=False).fit(train),
        "ColdStartALS": semrec.ColdStartALS(als, aligned, regularization=1.0).fit(),
    }
    return {n: value(m, train, test, "recall", 20, items=cold) for n, m in models.items()}


def new_user_part(
    ds: Dataset, emb: np.ndarray, weights: dict[str, float], seed: int
) -> dict[str, float]:
    """New-user split: 5 revealed interactions per new user, folded into every model."""
    train, test = split.new_users(ds, 0.1, 5, random_state=seed)
    new = test.split_info["users"]
    history = test.split_info["history"]
    rows = history.interactions[new]
    m = history.interactions
    times = np.concatenate([history.timestamps[m.indptr[u] : m.indptr[u + 1]] for u in new])
    content = semrec.ContentRecommender(emb, show_progress=False).fit(train)
    content.fold_in(rows, timestamps=times, users=new)
    als = als_model(seed).fit(train.interactions)
    als.fold_in(rows, users=new)
    knn = knn_model().fit(train.interactions)
    knn.fold_in(rows, users=new)
    known = semrec.evaluation.known_history(train, test)  # what the models know, too
    models = {
        "random": semrec.Random(random_state=seed).fit(known),
        "most-popular": semrec.MostPopular().fit(known),
        "ALS": als,
        "ItemKNN": knn,
        "content": content,
        "hybrid": semrec.Hybrid(
            [(content, weights["content"]), (als, weights["ALS"]), (knn, weights["ItemKNN"])]
        ),
    }
    return {n: value(mod, train, test, "ndcg", 10, users=new) for n, mod in models.items()}


def comparison(warm: dict[str, Any], cold: dict[str, float], new: dict[str, float]) -> list:
    rows = []
    for name in MODELS:
        w = warm["tables"].get(name)
        rows.append(
            [
                name,
                None if w is None else float(w.loc[10, "ndcg"]),
                cold.get(name),
                new.get(name),
            ]
        )
    return rows


def format_table(header: list[str], rows: list[list[Any]]) -> str:
    cells = [
        [c if isinstance(c, str) else "-" if c is None else f"{c:.4f}" for c in r] for r in rows
    ]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    lines = [
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(header, widths, strict=True))
        )
    ]
    lines.append("  ".join("-" * w for w in widths))
    for r in cells:
        lines.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w)
                for i, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
    return "\n".join(lines)


# -- figures and report -----------------------------------------------------------------------


def figures(warm: dict[str, Any], emb: np.ndarray, labels: np.ndarray, user_marks: tuple) -> dict:
    """PNG bytes of each figure (rendered in memory; written only at the end)."""
    import semrec.plot

    tables = {
        n: warm["tables"][n]
        for n in ("hybrid", "ALS", "ItemKNN", "content", "most-popular", "random")
    }
    history, recommended = user_marks
    figs = {
        "metrics_vs_k": semrec.plot.metrics_vs_k(tables, ("ndcg", "recall")),
        "mmr_tradeoff": semrec.plot.diversity_tradeoff(warm["sweep"]),
        "embedding_map": semrec.plot.embedding_map(
            emb, labels, history, recommended, title="item embeddings (PCA): sample user"
        ),
        "als_training_loss": semrec.plot.training_loss(warm["losses"]),
    }
    out = {}
    for name, fig in figs.items():
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110)
        out[name] = buffer.getvalue()
    return out


def html_report(
    title: str,
    settings: list[tuple[str, str]],
    sections: list[report.Section],
    figures: dict[str, tuple[bytes, str]],
) -> bytes:
    """The report page (see :mod:`semrec.cli.report`)."""
    return report.render(title, settings, sections, figures)


FIGURE_CAPTIONS = {
    "metrics_vs_k": "NDCG and recall at k = 5, 10, 20 on the warm split, per model",
    "mmr_tradeoff": "MMR re-ranking of the hybrid: accuracy against diversity as lambda falls",
    "embedding_map": "Item embeddings (PCA): the sample user's history and recommendations",
    "als_training_loss": "ALS training loss per iteration",
}


# -- the command ------------------------------------------------------------------------------


def demo(args: argparse.Namespace) -> int:
    """The tour; see the module docstring."""
    console = _Console(args.quiet)
    if args.threads is not None:
        semrec.set_num_threads(args.threads)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {str(out)!r} exists and is not a folder")
    want_figures = not args.no_figures
    if want_figures:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print(
                "semrec demo: matplotlib is not installed, skipping the figures "
                "(pip install 'semrec[plot]')",
                file=sys.stderr,
            )
            want_figures = False

    ds, names, labels, what = load(args)
    threads = semrec.get_num_threads()
    console.say(
        f"semrec {semrec.__version__} demo on the {what}: {ds.n_users:,} users x "
        f"{ds.n_items:,} items, {ds.n_interactions:,} interactions, {threads} threads"
    )
    timings: list[tuple[str, float]] = []
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings.append((name, now - clock))
        clock = now

    texts = [str(t) for t in ds.items["text"]]
    encoder = encoder_for(console)
    console.step(f"1. encoding {len(texts):,} item texts with {type(encoder).__name__}")
    emb, how = embed(texts, encoder, out, console)
    console.step(f"   embeddings {emb.shape}: {how}")
    lap("encoding" + (" (cached)" if how.startswith("cached") else ""))

    console.step("2-3. warm split: fitting ALS, content, ItemKNN; tuning the hybrid on validation")
    warm = warm_part(ds, emb, encoder, args.seed)
    lap("warm split (fit, tune, evaluate, MMR sweep)")
    console.step("     cold-item split: content and ColdStartALS on the held-out items")
    cold = cold_part(ds, emb, args.seed)
    lap("cold-item split")
    console.step("     new-user split: 5 revealed interactions folded in")
    new = new_user_part(ds, emb, warm["weights"], args.seed)
    lap("new-user split")
    weights = ", ".join(f"{n} {w:.2f}" for n, w in warm["weights"].items())
    rows = comparison(warm, cold, new)
    table = format_table(["model", *COLUMNS], rows)
    caption = (
        "Comparison (relevant = rating >= 4; warm: last 20% per user; cold: 10% of items held "
        "out, users rank the cold items only; new users: 10% of users, 5 interactions folded in; "
        f"hybrid weights tuned on a validation split carved from train: {weights})"
    )
    print(f"\n{caption}\n{table}\n", flush=True)

    train, test = warm["train"], warm["test"]
    models = warm["models"]
    u = sample_user(train, test)
    sample_text, sample_section, recommended = sample_part(models, train, test, u, names, labels)
    console.say(sample_text)
    query_text, query_section, ids = query_part(models["content"], args, train, u, names, labels)
    console.say("\n" + query_text)
    update_text, update_section = update_part(models, train, u, ids, names, labels)
    console.say("\n" + update_text)
    lap("sample user, text query, real-time update")

    # 7. figures and the report, rendered in memory, then written atomically
    pngs: dict[str, bytes] = {}
    if want_figures:
        console.step("7. rendering figures")
        hist = train.interactions[[u]].indices
        pngs = figures(warm, emb, labels, (hist, recommended))
        lap("figures")
    sweep = warm["sweep"]
    sections = [
        report.Section(
            "Comparison", [report.Table(["model", *COLUMNS], rows, best=(1, 2, 3), caption=caption)]
        ),
        report.Section(
            "Diversity: MMR re-ranking of the hybrid",
            [
                report.Table(
                    [str(c) for c in sweep.columns],
                    [[f"{r[0]:g}", *r[1:]] for r in sweep.itertuples(index=False)],
                    best=tuple(range(1, sweep.shape[1])),
                    caption="The hybrid's top 50 re-ranked to 10 on the warm split; lambda = 1 "
                    "is the plain relevance order.",
                )
            ],
        ),
        sample_section,
        query_section,
        update_section,
    ]
    settings = [
        ("data", f"{what}: {ds.n_users:,} users x {ds.n_items:,} items, "
                 f"{ds.n_interactions:,} interactions"),
        ("embeddings", f"{type(encoder).__name__}, {emb.shape[1]} dimensions ({how})"),
        ("models", f"ALS 64 factors, ItemKNN 100 neighbours, content profiles, hybrid ({weights})"),
        ("run", f"seed {args.seed}, {threads} threads, semrec {semrec.__version__}"),
        ("timings", "; ".join(f"{name} {seconds:.1f} s" for name, seconds in timings)
         + f"; total {time.perf_counter() - console.start:.1f} s"),
    ]  # fmt: skip
    page = html_report(
        f"semrec {semrec.__version__} demo",
        settings,
        sections,
        {name: (data, FIGURE_CAPTIONS.get(name, name)) for name, data in pngs.items()},
    )
    for name, data in pngs.items():
        write_atomic(out / f"{name}.png", data)
    write_atomic(out / "report.html", page)
    written = ", ".join([*(f"{n}.png" for n in pngs), "report.html"])
    console.step(f"wrote {written} to {out}")
    print(f"report: {out / 'report.html'} ({time.perf_counter() - console.start:.1f} s in all)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="the end-to-end tour (synthetic catalogue, or MovieLens-100k)",
        description="Encode item text with the bundled language model (cached in --out), fit "
        "ALS, content, ItemKNN and a tuned hybrid, evaluate them on the warm, cold-item and "
        "new-user splits beside random and most-popular (one table), explain a sample user's "
        "recommendations, answer a text query, show a real-time update, and write figures and "
        "a self-contained HTML report to --out.",
    )
    p.add_argument(
        "--dataset",
        choices=("synthetic", "ml-100k"),
        default="synthetic",
        help="synthetic (seeded, offline; default) or ml-100k (needs --data-dir)",
    )
    p.add_argument(
        "--data-dir",
        default=None,
        help="folder holding MovieLens-100k's u.data etc. (with --dataset ml-100k)",
    )
    p.add_argument(
        "--size",
        choices=tuple(SIZES),
        default="small",
        help="synthetic size: tiny ({} users x {} items, {:,} interactions, seconds) or small "
        "(default, {} x {}, {:,} interactions)".format(*SIZES["tiny"], *SIZES["small"]),
    )
    p.add_argument("--out", default="semrec-demo", help="output folder (./semrec-demo)")
    p.add_argument("--seed", type=int, default=0, help="random seed (0)")
    p.add_argument("--threads", type=int, default=None, help="threads (default: all cores)")
    p.add_argument("--quiet", action="store_true", help="print only the table and the report path")
    p.add_argument("--no-figures", action="store_true", help="skip the figures (no matplotlib)")
    p.set_defaults(run=demo)
