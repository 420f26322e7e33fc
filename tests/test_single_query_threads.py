"""One query over a prepared catalogue, split between the caller and helper threads.

From 3 MiB of packed items a single query's scan is cut into item ranges that the calling
thread starts at once and helper threads join when they wake (cpp/semrec/eager_tasks.cpp). The
answers must stay bitwise those of one thread and of the plain matrix kernel, from any number
of Python threads at once, after a fork, and with or without the ``expect_query`` hint.
"""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
import scipy.sparse as sp
from child_python import run_python
from test_item_index import clustered
from test_similarity import assert_close, assert_same_results, reference, tolerances

from semrec.similarity import ItemIndex, topk


@pytest.mark.parametrize("storage", ["float32", "float16", "int8"])
@pytest.mark.parametrize("metric", ["cosine", "dot"])
def test_split_single_query_is_bitwise_the_one_thread_answer(storage, metric):
    # 100k x 48: 4.6 MiB of int8 panels, 9.2 MiB float16, 18 MiB float32: every storage splits.
    rng = np.random.default_rng(71)
    x = clustered(rng, 100_000, 48)
    q = clustered(rng, 1, 48)
    ex = sp.random(1, x.shape[0], density=0.003, format="csr", rng=rng)
    index = ItemIndex(x, metric=metric, storage=storage)
    want = topk(q, x, 15, metric=metric, exclude=ex, num_threads=1)
    for threads in (1, 2, 4):
        assert_same_results(topk(q, index, 15, exclude=ex, num_threads=threads), want)
        assert_same_results(topk(q[0], index, 15, exclude=ex, num_threads=threads), (
            want[0][0], want[1][0]))  # fmt: skip
    _, _, full, allowed = reference(q, x, 15, metric, ex)
    assert_close(*want, full, allowed, 15, tolerances(q, x, metric))


def test_single_queries_from_many_python_threads_at_once():
    # The helpers serve one search at a time; the others run on their own calling thread.
    rng = np.random.default_rng(72)
    x = clustered(rng, 60_000, 32)  # 3.7 MiB of float16 panels
    queries = clustered(rng, 48, 32)
    index = ItemIndex(x, metric="dot", storage="float16")
    want = [topk(q, x, 10, metric="dot", num_threads=1) for q in queries]
    got: dict[int, tuple] = {}
    errors: list[BaseException] = []

    def work(part: int) -> None:
        try:
            for i in range(part, len(queries), 6):
                got[i] = topk(queries[i], index, 10, num_threads=2)
        except BaseException as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(p,)) for p in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for i, w in enumerate(want):
        assert_same_results(got[i], w)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores for a helper")
def test_helper_threads_follow_num_threads():
    # num_threads=1 never starts a helper; 2 starts one, kept (asleep) for the next search.
    out = run_python(
        """
        import os, numpy as np, semrec
        x = np.random.default_rng(0).standard_normal((60_000, 64)).astype(np.float32)
        index = semrec.ItemIndex(x, metric="dot", storage="int8", num_threads=1)
        tasks = lambda: len(os.listdir("/proc/self/task"))
        before = tasks()
        one = semrec.topk(x[0], index, 5, num_threads=1)
        after_one = tasks()
        two = semrec.topk(x[0], index, 5, num_threads=2)
        after_two = tasks()
        again = semrec.topk(x[1], index, 5, num_threads=2)
        print(after_one - before, after_two - before, tasks() - before,
              (one[0] == two[0]).all())
        """
    )
    assert out == "0 1 1 True"


def test_a_forked_child_searches_with_helpers_of_its_own():
    # The parent's helpers do not exist in a child; the child must not wait for them.
    out = run_python(
        """
        import os, numpy as np, semrec
        x = np.random.default_rng(1).standard_normal((60_000, 64)).astype(np.float32)
        index = semrec.ItemIndex(x, metric="dot", storage="int8", num_threads=1)
        want = semrec.topk(x[3], index, 5, num_threads=2)
        pid = os.fork()
        if pid == 0:
            got = semrec.topk(x[3], index, 5, num_threads=2)
            os._exit(0 if (got[0] == want[0]).all() else 3)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
        """
    )
    assert out == "0"


def test_expect_query_is_only_a_hint():
    rng = np.random.default_rng(73)
    x = clustered(rng, 80_000, 40)  # 3 MiB of int8 panels
    q = clustered(rng, 1, 40)[0]
    index = ItemIndex(x, metric="cosine", storage="int8")
    want = topk(q, x, 8, num_threads=1)
    index.expect_query(num_threads=2)
    assert_same_results(topk(q, index, 8, num_threads=2), want)
    index.expect_query()  # a hint with no query after it
    index.expect_query(num_threads=1)
    assert_same_results(index.search(q, 8, num_threads=2), want)
    with pytest.raises(ValueError, match="num_threads"):
        index.expect_query(num_threads=-3)
