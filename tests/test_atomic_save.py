"""Saves are atomic: a process killed in the middle of ``save`` leaves the previous file intact.

Black-box, through the public ``save`` / ``load`` only. A child process loads model B and saves
it over a file that holds model A; it is killed part-way through, either

* by ``RLIMIT_FSIZE``: the kernel sends SIGXFSZ (default action restored: terminate) when the
  process writes past N bytes, which kills it in the middle of writing whatever ``save`` writes,
  or
* by an audit hook that sends itself SIGKILL at the n-th file-system step in the target folder
  (an open for writing, a rename/replace, a remove), before that step runs.

Afterwards the file must be exactly A's bytes, or, if the child got to finish, a loadable B.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import semrec
from semrec.datasets import synthetic

pytestmark = pytest.mark.slow

CHILD = textwrap.dedent(
    """
    import os, resource, signal, sys
    mode, limit, name, source, target = sys.argv[1:]
    import semrec
    model = getattr(semrec, name).load(source)
    folder = os.path.dirname(os.path.abspath(target))
    if mode == "fsize":
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)  # CPython ignores it; the kernel kills
        resource.setrlimit(resource.RLIMIT_FSIZE, (int(limit), resource.RLIM_INFINITY))
    else:
        steps = [0]

        def hook(event, args):
            if event == "open":
                path, how, flags = args
                writing = (isinstance(how, str) and any(c in how for c in "wax+")) or (
                    how is None and isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR)
                )
            elif event in ("os.rename", "os.remove", "os.truncate", "os.link"):
                path, writing = args[0], True
            else:
                return
            if writing and isinstance(path, (str, bytes, os.PathLike)):
                where = os.path.dirname(os.path.abspath(os.fsdecode(path)))
                if where == folder:
                    steps[0] += 1
                    if steps[0] == int(limit):
                        os.kill(os.getpid(), signal.SIGKILL)

        sys.addaudithook(hook)
    model.save(target)
    """
)


def _models(emb: np.ndarray) -> dict[str, Callable[[], Any]]:
    def als() -> semrec.ALS:
        return semrec.ALS(factors=4, iterations=2, random_state=0, show_progress=False)

    return {
        "ALS": als,
        "ALS-explicit": lambda: semrec.ALS(
            factors=3, iterations=2, feedback="explicit", biases=True, show_progress=False
        ),
        "MostPopular": semrec.MostPopular,
        "Random": lambda: semrec.Random(random_state=1),
        "ContentRecommender": lambda: semrec.ContentRecommender(emb, show_progress=False),
        "ItemKNN": lambda: semrec.ItemKNN(5, show_progress=False),
        "UserKNN": lambda: semrec.UserKNN(5, show_progress=False),
        "Hybrid": lambda: semrec.Hybrid([(als(), 0.5), (semrec.MostPopular(), 0.5)]),
        "ColdStartALS": lambda: semrec.ColdStartALS(als(), emb),
        "TextCF": lambda: semrec.TextCF(
            emb,
            hidden=8,
            factors=4,
            layers=1,
            negatives=8,
            epochs=1,
            random_state=0,
            show_progress=False,
        ),
    }


N_ITEMS = 50
EMB = np.random.default_rng(0).standard_normal((N_ITEMS, 8)).astype(np.float32)
MODELS = _models(EMB)


def _fitted(name: str, seed: int) -> Any:
    model = MODELS[name]()
    if isinstance(model, semrec.ColdStartALS):
        model.als.fit(synthetic(80, N_ITEMS, 900, with_text=False, random_state=seed).interactions)
        return model.fit()
    data = synthetic(80, N_ITEMS, 900, with_text=False, random_state=seed).interactions
    if isinstance(model, semrec.Hybrid):
        for member, _ in model.models:
            member.fit(data)
        return model
    return model.fit(data)


def _save_or_skip(model: Any, path: Path) -> None:
    try:
        model.save(path)
    except NotImplementedError as exc:
        pytest.skip(f"{type(model).__name__} has no save: {exc}")


def _run_child(mode: str, limit: int, name: str, source: Path, target: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "SEMREC_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, mode, str(limit), name, str(source), str(target)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize("name", list(MODELS))
def test_killed_save_leaves_the_previous_file_intact(name: str, tmp_path: Path) -> None:
    cls = type(MODELS[name]())
    model_a, model_b = _fitted(name, 1), _fitted(name, 2)
    source = tmp_path / "model-b.npz"
    _save_or_skip(model_b, source)
    users = np.arange(10)
    recs_b = model_b.recommend(users, k=5)
    model_a.save(tmp_path / "model-a.npz")
    before = (tmp_path / "model-a.npz").read_bytes()

    size = source.stat().st_size
    cases = [("fsize", n) for n in (0, size // 2, size - 1)]
    cases += [("step", n) for n in (1, 2, 3)]
    killed = {"fsize": -signal.SIGXFSZ, "step": -signal.SIGKILL}
    # Each case saves over its own copy of A, so the children can all run at once.
    runs = []
    for i, (mode, n) in enumerate(cases):
        target = tmp_path / f"live-{i}" / "model.npz"
        target.parent.mkdir()
        target.write_bytes(before)
        runs.append((mode, n, target, _run_child(mode, n, cls.__name__, source, target)))
    outcomes = []
    for mode, n, target, child in runs:
        _, err = child.communicate(timeout=300)
        after = target.read_bytes()
        if child.returncode == killed[mode]:
            outcomes.append(f"{mode} {n}: killed")
            assert after == before, f"{mode} {n}: the previous file was damaged"
            assert cls.load(target) is not None
        else:
            assert child.returncode == 0, err.decode(errors="replace")[-2000:]
            outcomes.append(f"{mode} {n}: finished")
            loaded = cls.load(target)
            for got, want in zip(loaded.recommend(users, k=5), recs_b, strict=True):
                np.testing.assert_array_equal(got, want)
    # The sweep really interrupted saves: the first write limits and first steps always kill.
    assert "fsize 0: killed" in outcomes and "step 1: killed" in outcomes, outcomes


def test_saves_from_threads_of_one_process_never_share_a_temporary_file(tmp_path: Path) -> None:
    # Each save's temporary file is its own (not one per process), so concurrent saves to one
    # path all succeed, and the file left is always one of them whole.
    from concurrent.futures import ThreadPoolExecutor

    models = [_fitted("ALS", seed) for seed in range(2)]
    target = tmp_path / "shared.npz"
    factors = [m.item_factors_ for m in models]
    for _ in range(5):
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda n: models[n % 2].save(target), range(16)))  # raises on failure
        loaded = semrec.ALS.load(target).item_factors_
        assert any(np.array_equal(loaded, f) for f in factors)
    assert os.listdir(tmp_path) == ["shared.npz"]  # no temporary file left behind


def test_a_save_into_a_missing_directory_names_the_directory(tmp_path: Path) -> None:
    model = _fitted("ALS", 0)
    missing = tmp_path / "no_such_dir"
    with pytest.raises(FileNotFoundError, match=r"directory that does not exist .*no_such_dir"):
        model.save(missing / "model.npz")
    assert not missing.exists()


def test_save_errors_name_the_target_not_the_temporary_file(tmp_path: Path) -> None:
    model = _fitted("ALS", 0)
    with pytest.raises(ValueError, match="path is empty"):
        model.save("")
    long_name = "m" * 240 + ".npz"  # legal (244 bytes); the temporary name must fit as well
    model.save(tmp_path / long_name)
    assert os.listdir(tmp_path) == [long_name]
    np.testing.assert_array_equal(
        semrec.ALS.load(tmp_path / long_name).item_factors_, model.item_factors_
    )
    if os.geteuid() != 0:  # root writes in a read-only directory anyway
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        try:
            with pytest.raises(PermissionError, match=r"locked/model.npz' cannot be written"):
                model.save(locked / "model.npz")
        finally:
            locked.chmod(0o755)
