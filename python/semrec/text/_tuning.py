"""Fine-tuning the top layers of a sentence encoder on interactions (C++ on LibTorch).

The language model itself is adapted to what users do: its top ``layers`` transformer layers
are trained jointly with a TextCF-style network (item vector = MLP of the item's mean-pooled,
normalised text embedding; user vector = MLP of the rating-weighted mean of the embeddings of
the user's history; full softmax at temperature ``tau`` over the items with interactions), and
the result is written as a new model directory that :class:`~semrec.TextEncoder` loads like any
other. Every text, including that of items no one has seen, is then embedded by the adapted
model: the embeddings feed :class:`~semrec.ColdStartALS`, :class:`~semrec.ContentRecommender`
or :class:`~semrec.TextCF` unchanged.

The bottom layers are frozen and run once; every step runs the tuned layers over every item
with interactions (their gradients reach each item through both sides), so one epoch costs
about ``steps x`` one forward and backward pass of the catalogue through the tuned layers.
With ``items_per_step`` a step runs only that many items (a uniform sample) and reads every
other item's input from a cache of its last computed value.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from semrec import _files as files
from semrec import _hyperparameters as hyperparameters
from semrec import _validation as check
from semrec._hyperparameters import generator
from semrec._threads import resolve_num_threads
from semrec.errors import FormatError
from semrec.text._model import load_model_files, tensor_names
from semrec.text._safetensors import raw_tensors, read_float32, read_header, write_tensors
from semrec.text._torch import text_ext, torch
from semrec.text.precision import CpuFeatures, cpu_features
from semrec.textcf._network import initial_weights

_CHUNK = 64  # texts per forward chunk (similar lengths, padded to the longest)
PRECISIONS = ("auto", "fp32", "bf16")  # fine_tune's: the training's matrix products
# Files of a model directory that hold weights: the tuned model has its own model.safetensors,
# and no stale copy of the original weights in another format.
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "tf_model.h5", "flax_model.msgpack",
                 "*.onnx", "onnx", "openvino")  # fmt: skip


def fine_tune(encoder: Any, dataset: Any, path: str | os.PathLike[str], **options: Any) -> Any:
    """Adapt ``encoder``'s top layers to ``dataset``'s interactions: the implementation of
    :meth:`semrec.TextEncoder.fine_tune`, which documents ``options`` and their defaults."""
    from semrec.text.encoder import TextEncoder, checked_item_texts

    if not isinstance(encoder, TextEncoder):
        raise TypeError(f"encoder must be a semrec.TextEncoder, got {type(encoder).__name__}")
    data = check.dataset(dataset)
    texts = checked_item_texts(data)
    interactions = check.without_zeros(
        check.interactions(data.interactions, "dataset.interactions", nonnegative=True)
    )  # a stored 0 weighs nothing in a user's mean
    if interactions.nnz == 0:
        raise ValueError("dataset has no positive interactions to learn from")
    if interactions.shape[1] != len(texts):
        raise ValueError(
            f"dataset.interactions has {interactions.shape[1]} items (columns) but "
            f"dataset.item_text {len(texts)} texts; give one text per item"
        )
    files = load_model_files(encoder.model_path)
    config = files.config
    layers = check.positive_int(options["layers"], "layers")
    if layers > config.layers:
        raise ValueError(f"layers must be at most the model's {config.layers} layers, got {layers}")
    epochs = check.positive_int(options["epochs"], "epochs")
    batch_size = check.positive_int(options["batch_size"], "batch_size")
    hidden = check.positive_int(options["hidden"], "hidden")
    factors = check.positive_int(options["factors"], "factors")
    learning_rate = check.number(options["learning_rate"], "learning_rate", minimum=0)
    mlp_learning_rate = check.number(options["mlp_learning_rate"], "mlp_learning_rate", minimum=0)
    tau = check.number(options["tau"], "tau", above=0)
    precision = tuning_precision(check.choice(options["precision"], "precision", PRECISIONS))
    threads = resolve_num_threads(options["num_threads"])
    callback: Callable[[int, float], Any] | None = options["callback"]
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, callback(epoch, loss), got {callback!r}")
    overwrite = check.flag(options["overwrite"], "overwrite")
    target = _checked_target(path)  # before minutes of training, not after
    if target.exists() and not overwrite:
        raise FileExistsError(f"path {target} exists; pass overwrite=True or another path")
    source, written = Path(files.path).resolve(), target.resolve()
    if written == source or written in source.parents or source in written.parents:
        # overwrite would move the folder aside and delete it, the encoder's model with it
        raise ValueError(
            f"path {target} is the encoder's own model directory ({source}), a folder holding "
            "it or a folder inside it; write the tuned model somewhere else"
        )

    header = read_header(files.weights)
    stored = read_float32(header, [files.prefix + name for name in tensor_names(config)])
    weights = {name[len(files.prefix) :]: a for name, a in stored.items()}
    tokens = encoder.tokenize(texts)
    offsets = np.zeros(len(tokens) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(t) for t in tokens])
    ids = np.fromiter((i for t in tokens for i in t), dtype=np.int32, count=int(offsets[-1]))
    recompute = options["recompute"]
    if recompute is not None and not isinstance(recompute, (bool, np.bool_)):
        raise TypeError(f"recompute must be True, False or None, got {recompute!r}")
    warm = np.diff(interactions.tocsc().indptr) > 0
    items_per_step = options["items_per_step"]
    if items_per_step is not None:
        items_per_step = check.positive_int(items_per_step, "items_per_step")
    sampled = items_per_step is not None and items_per_step < int(warm.sum())
    lengths = np.diff(offsets)
    # A sampled step's activations: at most the items_per_step longest trained texts' tokens.
    longest_first = np.sort(lengths[warm])[::-1]
    size = dict(tokens=int(lengths[warm].sum()),
                tuned_tokens=int(longest_first[: items_per_step if sampled else None].sum()),
                longest=int(lengths.max()),
                scores=min(batch_size, interactions.shape[0]) * int(warm.sum()),
                config=config, layers=layers)  # fmt: skip
    if recompute is None:
        recompute = _training_bytes(**size, recompute=False) > hyperparameters.memory_bytes() // 2
    fixes = ["pass items_per_step (e.g. 1024)"] * (not sampled)
    fixes += ["pass recompute=True"] * (not recompute)
    fixes.append("fine-tune on fewer items (a sample of the catalogue), a smaller batch_size, "
                 "fewer layers or shorter item texts")  # fmt: skip
    hyperparameters.memory(
        _training_bytes(**size, recompute=bool(recompute)),
        f"fine_tune of the {int(warm.sum())} items with interactions"
        + (f", items_per_step={items_per_step}" if sampled else "")
        + (", even with recompute," if recompute else ""),
        ", or ".join(fixes),
    )
    # The network, its gradients and Adam's two moments, in float32 (before allocating them).
    mlp_bytes = 16 * (config.hidden * hidden + hidden + hidden * factors + factors)
    hyperparameters.memory(mlp_bytes, f"hidden={hidden}, factors={factors}", "lower them")
    rng = generator(options["random_state"])
    network = initial_weights(config.hidden, hidden, factors, rng)
    seed = int(rng.integers(0, 2**63))
    m = interactions
    show = hyperparameters.progress(options["show_progress"])
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    bar = None
    try:
        tuner = text_ext.EncoderTuner(
            weights, config.layers, network, offsets, ids, m.indptr.astype(np.int64),
            m.indices.astype(np.int32), m.data.astype(np.float32), m.shape[0], m.shape[1],
            config.heads, config.layer_norm_eps, layers, hidden, factors, 0.01, tau, batch_size,
            learning_rate, mlp_learning_rate, seed, _CHUNK, bool(recompute),
            precision == "bf16", items_per_step if sampled else 0,
        )  # fmt: skip
        steps = tuner.steps_per_epoch
        bar = tqdm(total=epochs * steps, desc="fine_tune", unit="step", disable=not show)
        for epoch in range(epochs):
            total = 0.0
            for step in range(steps):
                loss = tuner.step(epoch, step)
                if not np.isfinite(loss):
                    raise ValueError(
                        f"fine_tune diverged at epoch {epoch} (loss {loss}); lower "
                        "learning_rate or raise tau"
                    )
                total += loss
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{loss:.4f}")
            if callback is not None:
                callback(epoch, total / steps)
        tuned = tuner.tuned_weights()
    finally:
        if bar is not None:
            bar.close()
        torch.set_num_threads(previous_threads)
    # Every tensor of the original file is kept (the pooler, position ids ...: the directory
    # stays a complete Hugging Face / sentence-transformers model); the tuned ones are float32.
    stored = raw_tensors(header)
    digest = hashlib.sha256()
    for name in sorted(tuned):
        data = np.ascontiguousarray(tuned[name], dtype="<f4")
        stored[files.prefix + name] = ("F32", data.shape, data.tobytes())
        digest.update(stored[files.prefix + name][2])
    metadata = {
        "format": "pt",
        "semrec": "fine_tune",
        "base_model": str(files.identity),
        "tuned_layers": str(layers),
        "tuned_precision": precision,
        "tuned_items_per_step": str(items_per_step if sampled else "all"),
        "tuned_sha256": digest.hexdigest(),  # a new identity: no embedding cache mixes them up
    }
    _write_model(Path(files.path), target, stored, metadata, overwrite, texts[:16])
    return TextEncoder(target, precision=encoder.precision, num_threads=encoder.num_threads)


def _checked_target(path: Any) -> Path:
    """``path`` as a folder fine_tune can create, through any symbolic link: its nearest
    existing ancestor a writable directory (a file there, or no write access, is refused before
    training)."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"path must be a str or path-like (the folder to write the tuned model "
                        f"to), got {type(path).__name__}")  # fmt: skip
    target = Path(os.path.expanduser(os.fspath(path)))  # "~/models/x" as TextEncoder reads it
    if target.is_symlink():
        # Followed, as every save follows one (semrec._files.writable_path): the link keeps
        # naming the tuned model, instead of being moved aside (live) or written over (dangling).
        linked = Path(os.path.realpath(target))
        if linked.is_symlink():
            raise ValueError(
                f"path {target} is a symbolic link that leads nowhere (a loop of links); give "
                "a folder's path"
            )
        target = linked
    ancestor = target.absolute().parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ValueError(f"path {target} cannot be created: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise PermissionError(f"path {target} cannot be created: {ancestor} is not writable")
    return target


def tuning_precision(requested: str, features: CpuFeatures | None = None) -> str:
    """The precision the tuned layers train in: ``auto`` is bf16 where the CPU runs it natively
    (AVX-512 BF16 or AMX), else fp32. An explicit ``bf16`` without native support would be
    emulated, slower than fp32: it trains in fp32 instead, with a warning.

    Examples
    --------
    >>> from semrec.text.precision import CpuFeatures
    >>> from semrec.text._tuning import tuning_precision
    >>> avx2 = CpuFeatures(True, False, False, False, False, {}, "AVX2")
    >>> tuning_precision("auto", avx2), tuning_precision("fp32", avx2)
    ('fp32', 'fp32')
    """
    features = features or cpu_features()
    if requested == "auto":
        return "bf16" if features.bf16_native else "fp32"
    if requested == "bf16" and not features.bf16_native:
        warnings.warn(
            "fine_tune(precision='bf16') has no native support here (it needs AVX-512 BF16 or "
            f"AMX; {features.describe()}): emulated bf16 would be slower than fp32, so it trains "
            "in fp32. Pass precision='auto' or 'fp32' to silence this.",
            RuntimeWarning,
            stacklevel=4,
        )
        return "fp32"
    return requested


def _training_bytes(
    tokens: int, tuned_tokens: int, longest: int, scores: int, config: Any, layers: int,
    recompute: bool,
) -> int:  # fmt: skip
    """About what a step holds: the trained items' token states below the tuned layers, the
    batch's score matrix and its gradients (``scores`` entries), and what autograd keeps of
    each tuned layer per token (queries, keys, values, context, two residual sums and
    LayerNorms, the feed-forward's activations, the attention weights, and their gradients'
    transients) for the tokens of the items a step runs (``tuned_tokens``), or with
    ``recompute`` for one chunk's. Counted in float32 whatever the precision: bf16 keeps a
    little less. MovieLens-100k, 2 layers, every item: 6.7 GiB estimated; the process peaked at
    5.4 GiB in fp32 and 4.4 GiB in bf16."""
    width, inner, heads = config.hidden, config.intermediate, config.heads
    per_layer = 16 * width + 3 * inner + 2 * heads * longest
    alive = min(tuned_tokens, _CHUNK * longest) if recompute else tuned_tokens
    return 4 * (tokens * width + 4 * scores + alive * layers * per_layer)


def _write_model(
    source: Path, target: Path, tensors: dict[str, tuple[str, tuple[int, ...], bytes]],
    metadata: dict[str, str], overwrite: bool, texts: list[str],
) -> None:  # fmt: skip
    """``source``'s files with new weights at ``target``, built beside it and renamed into place:
    an interrupted write never leaves a half-written model where a good one was, and a model
    that cannot encode ``texts`` (weights grown past what a forward pass holds) replaces
    nothing."""
    from semrec.text.encoder import TextEncoder  # the encoder module imports this one

    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    # Names unique to this call (two fine-tunings writing one path must not share them).
    staging = Path(files.temporary_beside(str(target)))
    old = Path(files.temporary_beside(str(target)) + ".old")
    replaced = False
    try:
        shutil.copytree(source, staging, ignore=shutil.ignore_patterns(*_WEIGHT_FILES))
        write_tensors(staging / "model.safetensors", tensors, metadata)
        try:
            TextEncoder(staging, precision="fp32").encode(texts)
        except FormatError:  # the loss was finite before the last update; this is after it
            raise ValueError(
                "fine_tune diverged: the tuned model's vectors are not finite (its weights grew "
                f"out of range), so nothing was written to {target}; lower learning_rate or "
                "raise tau"
            ) from None
        if os.path.lexists(target):  # a link made meanwhile too: a rename cannot replace it
            if not overwrite:  # appeared meanwhile
                raise FileExistsError(f"path {target} exists; pass overwrite=True or another path")
            target.rename(old)
        staging.rename(target)
        replaced = True
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        moved = os.path.lexists(old)  # a dangling link moved aside does not "exist"
        if moved and not replaced and not os.path.lexists(target):
            old.rename(target)  # stopped between the two renames: the old model back in place
        elif moved and replaced:
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old, ignore_errors=True)
            else:  # a file, or a link (rmtree refuses links): the link itself, not its target
                old.unlink()
