"""Placement of a scene in the world (map) frame: the rigid transform world_from_scene, held in float64.

A scene is usually trained in a local frame near its own origin; the poses it is rendered from (STATE files,
ROS odometry, bags) live in a map frame whose coordinates reach 1e5-1e7 m (UTM, MGRS). `Placement` maps the
scene frame into the world: x_world = R x_scene + t. It applies to the static Gaussians and to the actors'
trajectories (both stored in the scene frame); actor Gaussians stay in their actor's frame.

Text forms (CLI `--world-from-scene`, ROS parameter `world_from_scene`):
    "x,y,z"                      translation only (metres)
    "x,y,z,qw,qx,qy,qz"          translation and rotation (quaternion wxyz, normalised here)
    path/to/file.yaml            {translation: [x, y, z], rotation_wxyz: [w, x, y, z]}
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..errors import InputError
from ..geometry import quaternion
from ..io_utils import read_yaml
from ..motion.rigid import RigidMotion
from ..motion.state import finite_vector

F64 = torch.float64


@dataclass(frozen=True)
class Placement:
    """world_from_scene: rotation (3,3) and translation (3,) in metres, both float64."""

    rotation: Tensor
    translation: Tensor

    @staticmethod
    def identity() -> Placement:
        return Placement(torch.eye(3, dtype=F64), torch.zeros(3, dtype=F64))

    @staticmethod
    def from_values(translation: Any, rotation_wxyz: Any = (1.0, 0.0, 0.0, 0.0)) -> Placement:
        q = torch.as_tensor(rotation_wxyz, dtype=F64)
        return Placement(quaternion.to_matrix(q), torch.as_tensor(translation, dtype=F64).clone())

    @property
    def rotation_wxyz(self) -> Tensor:
        return quaternion.from_matrix(self.rotation)

    @property
    def has_rotation(self) -> bool:
        return not torch.equal(self.rotation, torch.eye(3, dtype=F64))

    def to_dict(self) -> dict[str, list[float]]:
        """{translation, rotation_wxyz} as plain floats (exact float64 values)."""
        return {"translation": self.translation.tolist(), "rotation_wxyz": self.rotation_wxyz.tolist()}

    def motion(self, m: RigidMotion) -> RigidMotion:
        """A scene-frame motion (pose, world-frame-of-the-scene velocities) in the world frame, float64."""
        m = m.to(F64)
        r = self.rotation
        mount = {} if m.mount_rotation is None else {"mount_rotation": m.mount_rotation,
                                                     "mount_translation": m.mount_translation}
        return RigidMotion(r @ m.rotation, r @ m.position + self.translation, r @ m.linear_velocity,
                           r @ m.angular_velocity, m.time, **mount)

    def points(self, x: Tensor) -> Tensor:
        """Scene-frame points (..., 3) of any float dtype to world-frame float64 points."""
        x = x.to(F64)
        if self.has_rotation:
            x = x @ self.rotation.T
        return x + self.translation


def placement_from_dict(data: Any, where: str) -> Placement:
    """Validate {translation: [x, y, z], rotation_wxyz: [w, x, y, z] (optional)}; InputError names `where`."""
    if not isinstance(data, dict):
        raise InputError(f"{where}: must be a mapping {{translation, rotation_wxyz}}, got {data!r}")
    unknown = sorted(set(data) - {"translation", "rotation_wxyz"})
    if unknown:
        raise InputError(f"{where}: field '{unknown[0]}': unknown (expected translation, rotation_wxyz)")
    translation = finite_vector(where, data, "translation", 3, None)
    rotation = finite_vector(where, data, "rotation_wxyz", 4, (1.0, 0.0, 0.0, 0.0))
    if math.sqrt(sum(v * v for v in rotation)) < 1e-9:
        raise InputError(f"{where}: field 'rotation_wxyz': must be a non-zero quaternion, got {list(rotation)}")
    return Placement.from_values(translation, rotation)


def parse_placement(text: str, where: str = "--world-from-scene") -> Placement:
    """Placement from "x,y,z", "x,y,z,qw,qx,qy,qz" or the path of a YAML file (see module docstring)."""
    text = str(text).strip()
    parts = [p for p in text.replace(" ", ",").split(",") if p]
    if len(parts) in (3, 7) and all(_is_number(p) for p in parts):
        values = [float(p) for p in parts]
        if not all(math.isfinite(v) for v in values):
            raise InputError(f"{where}: values must be finite, got {text!r}")
        if len(values) == 7 and math.sqrt(sum(v * v for v in values[3:])) < 1e-9:
            raise InputError(f"{where}: quaternion must be non-zero, got {values[3:]}")
        return Placement.from_values(values[:3], values[3:] if len(values) == 7 else (1.0, 0.0, 0.0, 0.0))
    path = Path(text)
    if not path.is_file():
        raise InputError(f"{where}: expected 'x,y,z', 'x,y,z,qw,qx,qy,qz' or a YAML file, got {text!r}")
    return placement_from_dict(read_yaml(path, "placement file"), str(path))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
