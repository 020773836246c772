"""Brute-force per-ray integrator: every ray against every Gaussian, no projection and no tiling.

Written independently of the tiled path (explicit inverse covariances in the world frame, an explicit
front-to-back loop) so that tests can hold the reference renderer to it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..constants import ALPHA_MAX, ALPHA_MIN, MEDIAN_TRANSMITTANCE, TRANSMITTANCE_MIN
from ..motion.rigid import RigidMotion


def integrate(origins: Tensor, directions: Tensor, times: Tensor, means: Tensor, rotations: Tensor,
              scales: Tensor, sigma: Tensor, values: Tensor, body_of: list[RigidMotion | None], frame: Tensor,
              windows: list[tuple[float, float] | None] | None = None) -> dict[str, Tensor]:
    """Rays (R,3)/(R,)/times against N Gaussians (frame-local means/rotations, std devs, opacity, values (N,C)).

    windows[f] (optional) is the time interval in which body f exists; a ray outside it does not see its
    Gaussians. Equal hit distances are composited in Gaussian index order.

    Returns value (R,C), alpha (R,), distance (R,) expected, distance_median (R,) (NaN without crossing).
    """
    r_count, n = origins.shape[0], means.shape[0]
    inv_cov_local = rotations @ torch.diag_embed(scales ** -2) @ rotations.transpose(1, 2)
    t_hit = torch.empty((r_count, n), dtype=origins.dtype)
    alpha = torch.empty((r_count, n), dtype=origins.dtype)
    for f, body in enumerate(body_of):
        sel = (frame == f).nonzero().squeeze(1)
        if sel.numel() == 0:
            continue
        if body is None:
            mu = means[sel][None].expand(r_count, -1, -1)
            inv_cov = inv_cov_local[sel][None].expand(r_count, -1, -1, -1)
        else:
            rot, pos = body.pose_at(times)                                         # (R,3,3), (R,3)
            mu = (rot[:, None] @ means[sel][None, :, :, None]).squeeze(-1) + pos[:, None]
            inv_cov = rot[:, None] @ inv_cov_local[sel][None] @ rot[:, None].transpose(-1, -2)
        diff = mu - origins[:, None]
        d = directions[:, None, :, None]
        a_dd = (d.transpose(-1, -2) @ inv_cov @ d)[..., 0, 0]
        a_dm = (d.transpose(-1, -2) @ inv_cov @ diff[..., None])[..., 0, 0]
        t = a_dm / a_dd
        closest = origins[:, None] + t[..., None] * directions[:, None] - mu
        d2 = (closest[..., None, :] @ inv_cov @ closest[..., None])[..., 0, 0]
        rho = sigma[sel][None] * torch.exp(-0.5 * d2)
        window = None if windows is None else windows[f]
        if window is not None:
            rho = torch.where(((times >= window[0]) & (times <= window[1]))[:, None], rho, torch.zeros_like(rho))
        t_hit[:, sel] = t
        alpha[:, sel] = torch.clamp(rho, max=ALPHA_MAX)
    alpha = torch.where((alpha >= ALPHA_MIN) & (t_hit > 0), alpha, torch.zeros_like(alpha))
    key = torch.where(alpha > 0, t_hit, torch.full_like(t_hit, float("inf"))).detach()
    order = torch.argsort(key, dim=1, stable=True)
    transmittance = torch.ones(r_count, dtype=origins.dtype)
    value = torch.zeros((r_count, values.shape[1]), dtype=origins.dtype)
    weight_sum = torch.zeros(r_count, dtype=origins.dtype)
    weighted_t = torch.zeros(r_count, dtype=origins.dtype)
    median = torch.full((r_count,), float("nan"), dtype=origins.dtype)
    rows = torch.arange(r_count)
    for k in range(n):
        g = order[:, k]
        a = alpha[rows, g]
        live = (a > 0) & (transmittance >= TRANSMITTANCE_MIN)
        w = torch.where(live, a * transmittance, torch.zeros_like(a))
        value = value + w[:, None] * values[g]
        weight_sum = weight_sum + w
        weighted_t = weighted_t + w * t_hit[rows, g]
        new_t = torch.where(live, transmittance * (1 - a), transmittance)
        crossing = live & torch.isnan(median) & (new_t < MEDIAN_TRANSMITTANCE)
        median = torch.where(crossing, t_hit[rows, g], median)
        transmittance = new_t
    distance = torch.where(weight_sum > 0, weighted_t / weight_sum.clamp_min(1e-30), torch.zeros_like(weight_sum))
    return {"value": value, "alpha": 1 - transmittance, "distance": distance, "distance_median": median}
