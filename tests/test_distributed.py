"""semrec.distributed on a LocalCluster (2 spawned worker processes x 1 thread) against the
single-machine functions, which their own tests check against NumPy."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import pytest

distributed = pytest.importorskip("distributed")

import dask  # noqa: E402
import dask.array as da  # noqa: E402
import dask.dataframe as dd  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy.sparse as sp  # noqa: E402

import semrec  # noqa: E402
from semrec.datasets import synthetic  # noqa: E402
from semrec.distributed import (  # noqa: E402
    _cluster,
    _worker,
    encode,
    evaluate,
    fit_als,
    interactions_frame,
    interest_profiles,
    recommend,
)
from semrec.distributed._cluster import worker_threads  # noqa: E402
from semrec.interest import user_profiles  # noqa: E402
from semrec.rerank import Diversified  # noqa: E402
from semrec.split import last_fraction  # noqa: E402

START_METHOD = "distributed.worker.multiprocessing-method"


@pytest.fixture(scope="module")
def client():
    # Not the default client: every call passes client=, and "no client" can be tested.
    # ":0": any free port (None means the default 8787, which another test run on the same
    # machine may hold; the port-change warning is then an error under filterwarnings).
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    with distributed.Client(cluster, set_as_default=False) as c:
        yield c
    cluster.close()


@pytest.fixture(scope="module")
def data():
    # Synthetic S (1k users x 2k items x 100k interactions).
    return synthetic(1000, 2000, 100_000, random_state=0)


@pytest.fixture(scope="module")
def frame(data):
    return interactions_frame(data.interactions, npartitions=3)


@pytest.fixture(scope="module")
def split(data):
    return last_fraction(data)


@pytest.fixture(scope="module")
def als(split):
    train, _ = split
    return semrec.ALS(factors=16, iterations=3, random_state=0, show_progress=False).fit(
        train.interactions
    )


def gather(client, collection):
    return client.compute(collection).result()


def plain_frame(matrix, npartitions=2):
    """user, item, weight columns of a CSR matrix, with no recorded shape (as if read from
    files): the functions shuffle it and infer the shape from the ids."""
    coo = matrix.tocoo()
    table = pd.DataFrame(
        {"user": coo.row.astype(np.int64), "item": coo.col.astype(np.int64), "weight": coo.data}
    )
    return dd.from_pandas(table, npartitions=npartitions)


# ----------------------------------------------------------------------------------------------
# Packaging and cluster set-up


def test_importing_semrec_does_not_import_dask():
    code = (
        "import sys, semrec\n"
        "assert not any(m.split('.')[0] in ('dask', 'distributed') for m in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=os.environ)


def test_missing_dask_names_the_extra():
    code = (
        "import sys; sys.modules['dask'] = None\n"
        "try:\n    import semrec.distributed\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=os.environ
    ).stdout
    assert 'pip install "semrec[dask]"' in out


def test_workers_are_not_forked_and_fork_is_refused(client, frame):
    assert dask.config.get(START_METHOD) in ("spawn", "forkserver")
    with dask.config.set({START_METHOD: "fork"}), pytest.raises(RuntimeError, match="spawn"):
        fit_als(frame, iterations=1, client=client)


def thread_probe():
    """A model whose recommend lists, as every id, the semrec thread count its task ran with.

    Defined in a function, so that cloudpickle sends the class by value to spawned workers.
    """

    class Probe:
        def recommend(self, users, k=10, exclude_seen=True):
            shape = (len(users), k)
            return np.full(shape, semrec.get_num_threads(), np.int32), np.zeros(shape, np.float32)

    return Probe()


def counts_seen(client, num_threads):
    ids, _ = recommend(
        thread_probe(), da.arange(4, chunks=2), k=1, client=client, num_threads=num_threads
    )
    return set(gather(client, ids).ravel().tolist())


def test_threads_share_the_cores(client, frame):
    cores = len(os.sched_getaffinity(0))
    share = max(1, cores // 2)  # two workers of one thread on this host
    table = worker_threads(client, None)
    assert sorted(table.values()) == [share, share]
    assert worker_threads(client, 3) == dict.fromkeys(table, 3)
    before = client.run(semrec.get_num_threads)
    # Each task runs with its share (an override, then the rule again), in its own thread
    # only: the worker process's setting stays as it was.
    for num_threads, expected in ((2, min(2, cores)), (None, share)):
        fit_als(frame, factors=4, iterations=2, client=client, num_threads=num_threads)
        assert counts_seen(client, num_threads) == {expected}
        assert client.run(semrec.get_num_threads) == before


@pytest.fixture(scope="module")
def threaded_client():
    # In-process workers: the tasks run in threads of this (the caller's) process.
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
    )
    with distributed.Client(cluster, set_as_default=False) as c:
        yield c
    cluster.close()


@pytest.fixture
def caller_threads():
    """The caller's own count, set to all cores: more than a task's share (half of them)."""
    cores = len(os.sched_getaffinity(0))
    if cores < 2:
        pytest.skip("needs 2 cores: a task's share must differ from the caller's count")
    previous = semrec.get_num_threads()
    semrec.set_num_threads(cores)
    yield cores
    semrec.set_num_threads(previous)


def test_threaded_cluster_leaves_the_callers_thread_count(
    threaded_client, caller_threads, data, frame, split, als
):
    c = threaded_client
    torch = sys.modules.get("torch")  # LibTorch's count follows set_num_threads when loaded

    def unchanged():
        assert semrec.get_num_threads() == caller_threads
        assert torch is None or torch.get_num_threads() == caller_threads

    # The tasks ran with their share (or the override), yet this process's count is the
    # caller's after each compute.
    for num_threads, expected in ((None, caller_threads // 2), (1, 1)):
        assert counts_seen(c, num_threads) == {expected}
        unchanged()
    users = np.arange(0, als.n_users_, 4, dtype=np.int32)
    ids, scores = recommend(als, da.from_array(users, chunks=50), k=5, client=c)
    got = dask.compute(ids, scores, scheduler=c.get)
    unchanged()
    for a, b in zip(got, als.recommend(users, k=5), strict=True):
        np.testing.assert_array_equal(a, b)
    train, test = split
    metrics = evaluate(
        als,
        interactions_frame(train.interactions, 3),
        interactions_frame(test.interactions, 2),
        k=(5, 10),
        client=c,
        num_threads=1,
    )
    unchanged()
    want = semrec.evaluate(als, train, test, k=(5, 10))
    pd.testing.assert_frame_equal(metrics[want.columns], want, rtol=1e-10)
    kwargs = {"factors": 8, "iterations": 2, "random_state": 1, "show_progress": False}
    model = fit_als(frame, shape=data.interactions.shape, client=c, **kwargs)
    unchanged()
    reference = semrec.ALS(**kwargs).fit(data.interactions)
    np.testing.assert_array_equal(model.item_factors_, reference.item_factors_)
    emb = np.random.default_rng(3).standard_normal((data.n_items, 8), dtype=np.float32)
    profiles = gather(c, interest_profiles(frame, emb, client=c))
    unchanged()
    np.testing.assert_allclose(profiles, user_profiles(data.interactions, emb), atol=1e-6)


# ----------------------------------------------------------------------------------------------
# ALS


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"solver": "cholesky"},
        {"feedback": "explicit", "biases": True, "regularization": 0.1},
        {"shuffled": True},
    ],
    ids=["implicit-cg", "implicit-cholesky", "explicit-biases", "unindexed-input"],
)
def test_fit_als_equals_single_machine(client, data, frame, params, tmp_path):
    if params.pop("shuffled", False):  # plain columns: fit_als shuffles users into blocks too
        frame = frame.reset_index()
        assert frame.index.name != "user"
    kwargs = {"factors": 8, "iterations": 3, "random_state": 7, "show_progress": False, **params}
    kwargs["calculate_training_loss"] = True
    calls, losses = [], []
    model = fit_als(
        frame,
        shape=data.interactions.shape,
        client=client,
        callback=lambda *args: calls.append(args),
        **kwargs,
    )
    reference = semrec.ALS(**kwargs).fit(data.interactions, callback=lambda *a: losses.append(a[2]))
    # Every row is solved by the same kernel against the same inputs: bit for bit.
    np.testing.assert_array_equal(model.user_factors_, reference.user_factors_)
    np.testing.assert_array_equal(model.item_factors_, reference.item_factors_)
    if params.get("biases"):
        np.testing.assert_array_equal(model.item_biases_, reference.item_biases_)
        assert model.global_mean_ == pytest.approx(reference.global_mean_, rel=1e-12)
    assert [c[0] for c in calls] == [0, 1, 2]
    # The loss's data term is summed per user block: equal up to the order of the sums.
    np.testing.assert_allclose([c[2] for c in calls], losses, rtol=1e-6)
    assert (model.interactions_ != reference.interactions_).nnz == 0
    np.testing.assert_array_equal(
        model.recommend([0, 5], k=5)[0], reference.recommend([0, 5], 5)[0]
    )
    model.save(tmp_path / "als.npz")
    np.testing.assert_array_equal(
        semrec.ALS.load(tmp_path / "als.npz").item_factors_, reference.item_factors_
    )


def test_fit_als_survives_a_killed_worker(client, data, frame):
    kwargs = {"factors": 8, "iterations": 3, "random_state": 3, "show_progress": False}
    killed = []

    def kill_one(iteration, seconds, loss):
        if iteration == 0:  # the worker holds blocks and broadcast copies: Dask must recompute
            victim = sorted(client.scheduler_info(n_workers=-1)["workers"])[0]
            client.run(os._exit, 1, workers=[victim], on_error="ignore")
            killed.append(victim)

    model = fit_als(frame, client=client, callback=kill_one, **kwargs)
    reference = semrec.ALS(**kwargs).fit(data.interactions)
    assert killed
    np.testing.assert_array_equal(model.user_factors_, reference.user_factors_)
    np.testing.assert_array_equal(model.item_factors_, reference.item_factors_)
    client.wait_for_workers(2, timeout=60)  # the nanny restarts it for the next tests
    assert killed[0] not in client.scheduler_info(n_workers=-1)["workers"]


@pytest.fixture(scope="module")
def small_split():
    # Small: 80 users x 60 items, most users and items in both train and test.
    return last_fraction(synthetic(80, 60, 1500, random_state=0))


def test_fit_als_keeps_the_shape_of_users_and_items_without_interactions(client, small_split):
    # After a split the last item (and user) may have no train interactions: the model still
    # has their rows, and every factor equals a single-machine fit of the same matrix.
    train, _ = small_split
    m = train.interactions.tolil()
    m[:, -1] = 0
    m[-1, :] = 0
    m = sp.csr_array(m.tocsr())
    m.eliminate_zeros()
    assert m[:, [-1]].nnz == 0 and m[[-1], :].nnz == 0
    kwargs = {"factors": 4, "iterations": 2, "random_state": 0, "show_progress": False}
    reference = semrec.ALS(**kwargs).fit(m)
    recorded = fit_als(interactions_frame(m, npartitions=3), client=client, **kwargs)
    given = fit_als(plain_frame(m), shape=m.shape, client=client, **kwargs)
    for model in (recorded, given):
        assert (model.n_users_, model.n_items_) == m.shape
        np.testing.assert_array_equal(model.user_factors_, reference.user_factors_)
        np.testing.assert_array_equal(model.item_factors_, reference.item_factors_)
    # Without a recorded shape or shape=, it is inferred from the ids, as documented.
    inferred = fit_als(plain_frame(m), client=client, **kwargs)
    assert (inferred.n_users_, inferred.n_items_) == (m.shape[0] - 1, m.shape[1] - 1)


def test_fit_als_refuses_no_interactions_and_non_integer_ids(client):
    kwargs = {"factors": 2, "iterations": 1, "show_progress": False, "client": client}
    with pytest.raises(ValueError, match="no interactions"):  # shape recorded: 3 x 3, empty
        fit_als(interactions_frame(sp.csr_array((3, 3), dtype=np.float32), 2), **kwargs)
    empty = pd.DataFrame({"user": [0], "item": [0], "weight": [1.0]}).iloc[:0]
    with pytest.raises(ValueError, match="no interactions"):  # nothing to infer a shape from
        fit_als(dd.from_pandas(empty, npartitions=1), **kwargs)
    zeros = pd.DataFrame({"user": [0, 1], "item": [1, 0], "weight": [0.0, 0.0]})
    with pytest.raises(ValueError, match="no interactions"):  # zero weights are dropped
        fit_als(dd.from_pandas(zeros, npartitions=1), **kwargs)
    floats = pd.DataFrame({"user": [0.0, 1.5], "item": [0, 1], "weight": [1.0, 1.0]})
    with pytest.raises(TypeError, match="'user' must hold integer ids, got dtype float64"):
        fit_als(dd.from_pandas(floats, npartitions=1), **kwargs)
    with pytest.raises(TypeError, match="'item' must hold integer ids"):
        fit_als(dd.from_pandas(floats.assign(user=[0, 1], item=[0.0, 1.0]), 1), **kwargs)
    ints = floats.assign(user=[0, 4])
    with pytest.raises(IndexError, match=r"'user' holds id 4, outside \[0, 3\) set by shape"):
        fit_als(dd.from_pandas(ints, npartitions=1), shape=(3, 2), **kwargs)
    # Ids past int32 are refused before any block is sized by them (a 32 TiB allocation).
    huge = floats.assign(user=[0, 2**40], item=[0, 1])
    with pytest.raises(IndexError, match=r"'user' holds id 1099511627776, beyond 2147483646"):
        fit_als(dd.from_pandas(huge, npartitions=1), **kwargs)
    with pytest.raises(IndexError, match=r"shape\[1\] is 2147483648, beyond the 2147483647"):
        fit_als(dd.from_pandas(huge.assign(user=[0, 1]), 1), shape=(3, 2**31), **kwargs)


# ----------------------------------------------------------------------------------------------
# Profiles, recommendations, evaluation


@pytest.mark.parametrize("indexed", [True, False], ids=["user-indexed", "columns"])
def test_interest_profiles_equal_user_profiles(client, data, frame, indexed):
    emb = np.random.default_rng(0).standard_normal((data.n_items, 12), dtype=np.float32)
    source = frame if indexed else frame.reset_index()
    profiles = interest_profiles(source, emb, client=client, npartitions=5)
    assert isinstance(profiles, da.Array) and profiles.dtype == np.float32
    # As given (3 user ranges), or shuffled into the 5 blocks asked for.
    assert profiles.numblocks[0] == (3 if indexed else 5)
    np.testing.assert_allclose(
        gather(client, profiles), user_profiles(data.interactions, emb), atol=1e-6
    )


def test_interest_profiles_with_decay_equal_user_profiles(client, data):
    emb = np.random.default_rng(1).standard_normal((data.n_items, 8), dtype=np.float32)
    times = data.timestamps
    timed = interactions_frame(data.interactions, npartitions=2, timestamps=times)
    profiles = interest_profiles(timed, emb, timestamp="t", half_life=86_400 * 30, client=client)
    reference = user_profiles(data.interactions, emb, timestamps=times, half_life=86_400 * 30)
    np.testing.assert_allclose(gather(client, profiles), reference, atol=1e-5)


def test_interest_profiles_refuse_ids_past_n_users(client):
    m = sp.csr_array(np.array([[1, 0, 2], [0, 3, 0], [1, 1, 0], [0, 0, 0], [2, 0, 1]], np.float32))
    emb = np.random.default_rng(0).standard_normal((3, 4), dtype=np.float32)
    recorded = interactions_frame(m, 2)
    for n_users in (1, 2, 4):  # the indexed frame's divisions name the id before any work
        with pytest.raises(IndexError, match=f"holds id 4, outside .* set by n_users={n_users}"):
            interest_profiles(recorded, emb, n_users=n_users, client=client)
    with pytest.raises(IndexError, match="set by n_users=2"):  # shuffled: found in a block
        gather(client, interest_profiles(plain_frame(m), emb, n_users=2, client=client))
    # A larger n_users adds zero rows, as user_profiles on the padded matrix.
    padded = sp.csr_array(sp.vstack([m, sp.csr_array((2, 3), dtype=np.float32)]))
    got = gather(client, interest_profiles(recorded, emb, n_users=7, client=client))
    np.testing.assert_allclose(got, user_profiles(padded, emb), atol=1e-6)
    # The recorded shape keeps a last user without interactions; inferred, it is cut.
    last_empty = sp.csr_array(padded[:4])
    got = gather(client, interest_profiles(interactions_frame(last_empty, 2), emb, client=client))
    np.testing.assert_allclose(got, user_profiles(last_empty, emb), atol=1e-6)


def distributed_lists(client, model, users, k, chunks):
    """recommend() over a Dask array of users, gathered, checked equal to model.recommend."""
    ids, scores = recommend(model, da.from_array(users, chunks=chunks), k=k, client=client)
    got = client.gather(client.compute([ids, scores]))
    for a, b in zip(got, model.recommend(users, k=k), strict=True):
        np.testing.assert_array_equal(a, b)
    return got[0]


def test_recommend_equals_model_recommend(client, als):
    distributed_lists(client, als, np.arange(0, als.n_users_, 3, dtype=np.int32), 7, 100)


@pytest.mark.parametrize(
    ("kind", "params"),
    [("hnsw", {"m": 8, "ef_construction": 40, "ef_search": 32}), ("pq", {"m": 8, "rerank": 30})],
)
def test_recommend_through_each_workers_approximate_index(client, data, kind, params):
    # A ContentRecommender searching an HNSW graph or PQ codes: they travel with the pickled
    # model, so every worker answers what the model answers here (exclusions honoured).
    pytest.importorskip("faiss")
    emb = np.random.default_rng(5).standard_normal((data.n_items, 16), dtype=np.float32)
    model = semrec.ContentRecommender(emb, show_progress=False).fit(data.interactions)
    model.update(3, 11)
    model.use_index(kind, **params)
    users = np.arange(0, model.n_users_, 7, dtype=np.int32)
    got_ids = distributed_lists(client, model, users, 6, 40)
    seen = model.interactions_[users]
    assert not np.take_along_axis(seen.toarray(), got_ids, axis=1).any()


def test_large_model_is_scattered_not_embedded(client):
    # 40k items x 64 factors: a 10 MB model, past Dask's large-graph warning (an error here).
    big = synthetic(200, 40_000, 5_000, with_text=False, random_state=0)
    model = semrec.ALS(factors=64, iterations=1, random_state=0, show_progress=False)
    model.fit(big.interactions)
    model_bytes = len(pickle.dumps(model))
    assert model_bytes > 10_000_000
    users = da.arange(200, chunks=50)
    ids, _ = recommend(model, users, k=3, client=client)
    graph = dict(ids.__dask_graph__())
    # The graph references the model's future by key; pickled whole it stays tiny.
    assert len(pickle.dumps(graph)) < 100_000
    np.testing.assert_array_equal(gather(client, ids), model.recommend(np.arange(200), k=3)[0])


def test_evaluate_equals_semrec_evaluate(client, split, als):
    train, test = split
    emb = np.random.default_rng(2).standard_normal((train.n_items, 8), dtype=np.float32)
    got = evaluate(
        als,
        interactions_frame(train.interactions, 3),
        interactions_frame(test.interactions, 4),
        k=(5, 10),
        item_embeddings=emb,
        client=client,
    )
    want = semrec.evaluate(als, train, test, k=(5, 10), item_embeddings=emb)
    assert got.attrs["n_users"] == want.attrs["n_users"]
    pd.testing.assert_frame_equal(got[want.columns], want, rtol=1e-10)
    with pytest.raises(ValueError, match=r"item_embeddings has shape .* one row per item"):
        evaluate(als, interactions_frame(train.interactions, 3),
                 interactions_frame(test.interactions, 4), item_embeddings=emb[1:],
                 client=client)  # fmt: skip


def test_evaluate_a_model_without_a_shape_uses_the_split(client, small_split):
    # A reranker has no n_users_/n_items_: the shape comes from the frames (recorded, or the
    # ids of train and test together), as semrec.evaluate takes it from the split, never from
    # the test users and items alone.
    train, test = small_split
    als = semrec.ALS(8, iterations=3, random_state=0, show_progress=False).fit(train.interactions)
    emb = np.random.default_rng(0).standard_normal((train.n_items, 8)).astype(np.float32)
    model = Diversified(als, emb, 1.0)
    assert not hasattr(model, "n_items_")
    rows = np.repeat(np.arange(train.n_users), np.diff(test.interactions.indptr))
    no_last_users = test.subset(rows < 60)
    no_last_items = test.subset(test.interactions.indices < 50)
    kwargs = {"k": 10, "metrics": ["ndcg", "coverage", "novelty"], "relevance_threshold": None}
    for part in (no_last_users, no_last_items):
        want = semrec.evaluate(model, train, part, **kwargs)
        for frames in (
            (interactions_frame(train.interactions, 3), interactions_frame(part.interactions, 3)),
            (plain_frame(train.interactions), plain_frame(part.interactions)),
        ):
            got = evaluate(model, *frames, client=client, **kwargs)
            pd.testing.assert_frame_equal(got[want.columns], want, rtol=1e-10)
    # Frames of different matrices, a model listing items past the split, a model fitted on
    # other items: clear errors.
    with pytest.raises(ValueError, match="share id maps"):
        evaluate(model, interactions_frame(train.interactions), interactions_frame(
            sp.csr_array(test.interactions[:, :50])), client=client, **kwargs)  # fmt: skip
    with pytest.raises(IndexError, match=r"model.recommend listed item 5\d.*\[0, 50\)"):
        evaluate(model, plain_frame(train.interactions[:, :50]),
                 plain_frame(no_last_items.interactions), k=10, metrics=["ndcg"],
                 relevance_threshold=None, shape=(80, 50), client=client)  # fmt: skip
    with pytest.raises(ValueError, match="fitted on 60 items but the split has 50"):
        evaluate(als, plain_frame(train.interactions), plain_frame(test.interactions),
                 shape=(80, 50), client=client, **kwargs)  # fmt: skip


def test_evaluate_drops_seen_items_as_semrec_evaluate(client, small_split):
    # A model fitted on another matrix of the same shape excludes *its* items, not train's:
    # semrec.evaluate drops train's items from the lists and refills them, and so must the
    # distributed one (train as given, shuffled by user, or indexed by user already).
    train, test = small_split
    other = synthetic(80, 60, 1500, random_state=5).interactions
    # Without the test's entries: a model that has seen those is refused (it would score 0).
    other = sp.csr_array(other - other.multiply(test.interactions != 0))
    other.eliminate_zeros()
    model = semrec.ALS(8, iterations=3, random_state=0, show_progress=False).fit(other)
    kwargs = {"k": (5, 10), "metrics": ["ndcg", "recall", "coverage"], "relevance_threshold": 1}
    want = semrec.evaluate(model, train, test, **kwargs)
    empty = semrec.datasets.Dataset(sp.csr_array(train.interactions.shape))
    plain = semrec.evaluate(model, empty, test, **kwargs)  # nothing to filter: other figures
    assert not np.allclose(plain.to_numpy(), want.to_numpy())
    for train_frame in (interactions_frame(train.interactions, 3), plain_frame(train.interactions)):
        got = evaluate(
            model, train_frame, interactions_frame(test.interactions, 2), client=client, **kwargs
        )
        pd.testing.assert_frame_equal(got[want.columns], want, rtol=1e-10)
    # A test frame cut to its first users reads only their train rows, with the same result.
    first = interactions_frame(test.interactions, 3).loc[:29]
    want = semrec.evaluate(model, train, test, users=np.arange(30), **kwargs)
    got = evaluate(model, interactions_frame(train.interactions, 3), first, client=client, **kwargs)
    pd.testing.assert_frame_equal(got[want.columns], want, rtol=1e-10)


def test_evaluate_refuses_a_model_that_has_seen_the_test_set(client, small_split):
    # As semrec.evaluate: it would exclude the test items as seen and score a silent 0.
    train, test = small_split
    frames = (interactions_frame(train.interactions, 3), interactions_frame(test.interactions, 2))
    kwargs = {"k": 10, "relevance_threshold": None, "client": client}
    leaky = semrec.ItemKNN(show_progress=False).fit(train.interactions + test.interactions)
    with pytest.raises(ValueError, match=r"already seen \d+ relevant test interaction"):
        semrec.evaluate(leaky, train, test, k=10, relevance_threshold=None)
    with pytest.raises(ValueError, match=r"already seen \d+ relevant test interaction"):
        evaluate(leaky, *frames, **kwargs)
    model = semrec.ItemKNN(show_progress=False).fit(train.interactions)
    user = int(np.flatnonzero(np.diff(test.interactions.indptr))[-1])  # in the last block
    model.update(user, int(test.interactions[[user]].indices[0]))  # a test event streamed in
    with pytest.raises(ValueError, match=r"already seen 1 relevant test interaction"):
        evaluate(model, *frames, **kwargs)
    # A train of items alone says nothing of the users' histories: nothing to compare with.
    items_only = dd.from_pandas(pd.DataFrame({"item": train.interactions.indices}), 1)
    assert evaluate(model, items_only, frames[1], **kwargs)["ndcg"].iloc[0] >= 0


def test_evaluate_drops_a_new_user_splits_history(client):
    # New users' revealed history: semrec.evaluate reads it from test.split_info, the
    # distributed one takes it as history=.
    train, test = semrec.split.new_users(synthetic(200, 150, 6000, random_state=1), 0.3)
    history = test.split_info["history"]
    model = semrec.MostPopular().fit(train.interactions)  # knows nothing of the history
    kwargs = {"k": 10, "metrics": ["ndcg", "precision"], "relevance_threshold": None}
    want = semrec.evaluate(model, train, test, **kwargs)
    frames = (interactions_frame(train.interactions, 2), interactions_frame(test.interactions, 2))
    got = evaluate(model, *frames, history=interactions_frame(history.interactions, 2),
                   client=client, **kwargs)  # fmt: skip
    pd.testing.assert_frame_equal(got[want.columns], want, rtol=1e-10)
    without = evaluate(model, *frames, client=client, **kwargs)
    assert not np.allclose(without.to_numpy(), want.to_numpy())


def test_evaluate_refuses_a_list_that_repeats_an_item(client, small_split, tmp_path):
    # The model's class must be importable on the workers: upload its module to them.
    source = tmp_path / "semrec_test_repeating.py"
    source.write_text(
        "import numpy as np\n"
        "class Repeating:\n"
        "    def recommend(self, users, k=10, **kwargs):\n"
        "        ids = np.zeros((len(users), k), dtype=np.int32)\n"
        "        return ids, np.zeros(ids.shape, dtype=np.float32)\n"
    )
    client.upload_file(str(source))
    sys.path.insert(0, str(tmp_path))
    try:
        from semrec_test_repeating import Repeating

        train, test = small_split
        frames = (interactions_frame(train.interactions), interactions_frame(test.interactions))
        with pytest.raises(ValueError, match=r"listed item 0 more than once for user \d+"):
            semrec.evaluate(Repeating(), train, test, k=3, relevance_threshold=None)
        with pytest.raises(ValueError, match=r"listed item 0 more than once for user \d+"):
            evaluate(Repeating(), *frames, k=3, relevance_threshold=None, client=client)
    finally:
        sys.path.remove(str(tmp_path))


def test_evaluate_rating_errors_equal_semrec_evaluate(client, split):
    train, test = split
    ratings = semrec.ALS(
        factors=8, iterations=3, feedback="explicit", biases=True, random_state=0,
        show_progress=False,
    ).fit(train.interactions)  # fmt: skip
    metrics = ["ndcg", "rmse", "mae"]
    got = evaluate(
        ratings,
        interactions_frame(train.interactions, 2),
        interactions_frame(test.interactions, 3),
        k=10,
        metrics=metrics,
        client=client,
    )
    want = semrec.evaluate(ratings, train, test, k=10, metrics=metrics)
    pd.testing.assert_frame_equal(got[want.columns], want, rtol=1e-10)
    frames = interactions_frame(train.interactions, 2), interactions_frame(test.interactions, 2)
    preferences = semrec.ALS(factors=8, iterations=3, random_state=0, show_progress=False)
    preferences.fit(train.interactions)
    for model, kind, metrics in [
        (semrec.MostPopular().fit(train.interactions), TypeError, ["rmse"]),
        (preferences, ValueError, ["ndcg", "mae", "rmse"]),  # implicit: no ratings to compare
    ]:
        with pytest.raises(kind) as want:
            semrec.evaluate(model, train, test, metrics=metrics)
        with pytest.raises(kind) as got:
            evaluate(model, *frames, metrics=metrics, client=client)
        assert str(got.value) == str(want.value)


# ----------------------------------------------------------------------------------------------
# Text


def test_encode_equals_text_encoder_and_writes_parquet(client, data, tmp_path):
    texts = data.items["text"].iloc[:240].tolist()
    frame = dd.from_pandas(pd.DataFrame({"id": np.arange(240), "text": texts}), npartitions=4)
    out = encode(frame, "text", keep=["id"], client=client)
    dim = semrec.TextEncoder().dim
    vectors = out[[f"e{j}" for j in range(dim)]].to_dask_array(lengths=True)
    assert vectors.dtype == np.float32
    # encode()'s defaults (precision "auto", batch 64), one partition of 60 texts at a time
    encoder = semrec.TextEncoder()
    reference = np.concatenate([encoder.encode(texts[i : i + 60], batch_size=64)
                                for i in range(0, 240, 60)])  # fmt: skip
    np.testing.assert_allclose(gather(client, vectors), reference, atol=1e-5)
    # Written to Parquet and read back unchanged; the id column travels with the vectors.
    gather(client, out.to_parquet(tmp_path / "emb", compute=False))
    back = pd.read_parquet(tmp_path / "emb").sort_values("id")
    np.testing.assert_array_equal(back["id"], np.arange(240))
    np.testing.assert_allclose(back.iloc[:, 1:].to_numpy(), reference, atol=1e-5)
    # One load per worker process however many partitions it encoded.
    assert set(client.run(_worker.load_count).values()) <= {0, 1}


def test_encode_gives_an_empty_partition_its_columns(client):
    texts = ["space opera", "romance in paris", "robots", "a cowboy film"]
    frame = dd.from_pandas(pd.DataFrame({"id": [1, 2, 3, 4], "text": texts}), npartitions=2)
    kept = frame[frame.id > 2]  # the first partition is now empty
    assert [len(p) for p in kept.partitions] == [0, 2]
    out = encode(kept, "text", keep=["id"], client=client)
    parts = [gather(client, p) for p in out.partitions]
    assert parts[0].empty and list(parts[0].columns) == list(parts[1].columns)
    assert (parts[0].dtypes == parts[1].dtypes).all()
    got = gather(client, out)
    assert got["id"].tolist() == [3, 4]
    reference = semrec.TextEncoder().encode(texts[2:], batch_size=64)
    np.testing.assert_allclose(got.iloc[:, 1:].to_numpy(), reference, atol=1e-5)


# ----------------------------------------------------------------------------------------------
# Errors


def test_pandas_input_says_how_to_convert(client, data):
    pandas_frame = pd.DataFrame({"user": [0], "item": [0], "weight": [1.0]})
    with pytest.raises(TypeError, match="from_pandas"):
        fit_als(pandas_frame, client=client)
    with pytest.raises(TypeError, match="from_pandas"):
        interest_profiles(pandas_frame, np.ones((1, 2), np.float32), client=client)


def test_missing_column_is_named(client, frame):
    with pytest.raises(ValueError, match="'rating'"):
        fit_als(frame, weight="rating", client=client)
    with pytest.raises(ValueError, match="'title'"):
        encode(frame, "title", client=client)


def test_no_running_client_says_how_to_start_one(frame):
    with pytest.raises(RuntimeError, match=r"Client\(\)"):
        fit_als(frame, iterations=1)


def test_wrong_types_and_unsupported_options(client, frame, als):
    with pytest.raises(TypeError, match=r"dask\.array\.from_array"):
        recommend(als, np.arange(3), client=client)
    with pytest.raises(TypeError, match="model must be a fitted model"):  # the class itself
        recommend(semrec.ALS, da.arange(3, chunks=3), client=client)
    with pytest.raises(TypeError, match="client"):
        fit_als(frame, client="tcp://nowhere")
    with pytest.raises(ValueError, match="timestamp"):
        interest_profiles(frame, np.ones((2000, 2), np.float32), half_life=1.0, client=client)


def test_a_cluster_without_workers_is_waited_for_then_named(monkeypatch):
    # All workers restarting (a nanny replacing a dead one) is waited for; none at all is an
    # error that says so.
    monkeypatch.setattr(_cluster, "WORKER_WAIT_SECONDS", 1)
    cluster = distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=":0")
    with distributed.Client(cluster, set_as_default=False) as empty:
        with pytest.raises(RuntimeError, match="no workers \\(none joined within 1 s\\)"):
            worker_threads(empty, None)
    cluster.close()


def test_evaluate_keeps_stored_zero_weights_at_a_threshold_of_zero(client, small_split):
    # A stored 0 (a centred rating) passes relevance_threshold=0, as in semrec.evaluate.
    train, test = small_split
    zeroed = test.interactions.copy()
    zeroed.data[::4] = 0.0
    part = semrec.datasets.Dataset(zeroed, user_ids=test.user_ids, item_ids=test.item_ids)
    model = semrec.MostPopular().fit(train.interactions)
    kwargs = {"k": 5, "metrics": ["ndcg", "recall"], "relevance_threshold": 0}
    want = semrec.evaluate(model, train, part, **kwargs)
    assert (
        want.attrs["n_users"]
        == semrec.evaluate(
            model, train, part, k=5, metrics=["ndcg"], relevance_threshold=None
        ).attrs["n_users"]
    )
    got = evaluate(model, interactions_frame(train.interactions, 3),
                   interactions_frame(zeroed, 3), client=client, **kwargs)  # fmt: skip
    assert got.attrs["n_users"] == want.attrs["n_users"]
    pd.testing.assert_frame_equal(got[want.columns], want, rtol=1e-10)


def test_fit_als_with_stored_zero_weights_equals_single_machine(client, small_split):
    # A stored 0 is seen (kept in interactions_) but carries nothing: not in the mean, not
    # in the solves, as in semrec.ALS.
    train, _ = small_split
    zeroed = train.interactions.copy()
    zeroed.data[::5] = 0.0
    kwargs = {"factors": 4, "iterations": 2, "random_state": 1, "show_progress": False,
              "feedback": "explicit", "biases": True}  # fmt: skip
    model = fit_als(interactions_frame(zeroed, 3), shape=zeroed.shape, client=client, **kwargs)
    reference = semrec.ALS(**kwargs).fit(zeroed)
    assert model.global_mean_ == pytest.approx(reference.global_mean_, rel=1e-12)
    np.testing.assert_array_equal(model.item_factors_, reference.item_factors_)
    assert model.interactions_.nnz == reference.interactions_.nnz == zeroed.nnz


def test_arguments_are_checked_as_on_one_machine(client, small_split):
    # Found by the session 43 hostile-input audit: wrong metrics from a negative batch_size,
    # a history whose users were silently dropped, complex weights cast to real, raw pandas
    # and NumPy messages, a loss computed for calculate_training_loss="no".
    train, test = small_split
    model = semrec.ALS(4, iterations=2, random_state=0, show_progress=False).fit(train.interactions)
    tr, te = interactions_frame(train.interactions, 2), interactions_frame(test.interactions, 2)
    kwargs = {"k": 5, "client": client}
    for bad, error, message in [
        ({"batch_size": -1}, ValueError, "batch_size"),
        ({"batch_size": None}, TypeError, "batch_size"),
        ({"relevance_threshold": "3"}, TypeError, "relevance_threshold"),
        ({"items": []}, ValueError, "items is empty"),
    ]:
        with pytest.raises(error, match=message):
            evaluate(model, tr, te, **kwargs, **bad)
    far = plain_frame(sp.csr_array(([1.0], ([0], [1])), shape=(2000, 60)))  # user 0 only
    far = far.assign(user=far["user"] + 1000)
    with pytest.raises(IndexError, match=r"history column 'user' holds id 1000, outside \[0, 80\)"):
        evaluate(model, tr, te, history=far, **kwargs)
    with pytest.raises(TypeError, match="model must be a fitted model"):
        evaluate(semrec.ALS, tr, te, **kwargs)
    table = plain_frame(train.interactions)
    for frame, message in [
        (table.assign(weight=table["weight"].astype(complex)), "must hold real numbers"),
        (table.assign(weight=table["weight"].astype(str)), "must hold real numbers"),
    ]:
        with pytest.raises(TypeError, match=message):
            fit_als(frame, factors=2, iterations=1, client=client)
    fit = {"factors": 2, "iterations": 1, "show_progress": False, "client": client}
    with pytest.raises(TypeError, match="calculate_training_loss must be True or False"):
        fit_als(table, calculate_training_loss="no", **fit)
    with pytest.raises(TypeError, match="callback must be a function"):
        fit_als(table, callback=5, **fit)
    for parts in (0, [], "2"):
        with pytest.raises((TypeError, ValueError), match="npartitions"):
            fit_als(table, npartitions=parts, **fit)
    for names, error in [({"user": ["user"]}, TypeError), ({"item": "user"}, ValueError)]:
        with pytest.raises(error, match="column"):
            fit_als(table, **names, **fit)
    emb = np.ones((60, 4), np.float32)
    huge = table.assign(user=table["user"] + 2**40)
    with pytest.raises(IndexError, match="beyond the 2147483647"):
        interest_profiles(huge, emb, client=client)
    model2 = fit_als(table, num_threads=np.int64(0), **fit)  # 0 and NumPy ints, as elsewhere
    assert model2.n_users_ == 80


# ----------------------------------------------------------------------------------------------
# Found by the session 48 audit of semrec.distributed


def test_evaluate_novelty_counts_distinct_users_of_a_click_log(client, small_split):
    # A click log repeats (user, item) rows: novelty's popularity is each item's distinct
    # train users, as semrec.evaluate counts the split's entries (not rows).
    train, test = small_split
    model = semrec.MostPopular().fit(train.interactions)
    kwargs = {"k": (5, 10), "metrics": ["ndcg", "novelty"], "relevance_threshold": None}
    want = semrec.evaluate(model, train, test, **kwargs)
    coo = train.interactions.tocoo()
    log = pd.DataFrame({"user": coo.row.astype(np.int64), "item": coo.col.astype(np.int64),
                        "weight": coo.data})  # fmt: skip
    clicks = pd.concat([log, log[log.user < 30], log])  # repeats in other partitions
    indexed = dd.from_pandas(clicks.set_index("user").sort_index(), npartitions=3)
    assert indexed.known_divisions  # a user's repeats share a partition
    te = interactions_frame(test.interactions, 2)
    for frame in (dd.from_pandas(clicks, npartitions=3), indexed):
        got = evaluate(model, frame, te, client=client, **kwargs)
        pd.testing.assert_frame_equal(got[want.columns], want, rtol=1e-10)


def test_evaluate_after_realtime_users_equals_semrec_evaluate(client, small_split):
    # update and fold_in append users past the split: frames read from files (no recorded
    # shape) take the split's users from their ids, not the model's n_users_ (novelty counts
    # them), so the table still equals semrec.evaluate's on the same split.
    train, test = small_split
    kwargs = {"k": 10, "metrics": ["ndcg", "novelty", "coverage"], "relevance_threshold": None}
    model = semrec.ALS(4, iterations=2, random_state=0, show_progress=False)
    model.fit(train.interactions)
    model.update(model.n_users_, 3)
    model.fold_in(sp.csr_array(train.interactions[[1, 2]]), users=[81, 82])
    assert model.n_users_ == train.n_users + 3
    want = semrec.evaluate(model, train, test, **kwargs)
    got = evaluate(model, plain_frame(train.interactions), plain_frame(test.interactions),
                   client=client, **kwargs)  # fmt: skip
    pd.testing.assert_frame_equal(got[want.columns], want, rtol=1e-10)
    # A model that knows fewer users than the split evaluates: semrec.evaluate's ValueError
    # (with its fold_in hint), not the model's IndexError.
    fewer = semrec.ALS(4, iterations=1, random_state=0, show_progress=False)
    fewer.fit(sp.csr_array(train.interactions[:60]))
    with pytest.raises(ValueError, match="fold_in the revealed history"):
        semrec.evaluate(fewer, train, test, **kwargs)
    for frames in (
        (plain_frame(train.interactions), plain_frame(test.interactions)),
        (interactions_frame(train.interactions, 2), interactions_frame(test.interactions, 2)),
    ):
        with pytest.raises(ValueError, match=r"model knows 60 users .* fold_in the revealed"):
            evaluate(fewer, *frames, client=client, **kwargs)


def test_evaluate_checks_k_and_items_as_semrec_evaluate(client, small_split):
    # A k whose padded lists cannot fit is refused on the client with semrec.evaluate's
    # message, not by an allocation on a worker; a scalar items= is one candidate item.
    train, test = small_split
    model = semrec.MostPopular().fit(train.interactions)
    tr, te = interactions_frame(train.interactions, 2), interactions_frame(test.interactions, 2)
    for k, message in [(2**40, r"k must be < 2\*\*31"), (10**7, "k=10000000 asks for a")]:
        with pytest.raises(ValueError, match=f"{message}.*pass k <= 60"):
            semrec.evaluate(model, train, test, k=k)
        with pytest.raises(ValueError, match=f"{message}.*pass k <= 60"):
            evaluate(model, tr, te, k=k, client=client)
    kwargs = {"k": 5, "metrics": ["hit_rate", "coverage"], "relevance_threshold": None}
    for items in (5, np.int64(5), [5]):
        want = semrec.evaluate(model, train, test, items=items, **kwargs)
        got = evaluate(model, tr, te, items=items, client=client, **kwargs)
        pd.testing.assert_frame_equal(got[want.columns], want, rtol=1e-10)
    with pytest.raises(IndexError, match=r"items holds item id 60, outside \[0, 60\)"):
        evaluate(model, tr, te, items=[5, 60], client=client, **kwargs)
    with pytest.raises(ValueError, match="1-D array of item indices"):
        evaluate(model, tr, te, items=[[1, 2]], client=client, **kwargs)


def test_encode_keeps_the_text_column_and_refuses_a_vector_name(client):
    texts = ["space opera", "romance in paris", "robots"]
    frame = dd.from_pandas(pd.DataFrame({"e0": [1, 2, 3], "text": texts}), npartitions=2)
    got = gather(client, encode(frame, "text", keep=["text"], client=client))
    assert got["text"].tolist() == texts
    assert list(got.columns[:2]) == ["text", "e0"] and not got.columns.duplicated().any()
    reference = semrec.TextEncoder().encode(texts, batch_size=64)
    np.testing.assert_allclose(got.iloc[:, 1:].to_numpy(), reference, atol=1e-5)
    with pytest.raises(ValueError, match=r"keep names column 'e0', which has the form of the"):
        encode(frame, "text", keep=["e0"], client=client)
    out = encode(frame, "text", keep=["e0"], prefix="v", client=client)  # no clash: kept
    assert list(out.columns[:2]) == ["e0", "v0"]
    with pytest.raises(ValueError, match="keep names column 'text' twice"):
        encode(frame, "text", keep=["text", "text"], client=client)
    with pytest.raises(ValueError, match=r"no column 'id' .*check keep="):
        encode(frame, "text", keep=["id"], client=client)
