"""The cuda backend against the reference and the cpu kernels (runs where torch sees a GPU: scripts/gpu_check.sh;
skipped elsewhere). Tolerances as test_kernels_cpu.py: float64 1e-9, float32 to float32 rounding."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from _scenes import camera_rig, ego_motion, lidar_rig, random_scene
from test_kernels_cpu import CAMERA_KEYS, LIDAR_KEYS, assert_equivalent, capture_inputs, compare_composites

from xsim_render import backends
from xsim_render.raster.rasterize import rasterize as reference_rasterize
from xsim_render.render import _capture, render_camera, render_lidar
from xsim_render.scene import GaussianScene

F32, F64 = torch.float32, torch.float64
KEY = 1 << 32

pytestmark = pytest.mark.skipif(backends.available_backends()["cuda"] is not None,
                                reason=f"cuda backend unavailable: {backends.available_backends()['cuda']}")


def test_cuda_backend_loads():
    assert backends.resolve_backend("cuda") == "cuda"
    assert backends.resolve_backend("auto") == "cuda"


@pytest.mark.parametrize("lidar", [False, True])
def test_rasterizer_matches_the_reference_float64(lidar):
    from xsim_render.kernels.raster import rasterize_cuda

    args = capture_inputs(F64, seed=17, lidar=lidar)
    with torch.no_grad():
        ref, out = reference_rasterize(*args), rasterize_cuda(*args)
    assert out.alpha.device.type == "cpu"
    compare_composites(ref, out, 1e-9)


@pytest.mark.parametrize("lidar", [False, True])
def test_rasterizer_existence_windows(lidar):
    from xsim_render.kernels.raster import rasterize_cuda

    args = list(capture_inputs(F64, seed=8, lidar=lidar))
    g, times = args[5], args[2]
    args[5] = replace(g, windows=[None] + [(float(times.min()) - 1.0, float(times.median()))] * (len(g.bodies) - 1))
    with torch.no_grad():
        compare_composites(reference_rasterize(*args), rasterize_cuda(*args), 1e-9)


def test_overflowing_hit_lists_are_redone_exactly():
    """300 coincident translucent Gaussians: every ray holds 300 pending hits (more than the block kernel's
    per-ray list), so the exact global-memory pass must take over."""
    from xsim_render.kernels.raster import rasterize_cuda

    n = 300
    g = torch.Generator().manual_seed(1)
    means = torch.tensor([9.0, 0.0, 1.4], dtype=F64).expand(n, 3).clone()
    scene = GaussianScene(means=means, log_scales=torch.full((n, 3), -1.0, dtype=F64),
                          quats=torch.tensor([1.0, 0, 0, 0], dtype=F64).expand(n, 4),
                          opacity_camera=torch.full((n,), -3.0, dtype=F64),
                          opacity_lidar=torch.full((n,), -3.0, dtype=F64),
                          colors=torch.rand(n, 3, generator=g, dtype=F64), actor_ids=torch.full((n,), -1))
    cam = camera_rig("pinhole", width=32, height=24)
    with torch.no_grad():
        cap = _capture(scene, cam, ego_motion(False), 0.0, None)
        r = cap.rays
        values = {"rgb": scene.colors}
        args = (r.origins.reshape(-1, 3), r.directions.reshape(-1, 3), r.times.reshape(-1), r.valid.reshape(-1),
                cap.assignment, cap.gaussians, values)
        ref, out = reference_rasterize(*args), rasterize_cuda(*args)
    assert ref.alpha.max() > 0.5
    compare_composites(ref, out, 1e-9)


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("lidar", [False, True])
def test_gpu_binning_equals_the_cpu_binning(lidar, dtype):
    from xsim_render.kernels.tiles import project_and_tile_cpu, tile_assignment_cuda

    if lidar:
        scene = random_scene(300, seed=43, centre=(0.0, 0.0, 1.5), spread=(12.0, 12.0, 1.5), n_actor=60).to(dtype)
        spec = lidar_rig(columns=256, spin="cw", seam=2.5)
    else:
        scene = random_scene(300, seed=42, n_actor=60).to(dtype)
        spec = camera_rig("fisheye", width=80, height=56)
    with torch.no_grad():
        cap = _capture(scene, spec, ego_motion(True), 0.02, None)
        cpu, _ = project_and_tile_cpu(spec, cap.gaussians, cap.sensor, cap.projection)
        gpu = tile_assignment_cuda(spec, cap.gaussians, cap.sensor, cap.projection)
    a = set((cpu.tile_ids * KEY + cpu.gaussian_ids).tolist())
    b = set((gpu.tile_ids.cpu() * KEY + gpu.gaussian_ids.cpu()).tolist())
    assert len(a) > 100
    assert len(a ^ b) <= 0.002 * len(a), "the same project.h code on both (GPU libm may differ in the last bit)"


@pytest.mark.parametrize("dtype", [F64, F32])
def test_whole_cuda_pipeline_matches_the_reference(dtype):
    scene = random_scene(250, seed=61, n_actor=50, sh_degree=1).to(dtype)
    lid_scene = random_scene(250, seed=62, centre=(0.0, 0.0, 1.5), spread=(12.0, 12.0, 1.5), n_actor=50).to(dtype)
    cam, lidar, ego = camera_rig("opencv", width=64, height=48), lidar_rig(columns=256, spin="cw"), ego_motion(True)
    with torch.no_grad():
        ref_c = render_camera(scene, cam, ego, 0.02, backend="reference")
        ref_l = render_lidar(lid_scene, lidar, ego, 0.03, backend="reference")
        out_c = render_camera(scene, cam, ego, 0.02, backend="cuda")
        out_l = render_lidar(lid_scene, lidar, ego, 0.03, backend="cuda")
    assert_equivalent(ref_c, out_c, dtype, CAMERA_KEYS)
    assert_equivalent(ref_l, out_l, dtype, LIDAR_KEYS)
