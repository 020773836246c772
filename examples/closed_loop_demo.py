"""Closed-loop demo (`make closed-loop-demo`): the lane keeper of examples/lane_keeping.py drives the ego along the
main road of the synthetic world, inside its Gaussian twin, in lockstep, from the LiDAR alone.

Steps: builds the world (`small` preset, seed 0, a DURATION-second drive) and its Gaussian twin (cached in OUT/ by a
fingerprint of the world), then runs `xsim launch launch/xsim_closed_loop.launch.xml ... --record OUT/bag`
(scenario_player: actors + /clock; ego_model: the kinematic bicycle, started from the world's ego start moved
`--lateral-offset` m to the left and turned `--yaw-offset` rad; sensor_sim: the small LiDAR of
examples/lane_keeping_rig.yaml) with the planner as its own process, and afterwards reads the bag: the driven path
over the world's overview map (OUT/closed_loop_map.png), the lateral error from the lane centre against time
(OUT/lateral_error.png) and the figures in OUT/summary.json (also printed).

The lane: the world's ego starts in the right-hand lane of the main road (along +x, centre y = -LANE_WIDTH / 2);
the lane keeper follows it straight on through the T junction (the world's own drive turns left there). Lateral
error = y of base_link (rear axle centre) - lane centre y, metres, world frame.

    .venv/bin/python examples/closed_loop_demo.py [--out closed_loop_out] [--duration 15] [--speed 8]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PRESET, SEED = "small", 0


def _world_and_twin(out: Path, duration: float):
    """The world (saved to OUT/world) and its twin (OUT/scene, rebuilt only when the world changed)."""
    from xsim_render.io_utils import atomic_write_text
    from xsim_render.scene.io import save_scene
    from xsim_render.synth.twin import world_to_gaussians
    from xsim_render.synth.world import generate_world, save_world

    world = generate_world(PRESET, seed=SEED, duration=duration)
    h = hashlib.sha1()
    for array in (world.static_mesh.vertices, world.static_mesh.faces, world.static_face_material):
        h.update(np.ascontiguousarray(array).tobytes())
    h.update(f"{PRESET} {SEED} {duration}".encode())
    stamp = out / "twin_cache.txt"
    if not (stamp.exists() and stamp.read_text().strip() == h.hexdigest() and (out / "scene" / "scene.yaml").exists()
            and (out / "world" / "world.yaml").exists()):
        print(f"building the world (preset {PRESET}, seed {SEED}, {duration:g} s) and its Gaussian twin ...",
              flush=True)
        save_world(world, out / "world")
        save_scene(world_to_gaussians(world), out / "scene")
        atomic_write_text(stamp, h.hexdigest() + "\n")
    return world


def _write_params(out: Path, args: argparse.Namespace) -> tuple[Path, Path]:
    import yaml

    player = yaml.safe_load((ROOT / "config" / "scenario_player.yaml").read_text())
    player["/**/scenario_player"]["ros__parameters"]["tick_rate_hz"] = args.tick_rate
    ego = yaml.safe_load((ROOT / "config" / "ego_model.yaml").read_text())
    ego["/**/ego_model"]["ros__parameters"].update(initial_lateral_offset=args.lateral_offset,
                                                   initial_yaw_offset=args.yaw_offset)
    paths = out / "player.yaml", out / "ego.yaml"
    for path, doc in zip(paths, (player, ego)):
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return paths


def _drive(bag: Path) -> dict[str, np.ndarray]:
    """The ego's odometry in the bag: t (s), x, y, yaw, v."""
    from xsim_render.rosio.bag import read_bag

    rows = []
    for _, msg in read_bag(bag, ["/ego/odometry"])["/ego/odometry"]:
        p, q = msg.pose.pose.position, msg.pose.pose.orientation
        rows.append((msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9, p.x, p.y,
                     2.0 * math.atan2(q.z, q.w), msg.twist.twist.linear.x))
    a = np.array(sorted(rows))
    return {k: a[:, i] for i, k in enumerate(("t", "x", "y", "yaw", "v"))}


