"""Ray generation with the C++ kernels: a drop-in for sensors.rays.camera_rays / lidar_rays.

Sensor-frame directions come from the camera model's unprojection (float64, cached per intrinsics) or the
LiDAR's beam elevations and firing azimuths; each ray's time follows the rolling shutter / firing order; the
kernel poses the sensor at every ray's time (constant-velocity ego, rigid mount) in the render precision.
"""

from __future__ import annotations

import torch

from ..motion.rigid import RigidMotion
from ..sensors.rays import SensorRays, camera_pixel_grid, camera_time_of_pixel, lidar_column_times, sensor_motion
from ..sensors.rig import CameraSpec, LidarSpec
from . import build
from .tiles import pack_motion, sensor_directions


def sensor_rays_cpu(spec: CameraSpec | LidarSpec, ego: RigidMotion, t_start: float) -> SensorRays:
    """Rays of every pixel (H, W) or firing (beams, columns), in the world at each ray's own time (s)."""
    ext = build.load("cpu")
    dtype = ego.rotation.dtype
    if isinstance(spec, CameraSpec):
        shape = (spec.height, spec.width)
        times = camera_time_of_pixel(spec, camera_pixel_grid(spec, dtype), t_start)
    else:
        shape = (spec.beams, spec.columns)
        times = lidar_column_times(spec, t_start, dtype)[None, :].expand(*shape)
    dirs64, valid = sensor_directions(spec)
    dirs = dirs64.to(dtype).contiguous()
    times = times.to(dtype).contiguous()
    motion = pack_motion(sensor_motion(spec, ego)).to(dtype).contiguous()
    n = dirs.shape[0]
    origins = torch.empty((n, 3), dtype=dtype)
    directions = torch.empty((n, 3), dtype=dtype)
    ext.sensor_rays({"double": dtype == torch.float64, "n_rays": n, "times": times.data_ptr(),
                     "dirs_sensor": dirs.data_ptr(), "motion": motion.data_ptr(),
                     "out_origins": origins.data_ptr(), "out_directions": directions.data_ptr(),
                     "threads": torch.get_num_threads()})
    return SensorRays(origins.reshape(*shape, 3), directions.reshape(*shape, 3), times.reshape(shape),
                      dirs.reshape(*shape, 3), valid.reshape(shape))
