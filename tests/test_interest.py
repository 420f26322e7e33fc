"""User-interest profiles: batch kernel and streaming state against a NumPy reference."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from semrec.interest import StreamingProfiles, user_profiles


def reference(m, emb, times=None, half_life=None, t_now=None):
    """normalise(sum_i w_i 0.5**((t_now - t_i)/half_life) e_i) per row, in float64."""
    m = sp.csr_array(m)
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    f = m.data.astype(np.float64)
    if half_life is not None:
        t = np.asarray(times, dtype=np.float64)
        now = t.max() if t_now is None else t_now
        f = f * 0.5 ** ((now - t) / half_life)
    sums = np.zeros((m.shape[0], emb.shape[1]))
    np.add.at(sums, rows, f[:, None] * emb[m.indices].astype(np.float64))
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return np.divide(sums, norms, out=np.zeros_like(sums), where=norms > 0)


def random_case(rng, n_users=60, n_items=40, dim=16, density=0.15, negative=True):
    m = sp.random_array((n_users, n_items), density=density, format="csr", rng=rng)
    m.data = rng.uniform(0.5, 5.0, m.nnz).astype(np.float32)
    if negative:
        m.data[rng.random(m.nnz) < 0.3] *= -1
    m = sp.csr_array(m, dtype=np.float32)
    emb = rng.standard_normal((n_items, dim)).astype(np.float32)
    times = rng.integers(0, 1000, m.nnz).astype(np.int64)
    return m, emb, times


def events_of(m, times):
    users = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    return users, m.indices.copy(), m.data.copy(), np.asarray(times)


# -- batch ------------------------------------------------------------------------------------


def test_batch_matches_numpy_without_decay(rng):
    m, emb, _ = random_case(rng, negative=False)
    m = sp.csr_array(m)
    m.indptr[20:] = m.indptr[20]  # users 20.. have no history
    m = sp.csr_array((m.data[: m.indptr[20]], m.indices[: m.indptr[20]], m.indptr), shape=m.shape)
    got = user_profiles(m, emb)
    assert got.dtype == np.float32 and got.shape == (60, 16)
    np.testing.assert_allclose(got, reference(m, emb), atol=2e-6)
    assert not got[20:].any()
    has = np.diff(m.indptr) > 0
    assert has[:20].sum() >= 15
    np.testing.assert_allclose(np.linalg.norm(got[has], axis=1), 1.0, rtol=1e-6)


def test_batch_matches_numpy_with_negative_weights_and_decay(rng):
    m, emb, times = random_case(rng)
    for half_life in (50.0, 400, 1e6):
        got = user_profiles(m, emb, timestamps=times, t_now=2000, half_life=half_life)
        want = reference(m, emb, times, half_life)
        np.testing.assert_allclose(got, want, atol=2e-5)
    # Float timestamps give the same profiles as the equal integers.
    got_f = user_profiles(m, emb, timestamps=times.astype(np.float64), half_life=50.0)
    got_i = user_profiles(m, emb, timestamps=times, half_life=50.0)
    np.testing.assert_array_equal(got_f, got_i)


def test_t_now_does_not_change_the_direction(rng):
    m, emb, times = random_case(rng)
    a = user_profiles(m, emb, timestamps=times, t_now=1000, half_life=30.0)
    b = user_profiles(m, emb, timestamps=times, t_now=10**9, half_life=30.0)
    np.testing.assert_array_equal(a, b)
    # The reference at the huge t_now underflows to nothing; ours keeps the direction.
    np.testing.assert_allclose(a, reference(m, emb, times, 30.0, t_now=1000), atol=2e-5)


def test_duplicates_and_unsorted_rows_are_separate_events(rng):
    emb = rng.standard_normal((5, 8)).astype(np.float32)
    indptr = np.array([0, 3])
    m = sp.csr_array((np.array([1.0, 2.0, 1.0], np.float32), np.array([4, 1, 4]), indptr), (1, 5))
    want = emb[4] * 2 + emb[1] * 2
    np.testing.assert_allclose(user_profiles(m, emb)[0], want / np.linalg.norm(want), atol=1e-6)


def test_identical_for_any_thread_count(rng):
    m, emb, times = random_case(rng, n_users=700, n_items=80, dim=40)
    one = user_profiles(m, emb, timestamps=times, half_life=100.0, num_threads=1)
    for threads in (2, 3, 0):
        again = user_profiles(m, emb, timestamps=times, half_life=100.0, num_threads=threads)
        np.testing.assert_array_equal(one, again)


def test_decay_halves_a_weight_at_exactly_one_half_life():
    emb = np.eye(2, dtype=np.float32)
    m = sp.csr_array(np.ones((1, 2), dtype=np.float32))
    got = user_profiles(m, emb, timestamps=np.array([0, 7]), t_now=7, half_life=7.0)[0]
    # item 0 is one half-life old: weight 0.5 against 1 for item 1.
    assert got[0] / got[1] == pytest.approx(0.5, rel=1e-6)
    state = StreamingProfiles(emb, half_life=7.0)
    state.update(0, 1, t=7)
    state.update(0, 0, t=0)
    assert state.profile(0)[0] / state.profile(0)[1] == pytest.approx(0.5, rel=1e-6)


def test_timestamps_far_apart_do_not_overflow():
    emb = np.eye(3, dtype=np.float32)
    m = sp.csr_array(np.ones((1, 3), dtype=np.float32))
    times = np.array([0, 10**12, 2 * 10**12])
    got = user_profiles(m, emb, timestamps=times, half_life=1.0)
    np.testing.assert_array_equal(got, [[0, 0, 1]])
    state = StreamingProfiles(emb, half_life=1.0)
    state.update_many([0, 0, 0], [2, 0, 1], times=times[[2, 0, 1]])
    np.testing.assert_array_equal(state.profile(0), [0, 0, 1])


def test_cancelling_likes_and_dislikes_give_zero():
    emb = np.array([[1, 2], [3, 1]], dtype=np.float32)
    m = sp.csr_array((np.array([2.0, -2.0, 1.0], np.float32), [0, 0, 1], [0, 2, 3]), (2, 2))
    got = user_profiles(m, emb, timestamps=np.array([5, 5, 1]), half_life=3.0)
    np.testing.assert_array_equal(got[0], [0, 0])
    assert np.linalg.norm(got[1]) == pytest.approx(1.0)
    state = StreamingProfiles(emb)
    state.update(0, 0, 2.0)
    state.update(0, 0, -2.0)
    np.testing.assert_array_equal(state.profile(0), [0, 0])


def test_a_zero_weight_event_does_not_move_the_decay_reference():
    # An event of weight 0 contributes nothing, so it must not become the reference time
    # either: 200 half-lives after the like, it would decay the like to 0 in float32. Every
    # path gives the like's direction, and the state's latest time still moves.
    emb = np.eye(3, dtype=np.float32)
    with_zero = sp.csr_array(
        (np.array([1.0, 0.0], np.float32), np.array([1, 2], np.int32), np.array([0, 2])), (1, 3)
    )
    times = np.array([0.0, 200.0])
    want = [0, 1, 0]
    np.testing.assert_array_equal(
        user_profiles(with_zero, emb, timestamps=times, half_life=1.0)[0], want
    )
    for order in ((1, 0), (0, 1)):  # the zero event first (a new user's first event) or last
        one_by_one = StreamingProfiles(emb, half_life=1.0)
        for e in order:
            one_by_one.update(0, [1, 2][e], weight=[1.0, 0.0][e], t=times[e])
        many = StreamingProfiles(emb, half_life=1.0)
        many.update_many([0, 0], np.array([1, 2])[list(order)], np.array([1.0, 0.0])[list(order)],
                         times=times[list(order)])  # fmt: skip
        for state in (one_by_one, many):
            np.testing.assert_array_equal(state.profile(0), want)
            assert state.latest == 200.0
    rows = StreamingProfiles(emb, half_life=1.0)
    rows.add_rows(with_zero, times)
    np.testing.assert_array_equal(rows.profile(0), want)
    assert rows.latest == 200.0
    # Only zero weights: the user exists, with a zero profile.
    zeros = StreamingProfiles(emb, half_life=1.0)
    zeros.update(3, 1, weight=0.0, t=5.0)
    np.testing.assert_array_equal(zeros.profile(3), [0, 0, 0])
    only_zero = sp.csr_array((np.array([0.0], np.float32), [1], [0, 1]), (1, 3))
    np.testing.assert_array_equal(
        user_profiles(only_zero, emb, timestamps=[5.0], half_life=1.0), [[0, 0, 0]]
    )
    zeros.add_rows(only_zero, np.array([9.0]), first_user=1)
    np.testing.assert_array_equal(zeros.profile(1), [0, 0, 0])


def test_a_sum_below_float_range_still_gives_its_direction():
    # Tiny weights on tiny vectors: the sum's norm (1e-40) is below 2^-128, and 1 / norm must
    # not overflow float32 on the way to the unit direction.
    emb = np.eye(3, dtype=np.float32)
    tiny = emb * np.float32(1e-20)
    state = StreamingProfiles(tiny)
    state.update(0, 0, weight=1e-20)
    np.testing.assert_array_equal(state.profile(0), [1, 0, 0])
    m = sp.csr_array(np.array([[1e-20, 0, 0]], np.float32))
    np.testing.assert_array_equal(user_profiles(m, tiny), [[1, 0, 0]])


# -- streaming --------------------------------------------------------------------------------


@pytest.mark.parametrize("half_life", [None, 120.0])
def test_streaming_equals_batch_in_any_event_order(rng, half_life):
    m, emb, times = random_case(rng, n_users=40, n_items=30, dim=12, density=0.3)
    want = user_profiles(m, emb, timestamps=times, half_life=half_life)
    users, items, weights, ts = events_of(m, times)
    for trial in range(3):
        order = rng.permutation(users.size)
        state = StreamingProfiles(emb, half_life=half_life)
        if trial == 0:  # one Python call per event
            for e in order:
                state.update(int(users[e]), int(items[e]), float(weights[e]), float(ts[e]))
        else:  # batched, int then float times
            t = ts[order] if trial == 1 else ts[order].astype(np.float64)
            state.update_many(users[order], items[order], weights[order], t)
        assert state.n_users == users.max() + 1
        np.testing.assert_allclose(state.profiles(), want[: state.n_users], atol=2e-5)


def test_streaming_new_users_appear_and_default_time_is_latest(rng):
    emb = np.eye(3, dtype=np.float32)
    state = StreamingProfiles(emb, half_life=10.0, n_users=2)
    assert state.n_users == 2 and not state.profiles().any()
    state.update(5, 0, t=100)
    assert state.n_users == 6 and state.latest == 100
    state.update(5, 1)  # t=None: "now" = 100, same age as the first event
    np.testing.assert_allclose(state.profile(5), [2**-0.5, 2**-0.5, 0], rtol=1e-6)
    state.update_many([7], [2])
    assert state.n_users == 8
    np.testing.assert_array_equal(state.profile(7), [0, 0, 1])
    assert not state.profiles([0, 1, 6]).any()


def test_streaming_add_items_and_reset(rng):
    state = StreamingProfiles(np.eye(2, dtype=np.float32))
    (new,) = state.add_items(np.array([[0.6, 0.8]], dtype=np.float32))
    assert new == 2 and state.n_items == 3
    state.update(0, new)
    np.testing.assert_allclose(state.profile(0), [0.6, 0.8], rtol=1e-6)
    state.reset([0])
    assert not state.profile(0).any()
    state.update(0, 0)
    np.testing.assert_array_equal(state.profile(0), [1, 0])


def test_update_many_applies_nothing_when_an_event_is_bad():
    state = StreamingProfiles(np.eye(2, dtype=np.float32))
    with pytest.raises(IndexError, match="items holds item id 9"):
        state.update_many([0, 1], [1, 9])
    with pytest.raises(ValueError, match="weights contains NaN"):
        state.update_many([0, 1], [1, 0], weights=[1.0, np.nan])
    assert state.n_users == 0


# -- errors -----------------------------------------------------------------------------------


def test_user_profiles_bad_inputs(rng):
    m, emb, times = random_case(rng)
    with pytest.raises(TypeError, match="CSR"):
        user_profiles(m.toarray(), emb)
    with pytest.raises(TypeError, match="CSR format"):
        user_profiles(m.tocoo(), emb)
    with pytest.raises(TypeError, match="float32"):
        user_profiles(m, emb.astype(np.float64))
    with pytest.raises(ValueError, match="one column per item"):
        user_profiles(m, emb[:-1])
    with pytest.raises(ValueError, match="half_life needs timestamps"):
        user_profiles(m, emb, half_life=3.0)
    with pytest.raises(ValueError, match="half_life must be a finite number > 0"):
        user_profiles(m, emb, timestamps=times, half_life=-1.0)
    with pytest.raises(TypeError, match="half_life must be a number"):
        user_profiles(m, emb, timestamps=times, half_life="1 day")
    with pytest.raises(ValueError, match="one time per event"):
        user_profiles(m, emb, timestamps=times[:-1], half_life=1.0)
    with pytest.raises(TypeError, match="integers or floats"):
        user_profiles(m, emb, timestamps=times.astype(str), half_life=1.0)
    with pytest.raises(ValueError, match="timestamps contains NaN"):
        user_profiles(m, emb, timestamps=np.full(m.nnz, np.nan), half_life=1.0)
    with pytest.raises(ValueError, match="t_now must be finite"):
        user_profiles(m, emb, t_now=float("inf"))
    bad = m.copy()
    bad.data[0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite weights"):
        user_profiles(bad, emb)
    bad = m.copy()
    bad.indices[0] = 40
    with pytest.raises(IndexError, match="item id 40"):
        user_profiles(bad, emb[:40])
    nan_emb = emb.copy()
    nan_emb[3, 0] = np.inf
    with pytest.raises(ValueError, match="row 3"):
        user_profiles(m, nan_emb)


def test_streaming_bad_inputs():
    emb = np.eye(3, dtype=np.float32)
    state = StreamingProfiles(emb, half_life=2.0)
    with pytest.raises(IndexError, match="item 3 is outside"):
        state.update(0, 3)
    with pytest.raises(IndexError, match="user must be >= 0"):
        state.update(-1, 0)
    with pytest.raises(TypeError, match="user must be an int"):
        state.update(True, 0)
    with pytest.raises(TypeError, match="item must be an int"):
        state.update(0, 1.5)
    with pytest.raises(ValueError, match="weight must be finite"):
        state.update(0, 1, np.inf)
    with pytest.raises(TypeError, match="t must be a number"):
        state.update(0, 1, 1.0, t="now")
    with pytest.raises(ValueError, match="same length"):
        state.update_many([0, 1], [0])
    with pytest.raises(TypeError, match="integer ids"):
        state.update_many([0.5], [0])
    with pytest.raises(IndexError, match="users holds -2"):
        state.update_many([-2], [0])
    with pytest.raises(IndexError, match="outside"):
        state.profile(0)
    with pytest.raises(ValueError, match="dimension 3"):
        state.add_items(np.ones((1, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="half_life"):
        StreamingProfiles(emb, half_life=0)
    assert state.n_users == 0
    assert repr(state) == "StreamingProfiles(n_items=3, dim=3, half_life=2.0, n_users=0)"


def test_ids_past_int32_are_refused_not_wrapped():
    # 2**32 + 1 cast to int32 is 1: the event would land on item 1.
    state = StreamingProfiles(np.eye(3, dtype=np.float32))
    with pytest.raises(IndexError, match="items holds ids beyond the int32 range"):
        state.update_many([0], np.array([2**32 + 1]))
    assert state.n_users == 0


@pytest.mark.parametrize("half_life", [None, 5.0])
def test_an_update_that_overflows_the_sum_is_refused_and_changes_nothing(half_life):
    state = StreamingProfiles(np.array([[1, 0], [0.6, 0.8]], dtype=np.float32), half_life=half_life)
    state.update(0, 0, 3e38, t=1.0)
    before = state.decayed_sum(0)
    for item, weight, t in ((0, 1e38, 1.0), (1, 3e38, 2.0), (0, 1e39, 1.0)):
        with pytest.raises(ValueError, match=r"weight=.* would take user 0's profile sum past"):
            state.update(0, item, weight, t=t)
        after = state.decayed_sum(0)
        np.testing.assert_array_equal(after[0], before[0])
        assert after[1] == before[1]
    assert state.latest == 1.0  # a refused event moves no clock
    with pytest.raises(ValueError, match=r"weight=1e\+39 would take user 4's .* \(to inf\)"):
        state.update(4, 0, 1e39)
    assert state.n_users == 1  # nor creates its user
    state.update(0, 1, -1e38, t=1.0)  # moving away from the limit is fine


def test_update_many_reset_replaces_histories_in_one_step():
    state = StreamingProfiles(np.eye(3, dtype=np.float32))
    state.update_many([0, 0, 1], [0, 1, 2])
    state.update_many([0, 2], [2, 1], reset=[0, 1])  # user 1: forgotten, no new events
    np.testing.assert_array_equal(state.profile(0), [0, 0, 1])
    assert not state.profile(1).any() and state.n_users == 3
    with pytest.raises(IndexError, match="reset"):
        state.update_many([0], [0], reset=[3])


@pytest.mark.parametrize("half_life", [None, 5.0])
def test_a_batch_that_overflows_a_sum_is_refused_and_changes_nothing(half_life):
    """update_many and add_rows are all or nothing: the events before the refused one, the
    users it would create and the users it would reset are all as they were."""
    items = np.array([[1, 0], [0.6, 0.8]], dtype=np.float32)
    state = StreamingProfiles(items, half_life=half_life)
    state.update_many([0, 1, 2], [0, 1, 0], times=[1.0, 2.0, 3.0])
    before = [state.decayed_sum(u) for u in range(3)] + [state.latest]
    with pytest.raises(ValueError, match=r"history would take user 1's profile sum past"):
        state.update_many(
            [2, 5, 1, 1], [1, 0, 0, 0], [1.0, 1.0, 3e38, 3e38], [9.0] * 4, reset=[0], name="history"
        )
    batch = sp.csr_array(np.array([[1, 1], [3e38, 3e38], [3e38, 3e38]], dtype=np.float32))
    with pytest.raises(ValueError, match=r"^history would take user 3's profile sum past"):
        state.add_rows(batch, np.full(6, 9.0), first_user=2)
    after = [state.decayed_sum(u) for u in range(3)] + [state.latest]
    assert state.n_users == 3
    for (s0, r0), (s1, r1) in zip(before[:3], after[:3], strict=True):
        np.testing.assert_array_equal(s1, s0)
        assert r1 == r0
    assert after[3] == before[3]


def test_profiles_that_overflow_float32_are_refused():
    # A weighted sum past 3.4e38 was returned as NaN.
    with pytest.raises(ValueError, match="user 0's profile overflows float32"):
        user_profiles(sp.csr_array(np.full((1, 1), 4, np.float32)), np.full((1, 4), 1e38, "f4"))


def test_items_too_large_for_float_squares_still_give_their_direction(rng):
    # An entry above ~1.8e19 overflows its float square: the item's norm read as infinite and
    # every profile it entered came out zero, as if its likes had cancelled.
    emb = rng.standard_normal((5, 64)).astype(np.float32)
    emb[2] *= np.float32(1e21)
    m = sp.csr_array(np.array([[1, 0, 2, 0, 0], [0, 0, 1, 0, 0], [1, 1, 0, 0, 0]], np.float32))
    want = reference(m, emb)
    np.testing.assert_allclose(user_profiles(m, emb), want, atol=2e-6)
    state = StreamingProfiles(emb)
    users, items, weights, _ = events_of(m, np.zeros(m.nnz))
    state.update_many(users, items, weights)
    for u in range(3):
        np.testing.assert_allclose(state.profile(u), want[u], atol=2e-6)
    # A like and dislike of the huge item still cancel to zero.
    state.update(3, 2, 1.0)
    state.update(3, 2, -1.0)
    np.testing.assert_array_equal(state.profile(3), np.zeros(64))


# -- session 44 audit ----------------------------------------------------------------------------
def test_profiles_stay_right_while_another_thread_adds_users():
    """profiles() of many users runs without the GIL; update() of new users grows (reallocates)
    the state's arrays meanwhile. The state's lock keeps the read off a half-made change."""
    import threading
    import time

    rng = np.random.default_rng(0)
    n_items, dim, first = 50, 16, 300
    emb = rng.standard_normal((n_items, dim)).astype(np.float32)
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    state = StreamingProfiles(emb, num_threads=2)
    m = sp.random_array((first, n_items), density=0.1, format="csr", rng=rng, dtype=np.float32)
    state.add_rows(m)
    start = reference(m, emb)
    step, cap = 3, 300_000  # new users every 3 ids (the ones between stay empty), < 30 MB
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            u = first
            while not stop.is_set() and u < cap:
                state.update(u, u % n_items, 1.0)
                u += step
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    def expected(n: int) -> np.ndarray:
        want = np.zeros((n, dim))
        want[:first] = start
        users = np.arange(first, n, step)
        want[users] = unit[users % n_items]
        return want

    thread = threading.Thread(target=writer)
    thread.start()
    checks = during = 0
    try:
        deadline = time.monotonic() + 3.0
        # Reads for 3 s while the writer runs, and at least 4 in all: a count of reads in a
        # fixed time would depend on the machine's load.
        while checks < 4 or (time.monotonic() < deadline and thread.is_alive()):
            if time.monotonic() >= deadline:
                stop.set()  # the writer's time is up: the last reads see a finished state
            writing = thread.is_alive()
            # every user, the first ones last (a reallocation meanwhile frees what they are
            # read from): > 64 users, the native call without the GIL
            users = np.arange(state.n_users)[::-1]
            got = state.profiles(users)
            np.testing.assert_allclose(got, expected(users.size)[users], atol=2e-6)
            checks, during = checks + 1, during + writing
    finally:
        stop.set()
        thread.join()
    assert not errors, errors
    assert during >= 1 and checks >= 4 and state.n_users > first + 100
    np.testing.assert_allclose(state.profiles(), expected(state.n_users), atol=2e-6)


def test_reads_and_changes_of_a_state_never_overlap():
    """A read that takes long (here: a native profiles() slowed down, the GIL released) and
    updates from another thread: each change waits until no read runs, and reads wait for a
    change in progress (the state's lock)."""
    import threading
    import time

    class Watched:
        """The native state, recording whether a change starts while a read runs."""

        def __init__(self, inner) -> None:
            self.inner, self.reads, self.overlaps = inner, 0, 0

        def profiles(self, users, threads):
            self.reads += 1
            try:
                time.sleep(0.002)  # a long native read: the GIL is free meanwhile
                return self.inner.profiles(users, threads)
            finally:
                self.reads -= 1

        def __getattr__(self, name):
            attr = getattr(self.inner, name)
            if name not in ("add", "add_many", "add_rows", "grow", "reset"):
                return attr

            def change(*args, **kwargs):
                self.overlaps += self.reads > 0
                return attr(*args, **kwargs)

            return change

    emb = np.eye(4, dtype=np.float32)
    state = StreamingProfiles(emb)
    state.update_many(np.arange(100), np.arange(100) % 4)
    watched = state._state = Watched(state._state)
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            got = state.profiles(np.arange(100))
            np.testing.assert_array_equal(got, emb[np.arange(100) % 4])

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for u in range(100, 400):
            state.update(u, u % 4)
            if u % 50 == 0:
                state.update_many([u + 1000], [0])
                time.sleep(0.001)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert watched.overlaps == 0
    np.testing.assert_array_equal(state.profiles(np.arange(400)), emb[np.arange(400) % 4])


def test_an_untimed_event_needs_a_clock_with_a_half_life():
    emb = np.eye(3, dtype=np.float32)
    state = StreamingProfiles(emb, half_life=7 * 86400.0)
    with pytest.raises(ValueError, match="t is needed: this state has a half_life"):
        state.update(0, 0, weight=5.0)
    with pytest.raises(ValueError, match="times are needed"):
        state.update_many([0], [0])
    assert state.n_users == 0  # nothing applied
    state.update(0, 1, weight=1.0, t=1.7e9)
    state.update(0, 0, weight=5.0)  # now "now" is 1.7e9: both events at one time
    want = reference(sp.csr_array(np.array([[5.0, 1.0, 0.0]], np.float32)), emb,
                     times=[1.7e9, 1.7e9], half_life=7 * 86400.0)  # fmt: skip
    np.testing.assert_allclose(state.profile(0), want[0], atol=1e-6)
    state.update_many([1], [2])  # dated now too
    assert state.decayed_sum(1)[1] == 1.7e9
    # a clock from update_many / add_rows counts too; without a half_life there is no clock
    timed = StreamingProfiles(emb, half_life=10.0)
    timed.add_rows(sp.csr_array(np.ones((1, 3), np.float32)), times=[5, 5, 5])
    timed.update(0, 0)
    plain = StreamingProfiles(emb)
    plain.update(0, 0)
    plain.update_many([1], [1])
    assert plain.profiles().tolist() == [[1, 0, 0], [0, 1, 0]]


def test_num_threads_is_checked_when_the_state_is_made():
    with pytest.raises(TypeError, match="num_threads must be an int or None, got str"):
        StreamingProfiles(np.eye(3, dtype=np.float32), num_threads="x")


def test_thread_safe_is_a_flag():
    emb = np.eye(3, dtype=np.float32)
    with pytest.raises(TypeError, match="thread_safe"):
        StreamingProfiles(emb, thread_safe="no")  # a truthy string would mean the opposite
    state = StreamingProfiles(emb, thread_safe=False)  # for a caller that serialises its calls
    state.update(0, 2)
    np.testing.assert_array_equal(state.profile(0), emb[2])


@pytest.mark.parametrize("how", ["copy", "deepcopy", "pickle"])
def test_streaming_profiles_refuse_copies_with_a_way_out(how):
    """The sums live in the C++ core: a shallow copy would share them with the original."""
    import copy
    import pickle

    state = StreamingProfiles(np.eye(3, dtype=np.float32), n_users=1)
    state.update(0, 1)
    act = {"copy": copy.copy, "deepcopy": copy.deepcopy, "pickle": pickle.dumps}[how]
    with pytest.raises(TypeError, match=r"cannot be copied or pickled.*replay the events"):
        act(state)
    np.testing.assert_array_equal(state.profile(0), [0.0, 1.0, 0.0])


def test_an_edit_of_the_callers_array_cannot_skip_the_overflow_check():
    """The state kept the caller's array but cached a bound of its norms: an edit after that
    let update_many's unchecked fast path turn profiles into inf/NaN."""
    emb = np.eye(3, dtype=np.float32)
    state = StreamingProfiles(emb)  # a copy: the caller's edits do not reach it
    state.update_many([0], [1])
    emb[0] = [1e38, 1e38, 0]
    state.update_many([0] * 4, [0] * 4)
    want = reference(sp.csr_array(np.array([[4, 1, 0]], np.float32)), np.eye(3))
    np.testing.assert_allclose(state.profile(0), want[0], atol=1e-6)
    assert state.item_embeddings.tolist() == np.eye(3).tolist()
    emb = np.eye(3, dtype=np.float32)
    shared = StreamingProfiles(emb, copy=False)  # the caller's rows, edits and all
    shared.update_many([0], [1])
    emb[0] = [1e38, 1e38, 0]
    with pytest.raises(ValueError, match="weights would take user 0's profile sum past"):
        shared.update_many([0] * 4, [0] * 4)
    np.testing.assert_array_equal(shared.profile(0), [0, 1, 0])  # nothing applied
    emb[2] = [0, 0, 3]
    shared.update_many([0, 1], [2, 0])  # edited rows are used as they are now
    want = reference(sp.csr_array(np.array([[0, 1, 1], [1, 0, 0]], np.float32)), emb)
    np.testing.assert_allclose(shared.profiles(), want, atol=1e-6)
    assert np.shares_memory(shared.item_embeddings, emb)
    with pytest.raises(TypeError, match="copy"):
        StreamingProfiles(emb, copy="no")


def test_item_embeddings_are_read_only_and_now_is_the_clock():
    emb = np.eye(3, dtype=np.float32)
    state = StreamingProfiles(emb, half_life=10.0)
    view = state.item_embeddings
    with pytest.raises(ValueError, match="read-only"):
        view[0] = 5
    assert state.item_embeddings is view  # one object while the rows stay (an index keys on it)
    state.add_items(np.ones((1, 3), np.float32))
    grown = state.item_embeddings
    assert grown is not view and grown.shape == (4, 3) and not grown.flags.writeable
    with pytest.raises(ValueError, match=r"^when is needed: .*give when"):
        state.now("when")
    with pytest.raises(ValueError, match=r"^times are needed"):
        state.now("times")
    state.update(0, 3, weight=0.0, t=42.0)  # a weight-0 event still sets the clock
    assert state.now() == 42.0 == state.latest
    assert StreamingProfiles(emb).now() == 0.0  # no half_life: no clock needed
