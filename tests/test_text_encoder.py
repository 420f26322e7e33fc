"""BERT encoder: vectors match sentence-transformers / transformers; loader errors are clear."""

from __future__ import annotations

import shutil
import struct

import numpy as np
import pytest
from interrupts import ctrl_c
from text_helpers import (
    default_model_dir,
    english_words,
    generate_texts,
    write_tiny_bert,
)

import semrec
from semrec import EmbeddingCache, TextEncoder
from semrec.text import cpu_features

torch = pytest.importorskip("torch")

# The reference libraries warn about their own deprecations; those are not ours to fix.
pytestmark = pytest.mark.filterwarnings(
    "ignore::FutureWarning", "ignore::DeprecationWarning", "ignore::UserWarning"
)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


@pytest.fixture(scope="module")
def parity_texts():
    directory = default_model_dir()
    vocab = (directory / "vocab.txt").read_text(encoding="utf-8").splitlines()
    texts = generate_texts(1000, seed=3, words=english_words(vocab))
    return [t for t in texts if t.strip()] or ["x"]


@pytest.fixture(scope="module")
def st_reference(parity_texts):
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(str(default_model_dir()), device="cpu")
    return model.encode(parity_texts, batch_size=64, convert_to_numpy=True)


@pytest.mark.slow
def test_fp32_matches_sentence_transformers(parity_texts, st_reference):
    assert len(parity_texts) >= 990
    ours = TextEncoder(precision="fp32").encode(parity_texts, batch_size=32)
    assert ours.dtype == np.float32 and ours.shape == st_reference.shape
    cos = _cosines(ours, st_reference)
    assert cos.min() >= 0.99999, f"worst cosine {cos.min()} for {parity_texts[cos.argmin()]!r}"


@pytest.mark.slow
def test_bf16_matches_sentence_transformers(parity_texts, st_reference):
    # Elsewhere bf16 runs fp32 (warning once per process, so this test would depend on order):
    # that path's parity is test_fp32_matches_sentence_transformers.
    if not cpu_features().bf16_native:
        pytest.skip("no native bf16 here (bf16 would run fp32)")
    ours = TextEncoder(precision="bf16").encode(parity_texts)
    cos = _cosines(ours, st_reference)
    assert cos.min() >= 0.999, f"worst cosine {cos.min()}"


@pytest.mark.slow
def test_int8_matches_sentence_transformers(parity_texts, st_reference):
    enc = TextEncoder(precision="int8")
    assert enc.precision_ == "int8" and enc.kernels_.startswith("int8 FBGEMM")
    cos = _cosines(enc.encode(parity_texts), st_reference)
    assert cos.min() >= 0.99, f"worst cosine {cos.min()} for {parity_texts[cos.argmin()]!r}"
    # Without VNNI (AVX2 only) the weights or activations have 7 bits: a looser mean, as in the
    # emulated test below (AMD EPYC Zen, native AVX2: mean 0.99663).
    assert cos.mean() >= (0.996 if "7-bit" in enc.kernels_ else 0.997)


