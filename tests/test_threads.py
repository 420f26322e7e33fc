"""Thread control and the one-OpenMP-runtime guarantee."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from child_python import run_python

import semrec


@pytest.mark.parametrize("torch_first", [True, False])
def test_one_openmp_runtime_with_torch(torch_first: bool) -> None:
    # A fresh process, so import order is really exercised; kernels of both modules are run so
    # that every runtime that could load has loaded.
    imports = "import torch; import semrec" if torch_first else "import semrec; import torch"
    out = run_python(
        f"""
        {imports}
        import numpy as np
        import semrec.text
        from threadpoolctl import threadpool_info
        x = np.random.default_rng(0).standard_normal((500, 16)).astype(np.float32)
        semrec.topk(x, x, 5, num_threads=2)
        semrec.text.mean_pool(np.ones((2, 3, 4), np.float32), np.array([3, 1]))
        torch.ones(256, 256) @ torch.ones(256, 256)
        libs = [i for i in threadpool_info() if i["user_api"] == "openmp"]
        print(len(libs), libs[0]["filepath"] if libs else "")
        """
    )
    count, path = out.split(" ", 1)
    assert count == "1", f"expected exactly one OpenMP runtime, got {out}"
    assert "torch" in path, f"the runtime should be the one torch ships, got {path}"


def test_one_openmp_runtime_when_torch_is_installed_elsewhere(tmp_path) -> None:
    # semrec installed apart from torch (--target, --user, a venv over system packages): the
    # extensions' run path ($ORIGIN/../torch/lib) finds nothing, so import semrec loads torch's
    # runtime itself; before, the system's libgomp was bound and torch then shared it.
    shutil.copytree(Path(semrec.__file__).parent, tmp_path / "semrec")
    code = """
        import semrec, torch, numpy as np
        from threadpoolctl import threadpool_info
        x = np.random.default_rng(0).standard_normal((500, 16)).astype(np.float32)
        semrec.topk(x, x, 5, num_threads=2)
        torch.ones(256, 256) @ torch.ones(256, 256)
        libs = [i["filepath"] for i in threadpool_info() if i["user_api"] == "openmp"]
        print(semrec.__file__, len(libs), *libs)
        """
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                            text=True, timeout=300, env=env, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    where, count, *paths = result.stdout.split()
    assert where.startswith(str(tmp_path)), where  # the copy apart from torch was imported
    assert count == "1" and "torch" in paths[0], f"expected torch's runtime alone, got {paths}"


def test_set_num_threads_governs_kernels_and_torch() -> None:
    out = run_python(
        """
        import semrec, torch
        semrec.set_num_threads(1)
        import semrec.text
        from semrec.text._torch import text_ext
        a = (semrec.get_num_threads(), torch.get_num_threads(), text_ext.torch_num_threads())
        semrec.set_num_threads(2)
        b = (semrec.get_num_threads(), torch.get_num_threads(), text_ext.torch_num_threads())
        print(*a, *b)
        """
    )
    assert out.split() == ["1", "1", "1", "2", "2", "2"]


def test_default_threads_follow_environment() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import semrec; print(semrec.get_num_threads())"],
        capture_output=True,
        text=True,
        check=True,
        env={"SEMREC_NUM_THREADS": "1", "PATH": ""},
    )
    assert result.stdout.strip() == "1"


@pytest.mark.parametrize(
    ("value", "warns"), [("0", False), ("abc", True), ("2.5", True), ("-3", True)]
)
def test_environment_zero_means_every_core_and_junk_warns(value: str, warns: bool) -> None:
    """0 means all cores, as for set_num_threads(0); a value that is no count says so."""
    result = subprocess.run(
        [sys.executable, "-c", "import semrec; print(semrec.get_num_threads())"],
        capture_output=True, text=True, check=True,
        env={"SEMREC_NUM_THREADS": value, "PATH": ""},
    )  # fmt: skip
    assert result.stdout.strip() == str(len(os.sched_getaffinity(0)))
    assert ("is not a thread count" in result.stderr) == warns


def test_environment_is_read_once_as_openmp_reads_it() -> None:
    """The environment's count is read when semrec first needs one (not at every kernel call,
    which cost a click microseconds); set_num_threads changes it later."""
    code = (
        "import os, semrec; a = semrec.get_num_threads(); "
        "os.environ['SEMREC_NUM_THREADS'] = '2'; b = semrec.get_num_threads(); "
        "semrec.set_num_threads(2); print(a, b, semrec.get_num_threads())"
    )
    env = {"SEMREC_NUM_THREADS": "1", "PATH": ""}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert result.stdout.split() == ["1", "1", str(min(2, len(os.sched_getaffinity(0))))]


def test_set_num_threads_validates() -> None:
    before = semrec.get_num_threads()
    with pytest.raises(ValueError, match="num_threads"):
        semrec.set_num_threads(-1)
    with pytest.raises(TypeError, match="num_threads"):
        semrec.set_num_threads(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="num_threads"):
        semrec.set_num_threads(True)
    assert semrec.get_num_threads() == before
    semrec.set_num_threads(0)  # all cores
    try:
        assert semrec.get_num_threads() >= 1
    finally:
        semrec.set_num_threads(before)


def test_every_built_isa_variant_agrees() -> None:
    # Each instruction-set build of the kernels must give the same answer (up to the rounding
    # of fused multiply-adds) as the one this CPU picked.
    code = """
        import os, numpy as np, semrec
        from semrec._native import core
        rng = np.random.default_rng(3)
        x = rng.integers(-3, 4, size=(5000, 24)).astype(np.float32)
        ids, scores = semrec.topk(x[:50], x, 7, metric="dot")
        np.save(os.environ["OUT"], np.concatenate([ids, scores]))
        print(core.isa)
    """
    import importlib.util
    import os
    import tempfile

    import numpy as np

    variants = [
        v
        for v in ("generic", "avx2", "avx512")
        if importlib.util.find_spec(f"semrec._core_{v}") is not None
    ]
    assert "generic" in variants
    from semrec._native import _cpu_features, _supported

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for v in variants:
            if not _supported(v, _cpu_features()):
                continue
            out = os.path.join(tmp, f"{v}.npy")
            env = dict(os.environ, SEMREC_ISA=v, OUT=out)
            proc = subprocess.run(
                [sys.executable, "-c", textwrap.dedent(code)],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            )
            assert proc.stdout.strip() == v
            results[v] = np.load(out)
    reference = results.pop("generic")
    for v, got in results.items():
        # Integer-valued data: every variant computes exact products, so results are equal.
        np.testing.assert_array_equal(got, reference, err_msg=v)


def test_forcing_an_unknown_isa_is_a_clear_error() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import semrec"],
        capture_output=True,
        text=True,
        env={"SEMREC_ISA": "sse9", "PATH": ""},
    )
    assert result.returncode != 0
    assert "SEMREC_ISA must be one of" in result.stderr


def test_a_forced_isa_this_cpu_lacks_is_refused_not_loaded() -> None:
    """SEMREC_ISA=avx512 on an AVX2-only CPU would load kernels whose module init alone holds
    AVX-512 instructions (SIGILL); the CPU's features as NumPy reports them, pretended here."""
    from semrec._native import variants_to_try

    avx2_only = {f: True for f in ("AVX2", "FMA3", "F16C", "BMI2", "SSE42")}
    with pytest.raises(ImportError, match=r"SEMREC_ISA=avx512 needs .*AVX512F.*: avx2, generic"):
        variants_to_try("avx512", avx2_only)
    with pytest.raises(ImportError, match=r"SEMREC_ISA=avx2 needs .*AVX2, FMA3.*: generic$"):
        variants_to_try("avx2", {})
    assert variants_to_try("avx2", avx2_only) == ["avx2"]
    assert variants_to_try(None, avx2_only) == ["native", "avx2", "generic"]
    assert variants_to_try("", avx2_only) == variants_to_try(None, avx2_only)  # empty: unset


