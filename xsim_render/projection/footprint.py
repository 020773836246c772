"""Projection stage: every Gaussian's image-space footprint (rectangle) for tiling, with phase modeling.

The footprint is opacity aware: a Gaussian of opacity sigma contributes alpha >= 1/255 only where its squared
Mahalanobis distance D2 <= 2 ln(255 sigma), so its extent is k = sqrt(2 ln(255 sigma)) image-space standard
deviations (from the Unscented Transform), widened by a safety factor and a pad of about one ray spacing.
Gaussians the UT cannot represent (sensor inside or close to the Gaussian, very large angular size, a camera
point on the invalid side of the lens) are marked `full`: they are tested against every ray, never dropped.
Spinning LiDARs use XSIM Algorithm 2 (phase modeling): projections on the seam-centred branches at the start
and end of the sweep besides the central one; a Gaussian seen at both ends gets two footprints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..motion.rigid import RigidMotion
from ..motion.rolling_shutter import point_in_sensor
from .sensor_projection import CameraProjection, LidarProjection, SensorProjection
from .unscented import UnscentedProjection, unscented_transform

EXTENT_SAFETY = 1.25        # multiplies the k-sigma UT extent
MAX_ANGULAR_RADIUS = 0.35   # rad; larger Gaussians are tested against every ray
BRANCH_NEGATIVE, BRANCH_CENTRAL, BRANCH_POSITIVE = -1, 0, 1


@dataclass
class Footprints:
    """K footprints: gaussian (K,) scene index, lo/hi (K,2) rectangle in image coords, full (K,) covers every
    ray, branch (K,) -1/0/+1 (LiDAR phase branch), distance (K,) m of the centre (for information)."""

    gaussian: Tensor
    lo: Tensor
    hi: Tensor
    full: Tensor
    branch: Tensor
    distance: Tensor

    @staticmethod
    def empty(dtype: torch.dtype) -> Footprints:
        lo = torch.zeros((0, 2), dtype=dtype)
        return Footprints(torch.zeros(0, dtype=torch.long), lo, lo.clone(), torch.zeros(0, dtype=torch.bool),
                          torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=dtype))

    @staticmethod
    def cat(parts: list[Footprints], dtype: torch.dtype = torch.float32) -> Footprints:
        if not parts:
            return Footprints.empty(dtype)
        return Footprints(*(torch.cat([getattr(p, f) for p in parts], 0) for f in
                            ("gaussian", "lo", "hi", "full", "branch", "distance")))


def opacity_extent(sigma: Tensor) -> Tensor:
    """k = sqrt(2 ln(255 sigma)): Mahalanobis radius beyond which alpha < 1/255 (0 where never visible)."""
    return (2 * torch.log((255.0 * sigma).clamp_min(1.0))).sqrt()


def _fisheye_theta_max(projection: CameraProjection) -> float:
    cam = projection.camera
    k = list(cam.distortion) + [0.0] * (4 - len(cam.distortion))
    theta = torch.linspace(0, math.pi, 20001, dtype=torch.float64)
    t2 = theta * theta
    theta_d = theta * (1 + k[0] * t2 + k[1] * t2**2 + k[2] * t2**3 + k[3] * t2**4)
    bad = (theta_d[1:] <= theta_d[:-1]).nonzero()
    return float(theta[bad[0, 0]]) if bad.numel() else math.pi


def _behind_camera(centres: Tensor, radius: Tensor, projection: CameraProjection) -> Tensor:
    """True where the bounding sphere is on the invalid side of the camera at every sampled time."""
    if projection.camera.model == "fisheye":
        theta_max = _fisheye_theta_max(projection)
        dist = centres.norm(dim=-1)
        theta = torch.atan2(centres[..., :2].norm(dim=-1), centres[..., 2])
        half = torch.asin((radius[None] / dist.clamp_min(1e-12)).clamp(max=1.0))
        return ((theta - half > theta_max) & (dist > radius[None])).all(0)
    return (centres[..., 2] + radius[None] < 0).all(0)


def _rect(ut: UnscentedProjection, k: Tensor, pad: tuple[float, float]) -> tuple[Tensor, Tensor]:
    std = torch.diagonal(ut.cov, dim1=-2, dim2=-1).clamp_min(0).sqrt()
    ext = EXTENT_SAFETY * k[:, None] * std + ut.mean.new_tensor(pad)
    return ut.mean - ext, ut.mean + ext


def _intersects(lo: Tensor, hi: Tensor, bounds: tuple[float, float, float, float]) -> Tensor:
    return (hi[:, 0] >= bounds[0]) & (lo[:, 0] <= bounds[1]) & (hi[:, 1] >= bounds[2]) & (lo[:, 1] <= bounds[3])


def project_gaussians(
    means: Tensor, rotations: Tensor, scales: Tensor, sigma: Tensor, frame: Tensor,
    bodies: list[RigidMotion | None], sensor: RigidMotion, projection: SensorProjection,
    phase_modeling: bool = True,
) -> Footprints:
    """Footprints of Gaussians; frame (N,) indexes `bodies` (None = world frame), means/rotations in that frame.

    Everything here only decides which rays a Gaussian may touch; the rasterizer evaluates the exact response.
    """
    parts: list[Footprints] = []
    k_all = opacity_extent(sigma.detach())
    for f, body in enumerate(bodies):
        idx = ((frame == f) & (k_all > 0)).nonzero().squeeze(1)
        if idx.numel() == 0:
            continue
        parts.append(_project_group(idx, means[idx].detach(), rotations[idx].detach(), scales[idx].detach(),
                                    k_all[idx], body, sensor, projection, phase_modeling))
    return Footprints.cat(parts, means.dtype)


def _project_group(idx, means, rotations, scales, k, body, sensor, projection, phase_modeling) -> Footprints:
    radius = k * scales.max(-1).values
    times = torch.tensor([projection.t_start, projection.t_mid, projection.t_end], dtype=means.dtype)
    centres = point_in_sensor(means[None], body, sensor, times[:, None].expand(3, means.shape[0]))
    near_dist = centres.norm(dim=-1).min(0).values
    full = (near_dist < 1.5 * radius + 1e-3) | (radius > MAX_ANGULAR_RADIUS * near_dist)
    keep = ~full
    if isinstance(projection, CameraProjection):
        keep &= ~_behind_camera(centres, radius, projection)
    pad = (1.0, 1.0) if isinstance(projection, CameraProjection) else (
        2 * math.pi / projection.lidar.columns, 2e-3)
    bounds = projection.bounds()
    out = []
    full_idx = idx[full]
    if full_idx.numel():
        inf = means.new_full((full_idx.numel(), 2), math.inf)
        out.append(Footprints(full_idx, -inf, inf, torch.ones(full_idx.numel(), dtype=torch.bool),
                              torch.zeros(full_idx.numel(), dtype=torch.long), near_dist[full]))
    sel = keep.nonzero().squeeze(1)
    if sel.numel():
        args = (means[sel], rotations[sel], scales[sel], body, sensor, projection)
        if isinstance(projection, CameraProjection):
            out.append(_camera_footprints(idx[sel], unscented_transform(*args, projection.t_mid), k[sel], pad, bounds))
        else:
            out.append(_lidar_footprints(idx[sel], args, k[sel], pad, bounds, phase_modeling))
    return Footprints.cat(out, means.dtype)


def _camera_footprints(idx, ut, k, pad, bounds) -> Footprints:
    lo, hi = _rect(ut, k, pad)
    full = ~ut.valid  # some sigma point outside the model's domain: test against every ray
    show = full | _intersects(lo, hi, bounds)
    lo = torch.where(full[:, None], torch.full_like(lo, -math.inf), lo)
    hi = torch.where(full[:, None], torch.full_like(hi, math.inf), hi)
    return Footprints(idx[show], lo[show], hi[show], full[show], torch.zeros_like(idx[show]), ut.distance[show])


def _lidar_footprints(idx, args, k, pad, bounds, phase_modeling) -> Footprints:
    projection: LidarProjection = args[-1]
    central = unscented_transform(*args, projection.t_mid, math.pi)
    lo_c, hi_c = _rect(central, k, pad)
    ok_c = central.valid & _intersects(lo_c, hi_c, bounds)
    if not phase_modeling:
        return Footprints(idx[ok_c], lo_c[ok_c], hi_c[ok_c], torch.zeros_like(idx[ok_c], dtype=torch.bool),
                          torch.zeros_like(idx[ok_c]), central.distance[ok_c])
    negative = unscented_transform(*args, projection.t_start, 0.0)
    positive = unscented_transform(*args, projection.t_end, 2 * math.pi)
    lo_l, hi_l = _rect(negative, k, pad)
    lo_r, hi_r = _rect(positive, k, pad)
    ok_l = negative.valid & _intersects(lo_l, hi_l, bounds) & (hi_l[:, 0] - lo_l[:, 0] < 2 * math.pi)
    ok_r = positive.valid & _intersects(lo_r, hi_r, bounds) & (hi_r[:, 0] - lo_r[:, 0] < 2 * math.pi)
    # Algorithm 2: both seam branches if both see it, else the one that does, else the central projection.
    use_l, use_r = ok_l, ok_r
    use_c = ok_c & ~ok_l & ~ok_r
    parts = []
    for use, lo, hi, ut, branch in ((use_l, lo_l, hi_l, negative, -1), (use_c, lo_c, hi_c, central, 0),
                                    (use_r, lo_r, hi_r, positive, 1)):
        n = int(use.sum())
        parts.append(Footprints(idx[use], lo[use], hi[use], torch.zeros(n, dtype=torch.bool),
                                torch.full((n,), branch, dtype=torch.long), ut.distance[use]))
    return Footprints.cat(parts)
