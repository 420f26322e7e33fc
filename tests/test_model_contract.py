"""The contract every recommender keeps (docs/model_contract.md), run against every model.

A mixin in the spirit of implicit's ``RecommenderBaseTestMixin``: :class:`ContractTests` holds
the tests, and a model gets all of them by one entry in ``MODELS`` (a :class:`Spec`: how to
build it, and what ``add_items`` takes, if anything). Each check compares the model with
itself under another call shape (scalar vs batch, other batch compositions, after save/load,
``update`` vs ``fold_in``) or with its own ``score``, plus the rules on padding, exclusion,
candidate filters, real-time verbs and errors; the per-model test files check the values
against independent references.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

import semrec
from semrec.datasets import synthetic

N_USERS, N_ITEMS, DIM = 60, 40, 8


@dataclass(frozen=True)
class Spec:
    """How the contract builds a model (from the item embeddings) and, for a model with
    ``add_items``, what to pass it (from the embeddings)."""

    make: Callable[[np.ndarray], Any]
    new_items: Callable[[np.ndarray], Any] | None = None


def _als(**kw: Any) -> semrec.ALS:
    return semrec.ALS(factors=4, iterations=3, random_state=0, show_progress=False, **kw)


def _textcf(emb: np.ndarray, **kw: Any) -> semrec.TextCF:
    return semrec.TextCF(
        emb, hidden=16, factors=8, epochs=2, random_state=0, show_progress=False, **kw
    )


def _new_vectors(emb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(emb[:2] + emb[2:4])


# One line per model: that is all a new model needs to get the whole suite.
MODELS: dict[str, Spec] = {
    "ALS": Spec(lambda emb: _als()),
    "ALSExplicit": Spec(lambda emb: _als(feedback="explicit", biases=True, regularization=0.5)),
    "MostPopular": Spec(lambda emb: semrec.MostPopular()),
    "Random": Spec(lambda emb: semrec.Random(random_state=3)),
    "Hybrid": Spec(lambda emb: semrec.Hybrid([(_als(), 0.7), (semrec.MostPopular(), 0.3)])),
    "ColdStartALS": Spec(lambda emb: semrec.ColdStartALS(_als(), emb), _new_vectors),
    "Content": Spec(lambda emb: semrec.ContentRecommender(emb, show_progress=False), _new_vectors),
    "ItemKNN": Spec(lambda emb: semrec.ItemKNN(10, show_progress=False)),
    "ItemKNNBM25": Spec(lambda emb: semrec.ItemKNN(10, weighting="bm25", show_progress=False)),
    "UserKNN": Spec(lambda emb: semrec.UserKNN(10, shrinkage=1.0, show_progress=False)),
    "TextCF": Spec(lambda emb: _textcf(emb), _new_vectors),
    "TextCFItemBias": Spec(lambda emb: _textcf(emb, item_bias=True), _new_vectors),
    "TextCFItemsPopularity": Spec(
        lambda emb: _textcf(emb, user_vectors="items", popularity=0.5, observed_popularity=0.5),
        _new_vectors,
    ),
    "TextCFColdMap": Spec(lambda emb: _textcf(emb, cold_penalty=1.0), _new_vectors),
}


@pytest.fixture(scope="module")
def data() -> tuple[sp.csr_array, np.ndarray]:
    ds = synthetic(N_USERS, N_ITEMS, 700, n_topics=4, with_text=False, random_state=11)
    emb = np.random.default_rng(11).standard_normal((N_ITEMS, DIM)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    return ds.interactions, emb


def _seen(x: sp.csr_array, u: int) -> set[int]:
    return set(x.indices[x.indptr[u] : x.indptr[u + 1]].tolist())


def _supports(call: Callable[[], Any], verb: str) -> bool:
    """Run ``call``; False when the model does not support ``verb`` (NotImplementedError with a
    hint that names the verb and says what to do instead)."""
    try:
        call()
    except NotImplementedError as exc:
        message = str(exc)
        assert verb in message and ":" in message, f"no hint in {message!r}"
        return False
    return True


class ContractTests:
    """The contract's tests; ``spec`` is set by each registered model's class."""

    spec: Spec

    @pytest.fixture
    def model(self, data: tuple[sp.csr_array, np.ndarray]) -> Any:
        x, emb = data
        return self.spec.make(emb).fit(x)

    def fresh(self, data: tuple[sp.csr_array, np.ndarray]) -> Any:
        return self.spec.make(data[1])

    # -- recommend and score ---------------------------------------------------------------
    def test_scalar_and_batch_agree_in_any_batch(self, model: Any) -> None:
        users = np.array([5, 0, 17, 5, 59])
        ids, scores = model.recommend(users, k=7)
        assert ids.shape == scores.shape == (5, 7)
        assert ids.dtype == np.int32 and scores.dtype == np.float32
        one_ids, one_scores = model.recommend(17, k=7)
        assert one_ids.shape == (7,)
        np.testing.assert_array_equal(one_ids, ids[2])
        np.testing.assert_allclose(one_scores, scores[2], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(ids[0], ids[3])
        rev_ids, _ = model.recommend(users[::-1], k=7)  # a strided view, as a user may pass
        np.testing.assert_array_equal(rev_ids[::-1], ids)

    def test_lists_are_sorted_unique_and_padded(self, model: Any, data: Any) -> None:
        x, _ = data
        ids, scores = model.recommend(np.arange(N_USERS), k=N_ITEMS + 5)
        for u in range(N_USERS):
            valid = ids[u] >= 0
            n_valid = int(valid.sum())
            assert n_valid == N_ITEMS - len(_seen(x, u)), "every unseen item, then padding"
            assert valid[:n_valid].all() and not valid[n_valid:].any()
            assert np.isneginf(scores[u, n_valid:]).all()
            assert np.unique(ids[u, :n_valid]).size == n_valid
            assert (np.diff(scores[u, :n_valid]) <= 0).all(), "best first"

    def test_exclude_seen_and_candidate_filter(self, model: Any, data: Any) -> None:
        x, _ = data
        users = np.arange(0, N_USERS, 3)
        ids, _ = model.recommend(users, k=10)
        for row, u in zip(ids, users, strict=True):
            assert not set(row[row >= 0].tolist()) & _seen(x, u)
        ids, _ = model.recommend(users, k=N_ITEMS, exclude_seen=False)
        assert (ids >= 0).all(), "nothing excluded: every item is listed"
        allowed = np.array([1, 4, 9, 16, 25, 36])
        ids, _ = model.recommend(users, k=10, exclude_seen=False, items=allowed)
        assert set(ids[ids >= 0].tolist()) <= set(allowed.tolist())
        assert (ids[:, : allowed.size] >= 0).all() and (ids[:, allowed.size :] == -1).all()

    def test_recommend_scores_match_score(self, model: Any) -> None:
        users = np.array([2, 8, 30])
        ids, scores = model.recommend(users, k=5)
        full = model.score(users, np.arange(N_ITEMS))
        assert full.shape == (3, N_ITEMS) and full.dtype == np.float32
        # bitwise: the documented promise ("the same values recommend ranks by and returns")
        np.testing.assert_array_equal(np.take_along_axis(full, ids, axis=1), scores)
        np.testing.assert_array_equal(model.score(8, np.arange(N_ITEMS)), full[1])
        np.testing.assert_array_equal(model.score([30], [7, 3])[0], full[2, [7, 3]])

    def test_zero_weight_interactions_stay_seen(self, data: Any) -> None:
        """A stored 0 (a centred rating equal to the mean) is an interaction: excluded like
        any other seen item (issue 13)."""
        x, _ = data
        zeroed = x.copy()
        zeroed.data[::5] = 0.0
        model = self.fresh(data).fit(zeroed)
        ids, _ = model.recommend(np.arange(N_USERS), k=N_ITEMS)
        for u in range(N_USERS):
            listed = set(ids[u][ids[u] >= 0].tolist())
            assert not listed & _seen(zeroed, u)
            assert len(listed) == N_ITEMS - len(_seen(zeroed, u))

    def test_interactions_are_a_plain_scipy_matrix(self, model: Any, data: Any) -> None:
        # scipy's own routines refuse an int64 indptr beside int32 indices (the kernels' layout)
        x, _ = data
        user = 3
        item = min(set(range(N_ITEMS)) - _seen(x, user))
        want = {(int(r), int(c)) for r, c in zip(*x.nonzero(), strict=True)}
        if _supports(lambda: model.update(user, item, 1.0), "update"):
            want.add((user, item))
        seen = model.interactions_
        assert seen.indptr.dtype == seen.indices.dtype
        coo = seen.tocoo()
        assert set(zip(coo.row.tolist(), coo.col.tolist(), strict=True)) == want
        assert set(zip(*(a.tolist() for a in seen.nonzero()), strict=True)) == want
        again = sp.csr_array(seen, copy=True)  # re-checked by scipy's constructor
        again.eliminate_zeros()
        assert again.shape == (model.n_users_, model.n_items_)

    def test_bad_arguments_raise_clear_errors(self, model: Any) -> None:
        with pytest.raises(IndexError, match="users"):
            model.recommend([0, N_USERS], k=3)
        with pytest.raises(IndexError):
            model.recommend(-1, k=3)
        with pytest.raises(ValueError, match="k"):
            model.recommend(0, k=0)
        with pytest.raises(ValueError, match="k must be < 2"):
            model.recommend(0, k=2**31)
        with pytest.raises(TypeError, match="k must be an int"):
            model.recommend(0, k=2.5)
        with pytest.raises(TypeError, match="users"):
            model.recommend([0.5], k=3)
        with pytest.raises(IndexError, match="items"):
            model.recommend(0, k=3, items=[N_ITEMS])
        with pytest.raises(IndexError, match="items"):
            model.score(0, [N_ITEMS])

    def test_hostile_inputs_name_the_argument(self, model: Any, data: Any) -> None:
        """Issue 16: a huge k or id (once std::bad_alloc / MemoryError) and a malformed CSR
        (once a raw NumPy IndexError) get an exception naming the argument and the fix."""
        x, _ = data
        for users in (0, np.arange(N_USERS)):
            with pytest.raises(ValueError, match=rf"k=\d+ .*{N_ITEMS} items: pass k <= {N_ITEMS}"):
                model.recommend(users, k=2**31 - 1)
        huge = 10**12
        with pytest.raises(IndexError, match=f"user id {huge}"):
            model.recommend(huge)
        with pytest.raises(IndexError, match=f"user id {huge}"):
            model.score(huge, [0])
        if _supports(lambda: model.similar_items(0, k=1), "similar"):
            with pytest.raises(ValueError, match=rf"k=\d+ .*{N_ITEMS} items: pass k <= {N_ITEMS}"):
                model.similar_items([0, 1], k=2**30)
        history = sp.csr_array(x[[1, 2]])
        if _supports(lambda: model.fold_in(history), "fold_in"):
            with pytest.raises(IndexError, match=f"users .*{huge}"):
                model.fold_in(history, users=[0, huge])
            for part in ("indptr", "indices"):
                malformed = history.copy()
                setattr(malformed, part, getattr(malformed, part).astype(np.float64))
                with pytest.raises(ValueError, match=f"history is malformed: its {part}"):
                    model.fold_in(malformed)
        if _supports(lambda: model.update(0, 0, 1.0), "update"):
            with pytest.raises(IndexError, match=f"user {huge}"):
                model.update(huge, 0)
        malformed = x.copy()
        malformed.indptr = malformed.indptr.astype(np.float64)
        with pytest.raises(ValueError, match=r"interactions is malformed: its indptr .*integer"):
            self.fresh(data).fit(malformed)

    def test_unfitted_model_says_so(self, data: Any) -> None:
        model = self.fresh(data)
        for call in (
            lambda: model.recommend(0),
            lambda: model.score(0, [0]),
            lambda: model.similar_items(0),
            lambda: model.update(0, 0),
            lambda: model.save("never-written.npz"),
        ):
            with pytest.raises(ValueError, match="fit"):
                call()

    def test_repr_shows_class(self, model: Any) -> None:
        assert repr(model).startswith(type(model).__name__ + "(")

    # -- similar items ---------------------------------------------------------------------
    def test_similar_items_excludes_itself_best_first(self, model: Any) -> None:
        result: list[Any] = []
        if not _supports(lambda: result.append(model.similar_items([3, 11], k=5)), "similar"):
            return
        ids, scores = result[0]
        assert ids.shape == scores.shape == (2, 5) and ids.dtype == np.int32
        for row, item in zip(ids, [3, 11], strict=True):
            assert item not in row.tolist()
        real = ids >= 0
        assert (np.isneginf(scores) == ~real).all()
        for row in range(2):
            assert (np.diff(scores[row][real[row]]) <= 0).all()
        one_ids, _ = model.similar_items(11, k=5)
        np.testing.assert_array_equal(one_ids, ids[1])
        many, _ = model.similar_items(3, k=N_ITEMS + 3)
        assert (many[N_ITEMS - 1 :] == -1).all(), "at most every other item, then padding"

    # -- real time -------------------------------------------------------------------------
    def test_fold_in_stores_users_by_one_rule(self, model: Any, data: Any) -> None:
        x, _ = data
        history = sp.csr_array(x[[4, 9]])
        result: list[Any] = []
        if not _supports(lambda: result.append(model.fold_in(history)), "fold_in"):
            return
        vectors = result[0]
        assert vectors.dtype == np.float32 and vectors.ndim == 2 and vectors.shape[0] == 2
        before = model.recommend(np.arange(N_USERS), k=5)[0]
        np.testing.assert_array_equal(model.recommend(np.arange(N_USERS), k=5)[0], before)
        n = model.n_users_
        for bad, error in (([n, n], IndexError), ([n + 1, n + 2], IndexError), ([n], ValueError)):
            with pytest.raises(error, match="users"):
                model.fold_in(history, users=bad)
        assert model.n_users_ == n, "a refused call changes nothing"
        stored = model.fold_in(history, users=[n, 0])
        np.testing.assert_allclose(stored, vectors, rtol=1e-5, atol=1e-6)
        assert model.n_users_ == n + 1
        for u, source in ((n, 4), (0, 9)):
            ids, _ = model.recommend(u, k=N_ITEMS)
            assert not set(ids[ids >= 0].tolist()) & _seen(x, source)
            assert (ids >= 0).sum() == N_ITEMS - len(_seen(x, source))
        with pytest.raises(ValueError, match="shape"):
            model.fold_in(sp.csr_array((1, N_ITEMS + 1), dtype=np.float32))
        with pytest.raises(TypeError, match="CSR"):
            model.fold_in(np.zeros((1, N_ITEMS), dtype=np.float32))

    def test_update_is_fold_in_of_the_changed_history(self, model: Any, data: Any) -> None:
        x, _ = data
        fresh_item = int(min(set(range(N_ITEMS)) - _seen(x, 6)))
        result: list[Any] = []
        if not _supports(lambda: result.append(model.update(6, fresh_item, 2.0)), "update"):
            return
        vector = result[0]
        assert vector.dtype == np.float32 and vector.ndim == 1
        changed = x[[6]].toarray()
        changed[0, fresh_item] += 2.0
        again = model.fold_in(sp.csr_array(changed), users=[6])  # the same history, stored
        np.testing.assert_allclose(again[0], vector, rtol=1e-4, atol=1e-5)
        assert fresh_item not in model.recommend(6, k=N_ITEMS)[0].tolist()
        n = model.n_users_
        model.update(n, 3)  # a new user from one interaction
        assert model.n_users_ == n + 1 and 3 not in model.recommend(n, k=N_ITEMS)[0].tolist()
        for bad, error in ((n + 5, IndexError), (-1, IndexError), ("u", TypeError)):
            with pytest.raises(error, match="user"):
                model.update(bad, 0)
        with pytest.raises(IndexError, match="item"):
            model.update(0, N_ITEMS)
        with pytest.raises(ValueError, match="weight"):
            model.update(0, 1, float("nan"))

    def test_updates_from_several_threads_lose_nothing(self, data: Any) -> None:
        """A server's threads record clicks at once: the model ends as after the same clicks one
        by one (each is a whole unit of weight, so the sums do not depend on the order)."""
        import copy
        from concurrent.futures import ThreadPoolExecutor

        model = self.fresh(data).fit(data[0])
        if not _supports(lambda: model.update(0, 0, 0.0), "update"):
            return
        sequential = copy.deepcopy(model)
        clicks = [
            (u % 3 if k % 2 else 7, (5 * k + u) % N_ITEMS) for u in range(4) for k in range(25)
        ]
        for user, item in clicks:
            sequential.update(user, item)
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda c: model.update(*c), clicks))
        users = np.array([0, 1, 2, 7])
        np.testing.assert_array_equal(
            model.interactions_[users].toarray(), sequential.interactions_[users].toarray()
        )
        np.testing.assert_allclose(
            model.score(users, np.arange(N_ITEMS)), sequential.score(users, np.arange(N_ITEMS)),
            rtol=1e-4, atol=1e-5,
        )  # fmt: skip

    def test_a_refused_index_leaves_the_model_as_it_was(self, model: Any) -> None:
        before = model.recommend([0, 3], k=5)
        try:
            model.use_index("exact")
        except NotImplementedError:  # a model without item vectors to index
            return
        with pytest.raises(ValueError, match="sub-spaces"):
            model.use_index("pq", m=4 * DIM)  # more sub-spaces than dimensions: refused
        for got, want in zip(model.recommend([0, 3], k=5), before, strict=True):
            np.testing.assert_array_equal(got, want)

    def test_add_items_are_recommendable_at_once(self, model: Any, data: Any) -> None:
        _, emb = data
        new = self.spec.new_items(emb) if self.spec.new_items else np.ones((2, DIM), np.float32)
        result: list[Any] = []
        if not _supports(lambda: result.append(model.add_items(new)), "add_items"):
            assert self.spec.new_items is None, "the spec says it takes new items"
            return
        ids = result[0]
        assert ids.dtype == np.int32 and ids.tolist() == [N_ITEMS, N_ITEMS + 1]
        assert model.n_items_ == N_ITEMS + 2
        listed, _ = model.recommend(np.arange(5), k=N_ITEMS + 2, exclude_seen=False)
        assert (listed >= 0).all() and set(ids.tolist()) <= set(listed[0].tolist())
        assert model.score(0, ids).shape == (2,)

    # -- persistence -----------------------------------------------------------------------
    def test_save_load_roundtrip(self, model: Any, data: Any, tmp_path: Any) -> None:
        x, _ = data
        _supports(lambda: model.update(2, int(x[[2]].indices[0]), 1.0), "update")
        path = tmp_path / "model.npz"
        model.save(path)
        loaded = type(model).load(path)
        assert repr(loaded) == repr(model)
        users = np.arange(model.n_users_)
        for got, want in zip(
            loaded.recommend(users, k=6), model.recommend(users, k=6), strict=True
        ):
            np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(
            loaded.score(users, np.arange(N_ITEMS)), model.score(users, np.arange(N_ITEMS))
        )
        assert not list(tmp_path.glob("*.tmp*")), "no temporary file left behind"
        path.write_bytes(path.read_bytes()[:100])
        with pytest.raises(semrec.FormatError):
            type(model).load(path)
        with pytest.raises(FileNotFoundError):
            type(model).load(tmp_path / "missing.npz")


for _name, _spec in MODELS.items():
    globals()[f"Test{_name}"] = type(f"Test{_name}", (ContractTests,), {"spec": _spec})
