"""Ground-truth ray tracing against analytic answers on tiny hand-made worlds (and a smoke run on `small`)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import trimesh
from trimesh.ray import ray_pyembree

from xsim_render.scene.actors import Trajectory
from xsim_render.sensors import camera_models
from xsim_render.sensors.rays import camera_pixel_grid, lidar_directions
from xsim_render.sensors.rig import CameraSpec, Extrinsics, LidarSpec, RollingShutter
from xsim_render.synth.groundtruth import render_camera_truth, render_lidar_truth
from xsim_render.synth.materials import Material, lit_color
from xsim_render.synth.presets import default_rig
from xsim_render.synth.world import World, WorldActor, generate_world

OPTICAL = (0.5, -0.5, 0.5, -0.5)  # optical frame looking along base_link +x


def _mesh(parts: list[tuple[trimesh.Trimesh, int]]) -> tuple[trimesh.Trimesh, np.ndarray]:
    vertices, faces, mats, count = [], [], [], 0
    for m, mat in parts:
        vertices.append(m.vertices)
        faces.append(m.faces + count)
        mats.append(np.full(len(m.faces), mat))
        count += len(m.vertices)
    return trimesh.Trimesh(np.concatenate(vertices), np.concatenate(faces), process=False), np.concatenate(mats)


def _plane_x(x: float, half: float = 200.0, z: float = 0.0) -> trimesh.Trimesh:
    """A square in the plane X = x facing -x, centred at (x, 0, z)."""
    v = np.array([[x, -half, z - half], [x, half, z - half], [x, half, z + half], [x, -half, z + half]])
    return trimesh.Trimesh(v, [[0, 2, 1], [0, 3, 2]], process=False)


def _ground(half: float = 300.0) -> trimesh.Trimesh:
    v = np.array([[-half, -half, 0], [half, -half, 0], [half, half, 0], [-half, half, 0]], dtype=np.float64)
    return trimesh.Trimesh(v, [[0, 1, 2], [0, 2, 3]], process=False)


def _static_ego(duration: float = 10.0) -> Trajectory:
    return Trajectory(torch.tensor([0.0, duration], dtype=torch.float64), torch.zeros(2, 3, dtype=torch.float64),
                      torch.tensor([[1.0, 0, 0, 0]] * 2, dtype=torch.float64))


def _world(parts, materials, ego: Trajectory | None = None, actors=()) -> World:
    mesh, mats = _mesh(parts)
    return World(mesh, mats, materials, list(actors), ego if ego is not None else _static_ego(), 10.0, 0, "test")


def _camera(shutter: RollingShutter | None = None, width: int = 64, height: int = 48) -> CameraSpec:
    return CameraSpec("cam", "pinhole", width, height, 50.0, 50.0, width / 2, height / 2,
                      rolling_shutter=shutter or RollingShutter(), extrinsics=Extrinsics((1.5, 0.0, 1.6), OPTICAL))


def _lidar(beams: int = 8, columns: int = 256, low: float = -20.0, high: float = 10.0, **kw) -> LidarSpec:
    el = tuple(math.radians(e) for e in np.linspace(low, high, beams))
    return LidarSpec("lidar", el, columns, extrinsics=Extrinsics((0.0, 0.0, 1.9)), **kw)


def _matte(name: str = "matte", reflectivity: float = 0.5, **kw) -> Material:
    return Material(name, (0.6, 0.5, 0.4), None, reflectivity, **kw)


def _camera_rays_world(camera: CameraSpec, origin_x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Camera-optical directions rotated into the world (ego heading +x, no rotation) and ray origins."""
    dirs, _ = camera_models.unproject(camera, camera_pixel_grid(camera))
    rot, trans = camera.extrinsics.matrix()
    d = (dirs @ rot.T).numpy()
    o = np.broadcast_to(trans.numpy(), d.shape).copy()
    o[..., 0] += origin_x
    return o, d


def test_embree_is_used() -> None:
    world = _world([(_plane_x(10.0), 0)], [_matte()])
    assert trimesh.ray.has_embree
    assert isinstance(world.static_mesh.ray, ray_pyembree.RayMeshIntersector)


def test_camera_distance_to_a_plane_is_analytic() -> None:
    mat = _matte()
    world = _world([(_plane_x(10.0), 0)], [mat])
    cam = _camera()
    gt = render_camera_truth(world, cam, 0.5)
    o, d = _camera_rays_world(cam, np.zeros(1))
    expected = (10.0 - o[..., 0]) / d[..., 0]
    assert gt["distance"].shape == (48, 64) and gt["distance"].dtype == np.float32
    assert np.max(np.abs(gt["distance"] - expected)) < 1e-4
    colour = lit_color(mat, np.zeros((1, 3)), np.array([[-1.0, 0.0, 0.0]]))[0]
    assert np.allclose(gt["rgb"], colour, atol=1e-6)
    assert np.all(gt["ray_time"] == 0.5) and np.all(gt["actor_id"] == -1)


