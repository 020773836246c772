"""Per-pixel and per-firing rays: origin and unit direction in the world, and the instant of capture.

Camera pixel (i, j) is sampled at its centre (j + 0.5, i + 0.5) at time
    tau = t_start + offset + u tau_u + v tau_v,   u = (j + 0.5) / W, v = (i + 0.5) / H   (rolling shutter).
LiDAR firing c of N happens at t_start + (c + 0.5) / (N f) at sensor azimuth
    seam_azimuth + s 2 pi (c + 0.5) / N   (s = +1 ccw, -1 cw), for every beam (elevation) at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..motion.rigid import RigidMotion
from . import camera_models
from .rig import CameraSpec, LidarSpec, SensorSpec


@dataclass
class SensorRays:
    """Rays of one capture, shaped like the sensor image: (H, W) for a camera, (beams, columns) for a LiDAR."""

    origins: Tensor            # (..., 3) world, metres
    directions: Tensor         # (..., 3) world, unit
    times: Tensor              # (...) seconds
    directions_sensor: Tensor  # (..., 3) sensor frame, unit
    valid: Tensor              # (...) bool; False where a pixel has no ray in the camera model


def sensor_motion(spec: SensorSpec, ego: RigidMotion) -> RigidMotion:
    """Motion of the sensor frame: T_world_sensor(t) = T_world_ego(t) T_ego_sensor."""
    rot, trans = spec.extrinsics.matrix(ego.rotation.dtype)
    return ego.mounted(rot, trans)


def camera_pixel_grid(camera: CameraSpec, dtype: torch.dtype = torch.float64) -> Tensor:
    """(H, W, 2) pixel-centre coordinates (u = j + 0.5, v = i + 0.5)."""
    v, u = torch.meshgrid(torch.arange(camera.height, dtype=dtype) + 0.5,
                          torch.arange(camera.width, dtype=dtype) + 0.5, indexing="ij")
    return torch.stack((u, v), -1)


def camera_time_of_pixel(camera: CameraSpec, pixels: Tensor, t_start: float | Tensor) -> Tensor:
    """Capture time (s) of image points (..., 2) in pixels under the camera's rolling shutter."""
    offset, tau_u, tau_v = camera.rolling_shutter.coefficients()
    return t_start + offset + pixels[..., 0] / camera.width * tau_u + pixels[..., 1] / camera.height * tau_v


def camera_rays(camera: CameraSpec, ego: RigidMotion, t_start: float) -> SensorRays:
    """Rays of every pixel, (H, W), in the world at each pixel's own time."""
    dtype = ego.rotation.dtype
    pixels = camera_pixel_grid(camera, dtype)
    dirs_sensor, valid = camera_models.unproject(camera, pixels)
    times = camera_time_of_pixel(camera, pixels, t_start)
    return _to_world(sensor_motion(camera, ego), dirs_sensor, times, valid)


def lidar_column_times(lidar: LidarSpec, t_start: float, dtype: torch.dtype = torch.float64) -> Tensor:
    """(columns,) firing times (s)."""
    c = torch.arange(lidar.columns, dtype=dtype)
    return t_start + (c + 0.5) / (lidar.columns * lidar.spin_rate_hz)


def lidar_column_azimuths(lidar: LidarSpec, dtype: torch.dtype = torch.float64) -> Tensor:
    """(columns,) sensor-frame azimuth of each firing, wrapped to (-pi, pi]."""
    c = torch.arange(lidar.columns, dtype=dtype)
    az = lidar.seam_azimuth + lidar.spin_sign * 2 * math.pi * (c + 0.5) / lidar.columns
    return torch.atan2(torch.sin(az), torch.cos(az))


def lidar_directions(lidar: LidarSpec, dtype: torch.dtype = torch.float64) -> Tensor:
    """(beams, columns, 3) unit directions in the sensor frame (rows in rig order)."""
    el = torch.tensor(lidar.elevations, dtype=dtype)[:, None]
    az = lidar_column_azimuths(lidar, dtype)[None, :]
    return torch.stack((torch.cos(el) * torch.cos(az), torch.cos(el) * torch.sin(az),
                        torch.sin(el).expand(el.shape[0], az.shape[1])), -1)


def lidar_rays(lidar: LidarSpec, ego: RigidMotion, t_start: float) -> SensorRays:
    """Rays of every firing and beam, (beams, columns), at each firing's own time."""
    dtype = ego.rotation.dtype
    dirs = lidar_directions(lidar, dtype)
    times = lidar_column_times(lidar, t_start, dtype)[None, :].expand(lidar.beams, lidar.columns)
    return _to_world(sensor_motion(lidar, ego), dirs, times, torch.ones(times.shape, dtype=torch.bool))


def _to_world(motion: RigidMotion, dirs_sensor: Tensor, times: Tensor, valid: Tensor) -> SensorRays:
    rot, pos = motion.pose_at(times)
    dirs = (rot @ dirs_sensor[..., None]).squeeze(-1)
    return SensorRays(pos, dirs, times, dirs_sensor, valid)
