"""The C++ ray generation, projection and tiling against the reference stages, and the whole cpu pipeline.

Tile lists: the kernels' (tile, Gaussian) pairs contain the reference's, except pairs of Gaussians the kernels
skip because no ray of the capture can meet them (kernels/tiles.py), and every pair the kernels drop carries no
live hit (alpha >= 1/255) on any ray of its tile. Extra pairs come only from the widening TILE_MARGIN and stay
under 2 % of the list.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from _scenes import camera_rig, ego_motion, lidar_rig, random_scene

from xsim_render.kernels import build
from xsim_render.kernels.rays import sensor_rays_cpu
from xsim_render.kernels.tiles import pack_motion, project_and_tile_cpu
from xsim_render.motion import RigidMotion
from xsim_render.raster.rasterize import rays_in_frames
from xsim_render.raster.response import tile_response, whitening
from xsim_render.render import _capture, render_camera, render_lidar
from xsim_render.scene import GaussianScene
from xsim_render.sensors.rays import camera_rays, lidar_rays

F32, F64 = torch.float32, torch.float64
KEY = 1 << 32


@pytest.fixture(scope="module", autouse=True)
def cpu_kernels():
    build.load("cpu")


def pairs(assignment) -> set[int]:
    return set((assignment.tile_ids * KEY + assignment.gaussian_ids).tolist())


def live_pairs(cap, candidates: set[int]) -> int:
    """How many of the (tile, Gaussian) pairs give some ray of the tile alpha > 0 (reference response)."""
    g, r = cap.gaussians, cap.rays
    o_f, d_f = rays_in_frames(r.origins.reshape(-1, 3), r.directions.reshape(-1, 3), r.times.reshape(-1), g.bodies)
    whiten, offset = whitening(g.means, g.rotations, g.log_scales)
    ray_tile = cap.assignment.ray_tile
    live = 0
    for key in candidates:
        tile, gi = divmod(key, KEY)
        rays = ((ray_tile == tile) & r.valid.reshape(-1)).nonzero().squeeze(1)
        _, a = tile_response(o_f[:, rays], d_f[:, rays], g.frame[[gi]], whiten[[gi]], offset[[gi]], g.sigma[[gi]])
        live += int((a > 0).any())
    return live


def check_tiles(cap, spec, phase_modeling=True):
    mine, info = project_and_tile_cpu(spec, cap.gaussians, cap.sensor, cap.projection, phase_modeling)
    assert torch.equal(mine.ray_tile, cap.assignment.ray_tile.reshape(-1))
    assert mine.num_tiles == cap.assignment.num_tiles
    ref, got = pairs(cap.assignment), pairs(mine)
    assert len(ref) > 100, "the scene must cover tiles for the test to mean anything"
    missing = ref - got
    assert live_pairs(cap, missing) == 0, f"{len(missing)} reference pairs missing, some with live hits"
    assert len(missing) <= info["culled"] * cap.assignment.num_tiles
    assert len(got - ref) <= 0.02 * len(ref) + 5
    # sorted by tile, then Gaussian, without duplicates (TileAssignment's contract)
    key = mine.tile_ids * KEY + mine.gaussian_ids
    assert bool((key[1:] > key[:-1]).all())
    return info


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("model", ["pinhole", "opencv", "fisheye"])
def test_camera_tiles_cover_the_reference(model, dtype):
    scene = random_scene(300, seed=41 + len(model), n_actor=60).to(dtype)
    cam = camera_rig(model, width=80, height=56, readout=0.05)
    with torch.no_grad():
        check_tiles(_capture(scene, cam, ego_motion(True), 0.01, None), cam)


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("phase_modeling", [True, False])
@pytest.mark.parametrize("spin", ["ccw", "cw"])
def test_lidar_tiles_cover_the_reference(spin, phase_modeling, dtype):
    scene = random_scene(300, seed=43 + (spin == "cw"), centre=(0.0, 0.0, 1.5), spread=(12.0, 12.0, 1.5),
                         n_actor=60).to(dtype)
    lidar = lidar_rig(columns=256, spin=spin, seam=2.5)
    with torch.no_grad():
        cap = _capture(scene, lidar, ego_motion(True), 0.02, None, phase_modeling)
        info = check_tiles(cap, lidar, phase_modeling)
    assert info["cones"] > 0, "Gaussians near the sensor take the bounding-cone path"


def _turning_lidar_capture(seed: int, spin: str, seam: float, yaw_rate: float, dtype: torch.dtype) -> tuple:
    """project_and_tile_cpu's leading arguments (footprints kept) for 400 Gaussians (60 on actors) around a LiDAR
    on a car driving at 12 m/s and turning at yaw_rate rad/s."""
    scene = random_scene(400, seed=seed, centre=(0.0, 0.0, 1.5), spread=(15.0, 15.0, 1.5), n_actor=60).to(dtype)
    lidar = lidar_rig(columns=256, spin=spin, seam=seam)
    ego = RigidMotion.from_values((0.0, 0.0, 0.0), (1, 0, 0, 0), (12.0, 1.5, 0.0), (0.0, 0.0, yaw_rate))
    with torch.no_grad():
        cap = _capture(scene, lidar, ego, 0.02, None)
    return lidar, cap.gaussians, cap.sensor, cap.projection, True, True, True


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("spin,seam,yaw_rate", [("ccw", 2.5, 0.8), ("cw", 0.3, -3.0)])
def test_skipping_idle_far_seam_branches_changes_no_footprint(spin, seam, yaw_rate, dtype):
    """The far seam branch is solved only where far_branch_clear cannot prove it idle: footprints (rectangles,
    branches, cones) and tile lists equal those from solving both branches, and most Gaussians skip it."""
    args = _turning_lidar_capture(47 + (spin == "cw"), spin, seam, yaw_rate, dtype)
    with torch.no_grad():
        fast, info = project_and_tile_cpu(*args, seam_bound=True, centre_bound=False, ut_bound=False)
        full, info_full = project_and_tile_cpu(*args, seam_bound=False, centre_bound=False, ut_bound=False)
    assert info_full["far_skipped"] == 0 and info["far_skipped"] > 0.15 * len(args[1].means)
    assert torch.equal(fast.tile_ids, full.tile_ids) and torch.equal(fast.gaussian_ids, full.gaussian_ids)
    for key in ("gaussian", "lo", "hi", "full", "branch", "cone_axis", "cone_half_angle"):
        assert torch.equal(info[key], info_full[key]), key
    assert int((info["branch"] != 0).sum()) > 20, "some Gaussians lie on the seam (both branches solved)"


@pytest.mark.parametrize("spin,seam,yaw_rate", [("ccw", math.pi, 0.1), ("cw", 0.3, -0.8)])
def test_far_branch_skips_are_exact_for_a_band_of_gaussians_along_the_seam(spin, seam, yaw_rate):
    """3000 Gaussians of every size (0.02-0.5 m) 3-25 m away within 0.4 rad of the seam, LiDAR on a car at 12
    m/s: far_branch_clear skips only far branches that give no rectangle (footprints equal to solving both), and
    the band holds Gaussians on both sides of its bound (skipped, and solved with a far rectangle)."""
    g = torch.Generator().manual_seed(61 + (spin == "cw"))
    n = 3000
    lidar = lidar_rig(columns=512, spin=spin, seam=seam)
    azimuth = seam + (torch.rand(n, generator=g, dtype=F64) * 2 - 1) * 0.4
    dist = 3 + 22 * torch.rand(n, generator=g, dtype=F64)
    means = torch.stack((dist * torch.cos(azimuth), dist * torch.sin(azimuth),
                         1.8 + (torch.rand(n, generator=g, dtype=F64) * 2 - 1) * 1.5), -1)
    scene = GaussianScene(
        means=means, log_scales=math.log(0.02) + math.log(25) * torch.rand(n, 3, generator=g, dtype=F64),
        quats=torch.randn(n, 4, generator=g, dtype=F64), opacity_camera=torch.full((n,), 3.0, dtype=F64),
        opacity_lidar=torch.rand(n, generator=g, dtype=F64) * 6 - 2, colors=torch.rand(n, 3, dtype=F64),
        actor_ids=torch.full((n,), -1))
    ego = RigidMotion.from_values((0.0, 0.0, 0.0), (1, 0, 0, 0), (12.0, 0.5, 0.0), (0.0, 0.0, yaw_rate))
    with torch.no_grad():
        cap = _capture(scene, lidar, ego, 0.02, None)
        args = (lidar, cap.gaussians, cap.sensor, cap.projection, True, True, True)
        fast, info = project_and_tile_cpu(*args, seam_bound=True, ut_bound=False)
        full, info_full = project_and_tile_cpu(*args, seam_bound=False, ut_bound=False)
    assert torch.equal(fast.tile_ids, full.tile_ids) and torch.equal(fast.gaussian_ids, full.gaussian_ids)
    for key in ("gaussian", "lo", "hi", "full", "branch", "cone_axis", "cone_half_angle"):
        assert torch.equal(info[key], info_full[key]), key
    both = set(info["gaussian"][info["branch"] < 0].tolist()) & set(info["gaussian"][info["branch"] > 0].tolist())
    assert info["far_skipped"] > 0.15 * n and len(both) > 100, (info["far_skipped"], len(both))


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("spin,seam,yaw_rate", [("ccw", 2.5, 0.8), ("cw", 0.3, -3.0)])
def test_centre_solves_from_the_predicted_root_reach_the_reference_root(spin, seam, yaw_rate, dtype):
    """Starting a centre's time solve at its predicted root (project.h predicted_root, where proven) instead of at
    the reference's start gives the same footprints to within the solve tolerance and the same tile lists."""
    args = _turning_lidar_capture(53 + (spin == "cw"), spin, seam, yaw_rate, dtype)
    with torch.no_grad():
        warm, info = project_and_tile_cpu(*args, centre_bound=True, ut_bound=False)
        cold, info_cold = project_and_tile_cpu(*args, centre_bound=False, ut_bound=False)
    assert torch.equal(warm.tile_ids, cold.tile_ids) and torch.equal(warm.gaussian_ids, cold.gaussian_ids)
    for key in ("gaussian", "full", "branch"):
        assert torch.equal(info[key], info_cold[key]), key
    # roots agree to within the solve's stopping test (1e-11 s / 1e-7 s): phases and elevations to far less than
    # the 1e-5 rad tile margin
    tol = 1e-9 if dtype == F64 else 2e-6
    torch.testing.assert_close(info["lo"], info_cold["lo"], rtol=0, atol=tol)
    torch.testing.assert_close(info["hi"], info_cold["hi"], rtol=0, atol=tol)
    finite = torch.isfinite(info["lo"])
    assert float((info["lo"] - info_cold["lo"])[finite].abs().max()) > 0, "the warm start must have been taken"


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("spin,seam,yaw_rate,speed,share", [("ccw", 2.5, 0.8, 12.0, 0.4), ("cw", 0.3, -3.0, 12.0, 0.0),
                                                            ("ccw", math.pi, 0.05, 25.0, 0.4)])
