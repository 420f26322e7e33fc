"""Checks of user and item ids given to the models' verbs (re-exported by ``_validation``)."""

from __future__ import annotations

from typing import Any

import numpy as np


def _id_array(ids: Any, name: str, what: str) -> np.ndarray:
    """``np.asarray(ids)``, with a ragged list's error naming the argument (NumPy's does not)."""
    try:
        return np.asarray(ids)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be one {what} id or a 1-D array of them, got a ragged sequence"
        ) from None


def index_array(ids: Any, name: str, n: int, what: str) -> tuple[np.ndarray, bool]:
    """Validate a scalar or 1-D array of indices in [0, n); return int64 and whether scalar."""
    if type(ids) is int and 0 <= ids < n:  # one valid id (a real-time call): no array calls
        return np.array([ids], dtype=np.int64), True
    if type(ids) is np.ndarray and ids.shape == (1,) and ids.dtype == np.int64 and 0 <= ids[0] < n:
        return ids, False  # the same id as a model passes it on
    arr = _id_array(ids, name, what)
    scalar = arr.ndim == 0
    arr = arr.reshape(-1) if scalar else arr
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be one {what} id or a 1-D array of them, got shape {arr.shape}"
        )
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(
            f"{name} must hold integer {what} ids, got dtype {arr.dtype}{_raw(what, arr)}"
        )
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        bad = arr[(arr < 0) | (arr >= n)][0]
        raise IndexError(f"{name} holds {what} id {bad}, outside [0, {n})")
    return np.ascontiguousarray(arr, dtype=np.int64), scalar  # kernels take contiguous ids


def _raw(what: str, arr: np.ndarray) -> str:
    """A hint for raw ids (strings: a Dataset's own ids) given where indices are expected."""
    if arr.dtype.kind not in "USO":
        return ""
    return (
        f"; the models take {what} indices 0..n-1, not raw ids: map yours with "
        f"dataset.{what}_index(ids) (and back with dataset.{what}_ids[indices])"
    )


def new_user_ids(users: Any, rows: int, n_users: int) -> np.ndarray:
    """Validate the ``users`` of ``fold_in`` (the one rule for every model; int64 ids): one
    distinct id per history row, each an existing user (replaced) or one of the next new ids
    ``n_users, n_users + 1, ...`` (appended)."""
    ids = _id_array(users, "users", "user")
    if ids.ndim != 1 or ids.size != rows:
        raise ValueError(
            f"users must be a 1-D array with one id per history row ({rows}), got shape {ids.shape}"
        )
    if ids.size and not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"users must hold integer user ids, got dtype {ids.dtype}")
    ids = ids.astype(np.int64)
    new = np.sort(ids[ids >= n_users])
    if (
        (ids < 0).any()
        or np.unique(ids).size != ids.size
        or not np.array_equal(new, np.arange(n_users, n_users + new.size))
    ):
        raise IndexError(
            f"users must be distinct existing ids in [0, {n_users}) or the next new ids "
            f"{n_users}, {n_users + 1}, ...; got {ids.tolist()}"
        )
    return ids


def check_same_id_maps(a: Any, b: Any, names: tuple[str, str]) -> None:
    """A ValueError unless Datasets ``a`` and ``b`` (named ``names``) have one shape and the
    same user and item ids in the same order: row ``u`` / column ``i`` mean the same in both."""
    if a.interactions.shape != b.interactions.shape or not (
        _same_ids(a.user_ids, b.user_ids) and _same_ids(a.item_ids, b.item_ids)
    ):
        raise ValueError(
            f"{names[0]} and {names[1]} must share id maps (shape {a.interactions.shape} vs "
            f"{b.interactions.shape}, the same user and item ids in the same order); split "
            "one Dataset with semrec.split and pass both parts of that split"
        )


def _same_ids(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two id arrays are equal (splits of one Dataset share them: no comparison)."""
    return a is b or (a.shape == b.shape and bool(np.array_equal(a, b)))
