"""Top-k recommendations for a Dask array of users, the model sent once to every worker."""

from __future__ import annotations

from typing import Any

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
from distributed import Client, Future

from semrec import _validation as check
from semrec.distributed._cluster import broadcast, client_for, task_threads, worker_threads


def recommend(
    model: Any,
    users: Any,
    k: int = 10,
    *,
    exclude_seen: bool = True,
    items: np.ndarray | None = None,
    client: Client | None = None,
    num_threads: int | None = None,
) -> tuple[da.Array, da.Array]:
    """``model.recommend`` for every user of a Dask array, one task per chunk of users.

    The model is sent to every worker once (``client.scatter(..., broadcast=True)``) and each
    task gets it by reference: its size does not grow the task graph. To reuse one copy across
    calls, scatter it yourself and pass the future as ``model``.

    Parameters
    ----------
    model : fitted semrec model, or a distributed.Future of one
        Anything with ``recommend(users, k, exclude_seen=..., items=...)``; it excludes the
        users' seen items from its own training interactions.
    users : dask.array.Array or dask.dataframe.Series of int
        User indices; chunks become tasks.
    k : int, default 10
    exclude_seen, items
        As for ``model.recommend``.
    client, num_threads
        See :mod:`semrec.distributed`.

    Returns
    -------
    ids : dask.array.Array of int32, shape (n_users, k)
    scores : dask.array.Array of float32, shape (n_users, k)
        Chunked like ``users``; compute both at once with ``dask.compute(ids, scores)``.

    Examples
    --------
    >>> import dask.array as da                                     # doctest: +SKIP
    >>> from semrec.distributed import recommend                    # doctest: +SKIP
    >>> ids, scores = recommend(model, da.arange(100_000, chunks=20_000), k=10)  # doctest: +SKIP
    >>> ids[:5].compute()                                           # doctest: +SKIP
    """
    if isinstance(users, dd.Series):
        users = users.to_dask_array(lengths=True)
    if not isinstance(users, da.Array):
        raise TypeError(
            f"users must be a Dask array (or Series) of user indices, got {type(users).__name__}"
            "; convert a NumPy array with dask.array.from_array(users, chunks=...)"
        )
    if users.ndim != 1 or not np.issubdtype(users.dtype, np.integer):
        raise ValueError(
            f"users must be 1-D integer user indices, got ndim {users.ndim}, dtype {users.dtype}"
        )
    if any(np.isnan(c) for c in users.chunks[0]):
        raise ValueError("users has unknown chunk sizes; call users.compute_chunk_sizes() first")
    k = check.positive_int(k, "k")
    if isinstance(model, type) or not (isinstance(model, Future) or hasattr(model, "recommend")):
        raise TypeError(f"model must be a fitted model (one with recommend), got {model!r}")
    client = client_for(client)
    table = worker_threads(client, num_threads)
    sent = model if isinstance(model, Future) else broadcast(client, model)
    task = dask.delayed(_recommend_chunk, pure=True, nout=2)
    id_chunks, score_chunks = [], []
    for chunk, size in zip(users.to_delayed().ravel(), users.chunks[0], strict=True):
        ids, scores = task(sent, chunk, k, exclude_seen, items, table)
        id_chunks.append(da.from_delayed(ids, shape=(size, k), dtype=np.int32))
        score_chunks.append(da.from_delayed(scores, shape=(size, k), dtype=np.float32))
    return da.concatenate(id_chunks), da.concatenate(score_chunks)


def _recommend_chunk(
    model: Any,
    users: np.ndarray,
    k: int,
    exclude_seen: bool,
    items: np.ndarray | None,
    table: dict[str, int],
) -> tuple[np.ndarray, np.ndarray]:
    kwargs = {} if items is None else {"items": items}
    # The model takes no num_threads=: it reads the count this thread is given.
    with task_threads(table):
        ids, scores = model.recommend(np.asarray(users), k=k, exclude_seen=exclude_seen, **kwargs)
    return np.asarray(ids, dtype=np.int32), np.asarray(scores, dtype=np.float32)
