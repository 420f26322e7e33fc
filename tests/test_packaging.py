"""The package under test is the installed wheel, complete, and `pip install .` fails fast.

``make install`` (and so CI) installs semrec from the auditwheel-repaired wheel in ``dist/``;
these tests check that the suite really runs against that installation and that the wheel
carries every file of ``python/semrec`` and the compiled modules, leaving torch's libraries to
torch. The build backend's refusal without torch is exercised through a real ``pip install``.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

import semrec

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "python" / "semrec"
INSTALLED = Path(semrec.__file__).resolve().parent
TORCH = "2.13.0"


def _site_dirs() -> set[Path]:
    paths = sysconfig.get_paths()
    return {Path(paths[key]).resolve() for key in ("purelib", "platlib")}


def _source_files() -> list[Path]:
    return sorted(
        p.relative_to(SOURCE)
        for p in SOURCE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    )


def test_semrec_is_imported_from_site_packages() -> None:
    assert INSTALLED.parent in _site_dirs(), (
        f"semrec was imported from {INSTALLED}, not from this interpreter's site-packages "
        f"({', '.join(map(str, _site_dirs()))}): run `make install`, which installs the wheel"
    )
    assert INSTALLED != SOURCE.resolve()


def test_every_source_file_is_in_the_installed_package() -> None:
    files = _source_files()
    assert len(files) > 40  # the walk found the package, not an empty folder
    missing = [str(f) for f in files if not (INSTALLED / f).is_file()]
    assert not missing, f"files of python/semrec missing from the installed wheel: {missing}"
    stale = [str(f) for f in files if (INSTALLED / f).read_bytes() != (SOURCE / f).read_bytes()]
    assert not stale, f"installed files differ from the source (run `make install`): {stale}"


def test_compiled_modules_and_their_stubs_are_installed() -> None:
    variants = ["generic"]
    if platform.machine().lower() in ("x86_64", "amd64"):
        variants += ["avx2", "avx512"]
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    for name in [f"_core_{v}" for v in variants] + ["_text"]:
        assert (INSTALLED / f"{name}{suffix}").is_file(), f"{name}{suffix} is not installed"
        assert (INSTALLED / f"{name}.pyi").is_file(), f"{name}.pyi is not installed"
    assert (INSTALLED / "py.typed").is_file()


def test_torch_libraries_come_from_torch_not_from_the_wheel() -> None:
    readelf = shutil.which("readelf")
    if readelf is None:
        pytest.skip("readelf (binutils) is not installed")
    extensions = sorted(INSTALLED.glob("_*.so")) + sorted(INSTALLED.glob("_*.*.so"))
    assert extensions
    for ext in set(extensions):
        dynamic = subprocess.run(
            [readelf, "-d", str(ext)], capture_output=True, text=True, check=True
        ).stdout
        runpath = re.findall(r"\((?:RUNPATH|RPATH)\).*\[(.*)\]", dynamic)
        assert runpath == ["$ORIGIN/../torch/lib"], f"{ext.name}: RUNPATH {runpath}"
    # auditwheel grafts what it copies into semrec.libs/: never torch's own libraries or the
    # OpenMP runtime (a second libgomp beside torch's breaks the one-runtime guarantee).
    grafted = INSTALLED.parent / "semrec.libs"
    copies = sorted(p.name for p in grafted.glob("*")) if grafted.is_dir() else []
    assert not [n for n in copies if re.match(r"lib(torch|c10|gomp)", n)], copies


def test_installed_from_a_repaired_manylinux_wheel() -> None:
    dist = importlib.metadata.distribution("semrec")
    assert dist.version == semrec.__version__
    direct = dist.read_text("direct_url.json")
    url = json.loads(direct)["url"] if direct else ""
    if not url.endswith(".whl"):
        if os.environ.get("CI"):
            pytest.fail(f"CI must test the wheel, but semrec was installed from {url or 'PyPI'}")
        pytest.skip(f"semrec was installed from {url or 'an index'}, not from a wheel file")
    name = url.rsplit("/", 1)[1]
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    pattern = rf"semrec-{re.escape(semrec.__version__)}-{tag}-{tag}-manylinux_\d+_\d+_\w+\.whl"
    assert re.fullmatch(pattern, name), f"{name} is not an auditwheel-repaired manylinux wheel"


def test_the_licence_and_the_notices_are_installed() -> None:
    dist = importlib.metadata.distribution("semrec")
    assert dist.metadata["License-Expression"] == "Apache-2.0"
    files = {Path(str(f)).name: f for f in dist.files or [] if "licenses" in str(f)}
    assert {"LICENSE", "THIRD_PARTY_NOTICES.md"} <= set(files), sorted(files)
    for name in ("LICENSE", "THIRD_PARTY_NOTICES.md"):  # the repository's own texts
        installed = files[name].read_text(encoding="utf-8")
        assert installed == (ROOT / name).read_text(encoding="utf-8")
    notices = files["THIRD_PARTY_NOTICES.md"].read_text(encoding="utf-8")
    assert all(lib in notices for lib in ("pybind11", "Eigen", "PyTorch"))


def test_changelog_records_this_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## {re.escape(semrec.__version__)}\b", changelog, flags=re.M), (
        f"CHANGELOG.md has no '## {semrec.__version__}' section"
    )


def _bare_venv(path: Path) -> Path:
    """A virtual environment without pip or torch (pip runs into it through --python)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return path / "bin" / "python"


def _pip_install_source(python: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-index",
         "--no-cache-dir", str(ROOT)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )  # fmt: skip
    return result, time.perf_counter() - start


def test_pip_install_without_torch_stops_at_once_saying_what_to_run(tmp_path: Path) -> None:
    result, seconds = _pip_install_source(_bare_venv(tmp_path / "venv"))
    assert result.returncode != 0
    lines = [line.strip() for line in result.stdout.splitlines() + result.stderr.splitlines()]
    ours = [line for line in lines if line.startswith("semrec:")]
    assert ours == [
        f"semrec: building needs torch=={TORCH} installed first: pip install torch=={TORCH}, "
        "then run the same pip install again"
    ], result.stdout + result.stderr
    assert seconds < 30, f"pip took {seconds:.1f} s to refuse"


def test_pip_install_with_another_torch_names_it(tmp_path: Path) -> None:
    python = _bare_venv(tmp_path / "venv")
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['platlib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    fake = Path(site) / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake / "version.py").write_text("__version__ = '2.5.1+cu124'\n")
    result, _ = _pip_install_source(python)
    assert result.returncode != 0
    ours = [line.strip() for line in result.stderr.splitlines() + result.stdout.splitlines()]
    ours = [line for line in ours if line.startswith("semrec:")]
    assert len(ours) == 1 and f"needs torch=={TORCH}, found torch 2.5.1 at {fake}" in ours[0]
    assert f"pip install torch=={TORCH}" in ours[0]
