"""Imports torch, then the LibTorch extension, with a message that says how to fix a mismatch."""

from __future__ import annotations

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
