"""Generalized rolling-shutter projection (XSIM eq. 4-8, Algorithm 1).

A point moving with its frame (static world or a rigid actor) is seen by a moving sensor at the time eta that
solves  eta = tau(pi(x_sensor(eta))),  i.e. the root of  g(eta) = eta - tau(pi(x_sensor(eta)))  (seconds,
relative to the capture start like every time inside the renderer). g' comes from forward-mode differentiation
through the motion and the sensor model. The capture window is [projection.t_start, projection.t_end] (for a
LiDAR phase branch too: the branch only decides how the phase is unwrapped, so tau may leave the window).

Which root is returned, per point (vectorised over any batch shape, no per-point Python loop):
  1. Newton from eta0 (XSIM Alg. 1), with the fixed-point fallback g' := 1 where |g'| < MIN_SLOPE, at most
     NEWTON_ITERATIONS steps. If it converges (|g| < tolerance) to a root inside the window, that root.
  2. Otherwise, if g changes sign over the window (g(t_start) and g(t_end) finite, of opposite signs or zero),
     a safeguarded Newton on that bracket, started at the secant point of the two ends: the Newton step is
     taken when it stays inside the bracket and at least halves the previous step, else the bracket is
     bisected (at most BRACKET_ITERATIONS steps; bisection alone reaches the tolerance in ~35). It converges
     to a root in the window whatever g' is (small, negative). Where the window holds several roots it returns
     one of them, not necessarily the first nor the one nearest eta0; where the sign change is a jump of g
     (a LiDAR point crossing the branch cut, a camera point leaving the lens domain) rather than a root it
     does not converge and step 3 applies.
  3. Otherwise the result of step 1 stands: a root outside the window (e.g. a UT sigma point off the image, or
     a LiDAR point on a seam branch seen just before the sweep starts or just after it ends) when Newton
     converged there, else an unconverged eta.
The sign change of step 2 holds whenever the point projects into the image at both ends of the window
(tau in the window gives g(t_start) <= 0 <= g(t_end)), and on the central LiDAR branch always (its phase
[0, 2 pi) maps into the sweep) unless the point crosses the seam. Roots without a sign change over the window
(g tangent to 0, two roots, a root beside a jump of g: e.g. on a seam branch, a point near the branch cut
mid-sweep, which the central branch sees) are found only if step 1 finds them.

valid: a valid static projection at eta and |eta - tau(pi(x(eta)))| < tolerance (default 1e-9 s in float64,
1e-5 s in float32), whichever step produced eta.

Gradients w.r.t. the point (and the motions) follow the implicit function theorem: the solve runs without
autograd, and the returned eta carries d eta = -dg / g' through a zero-valued term (g - g.detach()) / g'
evaluated at the solution, so the value is the solved one and the gradient is exact where g' != 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..projection.sensor_projection import SensorProjection
from .rigid import RigidMotion

NEWTON_ITERATIONS = 12
MIN_SLOPE = 0.2
BRACKET_ITERATIONS = 64
_STOP = 0.01  # a lane stops once |g| < _STOP * tolerance
_MIN_IFT_SLOPE = 1e-6  # below this |g'| (a tangent root) the gradient uses g' := 1 instead of exploding


@dataclass
class RollingShutterProjection:
    """Result per point: image coords (..., 2), observation time eta (...), distance to the sensor (m), valid."""

    coords: Tensor
    eta: Tensor
    distance: Tensor
    valid: Tensor


def point_in_sensor(points: Tensor, body: RigidMotion | None, sensor: RigidMotion, eta: Tensor) -> Tensor:
    """Sensor-frame position at times eta of points (..., 3) fixed in `body` (None: the world)."""
    world = points if body is None else body.body_to_world(points, eta)
    return sensor.world_to_body(world, eta)


def solve_observation_time(
    points: Tensor, body: RigidMotion | None, sensor: RigidMotion, projection: SensorProjection,
    eta0: float, branch: float, tolerance: float | None = None,
) -> RollingShutterProjection:
    """Project points (..., 3) given in `body`'s frame through the rolling shutter, starting from eta0 (s).

    `branch` selects the LiDAR phase branch (ignored by cameras). Which root is returned and when the result
    is valid: see the module docstring.
    """
    if tolerance is None:
        tolerance = 1e-9 if points.dtype == torch.float64 else 1e-5
    shape = points.shape[:-1]

    def residual(eta: Tensor, pts: Tensor) -> Tensor:
        coords, _ = projection.project(point_in_sensor(pts, body, sensor, eta), branch)
        return eta - projection.time_of(coords)

    with torch.no_grad():
        flat = points.detach().reshape(-1, 3)
        eta, res, slope = _newton_from_start(residual, flat, float(eta0), tolerance)
        t0, t1 = float(projection.t_start), float(projection.t_end)
        retry = torch.nonzero(~((res < tolerance) & (eta >= t0) & (eta <= t1))).squeeze(1)
        if retry.numel():
            eta_b, res_b, slope_b = _bracketed_newton(residual, flat[retry], t0, t1, tolerance)
            better = res_b < tolerance
            pick = retry[better]
            eta[pick], slope[pick] = eta_b[better], slope_b[better]
        eta = eta.reshape(shape)
        slope = slope.reshape(shape)
    if torch.is_grad_enabled() and _needs_grad(points, body, sensor):
        # implicit function theorem: same value, d eta = -(dg/dparams) / g'
        usable = torch.isfinite(slope) & (slope.abs() > _MIN_IFT_SLOPE)
        g = residual(eta, points)
        eta = eta - (g - g.detach()) / torch.where(usable, slope, torch.ones_like(slope))
    x_sensor = point_in_sensor(points, body, sensor, eta)
    coords, valid = projection.project(x_sensor, branch)
    converged = (eta - projection.time_of(coords)).detach().abs() < tolerance
    return RollingShutterProjection(coords, eta, x_sensor.norm(dim=-1), valid & converged)


def _needs_grad(points: Tensor, *motions: RigidMotion | None) -> bool:
    tensors = [points]
    for m in motions:
        if m is not None:
            tensors += [t for t in vars(m).values() if isinstance(t, Tensor)]
    return any(t.requires_grad for t in tensors)


def _value_and_slope(residual, eta: Tensor, pts: Tensor) -> tuple[Tensor, Tensor]:
    """g(eta) and g'(eta) for each lane (forward mode)."""
    return torch.func.jvp(lambda e: residual(e, pts), (eta,), (torch.ones_like(eta),))


