"""Train/test splitters (each defined in its docstring). Each returns ``(train, test)`` Datasets
that share the id maps and tables of the input, so indices mean the same items in both.

Splitters that need extra outputs put them in ``test.split_info``:
``cold_items`` stores ``"cold_items"`` (int32 item indices); ``new_users`` stores ``"users"``
(int32 indices of the new users) and ``"history"`` (a Dataset holding their revealed
interactions, for ``fold_in`` or profile building; :func:`check_history_folded_in` warns
when a model evaluated on the split was not given it).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp

from semrec import _hyperparameters as hyperparameters
from semrec import _validation as check
from semrec.datasets import Dataset


def random_holdout(
    dataset: Dataset, fraction: float = 0.2, *, random_state: Any = 0
) -> tuple[Dataset, Dataset]:
    """Per user, a random ``floor(fraction * n_u)`` of the interactions go to test.

    Users with a single interaction (more generally, with ``fraction * n_u < 1``) stay
    entirely in train. Needs no timestamps.

    Parameters
    ----------
    dataset : Dataset
        The interactions to split (at least one).
    fraction : float, default 0.2
        Share of each user's interactions drawn for test, strictly between 0 and 1.
    random_state : None, int or numpy.random.Generator, default 0
        Seeds the draw: the same seed gives the same split.

    Returns
    -------
    train, test : Dataset
        The interactions on each side; both keep every user and item index of ``dataset``
        (and its id maps and tables), so an index means the same user or item in both.

    Raises
    ------
    TypeError
        ``dataset`` is not a :class:`~semrec.datasets.Dataset`, or ``fraction`` or
        ``random_state`` is of the wrong type.
    ValueError
        ``dataset`` has no interactions, ``fraction`` is not strictly between 0 and 1, or
        ``random_state`` is negative.

    Examples
    --------
    >>> from semrec.datasets import synthetic
    >>> from semrec.split import random_holdout
    >>> train, test = random_holdout(synthetic(50, 100, 1000), 0.2)
    >>> train.n_interactions + test.n_interactions
    1000
    """
    _check_dataset(dataset)
    fraction = _fraction(fraction)
    rng = hyperparameters.generator(random_state)
    rows = _rows(dataset)
    rank = _rank_within_user(dataset, (rng.random(dataset.n_interactions), rows))
    n_test = np.floor(fraction * np.diff(dataset.interactions.indptr)).astype(np.int64)
    return _split(dataset, rank < n_test[rows])


def temporal_global(
    dataset: Dataset, fraction: float = 0.2, *, at: int | None = None
) -> tuple[Dataset, Dataset]:
    """A global time cut: interactions after the cut go to test.

    The cut is ``at`` (a timestamp, an int or float in the units of ``dataset.timestamps``,
    epoch seconds for datetimes; test holds ``t > at``) or else the timestamp that leaves
    ``fraction`` of the interactions after it. Interactions that share a timestamp stay on
    one side, so the cut is chosen among the distinct timestamps: the one whose test share is
    closest to ``fraction`` (the larger test on a tie) with neither side empty. Under ties
    (dates without times, a batch import) the share is therefore only approximate; when every
    interaction has the same timestamp no cut exists (ValueError). Test users need not
    appear in train.

    Parameters
    ----------
    dataset : Dataset
        The interactions to split; needs ``dataset.timestamps``.
    fraction : float, default 0.2
        The share of interactions aimed at for test, strictly between 0 and 1 (see above).
        Ignored (not even checked) when ``at`` is given.
    at : int or float, optional
        The cut itself, in the units of ``dataset.timestamps``: test holds ``t > at``. Taken
        as given, so either side may be empty (at or past the last timestamp: test is; before
        the first: train is).

    Returns
    -------
    train, test : Dataset
        The interactions on each side; both keep every user and item index of ``dataset``
        (and its id maps and tables), so an index means the same user or item in both.

    Raises
    ------
    TypeError
        ``dataset`` is not a Dataset, or ``fraction`` or ``at`` is not one number (a bool,
        string, date or array is refused: pass a date as epoch seconds).
    ValueError
        ``dataset`` has no interactions or no timestamps, ``fraction`` is not strictly
        between 0 and 1, ``at`` is NaN or infinite, or (without ``at``) every interaction
        has the same timestamp.

    Examples
    --------
    >>> from semrec.datasets import synthetic
    >>> from semrec.split import temporal_global
    >>> train, test = temporal_global(synthetic(50, 100, 1000), 0.2)
    >>> int(train.timestamps.max()) <= int(test.timestamps.min())
    True
    """
    t = _timestamps(dataset)
    if at is None:
        at = _cut(t, _fraction(fraction))
    elif isinstance(at, int | np.integer) and not isinstance(at, bool | np.bool_):
        at = int(at)  # exact, even past 2**53
    elif isinstance(at, float | np.floating):
        at = check.number(at, "at")
    else:
        shape = f" of shape {np.shape(at)}" if np.ndim(at) else ""
        raise TypeError(
            f"at must be one timestamp (an int or float, in the units of dataset.timestamps), "
            f"got {type(at).__name__}{shape}; for a date pass its epoch seconds, e.g. "
            "int(pd.Timestamp('2020-01-01').timestamp())"
        )
    return _split(dataset, t > at)


def last_fraction(
    dataset: Dataset, fraction: float = 0.2, min_test: int = 1
) -> tuple[Dataset, Dataset]:
    """The protocol's warm split: per user, sorted by (timestamp, item), the last
    ``max(min_test, floor(fraction * n_u))`` interactions go to test.

    At least one interaction of every user stays in train, so every test user is in train.

    Parameters
    ----------
    dataset : Dataset
        The interactions to split; needs ``dataset.timestamps``.
    fraction : float, default 0.2
        Share of each user's latest interactions that go to test, strictly between 0 and 1.
    min_test : int, default 1
        At least this many test interactions per user (>= 0; 0 lets a user with
        ``floor(fraction * n_u) == 0`` stay entirely in train), capped at ``n_u - 1``.

    Returns
    -------
    train, test : Dataset
        The interactions on each side; both keep every user and item index of ``dataset``
        (and its id maps and tables), so an index means the same user or item in both.

    Raises
    ------
    TypeError
        ``dataset`` is not a Dataset, ``fraction`` is not a number or ``min_test`` not an int.
    ValueError
        ``dataset`` has no interactions or no timestamps, ``fraction`` is not strictly
        between 0 and 1, or ``min_test`` is negative.

    Examples
    --------
    >>> from semrec.datasets import synthetic
    >>> from semrec.split import last_fraction
    >>> train, test = last_fraction(synthetic(50, 100, 1000))
    >>> bool((test.interactions.sum(axis=1) > 0).sum() <= 50)
    True
    """
    _check_dataset(dataset)
    fraction = _fraction(fraction)
    if isinstance(min_test, bool) or not isinstance(min_test, int | np.integer):
        raise TypeError(f"min_test must be an int >= 0, got {min_test!r}")
    if min_test < 0:
        raise ValueError(f"min_test must be an int >= 0, got {min_test!r}")
    n_u = np.diff(dataset.interactions.indptr)
    min_test = min(int(min_test), int(n_u.max(initial=0)))  # _last caps at n_u - 1 anyway
    n_test = np.maximum(min_test, np.floor(fraction * n_u).astype(np.int64))
    return _last(dataset, n_test)


def leave_last_k(dataset: Dataset, k: int = 1) -> tuple[Dataset, Dataset]:
    """Per user, sorted by (timestamp, item), the last ``k`` interactions go to test
    (at most ``n_u - 1``, so every test user keeps one train interaction).

    Parameters
    ----------
    dataset : Dataset
        The interactions to split; needs ``dataset.timestamps``.
    k : int, default 1
        Test interactions per user (>= 1), capped at ``n_u - 1``: a user with a single
        interaction stays entirely in train.

    Returns
    -------
    train, test : Dataset
        The interactions on each side; both keep every user and item index of ``dataset``
        (and its id maps and tables), so an index means the same user or item in both.

    Raises
    ------
    TypeError
        ``dataset`` is not a Dataset or ``k`` is not an int.
    ValueError
        ``dataset`` has no interactions or no timestamps, or ``k`` < 1.

    Examples
    --------
    >>> from semrec.datasets import synthetic
    >>> from semrec.split import leave_last_k
    >>> train, test = leave_last_k(synthetic(50, 100, 1000), k=1)
    >>> test.n_interactions
    50
    """
    _check_dataset(dataset)
    k = check.positive_int(k, "k")
    k = min(k, max(dataset.n_interactions, 1))  # _last caps at n_u - 1 anyway; int64 holds it
    return _last(dataset, np.full(dataset.n_users, k, dtype=np.int64))


def cold_items(
    dataset: Dataset,
    fraction: float = 0.1,
    min_interactions: int = 5,
    *,
    random_state: Any = 0,
    permute_items: bool = True,
) -> tuple[Dataset, Dataset]:
    """The protocol's cold-item split: permute the item indices, then draw ``fraction`` of the
    items with at least ``min_interactions`` interactions (``round(fraction * eligible)``,
    a half to the even count); all their interactions move to test.

    ``test.split_info["cold_items"]`` lists them (evaluate with ``items=`` those so users rank
    the cold items only).

    The permutation (:meth:`Dataset.permute_items`, seeded with ``random_state``) is there
    because every model breaks score ties by the lower item index: a model that scores every
    cold item alike would otherwise rank them in catalogue order, which follows popularity on
    real data, and look better than random. So **train and test number the items in a new
    order**: build item vectors from ``train`` (``encoder.encode(train.item_text)``), carry
    them as :class:`semrec.datasets.ItemEmbeddings` (``embeddings.aligned_to(train)``), or
    index them with ``test.split_info["item_permutation"]`` (new index ``p`` is item
    ``perm[p]`` of the original, unpermuted data: permutations compose).
    ``permute_items=False`` keeps the input's order (for data already permuted).

    Parameters
    ----------
    dataset : Dataset
        The interactions to split (at least one).
        Needs no timestamps.
    fraction : float, default 0.1
        Share of the eligible items made cold, strictly between 0 and 1.
    min_interactions : int, default 5
        Interactions (>= 1) an item needs to be eligible, counted on ``dataset``.
    random_state : None, int or numpy.random.Generator, default 0
        Seeds the item permutation and the draw of the cold items.
    permute_items : bool, default True
        Renumber the items first (see above); False keeps the input's order.

    Returns
    -------
    train, test : Dataset
        ``test`` holds every interaction with a cold item, ``train`` the rest. Both keep
        every user and item index (in the permuted order unless ``permute_items=False``),
        and both record ``split_info["item_permutation"]`` when permuted;
        ``test.split_info["cold_items"]`` holds the cold item indices (int32, sorted).

    Raises
    ------
    TypeError
        ``dataset`` is not a Dataset, or an argument is of the wrong type (``permute_items``
        must be True or False).
    ValueError
        ``dataset`` has no interactions, ``fraction`` is not strictly between 0 and 1,
        ``min_interactions`` < 1, ``random_state`` is negative, no item is drawn, or the cold
        items hold every interaction (train would be empty).

    Examples
    --------
    >>> from semrec.datasets import synthetic
    >>> from semrec.split import cold_items
    >>> data = synthetic(50, 100, 1000)
    >>> train, test = cold_items(data)
    >>> cold = test.split_info["cold_items"]
    >>> int(train.interactions[:, cold].nnz)
    0
    >>> perm = test.split_info["item_permutation"]
    >>> bool((train.item_ids == data.item_ids[perm]).all())
    True
    """
    _check_dataset(dataset)
    fraction = _fraction(fraction)
    min_interactions = check.positive_int(min_interactions, "min_interactions")
    random_state = hyperparameters.random_state(random_state)
    perm = None
    if check.flag(permute_items, "permute_items"):
        dataset = dataset.permute_items(random_state)
        perm = dataset.split_info["item_permutation"]
    rng = np.random.default_rng(random_state)
    counts = np.bincount(dataset.interactions.indices, minlength=dataset.n_items)
    eligible = np.flatnonzero(counts >= min_interactions)
    n_cold = round(fraction * len(eligible))
    if n_cold == 0:
        raise ValueError(
            f"no cold items drawn: {len(eligible)} items have >= {min_interactions} "
            f"interactions and fraction={fraction}; lower min_interactions or raise fraction"
        )
    cold = np.sort(rng.choice(eligible, n_cold, replace=False)).astype(np.int32)
    is_cold = np.zeros(dataset.n_items, dtype=bool)
    is_cold[cold] = True
    to_test = is_cold[dataset.interactions.indices]
    if to_test.all():
        raise ValueError(
            f"every interaction is on one of the {n_cold} cold items drawn (fraction={fraction} "
            f"of the {len(eligible)} items with >= {min_interactions} interactions), leaving "
            "train empty; lower fraction or raise min_interactions"
        )
    train, test = _split(dataset, to_test)
    test.split_info["cold_items"] = cold
    if perm is not None:
        train.split_info["item_permutation"] = test.split_info["item_permutation"] = perm
    return train, test


def new_users(
    dataset: Dataset, fraction: float = 0.1, n_reveal: int = 5, *, random_state: Any = 0
) -> tuple[Dataset, Dataset]:
    """Draw ``fraction`` of the users and remove them from train. Each reveals its first
    ``n_reveal`` interactions (by time, then item) as history; the rest goes to test.

    ``round(fraction * n_users)`` users are drawn (Python's ``round``: a half goes to the even
    count), from every row, those without interactions included (such a user has no test
    interactions and is not evaluated: a split of a ``train`` that already holds empty rows,
    like another split's new users, evaluates fewer users).

    ``test.split_info["users"]`` holds the new users, ``test.split_info["history"]`` a Dataset
    with the revealed interactions only.

    Parameters
    ----------
    dataset : Dataset
        The interactions to split; needs ``dataset.timestamps``.
    fraction : float, default 0.1
        Share of the users drawn as new users, strictly between 0 and 1.
    n_reveal : int, default 5
        Interactions (>= 1) each new user reveals as history; a user with fewer reveals all
        of them and has nothing in test.
    random_state : None, int or numpy.random.Generator, default 0
        Seeds the draw of the new users.

    Returns
    -------
    train, test : Dataset
        ``train`` without any interaction of the new users, ``test`` with their unrevealed
        interactions; both keep every user and item index. ``test.split_info`` holds
        ``"users"`` and ``"history"`` (see above).

    Raises
    ------
    TypeError
        ``dataset`` is not a Dataset, or an argument is of the wrong type.
    ValueError
        ``dataset`` has no interactions or no timestamps, ``fraction`` is not strictly
        between 0 and 1, ``n_reveal`` < 1, ``random_state`` is negative, the draw selects
        nobody or everybody, or ``test`` would be empty (the users drawn have no
        interactions, or ``n_reveal`` reveals all of them).

    Examples
    --------
    >>> from semrec.datasets import synthetic
    >>> from semrec.split import new_users
    >>> train, test = new_users(synthetic(50, 100, 1000))
    >>> history = test.split_info["history"]
    >>> int(train.interactions[test.split_info["users"]].nnz)
    0
    """
    _check_dataset(dataset)
    fraction = _fraction(fraction)
    n_reveal = check.positive_int(n_reveal, "n_reveal")
    rng = hyperparameters.generator(random_state)
    n_new = round(fraction * dataset.n_users)
    if n_new == 0:
        raise ValueError(f"fraction={fraction} of {dataset.n_users} users draws nobody")
    if n_new == dataset.n_users:
        raise ValueError(
            f"fraction={fraction} of {dataset.n_users} users draws every user, leaving train "
            "empty; lower fraction"
        )
    chosen = np.sort(rng.choice(dataset.n_users, n_new, replace=False)).astype(np.int32)
    is_new = np.zeros(dataset.n_users, dtype=bool)
    is_new[chosen] = True
    rows = _rows(dataset)
    t = _timestamps(dataset)
    rank = _rank_within_user(dataset, (dataset.interactions.indices, t, rows))
    new_row = is_new[rows]
    revealed = new_row & (rank < n_reveal)
    train = dataset.subset(~new_row)
    test = dataset.subset(new_row & ~revealed)
    if test.n_interactions == 0:
        if not new_row.any():
            raise ValueError(
                f"the {n_new} users drawn have no interactions; draw another random_state or "
                "a larger fraction"
            )
        raise ValueError(
            f"n_reveal={n_reveal} reveals every interaction of the new users, leaving test "
            "empty; lower n_reveal"
        )
    test.split_info["users"] = chosen
    test.split_info["history"] = dataset.subset(revealed)
    return train, test


def check_history_folded_in(model: Any, test: Dataset, users: Any = None) -> None:
    """Warn when ``model`` has not been given the revealed history of a :func:`new_users` split.

    The new users' rows of train are empty: a model that was not given their revealed history
    (``test.split_info["history"]``), by ``fold_in`` or by fitting on it, ranks them without
    any history. Most models then score every item alike and list the first items of the
    catalogue, so an evaluation measures the item order, not the model. A user counts as
    unknown when the model's seen items (``model.interactions_``) hold none of the user's
    revealed items. A model without ``interactions_``, or a test set without a revealed
    history, is trusted. Reads those users' rows only.

    Parameters
    ----------
    model : fitted model
    test : Dataset
        The test side of a split; only a new-user split's is checked.
    users : int array, optional
        The users to check (default: every user with a revealed history).

    Warns
    -----
    UserWarning
        How many users the model does not know, and the ``fold_in`` call that fixes it.

    Examples
    --------
    >>> import warnings, semrec
    >>> from semrec.datasets import synthetic
    >>> from semrec.split import check_history_folded_in, new_users
    >>> train, test = new_users(synthetic(50, 100, 1000))
    >>> model = semrec.ItemKNN(show_progress=False).fit(train.interactions)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     check_history_folded_in(model, test)
    >>> [w.category.__name__ for w in caught]
    ['UserWarning']
    >>> users = test.split_info["users"]
    >>> _ = model.fold_in(test.split_info["history"].interactions[users], users=users)
    >>> check_history_folded_in(model, test)  # no warning now
    """
    history = check.dataset(test, "test").split_info.get("history")
    seen = getattr(model, "interactions_", None)
    if not isinstance(history, Dataset) or not sp.issparse(seen) or seen.ndim != 2:
        return
    revealed = history.interactions
    n = revealed.shape[0]
    rows = np.arange(n) if users is None else check.index_array(users, "users", n, "user")[0]
    rows = rows[np.diff(revealed.indptr)[rows] > 0]
    inside = rows[rows < seen.shape[0]]  # a row past the model's users is unknown too
    width = min(seen.shape[1], revealed.shape[1])
    # Structures only (a stored 0 is seen): the revealed items each user's row also holds.
    shared = _ones(revealed[inside][:, :width]).multiply(_ones(seen[inside][:, :width]))
    missing = rows.size - inside.size + int(np.count_nonzero(shared.sum(axis=1) == 0))
    if missing:
        warnings.warn(
            f"{type(model).__name__} has not seen the revealed history of {missing} of the "
            f"{rows.size} new user(s) evaluated (test.split_info['history']): it ranks them "
            "without any history (for most models: every item alike, in catalogue order). "
            "fold_in the revealed history first: users = test.split_info['users']; "
            "model.fold_in(test.split_info['history'].interactions[users], users=users)",
            UserWarning,
            stacklevel=3,  # the caller of evaluate, its usual caller
        )


# -- helpers ----------------------------------------------------------------------------------
def _check_dataset(dataset: Any) -> None:
    check.dataset(dataset)
    if dataset.n_interactions == 0:
        raise ValueError("dataset has no interactions to split")


def _fraction(fraction: Any) -> float:
    return check.number(fraction, "fraction", above=0, below=1)


def _timestamps(dataset: Dataset) -> np.ndarray:
    _check_dataset(dataset)
    if dataset.timestamps is None:
        raise ValueError(
            "this split orders interactions by time but the dataset has no timestamps; "
            "build it with time_col=, or use random_holdout"
        )
    return dataset.timestamps


def _cut(t: np.ndarray, fraction: float) -> int:
    """The distinct timestamp ``c`` whose test share ``mean(t > c)`` is closest to ``fraction``
    (the larger test on a tie), with train and test both non-empty."""
    times, counts = np.unique(t, return_counts=True)
    if times.size < 2:
        raise ValueError(
            f"every interaction has the same timestamp ({times[0]}), so no time cut leaves both "
            "train and test non-empty; use random_holdout, or last_fraction / leave_last_k "
            "(they break ties by item)"
        )
    after = t.size - np.cumsum(counts)[:-1]  # test sizes of the cuts times[:-1]
    best = int(np.argmin(np.abs(after - fraction * t.size)))  # first: the larger test
    return int(times[best])


def _rows(dataset: Dataset) -> np.ndarray:
    return np.repeat(np.arange(dataset.n_users), np.diff(dataset.interactions.indptr))


def _rank_within_user(dataset: Dataset, keys: tuple[np.ndarray, ...]) -> np.ndarray:
    """Position (0-based) of each interaction within its user when sorted by keys (lexsort
    order: the last key, the row, is primary)."""
    order = np.lexsort(keys)
    rank = np.empty(dataset.n_interactions, dtype=np.int64)
    rows = keys[-1][order]
    rank[order] = np.arange(dataset.n_interactions) - dataset.interactions.indptr[rows]
    return rank


def _last(dataset: Dataset, n_test: np.ndarray) -> tuple[Dataset, Dataset]:
    t = _timestamps(dataset)
    rows = _rows(dataset)
    n_u = np.diff(dataset.interactions.indptr)
    n_test = np.minimum(n_test, np.maximum(n_u - 1, 0))
    rank = _rank_within_user(dataset, (dataset.interactions.indices, t, rows))
    return _split(dataset, rank >= (n_u - n_test)[rows])


def _split(dataset: Dataset, to_test: np.ndarray) -> tuple[Dataset, Dataset]:
    return dataset.subset(~to_test), dataset.subset(to_test)


def _ones(m: Any) -> sp.csr_array:
    """``m``'s structure (CSR) with every stored entry 1, a stored 0 included."""
    m = sp.csr_array(m)
    return sp.csr_array((np.ones(m.nnz), m.indices, m.indptr), shape=m.shape)
