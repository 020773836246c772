"""Drop-in rasterizers of the fast backends: the signature and semantics of raster.rasterize.rasterize.

The Gaussians (GaussianFrames), their bodies (RigidMotion or None = world) and existence windows are packed
into flat arrays here; the kernels take raw pointers. The kernels are forward only: when autograd needs the
result (grad mode on and an input requiring grad) the reference rasterizer runs instead, so gradients stay
exact (backward kernels are a later issue).
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from torch import Tensor

from ..raster.composite import Composite
from ..raster.rasterize import GaussianFrames
from ..raster.rasterize import rasterize as reference_rasterize
from ..tiling.pairs import TileAssignment
from . import build
from . import device as kdevice

BODY_FIELDS = 33


def pack_bodies(gaussians: GaussianFrames, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
    """(F, 33) packed motions (layout of csrc/include/xsim/rigid.h) and (F,) window bounds in `dtype`."""
    rows = []
    for body in gaussians.bodies:
        row = torch.zeros(BODY_FIELDS, dtype=torch.float64)
        if body is not None:
            row[0] = 1.0
            row[1:10] = body.rotation.detach().to(torch.float64).reshape(9)
            row[10:13] = body.position.detach().to(torch.float64)
            row[13:16] = body.linear_velocity.detach().to(torch.float64)
            row[16:19] = body.angular_velocity.detach().to(torch.float64)
            row[19] = float(body.time)
            if body.mount_rotation is not None:
                row[20] = 1.0
                row[21:30] = body.mount_rotation.detach().to(torch.float64).reshape(9)
                row[30:33] = body.mount_translation.detach().to(torch.float64)
        rows.append(row)
    packed = torch.stack(rows).to(dtype) if rows else torch.zeros((0, BODY_FIELDS), dtype=dtype)
    windows = getattr(gaussians, "windows", None) or [None] * len(gaussians.bodies)
    lo = torch.tensor([-math.inf if w is None else w[0] for w in windows], dtype=dtype)
    hi = torch.tensor([math.inf if w is None else w[1] for w in windows], dtype=dtype)
    return packed, lo, hi


def _needs_autograd(*tensors: Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def stacked_values(values: dict[str, Tensor], n: int, dtype: torch.dtype) -> tuple[Tensor, list[tuple[str, int]]]:
    """Per-Gaussian values (N, C_total) side by side, and (name, width) of each block."""
    blocks = [(k, v.reshape(n, -1)) for k, v in values.items()]
    layout = [(k, v.shape[1]) for k, v in blocks]
    stacked = torch.cat([v.detach().to(dtype) for _, v in blocks], 1) if blocks else torch.zeros((n, 0), dtype=dtype)
    return stacked.contiguous(), layout


def split_values(out: Tensor, layout: list[tuple[str, int]]) -> dict[str, Tensor]:
    result, start = {}, 0
    for name, width in layout:
        result[name] = out[:, start:start + width]
        start += width
    return result


def _flat(t: Tensor, dtype: torch.dtype, keep: list[Tensor], device: torch.device | None = None) -> int:
    """Data pointer of a contiguous `dtype` copy (or view) of t on `device`, kept alive in `keep` for the call.
    Host tensors bound for a GPU are cast on the host and uploaded without waiting for the device."""
    device = device or t.device
    c = t.detach()
    if c.device.type == "cpu" and device.type != "cpu":
        c = c.to(dtype).contiguous().to(device, non_blocking=True)
    c = c.to(device=device, dtype=dtype).contiguous()
    keep.append(c)
    return c.data_ptr()


def kernel_arguments(origins: Tensor, directions: Tensor, times: Tensor, valid: Tensor, assignment: TileAssignment,
                     gaussians: GaussianFrames, stacked: Tensor, keep: list[Tensor],
                     device: torch.device | None = None, check_values: bool = True) -> dict[str, int | bool]:
    """Pointers and sizes of the rasterizer inputs (csrc/include/xsim/raster_args.h RasterInputs), all copied to
    `device` (default: the CPU) as contiguous arrays; checks shapes, and with check_values the index ranges
    (frame and Gaussian ids; reading them back from a GPU would wait for it, so the device pipeline skips it)."""
    dtype = origins.dtype
    device = device or torch.device("cpu")
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"rasterize: rays must be float32 or float64, got {dtype}")
    r, n = origins.shape[0], gaussians.means.shape[0]
    bodies, lo, hi = pack_bodies(gaussians, dtype)
    f = bodies.shape[0]
    if origins.shape != (r, 3) or directions.shape != (r, 3) or times.numel() != r or valid.numel() != r \
            or assignment.ray_tile.numel() != r:
        raise ValueError("rasterize: origins/directions (R,3), times/valid/ray_tile (R,) must agree")
    if gaussians.rotations.shape != (n, 3, 3) or gaussians.log_scales.shape != (n, 3) or \
            gaussians.sigma.numel() != n or gaussians.frame.numel() != n:
        raise ValueError("rasterize: Gaussian means (N,3), rotations (N,3,3), log_scales (N,3), sigma/frame (N,)")
    if check_values and n and (int(gaussians.frame.min()) < 0 or int(gaussians.frame.max()) >= f):
        raise ValueError(f"rasterize: frame indices must lie in [0, {f})")
    pairs = assignment.gaussian_ids
    if check_values and pairs.numel() and (int(pairs.min()) < 0 or int(pairs.max()) >= n):
        raise ValueError(f"rasterize: tile lists name Gaussians outside [0, {n})")
    if assignment.tile_ids.numel() != pairs.numel():
        raise ValueError("rasterize: tile_ids and gaussian_ids differ in length")
    i64 = torch.int64

    def ptr(t: Tensor, kind: torch.dtype = dtype) -> int:
        return _flat(t, kind, keep, device)

    return {
        "double": dtype == torch.float64, "n_rays": r, "origins": ptr(origins), "directions": ptr(directions),
        "times": ptr(times.reshape(-1)), "valid": ptr(valid.reshape(-1), torch.bool),
        "ray_tile": ptr(assignment.ray_tile, i64), "num_tiles": int(assignment.num_tiles),
        "n_pairs": int(pairs.numel()), "pair_tile": ptr(assignment.tile_ids, i64), "pair_gaussian": ptr(pairs, i64),
        "n_gaussians": n, "means": ptr(gaussians.means), "rotations": ptr(gaussians.rotations),
        "log_scales": ptr(gaussians.log_scales), "sigma": ptr(gaussians.sigma), "frame": ptr(gaussians.frame, i64),
        "n_bodies": f, "bodies": ptr(bodies), "window_lo": ptr(lo), "window_hi": ptr(hi),
        "n_channels": stacked.shape[1], "values": ptr(stacked),
    }


def rasterize_cpu(origins: Tensor, directions: Tensor, times: Tensor, valid: Tensor, assignment: TileAssignment,
                  gaussians: GaussianFrames, values: dict[str, Tensor]) -> Composite:
    """Composite every ray (R,) against its tile's Gaussians with the C++/OpenMP kernel (threads: torch's)."""
    if _needs_autograd(origins, directions, gaussians.means, gaussians.rotations, gaussians.log_scales,
                       gaussians.sigma, *values.values()):
        return reference_rasterize(origins, directions, times, valid, assignment, gaussians, values)
    ext = build.load("cpu")
    composite, _ = run_cpu_kernel(ext, origins, directions, times, valid, assignment, gaussians, values)
    return composite


def run_cpu_kernel(ext, origins: Tensor, directions: Tensor, times: Tensor, valid: Tensor,
                   assignment: TileAssignment, gaussians: GaussianFrames, values: dict[str, Tensor]
                   ) -> tuple[Composite, dict[str, Tensor]]:
    """The CPU kernel's Composite and its per-ray state: count (R,) Gaussians composited, evaluated (1,)."""
    dtype = origins.dtype
    r, n = origins.shape[0], gaussians.means.shape[0]
    stacked, layout = stacked_values(values, n, dtype)
    keep: list[Tensor] = []
    args = kernel_arguments(origins, directions, times, valid, assignment, gaussians, stacked, keep)
    outs = {"values": torch.empty((r, stacked.shape[1]), dtype=dtype), "alpha": torch.empty(r, dtype=dtype),
            "transmittance": torch.empty(r, dtype=dtype), "distance": torch.empty(r, dtype=dtype),
            "median": torch.empty(r, dtype=dtype), "count": torch.empty(r, dtype=torch.int32),
            "evaluated": torch.zeros(1, dtype=torch.int64)}
    args.update({f"out_{k}": v.data_ptr() for k, v in outs.items()})
    args["threads"] = torch.get_num_threads()
    ext.rasterize(args)
    comp = Composite(split_values(outs["values"], layout), outs["alpha"], outs["transmittance"], outs["distance"],
                     outs["median"])
    return comp, {"count": outs["count"], "evaluated": outs["evaluated"]}


