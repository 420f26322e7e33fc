"""semrec.TextCF's cold maps (``cold_penalty``, ``cold_neighbours``) and ``with_options``
against independent references: the ridge map is a ridge regression solved as a least-squares
problem (NumPy's ``lstsq`` on the augmented system, not the normal equations) from the warm
items' embeddings to the vectors of the same network fitted without the map; the neighbour map
a Python loop of cosines, a sort and a mean over the same vectors; ``with_options`` against
``fit`` with the same options (save/load of the other fields: tests/test_textcf.py,
tests/test_persist.py)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from textcf_reference import planted_with_cold_items

import semrec
from semrec.errors import NotFittedError

SMALL = dict(
    hidden=16, factors=6, layers=1, negatives=16, batch_size=256, learning_rate=5e-3,
    epochs=3, patience=None, random_state=0, num_threads=1, show_progress=False,
)  # fmt: skip


def _map_reference(x: np.ndarray, y: np.ndarray, penalty: float, new: np.ndarray) -> np.ndarray:
    """Ridge with an unpenalised intercept, min ||(X - mean) W - (Y - mean)||^2 +
    penalty ||W||^2, as the least-squares problem [X - mean; sqrt(penalty) I] W = [Y - mean; 0],
    evaluated at the rows of ``new``."""
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    a = np.vstack([x - x.mean(0), np.sqrt(penalty) * np.eye(x.shape[1])])
    b = np.vstack([y - y.mean(0), np.zeros((x.shape[1], y.shape[1]))])
    w = np.linalg.lstsq(a, b, rcond=None)[0]
    return (new.astype(np.float64) - x.mean(0)) @ w + y.mean(0)


def _neighbours_reference(
    keys: np.ndarray, values: np.ndarray, k: int, new: np.ndarray
) -> np.ndarray:
    """The neighbour map: for each row of ``new``, a Python loop of ``np.dot`` cosines to the
    rows of ``keys``, sorted by (-cosine, index); the mean of the first ``k`` rows of
    ``values``."""
    out = []
    for e in new.astype(np.float64):
        cos = [
            np.dot(e, x) / (np.linalg.norm(e) * np.linalg.norm(x)) for x in keys.astype(np.float64)
        ]
        order = sorted(range(len(cos)), key=lambda j: (-cos[j], j))[:k]
        out.append(values[order].astype(np.float64).mean(axis=0))
    return np.array(out)


def _model(emb: np.ndarray, **kw) -> semrec.TextCF:
    return semrec.TextCF(emb, **(SMALL | kw))


@pytest.fixture(scope="module")
def data() -> tuple[sp.csr_array, np.ndarray]:
    """Planted topics, ratings as weights; items 0, 1 and 2 have no interactions (cold)."""
    return planted_with_cold_items(3, 5)


@pytest.mark.parametrize(
    "option", [("cold_penalty", 0.5), ("cold_penalty", 30.0), ("cold_neighbours", 1),
               ("cold_neighbours", 4), ("cold_neighbours", 1000)],
)  # fmt: skip
def test_cold_items_get_the_map_of_the_warm_items_vectors(data, option) -> None:
    """The ridge map (``cold_penalty``) or the mean of the k nearest warm items' vectors by
    text cosine (``cold_neighbours``)."""
    m, emb = data
    name, value = option
    plain = _model(emb).fit(m)
    mapped = _model(emb, **{name: value}).fit(m)
    warm = np.asarray((m != 0).sum(axis=0)).ravel() > 0
    assert not warm[:3].any() and warm[3:].all()
    # training and the warm items are untouched
    np.testing.assert_array_equal(mapped.user_factors_, plain.user_factors_)
    np.testing.assert_array_equal(mapped.item_factors_[warm], plain.item_factors_[warm])
    reference = _map_reference if name == "cold_penalty" else _neighbours_reference
    want = reference(emb[warm], plain.item_factors_[warm], value, emb[~warm])
    np.testing.assert_allclose(mapped.item_factors_[~warm], want, atol=1e-5)
    np.testing.assert_allclose(mapped.cold_map_.predict(emb[~warm]), want, atol=1e-5)
    # not normalised (but for the single nearest item's): the map's norm is part of the score
    norms = np.linalg.norm(mapped.item_factors_[:3], axis=1)
    assert np.allclose(norms, 1.0, atol=1e-5) == (option == ("cold_neighbours", 1))
    scores = mapped.score(5, [0, 1, 2, 7])
    np.testing.assert_allclose(
        scores, mapped.item_factors_[[0, 1, 2, 7]] @ mapped.user_factors_[5], rtol=1e-5
    )


def test_added_items_get_the_map_like_cold_items_and_survive_save_load(data, tmp_path) -> None:
    m, emb = data
    model = _model(emb, cold_penalty=3.0).fit(m)
    ids = model.add_items(emb[[0, 10]])
    np.testing.assert_allclose(model.item_factors_[ids[0]], model.item_factors_[0], atol=1e-6)
    np.testing.assert_allclose(
        model.item_factors_[ids[1]], model.cold_map_.predict(emb[[10]])[0], atol=1e-6
    )
    path = tmp_path / "cold.semrec"
    model.save(path)
    loaded = semrec.TextCF.load(path)
    assert loaded.cold_penalty == 3.0
    np.testing.assert_array_equal(loaded.item_factors_, model.item_factors_)
    np.testing.assert_array_equal(loaded.cold_map_.weights, model.cold_map_.weights)
    a, b = loaded.add_items(emb[[1]]), model.add_items(emb[[1]])
    np.testing.assert_array_equal(loaded.item_factors_[a], model.item_factors_[b])


def test_the_neighbour_map_serves_added_items_and_survives_save_load(data, tmp_path) -> None:
    m, emb = data
    model = _model(emb, cold_neighbours=3).fit(m)
    warm = np.asarray((m != 0).sum(axis=0)).ravel() > 0
    ids = model.add_items(emb[[0, 10]] * 2.0)  # the scale of a text's vector does not matter
    np.testing.assert_allclose(model.item_factors_[ids[0]], model.item_factors_[0], atol=1e-6)
    fitted = model.item_factors_[: m.shape[1]][warm]
    want = _neighbours_reference(emb[warm], fitted, 3, emb[[10]])
    np.testing.assert_allclose(model.item_factors_[ids[1]], want[0], atol=1e-5)
    path = tmp_path / "neighbours.semrec"
    model.save(path)
    loaded = semrec.TextCF.load(path)
    assert loaded.cold_neighbours == 3 and loaded.cold_penalty is None
    np.testing.assert_array_equal(loaded.item_factors_, model.item_factors_)
    a, b = loaded.add_items(emb[[1, 20]]), model.add_items(emb[[1, 20]])
    np.testing.assert_allclose(loaded.item_factors_[a], model.item_factors_[b], atol=1e-7)


@pytest.mark.parametrize(
    "options",
    [
        dict(cold_penalty=3.0),
        dict(cold_penalty=3.0, popularity=0.5, observed_popularity=0.5),
        dict(cold_neighbours=4),
        dict(cold_neighbours=100, popularity=0.5),
        dict(popularity=0.8, popularity_penalty=2.0),
    ],
)
@pytest.mark.parametrize("item_bias", [False, True])
def test_with_options_equals_fit_with_the_options(data, options, item_bias) -> None:
    m, emb = data
    base = _model(emb, item_bias=item_bias, cold_penalty=10.0).fit(m)
    before = base.item_factors_.copy()
    fitted = _model(emb, item_bias=item_bias, **options).fit(m)
    changed = base.with_options(**(dict(cold_penalty=None) | options))
    for name, value in options.items():
        assert getattr(changed, name) == value
    np.testing.assert_allclose(changed.item_factors_, fitted.item_factors_, atol=1e-5)
    np.testing.assert_array_equal(changed.user_factors_, fitted.user_factors_)
    if fitted.item_bias_ is None:
        assert changed.item_bias_ is None
    else:
        np.testing.assert_allclose(changed.item_bias_, fitted.item_bias_, atol=1e-5)
    ids, _ = changed.recommend(4, k=5)
    want, _ = fitted.recommend(4, k=5)
    np.testing.assert_array_equal(ids, want)
    np.testing.assert_array_equal(base.item_factors_, before)  # the original is untouched
    assert base.cold_penalty == 10.0
    other = sp.csr_array((np.ones(1, np.float32), [10], [0, 1]), shape=(1, m.shape[1]))
    changed.fold_in(other, users=[4])  # the copy's streaming state is its own
    np.testing.assert_array_equal(base.user_state_.input_sum, fitted.user_state_.input_sum)
    assert not np.allclose(changed.user_state_.input_sum[4], base.user_state_.input_sum[4])


def test_with_options_copy_shares_no_state_with_the_original(data) -> None:
    """Clicks, fold-ins and index choices on the copy leave the original as it was: its
    vectors, its recommendations (against a model fitted the same way) and its index."""
    m, emb = data
    base = _model(emb).fit(m)
    twin = _model(emb).fit(m)  # the same fit (deterministic): what base must keep answering
    base.use_index("hnsw", m=8, ef_search=64)
    copy = base.with_options(popularity=0.3)
    assert type(copy.item_index_).__name__ == "HNSWIndex"  # the same choice, its own index
    copy.update(4, 7, 5.0)
    copy.update(0, 11, 2.0)
    copy.use_index("exact")
    np.testing.assert_array_equal(base.user_factors_, twin.user_factors_)
    np.testing.assert_array_equal(base.item_factors_, twin.item_factors_)
    assert type(base.item_index_).__name__ == "HNSWIndex"
    base.use_index("exact")
    for user in (0, 4):
        np.testing.assert_array_equal(base.recommend(user, k=5)[0], twin.recommend(user, k=5)[0])
    own = sp.csr_array(base.interactions_[[4]])
    np.testing.assert_allclose(base.fold_in(own)[0], base.user_factors_[4], atol=1e-6)


def test_with_options_rebuilds_item_mode_users_whose_history_holds_a_cold_item(data) -> None:
    """user_vectors="items": a user's vector sums its items' vectors, so a history holding a
    cold item (after update) changes with the remapped cold vectors; it must equal fold_in of
    that history (the sum over the copy's own item vectors) in the copy."""
    m, emb = data
    base = _model(emb, user_vectors="items", cold_penalty=5.0).fit(m)
    base.update(6, 1, 3.0)  # item 1 is cold
    changed = base.with_options(cold_penalty=50.0)
    assert not np.allclose(changed.item_factors_[1], base.item_factors_[1])
    history = changed.interactions_[[6]]
    summed = history.data @ changed.item_factors_[history.indices].astype(np.float64)
    np.testing.assert_allclose(changed.user_factors_[6], summed / np.linalg.norm(summed), atol=1e-6)
    np.testing.assert_allclose(changed.user_factors_[6], changed.fold_in(history)[0], atol=1e-6)
    untouched = np.setdiff1d(np.arange(m.shape[0]), [6])
    np.testing.assert_array_equal(changed.user_factors_[untouched], base.user_factors_[untouched])


def test_cold_map_and_with_options_reject_bad_values(data) -> None:
    m, emb = data
    for value, error in ((0.0, ValueError), (-1.0, ValueError), (np.nan, ValueError)):
        with pytest.raises(error, match="cold_penalty must be a finite number > 0"):
            _model(emb, cold_penalty=value).fit(m)
    with pytest.raises(TypeError, match="cold_penalty must be a number"):
        _model(emb, cold_penalty="strong").fit(m)
    with pytest.raises(NotFittedError):
        _model(emb).with_options(cold_penalty=1.0)
    model = _model(emb).fit(m)
    with pytest.raises(TypeError, match=r"with_options takes only popularity.*got epochs"):
        model.with_options(epochs=4)
    with pytest.raises(ValueError, match="cold_penalty must be a finite number > 0"):
        model.with_options(cold_penalty=-2.0)
    assert model.cold_penalty is None
    with pytest.raises(ValueError, match="cold_neighbours must be >= 1"):
        _model(emb, cold_neighbours=0).fit(m)
    with pytest.raises(TypeError, match="cold_neighbours must be an int"):
        _model(emb, cold_neighbours=2.5).fit(m)
    with pytest.raises(ValueError, match=r"cold_penalty \(the ridge map\) or cold_neighbours"):
        _model(emb, cold_neighbours=5, cold_penalty=1.0).fit(m)
    mapped = _model(emb, cold_penalty=1.0).fit(m)
    with pytest.raises(ValueError, match="not both"):
        mapped.with_options(cold_neighbours=5)
    assert mapped.with_options(cold_penalty=None, cold_neighbours=5).cold_neighbours == 5
