"""Imports torch, then the LibTorch extension, with a message that says how to fix a mismatch."""

from __future__ import annotations

import os

# A process emulating an AVX2-only CPU (SEMREC_ISA, ONEDNN_MAX_CPU_ISA or ATEN_CPU_CAPABILITY set
# to avx2) keeps FBGEMM, which runs the int8 layers, on AVX2 as well. FBGEMM reads this variable
# on its first use, so it is set before any quantised operation runs.
if "FBGEMM_ENABLE_INSTRUCTIONS" not in os.environ and any(
    os.environ.get(name, "").lower() == "avx2"
    for name in ("SEMREC_ISA", "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")
):
    os.environ["FBGEMM_ENABLE_INSTRUCTIONS"] = "AVX2"

import torch

from semrec._threads import get_num_threads

REQUIRED_TORCH = "2.13.0"

if torch.__version__.split("+")[0] != REQUIRED_TORCH:
    raise ImportError(
        f"semrec was built against torch {REQUIRED_TORCH} but torch {torch.__version__} is "
        f"installed; run: pip install torch=={REQUIRED_TORCH}"
    )

try:
    from semrec import _text as text_ext
except ImportError as exc:  # pragma: no cover - depends on a broken install
    raise ImportError(
        f"semrec's LibTorch extension failed to load ({exc}). Reinstall with "
        f"torch=={REQUIRED_TORCH} present and --no-build-isolation "
        "(docs/building.md)."
    ) from exc

# LibTorch follows the package-wide thread setting from the moment it is first used.
torch.set_num_threads(get_num_threads())

__all__ = ["text_ext", "torch"]