def tile_sorted(assignment: TileAssignment, n_gaussians: int) -> TileAssignment:
    """The pairs sorted by tile, then Gaussian (the reference rasterizer's contract; the cuda binning groups them
    by Gaussian instead), on the assignment's device without a host wait."""
    key = assignment.tile_ids * max(n_gaussians, 1) + assignment.gaussian_ids
    order = torch.argsort(key)
    return TileAssignment(assignment.ray_tile, assignment.tile_ids[order], assignment.gaussian_ids[order],
                          assignment.num_tiles)


def _reference_on_host(origins: Tensor, directions: Tensor, times: Tensor, valid: Tensor,
                       assignment: TileAssignment, gaussians: GaussianFrames, values: dict[str, Tensor]) -> Composite:
    """The reference rasterizer (host only) on host copies of device inputs, its Composite back on the rays'
    device; the copies are differentiable, so gradients reach the device tensors."""
    home = origins.device
    if home.type == "cpu":
        return reference_rasterize(origins, directions, times, valid, assignment, gaussians, values)
    cpu = torch.device("cpu")
    host = replace(gaussians, **{k: getattr(gaussians, k).to(cpu)
                                 for k in ("means", "rotations", "log_scales", "sigma", "frame")})
    tiles = TileAssignment(assignment.ray_tile.to(cpu), assignment.tile_ids.to(cpu), assignment.gaussian_ids.to(cpu),
                           assignment.num_tiles)
    c = reference_rasterize(origins.to(cpu), directions.to(cpu), times.to(cpu), valid.to(cpu), tiles, host,
                            {k: v.to(cpu) for k, v in values.items()})
    return Composite({k: v.to(home) for k, v in c.values.items()}, c.alpha.to(home), c.transmittance.to(home),
                     c.distance.to(home), c.distance_median.to(home))


