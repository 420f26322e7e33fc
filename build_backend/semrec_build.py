"""semrec's PEP 517 build backend: scikit-build-core behind a check for the pinned torch.

The LibTorch module is compiled against the torch it will run with, and only ``torch==2.13.0``
may ever be installed (any other resolution of "torch" is a multi-GB CUDA download). So torch is
never a build requirement. Instead this backend finds the torch of the environment being
installed into: importable in a ``--no-build-isolation`` build, or in that environment's
site-packages when pip isolates the build (pip runs the backend with the target's interpreter
and hides its site-packages from ``sys.path``). Without it, or with another release, the build
stops at once with one line that says what to run; nothing is downloaded first, because
``build-system.requires`` is empty and the real requirements are returned only after the check.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import sysconfig
from pathlib import Path
from typing import Any

TORCH = "2.13.0"
REQUIRES = ["scikit-build-core>=0.11", "pybind11>=2.13", "cmeel-eigen>=3.4"]
FIX = f"pip install torch=={TORCH}, then run the same pip install again"
Settings = dict[str, Any] | None  # what PEP 517 frontends pass as config_settings


def _torch_dir() -> Path | None:
    """The folder of the target environment's ``torch`` package, or None."""
    spec = importlib.util.find_spec("torch")
    if spec is not None and spec.origin:
        return Path(spec.origin).parent
    paths = sysconfig.get_paths()
    for key in ("platlib", "purelib"):
        candidate = Path(paths[key]) / "torch"
        if (candidate / "__init__.py").is_file():
            return candidate
    return None


def _checked_torch_dir() -> Path:
    found = _torch_dir()
    if found is None:
        raise SystemExit(f"semrec: building needs torch=={TORCH} installed first: {FIX}")
    text = (found / "version.py").read_text(encoding="utf-8", errors="replace")
    match = re.search(r"""__version__\s*=\s*['"]([^'"+]+)""", text)
    version = match.group(1) if match else "unknown"
    if version != TORCH:
        raise SystemExit(
            f"semrec: building needs torch=={TORCH}, found torch {version} at {found}: {FIX}"
        )
    return found


def _tools() -> list[str]:
    """cmake and ninja from PyPI only when the machine has none."""
    needed = []
    if shutil.which("ninja") is None:
        needed.append("ninja")
    if shutil.which("cmake") is None:
        needed.append("cmake>=3.26")
    return needed


def _settings(config_settings: Settings) -> dict[str, Any]:
    settings = dict(config_settings or {})
    settings["cmake.define.SEMREC_TORCH_DIR"] = str(_checked_torch_dir())
    return settings


def get_requires_for_build_wheel(config_settings: Settings = None) -> list[str]:
    _checked_torch_dir()
    return REQUIRES + _tools()


def get_requires_for_build_editable(config_settings: Settings = None) -> list[str]:
    return get_requires_for_build_wheel(config_settings)


def get_requires_for_build_sdist(config_settings: Settings = None) -> list[str]:
    return ["scikit-build-core>=0.11"]


def prepare_metadata_for_build_wheel(
    metadata_directory: str, config_settings: Settings = None
) -> str:
    from scikit_build_core import build

    return build.prepare_metadata_for_build_wheel(metadata_directory, config_settings)


def prepare_metadata_for_build_editable(
    metadata_directory: str, config_settings: Settings = None
) -> str:
    from scikit_build_core import build

    return build.prepare_metadata_for_build_editable(metadata_directory, config_settings)


def _build(hook: str, directory: str, config_settings: Settings, metadata: str | None) -> str:
    """scikit-build-core's ``hook`` (a wheel or an editable wheel), CMake told the torch found."""
    from scikit_build_core import build

    return getattr(build, hook)(directory, _settings(config_settings), metadata)


def build_wheel(
    wheel_directory: str, config_settings: Settings = None, metadata_directory: str | None = None
) -> str:
    return _build("build_wheel", wheel_directory, config_settings, metadata_directory)


def build_editable(
    wheel_directory: str, config_settings: Settings = None, metadata_directory: str | None = None
) -> str:
    return _build("build_editable", wheel_directory, config_settings, metadata_directory)


def build_sdist(sdist_directory: str, config_settings: Settings = None) -> str:
    from scikit_build_core import build

    return build.build_sdist(sdist_directory, config_settings)
