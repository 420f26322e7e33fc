"""The ``semrec`` command line: ``demo``, ``encode``, ``recommend`` and ``evaluate``.

One module per command, each with ``register(subparsers)`` and ``run(args) -> exit code``.
Errors the user can fix (a missing file or column, a malformed table, an unknown model) end
with one line on stderr and a non-zero exit code, never a traceback (``--traceback`` shows
it); outputs are written to a temporary file and renamed, so a failure never leaves a
half-written file or damages an existing one.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence

import semrec
from semrec.cli import _args, demo, encode, evaluate, recommend

EPILOG = """\
examples:
  semrec demo
  semrec encode --items movies.csv --text-column title --out emb.npy
  semrec recommend --interactions ratings.csv --user-column userId --item-column movieId \\
      --model als --k 20 --out recs.csv
  semrec evaluate --interactions ratings.csv --user-column userId --item-column movieId \\
      --timestamp-column timestamp --models als,popular,random --split warm --k 10

'semrec COMMAND --help' describes each command.
"""

# What a user can cause with bad input; anything else is a bug and keeps its traceback.
USER_ERRORS = (ValueError, TypeError, IndexError, KeyError, OSError, ImportError, MemoryError)


def build_parser() -> _args.Parser:
    parser = _args.Parser(
        prog="semrec",
        description="Semantic recommendation on an OpenMP C++ core.",
        epilog=EPILOG,
        formatter_class=_args.HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"semrec {semrec.__version__}")
    parser.add_argument(
        "--traceback", action="store_true", help="show the full traceback of an error"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in (demo, encode, recommend, evaluate):
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        print("semrec: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as exc:
        if args.traceback:
            raise
        print(f"semrec {args.command}: error: {_flags(_one_line(exc), args)}", file=sys.stderr)
        return 1


# Library keywords a command's flag sets: its messages name the keyword, the user typed the flag.
FLAGS = {
    "relevance_threshold": "--relevance-threshold",
    "random_state": "--seed",
    "num_threads": "--threads",
}


def _flags(text: str, args: argparse.Namespace) -> str:
    """``text`` with each library keyword named as the flag that set it (not when a
    ``--param`` gave that keyword itself, nor for a command without the flag)."""
    given = {key for _, key, _ in getattr(args, "param", [])}
    for word, flag in FLAGS.items():
        if word not in given and hasattr(args, flag[2:].replace("-", "_")):
            text = re.sub(rf"\b{word}\b", flag, text)
    return text


def _one_line(exc: BaseException) -> str:
    # KeyError quotes its message; pandas and pyarrow messages may span lines.
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    text = " ".join(str(text).split()) or type(exc).__name__
    return text if len(text) <= 400 else text[:397] + "..."


if __name__ == "__main__":
    sys.exit(main())
