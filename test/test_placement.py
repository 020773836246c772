"""Placing a scene in the map (world_from_scene), map-scale PLY and native files, epoch trajectory times."""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch
import yaml
from _scenes import F64, brute_force, camera_rig, ego_motion, lidar_rig, random_scene

from xsim_render.errors import InputError
from xsim_render.motion import RigidMotion
from xsim_render.render import render_camera, render_lidar
from xsim_render.scene import Actor, Trajectory
from xsim_render.scene.io import load_scene, save_scene
from xsim_render.scene.placement import Placement, parse_placement
from xsim_render.scene.ply import load_ply, save_ply
from xsim_render.sensors.rig import Rig

EPOCH = 1.7e9
PLACE = Placement.from_values((512345.25, 5412345.75, 38.5), (math.cos(0.35), 0.0, 0.0, math.sin(0.35)))


def placed_motion(p: Placement, m: RigidMotion) -> RigidMotion:
    """A world motion of the unplaced scenario carried rigidly by p (written out, not via Placement.motion)."""
    r = p.rotation
    return RigidMotion(r @ m.rotation, r @ m.position + p.translation, r @ m.linear_velocity,
                       r @ m.angular_velocity, m.time)


@pytest.mark.parametrize("dtype,tol", [(F64, 1e-8), (torch.float32, 2e-4)], ids=["float64", "float32"])
def test_placement_moves_the_whole_scenario_rigidly(dtype, tol):
    """Scene at the origin vs the same scene placed in a UTM frame (rotated too), the ego carried along:
    the images are the same, SH view dependence and actor trajectories included."""
    scene = random_scene(60, seed=4, n_actor=20, sh_degree=2)
    cam = camera_rig("opencv", readout=0.05)
    ego = ego_motion(True)
    here = render_camera(scene.to(dtype), cam, ego, 0.02)
    there = render_camera(replace(scene, world_from_scene=PLACE).to(dtype), cam, placed_motion(PLACE, ego), 0.02)
    assert here["alpha"].max() > 0.5
    for key in ("rgb", "alpha", "distance"):
        assert (here[key].double() - there[key].double()).abs().max() < tol, key
    expected_origin = here["ray_origin"] @ PLACE.rotation.T + PLACE.translation
    assert (there["ray_origin"] - expected_origin).abs().max() < (1e-8 if dtype == F64 else 1e-4)


def test_placement_lidar_against_brute_force():
    """A placed scene equals the brute force on the same Gaussians written out in world coordinates."""
    scene = random_scene(80, seed=9, centre=(0.0, 0.0, 1.5), spread=(12.0, 12.0, 1.5))
    lidar = lidar_rig(spin="cw", seam=1.0)
    world = replace(scene, means=PLACE.points(scene.means),
                    quats=_rotate_quats(scene.quats, PLACE.rotation_wxyz))
    ego = placed_motion(PLACE, ego_motion(True))
    out = render_lidar(replace(scene, world_from_scene=PLACE).to(torch.float32), lidar, ego, 0.03)
    ref, _ = brute_force(world, lidar, ego, 0.03, lidar=True)
    assert torch.isfinite(out["range_median"]).sum() > 150
    assert (out["alpha"].double() - ref["alpha"]).abs().max() < 1e-4
    assert (out["range_median"].double() - ref["distance_median"]).nan_to_num().abs().max() < 1e-4


def _rotate_quats(q, r_wxyz):
    from xsim_render.geometry import quaternion

    return quaternion.multiply(r_wxyz.expand_as(q), quaternion.normalize(q))


def test_map_scale_ply_renders_like_its_brute_force(tmp_path):
    """A PLY whose means are map coordinates holds them in float32; the render in float32 matches the float64
    brute force on exactly those stored values."""
    scene = random_scene(60, seed=6)
    scene = replace(scene, means=scene.means + torch.tensor([4.5e5, 5.5e6, 120.0], dtype=F64))
    save_scene(scene, tmp_path / "map.ply")
    loaded = load_scene(tmp_path / "map.ply")
    assert loaded.means.dtype == torch.float32
    ego = replace(ego_motion(True), position=torch.tensor([4.5e5 - 9.0, 5.5e6, 118.8], dtype=F64), time=EPOCH)
    cam = camera_rig("pinhole")
    out = render_camera(loaded, cam, ego, EPOCH + 0.01)
    ref, valid = brute_force(loaded.to(F64), cam, ego, EPOCH + 0.01, lidar=False)
    assert out["alpha"].max() > 0.5
    assert (out["alpha"].double() - ref["alpha"])[valid].abs().max() < 1e-4
    assert (out["rgb"].double() - ref["value"])[valid].abs().max() < 1e-4


def test_ply_keeps_the_placement_in_a_header_comment(tmp_path):
    """save_ply writes world_from_scene exactly (float64 decimals); load_ply reads it; bad comments are one line."""
    scene = replace(random_scene(30, seed=5), world_from_scene=PLACE)
    save_ply(scene, tmp_path / "s.ply")
    loaded = load_ply(tmp_path / "s.ply")
    assert torch.equal(loaded.world_from_scene.translation, PLACE.translation)
    assert (loaded.world_from_scene.rotation - PLACE.rotation).abs().max() < 1e-15
    save_ply(replace(scene, world_from_scene=None), tmp_path / "plain.ply")
    assert load_ply(tmp_path / "plain.ply").world_from_scene is None
    text = (tmp_path / "s.ply").read_bytes()
    bad = text.replace(b"comment world_from_scene ", b"comment world_from_scene 1 nan ", 1)
    (tmp_path / "bad.ply").write_bytes(bad)
    with pytest.raises(InputError, match=r"bad\.ply: comment 'world_from_scene': expected 7 numbers"):
        load_ply(tmp_path / "bad.ply")


