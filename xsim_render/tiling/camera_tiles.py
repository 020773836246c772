"""Camera tiling: 16 x 16 pixel tiles; a footprint covers the pixels whose centres lie in its rectangle.

`full` footprints (Gaussians the UT cannot represent) are assigned by their bounding cone instead: every tile
whose cone of pixel rays meets it (tiling.cones), which never misses a tile a ray of the Gaussian reaches.
"""

from __future__ import annotations

import torch

from ..constants import CAMERA_TILE
from ..projection.footprint import Footprints
from ..sensors.rig import CameraSpec
from .cones import camera_ray_tiles, camera_tile_cones, cone_pairs
from .pairs import TileAssignment, expand_rectangles, unique_pairs


def camera_tiles(camera: CameraSpec, footprints: Footprints, num_gaussians: int) -> TileAssignment:
    """Assign footprints (pixel rectangles, or bounding cones where full) to 16x16 tiles; rays are pixels in
    row-major order."""
    w, h = camera.width, camera.height
    ray_tile, tiles_x, tiles_y = camera_ray_tiles(w, h)
    rect = footprints.select(~footprints.full)
    lo = rect.lo.nan_to_num(-1e9, -1e9, -1e9).clamp(-1e9, 1e9)
    hi = rect.hi.nan_to_num(1e9, 1e9, 1e9).clamp(-1e9, 1e9)
    j0 = torch.ceil(lo[:, 0] - 0.5).clamp(0, w - 1).long()
    j1 = torch.floor(hi[:, 0] - 0.5).clamp(-1, w - 1).long()
    i0 = torch.ceil(lo[:, 1] - 0.5).clamp(0, h - 1).long()
    i1 = torch.floor(hi[:, 1] - 0.5).clamp(-1, h - 1).long()
    empty = (j1 < j0) | (i1 < i0)
    x0 = j0 // CAMERA_TILE
    x1 = torch.where(empty, x0 - 1, j1.clamp_min(0) // CAMERA_TILE)
    y0, y1 = i0 // CAMERA_TILE, i1.clamp_min(0) // CAMERA_TILE
    tile, gauss = expand_rectangles(rect.gaussian, x0, x1, y0, y1, tiles_x)
    cone_tile, cone_gauss = cone_pairs(camera_tile_cones(camera), footprints.select(footprints.full))
    tile, gauss = unique_pairs(torch.cat((tile, cone_tile)), torch.cat((gauss, cone_gauss)), num_gaussians)
    return TileAssignment(ray_tile, tile, gauss, tiles_x * tiles_y)
