"""`evaluate` a model on a split and `compare` several models in one table."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from semrec import _candidates as lists
from semrec import _validation as check
from semrec import metrics as M
from semrec._id_checks import check_same_id_maps
from semrec.baselines import MostPopular, Random
from semrec.datasets import Dataset
from semrec.datasets._embeddings import check_alignment
from semrec.split import check_history_folded_in

DEFAULT_METRICS = (*M.RANKING_METRICS, "coverage", "novelty")
ALL_METRICS = (*M.RANKING_METRICS, *M.LIST_METRICS, *M.RATING_METRICS)


def evaluate(
    model: Any,
    train: Dataset,
    test: Dataset,
    k: int | Iterable[int] = (10, 20),
    metrics: Iterable[str] | None = None,
    relevance_threshold: float | None = 4,
    users: Any = None,
    *,
    items: Any = None,
    item_embeddings: np.ndarray | None = None,
    per_user: bool = False,
    batch_size: int = 8192,
    num_threads: int | None = None,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Evaluate a fitted model's top-k recommendations against a test split.

    A test item is relevant when its weight is ``>= relevance_threshold`` (every test item
    when ``None``). Users with at least one relevant test item are evaluated (restricted to
    ``users`` when given); each gets ``model.recommend(users, k=max(k), exclude_seen=True,
    items=items)``, so the model must have been fitted on ``train`` (one whose ``n_items_``
    differs from the split's is refused). ``recommend`` must return a pair ``(ids, scores)``
    whose ids are integers in ``[0, n_items)`` or ``-1`` padding (else a TypeError or
    IndexError naming ``model.recommend``). The lists never hold an
    item the user has interacted with in ``train`` (or in the revealed history of a new-user
    split, ``test.split_info["history"]``), whatever its weight: should a model return one,
    it is removed and the list refilled from the model's next items. On a new-user split, a
    model that has none of an evaluated user's revealed history (``fold_in`` forgotten) gets
    a UserWarning naming the ``fold_in`` call (:func:`semrec.split.check_history_folded_in`;
    not MostPopular and Random, whose lists ignore it). When ``metrics`` holds
    only rmse and mae, no list is made: ``recommend`` is not needed, ``relevance_threshold``
    plays no part and the users evaluated are those with a test rating.

    Parameters
    ----------
    model : object with ``recommend`` (and ``predict(users, items)`` for rmse/mae; only
        ``predict`` when those are the only metrics)
    train, test : Dataset
        The output of a splitter (same id maps).
    k : int or sequence of int
        Cutoffs; one table row each.
    metrics : sequence of str, optional
        Any of ``precision, recall, ndcg, map, hit_rate, mrr, coverage, novelty, diversity,
        rmse, mae``. Default: the ranking metrics plus coverage and novelty (and diversity
        when ``item_embeddings`` is given).
    relevance_threshold : float or None
        Minimum test weight for relevance.
    users : int array, optional
        User indices to evaluate (every metric, rmse and mae included, covers only them).
    items : int array, optional
        Candidate items (e.g. ``test.split_info["cold_items"]`` for the cold-item split).
    item_embeddings : float32 array, optional
        Item vectors for intra-list diversity (one row per item; a list of lists is
        converted).
    per_user : bool
        Also return a per-user table (columns ``user``, ``k`` and the per-user metrics).
    batch_size : int
        Users per ``recommend`` call.
    num_threads : int, optional
        Threads for the metric kernels.

    Returns
    -------
    DataFrame
        Index ``k``, one column per metric; ``table.attrs["n_users"]`` is the number of users
        evaluated (for rmse and mae alone: the users with a test rating). With
        ``per_user=True``, a pair ``(table, per_user_table)``.

    Notes
    -----
    rmse and mae compare ``model.predict`` with every stored test rating, relevant or not
    (``relevance_threshold`` does not apply to them), of every user, or of the users in
    ``users`` when given. They do not depend on ``k`` (the same value in every row). They
    need a model that predicts ratings: one with ``feedback="implicit"`` (the default ALS)
    is refused with a ValueError (:func:`semrec.metrics.check_rating_model`).

    Examples
    --------
    >>> import semrec
    >>> from semrec.datasets import synthetic
    >>> from semrec.split import last_fraction
    >>> train, test = last_fraction(synthetic(200, 300, 4_000))
    >>> model = semrec.MostPopular().fit(train.interactions)
    >>> table = semrec.evaluate(model, train, test, k=(10, 20))
    >>> list(table.index)
    [10, 20]
    """
    check.dataset(train, "train")
    check.dataset(test, "test")
    batch_size = check.positive_int(batch_size, "batch_size")
    check_same_id_maps(train, test, ("train", "test"))
    cutoffs = M.cutoffs(k)
    wanted = metric_names(metrics, item_embeddings)
    ranked = bool(wanted - set(M.RATING_METRICS))  # rmse/mae alone need no top-k lists
    if isinstance(model, type) or (ranked and not hasattr(model, "recommend")):
        verb = "recommend" if ranked else "predict"
        raise TypeError(f"model must be a fitted model (one with {verb}), got {model!r}")
    if rating := [m for m in M.RATING_METRICS if m in wanted]:  # refused before any list
        M.check_rating_model(model, " and ".join(rating))
    _check_model_items(model, train.n_items)
    if relevance_threshold is not None:
        relevance_threshold = check.number(relevance_threshold, "relevance_threshold")
    if "diversity" in wanted:
        item_embeddings = _embeddings(item_embeddings, train)
    chosen = None
    if users is not None:
        chosen, _ = check.index_array(users, "users", test.n_users, "user")
        if chosen.size == 0:
            raise ValueError("users is empty; give the user indices to evaluate, or None (all)")
        chosen = np.unique(chosen)
    if items is not None:
        items, _ = check.index_array(lists.evaluated_items(items), "items", train.n_items, "item")
    table = pd.DataFrame(index=pd.Index(cutoffs, name="k"))
    per_user_cols: dict[str, np.ndarray] = {}
    if ranked:
        relevant = relevant_entries(test.interactions, relevance_threshold)
        eval_users = _users_with(relevant, chosen, relevance_threshold)
        check_model_users(model, int(eval_users.max()) + 1)
        width = check.result_width(max(cutoffs), eval_users.size, train.n_items)
        known = known_history(train, test)
        check_test_unseen(model, relevant[eval_users], eval_users, known[eval_users])
        if not isinstance(model, MostPopular | Random):  # lists that ignore the history
            check_history_folded_in(model, test, eval_users)
        recs = recommend_lists(model, eval_users, width, items, batch_size, known, train.n_items)
        check_distinct(recs, eval_users)
        per_user_cols = _list_columns(
            table, recs, relevant[eval_users], wanted, train, item_embeddings, num_threads
        )
    else:
        eval_users = _users_with(test.interactions, chosen, None, rated=True)
    if rating:
        predicted, actual = M.predicted_ratings(model, test.interactions, chosen)
        for name in rating:
            table[name] = (M.rmse if name == "rmse" else M.mae)(predicted, actual)
    table.attrs["n_users"] = len(eval_users)
    if not check.flag(per_user, "per_user"):
        return table
    detail = pd.DataFrame(
        {"user": np.tile(eval_users, len(cutoffs)), "k": np.repeat(cutoffs, len(eval_users))}
    )
    for name, col in per_user_cols.items():
        detail[name] = col
    return table, detail


