"""Cluster plumbing shared by every distributed function: the client, threads, input checks."""

from __future__ import annotations

import logging
import os
import time
from collections import defaultdict
from collections.abc import Hashable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
from distributed import Client, Future, get_client, get_worker

from semrec._threads import thread_num_threads

# How long a job waits for workers when the cluster has none (starting, or restarting).
WORKER_WAIT_SECONDS = 30

logger = logging.getLogger("semrec")

START_METHOD_KEY = "distributed.worker.multiprocessing-method"


def client_for(client: Client | None) -> Client:
    """``client``, or the current one; a clear error when none is running."""
    if client is not None:
        if not isinstance(client, Client):
            raise TypeError(
                f"client must be a distributed.Client or None, got {type(client).__name__}"
            )
    else:
        try:
            client = get_client()
        except ValueError:
            raise RuntimeError(
                "semrec.distributed needs a running Dask client, and none was found; start one "
                "first, e.g. `from distributed import Client; client = Client()` (a local "
                "cluster) or `Client('tcp://scheduler:8786')`, or pass client="
            ) from None
    check_start_method()
    return client


def check_start_method() -> None:
    """GNU OpenMP is not fork-safe: refuse a configuration that forks worker processes."""
    method = dask.config.get(START_METHOD_KEY, "spawn")
    if method == "fork":
        raise RuntimeError(
            f"Dask is configured to start worker processes with 'fork' ({START_METHOD_KEY}); "
            "semrec's OpenMP kernels can deadlock in a forked process. Set it to 'spawn' (the "
            f"default) or 'forkserver' before creating the cluster: "
            f'dask.config.set({{"{START_METHOD_KEY}": "spawn"}})'
        )


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def worker_threads(client: Client, num_threads: int | None) -> dict[str, int]:
    """semrec threads per task on each worker: ``num_threads``, or with None or 0 (all of
    the task's cores, as elsewhere in semrec) ``cores_on_host // dask_threads_on_host``."""
    if num_threads is not None:
        if isinstance(num_threads, bool) or not isinstance(num_threads, int | np.integer):
            raise TypeError(f"num_threads must be an int or None, got {num_threads!r}")
        if num_threads < 0:
            raise ValueError(f"num_threads must be >= 0 (0: the task's share), got {num_threads}")
        num_threads = int(num_threads) or None
    workers = client.scheduler_info(n_workers=-1)["workers"]
    if not workers:  # none yet, or all restarting (a nanny brings a dead worker back)
        try:
            client.wait_for_workers(1, timeout=WORKER_WAIT_SECONDS)
        except TimeoutError:
            raise RuntimeError(
                f"the Dask cluster has no workers (none joined within {WORKER_WAIT_SECONDS} s); "
                "start some"
            ) from None
        workers = client.scheduler_info(n_workers=-1)["workers"]
    cores = client.run(_cores)
    per_host: dict[str, int] = defaultdict(int)
    for info in workers.values():
        per_host[info["host"]] += info["nthreads"]
    table = {}
    for address, info in workers.items():
        share = cores.get(address, 1) // max(1, per_host[info["host"]])
        table[address] = num_threads or max(1, share)
    logger.debug("semrec threads per task: %s", table)
    return table


@contextmanager
def task_threads(table: dict[str, int]) -> Iterator[int]:
    """In a task: semrec's (and LibTorch's) thread count from ``table``, for this thread and
    this block only.

    Not the process-wide setting: on an in-process (threaded) cluster the task runs in the
    client's process, whose own count must stay the user's, and two tasks run at once in two
    threads. A worker started after the table was made (a restart) takes the smallest share.
    """
    try:
        address = get_worker().address
    except ValueError:  # run outside a worker (e.g. dask's local scheduler)
        address = ""
    with thread_num_threads(table.get(address, min(table.values()))) as n:
        yield n


def dask_frame(frame: Any, name: str, columns: Iterable[str]) -> dd.DataFrame:
    """Check that ``frame`` is a Dask DataFrame holding ``columns``."""
    if isinstance(frame, pd.DataFrame):
        raise TypeError(
            f"{name} must be a partitioned Dask DataFrame, got a pandas DataFrame; convert it "
            f"with dask.dataframe.from_pandas({name}, npartitions=...) (or, from a CSR matrix, "
            "semrec.distributed.interactions_frame(matrix))"
        )
    if not isinstance(frame, dd.DataFrame):
        raise TypeError(f"{name} must be a Dask DataFrame, got {type(frame).__name__}")
    columns = list(columns)
    for column in columns:  # the keyword arguments that name them (user=, item=, ...)
        if column is None or column == "" or not isinstance(column, Hashable):
            raise TypeError(f"user=, item=, weight=, ... must each name a column, got {column!r}")
    if len(set(columns)) != len(columns):
        raise ValueError(
            f"{name}: one column is named for two roles ({columns}); give each role its own "
            "column (user=, item=, weight=, ...)"
        )
    missing = [c for c in columns if c not in frame.columns and c != frame.index.name]
    if missing:
        raise ValueError(
            f"{name} has no column {missing[0]!r} (columns: {list(frame.columns)}); name the "
            "right one with the matching keyword argument (user=, item=, weight=, ...)"
        )
    return frame


def broadcast(client: Client, value: Any, attempts: int = 5) -> Future:
    """Send ``value`` once to every worker; tasks take the future instead of a pickled copy.

    ``hash=False``: hashing a large matrix costs a pass over it and buys nothing here. A worker
    that dies while the copy is sent fails the whole scatter (the scheduler has not noticed
    yet): wait a moment for it to be removed, and send again. One removed while the scheduler
    replicates the copy fails it with a KeyError naming the worker's address: the same case.
    """
    from distributed.comm.core import CommClosedError

    for attempt in range(attempts):
        try:
            return client.scatter(value, broadcast=True, hash=False)
        except (CommClosedError, OSError, KeyError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")
