"""Synthetic drive export: world, rig, Gaussian twin and a ROS 2 bag of ground-truth sensor data.

Output directory (written atomically: everything goes to a temporary directory beside DIR, renamed at the end;
on any failure nothing is left):
    DIR/bag/        rosbag2, mcap storage, format version 9 (topics below)
    DIR/rig.yaml    the sensor rig (Rig.save)
    DIR/scene/      the Gaussian twin (native scene directory)
    DIR/world/      meshes and trajectories (world.save_world)
    DIR/synth.yaml  what was generated: preset, seed, duration, layout, message counts, timings

Bag time: ROS time in seconds equals world time (the drive starts at t = 0; TIME_OFFSET_NS = 0, also recorded in
the bag's custom_data as `xsim.time_offset_ns`). Topics:
    /clock                                rosgraph_msgs/Clock at ODOMETRY_RATE_HZ
    /ego/odometry                         nav_msgs/Odometry, pose of base_link in map, twist in base_link
    /tf                                   map->odom (identity) and odom->base_link at ODOMETRY_RATE_HZ
    /tf_static                            base_link -> every sensor frame (transient_local), once at t = 0
    /actors                               xsim_msgs/ActorStateArray at ACTOR_RATE_HZ (pose in map, twist in
                                          the actor frame, size), actors that exist at that time
    /sensing/camera/<name>/image_raw      sensor_msgs/Image rgb8, stamp = start of exposure of the first line
    /sensing/camera/<name>/camera_info    same header as the image
    /sensing/lidar/<name>/pointcloud      PointCloud2 in the chosen layout, stamp = sweep start, per-point time
                                          relative to it; organized (beams x columns, NaN = no return) by default
Frames: cameras `<name>_optical_frame`, LiDARs `<name>`. Captures are taken at t_start = k / rate_hz for every
k with t_start + capture duration <= duration. A message's log (receive) time is its capture end (stamp plus
readout or sweep time) for sensors, and its stamp otherwise, as a real recording would have it.
"""

from __future__ import annotations

import math
import sys
import time as wallclock
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..errors import InputError
from ..io_utils import atomic_directory
from ..rosio import image as rimage
from ..rosio import messages as m
from ..rosio.bag import BagWriter, qos
from ..rosio.pointcloud import LAYOUTS, pack_cloud
from ..sensors.rays import lidar_column_azimuths, lidar_directions
from ..sensors.rig import CameraSpec, LidarSpec, Rig

ODOMETRY_RATE_HZ = 100.0
ACTOR_RATE_HZ = 50.0
TIME_OFFSET_NS = 0
MAP_FRAME, ODOM_FRAME, BASE_FRAME = "map", "odom", "base_link"


def camera_frame(name: str) -> str:
    return f"{name}_optical_frame"


def image_topic(name: str) -> str:
    return f"/sensing/camera/{name}/image_raw"


def camera_info_topic(name: str) -> str:
    return f"/sensing/camera/{name}/camera_info"


def lidar_topic(name: str) -> str:
    return f"/sensing/lidar/{name}/pointcloud"


def sensor_frame(spec: CameraSpec | LidarSpec) -> str:
    return camera_frame(spec.name) if isinstance(spec, CameraSpec) else spec.name


def stamp_of(t: float) -> int:
    """Bag time (ns) of world time t (s)."""
    return TIME_OFFSET_NS + m.to_ns(t)


def world_time(ns: int) -> float:
    """World time (s) of a bag time (ns)."""
    return (ns - TIME_OFFSET_NS) * 1e-9


def capture_starts(rate_hz: float, capture_duration: float, duration: float) -> list[float]:
    """t_k = k / rate for every k with t_k + capture_duration <= duration (1 ns tolerance)."""
    n = int(math.floor((duration - capture_duration) * rate_hz + 1e-6)) + 1
    return [k / rate_hz for k in range(max(n, 0))]


def tick_times(rate_hz: float, duration: float) -> list[float]:
    """k / rate for k = 0 .. floor(duration * rate) (both ends included)."""
    return [k / rate_hz for k in range(int(math.floor(duration * rate_hz + 1e-6)) + 1)]


def _np(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy().astype(np.float64) if hasattr(x, "detach") else np.asarray(x, dtype=np.float64)


@dataclass
class _Event:
    log_ns: int
    order: int
    topic: str
    build: Callable[[], Any]


@dataclass
class DriveSummary:
    """What generate_drive wrote (paths are final, after the rename)."""

    out_dir: Path
    preset: str
    seed: int
    duration: float
    layout: str
    organized: bool
    counts: dict[str, int] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)


