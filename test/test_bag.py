"""Atomic rosbag2 (mcap) writer, the xsim_msgs typestore, and message builders, read back with rosbags."""

from pathlib import Path

import numpy as np
import pytest
from rosbags.highlevel import AnyReader

from xsim_render.rosio import messages as m
from xsim_render.rosio import typestore as ts
from xsim_render.rosio.bag import BagWriter, qos, read_bag
from xsim_render.rosio.image import camera_info, float_from_image, rgb8_from_float
from xsim_render.rosio.pointcloud import pack_cloud, unpack_cloud
from xsim_render.sensors.rig import CameraSpec

REPO = Path(__file__).resolve().parents[1]


def test_embedded_definitions_match_msg_files():
    for name in ts.MESSAGES:
        assert (REPO / "msg" / f"{name}.msg").read_text() == ts.EMBEDDED[name]
    texts, source = ts.message_definitions()
    assert Path(source).resolve() == (REPO / "msg").resolve()
    assert texts == ts.EMBEDDED


def test_typestore_has_custom_types():
    store = ts.typestore()
    fields = dict(store.fielddefs[ts.ACTOR_STATE][1])
    assert set(fields) == {"id", "category", "pose", "twist", "size"}
    assert fields["pose"][1] == "geometry_msgs/msg/Pose" and fields["size"][1] == "geometry_msgs/msg/Vector3"
    arr = dict(store.fielddefs[ts.ACTOR_STATE_ARRAY][1])
    assert arr["header"][1] == "std_msgs/msg/Header"
    assert arr["actors"][1][0][1] == ts.ACTOR_STATE


def _write_sample(path: Path) -> None:
    rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # 90 deg yaw
    xyz = np.array([[[1.0, 0.0, 0.0], [np.nan] * 3], [[0.0, 2.0, 0.5], [3.0, 3.0, 0.0]]])
    cloud = pack_cloud("xyzircaedt", xyz, [[0.1, 0.0], [0.5, 1.0]], [[0, 0], [1, 1]], [[0.0, 0.05], [0.0, 0.05]])
    cam = CameraSpec(name="front", model="opencv", width=4, height=2, fx=10, fy=11, cx=2, cy=1,
                     distortion=(0.1, -0.01, 0.001, 0.002))
    rgb = np.linspace(0, 1, 24).reshape(2, 4, 3)
    with BagWriter(path) as bag:
        bag.add_topic("/clock", "rosgraph_msgs/msg/Clock")
        bag.add_topic("/tf_static", "tf2_msgs/msg/TFMessage", qos("transient_local"))
        bag.add_topic("/ego/odometry", "nav_msgs/msg/Odometry")
        bag.add_topic("/actors", ts.ACTOR_STATE_ARRAY)
        bag.add_topic("/sensing/lidar/top/pointcloud", "sensor_msgs/msg/PointCloud2")
        bag.add_topic("/sensing/camera/front/image_raw", "sensor_msgs/msg/Image")
        bag.add_topic("/sensing/camera/front/camera_info", "sensor_msgs/msg/CameraInfo")
        bag.write("/tf_static", m.tf_message([m.TransformSpec(0, "base_link", "top", np.eye(3), [1, 0, 2])]), 0)
        for k in range(3):
            ns = k * 10_000_000
            bag.write("/clock", m.clock(ns), ns)
            bag.write("/ego/odometry", m.odometry(ns, rot, [k, 0, 0], [2.0, 0, 0], [0, 0, 0.1]), ns)
            actor = m.ActorStateSpec("7", "vehicle", rot, [5, 5, 0], [3, 0, 0], [0, 0, 0], [4.5, 1.9, 1.6])
            bag.write("/actors", m.actor_state_array(ns, "map", [actor]), ns)
        bag.write("/sensing/lidar/top/pointcloud", m.pointcloud2(1_000_000_000, "top", cloud), 1_100_000_000)
        bag.write("/sensing/camera/front/image_raw",
                  m.image(2_000_000_000, "front_optical_frame", rgb8_from_float(rgb)), 2_000_000_000)
        bag.write("/sensing/camera/front/camera_info",
                  m.camera_info(2_000_000_000, "front_optical_frame", camera_info(cam)), 2_000_000_000)


