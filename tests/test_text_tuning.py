"""TextEncoder.fine_tune: the C++ tuner against Hugging Face's BERT layers and plain PyTorch, the
model directory it writes, determinism, and bad input."""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from interrupts import ctrl_c
from text_helpers import default_model_dir, write_tiny_bert

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
    items_per_step: int = 0,
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
        bucket, recompute, bf16, items_per_step,
    )  # fmt: skip


FRESH = [4, 1, 5]  # trained items, in no order


# (layers, texts per chunk, recompute, bf16, fresh): one chunk, chunks of 2-3 texts whose tuned
# layers run again in backward (gradient checkpointing) or back-propagate chunk by chunk through
# the activations kept, the tuned layers under bf16 autocast
# (against the same layers under torch.autocast), and a sampled step where only the `fresh`
# items run the tuned layers (the others' inputs from the cache, without gradient).
@pytest.mark.parametrize("layers, bucket, recompute, bf16, fresh", [
    (1, 64, False, False, None), (2, 64, False, False, None), (2, 2, True, False, None),
    (1, 3, True, False, None), (2, 64, False, True, None), (2, 2, True, True, None),
    (2, 64, False, False, FRESH), (2, 2, True, False, FRESH), (1, 3, True, True, FRESH),
    (2, 2, False, False, None), (1, 2, False, True, FRESH),
])  # fmt: skip
def test_inputs_loss_and_gradients_match_hugging_face_layers_and_plain_pytorch(
    encoder, weights, layers, bucket, recompute, bf16, fresh
):
    transformers = pytest.importorskip("transformers")
    mlp = initial_weights(384, 32, 8, np.random.default_rng(1))
    tuner = make_tuner(encoder, weights, layers, mlp, bucket=bucket, recompute=recompute,
                       bf16=bf16)  # fmt: skip
    users = np.array([0, 1, 2, 3, 2, 4], dtype=np.int32)
    items = np.array([1, 3, 4, 2, 0, 5], dtype=np.int32)
    chosen = None if fresh is None else np.array(fresh, dtype=np.int32)
    loss, grads = tuner.batch_gradients(users, items, chosen)

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
    if fresh is not None:
        # The cache holds every item's x from the same (untrained) weights: the values are the
        # same, the gradient reaches the tuned layers through the fresh items only.
        is_fresh = torch.zeros(len(TEXTS), 1, dtype=torch.bool)
        is_fresh[fresh] = True
        x = torch.where(is_fresh, x, x.detach())
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
    if fresh is not None:
        # Same loss and MLP gradients as a step over every item (the same x values), but the
        # tuned layers' gradients lose the stale items' share.
        every_loss, every_grads = tuner.batch_gradients(users, items)
        assert loss == pytest.approx(every_loss, rel=loss_rtol)
        for name, g in every_grads.items():
            if name.endswith("attention.self.key.bias"):
                continue
            moved = np.abs(g - grads[name]).max() / np.abs(g).max()
            assert moved < grad_atol if name.startswith("l") else moved > 10 * grad_atol, name


def test_untrained_inputs_equal_the_encoder_and_steps_lower_the_loss(encoder, weights):
    mlp = initial_weights(384, 32, 8, np.random.default_rng(2))
    tuner = make_tuner(encoder, weights, 2, mlp, batch_size=12)  # one batch: the whole data
    np.testing.assert_allclose(tuner.item_inputs(), encoder.encode(TEXTS), atol=1e-5)
    losses = [tuner.step(epoch, 0) for epoch in range(12)]
    assert losses[-1] < 0.8 * losses[0]


def test_sampled_steps_draw_items_apart_from_the_batch_and_cache_what_they_computed(
    encoder, weights
):
    mlp = initial_weights(384, 32, 8, np.random.default_rng(3))
    warm = np.unique(interactions().indices)  # 6 trained items; item 6 is cold
    exact = make_tuner(encoder, weights, 2, mlp, batch_size=2)
    np.testing.assert_array_equal(exact.step_items(0, 0), warm)
    # items_per_step of at least the trained items is the exact path, bit for bit.
    covering = make_tuner(encoder, weights, 2, mlp, batch_size=2, items_per_step=6)
    assert [covering.step(0, s) for s in range(3)] == [exact.step(0, s) for s in range(3)]

    tuner = make_tuner(encoder, weights, 2, mlp, batch_size=2, items_per_step=4)
    cache = tuner.cached_inputs()  # the starting weights' x of every trained item
    np.testing.assert_allclose(cache[warm], tuner.item_inputs()[warm], atol=1e-6)
    assert not cache[6].any()
    draws, positives_left_out = set(), 0
    for step in range(tuner.steps_per_epoch):
        _, items = tuner.step_pairs(0, step)
        chosen = tuner.step_items(0, step)
        assert chosen.size == 4 and np.unique(chosen).size == 4 and set(chosen) <= set(warm)
        positives_left_out += not set(items) <= set(chosen)
        before = tuner.item_inputs()  # x through the weights this step starts from
        tuner.step(0, step)
        after = tuner.cached_inputs()
        np.testing.assert_allclose(after[chosen], before[chosen], atol=1e-5)
        others = np.setdiff1d(warm, chosen)
        np.testing.assert_array_equal(after[others], cache[others])  # stale, untouched
        assert np.abs(after[others] - tuner.item_inputs()[others]).max() > 1e-4  # weights moved
        cache = after
        draws.add(tuple(chosen))
    # A uniform draw, not the batch's positives first (fresh would then mean "positive").
    assert positives_left_out > 0 and len(draws) > 1
    again = make_tuner(encoder, weights, 2, mlp, batch_size=2, items_per_step=4)
    np.testing.assert_array_equal(again.step_items(0, 5), tuner.step_items(0, 5))


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


