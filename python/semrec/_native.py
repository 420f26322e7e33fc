"""Loads the compiled kernel module that best fits this CPU.

The torch-free kernels are built several times (``_core_generic``, ``_core_avx2``,
``_core_avx512``) so that one wheel runs everywhere and still uses the widest vector unit the
CPU has. ``SEMREC_ISA=generic|avx2|avx512`` forces a variant (useful for testing and for
reporting a suspected miscompilation).
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import os
from pathlib import Path
from types import ModuleType

_VARIANTS = ("native", "avx512", "avx2", "generic")
# CPU features (as NumPy names them) each variant is compiled to use: x86-64-v4 / -v3.
_REQUIRES = {
    "avx512": ("AVX512F", "AVX512CD", "AVX512BW", "AVX512DQ", "AVX512VL", "AVX2", "FMA3"),
    "avx2": ("AVX2", "FMA3", "F16C", "BMI2"),
}


def _cpu_features() -> dict[str, bool]:
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # NumPy < 2
        from numpy.core._multiarray_umath import __cpu_features__
    return dict(__cpu_features__)


def _supported(variant: str, features: dict[str, bool]) -> bool:
    return all(features.get(flag, False) for flag in _REQUIRES.get(variant, ()))


def _load_torch_openmp() -> None:
    """Load the OpenMP runtime torch ships before the kernels that need it. Their run path finds
    it beside semrec (``$ORIGIN/../torch/lib``); loaded first, it is also found when torch lives
    elsewhere (``--user``, ``--target``, a venv over system packages), so the process never
    holds a second OpenMP runtime, the system's, beside torch's. Finding torch does not import
    it."""
    spec = importlib.util.find_spec("torch")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        runtime = Path(folder) / "lib" / "libgomp.so.1"
        if runtime.is_file():
            ctypes.CDLL(str(runtime), mode=ctypes.RTLD_GLOBAL)
            return


def variants_to_try(forced: str | None, features: dict[str, bool]) -> list[str]:
    """The kernel variants to import, best first: the one ``SEMREC_ISA`` forces (refused with
    an ImportError when this CPU lacks what it was compiled for: its first instruction would
    kill the process with SIGILL), else every variant this CPU runs. Empty means unset."""
    if not forced:
        return [v for v in _VARIANTS if _supported(v, features)]
    if forced not in _VARIANTS:
        raise ImportError(f"SEMREC_ISA must be one of {', '.join(_VARIANTS)}, got {forced!r}")
    missing = [flag for flag in _REQUIRES.get(forced, ()) if not features.get(flag, False)]
    if missing:
        runs = ", ".join(v for v in _VARIANTS[1:] if _supported(v, features))
        raise ImportError(
            f"SEMREC_ISA={forced} needs CPU features this CPU lacks ({', '.join(missing)}): "
            f"its kernels would crash the process; unset SEMREC_ISA or choose one of: {runs}"
        )
    return [forced]


def _load_core() -> ModuleType:
    _load_torch_openmp()
    forced = os.environ.get("SEMREC_ISA") or None
    errors: list[str] = []
    for variant in variants_to_try(forced, _cpu_features()):
        try:
            return importlib.import_module(f"semrec._core_{variant}")
        except ModuleNotFoundError as exc:
            if forced and exc.name == f"semrec._core_{variant}":
                raise ImportError(
                    f"SEMREC_ISA={forced}: this build of semrec has no _core_{variant} (the "
                    "native variant is built only with -DSEMREC_MARCH_NATIVE=ON, see "
                    "docs/building.md); unset SEMREC_ISA or choose avx512, avx2 or generic"
                ) from None
            errors.append(f"_core_{variant}: {exc}")
        except ImportError as exc:
            errors.append(f"_core_{variant}: {exc}")
    raise ImportError(
        "semrec's compiled kernels could not be loaded ("
        + ("; ".join(errors) or "no variant built for this CPU")
        + "). semrec needs torch 2.13.0 importable in this environment (pip install "
        "torch==2.13.0); if it is, reinstall semrec (see docs/building.md)."
    )


core = _load_core()
