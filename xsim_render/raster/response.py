"""Response of a 3D Gaussian along a ray, evaluated at its point of maximum response (3DGUT / 3DGRT).

In the Gaussian's whitened frame (x_w = S^-1 R^T (x - mu)) the ray o + t d becomes o' + t d' and
    t* = -(o'.d') / (d'.d'),   D2 = |o' + t* d'|^2 = |o'|^2 - (o'.d')^2 / (d'.d'),   rho = sigma exp(-D2 / 2).
D2 is computed from the residual vector o' + t* d', never from the difference of squares, which cancels
catastrophically in float32 for flat Gaussians seen from far away (|o'| ~ distance / thinnest scale).
t* is the distance along the ray in metres when d is a unit vector of the frame the Gaussian lives in.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..constants import ALPHA_MAX, ALPHA_MIN


def whitening(means: Tensor, rotations: Tensor, log_scales: Tensor) -> tuple[Tensor, Tensor]:
    """Per Gaussian W = R S^-1 (N,3,3) and mu W (N,3): a ray (o, d) whitens to (o W - mu W, d W)."""
    whiten = rotations * torch.exp(-log_scales)[:, None, :]
    return whiten, (means[:, None, :] @ whiten).squeeze(1)


def tile_response(origins: Tensor, directions: Tensor, frame: Tensor, whiten: Tensor, offset: Tensor,
                  sigma: Tensor) -> tuple[Tensor, Tensor]:
    """Hit distance t* and alpha (R,M) of R rays against M Gaussians.

    origins/directions (F,R,3) are the rays expressed in every body frame; frame (M,) picks each Gaussian's
    body; whiten/offset (M,3,3)/(M,3) come from `whitening`; sigma (M,) is the opacity. Rays share their
    frame for all Gaussians of one body, so whitening all rays against a body's Gaussians is one matrix
    product per body. alpha is 0 for Gaussians behind the origin (t* <= 0) or below 1/255.
    """
    n_rays = origins.shape[1]
    t = origins.new_zeros((n_rays, frame.numel()))
    d2 = origins.new_zeros((n_rays, frame.numel()))
    for f in torch.unique(frame).tolist():
        local = (frame == f).nonzero().squeeze(1)
        flat = whiten[local].permute(1, 0, 2).reshape(3, -1)                # (3, 3m)
        o = (origins[f] @ flat).reshape(n_rays, -1, 3) - offset[local]
        d = (directions[f] @ flat).reshape(n_rays, -1, 3)
        dd = (d * d).sum(-1).clamp_min(1e-30)
        od = (o * d).sum(-1)
        tl = -od / dd
        t[:, local] = tl
        # |o' + t* d'|^2, not |o'|^2 - (o'.d')^2/(d'.d'): with thin surfels far away |o'|^2 reaches 1e9 and
        # the difference loses every digit in float32
        d2[:, local] = ((o + tl[..., None] * d) ** 2).sum(-1)
    a = alpha_of(sigma, d2)
    return t, torch.where(t > 0, a, torch.zeros_like(a))


def alpha_of(sigma: Tensor, d2: Tensor) -> Tensor:
    """alpha = min(0.99, sigma exp(-D2/2)), zeroed below 1/255 (docs/conventions.md)."""
    alpha = torch.clamp(sigma * torch.exp(-0.5 * d2), max=ALPHA_MAX)
    return torch.where(alpha >= ALPHA_MIN, alpha, torch.zeros_like(alpha))
