"""The cuda backend against the reference and the cpu kernels: the checks of test_kernels_cpu.py and
test_kernels_tiles.py (every camera model and rolling-shutter direction, both spin directions, ego motion,
moving actors, the LiDAR seam with and without phase modeling, existence windows, equal hit distances) plus the
device-resident stages (ray generation, binning, overflowing hit lists) and where the outputs live.

Tolerances as test_kernels_cpu.py (float64 1e-9, float32 to float32 rounding). Tile lists: the GPU binning runs
the same project.h code as the CPU one in double precision, so its pairs equal the CPU lists (each pair once,
grouped by Gaussian instead of sorted by tile), up to 0.2 % for last-bit differences of the GPU's libm.

The GPU tests run where torch sees a GPU (scripts/gpu_check.sh) and are skipped elsewhere with the reason.
XSIM_CUDA_SIMULATION=1 runs them on the CPU against the same CUDA kernels compiled over a host simulation of the
CUDA runtime (test_kernels_cuda_simulated.py does, in CI). XSIM_CUDA_TEST_BACKEND=cpu runs the same tests
against the cpu backend: a dry run of the test logic. The tests of the device helpers (kernels/device.py) run
everywhere.
"""

from __future__ import annotations

import math
import os
from dataclasses import replace

import pytest
import torch
from _scenes import camera_rig, ego_motion, lidar_rig, random_scene
from test_kernels_cpu import (
    CAMERA_CASES,
    CAMERA_KEYS,
    LIDAR_KEYS,
    assert_equivalent,
    compare_composites,
    twin_scene,
    wall_behind_seam,
)

from xsim_render import backends
from xsim_render.kernels import build as kbuild
from xsim_render.kernels.device import gaussian_colors_gathered, scene_on, scene_to_device
from xsim_render.kernels.tiles import project_and_tile_cpu
from xsim_render.motion import RigidMotion
from xsim_render.raster.attributes import gaussian_colors
from xsim_render.raster.rasterize import rasterize as reference_rasterize
from xsim_render.render import _capture, _values, render_camera, render_lidar
from xsim_render.scene import GaussianScene
from xsim_render.scene.placement import Placement

F32, F64 = torch.float32, torch.float64
KEY = 1 << 32
FAST = os.environ.get("XSIM_CUDA_TEST_BACKEND", "cuda")
REASON = backends.available_backends()[FAST]
needs_backend = pytest.mark.skipif(REASON is not None, reason=f"{FAST} backend unavailable: {REASON}")


def device() -> torch.device:
    return backends.compute_device(FAST)


def on_host(out: dict) -> dict:
    return {k: v.cpu() for k, v in out.items()}


@needs_backend
def test_backend_loads_and_auto_prefers_cuda():
    assert backends.resolve_backend(FAST) == FAST
    if FAST == "cuda":
        simulated = kbuild.cuda_simulated()  # auto never picks the (slow) host simulation
        assert backends.resolve_backend("auto") == ("cpu" if simulated else "cuda")
        assert device().type == ("cpu" if simulated else "cuda")


RAY_CASES = [("camera", m, d) for m in ("pinhole", "opencv", "fisheye")
             for d in ("top_to_bottom", "bottom_to_top", "left_to_right", "right_to_left", "global")] \
    + [("lidar", "ccw", None), ("lidar", "cw", None)]


@needs_backend
@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize(("kind", "model", "direction"), RAY_CASES)
def test_rays_match_the_reference(kind, model, direction, dtype):
    """Per-pixel rolling-shutter times / per-firing times, origins and directions of the device ray kernel."""
    if kind == "camera":
        spec = camera_rig(model, width=56, height=40, readout=0.06, direction=direction)
    else:
        spec = lidar_rig(columns=384, spin=model, seam=2.2)
    ego = ego_motion(True, dtype=dtype)
    ref = backends.reference_rays(spec, ego, 0.013)
    out = backends.stages(FAST).rays(spec, ego, 0.013)
    assert out.origins.device == device()
    tol = {"times": 1e-14, "pos": 1e-12} if dtype == F64 else {"times": 1e-8, "pos": 2e-5}
    assert torch.equal(ref.valid, out.valid.cpu())
    v = ref.valid
    assert (ref.times - out.times.cpu()).abs().max() <= tol["times"]
    assert (ref.origins - out.origins.cpu())[v].abs().max() <= tol["pos"]
    assert (ref.directions - out.directions.cpu())[v].abs().max() <= tol["pos"]
    assert (ref.directions_sensor - out.directions_sensor.cpu())[v].abs().max() <= tol["pos"]
    assert ref.times.shape == out.times.shape and ref.origins.dtype == out.origins.dtype


