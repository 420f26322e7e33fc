"""Shared plumbing of the benchmark scripts: pinning threads and instruction sets before the
libraries load, describing the machine and the code paths taken, timing and contention notes.

Import it first, then call :func:`pin_environment` before numpy, faiss or torch are imported.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable, Mapping
from importlib.metadata import PackageNotFoundError, version

USABLE_CPUS: int = (
    len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
)

# What "--isa avx2" sets so that every library takes its AVX2 path on an AVX-512 machine (the
# emulation of an AVX2-only CPU such as AMD Zen 3): semrec's kernel variant, OpenBLAS's core
# type (its Zen kernels are its Haswell ones), faiss's SIMD level, NumPy's own SIMD loops, torch.
AVX2_ENVIRONMENT = {
    "SEMREC_ISA": "avx2",
    "OPENBLAS_CORETYPE": "Zen",
    "FAISS_OPT_LEVEL": "AVX2",  # faiss wheels with one library per instruction set
    "FAISS_SIMD_LEVEL": "AVX2",  # faiss wheels with dynamic dispatch (1.12 and later)
    "NPY_DISABLE_CPU_FEATURES": "AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL "
    "AVX512_SPR",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "ATEN_CPU_CAPABILITY": "avx2",
}


# The variables OpenMP, the BLAS libraries and numba (ranx) read their thread counts from.
THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "NUMBA_NUM_THREADS",
)


def pin_threads(default: int = USABLE_CPUS) -> int:
    """Reads --threads from the command line and sets every runtime's thread count to it.

    The runtimes read their thread counts when they are loaded, so this must run before numpy,
    faiss or torch are imported. Returns the count; the script parses its full command line
    later.
    """
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--threads", type=int, default=default)
    threads = pre.parse_known_args()[0].threads
    for var in THREAD_VARIABLES:
        os.environ[var] = str(threads)
    return threads


def pin_environment() -> argparse.Namespace:
    """:func:`pin_threads`, and --isa: the environment of the instruction set it names.

    OpenBLAS reads its core type when it is loaded, so this too must run before numpy and faiss
    are imported. Returns both values.
    """
    threads = pin_threads()
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--isa", choices=["native", "avx2"], default="native")
    known = pre.parse_known_args()[0]
    if known.isa == "avx2":
        os.environ.update(AVX2_ENVIRONMENT)
    return argparse.Namespace(threads=threads, isa=known.isa)


def add_common_arguments(parser: argparse.ArgumentParser, threads: int) -> None:
    parser.add_argument("--threads", type=int, default=threads, help="threads for every library")
    parser.add_argument(
        "--isa",
        choices=["native", "avx2"],
        default="native",
        help="avx2: emulate an AVX2-only CPU (sets " + ", ".join(AVX2_ENVIRONMENT) + ")",
    )


def parts_of(namespace: Mapping[str, object]) -> dict[str, Callable[[argparse.Namespace], None]]:
    """The parts of a script (its ``globals()``): each function ``part_<name>`` under ``name``,
    in the order they are defined."""
    return {
        name.removeprefix("part_"): fn
        for name, fn in namespace.items()
        if name.startswith("part_") and callable(fn)
    }


def parts_parser(doc: str, parts: Mapping[str, object], threads: int) -> argparse.ArgumentParser:
    """The command line of a benchmark in parts (``--parts a,b``), the script's own options to
    be added: --quick (its meaning is the script's), --parts, --threads and --repeats."""
    parser = argparse.ArgumentParser(
        description=doc.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller data or fewer repeats")
    parser.add_argument("--parts", default=",".join(parts), help=f"any of {', '.join(parts)}")
    parser.add_argument("--threads", type=int, default=threads)
    parser.add_argument("--repeats", type=int, default=5)
    return parser


def run_parts(
    parser: argparse.ArgumentParser,
    args: argparse.Namespace,
    parts: Mapping[str, Callable[[argparse.Namespace], None]],
) -> None:
    """Runs the parts ``--parts`` names, in its order, with semrec and BLAS on --threads."""
    from threadpoolctl import threadpool_limits

    import semrec

    chosen = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = [p for p in chosen if p not in parts]
    if unknown:
        parser.error(f"unknown part(s) {unknown}; choose from {list(parts)}")
    semrec.set_num_threads(args.threads)
    with threadpool_limits(limits=args.threads):
        for name in chosen:
            parts[name](args)


def cpu_model_and_flags() -> tuple[str, set[str]]:
    cpu, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    cpu = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
    except OSError:
        pass
    return cpu, flags


# Environment variables that cap the instruction sets semrec, oneDNN and ATen use: set, a run
# emulates a smaller CPU (the AVX2 column), and the header line must say so.
ISA_CAPS = ("SEMREC_ISA", "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")


def machine_line() -> str:
    cpu, flags = cpu_model_and_flags()
    simd = [s for s in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")]
    present = ", ".join(s for s in simd if s in flags) or "-"
    caps = ", ".join(f"{name}={os.environ[name]}" for name in ISA_CAPS if os.environ.get(name))
    return (
        f"machine  : {cpu}; {os.cpu_count()} logical CPUs, {USABLE_CPUS} usable; CPU has "
        f"{present}; {platform.system()} {platform.release()}"
        + (f"; ISA capped ({caps}): emulated" if caps else "")
    )


def semrec_version() -> str:
    import semrec

    try:
        return version("semrec")
    except PackageNotFoundError:  # e.g. run from a source tree on PYTHONPATH
        return str(getattr(semrec, "__version__", "unknown"))


def semrec_location() -> str:
    """The folder semrec (and its extensions) was imported from. Comparing two builds through
    PYTHONPATH silently measures the installed one twice when the path holds no semrec/ folder;
    the headers print this so that a comparison shows which build ran."""
    import semrec

    return os.path.dirname(os.path.abspath(semrec.__file__))


def paths_line() -> str:
    """The code paths the libraries took in this process (after any --isa emulation)."""
    from threadpoolctl import threadpool_info

    from semrec._native import core

    parts = [
        f"semrec {core.__name__.rsplit('.', 1)[-1]} ({core.kernel_description()}) "
        f"from {semrec_location()}"
    ]
    for info in threadpool_info():
        if info["user_api"] == "blas":
            owner = next(
                (lib for lib in ("numpy", "scipy", "faiss", "torch") if lib in info["filepath"]),
                "other",
            )
            parts.append(
                f"{owner} BLAS {info['internal_api']} {info.get('version')} "
                f"{info.get('architecture', '')}"
            )
    try:
        import faiss

        level = (
            faiss.SIMDConfig.get_level_name()
            if hasattr(faiss, "SIMDConfig")
            else faiss.get_compile_options().strip()
        )
        parts.append(f"faiss {faiss.__version__} {level}")
    except ImportError:
        pass
    emulated = os.environ.get("SEMREC_ISA") == "avx2"
    return f"paths    : {'; '.join(parts)}" + (
        " [AVX2 emulated: " + " ".join(f"{k}={v}" for k, v in AVX2_ENVIRONMENT.items()) + "]"
        if emulated
        else ""
    )


def fmt_time(ts: list[float], unit: float = 1.0, digits: int = 3) -> str:
    return (
        f"{statistics.median(ts) / unit:.{digits}g} "
        f"[{min(ts) / unit:.{digits}g}–{max(ts) / unit:.{digits}g}]"
    )


def cpu_seconds() -> tuple[float, float, float]:
    """(wall clock, busy CPU seconds of the whole machine incl. steal, this process's CPU)."""
    busy = float("nan")
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
        busy = (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        pass
    own = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), busy, own.ru_utime + own.ru_stime


def contention_note(start: tuple[float, float, float]) -> str:
    """How much CPU everything but this benchmark used while it ran (and the VM's steal)."""
    end = cpu_seconds()
    wall, busy, own = (b - a for a, b in zip(start, end, strict=True))
    share = max(0.0, busy - own) / (wall * (os.cpu_count() or 1))
    verdict = "timings are contended" if share > 0.05 else "a quiet machine"
    return (
        f"other processes (and steal) used {100 * share:.0f}% of the CPUs during the run: {verdict}"
    )
