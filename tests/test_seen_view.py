"""``interactions_`` as scipy reads it: the kernels' CSR (int64 indptr, int32 indices) shown
with one index dtype, as read-only views of the model's arrays (a write raises instead of
rewriting the model's history), built once per matrix and freed with it."""

from __future__ import annotations

import gc
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

import semrec
from semrec import _seen
from semrec._validation import canonical_csr
from semrec.datasets import synthetic


def _kernel_matrix() -> sp.csr_array:
    dense = np.array([[0, 2, 0, 1], [0, 0, 0, 0], [3, 0, 0.5, 0]], dtype=np.float32)
    m = canonical_csr(sp.csr_array(dense))
    assert (m.indptr.dtype, m.indices.dtype) == (np.int64, np.int32)
    return m


def test_the_view_is_the_same_matrix_with_one_index_dtype() -> None:
    m = _kernel_matrix()
    view = _seen.scipy_view(m)
    assert view.indptr.dtype == view.indices.dtype == np.int32
    np.testing.assert_array_equal(view.toarray(), m.toarray())
    # Shared, not copied:
    assert np.shares_memory(view.indices, m.indices) and np.shares_memory(view.data, m.data)
    rows, cols = view.nonzero()
    assert list(zip(rows.tolist(), cols.tolist(), strict=True)) == [(0, 1), (0, 3), (2, 0), (2, 2)]
    again = _seen.scipy_view(m)
    assert again is view  # built once per matrix: a click reads it several times
    view.resize((5, 4))  # resized by whoever holds it: the next read is the model's again
    assert _seen.scipy_view(m).shape == (3, 4)
    held = _seen.scipy_view(m)
    held.data = np.zeros_like(held.data)  # arrays set by whoever holds it: the same
    view = _seen.scipy_view(m)
    assert view is not held and view[0, 1] == m[0, 1]
    m.data[0] = 7.0  # an in-place weight change (TextCF's update) shows through
    assert view[0, 1] == 7.0
    assert m.data.flags.writeable and m.indices.flags.writeable  # the model's own stay so


def test_the_views_arrays_are_read_only() -> None:
    m = _kernel_matrix()
    before = m.toarray()
    view = _seen.scipy_view(m)
    for array in (view.data, view.indices, view.indptr):
        with pytest.raises(ValueError, match="read-only"):
            array[:] = 0
    with pytest.raises(ValueError):
        view.eliminate_zeros()
    np.testing.assert_array_equal(m.toarray(), before)
    edited = view.copy()  # a copy is the user's own
    edited.data[:] = 0.0
    edited.eliminate_zeros()
    assert edited.nnz == 0 and m.nnz == 4


def test_each_read_is_a_new_matrix_object() -> None:
    m = _kernel_matrix()
    mine = _seen.scipy_view(m)
    mine.resize((5, 6))  # resize and attribute sets on it reach no other read
    mine.data = np.ones(mine.nnz, dtype=np.float32)
    view = _seen.scipy_view(m)
    assert view.shape == (3, 4)
    np.testing.assert_array_equal(view.toarray(), m.toarray())


def test_the_view_follows_a_matrix_resized_in_place() -> None:
    m = _kernel_matrix()
    before = _seen.scipy_view(m)
    m.resize((5, 6))  # what ContentRecommender does when users and items are added
    after = _seen.scipy_view(m)
    assert after.shape == (5, 6) and before.shape == (3, 4)
    np.testing.assert_array_equal(after.toarray(), m.toarray())
    m.indptr = m.indptr.copy()  # arrays replaced: built again
    rebuilt = _seen.scipy_view(m)
    assert rebuilt.indptr is not after.indptr and not rebuilt.indptr.flags.writeable


def test_entries_beyond_int32_widen_both_index_arrays(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_seen, "_INT32_MAX", 3)  # as if the matrix held more than 2^31 entries
    m = _kernel_matrix()
    view = _seen.scipy_view(m)
    assert view.indptr.dtype == view.indices.dtype == np.int64
    assert not (view.indptr.flags.writeable or view.indices.flags.writeable)
    np.testing.assert_array_equal(sp.csr_array(view).tocoo().toarray(), m.toarray())


def test_a_view_leaves_with_its_matrix() -> None:
    m = _kernel_matrix()
    _seen.scipy_view(m)
    key = id(m)
    assert key in _seen._VIEWS
    del m
    gc.collect()
    assert key not in _seen._VIEWS


