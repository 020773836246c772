"""Throughput of the rendering backends (reference, cpu, cuda) on street scenes (not a test).

Scenes: bench_reference.street_scene with 100k / 200k / 1M Gaussians (and, with --twin DIR, a native scene such
as the synthetic world's Gaussian twin). Sensors: a 1920x1080 rolling-shutter pinhole camera (30 ms readout) and
a 128 x 2048 LiDAR, ego at 10 m/s yawing 0.1 rad/s, float32. Every (backend, scene, sensor) runs in its own
process (clean peak memory): one warm-up render, then --repeats timed renders through the public API
(render_camera / render_lidar); the best wall time counts, with the process CPU time, the time per stage (rays,
Gaussian frames, SH colours, projection + tiling, rasterization, rest), the minor page faults it took (CSV
column page_faults: buffers mapped afresh by the allocator), the median wall time and the mean
page faults of all the warm renders (median_seconds, mean_page_faults) and the peak resident memory (and
GPU memory for cuda). The reference is slow at these sizes: it runs once per configuration, without warm-up, up to
--reference-max Gaussians; the speed-up column divides its time by each backend's on the same scene and sensor.

cuda: the scene is put on the GPU before timing (kernels.device.scene_to_device), so the outputs stay there, as
they would for a GPU-resident consumer (--host-scene times a CPU scene instead: cached device copy, outputs
copied back). Its stages run asynchronously, so the wall times come from unwrapped renders (synchronised at the
end) and the per-stage times from one more render with a device synchronisation after every stage.

Writes bench/results/kernels.csv, kernels.md (table) and kernels.png (throughput against Gaussians), updated
after every configuration (a run cut short keeps what it measured); --config-timeout bounds each one.
Usage: python bench/bench_kernels.py [--gaussians 100000 200000 1000000] [--backends cpu cuda reference]
       [--sensors camera lidar] [--repeats 3] [--reference-max 200000] [--cpu-max N] [--twin DIR] [--threads N]
       [--config-timeout S] [--host-scene]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
STAGES = ("rays", "frames", "colors", "tiles", "raster")


def rig():
    from xsim_render.sensors.rig import rig_from_dict

    return rig_from_dict({"sensors": [
        {"name": "camera", "type": "camera", "model": "pinhole", "width": 1920, "height": 1080, "fx": 1400.0,
         "fy": 1400.0, "cx": 960.0, "cy": 540.0,
         "rolling_shutter": {"direction": "top_to_bottom", "readout_time": 0.03},
         "extrinsics": {"translation": [1.5, 0.0, 1.6], "rotation_wxyz": [0.5, -0.5, 0.5, -0.5]}},
        {"name": "lidar", "type": "lidar", "columns": 2048, "spin_rate_hz": 10.0,
         "elevations": [math.radians(-25 + 40 * (i / 127) ** 1.3) for i in range(128)],
         "extrinsics": {"translation": [0.0, 0.0, 1.9]}}]})


def load_bench_scene(name: str, n: int):
    import torch

    if name == "street":
        sys.path.insert(0, str(HERE))
        from bench_reference import street_scene

        return street_scene(n)
    from xsim_render.scene.io import load_scene

    return load_scene(name).to(torch.float32)


def gpu_sync() -> None:
    """Wait for the GPU (nothing to wait for where the cuda backend computes on the CPU: its host simulation)."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


@contextlib.contextmanager
def timed_stages(times: dict[str, float], sync: bool = False):
    """Accumulate wall time per stage by wrapping render.py's stage functions (backends.stages and the shared
    Python stages); with sync the GPU is synchronised around every stage (asynchronous cuda stages)."""
    import xsim_render.render as r
    from xsim_render.backends import Stages

    def wrap(fn, stage):
        def inner(*a, **k):
            if sync:
                gpu_sync()
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                if sync:
                    gpu_sync()
                times[stage] = times.get(stage, 0.0) + time.perf_counter() - t
        return inner

    names = {"gaussian_frames": "frames", "gaussian_colors": "colors", "gaussian_colors_gathered": "colors"}
    saved = {k: getattr(r, k) for k in names}
    saved["stages"] = r.stages

    def timed(name):
        st = saved["stages"](name)
        return Stages(wrap(st.rays, "rays"), wrap(st.tiles, "tiles"), wrap(st.rasterize, "raster"), st.returns)

    try:
        for k, stage in names.items():
            setattr(r, k, wrap(saved[k], stage))
        r.stages = timed
        yield
    finally:
        for k, v in saved.items():
            setattr(r, k, v)


def gpu_name() -> str:
    import torch

    from xsim_render.kernels.build import cuda_simulated

    if cuda_simulated():
        return ", cuda kernels simulated on the CPU (XSIM_CUDA_SIMULATION=1: timings mean nothing)"
    return f", {torch.cuda.get_device_name(0)}"


