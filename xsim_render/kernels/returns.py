"""The LiDAR returns of the cpu backend (csrc/cpu/lidar_returns.h): a drop-in for raster.lidar_returns, in one
pass over the sweep instead of a mask, a nonzero and three gathers. Falls back to it where autograd needs the
points' graph or the tensors are not on the host."""

from __future__ import annotations

import torch
from torch import Tensor

from ..motion.local_frame import LocalFrame
from ..raster.lidar_returns import LidarReturns, lidar_returns
from ..sensors.rays import SensorRays
from ..sensors.rig import LidarSpec
from . import build


def lidar_returns_cpu(lidar: LidarSpec, median: Tensor, drop: Tensor | None, rays: SensorRays, local: LocalFrame
                      ) -> LidarReturns:
    """raster.lidar_returns with the C++ kernel (same values, bit for bit)."""
    tensors = (median, rays.directions_sensor, rays.times) + ((drop,) if drop is not None else ())
    if any(t.device.type != "cpu" for t in tensors) or (torch.is_grad_enabled() and any(
            t.requires_grad for t in tensors)) or median.dtype not in (torch.float32, torch.float64):
        return lidar_returns(lidar, median, drop, rays, local)
    dtype = median.dtype
    keep = [median.contiguous(), rays.directions_sensor.to(dtype).contiguous(), rays.times.to(dtype).contiguous()]
    returns = torch.empty(median.shape, dtype=torch.bool)
    args = {"double": dtype == torch.float64, "beams": lidar.beams, "columns": lidar.columns,
            "median": keep[0].data_ptr(), "directions_sensor": keep[1].data_ptr(), "times": keep[2].data_ptr(),
            "min_range": float(lidar.min_range), "max_range": float(lidar.max_range), "time_offset": local.time,
            "out_returns": returns.data_ptr(), "threads": torch.get_num_threads()}
    if drop is not None:
        keep.append(drop.to(dtype).contiguous())
        args["drop"] = keep[-1].data_ptr()
    points, time, beam, column = build.load("cpu").lidar_returns(args)
    return LidarReturns(returns, torch.from_numpy(points), torch.from_numpy(time), torch.from_numpy(beam),
                        torch.from_numpy(column))