def test_forcing_a_variant_this_build_lacks_says_so() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "import semrec"],
        capture_output=True,
        text=True,
        env={**os.environ, "SEMREC_ISA": "native"},
    )
    if result.returncode == 0:
        pytest.skip("this build has the native variant")
    assert "this build of semrec has no _core_native" in result.stderr
    assert "torch" not in result.stderr.splitlines()[-1]  # not sent to reinstall torch


def test_thread_counts_above_the_cores_are_capped() -> None:
    # One cap for every kernel: more threads than cores is never faster, and 100k threads used
    # to crash the kernels that keep a scratch buffer per thread.
    from semrec._threads import available_cores, resolve_num_threads

    cores = available_cores()
    assert resolve_num_threads(100_000) == cores
    assert resolve_num_threads(2**40) == cores
    assert resolve_num_threads(0) == cores
    assert resolve_num_threads(1) == 1
    with pytest.raises(ValueError, match="num_threads"):
        resolve_num_threads(-1)
    with pytest.raises(TypeError, match="num_threads"):
        resolve_num_threads(2.0)


def test_huge_thread_counts_run_and_match_one_thread() -> None:
    import numpy as np
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 8)).astype(np.float32)
    expected = semrec.topk(x[:20], x, 5, num_threads=1)
    for n in (1000, 100_000, 2**40):
        got = semrec.topk(x[:20], x, 5, num_threads=n)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
    clicks = sp.random_array((40, 30), density=0.2, format="csr", rng=0, dtype=np.float32)
    one = semrec.ItemKNN(5, num_threads=1).fit(clicks).recommend(np.arange(40), k=3)
    many = semrec.ItemKNN(5, num_threads=100_000).fit(clicks).recommend(np.arange(40), k=3)
    np.testing.assert_array_equal(one[0], many[0])
    als = semrec.ALS(4, num_threads=100_000, random_state=0, show_progress=False).fit(clicks)
    ref = semrec.ALS(4, num_threads=1, random_state=0, show_progress=False).fit(clicks)
    np.testing.assert_array_equal(als.item_factors_, ref.item_factors_)


