"""Neighbourhood collaborative filtering: item- and user-based kNN (C++: ``cpp/semrec/knn.cpp``).

Both models compare the rows of one orientation of the interaction matrix by cosine
similarity, keep each row's top-``neighbours`` most similar rows as a sparse graph, and score
through that graph:

* :class:`ItemKNN` compares items (their columns of users x items);
  ``score(u, i) = sum_j r[u, j] * sim(j, i)`` over the items ``j`` in the user's history, where
  ``sim(j, ·)`` is row ``j`` of the item graph (its ``neighbours`` best items).
* :class:`UserKNN` compares users (their rows);
  ``score(u, i) = sum_v sim(u, v) * r[v, i]`` over the user's ``neighbours`` best users ``v``.

The compared vectors may first be re-weighted. The entities being compared are the
"documents" (items for ItemKNN, users for UserKNN) and the other side are the "terms"; with ``N``
documents, ``df[t]`` the number of documents term ``t`` appears in, ``len[d]`` the sum of
document ``d``'s weights and ``avg_len`` its mean over all documents:

* ``"none"``: ``w = x``;
* ``"tfidf"``: ``w = sqrt(x) * log(N / df[t])``;
* ``"bm25"``: ``w = x (k1 + 1) / (x + k1 (1 - b + b len[d] / avg_len)) * idf[t]`` with
  ``idf[t] = log(1 + (N - df[t] + 0.5) / (df[t] + 0.5))``.

Similarity with shrinkage ``s`` is ``dot(a, b) / (|a| |b| + s)``; only positive similarities are
kept, the row itself never, ties go to the lower id.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import scipy.sparse as sp
from tqdm import tqdm

from semrec import _validation as check
from semrec._base import Recommender
from semrec._native import core
from semrec._threads import resolve_num_threads
from semrec.explain import explanation, scalar_id

logger = logging.getLogger("semrec")

WEIGHTINGS = ("none", "tfidf", "bm25")


# ---------------------------------------------------------------------------------------------
# Sparse helpers


def _kernel_csr(m: Any) -> sp.csr_array:
    """A canonical float32 CSR copy: sorted rows, duplicates summed, no explicit zeros."""
    out = sp.csr_array(m, dtype=np.float32, copy=True)
    out.sum_duplicates()
    out.eliminate_zeros()
    return out


def _arrays(m: sp.csr_array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The kernel's view of a CSR: (int64 indptr, int32 indices, float32 data), contiguous."""
    return (
        np.ascontiguousarray(m.indptr, dtype=np.int64),
        np.ascontiguousarray(m.indices, dtype=np.int32),
        np.ascontiguousarray(m.data, dtype=np.float32),
    )


def _transpose(m: sp.csr_array, threads: int = 1) -> sp.csr_array:
    """The transpose as CSR, canonical (rows sorted, no duplicates) when ``m`` is: the kernel's
    parallel counting sort writes each row in input-row order (scipy's serial one takes
    seconds at scale)."""
    indptr, indices, data = core.csr_transpose(*_arrays(m), m.shape[1], threads)
    out = sp.csr_array((m.shape[1], m.shape[0]), dtype=np.float32)
    out.indptr, out.indices, out.data = indptr, indices, data  # no constructor: no re-check
    out.has_sorted_indices = True  # rows are filled in input-row order
    return out


