"""Text embeddings of a Dask DataFrame's text column, partition by partition."""

from __future__ import annotations

import os
import re
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import dask.dataframe as dd
import numpy as np
import pandas as pd
from distributed import Client

from semrec import _validation as check
from semrec.distributed import _worker
from semrec.distributed._cluster import client_for, dask_frame, task_threads, worker_threads


def encode(
    frame: Any,
    text_column: str,
    model: str | os.PathLike[str] | None = None,
    *,
    keep: Sequence[str] = (),
    prefix: str = "e",
    precision: str = "auto",
    batch_size: int = 64,
    normalize: bool = True,
    client: Client | None = None,
    num_threads: int | None = None,
) -> dd.DataFrame:
    """Embed the texts of a Dask DataFrame with :class:`semrec.TextEncoder`, on the workers.

    Each worker process loads the encoder once and reuses it for every partition it encodes;
    each task runs with ``max(1, cores_on_host // dask_threads_on_host)`` threads (or
    ``num_threads``) so that Dask threads times encoder threads never exceed the cores.

    Parameters
    ----------
    frame : dask.dataframe.DataFrame
        Any partitioning; the output has the same partitions and index (an empty partition
        gives an empty one, with the same columns).
    text_column : str
        Column of strings.
    model : str or path-like, optional
        As for ``TextEncoder``: ``None`` for the bundled all-MiniLM-L6-v2, or a model directory
        readable by every worker.
    keep : sequence of str
        Columns of ``frame`` to carry into the output (an id column, say; ``text_column``
        too, if wanted). A name of the vector columns' form (``prefix`` + a number) is
        refused: it would be a second ``e0`` (or read as a dimension).
    prefix : str, default "e"
        Embedding columns are named ``{prefix}0 ... {prefix}{dim-1}``.
    precision, batch_size, normalize
        As for ``TextEncoder`` / ``TextEncoder.encode``.
    client : distributed.Client, optional
        Default: the current client.
    num_threads : int, optional
        Encoder threads per task (default: the worker's share of the cores).

    Returns
    -------
    dask.dataframe.DataFrame
        The ``keep`` columns, then one float32 column per dimension. Write it with
        ``to_parquet``; ``out[[f"e{j}" for j in range(dim)]].to_dask_array(lengths=True)`` is
        the ``(n, dim)`` float32 Dask array.

    Examples
    --------
    >>> import dask.dataframe as dd, pandas as pd                     # doctest: +SKIP
    >>> from semrec.distributed import encode                         # doctest: +SKIP
    >>> texts = pd.DataFrame({"id": [1, 2], "text": ["space opera", "romance"]})  # doctest: +SKIP
    >>> texts = dd.from_pandas(texts, npartitions=2)                  # doctest: +SKIP
    >>> out = encode(texts, "text", keep=["id"])                      # doctest: +SKIP
    >>> out.to_parquet("embeddings.parquet")                          # doctest: +SKIP
    """
    if not isinstance(keep, str | Iterable):
        raise TypeError(f"keep must be a column name or a list of them, got {keep!r}")
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a string (the vector columns' names), got {prefix!r}")
    if not isinstance(precision, str):
        raise TypeError(f"precision must be a string such as 'auto', got {precision!r}")
    keep = [keep] if isinstance(keep, str) else list(keep)
    frame = dask_frame(frame, "frame", [])
    _check_columns(frame, text_column, keep, prefix)
    check.positive_int(batch_size, "batch_size")
    client = client_for(client)
    table = worker_threads(client, num_threads)
    name = None if model is None else os.fspath(model)
    # The dimension, for the output's metadata, from one tiny task on a worker (the client need
    # not load the model at all).
    dim = client.submit(_dim, name, precision, table, pure=False).result()
    vectors = pd.DataFrame(
        np.empty((0, dim), dtype=np.float32), columns=[f"{prefix}{j}" for j in range(dim)]
    )
    meta = pd.concat([frame._meta[keep], vectors.set_axis(frame._meta.index[:0])], axis=1)
    return frame.map_partitions(
        _encode_partition,
        text_column,
        keep,
        prefix,
        dim,
        name,
        precision,
        batch_size,
        normalize,
        table,
        meta=meta,
        align_dataframes=False,
    )


def _check_columns(frame: dd.DataFrame, text_column: Any, keep: list[Any], prefix: str) -> None:
    """``text_column`` and ``keep`` name columns of ``frame``, and no kept column takes a
    vector column's name."""
    if text_column is None or not isinstance(text_column, Hashable):
        raise TypeError(f"text_column must name a column of strings, got {text_column!r}")
    for name in keep:
        if name is None or not isinstance(name, Hashable):
            raise TypeError(f"keep must list column names, got {name!r} in {keep!r}")
    twice = [name for j, name in enumerate(keep) if name in keep[:j]]
    if twice:
        raise ValueError(f"keep names column {twice[0]!r} twice; name each column once")
    # Any prefix + digits, whatever the dimension: a reader selects vectors by that pattern.
    vector = re.compile(re.escape(prefix) + r"[0-9]+")
    clash = [name for name in keep if isinstance(name, str) and vector.fullmatch(name)]
    if clash:
        raise ValueError(
            f"keep names column {clash[0]!r}, which has the form of the vector columns "
            f"({prefix}0, {prefix}1, ...); rename that column, or pass another prefix="
        )
    for name, what in ((text_column, "text_column"), *((k, "keep") for k in keep)):
        if name not in frame.columns:
            index = (
                " (it is the index; the output keeps the index)" if name == frame.index.name else ""
            )
            raise ValueError(
                f"frame has no column {name!r}{index} (columns: {list(frame.columns)}); check "
                f"{what}="
            )


def _dim(model: str | None, precision: str, table: dict[str, int]) -> int:
    with task_threads(table):
        return _worker.encoder(model, precision).dim


def _encode_partition(
    part: pd.DataFrame,
    text_column: str,
    keep: list[str],
    prefix: str,
    dim: int,
    model: str | None,
    precision: str,
    batch_size: int,
    normalize: bool,
    table: dict[str, int],
) -> pd.DataFrame:
    texts = part[text_column]
    if len(texts) == 0:  # e.g. a partition a filter emptied: no rows, the same columns
        vectors = np.empty((0, dim), dtype=np.float32)
    else:
        if not texts.map(lambda t: isinstance(t, str)).all():
            raise TypeError(f"column {text_column!r} must hold strings only")
        with task_threads(table) as threads:
            encoder = _worker.encoder(model, precision)
            vectors = encoder.encode(
                texts.tolist(), batch_size=batch_size, normalize=normalize, num_threads=threads
            )
    out = pd.DataFrame(vectors, index=part.index, columns=[f"{prefix}{j}" for j in range(dim)])
    return pd.concat([part[keep], out], axis=1) if keep else out
