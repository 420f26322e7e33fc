"""Model directory reader: every file validated, errors name the file and the field; fuzzed."""

from __future__ import annotations

import json
import shutil
import struct

import numpy as np
import pytest
from fuzzing import corruptions
from text_helpers import TINY_VOCAB, default_model_dir, write_tiny_bert

import semrec
from semrec import TextEncoder

pytest.importorskip("transformers")
pytestmark = pytest.mark.filterwarnings(
    "ignore::FutureWarning", "ignore::DeprecationWarning", "ignore::UserWarning"
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny") / "model"
    write_tiny_bert(directory)
    return directory


def _copy(tiny, tmp_path, name="broken"):
    target = tmp_path / name
    shutil.copytree(tiny, target)
    return target


def _edit_json(path, **changes):
    value = json.loads(path.read_text())
    value.update(changes)
    path.write_text(json.dumps(value))


def _safetensors(header: dict, data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def _read_safetensors(path):
    blob = path.read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    return json.loads(blob[8 : 8 + n]), blob[8 + n :]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("num_hidden_layers", -1, "'num_hidden_layers' must be a positive integer, got -1"),
        ("num_hidden_layers", 0, "'num_hidden_layers' must be a positive integer"),
        ("hidden_size", "32", "'hidden_size' must be a positive integer, got '32'"),
        ("num_attention_heads", 5, "'num_attention_heads' \\(5\\) must divide 'hidden_size'"),
        ("intermediate_size", True, "'intermediate_size' must be a positive integer"),
        ("vocab_size", 10**12, "'vocab_size' must be a positive integer"),
        ("hidden_act", "relu", "'hidden_act' is 'relu'"),
        ("model_type", "roberta", "'model_type' is 'roberta'"),
        ("layer_norm_eps", -1.0, "'layer_norm_eps' must be in"),
        ("position_embedding_type", "relative_key", "'position_embedding_type'"),
    ],
)
def test_config_fields_are_validated(tiny, tmp_path, field, value, message):
    broken = _copy(tiny, tmp_path)
    _edit_json(broken / "config.json", **{field: value})
    with pytest.raises(semrec.FormatError, match=message) as err:
        TextEncoder(broken)
    assert "config.json" in str(err.value)


def test_config_that_disagrees_with_the_weights(tiny, tmp_path):
    fewer = _copy(tiny, tmp_path, "fewer")
    _edit_json(fewer / "config.json", num_hidden_layers=1)
    with pytest.raises(semrec.FormatError, match=r"'num_hidden_layers' is 1 but .* holds 2"):
        TextEncoder(fewer)
    more = _copy(tiny, tmp_path, "more")
    _edit_json(more / "config.json", num_hidden_layers=3)
    with pytest.raises(semrec.FormatError, match=r"encoder\.layer\.2\..* is missing"):
        TextEncoder(more)
    wider = _copy(tiny, tmp_path, "wider")
    _edit_json(wider / "config.json", intermediate_size=64)
    with pytest.raises(semrec.FormatError, match=r"has shape \[48, 32\], but config.json"):
        TextEncoder(wider)
    vocab = _copy(tiny, tmp_path, "vocab")
    _edit_json(vocab / "config.json", vocab_size=len(TINY_VOCAB) + 1)
    with pytest.raises(semrec.FormatError, match="'vocab_size' is 21 but the vocabulary has 20"):
        TextEncoder(vocab)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("config.json", b"{", "config.json is not valid JSON"),
        ("config.json", b"\xff\xfe{}", "config.json is not UTF-8"),
        ("config.json", b"[1, 2]", "config.json must hold a JSON dict"),
        ("config.json", b"[" * 100_000 + b"]" * 100_000, "config.json"),
        ("modules.json", b"{}", "modules.json must hold a JSON list"),
        ("modules.json", b'[{"type": "sentence_transformers.models.Dense"}]', "Dense.* not supp"),
        ("1_Pooling/config.json", b'{"pooling_mode_max_tokens": true}', "max_tokens is not"),
        ("1_Pooling/config.json", b'{"word_embedding_dimension": 7}', "is 7 but the model's"),
        ("sentence_bert_config.json", b'{"max_seq_length": -3}', "'max_seq_length' must be"),
        ("vocab.txt", b"[PAD]\n\xff\n", "vocab.txt is not UTF-8"),
    ],
)
def test_side_files_are_validated(tiny, tmp_path, name, content, message):
    broken = _copy(tiny, tmp_path)
    (broken / name).write_bytes(content)
    with pytest.raises(semrec.FormatError, match=message):
        TextEncoder(broken)


