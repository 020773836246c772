"""Gaussian response at its max-response point: float32 must match float64 for thin, far surfels."""

from __future__ import annotations

import math

import torch

from xsim_render.geometry import quaternion
from xsim_render.raster.response import tile_response, whitening


def _random_surfels(gen: torch.Generator, m: int, distance: float) -> tuple[torch.Tensor, ...]:
    """Flat surfels (normal std 2 mm, tangent 0.3-0.6 m) about `distance` metres down the x axis."""
    means = torch.randn(m, 3, generator=gen, dtype=torch.float64) * 2.0
    means[:, 0] += distance
    rot = quaternion.to_matrix(torch.nn.functional.normalize(torch.randn(m, 4, generator=gen, dtype=torch.float64),
                                                             dim=-1))
    tangent = 0.3 + 0.3 * torch.rand(m, 2, generator=gen, dtype=torch.float64)
    log_scales = torch.log(torch.cat([tangent, torch.full((m, 1), 0.002, dtype=torch.float64)], 1))
    return means, rot, log_scales


def test_thin_far_surfels_float32_matches_float64() -> None:
    gen = torch.Generator().manual_seed(11)
    for distance in (5.0, 40.0, 100.0):
        means, rot, log_scales = _random_surfels(gen, 64, distance)
        # rays from a sensor 1.5 m up, aimed near the surfel centres (random offsets spread responses over (0, 1))
        origin = torch.tensor([0.0, 0.0, 1.5], dtype=torch.float64)
        targets = means + 0.4 * torch.randn(means.shape, generator=gen, dtype=torch.float64)
        dirs = torch.nn.functional.normalize(targets - origin, dim=-1)
        origins = origin.expand(1, len(dirs), 3)
        sigma = torch.full((len(means),), 0.99, dtype=torch.float64)
        frame = torch.zeros(len(means), dtype=torch.int64)
        out = {}
        for dtype in (torch.float64, torch.float32):
            whiten, offset = whitening(means.to(dtype), rot.to(dtype), log_scales.to(dtype))
            out[dtype] = tile_response(origins.to(dtype), dirs[None].to(dtype), frame, whiten, offset,
                                       sigma.to(dtype))
        t64, a64 = out[torch.float64]
        t32, a32 = out[torch.float32]
        # each ray against its own surfel (diagonal) and against all others
        assert a64.diagonal().max() > 0.5, "test rays should hit their surfels"
        assert torch.allclose(a32.double(), a64, atol=2e-3), (distance, (a32.double() - a64).abs().max())
        hit = a64 > 0
        assert torch.allclose(t32.double()[hit], t64[hit], rtol=1e-4, atol=1e-3 * math.sqrt(distance))