def capture_inputs(dtype, seed=5, lidar=False):
    """test_kernels_cpu.capture_inputs with the reference's rays and tile lists (host tensors), whatever `auto`
    resolves to on this machine."""
    scene = random_scene(200, seed=seed, n_actor=60, sh_degree=0).to(dtype)
    spec = lidar_rig(columns=256) if lidar else camera_rig("pinhole", width=48, height=36, readout=0.05)
    if lidar:
        scene = random_scene(200, seed=seed, centre=(0.0, 0.0, 1.5), spread=(10.0, 10.0, 1.5), n_actor=60).to(dtype)
    cap = _capture(scene, spec, ego_motion(True), 0.0, None, backend="reference")
    values = _values(scene, scene.colors if not lidar else None, lidar=lidar)
    r = cap.rays
    return (r.origins.reshape(-1, 3), r.directions.reshape(-1, 3), r.times.reshape(-1), r.valid.reshape(-1),
            cap.assignment, cap.gaussians, values)


def pair_set(assignment) -> set[int]:
    keys = (assignment.tile_ids.cpu() * KEY + assignment.gaussian_ids.cpu()).tolist()
    assert len(set(keys)) == len(keys), "each (tile, Gaussian) pair once"
    return set(keys)


BINNING_CASES = [("camera", m, True, F64) for m in ("pinhole", "opencv", "fisheye")] \
    + [("camera", "fisheye", True, F32), ("lidar", None, True, F64), ("lidar", None, False, F64),
       ("lidar", None, True, F32)]


@needs_backend
@pytest.mark.parametrize(("kind", "model", "phase_modeling", "dtype"), BINNING_CASES)
def test_binning_equals_the_cpu_binning(kind, model, phase_modeling, dtype):
    """Camera models, and a LiDAR whose seam crosses the scene (phase footprints, wrap without phase modeling):
    the GPU lists hold the CPU lists' pairs, each once, with moving actors and ego motion."""
    if kind == "lidar":
        scene = random_scene(300, seed=43, centre=(0.0, 0.0, 1.5), spread=(12.0, 12.0, 1.5), n_actor=60).to(dtype)
        spec = lidar_rig(columns=256, spin="cw", seam=2.5)
    else:
        scene = random_scene(300, seed=42, n_actor=60).to(dtype)
        spec = camera_rig(model, width=80, height=56, readout=0.05)
    with torch.no_grad():
        cap = _capture(scene, spec, ego_motion(True), 0.02, None, phase_modeling, backend="reference")
        cpu, _ = project_and_tile_cpu(spec, cap.gaussians, cap.sensor, cap.projection, phase_modeling)
        gaussians = replace(cap.gaussians, **{k: getattr(cap.gaussians, k).to(device())
                                              for k in ("means", "rotations", "log_scales", "sigma", "frame")})
        gpu = backends.tiler(FAST)(spec, gaussians, cap.sensor, cap.projection, phase_modeling)
    assert gpu.tile_ids.device == device() and gpu.num_tiles == cpu.num_tiles
    assert torch.equal(gpu.ray_tile.cpu(), cpu.ray_tile)
    a, b = pair_set(cpu), pair_set(gpu)
    assert len(a) > 100
    assert len(a ^ b) <= 0.002 * len(a), "the same project.h code on both (GPU libm may differ in the last bit)"


