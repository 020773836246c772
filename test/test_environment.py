"""The pip-only ROS 2 environment that `make .venv` builds: rclpy, the message packages, and the interface
packages built from this repository (xsim_msgs from msg/, the venv's tf2_msgs stand-in).

Checks that the compiled types match the .msg sources, that rclpy's CDR bytes equal the rosbags typestore's
(the bag writer, xsim_render/rosio), and that messages travel through a real rclpy graph on loopback.
`make check-colcon` (the colcon build of the repository) is a CI step of .ci/run, not a test here.
"""

from __future__ import annotations

import importlib
import os
import re
import threading
from pathlib import Path

import numpy as np
import pytest

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"

rclpy = pytest.importorskip("rclpy", reason="rclpy missing: run `make .venv` (requirements-ros.txt)")
from rclpy.serialization import deserialize_message, serialize_message  # noqa: E402

from xsim_render.rosio.messages import ActorStateSpec, TransformSpec, actor_state_array, tf_message  # noqa: E402
from xsim_render.rosio.typestore import typestore  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# Own DDS domain for this test run (other runs on the machine use theirs); valid Linux domain ids are < 233.
DOMAIN_ID = 120 + os.getpid() % 100

# .msg primitive -> rosidl Python field type as reported by get_fields_and_field_types()
PRIMITIVES = {"string": "string", "float64": "double", "float32": "float", "uint8": "uint8", "int32": "int32",
              "uint32": "uint32", "bool": "boolean"}


def _msg_class(type_name: str) -> type:
    """rclpy message class of 'pkg/msg/Name'."""
    pkg, kind, name = type_name.split("/")
    return getattr(importlib.import_module(f"{pkg}.{kind}"), name)


def _expected_fields(msg_file: Path, package: str) -> dict[str, str]:
    """{field: rosidl type string} parsed from a .msg file (the subset of the syntax our messages use)."""
    out = {}
    for line in msg_file.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        typ, name = line.split()[:2]
        seq = typ.endswith("[]")
        typ = typ.removesuffix("[]")
        if typ in PRIMITIVES:
            typ = PRIMITIVES[typ]
        elif "/" not in typ:
            typ = f"{package}/{typ}"
        out[name] = f"sequence<{typ}>" if seq else typ
    return out


def _to_rclpy(src: object, type_name: str) -> object:
    """Copy a rosbags message object into the rclpy message of the same type (field by field, recursively)."""
    cls = _msg_class(type_name)
    msg = cls()
    for name, typ in cls.get_fields_and_field_types().items():
        value = getattr(src, name)
        inner = re.fullmatch(r"sequence<(\w+)/(\w+)>", typ)
        if inner:
            value = [_to_rclpy(v, f"{inner[1]}/msg/{inner[2]}") for v in value]
        elif "/" in typ:
            pkg, sub = typ.split("/")
            value = _to_rclpy(value, f"{pkg}/msg/{sub}")
        setattr(msg, name, value)
    return msg


def _ignored_bytes(cdr: bytes, type_name: str) -> set[int]:
    """Offsets of the bytes of a rosbags CDR message that decoding ignores (alignment padding, string NULs).

    Found by perturbation: a byte is ignored when changing it leaves the decoded message, re-encoded, unchanged.
    Fast CDR (rclpy) does not initialise alignment padding, so only these offsets may differ from rosbags.
    """
    store = typestore()
    ignored = set()
    for i, b in enumerate(cdr):
        if b != 0:
            continue
        probe = bytearray(cdr)
        probe[i] = 0xA5
        try:
            again = bytes(store.serialize_cdr(store.deserialize_cdr(bytes(probe), type_name), type_name))
        except Exception:  # noqa: BLE001  (the byte matters: decoding rejects the change)
            continue
        if again == cdr:
            ignored.add(i)
    return ignored


def _assert_cdr_equal(data: bytes, ref: bytes, type_name: str) -> None:
    """rclpy bytes equal rosbags bytes everywhere except ignored padding (which is 0 in rosbags)."""
    assert len(data) == len(ref)
    differing = {i for i in range(len(ref)) if data[i] != ref[i]}
    ignored = _ignored_bytes(ref, type_name)
    assert differing <= ignored, f"bytes differ at non-padding offsets {sorted(differing - ignored)}"
    assert len(ignored) < len(ref) // 4  # the perturbation test really discriminates


