"""The packing path of the sensor_sim node without ROS: every PointCloud2 layout against the render, CameraInfo
against the rig, the engine's interpolated states against a direct render, and its refusals."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from types import SimpleNamespace as NS_

import numpy as np
import pytest
import torch

from xsim_render.rosio.pointcloud import LAYOUTS, unpack_cloud
from xsim_render.sensors.rays import lidar_column_azimuths
from xsim_render.sim.capture import capture_outputs, render_sensor, sensor_frame, static_transforms
from xsim_render.sim.engine import EngineConfig, SensorEngine, load_assets
from xsim_render.states.history import EGO, HistoryConfig
from xsim_render.states.messages import odometry_frame
from xsim_render.states.sample import interpolate

sys.path.insert(0, str(Path(__file__).parent))
from _ros_graph import make_assets  # noqa: E402

NS = 1_000_000_000
T0 = 1_700_000_000 * NS


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    paths = make_assets(tmp_path_factory.mktemp("tiny"))
    return load_assets(paths["scene"], paths["rig"])


def _odom(ns, x, yaw, v=4.0, w=0.1):
    q = (0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2))
    return NS_(header=NS_(stamp=NS_(sec=ns // NS, nanosec=ns % NS), frame_id="map"), child_frame_id="base_link",
               pose=NS_(pose=NS_(position=NS_(x=x, y=0.2, z=0.0), orientation=NS_(x=q[0], y=q[1], z=q[2], w=q[3]))),
               twist=NS_(twist=NS_(linear=NS_(x=v, y=0.0, z=0.0), angular=NS_(x=0.0, y=0.0, z=w))))


@pytest.fixture(scope="module")
def sweep(assets):
    lidar = assets.rig.sensor("top")
    ego = odometry_frame(_odom(T0, 1.0, 0.05), "map", "base_link").samples[EGO].motion()
    return lidar, render_sensor(assets.scene, lidar, T0, ego, {})


@pytest.mark.parametrize("organized", [True, False])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_layout_has_the_conventions_fields_and_the_render_values(sweep, layout, organized):
    lidar, render = sweep
    (out,) = capture_outputs(lidar, T0, render, layout, organized)
    msg = out.message
    assert out.topic == "sensing/lidar/top/pointcloud" and msg.header.frame_id == "top"
    assert msg.header.stamp.sec * NS + msg.header.stamp.nanosec == T0
    fields, step = LAYOUTS[layout]
    assert [(f.name, f.offset, f.datatype, f.count) for f in msg.fields] == [
        (f.name, f.offset, f.datatype, f.count) for f in fields]
    assert msg.point_step == step and msg.row_step == step * msg.width
    returns = render["returns"].numpy()
    median = render["range_median"].numpy()
    ray_time = render["ray_time"].numpy() - T0 / NS
    beams, cols = np.nonzero(returns)
    assert returns.sum() > 50
    cloud = unpack_cloud(msg)
    if organized:
        assert (msg.height, msg.width, msg.is_dense) == (lidar.beams, lidar.columns, False)
        xyz = cloud["xyz"][beams, cols]
        assert np.isnan(cloud["xyz"][~returns]).all()
        pick = {k: v[beams, cols] for k, v in cloud.items()}
    else:
        assert (msg.height, msg.width, msg.is_dense) == (1, int(returns.sum()), True)
        order = np.lexsort((cols, beams))  # the packer keeps beam-major order
        beams, cols = beams[order], cols[order]
        xyz = cloud["xyz"][0]
        pick = {k: v[0] for k, v in cloud.items()}
    dist = np.linalg.norm(xyz, axis=-1)
    assert np.allclose(dist, median[beams, cols], rtol=1e-5, atol=1e-4)
    if "channel" in pick:
        assert np.array_equal(pick["channel"], beams)
    if "time" in pick:
        tol = 1e-9 if layout == "xyzircaedt" else 1e-7
        assert np.allclose(pick["time"], ray_time[beams, cols], atol=tol)
        assert pick["time"].min() >= 0 and pick["time"].max() < lidar.capture_duration
    if "azimuth" in pick:
        az = lidar_column_azimuths(lidar).numpy()[cols]
        assert np.allclose(pick["azimuth"], az, atol=1e-6)
        assert np.allclose(pick["elevation"], np.asarray(lidar.elevations)[beams], atol=1e-6)
        assert np.allclose(pick["distance"], median[beams, cols], rtol=1e-6)
        assert np.allclose(np.arctan2(xyz[:, 1], xyz[:, 0]), az, atol=1e-4)


def test_camera_info_follows_the_rig_with_the_ros_pixel_centre(assets):
    cam = assets.rig.sensor("cam")
    rgb = torch.rand(cam.height, cam.width, 3)
    image, info = capture_outputs(cam, T0 + 5, {"rgb": rgb})
    assert (image.topic, info.topic) == ("sensing/camera/cam/image_raw", "sensing/camera/cam/camera_info")
    for msg in (image.message, info.message):
        assert msg.header.frame_id == "cam_optical_frame" and msg.header.stamp.nanosec == 5
    assert image.message.encoding == "rgb8" and image.message.step == 3 * cam.width
    assert np.array_equal(np.frombuffer(image.message.data, np.uint8).reshape(cam.height, cam.width, 3),
                          np.round(rgb.numpy().astype(np.float64) * 255).astype(np.uint8))
    k = info.message.k.reshape(3, 3)
    assert np.array_equal(k, [[cam.fx, 0, cam.cx - 0.5], [0, cam.fy, cam.cy - 0.5], [0, 0, 1]])
    assert info.message.distortion_model == "plumb_bob" and np.array_equal(info.message.d, np.zeros(5))
    assert np.array_equal(info.message.p.reshape(3, 4)[:, :3], k) and np.array_equal(info.message.r, np.eye(3).ravel())


def test_static_transforms_are_the_rig_extrinsics(assets):
    tf = static_transforms(assets.rig, "base_link", 0)
    assert [(t.header.frame_id, t.child_frame_id) for t in tf.transforms] == [
        ("base_link", sensor_frame(s)) for s in assets.rig.sensors]
    cam = tf.transforms[0].transform
    assert (cam.translation.x, cam.translation.z) == (1.5, 1.4)
    assert (cam.rotation.w, cam.rotation.x, cam.rotation.y, cam.rotation.z) == pytest.approx((0.5, -0.5, 0.5, -0.5))


def test_engine_renders_interpolated_states_exactly_and_refuses_stale_ones(assets):
    engine = SensorEngine(assets, EngineConfig(history=HistoryConfig(max_state_age=0.2)))
    a, b = _odom(T0, 0.0, 0.0), _odom(T0 + 200_000_000, 0.8, 0.02)
    assert engine.add_odometry(a) == [] and engine.add_odometry(b) == []
    result = engine.capture("cam", T0 + 100_000_000)
    assert result.how == "interpolated" and not result.stale
    fa, fb = (odometry_frame(x, "map", "base_link").samples[EGO] for x in (a, b))
    direct = render_sensor(engine.scene, assets.rig.sensor("cam"), T0 + 100_000_000,
                           interpolate(fa, fb, T0 + 100_000_000), {})
    expected = capture_outputs(assets.rig.sensor("cam"), T0 + 100_000_000, direct)
    assert bytes(result.outputs[0].message.data) == bytes(expected[0].message.data)
    late = engine.capture("cam", T0 + 500_000_000)
    assert late.outputs == [] and "max_state_age" in late.stale
    assert engine.capture("cam", T0 + 350_000_000).how == "extrapolated"
    reports = engine.clock(T0 + NS) + engine.clock(T0 - 5 * NS)  # back by more than future_tolerance: all go
    assert [r.kind for r in reports] == ["history_reset"] and len(engine.ego) == 0
    assert "no ego state" in engine.capture("cam", T0).stale
    engine.add_odometry(_odom(T0 - 5 * NS, 0.0, 0.0))  # a state of the new timeline arriving before its clock
    assert engine.clock(T0 - 6 * NS)[0].kind == "history_reset" and len(engine.ego) == 1
