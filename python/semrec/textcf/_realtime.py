"""TextCF's real-time verbs and explanations: each is one forward pass of the fitted network.

A mixin of :class:`semrec.TextCF` (kept apart so the model module stays readable); the state it
reads is the fitted model's public attributes ``weights_``, ``graph_``, ``user_state_``. Each
verb reads and writes the changed users' rows only (their histories in ``_histories``, their
state and vectors in arrays with spare rows): O(those rows), not O(all users or interactions).
The graph's item side is the fitted one: no verb reads the whole interaction matrix.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from semrec import _hyperparameters as hyperparameters
from semrec import _validation as check
from semrec._encoding import EncodesText, holds_text, texts
from semrec._histories import Histories, RowBuffer
from semrec._model_lock import changes_model_with_users
from semrec.explain import explanation
from semrec.textcf import _checks as checks
from semrec.textcf import _network as network
from semrec.textcf import _popularity as prior
from semrec.textcf import _training as training
from semrec.textcf._network import Graph, UserState


class RealTimeVerbs(EncodesText):
    """``fold_in``, ``update``, ``add_items`` and ``explain`` of :class:`semrec.TextCF`."""

    weights_: dict[str, np.ndarray]
    graph_: Graph
    user_state_: UserState
    user_factors_: np.ndarray
    item_factors_: np.ndarray
    item_bias_: np.ndarray | None
    item_embeddings_: np.ndarray
    _histories: Histories  # the seen histories (interactions_ is the merged matrix's view)
    negative_slope: float
    user_text_weight: float
    user_vectors: str
    popularity: float
    tau: float
    popularity_prior_: Any
    cold_map_: Any
    _biased_cache: tuple[np.ndarray, np.ndarray, np.ndarray]
    _fitted_with: dict[str, Any]  # checks.fitted_with at fit, load or with_options

    def _check_fitted_with(self) -> None:
        """Refuse a hyperparameter changed since fit that the fitted state depends on (every
        verb and ``save`` ask): a verb would mix its old value, in the arrays, with the new one
        (``tau`` in the biased rows, ``user_vectors`` in the users' sums, ``popularity`` in the
        biases, ``cold_*`` in the cold items' vectors), and a file would misdescribe the model."""
        checks.unchanged_since_fit(self, self._fitted_with)

    def _biased_items(self) -> np.ndarray:
        """``[v_i, tau b(i)]`` rows, built once per fit (``add_items`` grows them), with the
        fitted ``tau`` (the verbs refuse another: ``_check_fitted_with``)."""
        vectors, biases = self.item_factors_, self.item_bias_
        cached = getattr(self, "_biased_cache", None)
        if cached is None or cached[0] is not vectors or cached[1] is not biases:
            items = training.biased_items(vectors, biases, float(self.tau))
            cached = self._biased_cache = (vectors, biases, items)
        return cached[2]

    @changes_model_with_users
    def fold_in(
        self,
        history: sp.csr_array | sp.csr_matrix,
        *,
        users: np.ndarray | None = None,
        timestamps: np.ndarray | None = None,
        user_embeddings: np.ndarray | None = None,
    ) -> np.ndarray:
        """Vectors of users from their histories: one forward pass, no training.

        Each row's input is the weighted mean of its items' embeddings (plus its text
        embedding, if given), as in ``fit``; with propagation layers the user's own layers are
        built from the fitted items' layer outputs. For a training user's own history this is
        the user's fitted vector. Otherwise as :meth:`semrec.ALS.fold_in` (the contract's
        ``fold_in``; ``timestamps`` are ignored: TextCF has no notion of time).

        Parameters
        ----------
        history : scipy.sparse CSR, shape (n, n_items)
            One row per user (weights >= 0); an empty row gives the no-history vector.
        users : 1-D array of int, optional
            Store the result under these ids: an existing id replaces that user, ids
            ``n_users_, n_users_ + 1, ...`` append new users. Without it nothing is stored.
        timestamps : 1-D array, optional
            Ignored.
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
        self._fold_text = user_embeddings  # read by _fold_in once the contract's checks pass
        try:
            return super().fold_in(history, users=users, timestamps=timestamps)  # type: ignore[misc]
        finally:
            self._fold_text = None

    def _fold_in(
        self, history: Any, users: np.ndarray | None, times: np.ndarray | None
    ) -> np.ndarray:
        self._check_fitted_with()  # e.g. user_vectors: the fitted users' sums are of its value
        rows = check.canonical_csr(history, "history", nonnegative=True, allow_empty=True)
        text = None
        if getattr(self, "_fold_text", None) is not None:
            text, _ = check.as_float32_matrix(self._fold_text, "user_embeddings")
            checks.scale(text, "user_embeddings")
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
        if self.user_vectors == "items":
            state.item_sum = network.item_sums(weighted, self.item_factors_)
            vectors = network.normalised_rows(state.item_sum)
        else:
            vectors = network.user_vectors(
                self.weights_, state, np.arange(rows.shape[0]), self.negative_slope
            )
        if users is not None:
            self._store(users, rows, state, vectors)
        return vectors

    def _store(
        self, ids: np.ndarray, rows: sp.csr_array, state: UserState, vectors: np.ndarray
    ) -> None:
        n = max(self.n_users_, int(ids.max()) + 1) if ids.size else self.n_users_
        self.user_state_.grow(n)
        s = self.user_state_
        s.input_sum[ids], s.mass[ids] = state.input_sum, state.mass
        s.graph_sum[ids], s.degree[ids] = state.graph_sum, state.degree
        if s.item_sum is not None:
            s.item_sum[ids] = state.item_sum
        factors = self._user_rows(n)
        factors[ids] = vectors
        self._histories.set_rows(ids, _kernel_layout(rows))
        self.user_factors_ = factors

    def _user_rows(self, n: int) -> np.ndarray:
        """``user_factors_`` grown to ``n`` rows (new ones zero) in O(the new rows)."""
        buffer = vars(self).get("_factor_rows")
        if buffer is None or buffer.rows is not self.user_factors_:  # set anew since
            fill = np.zeros(self.user_factors_.shape[1], dtype=np.float32)
            buffer = self._factor_rows = RowBuffer(self.user_factors_, fill=fill)
        return buffer.grow(n)

    def __copy__(self) -> Any:
        out = super().__copy__()  # type: ignore[misc]
        vars(out).pop("_factor_rows", None)  # a copy grows its own factors
        return out

    def __getstate__(self) -> dict[str, Any]:
        # Pickles hold the users' factors, not the spare rows.
        return {k: v for k, v in vars(self).items() if k != "_factor_rows"}

    def _update(self, user: int, item: int, weight: float, t: float | None) -> np.ndarray:
        """The user's weighted embedding sum gains ``weight * e_item`` (O(dim)); a first
        interaction with the item also adds its edge to the user's propagation layers
        (O(layers * factors)); then one forward pass. A weight of 0 only marks the item seen.
        The items' side of the graph is the fitted one until the next ``fit``."""
        self._check_fitted_with()
        if weight < 0:
            raise ValueError(
                f"weight must be >= 0 (TextCF averages embeddings with positive weights; 0 "
                f"marks the item seen), got {weight}"
            )
        u, i = user, item
        new = u == self.n_users_
        # The user's row alone (O(row)), whatever changed before: never the whole matrix.
        indices, weights = self._histories.row(u)
        pos = int(np.searchsorted(indices, i))
        before = weights[pos : pos + 1] if pos < indices.size and indices[pos] == i else []
        before = np.asarray(before, dtype=np.float32)
        self._check_sums(u, i, weight, float(before.sum()))
        if new:  # a new user starts with no history
            self.fold_in(sp.csr_array((1, self.n_items_), dtype=np.float32), users=[u])
        s = self.user_state_
        s.input_sum[u] += float(weight) * self.item_embeddings_[i]
        s.mass[u] += float(weight)
        if weight > 0 and not (before.size and before[0] > 0):  # the user's new edge to i
            scale = self.graph_.item_scale(np.array([i]))[0]
            s.graph_sum[u] += self.graph_.item_layers[:, i].astype(np.float64) * scale
            s.degree[u] += 1
        if before.size:  # summed in float32, as the stored weight is
            weights = weights.copy()
            weights[pos] += np.float32(weight)
        else:  # a new entry, seen even with weight 0
            indices = np.insert(indices, pos, np.int32(i)).astype(np.int32, copy=False)
            weights = np.insert(weights, pos, np.float32(weight)).astype(np.float32, copy=False)
        self._histories.set_row(u, indices, weights)
        if s.item_sum is not None:  # user_vectors="items": O(factors)
            s.item_sum[u] += float(weight) * self.item_factors_[i]
            vector = network.normalised_rows(s.item_sum[[u]])
        else:
            vector = network.user_vectors(self.weights_, s, np.array([u]), self.negative_slope)
        self.user_factors_[u] = vector[0]
        return vector[0].copy()

    def _check_sums(self, u: int, i: int, weight: float, prior: float) -> None:
        """Refuse, before anything changes, a weight that takes the user's stored weight for
        the item (``prior`` so far), its total or its embedding sum past float32 (they are
        saved in it: an inf there zeroes the user's scores and makes the file unloadable)."""
        mass, total = 0.0, np.zeros(self.item_embeddings_.shape[1])
        if u < self.n_users_:
            mass, total = float(self.user_state_.mass[u]), self.user_state_.input_sum[u]
        with np.errstate(over="ignore", invalid="ignore"):
            sums = np.append(
                total + weight * self.item_embeddings_[i], [prior + weight, mass + weight]
            )
            finite = bool(np.isfinite(sums.astype(np.float32)).all())
        if not finite:
            raise ValueError(
                f"weight={weight:g} would take user {u}'s stored weights past float32's largest "
                "value (3.4e38); rescale the weights"
            )

    def _add_items(self, items: Any) -> np.ndarray:
        """A new item's vector is ``normalise(MLP(e))`` (with ``cold_penalty``: the cold map's
        ``f(e)``) and its bias ``b(e)``: exactly what ``fit`` gives an item without interactions
        (propagation adds nothing to a node without edges). Texts are encoded with ``encoder``
        (default: the bundled model, on first use)."""
        self._check_fitted_with()  # the new rows must be built as the fitted ones were
        new = self._item_vectors(items)
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
        mapped = self.cold_map_
        vectors = network.normalised_rows(h) if mapped is None else mapped.predict(new)
        vectors = vectors.astype(np.float32)
        # With biases recommend searches [v_i, tau b(i)] rows: the cached ones are grown by the
        # new rows, not rebuilt whole (read before the arrays they are cached for change).
        biased = None if self.item_bias_ is None else self._biased_items()
        self.item_factors_ = np.vstack([self.item_factors_, vectors])
        searched = self.item_factors_
        if self.item_bias_ is not None:
            learned = None
            if "bias.weight" in self.weights_:
                learned = network.item_biases(self.weights_, new, self.negative_slope)
            fitted = self.popularity_prior_
            popular = None if fitted is None else prior.popularity(fitted, new)
            bias = np.asarray(prior.biases(learned, popular, float(self.popularity)), np.float32)
            self.item_bias_ = np.concatenate([self.item_bias_, bias])
            rows = training.biased_items(vectors, bias, float(self.tau))
            searched = np.vstack([biased, rows])
            self._biased_cache = (self.item_factors_, self.item_bias_, searched)
        self.item_embeddings_ = np.vstack([self.item_embeddings_, new])
        self._histories.grow_items(self.n_items_)  # no row changes: O(1)
        # Rows appended: the item index (exact or approximate) adds only those.
        self._items_changed(start, searched)
        return np.arange(start, self.n_items_, dtype=np.int32)

    def _item_vectors(self, x: Any) -> np.ndarray:
        dim = self.item_embeddings_.shape[1]
        if holds_text(x):
            hyperparameters.encoder(self.encoder)  # it may have been set after fit
            # As ContentRecommender: a str is one text; one row per text, checked before any
            # change (a short or long answer would add the wrong number of items).
            x = check.encoded(self._text_encoder(), texts(x, "items"), dim)
            name = "the encoded texts"
        else:
            name = "items"
        if isinstance(x, list | tuple) and not x:
            raise ValueError("items is empty; give at least one embedding or text")
        new, _ = check.as_float32_matrix(x, name, allow_1d=True)
        if new.shape[1] != dim:
            raise ValueError(
                f"{name} must have dimension {dim} like the item embeddings, got {new.shape[1]}; "
                "use the encoder that embedded the items"
            )
        return checks.scale(new, name)

    def _explain(self, u: int, i: int, k: int) -> pd.DataFrame:
        """The history items behind ``u``'s score for ``i``, with their shares.

        The score is ``v_u · v_i`` with ``v_u = h_u / ||h_u||`` and ``h_u`` the mean of the
        network output ``MLP(x_u)`` and the propagation layers. LeakyReLU is piecewise linear:
        at the user's own input, ``MLP(x) = J x + c`` exactly (``J`` the network with the
        user's activation pattern frozen), and ``x_u`` is a weighted mean of the history's
        embeddings; each propagation layer is a weighted sum over the history too. So every
        history item ``j`` gets ``(w_j / W) J e_j`` plus its propagation terms, dotted with
        ``v_i / ((layers + 1) ||h_u||)``; ``attrs["rest"]`` carries ``c``, the user's own
        text and the item bias ``tau * b(i)``. The split is exact up to float rounding.
        With ``user_vectors="items"``, ``v_u = sum_j w_j v_j / ||sum_j w_j v_j||``, so item
        ``j`` gets ``w_j v_j . v_i / ||sum_j w_j v_j||`` (the bias in ``rest``).
        """
        self._check_fitted_with()
        s = self.user_state_
        indices, data = self._histories.row(u)  # O(row), never the whole matrix
        weighted = data != 0  # stored zeros are seen but take no part in the score
        history = indices[weighted].astype(np.int32)
        weights = data[weighted].astype(np.float64)
        score = float(self.score(u, [i])[0])
        if s.item_sum is not None:  # v_u = sum_j w_j v_j / ||.||: item j adds w_j v_j . v_i / ||.||
            norm = float(np.linalg.norm(s.item_sum[u]))
            cosines = self.item_factors_[history].astype(np.float64) @ self.item_factors_[i]
            share = weights * cosines / norm if norm > 0 else np.zeros(history.size)
            return explanation(history, share, k, user=u, item=i, score=score)
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
        return explanation(history, contributions, k, user=u, item=i, score=score)


def _kernel_layout(rows: sp.csr_array) -> sp.csr_array:
    """Canonical ``rows`` with the histories' dtypes: int64 indptr, int32 indices, float32."""
    return check.csr_from_arrays(
        rows.shape,
        rows.indptr.astype(np.int64),
        rows.indices.astype(np.int32),
        rows.data.astype(np.float32),
    )
