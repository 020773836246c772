"""Sky: a constant colour or an equirectangular environment map in the world frame."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Sky:
    """Background radiance seen where transmittance remains.

    color: (3,) RGB in [0,1], used when no map is given. environment: (H,W,3) equirectangular map in the world
    frame; column 0 at azimuth +pi decreasing to -pi (atan2(y, x)), row 0 at elevation +pi/2.
    """

    color: Tensor | None = None
    environment: Tensor | None = None

    def to(self, dtype: torch.dtype) -> Sky:
        cast = (lambda x: None if x is None else x.to(dtype))
        return Sky(cast(self.color), cast(self.environment))

    def radiance(self, directions: Tensor) -> Tensor:
        """RGB (...,3) for unit world directions (...,3); bilinear lookup in the map."""
        if self.environment is None:
            color = self.color if self.color is not None else directions.new_zeros(3)
            return color.to(directions.dtype).expand(directions.shape)
        env = self.environment.to(directions.dtype)
        h, w = env.shape[:2]
        az = torch.atan2(directions[..., 1], directions[..., 0])
        el = torch.asin(directions[..., 2].clamp(-1, 1))
        x = ((math.pi - az) / (2 * math.pi)) * w - 0.5
        y = ((math.pi / 2 - el) / math.pi) * h - 0.5
        grid = torch.stack((x / (w - 1) * 2 - 1 if w > 1 else x * 0, y / (h - 1) * 2 - 1 if h > 1 else y * 0), -1)
        flat = grid.reshape(1, 1, -1, 2)
        out = torch.nn.functional.grid_sample(env.permute(2, 0, 1)[None], flat, mode="bilinear",
                                              padding_mode="border", align_corners=True)
        return out[0, :, 0].T.reshape(directions.shape)
