"""Text encoder throughput: semrec (fp32, bf16, int8, auto) vs sentence-transformers.

Also the tokenizer vs HF ``tokenizers``, and (``--profile``) where semrec's time goes, stage by
stage, per precision and text set. The header names the CPU's features, the ISA caps in force,
the kernels each precision runs and the float32 GEMM rate of torch's BLAS (the peer's GEMMs).

Emulating an AVX2-only CPU (AMD Zen 3) on an AVX-512 one: set
``SEMREC_ISA=avx2 ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2``. Both sides then run AVX2:
- semrec: its own kernels (SEMREC_ISA), oneDNN's GEMMs (ONEDNN_MAX_CPU_ISA; the header prints
  oneDNN's ``isa:`` line), ATen's attention/LayerNorm/GELU (ATEN_CPU_CAPABILITY) and FBGEMM's
  int8 GEMMs (semrec sets ``FBGEMM_ENABLE_INSTRUCTIONS=AVX2`` when unset).
- sentence-transformers: its attention, GELU and LayerNorm are ATen kernels (capped the same
  way); its linears are MKL ``SGEMM`` calls (``MKL_VERBOSE=1`` shows them, with or without the
  variables above), which ONEDNN_MAX_CPU_ISA does not reach. This script also sets
  ``MKL_ENABLE_INSTRUCTIONS=AVX2`` (which caps MKL on Intel CPUs). On the AMD EPYC used for
  benchmarks/README.md MKL ignores that variable but runs its AVX2-class code there anyway:
  SGEMM 2048x384x1536 on 2 threads ran at 144-149 GFLOP/s with MKL_ENABLE_INSTRUCTIONS unset,
  AVX512, AVX2 or even SSE4_2, 134 with ``MKL_CBWR=AVX2`` (65 with ``MKL_CBWR=COMPATIBLE``,
  so MKL does read its variables), i.e. the peer's GEMMs run the same code path as on a
  Zen 3. The GEMM rate in the header lets other machines check this.

Texts: MovieLens-100k item texts ("<title> — <genres>" plus the wiki sentence when present)
and long texts (192-256 tokens, a part of them truncated at 256). Same model
(all-MiniLM-L6-v2) and threads for everyone. sentence-transformers runs at its default
batch_size=32 and at the best of a small batch-size search. Protocol (shared/PROTOCOL.md): the
methods alternate, one warm-up, median and min-max of ``--repeat`` runs; ratios are medians
over sentence-transformers' median. ``--quick`` uses fewer texts and repeats; ``--set`` runs
one text set (each set fits in one exclusive benchmark slot).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
_EMULATING_AVX2 = any(
    os.environ.get(v, "").lower() == "avx2"
    for v in ("SEMREC_ISA", "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")
)
if _EMULATING_AVX2:  # before torch loads MKL: the peer's GEMMs stay on AVX2 as well
    os.environ.setdefault("MKL_ENABLE_INSTRUCTIONS", "AVX2")

import _bench  # noqa: E402
import numpy as np  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def movielens_texts() -> list[str]:
    root = DATA / "ml-100k"
    genres = [
        line.split("|")[0]
        for line in (root / "u.genre").read_text(encoding="latin-1").splitlines()
        if line.strip()
    ]
    wiki = {}
    wiki_path = DATA / "movie_wiki.csv"
    if not wiki_path.exists():
        wiki_path = root / "movie_wiki.csv"
    if wiki_path.exists():
        with open(wiki_path, encoding="utf-8", errors="replace", newline="") as f:
            reader = csv.DictReader(f)
            fields = reader.fieldnames or []
            title_key = next((k for k in fields if "title" in k.lower()), fields[0])
            text_key = next((k for k in fields if k != title_key), fields[-1])
            for row in reader:
                wiki[row[title_key].strip()] = row[text_key].strip()
    texts = []
    for line in (root / "u.item").read_text(encoding="latin-1").splitlines():
        parts = line.split("|")
        if len(parts) < 24:
            continue
        title, flags = parts[1], parts[-19:]
        names = [g for g, f in zip(genres, flags, strict=True) if f == "1"]
        text = f"{title} — {', '.join(names)}"
        if title in wiki:
            text += ". " + wiki[title]
        texts.append(text)
    return texts


def long_texts(n: int, rng: np.random.Generator, vocab: list[str]) -> list[str]:
    # Whole-word vocabulary entries are one token each: 190-259 words give 192-256 tokens.
    words = [w for w in vocab if w.isalpha() and w.isascii() and len(w) > 3][:8000]
    return [" ".join(rng.choice(words, size=int(rng.integers(190, 260)))) for _ in range(n)]


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(methods: dict, repeat: int) -> dict[str, list[float]]:
    """Seconds per run of each method: one warm-up each, then the methods alternate."""
    for fn in methods.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(repeat):
        for name, fn in methods.items():
            times[name].append(timed(fn))
    return times


def best_st_batch(st, texts: list[str], sizes: tuple[int, ...]) -> tuple[int, dict[int, float]]:
    """sentence-transformers' fastest batch size on these texts (mean of 2 alternating runs)."""
    times = measure({b: (lambda b=b: st.encode(texts, batch_size=b)) for b in sizes}, 2)
    medians = {b: float(np.mean(t)) for b, t in times.items()}
    return min(medians, key=medians.get), medians


