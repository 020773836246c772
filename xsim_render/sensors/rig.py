"""Sensor rig file (YAML): cameras and spinning LiDARs mounted on base_link, validated on load.

Every error names the file, the sensor, the field and the bad value, e.g.
    rig.yaml: sensor 'front': field 'fx': must be > 0, got -3.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import Tensor

from ..errors import InputError
from ..geometry import quaternion
from ..io_utils import atomic_write_text, read_yaml

CAMERA_MODELS = ("pinhole", "opencv", "fisheye")
SHUTTER_DIRECTIONS = ("global", "top_to_bottom", "bottom_to_top", "left_to_right", "right_to_left")


@dataclass
class Extrinsics:
    """Pose of the sensor frame in base_link: translation (m) and rotation (wxyz). A camera's frame is optical."""

    translation: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rotation_wxyz: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)

    def matrix(self, dtype: torch.dtype = torch.float64) -> tuple[Tensor, Tensor]:
        """(R (3,3), t (3,)) of T_base_sensor."""
        return (quaternion.to_matrix(torch.tensor(self.rotation_wxyz, dtype=dtype)),
                torch.tensor(self.translation, dtype=dtype))


@dataclass
class RollingShutter:
    """Readout direction and duration (s) from the first to the last line (0 for global shutter)."""

    direction: str = "global"
    readout_time: float = 0.0

    def coefficients(self) -> tuple[float, float, float]:
        """(offset, tau_u, tau_v) with tau(u, v) = t_start + offset + u tau_u + v tau_v, u, v in [0, 1]."""
        r = 0.0 if self.direction == "global" else self.readout_time
        return {
            "global": (0.0, 0.0, 0.0),
            "top_to_bottom": (0.0, 0.0, r),
            "bottom_to_top": (r, 0.0, -r),
            "left_to_right": (0.0, r, 0.0),
            "right_to_left": (r, -r, 0.0),
        }[self.direction]


@dataclass
class CameraSpec:
    """A camera: intrinsics in pixels, distortion per model, rolling shutter, mount, publish rate."""

    name: str
    model: str
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    distortion: tuple[float, ...] = ()
    rolling_shutter: RollingShutter = field(default_factory=RollingShutter)
    extrinsics: Extrinsics = field(default_factory=Extrinsics)
    rate_hz: float = 10.0
    type: str = "camera"

    @property
    def capture_duration(self) -> float:
        """Time from the start of the first line to the end of the last (s)."""
        return self.rolling_shutter.readout_time if self.rolling_shutter.direction != "global" else 0.0


@dataclass
class LidarSpec:
    """A spinning LiDAR: beam elevations (rad, any order/spacing), firings per rotation, spin, ranges."""

    name: str
    elevations: tuple[float, ...]
    columns: int
    spin_rate_hz: float = 10.0
    spin_direction: str = "ccw"
    seam_azimuth: float = math.pi
    min_range: float = 0.5
    max_range: float = 120.0
    extrinsics: Extrinsics = field(default_factory=Extrinsics)
    rate_hz: float = 10.0
    type: str = "lidar"

    @property
    def beams(self) -> int:
        return len(self.elevations)

    @property
    def spin_sign(self) -> float:
        """+1 for counter-clockwise (azimuth increasing) seen from above, -1 for clockwise."""
        return 1.0 if self.spin_direction == "ccw" else -1.0

    @property
    def capture_duration(self) -> float:
        """One sweep (s)."""
        return 1.0 / self.spin_rate_hz


SensorSpec = CameraSpec | LidarSpec


