"""Front-to-back compositing along each ray, ordered by each Gaussian's own hit distance on that ray.

T_i = prod_{j<i} (1 - alpha_j); Gaussian i contributes w_i = alpha_i T_i while T_i >= 1e-4 (then compositing
stops; the Gaussian that takes it below is still included). Expected distance = sum w t / sum w; median
distance = t of the first Gaussian after which the transmittance is strictly below 0.5 (NaN if it never is).
Entries with alpha == 0 take no part. Equal hit distances keep the order given (the rasterizer lists
candidates by Gaussian index, so the lower index comes first).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..constants import MEDIAN_TRANSMITTANCE, TRANSMITTANCE_MIN


@dataclass
class Composite:
    """Per ray: weights (R,M) in sorted order, values (name -> (R,C)), alpha, expected and median distance."""

    values: dict[str, Tensor]
    alpha: Tensor
    transmittance: Tensor
    distance: Tensor
    distance_median: Tensor


def composite(t: Tensor, alpha: Tensor, values: dict[str, Tensor]) -> Composite:
    """Composite rays (R,M): t distances, alpha (0 = skipped), values name -> (R,M,C) per ray/Gaussian."""
    r, m = alpha.shape
    if m == 0:
        zero = alpha.new_zeros(r)
        return Composite({k: v.new_zeros((r, v.shape[-1])) for k, v in values.items()}, zero, zero + 1, zero,
                         torch.full_like(zero, float("nan")))
    key = torch.where(alpha > 0, t, torch.full_like(t, float("inf")))
    key, order = torch.sort(key.detach(), dim=1, stable=True)  # ties: the earlier entry first
    a = torch.gather(alpha, 1, order)
    ts = torch.gather(t, 1, order)
    one_minus = 1.0 - a
    t_before = torch.cumprod(torch.cat((torch.ones_like(a[:, :1]), one_minus[:, :-1]), 1), 1)
    included = (t_before >= TRANSMITTANCE_MIN) & (a > 0)
    w = torch.where(included, a * t_before, torch.zeros_like(a))
    transmittance = torch.where(included, one_minus, torch.ones_like(one_minus)).prod(1)
    out = {k: (w[..., None] * torch.gather(v, 1, order[..., None].expand(-1, -1, v.shape[-1]))).sum(1)
           for k, v in values.items()}
    wsum = w.sum(1)
    expected = torch.where(wsum > 0, (w * ts).sum(1) / wsum.clamp_min(1e-30), torch.zeros_like(wsum))
    crossed = included & (t_before * one_minus < MEDIAN_TRANSMITTANCE)
    first = torch.argmax(crossed.to(torch.int8), 1)
    median = torch.where(crossed.any(1), torch.gather(ts, 1, first[:, None]).squeeze(1),
                         torch.full_like(wsum, float("nan")))
    return Composite(out, 1.0 - transmittance, transmittance, expected, median)
