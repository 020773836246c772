"""The cpu backend (C++/OpenMP kernels) against the reference rasterizer and renderer.

Tolerances: float64 agrees to 1e-9 everywhere (alpha, values, distances; same NaN pattern, same LiDAR returns).
float32 (the reference's own rounding differs from the kernel's): alpha and expected distance within 1e-3 (1 mm)
on >= 99.9 % of rays, medians within 1 mm on >= 99.9 % of the rays where both return, the NaN pattern of the
medians and the LiDAR returns equal on >= 99.9 % of rays; composited values (rgb, intensity) within 1e-3 on
>= 99.5 % of rays with a mean difference < 1e-4: coplanar surfels have hit distances equal to float32 rounding,
so their order (and the colour it mixes) flips with the last bit; the float32 reference is as far from the
float64 result there as the kernel is.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from _scenes import camera_rig, ego_motion, lidar_rig, random_scene

from xsim_render import backends
from xsim_render.kernels import build
from xsim_render.kernels.raster import rasterize_cpu, run_cpu_kernel
from xsim_render.motion import RigidMotion
from xsim_render.raster.rasterize import rasterize as reference_rasterize
from xsim_render.render import _capture, _values, render_camera, render_lidar
from xsim_render.scene import GaussianScene

F32, F64 = torch.float32, torch.float64


@pytest.fixture(scope="module", autouse=True)
def cpu_kernels():
    """Build (or load) the cpu extension once; a machine without a compiler fails here with the reason."""
    build.load("cpu")


def frac_close(a: torch.Tensor, b: torch.Tensor, tol: float) -> float:
    """Share of entries with |a - b| <= tol (NaN == NaN counts as close)."""
    both_nan = torch.isnan(a) & torch.isnan(b)
    close = ((a - b).abs() <= tol) | both_nan
    return close.float().mean().item()


def assert_equivalent(ref: dict, out: dict, dtype: torch.dtype, keys: dict[str, str]) -> None:
    """keys: name -> 'alpha' | 'value' | 'distance' | 'median' | 'bool' (tolerances: module docstring)."""
    for key, kind in keys.items():
        a, b = ref[key], out[key]
        assert a.shape == b.shape, key
        if kind == "bool":
            agree = (a == b).float().mean().item()
            assert agree == 1.0 if dtype == F64 else agree >= 0.999, (key, agree)
            continue
        if dtype == F64:
            assert torch.equal(torch.isnan(a), torch.isnan(b)), f"{key}: NaN patterns differ"
            tol = 1e-8 if kind in ("distance", "median") else 1e-9
            assert (a - b).nan_to_num().abs().max().item() < tol, key
        else:
            nan_agree = (torch.isnan(a) == torch.isnan(b)).float().mean().item()
            assert nan_agree >= 0.999, (key, nan_agree)
            if kind in ("median", "distance"):
                both = torch.isfinite(a) & torch.isfinite(b)
                assert frac_close(a[both], b[both], 1e-3) >= 0.999, key
            elif kind == "alpha":
                assert frac_close(a, b, 1e-3) >= 0.999, key
            else:
                assert frac_close(a, b, 1e-3) >= 0.995, key
                assert (a - b).abs().mean().item() < 1e-4, key


CAMERA_KEYS = {"rgb": "value", "alpha": "alpha", "distance": "distance", "distance_median": "median"}
LIDAR_KEYS = {"alpha": "alpha", "intensity": "value", "range": "distance", "range_median": "median",
              "returns": "bool"}


MODELS = ("pinhole", "opencv", "fisheye")
DIRECTIONS = ("top_to_bottom", "bottom_to_top", "left_to_right", "right_to_left", "global")
CAMERA_CASES = [(m, d, F64) for m in MODELS for d in DIRECTIONS] + [(m, "top_to_bottom", F32) for m in MODELS] \
    + [("opencv", "right_to_left", F32)]


@pytest.mark.parametrize(("model", "direction", "dtype"), CAMERA_CASES)
def test_camera_matches_reference(model, direction, dtype):
    seed = 100 + 7 * ["pinhole", "opencv", "fisheye"].index(model) + len(direction)
    scene = random_scene(220, seed=seed, n_actor=50, sh_degree=1).to(dtype)
    cam = camera_rig(model, width=56, height=40, readout=0.06, direction=direction)
    ego = ego_motion(True)
    with torch.no_grad():
        ref = render_camera(scene, cam, ego, 0.013, backend="reference")
        out = render_camera(scene, cam, ego, 0.013, backend="cpu")
    assert ref["alpha"].max() > 0.5 and (ref["alpha"] > 0).float().mean() > 0.05, "the scene must be visible"
    assert_equivalent(ref, out, dtype, CAMERA_KEYS)


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
        out = render_lidar(scene, lidar, ego, 0.041, backend="cpu")
    assert int(ref["returns"].sum()) > 300
    assert_equivalent(ref, out, dtype, LIDAR_KEYS)
    if dtype == F64:
        assert torch.equal(ref["point_column"], out["point_column"])
        assert (ref["points"] - out["points"]).abs().max() < 1e-8


def wall_behind_seam(dtype) -> GaussianScene:
    """Surfels 6 m behind the car, where a LiDAR with its seam at pi starts and ends its sweep."""
    ys, zs = torch.meshgrid(torch.linspace(-3, 3, 25, dtype=F64), torch.linspace(-1.2, 1.4, 10, dtype=F64),
                            indexing="ij")
    n = ys.numel()
    means = torch.stack((torch.full((n,), -6.0, dtype=F64), ys.reshape(-1), zs.reshape(-1) + 1.8), -1)
    scales = torch.tensor([0.01, 0.2, 0.2], dtype=F64).expand(n, 3)
    g = torch.Generator().manual_seed(4)
    opaque = torch.full((n,), 3.0, dtype=F64)
    return GaussianScene(means=means, log_scales=scales.log(),
                         quats=torch.tensor([1.0, 0, 0, 0], dtype=F64).expand(n, 4),
                         opacity_camera=opaque, opacity_lidar=opaque.clone(),
                         colors=torch.rand(n, 3, generator=g, dtype=F64), actor_ids=torch.full((n,), -1),
                         intensity=torch.rand(n, generator=g, dtype=F64)).to(dtype)


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("phase_modeling", [True, False])
def test_lidar_seam_matches_reference(phase_modeling, dtype):
    scene = wall_behind_seam(dtype)
    lidar = lidar_rig(columns=512, seam=math.pi)
    ego = RigidMotion.from_values((0, 0, 0), (1, 0, 0, 0), (15.0, 0, 0), (0, 0, 2.0))
    with torch.no_grad():
        ref = render_lidar(scene, lidar, ego, 0.0, phase_modeling=phase_modeling, backend="reference")
        out = render_lidar(scene, lidar, ego, 0.0, phase_modeling=phase_modeling, backend="cpu")
    cols = ref["point_column"]
    assert int((cols < 20).sum()) > 20 and int((cols >= 492).sum()) > 20 or not phase_modeling
    assert_equivalent(ref, out, dtype, LIDAR_KEYS)


def capture_inputs(dtype, seed=5, lidar=False):
    scene = random_scene(200, seed=seed, n_actor=60, sh_degree=0).to(dtype)
    spec = lidar_rig(columns=256) if lidar else camera_rig("pinhole", width=48, height=36, readout=0.05)
    if lidar:
        scene = random_scene(200, seed=seed, centre=(0.0, 0.0, 1.5), spread=(10.0, 10.0, 1.5), n_actor=60).to(dtype)
    cap = _capture(scene, spec, ego_motion(True), 0.0, None)
    values = _values(scene, scene.colors if not lidar else None, lidar=lidar)
    r = cap.rays
    return (r.origins.reshape(-1, 3), r.directions.reshape(-1, 3), r.times.reshape(-1), r.valid.reshape(-1),
            cap.assignment, cap.gaussians, values)


def compare_composites(a, b, tol: float) -> None:
    assert torch.equal(torch.isnan(a.distance_median), torch.isnan(b.distance_median))
    for x, y in ((a.alpha, b.alpha), (a.distance, b.distance), (a.distance_median, b.distance_median),
                 (a.transmittance, b.transmittance)):
        assert (x - y).nan_to_num().abs().max().item() < tol
    for k in a.values:
        assert (a.values[k] - b.values[k]).abs().max().item() < tol


@pytest.mark.parametrize("lidar", [False, True])
def test_existence_windows(lidar):
    """A ray whose time lies outside its Gaussian's body window gets nothing from it (inclusive bounds)."""
    args = list(capture_inputs(F64, seed=8, lidar=lidar))
    g = args[5]
    times = args[2]
    mid = float(times.median())
    windowed = replace(g, windows=[None] + [(float(times.min()) - 1.0, mid)] * (len(g.bodies) - 1))
    args[5] = windowed
    with torch.no_grad():
        ref = reference_rasterize(*args)
        out = rasterize_cpu(*args)
        full = rasterize_cpu(*args[:5], g, args[6])
    compare_composites(ref, out, 1e-9)
    late = times > mid
    assert (full.alpha[late] - out.alpha[late]).abs().max() > 0.05, "the window must matter for the test to mean it"


