"""The reference renderer (projection + tiling + rasterization) against the brute-force per-ray integrator."""

from __future__ import annotations

import math

import pytest
import torch
from _scenes import brute_force, camera_rig, ego_motion, lidar_rig, random_scene

from xsim_render.motion import RigidMotion
from xsim_render.render import render_camera, render_lidar
from xsim_render.scene import GaussianScene, Sky


def assert_close_nan(a, b, atol):
    assert torch.equal(torch.isnan(a), torch.isnan(b)), "NaN patterns differ"
    assert (a - b).nan_to_num().abs().max().item() < atol


@pytest.mark.parametrize("model", ["pinhole", "opencv", "fisheye"])
@pytest.mark.parametrize("moving", [False, True])
def test_camera_matches_brute_force(model, moving, backend):
    scene = random_scene(60, seed=hash((model, moving)) % 1000, n_actor=15 if moving else 0, sh_degree=2)
    cam = camera_rig(model)
    ego = ego_motion(moving)
    out = render_camera(scene, cam, ego, 0.02, backend=backend)
    ref, valid = brute_force(scene, cam, ego, 0.02, lidar=False)
    assert out["alpha"].max() > 0.5, "scene must be visible for the test to mean anything"
    assert (out["rgb"][valid] - ref["value"][valid]).abs().max() < 1e-9
    assert (out["alpha"][valid] - ref["alpha"][valid]).abs().max() < 1e-9
    assert (out["distance"][valid] - ref["distance"][valid]).abs().max() < 1e-8
    assert_close_nan(out["distance_median"][valid], ref["distance_median"][valid], 1e-8)


@pytest.mark.parametrize("moving", [False, True])
@pytest.mark.parametrize("spin", ["ccw", "cw"])
def test_lidar_matches_brute_force(moving, spin, backend):
    scene = random_scene(80, seed=7 + moving, centre=(0.0, 0.0, 1.5), spread=(12.0, 12.0, 1.5),
                         n_actor=20 if moving else 0)
    lidar = lidar_rig(spin=spin, seam=2.5)
    ego = ego_motion(moving)
    out = render_lidar(scene, lidar, ego, 0.03, backend=backend)
    ref, _ = brute_force(scene, lidar, ego, 0.03, lidar=True)
    assert torch.isfinite(out["range_median"]).sum() > 200
    assert (out["alpha"] - ref["alpha"]).abs().max() < 1e-9
    assert (out["range"] - ref["distance"]).abs().max() < 1e-8
    assert (out["intensity"] - ref["value"][..., 0]).abs().max() < 1e-9
    assert_close_nan(out["range_median"], ref["distance_median"], 1e-8)


def test_moving_actor_is_rendered_where_it_is_at_each_ray_time(backend):
    scene = random_scene(40, seed=3, n_actor=40)  # all Gaussians on the actor
    cam = camera_rig("pinhole", readout=0.08)
    ego = ego_motion(True)
    out = render_camera(scene, cam, ego, 0.0, backend=backend)
    ref, _ = brute_force(scene, cam, ego, 0.0, lidar=False)
    assert out["alpha"].max() > 0.5
    assert (out["alpha"] - ref["alpha"]).abs().max() < 1e-9
    # the same actor held still at its capture-start pose renders differently: the motion matters
    start = scene.actors[3].trajectory.motion_at(0.0)
    zero = torch.zeros(3, dtype=torch.float64)
    held = RigidMotion(start.rotation, start.position, zero, zero, 0.0)
    still = render_camera(scene, cam, ego, 0.0, actors={3: held}, backend=backend)
    assert (still["alpha"] - out["alpha"]).abs().max() > 0.05


def seam_scene():
    """A wall of surfels 6 m behind the car, where a LiDAR with its seam at pi starts and ends its sweep."""
    ys, zs = torch.meshgrid(torch.linspace(-3, 3, 25, dtype=torch.float64),
                            torch.linspace(-1.2, 1.4, 10, dtype=torch.float64), indexing="ij")
    n = ys.numel()
    means = torch.stack((torch.full((n,), -6.0, dtype=torch.float64), ys.reshape(-1), zs.reshape(-1) + 1.8), -1)
    scales = torch.tensor([0.01, 0.2, 0.2], dtype=torch.float64).expand(n, 3)
    return GaussianScene(means=means, log_scales=scales.log(), quats=torch.tensor([1.0, 0, 0, 0]).double().expand(n, 4),
                         opacity_camera=torch.full((n,), 3.0).double(), opacity_lidar=torch.full((n,), 3.0).double(),
                         colors=torch.rand(n, 3).double(), actor_ids=torch.full((n,), -1),
                         intensity=torch.linspace(0, 1, n).double())


