"""One sensor capture -> ROS 2 messages: the single packing path of the live topics (sensor_sim publishes the CDR
bytes of these messages) and of bags (the bag writer serialises the same objects).

Messages are `rosbags` objects built by xsim_render/rosio (no ROS install needed):
  camera  `sensing/camera/<name>/image_raw` (rgb8; header stamp = start of exposure of the first line, frame
          `<name>_optical_frame`) and `sensing/camera/<name>/camera_info` (same header; K, D, R, P of the rig with
          the ROS pixel-centre convention, see rosio/image.py)
  LiDAR   `sensing/lidar/<name>/pointcloud` in the chosen layout, organized or not (header stamp = sweep start,
          frame `<name>`, per-point time relative to it), from the render's median range of the returning firings
Topic names are relative (remappable; the node's namespace applies).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..render import render_camera, render_lidar
from ..rosio import image as rimage
from ..rosio import messages as m
from ..scene.gaussians import GaussianScene
from ..sensors.rig import CameraSpec, LidarSpec, Rig
from ..synth.export import lidar_cloud
from .schedule import NS

# One render at a time per process: the renderer's rolling-shutter solve uses torch forward-mode AD
# (torch.func.jvp), whose dual levels are process-global state, and a render already uses every core.
_RENDER_LOCK = threading.Lock()

IMAGE, CAMERA_INFO, POINTCLOUD, TF = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CameraInfo",
                                      "sensor_msgs/msg/PointCloud2", "tf2_msgs/msg/TFMessage")


def sensor_frame(spec: CameraSpec | LidarSpec) -> str:
    """tf frame of a sensor: `<name>_optical_frame` for cameras, `<name>` for LiDARs."""
    return f"{spec.name}_optical_frame" if isinstance(spec, CameraSpec) else spec.name


def sensor_topics(spec: CameraSpec | LidarSpec) -> dict[str, str]:
    """{relative topic: message type} a sensor publishes."""
    if isinstance(spec, CameraSpec):
        return {f"sensing/camera/{spec.name}/image_raw": IMAGE, f"sensing/camera/{spec.name}/camera_info": CAMERA_INFO}
    return {f"sensing/lidar/{spec.name}/pointcloud": POINTCLOUD}


@dataclass
class Output:
    """One message to publish: relative topic, type name, rosbags message object."""

    topic: str
    msgtype: str
    message: Any


def render_sensor(scene: GaussianScene, spec: CameraSpec | LidarSpec, start_ns: int, ego: Any,
                  actors: dict[int, Any] | None, backend: str = "auto", phase_modeling: bool = True
                  ) -> dict[str, torch.Tensor]:
    """Render one capture starting at start_ns (integer ns on the ROS clock); ego / actors are RigidMotions in the
    world frame (absolute times in seconds)."""
    t_start = start_ns / NS
    with _RENDER_LOCK, torch.no_grad():
        if isinstance(spec, CameraSpec):
            return render_camera(scene, spec, ego, t_start, actors, backend=backend)
        return render_lidar(scene, spec, ego, t_start, actors, phase_modeling=phase_modeling, backend=backend)


def _np(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy().astype(np.float64) if isinstance(x, torch.Tensor) else np.asarray(x, np.float64)


def camera_outputs(spec: CameraSpec, start_ns: int, rgb: Any) -> list[Output]:
    """Image (rgb8 of an (H, W, 3) float image in [0, 1]) and CameraInfo with the same header."""
    frame = sensor_frame(spec)
    topics = list(sensor_topics(spec))
    return [Output(topics[0], IMAGE, m.image(start_ns, frame, rimage.rgb8_from_float(_np(rgb)))),
            Output(topics[1], CAMERA_INFO, m.camera_info(start_ns, frame, rimage.camera_info(spec)))]


def lidar_outputs(spec: LidarSpec, start_ns: int, render: dict[str, Any], layout: str = "xyzircaedt",
                  organized: bool = True) -> list[Output]:
    """PointCloud2 of a rendered sweep: returning firings at their median range (NaN elsewhere when organized)."""
    returns = _np(render["returns"]).astype(bool)
    sweep = {"range": np.where(returns, _np(render["range_median"]), np.nan), "ray_time": render["ray_time"],
             "intensity": render["intensity"]}
    cloud = lidar_cloud(spec, sweep, start_ns / NS, layout, organized)
    topic = next(iter(sensor_topics(spec)))
    return [Output(topic, POINTCLOUD, m.pointcloud2(start_ns, sensor_frame(spec), cloud))]


def capture_outputs(spec: CameraSpec | LidarSpec, start_ns: int, render: dict[str, Any], layout: str = "xyzircaedt",
                    organized: bool = True) -> list[Output]:
    """The messages of one rendered capture (camera or LiDAR)."""
    if isinstance(spec, CameraSpec):
        return camera_outputs(spec, start_ns, render["rgb"])
    return lidar_outputs(spec, start_ns, render, layout, organized)


def static_transforms(rig: Rig, base_frame: str, stamp_ns: int) -> Any:
    """tf2_msgs/TFMessage of every sensor frame in base_frame (the rig extrinsics), for /tf_static."""
    transforms = []
    for spec in rig.sensors:
        rot, trans = spec.extrinsics.matrix()
        transforms.append(m.TransformSpec(stamp_ns, base_frame, sensor_frame(spec), rot.numpy(), trans.numpy()))
    return m.tf_message(transforms)


def serialize(msgtype: str, message: Any) -> bytes:
    """CDR bytes of a rosbags message (what rclpy publishes raw and what a bag stores)."""
    from ..rosio.typestore import typestore

    return bytes(typestore().serialize_cdr(message, msgtype))
