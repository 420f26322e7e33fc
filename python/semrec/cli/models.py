"""The models the command line knows: one registry entry each.

An entry maps a name to ``factory(args, train) -> fitted model``, where ``args`` holds the
parsed options (``--param``, ``--seed``, ``--threads``, ``--quiet`` ...) and ``train`` is the
:class:`semrec.datasets.Dataset` to fit on. The factory's first docstring line is its help
text. A fitted model needs ``recommend(users, k, exclude_seen=..)`` (the common verb).
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from semrec.als import ALS
from semrec.baselines import MostPopular, Random
from semrec.cli import _args
from semrec.content import ContentRecommender
from semrec.datasets import Dataset
from semrec.hybrid import Hybrid
from semrec.knn import ItemKNN, UserKNN

Factory = Callable[[argparse.Namespace, Dataset], Any]


def build(cls: type, name: str, args: argparse.Namespace, **defaults: Any) -> Any:
    """``cls(**defaults)`` overridden by the ``--param`` values meant for model ``name``."""
    accepted = set(inspect.signature(cls).parameters)
    params = dict(defaults)
    for model, key, value in args.param:
        if model not in (None, name):
            continue
        if key not in accepted:
            if model is None:
                continue  # a bare NAME=VALUE goes to the models that take it
            raise ValueError(_no_such_parameter(name, key, accepted))
        params[key] = value
    return cls(**{k: v for k, v in params.items() if k in accepted})


def item_embeddings(args: argparse.Namespace, dataset: Dataset) -> np.ndarray:
    """Text embeddings of every item (encoded once per run and kept on ``args.encoded_items``).

    An item without text (absent from --items, or an empty --text-column cell) gets a zero
    row, which the content model scores 0 and the diversity metric puts at distance 1, and a
    warning on stderr says how many: the embedding of "" would make them all perfect matches
    of one another.
    """
    cached = getattr(args, "encoded_items", None)
    if cached is not None:
        return cached
    texts = dataset.item_text
    if texts is None:
        raise ValueError("this needs item text: pass --items FILE --text-column COL")
    has_text = np.array([text.strip() != "" for text in texts], dtype=bool)
    if not has_text.any():
        raise ValueError(
            f"no item has text: --text-column {args.text_column!r} of --items {args.items} is "
            f"empty or absent for all {len(texts):,} items of --interactions"
        )
    if not has_text.all():
        _args.warn(args, _without_text(args, dataset, has_text))
    from semrec.text import TextEncoder

    encoder = TextEncoder(args.encoder, precision=args.precision, num_threads=args.threads)
    vectors = encoder.encode(
        [text for text, keep in zip(texts, has_text, strict=True) if keep],
        batch_size=args.batch_size,
        show_progress=_args.show_progress(args),
    )
    embeddings = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
    embeddings[has_text] = vectors
    args.encoded_items = embeddings
    return embeddings


def _without_text(args: argparse.Namespace, dataset: Dataset, has_text: np.ndarray) -> str:
    """The warning about the items without text: how many, and why (no row or an empty cell)."""
    listed = getattr(args, "listed_items", None)
    if listed is None:  # not read by load_dataset: no row is known to be missing
        listed = dataset.item_ids
    in_file = pd.Index(dataset.item_ids).isin(listed)
    unlisted = int((~has_text & ~in_file).sum())
    empty = int((~has_text & in_file).sum())
    reasons = []
    if unlisted:
        reasons.append(f"{unlisted:,} not listed in --items {args.items}")
    if empty:
        reasons.append(f"{empty:,} with an empty --text-column {args.text_column!r} cell")
    return (
        f"{unlisted + empty:,} of {has_text.size:,} items have no text ({', '.join(reasons)}): "
        "they get no text vector (a zero row), which text models score 0"
    )


def builds(cls: type) -> Callable[[Factory], Factory]:
    """Mark a factory with the class it builds, so ``--param`` typos are caught before work."""

    def mark(factory: Factory) -> Factory:
        factory.model_class = cls  # type: ignore[attr-defined]
        return factory

    return mark


def _running(args: argparse.Namespace) -> dict[str, Any]:
    """The options every model with a kernel takes from the command line."""
    return {"num_threads": args.threads, "show_progress": _args.show_progress(args)}


@builds(ALS)
def _als(args: argparse.Namespace, train: Dataset) -> Any:
    """matrix factorisation (semrec.ALS; implicit feedback unless feedback=explicit)"""
    model = build(ALS, "als", args, random_state=args.seed, **_running(args))
    return model.fit(train.interactions)


@builds(MostPopular)
def _popular(args: argparse.Namespace, train: Dataset) -> Any:
    """the items most users interacted with (baseline)"""
    return build(MostPopular, "popular", args).fit(train.interactions)


@builds(Random)
def _random(args: argparse.Namespace, train: Dataset) -> Any:
    """uniformly random unseen items (baseline)"""
    return build(Random, "random", args, random_state=args.seed).fit(train.interactions)


@builds(ContentRecommender)
def _content(args: argparse.Namespace, train: Dataset) -> Any:
    """user-interest profiles over the item-text embeddings (needs --items/--text-column)"""
    emb = item_embeddings(args, train)
    return build(ContentRecommender, "content", args, item_embeddings=emb, **_running(args)).fit(
        train
    )


def _knn(cls: type, name: str) -> Factory:
    @builds(cls)
    def factory(args: argparse.Namespace, train: Dataset) -> Any:
        return build(cls, name, args, **_running(args)).fit(train.interactions)

    what = "items" if cls is ItemKNN else "users"
    factory.__doc__ = f"neighbourhood CF over similar {what} (semrec.{cls.__name__})"
    return factory


def _hybrid(args: argparse.Namespace, train: Dataset) -> Any:
    """ALS and content, z-scored and blended als_weight (0.7) : 1 - als_weight"""
    weight = _als_weight(args)
    return Hybrid([(_als(args, train), weight), (_content(args, train), 1.0 - weight)])


def _als_weight(args: argparse.Namespace) -> float:
    """The hybrid's ``--param hybrid.als_weight`` (0.7), a number in [0, 1]."""
    values = {key: value for model, key, value in args.param if model in (None, "hybrid")}
    weight = values.get("als_weight", 0.7)
    number = isinstance(weight, int | float) and not isinstance(weight, bool)
    if not number or not 0.0 <= weight <= 1.0:
        raise ValueError(f"--param hybrid.als_weight must be a number in [0, 1], got {weight!r}")
    return float(weight)


