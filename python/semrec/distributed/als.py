"""Block ALS on Dask: each half-step maps semrec's C++ row solver over blocks of rows."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np
import scipy.sparse as sp
from distributed import Client, Future, wait
from tqdm import tqdm

from semrec import _hyperparameters as hyperparameters
from semrec import _validation as check
from semrec._threads import resolve_num_threads
from semrec.als import ALS, Callback
from semrec.als_solve import ALSSolve, KernelRows
from semrec.distributed._blocks import Block, infer_shape, row_blocks
from semrec.distributed._cluster import (
    broadcast,
    client_for,
    dask_frame,
    task_threads,
    worker_threads,
)


def fit_als(
    interactions: Any,
    *,
    user: str = "user",
    item: str = "item",
    weight: str = "weight",
    shape: tuple[int, int] | None = None,
    npartitions: int | None = None,
    callback: Callback | None = None,
    client: Client | None = None,
    num_threads: int | None = None,
    **params: Any,
) -> ALS:
    """Fit :class:`semrec.ALS` on a cluster: the same factors as a single-machine fit.

    Each half-step computes the small ``dims x dims`` gram of the opposite factor matrix once
    on the client, broadcasts both to every worker (``client.scatter(..., broadcast=True)``) and
    maps the C++ row solver over blocks of users (then items). A row's solve depends only on its
    ratings, its previous value, the opposite factors and the gram, so the factors equal
    ``semrec.ALS(**params).fit(matrix)`` for the same data and ``random_state`` bit for bit
    (the initial factors come from ``ALS`` itself). Tasks are pure functions of their inputs:
    when a worker dies, Dask recomputes its blocks and the result does not change.

    Parameters
    ----------
    interactions : dask.dataframe.DataFrame
        One row per interaction with integer ``user`` and ``item`` indices and a ``weight``.
        Duplicate pairs add up and zero weights are dropped, as in ``ALS.fit``.
    user, item, weight : str
        Column names.
    shape : (n_users, n_items), optional
        Default: the shape :func:`interactions_frame` recorded on the frame, else the largest
        ids + 1 (one pass over the data). The inferred shape misses users or items past the
        last one with an interaction (their factors would be absent and the others' differ
        from a fit on the full matrix): pass ``shape`` for frames read from files.
    npartitions : int, optional
        Blocks when the input is shuffled (default: its partition count). A frame indexed by
        user with known divisions (as :func:`interactions_frame` makes) is used as it is.
        The item side is always shuffled by item, into as many blocks.
    callback : callable, optional
        ``callback(iteration, seconds, loss)`` after each iteration, as in ``ALS.fit``
        (``loss`` is None unless ``calculate_training_loss=True``: then the data term is
        summed over the user blocks on the workers, equal to ``ALS``'s loss to float rounding).
    client : distributed.Client, optional
        Default: the current client.
    num_threads : int, optional
        semrec threads per task; default (None or 0) ``max(1, cores_on_host //
        dask_threads_on_host)``.
        The returned model keeps ``num_threads=None`` (the package default on the client).
    **params
        ``semrec.ALS`` hyperparameters (``factors``, ``iterations``, ``regularization``,
        ``alpha``, ``solver``, ``feedback``, ``biases``, ``random_state``, ``show_progress``...).
        Implicit and explicit feedback, with or without biases, are all supported.

    Returns
    -------
    semrec.ALS
        Fitted, with ``interactions_`` gathered on the client (``recommend``, ``save`` work).


    Examples
    --------
    >>> from distributed import Client                                  # doctest: +SKIP
    >>> from semrec.datasets import synthetic                           # doctest: +SKIP
    >>> from semrec.distributed import fit_als, interactions_frame      # doctest: +SKIP
    >>> client = Client(n_workers=2, threads_per_worker=1)              # doctest: +SKIP
    >>> frame = interactions_frame(synthetic(1000, 2000, 100_000).interactions)  # doctest: +SKIP
    >>> model = fit_als(frame, factors=32, iterations=5, random_state=0)  # doctest: +SKIP
    >>> model.recommend(0, k=5)                                         # doctest: +SKIP
    """
    model = ALS(**params)
    solve = ALSSolve.for_model(model)  # checks the hyperparameters
    check.positive_int(model.iterations, "iterations")
    check.flag(model.calculate_training_loss, "calculate_training_loss")
    check.callback(callback)
    if npartitions is not None:
        check.positive_int(npartitions, "npartitions")
    frame = dask_frame(interactions, "interactions", (user, item, weight))
    client = client_for(client)
    table = worker_threads(client, num_threads)
    n_users, n_items, origin = infer_shape(client, frame, user, item, shape)
    parts = frame.npartitions if npartitions is None else npartitions

    by_user_raw = row_blocks(
        frame, user, item, weight, n_users, n_items, parts, origins=(origin, origin)
    )
    by_item_raw = row_blocks(
        frame, item, user, weight, n_items, n_users, parts, origins=(origin, origin)
    )
    raw = client.compute([b for *_, b in by_user_raw])
    sums = client.gather([client.submit(_sum_count, b, pure=False) for b in raw])
    total, count = (sum(x) for x in zip(*sums, strict=True))
    if count == 0:  # as ALS.fit: zero weights are dropped, and nothing is left
        raise ValueError(
            "interactions holds no interactions with a non-zero weight; there is nothing to "
            "learn from"
        )
    mean = float(total / count) if model.biases else 0.0
    by_user = [client.submit(_kernel_block, solve, b, mean, pure=False) for b in raw]
    by_item = client.compute([_delayed_kernel_block(solve, b, mean) for *_, b in by_item_raw])

    # Build every block before the first iteration, so that its time (and the callback's) is
    # the iteration's own; the item side's shuffle runs here.
    start = time.perf_counter()
    with client.as_current():  # wait() uses the current client, which may be another one
        wait(by_user + by_item)
    logger = logging.getLogger("semrec")
    logger.info("fit_als: %d user and %d item blocks ready in %.1fs", len(by_user),
                len(by_item), time.perf_counter() - start)  # fmt: skip
    threads = resolve_num_threads(None)
    rng = hyperparameters.generator(model.random_state)
    _, items = solve.initial_factors(rng, 0, n_items)
    users = np.empty((n_users, solve.dims), dtype=np.float32)
    users_warm: Future | None = None  # iteration 0: the task makes ALS's initial users
    items_sent = broadcast(client, items)  # natural layout = the user side's solving layout
    show = hyperparameters.progress(model.show_progress)
    bar = tqdm(total=model.iterations, desc="ALS (dask)", unit="it", disable=not show)
    try:
        for iteration in range(model.iterations):
            start = time.perf_counter()
            _, gram = solve.solving_side(items, threads, swap=False)
            users = _solve_all(client, solve, by_user, items_sent, gram, users_warm, False, table)
            solving, gram = solve.solving_side(users, threads, swap=True)
            users_sent = broadcast(client, solving)
            users_warm = users_sent if solving is users else broadcast(client, users)
            items = _solve_all(client, solve, by_item, users_sent, gram, items_sent, True, table)
            items_sent = broadcast(client, items)
            seconds = time.perf_counter() - start
            if not (np.isfinite(users).all() and np.isfinite(items).all()):
                raise ValueError(
                    f"ALS diverged at iteration {iteration}: the factors contain NaN or inf. "
                    "Increase regularization, or reduce alpha or the interaction weights."
                )
            loss = None
            if model.calculate_training_loss:
                loss = _training_loss(client, solve, by_user, users_warm, users, items, table)
                bar.set_postfix(loss=f"{loss:.5g}")
            bar.update(1)
            logging.getLogger("semrec").debug(
                "distributed ALS iteration %d: %.3fs, loss %s", iteration, seconds, loss
            )
            if callback is not None:
                callback(iteration, seconds, loss)
    finally:
        bar.close()
    train = sp.vstack([b.matrix for b in client.gather(raw)], format="csr")
    user_factors, user_biases = solve.split(users, users=True)
    item_factors, item_biases = solve.split(items, users=False)
    return ALS.from_factors(
        user_factors,
        item_factors,
        train,
        user_biases=user_biases,
        item_biases=item_biases,
        global_mean=mean,
        **params,
    )


def _solve_all(
    client: Client,
    solve: ALSSolve,
    blocks: list[Future],
    other: Future,
    gram: np.ndarray | None,
    warm: Future | None,
    swap: bool,
    table: dict[str, int],
) -> np.ndarray:
    """One half-step: every block solved against ``other``, gathered in row order."""
    gram_sent = None if gram is None else broadcast(client, gram)
    tasks = [
        client.submit(_solve_block, solve, b, other, gram_sent, warm, swap, table, pure=False)
        for b in blocks
    ]
    return np.concatenate(client.gather(tasks))


def _training_loss(
    client: Client,
    solve: ALSSolve,
    blocks: list[Future],
    users_sent: Future,
    users: np.ndarray,
    items: np.ndarray,
    table: dict[str, int],
) -> float:
    """``ALS``'s training objective: the data term summed over user blocks, plus the penalty."""
    items_sent = broadcast(client, items)
    tasks = [client.submit(_block_loss, solve, b, users_sent, items_sent, table) for b in blocks]
    data = math.fsum(client.gather(tasks))
    return float(data + solve.penalty(users, items))


def _block_loss(
    solve: ALSSolve,
    block: tuple[int, int, KernelRows],
    users: np.ndarray,
    items: np.ndarray,
    table: dict[str, int],
) -> float:
    start, stop, r = block
    with task_threads(table) as threads:
        return solve.data_loss(r, np.ascontiguousarray(users[start:stop]), items, threads)


def _sum_count(block: Block) -> tuple[float, int]:
    data = block.matrix.data
    data = data[data != 0]  # the mean of what ALS learns from: a stored 0 carries nothing
    return float(data.sum(dtype=np.float64)), int(data.size)


def _kernel_block(solve: ALSSolve, block: Block, mean: float) -> tuple[int, int, KernelRows]:
    """The block as the kernel takes it: values are ``c - 1`` or the centred rating."""
    m = block.matrix
    if solve.implicit and m.data.size and m.data.min() < 0:
        raise ValueError(
            f"interactions contains negative weights (min {m.data.min()}); implicit feedback "
            "needs weights >= 0 (counts, durations, ratings)"
        )
    return block.start, block.stop, solve.kernel_rows(m, mean)


def _delayed_kernel_block(solve: ALSSolve, block: Any, mean: float) -> Any:
    import dask

    return dask.delayed(_kernel_block, pure=True)(solve, block, mean)


def _solve_block(
    solve: ALSSolve,
    block: tuple[int, int, KernelRows],
    other: np.ndarray,
    gram: np.ndarray | None,
    warm: np.ndarray | None,
    swap: bool,
    table: dict[str, int],
) -> np.ndarray:
    """New factors of the block's rows. Pure: reads its inputs, returns a new array."""
    start, stop, ratings = block
    if warm is None:
        target = solve.initial_users(stop - start)
    else:
        target = np.array(warm[start:stop], dtype=np.float32, order="C")  # a copy: never in place
    with task_threads(table) as threads:
        solve.solve_rows(ratings, other, gram, target, threads, swap=swap)
    return target
