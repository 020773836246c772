"""Soak of the lockstep graph (issue 10, Reliability): scenario_player + sensor_sim for SIM_MINUTES of sim time.

The demo world (the `small` synthetic street, seed 0, a 3 s drive; its Gaussian twin is built under OUT on first
use) is played by `scenario_player` in lockstep to `sensor_sim`, both started in this one process by the project's
launch runner (`launch/xsim_sim.launch.xml`, as `xsim launch` does). The drive is looped (`end_action: loop`: at the
end the clock jumps back to the drive's start, every sensor_sim resets its histories and schedule and goes on), so
that the graph runs for as long as asked; sim time here is the time the graph advanced, summed over the loops.

Sampled every minute of sim time and every minute of wall time: the resident set size of the process (VmRSS, MB),
captures published and received (a subscriber in the same graph counts the sensor messages), dropped and stale
captures, lockstep timeouts. At the end: captures counted against the captures the schedule owes (per loop, every
t_n = n / rate_hz in [first tick, last tick]; a capture is counted once its image / point cloud was received), the
memory slope in MB per sim hour (least squares over the sim-minute samples after the warm-up), and the verdict:
PASS when nothing was dropped, refused or timed out, every owed capture arrived and the slope is under the bar.

    .venv/bin/python scripts/soak_lockstep.py [--sim-minutes 30] [--out out/soak] [--results bench/results]

Writes RESULTS/soak.csv (one row per sample), soak.png (RSS against sim and wall time, captures) and soak.md (the
summary, also printed). Exit status 0 on PASS, 1 on FAIL, 2 on bad arguments. Not a test (it runs for ~30 min).
Sensor sizes and rates are options; the defaults (camera 160x120 and LiDAR 32 x 256, both at 0.2 Hz, i.e. one
capture each per 3 s loop; ticks at 1 Hz) are what fits on the project's 2-core machine when it is shared by
several jobs (there, at nice 15, the graph got ~1/20 of real time with ticks at 2 Hz and both sensors at 1 Hz).
`--max-wall-minutes M` stops a run that is starved of CPU after M wall minutes and reports it as incomplete (sim
minutes reached, figures over what ran; the verdict says INCOMPLETE).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import yaml

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(os.getpid() % 90 + 10))  # a graph of its own unless one is given
ROOT = Path(__file__).resolve().parents[1]
NS = 1_000_000_000


@dataclass
class SoakConfig:
    """What the soak runs (sizes in pixels / beams x columns, rates in Hz of sim time)."""

    sim_minutes: float = 30.0
    tick_rate_hz: float = 1.0
    camera_width: int = 160
    camera_height: int = 120
    camera_rate_hz: float = 0.2
    lidar_columns: int = 256
    lidar_rate_hz: float = 0.2
    warmup_minutes: float = 5.0
    slope_bar_mb_per_h: float = 20.0
    max_wall_minutes: float = math.inf


def rss_mb() -> float:
    """Resident set size of this process in MB (VmRSS of /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return math.nan


def write_rig(demo_rig: Path, out: Path, cfg: SoakConfig) -> dict[str, float]:
    """The demo rig with the soak's sizes and rates (camera scaled about its centre); returns {sensor: rate_hz}."""
    rig = yaml.safe_load(demo_rig.read_text())
    for s in rig["sensors"]:
        if s["type"] == "camera":
            scale = cfg.camera_width / s["width"]
            s.update(width=cfg.camera_width, height=cfg.camera_height, fx=s["fx"] * scale, fy=s["fy"] * scale,
                     cx=cfg.camera_width / 2, cy=cfg.camera_height / 2, rate_hz=cfg.camera_rate_hz)
        else:
            s.update(columns=cfg.lidar_columns, rate_hz=cfg.lidar_rate_hz)
    out.write_text(yaml.safe_dump(rig, sort_keys=False))
    return {s["name"]: float(s["rate_hz"]) for s in rig["sensors"]}


def owed_captures(rate_hz: float, first_ns: int, last_ns: int) -> int:
    """Captures t_n = n / rate_hz (rate as an exact fraction, t_n floored to ns) with first_ns <= t_n <= last_ns:
    what a sensor_sim renders between the first tick of a loop (only a capture starting exactly there) and its
    last tick."""
    if last_ns < first_ns:
        return 0
    rate = Fraction(rate_hz).limit_denominator(1_000_000)
    first = -((-first_ns * rate) // NS)  # ceil: the first n with n / rate >= first_ns (ns)
    last = (last_ns * rate) // NS
    while (last + 1) * NS / rate < last_ns + 1:  # t_n floored to ns may land on last_ns
        last += 1
    return max(0, int(last - first) + 1)


def least_squares_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Slope of the least-squares line y = a + b x (NaN with fewer than 2 distinct x)."""
    if len(x) < 2 or np.ptp(x) == 0:
        return math.nan
    return float(np.polyfit(x, y, 1)[0])


def prepare_world(out: Path) -> tuple[Path, Path, Path]:
    """The demo world's twin, rig and world.yaml under OUT (built once, then reused)."""
    from xsim_render.demo import DEMO_DURATION, DEMO_PRESET, DEMO_SEED, prepare
    from xsim_render.synth.world import generate_world, save_world

    out.mkdir(parents=True, exist_ok=True)
    world = generate_world(DEMO_PRESET, seed=DEMO_SEED, duration=DEMO_DURATION)
    scene, rig = prepare(out, world)
    if not (out / "world" / "world.yaml").exists():
        save_world(world, out / "world")
    return scene, rig, out / "world"


class CaptureCounter:
    """A node in the graph that counts the sensor messages it receives per sensor (images and point clouds)."""

    def __init__(self, context, topics: dict[str, str]) -> None:
        from rclpy.node import Node
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

        from xsim_ros.common import message_class

        self.node = Node("soak_counter", context=context)
        self.counts = {name: 0 for name in topics}
        self._lock = threading.Lock()
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50, reliability=ReliabilityPolicy.RELIABLE)
        for name, topic in topics.items():
            msgtype = "sensor_msgs/msg/Image" if "/camera/" in topic else "sensor_msgs/msg/PointCloud2"
            self.node.create_subscription(message_class(msgtype), topic, self._callback(name), qos, raw=True)

    def _callback(self, name: str):
        def count(_msg) -> None:
            with self._lock:
                self.counts[name] += 1
        return count


def run_soak(cfg: SoakConfig, out: Path, results: Path) -> int:
    from xsim_ros.launch_runner import LaunchRun

    scene, demo_rig, world = prepare_world(out)
    rig = out / "soak_rig.yaml"
    rates = write_rig(demo_rig, rig, cfg)
    player_params = out / "soak_player.yaml"
    base = yaml.safe_load((ROOT / "config" / "scenario_player.yaml").read_text())
    base["/**/scenario_player"]["ros__parameters"].update(end_action="loop", tick_rate_hz=cfg.tick_rate_hz)
    player_params.write_text(yaml.safe_dump(base, sort_keys=False))
    args = {"scene": str(scene), "rig": str(rig), "scenario": str(world), "trigger": "lockstep",
            "player_params": str(player_params)}
    print(f"soak: {cfg.sim_minutes:g} sim minutes, ticks {cfg.tick_rate_hz:g} Hz, camera {cfg.camera_width}x"
          f"{cfg.camera_height} at {cfg.camera_rate_hz:g} Hz, LiDAR 32 x {cfg.lidar_columns} at "
          f"{cfg.lidar_rate_hz:g} Hz, ROS_DOMAIN_ID={os.environ.get('ROS_DOMAIN_ID', '0')}", flush=True)
    launch = LaunchRun(ROOT / "launch" / "xsim_sim.launch.xml", args)
    sim, player = launch.sensor_sims()[0], launch.players()[0]
    from xsim_render.sim.capture import sensor_topics

    topics = {}
    for spec in sim.engine.rig.sensors:
        for topic in sensor_topics(spec):
            if topic.endswith(("image_raw", "pointcloud")):
                topics[spec.name] = sim.resolve_topic_name(topic)
    counter = CaptureCounter(launch.context, topics)
    launch.executor.add_node(counter.node)

    period_ns = player.period_ns
    first_ns, end_ns = player.scenario.start_ns, player.scenario.end_ns
    ticks_per_loop = (end_ns - first_ns) // period_ns + 1
    last_ns = first_ns + (ticks_per_loop - 1) * period_ns
    sim_target_ticks = int(math.ceil(cfg.sim_minutes * 60 * NS / period_ns))
    samples: list[dict] = []
    wall0 = time.monotonic()
    next_sim_min, next_wall_min = 0, 0

    def sample(kind: str, done_ticks: int) -> None:
        row = {"kind": kind, "sim_min": round(done_ticks * period_ns / NS / 60, 4),
               "wall_min": round((time.monotonic() - wall0) / 60, 4), "rss_mb": round(rss_mb(), 2),
               "loops": done_ticks // ticks_per_loop, "timeouts": player.timeouts}
        for name, stats in sim.stats.items():
            row[f"{name}_published"] = stats.published
            row[f"{name}_received"] = counter.counts[name]
            row[f"{name}_dropped"] = sum(stats.dropped.values())
            row[f"{name}_stale"] = stats.stale
        samples.append(row)
        print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)

    def completed_ticks() -> int:
        # ticks answered by the graph: player.ticks counts published ones, the last may be in flight
        return player.ticks - (0 if player.completed_ns == player.current_ns else 1)

    try:
        while True:
            done = completed_ticks()
            if done * period_ns >= next_sim_min * 60 * NS:
                sample("sim", done)
                next_sim_min += 1
            if time.monotonic() - wall0 >= next_wall_min * 60:
                sample("wall", done)
                next_wall_min += 1
            if done >= sim_target_ticks or time.monotonic() - wall0 >= cfg.max_wall_minutes * 60:
                player._stop = True  # no further tick; the one in flight (if any) is answered first
                break
            launch.executor.spin_once(timeout_sec=0.05)
        end = time.monotonic() + 60.0  # the graph answers the last tick published
        while time.monotonic() < end and not (sim.last_done_ns == player.current_ns and sim.idle()):
            launch.executor.spin_once(timeout_sec=0.05)
        end = time.monotonic() + 2.0  # the last messages reach the counter
        while time.monotonic() < end:
            launch.executor.spin_once(timeout_sec=0.05)
        done = completed_ticks()
        sample("end", done)
    finally:
        launch.executor.remove_node(counter.node)
        counter.node.destroy_node()
        launch.shutdown()

    loops, rest = divmod(done, ticks_per_loop)
    owed = {}
    for name, rate in rates.items():
        owed[name] = loops * owed_captures(rate, first_ns, last_ns)
        if rest:
            owed[name] += owed_captures(rate, first_ns, first_ns + (rest - 1) * period_ns)
    return report(cfg, samples, owed, loops, done * period_ns / NS, results)


def report(cfg: SoakConfig, samples: list[dict], owed: dict[str, int], loops: int, sim_s: float,
           results: Path) -> int:
    """Write soak.csv / soak.png / soak.md under RESULTS, print the summary; returns 0 (PASS) or 1 (FAIL)."""
    results.mkdir(parents=True, exist_ok=True)
    from xsim_render.io_utils import atomic_write_text

    keys = list(samples[-1])
    lines = [",".join(keys)] + [",".join(str(r.get(k, "")) for k in keys) for r in samples]
    atomic_write_text(results / "soak.csv", "\n".join(lines) + "\n")
    sim_rows = [r for r in samples if r["kind"] in ("sim", "end")]
    x = np.array([r["sim_min"] for r in sim_rows]) / 60.0
    y = np.array([r["rss_mb"] for r in sim_rows])
    keep = x * 60 >= cfg.warmup_minutes
    slope = least_squares_slope(x[keep], y[keep])
    slope_all = least_squares_slope(x, y)
    wall_rows = [r for r in samples if r["kind"] in ("wall", "end")]
    xw = np.array([r["wall_min"] for r in wall_rows]) / 60.0
    yw = np.array([r["rss_mb"] for r in wall_rows])
    slope_wall = least_squares_slope(xw[xw * 60 >= cfg.warmup_minutes], yw[xw * 60 >= cfg.warmup_minutes])
    last = samples[-1]
    problems = []
    rows = []
    for name, n in owed.items():
        got, pub = last[f"{name}_received"], last[f"{name}_published"]
        drop, stale = last[f"{name}_dropped"], last[f"{name}_stale"]
        rows.append(f"| {name} | {n} | {pub} | {got} | {drop} | {stale} |")
        if got != n or pub != n or drop or stale:
            problems.append(f"{name}: owed {n}, published {pub}, received {got}, dropped {drop}, stale {stale}")
    if last["timeouts"]:
        problems.append(f"{last['timeouts']} lockstep timeouts")
    if not (abs(slope) < cfg.slope_bar_mb_per_h):
        problems.append(f"memory slope {slope:.1f} MB/sim h (bar {cfg.slope_bar_mb_per_h:g})")
    verdict = "PASS" if not problems else "FAIL: " + "; ".join(problems)
    if sim_s < cfg.sim_minutes * 60 - 1e-6:
        verdict = f"INCOMPLETE ({sim_s / 60:.1f} of {cfg.sim_minutes:g} sim minutes in the wall-time cap): " + verdict
        problems.append("incomplete")
    rss_after = y[keep] if keep.any() else y
    text = "\n".join([
        f"# Soak: lockstep graph, {sim_s / 60:.1f} sim minutes in {last['wall_min']:.1f} wall minutes",
        "",
        f"demo world (small, seed 0, 3 s drive) looped {loops} times; ticks {cfg.tick_rate_hz:g} Hz; camera "
        f"{cfg.camera_width}x{cfg.camera_height} at {cfg.camera_rate_hz:g} Hz; LiDAR 32 x {cfg.lidar_columns} at "
        f"{cfg.lidar_rate_hz:g} Hz; one process (launch runner); backend auto",
        "",
        "| sensor | owed | published | received | dropped | stale |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"lockstep timeouts: {last['timeouts']}",
        f"RSS: start {y[0]:.0f} MB, after the {cfg.warmup_minutes:g} min warm-up {rss_after.min():.0f}-"
        f"{rss_after.max():.0f} MB, end {y[-1]:.0f} MB",
        f"memory slope (least squares, sim-minute samples after the warm-up): {slope:+.1f} MB per sim hour "
        f"(all samples: {slope_all:+.1f}; wall-minute samples after the warm-up: {slope_wall:+.1f} MB per wall hour;"
        f" bar |slope| < {cfg.slope_bar_mb_per_h:g})",
        f"verdict: {verdict}",
        "",
    ])
    atomic_write_text(results / "soak.md", text)
    print(text)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    axes[0].plot(x * 60, y, "o-", ms=3)
    if keep.sum() >= 2:
        a, b = np.polyfit(x[keep], y[keep], 1)
        axes[0].plot(x[keep] * 60, a * x[keep] + b, "r--", label=f"{slope:+.1f} MB / sim h")
        axes[0].legend()
    axes[0].set_xlabel("sim time (min)")
    axes[0].set_ylabel("RSS (MB)")
    axes[0].set_title("RSS per sim minute")
    axes[1].plot(xw * 60, yw, "o-", ms=3)
    axes[1].set_xlabel("wall time (min)")
    axes[1].set_title("RSS per wall minute")
    for name in owed:
        axes[2].plot([r["sim_min"] for r in sim_rows], [r[f"{name}_received"] for r in sim_rows], label=name)
    axes[2].set_xlabel("sim time (min)")
    axes[2].set_title("captures received")
    axes[2].legend()
    fig.suptitle(f"lockstep soak: {verdict[:90]}")
    fig.tight_layout()
    tmp = results / ".soak.png.tmp"
    fig.savefig(tmp, format="png")
    os.replace(tmp, results / "soak.png")
    print(f"wrote {results / 'soak.csv'}, soak.png, soak.md")
    return 0 if not problems else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    d = SoakConfig()
    parser.add_argument("--sim-minutes", type=float, default=d.sim_minutes)
    parser.add_argument("--tick-rate", type=float, default=d.tick_rate_hz, help="player ticks per sim second")
    parser.add_argument("--camera-size", default=f"{d.camera_width}x{d.camera_height}", help="WxH")
    parser.add_argument("--camera-rate", type=float, default=d.camera_rate_hz, help="Hz of sim time")
    parser.add_argument("--lidar-columns", type=int, default=d.lidar_columns)
    parser.add_argument("--lidar-rate", type=float, default=d.lidar_rate_hz, help="Hz of sim time")
    parser.add_argument("--warmup-minutes", type=float, default=d.warmup_minutes, help="sim minutes left out of "
                        "the slope")
    parser.add_argument("--slope-bar", type=float, default=d.slope_bar_mb_per_h, help="MB per sim hour")
    parser.add_argument("--max-wall-minutes", type=float, default=d.max_wall_minutes, help="stop after this "
                        "many wall minutes even if the sim minutes are not reached (reported as INCOMPLETE)")
    parser.add_argument("--out", default=str(ROOT / "out" / "soak"), help="world, twin and rig")
    parser.add_argument("--results", default=str(ROOT / "bench" / "results"))
    a = parser.parse_args(argv)
    try:
        w, h = (int(v) for v in a.camera_size.lower().split("x"))
    except ValueError:
        print(f"soak_lockstep: error: --camera-size: expected WxH, got {a.camera_size!r}", file=sys.stderr)
        return 2
    for flag, value in (("--sim-minutes", a.sim_minutes), ("--tick-rate", a.tick_rate), ("--camera-rate",
                        a.camera_rate), ("--lidar-rate", a.lidar_rate), ("--lidar-columns", a.lidar_columns),
                        ("--camera-size", min(w, h))):
        if not (value > 0 and math.isfinite(value)):
            print(f"soak_lockstep: error: {flag}: must be positive, got {value}", file=sys.stderr)
            return 2
    cfg = SoakConfig(a.sim_minutes, a.tick_rate, w, h, float(a.camera_rate), a.lidar_columns, float(a.lidar_rate),
                     a.warmup_minutes, a.slope_bar, a.max_wall_minutes)
    import torch

    torch.set_num_threads(1)
    return run_soak(cfg, Path(a.out), Path(a.results))


if __name__ == "__main__":
    raise SystemExit(main())