def test_rolling_shutter_rows_see_the_plane_from_where_the_ego_was() -> None:
    times = torch.linspace(0.0, 1.0, 101, dtype=torch.float64)
    ego = Trajectory(times, torch.stack([10.0 * times, 0 * times, 0 * times], 1),
                     torch.tensor([[1.0, 0, 0, 0]], dtype=torch.float64).expand(101, 4))
    world = _world([(_plane_x(30.0), 0)], [_matte()], ego=ego)
    cam = _camera(RollingShutter("top_to_bottom", 0.05))
    gt = render_camera_truth(world, cam, 0.2)
    row_time = 0.2 + (np.arange(48) + 0.5) / 48 * 0.05
    assert np.allclose(gt["ray_time"], row_time[:, None], atol=1e-12)
    o, d = _camera_rays_world(cam, 10.0 * row_time[:, None])
    expected = (30.0 - o[..., 0]) / d[..., 0]
    assert np.max(np.abs(gt["distance"] - expected)) < 1e-4
    first_row_everywhere = (30.0 - o[0, :, 0]) / d[..., 0]  # what a global shutter at t_start would give
    assert np.max(np.abs(gt["distance"] - first_row_everywhere)) > 0.3


def test_sky_and_glass_blending_in_the_camera() -> None:
    wall, glass = _matte("wall"), Material("glass", (0.2, 0.9, 0.9), None, 0.1, camera_transparency=0.75,
                                             lidar_transparency=0.7)
    world = _world([(_plane_x(10.0, 2.0, 1.6), 0), (_plane_x(5.0, 0.5, 1.6), 1)], [wall, glass])
    cam = _camera()
    gt = render_camera_truth(world, cam, 0.0)
    o, d = _camera_rays_world(cam, np.zeros(1))
    hit_at = lambda x, half: np.all(np.abs(o[..., 1:] + (x - o[..., :1]) / d[..., :1] * d[..., 1:]  # noqa: E731
                                           - [0.0, 1.6]) < half, axis=-1)
    through_glass = hit_at(5.0, 0.49) & hit_at(10.0, 1.99)
    wall_only = hit_at(10.0, 1.99) & ~hit_at(5.0, 0.51)
    sky = ~hit_at(10.0, 2.01) & ~hit_at(5.0, 0.51)
    assert through_glass.sum() > 10 and wall_only.sum() > 10 and sky.sum() > 10
    n = np.array([[-1.0, 0.0, 0.0]])
    c_wall, c_glass = lit_color(wall, np.zeros((1, 3)), n)[0], lit_color(glass, np.zeros((1, 3)), n)[0]
    assert np.allclose(gt["rgb"][through_glass], 0.25 * c_glass + 0.75 * c_wall, atol=1e-6)
    assert np.allclose(gt["rgb"][wall_only], c_wall, atol=1e-6)
    assert np.allclose(gt["rgb"][sky], world.sky_color, atol=1e-6) and np.all(np.isinf(gt["distance"][sky]))
    expected = (10.0 - o[..., 0]) / d[..., 0]  # glass alone keeps transmittance 0.75 > 0.5: distance is the wall's
    assert np.max(np.abs(gt["distance"][through_glass] - expected[through_glass])) < 1e-4


def test_lidar_inside_and_facing_a_sphere() -> None:
    radius = 10.0
    inner = trimesh.creation.icosphere(subdivisions=4, radius=radius)
    inner.apply_translation([0.0, 0.0, 1.9])
    world = _world([(inner, 0)], [_matte()])
    lidar = _lidar(16, 512, -40.0, 40.0)
    gt = render_lidar_truth(world, lidar, 0.0)
    sag = radius * (1 - math.cos(np.max(inner.edges_unique_length) / radius))
    assert np.all(np.isfinite(gt["range"]))
    assert gt["range"].min() >= radius - sag - 1e-4 and gt["range"].max() <= radius + 1e-4

    r, centre = 3.0, np.array([15.0, 2.0, 1.9])
    ball = trimesh.creation.icosphere(subdivisions=5, radius=r)
    ball.apply_translation(centre)
    world = _world([(ball, 0)], [_matte()])
    lidar = _lidar(32, 1024, -15.0, 15.0)
    gt = render_lidar_truth(world, lidar, 0.0)
    d = lidar_directions(lidar).numpy()
    rel = centre - np.array([0.0, 0.0, 1.9])
    along = d @ rel
    miss2 = rel @ rel - along ** 2
    expected = along - np.sqrt(np.clip(r * r - miss2, 0, None))
    sag = r * (1 - math.cos(np.max(ball.edges_unique_length) / r))
    core = (miss2 < (0.8 * r) ** 2) & (along > 0)
    assert core.sum() > 50
    assert np.all(np.isfinite(gt["range"][core]))
    assert np.max(np.abs(gt["range"][core] - expected[core])) < sag / 0.6 + 1e-4
    assert np.all(np.isnan(gt["range"][(miss2 > (r + 0.01) ** 2) | (along < 0)]))