def lidar_cloud(lidar: LidarSpec, truth: dict[str, Any], t_start: float, layout: str, organized: bool):
    """Pack a ground-truth sweep: xyz = range * firing direction in the sensor frame at each firing time."""
    rng = _np(truth["range"])
    dirs = lidar_directions(lidar).numpy()
    xyz = rng[..., None] * dirs
    beams, columns = rng.shape
    channel = np.broadcast_to(np.arange(beams)[:, None], (beams, columns))
    rel = np.clip(_np(truth["ray_time"]) - t_start, 0.0, None)
    azimuth = np.broadcast_to(lidar_column_azimuths(lidar).numpy()[None, :], (beams, columns))
    elevation = np.broadcast_to(np.asarray(lidar.elevations)[:, None], (beams, columns))
    intensity = _np(truth["intensity"])
    if not organized:
        keep = np.isfinite(rng)
        return pack_cloud(layout, xyz[keep], intensity[keep], channel[keep], rel[keep],
                          azimuth=azimuth[keep], elevation=elevation[keep])
    return pack_cloud(layout, xyz, intensity, channel, rel, azimuth=azimuth, elevation=elevation)


def _ego_events(world: Any, duration: float) -> list[_Event]:
    events: list[_Event] = []
    for t in tick_times(ODOMETRY_RATE_HZ, duration):
        ns = stamp_of(t)

        def odom(t: float = t, ns: int = ns) -> Any:
            ego = world.ego_motion(t)
            rot = _np(ego.rotation)
            return m.odometry(ns, rot, _np(ego.position), rot.T @ _np(ego.linear_velocity),
                              rot.T @ _np(ego.angular_velocity), MAP_FRAME, BASE_FRAME)

        def tf(t: float = t, ns: int = ns) -> Any:
            ego = world.ego_motion(t)
            return m.tf_message([m.TransformSpec(ns, MAP_FRAME, ODOM_FRAME, np.eye(3), np.zeros(3)),
                                 m.TransformSpec(ns, ODOM_FRAME, BASE_FRAME, _np(ego.rotation), _np(ego.position))])

        events.append(_Event(ns, 0, "/clock", lambda ns=ns: m.clock(ns)))
        events.append(_Event(ns, 1, "/ego/odometry", odom))
        events.append(_Event(ns, 2, "/tf", tf))
    return events


def _actor_events(world: Any, duration: float) -> list[_Event]:
    by_id = {a.id: a for a in world.actors}

    def build(t: float) -> Any:
        states = []
        for actor_id, motion in sorted(world.actor_motions(t).items()):
            actor = by_id[actor_id]
            rot = _np(motion.rotation)
            states.append(m.ActorStateSpec(str(actor_id), actor.category, rot, _np(motion.position),
                                           rot.T @ _np(motion.linear_velocity), rot.T @ _np(motion.angular_velocity),
                                           _np(actor.size)))
        return m.actor_state_array(stamp_of(t), MAP_FRAME, states)

    return [_Event(stamp_of(t), 3, "/actors", lambda t=t: build(t)) for t in tick_times(ACTOR_RATE_HZ, duration)]


def _static_tf(rig: Rig) -> Any:
    transforms = []
    for spec in rig.sensors:
        rot, trans = spec.extrinsics.matrix()
        transforms.append(m.TransformSpec(stamp_of(0.0), BASE_FRAME, sensor_frame(spec), rot.numpy(), trans.numpy()))
    return m.tf_message(transforms)


def _sensor_events(world: Any, rig: Rig, duration: float, layout: str, organized: bool, seed: int,
                   truth: Any) -> list[_Event]:
    events: list[_Event] = []
    for index, spec in enumerate(rig.sensors):
        for k, t in enumerate(capture_starts(spec.rate_hz, spec.capture_duration, duration)):
            ns, log_ns = stamp_of(t), stamp_of(t + spec.capture_duration)
            if isinstance(spec, CameraSpec):
                info = rimage.camera_info(spec)
                frame = camera_frame(spec.name)

                def cam(spec: CameraSpec = spec, t: float = t, ns: int = ns, frame: str = frame) -> Any:
                    rgb = _np(truth.render_camera_truth(world, spec, t)["rgb"])
                    return m.image(ns, frame, rimage.rgb8_from_float(rgb))

                events.append(_Event(log_ns, 10 + 2 * index, image_topic(spec.name), cam))
                events.append(_Event(log_ns, 11 + 2 * index, camera_info_topic(spec.name),
                                     lambda ns=ns, frame=frame, info=info: m.camera_info(ns, frame, info)))
            else:
                sweep_seed = (seed * 1_000_003 + index * 10_007 + k) % (2**31)

                def sweep(spec: LidarSpec = spec, t: float = t, ns: int = ns, sweep_seed: int = sweep_seed) -> Any:
                    gt = truth.render_lidar_truth(world, spec, t, seed=sweep_seed)
                    return m.pointcloud2(ns, spec.name, lidar_cloud(spec, gt, t, layout, organized))

                events.append(_Event(log_ns, 10 + 2 * index, lidar_topic(spec.name), sweep))
    return events


