"""Files in and out: tables (CSV/Parquet), datasets, and writes that never leave half a file."""

from __future__ import annotations

import argparse
import os
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from semrec import _files as files
from semrec.datasets import Dataset
from semrec.errors import FormatError

TABLE_ENDINGS = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".parquet", ".pq")


def _ending(path: str | os.PathLike[str], endings: Iterable[str]) -> str | None:
    name = os.fspath(path).lower()
    return next((e for e in sorted(endings, key=len, reverse=True) if name.endswith(e)), None)


def is_parquet(path: str | os.PathLike[str]) -> bool:
    return _ending(path, (".parquet", ".pq")) is not None


def _parquet_engine() -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ImportError(
            "Parquet files need pyarrow: pip install pyarrow (or pip install 'semrec[parquet]')"
        ) from None


def read_table(
    path: str, what: str, sep: str | None = None, names: list[str] | None = None
) -> pd.DataFrame:
    """A CSV/TSV/Parquet file as a DataFrame; FileNotFoundError / FormatError otherwise.

    ``names`` are the column names of a CSV file without a header line.
    """
    _check_file(path, what)
    p = Path(path)
    if is_parquet(p):
        _parquet_engine()
        try:
            return pd.read_parquet(p)
        except Exception as exc:  # pyarrow raises its own types for damaged files
            raise FormatError(f"{path} is not a readable Parquet file ({exc})") from None
    if sep is None:
        sep = "\t" if _ending(p, (".tsv", ".tsv.gz")) else ","
    try:
        with warnings.catch_warnings():
            # Rows longer than the header would silently become an index or lose data.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                p, sep=sep, index_col=False, header=None if names else "infer", names=names
            )
    except pd.errors.ParserWarning:
        raise FormatError(
            f"{path} is malformed: some rows have more fields than the header"
            + (" (or than --column-names)" if names else "")
        ) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, EOFError) as exc:
        raise FormatError(f"{path} is not a readable CSV file ({exc})") from None
    except OSError as exc:  # e.g. a .gz file that is not gzip
        raise FormatError(f"{path} could not be read ({exc})") from None
    if frame.columns.size == 0 or len(frame) == 0:
        raise FormatError(f"{path} has no data rows")
    return frame


def read_text_table(path: str, what: str, sep: str | None = None) -> pd.DataFrame:
    """A CSV file as text cells, header line included as the first row."""
    _check_file(path, what)
    try:
        frame = pd.read_csv(path, sep=sep or ",", header=None, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise FormatError(f"{path} is not a readable CSV file ({exc})") from None
    return frame


def _check_file(path: str, what: str) -> None:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{what} file not found: {path}")
    if p.is_dir():
        raise FormatError(f"{what} must be a file, got the directory {path}")


def require_columns(frame: pd.DataFrame, columns: dict[str, str | None], path: str) -> None:
    """Each option -> column it names must exist in ``frame``."""
    for option, col in columns.items():
        if col is not None and col not in frame.columns:
            raise ValueError(
                f"{path} has no column {col!r} (from {option}); its columns are "
                f"{', '.join(map(str, frame.columns))}"
            )


def load_dataset(args: argparse.Namespace) -> Dataset:
    """The interactions (and item table) named by the shared data options."""
    frame = read_table(args.interactions, "--interactions", args.sep, args.column_names)
    require_columns(
        frame,
        {
            "--user-column": args.user_column,
            "--item-column": args.item_column,
            "--weight-column": args.weight_column,
            "--timestamp-column": args.timestamp_column,
        },
        args.interactions,
    )
    items = None
    if args.items is not None:
        items = read_table(args.items, "--items", args.sep)
        id_col = args.item_id_column or args.item_column
        require_columns(
            items,
            {"--item-id-column" if args.item_id_column else "--item-column": id_col}
            | {"--text-column": args.text_column},
            args.items,
        )
        if id_col != args.item_column:
            items = items.rename(columns={id_col: args.item_column})
            if args.text_column == id_col:
                raise ValueError("--text-column and --item-id-column name the same column")
    elif args.text_column is not None:
        raise ValueError("--text-column needs --items FILE (the table holding the item text)")
    if items is not None:
        # Item ids read from two files may differ in type (1 vs "1"): compare them as text.
        a, b = frame[args.item_column], items[args.item_column]
        if a.dtype != b.dtype:
            frame[args.item_column] = a.astype(str)
            items[args.item_column] = b.astype(str)
    try:
        return Dataset.from_pandas(
            frame,
            args.user_column,
            args.item_column,
            args.weight_column,
            args.timestamp_column,
            items=items,
            item_text=args.text_column,
            duplicates=args.duplicates,
        )
    except (ValueError, TypeError) as exc:  # name the files: the message names columns only
        files = args.interactions + (f" with {args.items}" if args.items else "")
        raise type(exc)(f"{files}: {exc}") from None


def check_output(path: str, endings: Iterable[str], option: str = "--out") -> str:
    """Fail before any work when ``path`` cannot be written: returns its ending."""
    endings = tuple(endings)
    ending = _ending(path, endings)
    if ending is None:
        raise ValueError(f"{option} must end with one of {', '.join(endings)}, got {path}")
    target = Path(path)
    parent = target.parent
    if not parent.is_dir():
        raise FileNotFoundError(f"{option}: the directory {parent} does not exist")
    if target.is_dir():
        raise ValueError(f"{option} names a directory: {path}")
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"{option}: cannot write in {parent}")
    if is_parquet(path):
        _parquet_engine()
    return ending


def write_atomic(path: str, write: Callable[[str], None]) -> None:
    """Call ``write(tmp)`` on a temporary file in the target's directory, then rename it over
    ``path``: a failure at any point leaves an existing ``path`` untouched and no debris."""
    target = Path(files.writable_path(path))
    # The temporary name keeps the real ending so that pandas infers the same compression.
    tmp = Path(files.temporary_beside(str(target)))
    try:
        write(str(tmp))
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_table(frame: pd.DataFrame, path: str) -> None:
    if is_parquet(path):
        write_atomic(path, lambda tmp: frame.to_parquet(tmp, index=False))
    else:
        sep = "\t" if _ending(path, (".tsv", ".tsv.gz")) else ","
        write_atomic(path, lambda tmp: frame.to_csv(tmp, index=False, sep=sep))


def write_npy(array: np.ndarray, path: str) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.save(f, array, allow_pickle=False)

    write_atomic(path, write)
