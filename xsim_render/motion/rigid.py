"""Constant-velocity rigid motion over one capture (XSIM eq. 5-6; docs/conventions.md).

A pose (R0, p0) at time t0 with linear velocity v and angular velocity w, both in the WORLD frame:
    R(t) = Exp(w (t - t0)) R0,   p(t) = p0 + v (t - t0).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..geometry import quaternion, so3


@dataclass
class RigidMotion:
    """Pose of a body frame in the world with constant world-frame velocities.

    rotation: (3, 3) R0 mapping body to world; position: (3,) p0 in metres; linear_velocity v (m/s) and
    angular_velocity w (rad/s), both world frame; time t0 in seconds.
    """

    rotation: Tensor
    position: Tensor
    linear_velocity: Tensor
    angular_velocity: Tensor
    time: float = 0.0
    mount_rotation: Tensor | None = None
    mount_translation: Tensor | None = None

    @staticmethod
    def from_values(
        position, rotation_wxyz, linear_velocity=(0.0, 0.0, 0.0), angular_velocity=(0.0, 0.0, 0.0),
        time: float = 0.0, dtype: torch.dtype = torch.float64,
    ) -> RigidMotion:
        """Build from plain sequences (quaternion wxyz, normalised here)."""
        q = torch.as_tensor(rotation_wxyz, dtype=dtype)
        return RigidMotion(
            quaternion.to_matrix(q), torch.as_tensor(position, dtype=dtype),
            torch.as_tensor(linear_velocity, dtype=dtype), torch.as_tensor(angular_velocity, dtype=dtype), float(time),
        )

    @staticmethod
    def identity(dtype: torch.dtype = torch.float64) -> RigidMotion:
        return RigidMotion.from_values((0, 0, 0), (1, 0, 0, 0), dtype=dtype)

    def to(self, dtype: torch.dtype) -> RigidMotion:
        cast = (lambda x: None if x is None else x.to(dtype))
        return RigidMotion(self.rotation.to(dtype), self.position.to(dtype), self.linear_velocity.to(dtype),
                           self.angular_velocity.to(dtype), self.time, cast(self.mount_rotation),
                           cast(self.mount_translation))

    def at(self, t: float) -> RigidMotion:
        """The same motion re-referenced at time t: pose (R(t), p(t)), same velocities, time t."""
        rot, pos = self.pose_at(float(t))
        return RigidMotion(rot, pos, self.linear_velocity, self.angular_velocity, float(t), self.mount_rotation,
                           self.mount_translation)

    def pose_at(self, t: Tensor | float) -> tuple[Tensor, Tensor]:
        """Rotation (..., 3, 3) and position (..., 3) at times t (any shape, seconds)."""
        t = torch.as_tensor(t, dtype=self.rotation.dtype)
        dt = (t - self.time)[..., None]
        rot = so3.exp(self.angular_velocity * dt) @ self.rotation
        pos = self.position + self.linear_velocity * dt
        if self.mount_rotation is not None:
            pos = pos + (rot @ self.mount_translation[:, None]).squeeze(-1)
            rot = rot @ self.mount_rotation
        return rot, pos

    def mounted(self, rotation: Tensor, translation: Tensor) -> RigidMotion:
        """Motion of a frame rigidly attached to this body at pose (rotation, translation) in the body frame.

        Exactly T_world_child(t) = T_world_body(t) * T_body_child (docs/conventions.md: sensors ride the ego), so the
        child's instantaneous velocity is v + w x r.
        """
        if self.mount_rotation is not None:
            translation = self.mount_translation + self.mount_rotation @ translation.to(self.rotation.dtype)
            rotation = self.mount_rotation @ rotation.to(self.rotation.dtype)
        return RigidMotion(self.rotation, self.position, self.linear_velocity, self.angular_velocity, self.time,
                           rotation.to(self.rotation.dtype), translation.to(self.rotation.dtype))

    def world_to_body(self, points: Tensor, t: Tensor) -> Tensor:
        """Express world points (..., 3) in the body frame at times t (broadcast with points[..., 0])."""
        t = torch.as_tensor(t, dtype=points.dtype)
        dt = (t - self.time)[..., None]
        y = so3.rotate(-self.angular_velocity * dt, points - self.position - self.linear_velocity * dt)
        y = y @ self.rotation
        if self.mount_rotation is not None:
            y = (y - self.mount_translation) @ self.mount_rotation
        return y

    def body_to_world(self, points: Tensor, t: Tensor) -> Tensor:
        """Map body-frame points (..., 3) to the world at times t."""
        t = torch.as_tensor(t, dtype=points.dtype)
        dt = (t - self.time)[..., None]
        y = points
        if self.mount_rotation is not None:
            y = y @ self.mount_rotation.T + self.mount_translation
        return so3.rotate(self.angular_velocity * dt, y @ self.rotation.T) + self.position + self.linear_velocity * dt
