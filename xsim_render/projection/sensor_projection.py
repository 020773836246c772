"""Static projections of sensor-frame points and the rolling-shutter time of image coordinates.

Every sensor model exposes the same small interface so that the rolling-shutter solver and the Unscented
Transform work for all of them:
    project(x_sensor, branch) -> coords (..., 2), valid (...)   static projection (no motion)
    time_of(coords) -> tau (...)                                 capture time of image coordinates
Camera coords are pixels (u right, v down). LiDAR coords are (phase, elevation) in radians, where phase is the
angle swept since the seam in spin direction, unwrapped onto the branch [branch - pi, branch + pi) so that a
Gaussian straddling the seam stays in one piece on a branch (XSIM phase modeling, eq. 9). Branch pi is the
principal sweep [0, 2 pi); firing c sits at phase 2 pi (c + 0.5) / N.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..sensors import camera_models
from ..sensors.rays import camera_time_of_pixel
from ..sensors.rig import CameraSpec, LidarSpec


class _CaptureWindow:
    """Start, end and middle (s) of one capture of a sensor whose spec has `capture_duration`."""

    t_start: float

    @property
    def t_end(self) -> float:
        return self.t_start + self.spec.capture_duration

    @property
    def t_mid(self) -> float:
        return 0.5 * (self.t_start + self.t_end)


@dataclass
class CameraProjection(_CaptureWindow):
    """Camera model + rolling-shutter timing of one capture starting at t_start (s)."""

    camera: CameraSpec
    t_start: float

    @property
    def spec(self) -> CameraSpec:
        return self.camera

    def project(self, x_sensor: Tensor, branch: float = math.pi) -> tuple[Tensor, Tensor]:
        return camera_models.project(self.camera, x_sensor)

    def time_of(self, coords: Tensor) -> Tensor:
        return camera_time_of_pixel(self.camera, coords, self.t_start)

    def bounds(self) -> tuple[float, float, float, float]:
        """Visible coordinate range (u0, u1, v0, v1) in pixels."""
        return 0.0, float(self.camera.width), 0.0, float(self.camera.height)


@dataclass
class LidarProjection(_CaptureWindow):
    """Spherical model of a spinning LiDAR sweep starting at t_start (s): coords (phase, elevation) in rad."""

    lidar: LidarSpec
    t_start: float

    @property
    def spec(self) -> LidarSpec:
        return self.lidar

    def project(self, x_sensor: Tensor, branch: float = math.pi) -> tuple[Tensor, Tensor]:
        x, y, z = x_sensor.unbind(-1)
        rxy2 = x * x + y * y
        r = (rxy2 + z * z).sqrt()
        azimuth = torch.atan2(y, x)
        raw = self.lidar.spin_sign * (azimuth - self.lidar.seam_azimuth)
        # unwrap onto [branch - pi, branch + pi)
        phase = raw - 2 * math.pi * torch.floor((raw - branch + math.pi) / (2 * math.pi))
        elevation = torch.asin((z / r.clamp_min(1e-30)).clamp(-1.0, 1.0))
        valid = rxy2 > 1e-18
        return torch.stack((phase, elevation), -1), valid

    def time_of(self, coords: Tensor) -> Tensor:
        return self.t_start + coords[..., 0] / (2 * math.pi) * self.lidar.capture_duration

    def bounds(self) -> tuple[float, float, float, float]:
        """Visible range (phase0, phase1, elevation0, elevation1) in radians (beams padded by half a gap)."""
        el = sorted(self.lidar.elevations)
        pad = 0.5 * min((b - a for a, b in zip(el[:-1], el[1:])), default=0.01)
        return 0.0, 2 * math.pi, el[0] - pad, el[-1] + pad


SensorProjection = CameraProjection | LidarProjection