def test_static_ut_rectangles_contain_the_exact_ones(spin, seam, yaw_rate, speed, share, dtype):
    """Where predicted_root proves it, the LiDAR UT takes its sigma points at the centre's observation time and
    widens the rectangle by a proven slack (unscented_bound.h) instead of solving each point's own time: the same
    footprints (Gaussians, branches, cones) as solving every point, each rectangle containing the exact one and
    wider by at most a pad per side, the tile lists a superset (under 2 % more), and, turning no faster than a
    car does, the shortcut taken for a large share of the Gaussians (1-10 cm up to 30 m away; in float64 also
    small ones on a moving actor). At 3 rad/s the slack is mostly too wide to take."""
    scene = random_scene(600, seed=71 + (spin == "cw"), centre=(0.0, 0.0, 1.5), spread=(30.0, 30.0, 2.0),
                         n_actor=80)
    shrink = torch.full((600, 1), math.log(0.25), dtype=F64)  # 1-10 cm, on the actor 1-4 mm
    shrink[:80] += math.log(0.04)
    scene = dataclasses.replace(scene, log_scales=scene.log_scales + shrink).to(dtype)
    lidar = lidar_rig(columns=1024, spin=spin, seam=seam)
    ego = RigidMotion.from_values((0.0, 0.0, 0.0), (1, 0, 0, 0), (speed, 1.0, 0.0), (0.0, 0.0, yaw_rate))
    with torch.no_grad():
        cap = _capture(scene, lidar, ego, 0.02, None)
        args = (lidar, cap.gaussians, cap.sensor, cap.projection, True, True, True)
        wide, info = project_and_tile_cpu(*args, ut_bound=True)
        exact, info_exact = project_and_tile_cpu(*args, ut_bound=False)
    for key in ("gaussian", "full", "branch", "cone_axis", "cone_half_angle"):
        assert torch.equal(info[key], info_exact[key]), key
    rect = ~info["full"].bool()
    lo, hi, lo_x, hi_x = info["lo"][rect], info["hi"][rect], info_exact["lo"][rect], info_exact["hi"][rect]
    assert bool((lo <= lo_x).all()) and bool((hi >= hi_x).all()), "a widened rectangle misses part of the exact one"
    pad = torch.tensor([2 * math.pi / lidar.columns, 2e-3], dtype=F64)
    grown = torch.maximum(lo_x - lo, hi - hi_x)
    assert bool((grown <= 1.0 * pad + 1e-9).all())  # twice project.h UT_SLACK_MAX pads: the slack on both moments
    widened = (grown > 1e-12).all(dim=1)
    assert float(widened.float().mean()) >= share, "the shortcut must be taken for a large share of Gaussians"
    if dtype == F64 and share > 0:  # (float32's 1e-5 s solve tolerance alone widens the actor's nearby ones too much)
        on_actor = cap.gaussians.frame[info["gaussian"][rect]] != 0
        assert bool(widened[on_actor].any()), "and for some on the actor"
    ref, got = pairs(exact), pairs(wide)
    assert ref <= got and len(got - ref) <= 0.02 * len(ref)