def films() -> tuple[list[str], Dataset]:
    """150 items (three chunks of 64 texts), 40 users, about 600 interactions: each user picks
    films of one genre (user % 6), which the text names."""
    rng = np.random.default_rng(0)
    genres = ["comedy", "drama", "space opera", "thriller", "romance", "western"]
    texts = [f"film {i} a {genres[i % 6]} from {1950 + i % 70}" for i in range(150)]
    users = rng.integers(0, 40, 600)
    events = pd.DataFrame({"user": users, "item": users % 6 + 6 * rng.integers(0, 25, 600)})
    events = events.drop_duplicates()
    items = pd.DataFrame({"item": np.arange(150), "text": texts})
    return texts, Dataset.from_pandas(events, "user", "item", items=items)


# fp32: in bf16 two backward orders' last-bit differences flip roundings, and grow.
FILMS = {"layers": 2, "epochs": 2, "batch_size": 128, "hidden": 32, "factors": 8,
         "show_progress": False, "num_threads": 2, "precision": "fp32"}  # fmt: skip


def metadata(path) -> dict:
    with open(path / "model.safetensors", "rb") as f:  # the format: u64 length, JSON header
        return json.loads(f.read(int.from_bytes(f.read(8), "little")))["__metadata__"]


def test_recompute_trains_the_same_model_over_several_chunks(encoder, tmp_path):
    # Three chunks of 64 texts, so recompute runs the tuned layers chunk by chunk.
    texts, data = films()
    settings = FILMS
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
        assert metadata(path)["tuned_precision"] == precision


def test_items_per_step_trains_from_a_sample_of_the_items(encoder, tmp_path):
    texts, data = films()
    trained = np.unique(data.interactions.indices).size  # items with interactions
    losses: dict[str, list[float]] = {}

    def tune_films(name, **kwargs):
        def record(_, loss):
            losses.setdefault(name, []).append(loss)

        settings = {**FILMS, "epochs": 4, **kwargs}
        return encoder.fine_tune(data, tmp_path / name, callback=record, **settings)

    exact = tune_films("exact").encode(texts)
    sampled = tune_films("sampled", items_per_step=32).encode(texts)
    again = tune_films("again", items_per_step=32).encode(texts)
    covering = tune_films("covering", items_per_step=trained).encode(texts)
    start = encoder.encode(texts)
    np.testing.assert_array_equal(sampled, again)  # deterministic
    np.testing.assert_array_equal(covering, exact)  # every item: the exact path
    # Trained (it moved the model and lowered the loss), and not the exact model.
    assert np.abs(sampled - start).max() > 1e-3
    assert losses["sampled"][-1] < 0.9 * losses["sampled"][0]
    assert np.abs(sampled - exact).max() > 1e-4
    assert metadata(tmp_path / "sampled")["tuned_items_per_step"] == "32"
    assert metadata(tmp_path / "covering")["tuned_items_per_step"] == "all"


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
    with pytest.raises(ValueError, match=r"hidden=1000000000000, factors=\d+ would need .* GiB"):
        tune(encoder, path, hidden=10**12)  # refused before the network is allocated
    with pytest.raises(TypeError, match="callback must be callable"):
        tune(encoder, path, callback=3)  # before training, not after it
    mine = tmp_path / "mine"  # a folder of the user's: "no" is truthy, yet must not replace it
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(TypeError, match="overwrite must be True or False, got 'no'"):
        tune(encoder, mine, overwrite="no")
    assert (mine / "notes.txt").read_text() == "keep me"
    with monkeypatch.context() as patch:  # a machine too small for the activations
        patch.setattr("semrec._hyperparameters.memory_bytes", lambda: 1 << 20)
        with pytest.raises(ValueError, match=r"even with recompute, would need .* GiB, more"):
            tune(encoder, path)  # recompute chosen by itself, and still too large
        fixes = r"memory \(.*\); pass items_per_step .*, or pass recompute=True, or fine-tune on"
        with pytest.raises(ValueError, match=fixes):
            tune(encoder, path, recompute=False)
        with pytest.raises(ValueError, match=r"items_per_step=2, even with recompute, would"):
            tune(encoder, path, items_per_step=2)
    for value in (0, 1.5, "all"):
        with pytest.raises((TypeError, ValueError), match="items_per_step"):
            tune(encoder, path, items_per_step=value)
    with pytest.raises(TypeError, match="recompute must be True, False or None"):
        tune(encoder, path, recompute="yes")
    with pytest.raises(ValueError, match="precision"):
        tune(encoder, path, precision="int8")
    with pytest.raises(ValueError, match="own model directory"):
        tune(encoder, encoder.model_path, overwrite=True)
    assert not path.exists()
    epochs = []
    (tmp_path / "a_file").write_text("")
    with pytest.raises(ValueError, match=r"a_file is a file, not a folder"):
        tune(encoder, tmp_path / "a_file" / "tuned", callback=lambda e, loss: epochs.append(e))
    with pytest.raises(TypeError, match="path must be a str or path-like"):
        encoder.fine_tune(dataset(), None)
    assert epochs == []  # refused before training, not after it


