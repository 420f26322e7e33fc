"""``semrec encode``: embed a text column with the language model, to .npy or .parquet."""

from __future__ import annotations

import argparse

import pandas as pd

from semrec.cli import _args, _io

ENDINGS = (".npy", ".parquet", ".pq")

EPILOG = """\
examples:
  semrec encode --items movies.csv --text-column title --out emb.npy
  semrec encode --items movies.csv --text-column description --id-column movieId \\
      --out emb.parquet --precision int8 --batch-size 128

output: .npy holds a float32 array (one L2-normalised row per input row, in file order);
.parquet holds the --id-column (when given) and an 'embedding' column of float32 lists.
"""


SUMMARY = "embed a text column with the language model (to .npy or .parquet)"
DESCRIPTION = (
    "Embed each row's text with a sentence-transformers model running in "
    "semrec's C++ encoder (default: the bundled all-MiniLM-L6-v2, offline)."
)


def register(sub: argparse._SubParsersAction) -> None:
    p = _args.command(sub, "encode", SUMMARY, DESCRIPTION, EPILOG)
    g = p.add_argument_group("input")
    g.add_argument("--items", required=True, metavar="FILE", help="table: .csv, .tsv, .parquet")
    g.add_argument("--text-column", required=True, metavar="COL", help="column holding the text")
    g.add_argument("--id-column", metavar="COL", help="id column to keep (Parquet output)")
    _args.add_sep_argument(g, "--items")
    g = p.add_argument_group("encoding")
    g.add_argument("--out", required=True, metavar="FILE", help="output: .npy or .parquet")
    g.add_argument(
        "--model",
        metavar="DIR",
        help="sentence-transformers model directory (default: bundled all-MiniLM-L6-v2)",
    )
    g.add_argument(
        "--batch-size", type=_args.positive, default=32, metavar="N", help="texts per batch (32)"
    )
    _args.add_precision_arguments(g)
    g.add_argument("--threads", type=int, metavar="N", help="threads (default: all cores)")
    _args.add_common_arguments(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    ending = _io.check_output(args.out, ENDINGS)
    if ending == ".npy" and args.id_column is not None:
        raise ValueError(
            "--id-column needs a .parquet output (.npy holds only the vectors, in file order)"
        )
    if args.id_column == "embedding":  # refused now, not after encoding every row
        raise ValueError(
            "--id-column 'embedding' is the name of the output's vector column; rename the id "
            "column of --items"
        )
    # The text is embedded as written: no type inference ("007" is not 7), no NA words. The ids
    # are read as the other commands read them: as written ("0042" and "42" are two ids).
    ids = [] if args.id_column is None else [args.id_column]
    frame = _io.read_table(
        args.items, "--items", args.sep, text_columns=[args.text_column], id_columns=ids
    )
    _io.require_columns(
        frame, {"--text-column": args.text_column, "--id-column": args.id_column}, args.items
    )
    text = frame[args.text_column]
    missing = (text.isna() | (text.astype(str).str.strip() == "")).to_numpy().nonzero()[0]
    if missing.size:
        raise ValueError(
            f"{args.items}: column {args.text_column!r} has {missing.size} empty cell(s) "
            f"(first at data row {missing[0] + 1}); fill or drop them first"
        )
    from semrec.text import TextEncoder

    encoder = TextEncoder(args.model, precision=args.precision, num_threads=args.threads)
    vectors = encoder.encode(
        text.astype(str).tolist(),
        batch_size=args.batch_size,
        show_progress=_args.show_progress(args),
    )
    if ending == ".npy":
        _io.write_npy(vectors, args.out)
    else:
        out = pd.DataFrame({"embedding": list(vectors)})
        if args.id_column is not None:
            out.insert(0, args.id_column, frame[args.id_column].to_numpy())
        _io.write_table(out, args.out)
    if not args.quiet:
        _args.status(f"wrote {vectors.shape[0]:,} x {vectors.shape[1]} embeddings to {args.out}")
    return 0
