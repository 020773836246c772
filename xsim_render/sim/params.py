"""Parameters of the sensor_sim node: names, types, defaults, ranges, whether a change needs a restart, and the
validation used both at start-up (bad value: one-line error, exit code 2) and for run-time changes (rejected with
the reason). ROS-free: xsim_ros/sensor_sim.py turns these into rclpy ParameterDescriptors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..backends import BACKENDS
from ..rosio.pointcloud import LAYOUTS

TRIGGERS = ("timer", "pose", "lockstep", "realtime")
RELIABILITY = ("reliable", "best_effort")
ACTOR_SOURCES = ("topic", "scene")


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: type is bool / int / float / str; choices or [lo, hi] range; read_only = needs a restart."""

    name: str
    type: type
    default: Any
    description: str
    read_only: bool = False
    choices: tuple[str, ...] = ()
    lo: float | None = None
    hi: float | None = None


SENSOR_SIM_PARAMS: tuple[ParamSpec, ...] = (
    ParamSpec("scene", str, "", "scene: .ply file or native scene directory (loaded once)", read_only=True),
    ParamSpec("rig", str, "", "sensor rig YAML (loaded once)", read_only=True),
    ParamSpec("world_from_scene", str, "", "placement of the scene frame in the world frame; '' = the scene's own",
              read_only=True),
    ParamSpec("backend", str, "auto", "rendering backend: " + ", ".join(BACKENDS), choices=BACKENDS),
    ParamSpec("world_frame", str, "map", "frame of the ego pose and actor states (REP-105 map)"),
    ParamSpec("base_frame", str, "base_link", "ego body frame: odometry child_frame_id, parent of the sensor frames",
              read_only=True),
    ParamSpec("point_format", str, "xyzircaedt", "PointCloud2 layout: " + ", ".join(LAYOUTS), choices=tuple(LAYOUTS)),
    ParamSpec("organized", bool, True, "organized clouds (beams x columns, NaN = no return) or returns only"),
    ParamSpec("trigger", str, "timer", "timer (rate_hz on the ROS clock), pose (one capture per odometry "
              "message), lockstep (co-simulation handshake), realtime (wall clock, deadline drops)",
              read_only=True, choices=TRIGGERS),
    ParamSpec("qos_reliability", str, "reliable", "sensor topics QoS reliability", read_only=True,
              choices=RELIABILITY),
    ParamSpec("max_state_age", float, 0.5, "s: extrapolate states with their twist up to this age, refuse beyond",
              lo=0.0, hi=10.0),
    ParamSpec("state_history", float, 2.0, "s of state messages kept behind the newest", lo=0.1, hi=60.0),
    ParamSpec("future_tolerance", float, 1.0, "s: state stamps further ahead of the clock are rejected",
              lo=0.0, hi=60.0),
    ParamSpec("jump_back", float, 1.0, "s: a state stamp this far behind the newest means the clock jumped "
              "backwards (history reset)", lo=0.0, hi=3600.0),
    ParamSpec("actor_source", str, "topic", "topic: actors from the `actors` topic only; scene: the scene's own "
              "trajectories (the topic is ignored)", read_only=True, choices=ACTOR_SOURCES),
    ParamSpec("phase_modeling", bool, True, "LiDAR phase modeling (XSIM Alg. 2)"),
    ParamSpec("lockstep_wait", float, 5.0, "lockstep: s (wall) to wait for the tick's states before rendering with "
              "what is there (reported)", lo=0.0, hi=600.0),
    ParamSpec("diagnostics_period", float, 1.0, "s (wall) between /diagnostics messages", read_only=True,
              lo=0.05, hi=60.0),
    ParamSpec("log_period", float, 5.0, "s (wall) between log lines of the same kind (throttle)", lo=0.0, hi=3600.0),
)


def spec_of(name: str) -> ParamSpec | None:
    for spec in SENSOR_SIM_PARAMS:
        if spec.name == name:
            return spec
    return None


def check_value(spec: ParamSpec, value: Any) -> str | None:
    """None if `value` is acceptable for `spec`, else the reason (one line)."""
    if spec.type is bool:
        ok = isinstance(value, bool)
    elif spec.type is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif spec.type is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    if not ok:
        return f"{spec.name}: must be a {spec.type.__name__}, got {value!r}"
    if spec.choices and value not in spec.choices:
        return f"{spec.name}: must be one of {', '.join(spec.choices)}, got {value!r}"
    if spec.type in (int, float):
        if not math.isfinite(value):
            return f"{spec.name}: must be finite, got {value!r}"
        if spec.lo is not None and value < spec.lo or spec.hi is not None and value > spec.hi:
            return f"{spec.name}: must lie in [{spec.lo}, {spec.hi}], got {value!r}"
    if spec.name in ("world_frame", "base_frame") and not value.strip("/"):
        return f"{spec.name}: must be a frame name, got {value!r}"
    if spec.name == "backend":
        from ..backends import resolve_backend
        from ..errors import InputError

        try:
            resolve_backend(value)
        except InputError as err:
            return str(err)
    return None
