"""Argument types and the option groups that several commands share."""

from __future__ import annotations

import argparse
import codecs
import sys
import textwrap
from typing import Any


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, pointing at ``--help``."""

    def error(self, message: str) -> Any:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's example lines as written; wider option column."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=34, width=100)


def paragraph(text: str) -> str:
    """A description wrapped to the help width (the formatter keeps line breaks as written)."""
    return textwrap.fill(text, 95)


def command(
    sub: argparse._SubParsersAction, name: str, summary: str, description: str, epilog: str
) -> argparse.ArgumentParser:
    """A subcommand's parser: one-line ``summary`` in the command list, ``description`` (a
    paragraph, plus anything after a blank line as written) and ``epilog`` in its help."""
    first, _, rest = description.partition("\n\n")
    return sub.add_parser(
        name,
        help=summary,
        description=paragraph(first) + (f"\n\n{rest}" if rest else ""),
        epilog=epilog,
        formatter_class=HelpFormatter,
    )


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must lie strictly between 0 and 1, got {value}")
    return value


def cutoffs(text: str) -> tuple[int, ...]:
    """``"10"`` or ``"5,10,20"``."""
    values = tuple(positive(part) for part in text.split(",") if part.strip())
    if not values:
        raise argparse.ArgumentTypeError(f"expected k values such as 10 or 5,10,20, got {text!r}")
    return tuple(sorted(set(values)))


def names(text: str) -> list[str]:
    """A comma-separated list, e.g. ``"als,popular,random"``."""
    values = [part.strip() for part in text.split(",") if part.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"expected names such as als,popular, got {text!r}")
    return list(dict.fromkeys(values))


def param(text: str) -> tuple[str | None, str, Any]:
    """``NAME=VALUE`` or ``MODEL.NAME=VALUE``; the value is parsed as int, float, bool or None
    when it looks like one, else kept as a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE (e.g. factors=32), got {text!r}")
    model, _, name = key.strip().rpartition(".")
    return (model or None), name, parse_value(raw.strip())


def parse_value(raw: str) -> Any:
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "none":
        return None
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw


def add_data_arguments(p: argparse.ArgumentParser, *, text_help: str) -> None:
    """The input options of ``recommend`` and ``evaluate``."""
    g = p.add_argument_group("input")
    g.add_argument(
        "--interactions",
        required=True,
        metavar="FILE",
        help="interactions table, one row per (user, item) event: .csv, .tsv, .csv.gz or .parquet",
    )
    g.add_argument("--user-column", default="user", metavar="COL", help="raw user ids (user)")
    g.add_argument("--item-column", default="item", metavar="COL", help="raw item ids (item)")
    g.add_argument(
        "--weight-column",
        metavar="COL",
        help="interaction weights: ratings, counts (default: every event weighs 1)",
    )
    g.add_argument(
        "--timestamp-column",
        metavar="COL",
        help="event times: integers (e.g. Unix seconds) or datetimes; text such as "
        "2020-01-31 or 2020-01-31T08:00:00+01:00 is parsed (UTC unless it says otherwise)",
    )
    g.add_argument(
        "--duplicates",
        choices=("sum", "last", "raise"),
        default="sum",
        help="repeated (user, item) rows: sum their weights (default), keep the last one "
        "(by time), or stop with an error",
    )
    g.add_argument("--items", metavar="FILE", help="item table (adds items nobody interacted with)")
    g.add_argument("--text-column", metavar="COL", help=text_help)
    g.add_argument(
        "--item-id-column",
        metavar="COL",
        help="item id column of --items (default: the --item-column name)",
    )
    g.add_argument(
        "--column-names",
        type=names,
        metavar="NAMES",
        help="comma-separated column names of an --interactions CSV without a header line",
    )
    add_sep_argument(g, "--interactions")
    g.add_argument(
        "--items-sep",
        type=separator,
        metavar="SEP",
        help="field separator of --items, 'tab' for a tab (default: tab for .tsv, else ',')",
    )
    g.add_argument(
        "--items-column-names",
        type=names,
        metavar="NAMES",
        help="comma-separated column names of an --items CSV without a header line (one per "
        "field, e.g. MovieLens' u.item)",
    )
    g.add_argument(
        "--items-encoding",
        type=encoding,
        metavar="CODEC",
        help="text encoding of an --items CSV, e.g. latin-1 for MovieLens' u.item (utf-8)",
    )


def encoding(text: str) -> str:
    """A text encoding Python knows (``latin-1``, ``cp1252``, ``utf-8-sig`` ...)."""
    try:
        return codecs.lookup(text).name
    except LookupError:
        raise argparse.ArgumentTypeError(
            f"expected a text encoding such as utf-8 or latin-1, got {text!r}"
        ) from None


def separator(text: str) -> str:
    """A CSV separator; ``tab`` and ``\\t`` spell a tab (awkward to type in a shell)."""
    return "\t" if text in ("tab", "\\t") else text


def add_sep_argument(g: Any, option: str) -> None:
    """``--sep``: the field separator of the CSV named by ``option`` (and of no other file)."""
    g.add_argument(
        "--sep",
        type=separator,
        metavar="SEP",
        help=f"field separator of {option}, 'tab' for a tab (default: tab for .tsv, else ',')",
    )


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument(
        "--param",
        type=param,
        action="append",
        default=[],
        metavar="[MODEL.]NAME=VALUE",
        help="a model hyperparameter, e.g. factors=128 or als.iterations=30 (repeatable); "
        "NAME=VALUE goes to every chosen model that takes NAME",
    )
    g.add_argument("--seed", type=int, default=0, metavar="N", help="random seed (0)")
    g.add_argument(
        "--threads", type=int, metavar="N", help="threads (default: all cores; 0 also all)"
    )
    g.add_argument(
        "--encoder",
        metavar="DIR",
        help="text model for item text: a sentence-transformers directory (default: the "
        "bundled all-MiniLM-L6-v2)",
    )
    g.add_argument(
        "--batch-size", type=positive, default=32, metavar="N", help="texts per encoder batch (32)"
    )
    add_precision_arguments(g)


def add_precision_arguments(g: Any) -> None:
    """``--precision`` (TextEncoder's, default auto) and ``--bf16``, its older spelling."""
    g.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16", "int8"),
        default="auto",
        help="text model precision: auto is bf16 with AMX, else int8 (cosine ~0.99 to fp32), "
        "else bf16 where native or fp32 (torch without FBGEMM); see TextEncoder (auto)",
    )
    g.add_argument(
        "--bf16",
        dest="precision",
        action="store_const",
        const="bf16",
        help="same as --precision bf16",
    )


def add_common_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or status lines")


def status(message: str) -> None:
    """A progress line for the person at the terminal (stderr, so stdout stays data)."""
    print(f"semrec: {message}", file=sys.stderr, flush=True)


def warn(args: argparse.Namespace, message: str) -> None:
    """A warning about the input on stderr: printed even with ``--quiet``, which silences
    progress only (the result is still written, but not quite what the files seem to say)."""
    print(f"semrec {args.command}: warning: {message}", file=sys.stderr, flush=True)


def show_progress(args: argparse.Namespace) -> bool:
    """Progress bars go to a terminal only (not into log files), and never with --quiet."""
    return not args.quiet and sys.stderr.isatty()
