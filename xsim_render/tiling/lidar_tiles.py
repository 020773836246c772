"""LiDAR tiling (SplatAD A.1): tiles of 8 beams (in elevation order, non-uniform spacing) x 32 columns.

A footprint (phase, elevation) rectangle covers the firings whose phase 2 pi (c + 0.5) / N and beam elevation
lie inside it. With phase modeling each footprint already sits on its own branch, so phases outside [0, 2 pi)
belong to no firing of this sweep and are clipped; without it (the plain 3DGUT/SplatAD baseline) footprints
wrap around the azimuth seam. `full` footprints (Gaussians the UT cannot represent) are assigned by their
bounding cone instead, in both modes: every tile whose cone of firing directions meets it (tiling.cones).
"""

from __future__ import annotations

import math

import torch

from ..constants import LIDAR_TILE_BEAMS, LIDAR_TILE_COLUMNS
from ..projection.footprint import Footprints
from ..sensors.rig import LidarSpec
from .cones import cone_pairs, lidar_ray_tiles, lidar_tile_cones
from .pairs import TileAssignment, expand_rectangles, unique_pairs


def lidar_tiles(lidar: LidarSpec, footprints: Footprints, num_gaussians: int, wrap: bool = False) -> TileAssignment:
    """Assign (phase, elevation) footprints (or bounding cones where full) to beam x column tiles; rays in
    (beams, columns) row-major order."""
    n, b = lidar.columns, lidar.beams
    ray_tile, tiles_c, tiles_b = lidar_ray_tiles(lidar)
    cone_tile, cone_gauss = cone_pairs(lidar_tile_cones(lidar), footprints.select(footprints.full))
    footprints = footprints.select(~footprints.full)
    elev_sorted = torch.sort(torch.tensor(lidar.elevations, dtype=footprints.lo.dtype)).values
    lo = footprints.lo.nan_to_num(-1e9, -1e9, -1e9).clamp(-1e9, 1e9)
    hi = footprints.hi.nan_to_num(1e9, 1e9, 1e9).clamp(-1e9, 1e9)
    k0 = torch.searchsorted(elev_sorted, lo[:, 1].contiguous(), right=False)
    k1 = torch.searchsorted(elev_sorted, hi[:, 1].contiguous(), right=True) - 1
    y0, y1 = k0.clamp(0, b - 1) // LIDAR_TILE_BEAMS, k1.clamp(-1, b - 1)
    rows_empty = (k1 < k0) | (k1 < 0) | (k0 > b - 1)
    y1 = torch.where(rows_empty, y0 - 1, y1.clamp_min(0) // LIDAR_TILE_BEAMS)
    scale = n / (2 * math.pi)
    c0 = torch.ceil(lo[:, 0] * scale - 0.5).clamp(-4 * n, 4 * n).long()
    c1 = torch.floor(hi[:, 0] * scale - 0.5).clamp(-4 * n, 4 * n).long()
    segments = []
    if wrap:
        whole = c1 - c0 + 1 >= n
        c0 = torch.where(whole, torch.zeros_like(c0), c0)
        c1 = torch.where(whole, torch.full_like(c1, n - 1), c1)
        shift = torch.div(c0, n, rounding_mode="floor") * n
        c0, c1 = c0 - shift, c1 - shift               # c0 in [0, n), c1 in [c0, 2n)
        segments.append((c0, c1.clamp(max=n - 1)))
        segments.append((torch.zeros_like(c0), torch.where(c1 >= n, c1 - n, torch.full_like(c1, -1))))
    else:
        segments.append((c0, c1))
    tiles, gaussians = [], []
    for s0, s1 in segments:
        empty = (s1 < s0) | (s1 < 0) | (s0 > n - 1)
        x0 = s0.clamp(0, n - 1) // LIDAR_TILE_COLUMNS
        x1 = torch.where(empty, x0 - 1, s1.clamp(0, n - 1) // LIDAR_TILE_COLUMNS)
        t, g = expand_rectangles(footprints.gaussian, x0, x1, y0, y1, tiles_c)
        tiles.append(t)
        gaussians.append(g)
    tile, gauss = unique_pairs(torch.cat(tiles + [cone_tile]), torch.cat(gaussians + [cone_gauss]), num_gaussians)
    return TileAssignment(ray_tile.reshape(-1), tile, gauss, tiles_c * tiles_b)
