"""A LiDAR sweep's returns as a point cloud (the specification; kernels/returns.py is the cpu backend's).

A firing returns where its median range is finite and within [min_range, max_range] and, where a decoder gives a
ray-drop probability, that probability is below 0.5. Each return lies at median range times its sensor-frame
unit direction, at its firing time; returns are listed in column-major order (by column, then beam), the order
of a spinning sensor's packets.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..motion.local_frame import LocalFrame
from ..sensors.rays import SensorRays
from ..sensors.rig import LidarSpec


@dataclass
class LidarReturns:
    """returns (beams, columns) bool; points (K,3) sensor frame (m); time (K,) float64 on the absolute clock (s);
    beam and column (K,) int64; K returns in column-major order."""

    returns: Tensor
    points: Tensor
    time: Tensor
    beam: Tensor
    column: Tensor


def lidar_returns(lidar: LidarSpec, median: Tensor, drop: Tensor | None, rays: SensorRays, local: LocalFrame
                  ) -> LidarReturns:
    """The returns of a sweep from its (beams, columns) median ranges (m) and ray-drop probabilities (or None)."""
    returns = torch.isfinite(median) & (median >= lidar.min_range) & (median <= lidar.max_range)
    if drop is not None:
        returns &= drop < 0.5
    # column-major order, gathered by flat index (cheaper than 2-D indexing)
    column, beam = returns.T.nonzero(as_tuple=True)
    flat = beam * lidar.columns + column
    points = median.reshape(-1).index_select(0, flat)[:, None] * \
        rays.directions_sensor.reshape(-1, 3).index_select(0, flat)
    time = local.world_times(rays.times.reshape(-1).index_select(0, flat))
    return LidarReturns(returns, points, time, beam, column)