def _plots(out: Path, world, drive: dict[str, np.ndarray], lane_y: float, error: np.ndarray, settle: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from xsim_render.io_utils import atomic_write
    from xsim_render.synth.overview import save_overview

    def overlay(ax) -> None:
        ax.plot(drive["x"], drive["y"], color="orange", lw=2.5, label="closed loop: driven by the lane keeper")
        ax.plot(drive["x"][0], drive["y"][0], "o", color="orange", ms=7)
        ax.axhline(lane_y, color="cyan", lw=0.8, ls=":", label="lane centre")

    save_overview(world, out / "closed_loop_map.png", overlay=overlay)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    top.plot(drive["t"], error, color="tab:orange")
    top.axhline(0.0, color="k", lw=0.6)
    top.axvline(settle, color="grey", lw=0.8, ls="--", label=f"statistics from t = {settle:g} s")
    top.set_ylabel("lateral error (m)")
    top.set_title("closed loop: LiDAR lane keeping in the twin (y - lane centre, base_link)")
    top.legend(fontsize=8)
    bottom.plot(drive["t"], np.degrees(drive["yaw"]), label="heading (deg)")
    bottom.plot(drive["t"], drive["v"], label="speed (m/s)")
    bottom.set_xlabel("sim time (s)")
    bottom.legend(fontsize=8)
    fig.tight_layout()
    try:
        atomic_write(out / "lateral_error.png", lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    finally:
        plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="closed_loop_out", help="output directory (created)")
    parser.add_argument("--duration", type=float, default=15.0, help="s of sim time driven")
    parser.add_argument("--speed", type=float, default=8.0, help="m/s asked by the lane keeper")
    parser.add_argument("--lateral-offset", type=float, default=1.0, help="m, start left of the lane centre")
    parser.add_argument("--yaw-offset", type=float, default=0.03, help="rad, start heading off the lane")
    parser.add_argument("--tick-rate", type=float, default=20.0, help="lockstep ticks per second of sim time")
    parser.add_argument("--settle", type=float, default=4.0, help="s: statistics of the lateral error from here")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    wall0 = time.monotonic()
    world = _world_and_twin(out, args.duration)
    player_params, ego_params = _write_params(out, args)
    bag = out / "bag"
    if bag.exists():
        import shutil

        shutil.rmtree(bag)
    rig = ROOT / "examples" / "lane_keeping_rig.yaml"
    planner = subprocess.Popen([str(BIN / "python"), str(ROOT / "examples" / "lane_keeping.py"), "--ros-args",
                                "-p", f"speed:={args.speed}", "-p", "lidar_rate_hz:=5.0"], env=env)
    launch_wall = time.monotonic()
    launch = subprocess.Popen([str(BIN / "xsim"), "launch", str(ROOT / "launch" / "xsim_closed_loop.launch.xml"),
                               f"scene:={out / 'scene'}", f"scenario:={out / 'world'}", f"rig:={rig}",
                               f"player_params:={player_params}", f"ego_params:={ego_params}", "--record", str(bag)],
                              env=env)
    planner_died = False
    try:
        while launch.poll() is None:
            if planner.poll() is not None and not planner_died:  # the graph would wait for it for ever
                planner_died = True
                launch.send_signal(signal.SIGINT)
            time.sleep(0.2)
    finally:
        for proc in (launch, planner):
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    launch_wall = time.monotonic() - launch_wall
    if planner_died or launch.returncode != 0:
        why = f"the planner exited with {planner.returncode}" if planner_died else \
            f"xsim launch exited with {launch.returncode}"
        print(f"closed-loop demo: error: {why}", file=sys.stderr)
        return 2
    from xsim_render.synth.street import LANE_WIDTH

    drive = _drive(bag)
    lane_y = -LANE_WIDTH / 2
    error = drive["y"] - lane_y
    settled = drive["t"] >= drive["t"][0] + args.settle
    _plots(out, world, drive, lane_y, error, args.settle)
    e = error[settled]
    summary = {
        "sim_time_s": float(drive["t"][-1] - drive["t"][0]), "ticks": int(len(drive["t"])),
        "distance_m": float(np.sum(np.hypot(np.diff(drive["x"]), np.diff(drive["y"])))),
        "x_start_end_m": [float(drive["x"][0]), float(drive["x"][-1])],
        "initial_lateral_error_m": float(error[0]),
        "settled_from_s": args.settle,
        "lateral_error_mean_m": float(np.mean(e)), "lateral_error_rms_m": float(np.sqrt(np.mean(e ** 2))),
        "lateral_error_max_abs_m": float(np.max(np.abs(e))),
        "heading_error_max_abs_deg_settled": float(np.degrees(np.max(np.abs(drive["yaw"][settled])))),
        "wall_time_s": time.monotonic() - wall0, "launch_wall_time_s": launch_wall,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    print(f"wrote {out / 'closed_loop_map.png'}, {out / 'lateral_error.png'}, {bag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