def _unit(g: torch.Generator, n: int) -> torch.Tensor:
    v = torch.randn(n, 3, generator=g, dtype=F64)
    return v / v.norm(dim=1, keepdim=True)


def test_phase_rate_bound_holds_for_every_point_and_time():
    """project.h phase_rate_bound (the bound behind the far-branch skip and the predicted roots) against the
    reference motion: for random mounted LiDARs (up to 30 m/s, 1.5 rad/s about any axis), actors or the world,
    Gaussians 1.5-40 m away in any direction (a quarter straight ahead or behind, above or below), every point
    within rho of the centre at every time within H of mid-sweep turns in phase no faster than omega and stays at
    least rxy from the spin axis; and the bound is tight enough to matter (some case within 1.67x of the fastest
    point)."""
    ext = build.load("cpu")
    g = torch.Generator().manual_seed(12)
    t_start, t_end = 0.02, 0.12
    tm = 0.5 * (t_start + t_end)
    held, tightest = 0, 0.0
    for case in range(150):
        r = lambda *shape: torch.rand(*shape, generator=g, dtype=F64)  # noqa: E731
        w = _unit(g, 1)[0] * 1.5 * float(r(1)) if case % 3 else torch.tensor([0.0, 0.0, 0.6 * float(r(1)) - 0.3])
        ego = RigidMotion.from_values(r(3) * 10, torch.randn(4, generator=g), _unit(g, 1)[0] * 30 * float(r(1)) *
                                      torch.tensor([1.0, 1.0, 0.1]), w, time=float(r(1)) * 0.1)
        tilt = RigidMotion.from_values((0, 0, 0), (1.0, 0.05 * float(r(1)), 0.05 * float(r(1)), 0.0)).rotation
        sensor = ego.mounted(tilt, torch.tensor([1.0, 0.2, 1.9], dtype=F64) * r(3))
        actor = None
        if case % 2:
            actor = RigidMotion.from_values(r(3) * 20, torch.randn(4, generator=g), _unit(g, 1)[0] * 15 * float(r(1)),
                                            _unit(g, 1)[0] * 0.8 * float(r(1)), time=float(r(1)) * 0.1)
        _, origin = sensor.pose_at(tm)
        direction = _unit(g, 1)[0] * torch.tensor([1.0, 1.0, 0.3], dtype=F64)
        if case % 4 == 0:  # straight ahead or behind: the centre does not turn, the points around it do
            direction = ego.linear_velocity * (1 if case % 8 else -1)
            direction = direction + torch.tensor([0.0, 0.0, 1.6 * float(r(1)) - 0.8]) * direction.norm()
        world_mean = origin + direction / direction.norm() * (1.5 + 38.5 * float(r(1)) ** 2)
        mean = world_mean if actor is None else actor.world_to_body(world_mean, torch.tensor(tm, dtype=F64))
        rho, H = 0.02 + 0.6 * float(r(1)), 0.05 + 0.2 * float(r(1))
        body = torch.zeros(0, dtype=F64) if actor is None else pack_motion(actor)
        ok, omega, rxy, _ = ext.phase_rate_bound(pack_motion(sensor).numpy(), body.numpy(), t_start, t_end,
                                                 mean.numpy(), rho, H)
        if not ok:
            continue
        held += 1
        u = _unit(g, 64)
        points = mean + rho * torch.cat((u, u * r(64, 1) ** (1 / 3)))          # on and inside the sphere
        t = (tm + H * torch.linspace(-1, 1, 41, dtype=F64)).repeat(points.shape[0], 1).requires_grad_(True)
        p = points[:, None, :].expand(-1, t.shape[1], 3)
        world = p if actor is None else actor.body_to_world(p, t)
        x = sensor.world_to_body(world, t)
        phase = torch.atan2(x[..., 1], x[..., 0])
        (rate,) = torch.autograd.grad(phase.sum(), t)
        fastest = float(rate.abs().max())
        assert fastest <= omega, (case, fastest, omega)
        assert float(torch.hypot(x[..., 0], x[..., 1]).detach().min()) >= rxy, case
        tightest = max(tightest, fastest / omega)
    assert held >= 90 and tightest > 0.6, (held, tightest)