def compare(
    models: Mapping[str, Any],
    train: Dataset,
    test: Dataset,
    *,
    baselines: bool = True,
    random_state: Any = 0,
    **evaluate_kwargs: Any,
) -> pd.DataFrame:
    """Evaluate several fitted models on one split; one table indexed by (model, k).

    With ``baselines=True`` the package's ``Random`` and ``MostPopular`` are added unless
    ``models`` already holds those names. They see the same history as the models: ``train``
    plus, on a new-user split, the revealed history (``test.split_info["history"]``), and they
    exclude it. Extra keyword arguments go to :func:`evaluate`, with its checks and warnings
    for each model.

    Parameters
    ----------
    models : dict of str to fitted model
        Name -> model, each fitted on ``train.interactions`` (and, on a new-user split, given
        the revealed history with ``fold_in``).
    train, test : Dataset
        The output of a splitter (same id maps).
    baselines : bool, default True
        Add ``Random`` and ``MostPopular`` (fitted here) unless ``models`` has those names.
    random_state : None, int or numpy.random.Generator, default 0
        Seed of the ``Random`` baseline.
    **evaluate_kwargs
        :func:`evaluate`'s arguments (``k``, ``metrics``, ``users``, ``per_user``, ...).

    Returns
    -------
    DataFrame
        Index ``(model, k)``, one column per metric. With ``per_user=True``, a pair
        ``(table, per_user_table)``, the second with a ``model`` column before evaluate's
        per-user columns (``user``, ``k``, the metrics).

    Examples
    --------
    >>> import semrec
    >>> data = semrec.datasets.synthetic(200, 300, 4_000)
    >>> train, test = semrec.split.last_fraction(data)
    >>> table = semrec.compare({}, train, test, k=10)
    >>> sorted(table.index.get_level_values("model").unique())
    ['MostPopular', 'Random']
    """
    if not isinstance(models, Mapping):
        raise TypeError(f"models must be a dict of name -> fitted model, got {type(models)}")
    per_user = check.flag(evaluate_kwargs.pop("per_user", False), "per_user")
    check.dataset(train, "train")
    check.dataset(test, "test")
    all_models = dict(models)
    if check.flag(baselines, "baselines"):
        history = known_history(train, test)
        all_models.setdefault("Random", Random(random_state=random_state).fit(history))
        all_models.setdefault("MostPopular", MostPopular().fit(history))
    if not all_models:
        raise ValueError("models is empty and baselines=False: nothing to compare")
    if not per_user:
        tables = {
            name: evaluate(m, train, test, **evaluate_kwargs) for name, m in all_models.items()
        }
        return pd.concat(tables, names=["model"])
    tables, details = {}, {}
    for name, m in all_models.items():
        tables[name], details[name] = evaluate(m, train, test, per_user=True, **evaluate_kwargs)
    detail = pd.concat(details, names=["model", None]).reset_index(level="model")
    return pd.concat(tables, names=["model"]), detail.reset_index(drop=True)


