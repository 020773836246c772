"""Route render.py's ray generation and projection + tiling through a backend's stages (backends.stages).

render.py takes its rasterizer from the backend but (until it takes every stage from backends.stages) still
calls the reference ray generation, projection and tiling directly. `backend_stages(name)` swaps those module
globals for the backend's kernels inside a `with` block, so that render_camera / render_lidar run the whole
fast pipeline; it does nothing once render.py uses backends.stages itself. Used by bench/bench_kernels.py and
test/test_kernels_pipeline.py; not thread safe (it patches a module).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from dataclasses import dataclass

from .. import backends
from .. import render as render_module
from ..raster.rasterize import GaussianFrames


@dataclass
class _DeferredProjection:
    """What render.py handed to project_gaussians, kept for the backend's tiler."""

    gaussians: GaussianFrames
    sensor: object
    projection: object
    phase_modeling: bool


def render_uses_stages() -> bool:
    """True once render.py takes its stages from backends.stages (then no patching is needed)."""
    return "stages(" in inspect.getsource(render_module)


@contextlib.contextmanager
def backend_stages(name: str) -> Iterator[None]:
    """Inside the block, render.py generates rays and tiles with backend `name` ('reference' | 'cpu' | 'cuda')."""
    kind = backends.resolve_backend(name)
    if kind == "reference" or render_uses_stages():
        yield
        return
    st = backends.stages(kind)
    saved = {k: getattr(render_module, k) for k in ("camera_rays", "lidar_rays", "project_gaussians", "camera_tiles",
                                                     "lidar_tiles")}

    def project(means, rotations, scales, sigma, frame, bodies, sensor, projection, phase_modeling=True):
        g = GaussianFrames(means, rotations, scales.log(), sigma, frame, bodies)
        return _DeferredProjection(g, sensor, projection, phase_modeling)

    def camera_tiles(spec, fp, num_gaussians):
        return st.tiles(spec, fp.gaussians, fp.sensor, fp.projection, fp.phase_modeling)

    def lidar_tiles(spec, fp, num_gaussians, wrap=False):
        return st.tiles(spec, fp.gaussians, fp.sensor, fp.projection, fp.phase_modeling)

    patch = {"camera_rays": st.rays, "lidar_rays": st.rays, "project_gaussians": project,
             "camera_tiles": camera_tiles, "lidar_tiles": lidar_tiles}
    try:
        for k, v in patch.items():
            setattr(render_module, k, v)
        yield
    finally:
        for k, v in saved.items():
            setattr(render_module, k, v)
