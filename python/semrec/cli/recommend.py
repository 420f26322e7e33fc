"""``semrec recommend``: fit a model on an interactions file and write top-k lists."""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from tqdm import tqdm

from semrec.cli import _args, _io
from semrec.cli import models as registry
from semrec.datasets import Dataset

# Users per recommend call: the progress bar moves and memory stays bounded.
BATCH = 2048

EPILOG = """\
examples:
  semrec recommend --interactions ratings.csv --user-column userId --item-column movieId \\
      --weight-column rating --model als --k 20 --out recs.csv
  semrec recommend --interactions clicks.parquet --users todo.txt --model als \\
      --param factors=128 --param iterations=30 --out recs.parquet

output: one row per recommendation with columns user, item, rank (1 = best), score, using
the raw ids of the input files. Users with fewer than k unseen items get shorter lists.
"""


SUMMARY = "fit a model on an interactions file and write each user's top-k items"
DESCRIPTION = (
    "Fit a model on an interactions table (CSV or Parquet) and write each user's top-k "
    "unseen items.\n\nmodels:\n" + registry.describe()
)


def register(sub: argparse._SubParsersAction) -> None:
    p = _args.command(sub, "recommend", SUMMARY, DESCRIPTION, EPILOG)
    _args.add_data_arguments(p, text_help="item text column of --items (for text models)")
    g = p.add_argument_group("recommendations")
    g.add_argument("--model", default="als", help="model to fit (als); see the list above")
    g.add_argument("--k", type=_args.positive, default=20, help="items per user (20)")
    g.add_argument(
        "--users",
        metavar="FILE",
        help="recommend for these raw user ids only: one per line, or a table with the "
        "--user-column column (default: every user)",
    )
    g.add_argument(
        "--include-seen", action="store_true", help="also recommend items the user already has"
    )
    g.add_argument(
        "--out", required=True, metavar="FILE", help="output table: .csv, .tsv, .parquet"
    )
    _args.add_model_arguments(p)
    _args.add_common_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    registry.check_names([args.model])
    registry.check_params(args, [args.model])
    _io.check_output(args.out, _io.TABLE_ENDINGS)
    dataset = _io.load_dataset(args)
    users = _users(args, dataset)
    # No list is longer than the catalogue: a larger --k would only allocate padding.
    k = min(args.k, dataset.n_items)
    model = registry.MODELS[args.model](args, dataset)
    recs = recommend_table(
        model, dataset, users, k, not args.include_seen, _args.show_progress(args)
    )
    _io.write_table(recs, args.out)
    if not args.quiet:
        _args.status(f"wrote {len(recs):,} recommendations for {len(users):,} users to {args.out}")
    return 0


def recommend_table(
    model: object,
    dataset: Dataset,
    users: np.ndarray,
    k: int,
    exclude_seen: bool,
    progress: bool,
) -> pd.DataFrame:
    """Top-k lists of ``users`` (indices) as a long table of raw ids, padding dropped."""
    ids = np.empty((users.size, k), dtype=np.int64)
    scores = np.empty((users.size, k), dtype=np.float32)
    with tqdm(total=users.size, desc="recommend", unit="user", disable=not progress) as bar:
        for start in range(0, users.size, BATCH):
            batch = users[start : start + BATCH]
            found, s = model.recommend(batch, k=k, exclude_seen=exclude_seen)  # type: ignore[attr-defined]
            ids[start : start + batch.size] = found
            scores[start : start + batch.size] = s
            bar.update(batch.size)
    keep = ids >= 0
    rows, rank = np.nonzero(keep)
    return pd.DataFrame(
        {
            "user": dataset.user_ids[users[rows]],
            "item": dataset.item_ids[ids[keep]],
            "rank": rank + 1,
            "score": scores[keep],
        }
    )


def _users(args: argparse.Namespace, dataset: Dataset) -> np.ndarray:
    """Indices of the raw ids listed in --users (ids compared as text, so 7 matches "7")."""
    if args.users is None:
        return np.arange(dataset.n_users, dtype=np.int32)
    if _io.is_parquet(args.users):
        frame = _io.read_table(args.users, "--users")
        _io.require_columns(frame, {"--user-column": args.user_column}, args.users)
        raw = frame[args.user_column].astype(str)
    else:
        frame = _io.read_text_table(args.users, "--users")  # --sep is --interactions' own
        header = frame.iloc[0].tolist()
        if args.user_column in header:  # a table with a header line
            raw = frame.iloc[1:, header.index(args.user_column)]
        else:  # a bare list of ids, one per line
            raw = frame.iloc[:, 0]
    raw = raw.dropna().str.strip()
    known = pd.Index(dataset.user_ids.astype(str)).get_indexer(raw)
    if (known < 0).any():
        missing = raw[known < 0].tolist()
        raise ValueError(
            f"--users lists {len(missing)} user id(s) absent from --interactions, e.g. "
            f"{', '.join(map(repr, missing[:3]))}"
        )
    if known.size == 0:
        raise ValueError(f"--users file {args.users} lists no user ids")
    return pd.unique(known.astype(np.int32))