def metric_names(metrics: Iterable[str] | None, item_embeddings: Any) -> set[str]:
    """The metrics ``evaluate`` computes for its ``metrics`` argument (checked).

    Examples
    --------
    >>> from semrec.evaluation import metric_names
    >>> sorted(metric_names(["ndcg", "recall"], None))
    ['ndcg', 'recall']
    """
    if metrics is None:
        wanted = set(DEFAULT_METRICS)
        if item_embeddings is not None:
            wanted.add("diversity")
        return wanted
    names = [metrics] if isinstance(metrics, str) else metrics
    names = list(names) if isinstance(names, Iterable) else None  # a generator is read once
    if names is None or not all(isinstance(m, str) for m in names):
        raise TypeError(
            f"metrics must be a metric name or a list of them, e.g. ['ndcg', 'recall'], got "
            f"{metrics!r}"
        )
    if not names:
        raise ValueError(
            "metrics is empty; name at least one metric, e.g. ['ndcg'], or pass None for the "
            "default set"
        )
    wanted = set(names)
    unknown = wanted - set(ALL_METRICS)
    if unknown:
        raise ValueError(f"unknown metric(s) {sorted(unknown)}; choose from {list(ALL_METRICS)}")
    if "diversity" in wanted and item_embeddings is None:
        raise ValueError("metric 'diversity' needs item_embeddings= (one row per item)")
    return wanted


def known_history(train: Dataset, test: Dataset) -> sp.csr_array:
    """Everything the models may know of each user: ``train``'s interactions plus, on a
    new-user split, the revealed history (``test.split_info["history"]``).

    Examples
    --------
    >>> from semrec.datasets import synthetic
    >>> from semrec.split import new_users
    >>> from semrec.evaluation import known_history
    >>> train, test = new_users(synthetic(50, 100, 1000))
    >>> int(known_history(train, test).nnz) == train.n_interactions + int(
    ...     test.split_info["history"].n_interactions)
    True
    """
    check.dataset(train, "train")
    history = check.dataset(test, "test").split_info.get("history")
    if not isinstance(history, Dataset):
        return train.interactions
    return check.summed(train.interactions, history.interactions)


