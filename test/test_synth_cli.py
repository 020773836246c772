"""`xsim synth`: the drive bag's topics, rates, stamps and frames; bad arguments; end-to-end generate + validate."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from xsim_render.motion.rigid import RigidMotion
from xsim_render.rosio.bag import read_bag, topic_types
from xsim_render.rosio.messages import matrix_from_xyzw, stamp_ns
from xsim_render.rosio.pointcloud import unpack_cloud
from xsim_render.sensors.rays import lidar_column_times
from xsim_render.sensors.rig import CameraSpec, Extrinsics, LidarSpec, Rig, RollingShutter
from xsim_render.synth import export

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}


def xsim(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xsim_render.cli.main", *args], capture_output=True, text=True,
                          cwd=REPO, env=ENV, timeout=timeout)


# ------------------------------------------------------------------------- bag content with a stand-in world

EGO = RigidMotion.from_values((1.0, 2.0, 0.0), (math.cos(0.15), 0, 0, math.sin(0.15)),
                              (8.0 * math.cos(0.3), 8.0 * math.sin(0.3), 0.0), (0.0, 0.0, 0.2))
ACTOR = RigidMotion.from_values((20.0, 0.0, 0.8), (1.0, 0, 0, 0), (0.0, 5.0, 0.0), (0.0, 0.0, 0.0))


def _at(motion: RigidMotion, t: float) -> RigidMotion:
    rot, pos = motion.pose_at(t)
    return RigidMotion(rot, pos, motion.linear_velocity, motion.angular_velocity, t)


class FakeWorld:
    actors = [SimpleNamespace(id=4, category="vehicle", size=torch.tensor([4.5, 1.9, 1.5]))]

    def ego_motion(self, t):
        return _at(EGO, t)

    def actor_motions(self, t):
        return {4: _at(ACTOR, t)} if t < 0.25 else {}


class FakeTruth:
    @staticmethod
    def render_camera_truth(world, camera, t_start):
        rgb = np.zeros((camera.height, camera.width, 3), np.float32)
        rgb[..., 0] = t_start
        return {"rgb": rgb}

    @staticmethod
    def render_lidar_truth(world, lidar, t_start, seed=0):
        rng = np.random.default_rng(seed)
        ranges = rng.uniform(2.0, 40.0, (lidar.beams, lidar.columns))
        ranges[rng.random(ranges.shape) < 0.2] = np.nan
        times = lidar_column_times(lidar, t_start).numpy()
        return {"range": ranges, "intensity": rng.random(ranges.shape),
                "ray_time": np.broadcast_to(times, ranges.shape)}


def small_rig() -> Rig:
    cam = CameraSpec(name="front", model="pinhole", width=8, height=6, fx=5, fy=5, cx=4, cy=3,
                     rolling_shutter=RollingShutter("top_to_bottom", 0.03),
                     extrinsics=Extrinsics((1.5, 0.0, 1.6), (0.5, -0.5, 0.5, -0.5)), rate_hz=10.0)
    lidar = LidarSpec(name="top", elevations=(-0.2, 0.0, 0.1), columns=16, spin_rate_hz=10.0,
                      extrinsics=Extrinsics((0.0, 0.0, 1.9), (1.0, 0, 0, 0)), rate_hz=10.0)
    return Rig([cam, lidar])


@pytest.mark.parametrize("layout", ["xyzircaedt", "xyzirt"])
def test_drive_bag_contents(tmp_path, layout):
    rig = small_rig()
    duration = 0.3
    counts = export.write_drive_bag(tmp_path / "bag", FakeWorld(), rig, duration, layout=layout, truth=FakeTruth,
                                    progress=False)
    assert set(topic_types(tmp_path / "bag")) == set(export.topic_types(rig))
    msgs = read_bag(tmp_path / "bag")
    assert {t: len(v) for t, v in msgs.items()} == counts
    # rates: odometry/tf/clock at 100 Hz over [0, 0.3] inclusive, actors at 50 Hz, sensors at 10 Hz
    assert counts["/ego/odometry"] == counts["/tf"] == counts["/clock"] == 31
    assert counts["/actors"] == 16 and counts["/tf_static"] == 1
    assert counts["/sensing/lidar/top/pointcloud"] == 3  # sweeps 0, 0.1, 0.2 end by 0.3
    assert counts["/sensing/camera/front/image_raw"] == counts["/sensing/camera/front/camera_info"] == 3
    # log times are non-decreasing
    with_logs = sorted(ns for v in msgs.values() for ns, _ in v)
    assert with_logs[0] == 0

    # image stamps = capture start (t = k / rate), log time = end of readout, camera_info shares the header
    for k, ((log_ns, image), (_, info)) in enumerate(zip(msgs["/sensing/camera/front/image_raw"],
                                                         msgs["/sensing/camera/front/camera_info"])):
        assert stamp_ns(image.header.stamp) == stamp_ns(info.header.stamp) == k * 100_000_000
        assert log_ns == k * 100_000_000 + 30_000_000
        assert image.header.frame_id == info.header.frame_id == "front_optical_frame"
        assert image.data[0] == round(255 * k * 0.1)

    # clouds: stamp = sweep start, per-point times relative to it within [0, 0.1), organized, channel = beam
    for k, (log_ns, cloud_msg) in enumerate(msgs["/sensing/lidar/top/pointcloud"]):
        assert stamp_ns(cloud_msg.header.stamp) == k * 100_000_000 and log_ns == (k + 1) * 100_000_000
        assert cloud_msg.header.frame_id == "top"
        assert (cloud_msg.height, cloud_msg.width, cloud_msg.is_dense) == (3, 16, False)
        cloud = unpack_cloud(cloud_msg)
        assert cloud["time"].min() >= 0 and cloud["time"].max() < 0.1
        np.testing.assert_allclose(cloud["time"][0], (np.arange(16) + 0.5) / 160, atol=1e-6)
        np.testing.assert_array_equal(cloud["channel"], np.repeat(np.arange(3)[:, None], 16, 1))

    # odometry: pose in map, twist in base_link
    for log_ns, odo in msgs["/ego/odometry"][::7]:
        t = stamp_ns(odo.header.stamp) * 1e-9
        assert (odo.header.frame_id, odo.child_frame_id) == ("map", "base_link") and log_ns == stamp_ns(
            odo.header.stamp)
        rot, pos = EGO.pose_at(t)
        np.testing.assert_allclose(matrix_from_xyzw(odo.pose.pose.orientation), rot.numpy(), atol=1e-9)
        p = odo.pose.pose.position
        np.testing.assert_allclose([p.x, p.y, p.z], pos.numpy(), atol=1e-9)
        v = odo.twist.twist.linear
        np.testing.assert_allclose([v.x, v.y, v.z], rot.numpy().T @ EGO.linear_velocity.numpy(), atol=1e-9)
        assert v.x == pytest.approx(8.0 * math.cos(0.3 - (0.3 + 0.2 * t))) and odo.twist.twist.angular.z == 0.2

    # tf: map->odom identity, odom->base_link = odometry pose; tf_static: base_link -> sensor frames
    tf = msgs["/tf"][5][1].transforms
    assert [(x.header.frame_id, x.child_frame_id) for x in tf] == [("map", "odom"), ("odom", "base_link")]
    assert tf[1].transform.translation.x == pytest.approx(msgs["/ego/odometry"][5][1].pose.pose.position.x)
    static = {x.child_frame_id: x for x in msgs["/tf_static"][0][1].transforms}
    assert set(static) == {"front_optical_frame", "top"}
    assert static["front_optical_frame"].header.frame_id == "base_link"
    assert static["top"].transform.translation.z == 1.9

    # actors: present while they exist, pose in map, twist in the actor frame
    first = msgs["/actors"][0][1]
    assert first.header.frame_id == "map" and first.actors[0].id == "4" and first.actors[0].size.x == 4.5
    assert first.actors[0].twist.linear.y == 5.0
    assert len(msgs["/actors"][-1][1].actors) == 0


# ------------------------------------------------------------------------- command line


@pytest.mark.parametrize("args, needle", [
    (["--out", "{tmp}/d", "--duration", "-1"], "--duration"),
    (["--out", "{tmp}/d", "--duration", "nan"], "--duration"),
    (["--out", "{tmp}/d", "--preset", "huge"], "--preset"),
    (["--out", "{tmp}/d", "--layout", "xyz"], "--layout"),
    (["--out", "{tmp}/d", "--seed", "-3"], "--seed"),
    (["--out", "{tmp}/missing/d"], "does not exist"),
    (["--out", "{tmp}/file.txt/d"], "does not exist"),
    (["--out", "{tmp}/file.txt"], "not a directory"),
    (["--out", "{tmp}/full"], "not empty"),
    (["--validate", "{tmp}/missing"], "missing"),
    (["--validate", "{tmp}/full"], "missing"),
    ([], "required"),
])
def test_bad_arguments_one_line_exit_2(tmp_path, capsys, args, needle):
    from xsim_render.cli.main import main

    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep").write_text("x")
    before = sorted(p.name for p in tmp_path.iterdir())
    try:
        code = main(["synth", *[a.format(tmp=tmp_path) for a in args], "--quiet"])
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xsim synth: error:") and needle in lines[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing left behind
    assert (tmp_path / "full" / "keep").read_text() == "x"


def test_bad_argument_from_the_shell(tmp_path):
    proc = xsim("synth", "--out", str(tmp_path / "d"), "--duration", "-1", timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "--duration" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_failure_mid_generation_leaves_nothing(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("ground truth failed")

    monkeypatch.setattr(export, "write_drive_bag", boom)
    with pytest.raises(RuntimeError, match="ground truth failed"):
        export.generate_drive(tmp_path / "drive", preset="small", duration=0.2, progress=False)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------- end to end

E2E_BARS = {  # the bars on the small preset, 0.3 s, 1 capture per sensor (measured: 0.988, 0.3 mm,
    # 1.0 cm; 27.0 dB, 0.872)
    "lidar": {"hit_miss_agreement": 0.97, "median_range_error_m": 0.05, "chamfer_m": 0.05},
    "camera": {"psnr_db": 25.0, "ssim": 0.8},
}


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "drive"
    proc = xsim("synth", "--out", str(out), "--preset", "small", "--duration", "0.3", "--quiet")
    assert proc.returncode == 0, proc.stderr
    return out


def test_end_to_end_generate(drive):
    assert sorted(p.name for p in drive.iterdir()) == ["bag", "rig.yaml", "scene", "synth.yaml", "world"]
    assert not [p for p in drive.parent.iterdir() if p.name.startswith(".")]  # no temporary left
    msgs = read_bag(drive / "bag")
    assert set(msgs) == {"/clock", "/ego/odometry", "/tf", "/tf_static", "/actors",
                         "/sensing/camera/front/image_raw", "/sensing/camera/front/camera_info",
                         "/sensing/lidar/top/pointcloud"}
    assert len(msgs["/ego/odometry"]) == 31 and len(msgs["/sensing/lidar/top/pointcloud"]) == 3
    assert [stamp_ns(m.header.stamp) for _, m in msgs["/sensing/camera/front/image_raw"]] == [0, 10**8, 2 * 10**8]
    cloud_msg = msgs["/sensing/lidar/top/pointcloud"][1][1]
    assert stamp_ns(cloud_msg.header.stamp) == 10**8
    cloud = unpack_cloud(cloud_msg)
    assert (cloud_msg.height, cloud_msg.width) == (32, 1024)
    assert 0.0 <= cloud["time"].min() and cloud["time"].max() < 0.1
    hits = np.isfinite(cloud["xyz"]).all(-1)
    assert 0.3 < hits.mean() <= 1.0
    np.testing.assert_allclose(cloud["distance"][hits], np.linalg.norm(cloud["xyz"][hits], axis=-1), rtol=1e-5)
    odo = msgs["/ego/odometry"][-1][1]  # 0.3 s into the standing start
    lin = odo.twist.twist.linear
    assert lin.x > 0.1 and abs(lin.y) < 0.05 * lin.x  # forward in base_link
    assert len(msgs["/actors"][0][1].actors) >= 1
    # the top-down map: a real picture (many colours), not an empty canvas
    import matplotlib.image

    overview = matplotlib.image.imread(drive / "world" / "overview.png")
    assert overview.shape[0] > 300 and overview.shape[1] > 600
    assert len(np.unique(overview[..., :3].reshape(-1, 3).round(2), axis=0)) > 50
    # a second run into the same non-empty directory is refused (without --force)
    proc = xsim("synth", "--out", str(drive), "--duration", "0.3", "--quiet", timeout=120)
    assert proc.returncode == 2 and "not empty" in proc.stderr


@pytest.mark.slow  # renders the twin with the reference (pure PyTorch) renderer: minutes on a CPU
def test_end_to_end_validate(drive):
    proc = xsim("synth", "--validate", str(drive), "--frames", "1")
    assert proc.returncode == 0, proc.stderr
    assert "hit/miss" in proc.stdout and "PSNR" in proc.stdout
    report = json.loads((drive / "validation" / "validation.json").read_text())
    for name, kind in (("top", "lidar"), ("front", "camera")):
        assert (drive / "validation" / f"{name}.png").stat().st_size > 1000
        sensor = report["sensors"][name]
        assert sensor["type"] == kind and sensor["frames"] == 1
        for key, bar in E2E_BARS[kind].items():
            ok = sensor[key] >= bar if key in ("hit_miss_agreement", "psnr_db", "ssim") else sensor[key] <= bar
            assert ok, f"{name}.{key} = {sensor[key]} misses bar {bar}"


# ------------------------------------------------------------------------- validation pieces


def test_metrics():
    from xsim_render.synth.validate import chamfer, psnr, ssim

    rng = np.random.default_rng(0)
    img = rng.random((32, 40, 3))
    assert ssim(img, img) == pytest.approx(1.0) and psnr(img, img) == float("inf")
    assert psnr(np.zeros((4, 4)), np.full((4, 4), 0.1)) == pytest.approx(20.0)
    assert ssim(img, rng.random((32, 40, 3))) < 0.1
    pts = rng.random((100, 3))
    assert chamfer(pts, pts) == 0.0
    assert chamfer(pts, pts + [0.0, 0.0, 5.0]) > 4.0


def test_state_and_grid_from_bag(tmp_path):
    from xsim_render.synth.validate import lidar_grid, state_document

    rig = small_rig()
    export.write_drive_bag(tmp_path / "org", FakeWorld(), rig, 0.3, truth=FakeTruth, progress=False)
    export.write_drive_bag(tmp_path / "unorg", FakeWorld(), rig, 0.3, truth=FakeTruth, progress=False,
                           organized=False)
    msgs = read_bag(tmp_path / "org")
    ns = 123_000_000  # between odometry ticks: carried to the requested time with constant velocity
    doc = state_document(msgs["/ego/odometry"], msgs["/actors"], ns)
    assert doc["time"] == pytest.approx(0.123)
    rot, pos = EGO.pose_at(0.123)
    np.testing.assert_allclose(doc["ego"]["position"], pos.numpy(), atol=1e-9)
    np.testing.assert_allclose(doc["ego"]["linear_velocity"], EGO.linear_velocity.numpy(), atol=1e-9)
    np.testing.assert_allclose(doc["ego"]["angular_velocity"], [0, 0, 0.2], atol=1e-12)
    w, x, y, z = doc["ego"]["rotation_wxyz"]
    assert 2 * math.atan2(z, w) == pytest.approx(0.3 + 0.2 * 0.123)
    (actor,) = doc["actors"]
    assert actor["id"] == 4 and actor["category"] == "vehicle"
    np.testing.assert_allclose(actor["position"], ACTOR.pose_at(0.123)[1].numpy(), atol=1e-9)
    lidar = rig.sensor("top")
    org = msgs["/sensing/lidar/top/pointcloud"][1][1]
    unorg = read_bag(tmp_path / "unorg")["/sensing/lidar/top/pointcloud"][1][1]
    assert unorg.height == 1 and unorg.is_dense
    np.testing.assert_allclose(lidar_grid(lidar, unorg), lidar_grid(lidar, org), rtol=1e-6, equal_nan=True)