@dataclass
class Rig:
    """All sensors of a vehicle, by unique name, in file order."""

    sensors: list[SensorSpec]

    def sensor(self, name: str) -> SensorSpec:
        for s in self.sensors:
            if s.name == name:
                return s
        raise InputError(f"rig: no sensor named {name!r} (have: {', '.join(s.name for s in self.sensors)})")

    @property
    def cameras(self) -> list[CameraSpec]:
        return [s for s in self.sensors if isinstance(s, CameraSpec)]

    @property
    def lidars(self) -> list[LidarSpec]:
        return [s for s in self.sensors if isinstance(s, LidarSpec)]

    def to_dict(self) -> dict[str, Any]:
        """Plain dict in the rig-file layout (for writing YAML)."""
        out = []
        for s in self.sensors:
            d = {k: v for k, v in s.__dict__.items()}
            d["extrinsics"] = {"translation": list(s.extrinsics.translation),
                               "rotation_wxyz": list(s.extrinsics.rotation_wxyz)}
            if isinstance(s, CameraSpec):
                d["rolling_shutter"] = {"direction": s.rolling_shutter.direction,
                                        "readout_time": s.rolling_shutter.readout_time}
                d["distortion"] = list(s.distortion)
            else:
                d["elevations"] = list(s.elevations)
            out.append({"name": d.pop("name"), "type": d.pop("type"), **d})
        return {"sensors": out}

    def to_yaml(self) -> str:
        """The rig file's text."""
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def save(self, path: str | Path) -> None:
        """Write the rig file atomically."""
        atomic_write_text(Path(path), self.to_yaml())


class _Checker:
    """Reads typed fields of one sensor mapping, raising InputError that names file/sensor/field/value."""

    def __init__(self, where: str, data: dict[str, Any]) -> None:
        self.where = where
        self.data = data

    def fail(self, key: str, msg: str) -> InputError:
        return InputError(f"{self.where}: field '{key}': {msg}, got {self.data.get(key)!r}")

    def number(self, key: str, default: float | None = None, *, positive: bool = False, nonneg: bool = False) -> float:
        if key not in self.data:
            if default is None:
                raise InputError(f"{self.where}: field '{key}': missing")
            return default
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(key, "must be a finite number")
        if positive and value <= 0:
            raise self.fail(key, "must be > 0")
        if nonneg and value < 0:
            raise self.fail(key, "must be >= 0")
        return float(value)

    def integer(self, key: str, default: int | None = None, *, minimum: int = 1) -> int:
        if key not in self.data:
            if default is None:
                raise InputError(f"{self.where}: field '{key}': missing")
            return default
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(key, f"must be an integer >= {minimum}")
        return value

    def choice(self, key: str, options: tuple[str, ...], default: str | None = None) -> str:
        value = self.data.get(key, default)
        if value not in options:
            raise self.fail(key, f"must be one of {' | '.join(options)}")
        return value

    def numbers(self, key: str, length: int | None = None, default: tuple | None = None) -> tuple[float, ...]:
        data = self.data
        if key not in data:
            if default is None:
                raise InputError(f"{self.where}: field '{key}': missing")
            return default
        value = data[key]
        ok = isinstance(value, (list, tuple)) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
        if not ok or (length is not None and len(value) != length):
            shape = f"a list of {length} finite numbers" if length else "a list of finite numbers"
            raise InputError(f"{self.where}: field '{key}': must be {shape}, got {value!r}")
        return tuple(float(v) for v in value)


def parse_extrinsics(check: _Checker) -> Extrinsics:
    raw = check.data.get("extrinsics", {})
    if not isinstance(raw, dict):
        raise check.fail("extrinsics", "must be a mapping {translation, rotation_wxyz}")
    sub = _Checker(f"{check.where}: extrinsics", raw)
    translation = sub.numbers("translation", 3, (0.0, 0.0, 0.0))
    rotation = sub.numbers("rotation_wxyz", 4, (1.0, 0.0, 0.0, 0.0))
    if math.sqrt(sum(v * v for v in rotation)) < 1e-9:
        raise sub.fail("rotation_wxyz", "must be a non-zero quaternion")
    return Extrinsics(translation, rotation)  # type: ignore[arg-type]


