"""State histories, message checks, capture scheduling, scenarios, launch XML and report helpers (no ROS needed)."""

from __future__ import annotations

import math
import struct
import sys
from pathlib import Path
from types import SimpleNamespace as NS_

import numpy as np
import pytest
import torch

from xsim_render.errors import InputError
from xsim_render.geometry import quaternion, so3
from xsim_render.rosio import messages as m
from xsim_render.sim.launch_xml import parse_assignments, parse_launch
from xsim_render.sim.params import SENSOR_SIM_PARAMS, check_value, spec_of
from xsim_render.sim.report import ClockMap, TopicLog, raw_stamp_ns, topic_rows
from xsim_render.sim.schedule import (
    CaptureScheduler,
    RenderTimeEstimate,
    SensorRate,
    latest_per_sensor,
    least_recently_served_first,
    realtime_plan,
)
from xsim_render.states.history import EGO, EMPTY, OK, STALE, Frame, HistoryConfig, StateHistory
from xsim_render.states.messages import actor_frame, odometry_frame
from xsim_render.states.sample import SampleError, sample_from_pose_twist

sys.path.insert(0, str(Path(__file__).parent))
from _ros_graph import world_doc  # noqa: E402

NS = 1_000_000_000
EPOCH = 1_700_000_000 * NS  # ROS epoch stamps must lose nothing


def _pose(x, y, z, q_xyzw):
    return NS_(position=NS_(x=x, y=y, z=z), orientation=NS_(x=q_xyzw[0], y=q_xyzw[1], z=q_xyzw[2], w=q_xyzw[3]))


def _twist(v, w):
    return NS_(linear=NS_(x=v[0], y=v[1], z=v[2]), angular=NS_(x=w[0], y=w[1], z=w[2]))


def _yaw_xyzw(yaw):
    return (0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2))