def rasterize_cuda(origins: Tensor, directions: Tensor, times: Tensor, valid: Tensor, assignment: TileAssignment,
                   gaussians: GaussianFrames, values: dict[str, Tensor]) -> Composite:
    """Composite every ray (R,) on the GPU (csrc/cuda/rasterize.cu); results on the rays' device (the GPU in the
    cuda pipeline, where this call only enqueues work; host inputs are uploaded and the results copied back)."""
    if _needs_autograd(origins, directions, gaussians.means, gaussians.rotations, gaussians.log_scales,
                       gaussians.sigma, *values.values()):
        return _reference_on_host(origins, directions, times, valid, tile_sorted(assignment, gaussians.means.shape[0]),
                                  gaussians, values)
    ext = build.load("cuda")
    dtype, home = origins.dtype, origins.device
    device = kdevice.cuda_device()
    r, n = origins.shape[0], gaussians.means.shape[0]
    stacked, layout = stacked_values(values, n, dtype)
    keep: list[Tensor] = []
    args = kernel_arguments(origins, directions, times, valid, assignment, gaussians, stacked, keep, device,
                            check_values=home.type == "cpu")
    opts = {"dtype": dtype, "device": device}
    outs = {"values": torch.empty((r, stacked.shape[1]), **opts), "alpha": torch.empty(r, **opts),
            "transmittance": torch.empty(r, **opts), "distance": torch.empty(r, **opts),
            "median": torch.empty(r, **opts), "count": torch.empty(r, dtype=torch.int32, device=device),
            "evaluated": torch.zeros(1, dtype=torch.int64, device=device)}
    args.update({f"out_{k}": v.data_ptr() for k, v in outs.items()})
    args["threads"] = 1
    args["stream"] = kdevice.cuda_stream(device)
    ext.rasterize(args)
    if home != device:
        outs = {k: v.to(home) for k, v in outs.items()}
    return Composite(split_values(outs["values"], layout), outs["alpha"], outs["transmittance"], outs["distance"],
                     outs["median"])
