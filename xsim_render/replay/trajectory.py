"""The first pass over a recorded bag: where the ego and the actors were, and when each sensor captured.

Topics (names match with or without a namespace; each can be set explicitly):
  ego     `ego/odometry` (nav_msgs/Odometry: pose of base_frame in world_frame, twist in base_frame), any topic whose
          name ends in `ego/odometry`; where there is none, `/tf`: world_frame -> base_frame composed along the
          latest transforms of the chain, velocities by central finite differences of successive poses;
  actors  `actors` (xsim_msgs/ActorStateArray), any topic whose name ends in `actors` with that type;
  sensors `sensing/camera/<name>/image_raw` + `camera_info`, `sensing/lidar/<name>/pointcloud`: their header
          stamps are the capture starts of the recording.

Epochs: a bag may hold several timelines (a looped recording, a clock reset). A stream whose stamp falls more than
JUMP_BACK_S before its newest one starts a new epoch (the rule of states/history.py); epoch k of the ego, of the
actors and of each sensor belong together. Each epoch keeps the whole ego and actor history (no pruning) so that
edits can look up any instant (time shifts).
"""

from __future__ import annotations

import math
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError
from ..geometry import quaternion, so3
from ..states.history import EGO, OK, Frame, HistoryConfig, StateHistory
from ..states.messages import ActorInfo, actor_frame, odometry_frame, stamp_ns
from ..states.sample import NS, BodySample, SampleError

JUMP_BACK_S = HistoryConfig().jump_back
ODOMETRY, ACTORS, TF = "nav_msgs/msg/Odometry", "xsim_msgs/msg/ActorStateArray", "tf2_msgs/msg/TFMessage"
IMAGE, CAMERA_INFO, POINTCLOUD = "sensor_msgs/msg/Image", "sensor_msgs/msg/CameraInfo", "sensor_msgs/msg/PointCloud2"
_CAMERA = re.compile(r"(?:^|/)sensing/camera/([^/]+)/(image_raw|camera_info)$")
_LIDAR = re.compile(r"(?:^|/)sensing/lidar/([^/]+)/pointcloud$")
F64 = torch.float64


@dataclass
class TopicOptions:
    """Topic and frame names ('' = find by suffix, see the module docstring)."""

    odometry_topic: str = ""
    actors_topic: str = ""
    tf_topic: str = "/tf"
    world_frame: str = "map"
    base_frame: str = "base_link"


def sensor_of_topic(topic: str) -> tuple[str, str] | None:
    """(sensor name, 'image_raw' | 'camera_info' | 'pointcloud') of a recorded sensor topic, else None."""
    if (match := _CAMERA.search(topic)) is not None:
        return match.group(1), match.group(2)
    if (match := _LIDAR.search(topic)) is not None:
        return match.group(1), "pointcloud"
    return None


def raw_stamp(data: bytes | memoryview) -> int | None:
    """Header stamp (ns) of a little-endian CDR message that starts with a std_msgs/Header, else None."""
    if len(data) < 12 or bytes(data[:2]) != b"\x00\x01":
        return None
    sec, nanosec = struct.unpack_from("<iI", bytes(data[:12]), 4)
    return sec * NS + nanosec


class EpochCounter:
    """Epoch index of a stream of stamps (a jump back of more than JUMP_BACK_S starts the next one)."""

    def __init__(self) -> None:
        self.newest: int | None = None
        self.epoch = 0

    def see(self, stamp: int) -> int:
        if self.newest is not None and stamp < self.newest - JUMP_BACK_S * NS:
            self.epoch += 1
            self.newest = stamp
        else:
            self.newest = stamp if self.newest is None else max(self.newest, stamp)
        return self.epoch


def _exact(max_age: float) -> HistoryConfig:
    return HistoryConfig(max_state_age=max_age, span=math.inf, jump_back=math.inf, future_tolerance=math.inf)


@dataclass
class Epoch:
    """One timeline: the ego's and the actors' full histories and the ego's span [start_ns, end_ns]."""

    ego: StateHistory = field(default_factory=lambda: StateHistory(_exact(math.inf)))
    actors: StateHistory = field(default_factory=lambda: StateHistory(_exact(0.1)))
    actor_info: dict[int, ActorInfo] = field(default_factory=dict)
    tf_poses: list[tuple[int, torch.Tensor, torch.Tensor]] = field(default_factory=list)

    @property
    def start_ns(self) -> int:
        return int(self.ego.oldest_ns or 0)

    @property
    def end_ns(self) -> int:
        return int(self.ego.newest_ns or 0)


@dataclass
class SensorTopic:
    """A recorded sensor topic: the rig sensor it belongs to and what it carries."""

    topic: str
    sensor: str
    kind: str
    msgtype: str