def twin_scene(colors_a: torch.Tensor, colors_b: torch.Tensor) -> GaussianScene:
    """Every Gaussian of a random scene twice (shuffled), the twins coloured colors_a / colors_b."""
    base = random_scene(60, seed=12)
    n = len(base)
    perm = torch.randperm(2 * n, generator=torch.Generator().manual_seed(3))

    def cat(a, b):
        return torch.cat((a, b))[perm]

    return GaussianScene(means=cat(base.means, base.means), log_scales=cat(base.log_scales, base.log_scales),
                         quats=cat(base.quats, base.quats),
                         opacity_camera=cat(base.opacity_camera, base.opacity_camera),
                         opacity_lidar=cat(base.opacity_lidar, base.opacity_lidar), colors=cat(colors_a, colors_b),
                         actor_ids=cat(base.actor_ids, base.actor_ids))


def test_equal_hit_distances_composite_lower_index_first():
    """Exact ties in hit distance (duplicated Gaussians, different colours) resolve by the lower Gaussian index."""
    g = torch.Generator().manual_seed(9)
    ca, cb = torch.rand(60, 3, generator=g, dtype=F64), torch.rand(60, 3, generator=g, dtype=F64)
    cam = camera_rig("pinhole", width=40, height=30)
    images = []
    for scene in (twin_scene(ca, cb), twin_scene(cb, ca)):
        with torch.no_grad():
            ref = render_camera(scene, cam, ego_motion(False), 0.0, backend="reference")
            out = render_camera(scene, cam, ego_motion(False), 0.0, backend="cpu")
        assert ref["alpha"].max() > 0.5
        assert (ref["rgb"] - out["rgb"]).abs().max() < 1e-12
        images.append(out["rgb"])
    # swapping the twins' colours changes the image: the order of equal hits really is under test
    assert (images[0] - images[1]).abs().max() > 0.05


