"""Generalized rolling-shutter projection (XSIM eq. 4-8, Algorithm 1).

A point moving with its frame (static world or a rigid actor) is seen by a moving sensor at the time eta that
solves  eta = tau(pi(x_sensor(eta))).  We solve it by Newton-Raphson on  g(eta) = eta - tau(pi(x_c(eta)))
with g'(eta) obtained by forward-mode differentiation through the motion and the sensor model, falling back to
a fixed-point step (g' := 1) where g' is ill-conditioned. Gradients w.r.t. the point follow the implicit
function theorem: the iterations run without autograd and one final Newton step is taken with autograd on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..projection.sensor_projection import SensorProjection
from .rigid import RigidMotion

NEWTON_ITERATIONS = 12
MIN_SLOPE = 0.2


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

    `branch` selects the LiDAR phase branch (ignored by cameras). valid requires a valid static projection
    and |eta - tau(pi(x(eta)))| below `tolerance` (default 1e-9 s in float64, 1e-5 s in float32).
    """
    if tolerance is None:
        tolerance = 1e-9 if points.dtype == torch.float64 else 1e-5

    def residual(eta: Tensor, pts: Tensor) -> Tensor:
        coords, _ = projection.project(point_in_sensor(pts, body, sensor, eta), branch)
        return eta - projection.time_of(coords)

    pts_const = points.detach()
    eta = torch.full(points.shape[:-1], float(eta0), dtype=points.dtype)
    with torch.no_grad():
        for _ in range(NEWTON_ITERATIONS):
            g, slope = torch.func.jvp(lambda e: residual(e, pts_const), (eta,), (torch.ones_like(eta),))
            usable = torch.isfinite(slope) & (slope.abs() > MIN_SLOPE)
            step = torch.where(usable, g / torch.where(usable, slope, torch.ones_like(slope)), g)
            step = torch.nan_to_num(step, nan=0.0, posinf=0.0, neginf=0.0)
            eta = eta - step
            if bool((step.abs() < 0.01 * tolerance).all()):
                break
        _, slope = torch.func.jvp(lambda e: residual(e, pts_const), (eta,), (torch.ones_like(eta),))
        usable = torch.isfinite(slope) & (slope.abs() > MIN_SLOPE)
        slope = torch.where(usable, slope, torch.ones_like(slope))
    # one differentiable Newton step at the converged eta: d eta / d point = -(dg/dpoint) / g'
    eta = eta - residual(eta, points) / slope
    x_sensor = point_in_sensor(points, body, sensor, eta)
    coords, valid = projection.project(x_sensor, branch)
    converged = (eta - projection.time_of(coords)).detach().abs() < tolerance
    return RollingShutterProjection(coords, eta, x_sensor.norm(dim=-1), valid & converged)
