"""User-interest profiles over user-partitioned interactions."""

from __future__ import annotations

from typing import Any

import dask
import dask.array as da
import numpy as np
from distributed import Client

from semrec import _validation as check
from semrec.distributed._blocks import (
    Block,
    id_count,
    ids,
    largest_ids,
    outside,
    recorded_shape,
    row_blocks,
)
from semrec.distributed._cluster import (
    broadcast,
    client_for,
    dask_frame,
    task_threads,
    worker_threads,
)
from semrec.interest import user_profiles


def interest_profiles(
    interactions: Any,
    item_embeddings: np.ndarray,
    *,
    user: str = "user",
    item: str = "item",
    weight: str = "weight",
    timestamp: str | None = None,
    half_life: float | None = None,
    n_users: int | None = None,
    npartitions: int | None = None,
    client: Client | None = None,
    num_threads: int | None = None,
) -> da.Array:
    """:func:`semrec.user_profiles` of every user, computed per block of users on the workers.

    The item matrix is sent to every worker once (``client.scatter(..., broadcast=True)``) and
    each task receives it by reference, never pickled into the task.

    Parameters
    ----------
    interactions : dask.dataframe.DataFrame
        One row per event: ``user`` and ``item`` indices, a ``weight`` (and a ``timestamp``).
    item_embeddings : ndarray of float32, shape (n_items, dim)
    user, item, weight, timestamp : str
        Column names; ``timestamp`` is needed for ``half_life``.
    half_life : float, optional
        As for ``user_profiles``.
    n_users : int, optional
        Default: the shape :func:`interactions_frame` recorded on the frame, else the largest
        user id + 1 (users past the last one with an interaction then get no row). A user id
        ``>= n_users`` is an ``IndexError``.
    npartitions, client, num_threads
        As for :func:`semrec.distributed.evaluate`.

    Returns
    -------
    dask.array.Array of float32, shape (n_users, dim)
        Chunked by user block; equal to ``semrec.user_profiles`` on the whole matrix.

    Examples
    --------
    >>> from semrec.distributed import interest_profiles, interactions_frame  # doctest: +SKIP
    >>> profiles = interest_profiles(interactions_frame(matrix), embeddings)  # doctest: +SKIP
    >>> profiles.compute().shape                                             # doctest: +SKIP
    (1000, 384)
    """
    columns = (user, item, weight) + ((timestamp,) if timestamp is not None else ())
    frame = dask_frame(interactions, "interactions", columns)
    emb, _ = check.as_float32_matrix(item_embeddings, "item_embeddings")
    if half_life is not None and timestamp is None:
        raise ValueError("half_life needs timestamp= (the column holding each event's time)")
    client = client_for(client)
    table = worker_threads(client, num_threads)
    users = ids(frame, user, "interactions")
    items = ids(frame, item, "interactions")
    n_items, items_origin = emb.shape[0], f"item_embeddings ({emb.shape[0]} rows)"
    recorded = recorded_shape(frame)
    if n_users is not None:
        rows, origin = id_count(n_users, "n_users"), f"n_users={n_users}"
    elif recorded is not None:
        rows, origin = recorded[0], f"the shape {recorded} interactions_frame recorded"
    else:
        top_user, top_item = largest_ids(client, [users, items])
        if top_user is None:
            raise ValueError("interactions holds no interactions; pass n_users= for zero profiles")
        if top_item >= n_items:  # named here, before any block is built
            raise IndexError(outside(item, top_item, n_items, items_origin))
        rows = id_count(top_user + 1, f"the largest {user!r} id + 1")
        origin = "the largest user id + 1 (pass n_users= to set it)"
    if recorded is not None and recorded[1] != n_items:  # as user_profiles: one row per item
        raise ValueError(
            f"interactions has {recorded[1]} items (the shape interactions_frame recorded), "
            f"but item_embeddings has {n_items} rows; give one embedding per item"
        )
    blocks = row_blocks(
        frame, user, item, weight, rows, n_items, npartitions, extra=timestamp,
        sum_duplicates=False, origins=(origin, items_origin),
    )  # fmt: skip
    sent = broadcast(client, emb)
    task = dask.delayed(_profiles_block, pure=True)
    chunks = [
        da.from_delayed(
            task(b, sent, half_life, table), shape=(stop - start, emb.shape[1]), dtype=np.float32
        )
        for start, stop, b in blocks
    ]
    return da.concatenate(chunks, axis=0)


def _profiles_block(
    block: Block, item_embeddings: np.ndarray, half_life: float | None, table: dict[str, int]
) -> np.ndarray:
    with task_threads(table) as threads:
        return user_profiles(
            block.matrix,
            item_embeddings,
            timestamps=block.extra,
            half_life=half_life,
            num_threads=threads,
        )