def test_far_gaussians_outside_the_fan_are_skipped_and_matter_nowhere():
    """Gaussians high above the top beam are culled by the kernels; the reference keeps pairs for none of them
    that carry a live hit."""
    scene = random_scene(200, seed=5, centre=(0.0, 0.0, 30.0), spread=(20.0, 20.0, 5.0)).to(F64)
    lidar = lidar_rig(columns=256)
    with torch.no_grad():
        cap = _capture(scene, lidar, ego_motion(False), 0.0, None)
        mine, info = project_and_tile_cpu(lidar, cap.gaussians, cap.sensor, cap.projection)
    assert info["culled"] > 150
    assert live_pairs(cap, pairs(cap.assignment) - pairs(mine)) == 0


@pytest.mark.parametrize("dtype", [F64, F32])
def test_ray_generation_matches_the_reference(dtype):
    ego = ego_motion(True, dtype=dtype)
    tol = 1e-12 if dtype == F64 else 2e-6
    for spec, reference in ((camera_rig("opencv", width=64, height=40, direction="right_to_left"), camera_rays),
                            (camera_rig("fisheye", width=64, height=40), camera_rays),
                            (lidar_rig(spin="cw"), lidar_rays)):
        a, b = reference(spec, ego, 0.013), sensor_rays_cpu(spec, ego, 0.013)
        assert torch.equal(a.valid, b.valid) and a.origins.dtype == b.origins.dtype == dtype
        for field in ("origins", "directions", "times", "directions_sensor"):
            diff = (getattr(a, field) - getattr(b, field))[a.valid]
            assert diff.abs().max() <= tol, field


