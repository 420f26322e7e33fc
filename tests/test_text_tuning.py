"""TextEncoder.fine_tune: the C++ tuner against Hugging Face's BERT layers and plain PyTorch, the
model directory it writes, determinism, and bad input."""

from __future__ import annotations

import copy
import json
import os

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from interrupts import ctrl_c
from text_helpers import default_model_dir

from semrec import TextEncoder
from semrec.datasets import Dataset
from semrec.text._model import load_model_files
from semrec.text._safetensors import read_float32, read_header
from semrec.text._torch import text_ext
from semrec.text._tuning import tuning_precision
from semrec.text.precision import CpuFeatures
from semrec.textcf._network import initial_weights

torch = pytest.importorskip("torch")

TEXTS = [
    "a space opera", "romantic comedy in paris", "the dark knight rises again over gotham",
    "toy story", "heat", "a very long movie title about nothing at all and then some more", "x",
]  # fmt: skip
TAU = 0.15


@pytest.fixture(scope="module")
def encoder():
    default_model_dir()
    return TextEncoder(precision="fp32")


@pytest.fixture(scope="module")
def weights():
    files = load_model_files(default_model_dir())
    header = read_header(files.weights)
    names = [n for n, t in header.tensors.items() if t.dtype == "F32"]
    return files, {n[len(files.prefix) :]: a for n, a in read_float32(header, names).items()}


def interactions() -> sp.csr_array:
    """5 users x 7 items, rated 1-5; item 6 ("x") has no interaction (cold)."""
    rng = np.random.default_rng(0)
    users = np.array([0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 4, 4])
    items = np.array([0, 1, 2, 1, 3, 0, 4, 5, 2, 3, 5, 1])
    m = sp.csr_array((rng.integers(1, 6, 12).astype(np.float32), (users, items)), shape=(5, 7))
    m.sort_indices()
    return m


def dataset() -> Dataset:
    m = sp.coo_array(interactions())
    events = pd.DataFrame({"user": m.row, "item": m.col, "rating": m.data})
    items = pd.DataFrame({"item": np.arange(len(TEXTS)), "text": TEXTS})
    return Dataset.from_pandas(events, "user", "item", "rating", items=items)


def make_tuner(
    encoder,
    weights,
    layers: int,
    mlp: dict,
    batch_size: int = 4,
    bucket: int = 64,
    recompute: bool = False,
    bf16: bool = False,
):
    files, tensors = weights
    config = files.config
    ids = encoder.tokenize(TEXTS)
    offsets = np.concatenate([[0], np.cumsum([len(t) for t in ids])]).astype(np.int64)
    m = interactions()
    return text_ext.EncoderTuner(
        tensors, config.layers, mlp, offsets, np.concatenate(ids).astype(np.int32),
        m.indptr.astype(np.int64), m.indices.astype(np.int32), m.data.astype(np.float32), 5, 7,
        config.heads, config.layer_norm_eps, layers, 32, 8, 0.01, TAU, batch_size, 1e-4, 1e-3, 7,
        bucket, recompute, bf16,
    )  # fmt: skip


