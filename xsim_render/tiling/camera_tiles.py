"""Camera tiling: 16 x 16 pixel tiles; a footprint covers the pixels whose centres lie in its rectangle."""

from __future__ import annotations

import math

import torch

from ..constants import CAMERA_TILE
from ..projection.footprint import Footprints
from ..sensors.rig import CameraSpec
from .pairs import TileAssignment, expand_rectangles, unique_pairs


def camera_tiles(camera: CameraSpec, footprints: Footprints, num_gaussians: int) -> TileAssignment:
    """Assign footprints (pixel rectangles) to 16x16 tiles; rays are pixels in row-major order."""
    w, h = camera.width, camera.height
    tiles_x, tiles_y = math.ceil(w / CAMERA_TILE), math.ceil(h / CAMERA_TILE)
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    ray_tile = ((rows // CAMERA_TILE) * tiles_x + cols // CAMERA_TILE).reshape(-1)
    lo = footprints.lo.nan_to_num(-1e9, -1e9, -1e9).clamp(-1e9, 1e9)
    hi = footprints.hi.nan_to_num(1e9, 1e9, 1e9).clamp(-1e9, 1e9)
    j0 = torch.ceil(lo[:, 0] - 0.5).clamp(0, w - 1).long()
    j1 = torch.floor(hi[:, 0] - 0.5).clamp(-1, w - 1).long()
    i0 = torch.ceil(lo[:, 1] - 0.5).clamp(0, h - 1).long()
    i1 = torch.floor(hi[:, 1] - 0.5).clamp(-1, h - 1).long()
    empty = (j1 < j0) | (i1 < i0)
    x0 = j0 // CAMERA_TILE
    x1 = torch.where(empty, x0 - 1, j1.clamp_min(0) // CAMERA_TILE)
    y0, y1 = i0 // CAMERA_TILE, i1.clamp_min(0) // CAMERA_TILE
    tile, gauss = expand_rectangles(footprints.gaussian, x0, x1, y0, y1, tiles_x)
    tile, gauss = unique_pairs(tile, gauss, num_gaussians)
    return TileAssignment(ray_tile, tile, gauss, tiles_x * tiles_y)