def test_tokenizer_json_vocabulary(tiny, tmp_path):
    transformers = pytest.importorskip("transformers")
    only_json = _copy(tiny, tmp_path, "json")
    fast = transformers.BertTokenizerFast(str(tiny / "vocab.txt"))
    (only_json / "tokenizer.json").write_text(fast.backend_tokenizer.to_str())
    (only_json / "vocab.txt").unlink()
    texts = ["the space war", "a love story!"]
    np.testing.assert_array_equal(
        TextEncoder(only_json).encode(texts), TextEncoder(tiny).encode(texts)
    )
    value = json.loads((only_json / "tokenizer.json").read_text())
    value["model"]["vocab"]["movie"] = 99
    (only_json / "tokenizer.json").write_text(json.dumps(value))
    with pytest.raises(semrec.FormatError, match=r"'model.vocab' ids must be 0..19"):
        TextEncoder(only_json)


def _with_tokenizer_files(tiny, tmp_path):
    """A copy of ``tiny`` with the tokenizer.json and tokenizer_config.json that Hugging Face
    writes for its (uncased) vocabulary."""
    transformers = pytest.importorskip("transformers")
    folder = _copy(tiny, tmp_path, "tokenizer")
    transformers.BertTokenizerFast(str(tiny / "vocab.txt")).save_pretrained(str(folder))
    return folder


def _set_tokenizer(folder, name, setting, value):
    path = folder / name
    content = json.loads(path.read_text())
    (content["normalizer"] if name == "tokenizer.json" else content)[setting] = value
    path.write_text(json.dumps(content))


@pytest.mark.parametrize(
    ("name", "setting", "value", "message"),
    [
        ("tokenizer.json", "lowercase", False, "tokenizer.json says the model is cased and .*"),
        ("tokenizer.json", "strip_accents", False, r"keeps accents \(lowercase=true, strip_acc"),
        ("tokenizer.json", "handle_chinese_chars", False, "sets handle_chinese_chars=false"),
        ("tokenizer.json", "clean_text", False, "sets clean_text=false"),
        ("tokenizer.json", "lowercase", "no", "field 'lowercase' must be a boolean, got 'no'"),
        ("tokenizer.json", "type", "Sequence", "field 'normalizer' is 'Sequence'"),
        ("tokenizer_config.json", "do_lower_case", False, "is uncased and tokenizer_config.js"),
        ("tokenizer_config.json", "strip_accents", False, r"keeps accents \(do_lower_case=tr"),
        ("tokenizer_config.json", "tokenize_chinese_chars", False, "tokenize_chinese_chars=false"),
        ("tokenizer_config.json", "do_basic_tokenize", False, "sets do_basic_tokenize=false"),
    ],
)
def test_tokenizer_settings_semrec_does_not_implement_are_refused(
    tiny, tmp_path, name, setting, value, message
):
    """semrec's tokenizer is BERT WordPiece, uncased or cased: one keeping accents while
    lowercasing, not splitting Chinese characters, or whose two files disagree on the case,
    would load and give vectors of wrongly tokenised text."""
    folder = _with_tokenizer_files(tiny, tmp_path)
    np.testing.assert_array_equal(
        TextEncoder(folder).encode(["the space war"]), TextEncoder(tiny).encode(["the space war"])
    )  # Hugging Face's own files for an uncased model load
    _set_tokenizer(folder, name, setting, value)
    with pytest.raises(semrec.FormatError, match=message) as err:
        TextEncoder(folder)
    assert str(folder / name) in str(err.value) or name in str(err.value).split(" and ")[1]
    assert isinstance(value, str) or "BERT WordPiece" in str(err.value) or "agree" in str(err.value)


