"""Gaussian twin: surfels on the surfaces, flat along the normals, opacities/colours from the materials, actors in
their frames, and (with the project's brute-force integrator) opaque interiors, exact median depth, calibrated
glass and edges at the mesh's edges; a tiny twin matches its ground truth image."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import trimesh

from xsim_render.geometry import quaternion
from xsim_render.raster.brute_force import integrate
from xsim_render.scene.actors import Trajectory
from xsim_render.sensors import camera_models
from xsim_render.sensors.rays import camera_pixel_grid
from xsim_render.sensors.rig import CameraSpec, Extrinsics
from xsim_render.synth import twin
from xsim_render.synth.groundtruth import render_camera_truth
from xsim_render.synth.materials import Material
from xsim_render.synth.world import World, WorldActor, generate_world


@pytest.fixture(scope="module")
def small() -> tuple[World, object]:
    world = generate_world("small", seed=0, duration=3.0)
    return world, twin.world_to_gaussians(world)


def _on_surface(mesh: trimesh.Trimesh, means: np.ndarray, normals: np.ndarray, eps: float = 0.004):
    """Distance from mean + eps * n back along -n to the mesh (eps when the mean lies on a face), and that face."""
    origins = means + eps * normals
    face = np.asarray(mesh.ray.intersects_first(origins, -normals))
    hit = face >= 0
    dist = np.full(len(means), np.inf)
    n = mesh.face_normals[face[hit]]
    dist[hit] = np.einsum("ij,ij->i", origins[hit] - mesh.triangles[face[hit], 0], n) / np.einsum(
        "ij,ij->i", normals[hit], n)
    return np.abs(dist), face


def test_counts_determinism_and_attributes(small) -> None:
    world, scene = small
    assert 10_000 < len(scene) < 60_000
    again = twin.world_to_gaussians(world)
    for name in scene.TENSOR_FIELDS:
        a, b = getattr(scene, name), getattr(again, name)
        assert (a is None and b is None) or torch.equal(a, b)
    assert scene.means.dtype == torch.float32 and scene.actor_ids.dtype == torch.int64
    assert torch.allclose(scene.sky.color, torch.tensor(world.sky_color, dtype=torch.float32))
    reflect = {round(m.reflectivity, 6) for m in world.materials}
    assert {round(v, 6) for v in scene.intensity.tolist()} <= reflect
    assert scene.colors.min() >= 0 and scene.colors.max() <= 1
    scales = scene.scales()
    assert torch.allclose(scales[:, 2], torch.tensor(twin.NORMAL_SCALE))
    assert scales[:, :2].max() <= twin.K_TANGENT * world_spacing(world) + 1e-6


def world_spacing(world: World) -> float:
    from xsim_render.synth.presets import STREETS

    return STREETS[world.preset].twin_spacing


def test_static_surfels_lie_on_the_mesh_with_their_normal(small) -> None:
    world, scene = small
    static = (scene.actor_ids < 0).nonzero().squeeze(1)
    pick = static[torch.randperm(len(static), generator=torch.Generator().manual_seed(0))[:4000]]
    means = scene.means[pick].double().numpy()
    normals = scene.rotations()[pick][:, :, 2].double().numpy()
    dist, face = _on_surface(world.static_mesh, means, normals)
    assert np.all(np.abs(dist - 0.004) < 1e-4)
    assert np.all(np.abs(np.einsum("ij,ij->i", world.static_mesh.face_normals[face], normals)) > 1 - 1e-5)
    # roofs and backs of buildings (facing away from every road) carry no surfels
    high_up = (normals[:, 2] > 0.999) & (means[:, 2] > 4.5)  # flat roofs (tree crowns are tilted facets)
    assert not high_up.any()


def test_actor_surfels_in_actor_frames(small) -> None:
    world, scene = small
    assert set(scene.actors) == {a.id for a in world.actors}
    for a in world.actors:
        sel = scene.actor_ids == a.id
        assert sel.sum() > 100
        actor = scene.actors[a.id]
        assert actor.category == a.category and torch.allclose(actor.size, torch.tensor(a.size))
        assert torch.equal(actor.trajectory.positions, a.trajectory.positions)  # float64, exact (epoch-safe)
        means = scene.means[sel].double().numpy()
        assert np.all(np.abs(means) <= np.array(a.size) / 2 + 1e-5)  # actor frame: inside the actor's box
        dist, _ = _on_surface(a.mesh, means, scene.rotations()[sel][:, :, 2].double().numpy())
        assert np.all(np.abs(dist - 0.004) < 1e-4)


def test_opacities_come_from_the_materials(small) -> None:
    world, scene = small
    glass = next(m for m in world.materials if m.name == "glass")
    sc, sl = scene.sigma_camera(), scene.sigma_lidar()
    opaque = torch.isclose(sc, torch.tensor(twin.OPAQUE_SIGMA))
    clear = torch.isclose(sc, torch.tensor(twin.calibrated_sigma(1 - glass.camera_transparency)))
    assert opaque.sum() > 0.9 * len(scene) and clear.sum() > 20 and bool((opaque | clear).all())
    assert torch.allclose(sl[clear], torch.tensor(twin.calibrated_sigma(1 - glass.lidar_transparency)))
    assert torch.allclose(sl[opaque], sc[opaque])


def _tiny_world() -> World:
    """A textured ground square, an opaque wall (x = 8) and a glass pane (x = 4) half covering it."""
    ground = trimesh.Trimesh([[-2, -6, 0], [14, -6, 0], [14, 6, 0], [-2, 6, 0]], [[0, 1, 2], [0, 2, 3]], process=False)
    wall = trimesh.Trimesh([[8, -3, 0], [8, 3, 0], [8, 3, 4], [8, -3, 4]], [[0, 2, 1], [0, 3, 2]], process=False)
    pane = trimesh.Trimesh([[4, -1, 0.5], [4, 1, 0.5], [4, 1, 2.5], [4, -1, 2.5]], [[0, 2, 1], [0, 3, 2]],
                           process=False)
    mesh = trimesh.util.concatenate([ground, wall, pane])
    mesh = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False)
    materials = [Material("floor", (0.5, 0.5, 0.45), "checker", 0.3, texture_scale=2.0),
                 Material("wall", (0.7, 0.35, 0.25), None, 0.6),
                 Material("glass", (0.4, 0.8, 0.8), None, 0.1, camera_transparency=0.75, lidar_transparency=0.7)]
    ego = Trajectory(torch.tensor([0.0, 1.0], dtype=torch.float64), torch.zeros(2, 3, dtype=torch.float64),
                     torch.tensor([[1.0, 0, 0, 0]] * 2, dtype=torch.float64))
    box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    actor = WorldActor(3, "vehicle", (1.0, 1.0, 1.0), box, np.ones(len(box.faces), dtype=np.int64),
                       Trajectory(torch.tensor([0.0], dtype=torch.float64),
                                  torch.tensor([[6.0, 2.0, 0.5]], dtype=torch.float64),
                                  torch.tensor([[math.cos(0.3), 0, 0, math.sin(0.3)]], dtype=torch.float64)))
    return World(mesh, np.array([0, 0, 1, 1, 2, 2]), materials, [actor], ego, 1.0, 0, "test",
                 static_face_object=np.array([0, 0, 1, 1, 2, 2]), object_names=["floor", "wall", "glass"])


def _integrate(scene, origins: torch.Tensor, dirs: torch.Tensor, lidar: bool = False) -> dict[str, torch.Tensor]:
    """Brute-force render of rays at t = 0 with every actor at its (single keyframe) pose."""
    bodies = [None] + [scene.actors[i].trajectory.motion_at(0.0).to(torch.float64) for i in sorted(scene.actors)]
    frame = torch.zeros(len(scene), dtype=torch.long)
    for f, i in enumerate(sorted(scene.actors), start=1):
        frame[scene.actor_ids == i] = f
    sigma = (scene.sigma_lidar() if lidar else scene.sigma_camera()).double()
    return integrate(origins, dirs, torch.zeros(len(origins), dtype=torch.float64), scene.means.double(),
                     scene.rotations().double(), scene.scales().double(), sigma, scene.colors.double(), bodies, frame)


def test_wall_interior_opaque_exact_depth_and_edges_on_the_mesh_edges() -> None:
    world = _tiny_world()
    scene = twin.world_to_gaussians(world, spacing=0.4)
    wall = scene.subset(torch.isclose(scene.means[:, 0], torch.tensor(8.0)) & (scene.actor_ids < 0))
    rng = np.random.default_rng(1)
    # rays from (0, 0, 2) towards random points of the wall interior (more than 0.3 m from its edges)
    targets = np.stack([np.full(400, 8.0), rng.uniform(-2.7, 2.7, 400), rng.uniform(0.3, 3.7, 400)], 1)
    origin = np.array([0.0, 0.0, 2.0])
    dirs = torch.tensor((targets - origin) / np.linalg.norm(targets - origin, axis=1, keepdims=True))
    out = _integrate(wall, torch.tensor(origin).expand(400, 3), dirs)
    expected = torch.tensor(np.linalg.norm(targets - origin, axis=1))
    assert out["alpha"].min() > 0.95
    assert (out["distance_median"] - expected).abs().max() < 2e-3
    # across the wall's vertical edge at y = 3: median returns 5 cm inside the edge, none 6 cm beyond it
    for y, hit in ((2.95, True), (3.06, False)):
        zs = np.linspace(0.5, 3.5, 50)
        pts = np.stack([np.full(50, 8.0), np.full(50, y), zs], 1)
        d = torch.tensor((pts - origin) / np.linalg.norm(pts - origin, axis=1, keepdims=True))
        med = _integrate(wall, torch.tensor(origin).expand(50, 3), d)["distance_median"]
        assert bool(torch.isfinite(med).all()) if hit else bool(torch.isnan(med).all())


def test_glass_alpha_is_calibrated_for_camera_and_lidar() -> None:
    world = _tiny_world()
    scene = twin.world_to_gaussians(world, spacing=0.4)
    pane = scene.subset(torch.isclose(scene.means[:, 0], torch.tensor(4.0)))
    rng = np.random.default_rng(2)
    targets = np.stack([np.full(300, 4.0), rng.uniform(-0.6, 0.6, 300), rng.uniform(0.9, 2.1, 300)], 1)
    origin = np.array([0.0, 0.0, 1.5])
    dirs = torch.tensor((targets - origin) / np.linalg.norm(targets - origin, axis=1, keepdims=True))
    cam = _integrate(pane, torch.tensor(origin).expand(300, 3), dirs)
    lid = _integrate(pane, torch.tensor(origin).expand(300, 3), dirs, lidar=True)
    assert abs(float(cam["alpha"].mean()) - 0.25) < 0.03 and abs(float(lid["alpha"].mean()) - 0.3) < 0.03
    assert bool(torch.isnan(lid["distance_median"]).all())  # a LiDAR median passes through the glass


def test_tiny_twin_image_matches_its_ground_truth() -> None:
    world = _tiny_world()
    scene = twin.world_to_gaussians(world, spacing=0.8)
    camera = CameraSpec("cam", "pinhole", 40, 30, 24.0, 24.0, 20.0, 15.0,
                        extrinsics=Extrinsics((0.0, 0.0, 1.5), (0.5, -0.5, 0.5, -0.5)))
    truth = render_camera_truth(world, camera, 0.0)
    dirs, _ = camera_models.unproject(camera, camera_pixel_grid(camera))
    rot, trans = camera.extrinsics.matrix()
    d = (dirs.reshape(-1, 3) @ rot.T).double()
    out = _integrate(scene, trans.expand(len(d), 3), d)
    rgb = out["value"] + (1 - out["alpha"])[:, None] * torch.tensor(world.sky_color, dtype=torch.float64)
    mse = float(((rgb.reshape(30, 40, 3).numpy() - truth["rgb"]) ** 2).mean())
    assert 10 * math.log10(1 / mse) > 24.0  # 26.1 dB: a 40x30 wide-angle view of near objects is mostly edges
    med = out["distance_median"].reshape(30, 40).numpy()
    both = np.isfinite(med) & np.isfinite(truth["distance"])
    assert np.mean(np.isfinite(med) == np.isfinite(truth["distance"])) > 0.97
    assert np.median(np.abs(med[both] - truth["distance"][both])) < 0.01


def test_quaternions_align_local_z_with_the_normal() -> None:
    world = _tiny_world()
    scene = twin.world_to_gaussians(world, spacing=0.4)
    z = quaternion.to_matrix(scene.quats)[:, :, 2]
    floor = scene.means[:, 2].abs() < 1e-6
    assert torch.allclose(z[floor].abs(), torch.tensor([0.0, 0.0, 1.0]).expand(int(floor.sum()), 3), atol=1e-6)
    with pytest.raises(ValueError):
        twin.world_to_gaussians(world, spacing=0.0)
