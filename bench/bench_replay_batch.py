"""Benchmark (issue 10 bar): a batch of 4 bag replays on a local Ray with 2 workers against the same 4 replays one
after the other.

    .venv/bin/python bench/bench_replay_batch.py [--bags 4] [--duration 3.0] [--workers 2]

The bags are the replay tests' recorded drive (test/_replay_bag.py: a wall of Gaussians and an actor box) with a
bench-sized rig of the same sensor names (camera 'front' 256 x 192, LiDAR 'top' 32 x 1024), each bag `--duration`
seconds (10 captures per sensor and second), replayed with a 1 m lateral offset. Sequential: `replay()` in this
process, bag after bag, torch with 1 thread (what each Ray task gets) and with `--workers` threads (what a plain
`xsim replay` gets on this machine). Ray: `xsim replay-batch`'s run_batch on a local Ray of `--workers` CPUs, 1 CPU
per task; its wall time includes starting and stopping Ray (also given apart). Every Ray output is checked equal
(message for message) to the sequential one. Writes bench/results/replay_batch.{csv,md,png}.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "test"))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")


def bench_rig():
    """The replay tests' rig at bench size: camera 'front' 256 x 192 (rolling shutter), LiDAR 'top' 32 x 1024."""
    from xsim_render.sensors.rig import CameraSpec, Extrinsics, LidarSpec, Rig, RollingShutter

    cam = CameraSpec(name="front", model="pinhole", width=256, height=192, fx=160, fy=160, cx=128, cy=96,
                     rolling_shutter=RollingShutter("top_to_bottom", 0.02),
                     extrinsics=Extrinsics((1.5, 0.0, 1.6), (0.5, -0.5, 0.5, -0.5)), rate_hz=10.0)
    lidar = LidarSpec(name="top", elevations=tuple(math.radians(-15 + i) for i in range(32)), columns=1024,
                      spin_rate_hz=10.0, seam_azimuth=math.pi, min_range=0.5, max_range=60.0,
                      extrinsics=Extrinsics((0.0, 0.0, 1.9), (1.0, 0, 0, 0)), rate_hz=10.0)
    return Rig([cam, lidar])


def main(argv: list[str] | None = None) -> int:
    import torch
    import yaml
    from _replay_bag import raw_messages, tiny_scene, write_bag

    from xsim_render.replay.batch import RayOptions, run_batch
    from xsim_render.replay.edits import Edits
    from xsim_render.replay.manifest import load_manifest
    from xsim_render.replay.rewrite import ReplayConfig, replay
    from xsim_render.scene.io import save_scene

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bags", type=int, default=4)
    ap.add_argument("--duration", type=float, default=3.0, help="seconds of drive per bag")
    ap.add_argument("--workers", type=int, default=2, help="CPUs of the local Ray (1 per task)")
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "replay_batch.csv")
    args = ap.parse_args(argv)

    rows: list[dict] = []
    default_threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        save_scene(tiny_scene(), d / "scene")
        bench_rig().save(d / "rig.yaml")
        for i in range(args.bags):
            write_bag(d / f"bag_{i}", duration=args.duration)
        edits = Edits(ego_lateral_offset=1.0, ramp=0.0)

        def sequential(threads: int, tag: str) -> float:
            torch.set_num_threads(threads)
            (d / tag).mkdir()
            start = time.perf_counter()
            for i in range(args.bags):
                replay(ReplayConfig(d / f"bag_{i}", str(d / "scene"), str(d / "rig.yaml"), d / tag / f"bag_{i}",
                                    edits, backend=args.backend, progress=False, contact_rows=0))
            return time.perf_counter() - start

        loads = {"seq1": os.getloadavg()[0]}
        seq1 = sequential(1, "seq1")
        loads["seqn"] = os.getloadavg()[0]
        seqn = sequential(args.workers, f"seq{args.workers}")
        loads["ray"] = os.getloadavg()[0]
        torch.set_num_threads(default_threads)
        (d / "ray").mkdir()
        manifest = d / "batch.yaml"
        manifest.write_text(yaml.safe_dump({
            "defaults": {"scene": "scene", "rig": "rig.yaml", "backend": args.backend, "cpus": 1, "contact_rows": 0,
                         "edits": {"ego_lateral_offset": 1.0, "ramp": 0.0}},
            "jobs": [{"in": f"bag_{i}", "out": f"ray/bag_{i}"} for i in range(args.bags)]}))
        report = run_batch(load_manifest(manifest), RayOptions(num_cpus=args.workers, progress=False))
        assert report.failed == 0, [r.error for r in report.results]
        for i in range(args.bags):
            assert raw_messages(d / "ray" / f"bag_{i}") == raw_messages(d / "seq1" / f"bag_{i}"), f"bag {i} differs"
        captures = sum(r.captures for r in report.results)
        task_s = sum(r.wall_s for r in report.results)
    load = os.getloadavg()[0]
    common = {"bags": args.bags, "duration_s": args.duration, "captures": captures, "workers": args.workers,
              "machine": platform.machine(), "cores": os.cpu_count()}
    rows.append({"run": "sequential, 1 thread", "wall_s": round(seq1, 2), **common,
                 "load_1min_at_start": round(loads["seq1"], 2)})
    rows.append({"run": f"sequential, {args.workers} threads", "wall_s": round(seqn, 2), **common,
                 "load_1min_at_start": round(loads["seqn"], 2)})
    rows.append({"run": f"ray, {args.workers} workers (with start/stop)", "wall_s": round(report.wall_s, 2),
                 **common, "load_1min_at_start": round(loads["ray"], 2)})
    rows.append({"run": f"ray, {args.workers} workers (without start)",
                 "wall_s": round(report.wall_s - report.ray_start_s, 2), **common,
                 "load_1min_at_start": round(loads["ray"], 2)})
    for r in rows:
        r["speedup_vs_seq1"] = round(seq1 / r["wall_s"], 2)
        r["speedup_vs_seqN"] = round(seqn / r["wall_s"], 2)

    title = (f"{args.bags} bags x {args.duration:g} s ({captures} captures), local Ray {args.workers} workers vs "
             f"sequential; {os.cpu_count()} cores, load at the end {load:.1f}")
    md = [f"# Batch replay: {title}", "",
          "| run | wall s | speed-up vs sequential 1 thread | vs sequential N threads | 1-min load at start |",
          "|---|---:|---:|---:|---:|"]
    md += [f"| {r['run']} | {r['wall_s']:.1f} | {r['speedup_vs_seq1']:.2f} | {r['speedup_vs_seqN']:.2f} | "
           f"{r['load_1min_at_start']:.1f} |" for r in rows]
    md += ["", f"Ray start: {report.ray_start_s:.1f} s; sum of the tasks' own wall times: {task_s:.1f} s. Every Ray "
           f"output equals the sequential one message for message.", ""]
    print("\n".join(md))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    args.out.with_suffix(".md").write_text("\n".join(md))
    png = args.out.with_suffix(".png")
    _plot(rows, png, title)
    print(f"wrote {args.out}, {args.out.with_suffix('.md')} and {png}")
    return 0


def _plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 2.8))
    colors = ["tab:gray", "tab:gray", "tab:blue", "tab:cyan"]
    ax.barh([r["run"] for r in rows], [r["wall_s"] for r in rows], color=colors[: len(rows)])
    for i, r in enumerate(rows):
        ax.text(r["wall_s"], i, f" {r['wall_s']:.1f} s (x{r['speedup_vs_seq1']:.2f})", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("wall seconds")
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
