"""Files in and out: tables (CSV/Parquet), datasets, and writes that never leave half a file."""

from __future__ import annotations

import argparse
import os
import re
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.api import guess_datetime_format

from semrec import _files as files
from semrec.datasets import Dataset
from semrec.errors import FormatError

TABLE_ENDINGS = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".parquet", ".pq")
# A missing-column message lists this many of the file's columns (it is one line).
SHOWN_COLUMNS = 12


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
    id_columns: Iterable[str] = (),
    names_option: str = "--column-names",
    encoding: str | None = None,
    encoding_option: str | None = None,
) -> pd.DataFrame:
    """A CSV/TSV/Parquet file as a DataFrame; FileNotFoundError / FormatError otherwise.

    ``names`` are the column names of a CSV file without a header line, one per field (given
    by the option ``names_option``, which a message names). A CSV is ``encoding`` text (None:
    UTF-8); the message for a file that is not names ``encoding_option``. ``text_columns`` of a
    CSV are read as written: no type inference ("007" stays "007") and no NA words ("None" and
    "NA" stay text, an empty cell is ""). ``id_columns`` of a CSV too, except that an empty
    cell is missing, and a column of plain integers ("7", "-12": not "007", "+7" or "1e5")
    stays int64, which writes back the same text. The other columns keep pandas' types and NA
    cells; a Parquet file keeps every column's own type.
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
    if encoding is not None:
        layout["encoding"] = encoding
    if len(sep) > 1 and sep != r"\s+":  # a regular expression (e.g. MovieLens-1M's "::")
        layout["engine"] = "python"  # pandas' C parser takes single characters only
    try:
        with warnings.catch_warnings():
            # Rows longer than the header would silently become an index or lose data.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(p, **layout)
            text = [c for c in text_columns if c in frame.columns]  # missing: named by the caller
            ids = [c for c in id_columns if c in frame.columns and c not in text]
            if text or ids:  # read again as written, in place of pandas' guesses
                # Python strings (dtype object): pandas' str dtype would copy them once more.
                raw = pd.read_csv(p, **layout, usecols=[*text, *ids], dtype=object, na_filter=False)
                frame[text] = raw[text]
                for c in ids:
                    if not _written_as_ints(frame[c], raw[c]):
                        frame[c] = raw[c].where(raw[c] != "", np.nan)
    except pd.errors.ParserWarning:
        raise FormatError(_too_many_fields(path, layout, names, names_option)) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, EOFError) as exc:
        hint = ""
        if isinstance(exc, UnicodeDecodeError) and encoding_option is not None:
            hint = f"; name its encoding with {encoding_option}, e.g. latin-1"
        raise FormatError(f"{path} is not a readable CSV file ({exc}){hint}") from None
    except re.error as exc:  # a separator longer than one character is a regular expression
        raise ValueError(
            f"the separator {sep!r} of {path} is not a valid regular expression ({exc}); a "
            "separator longer than one character is one (escape it, e.g. '\\|\\|')"
        ) from None
    except OSError as exc:  # e.g. a .gz file that is not gzip
        raise FormatError(f"{path} could not be read ({exc})") from None
    if frame.columns.size == 0 or len(frame) == 0:
        raise FormatError(f"{path} has no data rows")
    return frame


def _too_many_fields(
    path: str, layout: dict[str, Any], names: list[str] | None, option: str
) -> str:
    """The message for rows longer than the header line, or than the ``names`` given for a
    file without one: a first row longer than the names means too few names, not bad rows."""
    if not names:
        return f"{path} is malformed: some rows have more fields than the header"
    try:
        fields = pd.read_csv(path, **{**layout, "header": None, "names": None}, nrows=1).shape[1]
    except (pd.errors.ParserError, ValueError, OSError):
        fields = 0
    if fields > len(names):
        return (
            f"{path} has {fields} fields per row, but {option} names {len(names)} "
            "column(s): name every field"
        )
    return f"{path} is malformed: some rows have more fields than {option} names ({len(names)})"


def _written_as_ints(values: pd.Series, text: pd.Series) -> bool:
    """Whether pandas' int64 ``values`` write back as ``text``, the cells as written: each
    cell as long as its number's own spelling ("7" for 7, not "007", "+7" or " 7"), which a
    text that parses to that number is only when it is that spelling."""
    if values.dtype != np.int64:
        return False
    v = values.to_numpy()
    negative = v < 0
    magnitude = np.where(negative, -(v + 1), v).astype(np.uint64) + negative  # no overflow
    powers = np.array([10**p for p in range(1, 20)], dtype=np.uint64)
    # Digits: 1 + the powers of ten the magnitude reaches; a minus sign adds one.
    length = 1 + np.searchsorted(powers, magnitude, side="right") + negative
    written = np.fromiter(map(len, text.to_numpy(object)), np.int64, len(text))
    return bool((written == length).all())


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


def require_columns(
    frame: pd.DataFrame,
    columns: dict[str, str | None],
    path: str,
    names_option: str | None = None,
) -> None:
    """Each option -> column it names must exist in ``frame``. When none does and
    ``names_option`` is given (a CSV read with its first line as the header), the message
    points to that option: the "columns" are then likely the first data row's fields."""
    named = {option: col for option, col in columns.items() if col is not None}
    missing = [(option, col) for option, col in named.items() if col not in frame.columns]
    if not missing:
        return
    option, col = missing[0]
    shown = ", ".join(repr(str(c)) for c in frame.columns[:SHOWN_COLUMNS])
    if frame.columns.size > SHOWN_COLUMNS:
        shown += f", ... ({frame.columns.size} in all)"
    message = f"{path} has no column {col!r} (from {option}); its columns are {shown}"
    if names_option is not None and len(missing) == len(named):
        message += f"; if it has no header line, name its columns with {names_option}"
    raise ValueError(message)


