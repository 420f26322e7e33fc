"""WordPiece tokenizer: ids identical to the Hugging Face fast tokenizer (uncased and cased)."""

from __future__ import annotations

import pytest
from text_helpers import default_model_dir, english_words, generate_texts, write_cased_minilm

tokenizers = pytest.importorskip("tokenizers")

# The reference libraries warn about their own deprecations; those are not ours to fix.
pytestmark = pytest.mark.filterwarnings(
    "ignore::FutureWarning", "ignore::DeprecationWarning", "ignore::UserWarning"
)


@pytest.fixture(scope="module")
def setup():
    from semrec import TextEncoder

    directory = default_model_dir()
    reference = tokenizers.Tokenizer.from_file(str(directory / "tokenizer.json"))
    encoder = TextEncoder()
    reference.enable_truncation(encoder.max_length)
    reference.no_padding()
    vocab = (directory / "vocab.txt").read_text(encoding="utf-8").splitlines()
    return encoder, reference, vocab


@pytest.fixture(scope="module")
def cased(tmp_path_factory):
    """A cased model (MiniLM with cased tokens in its unused slots) and Hugging Face's cased
    BERT tokenizer on the same vocabulary."""
    from semrec import TextEncoder

    directory = tmp_path_factory.mktemp("cased") / "model"
    vocab = write_cased_minilm(directory)
    encoder = TextEncoder(directory)
    reference = tokenizers.BertWordPieceTokenizer(str(directory / "vocab.txt"), lowercase=False)
    reference.enable_truncation(encoder.max_length)
    return encoder, reference, vocab


@pytest.mark.parametrize(
    ("count", "seed", "kind"),
    [
        (6000, 7, "setup"),
        (6000, 9, "cased"),
        pytest.param(60_000, 8, "setup", marks=pytest.mark.slow),
        pytest.param(60_000, 10, "cased", marks=pytest.mark.slow),
    ],
)
def test_ids_match_hf_tokenizers_on_generated_strings(request, count, seed, kind):
    encoder, reference, vocab = request.getfixturevalue(kind)
    texts = generate_texts(count, seed=seed, words=english_words(vocab))
    ours = encoder.tokenize(texts)
    theirs = [e.ids for e in reference.encode_batch(texts)]
    mismatches = [(t, a, b) for t, a, b in zip(texts, ours, theirs, strict=True) if a != b]
    assert not mismatches, f"{len(mismatches)} mismatches, first: {mismatches[:3]!r}"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["setup", "cased"])
def test_every_codepoint_tokenizes_as_hf_tokenizers_does(request, kind):
    # Inside a word and alone: the category, accent, lowercase, whitespace and CJK treatment
    # of every codepoint, including those where HF's tables are older or newer than Unicode's
    # (gen_unicode_tables.py lists them: U+2E43-U+2E4F, U+08D4-U+08E2, U+166D, U+1734, ...).
    encoder, reference, _ = request.getfixturevalue(kind)
    chars = [chr(cp) for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]
    for template in ("a{}b", "{}"):
        texts = [template.format(c) for c in chars]
        ours = encoder.tokenize(texts)
        theirs = [e.ids for e in reference.encode_batch(texts)]
        bad = [f"U+{ord(c):04X}" for c, a, b in zip(chars, ours, theirs, strict=True) if a != b]
        assert not bad, f"{template}: {len(bad)} codepoints differ, first {bad[:10]}"


def test_cased_tokens_keep_case_and_accents(cased, setup):
    """The cased tokenizer reaches the cased tokens the uncased one folds away."""
    encoder, _, vocab = cased
    text = "Café Crème Brûlée in São Paulo"
    assert [vocab[i] for i in encoder.tokenize(text)[0]] == [
        "[CLS]", "Café", "Crème", "Brûlée", "in", "São", "Paulo", "[SEP]",
    ]  # fmt: skip
    uncased, _, uncased_vocab = setup
    assert uncased_vocab[uncased.tokenize(text)[0][1]] == "cafe"


def test_truncation_counts_cls_and_sep(setup):
    encoder, _, _ = setup
    ids = encoder.tokenize("word " * 1000)[0]
    assert len(ids) == encoder.max_length == 256
    assert ids[0] == 101 and ids[-1] == 102


def test_literal_special_tokens_are_plain_text(setup):
    encoder, _, vocab = setup
    ids = encoder.tokenize("a [SEP] b")[0]
    assert [vocab[i] for i in ids] == ["[CLS]", "a", "[", "sep", "]", "b", "[SEP]"]


def test_bad_inputs(setup):
    encoder, _, _ = setup
    with pytest.raises(TypeError, match="texts"):
        encoder.tokenize(None)
    with pytest.raises(TypeError, match=r"texts\[1\]"):
        encoder.tokenize(["ok", 3])
    with pytest.raises(TypeError, match="bytes"):
        encoder.tokenize(b"abc")