def test_native_scene_with_epoch_trajectories_and_placement(tmp_path):
    """Epoch trajectory times and the placement survive the native format in float64, and the actors render."""
    scene = random_scene(40, seed=3, n_actor=40)
    traj = scene.actors[3].trajectory
    scene.actors[3] = Actor(3, Trajectory(traj.times + EPOCH, traj.positions, traj.rotations), "vehicle")
    scene = replace(scene, world_from_scene=PLACE)
    save_scene(scene, tmp_path / "scene")
    loaded = load_scene(tmp_path / "scene")
    t = loaded.actors[3].trajectory
    assert t.times.dtype == F64 and torch.equal(t.times, traj.times + EPOCH)
    assert torch.equal(loaded.world_from_scene.translation, PLACE.translation)
    assert (loaded.world_from_scene.rotation - PLACE.rotation).abs().max() < 1e-15
    cam = camera_rig("pinhole", readout=0.06)
    ego = placed_motion(PLACE, replace(ego_motion(True), time=EPOCH + 0.01))
    out = render_camera(loaded, cam, ego, EPOCH + 0.02)
    assert out["alpha"].max() > 0.5, "the actor (all 40 Gaussians) is rendered at epoch times"
    at_zero = render_camera(random_scene(40, seed=3, n_actor=40).to(torch.float32), cam,
                            replace(ego_motion(True), time=0.01), 0.02)
    assert (out["alpha"].double() - at_zero["alpha"].double()).abs().max() < 2e-4


@pytest.mark.parametrize("text,translation", [("1,2,3", [1, 2, 3]), ("5e5 5e6 30", [5e5, 5e6, 30]),
                                              ("1,2,3,1,0,0,0", [1, 2, 3])])
def test_parse_placement_text(text, translation):
    p = parse_placement(text)
    assert p.translation.tolist() == translation and p.translation.dtype == F64


def test_parse_placement_file_and_errors(tmp_path):
    f = tmp_path / "place.yaml"
    f.write_text(yaml.safe_dump({"translation": [500000.125, 5000000.0625, 1.0], "rotation_wxyz": [0, 0, 0, 1]}))
    p = parse_placement(str(f))
    assert p.translation[0].item() == 500000.125  # float64 all the way: no rounding of the 1/8 m
    assert (p.rotation - torch.diag(torch.tensor([-1.0, -1.0, 1.0], dtype=F64))).abs().max() < 1e-15
    for bad in ("1,2", "1,2,3,0,0,0,0", "nan,0,0", str(tmp_path / "missing.yaml")):
        with pytest.raises(InputError):
            parse_placement(bad)
    f.write_text(yaml.safe_dump({"translation": [1, 2], "rotation_wxyz": [1, 0, 0, 0]}))
    with pytest.raises(InputError, match="translation"):
        parse_placement(str(f))


def test_cli_world_from_scene(tmp_path):
    scene = random_scene(50, seed=12).to(torch.float32)
    save_scene(scene, tmp_path / "scene.ply")
    cam = camera_rig("pinhole")
    Rig([cam]).save(tmp_path / "rig.yaml")
    ego = placed_motion(PLACE, ego_motion(False))
    q = PLACE.rotation_wxyz.tolist()
    state = {"time": EPOCH, "ego": {"position": ego.position.tolist(), "rotation_wxyz": q}}
    (tmp_path / "state.yaml").write_text(yaml.safe_dump(state))
    value = ",".join(repr(v) for v in PLACE.translation.tolist() + q)
    run = [sys.executable, "-m", "xsim_render.cli.main", "render", "--scene", tmp_path / "scene.ply", "--rig",
           tmp_path / "rig.yaml", "--sensor", "cam", "--state", tmp_path / "state.yaml", "--time", repr(EPOCH),
           "--backend", "reference"]
    r = subprocess.run([*map(str, run), "--out", str(tmp_path / "o.npz"), "--world-from-scene", value],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    data = np.load(tmp_path / "o.npz")
    here = render_camera(scene, cam, ego_motion(False), 0.0)
    assert here["alpha"].max() > 0.5
    assert np.abs(data["alpha"] - here["alpha"].numpy()).max() < 2e-4
    assert data["ray_origin"].dtype == np.float64 and np.abs(data["ray_origin"][..., 1] - 5412345.75).max() < 3
    r = subprocess.run([*map(str, run), "--out", str(tmp_path / "p.npz"), "--world-from-scene", "1,2"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--world-from-scene" in r.stderr
    assert not (tmp_path / "p.npz").exists()


def test_sensor_sim_assets_take_world_from_scene(tmp_path):
    """The ROS node's scene loading (sim.engine.load_assets, parameter world_from_scene) places the scene."""
    from xsim_render.sim.engine import load_assets

    save_scene(random_scene(10, seed=1).to(torch.float32), tmp_path / "s.ply")
    Rig([camera_rig("pinhole")]).save(tmp_path / "rig.yaml")
    assert load_assets(tmp_path / "s.ply", tmp_path / "rig.yaml").scene.world_from_scene is None
    placed = load_assets(tmp_path / "s.ply", tmp_path / "rig.yaml", "5e5,5e6,30").scene.world_from_scene
    assert placed.translation.tolist() == [5e5, 5e6, 30.0]
    with pytest.raises(InputError, match="world_from_scene"):
        load_assets(tmp_path / "s.ply", tmp_path / "rig.yaml", "1,2")
