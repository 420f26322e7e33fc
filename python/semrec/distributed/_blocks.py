"""User-partitioned interactions: a Dask DataFrame of (user, item, weight) rows cut into
CSR blocks of consecutive rows, the unit every distributed function maps over."""

from __future__ import annotations

from typing import Any, NamedTuple

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
import scipy.sparse as sp
from dask.delayed import Delayed

from semrec import _validation as check

SHAPE = "shape"  # the attrs key of the matrix shape interactions_frame records


class Block(NamedTuple):
    """Rows ``[start, stop)`` of a users x items (or items x users) matrix."""

    start: int
    stop: int
    matrix: sp.csr_array  # (stop - start) x n_cols, canonical: sorted, int32 indices
    extra: np.ndarray | None  # one value per stored entry (timestamps), aligned with data


def interactions_frame(
    interactions: sp.csr_array | sp.csr_matrix,
    npartitions: int = 4,
    *,
    timestamps: np.ndarray | None = None,
) -> dd.DataFrame:
    """A CSR interaction matrix as a user-partitioned Dask DataFrame.

    Indexed by ``user`` with known divisions, so each partition holds a range of users and the
    distributed functions use the partitions without a shuffle. For data that does not fit in
    memory, read the same columns with ``dask.dataframe.read_parquet(..., index="user",
    calculate_divisions=True)`` from files written in user order, or pass any frame with
    ``user``, ``item``, ``weight`` columns (it is shuffled by user first).

    Parameters
    ----------
    interactions : scipy.sparse CSR, shape (n_users, n_items)
    npartitions : int, default 4
    timestamps : 1-D array, optional
        One per stored entry (aligned with ``interactions.data``): added as column ``t``.

    Returns
    -------
    dask.dataframe.DataFrame
        Index ``user`` (int32); columns ``item`` int32, ``weight`` float32 (and ``t``). The
        matrix shape rides along as ``attrs["shape"]`` of its (pandas) partitions, through
        selections and filters: the distributed functions use it, so users and items without
        interactions (the last ones, say) keep their rows as in the single-machine API.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from semrec.distributed import interactions_frame
    >>> frame = interactions_frame(sp.csr_array(np.eye(4, dtype=np.float32)), npartitions=2)
    >>> frame.index.name, list(frame.columns), frame.npartitions
    ('user', ['item', 'weight'], 2)
    """
    if not sp.issparse(interactions) or interactions.format != "csr":
        raise TypeError(
            f"interactions must be a scipy.sparse CSR matrix, got {type(interactions).__name__}"
        )
    npartitions = check.positive_int(npartitions, "npartitions")
    coo = interactions.tocoo()
    columns = {
        "user": coo.row.astype(np.int32),
        "item": coo.col.astype(np.int32),
        "weight": coo.data.astype(np.float32),
    }
    if timestamps is not None:
        times = np.asarray(timestamps).reshape(-1)
        if times.size != interactions.nnz:
            raise ValueError(
                f"timestamps must hold one value per stored entry ({interactions.nnz}), "
                f"got {times.size}"
            )
        columns["t"] = times
    table = pd.DataFrame(columns).set_index("user")
    # The shape cannot be read back from the entries (a last item without interactions leaves
    # no trace): pandas carries attrs to every partition and through Dask's operations.
    table.attrs[SHAPE] = (int(interactions.shape[0]), int(interactions.shape[1]))
    # Indexed by user with known divisions: every function uses the partitions as they are.
    return dd.from_pandas(table, npartitions=npartitions)


def partitioned_by(frame: dd.DataFrame, key: str) -> bool:
    """Is ``frame`` indexed by ``key`` with known divisions (each partition a range of ids)?"""
    return frame.index.name == key and frame.known_divisions


def checked_shape(shape: Any, name: str = "shape") -> tuple[int, int]:
    """``shape`` as a pair of positive ints, each within int32 (ids are int32 in models)."""
    if not (isinstance(shape, tuple | list) and len(shape) == 2):
        raise TypeError(f"{name} must be a pair (n_users, n_items), got {shape!r}")
    return id_count(shape[0], f"{name}[0]"), id_count(shape[1], f"{name}[1]")


def id_count(value: Any, name: str) -> int:
    count = check.positive_int(value, name)
    if count > check.INT32_MAX:
        raise IndexError(
            f"{name} is {count}, beyond the {check.INT32_MAX} users or items a model indexes "
            "(int32); renumber the ids densely from 0 first"
        )
    return count


def recorded_shape(frame: dd.DataFrame) -> tuple[int, int] | None:
    """The ``(n_users, n_items)`` :func:`interactions_frame` recorded on ``frame``, if any."""
    shape = frame._meta.attrs.get(SHAPE)
    return None if shape is None else checked_shape(shape, f"attrs[{SHAPE!r}]")


