"""Hybrid.tune(search="coordinate"): the coordinate ascent and its metric against NumPy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import semrec
from semrec.datasets import synthetic
from semrec.split import last_fraction


class Fixed:
    """A test model whose scores are a given dense matrix."""

    def __init__(self, scores: np.ndarray, interactions: sp.csr_array) -> None:
        self.table = np.asarray(scores, dtype=np.float32)
        self.interactions_ = interactions

    def score(self, users, items):
        return self.table[np.asarray(users)][:, np.asarray(items)]


def zscore(s: np.ndarray) -> np.ndarray:
    s = s.astype(np.float64)
    sd = s.std(axis=1, keepdims=True)
    return np.where(sd > 0, (s - s.mean(axis=1, keepdims=True)) / np.where(sd > 0, sd, 1), 0.0)


def ndcg_reference(blend: np.ndarray, seen: np.ndarray, relevant: np.ndarray, k: int) -> float:
    """PROTOCOL.md's NDCG@k over users with a relevant item: seen items excluded, ties to the
    lower item index, ideal DCG over min(|relevant|, k)."""
    values = []
    for u in np.flatnonzero(relevant.any(axis=1)):
        row = np.where(seen[u], -np.inf, blend[u])
        top = sorted(range(row.size), key=lambda i: (-row[i], i))[:k]
        top = [i for i in top if np.isfinite(row[i])]
        dcg = sum(1 / np.log2(r + 2) for r, i in enumerate(top) if relevant[u, i])
        ideal = sum(1 / np.log2(r + 2) for r in range(min(relevant[u].sum(), k)))
        values.append(dcg / ideal)
    return float(np.mean(values))


def coordinate_reference(metric, n: int, steps: int, rounds: int):
    """Coordinate ascent as Hybrid.tune documents it, written as plain loops."""
    tried = {}

    def value(w):
        if w not in tried:
            tried[w] = metric(w)
        return tried[w]

    singles = [tuple(1.0 if i == j else 0.0 for i in range(n)) for j in range(n)]
    scores = [value(w) for w in singles]
    current = singles[scores.index(max(scores))]
    best = max(scores)
    for _ in range(rounds):
        moved = False
        for j in range(n):
            if all(current[i] == 0 for i in range(n) if i != j):
                continue  # scaling the only weighted member changes no ranking
            top_w, top_v = None, -np.inf
            for level in range(steps + 1):
                w = list(current)
                w[j] = level / steps
                w = tuple(w)
                if w[j] == current[j] or not any(w):
                    continue
                if value(w) > top_v:
                    top_w, top_v = w, value(w)
            if top_w is not None and top_v > best:
                current, best, moved = top_w, top_v, True
        if not moved:
            break
    return current, tried


@pytest.fixture(scope="module")
def planted():
    """Three members: two see half of the validation items each (plus noise), one is noise,
    so the best blend needs both halves."""
    data = synthetic(120, 160, 4_000, random_state=5)
    train, validation = last_fraction(data)
    rng = np.random.default_rng(0)
    truth = (validation.interactions.toarray() != 0).astype(float)
    half = np.arange(160) < 80
    a = truth * half + 0.9 * rng.random(truth.shape)
    b = truth * ~half + 0.9 * rng.random(truth.shape)
    noise = rng.random(truth.shape)
    x = train.interactions
    models = [Fixed(noise, x), Fixed(a, x), Fixed(b, x)]
    return train, validation, models, truth != 0


def test_coordinate_search_equals_a_numpy_reference(planted):
    train, validation, models, relevant = planted
    seen = train.interactions.toarray() != 0
    normed = [zscore(m.table) for m in models]

    def metric(w):
        return ndcg_reference(
            sum(x * s for x, s in zip(w, normed, strict=True)), seen, relevant, 10
        )

    expected, tried = coordinate_reference(metric, 3, 5, 10)
    best = semrec.Hybrid.tune(
        models,
        train,
        validation,
        grid=5,
        search="coordinate",
        relevance_threshold=None,
        show_progress=False,
    )
    assert [w for _, w in best.models] == list(expected)
    assert expected[1] > 0 and expected[2] > 0  # the planted blend needs both halves
    table = best.tuning_
    assert [tuple(r) for r in table[["w0", "w1", "w2"]].to_numpy()] == list(tried)
    np.testing.assert_allclose(table["ndcg@10"], list(tried.values()), rtol=1e-12)
    assert table["ndcg@10"].max() > max(metric(w) for w in [(1, 0, 0), (0, 1, 0), (0, 0, 1)])


def test_coordinate_search_equals_evaluate_with_real_members_and_is_deterministic():
    data = synthetic(150, 200, 6_000, random_state=3)
    train, validation = last_fraction(data)
    x = train.interactions
    members = [
        semrec.ALS(factors=8, iterations=4, random_state=0, show_progress=False).fit(x),
        semrec.ItemKNN(20, show_progress=False).fit(x),
        semrec.MostPopular().fit(x),
    ]
    runs = []
    for threads in (1, 2):
        semrec.set_num_threads(threads)
        try:
            runs.append(
                semrec.Hybrid.tune(
                    members,
                    train,
                    validation,
                    grid=4,
                    search="coordinate",
                    metric="recall",
                    show_progress=False,
                )
            )
        finally:
            semrec.set_num_threads(None)
    assert runs[0].tuning_.equals(runs[1].tuning_)
    best = runs[0]
    weights = [w for _, w in best.models]
    chosen = float(best.tuning_["recall@10"].max())
    table = semrec.evaluate(
        semrec.Hybrid(list(zip(members, weights, strict=True))),
        train,
        validation,
        k=10,
        metrics=["recall"],
    )
    assert float(table.loc[10, "recall"]) == chosen
    singles = best.tuning_.iloc[:3]["recall@10"]  # each member alone comes first
    assert chosen >= singles.max()
    assert len(best.tuning_) <= 3 + 10 * 3 * 4


def test_coordinate_search_of_one_member_and_bad_arguments(planted):
    train, validation, models, _ = planted
    one = semrec.Hybrid.tune(
        models[:1], train, validation, search="coordinate", show_progress=False
    )
    assert [w for _, w in one.models] == [1.0] and len(one.tuning_) == 1
    with pytest.raises(ValueError, match="search"):
        semrec.Hybrid.tune(models, train, validation, search="random")
    with pytest.raises(TypeError, match="grid to be an int"):
        semrec.Hybrid.tune(models, train, validation, grid=[(1, 0, 0)], search="coordinate")
    with pytest.raises(ValueError, match="rounds"):
        semrec.Hybrid.tune(models, train, validation, search="coordinate", rounds=0)
    with pytest.raises(ValueError, match="grid"):
        semrec.Hybrid.tune(models, train, validation, grid=0, search="coordinate")


@pytest.mark.slow
def test_a_climbed_hybrid_saves_loads_and_recommends_on_dask(tmp_path):
    """What coordinate ascent returns is a plain Hybrid: the file round trip and
    semrec.distributed.recommend give its own lists."""
    distributed = pytest.importorskip("distributed")
    import dask.array as da

    from semrec.distributed import recommend

    data = synthetic(100, 120, 3_000, random_state=4)
    train, validation = last_fraction(data)
    x = train.interactions
    members = [
        semrec.ItemKNN(20, show_progress=False).fit(x),
        semrec.ALS(factors=6, iterations=3, random_state=0, show_progress=False).fit(x),
        semrec.MostPopular().fit(x),
    ]
    best = semrec.Hybrid.tune(
        members, train, validation, grid=4, search="coordinate", show_progress=False
    )
    users = np.arange(100)
    ids, scores = best.recommend(users, k=7)
    best.save(tmp_path / "climbed.npz")
    loaded = semrec.Hybrid.load(tmp_path / "climbed.npz")
    assert [w for _, w in loaded.models] == [w for _, w in best.models]
    np.testing.assert_array_equal(loaded.recommend(users, k=7)[0], ids)
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    with cluster, distributed.Client(cluster, set_as_default=False) as client:
        lists = recommend(best, da.from_array(users, chunks=40), k=7, client=client)
        got_ids, got_scores = client.gather(client.compute(list(lists)))
    np.testing.assert_array_equal(got_ids, ids)
    np.testing.assert_array_equal(got_scores, scores)
