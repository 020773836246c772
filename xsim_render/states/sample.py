"""One validated body state: pose in the world frame and world-frame velocities at an integer-ns stamp.

ROS messages carry the twist in the body (child) frame (nav_msgs/Odometry, xsim_msgs/ActorState); the renderer's
constant-velocity model (docs/conventions.md, motion within a capture) wants world-frame velocities: v_world = R v_body,
w_world = R w_body with R the body -> world rotation of the same message.

Quaternions: a non-unit quaternion whose norm is within QUATERNION_TOLERANCE of 1 is normalised silently (float32
round trips and hand-written poses are often off by 1e-7 .. 1e-3); a zero quaternion or one further off is rejected
(it is not a rotation, and guessing one would render from a wrong pose).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..geometry import quaternion, so3
from ..motion.rigid import RigidMotion

NS = 1_000_000_000
QUATERNION_TOLERANCE = 1e-2
F64 = torch.float64


class SampleError(ValueError):
    """A state that cannot be used. `kind` is a short counter name (non_finite, bad_quaternion, wrong_frame,
    duplicate, out_of_order, future, unknown_actor, ...); str(err) is the one-line reason."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


@dataclass(frozen=True)
class BodySample:
    """Pose of a body in the world at stamp_ns with world-frame velocities (float64).

    rotation (3, 3) body -> world, quaternion (4,) the same rotation (wxyz, unit, w >= 0 not enforced),
    position (3,) m, linear_velocity (3,) m/s and angular_velocity (3,) rad/s in the world frame;
    received: monotonic wall time (s) at which the carrying message arrived (NaN if unknown).
    """

    stamp_ns: int
    rotation: Tensor
    quaternion: Tensor
    position: Tensor
    linear_velocity: Tensor
    angular_velocity: Tensor
    received: float = math.nan

    def motion(self) -> RigidMotion:
        """The constant-velocity motion referenced at this sample's own stamp (time in seconds)."""
        return RigidMotion(self.rotation, self.position, self.linear_velocity, self.angular_velocity,
                           self.stamp_ns / NS)

    def motion_at(self, t_ns: int) -> RigidMotion:
        """This sample carried to t_ns with its own velocities: R = Exp(w dt) R0, p = p0 + v dt (dt from integer ns,
        so that epoch stamps lose no precision)."""
        if t_ns == self.stamp_ns:
            return RigidMotion(self.rotation, self.position, self.linear_velocity, self.angular_velocity, t_ns / NS)
        dt = (t_ns - self.stamp_ns) / NS
        rot = so3.exp(self.angular_velocity * dt) @ self.rotation
        pos = self.position + self.linear_velocity * dt
        return RigidMotion(rot, pos, self.linear_velocity, self.angular_velocity, t_ns / NS)


def _finite(kind_where: str, values: list[float]) -> list[float]:
    if not all(math.isfinite(v) for v in values):
        raise SampleError("non_finite", f"{kind_where}: non-finite value in {values}")
    return values


def unit_quaternion(where: str, xyzw: tuple[float, float, float, float]) -> Tensor:
    """wxyz unit quaternion of a ROS (x, y, z, w) quaternion; SampleError if non-finite, zero or far from unit."""
    x, y, z, w = _finite(f"{where} orientation", [float(v) for v in xyzw])
    norm = math.sqrt(x * x + y * y + z * z + w * w)
    if norm < 1e-9:
        raise SampleError("bad_quaternion", f"{where}: zero orientation quaternion")
    if abs(norm - 1.0) > QUATERNION_TOLERANCE:
        raise SampleError("bad_quaternion", f"{where}: orientation quaternion has norm {norm:.6g} (not a rotation; "
                                            f"accepted within {QUATERNION_TOLERANCE} of 1)")
    return torch.tensor([w, x, y, z], dtype=F64) / norm


def sample_from_pose_twist(stamp_ns: int, pose: Any, twist: Any, where: str, received: float = math.nan
                           ) -> BodySample:
    """A BodySample from a geometry_msgs Pose (body in world) and Twist (body frame), rclpy or rosbags objects."""
    q = unit_quaternion(where, (pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w))
    p = _finite(f"{where} position", [float(pose.position.x), float(pose.position.y), float(pose.position.z)])
    v = _finite(f"{where} linear twist", [float(twist.linear.x), float(twist.linear.y), float(twist.linear.z)])
    w = _finite(f"{where} angular twist", [float(twist.angular.x), float(twist.angular.y), float(twist.angular.z)])
    rot = quaternion.to_matrix(q)
    return BodySample(int(stamp_ns), rot, q, torch.tensor(p, dtype=F64), rot @ torch.tensor(v, dtype=F64),
                      rot @ torch.tensor(w, dtype=F64), float(received))


def sample_from_motion(stamp_ns: int, motion: RigidMotion, received: float = math.nan) -> BodySample:
    """A BodySample of a RigidMotion evaluated at stamp_ns (its pose there, its world-frame velocities)."""
    rot, pos = motion.pose_at(torch.tensor(stamp_ns / NS, dtype=F64)) if motion.time != stamp_ns / NS else (
        motion.rotation, motion.position)
    rot, pos = rot.to(F64), pos.to(F64)
    return BodySample(int(stamp_ns), rot, quaternion.from_matrix(rot), pos, motion.linear_velocity.to(F64),
                      motion.angular_velocity.to(F64), float(received))


def interpolate(a: BodySample, b: BodySample, t_ns: int) -> RigidMotion:
    """SE(3) interpolation at a.stamp <= t_ns <= b.stamp: slerp of the rotation, lerp of the position and of the
    world-frame velocities (the motion the renderer uses over the capture)."""
    s = (t_ns - a.stamp_ns) / (b.stamp_ns - a.stamp_ns)
    st = torch.tensor(s, dtype=F64)
    q = quaternion.slerp(a.quaternion, b.quaternion, st)
    pos = a.position + s * (b.position - a.position)
    v = a.linear_velocity + s * (b.linear_velocity - a.linear_velocity)
    w = a.angular_velocity + s * (b.angular_velocity - a.angular_velocity)
    return RigidMotion(quaternion.to_matrix(q), pos, v, w, t_ns / NS)