def test_a_matrix_with_one_index_dtype_gets_read_only_views_too() -> None:
    m = sp.csr_array(np.eye(3, dtype=np.float32))
    view = _seen.scipy_view(m)
    assert view is not m and np.shares_memory(view.data, m.data)
    assert np.shares_memory(view.indptr, m.indptr)
    with pytest.raises(ValueError, match="read-only"):
        view.data[0] = 5.0
    assert m.data.flags.writeable
    np.testing.assert_array_equal(m.toarray(), np.eye(3))


# -- Every model that exposes interactions_ ------------------------------------------------------
N_USERS, N_ITEMS = 30, 20
EMB = np.random.default_rng(1).standard_normal((N_ITEMS, 8)).astype(np.float32)
EMB /= np.linalg.norm(EMB, axis=1, keepdims=True)


def _als() -> semrec.ALS:
    return semrec.ALS(factors=4, iterations=3, random_state=0, show_progress=False)


FAMILIES: dict[str, Callable[[], Any]] = {
    "ALS": _als,
    "ItemKNN": lambda: semrec.ItemKNN(5, show_progress=False),
    "UserKNN": lambda: semrec.UserKNN(5, show_progress=False),
    "MostPopular": semrec.MostPopular,
    "Random": lambda: semrec.Random(random_state=1),
    "Content": lambda: semrec.ContentRecommender(EMB, show_progress=False),
    "TextCF": lambda: semrec.TextCF(
        EMB, hidden=8, factors=4, epochs=2, random_state=0, show_progress=False
    ),
    "ColdStartALS": lambda: semrec.ColdStartALS(_als(), EMB),
    "Hybrid": lambda: semrec.Hybrid([(_als(), 0.7), (semrec.MostPopular(), 0.3)]),
}
COPIES: set[str] = set()  # models whose interactions_ is a writable copy: none


@pytest.fixture(scope="module")
def train() -> sp.csr_array:
    ds = synthetic(N_USERS, N_ITEMS, 250, n_topics=3, with_text=False, random_state=5)
    x = sp.csr_array(ds.interactions, copy=True)
    x.data[0] = 0.0  # a seen item of weight 0: eliminate_zeros would unsee it
    return x


def _expected(name: str, train: sp.csr_array) -> np.ndarray:
    """What interactions_ holds, from the training matrix alone (Hybrid: the seen pattern)."""
    if name == "Hybrid":
        return (sp.csr_array((np.ones(train.nnz), train.indices, train.indptr))).toarray()
    return train.toarray()


def _outputs(model: Any) -> tuple[np.ndarray, ...]:
    users = np.arange(N_USERS)
    ids, scores = model.recommend(users, k=N_ITEMS)
    return ids, scores, model.score(users, np.arange(N_ITEMS))


def _assert_same(model: Any, reference: Any) -> None:
    for got, want in zip(_outputs(model), _outputs(reference), strict=True):
        np.testing.assert_array_equal(got, want)


def _try_edits(view: sp.csr_array, raises: bool) -> None:
    """The edits a user might make on "their" matrix: binarise, re-index, eliminate_zeros."""
    edits: list[Callable[[], Any]] = [
        lambda: view.data.__setitem__(slice(None), 1.0),
        lambda: view.indices.__setitem__(slice(None), 0),
        lambda: view.indptr.__setitem__(slice(1, None), 0),
        view.eliminate_zeros,
    ]
    for edit in edits:
        if raises:
            with pytest.raises(ValueError):
                edit()
        else:
            edit()


@pytest.mark.parametrize("name", FAMILIES)
def test_editing_interactions_leaves_the_model_intact(
    name: str, train: sp.csr_array, tmp_path: Path
) -> None:
    model, reference = FAMILIES[name]().fit(train), FAMILIES[name]().fit(train)
    view = model.interactions_
    np.testing.assert_array_equal(view.toarray(), _expected(name, train))
    assert (view.data.flags.writeable or view.indices.flags.writeable) == (name in COPIES)
    _try_edits(view, raises=name not in COPIES)
    np.testing.assert_array_equal(model.interactions_.toarray(), _expected(name, train))
    _assert_same(model, reference)
    model.save(tmp_path / "model")
    _assert_same(type(model).load(tmp_path / "model"), reference)
    copied = pickle.loads(pickle.dumps(model))
    _assert_same(copied, reference)
    assert not copied.interactions_.data.flags.writeable or name in COPIES
    if name == "Hybrid":
        return  # no update of its own: its members' (checked above) are what it reads
    item = int(train.indices[train.indptr[5]])  # a seen item: update reads the old weight
    for m in (model, reference):
        m.update(5, item, 0.5)
    _assert_same(model, reference)
    if name in ("ALS", "ColdStartALS"):  # refitted from the history interactions_ shared
        als, ref = (getattr(m, "als", m) for m in (model, reference))
        np.testing.assert_array_equal(als.user_factors_, ref.user_factors_)


