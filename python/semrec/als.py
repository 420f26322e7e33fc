"""Alternating least squares matrix factorisation (C++ kernel: ``cpp/semrec/als.cpp``).

Implicit feedback follows Hu, Koren & Volinsky (2008): every user-item cell has preference 1
if the user interacted with the item and 0 otherwise, weighted by the confidence
``c = 1 + alpha * r`` (or ``1 + alpha * log1p(r / epsilon)``). Explicit feedback fits the observed
ratings only, optionally with global, user and item biases. Each half-step solves every row of
one side exactly (Cholesky) or approximately (a few warm-started conjugate-gradient steps that
never form the per-row matrix), in parallel, with the GIL released. The steps themselves are
:class:`semrec.als_solve.ALSSolve`, shared with :func:`semrec.distributed.fit_als`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp
from tqdm import tqdm

from semrec import _hyperparameters as hyperparameters
from semrec import _validation as check
from semrec._base import Recommender
from semrec._histories import Histories, RowBuffer
from semrec._model_lock import cache_lock, fits_model, reads_model
from semrec._native import core
from semrec._persist import Saved, csr_arrays
from semrec._scoring import nearest
from semrec._seen import scipy_view
from semrec._threads import resolve_num_threads
from semrec.als_solve import LARGEST_RATING, SETTINGS, ALSSolve, KernelRows, add_weight

logger = logging.getLogger("semrec")

Callback = Callable[[int, float, float | None], Any]


class _Stale:  # the items' gram before its first use since they changed
    def __reduce__(self) -> str:
        return "_STALE"  # pickle and deepcopy give back this module's one instance


_STALE = _Stale()
_LIVE = ": a read-only view that later fit iterations (user factors: also update and fold_in) "
_LIVE += "may change in place; .copy() it to keep a snapshot"


def _read_only(parts: tuple[np.ndarray, np.ndarray | None]) -> tuple[np.ndarray, Any]:
    """Views of the model's arrays that refuse writes: an edit in place would reach ``score``
    but not the search index or the cached Gram matrix (``from_factors`` builds a model)."""
    views = tuple(None if part is None else part.view() for part in parts)
    for view in (v for v in views if v is not None):
        view.flags.writeable = False
    return views  # type: ignore[return-value]


def _learned(users: bool, part: int, doc: str) -> property:
    """A read-only attribute: the factors (part 0) or biases (1) of one side."""
    return property(lambda self: self._views(users=users)[part], doc=doc + ".")


class ALS(Recommender):
    """Matrix factorisation by alternating least squares, for implicit or explicit feedback.

    Parameters
    ----------
    factors : int, default 64
        Dimension of the user and item factors.
    regularization : float, default 0.01
        L2 penalty ``lambda`` on every factor (and bias), not scaled by the number of entries.
        At most 3.4e38 (float32), and 1e18 with ``solver="cg"``. Large explicit ratings with
        ``"cg"`` want it scaled with them (see ``solver``).
    alpha : float, default 40.0
        Implicit feedback: confidence slope, ``c = 1 + alpha * r`` (``"linear"``) or
        ``c = 1 + alpha * log1p(r / epsilon)`` (``"log"``). Ignored for explicit feedback.
    iterations : int, default 15
        Full sweeps (users, then items).
    solver : {"cg", "cholesky"}, default "cg"
        ``"cg"``: ``cg_steps`` conjugate-gradient steps per row, warm-started from the previous
        solution (fast, converges over the iterations). ``"cholesky"``: the exact solution.
        ``"cg"`` computes in float32 and stalls, without a warning, on explicit ratings far
        from 1 in scale: ratings 1e5 to 5e5 (200 x 100, 2,000 ratings, default
        regularization) keep a relative training RMSE of 0.71 against 0.053 with
        ``"cholesky"``, whatever ``cg_steps`` (30) or ``iterations`` (200); ratings near 1e-9
        (regularization 1e-11) give 0.53 against 0.055. Use ``"cholesky"``, rescale the ratings
        to about 1 (divide by their maximum), or scale ``regularization`` with large ratings
        (1e3 for the 1e5 ratings: 0.045).
    cg_steps : int, default 3
        Conjugate-gradient steps per row and half-step (only for ``solver="cg"``). More steps
        do not cure the stall on ratings far from 1 (see ``solver``).
    feedback : {"implicit", "explicit"}, default "implicit"
        Interaction weights are confidences (clicks, counts) or ratings to reproduce.
    confidence : {"linear", "log"}, default "linear"
        Implicit confidence formula, see ``alpha``.
    epsilon : float, default 1.0
        Scale inside the ``"log"`` confidence; ``r / epsilon`` must stay within float32.
    biases : bool, default False
        Explicit feedback: also learn a global mean and user and item biases.
    calculate_training_loss : bool, default False
        Compute the training loss after each iteration (passed to the callback and the progress
        bar; costs about one extra half-step).
    random_state : None, int or numpy.random.Generator
        Seeds the initial factors. The same seed gives the same factors for any thread count.
    num_threads : int, optional
        ``None`` uses :func:`semrec.get_num_threads`, ``0`` all cores.
    show_progress : bool, optional
        Show a tqdm progress bar during ``fit``; ``None`` shows it when stderr is a terminal.

    Attributes
    ----------
    user_factors_, item_factors_ : ndarray of float32, shape (n, factors)
        Read-only views that later iterations, ``update`` and ``fold_in`` may change in
        place: ``.copy()`` one to keep a snapshot (in a ``fit`` callback, say).
    user_biases_, item_biases_ : ndarray of float32 or None
        Learned biases (explicit feedback with ``biases=True``), else None.
    global_mean_ : float
        Mean training rating with ``biases=True``, else 0.
    interactions_ : scipy.sparse.csr_array
        The training interactions (users x items), updated by ``update`` and ``fold_in``:
        read-only views of the model's arrays (a write raises); ``.copy()`` it to edit.
    item_counts_ : ndarray of int64, shape (n_items,)
        Each item's non-zero interactions in the data its factors were fitted on (``fit``,
        ``from_factors``); ``update`` and ``fold_in`` refit users only and leave them as they
        are. A file saved before semrec kept them gives the counts of its saved interactions,
        streamed ones included.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, semrec
    >>> clicks = sp.random_array((50, 30), density=0.2, format="csr", rng=0, dtype=np.float32)
    >>> model = semrec.ALS(factors=8, iterations=5, random_state=0, show_progress=False)
    >>> ids, scores = model.fit(clicks).recommend(0, k=3)
    >>> ids.shape
    (3,)
    """

    _PARAMS = (
        "factors", "regularization", "alpha", "iterations", "solver", "cg_steps", "feedback",
        "confidence", "epsilon", "biases", "calculate_training_loss", "random_state",
        "num_threads", "show_progress",
    )  # fmt: skip
    _FORMAT_NAME = "semrec.ALS"
    _FITTED_BY = "_users"
    _HINTS = {  # noqa: RUF012 (class constant)
        "add_items": "ALS learns nothing about an item without interactions; wrap the model in "
        "semrec.ColdStartALS(als, item_embeddings) to add items from their text embeddings",
    }

    def __init__(
        self,
        factors: int = 64,
        *,
        regularization: float = 0.01,
        alpha: float = 40.0,
        iterations: int = 15,
        solver: str = "cg",
        cg_steps: int = 3,
        feedback: str = "implicit",
        confidence: str = "linear",
        epsilon: float = 1.0,
        biases: bool = False,
        calculate_training_loss: bool = False,
        random_state: int | np.random.Generator | None = None,
        num_threads: int | None = None,
        show_progress: bool | None = None,
    ) -> None:
        self._set_params(locals())

    @property
    def _problem(self) -> ALSSolve:
        """The solve of the current hyperparameters (checked; rebuilt when they change)."""
        key = tuple(getattr(self, name) for name in SETTINGS)
        cached = self.__dict__.get("_solve")
        if cached is None or cached[0] != key:
            self._solve = cached = (key, ALSSolve.for_model(self, kernels=core))
        return cached[1]

    @property
    def _fitted_problem(self) -> ALSSolve:
        """``_problem`` for the verbs of the fitted model, whose learned arrays it must still
        describe: ``factors``, ``biases`` or ``feedback`` changed since fit would have them
        misread (ratings solved as confidences, or the reverse)."""
        return self._check_layout(self._problem)

    def _check_layout(self, solve: ALSSolve) -> ALSSolve:
        """Refuse ``factors``, ``biases`` or ``feedback`` changed since fit (also at save: a
        file of another layout with the same width would load as a silently wrong model)."""
        now = {name: getattr(solve, name) for name in self._fitted_layout}
        hyperparameters.unchanged_since_fit(now, self._fitted_layout, "the learned arrays")
        return solve

    # -- Training --------------------------------------------------------------------------------
    @fits_model
    def fit(
        self, interactions: sp.csr_array | sp.csr_matrix, *, callback: Callback | None = None
    ) -> ALS:
        """Learn user and item factors from a users x items interaction matrix.

        Parameters
        ----------
        interactions : scipy.sparse CSR, shape (n_users, n_items)
            Weights: counts or other confidences (implicit, >= 0, with ``alpha * r`` finite
            in float32) or ratings (explicit, within ±1e30, the bound of ``fold_in``,
            ``update`` and ``load`` too). Duplicates are summed. Every stored entry is seen;
            only non-zero weights are learnt from.
        callback : callable, optional
            Called as ``callback(iteration, seconds, loss)`` after each iteration; ``loss`` is
            None unless ``calculate_training_loss=True``.

        Returns
        -------
        self

        Raises
        ------
        TypeError, ValueError
            Not a CSR matrix, empty, NaN/inf weights, negative weights for implicit feedback,
            bad hyperparameters (a bad ``random_state``, ``factors`` too large for the
            memory), or training diverged (NaN/inf factors).

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> r = sp.csr_array(np.array([[5, 0, 3], [0, 4, 1]], dtype=np.float32))
        >>> model = semrec.ALS(factors=2, feedback="explicit", regularization=0.1,
        ...                    random_state=0, show_progress=False).fit(r)
        >>> model.user_factors_.shape
        (2, 2)
        """
        solve, threads = self._checked_settings()
        check.callback(callback)
        train = check.canonical_csr(interactions, "interactions", nonnegative=solve.implicit)
        weights = check.without_zeros(train)
        if weights.nnz == 0:
            raise ValueError(
                "interactions has no non-zero entries (only zero weights); there is nothing to "
                "learn from"
            )
        n_users, n_items = train.shape
        solve.check_memory(n_users, n_items, threads)
        rng = hyperparameters.generator(self.random_state)
        mean = float(weights.data.mean(dtype=np.float64)) if self.biases else 0.0
        users, items = solve.initial_factors(rng, n_users, n_items)
        self._install(users, items, train, mean, gram=False)  # a callback reads them
        by_user = solve.kernel_rows(train, mean)
        # The kernel's own parallel transpose: scipy's takes longer than an iteration at scale.
        by_item = KernelRows(*core.csr_transpose(*by_user, n_items, threads))
        show = hyperparameters.progress(self.show_progress)
        bar = tqdm(total=self.iterations, desc="ALS", unit="it", disable=not show)
        try:
            for iteration in range(self.iterations):
                start = time.perf_counter()
                solve.half_step(by_user, items, users, threads, swap=False)
                solve.half_step(by_item, users, items, threads, swap=True)
                self._user_views = self._item_views = None
                self._items_changed()  # in place: a callback's recommend re-indexes them
                seconds = time.perf_counter() - start
                if not (np.isfinite(users).all() and np.isfinite(items).all()):
                    raise ValueError(
                        f"ALS diverged at iteration {iteration}: the factors contain NaN or inf. "
                        "Increase regularization, or reduce alpha or the interaction weights."
                    )
                training = self.calculate_training_loss
                loss = solve.loss(by_user, users, items, threads) if training else None
                bar.update(1)
                if loss is not None:
                    bar.set_postfix(loss=f"{loss:.5g}")
                logger.debug("ALS iteration %d: %.3fs, loss %s", iteration, seconds, loss)
                if callback is not None:
                    callback(iteration, seconds, loss)
        finally:
            bar.close()
        self._install(users, items, train, mean)
        return self

    @classmethod
    def from_factors(
        cls,
        user_factors: np.ndarray,
        item_factors: np.ndarray,
        interactions: Any = None,
        *,
        user_biases: np.ndarray | None = None,
        item_biases: np.ndarray | None = None,
        global_mean: float = 0.0,
        **params: Any,
    ) -> ALS:
        """A fitted model from given factors (a distributed fit, another library, a file).

        Parameters
        ----------
        user_factors, item_factors : ndarray of float32, shape (n_users / n_items, factors)
        interactions : scipy.sparse CSR, shape (n_users, n_items), optional
            The users' histories (what ``exclude_seen`` excludes, what ``update`` adds to);
            default: none.
        user_biases, item_biases : ndarray of float32, optional
            Required with ``biases=True`` (explicit feedback), not allowed otherwise.
        global_mean : float, default 0.0
            Added to every score (explicit feedback with biases).
        **params
            Hyperparameters of :class:`ALS`; ``factors`` defaults to the factors' width. They
            define the model's fold-in and update.

        Examples
        --------
        >>> import numpy as np, semrec
        >>> rng = np.random.default_rng(0)
        >>> users = rng.standard_normal((5, 3), dtype=np.float32)
        >>> items = rng.standard_normal((7, 3), dtype=np.float32)
        >>> model = semrec.ALS.from_factors(users, items, regularization=0.1)
        >>> bool(np.allclose(model.score(0, np.arange(7)), items @ users[0]))
        True
        """
        x, _ = check.as_float32_matrix(user_factors, "user_factors")
        params.setdefault("factors", x.shape[1])
        model = cls(**params)
        solve = model._problem
        users, items = solve.internal(user_factors, item_factors, user_biases, item_biases)
        shape = (users.shape[0], items.shape[0])
        if shape[1] == 0:
            raise ValueError(
                "item_factors has 0 rows: a model needs at least one item (one row of "
                f"item_factors per item), got shape {np.shape(item_factors)}"
            )
        solve.check_memory(*shape, resolve_num_threads(model.num_threads))
        if interactions is None:
            interactions = sp.csr_array(shape, dtype=np.float32)
        train = check.canonical_csr(
            interactions, "interactions", nonnegative=solve.implicit, allow_empty=True
        )
        if train.shape != shape:
            raise ValueError(
                f"interactions must have shape {shape} (users x items), got {train.shape}"
            )
        solve.check_weights(train.data)
        bound = LARGEST_RATING  # the mean is on the ratings' scale
        mean = check.number(global_mean, "global_mean", minimum=-bound, maximum=bound)
        model._install(users, items, train, mean)
        return model

    def _install(
        self,
        users: np.ndarray,
        items: np.ndarray,
        train: sp.csr_array,
        mean: float,
        *,
        gram: bool = True,
        counts: np.ndarray | None = None,
    ) -> None:
        """Make (users, items) in the internal layout, the histories and the mean the model
        (``gram``: the items' gram fold-in solves against now, not at first use; ``counts``:
        the items' fitted interactions, default: the non-zero entries of ``train``)."""
        if counts is None:
            counts = np.bincount(train.indices[train.data != 0], minlength=items.shape[0])
        self.item_counts_ = counts.astype(np.int64, copy=False)
        # Spare rows for new users: a new user costs O(factors), not O(users).
        self._buffer = RowBuffer(users, fill=self._problem.initial_users(1)[0])
        self._users, self._items = users, items
        layout = ("factors", "biases", "feedback")
        self._fitted_layout = {n: getattr(self._problem, n) for n in layout}
        self._user_views = self._item_views = None
        self._items_changed()
        self._histories = Histories(train)
        self.global_mean_ = mean
        if gram:  # now, not at a server's first click
            self._items_gram(self._problem)

    def _items_changed(self, first: int = 0, items: np.ndarray | None = None) -> None:
        self._gram = _STALE  # fit changes the items in place each iteration
        super()._items_changed(first, items)

    def _items_gram(self, solve: ALSSolve) -> np.ndarray | None:
        """The items' gram that fold-in and update solve against (None for explicit feedback),
        computed on first use after the items change: a fit pays for it only when its
        callback folds in, and then against that iteration's items."""
        if self._gram is _STALE:
            with cache_lock(self):  # side-by-side fold-ins of new users: one computes it
                if self._gram is _STALE:
                    self._gram = solve.gram(self._items, resolve_num_threads(self.num_threads))
        return self._gram

    # -- The learned state -----------------------------------------------------------------------
    def _shape(self) -> tuple[int, int]:
        return self._users.shape[0], self._items.shape[0]

    user_factors_ = _learned(True, 0, "User factors, float32 (n_users, factors)" + _LIVE)
    user_biases_ = _learned(True, 1, "User biases (explicit feedback with biases), else None")
    item_factors_ = _learned(False, 0, "Item factors, float32 (n_items, factors)" + _LIVE)
    item_biases_ = _learned(False, 1, "Item biases (explicit feedback with biases), else None")

    def _views(self, *, users: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """(factors, biases) of one side, built once per change (not on every read)."""
        self._check_fitted()
        solve = self._fitted_problem  # checked on every read, cached views or not
        if users and self._user_views is None:
            self._user_views = _read_only(solve.split(self._users, users=True))
        if not users and self._item_views is None:
            self._item_views = _read_only(solve.split(self._items, users=False))
        return self._user_views if users else self._item_views

    @property
    def interactions_(self) -> sp.csr_array:
        """The training interactions (users x items), including fold-in and update changes.

        Streaming changes are kept per user and merged into one CSR on the first read after
        them (one pass over all interactions). Read-only views of the model's arrays (a write
        or ``eliminate_zeros`` raises ``ValueError``): ``.copy()`` it to edit.
        """
        self._check_fitted()
        return scipy_view(self._histories.matrix())

    # -- The contract's hooks (recommend, score, similar_items come from Recommender) ------------
    @property
    def _score_offset(self) -> float:  # type: ignore[override]
        return self.global_mean_

    def _vectors(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._users[users], self._items  # internal layout: the dot includes the biases

    def _seen_rows(self, users: np.ndarray) -> sp.csr_array:
        return self._histories.seen(users)

    def _item_space(self) -> tuple[np.ndarray, str]:
        return self.item_factors_, "cosine"

    @reads_model
    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Predicted rating (or score) of each (user, item) pair, elementwise.

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> r = sp.csr_array(np.array([[5, 0], [0, 3]], dtype=np.float32))
        >>> model = semrec.ALS(factors=2, feedback="explicit", biases=True, regularization=0.1,
        ...                    random_state=0, show_progress=False).fit(r)
        >>> model.predict([0, 1], [0, 1]).shape
        (2,)
        """
        self._check_fitted()
        u, _ = check.index_array(users, "users", self.n_users_, "user")
        i, _ = check.index_array(items, "items", self.n_items_, "item")
        if u.shape != i.shape:
            raise ValueError(
                f"users and items must have the same length, got {u.size} and {i.size}"
            )
        pred = np.einsum("ij,ij->i", self._users[u], self._items[i], dtype=np.float32)
        return pred + np.float32(self.global_mean_)

    def similar_users(self, users: int | np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` users whose factors have the highest cosine to each given user (not itself).

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> model = semrec.ALS(factors=2, random_state=0, show_progress=False)
        >>> model.fit(sp.csr_array(np.eye(3, dtype=np.float32))).similar_users(0, k=1)[0].shape
        (1,)
        """
        ids, scalar = self._user_ids(users)
        k = check.result_width(k, ids.size, self.n_users_, "users")
        found, scores = nearest(self.user_factors_, ids, k, "cosine", self.num_threads)
        return (found[0], scores[0]) if scalar else (found, scores)

    # -- Real time: an exact solve of the changed users against the fixed item factors -----------
    def _fold_in(
        self, history: Any, users: np.ndarray | None, times: np.ndarray | None
    ) -> np.ndarray:
        solve = self._fitted_problem
        rows = check.canonical_csr(history, "history", nonnegative=solve.implicit, allow_empty=True)
        gram = self._items_gram(solve)
        target = solve.solve_histories(rows, self._items, gram, self.global_mean_)
        if users is not None:
            if users.size:
                self._users = self._buffer.grow(int(users.max()) + 1)
            self._users[users] = target
            self._user_views = None
            self._histories.set_rows(users, rows)
        return np.ascontiguousarray(target[:, : self.factors])

    def _update(self, user: int, item: int, weight: float, t: float | None) -> np.ndarray:
        indices, weights = add_weight(*self._histories.row(user), user, item, weight)
        solve = self._fitted_problem  # the weights' bounds are fit's: solve_histories applies them
        if solve.implicit and weights.size and weights.min() < 0:
            raise ValueError(
                f"update would leave user {user} with weight {weights.min()} on an item; "
                "implicit feedback needs weights >= 0"
            )
        indptr = np.array([0, indices.size], dtype=np.int64)
        row = check.csr_from_arrays((1, self.n_items_), indptr, indices.astype(np.int32), weights)
        gram = self._items_gram(solve)
        why = f"weight (user {user}'s history)"
        target = solve.solve_histories(row, self._items, gram, self.global_mean_, why)
        self._users = self._buffer.grow(user + 1)
        self._users[user] = target[0]
        self._user_views = None
        self._histories.set_row(user, indices, weights)
        return target[0, : self.factors].copy()

    # -- Persistence: the internal factor matrices, the histories and the mean -------------------
    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        self._check_fitted()
        self._check_layout(self._problem)
        train = self._histories.matrix()
        arrays = {"users": self._users, "items": self._items, "item_counts": self.item_counts_}
        return {"global_mean": self.global_mean_}, arrays | csr_arrays(train, "interactions")

    def _checked_settings(self) -> tuple[ALSSolve, int]:
        """The solve and thread count of the hyperparameters, every one checked (by ``fit``, and
        by ``load`` for a file's: an edited ``iterations="x"`` would fail only at a refit)."""
        check.positive_int(self.iterations, "iterations")
        check.flag(self.calculate_training_loss, "calculate_training_loss")
        hyperparameters.random_state(self.random_state)
        hyperparameters.progress(self.show_progress)
        return self._problem, resolve_num_threads(self.num_threads)

    def _restore(self, saved: Saved) -> None:
        solve, _ = self._checked_settings()
        users = np.ascontiguousarray(saved.array("users", np.float32, (None, solve.dims)))
        items = np.ascontiguousarray(saved.array("items", np.float32, (None, solve.dims)))
        if solve.biases and not ((users[:, -1] == 1).all() and (items[:, -2] == 1).all()):
            raise saved.error("users/items", "lost their constant bias columns")
        mean = float(saved.value("global_mean", (int, float)))
        if not abs(mean) <= LARGEST_RATING:
            raise saved.error("global_mean", f"is {mean:g}, beyond float32 scores' range")
        shape = (users.shape[0], items.shape[0])
        train = saved.csr("interactions", shape, nonnegative=solve.implicit)
        try:  # what fit, fold_in and update accept, no more
            solve.check_weights(train.data)
        except ValueError as exc:
            raise saved.error("interactions_data", f"is refused: {exc}") from None
        counts = None  # files of earlier versions: counted on the saved (streamed) interactions
        if "item_counts" in saved.arrays:
            counts = saved.array("item_counts", np.int64, (items.shape[0],), minimum=0)
        self._install(users, items, train, mean, counts=counts)

    # -- Explanations ----------------------------------------------------------------------------
    def _explain(self, u: int, i: int, k: int) -> Any:
        """How the score splits into terms (see :meth:`explain`).

        ALS is linear in the user's history (Hu, Koren & Volinsky 2008, section 5): the user's
        factors are ``x_u = W_u sum_j c_uj p_uj y_j`` with ``W_u = (Y^T C_u Y + lambda I)^-1``,
        so the score splits into one term per history item, ``c_uj * y_i^T W_u y_j`` (implicit;
        explicit feedback: ``(r_uj - mean - b_j) * z_i^T W_u z_j`` over the rated items, with
        ``z = [y, 1]`` when there are biases). The terms add up to the score (``attrs["rest"]``
        is then ``mean + b_i``, 0 without biases) **exactly, up to float rounding, when the
        user's factors are the exact solve against the current item factors**: after
        :meth:`fold_in` or :meth:`update`. After ``fit`` the user was last solved against the
        previous iteration's item factors (and only approximately with ``solver="cg"``), so a
        small ``rest`` remains, shrinking as training converges (tests/test_explain.py).
        """
        from semrec.explain import explanation

        ids, parts = history_terms(self, u, i)
        score = float(self.score(u, [i])[0])
        return explanation(ids, parts, k, user=u, item=i, score=score)


def history_terms(model: ALS, user: int, item: int | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The history items of ``user`` and their terms of the exact solve's score (float64), for
    one of ``model``'s items or for an item vector ``[y_i, 1]`` (``[y_i]`` without biases)
    the ALS never saw: what :class:`semrec.ColdStartALS` explains its mapped items with.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, semrec
    >>> from semrec.als import history_terms
    >>> r = sp.csr_array(np.array([[1, 1, 0], [0, 1, 1]], dtype=np.float32))
    >>> model = semrec.ALS(factors=2, random_state=0, show_progress=False).fit(r)
    >>> ids, terms = history_terms(model, 0, 2)
    >>> ids.tolist(), terms.shape
    ([0, 1], (2,))
    """
    history = model._histories.rows(np.array([user]))  # that row: interactions_ would merge
    return model._fitted_problem.contributions(history, model._items, item, model.global_mean_)


def user_rows(model: ALS, users: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """(factors, biases or None) of ``users`` only (with biases, ``user_factors_`` copies all).

    Examples
    --------
    >>> import numpy as np, semrec
    >>> semrec.als.user_rows(semrec.ALS.from_factors(*np.ones((2, 3, 2), np.float32)), [1])
    (array([[1., 1.]], dtype=float32), None)
    """
    return model._fitted_problem.split(model._users[users], users=True)