def test_float64_rasterizer_agrees_to_1e9_on_the_same_tiles():
    args = capture_inputs(F64, seed=21)
    with torch.no_grad():
        compare_composites(reference_rasterize(*args), rasterize_cpu(*args), 1e-9)


@pytest.mark.parametrize("lidar", [True, False])
def test_ray_groups_skip_most_candidates_and_stay_exact(lidar):
    """Each group of neighbouring rays visits only the tile candidates its cone of rays can meet: far fewer
    evaluations than every ray against every tile candidate, and the reference's composite to 1e-9 (float64,
    actors moving, so body slots other than the world are culled too)."""
    if lidar:
        scene = random_scene(1500, seed=31, centre=(0.0, 0.0, 1.0), spread=(25.0, 25.0, 1.5), n_actor=150)
        spec = lidar_rig(columns=512)
    else:
        scene = random_scene(1500, seed=32, centre=(12.0, 0.0, 1.2), spread=(8.0, 6.0, 1.0), n_actor=150)
        spec = camera_rig("pinhole", width=96, height=64, readout=0.05)
    scene.log_scales = scene.log_scales - 1.5  # small Gaussians: each meets a few rays of a tile
    with torch.no_grad():
        cap = _capture(scene, spec, ego_motion(True), 0.0, None)
        r, a = cap.rays, cap.assignment
        args = (r.origins.reshape(-1, 3), r.directions.reshape(-1, 3), r.times.reshape(-1), r.valid.reshape(-1), a,
                cap.gaussians, _values(scene, None if lidar else scene.colors, lidar=lidar))
        ref = reference_rasterize(*args)
        out, state = run_cpu_kernel(build.load("cpu"), *args)
    compare_composites(ref, out, 1e-9)
    rays_per_tile = torch.bincount(a.ray_tile[r.valid.reshape(-1)], minlength=a.num_tiles)
    every = int((rays_per_tile[a.tile_ids]).sum())
    assert int(state["evaluated"]) < 0.35 * every
    assert float(ref.alpha.max()) > 0.5 and int((ref.alpha > 0).sum()) > 200


