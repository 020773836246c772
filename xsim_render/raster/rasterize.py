"""Tile-based rasterization: each ray evaluates the Gaussians listed for its tile, in 3D, at its own time."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..motion.rigid import RigidMotion
from ..tiling.pairs import TileAssignment
from .composite import Composite, composite
from .response import tile_response, whitening


@dataclass
class GaussianFrames:
    """Gaussians ready to rasterize: means (N,3) / rotations (N,3,3) / log_scales (N,3) in their own frame,
    sigma (N,) the opacity for this sensor, frame (N,) index into bodies (None = world); windows[f] is the time
    interval (s, the rays' clock) in which body f exists (None: always): rays outside it do not see its
    Gaussians."""

    means: Tensor
    rotations: Tensor
    log_scales: Tensor
    sigma: Tensor
    frame: Tensor
    bodies: list[RigidMotion | None]
    windows: list[tuple[float, float] | None] | None = None

    def window_bounds(self, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """(F,) lower and upper existence bounds per body (-inf / +inf where always present)."""
        windows = self.windows or [None] * len(self.bodies)
        lo = torch.tensor([-float("inf") if w is None else w[0] for w in windows], dtype=dtype)
        hi = torch.tensor([float("inf") if w is None else w[1] for w in windows], dtype=dtype)
        return lo, hi


def exists_at(times: Tensor, frame: Tensor, bounds: tuple[Tensor, Tensor]) -> Tensor:
    """(R,M) whether Gaussians of frames `frame` (M,) exist at ray times (R,), given window_bounds()."""
    lo, hi = bounds
    t = times[:, None]
    return (t >= lo[frame][None, :]) & (t <= hi[frame][None, :])


def rays_in_frames(origins: Tensor, directions: Tensor, times: Tensor, bodies: list[RigidMotion | None]
                   ) -> tuple[Tensor, Tensor]:
    """Rays (R,3) expressed in every body frame at their own times: (F,R,3) origins and directions."""
    outs_o, outs_d = [], []
    for body in bodies:
        if body is None:
            outs_o.append(origins)
            outs_d.append(directions)
        else:
            rot, pos = body.pose_at(times)
            outs_o.append(((origins - pos)[:, None, :] @ rot).squeeze(1))
            outs_d.append((directions[:, None, :] @ rot).squeeze(1))
    return torch.stack(outs_o), torch.stack(outs_d)


def rasterize(origins: Tensor, directions: Tensor, times: Tensor, valid: Tensor, assignment: TileAssignment,
              gaussians: GaussianFrames, values: dict[str, Tensor]) -> Composite:
    """Composite every ray (R,) against its tile's Gaussians; values name -> (N,C) per-Gaussian attributes."""
    n_rays = origins.shape[0]
    o_f, d_f = rays_in_frames(origins, directions, times, gaussians.bodies)
    whiten, offset = whitening(gaussians.means, gaussians.rotations, gaussians.log_scales)
    dtype = origins.dtype
    out_values = {k: torch.zeros((n_rays, v.shape[-1]), dtype=dtype) for k, v in values.items()}
    alpha = torch.zeros(n_rays, dtype=dtype)
    distance = torch.zeros(n_rays, dtype=dtype)
    median = torch.full((n_rays,), float("nan"), dtype=dtype)
    bounds = gaussians.window_bounds(times.dtype)
    windowed = bool(torch.isfinite(bounds[0]).any() or torch.isfinite(bounds[1]).any())
    ray_order = torch.argsort(assignment.ray_tile, stable=True)
    tiles, counts = torch.unique_consecutive(assignment.ray_tile[ray_order], return_counts=True)
    ray_groups = dict(zip(tiles.tolist(), torch.split(ray_order, counts.tolist())))
    pieces: list[tuple[Tensor, Composite]] = []
    for tile, cand in assignment.candidates().items():
        rays = ray_groups.get(tile)
        if rays is None:
            continue
        rays = rays[valid[rays]]
        if rays.numel() == 0:
            continue
        t, a = tile_response(o_f[:, rays], d_f[:, rays], gaussians.frame[cand], whiten[cand], offset[cand],
                             gaussians.sigma[cand])
        if windowed:
            a = torch.where(exists_at(times[rays], gaussians.frame[cand], bounds), a, torch.zeros_like(a))
        # keep, per ray, only the Gaussians that contribute (alpha >= 1/255, in front): a handful of the
        # tile's candidates, in front-to-back order; the stable sort over candidates listed by Gaussian index
        # resolves ties in hit distance by the lower Gaussian index (the brute force does the same)
        live = a > 0
        k = int(live.sum(1).max())
        key = torch.where(live, t, torch.full_like(t, float("inf"))).detach()
        sel = torch.sort(key, dim=1, stable=True).indices[:, :k]
        t, a = torch.gather(t, 1, sel), torch.gather(a, 1, sel)
        vals = {name: v[cand][sel] for name, v in values.items()}
        pieces.append((rays, composite(t, a, vals)))
    if pieces:
        idx = torch.cat([p[0] for p in pieces])
        alpha = alpha.index_put((idx,), torch.cat([p[1].alpha for p in pieces]))
        distance = distance.index_put((idx,), torch.cat([p[1].distance for p in pieces]))
        median = median.index_put((idx,), torch.cat([p[1].distance_median for p in pieces]))
        for k in out_values:
            out_values[k] = out_values[k].index_put((idx,), torch.cat([p[1].values[k] for p in pieces]))
    return Composite(out_values, alpha, 1.0 - alpha, distance, median)
