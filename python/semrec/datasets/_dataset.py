"""The `Dataset`: interactions as a users x items CSR plus the raw-id maps and item/user tables."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from os import PathLike
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from semrec import _hyperparameters as hyperparameters
from semrec import _validation as check
from semrec.datasets._ids import align, catalogue, id_array, lookup, require_columns, shown
from semrec.datasets._inputs import (
    FORMAT_OPTIONS,
    INT64_MAX,
    checked_table,
    epoch_seconds,
    read_csv,
    text_value,
)

DUPLICATES = ("raise", "sum", "last")


class Dataset:
    """Interactions of users with items, with the maps between raw ids and indices.

    Models see contiguous ``int32`` indices; the dataset owns the mapping from raw ids to
    indices and back, and carries item text, timestamps and metadata. A raw id is a single
    value (int, str, ...): ``1`` and ``"1"`` are different ids, and tuples are refused (a tuple
    given to :meth:`user_index` is a sequence of ids), so join composite keys into one string.

    Parameters
    ----------
    interactions : scipy.sparse CSR, shape (n_users, n_items)
        Interaction weights (ratings, counts). Stored as ``csr_array`` of float32 with sorted
        indices; duplicate entries are rejected. Every stored entry is an interaction, explicit
        zeros included (a centred rating of 0 is still an item the user has seen).
    timestamps : array of int64, optional
        One per stored interaction, aligned with ``interactions.data`` (so pass them only for
        a matrix that already has sorted indices).
    user_ids, item_ids : array, optional
        Raw id of each index (default: the indices themselves).
    items : DataFrame, optional
        One row per item index (metadata such as genres, and a ``text`` column when item text
        exists).
    users : DataFrame, optional
        One row per user index.

    Attributes
    ----------
    split_info : dict
        Extra outputs of a splitter (e.g. ``"cold_items"``, ``"history"``), and
        ``"item_permutation"`` once the items were renumbered (:meth:`permute_items`).

    Splits (:meth:`subset`, :meth:`permute_items`) get their own shallow (copy-on-write)
    copies of the ``items`` and ``users`` tables, so editing one split's table never edits
    another's; they share the id arrays ``user_ids`` and ``item_ids``, which are read-only.

    Examples
    --------
    >>> import pandas as pd
    >>> from semrec.datasets import Dataset
    >>> df = pd.DataFrame({"user": ["a", "a", "b"], "item": [10, 20, 10], "rating": [5, 3, 4]})
    >>> ds = Dataset.from_pandas(df, "user", "item", weight_col="rating")
    >>> ds.n_users, ds.n_items, ds.n_interactions
    (2, 2, 3)
    >>> ds.user_index(["b"]).tolist()
    [1]
    """

    def __init__(
        self,
        interactions: Any,
        *,
        timestamps: np.ndarray | None = None,
        user_ids: Iterable[Hashable] | None = None,
        item_ids: Iterable[Hashable] | None = None,
        items: pd.DataFrame | None = None,
        users: pd.DataFrame | None = None,
    ) -> None:
        if not sp.issparse(interactions) or interactions.format != "csr":
            got = interactions.format.upper() if sp.issparse(interactions) else type(interactions)
            raise TypeError(
                f"interactions must be a scipy.sparse CSR matrix (users x items), got {got}"
            )
        m = check.canonical_csr(interactions, "interactions", allow_empty=True)
        if m.nnz != interactions.nnz:
            raise ValueError(
                f"interactions holds {interactions.nnz - m.nnz} duplicate (user, item) entries; "
                "combine them first (Dataset.from_pandas(..., duplicates='sum'))"
            )
        if timestamps is not None and not np.array_equal(m.indices, interactions.indices):
            raise ValueError(
                "timestamps can only be given for interactions with sorted indices, since "
                "they are aligned with interactions.data"
            )
        _index_dtypes(m)
        self.interactions: sp.csr_array = m
        if timestamps is not None:
            timestamps = np.asarray(timestamps)
            if timestamps.shape != (m.nnz,):
                raise ValueError(
                    f"timestamps must have one value per interaction ({m.nnz}), "
                    f"got shape {timestamps.shape}"
                )
            if not np.issubdtype(timestamps.dtype, np.integer):
                raise TypeError(f"timestamps must be integers, got dtype {timestamps.dtype}")
            if timestamps.dtype == np.uint64 and timestamps.size and timestamps.max() > INT64_MAX:
                raise ValueError(
                    f"timestamps holds values beyond int64 (up to {timestamps.max()}); "
                    "give seconds since the epoch"
                )
            timestamps = timestamps.astype(np.int64)  # a copy: the caller's array stays theirs
        self.timestamps: np.ndarray | None = timestamps
        self.user_ids = id_array(user_ids, m.shape[0], "user_ids")
        self.user_ids.flags.writeable = False  # shared by splits, as item_ids
        self._user_lookup = pd.Index(self.user_ids)
        self._set_item_ids(id_array(item_ids, m.shape[1], "item_ids"))
        for name, index in (("user_ids", self._user_lookup), ("item_ids", self._item_lookup)):
            if not index.is_unique:
                dup = index[index.duplicated()][0]
                raise ValueError(f"{name} must be unique, {shown(dup)} appears more than once")
        self.items = checked_table(items, m.shape[1], "items")
        self.users = None if users is None else checked_table(users, m.shape[0], "users")
        self.split_info: dict[str, Any] = {}

    # -- constructors ----------------------------------------------------------------------
    @classmethod
    def from_pandas(
        cls,
        interactions: pd.DataFrame,
        user_col: str,
        item_col: str,
        weight_col: str | None = None,
        time_col: str | None = None,
        items: pd.DataFrame | None = None,
        item_text: str | Callable[[pd.Series], str] | None = "text",
        users: pd.DataFrame | None = None,
        *,
        duplicates: str = "raise",
    ) -> Dataset:
        """Build a dataset from a long table with one row per interaction.

        Parameters
        ----------
        interactions : DataFrame
            One row per (user, item) interaction.
        user_col, item_col : str
            Columns holding the raw user and item ids.
        weight_col : str, optional
            Column of weights (e.g. ratings); every interaction weighs 1 without it.
        time_col : str, optional
            Column of integer timestamps (or datetimes, converted to epoch seconds).
        items : DataFrame, optional
            Item table with an ``item_col`` column; its items join the catalogue even when
            nobody interacted with them.
        item_text : str or callable, optional
            Column of ``items`` holding the text (ignored when absent), or a function called
            once per row of ``items`` with that row as a Series of dtype object, each value of
            its column's type (``1995``, not ``1995.0``), returning the text. Items without a
            row get ``""``, as do missing values.
        users : DataFrame, optional
            User table with a ``user_col`` column.
        duplicates : {'raise', 'sum', 'last'}
            What to do with repeated (user, item) pairs: raise ``ValueError`` (default), sum
            their weights (keeping the latest timestamp), or keep the latest one.

        Examples
        --------
        >>> import pandas as pd
        >>> from semrec.datasets import Dataset
        >>> df = pd.DataFrame({"u": [1, 2], "i": ["x", "y"]})
        >>> Dataset.from_pandas(df, "u", "i").n_interactions
        2
        """
        if not isinstance(interactions, pd.DataFrame):
            raise TypeError(
                f"interactions must be a pandas DataFrame (one row per interaction), got "
                f"{type(interactions).__name__}; for a users x items matrix use Dataset(matrix)"
            )
        if not (item_text is None or isinstance(item_text, str) or callable(item_text)):
            raise TypeError(
                f"item_text must be a column name, a function of an item row or None, "
                f"got {type(item_text).__name__}"
            )
        if duplicates not in DUPLICATES:
            raise ValueError(f"duplicates must be one of {DUPLICATES}, got {duplicates!r}")
        columns = {"user_col": user_col, "item_col": item_col, "weight_col": weight_col,
                   "time_col": time_col}  # fmt: skip
        for arg, col in columns.items():
            if not isinstance(col, Hashable) or (col is None and arg in ("user_col", "item_col")):
                raise TypeError(f"{arg} must be a column name of interactions, got {col!r}")
        require_columns(interactions, list(columns.values()), "interactions")
        if len(interactions) == 0:
            raise ValueError("interactions is empty: a dataset needs at least one interaction")
        for col in (user_col, item_col):
            if interactions[col].isna().any():
                raise ValueError(f"interactions[{col!r}] contains missing ids")
        item_ids = catalogue(interactions, items, item_col, "items")
        user_ids = catalogue(interactions, users, user_col, "users")
        u = pd.Index(user_ids).get_indexer(interactions[user_col]).astype(np.int64)
        i = pd.Index(item_ids).get_indexer(interactions[item_col]).astype(np.int64)
        if weight_col is None:
            w = np.ones(len(interactions), dtype=np.float32)
        else:
            numeric = pd.to_numeric(interactions[weight_col], errors="coerce")
            if pd.api.types.is_complex_dtype(numeric):
                raise TypeError(
                    f"interactions[{weight_col!r}] holds complex numbers; weights are real"
                )
            w = numeric.to_numpy(np.float64)
            if not np.isfinite(w).all():
                raise ValueError(f"interactions[{weight_col!r}] has missing or non-numeric values")
            check.finite_float32(w, f"interactions[{weight_col!r}]")
        t = None
        if time_col is not None:
            t = epoch_seconds(interactions[time_col], time_col)
        # Sorted by user, item (and time, so 'last' keeps the latest of repeated pairs).
        order = np.lexsort((i, u) if t is None else (t, i, u))
        u, i, w = u[order], i[order], w[order]
        t = None if t is None else t[order]
        key = u * len(item_ids) + i
        first = np.ones(len(key), dtype=bool)
        first[1:] = key[1:] != key[:-1]
        if not first.all():
            if duplicates == "raise":
                k = int(np.flatnonzero(~first)[0])
                raise ValueError(
                    f"interactions holds {int((~first).sum())} duplicate (user, item) rows, "
                    f"e.g. user {shown(user_ids[u[k]])}, item {shown(item_ids[i[k]])}; pass "
                    "duplicates='sum' or duplicates='last', or drop them first"
                )
            group = np.cumsum(first) - 1
            last = np.ones(len(key), dtype=bool)
            last[:-1] = key[1:] != key[:-1]
            if duplicates == "sum":
                w = np.bincount(group, weights=w)  # float64: range-checked below
                check.finite_float32(
                    w, f"the summed interactions[{weight_col!r}] of repeated pairs"
                )
            else:
                w = w[last]
            t = None if t is None else t[last]  # rows are time-sorted within a pair
            u, i = u[first], i[first]
        w = w.astype(np.float32)
        indptr = np.zeros(len(user_ids) + 1, dtype=np.int64)
        np.cumsum(np.bincount(u, minlength=len(user_ids)), out=indptr[1:])
        m = sp.csr_array((w, i.astype(np.int32), indptr), shape=(len(user_ids), len(item_ids)))
        m.has_sorted_indices = True
        item_table = align(items, item_col, item_ids, "items")
        named = isinstance(item_text, str) and items is not None and item_text in items.columns
        if items is not None and (callable(item_text) or named):
            # The caller's rows, mapped by id: reindexed (or iterrows) they'd hold 1995.0, not 1995.
            if callable(item_text):  # an object Series: each value keeps its column's type
                values = [
                    item_text(pd.Series(row[1:], index=items.columns, dtype=object, name=row[0]))
                    for row in items.itertuples(name=None)  # (index label, *values)
                ]
            else:
                values = list(items[item_text])
            by_id = pd.Series(values, index=items[item_col].to_numpy(), dtype=object)
            item_table["text"] = [text_value(v) for v in by_id.reindex(item_ids)]
        user_table = None if users is None else align(users, user_col, user_ids, "users")
        return cls(
            m,
            timestamps=t,
            user_ids=user_ids,
            item_ids=item_ids,
            items=item_table,
            users=user_table,
        )

    @classmethod
    def from_csv(
        cls,
        path: str | PathLike[str],
        user_col: str,
        item_col: str,
        weight_col: str | None = None,
        time_col: str | None = None,
        *,
        items: str | PathLike[str] | pd.DataFrame | None = None,
        item_text: str | Callable[[pd.Series], str] | None = "text",
        duplicates: str = "raise",
        **read_csv_kwargs: Any,
    ) -> Dataset:
        """Read interactions (and optionally an item table) from CSV files.

        Parameters
        ----------
        path : str, path or open file
            The interactions file, read with ``pandas.read_csv(path, **read_csv_kwargs)``.
        user_col, item_col, weight_col, time_col, item_text, duplicates
            As in :meth:`from_pandas`.
        items : str, path, open file or DataFrame, optional
            The item table, or a CSV file of it read with only the format options of
            ``read_csv_kwargs`` (``sep``, ``delimiter``, ``lineterminator``, ``quoting``,
            ``quotechar``, ``doublequote``, ``escapechar``, ``comment``, ``decimal``,
            ``thousands``, ``skipinitialspace``, ``dialect``, ``encoding``, ``encoding_errors``,
            ``engine``); the others (``nrows``, ``usecols``, ``dtype``...) are for ``path``.
        **read_csv_kwargs
            Options of :func:`pandas.read_csv` (e.g. ``sep="\\t"``); a read error names its file.

        Examples
        --------
        >>> from semrec.datasets import Dataset
        >>> ds = Dataset.from_csv("ratings.csv", "userId", "movieId", "rating")  # doctest: +SKIP
        """
        frame = read_csv(path, **read_csv_kwargs)
        if items is not None and not isinstance(items, pd.DataFrame):
            formats = {k: v for k, v in read_csv_kwargs.items() if k in FORMAT_OPTIONS}
            items = read_csv(items, "items", **formats)
        return cls.from_pandas(
            frame,
            user_col,
            item_col,
            weight_col,
            time_col,
            items=items,
            item_text=item_text,
            duplicates=duplicates,
        )

    # -- properties -------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        """Rows of ``interactions``."""
        return int(self.interactions.shape[0])

    @property
    def n_items(self) -> int:
        """Columns of ``interactions``."""
        return int(self.interactions.shape[1])

    @property
    def n_interactions(self) -> int:
        """Stored entries of ``interactions`` (explicit zeros included)."""
        return int(self.interactions.nnz)

    @property
    def item_text(self) -> list[str] | None:
        """Text of each item index (``""`` where missing), or None when the dataset has no
        item text."""
        if "text" not in self.items.columns:
            return None
        return [text_value(t) for t in self.items["text"]]

    # -- id maps -------------------------------------------------------------------------------
    def user_index(self, raw_ids: Any) -> Any:
        """Map raw user ids to int32 indices (the inverse of ``user_ids``).

        Parameters
        ----------
        raw_ids : hashable, or list, tuple or array of them
            One raw id (``1`` and ``"1"`` are different ids), or a sequence of ids of any
            shape (nested lists of equal length too); a tuple is a sequence of ids, not one id.

        Returns
        -------
        numpy.int32 or ndarray of int32
            A scalar for one id, else an array of the shape of ``raw_ids`` (empty for none).

        Raises
        ------
        KeyError
            An id the dataset does not know; names up to three of them and how many.
        TypeError
            A set or dict (unordered), a ragged sequence, or an id that cannot be hashed.
        """
        return lookup(self._user_lookup, raw_ids, "user")

    def item_index(self, raw_ids: Any) -> Any:
        """Map raw item ids to int32 indices (the inverse of ``item_ids``), as
        :meth:`user_index` maps user ids.

        Parameters
        ----------
        raw_ids : hashable, or list, tuple or array of them
            One raw item id, or a sequence of them of any shape (see :meth:`user_index`).

        Returns
        -------
        numpy.int32 or ndarray of int32
            A scalar for one id, else an array of the shape of ``raw_ids``.

        Raises
        ------
        KeyError
            An id the dataset does not know (see ``item_ids``).
        TypeError
            A set or dict, a ragged sequence, or an id that cannot be hashed.
        """
        return lookup(self._item_lookup, raw_ids, "item")

    # -- description ---------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Counts, density and activity quantiles (interactions per user and per item).

        Examples
        --------
        >>> import scipy.sparse as sp
        >>> from semrec.datasets import Dataset
        >>> Dataset(sp.csr_array([[1.0, 0.0], [2.0, 3.0]])).summary()["density"]
        0.75
        """
        m = self.interactions
        per_user = np.diff(m.indptr)
        per_item = np.bincount(m.indices, minlength=self.n_items)
        cells = self.n_users * self.n_items
        q = (0.0, 0.25, 0.5, 0.75, 1.0)
        out: dict[str, Any] = {
            "n_users": self.n_users,
            "n_items": self.n_items,
            "n_interactions": self.n_interactions,
            "density": self.n_interactions / cells if cells else 0.0,
            "user_activity_quantiles": dict(zip(q, _quantiles(per_user, q), strict=True)),
            "item_popularity_quantiles": dict(zip(q, _quantiles(per_item, q), strict=True)),
            "weights": (float(m.data.min()), float(m.data.max())) if m.nnz else None,
            "has_timestamps": self.timestamps is not None,
            "has_item_text": "text" in self.items.columns,
        }
        return out

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickled or deep-copied: the id arrays are read-only again (NumPy restores them
        writeable, and an edit in place would leave the id lookups behind)."""
        self.__dict__.update(state)
        self.user_ids.flags.writeable = False
        self.item_ids.flags.writeable = False

    def __repr__(self) -> str:
        s = self.summary()
        ua = s["user_activity_quantiles"]
        ip = s["item_popularity_quantiles"]
        extras = [name for name in ("timestamps", "item_text") if s[f"has_{name}"]]
        meta = [c for c in self.items.columns if c != "text"]
        return (
            f"Dataset({s['n_users']:,} users x {s['n_items']:,} items, "
            f"{s['n_interactions']:,} interactions, density {s['density']:.4%})\n"
            f"  interactions per user: min {ua[0.0]:g}, median {ua[0.5]:g}, max {ua[1.0]:g}\n"
            f"  interactions per item: min {ip[0.0]:g}, median {ip[0.5]:g}, max {ip[1.0]:g}\n"
            f"  with: {', '.join(extras) or 'no timestamps, no item text'}"
            + (f"; item metadata: {', '.join(map(str, meta))}" if meta else "")
        )

    # -- item order ----------------------------------------------------------------------------
    def permute_items(self, random_state: Any = 0) -> Dataset:
        """The same data with the item indices in a seeded random order.

        Every model breaks score ties by the lower item index, and real catalogues number
        their items in an order that follows popularity (MovieLens roughly does): where a model
        scores many items alike (cold items), the tie order alone would look like skill. After
        a permutation a tie is worth exactly random. :func:`semrec.split.cold_items` does this
        by default.

        Item vectors built for the original order must follow: keep them as
        :class:`semrec.datasets.ItemEmbeddings` (they carry their item ids;
        ``embeddings.aligned_to(permuted)``) or index them with
        ``permuted.split_info["item_permutation"]``.

        Parameters
        ----------
        random_state : None, int or numpy.random.Generator, default 0
            Seeds ``numpy.random.default_rng(random_state).permutation(n_items)``.

        Returns
        -------
        Dataset
            New item index ``p`` holds this dataset's item ``perm[p]``; interactions,
            timestamps, ``item_ids`` and the ``items`` table follow, users are unchanged.
            ``split_info["item_permutation"]`` is ``perm`` (int64), composed with the
            permutation this dataset already records (``earlier[perm]``) when it was
            permuted before, so that it always indexes vectors in the original item order.

        Examples
        --------
        >>> import scipy.sparse as sp
        >>> from semrec.datasets import Dataset
        >>> ds = Dataset(sp.csr_array([[1.0, 0.0, 2.0]]), item_ids=["a", "b", "c"])
        >>> shuffled = ds.permute_items(random_state=1)
        >>> perm = shuffled.split_info["item_permutation"]
        >>> bool((shuffled.item_ids == ds.item_ids[perm]).all())
        True
        >>> bool((shuffled.interactions.toarray() == ds.interactions.toarray()[:, perm]).all())
        True
        """
        perm = hyperparameters.generator(random_state).permutation(self.n_items)
        new_index = np.argsort(perm)
        m = self.interactions
        rows = np.repeat(np.arange(self.n_users), np.diff(m.indptr))
        cols = new_index[m.indices]
        order = np.lexsort((cols, rows))
        out = Dataset.__new__(Dataset)
        out.__dict__.update(self.__dict__)
        out.interactions = sp.csr_array(
            (m.data[order], cols[order].astype(m.indices.dtype), m.indptr.copy()), shape=m.shape
        )
        out.interactions.has_sorted_indices = True
        out.timestamps = None if self.timestamps is None else self.timestamps[order]
        out._set_item_ids(self.item_ids[perm])
        out.items = self.items.iloc[perm].reset_index(drop=True)
        out.users = None if self.users is None else self.users.copy(deep=False)
        earlier = self.split_info.get("item_permutation")
        out.split_info = {"item_permutation": perm if earlier is None else earlier[perm]}
        return out

    def _set_item_ids(self, item_ids: np.ndarray) -> None:
        """The item id map and its lookup index, always set together (read-only: an edit in
        place would leave the lookup behind, in every split sharing the array)."""
        item_ids.flags.writeable = False
        self.item_ids = item_ids
        self._item_lookup = pd.Index(item_ids)

    # -- subsets (what the splitters are made of) ------------------------------------------------
    def subset(self, keep: np.ndarray) -> Dataset:
        """A dataset with the same id maps and tables, holding the interactions where ``keep``.

        ``keep`` is a boolean mask over the stored interactions (aligned with
        ``interactions.data`` and ``timestamps``); what the splitters are made of. The
        ``items`` and ``users`` tables are shallow copy-on-write copies, the (read-only) id
        arrays are shared, and ``split_info`` keeps only the ``"item_permutation"`` of a
        renumbered dataset.

        Parameters
        ----------
        keep : ndarray of bool, shape (n_interactions,)
            True for each stored interaction to keep, in the order of ``interactions.data``.

        Returns
        -------
        Dataset
            Every user and item index of this dataset, with the kept interactions only (and
            their timestamps).

        Raises
        ------
        ValueError
            ``keep`` is not a boolean array of shape ``(n_interactions,)``.

        Examples
        --------
        >>> import scipy.sparse as sp
        >>> from semrec.datasets import Dataset
        >>> ds = Dataset(sp.csr_array([[1.0, 2.0], [0.0, 3.0]]))
        >>> ds.subset(ds.interactions.data > 1).interactions.toarray().tolist()
        [[0.0, 2.0], [0.0, 3.0]]
        """
        try:
            keep = np.asarray(keep)
        except ValueError:  # a ragged list: NumPy's message names no argument
            raise ValueError(
                f"keep must be a boolean mask with one entry per interaction "
                f"({self.n_interactions}), got a ragged sequence"
            ) from None
        if keep.dtype != bool or keep.shape != (self.n_interactions,):
            raise ValueError(
                f"keep must be a boolean mask with one entry per interaction "
                f"({self.n_interactions}), got dtype {keep.dtype} and shape {keep.shape}"
            )
        m = self.interactions
        rows = np.repeat(np.arange(self.n_users), np.diff(m.indptr))[keep]
        indptr = np.zeros(self.n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=self.n_users), out=indptr[1:])
        sub = sp.csr_array((m.data[keep], m.indices[keep], indptr), shape=m.shape)
        sub.has_sorted_indices = True
        _index_dtypes(sub)
        out = Dataset.__new__(Dataset)
        out.__dict__.update(self.__dict__)
        out.interactions = sub
        out.timestamps = None if self.timestamps is None else self.timestamps[keep]
        out.items = self.items.copy(deep=False)
        out.users = None if self.users is None else self.users.copy(deep=False)
        out.split_info = {k: v for k, v in self.split_info.items() if k == "item_permutation"}
        return out


def _index_dtypes(m: sp.csr_array) -> None:
    """One index dtype for indptr and indices (scipy needs them alike): int32 when it fits."""
    fits = max(m.nnz, *m.shape) < np.iinfo(np.int32).max
    dtype = np.int32 if fits else np.int64
    m.indices = m.indices.astype(dtype, copy=False)
    m.indptr = m.indptr.astype(dtype, copy=False)


def _quantiles(values: np.ndarray, q: tuple[float, ...]) -> list[float]:
    if values.size == 0:
        return [0.0] * len(q)
    return [float(v) for v in np.quantile(values, q)]
