"""The bookkeeping of the issue-10 bars: the soak's owed-capture count and memory slope (scripts/soak_lockstep.py),
its rig, and the replay sweep's full-offset means (xsim_render/replay/sweep.py). No ROS, no rendering."""

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from xsim_render.replay.sweep import full_offset_means
from xsim_render.sim.schedule import CaptureScheduler, SensorRate

ROOT = Path(__file__).resolve().parents[1]
NS = 1_000_000_000


def _soak():
    spec = importlib.util.spec_from_file_location("soak_lockstep", ROOT / "scripts" / "soak_lockstep.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("soak_lockstep", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _scheduler_count(rate: float, tick_ns: int, first_ns: int, end_ns: int, loops: int) -> int:
    """What the sensor_sim's scheduler hands out over `loops` plays of [first, end] ticked every tick_ns, with the
    reset a clock jump back causes at the start of every loop."""
    sched = CaptureScheduler([SensorRate("s", rate)])
    count = 0
    for _ in range(loops):
        sched.reset()
        t = first_ns
        while t <= end_ns:
            count += len(sched.due(t))
            t += tick_ns
    return count


@pytest.mark.parametrize("rate, tick_hz, first_s, end_s", [
    (0.2, 1.0, 0.0, 3.0), (1.0, 2.0, 0.0, 3.0), (2.0, 10.0, 0.0, 3.0), (3.0, 4.0, 0.0, 3.0), (10.0, 50.0, 0.0, 3.0),
    (0.5, 1.0, 0.7, 6.2), (7.0, 3.0, 1.3, 5.0), (1.0, 0.3, 0.0, 3.0)])
def test_owed_captures_match_the_scheduler(rate, tick_hz, first_s, end_s):
    soak = _soak()
    tick = int(round(NS / tick_hz))
    first, end = int(round(first_s * NS)), int(round(end_s * NS))
    last = first + (end - first) // tick * tick  # the last tick of a loop
    expected = _scheduler_count(rate, tick, first, end, loops=3)
    assert 3 * soak.owed_captures(rate, first, last) == expected
    assert expected > 0 or rate < 1 / (end_s - first_s)


def test_owed_captures_counts_the_instants():
    soak = _soak()
    assert soak.owed_captures(0.2, 0, 3 * NS) == 1  # t = 0 only
    assert soak.owed_captures(1.0, 0, 3 * NS) == 4  # 0, 1, 2, 3
    assert soak.owed_captures(3.0, 0, NS) == 4  # 0, 1/3, 2/3, 1 (floored to ns)
    assert soak.owed_captures(2.0, 1, 3 * NS) == 6  # 0.5 ... 3
    assert soak.owed_captures(1.0, 5, 4) == 0


def test_least_squares_slope():
    soak = _soak()
    hours = np.linspace(0, 0.5, 31)
    rss = 400.0 + 12.0 * hours + np.where(np.arange(31) % 2 == 0, 0.5, -0.5)
    assert soak.least_squares_slope(hours, rss) == pytest.approx(12.0, abs=0.5)
    assert math.isnan(soak.least_squares_slope(np.array([1.0]), np.array([2.0])))


def test_soak_rig_scales_the_camera(tmp_path):
    soak = _soak()
    demo = tmp_path / "demo.yaml"
    demo.write_text((ROOT / "config" / "demo_rig.yaml").read_text())
    cfg = soak.SoakConfig(camera_width=160, camera_height=120, camera_rate_hz=0.5, lidar_columns=256,
                          lidar_rate_hz=2.0)
    rates = soak.write_rig(demo, tmp_path / "rig.yaml", cfg)
    rig = {s["name"]: s for s in yaml.safe_load((tmp_path / "rig.yaml").read_text())["sensors"]}
    assert rates == {"front": 0.5, "top": 2.0}
    cam = rig["front"]
    assert (cam["width"], cam["height"], cam["fx"], cam["cx"], cam["cy"]) == (160, 120, 120.0, 80.0, 60.0)
    assert rig["top"]["columns"] == 256 and len(rig["top"]["elevations"]) == 32


def test_full_offset_means_keep_captures_off_the_ramps():
    caps = [{"index": i, "time": float(i), "lateral_offset_m": d, "psnr_db": p, "ssim": 0.9}
            for i, (d, p) in enumerate([(0.0, 40.0), (3.0, 30.0), (3.0, 28.0), (1.5, 35.0)])]
    result = {"offset_m": 3.0, "sensors": {"front": {"captures": caps}}}
    means = full_offset_means(result)["front"]
    assert means["frames"] == 2
    assert means["psnr_db"] == pytest.approx(29.0)
    assert math.isnan(means["chamfer_m"])


def test_clock_back_before_the_states_of_a_looped_scenario(tmp_path):
    """The soak's finding: a looped scenario's /clock (back to 0) can reach sensor_sim before the new odometry at 0;
    an old-timeline state within future_tolerance of the new clock must not survive and refuse the new ones."""
    from types import SimpleNamespace as NS_

    sys.path.insert(0, str(ROOT / "test"))
    from _ros_graph import make_assets

    from xsim_render.sim.engine import SensorEngine, load_assets

    def odom(ns, x):
        return NS_(header=NS_(stamp=NS_(sec=ns // NS, nanosec=ns % NS), frame_id="map"), child_frame_id="base_link",
                   pose=NS_(pose=NS_(position=NS_(x=x, y=0.0, z=0.0), orientation=NS_(x=0.0, y=0.0, z=0.0, w=1.0))),
                   twist=NS_(twist=NS_(linear=NS_(x=4.0, y=0.0, z=0.0), angular=NS_(x=0.0, y=0.0, z=0.0))))

    paths = make_assets(tmp_path)
    engine = SensorEngine(load_assets(paths["scene"], paths["rig"]))
    for k in range(4):  # one play of a 3 s scenario ticked at 1 Hz: states then clock
        engine.add_odometry(odom(k * NS, 4.0 * k))
        engine.clock(k * NS)
    reports = engine.clock(0)  # the loop: the clock arrives first
    assert [r.kind for r in reports] == ["history_reset"] and len(engine.ego) == 0
    assert all(r.kind != "out_of_order" for r in engine.add_odometry(odom(0, 0.0)))
    assert len(engine.ego) == 1 and engine.ego.newest_ns == 0
    result = engine.capture("cam", 0, newest_ns=0)
    assert not result.stale and result.outputs
    # a state of the new timeline that arrived first (it reset the history itself) is kept by the clock
    for k in range(1, 4):
        engine.add_odometry(odom(k * NS, 4.0 * k))
        engine.clock(k * NS)
    engine.add_odometry(odom(0, 0.0))
    engine.clock(0)
    assert len(engine.ego) == 1 and engine.ego.newest_ns == 0
