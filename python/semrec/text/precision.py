"""Which encoder precision this CPU runs natively, honouring the caps that emulate older CPUs.

The CPU's own features come from torch (``torch.cpu._is_avx512_bf16_supported`` and friends,
which read CPUID). They are then capped by what the libraries doing the work are allowed to
use: ``ONEDNN_MAX_CPU_ISA`` (oneDNN: the bf16 and fp32 GEMMs), ``FBGEMM_ENABLE_INSTRUCTIONS``
(FBGEMM: the int8 GEMMs), ``ATEN_CPU_CAPABILITY`` (ATen's vectorised kernels) and
``SEMREC_ISA`` (semrec's own kernels). A machine emulating an AVX2-only CPU with any of them
gets the AVX2 answer, as it would on the real CPU.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

from semrec.text._torch import torch

PRECISIONS = ("auto", "fp32", "bf16", "int8")

# oneDNN's ISA names (ONEDNN_MAX_CPU_ISA values) in increasing order; aliases share a rank.
_ONEDNN_RANK = {
    "SSE41": 1, "AVX": 2, "AVX2": 3, "AVX2_VNNI": 4, "AVX2_VNNI_2": 5, "AVX512_CORE": 6,
    "AVX512_CORE_VNNI": 7, "AVX512_CORE_BF16": 8, "AVX512_CORE_FP16": 9, "AVX10_1_512": 9,
    "AVX512_CORE_AMX": 10, "AVX10_1_512_AMX": 10, "AVX512_CORE_AMX_FP16": 11,
    "AVX10_1_512_AMX_FP16": 11, "AVX10_2_512": 12, "AVX10_2_512_AMX_2": 13,
}  # fmt: skip
_AVX2, _AVX512_VNNI, _AVX512_BF16, _AMX = 3, 7, 8, 10
_UNCAPPED = 99
# Other caps, mapped onto the same scale.
_SEMREC_RANK = {"generic": 1, "avx2": _AVX2, "avx512": _UNCAPPED, "native": _UNCAPPED}
_ATEN_RANK = {"default": 1, "avx2": _AVX2, "avx512": _UNCAPPED, "zvector": 1, "vsx": 1}
_FBGEMM_RANK = {"avx2": _AVX2, "avx512": 6, "avx512_e1": _UNCAPPED, "avx512_vnni": _UNCAPPED}


@dataclass(frozen=True)
class CpuFeatures:
    """What the CPU has and what the libraries may use (see the module docstring).

    Examples
    --------
    >>> from semrec.text.precision import CpuFeatures
    >>> avx2_only = CpuFeatures(True, False, False, False, False, {}, "AVX2")
    >>> avx2_only.vnni, avx2_only.level
    (False, 3)
    """

    avx2: bool
    avx512: bool
    avx512_vnni: bool
    avx512_bf16: bool
    amx: bool
    caps: dict[str, str]  # the environment variables that cap an ISA, as set
    aten_capability: str  # ATen's kernel level in effect (honours ATEN_CPU_CAPABILITY)

    @property
    def level(self) -> int:
        """The ISA rank every library may use: the CPU's, lowered by every cap that is set."""
        if self.amx:
            cpu = _AMX
        elif self.avx512_bf16:
            cpu = _AVX512_BF16
        elif self.avx512_vnni:
            cpu = _AVX512_VNNI
        else:
            cpu = 6 if self.avx512 else _AVX2 if self.avx2 else 1
        tables = {
            "ONEDNN_MAX_CPU_ISA": _ONEDNN_RANK,
            "DNNL_MAX_CPU_ISA": _ONEDNN_RANK,
            "SEMREC_ISA": _SEMREC_RANK,
            "FBGEMM_ENABLE_INSTRUCTIONS": _FBGEMM_RANK,
        }
        for name, value in self.caps.items():
            table = tables.get(name, {})
            cpu = min(cpu, table.get(value.upper() if table is _ONEDNN_RANK else value.lower(),
                                     _UNCAPPED))  # fmt: skip
        return min(cpu, _ATEN_RANK.get(self.aten_capability.lower(), _UNCAPPED))

    @property
    def bf16_native(self) -> bool:
        """bfloat16 GEMMs in hardware: AVX-512 BF16 or AMX, not capped below them."""
        return self.level >= _AVX512_BF16 and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())

    @property
    def amx_native(self) -> bool:
        """bfloat16 GEMMs on AMX tiles (native bf16 and AMX, not capped below it)."""
        return self.level >= _AMX and self.bf16_native

    @property
    def vnni(self) -> bool:
        """int8 dot products in one instruction (AVX-512 VNNI), not capped below it."""
        return self.level >= _AVX512_VNNI

    def describe(self) -> str:
        """One line for logs and benchmark headers."""
        have = [
            n for n in ("avx2", "avx512", "avx512_vnni", "avx512_bf16", "amx") if getattr(self, n)
        ]
        caps = ", ".join(f"{k}={v}" for k, v in sorted(self.caps.items())) or "none"
        return (
            f"CPU features: {' '.join(have) or 'baseline x86-64'}; caps: {caps}; ATen kernels: "
            f"{self.aten_capability}; native bf16: {'yes' if self.bf16_native else 'no'}, "
            f"VNNI int8: {'yes' if self.vnni else 'no'}"
        )


