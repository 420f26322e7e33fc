"""What the Dataset constructors take in, checked and converted: CSV files (errors that name
the file and the argument, never pandas' message alone), timestamp columns, item text values
and the item and user tables."""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from semrec.errors import FormatError

INT64_MAX = np.iinfo(np.int64).max
# How a file is written, not which rows or columns to read: what from_csv gives the item file.
FORMAT_OPTIONS = frozenset(
    "sep delimiter lineterminator quoting quotechar doublequote escapechar comment decimal "
    "thousands skipinitialspace dialect encoding encoding_errors engine".split()
)


def read_csv(path: Any, name: str = "path", **kwargs: Any) -> pd.DataFrame:
    """``pandas.read_csv(path, **kwargs)`` for the argument ``name``: a path or an open file.

    Examples
    --------
    >>> import io
    >>> from semrec.datasets._inputs import read_csv
    >>> read_csv(io.StringIO("user,item\\n1,2\\n")).shape
    (1, 2)
    >>> read_csv(3, "items")
    Traceback (most recent call last):
    ...
    TypeError: items must be a file path or an open file (or, for items, a DataFrame), got int
    """
    if not isinstance(path, str | PathLike) and not hasattr(path, "read"):
        raise TypeError(
            f"{name} must be a file path or an open file (or, for items, a DataFrame), "
            f"got {type(path).__name__}"
        )
    if isinstance(path, str | PathLike) and Path(path).is_dir():
        raise IsADirectoryError(f"{name} must be a CSV file, but {path} is a directory")
    try:
        return pd.read_csv(path, **kwargs)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such CSV file: {path}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise FormatError(f"{path} is not a readable CSV file: {exc}") from exc
    except (ValueError, TypeError) as exc:  # e.g. usecols the file lacks: pandas names no file
        error = TypeError if isinstance(exc, TypeError) else ValueError
        raise error(f"cannot read {name}={str(path)!r} with these read_csv options: {exc}") from exc


def checked_table(table: pd.DataFrame | None, n: int, name: str) -> pd.DataFrame:
    """``table`` (the argument ``name``) with one row per index, its index reset; an empty
    table of ``n`` rows for None."""
    if table is None:
        return pd.DataFrame(index=pd.RangeIndex(n))
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(table).__name__}")
    if len(table) != n:
        raise ValueError(f"{name} must have one row per index ({n}), got {len(table)} rows")
    return table.reset_index(drop=True)


def epoch_seconds(col: pd.Series, name: str) -> np.ndarray:
    """Epoch seconds, int64: datetimes converted (timezone-aware ones through UTC)."""
    if col.isna().any():  # NaT too: it would read as the oldest instant, -2**63
        raise ValueError(f"interactions[{name!r}] has missing timestamps")
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        col = col.dt.tz_convert("UTC").dt.tz_localize(None)
    if pd.api.types.is_datetime64_any_dtype(col):
        return (col.astype("datetime64[s]").astype("int64")).to_numpy()
    if not pd.api.types.is_integer_dtype(col):
        raise TypeError(
            f"interactions[{name!r}] must hold integer timestamps or datetimes, got {col.dtype}"
        )
    if pd.api.types.is_unsigned_integer_dtype(col) and (col > INT64_MAX).any():
        raise ValueError(
            f"interactions[{name!r}] holds timestamps beyond int64 (up to {col.max()}); "
            "give seconds since the epoch"
        )
    return col.to_numpy(np.int64)


def text_value(value: Any) -> str:
    """One item text: missing values (None, NaN) are "" (pandas keeps NaN through astype)."""
    if isinstance(value, str):
        return value
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return ""
    return str(value)
