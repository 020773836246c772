"""Unscented Transform of 3D Gaussians through the rolling-shutter sensor projection (3DGUT).

Sigma points (alpha = 1, beta = 2, kappa = 0, n = 3): the mean and mean +/- sqrt(3) s_i R[:, i]; each is
projected by the rolling-shutter solver at its own observation time; the image-space mean and covariance are
the weighted sample moments.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..motion.rigid import RigidMotion
from ..motion.rolling_shutter import solve_observation_time
from .sensor_projection import SensorProjection

UT_ALPHA, UT_BETA, UT_KAPPA = 1.0, 2.0, 0.0
_N = 3
_LAMBDA = UT_ALPHA**2 * (_N + UT_KAPPA) - _N


def ut_weights(dtype: torch.dtype, alpha: float = UT_ALPHA, beta: float = UT_BETA,
               kappa: float = UT_KAPPA) -> tuple[Tensor, Tensor]:
    """(weights for the mean, weights for the covariance), 7 each, centre point first.

    lambda = alpha^2 (n + kappa) - n; W0m = lambda / (n + lambda), W0c = W0m + 1 - alpha^2 + beta,
    Wi = 1 / (2 (n + lambda)) for the six others. The defaults are the renderer's; other values are for tests.
    """
    lam = alpha**2 * (_N + kappa) - _N
    w_m = torch.full((2 * _N + 1,), 1.0 / (2 * (_N + lam)), dtype=dtype)
    w_c = w_m.clone()
    w_m[0] = lam / (_N + lam)
    w_c[0] = lam / (_N + lam) + (1 - alpha**2 + beta)
    return w_m, w_c


def weighted_moments(coords: Tensor, w_m: Tensor, w_c: Tensor) -> tuple[Tensor, Tensor]:
    """Mean (N, 2) and covariance (N, 2, 2) of projected sigma points (N, 7, 2) with weights (7,) each."""
    mean = (w_m[None, :, None] * coords).sum(1)
    diff = coords - mean[:, None, :]
    return mean, (w_c[None, :, None, None] * diff[..., :, None] * diff[..., None, :]).sum(1)


def sigma_points(means: Tensor, rotations: Tensor, scales: Tensor) -> Tensor:
    """(N, 7, 3) sigma points of Gaussians with means (N,3), local axes rotations (N,3,3), std devs (N,3)."""
    spread = math.sqrt(_N + _LAMBDA) * rotations * scales[:, None, :]  # columns = scaled axes
    offsets = torch.cat((torch.zeros_like(means)[:, None], spread.transpose(1, 2), -spread.transpose(1, 2)), 1)
    return means[:, None, :] + offsets


@dataclass
class UnscentedProjection:
    """Image-space Gaussians: mean (N,2), cov (N,2,2), distance (N,) of the centre, valid (N,), sigma (N,7,2)."""

    mean: Tensor
    cov: Tensor
    distance: Tensor
    valid: Tensor
    sigma_coords: Tensor


def unscented_transform(
    means: Tensor, rotations: Tensor, scales: Tensor, body: RigidMotion | None, sensor: RigidMotion,
    projection: SensorProjection, eta0: float, branch: float = math.pi,
) -> UnscentedProjection:
    """Project Gaussians fixed in `body` (None: world) through the rolling-shutter sensor projection."""
    points = sigma_points(means, rotations, scales)
    result = solve_observation_time(points, body, sensor, projection, eta0, branch)
    w_m, w_c = ut_weights(means.dtype)
    coords = torch.where(result.valid[..., None], result.coords, torch.zeros_like(result.coords))
    mean, cov = weighted_moments(coords, w_m, w_c)
    return UnscentedProjection(mean, cov, result.distance[:, 0], result.valid.all(1), coords)