def test_lidar_ground_range_intensity_and_point_layout() -> None:
    world = _world([(_ground(), 0)], [_matte(reflectivity=0.6)])
    lidar = _lidar(8, 256, -30.0, 10.0)
    gt = render_lidar_truth(world, lidar, 1.0)
    el = np.array(lidar.elevations)
    down = el < 0
    expected = 1.9 / np.sin(-el[down])
    assert np.allclose(gt["range"][down], expected[:, None], atol=1e-4)
    assert np.allclose(gt["intensity"][down], 0.6 * np.sin(-el[down])[:, None], atol=1e-5)
    assert np.all(np.isnan(gt["range"][~down])) and np.all(gt["intensity"][~down] == 0)
    # unorganised returns: ordered by column then beam, consistent with the organised arrays
    beam, col = gt["point_beam"], gt["point_column"]
    key = col * lidar.beams + beam
    assert np.all(np.diff(key) > 0) and len(key) == np.isfinite(gt["range"]).sum()
    assert np.allclose(gt["distance"], gt["range"][beam, col]) and np.allclose(
        np.linalg.norm(gt["points"], axis=1), gt["distance"], atol=1e-4)
    assert np.allclose(gt["elevation"], el[beam], atol=1e-6)
    az = lidar.seam_azimuth + 2 * np.pi * (col + 0.5) / lidar.columns
    assert np.allclose(np.cos(gt["azimuth"]), np.cos(az), atol=1e-6) and np.allclose(
        np.sin(gt["azimuth"]), np.sin(az), atol=1e-6)
    assert np.allclose(gt["point_time"], 1.0 + (col + 0.5) / (lidar.columns * lidar.spin_rate_hz))
    assert np.allclose(gt["ray_time"][0], 1.0 + (np.arange(256) + 0.5) / 2560)
    assert np.allclose(gt["point_intensity"], gt["intensity"][beam, col])
    assert gt["points"].dtype == np.float32 and gt["point_time"].dtype == np.float64


def test_lidar_points_are_in_the_sensor_frame_at_their_own_firing_time() -> None:
    room = trimesh.creation.box(extents=(40.0, 40.0, 10.0))
    room.apply_translation([0.0, 0.0, 5.0])
    times = torch.linspace(0.0, 1.0, 101, dtype=torch.float64)
    yaw = 1.5 * times
    ego = Trajectory(times, torch.stack([6.0 * times, 2.0 * times, 0 * times], 1),
                     torch.stack([torch.cos(yaw / 2), 0 * yaw, 0 * yaw, torch.sin(yaw / 2)], 1))
    world = _world([(room, 0)], [_matte()], ego=ego)
    lidar = _lidar(8, 512, -30.0, 30.0)
    gt = render_lidar_truth(world, lidar, 0.3)
    rot, pos = world.ego_poses_at(torch.as_tensor(gt["point_time"]))
    sensor = gt["points"].astype(np.float64) + np.array([0.0, 0.0, 1.9])
    world_pts = np.einsum("nij,nj->ni", rot.numpy(), sensor) + pos.numpy()
    planes = np.abs(np.stack([world_pts[:, 0] - 20, world_pts[:, 0] + 20, world_pts[:, 1] - 20,
                              world_pts[:, 1] + 20, world_pts[:, 2], world_pts[:, 2] - 10], 1))
    assert len(world_pts) == lidar.beams * lidar.columns
    assert planes.min(1).max() < 1e-3
    rot0, pos0 = world.ego_poses_at(torch.tensor([0.3]))  # the sweep-start pose would put points off the walls
    wrong = sensor @ rot0[0].numpy().T + pos0[0].numpy()
    off = np.abs(np.stack([wrong[:, 0] - 20, wrong[:, 0] + 20, wrong[:, 1] - 20, wrong[:, 1] + 20,
                           wrong[:, 2], wrong[:, 2] - 10], 1)).min(1)
    assert off.max() > 0.1


