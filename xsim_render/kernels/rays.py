"""Ray generation with the C++ / CUDA kernels: drop-ins for sensors.rays.camera_rays / lidar_rays.

Sensor-frame directions come from the camera model's unprojection (float64, cached per intrinsics) or the
LiDAR's beam elevations and firing azimuths; each ray's time follows the rolling shutter / firing order; the
kernel poses the sensor at every ray's time (constant-velocity ego, rigid mount) in the render precision.
The cpu kernel takes the times from Python; the cuda kernel computes them on the device (csrc/include/xsim/
sensor_rays.h) from the cached device copy of the directions, so nothing but 33 motion values and a few
scalars crosses to the device per capture.
"""

from __future__ import annotations

import torch

from ..motion.rigid import RigidMotion
from ..sensors.rays import SensorRays, camera_pixel_grid, camera_time_of_pixel, lidar_column_times, sensor_motion
from ..sensors.rig import CameraSpec, LidarSpec
from . import build
from . import device as kdevice
from .tiles import _sensor_key, pack_motion, sensor_directions


def sensor_rays_cpu(spec: CameraSpec | LidarSpec, ego: RigidMotion, t_start: float) -> SensorRays:
    """Rays of every pixel (H, W) or firing (beams, columns), in the world at each ray's own time (s)."""
    ext = build.load("cpu")
    dtype = ego.rotation.dtype
    period = 0  # LiDAR: the times repeat column by column (one sensor pose per column)
    if isinstance(spec, CameraSpec):
        shape = (spec.height, spec.width)
        times = camera_time_of_pixel(spec, camera_pixel_grid(spec, dtype), t_start)
    else:
        shape = (spec.beams, spec.columns)
        times = lidar_column_times(spec, t_start, dtype)[None, :].expand(*shape)
        period = spec.columns
    dirs, valid = device_directions(spec, torch.device("cpu"), dtype)
    times = times.to(dtype).contiguous()
    motion = pack_motion(sensor_motion(spec, ego)).to(dtype).contiguous()
    n = dirs.shape[0]
    origins = torch.empty((n, 3), dtype=dtype)
    directions = torch.empty((n, 3), dtype=dtype)
    ext.sensor_rays({"double": dtype == torch.float64, "n_rays": n, "times": times.data_ptr(),
                     "dirs_sensor": dirs.data_ptr(), "motion": motion.data_ptr(),
                     "out_origins": origins.data_ptr(), "out_directions": directions.data_ptr(),
                     "threads": torch.get_num_threads(), "period": period})
    return SensorRays(origins.reshape(*shape, 3), directions.reshape(*shape, 3), times.reshape(shape),
                      dirs.reshape(*shape, 3), valid.reshape(shape))


_DEVICE_DIRECTIONS: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def device_directions(spec: CameraSpec | LidarSpec, device: torch.device, dtype: torch.dtype
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """(R,3) unit sensor-frame directions in `dtype` and (R,) valid on `device`, image order (cached per sensor
    geometry, device and dtype; rounded from float64 as the cpu path does)."""
    key = (_sensor_key(spec), str(device), dtype)
    if key not in _DEVICE_DIRECTIONS:
        dirs64, valid = sensor_directions(spec)
        if len(_DEVICE_DIRECTIONS) > 16:
            _DEVICE_DIRECTIONS.clear()
        _DEVICE_DIRECTIONS[key] = (dirs64.to(dtype).to(device).contiguous(), valid.to(device).contiguous())
    return _DEVICE_DIRECTIONS[key]


def sensor_rays_cuda(spec: CameraSpec | LidarSpec, ego: RigidMotion, t_start: float) -> SensorRays:
    """sensor_rays_cpu on the GPU: every tensor of the result on the current CUDA device (csrc/cuda/rays.cu)."""
    ext = build.load("cuda")
    device = kdevice.cuda_device()
    dtype = ego.rotation.dtype
    dirs, valid = device_directions(spec, device, dtype)
    motion = pack_motion(sensor_motion(spec, ego)).to(dtype)  # rounded to the render precision as on the cpu
    n = dirs.shape[0]
    origins = torch.empty((n, 3), dtype=dtype, device=device)
    directions = torch.empty((n, 3), dtype=dtype, device=device)
    times = torch.empty(n, dtype=dtype, device=device)
    args = {"double": dtype == torch.float64, "n_rays": n, "motion": motion.tolist(), "dirs_sensor": dirs.data_ptr(),
            "out_origins": origins.data_ptr(), "out_directions": directions.data_ptr(),
            "out_times": times.data_ptr(), "stream": kdevice.cuda_stream(device)}
    if isinstance(spec, CameraSpec):
        shape = (spec.height, spec.width)
        offset, tau_u, tau_v = spec.rolling_shutter.coefficients()
        args.update({"sensor": 0, "width": spec.width, "height": spec.height, "t_start": float(t_start) + offset,
                     "tau_u": float(tau_u), "tau_v": float(tau_v)})
    else:
        shape = (spec.beams, spec.columns)
        args.update({"sensor": 1, "columns": spec.columns, "t_start": float(t_start),
                     "columns_times_rate": spec.columns * spec.spin_rate_hz})
    ext.sensor_rays(args)
    return SensorRays(origins.reshape(*shape, 3), directions.reshape(*shape, 3), times.reshape(shape),
                      dirs.reshape(*shape, 3), valid.reshape(shape))