def test_textcf_sparse_products_run_on_every_thread() -> None:
    # ATen's parallel_for only runs in parallel in a file compiled with OpenMP; TextCF's sparse
    # products and softmax were not, and ran on the calling thread whatever num_threads said (a
    # C++ review, session 44). What a loop did shows in the CPU time of each OS thread of the
    # process (wall time would be noise on a shared machine): at 2 threads the second thread
    # must do a fair share of the propagation's work.
    from semrec._threads import available_cores

    if available_cores() < 2:
        pytest.skip("needs at least 2 usable cores")
    out = run_python(
        """
        import os, threading
        import numpy as np, scipy.sparse as sp, semrec
        from semrec.textcf._training import propagate
        semrec.set_num_threads(2)
        rng = np.random.default_rng(0)
        users, items, nnz = 40_000, 10_000, 2_000_000
        m = sp.csr_array((np.ones(nnz, np.float32),
                          (rng.integers(0, users, nnz), rng.integers(0, items, nnz))),
                         shape=(users, items))
        m.sum_duplicates(); m.sort_indices()
        x = rng.standard_normal((users + items, 64)).astype(np.float32)
        propagate(m, x, 1)  # starts the thread team
        def cpu():
            tick, out = os.sysconf("SC_CLK_TCK"), {}
            for tid in os.listdir("/proc/self/task"):
                with open(f"/proc/self/task/{tid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                out[int(tid)] = (int(fields[11]) + int(fields[12])) / tick
            return out
        before = cpu()
        for _ in range(4):
            propagate(m, x, 3)
        after = cpu()
        main = threading.get_native_id()
        used = {t: after[t] - before.get(t, 0.0) for t in after}
        others = sum(v for t, v in used.items() if t != main)
        print(f"{others / (others + used[main]):.3f}")
        """
    )
    assert float(out) > 0.25, f"share of the work on the other threads: {out}"