def _newton_from_start(residual, pts: Tensor, eta0: float, tolerance: float) -> tuple[Tensor, Tensor, Tensor]:
    """Step 1: Newton from eta0 with the fixed-point fallback, for lanes pts (M, 3).

    Returns eta (M,), |g(eta)| (M,) (NaN where g is not finite) and g'(eta) (M,), all at the returned eta.
    Only lanes not yet converged are iterated.
    """
    m = pts.shape[0]
    eta = torch.full((m,), eta0, dtype=pts.dtype, device=pts.device)
    res = torch.full_like(eta, float("nan"))
    slope = torch.ones_like(eta)
    active = torch.arange(m, device=pts.device)
    e = eta.clone()
    for it in range(NEWTON_ITERATIONS + 1):
        g, s = _value_and_slope(residual, e, pts[active])
        res[active], slope[active] = g.abs(), s
        if it == NEWTON_ITERATIONS:
            break
        usable = torch.isfinite(s) & (s.abs() > MIN_SLOPE)
        step = torch.where(usable, g / torch.where(usable, s, torch.ones_like(s)), g)
        done = ~(g.abs() >= _STOP * tolerance) | ~torch.isfinite(step)  # NaN g counts as done (unconverged)
        keep = torch.nonzero(~done).squeeze(1)
        active, e = active[keep], e[keep] - step[keep]
        eta[active] = e
        if active.numel() == 0:
            break
    return eta, res, slope


def _bracketed_newton(residual, pts: Tensor, t0: float, t1: float, tolerance: float) -> tuple[Tensor, Tensor, Tensor]:
    """Step 2: safeguarded Newton on the window [t0, t1] for lanes pts (M, 3) where g changes sign over it.

    Returns eta (M,), |g(eta)| (M,) and g'(eta) (M,); lanes without a sign change get |g| = NaN.
    """
    m = pts.shape[0]
    eta = torch.full((m,), t0, dtype=pts.dtype, device=pts.device)
    res = torch.full_like(eta, float("nan"))
    slope = torch.ones_like(eta)
    ends = torch.tensor([t0, t1], dtype=pts.dtype, device=pts.device)
    g_ends = residual(ends[None, :].expand(m, 2), pts[:, None, :])
    ga, gb = g_ends.unbind(-1)
    bracket = torch.isfinite(ga) & torch.isfinite(gb) & ~((ga > 0) & (gb > 0)) & ~((ga < 0) & (gb < 0))
    active = torch.nonzero(bracket).squeeze(1)
    ga, gb = ga[active], gb[active]
    # neg / pos: ends of the bracket where g <= 0 / g >= 0
    neg = torch.where(ga <= 0, torch.full_like(ga, t0), torch.full_like(ga, t1))
    pos = torch.where(ga <= 0, torch.full_like(ga, t1), torch.full_like(ga, t0))
    # start at the secant (regula falsi) point of the two ends; the midpoint where that is not defined
    secant = t0 - ga * (t1 - t0) / (gb - ga)
    e = torch.where(torch.isfinite(secant), secant.clamp(t0, t1), torch.full_like(ga, 0.5 * (t0 + t1)))
    dx_old = torch.full_like(ga, abs(t1 - t0))
    for it in range(BRACKET_ITERATIONS + 1):
        eta[active] = e
        g, s = _value_and_slope(residual, e, pts[active])
        res[active], slope[active] = g.abs(), s
        if it == BRACKET_ITERATIONS:
            break
        neg = torch.where(g < 0, e, neg)
        pos = torch.where(g > 0, e, pos)
        lo, hi = torch.minimum(neg, pos), torch.maximum(neg, pos)
        newton = e - g / s
        take = torch.isfinite(newton) & (newton > lo) & (newton < hi) & (2 * g.abs() <= (dx_old * s).abs())
        nxt = torch.where(take, newton, 0.5 * (lo + hi))
        dx_old = (nxt - e).abs()
        # converged, or the bracket has shrunk to the tolerance around a jump of g (no root): stop
        done = ~(g.abs() >= _STOP * tolerance) | ~(hi - lo > _STOP * tolerance) | ~torch.isfinite(g)
        keep = torch.nonzero(~done).squeeze(1)
        active, e, neg, pos, dx_old = active[keep], nxt[keep], neg[keep], pos[keep], dx_old[keep]
        if active.numel() == 0:
            break
    return eta, res, slope
