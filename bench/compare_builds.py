"""Render time of this checkout's kernels against another git revision's, run alternately (not a test).

On a shared machine timings drift by tens of percent within minutes, so two builds are only comparable side by
side. Each round runs one fresh process per build (this checkout, and REV checked out into a temporary git
worktree with its own kernel cache): the bench_kernels street scene, one warm-up render, then --renders timed
renders of the chosen sensor on the cpu backend; the round's figure is the fastest. Prints every round, the
ratio of the two and its median, the same for the process CPU time (all threads; less sensitive to other work
on the machine than the wall time), and writes bench/results/compare_builds.csv. Both builds render the same scene
and sensor (from this checkout's bench_kernels.py).
Usage: python bench/compare_builds.py REV [--rounds 6] [--renders 6] [--sensor lidar|camera] [--gaussians 200000]
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"


def one(gaussians: int, sensor_name: str, renders: int) -> tuple[float, float]:
    """Fastest of `renders` warm cpu renders with the xsim_render on sys.path: the least wall time (s) and the
    least process CPU time (s, all threads: less sensitive to other work on the machine)."""
    import torch

    sys.path.insert(0, str(HERE))
    from bench_kernels import load_bench_scene, rig

    from xsim_render.motion import RigidMotion
    from xsim_render.render import render_camera, render_lidar

    scene = load_bench_scene("street", gaussians)
    sensor = rig().sensor(sensor_name)
    render = render_lidar if sensor_name == "lidar" else render_camera
    ego = RigidMotion.from_values((0, 0, 0), (1, 0, 0, 0), (10.0, 0, 0), (0, 0, 0.1))
    best, best_cpu = float("inf"), float("inf")
    with torch.no_grad():
        render(scene, sensor, ego, 0.0, backend="cpu")
        for _ in range(renders):
            start, start_cpu = time.perf_counter(), time.process_time()
            render(scene, sensor, ego, 0.0, backend="cpu")
            best = min(best, time.perf_counter() - start)
            best_cpu = min(best_cpu, time.process_time() - start_cpu)
    return best, best_cpu


def run_build(source: Path, cache: Path | None, args: argparse.Namespace) -> tuple[float, float]:
    env = dict(os.environ, PYTHONPATH=str(source), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    if cache is not None:
        env["XSIM_KERNEL_CACHE"] = str(cache)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", "--gaussians", str(args.gaussians),
           "--sensor", args.sensor, "--renders", str(args.renders)]
    done = subprocess.run(cmd, cwd=source, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"compare_builds: {source}: render failed:\n{done.stderr.strip()[-2000:]}")
    wall, cpu = done.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rev", nargs="?", help="git revision to compare this checkout against")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--renders", type=int, default=6)
    parser.add_argument("--sensor", choices=("lidar", "camera"), default="lidar")
    parser.add_argument("--gaussians", type=int, default=200_000)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        wall, cpu = one(args.gaussians, args.sensor, args.renders)
        print(f"{wall:.6f} {cpu:.6f}")
        return 0
    if not args.rev:
        parser.error("REV is required")
    rows = []
    with tempfile.TemporaryDirectory(prefix="xsim-compare-") as tmp:
        other = Path(tmp) / "worktree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(other), args.rev], check=True)
        try:
            for k in range(args.rounds):
                before, before_cpu = run_build(other, Path(tmp) / "kernels", args)
                after, after_cpu = run_build(ROOT, None, args)
                rows.append({"round": k + 1, "rev": args.rev, "rev_s": before, "checkout_s": after,
                             "ratio": after / before, "rev_cpu_s": before_cpu, "checkout_cpu_s": after_cpu,
                             "cpu_ratio": after_cpu / before_cpu})
                print(f"round {k + 1}: {args.rev} {before:.4f} s, this checkout {after:.4f} s, "
                      f"ratio {after / before:.3f}; cpu time {before_cpu:.4f} s, {after_cpu:.4f} s, "
                      f"ratio {after_cpu / before_cpu:.3f}", flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(other)], check=False)
    ratios = [r["ratio"] for r in rows]
    print(f"{args.sensor}, {args.gaussians} Gaussians: median ratio {statistics.median(ratios):.3f} "
          f"(this checkout / {args.rev}); best {min(r['checkout_s'] for r in rows):.4f} s against "
          f"{min(r['rev_s'] for r in rows):.4f} s; median cpu time ratio "
          f"{statistics.median(r['cpu_ratio'] for r in rows):.3f}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "compare_builds.csv"
    tmp_out = out.with_suffix(".csv.tmp")
    with tmp_out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["round"])
        writer.writeheader()
        writer.writerows(rows)
    tmp_out.replace(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