@needs_backend
@pytest.mark.parametrize("lidar", [False, True])
def test_rasterizer_matches_the_reference_float64(lidar):
    args = capture_inputs(F64, seed=17, lidar=lidar)
    with torch.no_grad():
        ref, out = reference_rasterize(*args), backends.rasterizer(FAST)(*args)
    assert out.alpha.device.type == "cpu", "host inputs: results come back to the host"
    compare_composites(ref, out, 1e-9)


@needs_backend
@pytest.mark.parametrize("lidar", [False, True])
def test_existence_windows(lidar):
    """A ray whose time lies outside its Gaussian's body window gets nothing from it (inclusive bounds)."""
    args = list(capture_inputs(F64, seed=8, lidar=lidar))
    g, times = args[5], args[2]
    mid = float(times.median())
    args[5] = replace(g, windows=[None] + [(float(times.min()) - 1.0, mid)] * (len(g.bodies) - 1))
    raster = backends.rasterizer(FAST)
    with torch.no_grad():
        out, full = raster(*args), raster(*args[:5], g, args[6])
        compare_composites(reference_rasterize(*args), out, 1e-9)
    late = times > mid
    assert (full.alpha[late] - out.alpha[late]).abs().max() > 0.05, "the window must matter for the test to mean it"


def stacked_scene(n: int, depths: torch.Tensor, opacity: float) -> GaussianScene:
    """n small translucent Gaussians in front of a 32x24 camera at the given x (depth), in random index order."""
    g = torch.Generator().manual_seed(1)
    means = torch.stack((depths, torch.zeros(n, dtype=F64), torch.full((n,), 1.4, dtype=F64)), -1)
    return GaussianScene(means=means, log_scales=torch.full((n, 3), -1.0, dtype=F64),
                         quats=torch.tensor([1.0, 0, 0, 0], dtype=F64).expand(n, 4),
                         opacity_camera=torch.full((n,), opacity, dtype=F64),
                         opacity_lidar=torch.full((n,), opacity, dtype=F64),
                         colors=torch.rand(n, 3, generator=g, dtype=F64), actor_ids=torch.full((n,), -1))


@needs_backend
@pytest.mark.parametrize("layout", ["coincident", "spread"])
def test_overflowing_hit_lists_are_redone_exactly(layout):
    """300 translucent Gaussians on every ray: more pending hits than the block kernel's 32-entry list, so the
    multi-pass redo takes over: coincident (equal hit distances, order by index across passes) and spread
    over 3 m in shuffled index order (order by distance across passes)."""
    n = 300
    if layout == "coincident":
        depths = torch.full((n,), 9.0, dtype=F64)
    else:
        depths = 8.0 + 3.0 * torch.rand(n, generator=torch.Generator().manual_seed(2), dtype=F64)
    scene = stacked_scene(n, depths, -3.0)
    cam = camera_rig("pinhole", width=32, height=24)
    with torch.no_grad():
        cap = _capture(scene, cam, ego_motion(False), 0.0, None, backend="reference")
        r = cap.rays
        args = (r.origins.reshape(-1, 3), r.directions.reshape(-1, 3), r.times.reshape(-1), r.valid.reshape(-1),
                cap.assignment, cap.gaussians, {"rgb": scene.colors})
        ref, out = reference_rasterize(*args), backends.rasterizer(FAST)(*args)
    assert ref.alpha.max() > 0.5
    compare_composites(ref, out, 1e-9)


@needs_backend
@pytest.mark.parametrize(("model", "direction", "dtype"), CAMERA_CASES)
def test_camera_matches_reference(model, direction, dtype):
    seed = 100 + 7 * ["pinhole", "opencv", "fisheye"].index(model) + len(direction)
    scene = random_scene(220, seed=seed, n_actor=50, sh_degree=1).to(dtype)
    cam = camera_rig(model, width=56, height=40, readout=0.06, direction=direction)
    ego = ego_motion(True)
    with torch.no_grad():
        ref = render_camera(scene, cam, ego, 0.013, backend="reference")
        out = render_camera(scene_to_device(scene, device()), cam, ego, 0.013, backend=FAST)
    assert out["alpha"].device == device(), "a device scene keeps its outputs on the device"
    assert ref["alpha"].max() > 0.5 and (ref["alpha"] > 0).float().mean() > 0.05, "the scene must be visible"
    assert_equivalent(ref, on_host(out), dtype, CAMERA_KEYS)