def run_one(cfg: dict) -> dict:
    """One (backend, scene, sensor) configuration, in this process."""
    import torch

    from xsim_render.motion import RigidMotion
    from xsim_render.render import render_camera, render_lidar

    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    scene = load_bench_scene(cfg["scene"], cfg["gaussians"])
    cuda = cfg["backend"] == "cuda"
    if cuda and not cfg.get("host_scene"):
        from xsim_render.backends import compute_device
        from xsim_render.kernels.device import scene_to_device

        scene = scene_to_device(scene, compute_device("cuda"))
    sensor = rig().sensor(cfg["sensor"])
    ego = RigidMotion.from_values((0, 0, 0), (1, 0, 0, 0), (10.0, 0, 0), (0, 0, 0.1))
    render = render_camera if sensor.type == "camera" else render_lidar
    rays = sensor.width * sensor.height if sensor.type == "camera" else sensor.beams * sensor.columns
    load = os.getloadavg()[0]
    best = None
    walls, all_faults = [], []  # every warm render's wall time and page faults
    with torch.no_grad():
        for i in range(cfg["repeats"] + (0 if cfg["backend"] == "reference" else 1)):
            times: dict[str, float] = {}
            if cuda:
                gpu_sync()
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            wall, cpu = time.perf_counter(), time.process_time()
            with contextlib.nullcontext() if cuda else timed_stages(times):
                out = render(scene, sensor, ego, 0.0, backend=cfg["backend"])
            if cuda:
                gpu_sync()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
            warm = cfg["backend"] == "reference" or i > 0
            if warm:
                walls.append(wall)
                all_faults.append(faults)
            if warm and (best is None or wall < best["seconds"]):
                best = {"seconds": wall, "cpu_seconds": cpu, **{s: times.get(s, 0.0) for s in STAGES},
                        "page_faults": faults}
        if cuda:  # per-stage times: one more render, synchronised around every stage
            times = {}
            with timed_stages(times, sync=True):
                render(scene, sensor, ego, 0.0, backend=cfg["backend"])
            best.update({s: times.get(s, 0.0) for s in STAGES})
    best["other"] = max(0.0, best["seconds"] - sum(best[s] for s in STAGES))
    faults = best.pop("page_faults")
    row = {**{k: cfg[k] for k in ("backend", "scene", "sensor")}, "gaussians": len(scene), "ray_count": rays,
           **{k: round(v, 4) for k, v in best.items()}, "mrays_per_s": round(rays / best["seconds"] / 1e6, 4),
           "alpha_mean": round(float(out["alpha"].float().mean()), 4),
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), "page_faults": faults,
           "median_seconds": round(statistics.median(walls), 4),
           "mean_page_faults": round(sum(all_faults) / len(all_faults)),
           "peak_gpu_mb": "", "threads": torch.get_num_threads(), "load_before": round(load, 2),
           "scene_device": str(scene.means.device.type),
           "machine": f"{platform.machine()} {os.cpu_count()} cpus" + (gpu_name() if cuda else "")}
    if cuda:
        from xsim_render.kernels import build

        pool = build.load("cuda").pool_peak_bytes()  # kernel temporaries (stream-ordered pool)
        held = torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0
        row["peak_gpu_mb"] = round((pool + held) / 2**20, 1)
    return row


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, sensor, unit in ((axes[0], "camera", "MP/s (1920x1080)"), (axes[1], "lidar", "MR/s (128x2048)")):
        for backend in sorted({r["backend"] for r in rows}):
            pts = sorted((r["gaussians"], r["mrays_per_s"]) for r in rows
                         if r["sensor"] == sensor and r["backend"] == backend and r["scene"] == "street")
            if pts:
                ax.plot(*zip(*pts), marker="o", label=backend)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("Gaussians (street scene)")
        ax.set_ylabel(unit)
        ax.set_title(sensor)
        ax.grid(True, which="both", alpha=0.3)
        if ax.lines:
            ax.legend()
    fig.tight_layout()
    fig.savefig(path)