def test_cased_settings_load_when_the_files_agree(tiny, tmp_path):
    """Both files cased: the cased tokenizer (a new identity, so no cached vector is shared);
    cased with strip_accents=true, or with sentence-transformers lowercasing it, is refused."""
    folder = _with_tokenizer_files(tiny, tmp_path)
    _set_tokenizer(folder, "tokenizer.json", "lowercase", False)
    _set_tokenizer(folder, "tokenizer_config.json", "do_lower_case", False)
    cased, uncased = TextEncoder(folder), TextEncoder(tiny)
    assert cased.identity != uncased.identity
    assert cased.tokenize("the space war") == uncased.tokenize("the space war")
    assert cased.tokenize("The SPACE war") != uncased.tokenize("The SPACE war")  # not in vocab
    _set_tokenizer(folder, "tokenizer_config.json", "strip_accents", False)  # what None means
    assert TextEncoder(folder).identity == cased.identity
    _edit_json(folder / "sentence_bert_config.json", do_lower_case=True)
    with pytest.raises(semrec.FormatError, match="do_lower_case=true on a cased tokenizer"):
        TextEncoder(folder)
    _edit_json(folder / "sentence_bert_config.json", do_lower_case=False)
    _set_tokenizer(folder, "tokenizer.json", "strip_accents", True)
    with pytest.raises(semrec.FormatError, match=r"strips accents but keeps case \(lowercase=f"):
        TextEncoder(folder)


@pytest.mark.parametrize(
    ("name", "setting", "value"),
    [
        ("tokenizer.json", "strip_accents", True),  # what None means when lowercasing
        ("tokenizer_config.json", "strip_accents", True),
        ("tokenizer.json", "normalizer", None),  # BertTokenizer builds it from the config
    ],
)
def test_tokenizer_settings_that_mean_the_same_load(tiny, tmp_path, name, setting, value):
    folder = _with_tokenizer_files(tiny, tmp_path)
    if setting == "normalizer":
        _edit_json(folder / name, normalizer=None)
    else:
        _set_tokenizer(folder, name, setting, value)
    TextEncoder(folder)
    for file in ("tokenizer.json", "tokenizer_config.json"):  # missing settings: the defaults
        content = json.loads((folder / file).read_text())
        if file == "tokenizer.json" and content["normalizer"] is not None:
            content["normalizer"] = {"type": "BertNormalizer"}
        else:
            content = {k: v for k, v in content.items() if k == "normalizer"}
        (folder / file).write_text(json.dumps(content))
    TextEncoder(folder)


def test_refused_tokenizer_settings_do_change_hugging_faces_tokens():
    """The reference: on the bundled MiniLM (which loads, its settings being the defaults)
    semrec's ids are Hugging Face's, and each setting refused above changes Hugging Face's."""
    transformers = pytest.importorskip("transformers")
    directory = default_model_dir()
    texts = ["Paris and London in winter", "Café Crème Brûlée", "电影 and 映画 films"]
    ours = TextEncoder(directory, precision="fp32").tokenize(texts)

    def hugging_face(**settings):
        tokenizer = transformers.BertTokenizerFast(str(directory / "vocab.txt"), **settings)
        return [tokenizer(t)["input_ids"] for t in texts]

    assert ours == hugging_face()
    for settings in (
        {"strip_accents": False},
        {"do_lower_case": False, "strip_accents": True},
        {"tokenize_chinese_chars": False},
    ):
        assert hugging_face(**settings) != ours, settings


def _rewrite_weights(directory, edit) -> None:
    header, data = _read_safetensors(directory / "model.safetensors")
    header, data = edit(header, data)
    (directory / "model.safetensors").write_bytes(_safetensors(header, data))