@needs_backend
@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("spin", ["ccw", "cw"])
@pytest.mark.parametrize("moving", [False, True])
def test_lidar_matches_reference(spin, moving, dtype):
    scene = random_scene(260, seed=31 + 2 * moving + (spin == "cw"), centre=(0.0, 0.0, 1.5),
                         spread=(12.0, 12.0, 1.5), n_actor=60 if moving else 0).to(dtype)
    lidar = lidar_rig(columns=384, spin=spin, seam=2.2)
    ego = ego_motion(moving)
    with torch.no_grad():
        ref = render_lidar(scene, lidar, ego, 0.041, backend="reference")
        out = on_host(render_lidar(scene_to_device(scene, device()), lidar, ego, 0.041, backend=FAST))
    assert int(ref["returns"].sum()) > 300
    assert_equivalent(ref, out, dtype, LIDAR_KEYS)
    if dtype == F64:
        assert torch.equal(ref["point_column"], out["point_column"])
        assert (ref["points"] - out["points"]).abs().max() < 1e-8
        assert (ref["point_time"] - out["point_time"]).abs().max() < 1e-12


@needs_backend
@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("phase_modeling", [True, False])
def test_lidar_seam_matches_reference(phase_modeling, dtype):
    scene = wall_behind_seam(dtype)
    lidar = lidar_rig(columns=512, seam=math.pi)
    ego = RigidMotion.from_values((0, 0, 0), (1, 0, 0, 0), (15.0, 0, 0), (0, 0, 2.0))
    with torch.no_grad():
        ref = render_lidar(scene, lidar, ego, 0.0, phase_modeling=phase_modeling, backend="reference")
        out = on_host(render_lidar(scene_to_device(scene, device()), lidar, ego, 0.0,
                                   phase_modeling=phase_modeling, backend=FAST))
    cols = ref["point_column"]
    assert int((cols < 20).sum()) > 20 and int((cols >= 492).sum()) > 20 or not phase_modeling
    assert_equivalent(ref, out, dtype, LIDAR_KEYS)


@needs_backend
def test_equal_hit_distances_composite_lower_index_first():
    """Exact ties in hit distance (duplicated Gaussians, different colours) resolve by the lower Gaussian index."""
    g = torch.Generator().manual_seed(9)
    ca, cb = torch.rand(60, 3, generator=g, dtype=F64), torch.rand(60, 3, generator=g, dtype=F64)
    cam = camera_rig("pinhole", width=40, height=30)
    images = []
    for scene in (twin_scene(ca, cb), twin_scene(cb, ca)):
        with torch.no_grad():
            ref = render_camera(scene, cam, ego_motion(False), 0.0, backend="reference")
            out = render_camera(scene, cam, ego_motion(False), 0.0, backend=FAST)
        assert ref["alpha"].max() > 0.5
        assert (ref["rgb"] - out["rgb"]).abs().max() < 1e-12
        images.append(out["rgb"])
    assert (images[0] - images[1]).abs().max() > 0.05


@needs_backend
@pytest.mark.parametrize("lidar", [False, True])
def test_outputs_live_on_the_scene_device_with_the_reference_layout(lidar):
    """A host scene gets host outputs, a device scene device outputs: same values, and the keys, dtypes and
    shapes of the reference's outputs."""
    scene = random_scene(200, seed=5, n_actor=40, sh_degree=1).to(F32)
    spec = lidar_rig(columns=256) if lidar else camera_rig("opencv", width=48, height=32)
    render = render_lidar if lidar else render_camera
    with torch.no_grad():
        ref = render(scene, spec, ego_motion(True), 0.01, backend="reference")
        host = render(scene, spec, ego_motion(True), 0.01, backend=FAST)
        dev = render(scene_to_device(scene, device()), spec, ego_motion(True), 0.01, backend=FAST)
    assert ref.keys() == host.keys() == dev.keys()
    for k in ref:
        assert host[k].device.type == "cpu" and dev[k].device == device(), k
        assert ref[k].dtype == host[k].dtype == dev[k].dtype, k
        assert ref[k].shape == host[k].shape == dev[k].shape, k
        a, b = host[k], dev[k].cpu()
        assert torch.equal(a.nan_to_num(), b.nan_to_num()) if a.is_floating_point() else torch.equal(a, b), k


