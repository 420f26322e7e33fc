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


def default_sep(path: str | os.PathLike[str]) -> str:
    """The field separator a CSV file's name implies: tab for .tsv, else a comma."""
    return "\t" if _ending(path, (".tsv", ".tsv.gz")) else ","


def read_table(
    path: str,
    what: str,
    sep: str | None = None,
    names: list[str] | None = None,
    *,
    text_columns: Iterable[str] = (),
) -> pd.DataFrame:
    """A CSV/TSV/Parquet file as a DataFrame; FileNotFoundError / FormatError otherwise.

    ``names`` are the column names of a CSV file without a header line. ``text_columns`` of a
    CSV are read as written: no type inference ("007" stays "007") and no NA words ("None" and
    "NA" stay text, an empty cell is ""); the other columns keep pandas' types and NA cells.
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
        sep = default_sep(p)
    layout = {"sep": sep, "index_col": False, "header": None if names else "infer", "names": names}
    try:
        with warnings.catch_warnings():
            # Rows longer than the header would silently become an index or lose data.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(p, **layout)
            text = [c for c in text_columns if c in frame.columns]  # missing: named by the caller
            if text:  # read again as written, in place of pandas' guesses
                raw = pd.read_csv(p, **layout, usecols=text, dtype=str, keep_default_na=False)
                frame[text] = raw[text]
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
        frame = pd.read_csv(
            path, sep=sep or default_sep(path), header=None, dtype=str, keep_default_na=False
        )
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
                f"{', '.join(repr(str(c)) for c in frame.columns)}"
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
        text = [args.text_column] if args.text_column is not None else []
        items = read_table(args.items, "--items", args.items_sep, text_columns=text)
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
        frame[args.item_column], items[args.item_column] = _same_ids(
            frame[args.item_column], items[args.item_column], args
        )
    if args.timestamp_column is not None:
        frame[args.timestamp_column] = _parse_times(frame[args.timestamp_column], args)
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
        # The library's advice names its keyword; here the choice is a flag.
        message = str(exc).replace("duplicates='sum'", "--duplicates sum")
        message = message.replace("duplicates='last'", "--duplicates last")
        raise type(exc)(f"{files}: {message}") from None


def _integral(ids: pd.Series) -> pd.Series:
    """Float ids that are all whole numbers (1.0, as a CSV with a gap or a float export
    writes them) as int64; any other column as it is."""
    if pd.api.types.is_float_dtype(ids):
        values = ids.to_numpy(np.float64, na_value=np.nan)
        limit = float(2**63)  # int64 holds every whole float below 2**63 exactly
        if np.isfinite(values).all() and (values == np.round(values)).all():
            if (np.abs(values) < limit).all():
                return ids.astype(np.int64)
    return ids


def _same_ids(a: pd.Series, b: pd.Series, args: argparse.Namespace) -> tuple[pd.Series, pd.Series]:
    """The item ids of --interactions (``a``) and --items (``b``) in one type, so that equal
    ids compare equal: numbers as numbers (1 and 1.0 are one item), anything else as text."""
    numeric = pd.api.types.is_numeric_dtype
    bool_ = pd.api.types.is_bool_dtype
    if numeric(a) and numeric(b) and not bool_(a) and not bool_(b):
        a, b = _integral(a), _integral(b)
        integer = pd.api.types.is_integer_dtype
        if a.dtype != b.dtype:  # int32 and int64 as int64; 1 and 1.5 as floats
            kind = np.int64 if integer(a) and integer(b) else np.float64
            a, b = a.astype(kind), b.astype(kind)
    if a.dtype != b.dtype:  # 1 vs "1": compare as text
        a, b = a.astype(str), b.astype(str)
    if not pd.Index(a.dropna()).isin(b.dropna()).any():
        id_flag = "--item-id-column" if args.item_id_column else "--item-column"
        raise ValueError(
            f"no item id of --interactions {args.interactions} (--item-column "
            f"{args.item_column!r}, e.g. {str(a.iloc[0])!r}) appears in --items {args.items} "
            f"({id_flag} {args.item_id_column or args.item_column!r}, e.g. "
            f"{str(b.iloc[0])!r}): do the two columns hold the same ids?"
        )
    return a, b


def _parse_times(times: pd.Series, args: argparse.Namespace) -> pd.Series:
    """A text timestamp column (all a CSV can hold) as UTC datetimes; other columns as they are."""
    if not (pd.api.types.is_string_dtype(times) or pd.api.types.is_object_dtype(times)):
        return times
    if times.isna().any():
        return times  # the dataset names the missing timestamps
    try:
        return pd.to_datetime(times, utc=True, format="ISO8601")
    except (ValueError, TypeError, OverflowError):
        pass
    try:  # one consistent non-ISO format, inferred from the first value (e.g. 01/31/2020)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "could not infer format"
            return pd.to_datetime(times, utc=True)
    except (ValueError, TypeError, OverflowError):
        bad = pd.to_datetime(times, utc=True, format="ISO8601", errors="coerce").isna()
        row = int(np.flatnonzero(bad.to_numpy())[0]) if bad.any() else 0
        raise ValueError(
            f"--timestamp-column {args.timestamp_column!r} of {args.interactions} holds text "
            f"that is not a date or time, e.g. {str(times.iloc[row])!r} (data row {row + 1}); "
            "give ISO 8601 dates such as 2020-01-31 or 2020-01-31T08:00:00, or integer "
            "timestamps"
        ) from None


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