@dataclass
class BagScan:
    """What the first pass found (see the module docstring)."""

    path: Path
    ego_source: str                      # 'odometry' | 'tf'
    ego_topic: str
    actors_topic: str | None
    epochs: list[Epoch]
    sensor_topics: dict[str, SensorTopic]
    capture_stamps: dict[str, list[tuple[int, int]]]   # sensor -> [(epoch, stamp_ns)] unique, in order
    cloud_fields: dict[str, Any] = field(default_factory=dict)  # lidar sensor -> first recorded cloud
    messages: int = 0
    rejected: int = 0
    namespace: str = "/"


class TfChain:
    """Latest transform per child frame from /tf messages; the pose of base_frame in world_frame along the chain."""

    def __init__(self, world: str, base: str) -> None:
        self.world, self.base = world.lstrip("/"), base.lstrip("/")
        self.latest: dict[str, tuple[str, torch.Tensor, torch.Tensor]] = {}

    def add(self, msg: Any) -> list[int]:
        """Take one TFMessage; returns the stamps of the base_frame transforms it carried."""
        stamps = []
        for tr in msg.transforms:
            child, parent = tr.child_frame_id.lstrip("/"), tr.header.frame_id.lstrip("/")
            q = tr.transform.rotation
            rot = quaternion.to_matrix(torch.tensor([q.w, q.x, q.y, q.z], dtype=F64))
            t = tr.transform.translation
            self.latest[child] = (parent, rot, torch.tensor([t.x, t.y, t.z], dtype=F64))
            if child == self.base:
                stamps.append(stamp_ns(tr.header.stamp))
        return stamps

    def pose(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(R, p) of base_frame in world_frame, or None while the chain is incomplete."""
        rot, pos, frame = torch.eye(3, dtype=F64), torch.zeros(3, dtype=F64), self.base
        for _ in range(32):
            if frame == self.world:
                return rot, pos
            if frame not in self.latest:
                return None
            parent, r, p = self.latest[frame]
            rot, pos, frame = r @ rot, r @ pos + p, parent
        return None


def _tf_samples(poses: list[tuple[int, torch.Tensor, torch.Tensor]]) -> list[BodySample]:
    """BodySamples of tf poses with world-frame velocities by central differences (one-sided at the ends)."""
    out = []
    for i, (stamp, rot, pos) in enumerate(poses):
        a, b = poses[max(i - 1, 0)], poses[min(i + 1, len(poses) - 1)]
        dt = (b[0] - a[0]) / NS
        if dt <= 0:
            v = torch.zeros(3, dtype=F64)
            w = torch.zeros(3, dtype=F64)
        else:
            v = (b[2] - a[2]) / dt
            w = so3.log(b[1] @ a[1].T) / dt
        out.append(BodySample(stamp, rot, quaternion.from_matrix(rot), pos, v, w))
    return out


def _pick(topics: dict[str, str], explicit: str, suffix: str, msgtype: str, what: str, path: Path) -> str | None:
    if explicit:
        if explicit not in topics:
            raise InputError(f"{path}: topic {explicit}: not in the bag ({what})")
        if topics[explicit] != msgtype:
            raise InputError(f"{path}: topic {explicit}: type {topics[explicit]}, expected {msgtype}")
        return explicit
    found = sorted(t for t, ty in topics.items() if ty == msgtype and t.rstrip("/").endswith(suffix)
                   and (t.rstrip("/") == suffix or t.rstrip("/").endswith("/" + suffix)))
    if len(found) > 1:
        raise InputError(f"{path}: several {what} topics ({', '.join(found)}): choose one with --{what}-topic")
    return found[0] if found else None


def open_reader(path: Path) -> Any:
    """An opened rosbags AnyReader (types from the bag's own definitions, the project typestore as default)."""
    from rosbags.highlevel import AnyReader

    from ..rosio.typestore import typestore

    if not path.exists():
        raise InputError(f"{path}: bag not found")
    try:
        reader = AnyReader([path], default_typestore=typestore())
        reader.open()
    except Exception as err:  # noqa: BLE001 - rosbags raises many types for unreadable bags
        raise InputError(f"{path}: cannot read bag ({' '.join(str(err).split())[:200]})") from None
    return reader


def scan_bag(path: str | Path, options: TopicOptions) -> BagScan:
    """Read every message once (see the module docstring); InputError (naming the bag and topic) when the bag
    cannot be read, is truncated, or has no ego trajectory."""
    path = Path(path)
    reader = open_reader(path)
    try:
        return _scan(reader, path, options)
    finally:
        reader.close()


def _scan(reader: Any, path: Path, options: TopicOptions) -> BagScan:
    topics = {c.topic: c.msgtype for c in reader.connections}
    odo = _pick(topics, options.odometry_topic, "ego/odometry", ODOMETRY, "odometry", path)
    actors = _pick(topics, options.actors_topic, "actors", ACTORS, "actors", path)
    tf_topic = options.tf_topic if topics.get(options.tf_topic) == TF else None
    if odo is None and tf_topic is None:
        raise InputError(f"{path}: topic ego/odometry: no nav_msgs/Odometry topic ending in ego/odometry and no "
                         f"{options.tf_topic} (tf2_msgs/TFMessage) to take the ego trajectory from")
    sensor_topics = {}
    for topic, msgtype in topics.items():
        got = sensor_of_topic(topic)
        if got is not None and msgtype in (IMAGE, CAMERA_INFO, POINTCLOUD):
            sensor_topics[topic] = SensorTopic(topic, got[0], got[1], msgtype)
    ego_topic = odo or tf_topic
    namespace = ego_topic[: -len("ego/odometry")] if odo else "/"
    scan = BagScan(path, "odometry" if odo else "tf", ego_topic, actors, [], sensor_topics, {},
                   namespace=namespace or "/")
    ego_epochs, actor_epochs = EpochCounter(), EpochCounter()
    sensor_epochs: dict[str, EpochCounter] = {}
    seen: dict[str, set[tuple[int, int]]] = {}
    chain = TfChain(options.world_frame, options.base_frame)
    wanted = {t for t in (odo, actors, tf_topic) if t} | set(sensor_topics)

    def epoch(k: int) -> Epoch:
        while len(scan.epochs) <= k:
            scan.epochs.append(Epoch())
        return scan.epochs[k]

    last_topic = "(none)"
    try:
        for connection, _, raw in reader.messages(connections=[c for c in reader.connections if c.topic in wanted]):
            topic = connection.topic
            scan.messages += 1
            if topic == odo:
                msg = reader.deserialize(raw, connection.msgtype)
                k = ego_epochs.see(stamp_ns(msg.header.stamp))
                try:
                    epoch(k).ego.add(odometry_frame(msg, options.world_frame, options.base_frame))
                except SampleError:
                    scan.rejected += 1
            elif topic == actors:
                msg = reader.deserialize(raw, connection.msgtype)
                k = actor_epochs.see(stamp_ns(msg.header.stamp))
                try:
                    parsed = actor_frame(msg, options.world_frame)
                    epoch(k).actors.add(parsed.frame)
                    epoch(k).actor_info.update(parsed.info)
                except SampleError:
                    scan.rejected += 1
            elif topic == tf_topic and odo is None:
                msg = reader.deserialize(raw, connection.msgtype)
                for stamp in chain.add(msg):
                    pose = chain.pose()
                    if pose is not None:
                        k = ego_epochs.see(stamp)
                        epoch(k).tf_poses.append((stamp, *pose))
            elif topic in sensor_topics:
                st = sensor_topics[topic]
                stamp = raw_stamp(raw)
                if stamp is None:
                    stamp = stamp_ns(reader.deserialize(raw, connection.msgtype).header.stamp)
                k = sensor_epochs.setdefault(f"{st.sensor}/{st.kind}", EpochCounter()).see(stamp)
                capture = (k, stamp)
                if capture not in seen.setdefault(st.sensor, set()):
                    seen[st.sensor].add(capture)
                    scan.capture_stamps.setdefault(st.sensor, []).append(capture)
                if st.kind == "pointcloud" and st.sensor not in scan.cloud_fields:
                    scan.cloud_fields[st.sensor] = reader.deserialize(raw, connection.msgtype)
            last_topic = topic
    except InputError:
        raise
    except Exception as err:  # noqa: BLE001 - truncated chunks, bad CDR, ...
        raise InputError(f"{path}: cannot read bag after {scan.messages} messages (last topic {last_topic}): "
                         f"{' '.join(str(err).split())[:160] or type(err).__name__}") from None
    if odo is None:
        for ep in scan.epochs:
            for sample in _tf_samples(sorted(ep.tf_poses, key=lambda x: x[0])):
                try:
                    ep.ego.add(Frame(sample.stamp_ns, {EGO: sample}))
                except SampleError:
                    scan.rejected += 1
    if not scan.epochs or all(ep.ego.newest_ns is None for ep in scan.epochs):
        what = (f"topic {odo}: no usable nav_msgs/Odometry ({options.world_frame} -> {options.base_frame})" if odo
                else f"topic {tf_topic}: no transform chain {options.world_frame} -> {options.base_frame}")
        raise InputError(f"{path}: {what}")
    return scan


def ego_state(epoch: Epoch, t_ns: int) -> BodySample:
    """The recorded ego at t_ns (interpolated; carried with constant velocity outside the recorded span)."""
    q = epoch.ego.query(int(t_ns))
    if q.status != OK or EGO not in q.motions:
        raise InputError(f"no ego state at {t_ns / NS:.9f} s")
    mo = q.motions[EGO]
    rot = mo.rotation.to(F64)
    return BodySample(int(t_ns), rot, quaternion.from_matrix(rot), mo.position.to(F64), mo.linear_velocity.to(F64),
                      mo.angular_velocity.to(F64))