@needs_backend
def test_autograd_falls_back_to_the_reference():
    """With gradients required the reference rasterizer runs, on the backend's own tile lists (the cuda lists
    are sorted by tile for it first): same result and a gradient."""
    args = list(capture_inputs(F64, seed=2))
    scene = random_scene(200, seed=2, n_actor=60, sh_degree=0)
    with torch.no_grad():
        cap = _capture(scene, camera_rig("pinhole", width=48, height=36, readout=0.05), ego_motion(True), 0.0, None,
                       backend=FAST)
    args[4] = replace(cap.assignment, ray_tile=cap.assignment.ray_tile.cpu(), tile_ids=cap.assignment.tile_ids.cpu(),
                      gaussian_ids=cap.assignment.gaussian_ids.cpu())
    means = args[5].means.clone().requires_grad_(True)
    args[5] = replace(args[5], means=means)
    out = backends.rasterizer(FAST)(*args)
    out.alpha.sum().backward()
    assert means.grad is not None and means.grad.abs().sum() > 0
    with torch.no_grad():
        compare_composites(reference_rasterize(*capture_inputs(F64, seed=2)), out, 1e-9)


# ---- device helpers (kernels/device.py): run everywhere ------------------------------------------------------


def test_gathered_colours_equal_the_reference_colours():
    """The host-sync-free colour gather gives raster.attributes.gaussian_colors' SH colours (moving actors, a
    rotated scene placement)."""
    scene = random_scene(200, seed=7, n_actor=60, sh_degree=2)
    scene = replace(scene, world_from_scene=Placement.from_values((3.0, -2.0, 0.5), (0.9, 0.1, -0.2, 0.3)))
    cam = camera_rig("pinhole", width=32, height=24)
    with torch.no_grad():
        cap = _capture(scene, cam, ego_motion(True), 0.02, None, backend="reference")
        _, pos = cap.sensor.pose_at(torch.tensor(cap.projection.t_mid, dtype=F64))
        ref = gaussian_colors(scene, cap.gaussians, pos, cap.projection.t_mid)
        out = gaussian_colors_gathered(scene, cap.gaussians, pos, cap.projection.t_mid)
    assert len(cap.gaussians.bodies) > 1, "actors must be present for the test to mean it"
    assert (ref - out).abs().max() < 1e-12


def test_scene_copies_are_cached_until_the_scene_changes():
    scene = random_scene(50, seed=3, n_actor=10)
    meta = torch.device("meta")
    first = scene_on(scene, meta)
    assert first.means.device == meta and first.actor_ids.device == meta
    assert scene_on(scene, meta) is first, "the same scene is copied once"
    scene.means.add_(1.0)  # an in-place edit bumps the tensor's version: a new copy
    assert scene_on(scene, meta) is not first
    assert scene_on(scene, scene.means.device) is scene


@needs_backend
def test_autograd_on_a_device_scene_reaches_the_device_tensors():
    """With gradients required on a device scene the reference rasterizer runs on host copies; the result equals
    the kernels' and the gradient lands on the device tensor."""
    scene = scene_to_device(random_scene(150, seed=4, n_actor=30), device())
    cam = camera_rig("pinhole", width=40, height=30)
    with torch.no_grad():
        plain = render_camera(scene, cam, ego_motion(True), 0.0, backend=FAST)
    scene.means.requires_grad_(True)
    out = render_camera(scene, cam, ego_motion(True), 0.0, backend=FAST)
    out["rgb"].sum().backward()
    assert scene.means.grad is not None and scene.means.grad.device == device()
    assert scene.means.grad.abs().sum() > 0
    assert (plain["rgb"] - out["rgb"].detach()).abs().max() < 1e-9
