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
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
from tqdm import tqdm

from semrec import _hyperparameters as hyperparameters
from semrec import _validation as check
from semrec._base import Recommender
from semrec._histories import Histories
from semrec._knn_graph import (
    LARGEST_WEIGHT,
    Settings,
    Targets,
    apply_weights,
    check_shrinkage,
    check_updated_weight,
    check_weight_range,
    entry_weights,
    graph_rows,
    kernel_arrays,
    neighbour_columns,
    padded,
    row_norms,
    rows_of,
    transpose,
    weight_stats,
)
from semrec._model_lock import fits_model
from semrec._native import core
from semrec._persist import Saved, csr_arrays
from semrec._seen import KeepsHistories
from semrec._threads import resolve_num_threads
from semrec.explain import explanation

logger = logging.getLogger("semrec")

WEIGHTINGS = ("none", "tfidf", "bm25")
# UserKNN scores up to this many users from their neighbours' rows alone (more: the whole
# matrix, whose merge a batch that size outweighs).
_GATHERED = 64


class _NeighbourCF(KeepsHistories, Recommender):
    """What ItemKNN and UserKNN share; ``_KIND`` names the compared entities."""

    _HINTS = {  # noqa: RUF012 (class constant)
        "add_items": "an item without interactions has no neighbours; use ContentRecommender "
        "or ColdStartALS for items known by their text",
    }
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

    def __init__(
        self,
        neighbours: int = 100,
        *,
        weighting: str = "none",
        shrinkage: float = 0.0,
        bm25_k1: float = 1.2,
        bm25_b: float = 0.75,
        num_threads: int | None = None,
        show_progress: bool | None = None,
    ) -> None:
        self._set_params(locals())

    def _check_params(self) -> None:
        check.positive_int(self.neighbours, "neighbours")
        check.choice(self.weighting, "weighting", WEIGHTINGS)
        for name in ("shrinkage", "bm25_k1"):
            check.number(getattr(self, name), name, minimum=0)
        check_shrinkage(self.shrinkage)
        check.number(self.bm25_b, "bm25_b", minimum=0, maximum=1)
        resolve_num_threads(self.num_threads)
        hyperparameters.progress(self.show_progress)

    def _shaping(self) -> dict[str, Any]:
        """The hyperparameters the graph and the weighted matrix are built with (bm25's own
        under bm25 only); num_threads and show_progress change nothing and may change."""
        names = ("weighting", "neighbours", "shrinkage")
        names += ("bm25_k1", "bm25_b") if self.weighting == "bm25" else ()
        return {name: getattr(self, name) for name in names}

    def _check_fitted_params(self, unused: tuple[str, ...] = ()) -> None:
        """Refuse bad hyperparameters and those changed since fit (or load) that shape the
        fitted state (but for the caller's ``unused`` ones): a verb using them would mix
        formulas, a file would misdescribe it."""
        self._check_params()
        now = {name: getattr(self, name) for name in self._fitted_with if name not in unused}
        what = f"the fitted {type(self).__name__}"
        hyperparameters.unchanged_since_fit(now, self._fitted_with, what)

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
        self._idf, self._avg_len, lengths = weight_stats(
            doc, term, train.data, n_docs, n_terms, self.weighting
        )
        weighted = train
        if self.weighting != "none":
            w = entry_weights(
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
        other = transpose(weighted, resolve_num_threads(self.num_threads))
        return (other, weighted) if self._KIND == "item" else (weighted, other)

    def _weigh(
        self, docs: sp.csr_array, docs_t: sp.csr_array | None = None
    ) -> tuple[sp.csr_array, sp.csr_array | None]:
        return apply_weights(
            docs, self.weighting, self._idf, self._avg_len, self.bm25_k1, self.bm25_b, docs_t
        )

    # -- fit ---------------------------------------------------------------------------------
    @fits_model
    def fit(self, interactions: sp.csr_array | sp.csr_matrix) -> Self:
        """Build the neighbour graph from a users x items interaction matrix.

        Parameters
        ----------
        interactions : scipy.sparse CSR, shape (n_users, n_items)
            Non-negative weights (counts, ratings, confidences); explicit zeros are dropped and
            duplicates summed.

        Returns ``self``; raises TypeError, ValueError or IndexError for an input that is not
        a CSR matrix, is empty, holds NaN/inf or negative weights or a malformed structure, and
        for bad hyperparameters.
        """
        self._check_params()
        train = check.canonical_csr(interactions, "interactions", nonnegative=True)
        check_weight_range(train.data, "interactions", self.shrinkage)
        threads = resolve_num_threads(self.num_threads)
        # Every stored entry is seen (interactions_); the graph learns from non-zero weights.
        weighted, weighted_t = self._layouts(check.without_zeros(train))
        norms = row_norms(weighted)
        targets = Targets(weighted_t, norms, np.diff(weighted.indptr))
        n = weighted.shape[0]
        what = "items" if self._KIND == "item" else "users"
        show = hyperparameters.progress(self.show_progress)
        with tqdm(total=n, desc=f"{type(self).__name__}", unit=what, disable=not show) as bar:
            # One kernel call (the targets are packed once); it reports rows done (heaviest
            # rows first, so the bar speeds up towards the end).
            def report(done: int) -> None:
                bar.update(done - bar.n)

            me = np.arange(n, dtype=np.int32)
            self.similarity_ = graph_rows(
                weighted, 0, n, targets, norms, self, threads, self_ids=me,
                progress=report if show else None,
            )  # fmt: skip
        self._histories = Histories(train)
        self._weighted, self._norms, self._targets = weighted, norms, targets
        self._term_side = None
        self._fitted_with = self._shaping()
        logger.debug("%s: %d x %d graph, %d edges", type(self).__name__, n, n, self.similarity_.nnz)
        return self

    # -- scoring -----------------------------------------------------------------------------
    def _history(self, users: np.ndarray) -> sp.csr_array:
        """What a user's scores are summed over: its history (ItemKNN) or neighbours."""
        raise NotImplementedError

    def _through(self, ids: np.ndarray) -> sp.csr_array:
        """Rows ``ids`` of the matrix a history row is multiplied with to score every item."""
        raise NotImplementedError

    def _operands(self, users: np.ndarray) -> tuple[sp.csr_array, sp.csr_array]:
        """(``users``' histories, the matrix they multiply): ItemKNN's graph, or UserKNN's
        neighbours' rows, the history's columns renumbered to them."""
        return self._history(users), self.similarity_

    def _score_rows(self, users: np.ndarray) -> np.ndarray:
        # Summed as recommend's kernel sums (same inputs, same order): the scores it ranks.
        history, through = self._operands(users)
        return core.knn_scores(
            *kernel_arrays(check.without_zeros(history)),
            *kernel_arrays(through),
            self.n_items_,
            resolve_num_threads(self.num_threads),
        )

    def _recommend_rows(
        self, users: np.ndarray, k: int, exclude_seen: bool, candidates: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        # Scored in C++ without forming dense score rows; items no neighbour reaches score 0
        # and come after every positive score, by increasing id.
        if candidates is not None:
            candidates = np.unique(candidates).astype(np.int32)
        history, through = self._operands(users)
        exclude = None
        if exclude_seen:
            exclude = history if self._KIND == "item" else self._histories.rows(users)
        ex_indptr, ex_indices, _ = (None, None, None) if exclude is None else kernel_arrays(exclude)
        return core.knn_topk(
            *kernel_arrays(check.without_zeros(history)),  # a seen 0 reaches no neighbour
            *kernel_arrays(through),
            self.n_items_,
            k,
            ex_indptr,
            ex_indices,
            candidates,
            resolve_num_threads(self.num_threads),
        )

    # -- neighbours ----------------------------------------------------------------------------
    def _terms(self) -> tuple[sp.csr_array, np.ndarray, Targets]:
        """The other side (terms x documents), its norms and its kernel targets; built once."""
        if self._term_side is None:
            terms = self._targets.transposed_docs()
            norms = row_norms(terms)
            self._term_side = (terms, norms, Targets(self._weighted, norms, np.diff(terms.indptr)))
        return self._term_side

    def _similar(self, kind: str, ids: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        if kind == self._KIND:
            n = self.n_items_ if kind == "item" else self.n_users_
            q, scalar = check.index_array(ids, f"{kind}s", n, kind)
            # The graph's rows: what ItemKNN's histories go through, UserKNN's user sums over.
            graph = self._through(q) if kind == "item" else self._history(q)
            out = padded(graph, check.result_width(k, q.size, n, f"{kind}s"))
        else:
            # The other side's vectors are the columns of the weighted document matrix, of fit
            # time: computed with the fitted weighting and shrinkage (not the graph's k).
            self._check_fitted_params(unused=("neighbours",))
            terms, norms, targets = self._terms()
            total = self.n_users_ if kind == "user" else self.n_items_
            q, scalar = check.index_array(ids, f"{kind}s", total, kind)
            if q.size and q.max() >= terms.shape[0]:  # ItemKNN's users added by fold_in/update
                raise IndexError(
                    f"{kind}s holds {kind} id {q.max()}, added after fit: "
                    f"{type(self).__name__}'s {kind} similarities cover the fitted {kind}s "
                    f"[0, {terms.shape[0]}) only; refit to include later ones"
                )
            k = check.result_width(k, q.size, terms.shape[0], f"{kind}s")
            graph = graph_rows(
                rows_of(terms, q),
                0,
                q.size,
                targets,
                norms[q],
                Settings(min(k, terms.shape[0]), self.shrinkage),  # the kernel allocates by k
                resolve_num_threads(self.num_threads),
                self_ids=q.astype(np.int32),
            )
            out = padded(graph, k)
        return (out[0][0], out[1][0]) if scalar else out

    def _similar_items(self, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        # ItemKNN reads them from its graph (at most ``neighbours`` per item; the rest is
        # padding). UserKNN computes, with the same weighting and shrinkage, the cosine between
        # item columns of its weighted users x items matrix (as fitted).
        return self._similar("item", ids, k)

    def similar_users(self, users: int | np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` users most similar to each given user (itself excluded), best first.

        UserKNN reads them from its graph (users as fitted or last folded in); ItemKNN computes
        the cosine between the user columns of its weighted items x users matrix (as fitted:
        users added later by ``fold_in`` / ``update`` are an IndexError until the next fit).

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> r = sp.csr_array(np.array([[1, 1, 0], [1, 1, 1], [0, 0, 1]], dtype=np.float32))
        >>> semrec.UserKNN(2, show_progress=False).fit(r).similar_users(0, k=1)[0]
        array([1], dtype=int32)
        """
        return self._similar("user", users, k)

    # -- real time: the users' vectors are their rows of scores --------------------------------
    def _scores_of(self, history: sp.csr_array, users: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError

    def _fold_in(
        self, history: Any, users: np.ndarray | None, times: np.ndarray | None
    ) -> np.ndarray:
        rows = check.canonical_csr(history, "history", nonnegative=True, allow_empty=True)
        check_weight_range(rows.data, "history", self._fitted_with["shrinkage"])  # as fit's
        return self._scores_of(rows, users)

    def _update(self, user: int, item: int, weight: float, t: float | None) -> np.ndarray:
        # The change costs one row (plus, for UserKNN, that user's neighbours); the graph of
        # the other users is not rebuilt until the next fit.
        if abs(weight) > LARGEST_WEIGHT:  # refused below anyway; float32 would make it inf
            raise ValueError(
                f"weight must be in [-{LARGEST_WEIGHT:g}, {LARGEST_WEIGHT:g}] (neighbour "
                f"similarities square weights in float32), got {weight:.3g}"
            )
        indices, weights = self._histories.row(user)  # O(the row), whatever changed before
        cols = np.r_[indices, item].astype(np.int32)  # sparse: a seen 0 stays an entry
        values = np.r_[weights, np.float32(weight)].astype(np.float64)
        row = check.canonical_csr(
            sp.csr_array((values, cols, np.array([0, cols.size])), shape=(1, self.n_items_))
        )
        total = float(row[0, item])
        if total < 0:
            raise ValueError(
                f"update would make interaction ({user}, {item}) negative ({total}); weights "
                "must stay >= 0"
            )
        check_updated_weight(total, user, item, self._fitted_with["shrinkage"])  # as fit's
        return self._scores_of(row, np.array([user]))[0]

    # -- explanations ----------------------------------------------------------------------------
    def _explain(self, u: int, i: int, k: int) -> pd.DataFrame:
        """How the score splits into terms (see :meth:`explain`).

        The score is exactly the sum of the terms (``rest`` is 0 up to rounding). ItemKNN:
        column ``item``, the user's history items, each
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
        history = self._history(np.array([u]))
        ids = history.indices
        parts = history.data.astype(np.float32) * self._through(ids)[:, [i]].toarray().ravel()
        keep = parts != 0
        score = float(self.score(u, [i])[0])
        frame = explanation(ids[keep], parts[keep], k, user=u, item=i, score=score)
        return frame.rename(columns={"item": self._EXPLAINED_BY})

    # -- persistence: the graph, the weighted matrix and the statistics -------------------------
    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        self._check_fitted_params()  # the file's hyperparameters describe its arrays
        arrays = csr_arrays(self.similarity_, "similarity")
        arrays |= csr_arrays(self._weighted, "weighted")
        seen = self._histories.matrix()
        arrays |= csr_arrays(seen, "interactions")
        if self._idf is not None:
            arrays["idf"] = self._idf
        meta = {
            "shape": list(seen.shape),
            "similarity_shape": list(self.similarity_.shape),
            "weighted_shape": list(self._weighted.shape),
            "avg_len": self._avg_len,
        }
        return meta, arrays

    def _restore(self, saved: Saved) -> None:
        self._check_params()
        self._fitted_with = self._shaping()
        n_users, n_items = saved.shape("shape")
        self._histories = Histories(saved.csr("interactions", (n_users, n_items), nonnegative=True))
        sim_shape = saved.shape("similarity_shape")
        w_shape = saved.shape("weighted_shape")
        docs = n_items if self._KIND == "item" else n_users
        if sim_shape[0] != sim_shape[1] or sim_shape[0] < docs:
            raise saved.error("similarity_shape", "does not match the interactions")
        # The weighted matrix is items x users (users x items for UserKNN) of fit time: fold_in
        # and update add users to the interactions only, so it has their items and at most
        # their users. Its users were a count only metadata stated (10^8 loaded as 40).
        users = w_shape[1] if self._KIND == "item" else w_shape[0]
        items = w_shape[0] if self._KIND == "item" else w_shape[1]
        if items != n_items or users > n_users:
            raise saved.error(
                "weighted_shape",
                f"is {list(w_shape)}: it must have the interactions' {n_items} items and at most "
                f"their {n_users} users",
            )
        self.similarity_ = saved.csr("similarity", sim_shape)
        self._weighted = saved.csr("weighted", w_shape, nonnegative=True)
        self._idf = None
        if self.weighting != "none":
            self._idf = saved.array("idf", np.float64, (w_shape[1],), minimum=0)
        self._avg_len = float(saved.value("avg_len", (int, float), minimum=0))
        self._norms = row_norms(self._weighted)
        counts = np.diff(self._weighted.indptr)
        self._targets = Targets(transpose(self._weighted), self._norms, counts)
        self._term_side = None


class ItemKNN(_NeighbourCF):
    """Item-based neighbourhood collaborative filtering (cosine item-item kNN).

    ``score(u, i) = sum_j r[u, j] * sim(j, i)`` over the items ``j`` in the user's history, with
    ``sim(j, ·)`` the ``neighbours`` items most similar to ``j`` (see the module docstring for
    the weightings and shrinkage).

    Parameters
    ----------
    neighbours : int, default 100
        Neighbours kept per item (``K``); more than there are other items keeps them all.
    weighting : {"none", "tfidf", "bm25"}, default "none"
        Re-weighting of the item vectors before the cosine (items are the documents, users the
        terms).
    shrinkage : float, default 0.0
        ``sim = dot / (|a| |b| + shrinkage)``; damps similarities resting on few users. At
        most 3.4e38 (float32); the smallest weight must exceed ``1e-10 * shrinkage ** (1/3)``
        (and ``1e-15 * shrinkage ** 0.5``), or similarities and scores underflow float32.
    bm25_k1, bm25_b : float, default 1.2, 0.75
        BM25 saturation and length normalisation (``weighting="bm25"`` only).
    num_threads : int, optional
        ``None`` uses :func:`semrec.get_num_threads`, ``0`` all cores. Results are identical
        for any value.
    show_progress : bool, optional
        tqdm progress bar during ``fit`` (``None``: only when stderr is a terminal).

    Attributes
    ----------
    similarity_ : scipy.sparse.csr_array, shape (n_items, n_items)
        Row ``j`` holds item ``j``'s neighbours and their similarities (float32, sorted by id).
    interactions_ : scipy.sparse.csr_array
        The users' histories (updated by ``update`` and ``fold_in``); read-only views of the
        model's arrays (a write raises): ``.copy()`` it to edit.

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
        return self._histories.rows(users)

    def _through(self, ids: np.ndarray) -> sp.csr_array:
        return rows_of(self.similarity_, ids)

    def _scores_of(self, history: sp.csr_array, users: np.ndarray | None) -> np.ndarray:
        scores = np.asarray((history @ self.similarity_).toarray(), dtype=np.float32)
        if users is not None:
            self._histories.set_rows(users, history)
        return scores


class UserKNN(_NeighbourCF):
    """User-based neighbourhood collaborative filtering (cosine user-user kNN).

    ``score(u, i) = sum_v sim(u, v) * r[v, i]`` over the ``neighbours`` users most similar to
    ``u``.

    Parameters
    ----------
    neighbours, weighting, shrinkage, bm25_k1, bm25_b, num_threads, show_progress
        As in :class:`ItemKNN` (same defaults), applied to users: users are the documents,
        items the terms, and ``neighbours`` are kept per user.

    Attributes
    ----------
    similarity_ : scipy.sparse.csr_array, shape (n_users, n_users)
        Row ``u`` holds user ``u``'s neighbours and similarities (float32, sorted by id). Users
        added by ``fold_in`` / ``update`` get a row; others' rows are rebuilt by ``fit`` only.
    interactions_ : scipy.sparse.csr_array
        The users' histories, read-only as :class:`ItemKNN`'s (``.copy()`` it to edit).

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

    # The graph changes a row per click (the user's neighbours), so it is kept as histories
    # are: the changed rows beside the matrix, merged on a whole-graph read.
    @property
    def similarity_(self) -> sp.csr_array:
        """The user graph, (n_users, n_users) (see the class docstring)."""
        graph = vars(self).get("_graph")
        if graph is None:  # what reading an attribute never set says
            raise AttributeError(f"'{type(self).__name__}' object has no attribute 'similarity_'")
        return graph.matrix()

    @similarity_.setter
    def similarity_(self, graph: sp.csr_array) -> None:
        self._graph = Histories(graph, square=True)

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "similarity_" in state:  # pickled with the graph as one CSR
            state = dict(state)
            state["_graph"] = Histories(state.pop("similarity_"), square=True)
        super().__setstate__(state)

    def _history(self, users: np.ndarray) -> sp.csr_array:
        return self._graph.rows(users)

    def _through(self, ids: np.ndarray) -> sp.csr_array:
        return self._histories.rows(ids)

    def _operands(self, users: np.ndarray) -> tuple[sp.csr_array, sp.csr_array]:
        # A few users read their neighbours' rows only; many, the whole (merged) matrix.
        return self._neighbours(self._graph.rows(users), gather=users.size <= _GATHERED)

    def _neighbours(self, graph: sp.csr_array, gather: bool) -> tuple[sp.csr_array, sp.csr_array]:
        """(``graph`` as the left operand, the histories it multiplies). Gathered: only the
        neighbours' rows, the graph's columns renumbered to them in the same order, so that a
        product sums the same terms in the same order as against every user's row."""
        if not gather:
            seen = self._histories.matrix()
            shape = (graph.shape[0], seen.shape[0])
            return check.csr_from_arrays(shape, graph.indptr, graph.indices, graph.data), seen
        renumbered, ids = neighbour_columns(graph)
        return renumbered, self._histories.rows(ids)

    def _scores_of(self, history: sp.csr_array, users: np.ndarray | None) -> np.ndarray:
        self._check_fitted_params()  # the new rows must be built as the fitted ones were
        weighted, _ = self._weigh(check.without_zeros(history))
        me = np.full(history.shape[0], -1, dtype=np.int32)
        if users is not None:
            fitted = users < self._weighted.shape[0]
            me[fitted] = users[fitted]
        graph = graph_rows(
            weighted,
            0,
            history.shape[0],
            self._targets,
            row_norms(weighted),
            self,
            resolve_num_threads(self.num_threads),
            self_ids=me,
        )
        if users is not None and users.size:  # stored first: users may be each other's neighbours
            self._histories.set_rows(users, history)
            self._graph.set_rows(users, graph)
        # The neighbours' rows only (a click reads O(their histories), never every user's).
        neighbours, pool = self._neighbours(graph, gather=True)
        return np.asarray((neighbours @ pool).toarray(), dtype=np.float32)
