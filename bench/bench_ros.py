"""ROS 2 graph benchmark: the demo graph (scenario_player + sensor_sim on the demo world, launch/xsim_sim.launch.xml
through the pip-only launcher) in `lockstep` and in `timer` (sim time at real-time factor 1), with the fastest
backend available (`auto`).

Per mode and sensor: achieved publish rate (published / wall seconds of the run), render time (render + packing)
mean, end-to-end latency (state message received -> sensor message published) mean and p95, published, dropped and
stale captures. Table on stdout, bench/results/ros.csv and ros.png. Not a test; run it on a quiet machine:

    .venv/bin/python bench/bench_ros.py [--lockstep-duration 0.5] [--timer-duration 3] [--out demo_out]

It needs the demo scene (demo_out/scene, made by `make demo` or built here on first use).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def _scene(out: Path) -> tuple[Path, Path, Path]:
    from xsim_render.demo import DEMO_DURATION, DEMO_PRESET, DEMO_SEED, prepare
    from xsim_render.synth.world import generate_world, save_world

    out.mkdir(parents=True, exist_ok=True)
    world = generate_world(DEMO_PRESET, seed=DEMO_SEED, duration=DEMO_DURATION)
    scene, rig = prepare(out, world)
    save_world(world, out / "world")
    return scene, rig, out / "world"


def run_mode(mode: str, duration: float, scene: Path, rig: Path, world: Path) -> list[dict]:
    """One graph run; returns one row per sensor."""
    from xsim_ros.launch_runner import LaunchRun

    args = {"scene": str(scene), "rig": str(rig), "scenario": str(world), "trigger": mode}
    launch = LaunchRun(ROOT / "launch" / "xsim_sim.launch.xml", args)
    sim = launch.sensor_sims()[0]
    for stats in sim.stats.values():
        stats.window = math.inf  # keep every publish of the run
    start = time.monotonic()
    try:
        launch.spin(duration)
    finally:
        wall = time.monotonic() - start
        rows = []
        for name, stats in sim.stats.items():
            events = list(stats._events)
            render = np.array([e[1] for e in events]) * 1e3
            latency = np.array([e[2] for e in events if math.isfinite(e[2])]) * 1e3
            rows.append({"mode": mode, "sensor": name, "sim_s": duration, "wall_s": round(wall, 1),
                         "published": stats.published, "rate_hz": round(stats.published / wall, 3),
                         "render_ms_mean": round(float(render.mean()), 1) if render.size else math.nan,
                         "latency_ms_mean": round(float(latency.mean()), 1) if latency.size else math.nan,
                         "latency_ms_p95": round(float(np.percentile(latency, 95)), 1) if latency.size else math.nan,
                         "dropped": sum(stats.dropped.values()), "stale": stats.stale, "backend": sim.backend_in_use})
        launch.shutdown()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lockstep-duration", type=float, default=0.5, help="sim seconds in lockstep")
    parser.add_argument("--timer-duration", type=float, default=3.0, help="sim seconds in timer mode (real time)")
    parser.add_argument("--out", default=str(ROOT / "demo_out"), help="demo directory (scene, rig, world)")
    args = parser.parse_args()
    scene, rig, world = _scene(Path(args.out))
    rows = run_mode("lockstep", args.lockstep_duration, scene, rig, world)
    rows += run_mode("timer", args.timer_duration, scene, rig, world)
    RESULTS.mkdir(parents=True, exist_ok=True)
    keys = list(rows[0])
    with open(RESULTS / "ros.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    print(" | ".join(keys))
    for r in rows:
        print(" | ".join(str(r[k]) for k in keys))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    labels = [f"{r['mode']}\n{r['sensor']}" for r in rows]
    axes[0].bar(labels, [r["rate_hz"] for r in rows])
    axes[0].set_title("achieved publish rate (Hz, wall)")
    axes[1].bar(labels, [r["render_ms_mean"] for r in rows])
    axes[1].set_title("render time mean (ms)")
    x = np.arange(len(rows))
    axes[2].bar(x - 0.2, [r["latency_ms_mean"] for r in rows], 0.4, label="mean")
    axes[2].bar(x + 0.2, [r["latency_ms_p95"] for r in rows], 0.4, label="p95")
    axes[2].set_xticks(x, labels)
    axes[2].set_title("end-to-end latency (ms)")
    axes[2].legend()
    fig.suptitle(f"ROS graph on the demo world, backend {rows[0]['backend']}; dropped: " +
                 ", ".join(f"{r['mode']}/{r['sensor']} {r['dropped']}" for r in rows))
    fig.tight_layout()
    fig.savefig(RESULTS / "ros.png")
    print(f"wrote {RESULTS / 'ros.csv'} and {RESULTS / 'ros.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
