"""Rigid actors and their time-stamped SE(3) trajectories (SLERP rotation, LERP position).

Trajectories are always held in float64: their times are absolute (ROS epoch stamps ~1.7e9 s need float64 to
keep sub-microsecond steps) and their positions may be map-scale. They are in the scene frame (see
scene/placement.py for the scene's place in the world).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..geometry import quaternion, so3
from ..motion.rigid import RigidMotion


@dataclass
class Trajectory:
    """Keyframes of an actor frame in the world: times (K,) s ascending, positions (K,3) m, rotations (K,4) wxyz.

    Between keyframes the pose is interpolated (LERP / SLERP) and the velocity is that segment's constant
    world-frame linear and angular velocity. Outside [times[0], times[-1]] the actor does not exist, except
    that a single keyframe holds its pose at all times (a parked object). Stored as float64 whatever is given.
    """

    times: Tensor
    positions: Tensor
    rotations: Tensor

    def __post_init__(self) -> None:
        self.times = torch.as_tensor(self.times).to(torch.float64)
        self.positions = torch.as_tensor(self.positions).to(torch.float64)
        self.rotations = torch.as_tensor(self.rotations).to(torch.float64)
        k = self.times.shape[0]
        if k == 0 or self.positions.shape != (k, 3) or self.rotations.shape != (k, 4):
            raise ValueError(f"Trajectory: need K>0 times, (K,3) positions, (K,4) rotations; got "
                             f"{tuple(self.times.shape)}, {tuple(self.positions.shape)}, {tuple(self.rotations.shape)}")
        if k > 1 and not bool((self.times[1:] > self.times[:-1]).all()):
            raise ValueError("Trajectory: times must be strictly increasing")

    def covers(self, t: float) -> bool:
        """Whether the actor exists at time t."""
        if self.times.shape[0] == 1:
            return True
        return float(self.times[0]) - 1e-9 <= t <= float(self.times[-1]) + 1e-9

    def poses_at(self, times: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Interpolated rotations (...,3,3), positions (...,3) and an exists-mask (...) at many times (s)."""
        times = torch.as_tensor(times, dtype=self.times.dtype)
        if self.times.shape[0] == 1:
            rot = quaternion.to_matrix(self.rotations[0]).expand(times.shape + (3, 3))
            return rot, self.positions[0].expand(times.shape + (3,)), torch.ones(times.shape, dtype=torch.bool)
        i = (torch.searchsorted(self.times, times.reshape(-1), right=True) - 1).clamp(0, self.times.shape[0] - 2)
        t0, t1 = self.times[i], self.times[i + 1]
        s = ((times.reshape(-1) - t0) / (t1 - t0)).clamp(0.0, 1.0)
        q = quaternion.slerp(self.rotations[i], self.rotations[i + 1], s)
        p = self.positions[i] + s[:, None] * (self.positions[i + 1] - self.positions[i])
        exists = (times >= self.times[0] - 1e-9) & (times <= self.times[-1] + 1e-9)
        return (quaternion.to_matrix(q).reshape(times.shape + (3, 3)), p.reshape(times.shape + (3,)), exists)

    def motion_at(self, t: float) -> RigidMotion | None:
        """Pose at t and the segment's velocities as a constant-velocity motion; None outside the span."""
        if not self.covers(t):
            return None
        dtype = self.positions.dtype
        if self.times.shape[0] == 1:
            zero = torch.zeros(3, dtype=dtype)
            return RigidMotion(quaternion.to_matrix(self.rotations[0]), self.positions[0], zero, zero.clone(), t)
        i = int(torch.searchsorted(self.times, torch.tensor(t, dtype=self.times.dtype), right=True)) - 1
        i = min(max(i, 0), self.times.shape[0] - 2)
        t0, t1 = self.times[i], self.times[i + 1]
        dt = t1 - t0
        s = ((torch.tensor(t, dtype=dtype) - t0) / dt).clamp(0.0, 1.0)
        q = quaternion.slerp(self.rotations[i], self.rotations[i + 1], s)
        p = self.positions[i] + s * (self.positions[i + 1] - self.positions[i])
        r0 = quaternion.to_matrix(self.rotations[i])
        r1 = quaternion.to_matrix(self.rotations[i + 1])
        w = so3.log(r1 @ r0.T) / dt
        v = (self.positions[i + 1] - self.positions[i]) / dt
        return RigidMotion(quaternion.to_matrix(q), p, v, w, t)

    def capture_motion(self, t_start: float, t_end: float) -> tuple[RigidMotion, tuple[float, float] | None] | None:
        """Constant-velocity motion of the actor over a capture [t_start, t_end] (absolute seconds) and the
        time window in which it exists (None: always), or None when it exists at no instant of the capture.

        The motion is referenced at the middle of the capture, or at the nearest end of the trajectory when the
        trajectory starts or ends during the capture: each ray then sees the actor whenever its own time lies in
        the window, at the constant-velocity pose of that time (XSIM: constant velocity within one capture).
        """
        if self.times.shape[0] == 1:
            return self.motion_at(0.5 * (t_start + t_end)), None
        first, last = float(self.times[0]), float(self.times[-1])
        if last < t_start - 1e-9 or first > t_end + 1e-9:
            return None
        t_ref = min(max(0.5 * (t_start + t_end), first), last)
        return self.motion_at(t_ref), (first - 1e-9, last + 1e-9)


@dataclass
class Actor:
    """A rigid actor: integer id (the Gaussians' actor_id), category, box size (3,) m, and trajectory."""

    id: int
    trajectory: Trajectory
    category: str = "vehicle"
    size: Tensor | None = None

    def to(self, dtype: torch.dtype) -> Actor:
        """Copy with the box size cast to dtype; the trajectory stays float64 (absolute times, map positions)."""
        size = None if self.size is None else self.size.to(dtype)
        return Actor(self.id, self.trajectory, self.category, size)