def recommend_lists(
    model: Any,
    users: np.ndarray,
    k: int,
    items: Any,
    batch_size: int,
    seen: sp.csr_array | None = None,
    n_items: int | None = None,
) -> np.ndarray:
    """Each user's top ``k`` from ``model.recommend`` (in batches of ``batch_size`` users);
    items in ``seen`` (users x items) are never kept: a list holding some is asked again,
    longer, and refilled. The ids ``recommend`` returns must be integers in ``[0, n_items)``
    (``n_items`` defaults to the columns of ``seen``) or ``-1`` padding.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, semrec
    >>> from semrec.evaluation import recommend_lists
    >>> model = semrec.MostPopular().fit(sp.csr_array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]]))
    >>> recommend_lists(model, np.array([1]), 2, None, 8192).tolist()
    [[1, 2]]
    """
    out = np.empty((len(users), k), dtype=np.int32)
    kwargs = {} if items is None else {"items": items}
    if n_items is None and seen is not None:
        n_items = seen.shape[1]
    for start in range(0, len(users), batch_size):
        batch = users[start : start + batch_size]
        ids = _ids(model, batch, k, kwargs, n_items)
        if seen is not None:
            bad = _seen_mask(ids, seen, batch)
            redo = np.flatnonzero(bad.any(axis=1))
            if redo.size:
                extra = int(np.diff(seen.indptr)[batch[redo]].max())
                longer = _ids(model, batch[redo], k + extra, kwargs, n_items)
                kept = np.where(_seen_mask(longer, seen, batch[redo]), -1, longer)
                for row, line in zip(redo.tolist(), kept, strict=True):
                    real = line[line >= 0][:k]
                    ids[row] = -1
                    ids[row, : real.size] = real
        out[start : start + len(batch)] = ids
    return out


def _check_model_items(model: Any, n_items: int) -> None:
    """A ValueError when ``model`` knows another number of items than the split (a model
    fitted on another matrix would rank ids the split does not have, or miss some)."""
    fitted = getattr(model, "n_items_", None)  # a model without it is trusted
    if fitted is None or isinstance(fitted, bool) or not isinstance(fitted, int | np.integer):
        return
    if int(fitted) != n_items:
        raise ValueError(
            f"model was fitted on {int(fitted)} items but the split has {n_items}; fit the "
            "model on train.interactions of this split (same Dataset, same id maps)"
        )


def check_test_unseen(
    model: Any, relevant: sp.csr_array, users: np.ndarray, known: sp.csr_array
) -> None:
    """A ValueError when ``model`` has seen relevant test items that ``known`` (train, and a
    new-user split's revealed history) does not hold: fitted on the whole data, or updated
    with test events, it would exclude them as seen and score a silent 0. ``relevant`` and
    ``known`` hold one row per user of ``users``.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, semrec
    >>> from semrec.evaluation import check_test_unseen
    >>> model = semrec.MostPopular().fit(sp.csr_array([[1.0, 1.0]]))  # fitted on item 1 too
    >>> check_test_unseen(model, sp.csr_array([[0, 1.0]]), np.array([0]), sp.csr_array((1, 2)))
    Traceback (most recent call last):
    ValueError: model has already seen 1 relevant test interaction(s) that train does not hold ...
    """
    seen = getattr(model, "interactions_", None)
    if not sp.issparse(seen) or seen.ndim != 2:
        return  # a model without seen items is trusted
    known_to_model = users < seen.shape[0]  # ``relevant`` has a row per user of ``users``
    inside, n_items = users[known_to_model], min(seen.shape[1], relevant.shape[1])
    # Structures only (a stored 0 is seen): 1 where relevant and seen, less what is known.
    both = _ones(relevant[known_to_model][:, :n_items]).multiply(_ones(seen[inside][:, :n_items]))
    leaked = sp.csr_array(both - both.multiply(_ones(known[known_to_model][:, :n_items])))
    if (count := int(leaked.sum())) > 0:
        raise ValueError(
            f"model has already seen {count} relevant test interaction(s) that train does not "
            "hold (it was fitted on data that includes the test set, or updated with test "
            "events), so it would exclude them as seen and score 0; fit it on train.interactions"
        )


def _ones(m: Any) -> sp.csr_array:
    """``m``'s structure with every stored entry 1 (a stored 0 included)."""
    out = sp.csr_array(m, copy=True)
    out.data = np.ones_like(out.data, dtype=np.float64)
    return out


