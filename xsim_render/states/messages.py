"""State messages -> history frames, with the checks every consumer reports (works on rclpy and rosbags objects:
both have the same field names).

nav_msgs/Odometry: header.frame_id must be the world frame and child_frame_id the base frame (a leading '/' is
ignored); the pose is base_frame in the world, the twist is in base_frame.
xsim_msgs/ActorStateArray: header.frame_id must be the world frame; each actor's id is the scene's integer actor id
as text. An actor with a bad value or an unknown id is left out of the frame and reported; the others are kept.
An empty array is a valid frame (no actor exists at that stamp) and is reported as a note.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from .history import EGO, Frame
from .sample import NS, SampleError, sample_from_pose_twist


def stamp_ns(stamp: Any) -> int:
    """Integer nanoseconds of a builtin_interfaces/Time."""
    return int(stamp.sec) * NS + int(stamp.nanosec)


def same_frame(a: str, b: str) -> bool:
    """tf frame names compare without a leading '/'."""
    return a.lstrip("/") == b.lstrip("/")


def odometry_frame(msg: Any, world_frame: str, base_frame: str, received: float = math.nan) -> Frame:
    """The ego frame of a nav_msgs/Odometry; SampleError (wrong_frame, non_finite, bad_quaternion) if unusable."""
    stamp = stamp_ns(msg.header.stamp)
    if not same_frame(msg.header.frame_id, world_frame):
        raise SampleError("wrong_frame", f"odometry frame_id {msg.header.frame_id!r}, expected {world_frame!r}")
    if not same_frame(msg.child_frame_id, base_frame):
        raise SampleError("wrong_frame", f"odometry child_frame_id {msg.child_frame_id!r}, expected {base_frame!r}")
    sample = sample_from_pose_twist(stamp, msg.pose.pose, msg.twist.twist, "odometry", received)
    return Frame(stamp, {EGO: sample}, received)


@dataclass
class ActorInfo:
    """What an ActorState says besides its motion: category and box size (m)."""

    category: str
    size: tuple[float, float, float]


@dataclass
class ActorFrame:
    """A frame of actor samples plus what was left out (SampleErrors, one per actor) and the actors' infos."""

    frame: Frame
    rejected: list[SampleError] = field(default_factory=list)
    info: dict[int, ActorInfo] = field(default_factory=dict)


def actor_frame(msg: Any, world_frame: str, known_ids: Collection[int] | None = None,
                received: float = math.nan) -> ActorFrame:
    """The actor frame of an xsim_msgs/ActorStateArray. Raises SampleError('wrong_frame') for an array in another
    frame; per-actor problems (unknown_actor, duplicate_actor, non_finite, bad_quaternion) are listed in .rejected."""
    stamp = stamp_ns(msg.header.stamp)
    if not same_frame(msg.header.frame_id, world_frame):
        raise SampleError("wrong_frame", f"actors frame_id {msg.header.frame_id!r}, expected {world_frame!r}")
    out = ActorFrame(Frame(stamp, {}, received))
    for state in msg.actors:
        text = str(state.id).strip()
        if not text.isdigit():
            out.rejected.append(SampleError("unknown_actor", f"actor id {state.id!r} is not an integer actor id"))
            continue
        actor_id = int(text)
        if known_ids is not None and actor_id not in known_ids:
            out.rejected.append(SampleError("unknown_actor", f"actor id {actor_id} is not in the scene"))
            continue
        if actor_id in out.frame.samples:
            out.rejected.append(SampleError("duplicate_actor", f"actor id {actor_id} listed twice"))
            continue
        try:
            out.frame.samples[actor_id] = sample_from_pose_twist(stamp, state.pose, state.twist,
                                                                 f"actor {actor_id}", received)
        except SampleError as err:
            out.rejected.append(err)
            continue
        size = (float(state.size.x), float(state.size.y), float(state.size.z))
        out.info[actor_id] = ActorInfo(str(state.category), size)
    return out
