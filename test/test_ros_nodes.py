"""sensor_sim and scenario_player with real rclpy on loopback (own ROS_DOMAIN_ID per test run, 100-199).

Graphs: lockstep cross-process (sensor_sim console script + player in this process) and through the pip-only
launch runner (`xsim launch ... --record`, another process): bit-identical outputs, equal to a direct render of the
recorded states. Triggers timer (sim time, interpolation / extrapolation / refusal, clock jump, run-time parameter
changes), pose (every bad input, node alive afterwards), realtime (drops, never queues, predicts for a while only).
Shutdown: a render in progress finishes, no new one starts; SIGINT / SIGTERM during start-up, SIGINT ignored by
the parent. Start-up errors.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("rclpy")
sys.path.insert(0, str(Path(__file__).parent))
from _ros_graph import RIG, Collector, make_assets, ros_domain_id, spin_until, stamp_ns  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
NS = 1_000_000_000
DOMAIN = ros_domain_id()
LAUNCH = ROOT / "launch" / "xsim_sim.launch.xml"


@pytest.fixture(scope="module")
def ros():
    import rclpy

    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ["ROS_DOMAIN_ID"] = str(DOMAIN)
    rclpy.init(domain_id=DOMAIN)
    yield rclpy
    rclpy.shutdown()


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    return make_assets(tmp_path_factory.mktemp("tiny"))


def _env() -> dict[str, str]:
    return {**os.environ, "ROS_DOMAIN_ID": str(DOMAIN), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}


def _msgs():
    from diagnostic_msgs.msg import DiagnosticArray
    from nav_msgs.msg import Odometry
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2
    from tf2_msgs.msg import TFMessage

    return {"/sensing/camera/cam/image_raw": Image, "/sensing/camera/cam/camera_info": CameraInfo,
            "/sensing/lidar/top/pointcloud": PointCloud2, "/tf_static": TFMessage, "/diagnostics": DiagnosticArray,
            "/ego/odometry": Odometry}


def _rig_file(tmp_path: Path, sensors: list[str], **changes) -> Path:
    rig = {"sensors": [dict(s, **changes) for s in RIG["sensors"] if s["name"] in sensors]}
    path = tmp_path / f"rig_{'_'.join(sensors)}.yaml"
    path.write_text(yaml.safe_dump(rig))
    return path


def _sim(ros, assets, rig=None, **params):
    from rclpy.parameter import Parameter

    from xsim_ros.sensor_sim import SensorSimNode

    values = {"scene": str(assets["scene"]), "rig": str(rig or assets["rig"]), **params}
    return SensorSimNode(parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])


SENSOR_TOPICS = ("/sensing/camera/cam/image_raw", "/sensing/camera/cam/camera_info", "/sensing/lidar/top/pointcloud")


def _by_stamp(messages):
    return {stamp_ns(msg.header.stamp): msg for msg in messages}


def test_lockstep_cross_process_and_launch_runner_are_identical_and_equal_a_direct_render(ros, assets, tmp_path):
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.parameter import Parameter

    from xsim_render.rosio.bag import read_bag
    from xsim_render.sim.capture import capture_outputs, render_sensor
    from xsim_render.sim.engine import SensorEngine, load_assets
    from xsim_render.states.history import EGO
    from xsim_render.states.messages import actor_frame, odometry_frame
    from xsim_ros.scenario_player import ScenarioPlayerNode

    # run 1: sensor_sim in its own process (console script, the shipped parameter file), player + probe here
    sim = subprocess.Popen([str(VENV_BIN / "sensor_sim"), "--ros-args", "--params-file",
                            str(ROOT / "config" / "sensor_sim.yaml"), "-p", f"scene:={assets['scene']}",
                            "-p", f"rig:={assets['rig']}", "-p", "trigger:=lockstep", "-p", "use_sim_time:=true"],
                           env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        player = ScenarioPlayerNode(parameter_overrides=[Parameter("scenario", value=str(assets["world"])),
                                                         Parameter("lockstep", value=True)])
        probe = ros.create_node("probe_lockstep")
        got = Collector(probe, _msgs())
        ex = MultiThreadedExecutor(num_threads=3)
        for n in (player, probe):
            ex.add_node(n)
        ok = spin_until(ex, lambda: all(got.count(t) >= 3 for t in SENSOR_TOPICS) or sim.poll() is not None, 240)
        assert ok and sim.poll() is None, ({t: got.count(t) for t in SENSOR_TOPICS}, sim.poll(),
                                           sim.stdout.read()[-3000:] if sim.poll() is not None else "")
        player.destroy_node()
        spin_until(ex, lambda: got.count("/diagnostics") > 0 and got.count("/tf_static") > 0, 10)
        ex.shutdown()
    finally:
        sim.terminate()
        sim.wait(timeout=30)
    # run 2: the launch description through the pip-only runner, recorded
    bag = tmp_path / "bag"
    run = subprocess.run([str(VENV_BIN / "xsim"), "launch", str(LAUNCH), f"scene:={assets['scene']}",
                          f"rig:={assets['rig']}", f"scenario:={assets['world']}", "--record", str(bag),
                          "--duration", "0.2"], env=_env(), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "/sensing/lidar/top/pointcloud" in run.stdout and "latency mean ms" in run.stdout
    recorded = read_bag(bag)
    assert {"/clock", "/ego/odometry", "/actors", "/tf", "/tf_static", "/diagnostics", "/lockstep/done",
            *SENSOR_TOPICS} <= set(recorded)
    starts = [0, 100_000_000, 200_000_000]
    engine = SensorEngine(load_assets(assets["scene"], assets["rig"]))
    odometry = {stamp_ns(msg.header.stamp): msg for _, msg in recorded["/ego/odometry"]}
    actors = {stamp_ns(msg.header.stamp): msg for _, msg in recorded["/actors"]}
    for topic in SENSOR_TOPICS:
        live, logged = _by_stamp(got.get(topic)), _by_stamp(msg for _, msg in recorded[topic])
        assert sorted(live)[:3] == starts and sorted(logged)[:3] == starts  # stamps on the sim clock, n / 10 Hz
        for start in starts:
            a, b = live[start], logged[start]
            assert a.header.frame_id == b.header.frame_id
            assert bytes(a.data if hasattr(a, "data") else a.k.tobytes()) == bytes(
                b.data if hasattr(b, "data") else b.k.tobytes())
    # equal to a direct render of the recorded states (the tick's odometry and actors, exact stamps)
    for start in starts:
        ego = odometry_frame(odometry[start], "map", "base_link").samples[EGO].motion()
        act = {i: s.motion() for i, s in actor_frame(actors[start], "map").frame.samples.items()}
        assert list(act) == [3]
        for name, topic in (("cam", SENSOR_TOPICS[0]), ("top", SENSOR_TOPICS[2])):
            spec = engine.rig.sensor(name)
            direct = capture_outputs(spec, start, render_sensor(engine.scene, spec, start, ego, act))[0].message
            assert np.array_equal(np.asarray(direct.data), np.asarray(_by_stamp(got.get(topic))[start].data)), name
    info = _by_stamp(got.get(SENSOR_TOPICS[1]))[0]
    assert info.header.frame_id == "cam_optical_frame" and info.k[2] == 19.5 and info.k[5] == 14.5
    frames = {t.child_frame_id for m in got.get("/tf_static") for t in m.transforms}
    assert frames == {"cam_optical_frame", "top"}
    statuses = {s.name: {kv.key: kv.value for kv in s.values} for m in got.get("/diagnostics") for s in m.status}
    assert statuses["sensor_sim: cam"]["backend"] in ("reference", "cpu", "cuda")
    assert float(statuses["sensor_sim: top"]["published"]) >= 1


def test_timer_on_sim_time_interpolates_extrapolates_refuses_and_takes_parameter_changes(ros, assets, tmp_path):
    from nav_msgs.msg import Odometry
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from rosgraph_msgs.msg import Clock

    from xsim_render.sim.capture import capture_outputs, render_sensor
    from xsim_render.states.history import EGO
    from xsim_render.states.messages import odometry_frame
    from xsim_render.states.sample import interpolate

    rig = _rig_file(tmp_path, ["cam", "top"])
    sim = _sim(ros, assets, rig, trigger="timer", use_sim_time=True, max_state_age=0.3)
    probe = ros.create_node("probe_timer")
    got = Collector(probe, _msgs())
    clock_pub = probe.create_publisher(Clock, "/clock", 10)
    odo_pub = probe.create_publisher(Odometry, "ego/odometry", 100)
    ex = SingleThreadedExecutor()
    for n in (sim, probe):
        ex.add_node(n)
    assert spin_until(ex, lambda: odo_pub.get_subscription_count() > 0 and clock_pub.get_subscription_count() > 1, 20)

    def odom(ns, x, yaw):
        msg = Odometry()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(ns, NS)
        msg.header.frame_id, msg.child_frame_id = "map", "base_link"
        msg.pose.pose.position.x = x
        msg.pose.pose.orientation.z, msg.pose.pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
        msg.twist.twist.linear.x, msg.twist.twist.angular.z = 4.0, 0.1
        odo_pub.publish(msg)
        return msg

    def clock(ns):
        c = Clock()
        c.clock.sec, c.clock.nanosec = divmod(ns, NS)
        clock_pub.publish(c)

    def images():
        return _by_stamp(got.get(SENSOR_TOPICS[0]))

    t0 = 50 * NS
    a, b = odom(t0, 0.0, 0.0), odom(t0 + 200_000_000, 0.8, 0.03)
    spin_until(ex, lambda: sim.engine.ego.newest_ns == t0 + 200_000_000, 10)
    clock(t0 + 100_000_000)
    assert spin_until(ex, lambda: t0 + 100_000_000 in images(), 60)
    fa, fb = (odometry_frame(x, "map", "base_link").samples[EGO] for x in (a, b))
    spec = sim.engine.rig.sensor("cam")
    direct = capture_outputs(spec, t0 + 100_000_000, render_sensor(sim.engine.scene, spec, t0 + 100_000_000,
                                                                  interpolate(fa, fb, t0 + 100_000_000), {}))
    assert np.array_equal(np.asarray(images()[t0 + 100_000_000].data), np.asarray(direct[0].message.data))
    clock(t0 + 300_000_000)  # extrapolated 0.1 s from the newest state
    assert spin_until(ex, lambda: t0 + 300_000_000 in images(), 60)
    direct = capture_outputs(spec, t0 + 300_000_000, render_sensor(sim.engine.scene, spec, t0 + 300_000_000,
                                                                  fb.motion_at(t0 + 300_000_000), {}))
    assert np.array_equal(np.asarray(images()[t0 + 300_000_000].data), np.asarray(direct[0].message.data))
    # capture 0.4 s after the newest state: refused (max_state_age 0.3), counted as stale
    clock(t0 + 600_000_000)
    assert spin_until(ex, lambda: sim.stats["cam"].stale >= 1 and sim.idle(), 30)
    assert t0 + 600_000_000 not in images()
    # run-time parameters: an invalid value is rejected with the reason, valid ones apply to the next capture
    bad = sim.set_parameters([Parameter("point_format", value="xyzrgb")])[0]
    assert not bad.successful and "point_format: must be one of" in bad.reason
    assert not sim.set_parameters([Parameter("max_state_age", value=-1.0)])[0].successful
    assert not sim.set_parameters([Parameter("trigger", value="pose")])[0].successful  # read-only
    ok = sim.set_parameters([Parameter("max_state_age", value=1.0), Parameter("point_format", value="xyzirt"),
                             Parameter("organized", value=False)])
    assert all(r.successful for r in ok)
    clock(t0 + 700_000_000)  # 0.5 s after the newest state: fine now
    assert spin_until(ex, lambda: t0 + 700_000_000 in images() and t0 + 700_000_000 in _by_stamp(
        got.get(SENSOR_TOPICS[2])), 60)
    cloud = _by_stamp(got.get(SENSOR_TOPICS[2]))[t0 + 700_000_000]
    assert [f.name for f in cloud.fields] == ["x", "y", "z", "intensity", "ring", "time"]
    assert cloud.height == 1 and cloud.point_step == 22 and cloud.is_dense
    # the clock jumps backwards: history reset, reported, and the node goes on
    clock(t0 - 10 * NS)
    odom(t0 - 10 * NS, 5.0, 0.0)
    assert spin_until(ex, lambda: sim.engine.counts_snapshot().get("history_reset", 0) >= 1, 20)
    clock(t0 - 10 * NS + 100_000_000)
    assert spin_until(ex, lambda: t0 - 10 * NS + 100_000_000 in images(), 60)
    ex.shutdown()
    sim.destroy_node()
    probe.destroy_node()


def test_every_bad_input_is_reported_and_the_node_keeps_publishing(ros, assets, tmp_path):
    from nav_msgs.msg import Odometry
    from rclpy.executors import SingleThreadedExecutor
    from xsim_msgs.msg import ActorState, ActorStateArray

    sim = _sim(ros, assets, _rig_file(tmp_path, ["cam"]), trigger="pose", log_period=0.0)
    probe = ros.create_node("probe_bad")
    got = Collector(probe, _msgs())
    odo_pub = probe.create_publisher(Odometry, "ego/odometry", 100)
    act_pub = probe.create_publisher(ActorStateArray, "actors", 100)
    ex = SingleThreadedExecutor()
    for n in (sim, probe):
        ex.add_node(n)
    assert spin_until(ex, lambda: odo_pub.get_subscription_count() > 0 and act_pub.get_subscription_count() > 0, 20)
    now = time.time_ns()

    def odom(ns, frame="map", child="base_link", x=0.0, q=(0.0, 0.0, 0.0, 1.0), v=0.0, w=0.0):
        msg = Odometry()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(ns, NS)
        msg.header.frame_id, msg.child_frame_id = frame, child
        msg.pose.pose.position.x = x
        o = msg.pose.pose.orientation
        o.x, o.y, o.z, o.w = q
        msg.twist.twist.linear.x, msg.twist.twist.angular.z = v, w
        odo_pub.publish(msg)

    def actors(ns, frame="map", ids=("3",), q=(0.0, 0.0, 0.0, 1.0)):
        msg = ActorStateArray()
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(ns, NS)
        msg.header.frame_id = frame
        for i in ids:
            a = ActorState()
            a.id, a.category = i, "vehicle"
            a.pose.position.x, a.pose.position.z = 9.0, 0.8
            a.pose.orientation.x, a.pose.orientation.y, a.pose.orientation.z, a.pose.orientation.w = q
            msg.actors.append(a)
        act_pub.publish(msg)

    def published():
        return len(got.get(SENSOR_TOPICS[0]))

    odom(now)
    assert spin_until(ex, lambda: published() == 1, 60)
    step = 10_000_000
    odom(now + 1 * step, x=math.nan)
    odom(now + 2 * step, v=math.inf)
    odom(now + 3 * step, q=(0.0, 0.0, 0.0, 0.0))
    odom(now + 4 * step, q=(0.0, 0.0, 0.0, 1.7))
    odom(now + 5 * step, frame="odom")
    odom(now + 6 * step, child="imu_link")
    odom(now)                            # duplicate of the newest
    odom(now - 5 * step)                 # out of order
    odom(now + 30 * NS)                  # from the future
    actors(now, frame="odom")            # actors in another frame
    actors(now + 1 * step, ids=("99", "car"))   # unknown ids
    actors(now + 2 * step, ids=())              # empty array
    actors(now + 3 * step, ids=("3",), q=(0.0, 0.0, 0.0, 0.0))
    expected = {"non_finite": 2, "bad_quaternion": 2, "wrong_frame": 3, "duplicate": 1, "out_of_order": 1,
                "future": 1, "unknown_actor": 2, "empty_actor_array": 1}
    assert spin_until(ex, lambda: all(sim.engine.counts_snapshot().get(k, 0) >= c for k, c in expected.items()), 30), (
        sim.engine.counts_snapshot())
    odom(now - 20 * NS)  # far behind: a clock jump backwards in the stream (history reset) and too old
    assert spin_until(ex, lambda: published() >= 2, 60), sim.engine.counts_snapshot()
    odom(now + 7 * step, q=(0.0, 0.0, 0.0, 1.0005))  # slightly non-unit: normalised and used
    assert spin_until(ex, lambda: published() >= 3 and sim.idle(), 60), sim.engine.counts_snapshot()
    counts = sim.engine.counts_snapshot()
    assert counts["history_reset"] >= 1 and counts["too_old"] >= 1
    stamps = [stamp_ns(msg.header.stamp) for msg in got.get(SENSOR_TOPICS[0])]
    assert stamps == [now, now - 20 * NS, now + 7 * step]  # one capture per accepted pose, none for the others
    assert spin_until(ex, lambda: any(s.name == "sensor_sim: inputs" and s.level == b"\x01" for m in
                                      got.get("/diagnostics") for s in m.status), 10)
    inputs = [s for m in got.get("/diagnostics") for s in m.status if s.name == "sensor_sim: inputs"][-1]
    values = {kv.key: int(kv.value) for kv in inputs.values}
    assert all(values.get(k, 0) >= c for k, c in expected.items()) and "wrong_frame" in inputs.message
    ex.shutdown()
    sim.destroy_node()
    probe.destroy_node()


def test_realtime_drops_what_it_cannot_publish_in_time_and_never_queues(ros, assets, tmp_path):
    from nav_msgs.msg import Odometry
    from rclpy.executors import SingleThreadedExecutor

    # 1 kHz, global shutter: the deadline (the next capture complete) is 1 ms after the start, which no render meets
    rig = _rig_file(tmp_path, ["cam"], rate_hz=1000, rolling_shutter={"direction": "global", "readout_time": 0.0})
    sim = _sim(ros, assets, rig, trigger="realtime", log_period=0.5)
    probe = ros.create_node("probe_realtime")
    got = Collector(probe, _msgs())
    odo_pub = probe.create_publisher(Odometry, "ego/odometry", 100)
    ex = SingleThreadedExecutor()
    for n in (sim, probe):
        ex.add_node(n)

    def feed():
        msg = Odometry()
        msg.header.stamp = sim.get_clock().now().to_msg()
        msg.header.frame_id, msg.child_frame_id = "map", "base_link"
        msg.pose.pose.orientation.w = 1.0
        odo_pub.publish(msg)

    probe.create_timer(0.02, feed)
    spin_until(ex, lambda: False, 4.0)
    stats = sim.stats["cam"]
    assert stats.dropped["superseded"] > 10 and stats.dropped["late"] >= 2 and stats.dropped["deadline"] > 10
    assert stats.published == 0
    # never queued, and predicted: after two late renders in a row the captures are dropped before rendering, but
    # for a while only (the estimate expires and one is rendered again), so renders stay far fewer than captures
    assert 2 <= stats.rendered < 4.0 * 1000 / 20
    diag = [s for m in got.get("/diagnostics") for s in m.status if s.name == "sensor_sim: cam"]
    assert diag and diag[-1].level == b"\x01" and float({kv.key: kv.value for kv in diag[-1].values}["dropped"]) > 0
    ex.shutdown()
    sim.destroy_node()
    probe.destroy_node()



def test_stop_lets_the_render_in_progress_finish_and_starts_no_other(ros, assets):
    import threading

    from nav_msgs.msg import Odometry

    sim = _sim(ros, assets, trigger="pose")
    started, release, calls = threading.Event(), threading.Event(), []
    real_capture = sim.engine.capture

    def held_capture(sensor, start_ns, newest_ns=None):
        calls.append(sensor)
        started.set()
        release.wait(30)
        return real_capture(sensor, start_ns, newest_ns)

    sim.engine.capture = held_capture
    msg = Odometry()
    msg.header.stamp = sim.get_clock().now().to_msg()
    msg.header.frame_id, msg.child_frame_id = "map", "base_link"
    msg.pose.pose.orientation.w = 1.0
    sim._on_odometry(msg)  # one pose capture: cam, then top
    assert started.wait(30)
    sim.request_stop()  # while cam renders: it may finish, top must not start
    release.set()
    sim.stop()
    assert calls == ["cam"] and not sim._worker.is_alive() and sim.stats["cam"].published == 1
    sim.destroy_node()


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_a_signal_stops_a_node_during_start_up_even_with_sigint_ignored(assets, sig):
    """A node started in the background by a shell inherits SIGINT ignored; a signal during its start-up (imports,
    scene, first render: seconds) must still stop it there, not be lost or wait for the start-up to end."""
    import signal

    proc = subprocess.Popen([str(VENV_BIN / "sensor_sim"), "--ros-args", "-p", f"scene:={assets['scene']}",
                             "-p", f"rig:={assets['rig']}"], env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    end = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < end:
        time.sleep(0.2)  # repeated: the interpreter may not have started yet
        proc.send_signal(getattr(signal, sig))
    if proc.poll() is None:
        proc.kill()
    out = proc.communicate(timeout=30)[0]
    assert proc.returncode == 130, out[-2000:]
    assert "sensor(s)" not in out  # stopped during start-up, not after it


@pytest.mark.parametrize("case", ["missing_scene", "bad_parameter", "bad_params_file"])
def test_start_up_errors_are_one_line_and_exit_2(assets, tmp_path, case):
    args = ["-p", f"scene:={assets['scene']}", "-p", f"rig:={assets['rig']}"]
    if case == "missing_scene":
        args = ["-p", f"scene:={tmp_path / 'nope'}", "-p", f"rig:={assets['rig']}"]
        expect = "scene not found"
    elif case == "bad_parameter":
        args += ["-p", "point_format:=xyzrgb"]
        expect = "point_format: must be one of"
    else:
        bad = tmp_path / "bad.yaml"
        bad.write_text("sensor_sim: [unclosed\n")
        args += ["--params-file", str(bad)]
        expect = "parameter file"
    run = subprocess.run([str(VENV_BIN / "sensor_sim"), "--ros-args", *args], env=_env(), capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 2
    lines = [line for line in run.stderr.splitlines() if line.startswith("sensor_sim: error:")]
    assert len(lines) == 1 and expect in lines[0], run.stderr[-1000:]


def test_xsim_launch_bad_arguments_are_one_line_and_exit_2(assets, tmp_path):
    run = subprocess.run([str(VENV_BIN / "xsim"), "launch", str(LAUNCH), f"rig:={assets['rig']}"], env=_env(),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and run.stderr.strip().splitlines() == [
        f"xsim launch: error: {LAUNCH}: launch argument 'scene' is required (pass scene:=VALUE)"]
    run = subprocess.run([str(VENV_BIN / "xsim"), "launch", str(LAUNCH), f"scene:={tmp_path / 'none'}",
                          f"scenario:={assets['world']}"], env=_env(), capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "xsim launch: error: node sensor_sim: " in run.stderr
    assert "scene not found" in run.stderr and not (tmp_path / "bag").exists()