def _names_hint(path: str, names: list[str] | None, option: str) -> str | None:
    """``option`` when ``path`` is a CSV read with a header line (else None: nothing to name)."""
    return option if names is None and not is_parquet(path) else None


def load_dataset(args: argparse.Namespace) -> Dataset:
    """The interactions (and item table) named by the shared data options.

    Sets ``args.listed_items``: the item ids that --items lists (None without --items), so
    that a warning about items without text can tell a missing row from an empty cell.
    """
    frame = read_table(
        args.interactions,
        "--interactions",
        args.sep,
        args.column_names,
        id_columns=[args.user_column, args.item_column],
    )
    require_columns(
        frame,
        {
            "--user-column": args.user_column,
            "--item-column": args.item_column,
            "--weight-column": args.weight_column,
            "--timestamp-column": args.timestamp_column,
        },
        args.interactions,
        _names_hint(args.interactions, args.column_names, "--column-names"),
    )
    items, text_name = None, None
    if args.items is not None:
        items, text_name = _item_table(args)
        frame[args.item_column], items[args.item_column] = _same_ids(
            frame[args.item_column], items[args.item_column], args
        )
    elif args.text_column is not None:
        raise ValueError("--text-column needs --items FILE (the table holding the item text)")
    if args.timestamp_column is not None:
        frame[args.timestamp_column] = _parse_times(frame[args.timestamp_column], args)
    args.listed_items = None if items is None else items[args.item_column].to_numpy()
    try:
        return Dataset.from_pandas(
            frame,
            args.user_column,
            args.item_column,
            args.weight_column,
            args.timestamp_column,
            items=items,
            item_text=text_name,
            duplicates=args.duplicates,
        )
    except (ValueError, TypeError) as exc:  # name the files: the message names columns only
        files = args.interactions + (f" with {args.items}" if args.items else "")
        # The library's advice names its keyword; here the choice is a flag.
        message = str(exc).replace("duplicates='sum'", "--duplicates sum")
        message = message.replace("duplicates='last'", "--duplicates last")
        raise type(exc)(f"{files}: {message}") from None


def _item_table(args: argparse.Namespace) -> tuple[pd.DataFrame, str | None]:
    """--items as the columns the dataset takes, and the name of the text column in it: the
    ids under the --item-column name and the --text-column (only that: another column called
    "text" is not item text)."""
    text = [args.text_column] if args.text_column is not None else []
    id_col = args.item_id_column or args.item_column
    id_flag = "--item-id-column" if args.item_id_column else "--item-column"
    items = read_table(
        args.items,
        "--items",
        args.items_sep,
        args.items_column_names,
        text_columns=text,
        id_columns=[id_col],
        names_option="--items-column-names",
        encoding=args.items_encoding,
        encoding_option="--items-encoding",
    )
    require_columns(
        items,
        {id_flag: id_col, "--text-column": args.text_column},
        args.items,
        _names_hint(args.items, args.items_column_names, "--items-column-names"),
    )
    if args.item_id_column is not None and args.text_column == id_col:
        raise ValueError("--text-column and --item-id-column name the same column")
    # A fresh table: the file's other columns (one may be named like --item-column, or "text")
    # must neither clash with the renamed id column nor pass for item text.
    table = pd.DataFrame({args.item_column: items[id_col].to_numpy()})
    if args.text_column is None:
        return table, None
    name = "text" if args.item_column != "text" else "item text"  # not the id column's name
    table[name] = items[args.text_column].to_numpy()
    return table, name