def ids(frame: dd.DataFrame, column: str, name: str) -> Any:
    """The ``column`` of ``frame`` (or its index of that name), checked to hold integers."""
    values = frame.index if frame.index.name == column else frame[column]
    if not pd.api.types.is_integer_dtype(values.dtype):
        raise TypeError(
            f"{name} column {column!r} must hold integer ids, got dtype {values.dtype}; cast "
            f"it to int64 first (a float id such as 1.5 names no row)"
        )
    return values


def largest_ids(client: Any, columns: list[Any]) -> list[int | None]:
    """The largest value of each Dask column (None when it is empty), in one pass."""
    tops = client.gather(client.compute([c.max() for c in columns]))
    return [None if pd.isna(top) else int(top) for top in tops]


def infer_shape(
    client: Any,
    frame: dd.DataFrame,
    user: str,
    item: str,
    shape: tuple[int, int] | None,
    name: str = "interactions",
) -> tuple[int, int, str]:
    """``(n_users, n_items, origin)``: ``shape`` checked, else the one
    :func:`interactions_frame` recorded, else (max user + 1, max item + 1) in one pass.
    ``origin`` says where the shape came from, for error messages."""
    users, items = ids(frame, user, name), ids(frame, item, name)
    if shape is not None:
        n_users, n_items = checked_shape(shape)
        return n_users, n_items, f"shape={(n_users, n_items)}"
    recorded = recorded_shape(frame)
    if recorded is not None:
        return *recorded, f"the shape {recorded} interactions_frame recorded"
    top_user, top_item = largest_ids(client, [users, items])
    if top_user is None or top_item is None:
        raise ValueError(f"{name} holds no interactions; there is nothing to learn from")
    for column, top in ((user, top_user), (item, top_item)):
        if top >= check.INT32_MAX:  # before any block is sized by it
            raise IndexError(
                f"{name} column {column!r} holds id {top}, beyond {check.INT32_MAX - 1}, the "
                "largest id a model indexes (int32); renumber the ids densely from 0 first"
            )
    return top_user + 1, top_item + 1, "the largest ids + 1 (pass shape= to set it)"