def relevant_entries(m: sp.csr_array, threshold: float | None) -> sp.csr_array:
    """The stored entries of ``m`` with a weight ``>= threshold`` (all of them for ``None``),
    compared on the entries themselves: a stored 0 passes a threshold of 0.

    The threshold (any real number, Python or NumPy) is compared in the matrix's dtype: for
    floating weights it is first rounded to that dtype, so a float32 0.7 passes a threshold
    of 0.7 whether given as a Python or a NumPy float. Integer weights are compared with the
    threshold as a float (4 passes 3.5, not 4.5).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from semrec.evaluation import relevant_entries
    >>> m = sp.csr_array((np.array([0.0, 3.0, 5.0]), [0, 1, 2], [0, 2, 3]), shape=(2, 3))
    >>> relevant_entries(m, 4).nnz, relevant_entries(m, 0).nnz
    (1, 3)
    """
    if threshold is None:
        return m
    bound: Any = check.number(threshold, "threshold")  # a Python float, whatever was given
    if np.issubdtype(m.data.dtype, np.floating):
        # NumPy 2 promotes float32 data against a NumPy float64 to float64 (0.7f < 0.7) but
        # not against a Python float: round once to the data's dtype, so both agree.
        with np.errstate(over="ignore"):  # past the dtype's range: +-inf, compares right
            bound = m.data.dtype.type(bound)
    keep = m.data >= bound
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))[keep]
    return sp.csr_array((m.data[keep], (rows, m.indices[keep])), shape=m.shape)


def _users_with(
    entries: sp.csr_array, chosen: np.ndarray | None, threshold: float | None, rated: bool = False
) -> np.ndarray:
    """The users (int32, sorted) with a stored entry in ``entries`` (the relevant test items,
    or every test rating when ``rated``), among ``chosen`` when given; a ValueError if none."""
    has = np.diff(entries.indptr) > 0
    if chosen is not None:
        mask = np.zeros(entries.shape[0], dtype=bool)
        mask[chosen] = True
        has &= mask
    found = np.flatnonzero(has).astype(np.int32)
    if found.size:
        return found
    if rated:
        what, lower = "test rating (rmse and mae compare model.predict with them)", ""
    else:
        weight = "" if threshold is None else f" (weight >= {threshold})"
        what, lower = f"relevant test item{weight}", "lower relevance_threshold"
    if chosen is None:
        raise ValueError(f"no user has a {what}; check the split{' or ' if lower else ''}{lower}")
    raise ValueError(
        f"none of the {chosen.size} user(s) given in users= has a {what}; choose other "
        f"users{', or ' if lower else ''}{lower}"
    )


def _list_columns(
    table: pd.DataFrame,
    recs: np.ndarray,
    rel: sp.csr_array,
    wanted: set[str],
    train: Dataset,
    item_embeddings: np.ndarray | None,
    num_threads: int | None,
) -> dict[str, np.ndarray]:
    """Add the ranking and list metrics in ``wanted`` of the lists ``recs`` to ``table``
    (one row per cutoff); return their per-user columns (cutoff-major)."""
    cutoffs = tuple(int(c) for c in table.index)
    per_user_cols: dict[str, np.ndarray] = {}
    if any(m in wanted for m in M.RANKING_METRICS):
        values = M.ranking_metrics(recs, rel, cutoffs, per_user=True, num_threads=num_threads)
        for j, name in enumerate(M.RANKING_METRICS):
            if name in wanted:
                table[name] = values[:, :, j].mean(axis=0)
                per_user_cols[name] = values[:, :, j].T.ravel()
    popularity = np.bincount(train.interactions.indices, minlength=train.n_items)
    for name in ("coverage", "novelty", "diversity"):
        if name not in wanted:
            continue
        column, per = [], []
        for c in cutoffs:
            if name == "coverage":
                column.append(M.catalog_coverage(recs, train.n_items, c))
                continue
            if name == "novelty":
                v = M.novelty(recs, popularity, train.n_users, c, per_user=True)
            else:
                v = M.intra_list_diversity(recs, item_embeddings, c, per_user=True)
            ok = ~np.isnan(v)
            column.append(float(v[ok].mean()) if ok.any() else float("nan"))
            per.append(v)
        table[name] = column
        if per:
            per_user_cols[name] = np.concatenate(per)
    return per_user_cols