# Variables that make this process's libraries run as on an AVX2-only CPU (no VNNI, no bf16).
AVX2_ONLY = {"SEMREC_ISA": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"}


@pytest.mark.slow
def test_int8_on_an_avx2_only_cpu_matches_sentence_transformers(
    parity_texts, st_reference, tmp_path
):
    # The AVX2 int8 path (7-bit weights or activations, no VNNI) is another set of kernels and
    # roundings: a fresh process with the emulation variables encodes the parity corpus, and
    # its vectors must meet the same target against sentence-transformers fp32 (run here).
    import json
    import subprocess
    import sys

    from semrec.text.precision import int8_available

    if not int8_available() or not semrec.text.cpu_features().avx2:
        pytest.skip("no FBGEMM int8 kernels on this CPU / torch build")
    (tmp_path / "texts.json").write_text(json.dumps(parity_texts), encoding="utf-8")
    code = (
        "import json, sys, numpy as np, torch, semrec\n"
        "texts = json.load(open(sys.argv[1], encoding='utf-8'))\n"
        "enc = semrec.TextEncoder(precision='int8')\n"
        "print(torch.backends.cpu.get_cpu_capability(), '|', enc.kernels_)\n"
        "np.save(sys.argv[2], enc.encode(texts, batch_size=32))\n"
        "np.save(sys.argv[3], np.vstack([enc.encode([t]) for t in texts[:40]]))\n"
    )
    env = dict(__import__("os").environ, **AVX2_ONLY)
    env.pop("FBGEMM_ENABLE_INSTRUCTIONS", None)
    paths = [str(tmp_path / name) for name in ("texts.json", "batched.npy", "alone.npy")]
    out = subprocess.run(
        [sys.executable, "-c", code, *paths], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("AVX2 | int8 FBGEMM avx2 "), out  # the emulation took effect
    batched, alone = np.load(paths[1]), np.load(paths[2])
    np.testing.assert_array_equal(alone, batched[:40])  # bitwise batch-independent on AVX2 too
    cos = _cosines(batched, st_reference)
    assert cos.min() >= 0.99, f"worst cosine {cos.min()} for {parity_texts[cos.argmin()]!r}"
    assert cos.mean() >= 0.996


@pytest.mark.parametrize("intermediate_size", [48, 45])
def test_int8_dense_layers_match_a_numpy_reference(tmp_path, intermediate_size):
    # The tiny BERT's int8 vectors against transformers' fp32 ones: the quantisation error of
    # 8-bit per-row activations and per-channel weights, nothing more. (45: each row's last 5
    # feed-forward values are dequantised, and go through GELU, apart from the vector loop.
    # Channels 40-44 are made to matter: without their GELU the worst cosine was 0.85.)

    def channels_40_to_44_matter(model):
        for layer in model.encoder.layer:
            layer.intermediate.dense.bias[40:45] = -2.0  # where GELU is far from linear
            layer.output.dense.weight[:, 40:45] *= 4.0

    transformers = pytest.importorskip("transformers")
    model = write_tiny_bert(
        tmp_path / "tiny", intermediate_size=intermediate_size, edit=channels_40_to_44_matter
    )
    texts = ["the space war", "a love story, great!", "bad films", "movie " * 30]
    hf_tok = transformers.BertTokenizerFast(str(tmp_path / "tiny" / "vocab.txt"))
    batch = hf_tok(texts, truncation=True, max_length=16, padding=True, return_tensors="pt")
    with torch.no_grad():
        reference = model(**batch).last_hidden_state[:, 0].numpy()
    ours = TextEncoder(tmp_path / "tiny", precision="int8").encode(texts, normalize=False)
    assert _cosines(ours, reference).min() >= 0.995


def test_int8_ffn_output_outlier_channels_stay_float32(tmp_path):
    # Two feed-forward channels per layer reach ~20x the others after GELU (as MiniLM's 14-25
    # against a median of 1.2-1.4). The int8 FFN output layer must find them (calibration at
    # load) and compute them in float32: quantised with the rest, they would set each row's
    # step ~20x too coarse for the other 254 channels. Reference: transformers in float32.
    transformers = pytest.importorskip("transformers")

    def outliers(model):
        for layer in model.encoder.layer:
            layer.intermediate.dense.bias[[7, 200]] = 25.0
            layer.output.dense.weight[:, [7, 200]] *= 0.1  # keep the residual stream sane

    model = write_tiny_bert(tmp_path / "tiny", intermediate_size=256, edit=outliers)
    texts = ["the space war", "a love story, great!", "bad films", "movie " * 30]
    hf_tok = transformers.BertTokenizerFast(str(tmp_path / "tiny" / "vocab.txt"))
    batch = hf_tok(texts, truncation=True, max_length=16, padding=True, return_tensors="pt")
    with torch.no_grad():
        reference = model(**batch).last_hidden_state[:, 0].numpy()
    enc = TextEncoder(tmp_path / "tiny", precision="int8")
    assert "16 fp32 outlier channels in the FFN output" in enc.kernels_
    assert _cosines(enc.encode(texts, normalize=False), reference).min() >= 0.999


def test_precision_auto_and_the_path_reported():
    from semrec.text import cpu_features

    features = cpu_features()
    # torch's own CPUID flags decide what "AMX" and "native bf16" mean here (no ISA caps).
    amx = bool(torch.cpu._is_amx_tile_supported())
    native = bool(torch.cpu._is_avx512_bf16_supported() or amx)
    if features.caps:
        pytest.skip(f"ISA caps set: {features.caps}")
    from semrec.text.precision import int8_available

    auto = TextEncoder()
    assert auto.precision == "auto"
    fallback = "bf16" if native else "fp32"
    assert auto.precision_ == ("bf16" if amx else "int8" if int8_available() else fallback)
    assert f"[{auto.kernels_}]" in repr(auto) and auto.kernels_.startswith(auto.precision_)
    # The cache key names the path: int8 without VNNI is "int8-7bit" (other vectors than VNNI's).
    seven_bit = "-7bit" if "7-bit" in auto.kernels_ else ""
    assert auto.identity.endswith(":" + auto.precision_ + seven_bit)


def test_resolve_precision_rules():
    from semrec.text.precision import CpuFeatures, resolve_precision

    def cpu(bf16: bool, amx: bool = False, **caps: str) -> CpuFeatures:
        return CpuFeatures(True, True, True, bf16, amx, caps, "AVX512")

    if not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        pytest.skip("oneDNN has no bf16 here at all")
    # bf16 on AMX; with AVX-512 BF16 alone (AMD Zen 4) int8's VNNI kernels are faster.
    assert resolve_precision("auto", cpu(True, amx=True), int8=True) == "bf16"
    assert resolve_precision("auto", cpu(True), int8=True) == "int8"
    assert resolve_precision("auto", cpu(True), int8=False) == "bf16"
    # Without native bf16: int8 where FBGEMM runs it, else fp32.
    assert resolve_precision("auto", cpu(False), int8=True) == "int8"
    assert resolve_precision("auto", cpu(False), int8=False) == "fp32"
    # Every emulation cap lowers the answer, whichever library it names.
    for name in ("ONEDNN_MAX_CPU_ISA", "SEMREC_ISA", "FBGEMM_ENABLE_INSTRUCTIONS"):
        assert resolve_precision("auto", cpu(True, True, **{name: "avx2"}), int8=True) == "int8"
    vnni_only = cpu(True, ONEDNN_MAX_CPU_ISA="AVX512_CORE_VNNI")
    assert resolve_precision("auto", vnni_only, int8=False) == "fp32"
    amx_cap = cpu(True, True, ONEDNN_MAX_CPU_ISA="AVX512_CORE_AMX")
    assert resolve_precision("auto", amx_cap, int8=True) == "bf16"
    capped = cpu(True, True, ONEDNN_MAX_CPU_ISA="AVX512_CORE_BF16")  # AMX capped away
    assert resolve_precision("auto", capped, int8=True) == "int8"
    assert not cpu(True, ONEDNN_MAX_CPU_ISA="AVX2").vnni
    assert resolve_precision("int8", cpu(False)) == "int8"
    with pytest.warns(RuntimeWarning, match="no native support"):
        assert resolve_precision("bf16", cpu(False)) == "fp32"


@pytest.mark.slow
def test_emulated_avx2_cpu_is_honoured():
    # A fresh process with the emulation variables: oneDNN must lose bf16, FBGEMM must drop to
    # AVX2, ATen to AVX2, and "auto" must not pick bf16; explicit bf16 warns and runs fp32.
    import subprocess
    import sys

    code = (
        "import warnings, torch, semrec\n"
        "enc = semrec.TextEncoder(precision='int8')\n"
        "print('aten', torch.backends.cpu.get_cpu_capability())\n"
        "print('onednn_bf16', torch.ops.mkldnn._is_mkldnn_bf16_supported())\n"
        "print('auto', semrec.TextEncoder().precision_)\n"
        "print('int8', enc.kernels_)\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    b = semrec.TextEncoder(precision='bf16')\n"
        "    semrec.TextEncoder(precision='bf16')\n"
        "print('bf16', b.precision_, sum('no native support' in str(x.message) for x in w))\n"
    )
    env = dict(
        __import__("os").environ,
        SEMREC_ISA="avx2",
        ONEDNN_MAX_CPU_ISA="AVX2",
        ATEN_CPU_CAPABILITY="avx2",
    )
    env.pop("FBGEMM_ENABLE_INSTRUCTIONS", None)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "aten AVX2" in out
    assert "onednn_bf16 False" in out
    assert "auto int8" in out  # no native bf16: int8 on FBGEMM's AVX2 kernels
    assert "int8 int8 FBGEMM avx2" in out
    assert "bf16 fp32 1" in out  # warned once for two encoders


def test_order_batch_size_and_streaming_do_not_change_vectors():
    enc = TextEncoder()
    texts = ["a space opera", "a much longer text about a romantic comedy set in paris", "x"]
    full = enc.encode(texts, batch_size=3)
    np.testing.assert_array_equal(enc.encode(texts, batch_size=2**63), full)  # past int32: all
    one = np.vstack([enc.encode(t) for t in texts])
    streamed = enc.encode(iter(texts), batch_size=1, show_progress=True)
    np.testing.assert_allclose(one, full, atol=1e-5)
    np.testing.assert_allclose(streamed, full, atol=1e-5)
    raw = enc.encode(texts, normalize=False)
    np.testing.assert_allclose(raw / np.linalg.norm(raw, axis=1, keepdims=True), full, atol=1e-6)
    assert enc.dim == 384 and enc.max_length == 256


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["int8", "fp32", "bf16"])
def test_a_texts_vector_does_not_depend_on_its_batch(precision):
    # Texts of many lengths, encoded alone (no padding) and in batches of mixed lengths: equal
    # vectors, and both close to sentence-transformers fp32. (int8 once moved 0.013 per
    # component: padded attention rounded differently and the activations' int8 rounding grew
    # that; batches are now unpadded.)
    from semrec.text import cpu_features

    st = pytest.importorskip("sentence_transformers")
    if precision == "bf16" and not cpu_features().bf16_native:
        pytest.skip("no native bf16 here (bf16 would run fp32)")
    texts = _mixed_texts(48, seed=21)
    reference = st.SentenceTransformer(str(default_model_dir()), device="cpu").encode(texts)
    enc = TextEncoder(precision=precision)
    batched = enc.encode(texts, batch_size=16)
    alone = np.vstack([enc.encode([t]) for t in texts])
    regrouped = enc.encode(texts[::-1], batch_size=7)[::-1]
    np.testing.assert_allclose(alone, batched, rtol=0, atol=1e-5)
    np.testing.assert_allclose(regrouped, batched, rtol=0, atol=1e-5)
    bound = {"fp32": 0.99999, "bf16": 0.999, "int8": 0.99}[enc.precision_]
    assert _cosines(alone, reference).min() >= bound


def test_bad_encode_inputs():
    enc = TextEncoder()
    with pytest.raises(ValueError, match="empty"):
        enc.encode([])
    with pytest.raises(TypeError, match="None"):
        enc.encode(None)
    with pytest.raises(TypeError, match=r"texts\[0\]"):
        enc.encode([1.5])
    with pytest.raises(ValueError, match="batch_size"):
        enc.encode(["a"], batch_size=0)
    with pytest.raises(ValueError, match="precision"):
        TextEncoder(precision="fp8")
    with pytest.raises(
        ValueError, match=r"texts\[1\] holds a lone surrogate U\+D800 at position 3"
    ):
        enc.encode(["fine", "abc\ud800"])
    with pytest.raises(ValueError, match=r"texts\[0\] holds a lone surrogate U\+DE00"):
        enc.tokenize("\ude00")


# --- a tiny random BERT with CLS pooling (bge-style layout) ----------------------------------


@pytest.mark.parametrize("prefix", ["", "bert."])
def test_tiny_cls_bert_matches_transformers(tmp_path, prefix):
    transformers = pytest.importorskip("transformers")
    model = write_tiny_bert(tmp_path / "tiny", prefix)
    texts = ["the space war", "a love story, great!", "bad films", "zzz unknown", "movie " * 30]
    hf_tok = transformers.BertTokenizerFast(str(tmp_path / "tiny" / "vocab.txt"))
    enc = TextEncoder(tmp_path / "tiny", precision="fp32")
    ours_ids = enc.tokenize(texts)
    batch = hf_tok(texts, truncation=True, max_length=16, padding=True, return_tensors="pt")
    ref_ids = [row[row != 0].tolist() for row in batch["input_ids"]]
    assert ours_ids == ref_ids
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state[:, 0].numpy()
    ours = enc.encode(texts, normalize=False)
    np.testing.assert_allclose(ours, hidden, rtol=1e-4, atol=1e-5)


def test_own_attention_loops_match_transformers_at_every_length(tmp_path):
    """One head 32 wide, as MiniLM's: semrec's own attention loops (blocks of 6 query rows,
    tiles of 16 keys, its own exp) against transformers, on sequences of 3 to 300 tokens (every
    block and tail shape, both sides of the old 128-token switch to SDPA), with queries and keys
    scaled up so that the softmax is far from uniform."""
    transformers = pytest.importorskip("transformers")

    def sharpen(model):
        for layer in model.encoder.layer:
            layer.attention.self.query.weight.mul_(20.0)
            layer.attention.self.key.weight.mul_(20.0)

    model = write_tiny_bert(tmp_path / "tiny", heads=1, max_length=300, edit=sharpen)
    words = ["the", "movie", "film", "space", "war", "love", "story", "a", "of", "great", "bad"]
    rng = np.random.default_rng(0)
    lengths = [*range(1, 40), 126, 127, 128, 129, 200, 254, 255, 298]  # words; +2 tokens each
    texts = [" ".join(rng.choice(words, size=n)) for n in lengths]
    hf_tok = transformers.BertTokenizerFast(str(tmp_path / "tiny" / "vocab.txt"))
    batch = hf_tok(texts, truncation=True, max_length=300, padding=True, return_tensors="pt")
    with torch.no_grad():
        reference = model(**batch).last_hidden_state[:, 0].numpy()
        # The first layer's attention over the longest text is far from uniform: the largest
        # weight of a row is typically about a third (a uniform row's: 1/300).
        ids = batch["input_ids"][-1:]
        hidden = model.embeddings(input_ids=ids)
        attention = model.encoder.layer[0].attention.self
        scores = attention.query(hidden) @ attention.key(hidden).transpose(1, 2) / 32**0.5
        assert float(scores.softmax(-1).amax(-1).median()) > 0.1
    ours = TextEncoder(tmp_path / "tiny", precision="fp32").encode(texts, normalize=False)
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-5)


