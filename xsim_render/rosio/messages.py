"""Builders of rosbags message objects (ROS 2 types) from numpy poses, packed clouds and images.

Rotations are (3, 3) matrices mapping the child/body frame to the parent frame; positions are metres in the
parent frame; times are integer nanoseconds (ROS time). Quaternions on the wire are (x, y, z, w).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..geometry import quaternion
from .image import CameraInfoData, ImageData
from .pointcloud import PackedCloud
from .typestore import ACTOR_STATE, ACTOR_STATE_ARRAY, msg_class

NS = 1_000_000_000


def to_ns(t: float) -> int:
    """Seconds (float) to integer nanoseconds, rounded."""
    return int(round(t * NS))


def time_msg(ns: int) -> Any:
    """builtin_interfaces/Time of integer nanoseconds (sec may be negative, nanosec in [0, 1e9))."""
    sec, nanosec = divmod(int(ns), NS)
    return msg_class("builtin_interfaces/msg/Time")(sec=sec, nanosec=nanosec)


def stamp_ns(stamp: Any) -> int:
    """Integer nanoseconds of a builtin_interfaces/Time."""
    return int(stamp.sec) * NS + int(stamp.nanosec)


def header(ns: int, frame_id: str) -> Any:
    return msg_class("std_msgs/msg/Header")(stamp=time_msg(ns), frame_id=frame_id)


def quaternion_xyzw(rotation: Any) -> np.ndarray:
    """(x, y, z, w) of a (3, 3) rotation matrix, w >= 0."""
    q = quaternion.from_matrix(torch.as_tensor(np.asarray(rotation, dtype=np.float64)))
    w, x, y, z = (float(v) for v in q)
    return np.array([x, y, z, w])


def matrix_from_xyzw(q: Any) -> np.ndarray:
    """(3, 3) rotation of a geometry_msgs/Quaternion."""
    wxyz = torch.tensor([q.w, q.x, q.y, q.z], dtype=torch.float64)
    return quaternion.to_matrix(wxyz).numpy()


def _vector3(v: Any) -> Any:
    x, y, z = (float(c) for c in np.asarray(v, dtype=np.float64))
    return msg_class("geometry_msgs/msg/Vector3")(x=x, y=y, z=z)


def _quat(rotation: Any) -> Any:
    x, y, z, w = quaternion_xyzw(rotation)
    return msg_class("geometry_msgs/msg/Quaternion")(x=x, y=y, z=z, w=w)


def pose_msg(rotation: Any, position: Any) -> Any:
    x, y, z = (float(c) for c in np.asarray(position, dtype=np.float64))
    return msg_class("geometry_msgs/msg/Pose")(position=msg_class("geometry_msgs/msg/Point")(x=x, y=y, z=z),
                                               orientation=_quat(rotation))


def twist_msg(linear: Any, angular: Any) -> Any:
    return msg_class("geometry_msgs/msg/Twist")(linear=_vector3(linear), angular=_vector3(angular))


def clock(ns: int) -> Any:
    return msg_class("rosgraph_msgs/msg/Clock")(clock=time_msg(ns))


def odometry(ns: int, rotation: Any, position: Any, linear_body: Any, angular_body: Any,
             frame_id: str = "map", child_frame_id: str = "base_link") -> Any:
    """nav_msgs/Odometry: pose of child in frame_id, twist (m/s, rad/s) expressed in child_frame_id."""
    cov = np.zeros(36, dtype=np.float64)
    return msg_class("nav_msgs/msg/Odometry")(
        header=header(ns, frame_id), child_frame_id=child_frame_id,
        pose=msg_class("geometry_msgs/msg/PoseWithCovariance")(pose=pose_msg(rotation, position), covariance=cov),
        twist=msg_class("geometry_msgs/msg/TwistWithCovariance")(twist=twist_msg(linear_body, angular_body),
                                                                 covariance=cov.copy()),
    )


@dataclass
class TransformSpec:
    """One transform: child frame pose in the parent frame at time ns."""

    ns: int
    parent: str
    child: str
    rotation: Any
    translation: Any


def tf_message(transforms: list[TransformSpec]) -> Any:
    """tf2_msgs/TFMessage holding the given transforms."""
    items = []
    for t in transforms:
        transform = msg_class("geometry_msgs/msg/Transform")(translation=_vector3(t.translation),
                                                             rotation=_quat(t.rotation))
        items.append(msg_class("geometry_msgs/msg/TransformStamped")(header=header(t.ns, t.parent),
                                                                     child_frame_id=t.child, transform=transform))
    return msg_class("tf2_msgs/msg/TFMessage")(transforms=items)


def pointcloud2(ns: int, frame_id: str, cloud: PackedCloud) -> Any:
    point_field = msg_class("sensor_msgs/msg/PointField")
    fields = [point_field(name=f.name, offset=f.offset, datatype=f.datatype, count=f.count) for f in cloud.fields]
    return msg_class("sensor_msgs/msg/PointCloud2")(
        header=header(ns, frame_id), height=cloud.height, width=cloud.width, fields=fields,
        is_bigendian=cloud.is_bigendian, point_step=cloud.point_step, row_step=cloud.row_step,
        data=cloud.data, is_dense=cloud.is_dense)


def image(ns: int, frame_id: str, data: ImageData) -> Any:
    return msg_class("sensor_msgs/msg/Image")(
        header=header(ns, frame_id), height=data.height, width=data.width, encoding=data.encoding,
        is_bigendian=data.is_bigendian, step=data.step, data=data.data)


def camera_info(ns: int, frame_id: str, info: CameraInfoData) -> Any:
    roi = msg_class("sensor_msgs/msg/RegionOfInterest")(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return msg_class("sensor_msgs/msg/CameraInfo")(
        header=header(ns, frame_id), height=info.height, width=info.width, distortion_model=info.distortion_model,
        d=np.asarray(info.d, dtype=np.float64), k=np.asarray(info.k, dtype=np.float64),
        r=np.asarray(info.r, dtype=np.float64), p=np.asarray(info.p, dtype=np.float64),
        binning_x=0, binning_y=0, roi=roi)


@dataclass
class ActorStateSpec:
    """One actor: pose in the map, twist in its own frame (m/s, rad/s), box size (m)."""

    id: str
    category: str
    rotation: Any
    position: Any
    linear_body: Any
    angular_body: Any
    size: Any


def actor_state_array(ns: int, frame_id: str, actors: list[ActorStateSpec]) -> Any:
    """xsim_msgs/ActorStateArray."""
    state = msg_class(ACTOR_STATE)
    items = [state(id=a.id, category=a.category, pose=pose_msg(a.rotation, a.position),
                   twist=twist_msg(a.linear_body, a.angular_body), size=_vector3(a.size)) for a in actors]
    return msg_class(ACTOR_STATE_ARRAY)(header=header(ns, frame_id), actors=items)
