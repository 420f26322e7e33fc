"""Exact top-k similarity search (C++ kernel: ``cpp/semrec/similarity.cpp``).

The kernel multiplies blocks of queries by blocks of items with a register-tiled micro-kernel
(AVX-512, AVX2 or SSE, chosen at import) and keeps each query's best ``k`` while the block is
still in cache, so the full score matrix is never materialised. Items are re-laid out in panels
whose vector lanes run over items, so one query streams them at memory speed and many queries
share every load. Every score is summed in one fixed order, so identical items tie exactly and
results do not depend on the batch, the path or the thread count. Work is spread over query
blocks (and over item ranges when there are few queries); the GIL is released and Ctrl-C
interrupts a long search.

:class:`ItemIndex` prepares item vectors once (checked, scaled, packed) for many searches;
:func:`topk` accepts it wherever it accepts an item matrix.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import scipy.sparse as sp

from semrec import _candidates as candidate_lists
from semrec import _validation as check
from semrec._native import core
from semrec._threads import resolve_num_threads

METRICS = ("cosine", "dot")
STORAGES = ("float32", "float16", "int8")


class ItemIndex:
    """Item vectors prepared once for fast, repeated exact search with :func:`topk`.

    The vectors are copied, checked for NaN/inf once, and packed into the layout the search
    kernel streams (for ``"cosine"`` with their norms), so a search neither re-validates nor
    re-packs them: the path for real-time recommendation, where one query meets the whole
    catalogue. Results are bitwise equal to ``topk(queries, vectors, k, metric=metric)``,
    whatever the storage.

    Parameters
    ----------
    vectors : ndarray of float32, shape (n_items, dim)
        One row per item, C-contiguous, finite.
    metric : {"cosine", "dot"}, default "cosine"
        The similarity every search through this index uses.
    storage : {"float32", "float16", "int8"}, default "float32"
        How the packed copy holds the vectors. ``"float16"`` streams half the bytes per search:
        the best candidates are then re-scored exactly in float32 and the answer is certified
        by a rigorous error bound (a query that cannot be certified is searched again in
        float32), so ids and scores are still exactly those of ``"float32"``. ``"int8"``
        streams a quarter: 8-bit codes and one scale per item, the query rounded to 16 bits,
        exact integer dot products; every item whose error bound lets it reach the k-th best
        is re-scored exactly, so the answer is again exactly ``"float32"``'s (near-ties below
        int8's precision only cost more re-scoring, or a float32 scan). Searches of more than
        8 queries (float16) or 4 (int8) at once scan the float32 rows instead (compute-bound,
        they gain nothing from smaller panels); the packed copy is also the smaller in memory.
    num_threads : int, optional
        Threads for packing; as in :func:`topk`.
    copy : bool, default True
        Search a copy of ``vectors``. ``False`` keeps a reference instead (no second float32
        copy of a large catalogue): ``vectors`` must then be float32, C-contiguous, and never
        modified while the index is in use (later :meth:`add` calls copy into a buffer of the
        index's own).

    Attributes
    ----------
    metric, storage : str
    dim : int
    vectors : ndarray of float32, shape (n_items, dim)
        The indexed vectors (read-only).
    nbytes : int
        Memory held: the float32 vectors plus the packed copy.

    Notes
    -----
    Concurrent searches are safe, and so is :meth:`add` during searches: a search sees the
    items that were indexed when it started. An index pickles (its vectors; the packed copy is
    rebuilt when unpickled), so models that hold one can be sent to worker processes.

    Examples
    --------
    >>> import numpy as np, semrec
    >>> index = semrec.ItemIndex(np.eye(4, dtype=np.float32), metric="dot")
    >>> ids, scores = semrec.topk(np.array([1, 0.5, 0, 0], dtype=np.float32), index, k=2)
    >>> ids.tolist()
    [0, 1]
    >>> index.add(np.ones((1, 4), dtype=np.float32)).tolist()
    [4]
    >>> len(index)
    5
    """

    def __init__(
        self,
        vectors: np.ndarray,
        *,
        metric: str = "cosine",
        storage: str = "float32",
        num_threads: int | None = None,
        copy: bool = True,
    ) -> None:
        x, _ = check.as_float32_matrix(vectors, "vectors")
        self.metric = check.choice(metric, "metric", METRICS)
        self.storage = check.choice(storage, "storage", STORAGES)
        self.dim = int(x.shape[1])
        self._lock = threading.Lock()  # one add at a time
        self._prepared = core.PreparedItems(self.dim, self.metric, self.storage)
        copy = check.flag(copy, "copy")  # copy=None or "" would share the caller's array
        self._buffer = np.array(x, dtype=np.float32, order="C", copy=True) if copy else x
        self._peak = 0.0  # the largest |value|: bounds every dot product (see _dot_in_range)
        self._append(self._buffer, resolve_num_threads(num_threads))

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # The indexed rows (the caller's array itself when the index holds a reference, so a
        # pickle that also holds that array stores it once); packing is redone when unpickled.
        rows = self._buffer if self._buffer.shape[0] == len(self) else self.vectors
        return _unpickle_item_index, (rows, self.metric, self.storage)

    @property
    def vectors(self) -> np.ndarray:
        """The indexed vectors (n, dim), a read-only view of the float32 ones kept."""
        view = self._buffer[: len(self)]
        view.flags.writeable = False
        return view

    @property
    def nbytes(self) -> int:
        return int(self._buffer.nbytes + self._prepared.nbytes)

    def __len__(self) -> int:
        return int(self._prepared.size)  # the native count: in step even after a Ctrl-C

    def __repr__(self) -> str:
        return (
            f"ItemIndex(n_items={len(self)}, dim={self.dim}, metric={self.metric!r}, "
            f"storage={self.storage!r})"
        )

    def add(self, vectors: np.ndarray, *, num_threads: int | None = None) -> np.ndarray:
        """Index more items; returns their ids (``len(self)`` onwards).

        Parameters
        ----------
        vectors : ndarray of float32, shape (n_new, dim) or (dim,)
            Finite, C-contiguous; one vector may be passed as a 1-D array.
        num_threads : int, optional
            As in :func:`topk`.

        Returns
        -------
        ndarray of int32, shape (n_new,)

        Examples
        --------
        >>> import numpy as np, semrec
        >>> index = semrec.ItemIndex(np.eye(2, dtype=np.float32))
        >>> index.add(np.array([[1, 1], [1, -1]], dtype=np.float32)).tolist()
        [2, 3]
        """
        x, _ = check.as_float32_matrix(vectors, "vectors", allow_1d=True)
        if x.shape[1] != self.dim:
            raise ValueError(f"vectors must have dimension {self.dim}, got {x.shape[1]}")
        threads = resolve_num_threads(num_threads)
        with self._lock:
            n0 = len(self)
            n1 = n0 + x.shape[0]
            if n1 > np.iinfo(np.int32).max:
                raise ValueError(f"an ItemIndex holds at most 2**31 - 1 items, adding gives {n1}")
            if n1 > self._buffer.shape[0]:
                # A new buffer: searches running on the old one keep it alive and consistent.
                grown = np.empty((max(n1, self._buffer.shape[0] * 3 // 2), self.dim), np.float32)
                grown[:n0] = self._buffer[:n0]
                self._buffer = grown
            self._buffer[n0:n1] = x  # rows no running search reads
            self._append(self._buffer[n0:n1], threads)
        return np.arange(n0, n1, dtype=np.int32)

    def _append(self, rows: np.ndarray, threads: int) -> None:
        if self.metric == "dot":  # cosine rows are scaled by their own norm: no overflow
            self._peak = max(self._peak, _peak_of(rows))
        self._prepared.append(rows, threads)

    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        exclude: sp.csr_array | sp.csr_matrix | None = None,
        candidates: np.ndarray | sp.csr_array | sp.csr_matrix | None = None,
        num_threads: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``topk(queries, self, k, ...)``; see :func:`topk`.

        Examples
        --------
        >>> import numpy as np, semrec
        >>> index = semrec.ItemIndex(np.eye(3, dtype=np.float32))
        >>> index.search(np.array([0, 1, 0], dtype=np.float32), k=1)[0].tolist()
        [1]
        """
        return topk(
            queries, self, k, exclude=exclude, candidates=candidates, num_threads=num_threads
        )

    def expect_query(self, *, num_threads: int | None = None) -> None:
        """Say that one query follows soon: wakes the threads its search will use.

        A sleeping thread takes tens of microseconds to wake (about 0.1 ms in a virtual
        machine), a good part of one query over 20k items; woken while the caller does its own
        work (a click's bookkeeping), it is ready when the search starts. Optional, and results
        never depend on it: :func:`topk` (so the models' ``recommend``) calls it for a single
        query. Only an index of 3 MiB or more, searched with ``num_threads`` > 1, has threads
        to wake; a hint with no query after it keeps one awake for at most 0.3 ms (as does a
        search of the same index that follows the previous one within 0.5 ms: clicks back to
        back).

        Examples
        --------
        >>> import numpy as np, semrec
        >>> index = semrec.ItemIndex(np.eye(3, dtype=np.float32))
        >>> index.expect_query()
        >>> index.search(np.array([0, 1, 0], dtype=np.float32), k=1)[0].tolist()
        [1]
        """
        core.expect_query(self._prepared, resolve_num_threads(num_threads))


def _unpickle_item_index(rows: np.ndarray, metric: str, storage: str) -> ItemIndex:
    return ItemIndex(rows, metric=metric, storage=storage, copy=False)


def topk(
    queries: np.ndarray,
    items: np.ndarray | ItemIndex,
    k: int,
    *,
    metric: str | None = None,
    exclude: sp.csr_array | sp.csr_matrix | None = None,
    candidates: np.ndarray | sp.csr_array | sp.csr_matrix | None = None,
    num_threads: int | None = None,
    check_finite: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Find the ``k`` most similar items for every query, exactly.

    Parameters
    ----------
    queries : ndarray of float32, shape (n_queries, dim) or (dim,)
        Query vectors, C-contiguous. A single 1-D query gives 1-D results.
    items : ndarray of float32, shape (n_items, dim), ItemIndex, HNSWIndex or PQIndex
        Item vectors, C-contiguous; or an :class:`ItemIndex` (checked and packed once, the fast
        path for repeated searches), which gives bitwise the same results; or a
        :class:`semrec.HNSWIndex` or :class:`semrec.PQIndex` (approximate: it may miss some of
        the true top k, but every returned score is exact).
    k : int
        Number of results per query (>= 1). ``k`` larger than the number of eligible items is
        allowed: the rest of the row is padding.
    metric : {"cosine", "dot"}, optional
        ``"dot"`` is the inner product; ``"cosine"`` divides it by both norms (a zero vector
        scores 0 against everything; any finite magnitude works: vectors are rescaled by powers
        of two internally, so norms never overflow or underflow). For embeddings already
        L2-normalised, ``"dot"`` gives the same ranking and skips computing the norms.
        Default: ``"cosine"`` for a matrix, the index's metric for an :class:`ItemIndex` (any
        other value is an error).
    exclude : scipy.sparse CSR of shape (n_queries, n_items), optional
        Item ids never to return for each query (typically the items a user has already seen).
        Values are ignored; unsorted rows and duplicates are accepted. For a single query (1-D,
        or one row), a 1-D array of item ids does too (no sparse matrix to build: a click).
    candidates : 1-D int array, 2-D int array or scipy.sparse CSR, optional
        Restrict the search to these item ids: one list shared by all queries (1-D); or one
        list per query, as a CSR of shape (n_queries, n_items) or as a 2-D array of shape
        (n_queries, slots) whose rows hold ids in any order, ``-1`` marking an empty slot (what
        an approximate index proposes: no sparse matrix to build). Repeated ids count once.
        Returned ids are always ids into ``items``.
    num_threads : int, optional
        ``None`` uses :func:`semrec.get_num_threads`, ``0`` all cores. The result does not
        depend on it.
    check_finite : bool, default True
        Reject NaN and infinite inputs, and with ``"dot"`` vectors whose products could pass
        float32's range. ``False`` skips those passes over ``items`` (and ``queries``) when the
        caller vouches for them, e.g. a model's own checked factors (an :class:`ItemIndex` is
        checked once, at build, and its range check always runs).

    Returns
    -------
    ids : ndarray of int32, shape (n_queries, k)
        Item ids, best first; ties are broken by the lower id. Padding is ``-1``.
    scores : ndarray of float32, shape (n_queries, k)
        The matching scores; padding is ``-inf``.

    Raises
    ------
    TypeError
        Wrong dtype (only float32 is accepted, to avoid hidden copies) or container type.
    ValueError
        Wrong shape or layout, NaN/inf, ``"dot"`` scores past float32, ``k < 1``, unknown
        metric, malformed CSR, no items.
    IndexError
        A candidate or excluded id outside ``[0, n_items)``.

    Examples
    --------
    >>> import numpy as np, semrec
    >>> items = np.eye(4, dtype=np.float32)
    >>> ids, scores = semrec.topk(np.array([1, 0.5, 0, 0], dtype=np.float32), items, k=2)
    >>> ids.tolist()
    [0, 1]
    """
    finite = check.flag(check_finite, "check_finite")  # None or 0 would turn the checks off
    if not isinstance(items, np.ndarray | ItemIndex) and callable(getattr(items, "search", None)):
        # An approximate index (HNSWIndex, PQIndex): it searches, then re-scores exactly here.
        if metric is not None and metric != items.metric:
            raise ValueError(f"metric={metric!r} differs from the index's metric {items.metric!r}")
        return items.search(
            queries, k, exclude=exclude, candidates=candidates, num_threads=num_threads
        )
    threads: int | None = None
    if isinstance(items, ItemIndex) and np.shape(queries)[:-1] in ((), (1,)):
        threads = resolve_num_threads(num_threads)
        core.expect_query(items._prepared, threads)  # helpers woken during the checks below
    q, single = check.as_float32_matrix(queries, "queries", allow_1d=True, check_finite=finite)
    index = items if isinstance(items, ItemIndex) else None
    if index is not None:
        if metric is not None and metric != index.metric:
            raise ValueError(
                f"metric={metric!r} differs from the index's metric {index.metric!r}; build an "
                "ItemIndex with that metric (or leave metric unset)"
            )
        metric = index.metric
        x = index.vectors  # a snapshot: items added during this search are not searched
    else:
        x, _ = check.as_float32_matrix(items, "items", check_finite=finite)
        metric = "cosine" if metric is None else check.choice(metric, "metric", METRICS)
    threads = resolve_num_threads(num_threads) if threads is None else threads
    if x.shape[0] == 0:
        raise ValueError("items is empty (0 rows); there is nothing to search")
    k = check.result_width(k, q.shape[0], x.shape[0])  # a huge k: refused, not allocated
    if metric == "dot" and (index is not None or finite):  # |x| (one BLAS pass) bounds |x_ij|
        _dot_in_range(q, x, index._peak if index is not None else float(np.vdot(x, x)) ** 0.5)
    if q.shape[1] != x.shape[1]:
        raise ValueError(
            f"queries have dimension {q.shape[1]} but items have dimension {x.shape[1]}"
        )
    shape = (q.shape[0], x.shape[0])
    ex: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
    if exclude is not None:
        ex = check.exclusions(exclude, "exclude", shape, q.shape[0] == 1)

    if candidates is None:
        if index is not None:
            ids, scores = core.topk_prepared(q, index._prepared, x, k, *ex, threads)
        else:
            ids, scores = core.topk(q, x, k, metric, *ex, threads)
    elif sp.issparse(candidates) or candidate_lists.is_padded(candidates):
        cand = candidate_lists.structure(candidates, shape)
        if index is not None:
            ids, scores = core.topk_candidates_prepared(
                q, index._prepared, x, *cand, k, *ex, threads
            )
        else:
            ids, scores = core.topk_candidates(q, x, *cand, k, metric, *ex, threads)
    else:
        ids, scores = candidate_lists.topk_among_shared(
            q, x, k, metric, candidates, exclude, ex, threads
        )
    return (ids[0], scores[0]) if single else (ids, scores)


def topk_of_proposals(
    queries: np.ndarray,
    index: ItemIndex,
    proposed: np.ndarray,
    k: int,
    excluded: tuple[np.ndarray, np.ndarray] | None,
    num_threads: int,
    *,
    queries_checked: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The exact top-k of each query among the ids an approximate index proposed for it: what
    ``topk(queries, index, k, candidates=proposed, exclude=...)`` returns, for arguments a
    search already checked (float32 queries of the index's dimension, ``proposed`` a (queries,
    slots) id array with -1 for an empty slot, ``excluded`` the checked (indptr, ids) of the
    exclusions). It skips topk's full checks (a click pays for them once, in the index's
    search) and keeps only the cheap ones: types, shapes, the ids' range, finite queries.

    ``queries_checked=True`` says the caller has already checked the queries and ``k`` as
    :func:`topk` does (2-D C-contiguous finite float32 of the index's dimension, ``k`` an int
    >= 1), as semrec's approximate indexes do in their search: right after a scan of a large
    catalogue every NumPy call runs on cold caches, so a repeated check costs more than the
    re-scoring. The ids' range is still checked (in the native call when they are int32).

    Examples
    --------
    >>> import numpy as np, semrec
    >>> from semrec.similarity import topk_of_proposals
    >>> index = semrec.ItemIndex(np.eye(4, dtype=np.float32), metric="dot")
    >>> q = np.array([[0.1, 0.2, 0.9, 0.5]], dtype=np.float32)
    >>> topk_of_proposals(q, index, np.array([[3, 0, -1]]), 2, None, 1)[0].tolist()
    [[3, 0]]
    """
    if not isinstance(index, ItemIndex):
        raise TypeError(f"index must be a semrec.ItemIndex, got {type(index).__name__}")
    if queries_checked:
        q = queries
    else:
        q, _ = check.as_float32_matrix(queries, "queries")  # small: the finiteness check is cheap
        if q.shape[1] != index.dim:
            raise ValueError(f"queries have dimension {q.shape[1]}, the index {index.dim}")
        k = check.result_width(k, q.shape[0], len(index))
    ids = proposed if isinstance(proposed, np.ndarray) else np.asarray(proposed)
    if ids.ndim != 2 or ids.shape[0] != q.shape[0] or ids.dtype.kind not in "iu":
        raise ValueError(
            "proposed must be a 2-D integer array with a row per query, got dtype "
            f"{ids.dtype} and shape {ids.shape} for {q.shape[0]} queries"
        )
    # int32 ids are range-checked by the native call; wider ones here, before the narrowing cast
    if ids.dtype != np.int32 and ids.size and (ids.min() < -1 or ids.max() >= len(index)):
        raise IndexError(f"proposed holds ids outside [-1, {len(index)})")
    ex = _rescoring_checks(q, index, excluded)
    try:
        lists = core.padded_lists(np.ascontiguousarray(ids, dtype=np.int32), len(index))
    except IndexError:
        raise IndexError(f"proposed holds ids outside [-1, {len(index)})") from None
    return core.topk_candidates_prepared(
        q, index._prepared, index.vectors, *lists, k, *ex, resolve_num_threads(num_threads)
    )


