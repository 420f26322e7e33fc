"""A Ctrl-C anywhere in a streaming change leaves the model whole: the event log and the profiles
take an event together or not at all, and growing arrays are never left half grown.

A KeyboardInterrupt is injected deterministically at every line a change runs (``sys.settrace``
raising at the k-th line event, k = 1, 2, ... until the change completes), and the model is
then checked against NumPy bookkeeping of the events it should hold.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import semrec
from semrec import _events, _histories
from semrec._events import EventLog
from semrec._histories import Histories, RowBuffer


def interrupted(call, k, files=None):
    """Run ``call()`` with a KeyboardInterrupt raised at its ``k``-th line event (counting only
    code from ``files``, default all); True if it was raised, False if ``call`` finished first."""
    seen = 0

    def local(frame, event, arg):
        nonlocal seen
        if event == "line" and (files is None or frame.f_code.co_filename in files):
            seen += 1
            if seen == k:
                raise KeyboardInterrupt  # the trace function is unset as it raises
        return local

    before = sys.gettrace()
    sys.settrace(lambda frame, event, arg: local)
    try:
        call()
    except KeyboardInterrupt:
        return True
    finally:
        sys.settrace(before)
    return False


def unit(x):
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0)


def check_holds(model, events, emb, half_life):
    """``model``'s profiles and seen items are those of exactly ``events`` (user, item, weight,
    t), computed here with NumPy."""
    users, items, weights, times = (np.array(c) for c in zip(*events, strict=True))
    n_users = int(users.max()) + 1
    assert model.n_users_ == n_users
    factor = weights * (0.5 ** ((times.max() - times) / half_life) if half_life else 1.0)
    sums = np.zeros((n_users, emb.shape[1]))
    np.add.at(sums, users, factor[:, None] * unit(emb.astype(np.float64))[items])
    np.testing.assert_allclose(model.profiles(np.arange(n_users)), unit(sums), atol=2e-6)
    seen = model.interactions_
    want = np.zeros((n_users, emb.shape[0]))
    np.add.at(want, (users, items), weights)
    np.testing.assert_array_equal(seen.toarray(), want)  # small integer sums: exact
    rows = np.repeat(np.arange(n_users), np.diff(seen.indptr))
    assert set(zip(rows.tolist(), seen.indices.tolist(), strict=True)) == set(
        zip(users.tolist(), items.tolist(), strict=True)
    )  # every pair with an event, a weight of 0 included


def events_of(x):
    """The events (user, item, weight, t=0) of a fitted CSR."""
    rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr)).tolist()
    return list(zip(rows, x.indices.tolist(), x.data.tolist(), [0.0] * x.nnz, strict=True))


def holds_event(model, user, item):
    seen = model.interactions_
    return user < seen.shape[0] and item in seen.indices[seen.indptr[user] : seen.indptr[user + 1]]


@pytest.mark.parametrize(("half_life", "weight", "t"), [(50.0, 3.0, None), (50.0, 0.0, 300.0)])
def test_a_ctrl_c_anywhere_in_an_update_applies_it_whole_or_not_at_all(
    tmp_path, half_life, weight, t
):
    # A Ctrl-C while the update grew the event log left some of its arrays short: every later
    # update raised IndexError (session 50's audit). And the profiles took the event before the
    # log did: a Ctrl-C between left a profile with an event that recommend's seen items, save
    # and load did not have. The fitted log here is full (1229 events; 1024 users known to its
    # per-user arrays): the update grows every array, for a new user.
    rng = np.random.default_rng(7)
    x = sp.random_array((1024, 40), density=0.03, rng=rng, format="csr", dtype=np.float32)
    x.data[:] = rng.integers(1, 5, x.nnz)
    times = rng.uniform(0, 100, x.nnz).round(2)
    emb = rng.standard_normal((40, 8)).astype(np.float32)
    fitted = [(u, i, w, s) for (u, i, w, _), s in zip(events_of(x), times.tolist(), strict=True)]
    # Every line of semrec's code but the model lock's (Ctrl-C there is the lock's own matter).
    package = Path(semrec.__file__).parent
    files = {str(f) for f in package.rglob("*.py") if f.name != "_model_lock.py"}
    reached = set()
    for k in range(1, 1000):
        model = semrec.ContentRecommender(emb, half_life=half_life, show_progress=False)
        model.fit(x, timestamps=times)
        events = fitted
        if not interrupted(lambda m=model: m.update(1024, 5, weight, t), k, files):
            break
        if holds_event(model, 1024, 5):
            latest = max(s for *_, s in events)
            events = [*events, (1024, 5, weight, latest if t is None else t)]
        outcome = len(events) - len(fitted)
        latest = max(s for *_, s in events)
        model.update(1024, 7, 2.0)  # later updates work ("now": the latest time held)
        model.update(3, 9, 1.0)
        events = [*events, (1024, 7, 2.0, latest), (3, 9, 1.0, latest)]
        check_holds(model, events, emb, half_life)
        if k % 4 == 0 or outcome not in reached:  # (a load replays the log: its times too)
            model.save(tmp_path / "m.npz")
            loaded = semrec.ContentRecommender.load(tmp_path / "m.npz")
            check_holds(loaded, events, emb, half_life)
        reached.add(outcome)
    else:
        pytest.fail("the update never finished")
    assert k > 100 and reached == {0, 1}  # interrupted before and after it took the event


def test_a_ctrl_c_after_the_profiles_took_the_event_and_again_while_it_is_set_right():
    # The profiles cannot say whether an interrupted update reached them: the update settles it
    # by rebuilding the user's profile from the log, which a second Ctrl-C may interrupt too.
    rng = np.random.default_rng(3)
    x = sp.csr_array(rng.integers(0, 3, (6, 10)).astype(np.float32))
    emb = rng.standard_normal((10, 4)).astype(np.float32)
    model = semrec.ContentRecommender(emb, show_progress=False).fit(x)

    class Interrupting:
        def __init__(self, inner) -> None:
            self.inner = inner
            self.rebuilds = 0

        def update(self, *args) -> None:
            self.inner.update(*args)
            raise KeyboardInterrupt  # as if Ctrl-C arrived just as the kernel returned

        def update_many(self, *args, **kwargs) -> None:
            self.rebuilds += 1
            if self.rebuilds == 2:
                self.inner.update_many(*args, **kwargs)
            if self.rebuilds <= 2:
                raise KeyboardInterrupt  # Ctrl-C again: before, then after the rebuild
            self.inner.update_many(*args, **kwargs)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    model._stream = Interrupting(model._stream)
    with pytest.raises(KeyboardInterrupt):
        model.update(2, 4, 2.0)
    assert model._stream.rebuilds == 3
    model._stream = model._stream.inner
    model.update(2, 5)
    check_holds(model, [*events_of(x), (2, 4, 2.0, 0.0), (2, 5, 1.0, 0.0)], emb, None)


def test_a_refused_update_leaves_the_log_as_it_was():
    emb = np.eye(3, dtype=np.float32)
    x = sp.csr_array(np.array([[1.0, 0, 0], [0, 1.0, 0]], dtype=np.float32))
    model = semrec.ContentRecommender(emb, show_progress=False).fit(x)
    model.update(0, 2, 2.0**127)
    with pytest.raises(ValueError, match="weight"):
        model.update(0, 2, 2.0**127)  # the sum would pass float32's range: refused
    model.update(1, 2)
    events = [*events_of(x), (0, 2, 2.0**127, 0.0), (1, 2, 1.0, 0.0)]
    check_holds(model, events, emb, None)


def test_an_event_log_grown_under_ctrl_c_keeps_every_event_and_grows_again():
    # Interrupted at each line of an append that grows the log (every array, the per-user ones
    # too), the log holds the events before it or those and the new one, never a part of it.
    files = {_events.__file__}
    rng = np.random.default_rng(1)
    users = np.sort(rng.integers(0, 1024, 1024))
    base = [
        (int(u), int(i), 1.0, float(s))
        for s, (u, i) in enumerate(zip(users, users % 50, strict=True))
    ]
    for k in range(1, 200):
        columns = zip(*base, strict=True)
        types = (np.int32, np.int32, np.float32, np.float64)
        log = EventLog.from_arrays(*(np.array(c, t) for c, t in zip(columns, types, strict=True)))
        if not interrupted(lambda log=log: log.append(1500, 7, 2.0, 9.0), k, files):
            break
        held = [*base, (1500, 7, 2.0, 9.0)][: len(log)]
        assert len(log) in (1024, 1025)
        for _ in range(3000):  # (grows twice more)
            log.append(3, 1, 1.0, 0.0)
        log.append(1500, 8, 1.0, 0.0)
        held += [(3, 1, 1.0, 0.0)] * 3000 + [(1500, 8, 1.0, 0.0)]
        got = log.arrays(slice(None))
        for column, want in zip(got, zip(*held, strict=True), strict=True):
            np.testing.assert_array_equal(column, want)
        for user in (3, 1500, int(users[0])):
            mine = [(i, w, s) for u, i, w, s in held if u == user]
            items, weights, times = log.of_user(user)
            assert list(zip(items.tolist(), weights.tolist(), times.tolist(), strict=True)) == mine
    else:
        pytest.fail("the append never finished")
    assert k > 5


# -- the same for the histories of the other streaming models (ALS, TextCF, MostPopular) -----
def test_a_row_buffer_grown_under_ctrl_c_shows_its_new_rows_filled():
    # The rows were shown before they were filled: a Ctrl-C between left the new rows zero
    # (ALS's fill is its initial factors), and the next grow handed them out so.
    files = {_histories.__file__}
    fill = np.array([7.0, 8.0], np.float32)
    for k in range(1, 100):
        buffer = RowBuffer(np.ones((3, 2), np.float32), fill=fill)
        if not interrupted(lambda b=buffer: b.grow(5), k, files):
            break
        assert buffer.rows.shape[0] in (3, 5)
        got = buffer.grow(6)
        np.testing.assert_array_equal(got, [[1, 1]] * 3 + [[7, 8]] * 3)
        np.testing.assert_array_equal(buffer.grow(40)[6:], [[7, 8]] * 34)  # grows again
    else:
        pytest.fail("grow never finished")
    assert k > 3


@pytest.mark.parametrize("square", [False, True])
def test_histories_changed_under_ctrl_c_hold_each_change_whole_or_not_at_all(square):
    # set_row took the row before the matrix grew to hold it: a Ctrl-C between left a row past
    # the matrix's end, and every later merge (interactions_, a batch's seen items) failed.
    files = {_histories.__file__}
    base = np.array([[1, 0, 2], [0, 3, 0], [4, 0, 0]], dtype=np.float32)
    changes = {  # (a change, and the rows it sets)
        "set_row": (
            lambda h: h.set_row(4, np.array([1], np.int32), np.ones(1, np.float32)),
            {4: [0, 1, 0]},
        ),
        "set_rows": (
            lambda h: h.set_rows(
                np.array([1, 4]), sp.csr_array(np.array([[0, 5, 0], [6, 0, 0]], np.float32))
            ),
            {1: [0, 5, 0], 4: [6, 0, 0]},
        ),
    }
    for name, (change, rows) in changes.items():
        for k in range(1, 100):
            histories = Histories(sp.csr_array(base), square=square)
            if not interrupted(lambda h=histories, c=change: c(h), k, files):
                break
            got = histories.matrix().toarray()  # merged: every row in its place
            n = got.shape[0]
            assert got.shape in ([(3, 3), (5, 5)] if square else [(3, 3), (5, 3)])
            before = np.zeros_like(got)
            before[:3, :3] = base
            after = before.copy()
            for u, row in rows.items():
                if u < n:
                    after[u, :3] = row
            assert (got == before).all() or (n == 5 and (got == after).all())
            histories.set_row(6, np.array([0], np.int32), np.ones(1, np.float32))
            assert histories.matrix().shape == ((7, 7) if square else (7, 3))
        else:
            pytest.fail(f"{name} never finished")
        assert k > 2


def test_textcf_user_state_grown_under_ctrl_c_keeps_its_arrays_in_step():
    # The arrays grew one by one and only `mass` was checked: a Ctrl-C after it grew left the
    # others short for good, and the next new user's row was out of bounds.
    from semrec.textcf import _network

    files = {_network.__file__, _histories.__file__}

    def state():
        s = _network.UserState(
            np.ones((3, 4)), np.ones(3), np.ones((3, 2, 5)), np.ones(3, np.int64)
        )
        s.item_sum = np.ones((3, 5))
        return s

    for k in range(1, 400):
        s = state()
        if not interrupted(lambda s=s: s.grow(6), k, files):
            break
        s.grow(6)  # finishes what the interrupt cut short
        for name in ("input_sum", "mass", "graph_sum", "degree", "item_sum"):
            rows = getattr(s, name)
            assert rows.shape[0] == 6, (k, name)
            np.testing.assert_array_equal(rows[:3], 1)
            np.testing.assert_array_equal(rows[3:], 0)
    else:
        pytest.fail("grow never finished")
    assert k > 5