def _rot_z(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _actors_rosbags() -> object:
    """A populated ActorStateArray built by the bag writer's builder (rosbags object)."""
    actors = [
        ActorStateSpec(id="7", category="vehicle", rotation=_rot_z(0.3), position=[612345.25, 5412345.5, 101.75],
                       linear_body=[8.5, 0.0, 0.0], angular_body=[0.0, 0.0, 0.05], size=[4.5, 1.9, 1.6]),
        ActorStateSpec(id="ped-12", category="pedestrian", rotation=_rot_z(-2.0), position=[-3.0, 2.0, 0.9],
                       linear_body=[1.2, 0.1, 0.0], angular_body=[0.0, 0.0, 0.0], size=[0.6, 0.6, 1.8]),
    ]
    return actor_state_array(1_767_225_600_123_456_789, "map", actors)


def test_message_packages_import() -> None:
    """Every message type the nodes use is importable from the venv with no extra environment."""
    for type_name in ("std_msgs/msg/Header", "geometry_msgs/msg/TransformStamped", "sensor_msgs/msg/Image",
                      "sensor_msgs/msg/PointCloud2", "sensor_msgs/msg/CameraInfo", "nav_msgs/msg/Odometry",
                      "rosgraph_msgs/msg/Clock", "builtin_interfaces/msg/Time", "diagnostic_msgs/msg/DiagnosticArray",
                      "visualization_msgs/msg/MarkerArray", "tf2_msgs/msg/TFMessage",
                      "xsim_msgs/msg/ActorState", "xsim_msgs/msg/ActorStateArray"):
        cls = _msg_class(type_name)
        assert cls.__name__ == type_name.rsplit("/", 1)[1]
    from rclpy.impl.implementation_singleton import rclpy_implementation  # noqa: F401  (C extension loads)


@pytest.mark.parametrize("name", ["ActorState", "ActorStateArray"])
def test_xsim_msgs_built_from_msg_dir(name: str) -> None:
    """The compiled xsim_msgs types have exactly the fields of msg/*.msg (a stale build fails here)."""
    expected = _expected_fields(ROOT / "msg" / f"{name}.msg", "xsim_msgs")
    assert _msg_class(f"xsim_msgs/msg/{name}").get_fields_and_field_types() == expected


def test_tf2_msgs_matches_distro_definition() -> None:
    """TFMessage (venv stand-in) has the distro's single field and the rosbags (Kilted) definition."""
    from tf2_msgs.msg import TFMessage

    assert TFMessage.get_fields_and_field_types() == {"transforms": "sequence<geometry_msgs/TransformStamped>"}
    fields = typestore().fielddefs["tf2_msgs/msg/TFMessage"][1]
    assert [f[0] for f in fields] == ["transforms"]


def test_actor_state_array_cdr_equals_rosbags() -> None:
    """rclpy's CDR bytes of ActorStateArray equal the bag writer's (rosbags; up to uninitialised padding), and
    each side decodes the other's bytes to the same message."""
    store = typestore()
    src = _actors_rosbags()
    ref = bytes(store.serialize_cdr(src, "xsim_msgs/msg/ActorStateArray"))
    msg = _to_rclpy(src, "xsim_msgs/msg/ActorStateArray")
    data = serialize_message(msg)
    _assert_cdr_equal(data, ref, "xsim_msgs/msg/ActorStateArray")
    back = deserialize_message(ref, _msg_class("xsim_msgs/msg/ActorStateArray"))
    assert back == msg
    assert back.header.stamp.sec == 1_767_225_600 and back.header.stamp.nanosec == 123_456_789
    assert [a.id for a in back.actors] == ["7", "ped-12"]
    assert back.actors[0].pose.position.x == 612345.25 and back.actors[0].size.x == 4.5
    assert abs(back.actors[0].pose.orientation.z - np.sin(0.15)) < 1e-15
    decoded = store.deserialize_cdr(data, "xsim_msgs/msg/ActorStateArray")
    assert decoded.actors[1].category == "pedestrian" and decoded.actors[1].twist.linear.x == 1.2


def test_tf_message_cdr_equals_rosbags() -> None:
    """The venv's tf2_msgs/TFMessage is wire-identical with the distro type known to rosbags."""
    src = tf_message([
        TransformSpec(ns=5_000_000_001, parent="base_link", child="front_optical_frame",
                      rotation=np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]),
                      translation=[1.5, 0.0, 1.6]),
        TransformSpec(ns=5_000_000_001, parent="base_link", child="top", rotation=np.eye(3),
                      translation=[0.0, 0.0, 1.8]),
    ])
    ref = bytes(typestore().serialize_cdr(src, "tf2_msgs/msg/TFMessage"))
    msg = _to_rclpy(src, "tf2_msgs/msg/TFMessage")
    _assert_cdr_equal(serialize_message(msg), ref, "tf2_msgs/msg/TFMessage")
    assert [t.child_frame_id for t in deserialize_message(ref, type(msg)).transforms] == ["front_optical_frame", "top"]


