"""``TextCF``: collaborative filtering learned on top of frozen language-model embeddings.

A small network shared by users and items maps text embeddings into a space where a user's
vector points at the items they interact with (AlphaRec, Sheng et al., ICLR 2025). It is
trained on interactions in C++ on LibTorch (``cpp/semrec/train/textcf.cpp``); every vector is a
function of text, so new items and new users need one forward pass and no retraining.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from semrec import _hyperparameters as hyperparameters
from semrec import _validation as check
from semrec._base import Recommender
from semrec._histories import Histories
from semrec._model_lock import fits_model
from semrec._persist import Saved, csr_arrays
from semrec._seen import KeepsHistories
from semrec._threads import resolve_num_threads
from semrec.datasets import Dataset
from semrec.datasets._embeddings import check_alignment
from semrec.textcf import _checks as checks
from semrec.textcf import _coldmap as coldmap
from semrec.textcf import _network as network
from semrec.textcf import _persistence as persistence
from semrec.textcf import _popularity as prior
from semrec.textcf import _training as training
from semrec.textcf._network import Graph, UserState
from semrec.textcf._realtime import RealTimeVerbs

NETWORKS = ("mlp", "linear")
AFTER_TRAINING = checks.AFTER_TRAINING  # fitted from text after training: with_options
USER_VECTORS = ("network", "items")


class TextCF(RealTimeVerbs, KeepsHistories, Recommender):
    """Recommend with a network trained on interactions over language-model embeddings.

    ``item vector = normalise(MLP(e_i))`` and ``user vector = normalise(MLP(x_u))``, where
    ``x_u`` is the mean of the embeddings of the user's items weighted by the interaction
    weights (plus the user's own text embedding, if given, with weight ``user_text_weight``).
    One MLP (``Linear -> LeakyReLU -> Linear``, or a single ``Linear`` with
    ``network="linear"``) serves users and items. With ``layers > 0``, LightGCN-style
    propagation over the symmetric-normalised user-item graph averages each node's network
    output with its ``1..layers``-hop neighbourhood before normalising. Scores are cosines,
    plus ``tau * b(i)`` with ``item_bias``.

    Training minimises InfoNCE (sampled softmax): for each training interaction, the positive
    item against ``negatives`` items drawn uniformly (with replacement) from the items that have
    training interactions, at temperature ``tau``; Adam, batches of ``batch_size``
    interactions, ``epochs`` passes, optionally early-stopped on a validation split.

    Cosines know nothing of popularity. With ``item_bias=True`` each logit gains
    ``b(i) = w_b . g_i``, a learned linear function of the item's hidden layer ``g_i`` (of its
    embedding with ``network="linear"``), trained jointly: against uniform negatives it learns
    popularity-like values, and since it is a function of text, cold and added items get one.

    Parameters
    ----------
    item_embeddings : ndarray of float32 or ItemEmbeddings, shape (n_items, dim)
        One text embedding per item (e.g. ``semrec.TextEncoder().encode_items(dataset)``);
        any dim.
    user_embeddings : ndarray of float32, shape (n_users, dim), optional
        Users' own text embeddings (same encoder), mixed into their input.
    network : {"mlp", "linear"}, default "mlp"
    hidden : int, default 768
        Width of the MLP's hidden layer (ignored by ``"linear"``).
    factors : int, default 64
        Dimension of the user and item vectors.
    layers : int, default 2
        Propagation layers (0: none, at most 16; AlphaRec's 2 by default). On MovieLens-100k's
        validation split 0 scored a little higher (NDCG@10 0.1474 against 0.1452 at learning
        rate 1e-3, tau 0.15) and is cheaper (only the batch's users and the items go through
        the network).
    tau : float, default 0.15
        Softmax temperature.
    negatives : int or "all", default 256
        Sampled negative items per positive; ``"all"``: the full softmax over every item
        with training interactions (computed from the same dense scores, at no extra cost).
    shared_negatives : bool, default False
        Draw the ``negatives`` once per batch and score every positive of the batch against
        those same items, instead of drawing them per positive. With ``layers=0`` a batch
        then runs the network over its users, positives and negatives only (when they are
        under half the catalogue), so an epoch's cost stops growing with the catalogue: for
        large catalogues (docs/guides/textcf.md, "Cost per epoch"). Raise ``negatives``
        with it: on MovieLens-100k 1,024 shared negatives matched 256 per positive, 256
        shared lost 11% of NDCG@10.
    batch_size : int, default 2048
        Interactions per Adam step (more than the training interactions: one batch of all).
    learning_rate : float, default 1e-3
        Adam's step size (1e-3 beat AlphaRec's 5e-4 in all 4 pairs of the benchmark's grid
        on MovieLens-100k's validation split, with ``averaging``).
    weight_decay : float, default 0.0
        L2 penalty added to the gradient (``torch.optim.Adam``'s ``weight_decay``).
    epochs : int, default 12
        Most passes over the interactions (the validation-tuned count on MovieLens-100k with
        the defaults; with ``validation``, ``patience`` may stop earlier).
    patience : int or None, default 3
        With ``fit(..., validation=...)``: stop after this many epochs without a better
        validation NDCG@10, and keep the best epoch's weights. ``None``: run every epoch (the
        best epoch is still kept).
    averaging : float, default 0.8
        Decay of an exponential moving average of the network weights over epochs
        (``a_t = averaging * a_(t-1) + (1 - averaging) * w_t``): the averaged network is the
        one validated, kept and used for the vectors, while training goes on from its own
        weights. It damps the epoch-to-epoch swing of the rankings; 0 keeps the last epoch's
        weights.
    negative_slope : float, default 0.01
        LeakyReLU slope for negative inputs.
    user_text_weight : float, default 1.0
        Weight of a user's own text embedding among their interaction weights.
    item_bias : bool, default False
        Add the text-predicted item bias ``b(i)`` to the logits (and ``tau * b(i)`` to the
        scores). Neutral on MovieLens-100k's warm validation split (NDCG@10 0.1480 against
        0.1474 with layers 0, tau 0.15; within 0.0005 in the 3 other pairs), hence off.
    popularity : float, default 0.0
        Weight ``beta`` of the item's log popularity predicted from its text: after training,
        a ridge regression from the item embeddings to ``log(1 + training users)`` (closed
        form, training interactions only) gives ``p(i)``, and every item's logit bias gains
        ``beta * p(i)`` (its score ``tau * beta * p(i)``). Cold and added items get it from
        their text. It does not change training.
    popularity_penalty : float, default 10.0
        The ridge penalty of that regression.
    observed_popularity : float, default 0.0
        For the items with training interactions, the share (in [0, 1]) of ``p(i)`` taken by
        their observed ``log(1 + training users)`` (centred like the prediction) instead of the
        text prediction; items without interactions (cold, added) keep the prediction.
    cold_penalty : float or None, default None
        With a number, items without training interactions (cold items, and items added later
        with :meth:`add_items`) get their vectors from a ridge map instead of the network:
        after training, a closed-form ridge regression with this penalty from the warm items'
        embeddings to their fitted unit vectors (``f(e) = e W + c``, intercept unpenalised),
        applied to the cold items' embeddings and kept unnormalised (the norm shrinks for
        texts unlike the training items'). The network, trained on warm items, keeps fitting
        details of their texts that do not carry over to new ones (docs/guides/textcf.md has
        the figures). Warm items keep the network's vectors; it does not change training.
        None: the network for every item.
    cold_neighbours : int or None, default None
        With ``k``, those items get instead the mean of the fitted vectors of the ``k`` warm
        items whose embeddings have the highest cosine to theirs (unnormalised; ties: the lower
        index). Exclusive with ``cold_penalty``; it does not change training.
    user_vectors : {"network", "items"}, default "network"
        ``"network"``: a user's vector is ``normalise(MLP(x_u))`` (with the propagation
        layers), as trained. ``"items"``: the weighted mean of the unit vectors of the user's
        items, normalised (``v_u ~ sum_j w_uj v_j``): the network then scores like a learned
        item-item neighbourhood, which is what wins for users with a few interactions. For
        fitted, folded-in and updated users alike (validation during ``fit`` measures these
        vectors); not with ``user_embeddings``.
    encoder : semrec.TextEncoder, optional
        Encodes texts given to :meth:`add_items` (default: the bundled model, on first use).
        Not saved: after ``load``, pass it again (``model.encoder = enc``) if it was not the
        bundled model; until then texts are refused rather than encoded by the wrong model.
    random_state : None, int or numpy.random.Generator
        Seeds the initial weights, the order of the interactions and the negatives.
    num_threads : int, optional
        ``None`` uses :func:`semrec.get_num_threads`, ``0`` all cores. Training is
        deterministic for a given ``random_state`` and thread count.
    show_progress : bool, optional
        Progress bar over the training interactions, batch by batch (``None``: when stderr
        is a terminal).

    Attributes
    ----------
    user_factors_, item_factors_ : ndarray of float32, shape (n, factors)
        Unit vectors; ``score = user · item`` (``+ tau * item_bias_[item]`` with the bias).
    item_bias_ : ndarray of float32, shape (n_items,), or None
        Each item's logit bias ``b(i)`` (None without ``item_bias`` and ``popularity``): the
        learned one plus ``popularity * p(i)``.
    popularity_prior_ : semrec.textcf._popularity.PopularityPrior or None
        The ridge fit ``p(e) = e . weights + offset`` (None when ``popularity`` is 0).
    cold_map_ : semrec.textcf._coldmap.TextMap or None
        The map that gives cold and added items their vectors: the ridge map
        ``f(e) = e @ weights + offset`` (``cold_penalty``), the neighbour map
        (``_coldmap.NeighbourMap``, ``cold_neighbours``), or None.
    weights_ : dict of str to ndarray
        The trained network (``l1.weight`` (hidden, dim), ``l1.bias``, ``l2.weight``,
        ``l2.bias``; ``l1.*`` only for ``"linear"``; ``bias.weight`` (1, hidden or dim) with
        ``item_bias``).
    graph_ : semrec.textcf._network.Graph
        The items' propagation layer outputs and training degrees (for fold-in and updates).
    user_state_ : semrec.textcf._network.UserState
        Each user's embedding sum, weight and graph sums (what ``update`` changes in O(dim)).
    history_ : list of dict
        Per epoch: ``epoch`` (counted from 0), ``loss``, ``ndcg`` (validation, or None),
        ``seconds``.
    best_epoch_ : int
        The epoch whose weights were kept, from 0 (``best_epoch_ + 1`` epochs were trained).

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp, semrec
    >>> rng = np.random.default_rng(0)
    >>> emb = rng.standard_normal((30, 16)).astype(np.float32)
    >>> clicks = sp.random_array((40, 30), density=0.2, format="csr", rng=0, dtype=np.float32)
    >>> model = semrec.TextCF(emb, hidden=32, factors=8, epochs=3, random_state=0,
    ...                       show_progress=False).fit(clicks)
    >>> model.recommend(0, k=3)[0].shape
    (3,)
    """

    _PARAMS: ClassVar[tuple[str, ...]] = (
        "network",
        "hidden",
        "factors",
        "layers",
        "tau",
        "negatives",
        "shared_negatives",
        "batch_size",
        "learning_rate",
        "weight_decay",
        "epochs",
        "patience",
        "averaging",
        "negative_slope",
        "user_text_weight",
        "item_bias",
        "popularity",
        "popularity_penalty",
        "observed_popularity",
        "cold_penalty",
        "cold_neighbours",
        "user_vectors",
        "encoder",
        "random_state",
        "num_threads",
        "show_progress",
    )
    _FORMAT_NAME: ClassVar[str] = "semrec.TextCF"
    _FITTED_BY: ClassVar[str] = "user_factors_"

    def __init__(
        self,
        item_embeddings: np.ndarray,
        *,
        user_embeddings: np.ndarray | None = None,
        network: str = "mlp",
        hidden: int = 768,
        factors: int = 64,
        layers: int = 2,
        tau: float = 0.15,
        negatives: int | str = 256,
        shared_negatives: bool = False,
        batch_size: int = 2048,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.0,
        epochs: int = 12,
        patience: int | None = 3,
        averaging: float = 0.8,
        negative_slope: float = 0.01,
        user_text_weight: float = 1.0,
        item_bias: bool = False,
        popularity: float = 0.0,
        popularity_penalty: float = 10.0,
        observed_popularity: float = 0.0,
        cold_penalty: float | None = None,
        cold_neighbours: int | None = None,
        user_vectors: str = "network",
        encoder: Any = None,
        random_state: int | np.random.Generator | None = None,
        num_threads: int | None = None,
        show_progress: bool | None = None,
    ) -> None:
        self.item_embeddings = item_embeddings
        self.user_embeddings = user_embeddings
        self.network = network
        self.hidden = hidden
        self.factors = factors
        self.layers = layers
        self.tau = tau
        self.negatives = negatives
        self.shared_negatives = shared_negatives
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.patience = patience
        self.averaging = averaging
        self.negative_slope = negative_slope
        self.user_text_weight = user_text_weight
        self.item_bias = item_bias
        self.popularity = popularity
        self.popularity_penalty = popularity_penalty
        self.observed_popularity = observed_popularity
        self.cold_penalty = cold_penalty
        self.cold_neighbours = cold_neighbours
        self.user_vectors = user_vectors
        self.encoder = encoder
        self.random_state = random_state
        self.num_threads = num_threads
        self.show_progress = show_progress

    def __repr__(self) -> str:
        def shape(a: Any) -> str:
            return "None" if a is None else f"<array {getattr(a, 'shape', None)}>"

        params = ", ".join(f"{p}={getattr(self, p)!r}" for p in self._PARAMS)
        return (
            f"TextCF(item_embeddings={shape(self.item_embeddings)}, "
            f"user_embeddings={shape(self.user_embeddings)}, {params})"
        )

    # -- training ----------------------------------------------------------------------------
    def _settings(self) -> training.Settings:
        check.choice(self.network, "network", NETWORKS)
        check.choice(self.user_vectors, "user_vectors", USER_VECTORS)
        checks.number(self.popularity, "popularity")
        checks.number(self.popularity_penalty, "popularity_penalty", positive=True)
        if checks.number(self.observed_popularity, "observed_popularity") > 1:
            raise ValueError(
                f"observed_popularity must be in [0, 1], got {self.observed_popularity}"
            )
        if self.cold_penalty is not None:
            checks.number(self.cold_penalty, "cold_penalty", positive=True)
        if self.cold_neighbours is not None:
            check.positive_int(self.cold_neighbours, "cold_neighbours")
            if self.cold_penalty is not None:
                raise ValueError("give cold_penalty (the ridge map) or cold_neighbours, not both")
        if self.user_vectors == "items" and self.user_embeddings is not None:
            raise ValueError(
                'user_vectors="items" builds users from their items only; give no '
                'user_embeddings, or use user_vectors="network"'
            )
        for name in ("hidden", "factors", "batch_size", "epochs"):
            check.positive_int(getattr(self, name), name)
        if isinstance(self.negatives, str) and self.negatives != "all":  # "ALL", "256"
            raise ValueError(f'negatives must be a positive int or "all", got {self.negatives!r}')
        negatives = (
            0 if self.negatives == "all" else check.positive_int(self.negatives, "negatives")
        )
        layers = checks.layers(self.layers)
        patience = None if self.patience is None else check.positive_int(self.patience, "patience")
        tau = checks.number(self.tau, "tau", positive=True)
        lr = checks.number(self.learning_rate, "learning_rate", positive=True)
        wd = checks.number(self.weight_decay, "weight_decay")
        slope = checks.number(self.negative_slope, "negative_slope")
        averaging = checks.number(self.averaging, "averaging")
        if averaging >= 1:
            raise ValueError(f"averaging must be in [0, 1), got {averaging}")
        checks.number(self.user_text_weight, "user_text_weight")
        for name in ("item_bias", "shared_negatives"):
            if not isinstance(getattr(self, name), bool | np.bool_):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.shared_negatives and negatives == 0:
            raise ValueError(
                'shared_negatives=True shares sampled negatives; negatives="all" samples none: '
                "give a number of negatives, or shared_negatives=False"
            )
        hyperparameters.random_state(self.random_state)
        hyperparameters.encoder(self.encoder)
        show = hyperparameters.progress(self.show_progress)
        return training.Settings(
            hidden=int(self.hidden) if self.network == "mlp" else 0,
            factors=int(self.factors),
            negative_slope=slope,
            layers=layers,
            tau=tau,
            negatives=negatives,
            shared_negatives=bool(self.shared_negatives),
            batch_size=int(self.batch_size),
            learning_rate=lr,
            weight_decay=wd,
            epochs=int(self.epochs),
            patience=patience,
            averaging=averaging,
            item_bias=bool(self.item_bias),
            user_vectors=str(self.user_vectors),
            seed=0,
            threads=resolve_num_threads(self.num_threads),
            show_progress=bool(show),
        )

    @fits_model
    def fit(
        self,
        interactions: Any,
        *,
        validation: Any = None,
        callback: training.Callback | None = None,
    ) -> TextCF:
        """Train the network on a users x items interaction matrix.

        Parameters
        ----------
        interactions : scipy.sparse CSR or Dataset, shape (n_users, n_items)
            Weights >= 0 (ratings, counts); they weight each user's mean embedding, and every
            interaction with a non-zero weight is a positive of the loss. A stored 0 is seen
            (never recommended back) but not learned from. With a Dataset, item embeddings
            that carry ids (:class:`semrec.datasets.ItemEmbeddings`) are checked to be aligned.
        validation : scipy.sparse CSR or Dataset, optional
            Held-out interactions of the same users and items (two Datasets must share their
            id maps, as parts of one ``semrec.split``); each stored entry is a relevant
            item. After each epoch the model's NDCG@10 on it (training items excluded) is
            measured for early stopping (``patience``) and the best epoch is kept. Every stored
            entry counts, whatever its value: to stop on what ``semrec.evaluate`` measures with
            ``relevance_threshold=4``, pass only those entries (``validation.multiply(
            validation >= 4)``).
        callback : callable, optional
            ``callback(epoch, loss, ndcg)`` after each epoch (from 0; ``ndcg`` None unvalidated).

        Returns
        -------
        self

        Raises
        ------
        TypeError, ValueError
            Bad interactions (no entries, NaN, negative weights), embeddings of the wrong shape
            or with NaN, bad hyperparameters, or training diverged.
        KeyboardInterrupt
            Ctrl-C, honoured between batches; the model is then left as it was.
        """
        settings = self._settings()
        if isinstance(interactions, Dataset):
            check_alignment(self.item_embeddings, interactions)
        seen = checks.interactions(interactions, "interactions")
        train = check.without_zeros(seen)  # a stored 0 is seen but carries no weight
        if train.nnz == 0:
            raise ValueError(
                "interactions has no non-zero weights; TextCF learns from positive weights"
            )
        n_users, n_items = train.shape
        emb = checks.embeddings(self.item_embeddings, "item_embeddings", n_items, "item")
        users_emb = None
        if self.user_embeddings is not None:
            users_emb = checks.embeddings(self.user_embeddings, "user_embeddings", n_users, "user")
            if users_emb.shape[1] != emb.shape[1]:
                raise ValueError(
                    f"user_embeddings have dimension {users_emb.shape[1]} but item_embeddings "
                    f"{emb.shape[1]}; embed users and items with the same encoder"
                )
        relevant = checks.validation(validation, train.shape, interactions)
        if callback is not None and not callable(callback):
            raise TypeError(
                f"callback must be callable, callback(epoch, loss, ndcg), got {callback!r}"
            )
        settings.batch_size = checks.batch_size(settings, train.shape, emb.shape[1], train.nnz)
        rng = hyperparameters.generator(self.random_state)
        weights = network.initial_weights(
            emb.shape[1], settings.hidden, settings.factors, rng, item_bias=settings.item_bias
        )
        settings.seed = int(rng.integers(2**63))
        input_sum, mass = network.user_inputs(train, emb, users_emb, float(self.user_text_weight))
        inputs = np.vstack([network.means(input_sum, mass), emb]).astype(np.float32)
        # Without user text, users' inputs are pure means of item embeddings: the trainer
        # then derives their first layer from the items' (cheaper, same values).
        user_means = users_emb is None or float(self.user_text_weight) == 0
        result = training.train(
            settings, inputs, train, weights, relevant, callback, user_means=user_means
        )

        self.weights_ = result.weights
        self.user_factors_ = np.ascontiguousarray(result.vectors[:n_users])
        self.item_factors_ = np.ascontiguousarray(result.vectors[n_users:])
        item_degree = np.bincount(train.indices, minlength=n_items).astype(np.int64)
        item_layers = result.layer_outputs[: settings.layers, n_users:]
        self.graph_ = Graph(np.ascontiguousarray(item_layers), item_degree)
        graph_sum, degree = network.graph_sums(train, self.graph_)
        self.user_state_ = UserState(input_sum, mass, graph_sum, degree)
        if self.user_vectors == "items":
            self.user_state_.item_sum = network.item_sums(train, self.item_factors_)
        self.item_embeddings_ = emb
        self._text_maps(train, result.item_biases)
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self._histories = Histories(seen)
        self._fitted_with = checks.fitted_with(self)
        return self

    def _text_maps(self, train: sp.csr_array, learned: np.ndarray | None) -> None:
        """What is fitted from text after training: the popularity prior and the items'
        biases (``learned``: the network's b(i), or None), and with ``cold_penalty`` or
        ``cold_neighbours`` the cold map and the vectors of the items without interactions."""
        emb = self.item_embeddings_
        self.popularity_prior_ = None
        popular = None
        if float(self.popularity) > 0:
            self.popularity_prior_ = prior.fit_prior(emb, train, float(self.popularity_penalty))
            share = float(self.observed_popularity)
            popular = prior.popularity(self.popularity_prior_, emb, train, share)
        self.item_bias_ = prior.biases(learned, popular, float(self.popularity))
        warm = self.graph_.item_degree > 0
        penalty = None if self.cold_penalty is None else float(self.cold_penalty)
        self.cold_map_ = coldmap.fit_cold_map(
            emb, self.item_factors_, warm, penalty, self.cold_neighbours
        )
        if self.cold_map_ is not None:
            self.item_factors_[~warm] = self.cold_map_.predict(emb[~warm])

    def with_options(self, **options: Any) -> TextCF:
        """A copy of this fitted model with other after-training options, without training.

        ``popularity``, ``popularity_penalty``, ``observed_popularity``, ``cold_penalty`` and
        ``cold_neighbours`` change nothing in training: they are fitted from text afterwards.
        The copy has them refitted on the interactions in ``interactions_`` (those of ``fit``,
        plus any ``fold_in`` / ``update`` since), exactly as ``fit`` with them would leave it
        (to float rounding); the trained network is shared. Cheap: tune these on validation
        with it. Set on the model itself instead, they are refused by its verbs and ``save``
        (its state holds the fitted values), as every hyperparameter the state depends on.

        Parameters
        ----------
        **options
            New values of some of ``popularity``, ``popularity_penalty``,
            ``observed_popularity``, ``cold_penalty``, ``cold_neighbours``.

        Returns
        -------
        TextCF

        Examples
        --------
        >>> import numpy as np, scipy.sparse as sp, semrec
        >>> emb = np.random.default_rng(0).standard_normal((30, 16)).astype(np.float32)
        >>> clicks = sp.random_array((40, 30), density=0.2, format="csr", rng=0,
        ...                          dtype=np.float32)
        >>> model = semrec.TextCF(emb, hidden=32, factors=8, epochs=2, random_state=0,
        ...                       show_progress=False).fit(clicks)
        >>> model.with_options(popularity=0.5, cold_penalty=10.0).popularity
        0.5
        """
        self._check_fitted()
        unknown = sorted(set(options) - set(AFTER_TRAINING))
        if unknown:
            raise TypeError(
                f"with_options takes only {', '.join(AFTER_TRAINING)} (options fitted after "
                f"training), got {', '.join(unknown)}; fit a new TextCF to change the others"
            )
        out = copy.copy(self)
        for name, value in options.items():
            setattr(out, name, value)
        out._settings()  # the new values must be valid
        # These options are refitted below from their new values; the rest must be as fitted.
        out._fitted_with = self._fitted_with | {n: getattr(out, n) for n in AFTER_TRAINING}
        checks.unchanged_since_fit(out, out._fitted_with)
        # Everything the real-time verbs change in place is the copy's own; the network is shared.
        out.item_factors_ = self.item_factors_.copy()
        out.user_factors_ = self.user_factors_.copy()
        out.user_state_ = copy.deepcopy(self.user_state_)
        out._search_like(self._item_search())  # the copy's own, with the same choice of index
        emb = self.item_embeddings_
        if self.cold_map_ is not None:  # the cold items back to the network's vectors
            cold = self.graph_.item_degree == 0
            mlp = network.mlp(self.weights_, emb[cold], float(self.negative_slope))
            out.item_factors_[cold] = network.normalised_rows(mlp)
        learned = None
        if self.item_bias:
            learned = network.item_biases(self.weights_, emb, float(self.negative_slope))
        seen = check.without_zeros(self._histories.matrix())  # the copy's are the same
        out._text_maps(seen, learned)
        state = out.user_state_
        if state.item_sum is not None:  # user_vectors="items": histories with remapped items
            state.item_sum = network.item_sums(seen, out.item_factors_)
            users = network.normalised_rows(state.item_sum)
            out.user_factors_ = np.ascontiguousarray(users, dtype=np.float32)
        return out

    def _search_like(self, other: Any) -> None:
        # An item search of this model's own (not a copied reference), with other's choice.
        vars(self).pop("_item_search_state", None)
        self._item_search().use(other.kind, other.storage, other.params)

    # -- the contract's hooks (recommend, score, similar_items come from Recommender) -------
    def _shape(self) -> tuple[int, int]:
        return self.user_factors_.shape[0], self.item_factors_.shape[0]

    def _vectors(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted_with()  # e.g. tau: the [v_i, tau b(i)] rows are of the fitted tau
        queries = np.ascontiguousarray(self.user_factors_[users])
        if self.item_bias_ is None:
            return queries, self.item_factors_
        # [v_u, 1] . [v_i, tau b(i)]: one dot product, so recommend stays on semrec.topk.
        return training.biased_queries(queries), self._biased_items()

    def _item_space(self) -> tuple[np.ndarray, str]:
        self._check_fitted_with()  # the cold items' vectors are of the fitted cold map
        return self.item_factors_, "cosine"

    # -- persistence (fold_in, update, add_items and explain: RealTimeVerbs) ----------------
    @classmethod
    def _from_params(cls, params: dict[str, Any], saved: Saved) -> Any:
        return persistence.from_params(cls, params, saved)

    def _state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        self._check_fitted_with()  # the file's hyperparameters must describe its arrays
        meta, arrays = persistence.state(self)
        arrays |= csr_arrays(self._histories.matrix(), "interactions")
        return {**meta, "encoder": self._encoder_record()}, arrays

    def _restore(self, saved: Saved) -> None:
        self._settings()  # the saved hyperparameters must still be valid
        self._histories = Histories(persistence.restore(self, saved))
        self._fitted_with = checks.fitted_with(self)
        self._remember_encoder(saved.meta)
