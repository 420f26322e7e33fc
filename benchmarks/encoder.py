"""Text encoder throughput: semrec (fp32, bf16) vs sentence-transformers; tokenizer vs HF.

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
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

import numpy as np

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
    args = parser.parse_args()
    os.environ["RAYON_NUM_THREADS"] = str(args.threads)  # HF tokenizers' thread pool

    import torch
    from sentence_transformers import SentenceTransformer
    from tokenizers import Tokenizer

    import semrec
    from semrec import TextEncoder
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

    fp32, bf16 = TextEncoder(), TextEncoder(precision="bf16")
    st = SentenceTransformer(str(directory), device="cpu")
    hf_tok = Tokenizer.from_file(str(directory / "tokenizer.json"))
    hf_tok.enable_truncation(fp32.max_length)
    b = args.batch_size

    print(
        f"threads={args.threads} (semrec, torch); all-MiniLM-L6-v2; repeats={repeat}; "
        f"semrec batch_size={b}; texts/s median and min-max; ratio = ST b32 median / median"
    )
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
        methods["semrec fp32"] = lambda t=texts: fp32.encode(t, batch_size=b)
        methods["semrec bf16"] = lambda t=texts: bf16.encode(t, batch_size=b)
        times = measure(methods, repeat)
        ref32 = float(np.median(times[st32]))
        ref_best = float(np.median(times[st_best]))
        print("| method | texts/s | min-max | vs ST b32 | vs ST best |")
        print("|---|---|---|---|---|")
        for method, t in times.items():
            print(f"{row(method, n, t, ref32)} {ref_best / float(np.median(t)):.2f}x |", flush=True)
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


if __name__ == "__main__":
    main()
