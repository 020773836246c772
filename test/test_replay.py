"""`xsim replay`: a recorded bag re-rendered along an edited drive (tiny wall-and-actor world, tiny rig).

What is held: a replay without edits changes nothing but the sensor messages (byte-identical other topics, same
counts, stamps, log times, connections); a lateral offset moves odometry, /tf and the LiDAR's view of a wall by
exactly the offset, with velocities that are the derivative of the edited path; a removed actor leaves the actor
arrays and the renders; SIGINT leaves no bag and --resume finishes it identical to an uninterrupted run; bad bags
and missing topics fail on one line with exit code 2 and no output; a clock jumping backwards resets the history
and the replay goes on.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from _replay_bag import ACTOR_ID, WALL_Y, raw_messages, write_assets, write_bag

from xsim_render.cli.main import main
from xsim_render.replay.apply import EditedDrive
from xsim_render.replay.checkpoint import work_dir
from xsim_render.replay.edits import Edits, LateralProfile
from xsim_render.replay.rewrite import ReplayConfig, replay
from xsim_render.replay.trajectory import TopicOptions, scan_bag
from xsim_render.rosio.bag import read_bag
from xsim_render.rosio.image import float_from_image
from xsim_render.rosio.messages import stamp_ns
from xsim_render.rosio.pointcloud import unpack_cloud

REPO = Path(__file__).resolve().parents[1]
SENSOR_TOPICS = ("/sensing/camera/front/image_raw", "/sensing/camera/front/camera_info",
                 "/sensing/lidar/top/pointcloud")
ENV = {**os.environ, "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("replay")
    scene, rig = write_assets(d)
    write_bag(d / "in")
    return d, scene, rig


def _replay(world, out: Path, *flags: str) -> int:
    d, scene, rig = world
    return main(["replay", str(d / "in"), "--scene", str(scene), "--rig", str(rig), "--out", str(out), "--quiet",
                 *flags])


def connections(path: Path) -> dict[str, tuple]:
    from rosbags.highlevel import AnyReader

    with AnyReader([path]) as reader:
        return {c.topic: (c.msgtype, c.msgdef.data, c.digest, c.ext) for c in reader.connections}


def wall_and_front(msg) -> tuple[float, float]:
    """Median range of the horizontal beam towards the left wall (azimuth 80..100 deg) and the nearest return
    straight ahead (|azimuth| < 10 deg; inf when none)."""
    xyz = unpack_cloud(msg)["xyz"][1]
    az = np.degrees(np.arctan2(xyz[:, 1], xyz[:, 0]))
    rng = np.linalg.norm(xyz, axis=1)
    left = np.abs(az - 90) < 10
    ahead = (np.abs(az) < 10) & np.isfinite(rng)
    return float(np.nanmedian(rng[left])), float(rng[ahead].min()) if ahead.any() else float("inf")


@pytest.fixture(scope="module")
def plain(world):
    out = world[0] / "plain"
    assert _replay(world, out) == 0
    return out


def test_no_edit_changes_only_sensor_messages(world, plain):
    src, dst = raw_messages(world[0] / "in"), raw_messages(plain)
    assert sorted(src) == sorted(dst)
    assert connections(world[0] / "in") == connections(plain)  # types, definitions, hashes, QoS profiles
    for topic in src:
        assert [log for log, _ in src[topic]] == [log for log, _ in dst[topic]], topic
        if topic not in SENSOR_TOPICS:
            assert src[topic] == dst[topic], f"{topic} not copied byte for byte"
    bag_in, bag_out = read_bag(world[0] / "in", list(SENSOR_TOPICS)), read_bag(plain, list(SENSOR_TOPICS))
    for topic in SENSOR_TOPICS:
        assert [stamp_ns(m.header.stamp) for _, m in bag_in[topic]] == [stamp_ns(m.header.stamp)
                                                                        for _, m in bag_out[topic]]
    # the sensors were re-rendered: the recorded grey image and dummy cloud are gone, the wall is 4 m to the left
    assert src["/sensing/camera/front/image_raw"] != dst["/sensing/camera/front/image_raw"]
    for _, msg in bag_out["/sensing/lidar/top/pointcloud"]:
        wall, ahead = wall_and_front(msg)
        assert wall == pytest.approx(WALL_Y, abs=0.05)
        assert ahead < 11.0  # the actor box (near face at x = 11 m) minus the distance driven
    assert (plain.parent / "plain.contact_sheet.png").stat().st_size > 1000
    assert not work_dir(plain).exists()


def test_lateral_offset_moves_odometry_tf_and_points(world, plain):
    out = world[0] / "left1"
    assert _replay(world, out, "--ego-lateral-offset", "1.0", "--ramp", "0") == 0
    src, dst = read_bag(world[0] / "in"), read_bag(out)
    for (_, a), (_, b) in zip(src["/ego/odometry"], dst["/ego/odometry"]):
        pa, pb = a.pose.pose.position, b.pose.pose.position
        assert (pb.x, pb.y, pb.z) == pytest.approx((pa.x, pa.y + 1.0, pa.z), abs=1e-12)
        assert b.twist.twist.linear.x == pytest.approx(a.twist.twist.linear.x, abs=1e-12)
    for (_, a), (_, b) in zip(src["/tf"], dst["/tf"]):
        assert repr(b.transforms[0]) == repr(a.transforms[0])  # map -> odom untouched
        ta, tb = a.transforms[1].transform.translation, b.transforms[1].transform.translation
        assert (tb.x, tb.y) == pytest.approx((ta.x, ta.y + 1.0), abs=1e-12)
    assert raw_messages(world[0] / "in")["/vehicle/status"] == raw_messages(out)["/vehicle/status"]
    plain_bag = read_bag(plain, ["/sensing/lidar/top/pointcloud"])["/sensing/lidar/top/pointcloud"]
    for (_, a), (_, b) in zip(plain_bag, dst["/sensing/lidar/top/pointcloud"]):
        assert wall_and_front(a)[0] - wall_and_front(b)[0] == pytest.approx(1.0, abs=0.03)


def test_ramped_offset_velocities_are_the_path_derivative(world):
    scan = scan_bag(world[0] / "in", TopicOptions())
    drive = EditedDrive(scan.epochs, Edits(ego_lateral_offset=2.0, ramp=0.15))
    prof = drive.profiles[0]
    assert float(prof.at(0.0)[0]) == 0.0 and float(prof.at(0.2)[0]) == pytest.approx(2.0)
    h = 1e-4
    for t in (0.03, 0.075, 0.12, 0.3):
        ns = int(t * 1e9)
        a, b, c = (drive.ego(0, ns + int(dt * 1e9)) for dt in (-h, 0.0, h))
        numeric = (c.position - a.position) / (2 * h)
        assert torch.allclose(b.linear_velocity, numeric, atol=1e-4), (t, b.linear_velocity, numeric)
    assert float(drive.ego(0, int(0.075e9)).linear_velocity[1]) > 10.0  # mid-ramp: moving left fast


def test_profile_shapes():
    p = LateralProfile(3.0, 1.0, 0.0, 10.0)
    d, dd = p.at(torch.tensor([0.0, 0.5, 1.0, 5.0, 9.5, 10.0]))
    assert d.tolist() == pytest.approx([0.0, 1.5, 3.0, 3.0, 1.5, 0.0])
    assert dd.tolist() == pytest.approx([0.0, 3 * np.pi / 2, 0.0, 0.0, -3 * np.pi / 2, 0.0])


def test_remove_actor(world, plain):
    out = world[0] / "noactor"
    assert _replay(world, out, "--remove-actor", str(ACTOR_ID)) == 0
    dst = read_bag(out)
    assert all(not msg.actors for _, msg in dst["/actors"])
    assert all(a.id == str(ACTOR_ID) for _, msg in read_bag(world[0] / "in", ["/actors"])["/actors"]
               for a in msg.actors)
    for _, msg in dst["/sensing/lidar/top/pointcloud"]:
        assert wall_and_front(msg)[1] == float("inf")  # nothing ahead any more
    with_actor = float_from_image(read_bag(plain)["/sensing/camera/front/image_raw"][0][1])
    without = float_from_image(dst["/sensing/camera/front/image_raw"][0][1])
    centre = (slice(4, 8), slice(6, 10))
    assert with_actor[centre][..., 2].mean() > without[centre][..., 2].mean() + 0.2  # the blue box is gone


def test_ego_from_tf_when_there_is_no_odometry(tmp_path, world):
    d, scene, rig = world
    write_bag(tmp_path / "in", odometry=False)
    out = tmp_path / "out"
    assert main(["replay", str(tmp_path / "in"), "--scene", str(scene), "--rig", str(rig), "--out", str(out),
                 "--quiet", "--ego-lateral-offset", "-1", "--ramp", "0", "--contact-rows", "0"]) == 0
    dst = read_bag(out)
    assert "/ego/odometry" not in dst
    assert all(msg.transforms[1].transform.translation.y == pytest.approx(-1.0) for _, msg in dst["/tf"])
    for _, msg in dst["/sensing/lidar/top/pointcloud"]:
        assert wall_and_front(msg)[0] == pytest.approx(WALL_Y + 1.0, abs=0.05)


def test_clock_jump_back_resets_history_and_continues(tmp_path, world):
    d, scene, rig = world
    write_bag(tmp_path / "in", duration=0.4, loop_back_at=0.3)
    summary = replay(ReplayConfig(tmp_path / "in", str(scene), str(rig), tmp_path / "out", progress=False,
                                  contact_rows=0))
    assert summary.history_resets >= 1 and summary.stale == 0
    clouds = read_bag(tmp_path / "out")["/sensing/lidar/top/pointcloud"]
    stamps = [stamp_ns(m.header.stamp) for _, m in clouds]
    assert stamps == [0, 100_000_000, 200_000_000, 0, 100_000_000, 200_000_000, 300_000_000]
    first, again = wall_and_front(clouds[0][1]), wall_and_front(clouds[3][1])
    assert again == pytest.approx(first, abs=1e-3)  # the second t = 0 rendered from the new timeline's states


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("xsim replay: error:"), err
    return err[0]


def test_truncated_bag_one_line_exit_2(tmp_path, world, capsys):
    bad = tmp_path / "bad"
    shutil.copytree(world[0] / "in", bad)
    mcap = next(bad.glob("*.mcap"))
    data = mcap.read_bytes()
    mcap.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out"
    assert main(["replay", str(bad), "--scene", str(world[1]), "--rig", str(world[2]), "--out", str(out),
                 "--quiet"]) == 2
    line = _one_line(capsys)
    assert str(bad) in line
    assert not out.exists() and not work_dir(out).exists()


@pytest.mark.parametrize("flags, needle", [
    (["--odometry-topic", "/nope/ego/odometry"], "topic /nope/ego/odometry"),
    (["--tf-topic", "/tf_nope"], "topic ego/odometry"),
])
def test_missing_topic_one_line_exit_2(tmp_path, world, capsys, flags, needle):
    d, scene, rig = world
    bag = d / "in"
    if flags[0] == "--tf-topic":
        bag = tmp_path / "no_odometry"
        write_bag(bag, odometry=False)
    out = tmp_path / "out"
    assert main(["replay", str(bag), "--scene", str(scene), "--rig", str(rig), "--out", str(out), "--quiet",
                 *flags]) == 2
    line = _one_line(capsys)
    assert str(bag) in line and needle in line
    assert not out.exists()


def test_unreadable_bag_and_bad_edit(tmp_path, world, capsys):
    d, scene, rig = world
    assert main(["replay", str(tmp_path / "missing"), "--scene", str(scene), "--rig", str(rig), "--out",
                 str(tmp_path / "o")]) == 2
    assert "missing" in _one_line(capsys)
    assert _replay(world, tmp_path / "o", "--shift-actor", "1:2,x,0") == 2
    assert "--shift-actor" in _one_line(capsys)
    assert not (tmp_path / "o").exists()


def _interrupt_after(args: list[str], captures: Path, at_least: int, sig: int) -> tuple[int, str]:
    """Start a replay, send `sig` once `at_least` capture files are in its checkpoint; (exit code, stderr)."""
    proc = subprocess.Popen(args, cwd=REPO, env=ENV, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if captures.is_dir() and len(list(captures.glob("*.npz"))) >= at_least:
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"replay ended before it could be interrupted: {proc.stderr.read()}"
    proc.send_signal(sig)
    code = proc.wait(timeout=60)
    return code, proc.stderr.read()


def test_sigint_leaves_no_bag_and_resume_equals_uninterrupted(tmp_path, world):
    """Ctrl-C, then SIGTERM during the resumed run: each stops at the next capture (exit 130 / 143), no bag, no
    temporary files, the checkpoint kept; the second resume writes the bag an uninterrupted run writes."""
    d, scene, rig = world
    write_bag(tmp_path / "in", duration=1.5)
    args = [sys.executable, "-m", "xsim_render.cli.main", "replay", str(tmp_path / "in"), "--scene", str(scene),
            "--rig", str(rig), "--quiet", "--ego-lateral-offset", "0.5", "--contact-rows", "0"]
    out = tmp_path / "out"
    reference = subprocess.run([*args, "--out", str(tmp_path / "ref")], cwd=REPO, env=ENV, capture_output=True,
                               text=True, timeout=300)
    assert reference.returncode == 0, reference.stderr
    total = int(reference.stdout.split(" captures rendered")[0].rsplit(" ", 1)[-1])
    assert total >= 20
    captures = work_dir(out) / "captures"
    done = 0
    for sig, code_expected, resume in ((signal.SIGINT, 130, []), (signal.SIGTERM, 143, ["--resume"])):
        code, err = _interrupt_after([*args, "--out", str(out), *resume], captures, done + 2, sig)
        assert code == code_expected, f"exit {code} after {sig.name}: {err}"
        assert f"{sig.name}: stopping at the next safe point" in err
        assert not out.exists()
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.") and p.name.endswith(".tmp")]
        now = len(list(captures.glob("*.npz")))
        assert done + 2 <= now <= min(done + 6, total - 1), (done, now, total)  # stopped soon, not at the end
        done = now
    resumed = subprocess.run([*args, "--out", str(out), "--resume"], cwd=REPO, env=ENV, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{total - done} captures rendered, {done} from the checkpoint" in resumed.stdout
    assert raw_messages(out) == raw_messages(tmp_path / "ref")
    assert not work_dir(out).exists()


def test_validate_scores_the_edited_drive_against_exact_truth(tmp_path):
    """A synthetic drive (small world, 0.1 s: one capture per sensor, tiny rig): the replay 1 m to the left is
    scored against the ray-traced truth of the same edited drive, and agrees with it (the truth was rendered where
    the edited ego was)."""
    import json
    import math

    from xsim_render.scene.io import save_scene
    from xsim_render.sensors.rig import CameraSpec, Extrinsics, LidarSpec, Rig, RollingShutter
    from xsim_render.synth import export, twin
    from xsim_render.synth import world as worldgen

    d = tmp_path / "drive"
    d.mkdir()
    w = worldgen.generate_world("small", 0, 0.1)
    cam = CameraSpec(name="front", model="pinhole", width=32, height=24, fx=24, fy=24, cx=16, cy=12,
                     rolling_shutter=RollingShutter("top_to_bottom", 0.03),
                     extrinsics=Extrinsics((1.5, 0.0, 1.6), (0.5, -0.5, 0.5, -0.5)), rate_hz=10.0)
    lidar = LidarSpec(name="top", elevations=tuple(math.radians(x) for x in (-15, -8, -4, -2, 0, 2, 5, 9)),
                      columns=128, spin_rate_hz=10.0, min_range=1.0, max_range=120.0,
                      extrinsics=Extrinsics((0.0, 0.0, 1.9), (1.0, 0, 0, 0)), rate_hz=10.0)
    rig = Rig([cam, lidar])
    rig.save(d / "rig.yaml")
    worldgen.save_world(w, d / "world")
    save_scene(twin.world_to_gaussians(w), d / "scene")
    export.write_drive_bag(d / "bag", w, rig, 0.1, progress=False)
    out = tmp_path / "left1"
    assert main(["replay", str(d / "bag"), "--scene", str(d / "scene"), "--rig", str(d / "rig.yaml"), "--out",
                 str(out), "--quiet", "--ego-lateral-offset", "1", "--ramp", "0", "--validate", "--frames", "1",
                 "--contact-rows", "0"]) == 0
    result = json.loads((tmp_path / "left1.validation" / "validation.json").read_text())
    top, front = result["sensors"]["top"], result["sensors"]["front"]
    assert top["captures"][0]["lateral_offset_m"] == 1.0
    assert top["hit_miss_agreement"] > 0.95 and top["median_range_error_m"] < 0.05 and top["chamfer_m"] < 0.2
    assert front["psnr_db"] > 22.0
    assert (tmp_path / "left1.validation" / "front.png").is_file()
    # the recorded (unedited) sweep is far from the edited truth: the score is about the edit
    from xsim_render.synth.validate import lidar_metrics

    recorded = read_bag(d / "bag", ["/sensing/lidar/top/pointcloud"])["/sensing/lidar/top/pointcloud"][0][1]
    replayed = read_bag(out, ["/sensing/lidar/top/pointcloud"])["/sensing/lidar/top/pointcloud"][0][1]
    from xsim_render.synth.validate import lidar_grid

    moved = lidar_metrics(lidar, recorded, {"range_median": lidar_grid(lidar, replayed)})
    assert moved["median_range_error_m"] > 10 * top["median_range_error_m"]


def test_validate_needs_a_synth_drive(world, capsys):
    assert _replay(world, world[0] / "v", "--validate") == 2
    assert "world/world.yaml" in _one_line(capsys)


def test_disk_full_one_line_no_partial_bag(tmp_path, world):
    """The output cannot grow past 40 kB (RLIMIT_FSIZE, the bag is ~70 kB): one line naming OUT, exit 2, no bag."""
    import resource

    def limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))

    d, scene, rig = world
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "xsim_render.cli.main", "replay", str(d / "in"), "--scene",
                           str(scene), "--rig", str(rig), "--out", str(out), "--quiet", "--contact-rows", "0"],
                          cwd=REPO, env=ENV, capture_output=True, text=True, timeout=300, preexec_fn=limit)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(out) in lines[0] and "cannot write" in lines[0], lines
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_other_rig_new_sensor_at_rig_rate_and_dropped_sensor(tmp_path, world):
    """--rig with a camera 'rear' the bag never recorded (rendered at its rig rate on new topics) and without the
    recorded 'front' (its topics are dropped); /tf_static carries the new rig's frames."""
    from _replay_bag import tiny_rig

    from xsim_render.sensors.rig import Extrinsics, Rig

    rig = tiny_rig()
    rear = rig.sensor("front")
    rear.name, rear.extrinsics = "rear", Extrinsics((-1.0, 0.0, 1.6), (0.5, 0.5, -0.5, -0.5))
    Rig([rear, rig.sensor("top")]).save(tmp_path / "rig.yaml")
    d, scene, _ = world
    out = tmp_path / "out"
    assert main(["replay", str(d / "in"), "--scene", str(scene), "--rig", str(tmp_path / "rig.yaml"), "--out",
                 str(out), "--quiet", "--contact-rows", "0"]) == 0
    dst = read_bag(out)
    assert not [t for t in dst if "front" in t]
    stamps = [stamp_ns(m.header.stamp) for _, m in dst["/sensing/camera/rear/image_raw"]]
    assert stamps == [0, 100_000_000, 200_000_000, 300_000_000]
    assert len(dst["/sensing/camera/rear/camera_info"]) == 4
    assert len(dst["/sensing/lidar/top/pointcloud"]) == 4
    frames = {tr.child_frame_id for _, msg in dst["/tf_static"] for tr in msg.transforms}
    assert "rear_optical_frame" in frames and "front_optical_frame" not in frames