def test_lidar_seam_phase_modeling_fast_sensor(backend):
    """Yawing at 2 rad/s, part of the wall is seen at both ends of the sweep; phase modeling renders both."""
    scene = seam_scene()
    lidar = lidar_rig(columns=512, seam=math.pi)
    ego = RigidMotion.from_values((0, 0, 0), (1, 0, 0, 0), (15.0, 0, 0), (0, 0, 2.0))
    ref, _ = brute_force(scene, lidar, ego, 0.0, lidar=True)
    on = render_lidar(scene, lidar, ego, 0.0, phase_modeling=True, backend=backend)
    assert (on["alpha"] - ref["alpha"]).abs().max() < 1e-9
    assert_close_nan(on["range_median"], ref["distance_median"], 1e-8)
    cols = on["point_column"]
    assert int((cols < 20).sum()) > 20 and int((cols >= 492).sum()) > 20, "wall seen at both ends of the sweep"
    # the same Gaussian returns at the start and at the end of the sweep (two footprints, both rendered)
    start_t = on["point_time"][cols < 20]
    end_t = on["point_time"][cols >= 492]
    assert start_t.max() < 0.01 and end_t.min() > 0.09


def test_lidar_seam_fails_without_phase_modeling(backend):
    """Without phase modeling (plain 3DGUT + SplatAD wrap) Gaussians seen twice lose one appearance and
    seam-straddling footprints are stretched across the whole sweep."""
    from _scenes import F64

    from xsim_render.projection.footprint import project_gaussians
    from xsim_render.projection.sensor_projection import LidarProjection
    from xsim_render.render import actor_motions, gaussian_frames
    from xsim_render.sensors.rays import sensor_motion

    scene = seam_scene()
    lidar = lidar_rig(columns=512, seam=math.pi)
    ego = RigidMotion.from_values((0, 0, 0), (1, 0, 0, 0), (15.0, 0, 0), (0, 0, 2.0), dtype=F64)
    ref, _ = brute_force(scene, lidar, ego, 0.0, lidar=True)
    off = render_lidar(scene, lidar, ego, 0.0, phase_modeling=False, backend=backend)
    missing = torch.isfinite(ref["distance_median"]) & ~torch.isfinite(off["range_median"])
    assert int(missing.sum()) >= 10
    from xsim_render.motion.local_frame import LocalFrame

    g = gaussian_frames(scene, actor_motions(scene, None, 0.0, 0.1), True, LocalFrame(torch.zeros(3, dtype=F64), 0.0))
    widths = {}
    for pm in (True, False):
        fp = project_gaussians(g.means, g.rotations, g.log_scales.exp(), g.sigma, g.frame, g.bodies,
                               sensor_motion(lidar, ego), LidarProjection(lidar, 0.0), phase_modeling=pm)
        widths[pm] = fp.hi[:, 0] - fp.lo[:, 0]
    assert widths[True].max() < 0.5
    assert int((widths[False] > math.pi).sum()) >= 10


def test_camera_and_lidar_use_their_own_opacity():
    scene = random_scene(50, seed=11, centre=(9.0, 0.0, 1.8), spread=(2.0, 2.0, 0.6))
    scene.opacity_camera = torch.full_like(scene.opacity_camera, 6.0)   # opaque to the camera
    scene.opacity_lidar = torch.full_like(scene.opacity_lidar, -8.0)    # invisible to the LiDAR (< 1/255)
    ego = ego_motion(False)
    cam = render_camera(scene, camera_rig(), ego, 0.0)
    lid = render_lidar(scene, lidar_rig(), ego, 0.0)
    assert cam["alpha"].max() > 0.9
    assert lid["alpha"].max() == 0 and lid["points"].shape[0] == 0
    scene.opacity_camera, scene.opacity_lidar = scene.opacity_lidar.clone(), scene.opacity_camera.clone()
    assert render_camera(scene, camera_rig(), ego, 0.0)["alpha"].max() == 0
    lid = render_lidar(scene, lidar_rig(), ego, 0.0)
    assert lid["alpha"].max() > 0.9 and lid["points"].shape[0] > 10


def test_sky_fills_transmittance():
    scene = random_scene(30, seed=5)
    scene.sky = Sky(color=torch.tensor([0.2, 0.4, 0.9], dtype=torch.float64))
    out = render_camera(scene, camera_rig(), ego_motion(False), 0.0)
    bare = render_camera(random_scene(30, seed=5), camera_rig(), ego_motion(False), 0.0)
    expected = bare["rgb"] + (1 - bare["alpha"])[..., None] * scene.sky.color
    assert (out["rgb"] - expected).abs().max() < 1e-12
    assert (out["rgb"][bare["alpha"] == 0] - scene.sky.color).abs().max() < 1e-12


def test_lidar_points_are_median_returns_in_sensor_frame():
    scene = random_scene(80, seed=21, centre=(0.0, 0.0, 1.5), spread=(10.0, 10.0, 1.5))
    lidar = lidar_rig()
    out = render_lidar(scene, lidar, ego_motion(True), 0.0)
    b, c = out["point_beam"], out["point_column"]
    r = out["range_median"][b, c]
    assert torch.allclose(out["points"].norm(dim=-1), r)
    assert ((r >= lidar.min_range) & (r <= lidar.max_range)).all()
    el = torch.asin(out["points"][:, 2] / r)
    assert torch.allclose(el, torch.tensor(lidar.elevations, dtype=torch.float64)[b], atol=1e-9)
    assert torch.allclose(out["point_time"], out["ray_time"][b, c])
    n_returns = torch.isfinite(out["range_median"]).sum()
    assert out["points"].shape[0] == n_returns