def test_paths_holding_or_inside_the_encoders_model_and_tilde_paths(encoder, tmp_path, monkeypatch):
    """overwrite=True moves a folder aside and deletes it: a folder holding the encoder's model
    (or one inside it) is refused, and the model is still there; "~" is the home folder."""
    base = tmp_path / "models" / "base"
    shutil.copytree(encoder.model_path, base)
    own = TextEncoder(base, precision="fp32")
    for path in (tmp_path / "models", tmp_path, base / "inner"):
        with pytest.raises(ValueError, match="a folder holding it or a folder inside it"):
            tune(own, path, overwrite=True)
    again = TextEncoder(base, precision="fp32")  # the model is still there, unchanged
    np.testing.assert_array_equal(again.encode(TEXTS[:2]), own.encode(TEXTS[:2]))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    tuned = tune(encoder, "~/tuned")
    assert (tmp_path / "home" / "tuned" / "model.safetensors").is_file()
    assert not Path("~").exists()
    written = TextEncoder(tmp_path / "home" / "tuned", precision="fp32")
    np.testing.assert_array_equal(tuned.encode(TEXTS[:2]), written.encode(TEXTS[:2]))


def test_a_failure_between_the_two_renames_puts_the_old_model_back(encoder, tmp_path, monkeypatch):
    target = tmp_path / "tuned"
    tune(encoder, target)
    before = (target / "model.safetensors").read_bytes()
    rename = Path.rename

    def failing(self, to):  # the old model moved aside, then the new one fails to move in
        if Path(to) == target and not self.name.endswith(".old"):
            raise OSError("disk gone")
        return rename(self, to)

    monkeypatch.setattr(Path, "rename", failing)
    with pytest.raises(OSError, match="disk gone"):
        tune(encoder, target, overwrite=True, random_state=5)
    monkeypatch.undo()
    assert (target / "model.safetensors").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["tuned"]


def test_interactions_of_another_width_than_the_texts_are_refused(encoder, tmp_path):
    data = dataset()
    data.interactions = sp.csr_array(np.ones((3, len(TEXTS) + 2), dtype=np.float32))
    with pytest.raises(ValueError, match=r"dataset.interactions has 9 items .* 7 texts"):
        encoder.fine_tune(data, tmp_path / "t", layers=1, epochs=1, show_progress=False)


def test_a_diverged_model_replaces_nothing(encoder, tmp_path):
    """The loss is taken before each update, so a last step can blow the weights up unseen by
    it: the written model is tried on the item texts first, and a good model stays."""
    target = tmp_path / "tuned"
    tune(encoder, target)
    before = (target / "model.safetensors").read_bytes()
    with pytest.raises(ValueError, match=r"diverged: .* nothing was written .*learning_rate"):
        tune(encoder, target, overwrite=True, learning_rate=1e30, epochs=1, batch_size=64)
    assert (target / "model.safetensors").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["tuned"]