def test_autograd_falls_back_to_the_reference():
    """The kernels are forward only: with grad required, the cpu rasterizer returns the reference's result."""
    args = list(capture_inputs(F64, seed=2))
    g = args[5]
    means = g.means.clone().requires_grad_(True)
    args[5] = replace(g, means=means)
    out = rasterize_cpu(*args)
    out.alpha.sum().backward()
    assert means.grad is not None and means.grad.abs().sum() > 0


def test_auto_prefers_cpu_and_explicit_names_resolve():
    status = backends.available_backends()
    assert status["reference"] is None and status["cpu"] is None
    assert backends.resolve_backend("auto") in ("cuda", "cpu")
    assert backends.resolve_backend("cpu") == "cpu"
    assert backends.rasterizer("cpu") is rasterize_cpu


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("with_drop", [False, True])
def test_lidar_returns_kernel_equals_the_specification(dtype, with_drop):
    """kernels/returns.py (the cpu backend's point cloud of a sweep) against raster/lidar_returns.py on fresh
    random medians (NaN, +-inf, below / above the range limits, exactly on them) and ray-drop probabilities: the
    same returns mask, points, times, beams and columns, bit for bit."""
    from xsim_render.kernels.rays import sensor_rays_cpu
    from xsim_render.kernels.returns import lidar_returns_cpu
    from xsim_render.motion.local_frame import LocalFrame
    from xsim_render.raster.lidar_returns import lidar_returns

    lidar = replace(lidar_rig(columns=96, spin="cw"), min_range=0.5, max_range=80.0)
    rays = sensor_rays_cpu(lidar, ego_motion(True, dtype=dtype), 0.013)
    g = torch.Generator().manual_seed(17 + with_drop)
    median = (torch.rand(lidar.beams, lidar.columns, generator=g, dtype=torch.float64) * 100).to(dtype)
    pick = torch.randint(0, 7, median.shape, generator=g)
    median[pick == 0] = float("nan")
    median[pick == 1] = float("inf")
    median[pick == 2] = -float("inf")
    median[pick == 3] = lidar.min_range
    median[pick == 4] = lidar.max_range
    drop = torch.rand(median.shape, generator=g, dtype=dtype) if with_drop else None
    if drop is not None:
        drop[torch.rand(median.shape, generator=g) < 0.1] = 0.5
    local = LocalFrame(torch.tensor([3.0, -2.0, 1.0], dtype=torch.float64), 1.7e9 + 0.25)
    want, got = lidar_returns(lidar, median, drop, rays, local), lidar_returns_cpu(lidar, median, drop, rays, local)
    assert 100 < int(want.returns.sum()) < median.numel() - 100
    for field in ("returns", "points", "time", "beam", "column"):
        a, b = getattr(want, field), getattr(got, field)
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), field
