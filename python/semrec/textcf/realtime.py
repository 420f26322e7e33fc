"""TextCF's real-time verbs and explanations: each is one forward pass of the fitted network.

A mixin of :class:`semrec.TextCF` (kept apart so the model module stays readable); the state it
reads is the fitted model's public attributes ``weights_``, ``graph_``, ``user_state_``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from semrec import _validation as check
from semrec.explain import explanation, scalar_id
from semrec.textcf import network
from semrec.textcf.network import Graph, UserState


class RealTimeVerbs:
    """``fold_in``, ``update``, ``add_items`` and ``explain`` of :class:`semrec.TextCF`."""

    weights_: dict[str, np.ndarray]
    graph_: Graph
    user_state_: UserState
    user_factors_: np.ndarray
    item_factors_: np.ndarray
    item_embeddings_: np.ndarray
    interactions_: sp.csr_array
    negative_slope: float
    user_text_weight: float
    encoder: Any
    num_threads: int | None

    def fold_in(
        self,
        history: sp.csr_array | sp.csr_matrix,
        *,
        users: np.ndarray | None = None,
        user_embeddings: np.ndarray | None = None,
    ) -> np.ndarray:
        """Vectors of users from their histories: one forward pass, no training.

        Each row's input is the weighted mean of its items' embeddings (plus its text
        embedding, if given), as in ``fit``; with propagation layers the user's own layers are
        built from the fitted items' layer outputs. For a training user's own history this is
        the user's fitted vector.

        Parameters
        ----------
        history : scipy.sparse CSR, shape (n, n_items)
            One row per user (positive weights); an empty row gives the no-history vector.
        users : 1-D array of int, optional
            Store the result under these ids: an existing id replaces that user, ids
            ``n_users_, n_users_ + 1, ...`` append new users. Without it nothing is stored.
        user_embeddings : ndarray of float32, shape (n, dim), optional
            The users' own text embeddings.

        Returns
        -------
        ndarray of float32, shape (n, factors)

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> emb = np.random.default_rng(0).standard_normal((20, 8)).astype(np.float32)
        >>> clicks = sp.random_array((30, 20), density=0.3, format="csr", rng=0, dtype=np.float32)
        >>> model = semrec.TextCF(emb, hidden=16, factors=4, epochs=2, random_state=0,
        ...                       show_progress=False).fit(clicks)
        >>> new = sp.csr_array(np.eye(20, dtype=np.float32)[[3]])
        >>> model.fold_in(new, users=[30]).shape
        (1, 4)
        """
        self._check_fitted()
        rows = _history(history, self.n_items_)
        text = None
        if user_embeddings is not None:
            text, _ = check.as_float32_matrix(user_embeddings, "user_embeddings")
            if text.shape != (rows.shape[0], self.item_embeddings_.shape[1]):
                raise ValueError(
                    f"user_embeddings must have shape ({rows.shape[0]}, "
                    f"{self.item_embeddings_.shape[1]}) (one row per history row, the items' "
                    f"dimension), got {text.shape}"
                )
        weighted = check.without_zeros(rows)  # a stored 0 is seen, not learned from
        input_sum, mass = network.user_inputs(
            weighted, self.item_embeddings_, text, float(self.user_text_weight)
        )
        graph_sum, degree = network.graph_sums(weighted, self.graph_)
        state = UserState(input_sum, mass, graph_sum, degree)
        vectors = network.user_vectors(
            self.weights_, state, np.arange(rows.shape[0]), self.negative_slope
        )
        if users is not None:
            self._store(_target_ids(users, rows.shape[0], self.n_users_), rows, state, vectors)
        return vectors

    def _store(
        self, ids: np.ndarray, rows: sp.csr_array, state: UserState, vectors: np.ndarray
    ) -> None:
        n = max(self.n_users_, int(ids.max()) + 1) if ids.size else self.n_users_
        self.user_state_.grow(n)
        s = self.user_state_
        s.input_sum[ids], s.mass[ids] = state.input_sum, state.mass
        s.graph_sum[ids], s.degree[ids] = state.graph_sum, state.degree
        factors = np.zeros((n, self.user_factors_.shape[1]), dtype=np.float32)
        factors[: self.n_users_] = self.user_factors_
        factors[ids] = vectors
        self.interactions_ = _replace_rows(self.interactions_, ids, rows, n)
        self.user_factors_ = factors

    def update(self, user: int, item: int, weight: float = 1.0) -> np.ndarray:
        """Add one interaction and recompute the user's vector at once (streaming).

        The user's weighted embedding sum gains ``weight * e_item`` (O(dim)); a first
        interaction with the item also adds its edge to the user's propagation layers
        (O(layers * factors)); then one forward pass. A weight of 0 only marks the item seen. ``user`` may be ``n_users_`` to start a
        new user. The items' side of the graph is the fitted one until the next ``fit``.

        Returns
        -------
        ndarray of float32, shape (factors,)
            The user's new vector.

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> emb = np.random.default_rng(0).standard_normal((20, 8)).astype(np.float32)
        >>> clicks = sp.random_array((30, 20), density=0.3, format="csr", rng=0, dtype=np.float32)
        >>> model = semrec.TextCF(emb, hidden=16, factors=4, epochs=2, random_state=0,
        ...                       show_progress=False).fit(clicks)
        >>> model.update(0, 5, weight=2.0).shape
        (4,)
        """
        self._check_fitted()
        u = scalar_id(user, "user", self.n_users_ + 1, "user")
        i = scalar_id(item, "item", self.n_items_, "item")
        if isinstance(weight, bool) or not isinstance(weight, int | float | np.number):
            raise TypeError(f"weight must be a number, got {type(weight).__name__}")
        if not (math.isfinite(weight) and weight >= 0):
            raise ValueError(
                f"weight must be a finite number >= 0 (TextCF averages embeddings with positive "
                f"weights; 0 marks the item seen), got {weight}"
            )
        if u == self.n_users_:  # a new user starts with no history
            self.fold_in(sp.csr_array((1, self.n_items_), dtype=np.float32), users=[u])
        s = self.user_state_
        s.input_sum[u] += float(weight) * self.item_embeddings_[i]
        s.mass[u] += float(weight)
        row = self.interactions_[[u]]
        before = row.data[row.indices == i]
        if weight > 0 and not (before.size and before[0] > 0):  # the user's new edge to i
            scale = self.graph_.item_scale(np.array([i]))[0]
            s.graph_sum[u] += self.graph_.item_layers[:, i].astype(np.float64) * scale
            s.degree[u] += 1
        self.interactions_ = _add_entry(self.interactions_, u, i, float(weight))
        vector = network.user_vectors(self.weights_, s, np.array([u]), self.negative_slope)
        self.user_factors_[u] = vector[0]
        return vector[0].copy()

    def add_items(self, embeddings_or_texts: np.ndarray | str | list[str]) -> np.ndarray:
        """Append text-only items; they are recommendable at once.

        A new item's vector is ``normalise(MLP(e))``: exactly what ``fit`` gives an item
        without interactions (propagation adds nothing to a node without edges).

        Parameters
        ----------
        embeddings_or_texts : ndarray of float32, shape (m, dim) or (dim,), or str / list of str
            Embeddings from the items' encoder, or texts encoded with ``encoder``.

        Returns
        -------
        ndarray of int32
            The new item ids (``n_items_`` before the call, and on).

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> emb = np.random.default_rng(0).standard_normal((20, 8)).astype(np.float32)
        >>> clicks = sp.random_array((30, 20), density=0.3, format="csr", rng=0, dtype=np.float32)
        >>> model = semrec.TextCF(emb, hidden=16, factors=4, epochs=2, random_state=0,
        ...                       show_progress=False).fit(clicks)
        >>> model.add_items(emb[:2]).tolist()
        [20, 21]
        """
        self._check_fitted()
        new = self._item_vectors(embeddings_or_texts)
        h = network.mlp(self.weights_, new, self.negative_slope)
        start = self.n_items_
        layers = self.graph_.item_layers
        added = np.zeros((layers.shape[0], new.shape[0], layers.shape[2]), dtype=np.float32)
        if layers.shape[0]:
            added[0] = h
        self.graph_ = Graph(
            np.concatenate([layers, added], axis=1),
            np.concatenate([self.graph_.item_degree, np.zeros(new.shape[0], dtype=np.int64)]),
        )
        self.item_factors_ = np.vstack([self.item_factors_, network.normalised_rows(h)])
        self.item_embeddings_ = np.vstack([self.item_embeddings_, new])
        seen = self.interactions_
        self.interactions_ = sp.csr_array(
            (seen.data, seen.indices, seen.indptr), shape=(seen.shape[0], self.n_items_)
        )
        return np.arange(start, self.n_items_, dtype=np.int32)

    def _item_vectors(self, x: Any) -> np.ndarray:
        dim = self.item_embeddings_.shape[1]
        if isinstance(x, str) or (
            isinstance(x, list | tuple) and x and all(isinstance(t, str) for t in x)
        ):
            encoder = self.encoder
            if encoder is None:
                if getattr(self, "default_encoder_", None) is None:
                    from semrec.text import TextEncoder

                    self.default_encoder_ = TextEncoder(num_threads=self.num_threads)
                encoder = self.default_encoder_
            x = np.ascontiguousarray(encoder.encode(x), dtype=np.float32)
            name = "the encoded texts"
        else:
            name = "embeddings_or_texts"
        new, _ = check.as_float32_matrix(x, name, allow_1d=True)
        if new.shape[1] != dim:
            raise ValueError(
                f"{name} must have dimension {dim} like the item embeddings, got {new.shape[1]}; "
                "use the encoder that embedded the items"
            )
        return new

    def explain(self, user: int, item: int, k: int = 5) -> pd.DataFrame:
        """The history items behind ``user``'s score for ``item``, with their shares.

        The score is ``v_u · v_i`` with ``v_u = h_u / ||h_u||`` and ``h_u`` the mean of the
        network output ``MLP(x_u)`` and the propagation layers. LeakyReLU is piecewise linear:
        at the user's own input, ``MLP(x) = J x + c`` exactly (``J`` the network with the
        user's activation pattern frozen), and ``x_u`` is a weighted mean of the history's
        embeddings; each propagation layer is a weighted sum over the history too. So every
        history item ``j`` gets ``(w_j / W) J e_j`` plus its propagation terms, dotted with
        ``v_i / ((layers + 1) ||h_u||)``; ``attrs["rest"]`` carries ``c`` and the user's own
        text. The split is exact up to float rounding.

        Returns
        -------
        pandas.DataFrame
            The common table of :mod:`semrec.explain`.

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> emb = np.random.default_rng(0).standard_normal((20, 8)).astype(np.float32)
        >>> clicks = sp.random_array((30, 20), density=0.3, format="csr", rng=0, dtype=np.float32)
        >>> model = semrec.TextCF(emb, hidden=16, factors=4, epochs=2, random_state=0,
        ...                       show_progress=False).fit(clicks)
        >>> why = model.explain(0, 5, k=2)
        >>> list(why.columns)
        ['item', 'contribution', 'share']
        """
        self._check_fitted()
        u = scalar_id(user, "user", self.n_users_, "user")
        i = scalar_id(item, "item", self.n_items_, "item")
        s = self.user_state_
        row = self.interactions_[[u]]
        weighted = row.data != 0  # stored zeros are seen but take no part in the score
        history = row.indices[weighted].astype(np.int32)
        weights = row.data[weighted].astype(np.float64)
        x = network.means(s.input_sum[[u]], s.mass[[u]])
        jacobian, _ = network.linearised(self.weights_, x, self.negative_slope)
        n_layers = s.graph_sum.shape[1]
        degree = float(s.degree[u])
        hop = 1.0 / math.sqrt(degree) if degree > 0 else 0.0
        h = (
            network.mlp(self.weights_, x, self.negative_slope)[0] + s.graph_sum[u].sum(axis=0) * hop
        ) / (n_layers + 1)
        norm = float(np.linalg.norm(h))
        target = self.item_factors_[i].astype(np.float64)
        scale = 1.0 / ((n_layers + 1) * norm) if norm > 0 else 0.0
        mass = float(s.mass[u])
        direct = (weights[:, None] / mass) * (self.item_embeddings_[history] @ jacobian.T)
        layered = self.graph_.item_layers[:, history].astype(np.float64).sum(axis=0)
        layered *= (self.graph_.item_scale(history) * hop)[:, None]
        contributions = ((direct + layered) @ target) * scale if history.size else np.zeros(0)
        score = float(self.score(u, [i])[0])
        return explanation(history, contributions, k, user=u, item=i, score=score)


def _history(history: Any, n_items: int) -> sp.csr_array:
    check.require_csr(history, "history", f"(users x {n_items} items)")
    if history.ndim != 2 or history.shape[1] != n_items:
        raise ValueError(
            f"history must have shape (n_users, {n_items}) (one row per user, one column per "
            f"item of the model), got {history.shape}"
        )
    return check.canonical_csr(history, "history", nonnegative=True, allow_empty=True)


def _target_ids(users: Any, n: int, n_users: int) -> np.ndarray:
    ids = np.asarray(users)
    if ids.ndim != 1 or ids.size != n:
        raise ValueError(f"users must be a 1-D array with one id per history row, got {ids}")
    if ids.size and not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"users must hold integer user ids, got dtype {ids.dtype}")
    new = np.sort(ids[ids >= n_users])
    if (ids < 0).any() or not np.array_equal(new, np.arange(n_users, n_users + new.size)):
        raise IndexError(
            f"users must be existing ids in [0, {n_users}) or the next new ids {n_users}, "
            f"{n_users + 1}, ...; got {ids.tolist()}"
        )
    if np.unique(ids).size != ids.size:
        raise ValueError(f"users must not repeat an id, got {ids.tolist()}")
    return ids.astype(np.int64)


def _replace_rows(m: sp.csr_array, ids: np.ndarray, rows: sp.csr_array, n: int) -> Any:
    """``m`` with rows ``ids`` replaced by ``rows`` (and grown to ``n`` rows), canonical CSR."""
    owner = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    keep = ~np.isin(owner, ids)
    new_owner = ids[np.repeat(np.arange(ids.size), np.diff(rows.indptr))]
    r = np.concatenate([owner[keep], new_owner])
    c = np.concatenate([m.indices[keep], rows.indices]).astype(np.int32)
    d = np.concatenate([m.data[keep], rows.data]).astype(np.float32)
    order = np.lexsort((c, r))
    out = sp.csr_array((n, m.shape[1]), dtype=np.float32)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(r, minlength=n), out=indptr[1:])
    out.indptr, out.indices, out.data = indptr, c[order], d[order]
    out.has_canonical_format = True
    return out


def _add_entry(m: sp.csr_array, u: int, i: int, weight: float) -> Any:
    """``m`` with ``weight`` added at (u, i) (inserted when absent), canonical CSR."""
    start, end = int(m.indptr[u]), int(m.indptr[u + 1])
    pos = start + int(np.searchsorted(m.indices[start:end], i))
    if pos < end and m.indices[pos] == i:
        m.data[pos] += np.float32(weight)
        return m
    out = sp.csr_array(m.shape, dtype=np.float32)
    indptr = m.indptr.copy()
    indptr[u + 1 :] += 1
    out.indptr = indptr
    out.indices = np.insert(m.indices, pos, np.int32(i))
    out.data = np.insert(m.data, pos, np.float32(weight))
    out.has_canonical_format = True
    return out
