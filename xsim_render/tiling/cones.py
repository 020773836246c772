"""Tile cones: per tile, the cone of its rays' sensor-frame directions, and the cone test of `full` footprints.

A Gaussian the Unscented Transform cannot represent carries a bounding cone (projection.footprint
`bounding_cones`) holding every sensor-frame direction a ray of the capture can have while meeting it. Each
tile's rays have fixed sensor-frame directions (camera: the pixel centres unprojected by the camera model, pixels
without a ray ignored; LiDAR: beam elevation x firing azimuth), held in a cone around their normalised mean
direction whose half-angle is the largest angle from that axis to any of them. Two cones share a direction only
if the angle between their axes is at most the sum of their half-angles, so a tile whose cone fails that test
(with CONE_MARGIN for the float32 rounding of the rays) has no ray that can meet the Gaussian.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..constants import CAMERA_TILE, LIDAR_TILE_BEAMS, LIDAR_TILE_COLUMNS
from ..projection.footprint import Footprints
from ..sensors import camera_models
from ..sensors.rays import camera_pixel_grid, lidar_directions
from ..sensors.rig import CameraSpec, LidarSpec

CONE_MARGIN = 1e-5          # rad added to every cone test
_CHUNK_ELEMENTS = 1 << 22   # footprint x tile products evaluated at once


@dataclass(frozen=True)
class TileCones:
    """axis (T,3) unit sensor-frame direction, half_angle (T,) rad, has_rays (T,) bool (False: no valid ray)."""

    axis: Tensor
    half_angle: Tensor
    has_rays: Tensor


def tile_cones(directions: Tensor, valid: Tensor, ray_tile: Tensor, num_tiles: int) -> TileCones:
    """Cones of unit directions (R,3) grouped by ray_tile (R,); invalid rays are ignored (float64)."""
    d = directions.reshape(-1, 3).to(torch.float64)[valid.reshape(-1)]
    tile = ray_tile.reshape(-1)[valid.reshape(-1)]
    total = torch.zeros((num_tiles, 3), dtype=torch.float64).index_add_(0, tile, d)
    count = torch.zeros(num_tiles, dtype=torch.long).index_add_(0, tile, torch.ones_like(tile))
    norm = total.norm(dim=-1)
    axis = total / norm.clamp_min(1e-300)[:, None]
    a = axis[tile]
    angle = torch.atan2(torch.linalg.cross(a, d).norm(dim=-1), (a * d).sum(-1))
    half = torch.zeros(num_tiles, dtype=torch.float64).scatter_reduce_(0, tile, angle, "amax")
    half = torch.where(norm < 1e-9 * count.clamp_min(1), torch.full_like(half, math.pi), half)
    return TileCones(axis, half, count > 0)


def camera_ray_tiles(width: int, height: int) -> tuple[Tensor, int, int]:
    """(H*W,) tile of each pixel (row-major), tiles across, tiles down (CAMERA_TILE x CAMERA_TILE tiles)."""
    tiles_x, tiles_y = math.ceil(width / CAMERA_TILE), math.ceil(height / CAMERA_TILE)
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return ((rows // CAMERA_TILE) * tiles_x + cols // CAMERA_TILE).reshape(-1), tiles_x, tiles_y


@functools.lru_cache(maxsize=16)
def _camera_cones(model: str, width: int, height: int, fx: float, fy: float, cx: float, cy: float,
                  distortion: tuple[float, ...]) -> TileCones:
    spec = CameraSpec("tiles", model, width, height, fx, fy, cx, cy, distortion)
    dirs, valid = camera_models.unproject(spec, camera_pixel_grid(spec, torch.float64))
    ray_tile, tiles_x, tiles_y = camera_ray_tiles(width, height)
    return tile_cones(dirs, valid, ray_tile, tiles_x * tiles_y)


def camera_tile_cones(camera: CameraSpec) -> TileCones:
    """Cones of the camera's tiles (cached per intrinsics; the rays of pixel centres, optical frame)."""
    return _camera_cones(camera.model, camera.width, camera.height, float(camera.fx), float(camera.fy),
                         float(camera.cx), float(camera.cy), tuple(float(v) for v in camera.distortion))


def beam_rank(lidar: LidarSpec) -> Tensor:
    """(beams,) position of each beam (rig order) in ascending elevation order."""
    order = torch.argsort(torch.tensor(lidar.elevations, dtype=torch.float64))
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.numel())
    return rank


def lidar_ray_tiles(lidar: LidarSpec) -> tuple[Tensor, int, int]:
    """(beams, columns) tile of each firing (rows in rig order; tiles of LIDAR_TILE_BEAMS beams in elevation
    order x LIDAR_TILE_COLUMNS columns), tiles across, tiles down."""
    tiles_c = math.ceil(lidar.columns / LIDAR_TILE_COLUMNS)
    tiles_b = math.ceil(lidar.beams / LIDAR_TILE_BEAMS)
    column_tile = torch.arange(lidar.columns)[None, :] // LIDAR_TILE_COLUMNS
    return (beam_rank(lidar)[:, None] // LIDAR_TILE_BEAMS) * tiles_c + column_tile, tiles_c, tiles_b


@functools.lru_cache(maxsize=16)
def _lidar_cones(elevations: tuple[float, ...], columns: int, spin_direction: str, seam_azimuth: float
                 ) -> TileCones:
    lidar = LidarSpec("tiles", elevations, columns, spin_direction=spin_direction, seam_azimuth=seam_azimuth)
    ray_tile, tiles_c, tiles_b = lidar_ray_tiles(lidar)
    dirs = lidar_directions(lidar, torch.float64)
    return tile_cones(dirs, torch.ones(ray_tile.shape, dtype=torch.bool), ray_tile, tiles_c * tiles_b)


def lidar_tile_cones(lidar: LidarSpec) -> TileCones:
    """Cones of the LiDAR's tiles (cached per beam layout, columns and spin; sensor frame)."""
    return _lidar_cones(tuple(float(e) for e in lidar.elevations), int(lidar.columns), lidar.spin_direction,
                        float(lidar.seam_azimuth))


def cone_pairs(cones: TileCones, footprints: Footprints) -> tuple[Tensor, Tensor]:
    """(tile_id, gaussian) pairs of footprints whose cone_axis / cone_half_angle cone meets a tile's cone."""
    axis = footprints.cone_axis.to(torch.float64)
    half = footprints.cone_half_angle.to(torch.float64)
    tiles_with_rays = cones.has_rays.nonzero().squeeze(1)
    t_axis, t_half = cones.axis[tiles_with_rays], cones.half_angle[tiles_with_rays]
    step = max(1, _CHUNK_ELEMENTS // max(1, tiles_with_rays.numel()))
    tiles, gaussians = [], []
    for s in range(0, axis.shape[0], step):
        cos = (axis[s:s + step] @ t_axis.T).clamp(-1.0, 1.0)
        reach = half[s:s + step, None] + t_half[None] + CONE_MARGIN
        hit = (torch.acos(cos) <= reach) | (reach >= math.pi)
        fp, t = hit.nonzero(as_tuple=True)
        tiles.append(tiles_with_rays[t])
        gaussians.append(footprints.gaussian[s:s + step][fp])
    if not tiles:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
    return torch.cat(tiles), torch.cat(gaussians)
