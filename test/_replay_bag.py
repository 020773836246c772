"""A tiny world for the replay tests: a wall of Gaussians 4 m to the ego's left, an actor box ahead, a tiny rig,
and a recorded bag of it (odometry, /tf, /tf_static, actors, /clock, camera, LiDAR, an extra topic)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from xsim_render.rosio import messages as m
from xsim_render.rosio.bag import BagWriter, qos
from xsim_render.rosio.image import rgb8_from_float
from xsim_render.rosio.pointcloud import pack_cloud
from xsim_render.scene import GaussianScene
from xsim_render.scene.io import save_scene
from xsim_render.sensors.rig import CameraSpec, Extrinsics, LidarSpec, Rig, RollingShutter
from xsim_render.sim.capture import static_transforms

NS = 1_000_000_000
WALL_Y = 4.0          # the wall's plane, metres left of the path (world y)
SPEED = 5.0           # ego speed along world x, m/s
ACTOR_ID = 1
ACTOR_AT = (12.0, 0.0, 1.0)


def raw_messages(path: Path) -> dict[str, list[tuple[int, bytes]]]:
    """Every message of a bag as (log time ns, serialized bytes) per topic, in bag order."""
    from rosbags.highlevel import AnyReader

    out: dict[str, list[tuple[int, bytes]]] = {}
    with AnyReader([path]) as reader:
        for conn, log, raw in reader.messages():
            out.setdefault(conn.topic, []).append((log, bytes(raw)))
    return out


def tiny_scene() -> GaussianScene:
    """A wall at y = WALL_Y (x 0..20, z 0..3.5, flat discs facing -y) and a 2 m actor box (id ACTOR_ID)."""
    xs, zs = np.meshgrid(np.arange(-2.0, 22.0, 0.35), np.arange(0.0, 3.6, 0.35))
    wall = np.stack([xs.ravel(), np.full(xs.size, WALL_Y), zs.ravel()], -1)
    g = np.meshgrid(np.linspace(-1, 1, 6), np.linspace(-1, 1, 6), np.linspace(-1, 1, 6))
    box = np.stack([a.ravel() for a in g], -1)
    box = box[np.abs(box).max(1) > 0.99]  # the box's surface
    means = np.concatenate([wall, box]).astype(np.float32)
    n, nw = len(means), len(wall)
    log_scales = np.log(np.where(np.arange(n)[:, None] < nw, [0.22, 0.02, 0.22], [0.25, 0.25, 0.25]))
    ids = np.full(n, -1)
    ids[nw:] = ACTOR_ID
    colors = np.where(np.arange(n)[:, None] < nw, [0.8, 0.3, 0.2], [0.1, 0.3, 0.9])
    return GaussianScene(
        means=torch.tensor(means), log_scales=torch.tensor(log_scales, dtype=torch.float32),
        quats=torch.tensor([[1.0, 0, 0, 0]] * n), opacity_camera=torch.full((n,), 4.0),
        opacity_lidar=torch.full((n,), 4.0), colors=torch.tensor(colors, dtype=torch.float32),
        actor_ids=torch.tensor(ids, dtype=torch.long), intensity=torch.full((n,), 0.5))


def tiny_rig() -> Rig:
    cam = CameraSpec(name="front", model="pinhole", width=16, height=12, fx=10, fy=10, cx=8, cy=6,
                     rolling_shutter=RollingShutter("top_to_bottom", 0.02),
                     extrinsics=Extrinsics((1.5, 0.0, 1.6), (0.5, -0.5, 0.5, -0.5)), rate_hz=10.0)
    lidar = LidarSpec(name="top", elevations=(-0.05, 0.0, 0.05), columns=64, spin_rate_hz=10.0,
                      seam_azimuth=math.pi, min_range=0.5, max_range=60.0,
                      extrinsics=Extrinsics((0.0, 0.0, 1.9), (1.0, 0, 0, 0)), rate_hz=10.0)
    return Rig([cam, lidar])


def ego_at(t: float) -> tuple[np.ndarray, np.ndarray]:
    """Ego position (x = SPEED t) and rotation (identity: driving along +x) at world time t."""
    return np.array([SPEED * t, 0.0, 0.0]), np.eye(3)


def write_assets(directory: Path) -> tuple[Path, Path]:
    save_scene(tiny_scene(), directory / "scene")
    tiny_rig().save(directory / "rig.yaml")
    return directory / "scene", directory / "rig.yaml"


def write_bag(path: Path, duration: float = 0.4, loop_back_at: float | None = None, odometry: bool = True,
              rate_hz: float = 20.0) -> None:
    """The recorded drive. loop_back_at: after that time the recording starts again from t = 0 (stamps jump
    back; log times keep increasing), a looped bag."""
    rig = tiny_rig()
    segments = [(0.0, duration)] if loop_back_at is None else [(0.0, loop_back_at), (0.0, duration)]
    with BagWriter(path) as bag:
        bag.add_topic("/clock", "rosgraph_msgs/msg/Clock")
        if odometry:
            bag.add_topic("/ego/odometry", "nav_msgs/msg/Odometry")
        bag.add_topic("/tf", "tf2_msgs/msg/TFMessage")
        bag.add_topic("/tf_static", "tf2_msgs/msg/TFMessage", qos("transient_local"))
        bag.add_topic("/actors", "xsim_msgs/msg/ActorStateArray")
        bag.add_topic("/sensing/camera/front/image_raw", "sensor_msgs/msg/Image")
        bag.add_topic("/sensing/camera/front/camera_info", "sensor_msgs/msg/CameraInfo")
        bag.add_topic("/sensing/lidar/top/pointcloud", "sensor_msgs/msg/PointCloud2")
        bag.add_topic("/vehicle/status", "std_msgs/msg/String", qos(reliability="best_effort", depth=5))
        bag.write("/tf_static", static_transforms(rig, "base_link", 0), 0)
        log_base = 0
        for seg_start, seg_end in segments:
            events = []
            for i in range(int(round((seg_end - seg_start) * rate_hz)) + 1):
                t = seg_start + i / rate_hz
                ns = int(round(t * NS))
                pos, rot = ego_at(t)
                events.append((ns, 0, "/clock", m.clock(ns)))
                if odometry:
                    events.append((ns, 1, "/ego/odometry", m.odometry(ns, rot, pos, [SPEED, 0, 0], [0, 0, 0])))
                events.append((ns, 2, "/tf", m.tf_message([
                    m.TransformSpec(ns, "map", "odom", np.eye(3), np.zeros(3)),
                    m.TransformSpec(ns, "odom", "base_link", rot, pos)])))
                actor = m.ActorStateSpec(str(ACTOR_ID), "vehicle", np.eye(3), np.array(ACTOR_AT), np.zeros(3),
                                         np.zeros(3), np.array([2.0, 2.0, 2.0]))
                events.append((ns, 3, "/actors", m.actor_state_array(ns, "map", [actor])))
                events.append((ns, 4, "/vehicle/status", m.msg_class("std_msgs/msg/String")(data=f"status {i}")))
            for k in range(int(round((seg_end - seg_start) * 10)) + 1):
                t = seg_start + k / 10
                ns = int(round(t * NS))
                if t + 0.1 > seg_end + 1e-9:
                    break
                img = np.full((12, 16, 3), 0.5)
                info = m.camera_info(ns, "front_optical_frame", __import__(
                    "xsim_render.rosio.image", fromlist=["camera_info"]).camera_info(rig.sensor("front")))
                events.append((ns + 20_000_000, 10, "/sensing/camera/front/image_raw",
                               m.image(ns, "front_optical_frame", rgb8_from_float(img))))
                events.append((ns + 20_000_000, 11, "/sensing/camera/front/camera_info", info))
                cloud = pack_cloud("xyzircaedt", np.full((3, 64, 3), 1.0), np.zeros((3, 64)),
                                   np.broadcast_to(np.arange(3)[:, None], (3, 64)), np.zeros((3, 64)),
                                   azimuth=np.zeros((3, 64)), elevation=np.zeros((3, 64)))
                events.append((ns + 100_000_000, 12, "/sensing/lidar/top/pointcloud",
                               m.pointcloud2(ns, "top", cloud)))
            events.sort(key=lambda e: (e[0], e[1]))
            for log_ns, _, topic, msg in events:
                bag.write(topic, msg, log_base + log_ns)
            log_base += events[-1][0] + 10_000_000
