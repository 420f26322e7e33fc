"""Item vectors that know which items they belong to."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from semrec import _validation as check
from semrec.datasets._ids import raw_id_array, refuse_missing, shown


class ItemEmbeddings:
    """One vector per item, with the raw id of the item each row belongs to.

    A plain array is matched to items by row order alone, which silently goes wrong when a
    dataset's items are renumbered (:meth:`Dataset.permute_items`, the cold-item split) or
    come from another file. ``ItemEmbeddings`` carry the items' raw ids, so that
    :meth:`aligned_to` reorders them for any dataset and the models that are given both a
    :class:`Dataset` and embeddings check that they agree. Anything that takes an array takes
    them too (``numpy.asarray(embeddings)`` is the matrix, without a copy).

    Parameters
    ----------
    vectors : ndarray of float32, shape (n_items, dim)
        C-contiguous, finite.
    item_ids : array-like, shape (n_items,)
        The raw id of each row's item (``Dataset.item_ids``), unique; single values, as in a
        :class:`Dataset` (``1`` and ``"1"`` differ, tuples are refused).

    Attributes
    ----------
    vectors : ndarray of float32, shape (n_items, dim)
    item_ids : ndarray, shape (n_items,)

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> from semrec.datasets import Dataset, ItemEmbeddings
    >>> ds = Dataset(sp.csr_array([[1.0, 0.0, 1.0]]), item_ids=["a", "b", "c"])
    >>> emb = ItemEmbeddings(np.eye(3, dtype=np.float32), ds.item_ids)
    >>> shuffled = ds.permute_items(random_state=1)
    >>> aligned = emb.aligned_to(shuffled)
    >>> aligned.item_ids.tolist() == shuffled.item_ids.tolist()
    True
    >>> bool((np.asarray(aligned) == np.eye(3)[shuffled.split_info["item_permutation"]]).all())
    True
    """

    def __init__(self, vectors: np.ndarray, item_ids: Any) -> None:
        self.vectors, _ = check.as_float32_matrix(vectors, "vectors")
        if isinstance(item_ids, str | bytes) or not hasattr(item_ids, "__iter__"):
            raise TypeError(
                f"item_ids must be a sequence of raw ids (one per row of vectors), got "
                f"{type(item_ids).__name__}"
            )
        ids = raw_id_array(item_ids, "item_ids")
        if ids.shape != (self.vectors.shape[0],):
            raise ValueError(
                f"item_ids must hold one id per row of vectors ({self.vectors.shape[0]}), got "
                f"shape {ids.shape}"
            )
        refuse_missing(ids, "item_ids")
        lookup = pd.Index(ids)
        if not lookup.is_unique:
            raise ValueError(
                f"item_ids must be unique, {shown(lookup[lookup.duplicated()][0])} repeats"
            )
        self.item_ids = ids
        self.item_ids.flags.writeable = False  # the lookup below is built from them once
        self._lookup = lookup

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickled or deep-copied: ``item_ids`` is read-only again, as its lookup needs."""
        self.__dict__.update(state)
        self.item_ids.flags.writeable = False

    def __repr__(self) -> str:
        return f"ItemEmbeddings({self.vectors.shape[0]} items x {self.vectors.shape[1]} dims)"

    # -- array protocol: usable wherever a float32 matrix is expected --------------------------
    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if dtype is None or np.dtype(dtype) == self.vectors.dtype:
            return self.vectors.copy() if copy else self.vectors
        return self.vectors.astype(dtype)

    def __len__(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        """(items, dim) of ``vectors``."""
        return self.vectors.shape  # type: ignore[return-value]

    @property
    def dtype(self) -> np.dtype:
        """float32, that of ``vectors``."""
        return self.vectors.dtype

    @property
    def ndim(self) -> int:
        """2: one row per item."""
        return 2

    # -- alignment ---------------------------------------------------------------------------
    def aligned_to(self, dataset: Any) -> ItemEmbeddings:
        """The rows reordered to follow ``dataset``'s item index (a Dataset or its item ids).

        Raises ``ValueError`` naming the first items of the dataset that have no vector here.
        """
        ids = _item_ids(dataset)
        pos = self._lookup.get_indexer(ids)
        if (pos < 0).any():
            missing = ids[pos < 0]
            raise ValueError(
                f"{missing.size} items of the dataset have no embedding, e.g. "
                f"{missing[:3].tolist()}; encode every item of the dataset"
            )
        if np.array_equal(pos, np.arange(pos.size)) and pos.size == len(self):
            return self
        return ItemEmbeddings(np.ascontiguousarray(self.vectors[pos]), ids)

    def check_aligned(self, dataset: Any, name: str = "item_embeddings") -> None:
        """Raise ``ValueError`` unless row ``i`` belongs to ``dataset``'s item ``i`` for every
        item of the dataset (rows beyond its items are allowed: items the dataset lacks).

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp
        >>> from semrec.datasets import Dataset, ItemEmbeddings
        >>> ds = Dataset(sp.csr_array([[1.0, 0.0]]), item_ids=[10, 20])
        >>> ItemEmbeddings(np.eye(2, dtype=np.float32), [20, 10]).check_aligned(ds)
        Traceback (most recent call last):
        ...
        ValueError: item_embeddings are not aligned with the dataset's items: row 0 is item 20 ...
        """
        ids = _item_ids(dataset)
        mine = self.item_ids[: ids.size]
        if mine.size < ids.size:
            raise ValueError(
                f"{name} has {mine.size} rows but the dataset has {ids.size} items; encode "
                "every item of the dataset"
            )
        if not np.array_equal(mine, ids):
            row = int(np.flatnonzero(mine != ids)[0])
            raise ValueError(
                f"{name} are not aligned with the dataset's items: row {row} is item "
                f"{_plain(mine[row])!r} but the dataset's item {row} is {_plain(ids[row])!r}; "
                f"pass {name}.aligned_to(dataset)"
            )


def _plain(value: Any) -> Any:
    """An id as Python shows it: a NumPy scalar's value (``5``, not ``np.int64(5)``); ids from
    an object array (strings) are Python objects already."""
    return value.item() if isinstance(value, np.generic) else value


def check_alignment(embeddings: Any, dataset: Any, name: str = "item_embeddings") -> None:
    """:meth:`ItemEmbeddings.check_aligned` when ``embeddings`` carry ids; a plain array is
    taken in row order (nothing to check)."""
    if isinstance(embeddings, ItemEmbeddings):
        embeddings.check_aligned(dataset, name)


def _item_ids(dataset: Any) -> np.ndarray:
    ids = getattr(dataset, "item_ids", dataset)
    if isinstance(ids, str | bytes) or not hasattr(ids, "__iter__"):
        raise TypeError(
            f"dataset must be a Dataset or a sequence of its item ids, got {type(dataset).__name__}"
        )
    ids = raw_id_array(ids, "dataset's item ids")
    if ids.ndim != 1:
        raise ValueError(f"dataset's item ids must be one-dimensional, got shape {ids.shape}")
    return ids