def topic_types(rig: Rig) -> dict[str, str]:
    """Every topic of a drive bag and its message type."""
    topics = {"/clock": "rosgraph_msgs/msg/Clock", "/ego/odometry": "nav_msgs/msg/Odometry",
              "/tf": "tf2_msgs/msg/TFMessage", "/tf_static": "tf2_msgs/msg/TFMessage",
              "/actors": "xsim_msgs/msg/ActorStateArray"}
    for spec in rig.sensors:
        if isinstance(spec, CameraSpec):
            topics[image_topic(spec.name)] = "sensor_msgs/msg/Image"
            topics[camera_info_topic(spec.name)] = "sensor_msgs/msg/CameraInfo"
        else:
            topics[lidar_topic(spec.name)] = "sensor_msgs/msg/PointCloud2"
    return topics


def write_drive_bag(path: Path, world: Any, rig: Rig, duration: float, *, layout: str = "xyzircaedt",
                    organized: bool = True, seed: int = 0, truth: Any = None, progress: bool = True,
                    metadata: dict[str, str] | None = None) -> dict[str, int]:
    """Write the drive bag at `path` (atomically); returns message counts by topic."""
    if truth is None:
        from . import groundtruth as truth
    events = _ego_events(world, duration) + _actor_events(world, duration)
    sensor_events = _sensor_events(world, rig, duration, layout, organized, seed, truth)
    events = sorted(events + sensor_events, key=lambda e: (e.log_ns, e.order))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=sum(1 for e in sensor_events if not e.topic.endswith("camera_info")),
                   desc="ground truth", unit="capture", file=sys.stderr, leave=False)
    with BagWriter(path) as bag:
        for key, value in (metadata or {}).items():
            bag.set_custom_data(key, value)
        bag.set_custom_data("xsim.time_offset_ns", str(TIME_OFFSET_NS))
        for topic, msgtype in topic_types(rig).items():
            latched = topic == "/tf_static"
            bag.add_topic(topic, msgtype, qos("transient_local" if latched else "volatile"))
        bag.write("/tf_static", _static_tf(rig), stamp_of(0.0))
        for event in events:
            bag.write(event.topic, event.build(), event.log_ns)
            if bar is not None and event.order >= 10 and not event.topic.endswith("camera_info"):
                bar.update(1)
    if bar is not None:
        bar.close()
    return dict(bag.counts)


def generate_drive(out_dir: str | Path, preset: str = "small", seed: int = 0, duration: float = 3.0,
                   layout: str = "xyzircaedt", progress: bool = True, organized: bool = True) -> DriveSummary:
    """Generate a world and its drive, and write DIR/{bag, rig.yaml, scene, world, synth.yaml} atomically
    (world/overview.png is a top-down map of the world and the drive).

    An existing `out_dir` is replaced (callers decide whether that is allowed). Raises InputError for a bad
    layout or duration; errors from the generators propagate after the temporary directory is removed.
    """
    from ..scene.io import save_scene
    from . import groundtruth, presets, twin
    from . import world as worldgen
    from .overview import save_overview

    if layout not in LAYOUTS:
        raise InputError(f"unknown layout {layout!r} (choose from {', '.join(LAYOUTS)})")
    if not (duration > 0 and math.isfinite(duration)):
        raise InputError(f"duration must be a positive number of seconds, got {duration}")
    out_dir = Path(out_dir)
    summary = DriveSummary(out_dir, preset, seed, float(duration), layout, organized)
    clock = wallclock.perf_counter
    with atomic_directory(out_dir) as tmp:
        t0 = clock()
        world = worldgen.generate_world(preset=preset, seed=seed, duration=duration)
        rig = presets.default_rig(preset)
        summary.timings_s["world"] = clock() - t0
        t0 = clock()
        rig.save(tmp / "rig.yaml")
        worldgen.save_world(world, tmp / "world")
        save_overview(world, tmp / "world" / "overview.png")
        summary.timings_s["save_world"] = clock() - t0
        t0 = clock()
        save_scene(twin.world_to_gaussians(world), tmp / "scene")
        summary.timings_s["twin"] = clock() - t0
        t0 = clock()
        meta = {"xsim.preset": preset, "xsim.seed": str(seed), "xsim.duration": repr(float(duration)),
                "xsim.layout": layout, "xsim.organized": str(organized).lower()}
        summary.counts = write_drive_bag(tmp / "bag", world, rig, duration, layout=layout, organized=organized,
                                         seed=seed, truth=groundtruth, progress=progress, metadata=meta)
        summary.timings_s["bag"] = clock() - t0
        info = {"preset": preset, "seed": seed, "duration": float(duration), "layout": layout,
                "organized": organized, "time_offset_ns": TIME_OFFSET_NS, "message_counts": summary.counts,
                "timings_s": {k: round(v, 3) for k, v in summary.timings_s.items()}}
        (tmp / "synth.yaml").write_text(yaml.safe_dump(info, sort_keys=False))
    return summary