@pytest.mark.parametrize("dtype", [F64, F32])
def test_ray_poses_shared_per_time_equal_per_ray_poses(dtype):
    """The cpu ray kernel poses the sensor once per LiDAR column (period) or per run of equal times (a camera's
    rows): bit for bit what posing every ray on its own gives (the rays in a random order: no runs, no period)."""
    from xsim_render.kernels import build
    from xsim_render.kernels.tiles import pack_motion
    from xsim_render.sensors.rays import sensor_motion

    ext = build.load("cpu")
    ego = ego_motion(True, dtype=dtype)

    def run(t: torch.Tensor, d: torch.Tensor, motion: torch.Tensor, period: int):
        n = t.numel()
        o, w = torch.empty((n, 3), dtype=dtype), torch.empty((n, 3), dtype=dtype)
        ext.sensor_rays({"double": dtype == F64, "n_rays": n, "times": t.data_ptr(), "dirs_sensor": d.data_ptr(),
                         "motion": motion.data_ptr(), "out_origins": o.data_ptr(), "out_directions": w.data_ptr(),
                         "threads": 2, "period": period})
        return o, w

    for spec, period in ((camera_rig("pinhole", width=64, height=40), 0), (lidar_rig(columns=256, spin="cw"), 256)):
        rays = sensor_rays_cpu(spec, ego, 0.013)
        times, dirs = rays.times.reshape(-1).contiguous(), rays.directions_sensor.reshape(-1, 3).contiguous()
        motion = pack_motion(sensor_motion(spec, ego)).to(dtype).contiguous()
        n = times.numel()
        assert times.unique().numel() < n / 10, "the shared poses must be exercised"

        order = torch.randperm(n, generator=torch.Generator().manual_seed(5))
        o_one, w_one = run(times[order].contiguous(), dirs[order].contiguous(), motion, 0)
        o, w = run(times, dirs, motion, period)
        assert torch.equal(o[order], o_one) and torch.equal(w[order], w_one)
        assert torch.equal(o, rays.origins.reshape(-1, 3)) and torch.equal(w, rays.directions.reshape(-1, 3))


