"""Edits of a recorded drive: where the ego and the actors are in the replayed drive.

Ego (applied to every ego state, odometry and /tf alike; t is ROS time in s):
  * time shift s:     the ego at t is where the recording had it at t + s (poses and velocities of t + s;
                      outside the recorded span, carried with the end state's constant velocities);
  * lateral offset D: the ego moves d(t) metres to its own left (+y of base_link), d ramped in and out with a
                      cosine over `ramp` seconds at both ends of the recorded span [t0, t1]:
                          d(t) = D c((t - t0) / ramp) c((t1 - t) / ramp),   c(x) = (1 - cos(pi clamp(x, 0, 1))) / 2
                      (ramp 0: a constant offset). The heading is kept: R' = R, p' = p + d R e_y; velocities are
                      the exact time derivatives of that path, v' = v + d' R e_y + d (w x R e_y), w' = w, so the
                      edited odometry, /tf and the rendered motion agree. The peak lateral acceleration is
                      D pi^2 / (2 ramp^2) (3 m over 2 s: 3.7 m/s^2).
Actors (by the scene's integer actor id, world frame):
  * remove ID:            the actor is left out of the actor arrays (so out of every render);
  * shift ID:dx,dy,dz:    its position moves by (dx, dy, dz) metres in the world frame;
  * time shift ID:S:      at t it is where it was at t + S (absent where the recording has no state for t + S).

Edits come from repeatable command-line flags and/or a YAML file (`--edits FILE`), both merged:
    ego_lateral_offset: 3.0        # m
    ramp: 2.0                      # s
    ego_time_shift: 0.5            # s
    remove_actors: [3, 7]
    shift_actors: {4: [0.0, 2.0, 0.0]}
    time_shift_actors: {5: 1.0}
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..errors import InputError
from ..io_utils import read_yaml

F64 = torch.float64
DEFAULT_RAMP_S = 2.0


@dataclass
class Edits:
    """Every edit of one replay (see the module docstring); the default is no edit."""

    ego_lateral_offset: float = 0.0
    ramp: float = DEFAULT_RAMP_S
    ego_time_shift: float = 0.0
    remove_actors: set[int] = field(default_factory=set)
    shift_actors: dict[int, tuple[float, float, float]] = field(default_factory=dict)
    time_shift_actors: dict[int, float] = field(default_factory=dict)

    @property
    def edits_ego(self) -> bool:
        return self.ego_lateral_offset != 0.0 or self.ego_time_shift != 0.0

    @property
    def edits_actors(self) -> bool:
        return bool(self.remove_actors or self.shift_actors or self.time_shift_actors)

    @property
    def any(self) -> bool:
        return self.edits_ego or self.edits_actors

    def to_dict(self) -> dict[str, Any]:
        """Plain values (YAML / JSON), the same keys as the edits file."""
        return {"ego_lateral_offset": self.ego_lateral_offset, "ramp": self.ramp,
                "ego_time_shift": self.ego_time_shift, "remove_actors": sorted(self.remove_actors),
                "shift_actors": {int(k): list(v) for k, v in sorted(self.shift_actors.items())},
                "time_shift_actors": {int(k): float(v) for k, v in sorted(self.time_shift_actors.items())}}

    def describe(self) -> str:
        """One line for logs and tables ('no edit' when empty)."""
        parts = []
        if self.ego_lateral_offset:
            parts.append(f"ego lateral {self.ego_lateral_offset:+g} m (ramp {self.ramp:g} s)")
        if self.ego_time_shift:
            parts.append(f"ego time shift {self.ego_time_shift:+g} s")
        parts += [f"remove actor {i}" for i in sorted(self.remove_actors)]
        parts += [f"shift actor {i} by {tuple(v)} m" for i, v in sorted(self.shift_actors.items())]
        parts += [f"time-shift actor {i} by {v:+g} s" for i, v in sorted(self.time_shift_actors.items())]
        return ", ".join(parts) or "no edit"


# ------------------------------------------------------------------------------------------- parsing

def _number(text: Any, where: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise InputError(f"{where}: must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise InputError(f"{where}: must be finite, got {text!r}")
    return value


def _actor_id(text: Any, where: str) -> int:
    value = str(text).strip()
    if not value.isdigit():
        raise InputError(f"{where}: actor id must be a non-negative integer, got {text!r}")
    return int(value)


def parse_shift(text: str, where: str = "--shift-actor") -> tuple[int, tuple[float, float, float]]:
    """'ID:dx,dy,dz' -> (id, (dx, dy, dz))."""
    head, sep, tail = str(text).partition(":")
    parts = tail.split(",")
    if not sep or len(parts) != 3:
        raise InputError(f"{where}: expected ID:dx,dy,dz (metres), got {text!r}")
    return _actor_id(head, where), tuple(_number(p, f"{where} {text!r}") for p in parts)  # type: ignore[return-value]


def parse_time_shift(text: str, where: str = "--time-shift-actor") -> tuple[int, float]:
    """'ID:S' -> (id, S seconds)."""
    head, sep, tail = str(text).partition(":")
    if not sep:
        raise InputError(f"{where}: expected ID:SECONDS, got {text!r}")
    return _actor_id(head, where), _number(tail, f"{where} {text!r}")


def edits_from_yaml(path: str | Path, base: Edits | None = None) -> Edits:
    """Merge an edits file (module docstring) into `base` (a copy); unknown keys and bad values: InputError."""
    return edits_from_mapping(read_yaml(path, "edits file"), str(path), base)


def edits_from_mapping(doc: Any, source: str, base: Edits | None = None, prefix: str = "") -> Edits:
    """Merge a mapping of edits (the edits file's keys) into `base` (a copy). Errors name `source` and the field
    as f"{prefix}{key}" (e.g. prefix 'jobs[2].edits.' for a batch manifest); unknown keys and bad values:
    InputError."""
    out = Edits(**{k: (type(v)(v) if isinstance(v, (set, dict)) else v) for k, v in (base or Edits()).__dict__.items()})
    if doc is None:
        return out
    if not isinstance(doc, dict):
        where = f"field {prefix.rstrip('.')!r}: " if prefix else ""
        raise InputError(f"{source}: {where}expected a mapping of edits, got {type(doc).__name__}")
    known = set(Edits().to_dict())
    for key, value in doc.items():
        where = f"{source}: field {prefix + str(key)!r}" if prefix else f"{source}: field {key!r}"
        if key not in known:
            raise InputError(f"{where}: unknown edit (known: {', '.join(sorted(known))})")
        if key in ("ego_lateral_offset", "ego_time_shift", "ramp"):
            setattr(out, key, _number(value, where))
        elif key == "remove_actors":
            items = value if isinstance(value, list) else [value]
            out.remove_actors |= {_actor_id(v, where) for v in items}
        elif key == "shift_actors":
            if not isinstance(value, dict):
                raise InputError(f"{where}: expected {{id: [dx, dy, dz]}}, got {value!r}")
            for k, v in value.items():
                if not isinstance(v, (list, tuple)) or len(v) != 3:
                    raise InputError(f"{where}: actor {k}: expected [dx, dy, dz], got {v!r}")
                out.shift_actors[_actor_id(k, where)] = tuple(_number(c, where) for c in v)  # type: ignore[assignment]
        else:
            if not isinstance(value, dict):
                raise InputError(f"{where}: expected {{id: seconds}}, got {value!r}")
            for k, v in value.items():
                out.time_shift_actors[_actor_id(k, where)] = _number(v, where)
    check(out, f"{source}: field {prefix + 'ramp'!r}" if prefix else source)
    return out


def check(edits: Edits, where: str = "edits") -> None:
    """InputError for values no replay can use (negative ramp)."""
    if edits.ramp < 0:
        raise InputError(f"{where}: ramp must be >= 0 seconds, got {edits.ramp}")


# ------------------------------------------------------------------------------------------- the lateral ramp

@dataclass(frozen=True)
class LateralProfile:
    """d(t) and d'(t) of the lateral offset over the recorded span [t0, t1] (s); see the module docstring."""

    offset: float
    ramp: float
    t0: float
    t1: float

    def _c(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """c(x) and dc/dx (x in ramp units; 0 outside (0, 1))."""
        inside = (x > 0) & (x < 1)
        xc = x.clamp(0.0, 1.0)
        return 0.5 * (1 - torch.cos(math.pi * xc)), torch.where(inside, 0.5 * math.pi * torch.sin(math.pi * xc),
                                                                torch.zeros_like(xc))

    def at(self, t: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
        """(d, d') at times t (s, any shape; float64)."""
        t = torch.as_tensor(t, dtype=F64)
        if self.ramp <= 0 or self.offset == 0:
            return torch.full_like(t, self.offset), torch.zeros_like(t)
        a, da = self._c((t - self.t0) / self.ramp)
        b, db = self._c((self.t1 - t) / self.ramp)
        return self.offset * a * b, self.offset * (da * b - a * db) / self.ramp


def offset_pose(rotation: torch.Tensor, position: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """p' = p + d R e_y for rotations (..., 3, 3), positions (..., 3), offsets d (...)."""
    return position + d[..., None] * rotation[..., :, 1]


def offset_velocity(rotation: torch.Tensor, linear: torch.Tensor, angular: torch.Tensor, d: torch.Tensor,
                    d_dot: torch.Tensor) -> torch.Tensor:
    """v' = v + d' R e_y + d (w x R e_y), world frame."""
    left = rotation[..., :, 1]
    return linear + d_dot[..., None] * left + d[..., None] * torch.linalg.cross(angular, left, dim=-1)