def test_cold_start_als_interactions_is_read_only_too(train: sp.csr_array) -> None:
    view = FAMILIES["ColdStartALS"]().fit(train).interactions_
    assert not view.data.flags.writeable


@pytest.mark.parametrize("name", FAMILIES)
def test_a_copy_of_interactions_is_editable(name: str, train: sp.csr_array) -> None:
    model = FAMILIES[name]().fit(train)
    for mine in (model.interactions_.copy(), sp.csr_array(model.interactions_, copy=True)):
        mine.data[:] = 0.0
        mine.indices[:] = 0
        mine.eliminate_zeros()
        assert mine.nnz == 0
    np.testing.assert_array_equal(model.interactions_.toarray(), _expected(name, train))


def test_scipy_reads_work_on_the_read_only_matrix(train: sp.csr_array, tmp_path: Path) -> None:
    view = _als().fit(train).interactions_
    dense = train.toarray()
    vector = np.arange(N_ITEMS, dtype=np.float32)
    np.testing.assert_array_equal(view.toarray(), dense)
    np.testing.assert_array_equal(view[[3, 1]].toarray(), dense[[3, 1]])
    np.testing.assert_array_equal(view[2:5].toarray(), dense[2:5])
    np.testing.assert_allclose(view.sum(axis=0), dense.sum(axis=0), rtol=1e-6)
    np.testing.assert_allclose(view.sum(axis=1), dense.sum(axis=1), rtol=1e-6)
    np.testing.assert_allclose(view @ vector, dense @ vector, rtol=1e-6)
    np.testing.assert_allclose(view.multiply(view).toarray(), dense * dense, rtol=1e-6)
    np.testing.assert_array_equal(view.T.toarray(), dense.T)
    np.testing.assert_array_equal(view.tocoo().toarray(), dense)
    rows, cols = view.nonzero()
    np.testing.assert_array_equal(rows, np.nonzero(dense)[0])
    np.testing.assert_array_equal(cols, np.nonzero(dense)[1])
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(view)).toarray(), dense)
    sp.save_npz(tmp_path / "seen.npz", view)
    np.testing.assert_array_equal(sp.load_npz(tmp_path / "seen.npz").toarray(), dense)


@pytest.mark.parametrize("name", ["ALS", "ItemKNN", "UserKNN", "MostPopular", "Random", "TextCF"])
def test_a_click_reads_no_whole_matrix(
    name: str, train: sp.csr_array, monkeypatch: pytest.MonkeyPatch
) -> None:
    """update and fold_in change one user's row: they neither merge the histories nor build
    the interactions_ view (each O(all interactions)); the next read of it shows the clicks."""
    from semrec._histories import Histories

    model, reference = FAMILIES[name]().fit(train), FAMILIES[name]().fit(train)
    whole_reads: list[str] = []
    view, merge = _seen.scipy_view, Histories.matrix
    monkeypatch.setattr(_seen, "scipy_view", lambda m: whole_reads.append("view") or view(m))
    monkeypatch.setattr(Histories, "matrix", lambda h: whole_reads.append("merge") or merge(h))
    new = sp.csr_array(np.eye(2, N_ITEMS, dtype=np.float32))
    for m in (model, reference):
        m.update(3, 4, 2.0)
        m.update(N_USERS, 1)  # a new user
        m.fold_in(new, users=[5, N_USERS + 1])
        m.update(5, 7, 0.0)  # a new seen item of weight 0
    assert whole_reads == []
    expected = train.toarray()
    expected[3, 4] += 2.0
    expected = np.vstack([expected, np.zeros((2, N_ITEMS), np.float32)])
    expected[N_USERS, 1] = 1.0
    expected[[5, N_USERS + 1]] = new.toarray()
    np.testing.assert_array_equal(model.interactions_.toarray(), expected)
    assert model.interactions_[5, 7] == 0 and 7 in model.interactions_[[5]].indices  # seen
    _assert_same(model, reference)
