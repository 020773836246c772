"""Instructions of the cpu LiDAR projection + tiling stage on the bench_kernels street scene (not a test).

Timings on a shared machine drift by tens of percent within minutes; instruction counts do not. This captures the
arguments the cpu backend passes to its projection kernel for one street LiDAR sweep (float64 copies, in a
temporary directory), builds bench/projection_counts.cpp against this checkout's kernel sources with the cpu
build's flags, and runs it once, one thread, under `valgrind --tool=callgrind` (when valgrind is installed; else
only timed). Prints the instruction count and the pair count with a hash of the (tile, Gaussian) pairs, so that
two checkouts can be compared (same hash: the same tile lists). --exact-ut solves every sigma point
(ut_bound = False).
Usage: python bench/projection_counts.py [--gaussians 200000] [--exact-ut] [--keep DIR]
"""

from __future__ import annotations

import argparse
import ctypes
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CSRC = ROOT / "xsim_render" / "kernels" / "csrc"


def capture(gaussians: int, out: Path) -> None:
    """Save the projection kernel's arguments of one street LiDAR sweep under `out`."""
    import numpy as np
    import torch

    sys.path.insert(0, str(HERE))
    from bench_kernels import load_bench_scene, rig

    from xsim_render.kernels import build
    from xsim_render.motion import RigidMotion
    from xsim_render.render import render_lidar

    ext = build.load("cpu")

    class Saver:
        def __getattr__(self, name):
            if name != "project":
                return getattr(ext, name)

            def project(a):
                n, nb, nt = a["n"], a["n_bodies"], a["num_tiles"]
                # a float32 scene's Gaussians (means32, ...) are saved widened to float64: the same values
                suffix, precision = ("32", "f4") if "means32" in a else ("", "f8")
                arrays = {"means": (3 * n, precision), "rotations": (9 * n, precision),
                          "scales": (3 * n, precision), "sigma": (n, precision), "frame": (n, "i8"),
                          "bodies": (33 * nb, "f8"), "sensor_motion": (33, "f8"), "tile_axis": (3 * nt, "f8"),
                          "tile_half": (nt, "f8"), "tile_has_rays": (nt, "u1"), "elevations_sorted": (a["beams"], "f8")}
                gaussian = {"means", "rotations", "scales", "sigma"}
                for key, (count, dtype) in arrays.items():
                    size = np.dtype(dtype).itemsize * count
                    data = bytes((ctypes.c_char * size).from_address(a[key + suffix if key in gaussian else key]))
                    values = np.frombuffer(data, dtype=dtype)
                    (values.astype(np.float64) if key in gaussian else values).tofile(out / f"{key}.bin")
                with (out / "scalars.txt").open("w") as f:
                    for key, value in a.items():
                        if key.removesuffix("32") not in arrays and isinstance(value, (bool, int, float)):
                            f.write(f"{key} {float(value)!r}\n")
                return ext.project(a)
            return project

    loader = build.load
    build.load = lambda kind: Saver() if kind == "cpu" else loader(kind)
    try:
        scene = load_bench_scene("street", gaussians)
        ego = RigidMotion.from_values((0, 0, 0), (1, 0, 0, 0), (10.0, 0, 0), (0, 0, 0.1))
        with torch.no_grad():
            render_lidar(scene, rig().sensor("lidar"), ego, 0.0, backend="cpu")
    finally:
        build.load = loader
    if not (out / "scalars.txt").exists():
        sys.exit("projection_counts: the cpu projection kernel was not called")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gaussians", type=int, default=200_000)
    parser.add_argument("--exact-ut", action="store_true", help="solve every sigma point (ut_bound = False)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the captured arguments and binary here")
    args = parser.parse_args()
    from xsim_render.kernels import build

    work = args.keep or Path(tempfile.mkdtemp(prefix="xsim-projection-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        capture(args.gaussians, work)
        binary = work / "projection_counts"
        flags = build.compile_flags("cpu")["extra_cflags"]
        subprocess.run([build.compiler() or "c++", *flags, "-g", f"-I{CSRC / 'cpu'}", f"-I{CSRC / 'include'}",
                        "-o", str(binary), str(HERE / "projection_counts.cpp"), str(CSRC / "cpu" / "project_cpu.cpp")],
                       check=True)
        env = dict(os.environ, XSIM_EXACT_UT="1" if args.exact_ut else "0")
        timed = subprocess.run([str(binary), str(work), "5", "1"], env=env, capture_output=True, text=True,
                               check=True)
        print(f"one thread, best of 5: {timed.stdout.strip()}")
        if shutil.which("valgrind") is None:
            print("valgrind not installed: no instruction count")
            return 0
        counted = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={work / 'callgrind.out'}",
                                  str(binary), str(work), "1", "1"], env=env, capture_output=True, text=True,
                                 check=True)
        refs = re.search(r"I\s+refs:\s+([\d,]+)", counted.stderr)
        total = int(refs.group(1).replace(",", "")) if refs else math.nan
        print(f"callgrind: {total / 1e6:.0f}M instructions in all (the driver's file reading included); "
              f"{counted.stdout.strip()}")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