def _row_sums(indptr: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = np.zeros(indptr.size - 1)
    filled = np.diff(indptr) > 0
    if values.size:
        # Segments start at the non-empty rows only, so each sums exactly its own row.
        out[filled] = np.add.reduceat(values, indptr[:-1][filled])
    return out


def _row_norms(m: sp.csr_array) -> np.ndarray:
    return np.sqrt(_row_sums(m.indptr, np.square(m.data, dtype=np.float64))).astype(np.float32)


def _rows(m: sp.csr_array, ids: np.ndarray) -> sp.csr_array:
    """Rows ``ids`` of a canonical ``m``, in that order."""
    return sp.csr_array(m[ids])


class _Targets:
    """Documents prepared as the kernel's targets from the transposed (terms x documents)
    weighted matrix: documents renumbered most frequent first, which keeps the hot part of the
    kernel's accumulator small (power-law data put most sums on few targets). The kernel maps
    the numbers back, so results are in the original ids."""

    def __init__(self, docs_t: sp.csr_array, norms: np.ndarray, counts: np.ndarray) -> None:
        self.order = np.argsort(-counts, kind="stable").astype(np.int32)
        self.rank = np.empty_like(self.order)
        self.rank[self.order] = np.arange(self.order.size, dtype=np.int32)
        # Renumbering leaves each row's columns unsorted; the kernel does not need them sorted.
        self.matrix = sp.csr_array(
            (docs_t.data, self.rank[docs_t.indices], docs_t.indptr), shape=docs_t.shape
        )
        self.norms = np.ascontiguousarray(norms[self.order])

    def transposed_docs(self) -> sp.csr_array:
        """The terms x documents matrix in the original document ids (rows sorted)."""
        out = sp.csr_array(
            (self.matrix.data, self.order[self.matrix.indices], self.matrix.indptr),
            shape=self.matrix.shape,
        )
        out.sort_indices()
        return out


def _padded(graph: sp.csr_array, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k largest values, best first (ties by lower id), padded with -1 / -inf."""
    n = graph.shape[0]
    ids = np.full((n, k), -1, dtype=np.int32)
    scores = np.full((n, k), -np.inf, dtype=np.float32)
    for r in range(n):
        lo, hi = graph.indptr[r], graph.indptr[r + 1]
        cols, vals = graph.indices[lo:hi], graph.data[lo:hi]
        order = np.lexsort((cols, -vals))[:k]
        ids[r, : order.size] = cols[order]
        scores[r, : order.size] = vals[order]
    return ids, scores


def _replace_rows(
    m: sp.csr_array, ids: np.ndarray, rows: sp.csr_array, n_cols: int
) -> sp.csr_array:
    """``m`` with rows ``ids`` replaced by ``rows``; ids ``len(m), len(m)+1, ...`` append."""
    n_old = m.shape[0]
    total = max(n_old, int(ids.max()) + 1) if ids.size else n_old
    stacked = sp.vstack(
        [
            sp.csr_array((m.data, m.indices, m.indptr), shape=(n_old, n_cols)),
            sp.csr_array((rows.data, rows.indices, rows.indptr), shape=(rows.shape[0], n_cols)),
        ],
        format="csr",
    )
    source = np.arange(total)
    source[ids] = n_old + np.arange(ids.size)
    # Explicit zeros stay: in interactions they are seen items.
    return check.canonical_csr(stacked[source], "rows", allow_empty=True)


# ---------------------------------------------------------------------------------------------
# Weighting


def _weight_stats(
    doc: np.ndarray, term: np.ndarray, values: np.ndarray, n_docs: int, n_terms: int, weighting: str
) -> tuple[np.ndarray | None, float, np.ndarray | None]:
    """Per-term idf, the mean document length and each document's length, from the entries."""
    if weighting == "none":
        return None, 0.0, None
    lengths = np.bincount(doc, weights=values, minlength=n_docs)
    df = np.bincount(term, minlength=n_terms).astype(np.float64)
    if weighting == "tfidf":
        with np.errstate(divide="ignore"):
            idf = np.where(df > 0, np.log(n_docs / np.maximum(df, 1.0)), 0.0)
    else:
        idf = np.log1p((n_docs - df + 0.5) / (df + 0.5))
    return idf, float(lengths.sum() / n_docs), lengths


def _entry_weights(
    x: np.ndarray,
    doc: np.ndarray,
    term: np.ndarray,
    lengths: np.ndarray,
    weighting: str,
    idf: np.ndarray,
    avg_len: float,
    k1: float,
    b: float,
) -> np.ndarray:
    """The weight of each entry (value x of document ``doc`` and term ``term``), float32."""
    x = x.astype(np.float64)
    if weighting == "tfidf":
        return (np.sqrt(x) * idf[term]).astype(np.float32)
    rel = lengths[doc] / (avg_len if avg_len > 0 else 1.0)
    return (x * (k1 + 1.0) / (x + k1 * (1.0 - b + b * rel)) * idf[term]).astype(np.float32)


def _apply_weights(
    docs: sp.csr_array,
    weighting: str,
    idf: np.ndarray | None,
    avg_len: float,
    k1: float,
    b: float,
    docs_t: sp.csr_array | None = None,
) -> tuple[sp.csr_array, sp.csr_array | None]:
    """Re-weight a documents x terms matrix (and its transpose, when given) with the fitted
    term statistics; weights are per entry, so both layouts get them without a transpose."""
    if weighting == "none":
        return docs, docs_t
    lengths = _row_sums(docs.indptr, docs.data.astype(np.float64))
    rows = np.repeat(np.arange(docs.shape[0]), np.diff(docs.indptr))
    stats = (lengths, weighting, idf, avg_len, k1, b)
    w = _entry_weights(docs.data, rows, docs.indices, *stats)
    out = sp.csr_array((w, docs.indices, docs.indptr), shape=docs.shape)
    if docs_t is None:
        return out, None
    rows_t = np.repeat(np.arange(docs_t.shape[0]), np.diff(docs_t.indptr))
    w_t = _entry_weights(docs_t.data, docs_t.indices, rows_t, *stats)
    return out, sp.csr_array((w_t, docs_t.indices, docs_t.indptr), shape=docs_t.shape)


# ---------------------------------------------------------------------------------------------
# Models


class _NeighbourCF(Recommender):
    """What ItemKNN and UserKNN share; ``_KIND`` names the compared entities."""

    _KIND: ClassVar[str] = ""
    _EXPLAINED_BY: ClassVar[str] = "item"
    _PARAMS = (
        "neighbours",
        "weighting",
        "shrinkage",
        "bm25_k1",
        "bm25_b",
        "num_threads",
        "show_progress",
    )
    _FORMAT_VERSION = 1

    def __init__(
        self,
        neighbours: int = 100,
        *,
        weighting: str = "none",
        shrinkage: float = 0.0,
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
        num_threads: int | None = None,
        show_progress: bool = True,
    ) -> None:
        self.neighbours = neighbours
        self.weighting = weighting
        self.shrinkage = shrinkage
        self.bm25_k1 = bm25_k1
        self.bm25_b = bm25_b
        self.num_threads = num_threads
        self.show_progress = show_progress

    def _check_params(self) -> None:
        check.positive_int(self.neighbours, "neighbours")
        check.choice(self.weighting, "weighting", WEIGHTINGS)
        for name in ("shrinkage", "bm25_k1", "bm25_b"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                raise TypeError(f"{name} must be a number, got {type(value).__name__}")
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if self.bm25_b > 1:
            raise ValueError(f"bm25_b must be in [0, 1], got {self.bm25_b}")
        resolve_num_threads(self.num_threads)

    # -- orientation -----------------------------------------------------------------------
    def _layouts(self, train: sp.csr_array) -> tuple[sp.csr_array, sp.csr_array]:
        """The weighted documents x terms matrix and its transpose (weights are per entry, so
        they are computed on the users x items layout, then transposed once)."""
        n_users, n_items = train.shape
        # Each entry's row; only the weightings need it (50M int64 at scale).
        rows = (
            np.repeat(np.arange(n_users), np.diff(train.indptr))
            if self.weighting != "none"
            else None
        )
        if self._KIND == "item":
            doc, term, n_docs, n_terms = train.indices, rows, n_items, n_users
        else:
            doc, term, n_docs, n_terms = rows, train.indices, n_users, n_items
        self._idf, self._avg_len, lengths = _weight_stats(
            doc, term, train.data, n_docs, n_terms, self.weighting
        )
        weighted = train
        if self.weighting != "none":
            w = _entry_weights(
                train.data,
                doc,
                term,
                lengths,
                self.weighting,
                self._idf,
                self._avg_len,
                self.bm25_k1,
                self.bm25_b,
            )
            weighted = sp.csr_array((w, train.indices, train.indptr), shape=train.shape)
        other = _transpose(weighted, resolve_num_threads(self.num_threads))
        return (other, weighted) if self._KIND == "item" else (weighted, other)

    def _weigh(
        self, docs: sp.csr_array, docs_t: sp.csr_array | None = None
    ) -> tuple[sp.csr_array, sp.csr_array | None]:
        return _apply_weights(
            docs, self.weighting, self._idf, self._avg_len, self.bm25_k1, self.bm25_b, docs_t
        )

    # -- fit ---------------------------------------------------------------------------------
    def fit(self, interactions: sp.csr_array | sp.csr_matrix) -> _NeighbourCF:
        """Build the neighbour graph from a users x items interaction matrix.

        Parameters
        ----------
        interactions : scipy.sparse CSR, shape (n_users, n_items)
            Non-negative weights (counts, ratings, confidences); explicit zeros are dropped and
            duplicates summed.

        Returns
        -------
        self

        Raises
        ------
        TypeError, ValueError, IndexError
            Not a CSR matrix, empty, NaN/inf or negative weights, malformed structure, or bad
            hyperparameters.
        """
        self._check_params()
        train = check.interactions(interactions, "interactions", nonnegative=True)
        threads = resolve_num_threads(self.num_threads)
        # Every stored entry is seen (interactions_); the graph learns from non-zero weights.
        weighted, weighted_t = self._layouts(check.without_zeros(train))
        norms = _row_norms(weighted)
        targets = _Targets(weighted_t, norms, np.diff(weighted.indptr))
        n = weighted.shape[0]
        what = "items" if self._KIND == "item" else "users"
        with tqdm(
            total=n, desc=f"{type(self).__name__}", unit=what, disable=not self.show_progress
        ) as bar:
            # One kernel call (the targets are packed once); it reports rows done (heaviest
            # rows first, so the bar speeds up towards the end).
            def report(done: int) -> None:
                bar.update(done - bar.n)

            me = np.arange(n, dtype=np.int32)
            self.similarity_ = _graph_rows(
                weighted, 0, n, targets, norms, self, threads, self_ids=me,
                progress=report if self.show_progress else None,
            )  # fmt: skip
        self.interactions_ = train
        self._weighted, self._norms, self._targets = weighted, norms, targets
        self._term_side = None
        logger.debug("%s: %d x %d graph, %d edges", type(self).__name__, n, n, self.similarity_.nnz)
        return self

    # -- scoring -----------------------------------------------------------------------------
    def _history(self, users: np.ndarray) -> sp.csr_array:
        raise NotImplementedError

    def _through(self) -> sp.csr_array:
        """The matrix a history row is multiplied with to score every item."""
        raise NotImplementedError

    def _score_rows(self, users: np.ndarray) -> np.ndarray:
        return np.asarray((self._history(users) @ self._through()).toarray(), dtype=np.float32)

    def recommend(
        self,
        users: int | np.ndarray,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        items: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items for each user, best first (see :meth:`Recommender.recommend`).

        Scored in C++ without forming dense score rows; items no neighbour reaches score 0 and
        come after every positive score, by increasing id.

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> r = sp.csr_array(np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1]], dtype=np.float32))
        >>> semrec.ItemKNN(2, show_progress=False).fit(r).recommend(0, k=1)[0]
        array([2], dtype=int32)
        """
        u, scalar = self._users(users)
        k = check.positive_int(k, "k")
        candidates = None
        if items is not None:
            candidates = np.unique(check.item_ids(items, "items", self.n_items_)).astype(np.int32)
        history = self._history(u)
        through = self._through()
        exclude = None
        if exclude_seen:
            exclude = history if self._KIND == "item" else _rows(self.interactions_, u)
        ex_indptr, ex_indices, _ = (None, None, None) if exclude is None else _arrays(exclude)
        ids, scores = core.knn_topk(
            *_arrays(check.without_zeros(history)),  # a seen 0 reaches no neighbour
            *_arrays(through),
            self.n_items_,
            k,
            ex_indptr,
            ex_indices,
            candidates,
            resolve_num_threads(self.num_threads),
        )
        return (ids[0], scores[0]) if scalar else (ids, scores)

    # -- neighbours ----------------------------------------------------------------------------
    def _terms(self) -> tuple[sp.csr_array, np.ndarray, _Targets]:
        """The other side (terms x documents), its norms and its kernel targets; built once."""
        if self._term_side is None:
            terms = self._targets.transposed_docs()
            norms = _row_norms(terms)
            self._term_side = (terms, norms, _Targets(self._weighted, norms, np.diff(terms.indptr)))
        return self._term_side

    def _similar(self, kind: str, ids: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        k = check.positive_int(k, "k")
        if kind == self._KIND:
            n = self.similarity_.shape[0]
            q, scalar = check.index_array(ids, f"{kind}s", n, kind)
            out = _padded(self.similarity_[q], k)
        else:
            # The other side's vectors are the columns of the weighted document matrix.
            terms, norms, targets = self._terms()
            q, scalar = check.index_array(ids, f"{kind}s", terms.shape[0], kind)
            graph = _graph_rows(
                _rows(terms, q),
                0,
                q.size,
                targets,
                norms[q],
                _Settings(k, self.shrinkage),
                resolve_num_threads(self.num_threads),
                self_ids=q.astype(np.int32),
            )
            out = _padded(graph, k)
        return (out[0][0], out[1][0]) if scalar else out

    def similar_items(self, items: int | np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items most similar to each given item (itself excluded), best first.

        ItemKNN reads them from its graph (at most ``neighbours`` per item; the rest is padded
        with -1 / -inf). UserKNN computes, with the same weighting and shrinkage, the cosine
        between item columns of its weighted users x items matrix (as fitted).

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> r = sp.csr_array(np.array([[1, 1, 0], [1, 1, 1], [0, 0, 1]], dtype=np.float32))
        >>> semrec.ItemKNN(2, show_progress=False).fit(r).similar_items(0, k=1)[0]
        array([1], dtype=int32)
        """
        return self._similar("item", items, k)

    def similar_users(self, users: int | np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` users most similar to each given user (itself excluded), best first.

        UserKNN reads them from its graph (users as fitted or last folded in); ItemKNN computes
        the cosine between the user columns of its weighted items x users matrix (as fitted).

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> r = sp.csr_array(np.array([[1, 1, 0], [1, 1, 1], [0, 0, 1]], dtype=np.float32))
        >>> semrec.UserKNN(2, show_progress=False).fit(r).similar_users(0, k=1)[0]
        array([1], dtype=int32)
        """
        return self._similar("user", users, k)

    # -- real time ---------------------------------------------------------------------------
    def _check_history(self, history: Any) -> sp.csr_array:
        self._check_fitted()
        check.require_csr(history, "history", f"(n_users, {self.n_items_})")
        if history.ndim != 2 or history.shape[1] != self.n_items_:
            raise ValueError(
                f"history must have shape (n_users, {self.n_items_}) (one row per user, one "
                f"column per item of the model), got {history.shape}"
            )
        return check.canonical_csr(history, "history", nonnegative=True, allow_empty=True)

    def _check_new_ids(self, users: Any, n_rows: int) -> np.ndarray:
        ids = np.asarray(users)
        if ids.ndim != 1 or ids.size != n_rows:
            raise ValueError(
                f"users must be a 1-D array with one id per history row ({n_rows}), got "
                f"shape {ids.shape}"
            )
        if ids.size and not np.issubdtype(ids.dtype, np.integer):
            raise TypeError(f"users must hold integer user ids, got dtype {ids.dtype}")
        n = self.n_users_
        new = np.sort(ids[ids >= n])
        if (
            (ids < 0).any()
            or np.unique(ids).size != ids.size
            or not np.array_equal(new, np.arange(n, n + new.size))
        ):
            raise IndexError(
                f"users must be distinct existing ids in [0, {n}) or the next new ids "
                f"{n}, {n + 1}, ...; got {ids.tolist()}"
            )
        return ids.astype(np.int64)

    def _scores_of(self, history: sp.csr_array, users: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError

    def fold_in(
        self, history: sp.csr_array | sp.csr_matrix, *, users: np.ndarray | None = None
    ) -> np.ndarray:
        """Scores of every item for users described only by their interaction history.

        Parameters
        ----------
        history : scipy.sparse CSR, shape (n, n_items)
            One row per user: that user's full history (non-negative weights, as in ``fit``).
        users : 1-D array of int, optional
            Also store these histories in the model under these ids: an existing id replaces
            that user's history, ids ``n_users_, n_users_ + 1, ...`` append new users, who can
            then be passed to ``recommend``. Without it the model is unchanged.

        Returns
        -------
        ndarray of float32, shape (n, n_items)
            What ``score`` gives for a user with this history: ItemKNN ``history @ graph``;
            UserKNN ``neighbours(history) @ interactions``, the neighbours found among the
            fitted users with the fitted weighting statistics.

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> r = sp.csr_array(np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1]], dtype=np.float32))
        >>> model = semrec.ItemKNN(2, show_progress=False).fit(r)
        >>> model.fold_in(sp.csr_array(np.array([[0, 0, 1]], dtype=np.float32)), users=[3]).shape
        (1, 3)
        """
        rows = self._check_history(history)
        ids = None if users is None else self._check_new_ids(users, rows.shape[0])
        return self._scores_of(rows, ids)

    def update(self, user: int, item: int, weight: float = 1.0) -> None:
        """Add ``weight`` to one interaction; the user's next recommendations reflect it at once.

        ``user`` may be ``n_users_`` to start a new user. The change costs one row (plus, for
        UserKNN, recomputing that user's neighbours); the graph of the other users is not
        rebuilt until the next ``fit``.

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> r = sp.csr_array(np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1]], dtype=np.float32))
        >>> model = semrec.ItemKNN(2, show_progress=False).fit(r)
        >>> model.update(0, 2); model.interactions_[0, 2]
        np.float32(1.0)
        """
        self._check_fitted()
        (u,), _ = check.index_array(user, "user", self.n_users_ + 1, "user")
        (i,), _ = check.index_array(item, "item", self.n_items_, "item")
        if isinstance(weight, bool) or not isinstance(weight, int | float | np.number):
            raise TypeError(f"weight must be a number, got {type(weight).__name__}")
        if not math.isfinite(weight):
            raise ValueError(f"weight must be finite, got {weight}")
        old = self.interactions_[[u]] if u < self.n_users_ else sp.csr_array((1, self.n_items_))
        cols = np.r_[old.indices, i].astype(np.int32)  # sparse: a seen 0 stays an entry
        values = np.r_[old.data, np.float32(weight)].astype(np.float64)
        row = check.canonical_csr(
            sp.csr_array((values, cols, np.array([0, cols.size])), shape=(1, self.n_items_))
        )
        total = float(row[0, i])
        if total < 0:
            raise ValueError(
                f"update would make interaction ({u}, {i}) negative ({total}); weights must "
                "stay >= 0"
            )
        self.fold_in(row, users=[u])

    # -- explanations ----------------------------------------------------------------------------
    def explain(self, user: int, item: int, k: int = 5) -> pd.DataFrame:
        """Why ``user`` gets ``item``: the contributions that sum to ``score(user, item)``.

        Returns the common explanation table of :mod:`semrec.explain` (largest contribution
        first, at most ``k`` rows, ``attrs`` with the score; ``rest`` is 0 up to rounding, the
        score being exactly the sum). ItemKNN: column ``item``, the user's history items, each
        contributing ``r[user, j] * sim(j, item)``. UserKNN: column ``neighbour``, the user's
        neighbours, each contributing ``sim(user, v) * r[v, item]``. Only non-zero
        contributions are listed.

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> r = sp.csr_array(np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1]], dtype=np.float32))
        >>> semrec.ItemKNN(2, show_progress=False).fit(r).explain(0, 2)["item"].tolist()
        [1, 0]
        """
        u = scalar_id(user, "user", self.n_users_, "user")
        i = scalar_id(item, "item", self.n_items_, "item")
        history = self._history(np.array([u]))
        through = self._through()
        ids = history.indices
        parts = history.data.astype(np.float32) * through[ids][:, [i]].toarray().ravel()
        keep = parts != 0
        score = float(self.score(u, [i])[0])
        frame = explanation(ids[keep], parts[keep], k, user=u, item=i, score=score)
        return frame.rename(columns={"item": self._EXPLAINED_BY})

    # -- persistence ----------------------------------------------------------------------------
    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        from semrec import _persist as persist

        arrays = persist.csr_arrays(self.similarity_, "similarity")
        arrays |= persist.csr_arrays(self._weighted, "weighted")
        if self._idf is not None:
            arrays["idf"] = self._idf
        meta = {
            "similarity_shape": list(self.similarity_.shape),
            "weighted_shape": list(self._weighted.shape),
            "avg_len": self._avg_len,
        }
        return meta, arrays

    def _restore(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
        from semrec import _persist as persist

        self._check_params()
        sim_shape = tuple(int(n) for n in meta["similarity_shape"])
        w_shape = tuple(int(n) for n in meta["weighted_shape"])
        n_users, n_items = self.interactions_.shape
        docs = n_items if self._KIND == "item" else n_users
        expected_w = (n_items, w_shape[1]) if self._KIND == "item" else (w_shape[0], n_items)
        if w_shape != expected_w or sim_shape[0] != sim_shape[1] or sim_shape[0] < docs:
            raise ValueError("array shapes do not match the interactions")
        self.similarity_ = _kernel_csr(persist.csr_from(arrays, "similarity", sim_shape))
        self._weighted = _kernel_csr(persist.csr_from(arrays, "weighted", w_shape))
        self._idf = None if self.weighting == "none" else np.asarray(arrays["idf"], np.float64)
        if self._idf is not None and self._idf.shape != (w_shape[1],):
            raise ValueError("idf does not match the weighted matrix")
        self._avg_len = float(meta["avg_len"])
        self._norms = _row_norms(self._weighted)
        counts = np.diff(self._weighted.indptr)
        self._targets = _Targets(_transpose(self._weighted), self._norms, counts)
        self._term_side = None
        self.interactions_ = check.canonical_csr(self.interactions_, trusted=True)


class _Settings:
    """Hyperparameters for one neighbour computation (k and shrinkage)."""

    def __init__(self, neighbours: int, shrinkage: float) -> None:
        self.neighbours = neighbours
        self.shrinkage = shrinkage


def _graph_rows(
    queries: sp.csr_array,
    lo: int,
    hi: int,
    targets: _Targets,
    query_norms: np.ndarray,
    settings: Any,
    threads: int,
    *,
    self_ids: np.ndarray,
    progress: Callable[[int], None] | None = None,
) -> sp.csr_array:
    """Neighbour rows lo..hi of ``queries`` (zero-copy slices) among the targets' documents.

    ``query_norms`` covers the rows lo..hi; ``self_ids`` names, per row, one document that is
    never its neighbour (-1: none); ``progress(rows_done)`` is called now and then.
    """
    q_indptr, q_indices, q_data = _arrays(queries)
    start, stop = q_indptr[lo], q_indptr[hi]
    me = np.asarray(self_ids, dtype=np.int32)
    me = np.where(me >= 0, targets.rank[np.maximum(me, 0)], -1).astype(np.int32)
    g_indptr, g_indices, g_values = core.knn_graph(
        q_indptr[lo : hi + 1] - start,
        q_indices[start:stop],
        q_data[start:stop],
        *_arrays(targets.matrix),
        targets.order.size,
        np.ascontiguousarray(query_norms, dtype=np.float32),
        targets.norms,
        me,
        targets.order,
        int(settings.neighbours),
        float(settings.shrinkage),
        threads,
        progress,
    )
    return sp.csr_array((g_values, g_indices, g_indptr), shape=(hi - lo, targets.order.size))


class ItemKNN(_NeighbourCF):
    """Item-based neighbourhood collaborative filtering (cosine item-item kNN).

    ``score(u, i) = sum_j r[u, j] * sim(j, i)`` over the items ``j`` in the user's history, with
    ``sim(j, ·)`` the ``neighbours`` items most similar to ``j`` (see the module docstring for
    the weightings and shrinkage).

    Parameters
    ----------
    neighbours : int, default 100
        Neighbours kept per item (``K``).
    weighting : {"none", "tfidf", "bm25"}, default "none"
        Re-weighting of the item vectors before the cosine (items are the documents, users the
        terms).
    shrinkage : float, default 0.0
        ``sim = dot / (|a| |b| + shrinkage)``; damps similarities resting on few users.
    bm25_k1, bm25_b : float, default 1.2, 0.75
        BM25 saturation and length normalisation (``weighting="bm25"`` only).
    num_threads : int, optional
        ``None`` uses :func:`semrec.get_num_threads`, ``0`` all cores. Results are identical
        for any value.
    show_progress : bool, default True
        tqdm progress bar during ``fit``.

    Attributes
    ----------
    similarity_ : scipy.sparse.csr_array, shape (n_items, n_items)
        Row ``j`` holds item ``j``'s neighbours and their similarities (float32, sorted by id).
    interactions_ : scipy.sparse.csr_array
        The users' histories (updated by ``update`` and ``fold_in``).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, semrec
    >>> clicks = sp.random_array((50, 30), density=0.2, format="csr", rng=0, dtype=np.float32)
    >>> model = semrec.ItemKNN(10, weighting="bm25", show_progress=False).fit(clicks)
    >>> ids, scores = model.recommend([0, 1], k=3)
    >>> ids.shape
    (2, 3)
    """

    _KIND = "item"
    _FORMAT_NAME = "semrec.ItemKNN"
    _EXPLAINED_BY = "item"

    def _history(self, users: np.ndarray) -> sp.csr_array:
        return _rows(self.interactions_, users)

    def _through(self) -> sp.csr_array:
        return self.similarity_

    def _scores_of(self, history: sp.csr_array, users: np.ndarray | None) -> np.ndarray:
        scores = np.asarray((history @ self.similarity_).toarray(), dtype=np.float32)
        if users is not None:
            self.interactions_ = _replace_rows(self.interactions_, users, history, self.n_items_)
        return scores


class UserKNN(_NeighbourCF):
    """User-based neighbourhood collaborative filtering (cosine user-user kNN).

    ``score(u, i) = sum_v sim(u, v) * r[v, i]`` over the ``neighbours`` users most similar to
    ``u``. The parameters are those of :class:`ItemKNN`, applied to users (users are the
    documents, items the terms).

    Attributes
    ----------
    similarity_ : scipy.sparse.csr_array, shape (n_users, n_users)
        Row ``u`` holds user ``u``'s neighbours and similarities (float32, sorted by id). Users
        added by ``fold_in`` / ``update`` get a row; others' rows are rebuilt by ``fit`` only.
    interactions_ : scipy.sparse.csr_array

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, semrec
    >>> clicks = sp.random_array((50, 30), density=0.2, format="csr", rng=0, dtype=np.float32)
    >>> model = semrec.UserKNN(10, show_progress=False).fit(clicks)
    >>> model.similar_users(0, k=2)[0].shape
    (2,)
    """

    _KIND = "user"
    _FORMAT_NAME = "semrec.UserKNN"
    _EXPLAINED_BY = "neighbour"

    def _history(self, users: np.ndarray) -> sp.csr_array:
        return _rows(self.similarity_, users)

    def _through(self) -> sp.csr_array:
        return self.interactions_

    def _scores_of(self, history: sp.csr_array, users: np.ndarray | None) -> np.ndarray:
        weighted, _ = self._weigh(check.without_zeros(history))
        me = np.full(history.shape[0], -1, dtype=np.int32)
        if users is not None:
            fitted = users < self._weighted.shape[0]
            me[fitted] = users[fitted]
        graph = _graph_rows(
            weighted,
            0,
            history.shape[0],
            self._targets,
            _row_norms(weighted),
            self,
            resolve_num_threads(self.num_threads),
            self_ids=me,
        )
        pool = self.interactions_[: self._weighted.shape[0]]
        scores = np.asarray((graph @ pool).toarray(), dtype=np.float32)
        if users is not None:
            total = max(self.n_users_, int(users.max()) + 1)
            self.interactions_ = _replace_rows(self.interactions_, users, history, self.n_items_)
            self.similarity_ = _replace_rows(self.similarity_, users, graph, total)
        return scores