def row_blocks(
    frame: dd.DataFrame,
    key: str,
    other: str,
    weight: str,
    n_rows: int,
    n_cols: int,
    npartitions: int | None,
    *,
    extra: str | None = None,
    sum_duplicates: bool = True,
    origins: tuple[str, str] = ("", ""),
) -> list[tuple[int, int, Delayed]]:
    """``(start, stop, lazy Block)`` covering rows ``[0, n_rows)``, one per partition.

    A frame indexed by ``key`` with known divisions is used as it is (each partition is a
    range of ids; ``npartitions`` is ignored). Any other frame is shuffled by ``key`` into
    ``npartitions`` (default: its own count) ranges of consecutive ids (``set_index`` with
    given divisions): Dask moves the data; each block then becomes a CSR matrix on its worker.
    ``origins`` say where ``n_rows`` and ``n_cols`` came from (``"n_users=2"``), for the
    message when an id falls outside them.
    """
    values = [other, weight] + ([extra] if extra else [])
    weights = frame.index if frame.index.name == weight else frame[weight]
    if not (pd.api.types.is_numeric_dtype(weights.dtype) and weights.dtype.kind in "biuf"):
        raise TypeError(
            f"the weight column {weight!r} must hold real numbers, got dtype {weights.dtype}; "
            "convert it first (pandas.to_numeric)"
        )
    if npartitions is not None:
        check.positive_int(npartitions, "npartitions")
    if partitioned_by(frame, key):
        divisions = frame.divisions
        # The divisions bound the ids already: an id past n_rows is refused before any work.
        for bad in (divisions[0], divisions[-1]):
            if not 0 <= bad < n_rows:
                raise IndexError(outside(key, bad, n_rows, origins[0]))
        bounds = np.array([0, *divisions[1:-1], n_rows], dtype=np.int64)
        indexed = frame[values]
    else:
        npartitions = frame.npartitions if npartitions is None else npartitions
        if frame.index.name in (key, other, weight, extra):  # e.g. items of a user-indexed frame
            frame = frame.reset_index()
        # Divisions must increase strictly and the last one is inclusive: at most n_rows // 2
        # cuts.
        n_blocks = max(1, min(npartitions, n_rows // 2))
        bounds = np.linspace(0, n_rows, n_blocks + 1).astype(np.int64)
        divisions = [*bounds[:-1].tolist(), n_rows - 1]
        indexed = frame[[key, *values]].set_index(key, divisions=divisions)
    build = dask.delayed(_csr_block, pure=True)
    args = (key, other, weight, n_rows, n_cols, extra, sum_duplicates, origins)
    out = []
    for b, part in enumerate(indexed.to_delayed()):
        start, stop = int(bounds[b]), int(bounds[b + 1])
        out.append((start, stop, build(part, start, stop, *args)))
    return out


def held_ranges(frame: dd.DataFrame, key: str, bounds: list[tuple[int, int]]) -> list[range]:
    """The ids each of :func:`row_blocks`'s ``bounds`` of ``frame`` can hold: its partitions'
    divisions when ``frame`` is indexed by ``key`` (a frame cut to its first users keeps the
    block ``[0, n_rows)`` but holds far fewer), else the bounds themselves."""
    if not partitioned_by(frame, key) or frame.npartitions != len(bounds):
        return [range(start, stop) for start, stop in bounds]
    d = frame.divisions  # partition j: [d[j], d[j + 1]), the last one with d[-1] included
    last = len(bounds) - 1
    return [range(int(d[j]), int(d[j + 1]) + (j == last)) for j in range(len(bounds))]


def user_rows(
    frame: dd.DataFrame,
    key: str,
    other: str,
    bounds: list[tuple[int, int]],
    n_rows: int,
    n_cols: int,
    origins: tuple[str, str] = ("", ""),
    held: list[range] | None = None,
) -> list[Delayed]:
    """A lazy Block of each ``[start, stop)`` range of ``frame``'s rows (entries as ones);
    with ``held``, only the rows of those ids are read (the others stay empty).

    Unlike :func:`row_blocks`, the ranges are given (another frame's blocks), so ``frame`` is
    indexed by ``key`` once (a shuffle, unless it already is, with known divisions) and each
    range reads only the partitions that hold it.
    """
    if not partitioned_by(frame, key):
        if frame.index.name == key:
            frame = frame.reset_index()
        frame = frame.set_index(key)
    entries = frame[[other]].assign(_one=np.float32(1))
    meta = entries._meta
    build = dask.delayed(_csr_block, pure=True)
    joined = dask.delayed(_joined, pure=True)
    out = []
    for j, (start, stop) in enumerate(bounds):
        ids = range(start, stop) if held is None else held[j]
        part = joined(entries.loc[ids.start : ids.stop - 1].to_delayed(), meta)
        args = (key, other, "_one", n_rows, n_cols, None, True, origins)
        out.append(build(part, start, stop, *args))
    return out


def _joined(parts: list[pd.DataFrame], meta: pd.DataFrame) -> pd.DataFrame:
    return pd.concat(parts) if parts else meta


def outside(column: str, bad: Any, limit: int, origin: str) -> str:
    """The message for an id outside ``[0, limit)``."""
    where = f" set by {origin}" if origin else ""
    return f"column {column!r} holds id {bad}, outside [0, {limit}){where}"


def _ids_array(values: Any, column: str) -> np.ndarray:
    if values.hasnans:  # a nullable integer column with missing values
        raise ValueError(f"column {column!r} holds missing ids; drop those rows first")
    return values.to_numpy().astype(np.int64)


def _csr_block(
    part: pd.DataFrame,
    start: int,
    stop: int,
    key: str,
    other: str,
    weight: str,
    n_rows: int,
    n_cols: int,
    extra: str | None,
    sum_duplicates: bool,
    origins: tuple[str, str],
) -> Block:
    ids = _ids_array(part.index, key)
    cols = _ids_array(part[other], other)
    if ids.size and (ids.min() < 0 or ids.max() >= n_rows):
        bad = ids[(ids < 0) | (ids >= n_rows)][0]
        raise IndexError(outside(key, bad, n_rows, origins[0]))
    if cols.size and (cols.min() < 0 or cols.max() >= n_cols):
        bad = cols[(cols < 0) | (cols >= n_cols)][0]
        raise IndexError(outside(other, bad, n_cols, origins[1]))
    rows = ids - start
    if rows.size and (rows.min() < 0 or rows.max() >= stop - start):
        bad = rows[(rows < 0) | (rows >= stop - start)][0] + start
        raise IndexError(f"column {key!r} holds id {bad}, outside the block [{start}, {stop})")
    values = part[weight].to_numpy(dtype=np.float32)
    if values.size and not np.isfinite(values).all():
        raise ValueError(f"column {weight!r} holds NaN or inf")
    order = np.lexsort((cols, rows))  # by row, then column: the canonical CSR order
    rows, cols, values = rows[order], cols[order].astype(np.int32), values[order]
    indptr = np.zeros(stop - start + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=stop - start), out=indptr[1:])
    matrix = sp.csr_array((values, cols, indptr), shape=(stop - start, n_cols))
    times = None if extra is None else part[extra].to_numpy()[order]
    if sum_duplicates:  # as the single-machine checks do: duplicates add up, and an entry
        matrix.sum_duplicates()  # of weight 0 stays (seen; a threshold of 0 counts it)
    matrix.has_sorted_indices = True
    matrix.indptr = matrix.indptr.astype(np.int64, copy=False)
    matrix.indices = matrix.indices.astype(np.int32, copy=False)
    return Block(start, stop, matrix, times)
