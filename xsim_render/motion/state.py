"""STATE.yaml: ego and actor states (pose + world-frame velocities) at one instant.

    time: 0.0
    ego: {position: [x, y, z], rotation_wxyz: [w, x, y, z], linear_velocity: [..], angular_velocity: [..]}
    actors: [{id: 7, position: [..], rotation_wxyz: [..], linear_velocity: [..], angular_velocity: [..]}]
Velocities default to zero; actors is optional. Errors name the file, the field and the value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..geometry import quaternion
from ..io_utils import read_yaml
from .rigid import RigidMotion


@dataclass
class SceneState:
    """time (s), ego base_link motion and actor motions by id, all world frame."""

    time: float
    ego: RigidMotion
    actors: dict[int, RigidMotion] = field(default_factory=dict)


def finite_vector(where: str, data: dict, key: str, length: int, default: tuple | None) -> tuple[float, ...]:
    """data[key] as `length` finite floats (default when absent; None: required); InputError names where/key."""
    if key not in data:
        if default is None:
            raise InputError(f"{where}: field '{key}': missing")
        return default
    value = data[key]
    if not (isinstance(value, (list, tuple)) and len(value) == length and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)):
        raise InputError(f"{where}: field '{key}': must be a list of {length} finite numbers, got {value!r}")
    return tuple(float(v) for v in value)


def _motion(where: str, data: Any, t: float) -> RigidMotion:
    if not isinstance(data, dict):
        raise InputError(f"{where}: must be a mapping with position, rotation_wxyz, velocities, got {data!r}")
    position = finite_vector(where, data, "position", 3, None)
    rotation = finite_vector(where, data, "rotation_wxyz", 4, None)
    if math.sqrt(sum(v * v for v in rotation)) < 1e-9:
        raise InputError(f"{where}: field 'rotation_wxyz': must be a non-zero quaternion, got {list(rotation)}")
    zero = (0.0, 0.0, 0.0)
    return RigidMotion.from_values(position, rotation, finite_vector(where, data, "linear_velocity", 3, zero),
                                   finite_vector(where, data, "angular_velocity", 3, zero), t)


def state_from_dict(data: Any, source: str = "state") -> SceneState:
    """Validate a parsed STATE document."""
    if not isinstance(data, dict):
        raise InputError(f"{source}: must be a mapping with time, ego, actors, got {type(data).__name__}")
    t = data.get("time", 0.0)
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
        raise InputError(f"{source}: field 'time': must be a finite number, got {t!r}")
    if "ego" not in data:
        raise InputError(f"{source}: field 'ego': missing")
    ego = _motion(f"{source}: ego", data["ego"], float(t))
    actors: dict[int, RigidMotion] = {}
    raw_actors = data.get("actors") or []
    if not isinstance(raw_actors, list):
        raise InputError(f"{source}: field 'actors': must be a list, got {raw_actors!r}")
    for i, raw in enumerate(raw_actors):
        where = f"{source}: actors[{i}]"
        actor_id = raw.get("id") if isinstance(raw, dict) else None
        if isinstance(actor_id, bool) or not isinstance(actor_id, int) or actor_id < 0:
            raise InputError(f"{where}: field 'id': must be an integer >= 0, got {actor_id!r}")
        if actor_id in actors:
            raise InputError(f"{where}: field 'id': duplicate, got {actor_id}")
        actors[actor_id] = _motion(where, raw, float(t))
    return SceneState(float(t), ego, actors)


def load_state(path: str | Path) -> SceneState:
    """Load and validate a STATE.yaml file."""
    data = read_yaml(path, "state file")
    return state_from_dict(data, str(path))


def _motion_entry(m: RigidMotion) -> dict[str, list[float]]:
    """STATE entry of a motion re-referenced at its own time (pose at m.time, world-frame velocities)."""
    rot, pos = m.pose_at(m.time)
    return {"position": pos.tolist(), "rotation_wxyz": quaternion.from_matrix(rot).tolist(),
            "linear_velocity": m.linear_velocity.tolist(), "angular_velocity": m.angular_velocity.tolist()}


def state_to_dict(state: SceneState) -> dict[str, Any]:
    """STATE document (the inverse of state_from_dict) for motions given at state.time."""
    return {"time": state.time, "ego": _motion_entry(state.ego),
            "actors": [{"id": int(k), **_motion_entry(m)} for k, m in sorted(state.actors.items())]}
