"""``semrec evaluate``: split an interactions file, fit several models, print one table."""

from __future__ import annotations

import argparse

import numpy as np

from semrec import _validation as check
from semrec import split
from semrec.cli import _args, _io
from semrec.cli import models as registry
from semrec.datasets import Dataset
from semrec.evaluation import compare

SPLITS = ("warm", "random")

EPILOG = """\
examples:
  semrec evaluate --interactions ratings.csv --user-column userId --item-column movieId \\
      --weight-column rating --timestamp-column timestamp --relevance-threshold 4 \\
      --models als,popular,random --split warm --k 10,20
  semrec evaluate --interactions clicks.csv --models als --split random \\
      --param factors=128 --param als.iterations=30 --out metrics.csv

splits:
  warm    per user, the last --test-fraction of the events by time go to test (needs
          --timestamp-column); the protocol's warm split
  random  per user, a random --test-fraction of the events go to test

Every model is fitted on the train part; each user with a relevant test item gets the top k
unseen items. With --items and --text-column the table adds intra-list diversity (text
embeddings of the recommended items).
"""


SUMMARY = "split an interactions file, fit models and print a metrics table"
DESCRIPTION = (
    "Hold out part of an interactions table, fit each model on the rest and print ranking "
    "metrics (precision, recall, ndcg, map, hit rate, mrr, coverage, novelty) side by "
    "side.\n\nmodels:\n" + registry.describe()
)


def register(sub: argparse._SubParsersAction) -> None:
    p = _args.command(sub, "evaluate", SUMMARY, DESCRIPTION, EPILOG)
    _args.add_data_arguments(
        p, text_help="item text column of --items (for text models and the diversity metric)"
    )
    g = p.add_argument_group("evaluation")
    g.add_argument(
        "--models",
        type=_args.names,
        default=["als", "popular", "random"],
        metavar="NAMES",
        help="comma-separated models to compare (als,popular,random)",
    )
    g.add_argument("--split", choices=SPLITS, default="warm", help="how to hold out (warm)")
    g.add_argument(
        "--test-fraction",
        type=_args.fraction,
        default=0.2,
        metavar="F",
        help="share held out per user (0.2)",
    )
    g.add_argument("--k", type=_args.cutoffs, default=(10,), metavar="K", help="k or k1,k2 (10)")
    g.add_argument(
        "--relevance-threshold",
        type=float,
        metavar="W",
        help="a test event is relevant when its weight is >= W (default: every test event)",
    )
    g.add_argument("--out", metavar="FILE", help="also write the table: .csv, .tsv, .parquet")
    _args.add_model_arguments(p)
    _args.add_common_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    names = registry.check_names(args.models)
    registry.check_params(args, names)
    if args.out is not None:
        _io.check_output(args.out, _io.TABLE_ENDINGS)
    if args.split == "warm" and args.timestamp_column is None:
        raise ValueError(
            "--split warm orders events by time: pass --timestamp-column COL, or use --split random"
        )
    dataset = _io.load_dataset(args)
    if args.split == "warm":
        train, test = split.last_fraction(dataset, args.test_fraction)
    else:
        train, test = split.random_holdout(dataset, args.test_fraction, random_state=args.seed)
    _check_k(args.k, train, _evaluated(test, args.relevance_threshold))
    embeddings = None
    if dataset.item_text is not None:
        embeddings = registry.item_embeddings(args, train)
    fitted = {}
    for n, name in enumerate(names, 1):
        if not args.quiet:
            _args.status(f"fitting {name} ({n}/{len(names)})")
        fitted[name] = registry.MODELS[name](args, train)
    table = compare(
        fitted,
        train,
        test,
        baselines=False,
        k=args.k,
        relevance_threshold=args.relevance_threshold,
        item_embeddings=embeddings,
        num_threads=args.threads,
    )
    print(
        f"{args.split} split of {dataset.n_users:,} users x {dataset.n_items:,} items: "
        f"{train.n_interactions:,} train / {test.n_interactions:,} test events, "
        f"{_evaluated(test, args.relevance_threshold):,} users evaluated"
    )
    print(table.to_string(float_format=lambda v: f"{v:.4f}"))
    if args.out is not None:
        _io.write_table(table.reset_index(), args.out)
    return 0


def _check_k(ks: tuple[int, ...], train: Dataset, rows: int) -> None:
    """Refuse a --k whose top-k lists would be mostly padding before fitting anything (the
    evaluator's own limit, found otherwise only after every model is fitted)."""
    if rows == 0:
        return  # nothing to rank: the evaluator says so
    try:
        check.result_width(max(ks), rows, train.n_items)
    except ValueError:
        raise ValueError(
            f"--k {max(ks)} asks for {rows:,} lists of {max(ks):,} items, mostly padding: there "
            f"are {train.n_items:,} items; pass --k <= {train.n_items}"
        ) from None


def _evaluated(test: Dataset, threshold: float | None) -> int:
    """Users with a relevant test event (those the metrics average over)."""
    m = test.interactions
    relevant = m.data >= threshold if threshold is not None else m.data == m.data
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    return int(np.unique(rows[relevant]).size)
