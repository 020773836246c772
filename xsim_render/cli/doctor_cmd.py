"""`xsim doctor`: which rendering backends work here, and why the others don't."""

from __future__ import annotations

import argparse
import platform

import torch


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("doctor", help="list the rendering backends that work here and why others don't",
                              description="Check every rendering backend: builds the fast kernels if needed "
                                          "(unless --no-build), renders a tiny scene with each usable backend and "
                                          "compares it with the reference. Exit code 0; 1 if a backend that "
                                          "loads disagrees with the reference.")
    p.add_argument("--no-build", action="store_true", help="only check prerequisites; build nothing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import backends
    from ..kernels import build
    from ..kernels.selfcheck import self_check

    print(f"xsim doctor: torch {torch.__version__}, {platform.machine()}, {torch.get_num_threads()} threads, "
          f"kernel cache {build.cache_root()}")
    status = backends.available_backends(build=not args.no_build)
    details = {
        "reference": "pure PyTorch (the specification)",
        "cpu": f"C++/OpenMP kernels, {' '.join(build.march_flag()) or 'generic'}",
        "cuda": "CUDA kernels simulated on the CPU (XSIM_CUDA_SIMULATION=1: for tests, slow)"
        if build.cuda_simulated()
        else "CUDA kernels" + (f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""),
    }
    bad = 0
    for name in ("reference", "cpu", "cuda"):
        reason = status[name]
        if reason is not None:
            print(f"  {name:<10} unavailable  {reason}")
            continue
        line = details[name]
        if name != "reference" and not args.no_build:
            diff = self_check(name)
            ok = diff < 1e-9
            bad += not ok
            line += f"; tiny render vs reference: max difference {diff:.1e} ({'ok' if ok else 'MISMATCH'})"
        elif name != "reference":
            line += " (not built yet: builds on first use)" if not build.built_library(name).exists() else ""
        print(f"  {name:<10} works        {line}")
    print(f"  {'auto':<10} ->           {backends.resolve_backend('auto') if not args.no_build else _auto(status)}")
    return 1 if bad else 0


def _auto(status: dict[str, str | None]) -> str:
    from ..backends import auto_order

    return next(k for k in (*auto_order(), "reference") if status[k] is None)