class _HybridParams:
    """What ``--param hybrid.NAME`` accepts; the members take ``als.*`` and ``content.*``."""

    def __init__(self, als_weight: float = 0.7) -> None:
        self.als_weight = als_weight


_hybrid.model_class = _HybridParams  # type: ignore[attr-defined]
_hybrid.members = ("als", "content")  # type: ignore[attr-defined]
_hybrid.check = _als_weight  # type: ignore[attr-defined]
# Models that embed the item text (--items and --text-column).
_content.needs_text = _hybrid.needs_text = True  # type: ignore[attr-defined]


MODELS: dict[str, Factory] = {
    "als": _als,
    "content": _content,
    "itemknn": _knn(ItemKNN, "itemknn"),
    "userknn": _knn(UserKNN, "userknn"),
    "hybrid": _hybrid,
    "popular": _popular,
    "random": _random,
}


def describe() -> str:
    """One line per model, for the help texts."""
    width = max(map(len, MODELS))
    return "\n".join(
        f"  {name:<{width}}  {(fn.__doc__ or '').strip().splitlines()[0]}"
        for name, fn in MODELS.items()
    )


def check_names(names: list[str]) -> list[str]:
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise ValueError(f"unknown model {unknown[0]!r}; choose from {', '.join(MODELS)}")
    return names


def check_params(args: argparse.Namespace, names: list[str]) -> None:
    """Every ``--param`` must reach at least one chosen model (catches typos before work), with
    a value the model takes, and the models that embed item text need ``--text-column``."""
    # A composite model (hybrid) also takes its members' parameters (als.*, content.*).
    names = list(dict.fromkeys([*names, *(m for n in names for m in _members(n))]))
    for model, key, _ in args.param:
        if model is not None and model not in names:
            raise ValueError(
                f"--param {model}.{key}: {model!r} is not among the chosen models "
                f"({', '.join(names)})"
            )
        accepted = None if model is None else _accepted(model)
        if accepted is not None and key not in accepted:
            raise ValueError(_no_such_parameter(model, key, accepted))
        if model is None and not any(_takes(n, key) for n in names):
            raise ValueError(
                f"--param {key}: none of the chosen models ({', '.join(names)}) has a "
                f"parameter {key!r}"
            )
    for name in names:  # values a model checks itself (e.g. the hybrid's weight), now
        getattr(MODELS[name], "check", lambda args: None)(args)
    text = [n for n in names if getattr(MODELS[n], "needs_text", False)]
    if text and args.text_column is None:  # found now, not after fitting the others
        raise ValueError(f"model {text[0]!r} needs item text: pass --items FILE --text-column COL")


def _members(name: str) -> tuple[str, ...]:
    return getattr(MODELS[name], "members", ())


def _accepted(name: str) -> set[str] | None:
    """The parameters model ``name`` takes (None: unknown, assume it may take any)."""
    cls = getattr(MODELS[name], "model_class", None)
    return None if cls is None else set(inspect.signature(cls).parameters)


def _takes(name: str, key: str) -> bool:
    accepted = _accepted(name)
    return accepted is None or key in accepted


def _no_such_parameter(name: str, key: str, accepted: set[str]) -> str:
    takes = ", ".join(sorted(accepted)) if accepted else "no parameters"
    message = f"--param {name}.{key}: model {name!r} has no parameter {key!r}; it takes {takes}"
    owners = [m for m in _members(name) if _takes(m, key)]
    if owners:  # a member's parameter given to the composite: name the member
        spelled = " or ".join(f"--param {m}.{key}=..." for m in owners)
        members = f"{' and '.join(owners)} member" + ("s" if len(owners) > 1 else "")
        message += f"; {key!r} belongs to its {members}: {spelled}"
    return message