def cpu_features() -> CpuFeatures:
    """The CPU's features and the ISA caps in force in this process.

    Examples
    --------
    >>> from semrec.text import cpu_features
    >>> cpu_features().describe().startswith("CPU features:")
    True
    """
    cpu = torch.cpu
    caps = {
        name: os.environ[name]
        for name in (
            "ONEDNN_MAX_CPU_ISA",
            "DNNL_MAX_CPU_ISA",
            "SEMREC_ISA",
            "FBGEMM_ENABLE_INSTRUCTIONS",
            "ATEN_CPU_CAPABILITY",
        )
        if os.environ.get(name)
    }
    return CpuFeatures(
        avx2=bool(cpu._is_avx2_supported()),
        avx512=bool(cpu._is_avx512_supported()),
        avx512_vnni=bool(cpu._is_vnni_supported()),
        avx512_bf16=bool(cpu._is_avx512_bf16_supported()),
        amx=bool(cpu._is_amx_tile_supported()),
        caps=caps,
        aten_capability=str(torch.backends.cpu.get_cpu_capability()),
    )


_warned: set[str] = set()


def int8_available() -> bool:
    """Whether this torch has FBGEMM, which runs the int8 layers (x86 CPUs with AVX2 or more).

    Examples
    --------
    >>> from semrec.text.precision import int8_available
    >>> isinstance(int8_available(), bool)
    True
    """
    from semrec.text._torch import text_ext

    return str(text_ext.int8_kernel_isa()) != "none"


def resolve_precision(
    requested: str, features: CpuFeatures | None = None, *, int8: bool | None = None
) -> str:
    """The precision an encoder runs: ``auto`` resolved, slow choices replaced (with a warning).

    ``auto`` is the fastest path that keeps its parity target on this CPU: bf16 on AMX (cosine
    to fp32 above 0.999), else int8 where FBGEMM is present (cosine above 0.99; on AVX-512 BF16
    without AMX, e.g. AMD Zen 4, int8's VNNI kernels ran item texts 1.7x and long texts 1.5x
    faster than bf16; on AVX2-only CPUs faster than fp32; see benchmarks/README.md), else bf16
    where the CPU runs it natively, else fp32. A text's vector never depends on its batch. An
    explicit ``bf16`` on a CPU without native bf16 would run through emulation, several times
    slower than fp32: it runs as fp32 instead, with a warning (once per process). ``int8`` says
    whether FBGEMM is present (``None``: ask this process's torch).

    Examples
    --------
    >>> from semrec.text.precision import CpuFeatures, resolve_precision
    >>> avx2 = CpuFeatures(True, False, False, False, False, {}, "AVX2")
    >>> resolve_precision("auto", avx2, int8=True), resolve_precision("auto", avx2, int8=False)
    ('int8', 'fp32')
    """
    features = features or cpu_features()
    if requested == "auto":
        if features.amx_native:
            return "bf16"
        if int8_available() if int8 is None else int8:
            return "int8"
        return "bf16" if features.bf16_native else "fp32"
    if requested == "bf16" and not features.bf16_native:
        if "bf16" not in _warned:
            _warned.add("bf16")
            warnings.warn(
                "precision='bf16' has no native support here (it needs AVX-512 BF16 or AMX; "
                f"{features.describe()}): bf16 would be emulated, several times slower than "
                "fp32, so this encoder runs fp32 (see TextEncoder.precision_). Pass "
                "precision='auto' (the fastest path here) or 'fp32' to silence this.",
                RuntimeWarning,
                stacklevel=3,
            )
        return "fp32"
    return requested