def test_publish_subscribe_round_trip_loopback() -> None:
    """ActorStateArray and TFMessage published by one node arrive unchanged at another (real DDS, loopback)."""
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from tf2_msgs.msg import TFMessage
    from xsim_msgs.msg import ActorStateArray

    context = Context()
    rclpy.init(context=context, domain_id=DOMAIN_ID)
    try:
        pub_node = rclpy.create_node("env_test_pub", context=context)
        sub_node = rclpy.create_node("env_test_sub", context=context)
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        got: dict[str, object] = {}
        done = threading.Event()

        def keep(topic: str, m: object) -> None:
            got.setdefault(topic, m)
            if len(got) == 2:
                done.set()

        sub_node.create_subscription(ActorStateArray, "actors", lambda m: keep("actors", m), qos)
        sub_node.create_subscription(TFMessage, "/tf_static", lambda m: keep("tf", m), qos)
        actors = _to_rclpy(_actors_rosbags(), "xsim_msgs/msg/ActorStateArray")
        tf = TFMessage(transforms=[_msg_class("geometry_msgs/msg/TransformStamped")(child_frame_id="top")])
        pub_node.create_publisher(ActorStateArray, "actors", qos).publish(actors)
        pub_node.create_publisher(TFMessage, "/tf_static", qos).publish(tf)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(sub_node)
        executor.add_node(pub_node)
        for _ in range(300):  # at most ~30 s: a guard against a hang, not a timing assertion
            executor.spin_once(timeout_sec=0.1)
            if done.is_set():
                break
        executor.shutdown()
        assert set(got) == {"actors", "tf"}
        assert got["actors"] == actors
        assert got["tf"].transforms[0].child_frame_id == "top"
    finally:
        rclpy.shutdown(context=context)


def test_packaging_layout() -> None:
    """colcon layout: two ROS packages (xsim_ros ament_python at the root, xsim_msgs ament_cmake interfaces),
    the venv-only tf2_msgs hidden from colcon, and setup.py installing every launch/config file and node."""
    import runpy

    import setuptools
    from catkin_pkg.package import parse_package

    root_pkg = parse_package(str(ROOT / "package.xml"))
    msgs_pkg = parse_package(str(ROOT / "xsim_msgs" / "package.xml"))
    assert (root_pkg.name, root_pkg.get_build_type()) == ("xsim_ros", "ament_python")
    assert (msgs_pkg.name, msgs_pkg.get_build_type()) == ("xsim_msgs", "ament_cmake")
    assert "rosidl_interface_packages" in [g.name for g in msgs_pkg.member_of_groups]
    assert "xsim_msgs" in [d.name for d in root_pkg.exec_depends]
    assert (ROOT / "venv_interfaces" / "tf2_msgs" / "COLCON_IGNORE").is_file()
    assert not (ROOT / "venv_interfaces" / "package.xml").exists()

    captured: dict = {}
    real_setup = setuptools.setup
    setuptools.setup = lambda **kw: captured.update(kw)
    try:
        runpy.run_path(str(ROOT / "setup.py"))
    finally:
        setuptools.setup = real_setup
    installed = {os.path.join(dest, os.path.basename(f)) for dest, files in captured["data_files"] for f in files}
    wanted = [p.relative_to(ROOT) for pattern in ("launch/*.xml", "launch/*.py", "launch/*.yaml", "config/*.yaml")
              for p in ROOT.glob(pattern)]
    assert wanted, "no launch/config files found"
    for rel in wanted:
        assert os.path.join("share", "xsim_ros", str(rel)) in installed, rel
    assert "share/ament_index/resource_index/packages/xsim_ros" in installed
    scripts = {s.split("=")[0].strip(): s.split("=")[1].strip() for s in captured["entry_points"]["console_scripts"]}
    assert scripts["sensor_sim"] == "xsim_ros.console:sensor_sim"
    assert scripts["scenario_player"] == "xsim_ros.console:scenario_player"
    if (ROOT / "xsim_render" / "kernels" / "csrc").is_dir():  # sources the kernels compile from at first use
        assert any("kernels/csrc" in f for f in captured["package_data"]["xsim_render"])
