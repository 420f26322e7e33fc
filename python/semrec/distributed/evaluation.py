"""Evaluation as a map over user blocks of the test interactions and a sum-reduce."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd
from distributed import Client

from semrec import _candidates as lists
from semrec import _validation as check
from semrec import metrics as M
from semrec.distributed._blocks import (
    Block,
    checked_shape,
    held_ranges,
    ids,
    largest_ids,
    outside,
    partitioned_by,
    recorded_shape,
    row_blocks,
    user_rows,
)
from semrec.distributed._cluster import (
    broadcast,
    client_for,
    dask_frame,
    task_threads,
    worker_threads,
)
from semrec.evaluation import (
    check_distinct,
    check_model_users,
    check_test_unseen,
    metric_names,
    recommend_lists,
    relevant_entries,
)

PER_USER = ("novelty", "diversity")


def evaluate(
    model: Any,
    train: Any,
    test: Any,
    k: int | Iterable[int] = (10, 20),
    metrics: Iterable[str] | None = None,
    relevance_threshold: float | None = 4,
    *,
    items: np.ndarray | None = None,
    history: dd.DataFrame | None = None,
    item_embeddings: np.ndarray | None = None,
    user: str = "user",
    item: str = "item",
    weight: str = "weight",
    shape: tuple[int, int] | None = None,
    npartitions: int | None = None,
    batch_size: int = 8192,
    client: Client | None = None,
    num_threads: int | None = None,
) -> pd.DataFrame:
    """:func:`semrec.evaluate` over a cluster: per-user metrics summed per block of users.

    Each task takes one block of test users, recommends for the users with a relevant item
    (the model and item embeddings are broadcast once), and returns per-metric sums and counts;
    the client adds them up. The table equals ``semrec.evaluate`` on the same split (to float
    rounding of the sums). As there, a list never holds an item the user has in ``train`` (or
    in ``history``): should the model return one, it is dropped and the list refilled from the
    model's next items; and a list that repeats an item is refused.

    Parameters
    ----------
    model : fitted semrec model
        Fitted on ``train``.
    train, test : dask.dataframe.DataFrame
        Interactions (``user``, ``item``, ``weight`` columns). ``train`` gives each user's
        seen items (indexed by user once: a shuffle, unless it is already, as
        :func:`interactions_frame` makes it; a ``train`` of items alone, without a ``user``
        column, excludes nothing) and the item popularity for novelty: the distinct users of
        each item, so a click log's repeated rows count once (one more pass, skipped when
        novelty is not asked for; a ``train`` without a ``user`` column counts its rows).
    k, metrics, relevance_threshold, items, item_embeddings, batch_size
        As for ``semrec.evaluate`` (``rmse`` and ``mae`` need ``model.predict``; they are
        summed over every test entry of each block, squared and absolute errors).
    history : dask.dataframe.DataFrame, optional
        More items to keep out of each user's list (``user`` and ``item`` columns): on a
        new-user split, the revealed history, as ``test.split_info["history"]`` is for
        ``semrec.evaluate``.
    user, item, weight : str
        Column names.
    shape : (n_users, n_items), optional
        The split's shape, as ``train.interactions.shape`` for ``semrec.evaluate`` (novelty
        counts ``n_users``, coverage ``n_items``). Default: the shape
        :func:`interactions_frame` recorded on ``train`` and ``test``; else (frames read
        from files) ``n_users`` is the largest user id of ``train`` and ``test`` together + 1
        (not the model's ``n_users_``, which ``update`` and ``fold_in`` grow past the split)
        and ``n_items`` the model's ``n_items_``, or for a model without it (a reranker) the
        largest item id + 1: pass ``shape`` when the last users or items have no
        interactions. A model whose ``n_items_`` differs is refused, and one that knows
        fewer users than the evaluated ones needs, as by ``semrec.evaluate``.
    npartitions : int, optional
        Blocks when the input is shuffled (default: its partition count). A frame indexed by
        user with known divisions (as :func:`interactions_frame` makes) is used as it is.
    client, num_threads
        See :mod:`semrec.distributed`.

    Returns
    -------
    DataFrame
        Index ``k``, one column per metric; ``attrs["n_users"]`` users evaluated.

    Examples
    --------
    >>> from semrec.distributed import evaluate, interactions_frame  # doctest: +SKIP
    >>> evaluate(model, interactions_frame(train.interactions),
    ...          interactions_frame(test.interactions), k=10)       # doctest: +SKIP
    """
    train = dask_frame(train, "train", (item,))  # an item column or index
    test = dask_frame(test, "test", (user, item, weight))
    if isinstance(model, type) or not hasattr(model, "recommend"):
        raise TypeError(f"model must be a fitted model (one with recommend), got {model!r}")
    batch_size = check.positive_int(batch_size, "batch_size")
    if relevance_threshold is not None:
        relevance_threshold = check.number(relevance_threshold, "relevance_threshold")
    if items is not None:  # the ids are checked once the split's n_items is known
        items = lists.evaluated_items(items)
    cutoffs = M.cutoffs(k)
    wanted = metric_names(metrics, item_embeddings)
    if rating := [m for m in M.RATING_METRICS if m in wanted]:  # as semrec.evaluate refuses
        M.check_rating_model(model, " and ".join(rating))
    client = client_for(client)
    table = worker_threads(client, num_threads)
    n_users, n_items, origin = _split_shape(client, model, train, test, user, item, shape)
    # Before anything is broadcast: a k whose padded lists cannot fit is refused here (by
    # semrec.evaluate's rule, for every user of the split), not by an allocation on a worker.
    check.result_width(max(cutoffs), n_users, n_items)
    if items is not None:
        items, _ = check.index_array(items, "items", n_items, "item")
    if item_embeddings is not None:
        item_embeddings = np.asarray(item_embeddings)
        if item_embeddings.ndim != 2 or item_embeddings.shape[0] != n_items:
            raise ValueError(
                f"item_embeddings has shape {item_embeddings.shape}, but the split has {n_items} "
                f"items ({origin}); pass one row per item, in item id order"
            )
    popularity = np.zeros(n_items, dtype=np.int64)
    if "novelty" in wanted:  # one pass over train, only when needed
        popularity = _popularity(client, train, user, item, n_items, origin)
    blocks = row_blocks(
        test, user, item, weight, n_users, n_items, npartitions, origins=(origin, origin)
    )
    bounds = [(start, stop) for start, stop, _ in blocks]
    held = held_ranges(test, user, bounds)  # only the train rows of users test can hold
    seen = []  # per source, a lazy Block per test block
    for frame, name in ((train, "train"), (history, "history")):
        if frame is None or (name == "train" and not _has_column(frame, user)):
            continue
        frame = dask_frame(frame, name, (user, item))
        for column in (user, item):
            ids(frame, column, name)  # integer ids, else a clear TypeError now
        # Rows are read by the test blocks' user ranges: a user outside them would be dropped
        # silently (semrec.evaluate refuses such ids), so one pass checks their range first.
        column = ids(frame, user, name)
        low, high = client.gather(client.compute([column.min(), column.max()]))
        for bad in (low, high):
            if not pd.isna(bad) and not 0 <= bad < n_users:
                raise IndexError(f"{name} " + outside(user, int(bad), n_users, origin))
        origins = (origin, origin)
        seen.append(user_rows(frame, user, item, bounds, n_users, n_items, origins, held))
    model_sent = broadcast(client, model)
    popularity_sent = broadcast(client, popularity)
    emb_sent = None if item_embeddings is None else broadcast(client, item_embeddings)
    settings = (cutoffs, wanted, relevance_threshold, items, batch_size, n_users, n_items, origin)
    task = dask.delayed(_block_sums, pure=True)
    sent = (model_sent, emb_sent, popularity_sent, settings, table)
    tasks = [task(b, [rows[j] for rows in seen], *sent) for j, (*_, b) in enumerate(blocks)]
    parts = client.gather(client.compute(tasks))
    n = sum(p["n"] for p in parts)
    if n == 0:
        raise ValueError(
            "no user has a relevant test item"
            + ("" if relevance_threshold is None else f" (weight >= {relevance_threshold})")
            + "; check the split or lower relevance_threshold"
        )
    out = pd.DataFrame(index=pd.Index(cutoffs, name="k"))
    ranking = sum(p["ranking"] for p in parts)
    for j, name in enumerate(M.RANKING_METRICS):
        if name in wanted:
            out[name] = ranking[:, j] / n
    for name in ("coverage", "novelty", "diversity"):
        if name == "coverage" and name in wanted:
            seen = np.logical_or.reduce([p["coverage"] for p in parts])
            out[name] = seen.sum(axis=1) / n_items
        elif name in wanted:
            total = sum(p[name][0] for p in parts)
            count = sum(p[name][1] for p in parts)
            out[name] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    if {"rmse", "mae"} & wanted:
        squared, absolute, count = (sum(p["errors"][j] for p in parts) for j in range(3))
        if "rmse" in wanted:
            out["rmse"] = np.sqrt(squared / count) if count else np.nan
        if "mae" in wanted:
            out["mae"] = absolute / count if count else np.nan
    out.attrs["n_users"] = int(n)
    return out


def _popularity(
    client: Client, train: dd.DataFrame, user: str, item: str, n_items: int, origin: str
) -> np.ndarray:
    """The distinct ``train`` users of each item, as ``semrec.evaluate`` counts the split's
    stored entries (a repeated (user, item) row counts once); rows, without a user column."""
    items = ids(train, item, "train")
    if _has_column(train, user):
        ids(train, user, "train")
        frame = train.reset_index() if train.index.name in (user, item) else train
        pairs = frame[[user, item]]
        if partitioned_by(train, user):  # a user's rows share one partition: no shuffle
            pairs = pairs.map_partitions(pd.DataFrame.drop_duplicates, meta=pairs._meta)
        else:
            pairs = pairs.drop_duplicates()
        items = pairs[item]
    counts = client.compute(items.value_counts()).result()
    listed = counts.index.to_numpy()
    if listed.size and (listed.min() < 0 or listed.max() >= n_items):
        bad = listed[(listed < 0) | (listed >= n_items)][0]
        raise IndexError("train " + outside(item, bad, n_items, origin))
    popularity = np.zeros(n_items, dtype=np.int64)
    popularity[listed] = counts.to_numpy()
    return popularity


def _split_shape(
    client: Client,
    model: Any,
    train: dd.DataFrame,
    test: dd.DataFrame,
    user: str,
    item: str,
    shape: tuple[int, int] | None,
) -> tuple[int, int, str]:
    """``(n_users, n_items, origin)`` of the split: ``shape``, else the one recorded on the
    frames, else the largest user ids of train and test together + 1 and the model's
    ``n_items_`` (or the largest item ids + 1)."""
    users, items = [ids(test, user, "test")], [ids(test, item, "test"), ids(train, item, "train")]
    if user in train.columns or train.index.name == user:  # train needs only items
        users.append(ids(train, user, "train"))
    recorded = {s for s in (recorded_shape(train), recorded_shape(test)) if s is not None}
    if len(recorded) > 1:
        a, b = sorted(recorded)
        raise ValueError(
            f"train and test must share id maps (shapes {a} and {b} recorded by "
            "interactions_frame); split one matrix and build both frames from its parts"
        )
    fitted = getattr(model, "n_items_", None)
    if isinstance(fitted, bool) or not isinstance(fitted, int | np.integer):
        fitted = None  # a model without it (a reranker) is trusted, as by semrec.evaluate
    if shape is not None:
        n_users, n_items = checked_shape(shape)
        origin = f"shape={(n_users, n_items)}"
    elif recorded:
        ((n_users, n_items),) = recorded
        origin = f"the shape {(n_users, n_items)} interactions_frame recorded"
    else:  # as semrec.evaluate's split: both frames share one matrix's ids
        # Not the model's n_users_: update and fold_in append users the split does not have,
        # and novelty counts n_users.
        columns = users if fitted is not None else users + items
        tops = largest_ids(client, columns)
        if tops[0] is None:
            raise ValueError("test holds no interactions; check the split")
        for column, top in zip(columns, tops, strict=True):
            if top is not None and top >= check.INT32_MAX:  # before a block is sized by it
                raise IndexError(
                    f"column {column.name!r} holds id {top}, beyond {check.INT32_MAX - 1}, the "
                    "largest id a model indexes (int32); renumber the ids densely from 0 first"
                )
        n_users = max(t for t in tops[: len(users)] if t is not None) + 1
        if fitted is None:
            n_items = max(t for t in tops[len(users) :] if t is not None) + 1
            origin = "the largest ids of train and test + 1 (pass shape= to set it)"
        else:
            n_items = int(fitted)
            origin = (
                "the largest user ids of train and test + 1 and the model's n_items_ (pass "
                "shape= to set them)"
            )
    if fitted is not None and int(fitted) != n_items:
        raise ValueError(
            f"model was fitted on {int(fitted)} items but the split has {n_items} (from "
            f"{origin}); fit the model on the train interactions of this split"
        )
    return n_users, n_items, origin


def _has_column(frame: dd.DataFrame, name: str) -> bool:
    return name in frame.columns or frame.index.name == name


class _Shifted:
    """``model`` asked for the users of a block by their rows in it (``users + start``); an
    item outside the split is refused before the lists are filtered (a seen-item lookup would
    read it as another user's item)."""

    def __init__(self, model: Any, start: int, n_items: int, origin: str) -> None:
        self.model, self.start, self.n_items, self.origin = model, start, n_items, origin

    def recommend(self, users: np.ndarray, **kwargs: Any) -> Any:
        ids, scores = self.model.recommend(users + self.start, **kwargs)
        ids = np.asarray(ids)
        wrong = (ids < -1) | (ids >= self.n_items)  # -1 pads a short list
        if ids.ndim == 2 and wrong.any():  # another shape: recommend_lists says so
            row, col = np.argwhere(wrong)[0]
            raise IndexError(
                f"model.recommend listed item {ids[row, col]} for user "
                f"{users[row] + self.start}, outside the split's [0, {self.n_items}) set by "
                f"{self.origin}; pass shape= with the split's shape"
            )
        return ids, scores


def _block_sums(
    block: Block,
    seen: list[Block],
    model: Any,
    item_embeddings: np.ndarray | None,
    popularity: np.ndarray,
    settings: tuple[Any, ...],
    table: dict[str, int],
) -> dict[str, Any]:
    """Per-metric sums (and non-NaN counts) over one block's evaluated users (the task)."""
    # The model's recommend and predict take no num_threads=: they read this thread's count.
    with task_threads(table) as threads:
        return _sums(block, seen, model, item_embeddings, popularity, settings, threads)


def _sums(
    block: Block,
    seen: list[Block],
    model: Any,
    item_embeddings: np.ndarray | None,
    popularity: np.ndarray,
    settings: tuple[Any, ...],
    threads: int,
) -> dict[str, Any]:
    cutoffs, wanted, threshold, items, batch_size, n_users, n_items, origin = settings
    relevant = relevant_entries(block.matrix, threshold)
    rows = np.flatnonzero(np.diff(relevant.indptr) > 0)
    if rows.size:  # before any model call, as semrec.evaluate checks
        # semrec.evaluate's error, not the model's IndexError (only the blocks know which
        # users have a relevant item)
        check_model_users(model, int(rows[-1]) + block.start + 1)
    out: dict[str, Any] = {"n": rows.size, "ranking": np.zeros((len(cutoffs), 6))}
    out["coverage"] = np.zeros((len(cutoffs), n_items), dtype=bool)
    if {"rmse", "mae"} & wanted:  # every test entry, relevant or not
        m = block.matrix
        users = np.repeat(np.arange(block.start, block.stop, dtype=np.int32), np.diff(m.indptr))
        predicted = np.asarray(model.predict(users, m.indices.astype(np.int32)), np.float64)
        error = predicted - m.data.astype(np.float64)
        out["errors"] = (float(np.square(error).sum()), float(np.abs(error).sum()), error.size)
    for name in PER_USER:
        out[name] = (np.zeros(len(cutoffs)), np.zeros(len(cutoffs), dtype=np.int64))
    if rows.size == 0:
        return out
    users = (rows + block.start).astype(np.int32)
    known = sum(s.matrix for s in seen) if seen else None  # rows of this block's users
    if known is not None:  # a train of items alone says nothing of what the users have seen
        check_test_unseen(model, relevant[rows], users, known[rows])
    shifted = _Shifted(model, block.start, n_items, origin)
    recs = recommend_lists(shifted, rows.astype(np.int32), max(cutoffs), items, batch_size, known)
    check_distinct(recs, users)
    values = M.ranking_metrics(recs, relevant[rows], cutoffs, per_user=True, num_threads=threads)
    out["ranking"] = values.sum(axis=0)
    for c, cutoff in enumerate(cutoffs):
        listed = recs[:, :cutoff].ravel()
        out["coverage"][c, listed[listed >= 0]] = True
        for name in PER_USER:
            if name not in wanted:
                continue
            if name == "novelty":
                v = M.novelty(recs, popularity, n_users, cutoff, per_user=True)
            else:
                v = M.intra_list_diversity(recs, item_embeddings, cutoff, per_user=True)
            ok = ~np.isnan(v)
            out[name][0][c] = v[ok].sum()
            out[name][1][c] = ok.sum()
    return out