# (layers, texts per chunk, recompute, bf16): one chunk, chunks of 2-3 texts whose tuned layers
# run again in backward (gradient checkpointing), and the tuned layers under bf16 autocast
# (against the same layers under torch.autocast).
@pytest.mark.parametrize("layers, bucket, recompute, bf16", [
    (1, 64, False, False), (2, 64, False, False), (2, 2, True, False), (1, 3, True, False),
    (2, 64, False, True), (2, 2, True, True),
])  # fmt: skip
def test_inputs_loss_and_gradients_match_hugging_face_layers_and_plain_pytorch(
    encoder, weights, layers, bucket, recompute, bf16
):
    transformers = pytest.importorskip("transformers")
    mlp = initial_weights(384, 32, 8, np.random.default_rng(1))
    tuner = make_tuner(encoder, weights, layers, mlp, bucket=bucket, recompute=recompute,
                       bf16=bf16)  # fmt: skip
    users = np.array([0, 1, 2, 3, 2, 4], dtype=np.int32)
    items = np.array([1, 3, 4, 2, 0, 5], dtype=np.int32)
    loss, grads = tuner.batch_gradients(users, items)

    # The reference: Hugging Face's BertModel for the frozen part and copies of its top layers
    # (eager attention) for the tuned part, the network and the loss in plain PyTorch.
    path = str(default_model_dir())
    model = transformers.AutoModel.from_pretrained(path, attn_implementation="eager").eval()
    batch = transformers.AutoTokenizer.from_pretrained(path)(TEXTS, padding=True,
                                                             return_tensors="pt")  # fmt: skip
    with torch.no_grad():
        below = model(**batch, output_hidden_states=True).hidden_states[-1 - layers]
    top = torch.nn.ModuleList(copy.deepcopy(list(model.encoder.layer[-layers:])))
    mask = batch["attention_mask"].float()
    additive = (1 - mask)[:, None, None, :] * torch.finfo(torch.float32).min

    def inputs(low_precision: bool) -> torch.Tensor:
        h = below
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=low_precision):
            for layer in top:
                h = layer(h, attention_mask=additive)
                h = h[0] if isinstance(h, tuple) else h
        h = h.float()
        return torch.nn.functional.normalize(
            (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        )

    x = inputs(bf16)
    w = {k: torch.tensor(v, requires_grad=True) for k, v in mlp.items()}

    f = torch.nn.functional

    def net(z):
        g = f.leaky_relu(f.linear(z, w["l1.weight"], w["l1.bias"]), 0.01)
        return f.normalize(f.linear(g, w["l2.weight"], w["l2.bias"]))

    m = torch.tensor(interactions().toarray())
    warm = torch.tensor(np.unique(interactions().indices))
    scores = net((m / m.sum(1, keepdim=True)) @ x)[torch.tensor(users).long()] @ net(x)[warm].T
    targets = torch.tensor([int(torch.searchsorted(warm, int(i))) for i in items])
    reference = torch.nn.functional.cross_entropy(scores / TAU, targets)
    reference.backward()

    # bf16 rounds each product's inputs to 8 bits of mantissa, in a different order here and
    # in Hugging Face's layers; it must also differ from float32 (autocast really was on).
    x_atol, loss_rtol, grad_atol = (2e-3, 1e-4, 2e-2) if bf16 else (1e-5, 1e-5, 1e-4)
    ours = tuner.item_inputs()
    np.testing.assert_allclose(ours, x.detach().numpy(), atol=x_atol)
    if bf16:
        with torch.no_grad():
            assert np.abs(ours - inputs(False).numpy()).max() > 1e-4
    assert loss == pytest.approx(reference.item(), rel=loss_rtol)
    first = 6 - layers
    assert len(grads) == 16 * layers + 4
    by_name = dict(top.named_parameters())
    for name, g in grads.items():
        if name.startswith("l"):
            r = w[name].grad.numpy()
        else:
            parts = name.split(".")
            r = by_name[f"{int(parts[2]) - first}." + ".".join(parts[3:])].grad.numpy()
        if name.endswith("attention.self.key.bias"):
            # The softmax ignores a constant added to every key score: the true gradient is 0.
            # In bf16 both are rounding noise: far below the query bias's gradient.
            zero = grad_atol * np.abs(grads[name.replace("key", "query")]).max() if bf16 else 1e-7
            assert np.abs(g).max() < zero and np.abs(r).max() < zero, name
            continue
        np.testing.assert_allclose(g, r, rtol=0, atol=grad_atol * np.abs(r).max(), err_msg=name)


def test_untrained_inputs_equal_the_encoder_and_steps_lower_the_loss(encoder, weights):
    mlp = initial_weights(384, 32, 8, np.random.default_rng(2))
    tuner = make_tuner(encoder, weights, 2, mlp, batch_size=12)  # one batch: the whole data
    np.testing.assert_allclose(tuner.item_inputs(), encoder.encode(TEXTS), atol=1e-5)
    losses = [tuner.step(epoch, 0) for epoch in range(12)]
    assert losses[-1] < 0.8 * losses[0]


def tune(encoder, path, **kwargs):
    settings = {"layers": 1, "epochs": 2, "batch_size": 4, "hidden": 32, "factors": 8,
                "show_progress": False, "num_threads": 2, **kwargs}  # fmt: skip
    return encoder.fine_tune(dataset(), path, **settings)


def test_the_written_model_holds_the_tuned_top_layer_and_the_rest_unchanged(
    encoder, weights, tmp_path
):
    files, original = weights
    losses = []
    tuned = tune(encoder, tmp_path / "tuned", epochs=3, callback=lambda _, x: losses.append(x))
    assert len(losses) == 3 and all(np.isfinite(losses))
    written = load_model_files(tmp_path / "tuned")
    header = read_header(written.weights)
    stored = read_float32(header, [n for n, t in header.tensors.items() if t.dtype == "F32"])
    assert set(stored) == {files.prefix + n for n in original}  # every tensor kept
    changed = {n for n, a in original.items() if not np.array_equal(stored[files.prefix + n], a)}
    # Only the top layer's trainable tensors moved (the key bias has no gradient).
    assert changed and all(n.startswith("encoder.layer.5.") for n in changed)
    assert "encoder.layer.5.output.dense.weight" in changed
    assert tuned.identity != encoder.identity  # no embedding cache mixes the two models up
    assert tuned.precision == encoder.precision
    assert {p.name for p in (tmp_path / "tuned").iterdir()} >= {"config.json", "vocab.txt"}
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no staging left
    # The returned encoder runs the written weights: the same vectors as a fresh load.
    vectors = tuned.encode(TEXTS)
    np.testing.assert_array_equal(vectors, TextEncoder(tmp_path / "tuned", precision="fp32")
                                  .encode(TEXTS))  # fmt: skip
    assert np.abs(vectors - encoder.encode(TEXTS)).max() > 1e-4
    # ... and so does sentence-transformers: the directory is a complete model.
    st = pytest.importorskip("sentence_transformers")
    reference = st.SentenceTransformer(str(tmp_path / "tuned"), device="cpu")
    np.testing.assert_allclose(vectors, reference.encode(TEXTS, normalize_embeddings=True),
                               atol=1e-5)  # fmt: skip


def test_recompute_trains_the_same_model_over_several_chunks(encoder, tmp_path):
    # 150 items: three chunks of 64 texts, so recompute runs the tuned layers chunk by chunk.
    rng = np.random.default_rng(0)
    genres = ["comedy", "drama", "space opera", "thriller", "romance", "western"]
    texts = [f"film {i} a {genres[i % 6]} from {1950 + i % 70}" for i in range(150)]
    events = pd.DataFrame({"user": rng.integers(0, 40, 600), "item": rng.integers(0, 150, 600)})
    events = events.drop_duplicates()
    items = pd.DataFrame({"item": np.arange(150), "text": texts})
    data = Dataset.from_pandas(events, "user", "item", items=items)
    # fp32: in bf16 the two backward orders' last-bit differences flip roundings, and grow.
    settings = {"layers": 2, "epochs": 2, "batch_size": 128, "hidden": 32, "factors": 8,
                "show_progress": False, "num_threads": 2, "precision": "fp32"}  # fmt: skip
    kept = encoder.fine_tune(data, tmp_path / "kept", recompute=False, **settings)
    again = encoder.fine_tune(data, tmp_path / "again", recompute=True, **settings)
    a, b = kept.encode(texts), again.encode(texts)
    assert np.abs(a - encoder.encode(texts)).max() > 1e-3  # both trained
    np.testing.assert_allclose(a, b, atol=2e-5)


def test_bf16_trains_in_bfloat16_where_native_and_falls_back_with_a_warning(
    encoder, tmp_path, monkeypatch
):
    avx2 = CpuFeatures(True, False, False, False, False, {}, "AVX2")
    zen4 = CpuFeatures(True, True, True, True, False, {}, "AVX512")
    assert tuning_precision("auto", zen4) == "bf16" and tuning_precision("auto", avx2) == "fp32"
    assert tuning_precision("fp32", zen4) == "fp32"
    with pytest.warns(RuntimeWarning, match=r"no native support here .* trains in fp32"):
        assert tuning_precision("bf16", avx2) == "fp32"
    # End to end, on a CPU that reports native bf16 (any CPU runs autocast, if slowly): the
    # model trains close to fp32's but not bitwise equal to it.
    monkeypatch.setattr("semrec.text._tuning.cpu_features", lambda: zen4)
    low = tune(encoder, tmp_path / "bf16")  # "auto"
    full = tune(encoder, tmp_path / "fp32", precision="fp32")
    a, b = low.encode(TEXTS), full.encode(TEXTS)
    assert np.abs(b - encoder.encode(TEXTS)).max() > 1e-3  # training moved the model
    assert 1e-6 < np.abs(a - b).max() < 5e-3
    for path, precision in ((tmp_path / "bf16", "bf16"), (tmp_path / "fp32", "fp32")):
        with open(path / "model.safetensors", "rb") as f:  # the format: u64 length, JSON header
            header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
        assert header["__metadata__"]["tuned_precision"] == precision


def test_same_seed_same_model(encoder, tmp_path):
    a = tune(encoder, tmp_path / "a", random_state=3).encode(TEXTS)
    b = tune(encoder, tmp_path / "b", random_state=3).encode(TEXTS)
    c = tune(encoder, tmp_path / "c", random_state=4).encode(TEXTS)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_overwrite_and_interrupted_runs_leave_no_half_written_model(encoder, tmp_path):
    target = tmp_path / "tuned"
    tune(encoder, target)
    before = (target / "model.safetensors").read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        tune(encoder, target)

    def fail(epoch, loss):
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        tune(encoder, target, overwrite=True, callback=fail, random_state=5)
    assert (target / "model.safetensors").read_bytes() == before
    tune(encoder, target, overwrite=True, random_state=5)
    assert (target / "model.safetensors").read_bytes() != before
    assert sorted(os.listdir(tmp_path)) == ["tuned"]


def test_bad_input_is_refused_with_clear_errors(encoder, tmp_path, monkeypatch):
    path = tmp_path / "t"
    with pytest.raises(TypeError, match=r"dataset must be a semrec\.datasets\.Dataset"):
        encoder.fine_tune(interactions(), path)
    no_text = Dataset.from_pandas(pd.DataFrame({"user": [0], "item": [1]}), "user", "item")
    with pytest.raises(ValueError, match="no item text"):
        encoder.fine_tune(no_text, path)
    zeros = Dataset.from_pandas(
        pd.DataFrame({"user": [0, 1], "item": [0, 1], "rating": [0.0, 0.0]}), "user", "item",
        "rating", items=pd.DataFrame({"item": [0, 1], "text": ["a", "b"]}),
    )  # fmt: skip
    with pytest.raises(ValueError, match="no positive interactions"):
        encoder.fine_tune(zeros, path)
    with pytest.raises(ValueError, match="layers must be at most the model's 6 layers"):
        tune(encoder, path, layers=7)
    for name, value in (("layers", 0), ("epochs", 0), ("batch_size", -1)):
        with pytest.raises(ValueError, match=name):
            tune(encoder, path, **{name: value})
    for name, value in (("tau", 0.0), ("learning_rate", float("nan"))):
        with pytest.raises(ValueError, match=name):
            tune(encoder, path, **{name: value})
    with monkeypatch.context() as patch:  # a machine too small for the activations
        patch.setattr("semrec._hyperparameters.memory_bytes", lambda: 1 << 20)
        with pytest.raises(ValueError, match=r"even with recompute, would need .* GiB, more"):
            tune(encoder, path)  # recompute chosen by itself, and still too large
        with pytest.raises(ValueError, match=r"machine's memory \(.*\); .*, or pass recompute"):
            tune(encoder, path, recompute=False)
    with pytest.raises(TypeError, match="recompute must be True, False or None"):
        tune(encoder, path, recompute="yes")
    with pytest.raises(ValueError, match="precision"):
        tune(encoder, path, precision="int8")
    with pytest.raises(ValueError, match="own model directory"):
        tune(encoder, encoder.model_path, overwrite=True)
    assert not path.exists()


def test_ctrl_c_stops_fine_tuning_and_writes_nothing(tmp_path):
    default_model_dir()
    out = ctrl_c(
        """
        import pandas as pd
        from semrec import TextEncoder
        from semrec.datasets import Dataset
        events = pd.DataFrame({"user": [0, 0, 1, 1, 2], "item": [0, 1, 1, 2, 0]})
        items = pd.DataFrame({"item": [0, 1, 2], "text": ["a", "b c", "d e f"]})
        data = Dataset.from_pandas(events, "user", "item", items=items)
        encoder = TextEncoder(precision="fp32")
        """,
        f"""
        encoder.fine_tune(data, {str(tmp_path / "tuned")!r}, layers=1, epochs=10**6,
                          hidden=8, factors=4, show_progress=False)
        """,
        wait=3.0,
    )
    assert out.splitlines()[-1] == "interrupted"
    assert os.listdir(tmp_path) == []  # neither the model nor a staging directory