def _integral(ids: pd.Series) -> pd.Series | None:
    """Ids that are whole numbers as int64, or None: int columns, floats such as 1.0 (a CSV
    with a gap or a float export writes them), and text such as "1" or "1.0" when no two of
    its ids are one number ("007" and "7" stay apart)."""
    if pd.api.types.is_bool_dtype(ids):
        return None
    if pd.api.types.is_integer_dtype(ids):
        return ids.astype(np.int64)
    if pd.api.types.is_float_dtype(ids):
        values = ids.to_numpy(np.float64, na_value=np.nan)
        limit = float(2**63)  # int64 holds every whole float below 2**63 exactly
        if np.isfinite(values).all() and (values == np.round(values)).all():
            if (np.abs(values) < limit).all():
                return ids.astype(np.int64)
        return None
    if pd.api.types.infer_dtype(ids, skipna=False) != "string":  # e.g. NaN, mixed objects
        return None
    # A plain integer (no leading zeros, at most 18 digits: int64 holds them), maybe with ".0".
    if not ids.str.fullmatch(r"(?:0|-?[1-9][0-9]{0,17})(?:\.0*)?").all():
        return None
    numbers = ids.str.replace(r"\.0*$", "", regex=True).astype(np.int64)
    if pd.unique(numbers).size != pd.unique(ids).size:  # "1" and "1.0" in one file
        return None
    return numbers


def _same_ids(a: pd.Series, b: pd.Series, args: argparse.Namespace) -> tuple[pd.Series, pd.Series]:
    """The item ids of --interactions (``a``) and --items (``b``) in one type, so that equal
    ids compare equal. Two columns of one kind compare as they are (text as text: "007" is not
    "7"); across kinds, whole numbers as numbers (a float export's 1.0 is the id 1), other
    numbers as floats, anything else as text."""

    def kind(s: pd.Series) -> str:
        if pd.api.types.is_bool_dtype(s):
            return "bool"
        if pd.api.types.is_numeric_dtype(s):
            return "int" if pd.api.types.is_integer_dtype(s) else "float"
        return "text"

    if kind(a) != kind(b):
        whole_a, whole_b = _integral(a), _integral(b)
        numeric = {kind(a), kind(b)} == {"int", "float"}
        if whole_a is not None and whole_b is not None:
            a, b = whole_a, whole_b
        elif numeric:  # 1 and 1.5
            a, b = a.astype(np.float64), b.astype(np.float64)
        else:  # 1 vs "m1": compare as text
            a, b = a.astype(str), b.astype(str)
    elif kind(a) == "int" and a.dtype != b.dtype:  # int32 and int64
        a, b = a.astype(np.int64), b.astype(np.int64)
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
    # One consistent non-ISO format, which pandas infers from the first value (01/31/2020).
    fmt = guess_datetime_format(str(times.iloc[0]))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "could not infer format"
            return pd.to_datetime(times, utc=True)
    except (ValueError, TypeError, OverflowError):
        row = _first_unparsed(times, fmt)
        raise ValueError(
            f"--timestamp-column {args.timestamp_column!r} of {args.interactions} holds text "
            f"that is not a date or time, e.g. {str(times.iloc[row])!r} (data row {row + 1}); "
            "give ISO 8601 dates such as 2020-01-31 or 2020-01-31T08:00:00, or integer "
            "timestamps"
        ) from None


def _first_unparsed(times: pd.Series, fmt: str | None) -> int:
    """The position of the first value the failed parse could not read: with the format
    pandas inferred from the first value, or value by value when it inferred none."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        if fmt is not None:
            bad = pd.to_datetime(times, utc=True, format=fmt, errors="coerce").isna().to_numpy()
            return int(np.flatnonzero(bad)[0]) if bad.any() else 0
        for row, value in enumerate(times):
            try:
                pd.to_datetime(value, utc=True)
            except (ValueError, TypeError, OverflowError):
                return row
    return 0


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
    # The writer's own rule (links followed; a pipe, device or missing folder refused), now.
    files.writable_path(path, option)
    if is_parquet(path):
        _parquet_engine()
    return ending


def write_atomic(path: str, write: Callable[[str], None], option: str = "--out") -> None:
    """Call ``write(tmp)`` on a temporary file in the target's directory, then rename it over
    ``path``: a failure at any point leaves an existing ``path`` untouched and no debris. An
    existing file keeps its permission bits (a 0600 file stays private)."""
    target = Path(files.writable_path(path, option))
    # The temporary name keeps the real ending so that pandas infers the same compression.
    tmp = Path(files.temporary_beside(str(target)))
    try:
        write(str(tmp))
        files.replace(str(tmp), str(target))  # an existing file's permission bits kept
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