def write_results(rows: list[dict], prefix: str, quiet: bool = False) -> None:
    for base_name in ("reference", "cpu"):
        base = {(r["scene"], r["gaussians"], r["sensor"]): r["seconds"] for r in rows if r["backend"] == base_name}
        for r in rows:
            b = base.get((r["scene"], r["gaussians"], r["sensor"]))
            r[f"speedup_vs_{base_name}"] = round(b / r["seconds"], 1) if b else ""
    RESULTS.mkdir(exist_ok=True)
    fields = ["backend", "scene", "gaussians", "sensor", "ray_count", "seconds", "mrays_per_s", "speedup_vs_reference",
              "speedup_vs_cpu", "cpu_seconds", *STAGES, "other", "peak_rss_mb", "peak_gpu_mb", "alpha_mean", "threads",
              "load_before", "scene_device", "machine", "page_faults", "median_seconds", "mean_page_faults"]
    tmp = RESULTS / f".{prefix}.csv.tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, RESULTS / f"{prefix}.csv")
    head = ("| backend | scene | Gaussians | sensor | s | M rays/s | x ref | x cpu | CPU s | rays | frames | colors | "
            "proj+tiles | raster | other | peak RSS MB | peak GPU MB | load |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lines.append("| " + " | ".join(str(r[k]) for k in (
            "backend", "scene", "gaussians", "sensor", "seconds", "mrays_per_s", "speedup_vs_reference",
            "speedup_vs_cpu", "cpu_seconds", *STAGES, "other", "peak_rss_mb", "peak_gpu_mb", "load_before")) + " |")
    (RESULTS / f"{prefix}.md").write_text("\n".join(lines) + "\n")
    if not quiet:
        print("\n".join(lines))
    plot(rows, RESULTS / f"{prefix}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gaussians", type=int, nargs="+", default=[100_000, 200_000, 1_000_000])
    parser.add_argument("--backends", nargs="+", default=None, help="default: every usable one, and reference")
    parser.add_argument("--sensors", nargs="+", default=["camera", "lidar"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference-max", type=int, default=200_000)
    parser.add_argument("--cpu-max", type=int, default=10**9, help="largest scene the cpu backend runs on")
    parser.add_argument("--twin", default=None, help="also benchmark this native scene directory")
    parser.add_argument("--threads", type=int, default=0, help="torch / OpenMP threads (default: torch's)")
    parser.add_argument("--prefix", default="kernels", help="results file name prefix")
    parser.add_argument("--config-timeout", type=float, default=None, help="seconds allowed per configuration")
    parser.add_argument("--deadline", type=float, default=None, help="seconds for the whole run (configurations "
                        "are cut to what is left, and skipped once it is spent)")
    parser.add_argument("--sizes", nargs="+", default=[], metavar="BACKEND=N,N",
                        help="run BACKEND only on these scene sizes (e.g. cpu=200000 reference=100000)")
    parser.add_argument("--host-scene", action="store_true", help="cuda: time a CPU scene (outputs copied back)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print("RESULT " + json.dumps(run_one(json.loads(args.one))), flush=True)
        return
    from xsim_render import backends

    usable = [k for k, v in backends.available_backends(build=True).items() if v is None]
    chosen = args.backends or [b for b in ("cuda", "cpu", "reference") if b in usable]
    scenes = [("street", n) for n in args.gaussians] + ([(args.twin, 0)] if args.twin else [])
    sizes = {k: {int(v) for v in vals.split(",") if v} for k, vals in (item.split("=", 1) for item in args.sizes)}
    start = time.perf_counter()
    rows = []
    for backend in chosen:  # backends in the order given: the important figures first
        for scene, n in scenes:
            for sensor in args.sensors:
                if (backend == "reference" and n > args.reference_max) or (backend == "cpu" and n > args.cpu_max):
                    continue
                if backend in sizes and scene == "street" and n not in sizes[backend]:
                    continue
                limit = args.config_timeout
                if args.deadline is not None:
                    left = args.deadline - (time.perf_counter() - start)
                    if left < 5:
                        print(f"== {backend} {scene} {n} {sensor}: skipped, deadline reached", flush=True)
                        continue
                    limit = left if limit is None else min(limit, left)
                cfg = {"backend": backend, "scene": scene, "gaussians": n, "sensor": sensor,
                       "repeats": 1 if backend == "reference" else args.repeats, "threads": args.threads,
                       "host_scene": args.host_scene}
                print(f"== {backend} {scene} {n} {sensor}", flush=True)
                try:
                    proc = subprocess.run([sys.executable, __file__, "--one", json.dumps(cfg)], capture_output=True,
                                          text=True, cwd=HERE.parent, timeout=limit)
                except subprocess.TimeoutExpired:
                    print(f"   skipped: over {limit:.0f} s", flush=True)
                    continue
                result = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
                if proc.returncode != 0 or not result:
                    print(f"   failed: {proc.stderr.strip().splitlines()[-1:]}", flush=True)
                    continue
                row = json.loads(result[0][7:])
                rows.append(row)
                print(f"   {row['seconds']} s, {row['mrays_per_s']} M rays/s, peak {row['peak_rss_mb']} MB",
                      flush=True)
                write_results(rows, args.prefix, quiet=True)
    if rows:
        write_results(rows, args.prefix)


if __name__ == "__main__":
    main()