def parse_camera(check: _Checker, name: str) -> CameraSpec:
    model = check.choice("model", CAMERA_MODELS, "pinhole")
    distortion = check.numbers("distortion", None, ())
    allowed = {"pinhole": (0,), "opencv": (4, 5, 8), "fisheye": (4,)}[model]
    if len(distortion) not in allowed and not (model == "pinhole" and not any(distortion)):
        raise check.fail("distortion", f"model {model} takes {' or '.join(map(str, allowed))} coefficients")
    rs_raw = check.data.get("rolling_shutter", {"direction": "global"})
    if not isinstance(rs_raw, dict):
        raise check.fail("rolling_shutter", "must be a mapping {direction, readout_time}")
    rs = _Checker(f"{check.where}: rolling_shutter", rs_raw)
    shutter = RollingShutter(rs.choice("direction", SHUTTER_DIRECTIONS, "global"),
                             rs.number("readout_time", 0.0, nonneg=True))
    return CameraSpec(
        name=name, model=model, width=check.integer("width"), height=check.integer("height"),
        fx=check.number("fx", positive=True), fy=check.number("fy", positive=True),
        cx=check.number("cx"), cy=check.number("cy"), distortion=distortion if model != "pinhole" else (),
        rolling_shutter=shutter, extrinsics=parse_extrinsics(check),
        rate_hz=check.number("rate_hz", 10.0, positive=True),
    )


def parse_lidar(check: _Checker, name: str) -> LidarSpec:
    elevations = check.numbers("elevations")
    if not elevations:
        raise check.fail("elevations", "must list at least one beam")
    if any(abs(e) >= math.pi / 2 for e in elevations):
        raise check.fail("elevations", "must lie in (-pi/2, pi/2) radians")
    if len(set(elevations)) != len(elevations):
        raise check.fail("elevations", "must be distinct")
    min_range = check.number("min_range", 0.5, nonneg=True)
    max_range = check.number("max_range", 120.0, positive=True)
    if max_range <= min_range:
        raise check.fail("max_range", f"must exceed min_range ({min_range})")
    return LidarSpec(
        name=name, elevations=elevations, columns=check.integer("columns"),
        spin_rate_hz=check.number("spin_rate_hz", 10.0, positive=True),
        spin_direction=check.choice("spin_direction", ("ccw", "cw"), "ccw"),
        seam_azimuth=check.number("seam_azimuth", math.pi), min_range=min_range, max_range=max_range,
        extrinsics=parse_extrinsics(check), rate_hz=check.number("rate_hz", 10.0, positive=True),
    )


def rig_from_dict(data: Any, source: str = "rig") -> Rig:
    """Validate a parsed rig document; `source` (the file name) prefixes every error."""
    if not isinstance(data, dict) or not isinstance(data.get("sensors"), list) or not data["sensors"]:
        raise InputError(f"{source}: field 'sensors': must be a non-empty list, got {type(data).__name__}")
    sensors: list[SensorSpec] = []
    seen: set[str] = set()
    for index, raw in enumerate(data["sensors"]):
        if not isinstance(raw, dict):
            raise InputError(f"{source}: sensors[{index}]: must be a mapping, got {raw!r}")
        name = raw.get("name")
        if not isinstance(name, str) or not name or not name.replace("_", "a").isalnum():
            raise InputError(f"{source}: sensors[{index}]: field 'name': must be a non-empty identifier "
                             f"(letters, digits, _), got {name!r}")
        if name in seen:
            raise InputError(f"{source}: sensor '{name}': field 'name': duplicate, got {name!r}")
        seen.add(name)
        check = _Checker(f"{source}: sensor '{name}'", raw)
        kind = check.choice("type", ("camera", "lidar"))
        sensors.append(parse_camera(check, name) if kind == "camera" else parse_lidar(check, name))
    return Rig(sensors)


def load_rig(path: str | Path) -> Rig:
    """Load and validate a rig YAML file."""
    data = read_yaml(path, "rig file")
    return rig_from_dict(data, str(path))
