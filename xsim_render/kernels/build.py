"""Build and load the C++ (OpenMP) and CUDA extensions on first use, never at import.

Extensions are compiled with torch.utils.cpp_extension (ninja) into a cache directory keyed by a hash of every
source file under csrc/, the compiler flags and the torch/Python versions, so an edited kernel or another
machine's flags get their own build and a built one loads without a compiler. The cache is
`$XSIM_KERNEL_CACHE` if set, else `build/kernels/` of the source checkout (gitignored, removed by
`make clean`) when writable, else `~/.cache/xsim-ros/kernels`.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import platform
import shutil
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

CSRC = Path(__file__).parent / "csrc"
INCLUDE = CSRC / "include"


class KernelBuildError(RuntimeError):
    """An extension could not be built or loaded; str() is one line saying why."""


@dataclass(frozen=True)
class ExtensionSpec:
    """One extension: module name prefix, sources relative to csrc/, whether it needs CUDA, include directories
    (relative to csrc/) searched before the others."""

    prefix: str
    sources: tuple[str, ...]
    cuda: bool = False
    includes: tuple[str, ...] = ()


SPECS = {
    "cpu": ExtensionSpec("xsim_cpu", ("cpu/bindings.cpp", "cpu/rasterize_cpu.cpp", "cpu/project_cpu.cpp")),
    "cuda": ExtensionSpec("xsim_cuda", ("cuda/bindings.cpp", "cuda/rays.cu", "cuda/rasterize.cu", "cuda/binning.cu"),
                          cuda=True),
    # host emulation of the cuda module's API for tests on machines without a GPU (csrc/emu/bindings.cpp)
    "cuda_emulation": ExtensionSpec("xsim_emucuda", ("emu/bindings.cpp", "cpu/rasterize_cpu.cpp")),
    # the CUDA extension itself (csrc/cuda/*) compiled as C++ over a host simulation of the CUDA runtime and cub
    # (csrc/sim/): its kernels run on the CPU, slowly, for tests on machines without a GPU
    "cuda_simulation": ExtensionSpec("xsim_simcuda", ("sim/bindings.cpp", "sim/rays.cpp", "sim/binning.cpp",
                                                      "sim/rasterize.cpp"), includes=("sim/include",)),
}

_LOADED: dict[str, ModuleType] = {}


def cache_root() -> Path:
    """Directory holding the built extensions (see the module docstring)."""
    env = os.environ.get("XSIM_KERNEL_CACHE")
    if env:
        return Path(env).expanduser()
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "setup.py").exists() and os.access(checkout, os.W_OK):
        return checkout / "build" / "kernels"
    return Path.home() / ".cache" / "xsim-ros" / "kernels"


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def march_flag() -> list[str]:
    """A portable x86-64 micro-architecture level the host supports (v3: AVX2 + FMA, else v2), [] elsewhere."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return []
    flags = _cpu_flags()
    if {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"} <= flags:
        return ["-march=x86-64-v3"]
    if {"sse4_2", "popcnt", "ssse3", "cx16"} <= flags:
        return ["-march=x86-64-v2"]
    return []


def compile_flags(kind: str) -> dict[str, list[str]]:
    """extra_cflags / extra_cuda_cflags / extra_ldflags of an extension."""
    # -fno-trapping-math: branch-free selects in XS_SIMD loops may be if-converted (no FP exceptions are used);
    # -fno-math-errno: sqrt is one instruction, also in those loops (errno is never read)
    cflags = ["-O3", "-std=c++17", "-fopenmp", "-fno-trapping-math", "-fno-math-errno", *march_flag()]
    flags = {"extra_cflags": cflags, "extra_ldflags": ["-fopenmp"], "extra_cuda_cflags": []}
    if kind == "cuda_simulation":  # its cuda_runtime.h and cub/ stand in for the toolkit's
        flags["extra_cflags"] = ["-O2", "-std=c++17", "-DXS_CUDA_SIM"]
        flags["extra_ldflags"] = []
    if SPECS[kind].cuda:
        flags["extra_cuda_cflags"] = ["-O3", "-std=c++17", "-lineinfo"]
        flags["extra_cflags"] = ["-O3", "-std=c++17"]
        flags["extra_ldflags"] = []
    return flags


def _digest(kind: str) -> str:
    import torch

    h = hashlib.sha256()
    for path in sorted(CSRC.rglob("*")):
        if path.is_file() and path.suffix in (".h", ".hpp", ".cpp", ".cu", ".cuh"):
            h.update(str(path.relative_to(CSRC)).encode())
            h.update(path.read_bytes())
    h.update(repr(compile_flags(kind)).encode())
    h.update(f"{torch.__version__} {sys.version_info[:2]} {sysconfig.get_config_var('EXT_SUFFIX')}".encode())
    return h.hexdigest()[:12]


def module_name(kind: str) -> str:
    """Name of the built module for the current sources and flags (xsim_cpu_<hash>)."""
    kind = _resolved(kind)
    return f"{SPECS[kind].prefix}_{_digest(kind)}"


def built_library(kind: str) -> Path:
    """Path the extension's shared library has once built."""
    name = module_name(kind)
    return cache_root() / name / f"{name}.so"


def compiler() -> str | None:
    """The C++ compiler torch.utils.cpp_extension will use ($CXX or c++), None if not found."""
    return shutil.which(os.environ.get("CXX", "c++"))


def cuda_simulated() -> bool:
    """XSIM_CUDA_SIMULATION=1: the `cuda` extension is its host simulation (`cuda_simulation`: the CUDA kernels
    run on the CPU, slowly, on CPU tensors; for testing the kernels on a machine without a GPU)."""
    return os.environ.get("XSIM_CUDA_SIMULATION") == "1"


def _resolved(kind: str) -> str:
    return "cuda_simulation" if kind == "cuda" and cuda_simulated() else kind


def missing_prerequisite(kind: str) -> str | None:
    """Why the extension cannot be built here (one line), or None if it can (or is built already)."""
    import torch

    kind = _resolved(kind)
    if SPECS[kind].cuda:
        if torch.version.cuda is None:
            return f"torch {torch.__version__} is built without CUDA"
        if not torch.cuda.is_available():
            return "no CUDA device is visible to torch"
        from torch.utils import cpp_extension

        home = cpp_extension.CUDA_HOME
        if home is None or not (Path(home) / "bin" / "nvcc").exists():
            return "nvcc not found (set CUDA_HOME)"
        cpu = missing_prerequisite("cpu")  # the tile cones (once per sensor geometry) come from the CPU kernels
        if cpu is not None:
            return f"needs the cpu kernels: {cpu}"
    if kind in _LOADED or built_library(kind).exists():
        return None
    if compiler() is None:
        return f"no C++ compiler found ({os.environ.get('CXX', 'c++')}; install g++ or set CXX)"
    from torch.utils import cpp_extension

    if not cpp_extension.is_ninja_available():
        return "ninja not found (install ninja-build or pip install ninja)"
    return None


def _import(name: str, path: Path) -> ModuleType:
    loader = importlib.machinery.ExtensionFileLoader(name, str(path))
    spec = importlib.util.spec_from_file_location(name, str(path), loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def load(kind: str, verbose: bool = False) -> ModuleType:
    """The extension `kind` ('cpu' | 'cuda'), built on first use; KernelBuildError (one line) if impossible."""
    kind = _resolved(kind)
    if kind in _LOADED:
        return _LOADED[kind]
    if kind not in SPECS:
        raise KernelBuildError(f"unknown kernel extension {kind!r}")
    import torch  # noqa: F401  (libtorch must be loaded before the extension)

    reason = missing_prerequisite(kind)
    if reason is not None:
        raise KernelBuildError(f"{kind} kernels unavailable: {reason}")
    name = module_name(kind)
    library = built_library(kind)
    if not library.exists():
        library.parent.mkdir(parents=True, exist_ok=True)
        print(f"xsim: building the {kind} kernels (first use, about a minute) in {library.parent} ...",
              file=sys.stderr, flush=True)
        _build(kind, name, library.parent, verbose)
        print(f"xsim: {kind} kernels built", file=sys.stderr, flush=True)
        _remove_stale(kind, library.parent)
    try:
        module = _import(name, library)
    except ImportError as err:
        raise KernelBuildError(f"{kind} kernels in {library} do not load: {err}".replace("\n", " ")) from None
    _LOADED[kind] = module
    return module


STALE_AFTER_S = 600.0  # a build directory untouched for this long, and not locked, is no longer in use


def _remove_stale(kind: str, keep: Path, now: float | None = None) -> None:
    """Drop older builds of the same extension from the cache (best effort; a loaded one stays mapped). A build
    another process may still be running (torch's `lock` file present, or anything in it changed within
    STALE_AFTER_S) is left alone: two checkouts or source versions can share one cache."""
    import time

    now = time.time() if now is None else now
    for other in keep.parent.glob(f"{SPECS[kind].prefix}_*"):
        if other == keep or not other.is_dir() or (other / "lock").exists():
            continue
        try:
            newest = max([other.stat().st_mtime, *(p.stat().st_mtime for p in other.iterdir())])
        except OSError:
            continue
        if now - newest > STALE_AFTER_S:
            shutil.rmtree(other, ignore_errors=True)


def _build(kind: str, name: str, directory: Path, verbose: bool) -> None:
    from torch.utils import cpp_extension

    spec = SPECS[kind]
    log = directory / "build.log"
    try:
        cpp_extension.load(name=name, sources=[str(CSRC / s) for s in spec.sources],
                           extra_include_paths=[*(str(CSRC / d) for d in spec.includes), str(INCLUDE)],
                           build_directory=str(directory), verbose=verbose,
                           with_cuda=spec.cuda, **compile_flags(kind))
    except Exception as err:  # the compiler's output is in the message: keep it in a log, say one line
        text = str(err) or type(err).__name__
        log.write_text(text)
        lines = text.splitlines()
        first = next((ln for ln in lines if ": error:" in ln or ": fatal error:" in ln), lines[0] if lines else text)
        raise KernelBuildError(f"building the {kind} kernels failed: {first.strip()[:300]} (full log: {log})") \
            from None


def main(argv: list[str] | None = None) -> int:
    """`python -m xsim_render.kernels.build [cpu] [cuda]`: build ahead of time (default: cpu, and cuda where
    usable). Exit code 1 if a requested (or the cpu) extension cannot be built."""
    kinds = (argv if argv is not None else sys.argv[1:]) or ["cpu", "cuda?"]
    status = 0
    for kind in kinds:
        optional = kind.endswith("?")
        kind = kind.rstrip("?")
        reason = missing_prerequisite(kind)
        if reason is not None and optional:
            print(f"xsim kernels: {kind}: skipped ({reason})")
            continue
        try:
            load(kind)
            print(f"xsim kernels: {kind}: ready ({built_library(kind)})")
        except KernelBuildError as err:
            print(f"xsim kernels: {kind}: {err}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