def _odom(ns, x=0.0, yaw=0.0, v=(0.0, 0.0, 0.0), w=(0.0, 0.0, 0.0), frame="map", child="base_link", q=None):
    stamp = NS_(sec=ns // NS, nanosec=ns % NS)
    return NS_(header=NS_(stamp=stamp, frame_id=frame), child_frame_id=child,
               pose=NS_(pose=_pose(x, 0.0, 0.0, q or _yaw_xyzw(yaw))), twist=NS_(twist=_twist(v, w)))


def _frame(ns, **kw):
    return odometry_frame(_odom(ns, **kw), "map", "base_link")


# ------------------------------------------------------------------------------------------------ samples

def test_twist_is_converted_from_the_body_to_the_world_frame():
    yaw = math.pi / 2  # body x = world y
    s = sample_from_pose_twist(0, _pose(1, 2, 3, _yaw_xyzw(yaw)), _twist((2.0, 0, 0), (0, 0, 0.5)), "t")
    assert torch.allclose(s.linear_velocity, torch.tensor([0.0, 2.0, 0.0], dtype=torch.float64), atol=1e-12)
    assert torch.allclose(s.angular_velocity, torch.tensor([0.0, 0.0, 0.5], dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize("q, kind", [((0, 0, 0, 0), "bad_quaternion"), ((0, 0, 0, 1.5), "bad_quaternion"),
                                     ((0, 0, float("nan"), 1), "non_finite")])
def test_bad_quaternions_are_rejected(q, kind):
    with pytest.raises(SampleError) as err:
        sample_from_pose_twist(0, _pose(0, 0, 0, q), _twist((0, 0, 0), (0, 0, 0)), "odometry")
    assert err.value.kind == kind


def test_slightly_non_unit_quaternion_is_normalised():
    s = sample_from_pose_twist(0, _pose(0, 0, 0, (0, 0, 0, 1.004)), _twist((0, 0, 0), (0, 0, 0)), "t")
    assert float(s.quaternion.norm()) == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize("field", ["position", "linear", "angular"])
def test_non_finite_pose_or_twist_is_rejected(field):
    pose = _pose(float("inf") if field == "position" else 0.0, 0, 0, (0, 0, 0, 1))
    twist = _twist((float("nan") if field == "linear" else 0.0, 0, 0), (0, 0, float("inf") if field == "angular"
                                                                         else 0.0))
    with pytest.raises(SampleError) as err:
        sample_from_pose_twist(0, pose, twist, "t")
    assert err.value.kind == "non_finite"


def test_odometry_frames_are_checked():
    with pytest.raises(SampleError, match="frame_id 'odom'") as err:
        _frame(0, frame="odom")
    assert err.value.kind == "wrong_frame"
    with pytest.raises(SampleError, match="child_frame_id"):
        _frame(0, child="imu")
    assert _frame(0, frame="/map").stamp_ns == 0  # a leading slash is the same frame


def test_actor_frame_keeps_good_actors_and_reports_the_others():
    def actor(i, q=(0, 0, 0, 1)):
        return NS_(id=i, category="vehicle", pose=_pose(1, 2, 0, q), twist=_twist((1, 0, 0), (0, 0, 0)),
                   size=NS_(x=4.0, y=2.0, z=1.5))

    msg = NS_(header=NS_(stamp=NS_(sec=1, nanosec=5), frame_id="map"),
              actors=[actor("3"), actor("9"), actor("car"), actor("3"), actor("4", (0, 0, 0, 0))])
    parsed = actor_frame(msg, "map", known_ids={3, 4})
    assert sorted(parsed.frame.samples) == [3]
    assert sorted(e.kind for e in parsed.rejected) == ["bad_quaternion", "duplicate_actor", "unknown_actor",
                                                       "unknown_actor"]
    assert parsed.info[3].size == (4.0, 2.0, 1.5)
    with pytest.raises(SampleError) as err:
        actor_frame(NS_(header=NS_(stamp=msg.header.stamp, frame_id="odom"), actors=[]), "map")
    assert err.value.kind == "wrong_frame"


# ------------------------------------------------------------------------------------------------ history

def test_interpolation_between_messages_is_slerp_and_lerp():
    h = StateHistory(HistoryConfig(max_state_age=0.5))
    h.add(_frame(EPOCH, x=0.0, yaw=0.0, v=(1.0, 0, 0)))
    h.add(_frame(EPOCH + 200_000_000, x=2.0, yaw=0.4, v=(3.0, 0, 0)))
    q = h.query(EPOCH + 50_000_000)
    assert q.status == OK and q.how == "interpolated"
    mo = q.motions[EGO]
    assert mo.position[0].item() == pytest.approx(0.5, abs=1e-12)
    assert float(so3.log(mo.rotation)[2]) == pytest.approx(0.1, abs=1e-12)  # slerp: a quarter of the yaw
    v_world_b = 3.0 * torch.tensor([math.cos(0.4), math.sin(0.4), 0.0], dtype=torch.float64)
    expected_v = 0.75 * torch.tensor([1.0, 0, 0], dtype=torch.float64) + 0.25 * v_world_b
    assert torch.allclose(mo.linear_velocity, expected_v, atol=1e-12)
    assert mo.time == (EPOCH + 50_000_000) / NS


def test_extrapolation_with_the_twist_up_to_max_state_age_then_refusal():
    h = StateHistory(HistoryConfig(max_state_age=0.5))
    h.add(_frame(EPOCH, x=1.0, yaw=0.0, v=(2.0, 0, 0), w=(0, 0, 0.4)))
    q = h.query(EPOCH + 300_000_000)
    assert q.status == OK and q.how == "extrapolated" and q.age_s == pytest.approx(0.3)
    expected = so3.exp(torch.tensor([0.0, 0.0, 0.4 * 0.3], dtype=torch.float64))
    assert torch.allclose(q.motions[EGO].rotation, expected, atol=1e-14)
    assert q.motions[EGO].position[0].item() == pytest.approx(1.0 + 2.0 * 0.3, abs=1e-9)
    stale = h.query(EPOCH + 600_000_000)
    assert stale.status == STALE and stale.motions == {} and stale.age_s == pytest.approx(0.6)
    assert h.query(EPOCH - 100_000_000).status == OK  # backwards within the age
    assert StateHistory().query(EPOCH).status == EMPTY


def test_exact_stamp_gives_the_message_state_and_newest_limits_the_frames():
    h = StateHistory()
    h.add(_frame(EPOCH, x=1.0))
    h.add(_frame(EPOCH + 100_000_000, x=2.0))
    assert h.query(EPOCH).how == "exact" and h.query(EPOCH).motions[EGO].position[0].item() == 1.0
    q = h.query(EPOCH + 50_000_000, newest_ns=EPOCH)
    assert q.how == "extrapolated"  # the later frame is ignored


def test_bad_stamps_duplicates_out_of_order_future_too_old_and_clock_jumps():
    h = StateHistory(HistoryConfig(span=2.0, jump_back=1.0, future_tolerance=1.0))
    h.add(_frame(EPOCH))
    h.add(_frame(EPOCH + 500_000_000))
    for stamp, kind in ((EPOCH + 500_000_000, "duplicate"), (EPOCH + 200_000_000, "out_of_order")):
        with pytest.raises(SampleError) as err:
            h.add(_frame(stamp))
        assert err.value.kind == kind
    with pytest.raises(SampleError) as err:
        h.add(_frame(EPOCH + 5 * NS), now_ns=EPOCH + NS)
    assert err.value.kind == "future"
    assert h.add(_frame(EPOCH + 600_000_000), now_ns=EPOCH + 10 * NS) == ["too_old"]
    assert len(h) == 3
    assert h.add(_frame(EPOCH - 5 * NS)) == ["reset"]
    assert len(h) == 1 and h.newest_ns == EPOCH - 5 * NS


def test_history_is_pruned_to_its_span():
    h = StateHistory(HistoryConfig(span=0.5))
    for k in range(20):
        h.add(_frame(k * 100_000_000))
    assert h.oldest_ns == 1_400_000_000 and len(h) == 6


# ------------------------------------------------------------------------------------------------ schedule

def test_scheduler_due_captures_in_order_and_exact_ns():
    sched = CaptureScheduler([SensorRate("cam", 10.0, 0.03), SensorRate("lidar", 20.0 / 3.0, 0.15)])
    t0 = 5_666_666_666 * 300_000_000  # an epoch instant both rates hit (every 0.3 s)
    assert [(c.sensor, c.start_ns) for c in sched.due(t0)] == [("cam", t0), ("lidar", t0)]
    due = sched.due(t0 + 300_000_000)
    assert [(c.sensor, c.start_ns - t0) for c in due] == [("cam", 100_000_000), ("lidar", 150_000_000),
                                                               ("cam", 200_000_000), ("cam", 300_000_000),
                                                               ("lidar", 300_000_000)]
    assert sched.due(t0 + 300_000_000) == []
    assert sched.next_start_ns(t0 + 300_000_000) == t0 + 400_000_000
    assert due[0].deadline_ns == t0 + 230_000_000  # next capture complete: 0.2 s + 30 ms readout
    sched.reset()
    assert sched.due(t0 + 350_000_000) == []  # first reading after a reset: only a start exactly now


def test_first_reading_between_captures_schedules_nothing_until_the_next():
    sched = CaptureScheduler([SensorRate("cam", 10.0)])
    assert sched.due(EPOCH + 50_000_000) == []
    assert [c.index for c in sched.due(EPOCH + 100_000_000)] == [17_000_000_001]


def test_realtime_plan_drops_superseded_and_late_captures_never_queues():
    sched = CaptureScheduler([SensorRate("cam", 10.0, 0.03), SensorRate("top", 10.0, 0.1)])
    sched.due(0)
    due = sched.due(350_000_000)
    plan = latest_per_sensor(due)
    assert [(c.sensor, c.start_ns) for c in plan.render] == [("cam", 300_000_000), ("top", 300_000_000)]
    assert sorted(r for _, r in plan.dropped) == ["superseded"] * 4
    plan = realtime_plan(due, 350_000_000, {"cam": 0.5})
    assert [c.sensor for c in plan.render] == ["top"]
    assert ("cam", "deadline") in [(c.sensor, r) for c, r in plan.dropped]



def test_sensors_take_turns_when_renders_are_slower_than_their_period():
    """One render at a time, re-planned after each, every render 0.3 s (three 10 Hz periods): the newest capture of
    the sensor served least recently goes next. In time order the first sensor of the rig won every time."""
    sched = CaptureScheduler([SensorRate("front", 10.0, 0.03), SensorRate("top", 10.0, 0.1)])
    now, turn, served, pending, rendered = 0, 0, {}, [], []
    for _ in range(10):
        plan = latest_per_sensor(pending + sched.due(now))
        order = least_recently_served_first(plan.render, served)
        c, pending = order[0], order[1:]
        turn += 1
        served[c.sensor] = turn
        rendered.append((c.sensor, c.start_ns))
        now += 300_000_000
    assert rendered[:4] == [("front", 0), ("top", 300_000_000), ("front", 600_000_000), ("top", 900_000_000)]
    assert [name for name, _ in rendered].count("top") == 5

def test_one_slow_render_never_locks_a_sensor_out_of_realtime_captures():
    """The rule behind the real-time drops: before, an average of render times seeded by an 8 s first render (the
    warm-up) predicted every later capture to miss its deadline, so none was rendered again and the estimate never
    came down. Now a capture is dropped on prediction only after two too-slow renders in a row, and only until the
    estimate expires; then one is rendered (measured) again."""
    capture = SensorRate("cam", 10.0, 0.03).capture(100)  # starts 10.0 s, deadline 10.13 s (next one complete)
    est = RenderTimeEstimate()

    def rendered(wall: float) -> bool:
        expected = est.expected(wall)
        plan = realtime_plan([capture], capture.start_ns, {} if expected is None else {"cam": expected})
        assert len(plan.render) + len(plan.dropped) == 1
        return bool(plan.render)

    est.record(8.0, 8.0)  # the slow first render
    assert est.expected(8.0) is None and rendered(8.0)
    est.record(0.02, 8.1)
    assert est.expected(8.1) == 0.02 and rendered(8.1)
    est.record(5.0, 13.1)  # one slow render among fast ones: the next capture is still rendered
    assert est.expected(13.1) == 0.02 and rendered(13.1)
    est.record(0.5, 13.6)  # two too-slow renders in a row (0.5 s > the 0.13 s to the deadline): predicted, dropped
    assert est.expected(13.6) == 0.5 and not rendered(13.6) and not rendered(15.6)
    assert est.expected(15.61) is None and rendered(15.61)  # expired after max(1 s, 4 x 0.5 s): measure again
    est.record(0.03, 15.64)  # renders are fast again: published from the next capture on
    assert est.expected(15.64) == 0.03 and rendered(15.64)
    plan = realtime_plan([capture], capture.deadline_ns + 1, {})  # past its deadline: dropped whatever the estimate
    assert plan.dropped == [(capture, "deadline")]


# ------------------------------------------------------------------------------------------------ params

def test_parameter_checks_give_the_reason():
    assert check_value(spec_of("point_format"), "xyzi") is None
    assert "must be one of" in check_value(spec_of("point_format"), "xyz")
    assert "must lie in" in check_value(spec_of("max_state_age"), -1.0)
    assert "must be a bool" in check_value(spec_of("organized"), "yes")
    assert "frame name" in check_value(spec_of("world_frame"), "/")
    assert "not usable" in check_value(spec_of("backend"), "cuda") or torch.cuda.is_available()
    names = {p.name for p in SENSOR_SIM_PARAMS}
    assert {"scene", "rig", "backend", "world_frame", "base_frame", "point_format", "organized", "trigger",
            "qos_reliability", "max_state_age", "world_from_scene"} <= names
    assert all(spec_of(n).read_only for n in ("scene", "rig", "trigger", "qos_reliability", "world_from_scene"))


# ------------------------------------------------------------------------------------------------ scenario

def _world(tmp_path):
    import yaml

    (tmp_path / "world").mkdir()
    (tmp_path / "world" / "world.yaml").write_text(yaml.safe_dump(world_doc(1.0)))
    return tmp_path


def test_world_scenario_ticks_and_bag_scenario_round_trip(tmp_path):
    from xsim_render.rosio.bag import BagWriter
    from xsim_render.sim.scenario import BagScenario, load_scenario, tick_outputs

    sc = load_scenario(_world(tmp_path), time_offset=1_700_000_000.0)
    assert (sc.start_ns, sc.end_ns) == (EPOCH, EPOCH + NS)
    outs = tick_outputs(sc, EPOCH + 500_000_000)
    assert [o.topic for o in outs] == ["ego/odometry", "actors", "/tf"]
    odo = outs[0].message
    assert m.stamp_ns(odo.header.stamp) == EPOCH + 500_000_000
    assert odo.header.frame_id == "map" and odo.child_frame_id == "base_link"
    assert odo.twist.twist.linear.x == pytest.approx(4.0, rel=1e-3)  # body frame: forward speed
    assert odo.pose.pose.position.x == pytest.approx(2.0, abs=0.01)
    assert [a.id for a in outs[1].message.actors] == ["3"]
    with BagWriter(tmp_path / "bag") as bag:
        bag.add_topic("/ego/odometry", "nav_msgs/msg/Odometry")
        bag.add_topic("/actors", "xsim_msgs/msg/ActorStateArray")
        for k in range(11):
            ns = EPOCH + k * 100_000_000
            o = tick_outputs(sc, ns)
            bag.write("/ego/odometry", o[0].message, ns)
            bag.write("/actors", o[1].message, ns)
    bag_sc = load_scenario(tmp_path / "bag")
    assert isinstance(bag_sc, BagScenario) and (bag_sc.start_ns, bag_sc.end_ns) == (EPOCH, EPOCH + NS)
    a, b = bag_sc.ego_at(EPOCH + 300_000_000), sc.ego_at(EPOCH + 300_000_000)
    assert torch.allclose(a.position, b.position, atol=1e-9) and torch.allclose(a.rotation, b.rotation, atol=1e-9)
    assert sorted(bag_sc.actors_at(EPOCH + 250_000_000)) == [3]
    assert bag_sc.ego_at(EPOCH + 2 * NS) is None


def test_bad_scenarios_are_one_line_errors(tmp_path):
    from xsim_render.sim.scenario import load_scenario

    with pytest.raises(InputError, match="not a scenario"):
        load_scenario(tmp_path)
    (tmp_path / "w.yaml").write_text("format: other\n")
    with pytest.raises(InputError, match="field 'format'"):
        load_scenario(tmp_path / "w.yaml")


# ------------------------------------------------------------------------------------------------ launch XML

LAUNCH = """<launch>
  <arg name="scene"/>
  <arg name="trigger" default="lockstep"/>
  <arg name="player" default="true"/>
  <let name="lockstep" value="$(eval &quot;'$(var trigger)' == 'lockstep'&quot;)"/>
  <node pkg="xsim_ros" exec="scenario_player" name="player" if="$(var player)">
    <param name="lockstep" value="$(var lockstep)"/>
  </node>
  <group unless="$(var player)">
    <node pkg="xsim_ros" exec="sensor_sim" name="alone"/>
  </group>
  <node pkg="xsim_ros" exec="sensor_sim" name="sim" namespace="car">
    <param from="$(dirname)/p.yaml"/>
    <param name="scene" value="$(arg scene)"/>
    <param name="where" value="$(find-pkg-share xsim_ros)/x $(env XSIM_TEST_UNSET fallback)"/>
    <remap from="ego/odometry" to="/odom"/>
  </node>
</launch>
"""


def test_launch_xml_substitutions_conditions_params_and_remaps(tmp_path):
    (tmp_path / "a.launch.xml").write_text(LAUNCH)
    (tmp_path / "p.yaml").write_text("sim:\n  ros__parameters: {}\n")
    desc = parse_launch(tmp_path / "a.launch.xml", {"scene": "/s", "trigger": "timer"},
                        share=lambda pkg: f"/share/{pkg}")
    player, sim = desc.nodes
    assert (player.executable, player.params) == ("scenario_player", [("lockstep", "False")])
    assert (sim.name, sim.namespace, sim.params_files) == ("sim", "car", [str(tmp_path / "p.yaml")])
    assert sim.params == [("scene", "/s"), ("where", "/share/xsim_ros/x fallback")]
    assert sim.ros_args() == ["--ros-args", "--params-file", str(tmp_path / "p.yaml"), "-p", "scene:=/s",
                              "-p", "where:=/share/xsim_ros/x fallback", "-r", "ego/odometry:=/odom"]
    desc = parse_launch(tmp_path / "a.launch.xml", parse_assignments(["scene:=/s", "player:=false"]),
                        share=lambda pkg: "/x")
    assert [n.name for n in desc.nodes] == ["alone", "sim"]


@pytest.mark.parametrize("args, message", [({}, "launch argument 'scene' is required"),
                                           ({"scene": "s", "bogus": "1"}, "unknown launch argument"),
                                           ({"scene": "s", "player": "maybe"}, "condition must be true/false")])
def test_launch_xml_errors_name_the_file_and_the_problem(tmp_path, args, message):
    (tmp_path / "a.launch.xml").write_text(LAUNCH)
    (tmp_path / "p.yaml").write_text("{}\n")
    with pytest.raises(InputError, match=message):
        parse_launch(tmp_path / "a.launch.xml", args, share=lambda pkg: "/x")


def test_the_shipped_launch_file_parses():
    root = Path(__file__).resolve().parents[1]
    desc = parse_launch(root / "launch" / "xsim_sim.launch.xml", {"scene": "/s", "scenario": "/w"})
    assert [n.executable for n in desc.nodes] == ["scenario_player", "sensor_sim"]
    assert ("lockstep", "True") in desc.nodes[0].params
    assert all(Path(f).is_file() for n in desc.nodes for f in n.params_files)
    assert ("rig", str(root / "config" / "demo_rig.yaml")) in desc.nodes[1].params or any(
        k == "rig" and v.endswith("config/demo_rig.yaml") for k, v in desc.nodes[1].params)


def test_demo_rig_is_the_synthetic_worlds_rig():
    from xsim_render.sensors.rig import load_rig
    from xsim_render.synth.presets import default_rig

    root = Path(__file__).resolve().parents[1]
    assert load_rig(root / "config" / "demo_rig.yaml").to_dict() == default_rig("small").to_dict()


# ------------------------------------------------------------------------------------------------ report

def test_raw_stamps_and_latency_rows():
    from xsim_render.sim.capture import serialize

    data = serialize("sensor_msgs/msg/CameraInfo", m.camera_info(EPOCH + 7, "f", _info()))
    assert raw_stamp_ns("sensor_msgs/msg/CameraInfo", data) == EPOCH + 7
    assert raw_stamp_ns("tf2_msgs/msg/TFMessage", data) is None
    clock = ClockMap()
    for k in range(5):
        clock.add(k * 100, 10.0 + k)
    log = TopicLog("sensor_msgs/msg/Image", [100, 300], [100, 300], [11.5, 13.25])
    row = topic_rows({"/img": log}, clock)[0]
    assert row["count"] == 2 and row["latency_ms_mean"] == pytest.approx(375.0)
    assert row["rate_hz"] == pytest.approx(1 / 200e-9)
    assert struct.calcsize("<iI") == 8


def _info():
    from xsim_render.rosio.image import camera_info
    from xsim_render.sensors.rig import rig_from_dict

    sys.path.insert(0, str(Path(__file__).parent))
    from _ros_graph import RIG

    return camera_info(rig_from_dict(RIG).sensor("cam"))


def test_frames_have_float64_motion_and_quaternion():
    f = Frame(EPOCH, {EGO: _frame(EPOCH).samples[EGO]})
    assert f.samples[EGO].rotation.dtype == torch.float64
    assert np.allclose(quaternion.to_matrix(f.samples[EGO].quaternion).numpy(), np.eye(3))