def blas_gemm_rate(threads: int) -> float:
    """GFLOP/s of torch's float32 linear (MKL SGEMM) at 2048x384 by 384x1536: the peer's GEMMs."""
    import torch

    torch.set_num_threads(threads)
    a, w = torch.randn(2048, 384), torch.randn(1536, 384)
    times = measure({"gemm": lambda: torch.nn.functional.linear(a, w)}, 10)["gemm"]
    return 2 * 2048 * 384 * 1536 / float(np.median(times)) / 1e9


def onednn_isa_line() -> str:
    """oneDNN's own report of the ISA it dispatches to, from a child process (same env)."""
    code = "import torch; torch.nn.Linear(8, 8)(torch.ones(2, 8)); " + (
        "torch.ops.mkldnn._linear_pointwise(torch.ones(2, 8), "
        "torch.ops.mkldnn._reorder_linear_weight(torch.ones(8, 8), None), None, 'none', [], None)"
    )
    env = dict(os.environ, ONEDNN_VERBOSE="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    return next((line for line in out.stdout.splitlines() if "isa:" in line), "no oneDNN line")


STAGES = (
    "embeddings",
    "qkv_dense",
    "attention",
    "attention_output_dense",
    "layernorm",
    "ffn_dense_gelu",
    "ffn_output_dense",
    "pooling",
)


def stage_shares(encoder, texts: list[str], batch_size: int) -> dict[str, float]:
    """Share of the wall time of ``encoder.encode(texts)`` spent in each stage of the forward pass.

    The C++ forward pass marks its stages as named scopes for torch's profiler (``semrec::...``);
    a scope's time is its wall time on the calling thread, intra-op threads included. An int8
    layer's stage holds its quantising, FBGEMM GEMM and dequantising (with the GELU or the
    residual), done block by block; "other" is tokenizing, batching and what lies between the
    stages.
    """
    from torch.profiler import ProfilerActivity, profile

    encoder.encode(texts[:batch_size], batch_size=batch_size)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        encoder.encode(texts, batch_size=batch_size)
        wall = time.perf_counter() - start
    shares = {name: 0.0 for name in STAGES}
    for event in prof.key_averages():
        if event.key.startswith("semrec::"):
            shares[event.key.removeprefix("semrec::")] = event.cpu_time_total / 1e6 / wall
    shares["other"] = 1.0 - sum(shares.values())
    shares["wall s"] = wall
    return shares


def print_profile(encoders: dict, texts: list[str], label: str, batch_size: int) -> None:
    """One column per precision: where its time goes on ``texts`` (see :func:`stage_shares`)."""
    columns = {name: stage_shares(enc, texts, batch_size) for name, enc in encoders.items()}
    print(f"\n#### where the time goes: {label} ({len(texts)} texts, profiler on)")
    print("| stage | " + " | ".join(f"{n} ({e.kernels_})" for n, e in encoders.items()) + " |")
    print("|---|" + "---:|" * len(encoders))
    for stage in (*STAGES, "other"):
        print(
            f"| {stage} | " + " | ".join(f"{100 * c[stage]:.1f}%" for c in columns.values()) + " |"
        )
    print(
        "| wall s (profiled) | " + " | ".join(f"{c['wall s']:.2f}" for c in columns.values()) + " |"
    )


def quality(encoders: dict) -> None:
    """Each precision's item vectors: cosine to fp32 and the content recommender's NDCG@10.

    MovieLens-100k warm split (PROTOCOL.md), ContentRecommender with default settings fitted
    on each set of vectors; the NDCG difference to fp32 with its paired standard error over
    users (the noise it must stay within).
    """
    import semrec
    from semrec import split

    data = semrec.datasets.movielens("100k", path=DATA / "ml-100k")
    texts = [str(t) for t in data.items["text"]]
    train, test = split.last_fraction(data)
    vectors = {name: enc.encode(texts) for name, enc in encoders.items()}
    per_user = {}
    for name, emb in vectors.items():
        model = semrec.ContentRecommender(emb, show_progress=False).fit(train)
        table, users = semrec.evaluate(
            model, train, test, k=10, metrics=["ndcg", "recall"], per_user=True
        )
        per_user[name] = (table, users)
    print(f"\n### item vectors per precision ({len(texts)} MovieLens-100k item texts)")
    print(
        "| precision | cosine to fp32 min / mean | NDCG@10 | Recall@10 | NDCG - fp32 (paired SE) |"
    )
    print("|---|---|---:|---:|---:|")
    base = per_user["fp32"][1]["ndcg"].to_numpy()
    for name, emb in vectors.items():
        cos = (emb * vectors["fp32"]).sum(1)
        table, users = per_user[name]
        diff = users["ndcg"].to_numpy() - base
        se = diff.std(ddof=1) / np.sqrt(len(diff))
        print(
            f"| {name} | {cos.min():.4f} / {cos.mean():.5f} | {table.loc[10, 'ndcg']:.4f} | "
            f"{table.loc[10, 'recall']:.4f} | {diff.mean():+.4f} ({se:.4f}) |"
        )


def words_table(texts: list[str], repeat: int) -> None:
    """``TfidfEncoder``'s word vectors against scikit-learn's, both fitted on ``texts`` with the
    same settings (tests/test_text_tfidf.py checks they agree), timed on 30 copies of them."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from semrec.text import TfidfEncoder

    ours = TfidfEncoder().fit(texts)
    theirs = TfidfVectorizer(min_df=2, sublinear_tf=True, max_features=4096, dtype=np.float32).fit(
        texts
    )
    many = texts * 30
    sk = "scikit-learn TfidfVectorizer.transform"
    times = measure(
        {
            sk: lambda: theirs.transform(many),
            "semrec TfidfEncoder.transform": lambda: ours.transform(many),
        },
        repeat,
    )
    ref = float(np.median(times[sk]))
    head = f"TF-IDF words ({len(many):,} texts; both single-threaded)"
    print(f"| {head} | texts/s | min-max | vs scikit-learn |")
    print("|---|---|---|---|")
    for method, t in times.items():
        print(row(method, len(many), t, ref))


def row(name: str, n: int, times: list[float], ref: float) -> str:
    med = float(np.median(times))
    return (
        f"| {name} | {n / med:,.0f} | {n / max(times):,.0f}-{n / min(times):,.0f} | "
        f"{ref / med:.2f}x |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--set", choices=("movielens", "long", "all"), default="all")
    parser.add_argument("--batch-size", type=int, default=32, help="semrec's batch size")
    parser.add_argument("--n-movielens", type=int, default=1682, help="item texts to encode")
    parser.add_argument("--n-long", type=int, default=256, help="long texts to encode")
    parser.add_argument("--search-every", type=int, default=1, help="ST search on every k-th")
    parser.add_argument("--profile", action="store_true", help="time per stage, per precision")
    parser.add_argument("--quality", action="store_true", help="NDCG of each precision's vectors")
    args = parser.parse_args()
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)  # HF tokenizers' thread pool

    import torch
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

    import semrec
    from semrec import TextEncoder
    from semrec.text import cpu_features
    from semrec.text._model import resolve_model_dir

    semrec.set_num_threads(args.threads)
    torch.set_num_threads(args.threads)
    directory = resolve_model_dir(None)
    vocab = (directory / "vocab.txt").read_text(encoding="utf-8").splitlines()
    rng = np.random.default_rng(0)
    n_ml, n_long = (400, 64) if args.quick else (args.n_movielens, args.n_long)
    repeat = 2 if args.quick else max(5, args.repeat)
    sets = {}
    if args.set in ("movielens", "all"):
        sets["movielens"] = movielens_texts()[:n_ml]
    if args.set in ("long", "all"):
        sets["long"] = long_texts(n_long, rng, vocab)

    features = cpu_features()
    encoders = {"fp32": TextEncoder(precision="fp32"), "int8": TextEncoder(precision="int8")}
    if features.bf16_native:  # elsewhere an explicit bf16 runs fp32 (with a warning)
        encoders["bf16"] = TextEncoder(precision="bf16")
    auto = TextEncoder()
    fp32 = encoders["fp32"]
    st = SentenceTransformer(str(directory), device="cpu")
    hf_tok = Tokenizer.from_file(str(directory / "tokenizer.json"))
    hf_tok.enable_truncation(fp32.max_length)
    b = args.batch_size

    print(features.describe())
    print(
        f"torch {torch.__version__}: ATen {torch.backends.cpu.get_cpu_capability()}, "
        f"MKL_ENABLE_INSTRUCTIONS={os.environ.get('MKL_ENABLE_INSTRUCTIONS', 'unset')}, "
        f"fp32 GEMM 2048x384x1536 {blas_gemm_rate(args.threads):.0f} GFLOP/s; "
        f"oneDNN: {onednn_isa_line()}"
    )
    print(
        "semrec paths: "
        + "; ".join(f"{name}: {enc.kernels_}" for name, enc in encoders.items())
        + f"; auto -> {auto.precision_} ({auto.kernels_})"
        + ("" if features.bf16_native else "; bf16 not run: no native bf16 here")
        + f"; loaded from {_bench.semrec_location()}"
    )
    print(
        f"threads={args.threads} (semrec, torch); all-MiniLM-L6-v2; repeats={repeat}; "
        f"semrec batch_size={b}; texts/s median and min-max; ratio = ST b32 median / median"
    )
    if args.quality:
        quality(encoders)
    for name, texts in sets.items():
        n = len(texts)
        lengths = [len(ids) for ids in fp32.tokenize(texts)]
        sizes = (32, 64) if args.quick else (16, 32, 64, 128)
        # The search may run on a sample (--search-every) to fit one exclusive benchmark slot.
        sample = texts[:: args.search_every]
        best, search = best_st_batch(st, sample, sizes)
        print(f"\n### {name}: {n} texts, tokens mean {np.mean(lengths):.0f}, max {max(lengths)}")
        print(
            f"ST batch-size search on {len(sample)} of them (s, mean of 2): "
            + ", ".join(f"{k}: {v:.2f}" for k, v in search.items()),
            flush=True,
        )
        st32 = "sentence-transformers, batch 32"
        st_best = f"sentence-transformers, batch {best} (best)" if best != 32 else st32
        methods = {st32: lambda t=texts: st.encode(t, batch_size=32)}
        if st_best != st32:
            methods[st_best] = lambda t=texts, k=best: st.encode(t, batch_size=k)
        for precision, enc in encoders.items():
            methods[f"semrec {precision}"] = lambda t=texts, e=enc: e.encode(t, batch_size=b)
        # The default encoder timed as a user gets it: its path must be the fastest one at parity.
        methods[f"semrec auto ({auto.precision_})"] = lambda t=texts: auto.encode(t, batch_size=b)
        start = _bench.cpu_seconds()
        times = measure(methods, repeat)
        contention = _bench.contention_note(start)
        ref32 = float(np.median(times[st32]))
        ref_best = float(np.median(times[st_best]))
        print("| method | texts/s | min-max | vs ST b32 | vs ST best |")
        print("|---|---|---|---|---|")
        for method, t in times.items():
            print(f"{row(method, n, t, ref32)} {ref_best / float(np.median(t)):.2f}x |", flush=True)
        print(contention)
        tok = measure(
            {
                "HF tokenizers encode_batch": lambda t=texts: hf_tok.encode_batch(t),
                "semrec tokenize": lambda t=texts: fp32.tokenize(t),
            },
            repeat,
        )
        ref = float(np.median(tok["HF tokenizers encode_batch"]))
        print("| tokenizer | texts/s | min-max | vs HF |")
        print("|---|---|---|---|")
        for method, t in tok.items():
            print(row(method, n, t, ref))
        if name == "movielens":
            words_table(texts, repeat)
        if args.profile:
            print_profile(encoders, texts[: 128 if name == "long" else 600], name, b)


if __name__ == "__main__":
    main()