def test_write_and_read_back(tmp_path):
    path = tmp_path / "bag"
    _write_sample(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bag"]  # no temporary left beside it
    assert (path / "metadata.yaml").is_file() and list(path.glob("*.mcap"))
    # A plain AnyReader (no project typestore) rebuilds xsim_msgs types from the definitions in the bag.
    with AnyReader([path]) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        assert types["/actors"] == "xsim_msgs/msg/ActorStateArray"
        assert types["/sensing/lidar/top/pointcloud"] == "sensor_msgs/msg/PointCloud2"
        actors = [reader.deserialize(raw, c.msgtype) for c, _, raw in reader.messages()
                  if c.topic == "/actors"]
        static = [c for c in reader.connections if c.topic == "/tf_static"][0]
        assert static.ext.offered_qos_profiles[0].durability.name == "TRANSIENT_LOCAL"
    assert len(actors) == 3
    a = actors[1].actors[0]
    assert (a.id, a.category, a.size.x, a.twist.linear.x) == ("7", "vehicle", 4.5, 3.0)
    assert a.pose.orientation.w == pytest.approx(np.sqrt(0.5)) and a.pose.orientation.z == pytest.approx(np.sqrt(0.5))
    assert m.stamp_ns(actors[1].header.stamp) == 10_000_000

    msgs = read_bag(path)
    assert [m.stamp_ns(x.header.stamp) for _, x in msgs["/ego/odometry"]] == [0, 10_000_000, 20_000_000]
    odo = msgs["/ego/odometry"][2][1]
    assert odo.header.frame_id == "map" and odo.child_frame_id == "base_link"
    assert odo.pose.pose.position.x == 2.0 and odo.twist.twist.angular.z == 0.1
    log_ns, cloud_msg = msgs["/sensing/lidar/top/pointcloud"][0]
    assert log_ns == 1_100_000_000 and m.stamp_ns(cloud_msg.header.stamp) == 1_000_000_000
    cloud = unpack_cloud(cloud_msg)
    assert (cloud_msg.height, cloud_msg.width, cloud_msg.is_dense) == (2, 2, False)
    np.testing.assert_allclose(cloud["time"], [[0.0, 0.05], [0.0, 0.05]], atol=1e-9)
    assert np.isnan(cloud["xyz"][0, 1]).all()
    image = msgs["/sensing/camera/front/image_raw"][0][1]
    assert (image.encoding, image.step, image.header.frame_id) == ("rgb8", 12, "front_optical_frame")
    np.testing.assert_allclose(float_from_image(image), np.linspace(0, 1, 24).reshape(2, 4, 3), atol=0.5 / 255)
    info = msgs["/sensing/camera/front/camera_info"][0][1]
    assert info.distortion_model == "plumb_bob" and list(info.d) == [0.1, -0.01, 0.001, 0.002, 0.0]
    assert list(info.k) == [10, 0, 1.5, 0, 11, 0.5, 0, 0, 1]  # ROS pixel-centre origin: cx - 0.5, cy - 0.5
    assert m.stamp_ns(info.header.stamp) == m.stamp_ns(image.header.stamp)
    tf = msgs["/tf_static"][0][1].transforms[0]
    assert (tf.header.frame_id, tf.child_frame_id, tf.transform.translation.z) == ("base_link", "top", 2.0)


def test_failure_mid_write_leaves_nothing(tmp_path):
    path = tmp_path / "bag"
    with pytest.raises(RuntimeError, match="boom"):
        with BagWriter(path) as bag:
            bag.add_topic("/clock", "rosgraph_msgs/msg/Clock")
            bag.write("/clock", m.clock(0), 0)
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_refuses_existing_target(tmp_path):
    (tmp_path / "bag").mkdir()
    with pytest.raises(FileExistsError):
        with BagWriter(tmp_path / "bag"):
            pass
    assert [p.name for p in tmp_path.iterdir()] == ["bag"]


def test_camera_info_models():
    def info(model, dist):
        return camera_info(CameraSpec(name="c", model=model, width=8, height=6, fx=5, fy=5, cx=4, cy=3,
                                      distortion=dist))

    assert info("pinhole", ()).distortion_model == "plumb_bob" and list(info("pinhole", ()).d) == [0.0] * 5
    rational = info("opencv", tuple(range(1, 9)))
    assert rational.distortion_model == "rational_polynomial" and list(rational.d) == list(range(1, 9))
    fisheye = info("fisheye", (0.1, 0.2, 0.3, 0.4))
    assert fisheye.distortion_model == "equidistant" and list(fisheye.d) == [0.1, 0.2, 0.3, 0.4]
    assert list(fisheye.p) == [5, 0, 3.5, 0, 0, 5, 2.5, 0, 0, 0, 1, 0]
    assert list(fisheye.r) == [1, 0, 0, 0, 1, 0, 0, 0, 1]


def test_negative_and_large_times():
    t = m.time_msg(-1)
    assert (t.sec, t.nanosec) == (-1, 999_999_999) and m.stamp_ns(t) == -1
    assert m.stamp_ns(m.time_msg(12_345_678_901)) == 12_345_678_901
