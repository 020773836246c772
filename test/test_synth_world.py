"""Synthetic world generator: determinism, required content, ego drive, no collisions, save/load, rig."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from scipy.spatial import ConvexHull

from xsim_render.errors import InputError
from xsim_render.synth import presets
from xsim_render.synth.traffic import LAUNCH_S
from xsim_render.synth.world import CAR_SIZE, ROAD_HALF_WIDTH, World, generate_world, load_world, save_world

EGO_BOX = (-1.0, 3.7, 0.95)  # base_link footprint: rear, front (m along x), half width


@pytest.fixture(scope="module")
def small() -> World:
    return generate_world("small", seed=0, duration=3.0)


def _same_world(a: World, b: World) -> bool:
    same = (np.array_equal(a.static_mesh.vertices, b.static_mesh.vertices)
            and np.array_equal(a.static_mesh.faces, b.static_mesh.faces)
            and np.array_equal(a.static_face_material, b.static_face_material)
            and torch.equal(a.ego_trajectory.positions, b.ego_trajectory.positions)
            and torch.equal(a.ego_trajectory.rotations, b.ego_trajectory.rotations)
            and torch.equal(a.ego_trajectory.times, b.ego_trajectory.times)
            and len(a.actors) == len(b.actors))
    for x, y in zip(a.actors, b.actors):
        same = same and x.id == y.id and x.category == y.category and x.size == y.size
        same = same and np.array_equal(x.mesh.vertices, y.mesh.vertices) and np.array_equal(x.mesh.faces, y.mesh.faces)
        same = same and np.array_equal(x.face_material, y.face_material)
        for f in ("times", "positions", "rotations"):
            same = same and torch.equal(getattr(x.trajectory, f), getattr(y.trajectory, f))
    return same


def test_same_seed_same_world_other_seed_differs(small: World) -> None:
    again = generate_world("small", seed=0, duration=3.0)
    assert _same_world(small, again)
    other = generate_world("small", seed=1, duration=3.0)
    assert not np.array_equal(small.static_mesh.vertices, other.static_mesh.vertices)
    assert not torch.equal(small.ego_trajectory.positions, other.ego_trajectory.positions)


def test_world_has_every_required_element(small: World) -> None:
    names = {m.name: m for m in small.materials}
    used = {small.materials[i].name for i in np.unique(small.static_face_material)}
    for material in ("road", "lane_marking", "sidewalk", "pole", "glass"):
        assert material in used, material
    assert any(n.startswith("building") for n in used)
    objects = {re.sub(r"_\d+$", "", small.object_names[i]) for i in np.unique(small.static_face_object)}
    for obj in ("road", "lane_marking", "sidewalk", "building", "pole", "parked_car", "glass", "bus_shelter", "tree",
                "bin", "forecourt"):
        assert obj in objects, obj
    glass = names["glass"]
    assert 0 < glass.camera_transparency < 1 and 0 < glass.lidar_transparency < 1
    assert all(0 <= m.dropout <= 0.02 and 0 <= m.reflectivity <= 1 for m in small.materials)
    categories = {}
    for a in small.actors:
        p = a.trajectory.positions
        categories.setdefault(a.category, []).append(float((p[-1] - p[0]).norm()))
        assert a.face_material.shape == (len(a.mesh.faces),)
        lo, hi = a.mesh.bounds
        assert np.all(lo >= -np.array(a.size) / 2 - 1e-6) and np.all(hi <= np.array(a.size) / 2 + 1e-6)
    assert max(categories["vehicle"]) > 10.0 and max(categories["pedestrian"]) > 2.0
    assert small.static_face_material.shape == (len(small.static_mesh.faces),)
    assert small.static_mesh.is_empty is False


def test_street_is_not_a_corridor(small: World) -> None:
    """What LiDAR odometry needs to see motion along a street: facades with relief (pilasters), fronts at
    different setbacks, and objects standing on the sidewalks."""
    mesh, names = small.static_mesh, small.object_names
    fronts, relief = [], []
    for k, name in enumerate(names):
        if not name.startswith("building_"):
            continue
        faces = small.static_face_object == k
        normals = mesh.face_normals[faces]
        towards_main_road = np.abs(normals[:, 1]) > 0.999  # walls facing along y: main-road rows
        if not towards_main_road.any():
            continue
        centers = mesh.triangles_center[faces][towards_main_road]
        facing = np.sign(normals[towards_main_road, 1]) == -np.sign(centers[:, 1])  # facing the road
        offsets = np.unique(np.abs(centers[facing, 1]).round(3))
        if len(offsets):
            fronts.append(offsets.min())
            relief.append(len(offsets))
    assert len(fronts) >= 6
    assert max(fronts) - min(fronts) > 1.5          # setbacks vary
    assert np.mean(np.array(relief) >= 2) > 0.8     # most facades: wall plane + pilaster fronts
    stands = [n for n in names if re.match(r"(tree|bin|pole)_\d+$", n)]
    assert len(stands) >= 10


def test_textures_are_deterministic_and_vary() -> None:
    from xsim_render.synth.materials import standard_materials

    mats = {m.name: m for m in standard_materials()}
    pts = np.random.default_rng(0).uniform(-20, 20, (500, 3))
    for name in ("building_brick", "sidewalk", "pedestrian"):
        c = mats[name].color_at(pts)
        assert c.shape == (500, 3) and np.all((c >= 0) & (c <= 1))
        assert np.array_equal(c, mats[name].color_at(pts)) and c.std(0).max() > 0.01
    assert np.allclose(mats["pole"].color_at(pts), mats["pole"].albedo)


@pytest.mark.parametrize("preset,duration", [("small", 3.0), ("default", 8.0)])
def test_ego_drive_speed_turn_and_road(preset: str, duration: float) -> None:
    world = generate_world(preset, seed=2, duration=duration)
    traj = world.ego_trajectory
    t, p = traj.times.numpy(), traj.positions.numpy()
    assert t[0] == 0.0 and abs(t[-1] - duration) < 1e-9 and np.all(np.diff(t) <= 0.02 + 1e-9)
    speed = np.linalg.norm(np.diff(p, axis=0), axis=1) / np.diff(t)
    mid = 0.5 * (t[1:] + t[:-1])
    # a standing start, a smooth launch (no more than 6 m/s^2), then 5-15 m/s once launched
    assert speed[0] < 0.05 and speed.max() <= 15.0
    assert np.abs(np.diff(speed) / np.diff(mid)).max() < 6.0
    assert np.all(speed[mid > LAUNCH_S] >= 5.0)
    rot, _, _ = traj.poses_at(traj.times)
    yaw = np.unwrap(np.arctan2(rot[:, 1, 0].numpy(), rot[:, 0, 0].numpy()))
    # the whole turn on long drives; a short drive (standing start) covers most of it
    assert yaw[-1] - yaw[0] > math.radians(80 if duration > 5 else 65)
    if duration > 5:  # straight segments before and after the turn
        assert abs(yaw[1] - yaw[0]) < 1e-3 and abs(yaw[-1] - yaw[-2]) < 1e-3
    # base_link and the body corners stay on the road surface (main road |y| < 6, side road |x| < 6, y > 0)
    for fx in (EGO_BOX[0], EGO_BOX[1]):
        for sy in (-EGO_BOX[2], EGO_BOX[2]):
            corner = p + rot.numpy() @ np.array([fx, sy, 0.0])
            on_main = np.abs(corner[:, 1]) < ROAD_HALF_WIDTH
            on_side = (np.abs(corner[:, 0]) < ROAD_HALF_WIDTH) & (corner[:, 1] > 0)
            assert np.all(on_main | on_side)
    # velocity from ego_motion agrees with the keyframes and the pose with the trajectory
    m = world.ego_motion(duration / 2)
    r, q, _ = traj.poses_at(torch.tensor([duration / 2], dtype=torch.float64))
    assert torch.allclose(m.rotation, r[0], atol=1e-12) and torch.allclose(m.position, q[0], atol=1e-12)
    assert (5.0 if duration / 2 > LAUNCH_S else 2.0) <= float(m.linear_velocity.norm()) <= 15.0
    late = world.ego_motion(duration + 0.05)
    assert torch.allclose(late.position, world.ego_motion(duration).position + 0.05 * late.linear_velocity, atol=1e-9)


def _hull(points_xy: np.ndarray) -> np.ndarray:
    return ConvexHull(points_xy).equations


def _inside(hull_eq: np.ndarray, pts: np.ndarray, margin: float) -> np.ndarray:
    return np.all(pts @ hull_eq[:, :2].T + hull_eq[:, 2] < -margin, axis=1)


def _rect_points(rot: np.ndarray, pos: np.ndarray, x0: float, x1: float, half_w: float) -> np.ndarray:
    gx, gy = np.meshgrid(np.linspace(x0, x1, 12), np.linspace(-half_w, half_w, 5))
    local = np.stack([gx.ravel(), gy.ravel(), np.zeros(gx.size)], 1)
    return (local @ rot.T + pos)[:, :2]


FLAT_OBJECTS = ("road", "lane_marking", "sidewalk", "forecourt", "ground")


@pytest.mark.parametrize("preset,seed,duration", [("small", 0, 3.0), ("default", 3, 6.0), ("default", 1, 10.0)])
def test_no_collisions_between_ego_actors_and_obstacles(preset: str, seed: int, duration: float) -> None:
    """Ego, actors, parked cars, buildings, poles, tree trunks, bins, the shelter: no footprints overlap
    (obstacles by the footprint of their parts below 2 m: tree crowns and lamp arms hang above every body)."""
    world = generate_world(preset, seed=seed, duration=duration)
    parked, names = [], []
    for i, name in enumerate(world.object_names):
        if name and not name.startswith(FLAT_OBJECTS):
            faces = world.static_mesh.faces[world.static_face_object == i]
            vertices = world.static_mesh.vertices[np.unique(faces)]
            low = vertices[vertices[:, 2] < 2.0][:, :2]
            if len(low) >= 3:
                parked.append(_hull(low))
                names.append(name)
    assert any(n.startswith("tree") for n in names) and any(n.startswith("parked_car") for n in names)
    for t in np.arange(0.0, duration + 1e-9, 0.05):
        rot, pos = (x[0].numpy() for x in world.ego_poses_at(torch.tensor([t])))
        bodies = [("ego", _rect_points(rot, pos, EGO_BOX[0], EGO_BOX[1], EGO_BOX[2]),
                   _hull(_rect_points(rot, pos, EGO_BOX[0], EGO_BOX[1], EGO_BOX[2])))]
        for a in world.actors:
            r, p, exists = a.trajectory.poses_at(torch.tensor([t], dtype=torch.float64))
            if bool(exists[0]):
                pts = _rect_points(r[0].numpy(), p[0].numpy(), -a.size[0] / 2, a.size[0] / 2, a.size[1] / 2)
                bodies.append((f"actor {a.id}", pts, _hull(pts)))
        for i, (name, pts, _) in enumerate(bodies):
            for k, hull in enumerate(parked):
                assert not _inside(hull, pts, 0.05).any(), f"{name} hits {names[k]} at t={t}"
            for j, (other, _, hull) in enumerate(bodies):
                if i != j:
                    assert not _inside(hull, pts, 0.05).any(), f"{name} hits {other} at t={t}"


def test_actor_motions_and_existence(small: World) -> None:
    motions = small.actor_motions(1.0)
    assert set(motions) == {a.id for a in small.actors}
    car = next(a for a in small.actors if a.id == 2)
    m = motions[2]
    r, p, _ = car.trajectory.poses_at(torch.tensor([1.0, 1.01], dtype=torch.float64))
    assert torch.allclose(m.position, p[0], atol=1e-12)
    assert torch.allclose(m.linear_velocity, (p[1] - p[0]) / 0.01, atol=1e-6)
    assert small.actor_motions(small.duration + 5.0) == {}
    assert abs(car.trajectory.positions[0, 2].item() - CAR_SIZE[2] / 2) < 1e-12  # box centre above the road


def test_save_load_roundtrip(small: World, tmp_path) -> None:
    save_world(small, tmp_path / "world")
    loaded = load_world(tmp_path / "world")
    assert _same_world(small, loaded)
    assert loaded.materials == small.materials and loaded.object_names == small.object_names
    assert np.array_equal(loaded.static_face_object, small.static_face_object)
    assert (loaded.preset, loaded.seed, loaded.duration, loaded.sky_color) == \
        (small.preset, small.seed, small.duration, small.sky_color)
    assert _same_world(small, load_world(tmp_path))  # the parent of world/ works too
    assert not any(p.suffix in (".pkl", ".pickle") for p in (tmp_path / "world").iterdir())
    save_world(generate_world("small", seed=5, duration=1.0), tmp_path / "world")  # replaced whole
    assert load_world(tmp_path / "world").seed == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["world"]


def test_load_errors_name_the_file(tmp_path) -> None:
    (tmp_path / "world.yaml").write_text("format: something-else\n")
    with pytest.raises(InputError, match="world.yaml"):
        load_world(tmp_path)
    with pytest.raises(InputError, match="world.yaml"):
        load_world(tmp_path / "missing")
    with pytest.raises(InputError, match="preset"):
        generate_world("huge")


def test_default_rig() -> None:
    for preset in presets.PRESETS:
        rig = presets.default_rig(preset)
        cam, lidar = rig.sensor("front"), rig.sensor("top")
        assert (cam.model, cam.width, cam.height) == ("pinhole", 640, 480)
        assert cam.rolling_shutter.direction == "top_to_bottom" and 0.02 <= cam.rolling_shutter.readout_time <= 0.04
        rot, trans = cam.extrinsics.matrix()
        assert torch.allclose(rot[:, 2], torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))  # optical z = forward
        assert torch.allclose(rot[:, 1], torch.tensor([0.0, 0.0, -1.0], dtype=torch.float64))  # optical y = down
        assert trans.tolist() == [1.5, 0.0, 1.6]
        el = np.degrees(np.array(lidar.elevations))
        assert lidar.beams == 32 and lidar.columns == 1024 and lidar.spin_rate_hz == 10.0
        assert np.all(np.diff(el) > 0) and abs(el[0] + 25) < 1e-3 and abs(el[-1] - 15) < 1e-3
        gaps = np.diff(el)
        assert gaps[np.argmin(np.abs(el[:-1]))] < 0.75 and gaps.max() > 2.5 * gaps.min()  # denser near the horizon
        assert list(lidar.extrinsics.translation) == [0.0, 0.0, 1.9]