@pytest.mark.parametrize("recompute, items_per_step", [(False, 0), (True, 0), (False, 3)])
def test_a_step_polls_for_ctrl_c_between_chunks_in_both_passes_and_a_stopped_step_changes_nothing(
    encoder, weights, recompute, items_per_step
):
    # Chunks of 2 texts: the 6 trained items make 3 chunks, the 3 sampled ones 2. The stop check
    # answers "stop" at each of its polls in turn, as Ctrl-C would, in the forward pass or in the
    # backward pass, with the activations kept or recomputed.
    mlp = initial_weights(384, 32, 8, np.random.default_rng(1))

    def tuner():
        return make_tuner(encoder, weights, 2, mlp, bucket=2, recompute=recompute,
                          items_per_step=items_per_step)  # fmt: skip

    ran = tuner()
    polls, stopped = ran.step_stopped_at(0, 0, 0)
    chunks = -(-len(ran.step_items(0, 0)) // 2)
    assert not stopped
    assert polls == 2 * chunks  # once before each chunk's forward pass and each's backward pass
    for poll in range(1, polls + 1):
        stopped_tuner = tuner()
        before = stopped_tuner.tuned_weights()
        assert stopped_tuner.step_stopped_at(0, 0, poll) == (poll, True)
        for name, value in stopped_tuner.tuned_weights().items():
            np.testing.assert_array_equal(value, before[name], err_msg=f"{name}, poll {poll}")
        if items_per_step:  # the cache keeps the inputs from before the step
            np.testing.assert_array_equal(stopped_tuner.cached_inputs(), tuner().cached_inputs())
        # The stopped step left nothing behind: run again, it gives the uninterrupted step's model.
        stopped_tuner.step(0, 0)
        for name, value in stopped_tuner.tuned_weights().items():
            np.testing.assert_allclose(value, ran.tuned_weights()[name], rtol=0, atol=1e-7)


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


def test_ctrl_c_stops_fine_tuning_in_the_middle_of_a_step(tmp_path):
    # One step over 5,000 texts of about 60 tokens through all six layers, recomputed, in fp32:
    # minutes on 2 cores (well past ctrl_c's 60 s), so only the tuner's polling between chunks
    # ends it in time. The setup (tokens, embeddings only) takes a few seconds of the 10 waited.
    default_model_dir()
    out = ctrl_c(
        """
        import numpy as np
        import pandas as pd
        from semrec import TextEncoder
        from semrec.datasets import Dataset
        words = "river stone light house green field quiet night open road old city".split()
        rng = np.random.default_rng(0)
        texts = [" ".join(rng.choice(words, 60)) for _ in range(5000)]
        events = pd.DataFrame({"user": np.arange(5000) % 500, "item": np.arange(5000)})
        items = pd.DataFrame({"item": np.arange(5000), "text": texts})
        data = Dataset.from_pandas(events, "user", "item", items=items)
        encoder = TextEncoder(precision="fp32")
        """,
        f"""
        encoder.fine_tune(data, {str(tmp_path / "tuned")!r}, layers=6, epochs=1,
                          recompute=True, precision="fp32", show_progress=False)
        """,
        wait=10.0,
    )
    assert out.splitlines()[-1] == "interrupted"
    assert os.listdir(tmp_path) == []


# -- session 49 ------------------------------------------------------------------------------
def test_a_symbolic_link_as_path_is_followed_as_saves_follow_one(tmp_path):
    """A live link was moved aside and left as a hidden '.tmp-<name>.old' file (rmtree refuses
    links); a dangling one trained to the end, then failed with a raw NotADirectoryError. Both
    are followed, as every save follows a link: the link keeps naming the tuned model."""
    write_tiny_bert(tmp_path / "tiny")  # 2 layers of width 32: quick to tune
    encoder = TextEncoder(tmp_path / "tiny", precision="fp32")
    models = tmp_path / "models"
    models.mkdir()
    (models / "latest").symlink_to(models / "v1")  # dangling: v1 does not exist yet
    first = tune(encoder, models / "latest", epochs=1)
    assert sorted(os.listdir(models)) == ["latest", "v1"]
    assert (models / "latest").readlink() == models / "v1"
    assert (models / "v1" / "model.safetensors").is_file()
    before = (models / "v1" / "model.safetensors").read_bytes()
    np.testing.assert_array_equal(
        first.encode(TEXTS), TextEncoder(models / "latest", precision="fp32").encode(TEXTS)
    )
    epochs = []
    with pytest.raises(FileExistsError, match=r"v1 exists; pass overwrite=True"):
        tune(encoder, models / "latest", callback=lambda e, loss: epochs.append(e))
    assert epochs == []  # refused before training
    tune(encoder, models / "latest", epochs=1, overwrite=True, random_state=5)  # live link
    assert sorted(os.listdir(models)) == ["latest", "v1"]  # nothing left aside
    assert (models / "latest").is_symlink()
    assert (models / "v1" / "model.safetensors").read_bytes() != before
    (models / "loop").symlink_to(models / "loop")
    with pytest.raises(ValueError, match="loop is a symbolic link that leads nowhere"):
        tune(encoder, models / "loop", callback=lambda e, loss: epochs.append(e))
    assert epochs == []
