"""Text encoder throughput: semrec (fp32, bf16) vs sentence-transformers; tokenizer vs HF.

Texts: MovieLens-100k item texts ("<title> — <genres>" plus the wiki sentence when present)
and long texts (~200 tokens). Prints texts/s and ratios. ``--quick`` uses fewer texts.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

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
    words = [w for w in vocab if w.isalpha() and w.isascii() and len(w) > 3][:8000]
    return [" ".join(rng.choice(words, size=150)) for _ in range(n)]


def rate(fn, n: int, repeat: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

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
    n_ml, n_long = (400, 64) if args.quick else (1682, 400)
    repeat = 1 if args.quick else 3
    sets = {"movielens": movielens_texts()[:n_ml], "long": long_texts(n_long, rng, vocab)}

    fp32, bf16 = TextEncoder(), TextEncoder(precision="bf16")
    st = SentenceTransformer(str(directory), device="cpu")
    hf_tok = Tokenizer.from_file(str(directory / "tokenizer.json"))
    hf_tok.enable_truncation(fp32.max_length)

    print(f"threads={args.threads}  texts/s (higher is better), ratio vs sentence-transformers")
    print(f"{'set':<10} {'ST b32':>9} {'ST best':>9} {'fp32':>9} {'bf16':>9} {'fp32 x':>7} "
          f"{'bf16 x':>7} {'tok':>10} {'HF tok':>10} {'tok x':>6}")  # fmt: skip
    for name, texts in sets.items():
        n = len(texts)
        st_rates = {
            b: rate(lambda b=b, t=texts: st.encode(t, batch_size=b), n, repeat)
            for b in ((32,) if args.quick else (16, 32, 64, 128))
        }
        st32, st_best = st_rates[32], max(st_rates.values())
        r32 = rate(lambda t=texts: fp32.encode(t, batch_size=64), n, repeat)
        r16 = rate(lambda t=texts: bf16.encode(t, batch_size=64), n, repeat)
        tok = rate(lambda t=texts: fp32.tokenize(t), n, repeat + 2)
        hf = rate(lambda t=texts: hf_tok.encode_batch(t), n, repeat + 2)
        print(f"{name:<10} {st32:9.1f} {st_best:9.1f} {r32:9.1f} {r16:9.1f} "
              f"{r32 / st_best:7.2f} {r16 / st_best:7.2f} {tok:10.0f} {hf:10.0f} "
              f"{tok / hf:6.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
