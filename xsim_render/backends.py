"""Rendering backends chosen by name: `reference` (pure PyTorch), `cpu` (C++/OpenMP), `cuda`, `auto`.

`auto` resolves to the fastest usable backend: cuda if usable, else cpu, else reference (never the host
simulation of the CUDA kernels that XSIM_CUDA_SIMULATION=1 turns on for tests). Every backend
produces the same output dictionaries; the reference is the specification the others are tested against.
The fast backends compile their kernels on first use (xsim_render/kernels/build.py; `make kernels` does it
ahead of time); `auto` falls back to the next backend, with one line on stderr, if a build fails.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

from .errors import InputError
from .raster.lidar_returns import lidar_returns
from .raster.rasterize import rasterize as reference_rasterize

BACKENDS = ("reference", "cpu", "cuda", "auto")
_FAST = ("cuda", "cpu")
_BROKEN: dict[str, str] = {}  # fast backends whose build or load failed in this process -> why


def available_backends(build: bool = False) -> dict[str, str | None]:
    """Concrete backend name -> None when usable, else the one-line reason why not.

    Without `build` this is cheap (prerequisites only: a fast backend not built yet counts as usable when it
    can be built); with `build` each fast backend is built (if needed) and loaded, so the answer is certain.
    """
    from .kernels import build as kbuild

    status: dict[str, str | None] = {"reference": None}
    for kind in ("cpu", "cuda"):
        reason = _BROKEN.get(kind) or kbuild.missing_prerequisite(kind)
        if reason is None and build:
            try:
                kbuild.load(kind)
            except kbuild.KernelBuildError as err:
                reason = _BROKEN.setdefault(kind, str(err))
        status[kind] = reason
    return status


def auto_order() -> tuple[str, ...]:
    """The fast backends `auto` tries, fastest first (the reference comes after them). Never the host simulation
    of the CUDA kernels (XSIM_CUDA_SIMULATION=1, for tests: slow)."""
    from .kernels import build as kbuild

    return tuple(k for k in _FAST if not (k == "cuda" and kbuild.cuda_simulated()))


def resolve_backend(name: str) -> str:
    """The concrete backend for `name` ('auto' picks the fastest usable); InputError if unknown or unusable.

    A fast backend is built and loaded here (once per process), so a failing build surfaces now: as an
    InputError for an explicit name, as a fallback to the next backend for 'auto'.
    """
    from .kernels import build as kbuild

    if name not in BACKENDS:
        raise InputError(f"backend: must be one of {', '.join(BACKENDS)}, got {name!r}")
    status = available_backends()
    if name == "reference":
        return name
    candidates = auto_order() if name == "auto" else (name,)
    for kind in candidates:
        reason = status[kind]
        if reason is None:
            try:
                kbuild.load(kind)
                return kind
            except kbuild.KernelBuildError as err:
                reason = _BROKEN.setdefault(kind, str(err))
                if name == "auto":
                    print(f"xsim: backend {kind} unusable, falling back: {reason}", file=sys.stderr)
        if name != "auto":
            raise InputError(f"backend: {name!r} is not usable here: {reason}")
    return "reference"


@dataclass(frozen=True)
class Stages:
    """The swappable stages of a capture for one concrete backend (render.py orchestrates them):
    rays(spec, ego, t_start) -> SensorRays; tiles(spec, gaussians, sensor, projection, phase_modeling) ->
    TileAssignment; rasterize(origins, directions, times, valid, assignment, gaussians, values) -> Composite;
    returns(lidar, median, drop, rays, local) -> LidarReturns."""

    rays: Callable
    tiles: Callable
    rasterize: Callable
    returns: Callable


def reference_rays(spec, ego, t_start: float):
    """The reference ray generation: sensors.rays.camera_rays / lidar_rays."""
    from .sensors.rays import camera_rays, lidar_rays
    from .sensors.rig import LidarSpec

    return lidar_rays(spec, ego, t_start) if isinstance(spec, LidarSpec) else camera_rays(spec, ego, t_start)


def stages(name: str) -> Stages:
    """Ray generation, projection + tiling and rasterization of a concrete backend ('reference', 'cpu',
    'cuda'). The cuda backend runs every stage on the GPU (rays, projection, binning, rasterization) on data
    that stays there; render.py returns the outputs on the device of the scene it was given."""
    if name == "reference":
        return Stages(reference_rays, reference_tiler, reference_rasterize, lidar_returns)
    if name == "cpu":
        from .kernels.rays import sensor_rays_cpu
        from .kernels.returns import lidar_returns_cpu

        return Stages(sensor_rays_cpu, tiler(name), rasterizer(name), lidar_returns_cpu)
    if name == "cuda":
        from .kernels.rays import sensor_rays_cuda

        return Stages(sensor_rays_cuda, tiler(name), rasterizer(name), lidar_returns)
    raise InputError(f"backend: {name!r} is not a concrete backend")


def compute_device(name: str):
    """The torch.device a concrete backend computes on: the current CUDA device for 'cuda', else the CPU."""
    import torch

    if name == "cuda":
        from .kernels.device import cuda_device

        return cuda_device()
    if name in ("reference", "cpu"):
        return torch.device("cpu")
    raise InputError(f"backend: {name!r} is not a concrete backend")


def reference_tiler(spec, gaussians, sensor, projection, phase_modeling: bool = True):
    """The reference projection + tiling stages: project_gaussians, then camera_tiles / lidar_tiles."""
    from .projection.footprint import project_gaussians
    from .sensors.rig import LidarSpec
    from .tiling.camera_tiles import camera_tiles
    from .tiling.lidar_tiles import lidar_tiles

    g = gaussians
    fp = project_gaussians(g.means, g.rotations, g.log_scales.exp(), g.sigma, g.frame, g.bodies, sensor, projection,
                           phase_modeling=phase_modeling)
    n = g.means.shape[0]
    if isinstance(spec, LidarSpec):
        return lidar_tiles(spec, fp, n, wrap=not phase_modeling)
    return camera_tiles(spec, fp, n)


def tiler(name: str) -> Callable:
    """Projection + tiling of a concrete backend: f(spec, gaussians, sensor, projection, phase_modeling) ->
    TileAssignment (the cuda backend's lives on the GPU)."""
    if name == "reference":
        return reference_tiler
    if name == "cpu":
        from .kernels.tiles import tile_assignment_cpu

        return tile_assignment_cpu
    if name == "cuda":
        from .kernels.tiles import tile_assignment_cuda

        return tile_assignment_cuda
    raise InputError(f"backend: {name!r} has no tiler")


def rasterizer(name: str) -> Callable:
    """The rasterize function of a concrete backend (same signature as raster.rasterize.rasterize)."""
    if name == "reference":
        return reference_rasterize
    if name == "cpu":
        from .kernels.raster import rasterize_cpu

        return rasterize_cpu
    if name == "cuda":
        from .kernels.raster import rasterize_cuda

        return rasterize_cuda
    raise InputError(f"backend: {name!r} has no rasterizer")