@pytest.mark.parametrize("dtype", [F64, F32])
def test_whole_cpu_pipeline_matches_the_reference(dtype):
    """Rays, projection, tiling and rasterization all in C++ (backends.stages) against the reference renderer."""
    scene = random_scene(250, seed=61, n_actor=50, sh_degree=1).to(dtype)
    cam = camera_rig("opencv", width=64, height=48)
    lid_scene = random_scene(250, seed=62, centre=(0.0, 0.0, 1.5), spread=(12.0, 12.0, 1.5), n_actor=50).to(dtype)
    lidar = lidar_rig(columns=256, spin="cw", seam=2.0)
    ego = ego_motion(True)
    with torch.no_grad():
        ref_c = render_camera(scene, cam, ego, 0.02, backend="reference")
        ref_l = render_lidar(lid_scene, lidar, ego, 0.03, backend="reference")
        out_c = render_camera(scene, cam, ego, 0.02, backend="cpu")
        out_l = render_lidar(lid_scene, lidar, ego, 0.03, backend="cpu")
    tol = 1e-9 if dtype == F64 else 1e-3
    for key in ("rgb", "alpha", "distance"):
        assert (ref_c[key] - out_c[key]).abs().max() < tol, key
    assert torch.equal(torch.isnan(ref_c["distance_median"]), torch.isnan(out_c["distance_median"]))
    for key in ("alpha", "intensity", "range"):
        assert (ref_l[key] - out_l[key]).abs().max() < (tol if key != "range" else 10 * tol), key
    assert torch.equal(ref_l["returns"], out_l["returns"])
    assert int(ref_l["returns"].sum()) > 200 and ref_c["alpha"].max() > 0.5


def test_seam_wall_seen_at_both_ends_with_the_cpu_pipeline():
    from test_kernels_cpu import wall_behind_seam

    scene = wall_behind_seam(F64)
    lidar = lidar_rig(columns=512, seam=math.pi)
    ego = RigidMotion.from_values((0, 0, 0), (1, 0, 0, 0), (15.0, 0, 0), (0, 0, 2.0))
    with torch.no_grad():
        ref = render_lidar(scene, lidar, ego, 0.0, backend="reference")
        out = render_lidar(scene, lidar, ego, 0.0, backend="cpu")
    assert torch.equal(ref["returns"], out["returns"])
    assert (ref["range"] - out["range"]).abs().max() < 1e-9
    cols = out["point_column"]
    assert int((cols < 20).sum()) > 20 and int((cols >= 492).sum()) > 20
