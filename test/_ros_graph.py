"""Tiny worlds and ROS plumbing shared by the xsim_ros tests (real rclpy on loopback, own domain id per run).

Assets: a random 400-Gaussian scene with one actor (id 3) in front of the ego, a rig with a 40x30 rolling-shutter
camera and an 8 x 64 LiDAR, both at 10 Hz, and a world.yaml scenario: the ego drives along +x at 4 m/s with a slight
yaw rate, actor 3 crosses in front. Everything is written into a temporary directory.
"""

from __future__ import annotations

import math
import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from _scenes import CAMERA_OPTICAL_FORWARD, random_scene

from xsim_render.scene.io import save_scene
from xsim_render.sensors.rig import rig_from_dict

DOMAIN_BASE = 100  # test runs use ROS_DOMAIN_ID 100..199 (chosen from the pid): not 0 and not 40-49


def ros_domain_id() -> int:
    return DOMAIN_BASE + os.getpid() % 100


RIG = {"sensors": [
    {"name": "cam", "type": "camera", "model": "pinhole", "width": 40, "height": 30, "fx": 26.0, "fy": 26.0,
     "cx": 20.0, "cy": 15.0, "distortion": [], "rolling_shutter": {"direction": "top_to_bottom", "readout_time": 0.03},
     "extrinsics": {"translation": [1.5, 0.0, 1.4], "rotation_wxyz": CAMERA_OPTICAL_FORWARD}, "rate_hz": 10},
    {"name": "top", "type": "lidar", "elevations": [-0.3, -0.2, -0.12, -0.06, 0.0, 0.05, 0.1, 0.2], "columns": 64,
     "spin_rate_hz": 10.0, "spin_direction": "ccw", "seam_azimuth": math.pi, "min_range": 0.3, "max_range": 80.0,
     "extrinsics": {"translation": [0.0, 0.0, 1.8], "rotation_wxyz": [1, 0, 0, 0]}, "rate_hz": 10},
]}

EGO_SPEED, EGO_YAW_RATE, DURATION = 4.0, 0.1, 2.0


def _yaw_q(yaw: float) -> list[float]:
    return [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]


def world_doc(duration: float = DURATION) -> dict[str, Any]:
    """A world.yaml scenario (trajectories only) for the tiny scene."""
    times = np.arange(0.0, duration + 1e-9, 0.01)
    yaw = EGO_YAW_RATE * times
    x = np.concatenate([[0.0], np.cumsum(EGO_SPEED * np.cos(yaw[:-1]) * 0.01)])
    y = np.concatenate([[0.0], np.cumsum(EGO_SPEED * np.sin(yaw[:-1]) * 0.01)])
    at = np.arange(-0.5, duration + 0.5 + 1e-9, 0.05)
    ego = {"times": times.tolist(), "positions": [[float(a), float(b), 0.0] for a, b in zip(x, y)],
           "rotations_wxyz": [_yaw_q(float(v)) for v in yaw]}
    actor = {"times": at.tolist(), "positions": [[9.0 + 0.5 * float(t), 3.0 - 2.0 * float(t), 0.8] for t in at],
             "rotations_wxyz": [_yaw_q(-1.2) for _ in at]}
    return {"format": "xsim-world", "version": 1, "preset": "tiny", "seed": 0, "duration": duration,
            "ego_trajectory": ego, "actors": [{"id": 3, "category": "vehicle", "size": [3.0, 1.6, 1.2],
                                               "trajectory": actor}]}


def make_assets(directory: Path) -> dict[str, Path]:
    """scene/, rig.yaml, world/world.yaml in `directory`; returns their paths."""
    directory = Path(directory)
    scene = random_scene(400, seed=5, n_actor=60, dtype=torch.float32)
    scene.actors = {}
    save_scene(scene, directory / "scene")
    (directory / "rig.yaml").write_text(yaml.safe_dump(RIG, sort_keys=False))
    (directory / "world").mkdir(exist_ok=True)
    (directory / "world" / "world.yaml").write_text(yaml.safe_dump(world_doc(), sort_keys=False))
    rig_from_dict(RIG)  # validates
    return {"scene": directory / "scene", "rig": directory / "rig.yaml", "world": directory / "world"}


class Collector:
    """Subscribes to topics on a node and keeps every message (rclpy objects) with its monotonic arrival time."""

    def __init__(self, node: Any, topics: dict[str, Any], qos: Any = None) -> None:
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

        self.messages: dict[str, list[Any]] = {t: [] for t in topics}
        self.lock = threading.Lock()
        self._subs = []
        for topic, cls in topics.items():
            latched = topic == "/tf_static"
            q = qos or QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=200, reliability=ReliabilityPolicy.RELIABLE,
                                  durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else
                                  DurabilityPolicy.VOLATILE)
            self._subs.append(node.create_subscription(cls, topic, self._cb(topic), q))

    def _cb(self, topic: str):
        def cb(msg: Any) -> None:
            with self.lock:
                self.messages[topic].append(msg)
        return cb

    def count(self, topic: str) -> int:
        with self.lock:
            return len(self.messages[topic])

    def get(self, topic: str) -> list[Any]:
        with self.lock:
            return list(self.messages[topic])


def spin_until(executor: Any, predicate, timeout: float) -> bool:
    """Spin `executor` until predicate() or timeout (s); returns predicate()."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        executor.spin_once(timeout_sec=0.05)
    return bool(predicate())


def stamp_ns(stamp: Any) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)