def check_model_users(model: Any, needed: int) -> None:
    """A ValueError when ``model`` knows fewer users than the evaluated ones need (user
    indices up to ``needed - 1``); a model without ``n_users_`` is trusted.

    Examples
    --------
    >>> import scipy.sparse as sp, semrec
    >>> from semrec.evaluation import check_model_users
    >>> check_model_users(semrec.MostPopular().fit(sp.csr_array([[1.0]])), 1)
    """
    fitted = getattr(model, "n_users_", None)  # a model without it is trusted
    if fitted is None or isinstance(fitted, bool) or not isinstance(fitted, int | np.integer):
        return
    if int(fitted) < needed:
        raise ValueError(
            f"model knows {int(fitted)} users but the split evaluates users up to index "
            f"{needed - 1}; fit the model on train.interactions of this split (and fold_in "
            "the revealed history of a new-user split)"
        )


def _embeddings(item_embeddings: Any, train: Dataset) -> np.ndarray:
    """``item_embeddings`` for the diversity metric: float32, one row per item of ``train``."""
    check_alignment(item_embeddings, train)
    emb, _ = check.as_float32_matrix(item_embeddings, "item_embeddings")
    if emb.shape[0] != train.n_items:
        raise ValueError(
            f"item_embeddings has shape {emb.shape}, but train has {train.n_items} items; pass "
            "one row per item, in the dataset's item order"
        )
    return emb


def check_distinct(recs: np.ndarray, users: np.ndarray) -> None:
    """A ValueError naming the first user whose list from ``model.recommend`` repeats an item.

    Examples
    --------
    >>> import numpy as np
    >>> from semrec.evaluation import check_distinct
    >>> check_distinct(np.array([[3, 1, -1, -1]]), np.array([7]))  # padding may repeat
    >>> check_distinct(np.array([[3, 1, 3, -1]]), np.array([7]))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: model.recommend listed item 3 more than once for user 7 ...
    """
    repeat = lists.first_repeat(recs)
    if repeat is not None:
        row, item, rows = repeat
        raise ValueError(
            f"model.recommend listed item {item} more than once for user {int(users[row])} "
            f"({rows} user(s) affected); a ranked list must hold distinct items"
        )


def _ids(
    model: Any, users: np.ndarray, k: int, kwargs: dict[str, Any], n_items: int | None
) -> np.ndarray:
    """The ids of ``model.recommend``, checked before the int32 cast (which would truncate
    float ids and wrap int64 ones onto real items, silently)."""
    out = model.recommend(users, k=k, exclude_seen=True, **kwargs)
    if not isinstance(out, tuple | list) or len(out) != 2:
        got = type(out).__name__
        if isinstance(out, tuple | list):
            got = f"a {got} of length {len(out)}"
        raise TypeError(f"model.recommend must return a pair (ids, scores), got {got}")
    try:
        ids = np.asarray(out[0])
    except (TypeError, ValueError):
        raise TypeError(
            "model.recommend must return ids as a rectangular integer array (users x k), got "
            "rows of different lengths"
        ) from None
    if ids.dtype == np.bool_ or not np.issubdtype(ids.dtype, np.integer):
        got = "None" if out[0] is None else f"dtype {ids.dtype}"
        raise TypeError(f"model.recommend must return integer item ids, got {got}")
    if ids.shape != (len(users), k):
        raise ValueError(
            f"model.recommend returned ids of shape {ids.shape}, expected {(len(users), k)}"
        )
    high = check.INT32_MAX + 1 if n_items is None else n_items
    if ids.size and (ids.min() < -1 or ids.max() >= high):
        bad = ids[(ids < -1) | (ids >= high)][0]
        raise IndexError(
            f"model.recommend returned item id {bad}, outside [0, {high}) (or -1 padding); "
            "fit the model on train.interactions of this split"
        )
    return ids.astype(np.int32)


def _seen_mask(ids: np.ndarray, seen: sp.csr_array, users: np.ndarray) -> np.ndarray:
    """True where ``ids[r, j]`` is an item user ``users[r]`` has in ``seen``."""
    rows = sp.csr_array(seen[users])
    entries = np.repeat(np.arange(users.size, dtype=np.int64), np.diff(rows.indptr))
    keys = np.sort(entries * seen.shape[1] + rows.indices)  # sorted already for sorted rows
    listed = np.arange(users.size, dtype=np.int64)[:, None] * seen.shape[1] + ids
    if keys.size == 0:
        return np.zeros(ids.shape, dtype=bool)
    pos = np.minimum(np.searchsorted(keys, listed), keys.size - 1)
    return (ids >= 0) & (keys[pos] == listed)
