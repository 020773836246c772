"""The local frame of one capture: where absolute (float64) positions and times become small numbers.

Map frames reach 1e5-1e7 m and ROS clocks 1.7e9 s; float32 keeps about 7 digits, so 0.5 m and 2 minutes
respectively at those magnitudes. Every capture is therefore rendered in a frame whose origin is the sensor's
position at the start of the capture and whose clock starts at the capture start; the axes stay those of the
world. The subtraction happens here, in float64, before anything is cast to the render precision, and
world-frame outputs are shifted back in float64.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from .rigid import RigidMotion

F64 = torch.float64


@dataclass(frozen=True)
class LocalFrame:
    """origin (3,) float64 world position of the local frame's origin; time (s, float64) its clock's zero."""

    origin: Tensor
    time: float

    def motion(self, m: RigidMotion, dtype: torch.dtype) -> RigidMotion:
        """A world-frame motion (float64, absolute time) expressed in this frame, cast to `dtype`."""
        m64 = m.to(F64)
        local = replace(m64, position=m64.position - self.origin, time=float(m.time) - self.time)
        return local.to(dtype)

    def points(self, x: Tensor, dtype: torch.dtype) -> Tensor:
        """World points (..., 3) of any precision expressed in this frame, cast to `dtype` (autograd kept)."""
        return (x.to(F64) - self.origin).to(dtype)

    def window(self, window: tuple[float, float] | None) -> tuple[float, float] | None:
        """An absolute time window (s) in this frame's clock."""
        return None if window is None else (window[0] - self.time, window[1] - self.time)

    def world_points(self, x: Tensor) -> Tensor:
        """Local points (..., 3) back in the world frame, float64."""
        return x.to(F64) + self.origin

    def world_times(self, t: Tensor) -> Tensor:
        """Local times back on the absolute clock, float64."""
        return t.to(F64) + self.time