def test_corrupt_and_missing_files_raise_clear_errors(tmp_path):
    good = tmp_path / "good"
    write_tiny_bert(good, "")
    with pytest.raises(FileNotFoundError, match="does not exist; pass a model's directory") as e:
        TextEncoder(tmp_path / "nowhere")
    assert "bundled" not in str(e.value)
    with pytest.raises(FileNotFoundError, match=r"None for the bundled .*: TextEncoder\(\)"):
        TextEncoder(tmp_path / "all-MiniLM-L6-v2")  # the model's name, not a folder here
    with pytest.raises(NotADirectoryError, match="is a file; pass the model's directory"):
        TextEncoder(good / "model.safetensors")
    data = (good / "model.safetensors").read_bytes()
    (header_len,) = struct.unpack("<Q", data[:8])
    cases = {
        "truncated": data[: len(data) // 2],
        "short": data[:5],
        "bad_length": struct.pack("<Q", 10**12) + data[8:],
        "bad_json": data[:8] + b"{" * header_len + data[8 + header_len :],
    }
    for name, content in cases.items():
        broken = tmp_path / name
        shutil.copytree(good, broken)
        (broken / "model.safetensors").write_bytes(content)
        with pytest.raises(semrec.FormatError):
            TextEncoder(broken)
    missing = tmp_path / "missing"
    shutil.copytree(good, missing)
    (missing / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors"):
        TextEncoder(missing)
    novocab = tmp_path / "novocab"
    shutil.copytree(good, novocab)
    (novocab / "vocab.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"vocab\.txt"):
        TextEncoder(novocab)


def test_hub_id_without_files_says_how_to_get_them(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="download"):
        TextEncoder("no-such-org/no-such-model-semrec")


def test_embedding_cache_reuses_vectors(tmp_path):
    enc = TextEncoder()
    cache = EmbeddingCache(enc, tmp_path / "emb.sqlite")
    texts = ["a space opera", "a romantic comedy", "a space opera"]
    first = cache.encode(texts)
    assert len(cache) == 2
    np.testing.assert_allclose(first, enc.encode(texts), atol=1e-6)
    cache.close()
    again = EmbeddingCache(enc, tmp_path / "emb.sqlite")
    calls = []
    original = enc.encode
    enc.encode = lambda *a, **k: calls.append(a) or original(*a, **k)
    np.testing.assert_array_equal(again.encode(texts[:2]), first[:2])
    assert not calls
    again.close()


# --- threads, Ctrl-C, and the plain-ATen fallback ------------------------------------------


def _mixed_texts(n: int, seed: int) -> list[str]:
    vocab = (default_model_dir() / "vocab.txt").read_text(encoding="utf-8").splitlines()
    return [t for t in generate_texts(n, seed=seed, words=english_words(vocab)) if t.strip()]


def test_num_threads_per_call_is_used_and_restored(monkeypatch):
    enc = TextEncoder()
    texts = _mixed_texts(24, seed=11)
    real = torch.set_num_threads
    seen: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (seen.append(n), real(n))[1])
    real(3)
    try:
        one = enc.encode(texts, num_threads=1)
        assert seen == [1, 3] and torch.get_num_threads() == 3
        seen.clear()
        all_cores = enc.encode(texts, num_threads=0)
        assert seen == [semrec._native.core.max_threads(), 3]
        seen.clear()
        semrec.set_num_threads(2)  # None: the package default at call time
        real(3)
        seen.clear()
        two = enc.encode(texts)
        assert seen == [2, 3]
        seen.clear()
        TextEncoder(num_threads=1).encode("x")  # the encoder's own setting beats the default
        assert seen == [1, 3]
        seen.clear()
        with pytest.raises(TypeError, match=r"texts\[1\]"):  # fails mid-call: still restored
            enc.encode(iter(["fine", 3]), num_threads=1)
        assert seen == [1, 3] and torch.get_num_threads() == 3
    finally:
        semrec.set_num_threads(0)
        real(semrec.get_num_threads())
    # fp32: every kernel splits work without changing the summation order.
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one, all_cores)


def test_bad_num_threads():
    enc = TextEncoder()
    with pytest.raises(ValueError, match="num_threads"):
        enc.encode("x", num_threads=-1)
    with pytest.raises(TypeError, match="num_threads"):
        enc.encode("x", num_threads="2")
    with pytest.raises(ValueError, match="num_threads"):
        TextEncoder(num_threads=-2)
    assert "num_threads=None" in repr(enc)


def test_bf16_vectors_barely_depend_on_threads():
    # oneDNN may split a bf16 GEMM's reduction across threads: equal to bf16 rounding only.
    if not cpu_features().bf16_native:  # bf16 would run fp32 (its warning is once per process)
        pytest.skip("no native bf16 here (bf16 would run fp32)")
    enc = TextEncoder(precision="bf16")
    texts = _mixed_texts(60, seed=12)
    cos = _cosines(enc.encode(texts, num_threads=1), enc.encode(texts, num_threads=2))
    assert cos.min() >= 0.9999


@pytest.mark.parametrize("precision", ["int8", "fp32"])
def test_threads_running_whole_batches_give_the_same_vectors(precision):
    # Enough texts for each thread to take whole batches of its own (BertEncoder::encode) give
    # the vectors one thread gives, bit for bit, and those of each text encoded alone (the
    # batch-independence test above checks the latter against sentence-transformers).
    if semrec._native.core.max_threads() < 2:
        pytest.skip("one core: every call runs on one thread")
    from semrec.text.precision import int8_available

    if precision == "int8" and not int8_available():
        pytest.skip("no int8 kernel on this CPU")
    enc = TextEncoder(precision=precision)
    texts = _mixed_texts(120, seed=14)
    one = enc.encode(texts, batch_size=16, num_threads=1)
    two = enc.encode(texts, batch_size=16, num_threads=2)
    np.testing.assert_array_equal(one, two)
    alone = np.vstack([enc.encode([t], num_threads=1) for t in texts[:12]])
    np.testing.assert_array_equal(alone, two[:12])


@pytest.mark.slow
@pytest.mark.parametrize(("precision", "bound"), [("fp32", 0.99999), ("bf16", 0.999)])
def test_plain_aten_path_matches_sentence_transformers(precision, bound):
    # Where oneDNN is missing the encoder runs at::linear + separate GELU / add: same maths.
    st = pytest.importorskip("sentence_transformers")
    from semrec.text._model import load_model_files
    from semrec.text._torch import text_ext

    texts = _mixed_texts(80, seed=13)
    reference = st.SentenceTransformer(str(default_model_dir()), device="cpu").encode(texts)
    # The shell's precision is fp32 so no bf16 warning fires (it fires once per process, which
    # would make this test depend on order); its model runs `precision` on ATen, emulated
    # where the CPU has no native bf16.
    enc = TextEncoder(precision="fp32")
    files = load_model_files(None)
    files.config.precision = precision
    files.config.onednn = False
    enc._model = text_ext.BertEncoder(
        files.config, str(files.weights), files.data_start, files.entries, files.prefix
    )
    cos = _cosines(enc.encode(texts, batch_size=16), reference)
    assert cos.min() >= bound, f"worst cosine {cos.min()}"


@pytest.mark.slow
@pytest.mark.parametrize("threads", [1, 2])
def test_ctrl_c_interrupts_a_long_encode_and_the_encoder_stays_usable(threads) -> None:
    # 2 threads: each runs whole batches of its own; only the calling one polls for Ctrl-C.
    out = ctrl_c(
        """
        import numpy as np, torch, semrec
        enc = semrec.TextEncoder()
        before = enc.encode(["a space opera", "a romantic comedy"])
        threads = torch.get_num_threads()
        long = " ".join(["word"] * 300)
        """,
        # One C++ call: 63 batches of 256 tokens, minutes of work.
        f"enc.encode([long] * 4000, batch_size=64, num_threads={threads})\n",
        """
        after = enc.encode(["a space opera", "a romantic comedy"])
        print("usable", np.array_equal(before, after), torch.get_num_threads() == threads)
        """,
    )
    assert "interrupted" in out
    assert "usable True True" in out


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny") / "model"
    write_tiny_bert(directory)
    return TextEncoder(directory, precision="fp32")


def test_progress_bar_moves_every_few_batches(tiny_encoder, monkeypatch):
    """The bar used to move once per 4096 texts: a bar that sits at 0% for most of a call. The
    chunks behind it do not change the vectors."""
    import tqdm.auto

    updates = []

    class Bar:  # records what encode reports
        def __init__(self, total=None, **kwargs):
            self.total = total

        def update(self, n):
            updates.append(n)

        def close(self):
            pass

    monkeypatch.setattr(tqdm.auto, "tqdm", Bar)
    words = ["the", "movie", "space", "war", "love", "story", "great", "bad", "film"]
    texts = [" ".join(words[: 1 + i % 9]) + f" {i}" for i in range(300)]
    shown = tiny_encoder.encode(texts, batch_size=8, num_threads=2, show_progress=True)
    assert len(updates) >= 4 and sum(updates) == 300
    np.testing.assert_array_equal(shown, tiny_encoder.encode(texts, batch_size=8, num_threads=2))


def test_texts_as_numpy_arrays_and_pandas_series_are_texts(tiny_encoder):
    """add_items and recommend_text take texts in whatever form encode does: a NumPy str or
    object array, a pandas Series, as well as a list (they were refused as bad embeddings)."""
    pd = pytest.importorskip("pandas")
    import scipy.sparse as sp

    from semrec import ContentRecommender, TextCF

    enc = tiny_encoder
    emb = enc.encode(["the space war", "a love story", "bad films", "the war movie", "great"])
    clicks = sp.csr_array(np.eye(3, 5, dtype=np.float32) + np.eye(3, 5, 1, dtype=np.float32))
    new = ["a great space film", "the love war"]
    forms = [  # each makes the texts given in one form
        np.array,
        lambda t: np.array(t, dtype=object),
        lambda t: pd.Series(t, index=np.arange(len(t)) + 7),
        lambda t: pd.Series(t, dtype="string"),
    ]
    queries = ["space war", "love"]
    options = dict(hidden=16, factors=8, layers=1, negatives=2, batch_size=4, epochs=1,
                   random_state=0, num_threads=1, show_progress=False, encoder=enc)  # fmt: skip
    # The list form is the reference: its new vectors are the encoder's own.
    content = ContentRecommender(emb, encoder=enc, show_progress=False).fit(clicks)
    assert content.add_items(new).tolist() == [5, 6]
    np.testing.assert_allclose(content.item_embeddings_[5:], enc.encode(new), atol=1e-6)
    expected = content.recommend_text(queries, k=4)
    textcf = TextCF(emb, **options).fit(clicks)
    textcf_ids = textcf.add_items(new)
    textcf_scores = textcf.score(0, textcf_ids)
    for form in forms:
        model = ContentRecommender(emb, encoder=enc, show_progress=False).fit(clicks)
        assert model.add_items(form(new)).tolist() == [5, 6], type(form(new))
        np.testing.assert_array_equal(model.item_embeddings_, content.item_embeddings_)
        for got, want in zip(model.recommend_text(form(queries), k=4), expected, strict=True):
            np.testing.assert_array_equal(got, want)
        other = TextCF(emb, **options).fit(clicks)
        ids = other.add_items(form(new))
        np.testing.assert_array_equal(ids, textcf_ids)
        np.testing.assert_array_equal(other.score(0, ids), textcf_scores)
    with pytest.raises(TypeError, match=r"items\[1\] is (None|nan) .*, not a string"):
        content.add_items(pd.Series(["a text", None]))
    with pytest.raises(ValueError, match=r"items must be a 1-D array of strings, got .* \(1, 2\)"):
        content.add_items(np.array([new]))


# -- session 48: pickling, and containers whose iteration is not their texts --------------------
def test_pickled_and_copied_encoders_rebuild_from_the_same_files(tmp_path) -> None:
    """A pickle (a Dask worker) or a deep copy rebuilds the encoder from its model files and
    gives the same vectors; files that changed since are refused, not silently used."""
    import copy
    import pickle

    folder = tmp_path / "tiny"
    write_tiny_bert(folder)
    encoder = TextEncoder(folder, precision="fp32", num_threads=1)
    texts = ["a space opera", "a love story"]
    for copied in (pickle.loads(pickle.dumps(encoder)), copy.deepcopy(encoder)):
        assert copied is not encoder and copied.identity == encoder.identity
        assert copied.num_threads == 1 and copied.precision == "fp32"
        np.testing.assert_array_equal(copied.encode(texts), encoder.encode(texts))
    bundled = TextEncoder(precision="fp32")
    np.testing.assert_array_equal(
        pickle.loads(pickle.dumps(bundled)).encode(texts), bundled.encode(texts)
    )
    data = pickle.dumps(encoder)
    shutil.rmtree(folder)
    write_tiny_bert(folder, intermediate_size=40)  # another network in the same place
    with pytest.raises(semrec.FormatError, match="model files changed"):
        pickle.loads(data)


def test_dataframes_and_mappings_are_refused_as_texts(tmp_path) -> None:
    """Iterating a DataFrame gives its column names, a dict its keys: never texts."""
    import pandas as pd

    folder = tmp_path / "tiny"
    write_tiny_bert(folder)
    encoder = TextEncoder(folder, precision="fp32")
    frame = pd.DataFrame({"item": ["tea", "mug"], "text": ["green tea", "a mug"]})
    for given in (frame, {"tea": "green tea"}):
        with pytest.raises(TypeError, match=r"frame\['text'\]"):
            encoder.encode(given)
        with pytest.raises(TypeError, match="keys or column names"):
            semrec.TfidfEncoder(encoder, min_df=1).fit(given)
    np.testing.assert_array_equal(
        encoder.encode(frame["text"]), encoder.encode(["green tea", "a mug"])
    )


# -- session 49 ------------------------------------------------------------------------------
def test_a_0d_array_is_refused_before_its_length_is_taken(tiny_encoder) -> None:
    """encode took len() of a 0-d array before checking it: NumPy's "len() of unsized
    object"."""
    import pandas as pd

    for given in (np.array("a space opera"), np.array(None, dtype=object)):
        for verb in (tiny_encoder.encode, tiny_encoder.tokenize):
            with pytest.raises(TypeError, match=r"got a 0-d ndarray; pass texts.item\(\) for"):
                verb(given)
        with pytest.raises(TypeError, match="0-d ndarray"):
            semrec.TfidfEncoder(tiny_encoder, min_df=1).fit(given)
    one = np.array("a space opera")
    np.testing.assert_array_equal(
        tiny_encoder.encode(one.item()), tiny_encoder.encode(["a space opera"])
    )
    np.testing.assert_array_equal(  # a 1-d array and np.str_ are texts, as before
        tiny_encoder.encode(one[None]), tiny_encoder.encode(pd.Series([np.str_("a space opera")]))
    )


def test_items_without_text_get_zero_rows(tiny_encoder):
    """Items missing from the items table (or with blank text) must not all share the vector
    of "": each would be every other's perfect match. Reference: encode of the texts alone."""
    pd = pytest.importorskip("pandas")
    events = pd.DataFrame({"user": [0, 0, 1, 1, 2], "item": ["tea", "card", "pot", "mug", "gift"]})
    items = pd.DataFrame({"item": ["tea", "pot", "mug"], "text": ["green tea", " \t", "a mug"]})
    data = semrec.datasets.Dataset.from_pandas(events, "user", "item", items=items)
    with pytest.warns(UserWarning, match="3 of the dataset's 5 items have no text"):
        emb = np.asarray(tiny_encoder.encode_items(data))
    texts = dict(zip(data.item_ids.tolist(), data.item_text, strict=True))
    for row, item in enumerate(data.item_ids.tolist()):
        if item in ("tea", "mug"):
            np.testing.assert_array_equal(emb[row], tiny_encoder.encode(texts[item])[0])
        else:
            assert not emb[row].any(), item
    bare = semrec.datasets.Dataset.from_pandas(events, "user", "item", items=items.iloc[1:2])
    with pytest.raises(ValueError, match="none of the dataset's 5 items has text"):
        tiny_encoder.encode_items(bare)


def test_missing_texts_are_named_as_missing(tiny_encoder):
    pd = pytest.importorskip("pandas")
    for texts, shown in [
        (["a", None], "None"),
        (pd.Series(["a", np.nan]), "nan"),
        (pd.Series(["a", None], dtype="string"), "<NA>"),
    ]:
        with pytest.raises(TypeError, match=r"texts\[1\] must be str, got a missing value") as e:
            tiny_encoder.encode(texts)
        assert f"({shown}); fill or drop it first" in str(e.value)
    with pytest.raises(TypeError, match=r"texts\[1\] must be str, got int$"):
        tiny_encoder.encode(["a", 3])
