"""Edits applied to recorded states and messages (nav_msgs/Odometry, tf2_msgs/TFMessage, ActorStateArray).

The edited ego at ROS time t (edits.py): the recorded ego at t + time_shift (trajectory.ego_state), moved by the
lateral profile d(t) to its left. Messages keep everything but the edited values (header, frames, covariances,
categories, sizes); rewritten messages are new rosbags objects of the bag's own types (dataclasses.replace).
A /tf transform whose child is base_frame becomes T_parent_base' = T_parent_base Delta with
Delta = T_world_base(t)^-1 T_world_base'(t), so that any chain above base_frame (map -> odom -> base_link) ends
at the edited ego.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from ..geometry import quaternion
from ..rosio import messages as m
from ..states.history import OK
from ..states.sample import NS, BodySample
from .edits import Edits, LateralProfile, offset_pose, offset_velocity
from .trajectory import Epoch, ego_state, stamp_ns

F64 = torch.float64


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().numpy().astype(np.float64)


class EditedDrive:
    """The edited ego and actors of every epoch of a scanned bag."""

    def __init__(self, epochs: list[Epoch], edits: Edits, base_frame: str = "base_link") -> None:
        self.epochs = epochs
        self.edits = edits
        self.base_frame = base_frame.lstrip("/")
        self.profiles = [LateralProfile(edits.ego_lateral_offset, edits.ramp, ep.start_ns / NS, ep.end_ns / NS)
                         for ep in epochs]

    def _epoch(self, k: int) -> Epoch:
        return self.epochs[min(k, len(self.epochs) - 1)]

    def _profile(self, k: int) -> LateralProfile:
        return self.profiles[min(k, len(self.profiles) - 1)]

    # ------------------------------------------------------------------------------------------ ego

    def ego(self, k: int, t_ns: int) -> BodySample:
        """The edited ego of epoch k at t_ns (pose and world-frame velocities)."""
        shift = int(round(self.edits.ego_time_shift * NS))
        src = ego_state(self._epoch(k), t_ns + shift)
        d, dd = self._profile(k).at(t_ns / NS)
        pos = offset_pose(src.rotation, src.position, d)
        vel = offset_velocity(src.rotation, src.linear_velocity, src.angular_velocity, d, dd)
        return BodySample(int(t_ns), src.rotation, src.quaternion, pos, vel, src.angular_velocity)

    def offset_at(self, k: int, t_ns: int) -> float:
        """d(t) in metres (the lateral offset applied at t_ns)."""
        return float(self._profile(k).at(t_ns / NS)[0])

    def odometry(self, k: int, msg: Any) -> Any:
        """A recorded nav_msgs/Odometry with the edited pose and twist (body frame) of its stamp."""
        s = self.ego(k, stamp_ns(msg.header.stamp))
        pose = msg.pose.pose
        twist = msg.twist.twist
        rot = s.rotation
        new_pose = dataclasses.replace(pose, position=_point(pose.position, s.position),
                                       orientation=_quat(pose.orientation, s.quaternion))
        new_twist = dataclasses.replace(twist, linear=_vec(twist.linear, rot.T @ s.linear_velocity),
                                        angular=_vec(twist.angular, rot.T @ s.angular_velocity))
        return dataclasses.replace(msg, pose=dataclasses.replace(msg.pose, pose=new_pose),
                                   twist=dataclasses.replace(msg.twist, twist=new_twist))

    def odometry_from_sample(self, k: int, t_ns: int, world_frame: str) -> Any:
        """A new nav_msgs/Odometry of the edited ego at t_ns (ego taken from /tf: the renderer's input)."""
        s = self.ego(k, t_ns)
        rot = _np(s.rotation)
        return m.odometry(t_ns, rot, _np(s.position), rot.T @ _np(s.linear_velocity),
                          rot.T @ _np(s.angular_velocity), world_frame, self.base_frame)

    def tf(self, k: int, msg: Any) -> Any:
        """A recorded TFMessage with every base_frame transform moved to the edited ego."""
        items = []
        for tr in msg.transforms:
            if tr.child_frame_id.lstrip("/") != self.base_frame:
                items.append(tr)
                continue
            t_ns = stamp_ns(tr.header.stamp)
            orig = ego_state(self._epoch(k), t_ns)
            new = self.ego(k, t_ns)
            d_rot = orig.rotation.T @ new.rotation
            d_pos = orig.rotation.T @ (new.position - orig.position)
            q = tr.transform.rotation
            r_pb = quaternion.to_matrix(torch.tensor([q.w, q.x, q.y, q.z], dtype=F64))
            tv = tr.transform.translation
            p_pb = torch.tensor([tv.x, tv.y, tv.z], dtype=F64)
            rot, pos = r_pb @ d_rot, r_pb @ d_pos + p_pb
            transform = dataclasses.replace(tr.transform, translation=_vec(tv, pos),
                                            rotation=_quat(q, quaternion.from_matrix(rot)))
            items.append(dataclasses.replace(tr, transform=transform))
        return dataclasses.replace(msg, transforms=items)

    # ------------------------------------------------------------------------------------------ actors

    def actors(self, k: int, msg: Any) -> Any:
        """A recorded ActorStateArray with removed actors left out, shifted and time-shifted ones moved."""
        e = self.edits
        t_ns = stamp_ns(msg.header.stamp)
        out = []
        for state in msg.actors:
            text = str(state.id).strip()
            actor_id = int(text) if text.isdigit() else None
            if actor_id is not None and actor_id in e.remove_actors:
                continue
            if actor_id is not None and actor_id in e.time_shift_actors:
                q = self._epoch(k).actors.query(t_ns + int(round(e.time_shift_actors[actor_id] * NS)))
                mo = q.motions.get(actor_id) if q.status == OK else None
                if mo is None:
                    continue  # the actor has no recorded state at t + S
                rot = mo.rotation.to(F64)
                state = dataclasses.replace(
                    state, pose=dataclasses.replace(state.pose, position=_point(state.pose.position, mo.position),
                                                    orientation=_quat(state.pose.orientation,
                                                                      quaternion.from_matrix(rot))),
                    twist=dataclasses.replace(state.twist, linear=_vec(state.twist.linear, rot.T @ mo.linear_velocity),
                                              angular=_vec(state.twist.angular, rot.T @ mo.angular_velocity)))
            if actor_id is not None and actor_id in e.shift_actors:
                dx, dy, dz = e.shift_actors[actor_id]
                p = state.pose.position
                state = dataclasses.replace(state, pose=dataclasses.replace(
                    state.pose, position=dataclasses.replace(p, x=p.x + dx, y=p.y + dy, z=p.z + dz)))
            out.append(state)
        return dataclasses.replace(msg, actors=out)


def _point(template: Any, p: torch.Tensor) -> Any:
    x, y, z = (float(v) for v in p)
    return dataclasses.replace(template, x=x, y=y, z=z)


def _vec(template: Any, v: torch.Tensor) -> Any:
    x, y, z = (float(c) for c in v)
    return dataclasses.replace(template, x=x, y=y, z=z)


def _quat(template: Any, wxyz: torch.Tensor) -> Any:
    w, x, y, z = (float(c) for c in wxyz)
    return dataclasses.replace(template, x=x, y=y, z=z, w=w)