def _shift(header, name, delta):
    begin, end = header[name]["data_offsets"]
    header[name]["data_offsets"] = [begin + delta, end + delta]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("overlap", "overlaps"),
        ("gap", "leaves a gap"),
        ("tail", "extra bytes at the end"),
        ("outside", "outside the .*-byte data block"),
        ("shape", r"x 4 bytes \(F32\) does not match"),
        ("dtype", "unknown dtype 'F99'"),
        ("offsets", "data_offsets must be"),
        ("duplicate", "names .* twice"),
        ("depth", "nests 6 levels deep"),
        ("metadata", "__metadata__ must map strings"),
        ("nan", "holds NaN or infinite values"),
        ("int_dtype", "has dtype I32; supported"),
    ],
)
def test_safetensors_header_is_validated(tiny, tmp_path, case, message):
    broken = _copy(tiny, tmp_path)
    name = "embeddings.LayerNorm.bias"

    def edit(header, data):
        entries = sorted(
            (k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"]
        )
        second = entries[1]
        if case == "overlap":  # the second tensor starts inside the first (same length)
            _shift(header, second, -4)
        elif case == "gap":
            for k in entries[1:]:
                _shift(header, k, 4)
            data = (
                data[: header[second]["data_offsets"][0] - 4]
                + b"\0" * 4
                + data[header[second]["data_offsets"][0] - 4 :]
            )
        elif case == "tail":
            data += b"\0" * 8
        elif case == "outside":
            header[entries[-1]]["data_offsets"][1] += 4
        elif case == "shape":
            header[name]["shape"] = [31]
        elif case == "dtype":
            header[name]["dtype"] = "F99"
        elif case == "offsets":
            header[name]["data_offsets"] = [0, -1]
        elif case == "metadata":
            header["__metadata__"] = {"format": 3}
        elif case == "nan":
            begin = header[name]["data_offsets"][0]
            data = data[:begin] + struct.pack("<f", float("nan")) + data[begin + 4 :]
        elif case == "int_dtype":
            header[name]["dtype"] = "I32"
        return header, data

    if case == "duplicate":  # JSON with a repeated key cannot come from json.dumps
        header, data = _read_safetensors(broken / "model.safetensors")
        raw = json.dumps(header).encode()
        entry = json.dumps({name: header[name]}).encode()[1:-1]
        raw = raw[:-1] + b", " + entry + b"}"
        (broken / "model.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    elif case == "depth":
        header, data = _read_safetensors(broken / "model.safetensors")
        header["__metadata__"] = {"x": [[[["deep"]]]]}
        (broken / "model.safetensors").write_bytes(_safetensors(header, data))
    else:
        _rewrite_weights(broken, edit)
    with pytest.raises(semrec.FormatError, match=message) as err:
        TextEncoder(broken)
    assert "model.safetensors" in str(err.value)


def test_huge_nesting_and_header_length_are_refused_cheaply(tiny, tmp_path):
    broken = _copy(tiny, tmp_path)
    raw = b"[" * 5_000_000 + b"]" * 5_000_000
    (broken / "model.safetensors").write_bytes(struct.pack("<Q", len(raw)) + raw)
    with pytest.raises(semrec.FormatError, match="nests 5000000 levels"):
        TextEncoder(broken)
    (broken / "model.safetensors").write_bytes(struct.pack("<Q", 2**62) + b"{}")
    with pytest.raises(semrec.FormatError, match="does not fit the file"):
        TextEncoder(broken)


# --- fuzzing: every corruption is refused, or loads into a working encoder -----------------

_FILES = ["model.safetensors", "config.json", "vocab.txt", "modules.json",
          "1_Pooling/config.json", "sentence_bert_config.json"]  # fmt: skip


@pytest.mark.fuzz
@pytest.mark.parametrize("name", _FILES)
def test_fuzzed_model_files(tiny, tmp_path, name):
    # JSON and vocabulary files carry no checksum: a corruption that still reads as a valid,
    # consistent file (a changed digit, a renamed token) is a different model, not an error.
    # What must never happen is another exception, a crash, a hang or non-finite vectors.
    broken = _copy(tiny, tmp_path)
    blob = (tiny / name).read_bytes()
    cases = corruptions(blob) if name in _FILES[:2] else corruptions(blob, cases=50)
    loaded = refused = 0
    for description, damaged in cases:
        (broken / name).write_bytes(damaged)
        try:
            vectors = TextEncoder(broken, precision="fp32").encode(["the space war", "a love!"])
        except semrec.FormatError:
            refused += 1
            continue
        assert np.isfinite(vectors).all(), f"{name}, {description}: non-finite vectors"
        loaded += 1
    assert refused > 0, f"no corruption of {name} was refused"


# --- session 49 ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_max_length", "sentence_bert_config", "expected"),
    [
        (8, None, 8),  # a plain Hugging Face directory: the tokenizer's limit
        (8, {}, 8),  # a sentence-transformers config without max_seq_length: the same
        (int(1e30), None, 40),  # transformers' "no limit": max_position_embeddings
    ],
)
def test_max_length_without_max_seq_length_is_sentence_transformers(
    tiny, tmp_path, model_max_length, sentence_bert_config, expected
):
    """Without a max_seq_length, sentence-transformers keeps min(the tokenizer's
    model_max_length, max_position_embeddings) tokens; semrec kept max_position_embeddings,
    and encoded a long text from more tokens than the reference."""
    st = pytest.importorskip("sentence_transformers")
    folder = _with_tokenizer_files(tiny, tmp_path)
    _edit_json(folder / "tokenizer_config.json", model_max_length=model_max_length)
    if sentence_bert_config is None:
        (folder / "sentence_bert_config.json").unlink()
    else:
        (folder / "sentence_bert_config.json").write_text(json.dumps(sentence_bert_config))
    text = " ".join(TINY_VOCAB[5:] * 4)  # 60 tokens: past every limit here
    ours = TextEncoder(folder, precision="fp32")
    reference = st.SentenceTransformer(str(folder), device="cpu")
    assert ours.max_length == reference.max_seq_length == expected
    assert len(ours.tokenize(text)[0]) == expected
    np.testing.assert_allclose(
        ours.encode([text]), reference.encode([text], normalize_embeddings=True), atol=2e-6
    )


def test_bad_model_max_length_is_refused(tiny, tmp_path):
    folder = _with_tokenizer_files(tiny, tmp_path)
    (folder / "sentence_bert_config.json").unlink()
    for value in ("512", 1, 7.5):
        _edit_json(folder / "tokenizer_config.json", model_max_length=value)
        with pytest.raises(semrec.FormatError, match="'model_max_length' must be an integer"):
            TextEncoder(folder)


def test_a_relative_model_path_is_kept_absolute(tiny, tmp_path, monkeypatch):
    """A copy or a pickle made after os.chdir rebuilds from the same folder, not from a folder
    of that name under the new working directory (which fine_tune would then read)."""
    import copy
    import pickle

    _copy(tiny, tmp_path / "here", "m")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(tmp_path / "here")
    encoder = TextEncoder("m", precision="fp32")
    assert encoder.model_path == (tmp_path / "here" / "m").resolve()
    texts = ["the space war", "a love story"]
    monkeypatch.chdir(elsewhere)
    for copied in (copy.deepcopy(encoder), pickle.loads(pickle.dumps(encoder))):
        assert copied.model_path == encoder.model_path
        np.testing.assert_array_equal(copied.encode(texts), encoder.encode(texts))


def test_a_token_listed_twice_in_vocab_txt_is_refused(tiny, tmp_path):
    """Hugging Face gives a repeated token its last line's id, semrec's tokenizer its first's:
    the same text would give other vectors without a word, so the file is refused."""
    transformers = pytest.importorskip("transformers")
    folder = _copy(tiny, tmp_path)
    vocab = list(TINY_VOCAB)
    vocab[8] = "movie"  # line 9 repeats line 7 ("space" gone: the size is unchanged)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    hugging_face = transformers.BertTokenizer(str(folder / "vocab.txt"))
    assert hugging_face("movie")["input_ids"] == [2, 8, 3]  # the last line's id, not 6
    with pytest.raises(
        semrec.FormatError, match=r"vocab.txt: token 'movie' is on line 7 and again on line 9"
    ):
        TextEncoder(folder)


def test_weights_that_are_a_directory_are_refused(tiny, tmp_path):
    """The C++ reader read an 8-byte length from a directory without checking the read, and
    built its error from whatever the buffer held."""
    from semrec.text._safetensors import read_header

    folder = _copy(tiny, tmp_path)
    (folder / "model.safetensors").unlink()
    (folder / "model.safetensors").mkdir()
    with pytest.raises(semrec.FormatError, match=r"model.safetensors is a directory; it must"):
        TextEncoder(folder)
    with pytest.raises(semrec.FormatError, match="cannot read the header length"):
        read_header(folder / "model.safetensors")  # the C++ reader's own check
