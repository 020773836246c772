"""Tile/Gaussian intersection lists shared by camera and LiDAR tiling."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class TileAssignment:
    """ray_tile (R,) tile of each ray (image order, flattened); tile_ids / gaussian_ids (P,) unique pairs sorted
    by tile (then Gaussian); num_tiles."""

    ray_tile: Tensor
    tile_ids: Tensor
    gaussian_ids: Tensor
    num_tiles: int

    def candidates(self) -> dict[int, Tensor]:
        """Gaussian indices touching each non-empty tile."""
        if self.tile_ids.numel() == 0:
            return {}
        tiles, counts = torch.unique_consecutive(self.tile_ids, return_counts=True)
        return {int(t): g for t, g in zip(tiles.tolist(), torch.split(self.gaussian_ids, counts.tolist()))}


def expand_rectangles(gaussian: Tensor, x0: Tensor, x1: Tensor, y0: Tensor, y1: Tensor, tiles_x: int
                      ) -> tuple[Tensor, Tensor]:
    """(tile_id, gaussian) pairs for inclusive tile rectangles [x0, x1] x [y0, y1] (empty where x1 < x0)."""
    nx = (x1 - x0 + 1).clamp_min(0)
    ny = (y1 - y0 + 1).clamp_min(0)
    count = nx * ny
    owner = torch.repeat_interleave(torch.arange(gaussian.numel()), count)
    start = torch.cumsum(count, 0) - count
    local = torch.arange(int(count.sum())) - start[owner]
    tx = x0[owner] + local % nx[owner].clamp_min(1)
    ty = y0[owner] + local // nx[owner].clamp_min(1)
    return ty * tiles_x + tx, gaussian[owner]


def unique_pairs(tile: Tensor, gaussian: Tensor, num_gaussians: int) -> tuple[Tensor, Tensor]:
    """Deduplicate (tile, gaussian) pairs (a Gaussian with two phase footprints is evaluated once per ray)."""
    key = torch.unique(tile * max(num_gaussians, 1) + gaussian)
    return key // max(num_gaussians, 1), key % max(num_gaussians, 1)
