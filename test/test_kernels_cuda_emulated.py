"""The cuda backend's Python side and its device-only header math, on a machine without a GPU.

A host emulation of the CUDA extension (csrc/emu/bindings.cpp, built like the cpu kernels) takes the cuda
module's argument dicts and runs the device code's header functions on the CPU: sensor_rays.h per ray (as
rays.cu), project.h footprints with unique_pairs.h counts and the count-then-emit protocol (as binning.cu), and
the CPU rasterizer. With the CPU standing in for the GPU (kernels.device.cuda_device), the whole cuda pipeline
of render.py runs: argument names and sizes, device residency, per-ray times, unique pair lists, the reference
fallback under autograd. The CUDA kernels themselves run in test_kernels_cuda.py: on a GPU, or on the CPU under
their host simulation (test_kernels_cuda_simulated.py).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from _scenes import camera_rig, ego_motion, lidar_rig, random_scene
from test_kernels_cpu import CAMERA_KEYS, LIDAR_KEYS, assert_equivalent, compare_composites

from xsim_render import backends
from xsim_render.kernels import build
from xsim_render.kernels import device as kdevice
from xsim_render.kernels.raster import tile_sorted
from xsim_render.kernels.tiles import project_and_tile_cpu
from xsim_render.raster.rasterize import rasterize as reference_rasterize
from xsim_render.render import _capture, _values, render_camera, render_lidar

F32, F64 = torch.float32, torch.float64
KEY = 1 << 32


@pytest.fixture(scope="module", autouse=True)
def emulated_cuda():
    """`cuda` resolves to the host emulation for this module's tests (and only for them)."""
    ext = build.load("cuda_emulation")
    real_load, real_missing = build.load, build.missing_prerequisite
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(build, "load", lambda kind, verbose=False: ext if kind == "cuda" else real_load(kind, verbose))
        mp.setattr(build, "missing_prerequisite", lambda kind: None if kind == "cuda" else real_missing(kind))
        mp.setattr(kdevice, "cuda_device", lambda: torch.device("cpu"))
        mp.setattr(kdevice, "cuda_stream", lambda device: 0)
        yield ext


@pytest.mark.parametrize("dtype", [F64, F32])
def test_device_ray_math_matches_the_reference(dtype):
    """sensor_rays.h: rolling-shutter pixel times, firing times and the posed rays (as test_kernels_tiles)."""
    ego = ego_motion(True, dtype=dtype)
    tol = 1e-12 if dtype == F64 else 2e-6
    for spec in (camera_rig("opencv", width=64, height=40, direction="right_to_left"),
                 camera_rig("fisheye", width=64, height=40), lidar_rig(spin="cw", seam=2.0)):
        a, b = backends.reference_rays(spec, ego, 0.013), backends.stages("cuda").rays(spec, ego, 0.013)
        assert torch.equal(a.valid, b.valid) and a.origins.dtype == b.origins.dtype == dtype
        assert (a.times - b.times).abs().max() <= (1e-16 if dtype == F64 else 1e-8), "the reference's order (FMA aside)"
        for field in ("origins", "directions", "directions_sensor"):
            assert (getattr(a, field) - getattr(b, field))[a.valid].abs().max() <= tol, field


@pytest.mark.parametrize(("kind", "phase_modeling"), [("pinhole", True), ("fisheye", True), ("lidar", True),
                                                       ("lidar", False)])
def test_unique_pairs_equal_the_cpu_lists(kind, phase_modeling):
    """unique_pairs.h and the count-then-emit protocol: the CPU lists' pairs, each once, grouped by Gaussian;
    sorted by tile they are the CPU lists exactly (LiDAR: the seam inside the scene, both phase footprints and
    the wrap without phase modeling)."""
    if kind == "lidar":
        scene = random_scene(300, seed=43, centre=(0.0, 0.0, 1.5), spread=(12.0, 12.0, 1.5), n_actor=60)
        spec = lidar_rig(columns=256, spin="cw", seam=2.5)
    else:
        scene = random_scene(300, seed=42, n_actor=60)
        spec = camera_rig(kind, width=80, height=56, readout=0.05)
    with torch.no_grad():
        cap = _capture(scene, spec, ego_motion(True), 0.02, None, phase_modeling, backend="reference")
        cpu, _ = project_and_tile_cpu(spec, cap.gaussians, cap.sensor, cap.projection, phase_modeling)
        gpu = backends.tiler("cuda")(spec, cap.gaussians, cap.sensor, cap.projection, phase_modeling)
    assert cpu.tile_ids.numel() > 100
    assert bool((gpu.gaussian_ids[1:] >= gpu.gaussian_ids[:-1]).all()), "grouped by Gaussian"
    ordered = tile_sorted(gpu, len(scene))
    assert torch.equal(ordered.tile_ids, cpu.tile_ids) and torch.equal(ordered.gaussian_ids, cpu.gaussian_ids)
    assert torch.equal(gpu.ray_tile, cpu.ray_tile) and gpu.num_tiles == cpu.num_tiles


@pytest.mark.parametrize("lidar", [False, True])
def test_emulated_cuda_pipeline_matches_the_reference(lidar):
    """render.py through every cuda stage (rays, binning, rasterization, gathered colours): the reference's
    outputs, keys, dtypes and shapes."""
    if lidar:
        scene = random_scene(250, seed=62, centre=(0.0, 0.0, 1.5), spread=(12.0, 12.0, 1.5), n_actor=50)
        spec, render, keys = lidar_rig(columns=256, spin="cw", seam=2.0), render_lidar, LIDAR_KEYS
    else:
        scene = random_scene(250, seed=61, n_actor=50, sh_degree=1)
        spec, render, keys = camera_rig("opencv", width=64, height=48), render_camera, CAMERA_KEYS
    with torch.no_grad():
        ref = render(scene, spec, ego_motion(True), 0.02, backend="reference")
        out = render(scene, spec, ego_motion(True), 0.02, backend="cuda")
    assert ref.keys() == out.keys()
    for k in ref:
        assert ref[k].dtype == out[k].dtype and ref[k].shape == out[k].shape, k
    assert_equivalent(ref, out, F64, keys)


def test_autograd_fallback_sorts_the_cuda_lists_for_the_reference():
    scene = random_scene(200, seed=2, n_actor=60)
    cam = camera_rig("pinhole", width=48, height=36, readout=0.05)
    with torch.no_grad():
        cap = _capture(scene, cam, ego_motion(True), 0.0, None, backend="cuda")
    r = cap.rays
    args = [r.origins.reshape(-1, 3), r.directions.reshape(-1, 3), r.times.reshape(-1), r.valid.reshape(-1),
            cap.assignment, cap.gaussians, _values(scene, scene.colors, lidar=False)]
    with torch.no_grad():
        plain = backends.rasterizer("cuda")(*args)
    means = cap.gaussians.means.clone().requires_grad_(True)
    args[5] = replace(cap.gaussians, means=means)
    out = backends.rasterizer("cuda")(*args)
    out.alpha.sum().backward()
    assert means.grad is not None and means.grad.abs().sum() > 0
    with torch.no_grad():
        compare_composites(plain, out, 1e-9)
        compare_composites(reference_rasterize(*args[:4], tile_sorted(cap.assignment, len(scene)), *args[5:]), out,
                           1e-9)
