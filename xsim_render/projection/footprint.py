"""Projection stage: every Gaussian's footprint for tiling, with phase modeling.

The footprint is opacity aware: a Gaussian of opacity sigma contributes alpha >= 1/255 only where its squared
Mahalanobis distance D2 <= 2 ln(255 sigma), so its extent is k = sqrt(2 ln(255 sigma)) image-space standard
deviations (from the Unscented Transform), widened by a safety factor and a pad of about one ray spacing.
Spinning LiDARs use XSIM Algorithm 2 (phase modeling): projections on the seam-centred branches at the start
and end of the sweep besides the central one; a Gaussian seen at both ends gets two footprints.

Gaussians the UT cannot represent (sensor inside or close to the Gaussian, angular radius > MAX_ANGULAR_RADIUS,
a sigma point on the invalid side of the lens, a LiDAR Gaussian at or near the spin axis, a rolling-shutter solve
that does not converge) are never dropped, for cameras and LiDARs alike: they are marked `full` and carry a
bounding cone in the sensor frame (see `bounding_cones`) that the tiling tests against each tile's cone of rays.
The cone test ignores the range on purpose: a Gaussian beyond max_range still changes alpha and the expected
range (the rasterizer and the brute force do not cull by range).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
from torch import Tensor

from ..motion.rigid import RigidMotion
from ..motion.rolling_shutter import point_in_sensor
from ..sensors.camera_models import max_valid_radius
from .sensor_projection import CameraProjection, LidarProjection, SensorProjection
from .unscented import UnscentedProjection, unscented_transform

EXTENT_SAFETY = 1.25        # multiplies the k-sigma UT extent (and the k-sigma bounding-sphere radius)
MAX_ANGULAR_RADIUS = 0.35   # rad; larger Gaussians are tiled by their bounding cone
BRANCH_NEGATIVE, BRANCH_CENTRAL, BRANCH_POSITIVE = -1, 0, 1
CONE_SAMPLES = 9            # sample times across the capture for the bounding cone of a UT-failed Gaussian
SPHERE_PAD_ABS = 1e-4       # m added to every bounding-sphere radius (float32 rounding of the rasterizer)
SPHERE_PAD_REL = 1e-6       # times the distance to the sensor, added likewise


@dataclass
class Footprints:
    """K footprints of Gaussians on the sensor image.

    gaussian (K,) scene index; lo/hi (K,2) rectangle in image coords (pixels, or LiDAR (phase, elevation) rad);
    full (K,) the UT could not represent the Gaussian: it is tiled by its bounding cone, not by the rectangle
    (lo/hi are -inf/inf); branch (K,) -1/0/+1 (LiDAR phase branch); distance (K,) m of the centre (for
    information); cone_axis (K,3) unit sensor-frame direction and cone_half_angle (K,) rad of the cone holding
    every ray direction that can meet the Gaussian during the capture (used where full; pi = every ray;
    float64). Without cone data a full footprint gets half-angle pi (every ray).
    """

    gaussian: Tensor
    lo: Tensor
    hi: Tensor
    full: Tensor
    branch: Tensor
    distance: Tensor
    cone_axis: Tensor | None = None
    cone_half_angle: Tensor | None = None

    def __post_init__(self) -> None:
        n = self.gaussian.shape[0]
        if self.cone_axis is None:
            self.cone_axis = torch.zeros((n, 3), dtype=torch.float64)
        if self.cone_half_angle is None:
            self.cone_half_angle = torch.where(self.full, math.pi, 0.0).to(torch.float64)

    def select(self, mask: Tensor) -> Footprints:
        """The footprints where mask (K,) is True."""
        return Footprints(*(getattr(self, f.name)[mask] for f in fields(self)))

    @staticmethod
    def empty(dtype: torch.dtype) -> Footprints:
        lo = torch.zeros((0, 2), dtype=dtype)
        return Footprints(torch.zeros(0, dtype=torch.long), lo, lo.clone(), torch.zeros(0, dtype=torch.bool),
                          torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=dtype))

    @staticmethod
    def cat(parts: list[Footprints], dtype: torch.dtype = torch.float32) -> Footprints:
        if not parts:
            return Footprints.empty(dtype)
        return Footprints(*(torch.cat([getattr(p, f.name) for p in parts], 0) for f in fields(Footprints)))


def opacity_extent(sigma: Tensor) -> Tensor:
    """k = sqrt(2 ln(255 sigma)): Mahalanobis radius beyond which alpha < 1/255 (0 where never visible)."""
    return (2 * torch.log((255.0 * sigma).clamp_min(1.0))).sqrt()


def drift_bound(means: Tensor, body: RigidMotion | None, sensor: RigidMotion, distance: Tensor, h: float) -> Tensor:
    """Upper bound (m) on how far a Gaussian centre moves in the sensor frame within h seconds of an instant.

    means (n,3) in `body`'s frame; distance (..., n) its distance to the sensor (m) at that instant. The
    sensor-frame centre c(t) = R_s(t)^T (x(t) - p_s(t)) has velocity R_s^T (x' - p_s') - R_s^T (w_s x (x - p_s)),
    so |c'| <= A + |w_s| |c| with A = |v_s| + |w_s| |t_s| (sensor mounted at t_s on its body) + |v_b| +
    |w_b| (|m| + |t_b|) (a point m of a body moving with v_b, w_b). By Gronwall, |c(t) - c(t0)| <=
    (A + |w_s| |c(t0)|) (exp(|w_s| h) - 1) / |w_s| for |t - t0| <= h (A h where w_s = 0), in either direction
    of time.
    """
    def speed_terms(motion: RigidMotion) -> tuple[Tensor, Tensor, Tensor]:
        mount = motion.mount_translation
        lever = mount.norm() if mount is not None else means.new_zeros(())
        return motion.linear_velocity.norm(), motion.angular_velocity.norm(), lever

    v_s, w_s, lever_s = speed_terms(sensor)
    a = v_s + w_s * lever_s
    if body is not None:
        v_b, w_b, lever_b = speed_terms(body)
        a = a + v_b + w_b * (means.norm(dim=-1) + lever_b)
    wh = float(w_s) * h
    growth = h * (math.expm1(wh) / wh if wh > 1e-12 else 1.0)   # (exp(|w| h) - 1) / |w|
    return (a + w_s * distance) * growth


def bounding_cones(means: Tensor, radius: Tensor, body: RigidMotion | None, sensor: RigidMotion,
                   t_start: float, t_end: float, samples: int = CONE_SAMPLES) -> tuple[Tensor, Tensor, Tensor]:
    """Cones, in the sensor frame, holding every ray that can meet a Gaussian's bounding sphere in a capture.

    means (n,3) in `body`'s frame (None: world), radius (n,) m: the sphere holding the Gaussian's alpha >= 1/255
    region. Returns axis (n,3) unit, half_angle (n,) rad (pi: any direction) and the least sampled distance
    (n,) m, all float64.

    Why no ray is missed: a ray of the capture at time tau in [t_start, t_end] leaves the sensor origin along a
    fixed sensor-frame direction d; it can give the Gaussian alpha >= 1/255 only if its point of maximum
    response (in front, t* > 0) lies in the sphere of radius r around the centre c(tau) (sensor frame at tau).
    The centre is sampled at `samples` evenly spaced times s_i; every tau is within h = (t_end - t_start) /
    (2 (samples - 1)) of some s_i, so |c(tau) - c(s_i)| <= drift_bound(...) = g_i and the sphere lies in the
    sphere of radius R_i = r + g_i (+ a float pad) around c(s_i). A ray from the origin meets that sphere only if
    angle(d, c(s_i)) <= asin(R_i / |c(s_i)|), or in any direction if |c(s_i)| <= R_i. The returned cone
    contains the union of these per-sample cones: half_angle = max_i angle(axis, c(s_i)) + asin(R_i /
    |c(s_i)|) around axis = the normalised sum of the unit c(s_i).
    """
    f64 = torch.float64
    means = means.detach().to(f64)
    radius = radius.detach().to(f64)
    body = body.to(f64) if body is not None else None
    sensor = sensor.to(f64)
    n = means.shape[0]
    span = float(t_end) - float(t_start)
    samples = samples if span > 0 else 1
    times = float(t_start) + span * torch.arange(samples, dtype=f64) / max(samples - 1, 1)
    centres = point_in_sensor(means[None], body, sensor, times[:, None].expand(samples, n))   # (S,n,3)
    dist = centres.norm(dim=-1)
    h = span / (2 * (samples - 1)) if samples > 1 else 0.0
    grown = radius[None] + drift_bound(means, body, sensor, dist, h) + SPHERE_PAD_ABS + SPHERE_PAD_REL * dist
    unit = centres / dist.clamp_min(1e-300)[..., None]
    axis = unit.sum(0)
    axis_norm = axis.norm(dim=-1)
    axis = axis / axis_norm.clamp_min(1e-300)[:, None]
    off_axis = torch.atan2(torch.linalg.cross(axis[None].expand_as(unit), unit).norm(dim=-1),
                           (axis[None] * unit).sum(-1))
    spread = torch.asin((grown / dist.clamp_min(1e-300)).clamp(max=1.0))
    half = (off_axis + spread).max(0).values
    every = (dist <= grown).any(0) | (axis_norm < 1e-6) | ~torch.isfinite(half)
    half = torch.where(every, torch.full_like(half, math.pi), half.clamp(max=math.pi))
    return axis, half, dist.min(0).values


def _behind_camera(centres: Tensor, radius: Tensor, projection: CameraProjection) -> Tensor:
    """True where the sphere (radius (S,n) per sample) is on the invalid side of the camera at every sample."""
    if projection.camera.model == "fisheye":
        theta_max = max_valid_radius(projection.camera)
        dist = centres.norm(dim=-1)
        theta = torch.atan2(centres[..., :2].norm(dim=-1), centres[..., 2])
        half = torch.asin((radius / dist.clamp_min(1e-12)).clamp(max=1.0))
        return ((theta - half > theta_max) & (dist > radius)).all(0)
    return (centres[..., 2] + radius < 0).all(0)


def _near_spin_axis(centres: Tensor, radius: Tensor) -> Tensor:
    """True where a Gaussian comes, at some sampled time, within twice its angular radius of a LiDAR's spin axis.

    Near the axis (elevation +-pi/2) azimuth, hence phase, changes arbitrarily fast across the Gaussian: a sphere
    that holds the axis covers every phase, one close to it a phase range far wider than its linearisation, so
    no UT rectangle represents it. centres (S,n,3) sensor frame, radius (n,) m.
    """
    dist = centres.norm(dim=-1)
    to_axis = torch.atan2(centres[..., :2].norm(dim=-1), centres[..., 2].abs())
    spread = torch.asin((EXTENT_SAFETY * radius[None] / dist.clamp_min(1e-30)).clamp(max=1.0))
    return (to_axis <= 2 * spread).any(0)


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
    if isinstance(projection, LidarProjection):
        full |= _near_spin_axis(centres, radius)
    keep = ~full
    if isinstance(projection, CameraProjection):
        # samples are (t_end - t_start) / 2 apart: every instant is within a quarter of the capture of one
        h = 0.25 * (projection.t_end - projection.t_start)
        dist = centres.norm(dim=-1)
        grown = radius[None] + drift_bound(means, body, sensor, dist, h) + SPHERE_PAD_ABS + SPHERE_PAD_REL * dist
        keep &= ~_behind_camera(centres, grown, projection)
    pad = (1.0, 1.0) if isinstance(projection, CameraProjection) else (
        2 * math.pi / projection.lidar.columns, 2e-3)
    bounds = projection.bounds()
    out = []
    failed = full.clone()
    sel = keep.nonzero().squeeze(1)
    if sel.numel():
        args = (means[sel], rotations[sel], scales[sel], body, sensor, projection)
        if isinstance(projection, CameraProjection):
            fp, bad = _camera_footprints(idx[sel], unscented_transform(*args, projection.t_mid), k[sel], pad, bounds)
        else:
            fp, bad = _lidar_footprints(idx[sel], args, k[sel], pad, bounds, phase_modeling)
        out.append(fp)
        failed[sel[bad]] = True
    cone = failed.nonzero().squeeze(1)
    if cone.numel():
        axis, half, _ = bounding_cones(means[cone], EXTENT_SAFETY * radius[cone], body, sensor,
                                       projection.t_start, projection.t_end)
        inf = means.new_full((cone.numel(), 2), math.inf)
        out.append(Footprints(idx[cone], -inf, inf, torch.ones(cone.numel(), dtype=torch.bool),
                              torch.zeros(cone.numel(), dtype=torch.long), near_dist[cone], axis, half))
    return Footprints.cat(out, means.dtype)


def _camera_footprints(idx, ut, k, pad, bounds) -> tuple[Footprints, Tensor]:
    """Rectangles of the UT-valid Gaussians that reach the image, and the UT-failed mask (some sigma point
    outside the model's domain: tiled by the bounding cone instead)."""
    lo, hi = _rect(ut, k, pad)
    show = ut.valid & _intersects(lo, hi, bounds)
    n = int(show.sum())
    fp = Footprints(idx[show], lo[show], hi[show], torch.zeros(n, dtype=torch.bool),
                    torch.zeros(n, dtype=torch.long), ut.distance[show])
    return fp, ~ut.valid


def _lidar_footprints(idx, args, k, pad, bounds, phase_modeling) -> tuple[Footprints, Tensor]:
    """XSIM Algorithm 2 footprints (or the central one alone without phase modeling), and the UT-failed mask.

    Without phase modeling a Gaussian fails when its central projection is invalid. With it, the validity of
    the (start-branch, central, end-branch) projections must follow one of the patterns Algorithm 2 relies on:
    all valid; both seam branches valid and the central one not (a Gaussian on the seam, cut by the central
    branch); only the central one valid (a Gaussian opposite the seam, cut by both seam branches). Any other
    pattern (a sigma point on the spin axis, a time solve that did not converge) fails. Failed Gaussians keep
    whatever Algorithm 2 gives and are also tiled by their bounding cone.
    """
    projection: LidarProjection = args[-1]
    central = unscented_transform(*args, projection.t_mid, math.pi)
    lo_c, hi_c = _rect(central, k, pad)
    ok_c = central.valid & _intersects(lo_c, hi_c, bounds)
    if not phase_modeling:
        fp = Footprints(idx[ok_c], lo_c[ok_c], hi_c[ok_c], torch.zeros_like(idx[ok_c], dtype=torch.bool),
                        torch.zeros_like(idx[ok_c]), central.distance[ok_c])
        return fp, ~central.valid
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
    trusted = (negative.valid == positive.valid) & (negative.valid | central.valid)
    return Footprints.cat(parts, lo_c.dtype), ~trusted
