"""Raw ids: arrays that keep each id's type, the sorted catalogue of a column, tables aligned
to it, lookups of raw ids into indices, and how an id is shown in a message."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any

import numpy as np
import pandas as pd


def id_array(ids: Iterable[Hashable] | None, n: int, name: str) -> np.ndarray:
    """The ``n`` raw ids of the indices ``0 .. n-1`` (``None``: the indices themselves)."""
    if ids is None:
        return np.arange(n)
    if isinstance(ids, str | bytes) or not isinstance(ids, Iterable):
        raise TypeError(
            f"{name} must be a sequence of {n} raw ids (one per index), got {type(ids).__name__}"
        )
    arr = raw_id_array(ids, name)
    if arr.shape != (n,):
        raise ValueError(f"{name} must hold {n} ids (one per index), got shape {arr.shape}")
    refuse_missing(arr, name)
    return arr


def refuse_missing(ids: np.ndarray, name: str) -> None:
    """A ValueError for a NaN or None id: NaN != NaN, so it could never be looked up or
    matched to an embedding row."""
    if ids.dtype.kind in "fcO" and (missing := np.flatnonzero(pd.isna(ids))).size:
        raise ValueError(
            f"{name} holds a missing id ({ids[missing[0]]!r}) at index {missing[0]}; every "
            "id must be a value: drop or fill the missing ones"
        )


def raw_id_array(ids: Iterable[Hashable], name: str) -> np.ndarray:
    """Raw ids as an array, keeping each id's type: ``np.asarray([1, "b"])`` would turn 1 into
    ``"1"`` (a different id), and ``np.asarray([b"a", "a"])`` would decode ``b"a"`` into
    ``"a"``, so ids that mix strings, bytes and other types go in an object array. Tuples are
    refused (lookups read a tuple as several ids)."""
    given = isinstance(ids, np.ndarray | pd.Index | pd.Series)
    values: Any = np.array(ids) if given else list(ids)  # a copy: never the caller's array
    if not given or values.dtype == object:
        bad = next((v for v in values if isinstance(v, tuple)), None)
        if bad is not None:
            raise TypeError(
                f"{name} holds a tuple id {bad!r}; an id must be a single value (int or "
                "string): join composite keys into one string"
            )
    if given:
        return values
    kinds = {str if isinstance(v, str) else bytes if isinstance(v, bytes) else None for v in values}
    if len(kinds) <= 1:  # all text, all bytes or no text at all: NumPy keeps them as they are
        return np.asarray(values)
    arr = np.empty(len(values), dtype=object)
    for j, v in enumerate(values):  # element by element: no coercion to strings
        arr[j] = v
    return arr


def require_columns(frame: pd.DataFrame, cols: list[str | None], name: str) -> None:
    """A ValueError naming a column of ``cols`` that ``name`` lacks or repeats (None: skipped)."""
    missing = [c for c in cols if c is not None and c not in frame.columns]
    if missing:
        raise ValueError(
            f"{name} has no column {missing[0]!r}; its columns are {list(frame.columns)}"
        )
    repeated = [c for c in cols if c is not None and (frame.columns == c).sum() > 1]
    if repeated:
        raise ValueError(
            f"{name} has more than one column named {repeated[0]!r}; rename or drop the copies"
        )


def align(table: pd.DataFrame | None, col: str, ids: np.ndarray, name: str) -> pd.DataFrame:
    """Rows of table (the argument ``name``) reordered to follow ids (missing ids give empty
    rows)."""
    if table is None:
        return pd.DataFrame(index=pd.RangeIndex(len(ids)))
    if table[col].duplicated().any():
        dup = table[col][table[col].duplicated()].iloc[0]
        raise ValueError(
            f"the {col!r} column of the {name} table lists {shown(dup)} more than once; give "
            f"one row per id (e.g. {name}.drop_duplicates({col!r}))"
        )
    out = table.set_index(col).reindex(pd.Index(ids, name=col)).reset_index()
    return out


def catalogue(
    interactions: pd.DataFrame, extra: pd.DataFrame | None, col: str, name: str
) -> np.ndarray:
    """The sorted distinct ids of ``col`` in the interactions and in ``extra`` (``name``, the
    optional table of users or items, which may list some that have no interaction)."""
    ids = interactions[col]
    if extra is not None:
        if not isinstance(extra, pd.DataFrame):
            raise TypeError(
                f"{name} must be a pandas DataFrame with a {col!r} column, "
                f"got {type(extra).__name__}"
            )
        require_columns(extra, [col], name)
        if extra[col].isna().any():
            raise ValueError(f"{name}[{col!r}] contains missing ids")
        ids = pd.concat([ids, extra[col]], ignore_index=True)
    where = f"interactions[{col!r}]" + ("" if extra is None else f" (with {name}[{col!r}])")
    try:
        distinct = pd.unique(ids)
    except TypeError:  # lists, dicts, sets...
        bad = next((v for v in ids if not _hashable(v)), None)
        raise TypeError(
            f"{where} holds ids of type {type(bad).__name__} (e.g. {bad!r}), which cannot be "
            "ids; an id must be a single int or string per row: explode or join the lists"
        ) from None
    if distinct.dtype == object:
        bad = next((v for v in distinct if isinstance(v, tuple)), None)
        if bad is not None:
            raise TypeError(
                f"{where} holds tuple ids (e.g. {bad!r}); an id must be a single int or string "
                "per row: join composite keys into one string"
            )
    try:
        return np.sort(distinct)
    except TypeError:  # e.g. ints and strings, which do not order
        kinds = sorted({type(v).__name__ for v in distinct})
        raise TypeError(
            f"{where} mixes id types ({', '.join(kinds)}), which cannot be ordered; use one "
            "type, e.g. convert the column with .astype(str)"
        ) from None


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def lookup(index: pd.Index, raw_ids: Any, what: str) -> Any:
    """The int32 indices of ``raw_ids`` (one id, or any shape of them) in ``index``."""
    if isinstance(raw_ids, set | frozenset | dict):
        raise TypeError(
            f"raw ids must be one {what} id or a list or array of them, got a "
            f"{type(raw_ids).__name__} (which has no order); pass a list"
        )
    try:
        shape = np.shape(raw_ids)
    except ValueError:  # NumPy's "inhomogeneous shape" names no argument
        shape = None
    scalar = shape == ()
    if scalar:
        values = [raw_ids]
    elif isinstance(raw_ids, np.ndarray):
        values = list(np.asarray(raw_ids).ravel())  # np.matrix ravels to one row, not ids
    elif shape is not None:  # dtype=object keeps each id's type: [1, "2"] must not be strings
        values = list(np.asarray(raw_ids, dtype=object).ravel())
    try:
        if shape is None or len(values) != np.prod(shape):  # ragged; a sparse matrix
            raise TypeError
        pos = index.get_indexer(values)
    except TypeError:  # also ids that cannot be hashed (lists)
        raise TypeError(
            f"raw ids must be one {what} id or a list or array of them, got "
            f"{type(raw_ids).__name__} {shown(raw_ids)[:80]}"
        ) from None
    if (pos < 0).any():
        missing = ", ".join(shown(values[j]) for j in np.flatnonzero(pos < 0)[:3])
        raise KeyError(
            f"unknown {what} id(s) [{missing}] ({int((pos < 0).sum())} missing); "
            f"the dataset knows {len(index)} {what}s, see dataset.{what}_ids"
        )
    pos = pos.astype(np.int32)
    return pos[0] if scalar else pos.reshape(shape)


def shown(value: Any) -> str:
    """An id as Python shows it: ``10`` or ``'a'``, not ``np.int64(10)``."""
    return repr(value.item() if isinstance(value, np.generic) else value)
