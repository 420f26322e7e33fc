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

from semrec.als import ALS
from semrec.baselines import MostPopular, Random
from semrec.cli import _args
from semrec.datasets import Dataset

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
            raise ValueError(
                f"--param {model}.{key}: model {name!r} has no parameter {key!r}; "
                f"it takes {', '.join(sorted(accepted))}"
            )
        params[key] = value
    return cls(**{k: v for k, v in params.items() if k in accepted})


def item_embeddings(args: argparse.Namespace, dataset: Dataset) -> np.ndarray:
    """Text embeddings of every item (encoded once per run and kept on ``args``)."""
    cached = getattr(args, "_item_embeddings", None)
    if cached is not None:
        return cached
    texts = dataset.item_text
    if texts is None:
        raise ValueError("this needs item text: pass --items FILE --text-column COL")
    from semrec.text import TextEncoder

    encoder = TextEncoder(
        args.encoder, precision="bf16" if args.bf16 else "fp32", num_threads=args.threads
    )
    args._item_embeddings = encoder.encode(
        texts, batch_size=args.batch_size, show_progress=_args.show_progress(args)
    )
    return args._item_embeddings


def builds(cls: type) -> Callable[[Factory], Factory]:
    """Mark a factory with the class it builds, so ``--param`` typos are caught before work."""

    def mark(factory: Factory) -> Factory:
        factory.model_class = cls  # type: ignore[attr-defined]
        return factory

    return mark


@builds(ALS)
def _als(args: argparse.Namespace, train: Dataset) -> Any:
    """matrix factorisation (semrec.ALS; implicit feedback unless feedback=explicit)"""
    model = build(
        ALS,
        "als",
        args,
        random_state=args.seed,
        num_threads=args.threads,
        show_progress=_args.show_progress(args),
    )
    return model.fit(train.interactions)


@builds(MostPopular)
def _popular(args: argparse.Namespace, train: Dataset) -> Any:
    """the items most users interacted with (baseline)"""
    return build(MostPopular, "popular", args).fit(train.interactions)


@builds(Random)
def _random(args: argparse.Namespace, train: Dataset) -> Any:
    """uniformly random unseen items (baseline)"""
    return build(Random, "random", args, random_state=args.seed).fit(train.interactions)


MODELS: dict[str, Factory] = {
    "als": _als,
    "popular": _popular,
    "random": _random,
    # The models of the other branches plug in here, one entry each, once they land on main:
    #   "content": semrec.ContentRecommender fitted on item_embeddings(args, train)
    #   "itemknn", "userknn": semrec.ItemKNN / semrec.UserKNN on train.interactions
    #   "hybrid": semrec.Hybrid (ALS + content, item_embeddings(args, train))
    # A model that needs item text calls item_embeddings(args, train), which explains to the
    # user that --items and --text-column are needed.
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
    """Every ``--param`` must reach at least one chosen model (catches typos before work)."""
    for model, key, _ in args.param:
        if model is not None and model not in names:
            raise ValueError(
                f"--param {model}.{key}: {model!r} is not among the chosen models "
                f"({', '.join(names)})"
            )
        if model is None and not any(_takes(n, key) for n in names):
            raise ValueError(
                f"--param {key}: none of the chosen models ({', '.join(names)}) has a "
                f"parameter {key!r}"
            )


def _takes(name: str, key: str) -> bool:
    cls = getattr(MODELS[name], "model_class", None)  # unknown class: assume it may take it
    return cls is None or key in inspect.signature(cls).parameters