def test_box_moving_across_the_seam_is_seen_where_it_is_at_each_firing() -> None:
    box = trimesh.creation.box(extents=(2.0, 4.0, 2.0))
    speed = 40.0
    times = torch.tensor([-1.0, 1.0], dtype=torch.float64)
    traj = Trajectory(times, torch.tensor([[-10.0, -1.5 - speed, 1.9], [-10.0, -1.5 + speed, 1.9]],
                                          dtype=torch.float64), torch.tensor([[1.0, 0, 0, 0]] * 2, dtype=torch.float64))
    actor = WorldActor(7, "vehicle", (2.0, 4.0, 2.0), box, np.zeros(len(box.faces), dtype=np.int64), traj)
    world = _world([(_ground(), 0)], [_matte()], actors=[actor])
    lidar = _lidar(8, 1024, -5.0, 5.0)
    gt = render_lidar_truth(world, lidar, 0.0)
    on_box = gt["actor_id"][gt["point_beam"], gt["point_column"]] == 7
    pts, t, col = gt["points"][on_box].astype(np.float64), gt["point_time"][on_box], gt["point_column"][on_box]
    world_pts = pts + np.array([0.0, 0.0, 1.9])
    local = world_pts - np.stack([np.full_like(t, -10.0), -1.5 + speed * t, np.full_like(t, 1.9)], 1)
    assert np.max(np.abs(np.max(np.abs(local) / [1.0, 2.0, 1.0], axis=1) - 1.0)) < 1e-4  # on the box at time t
    assert (col < 50).any() and (col > 970).any()  # seen at both ends of the sweep ...
    # ... where the box had moved to (y in [0.5, 4.5] at the end), not where it was at t_start (y in [-3.5, 0.5])
    assert np.all(world_pts[col > 970, 1] > 0.4) and np.median(world_pts[col > 970, 1]) > 1.5
    assert np.all(world_pts[col < 50, 1] < 0.5)


def test_glass_dropout_and_range_limits_in_the_lidar() -> None:
    wall = _matte("wall", dropout=0.1)
    glass = Material("glass", (0.5, 0.7, 0.7), None, 0.1, camera_transparency=0.75, lidar_transparency=0.7)
    world = _world([(_plane_x(20.0), 0), (_plane_x(10.0), 1)], [wall, glass])
    lidar = _lidar(16, 1024, -10.0, 10.0)
    gt = render_lidar_truth(world, lidar, 0.0, seed=3)
    d = lidar_directions(lidar).numpy()
    forward = d[..., 0] > 0.3
    at_glass = np.abs(gt["range"] - 10.0 / d[..., 0]) < 1e-4
    at_wall = np.abs(gt["range"] - 20.0 / d[..., 0]) < 1e-4
    missing = np.isnan(gt["range"])
    n = forward.sum()
    assert np.all((at_glass | at_wall | missing)[forward]) and np.all(missing[d[..., 0] < 0])
    assert abs(at_glass[forward].sum() / n - 0.3) < 0.04
    assert abs(missing[forward].sum() / n - 0.7 * 0.1) < 0.03  # wall dropout among beams through the glass
    again = render_lidar_truth(world, lidar, 0.0, seed=3)
    other = render_lidar_truth(world, lidar, 0.0, seed=4)
    assert np.array_equal(np.isnan(again["range"]), missing)
    assert not np.array_equal(np.isnan(other["range"]), missing)

    near_far = _world([(_plane_x(0.3, 0.5, 1.9), 0)], [_matte()])
    gt = render_lidar_truth(near_far, _lidar(4, 64, -5.0, 5.0, min_range=1.0), 0.0)
    assert np.all(np.isnan(gt["range"])) and len(gt["points"]) == 0
    gt = render_lidar_truth(_world([(_plane_x(150.0), 0)], [_matte()]), _lidar(4, 64, -5.0, 5.0), 0.0)
    assert np.all(np.isnan(gt["range"]))


def test_small_world_capture_smoke() -> None:
    world = generate_world("small", seed=0, duration=3.0)
    rig = default_rig("small")
    cam = render_camera_truth(world, rig.cameras[0], 2.0)
    assert cam["rgb"].shape == (480, 640, 3) and cam["rgb"].dtype == np.float32
    assert cam["rgb"].min() >= 0 and cam["rgb"].max() <= 1
    assert (cam["actor_id"] >= 0).any() and np.isinf(cam["distance"]).any() and np.isfinite(cam["distance"]).any()
    assert cam["ray_time"][-1, 0] - cam["ray_time"][0, 0] == pytest.approx(0.03 * 479 / 480)
    lid = render_lidar_truth(world, rig.lidars[0], 2.0, seed=1)
    assert lid["range"].shape == (32, 1024) and np.isfinite(lid["range"]).mean() > 0.8
    ids = lid["actor_id"][np.isfinite(lid["range"])]
    assert len(set(ids[ids >= 0].tolist())) >= 3