def topk_of_native_proposals(
    queries: np.ndarray,
    index: ItemIndex,
    excluded: tuple[np.ndarray, np.ndarray] | None,
    propose_and_rescore: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`topk_of_proposals` with ``queries_checked=True``, for an approximate pass that
    proposes and re-scores in one native call (:class:`semrec.PQIndex`), so that no Python runs
    between the two: ``propose_and_rescore(items, rows, exclude_indptr, exclude_ids)`` gets the
    index's packed items (the native object the ``topk_candidates_prepared`` kernel takes), its
    rows and the checked exclusions (``None, None`` without) and returns (ids, scores) as
    :func:`topk` does. The dot products' range is checked here, as :func:`topk` does.

    Examples
    --------
    >>> import numpy as np, semrec
    >>> from semrec._native import core
    >>> from semrec.similarity import topk_of_native_proposals
    >>> index = semrec.ItemIndex(np.eye(4, dtype=np.float32), metric="dot")
    >>> q = np.array([[0.1, 0.2, 0.9, 0.5]], dtype=np.float32)
    >>> proposed = (np.array([0, 2]), np.array([0, 3], dtype=np.int32))  # one query: items 0, 3
    >>> def rescore(items, rows, *exclude):
    ...     return core.topk_candidates_prepared(q, items, rows, *proposed, 2, *exclude, 1)
    >>> topk_of_native_proposals(q, index, None, rescore)[0].tolist()
    [[3, 0]]
    """
    ex = _rescoring_checks(queries, index, excluded)
    return propose_and_rescore(index._prepared, index.vectors, *ex)


def topk_of_model_query(
    query: np.ndarray, index: ItemIndex, k: int, seen: np.ndarray | None, num_threads: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """``topk(query, index, k, exclude=seen, num_threads=num_threads)`` for the arguments a
    model builds for one user: a (1, dim) C-contiguous float32 query of the index's dimension,
    ``k`` checked (an int >= 1), ``seen`` the user's integer item ids (or None). It keeps the
    checks that cost a few array operations (finite query, dot products within float32's range,
    seen ids sorted and in range) and skips topk's others: a click runs this right after a
    scan that left the caches cold, where each check costs microseconds.

    Examples
    --------
    >>> import numpy as np, semrec
    >>> from semrec.similarity import topk_of_model_query
    >>> index = semrec.ItemIndex(np.eye(3, dtype=np.float32))  # cosine
    >>> profile = np.array([[0.2, 0.9, 0.5]], dtype=np.float32)
    >>> ids, scores = topk_of_model_query(profile, index, 2, np.array([1]), None)
    >>> ids.tolist()  # item 1, seen, is left out
    [[2, 0]]
    """
    threads = resolve_num_threads(num_threads)
    core.expect_query(index._prepared, threads)  # the helpers wake during the checks below
    # One BLAS call: |q|^2 is finite for a finite q of ordinary size, and |q| >= its peak is
    # enough for the range check (two reductions for the exact peak cost a cold click ~8 us).
    squares = float(np.vdot(query, query))
    bound = squares**0.5 if squares <= check.FLOAT32_MAX else _peak_of(query)  # >= every |q_i|
    if not bound <= check.FLOAT32_MAX:  # NaN fails the comparison too
        raise ValueError(
            "the user's query vector holds NaN or inf; refit the model or check the inputs "
            "its profile came from (item vectors, interaction weights)"
        )
    if index.metric == "dot":
        _dot_in_range(query, index.vectors, index._peak, bound)
    ex: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
    if seen is not None and seen.size:
        if seen.size > 1 and not (seen[1:] >= seen[:-1]).all():  # the kernel merges sorted ids
            seen = np.sort(seen)
        if seen[0] < 0 or seen[-1] >= len(index):  # sorted: the ends bound every id
            raise IndexError(f"seen item ids outside [0, {len(index)})")
        ex = (np.array([0, seen.size], dtype=np.int64), np.ascontiguousarray(seen, np.int32))
    return core.topk_prepared(query, index._prepared, index.vectors, k, *ex, threads)


def _rescoring_checks(
    queries: np.ndarray, index: ItemIndex, excluded: tuple[np.ndarray, np.ndarray] | None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The checks both re-scoring entries share: the dot products' range (as :func:`topk`
    checks it), and the exclusions' (indptr, ids) (as check.exclusions returns them), returned
    as the kernels take them; (None, None) without."""
    if index.metric == "dot":
        _dot_in_range(queries, index.vectors, index._peak)
    n_queries, n_items = queries.shape[0], len(index)
    if excluded is None:
        return None, None
    indptr, excluded_ids = (np.asarray(a) for a in excluded)
    if excluded_ids.size and (excluded_ids.min() < 0 or excluded_ids.max() >= n_items):
        raise IndexError(f"excluded holds ids outside [0, {n_items})")
    if indptr.shape != (n_queries + 1,) or indptr[-1] != excluded_ids.size:
        raise ValueError("excluded must be (indptr, ids) with an indptr entry per query + 1")
    return np.ascontiguousarray(indptr, np.int64), np.ascontiguousarray(excluded_ids, np.int32)


def _peak_of(x: np.ndarray) -> float:
    """The largest |value| of ``x`` (two passes, no temporary array)."""
    return float(max(-x.min(), x.max())) if x.size else 0.0


def _dot_in_range(q: np.ndarray, x: np.ndarray, x_peak: float, q_peak: float | None = None) -> None:
    """Refuse dot products that can overflow float32 (scores of inf, or NaN when an inf meets
    a -inf, rank wrongly or drop items): every partial sum of q . x is at most |q| |x|."""
    q_peak = _peak_of(q) if q_peak is None else q_peak
    if q_peak * x_peak * q.shape[1] <= check.FLOAT32_MAX / 4:
        return  # the cheap bound holds (always, for vectors of ordinary magnitude)
    q_norm = float(np.sqrt(np.square(q, dtype=np.float64).sum(axis=1)).max())
    x_norm = max(
        float(np.sqrt(np.square(x[s : s + 65536], dtype=np.float64).sum(axis=1)).max())
        for s in range(0, x.shape[0], 65536)
    )
    if q_norm * x_norm > check.FLOAT32_MAX / 4:
        raise ValueError(
            f"dot products of these queries and items can reach {q_norm * x_norm:.3g}, beyond "
            "float32's range (3.4e38): their scores would overflow and rank wrongly; divide the "
            "queries or the items by a common factor (the ranking does not change)"
        )


def item_neighbours(
    embeddings: np.ndarray,
    k: int,
    *,
    metric: str = "cosine",
    num_threads: int | None = None,
) -> sp.csr_array:
    """Build the k-nearest-neighbour graph of a set of items.

    Parameters
    ----------
    embeddings : ndarray of float32, shape (n_items, dim)
        One row per item, C-contiguous.
    k : int
        Neighbours kept per item (an item is never its own neighbour). Rows hold
        ``min(k, n_items - 1)`` entries.
    metric : {"cosine", "dot"}
        As in :func:`topk`.
    num_threads : int, optional
        As in :func:`topk`.

    Returns
    -------
    scipy.sparse.csr_array of float32, shape (n_items, n_items)
        Row ``i`` holds the similarity of item ``i`` to each of its neighbours, columns
        sorted by id. Similarities of 0 are stored explicitly, so every row keeps its
        neighbours.

    Examples
    --------
    >>> import numpy as np, semrec
    >>> emb = np.array([[1, 0], [0.9, 0.1], [0, 1]], dtype=np.float32)
    >>> graph = semrec.item_neighbours(emb, k=1)
    >>> graph.indices.tolist()
    [1, 0, 1]
    """
    x, _ = check.as_float32_matrix(embeddings, "embeddings")
    k = check.positive_int(k, "k")
    n = x.shape[0]
    if n == 0:
        raise ValueError("embeddings is empty (0 rows)")
    diagonal = sp.csr_array(
        (np.ones(n, dtype=np.float32), np.arange(n, dtype=np.int32), np.arange(n + 1)),
        shape=(n, n),
    )
    if metric == "dot":  # checked here once: topk's check_finite=False skips it
        _dot_in_range(x, x, float(np.vdot(x, x)) ** 0.5)
    ids, scores = topk(
        x, x, k, metric=metric, exclude=diagonal, num_threads=num_threads, check_finite=False
    )
    keep = ids >= 0
    rows = np.repeat(np.arange(n), keep.sum(axis=1))
    graph = sp.csr_array((scores[keep], (rows, ids[keep])), shape=(n, n), dtype=np.float32)
    graph.sort_indices()
    return graph
