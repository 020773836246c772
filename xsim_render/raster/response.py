"""Response of a 3D Gaussian along a ray, evaluated at its point of maximum response (3DGUT / 3DGRT).

In the Gaussian's whitened frame (x_w = S^-1 R^T (x - mu)) the ray o + t d becomes o' + t d' and
    t* = -(o'.d') / (d'.d'),   D2 = |o'|^2 - (o'.d')^2 / (d'.d'),   rho = sigma exp(-D2 / 2).
t* is the distance along the ray in metres when d is a unit vector of the frame the Gaussian lives in.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..constants import ALPHA_MAX, ALPHA_MIN


def max_response(origins: Tensor, directions: Tensor, means: Tensor, rotations: Tensor, log_scales: Tensor
                 ) -> tuple[Tensor, Tensor]:
    """Distance t* (R,M) and squared Mahalanobis distance D2 (R,M) for rays (R,M,3) against Gaussians (M,...)."""
    inv_scale = torch.exp(-log_scales)
    o = ((origins - means)[..., None, :] @ rotations).squeeze(-2) * inv_scale
    d = (directions[..., None, :] @ rotations).squeeze(-2) * inv_scale
    dd = (d * d).sum(-1).clamp_min(1e-30)
    od = (o * d).sum(-1)
    t = -od / dd
    d2 = ((o * o).sum(-1) - od * od / dd).clamp_min(0.0)
    return t, d2


def alpha_of(sigma: Tensor, d2: Tensor) -> Tensor:
    """alpha = min(0.99, sigma exp(-D2/2)), zeroed below 1/255 (CONVENTIONS)."""
    alpha = torch.clamp(sigma * torch.exp(-0.5 * d2), max=ALPHA_MAX)
    return torch.where(alpha >= ALPHA_MIN, alpha, torch.zeros_like(alpha))
