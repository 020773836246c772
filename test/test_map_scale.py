"""Map-scale positions and epoch clocks render as accurately as at the origin (float32 and float64).

Every scenario of test_render_reference is moved by a map-scale offset (UTM-like and 1e7 m on every axis) and
its clock by a present-day ROS epoch time. Static Gaussian means are rounded to float32, as a PLY or a native
scene stores them, and the float64 brute-force integrator renders the same (rounded) scene in absolute world
coordinates. Tolerances are those float32 achieves at the origin (measured there: alpha 4e-5, expected range
5e-4 m, where Gaussians crossing the 1/255 alpha threshold shift a weighted mean, median range 8e-6 m):
float32 1e-4 for alpha, colour and intensity, 1e-3 m for expected distances, 1e-4 m for medians; float64
1e-7 throughout, the oracle's own resolution at 1e7 m (float64 spacing 1.9e-9 m over Gaussian scales of cm).
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from _scenes import F64, brute_force, camera_rig, ego_motion, lidar_rig, random_scene
from test_render_reference import seam_scene

from xsim_render.motion import RigidMotion
from xsim_render.render import render_camera, render_lidar
from xsim_render.scene import Actor, GaussianScene, Trajectory

EPOCH = 1.7e9  # a present-day ROS stamp (s)
OFFSETS = [(5.0e5, 5.0e6, 40.0), (1.0e7, -1.0e7, 1.0e7)]
TOLERANCE = {torch.float32: {"value": 1e-4, "distance": 1e-3, "median": 1e-4},
             F64: {"value": 1e-7, "distance": 1e-7, "median": 1e-7}}


def shifted(scene: GaussianScene, ego: RigidMotion, offset, dt: float) -> tuple[GaussianScene, RigidMotion]:
    """The scenario moved by `offset` (m) and `dt` (s): static means (rounded to float32, as stored), actor
    trajectories and the ego."""
    off = torch.tensor(offset, dtype=F64)
    s = scene.to(F64)
    static = s.actor_ids < 0
    means = torch.where(static[:, None], s.means + off, s.means).float().double()
    actors = {k: Actor(a.id, Trajectory(a.trajectory.times + dt, a.trajectory.positions + off,
                                        a.trajectory.rotations), a.category, a.size) for k, a in s.actors.items()}
    return replace(s, means=means, actors=actors), replace(ego, position=ego.position + off, time=ego.time + dt)


def close(a, b, tol, what):
    a, b = a.double(), b.double()
    assert torch.equal(torch.isnan(a), torch.isnan(b)), f"{what}: NaN patterns differ"
    err = (a - b).nan_to_num().abs().max().item()
    assert err < tol, f"{what}: max error {err:.3g} >= {tol}"


@pytest.mark.parametrize("dtype", [torch.float32, F64], ids=["float32", "float64"])
@pytest.mark.parametrize("offset", OFFSETS, ids=["utm", "1e7"])
@pytest.mark.parametrize("model", ["pinhole", "opencv", "fisheye"])
@pytest.mark.parametrize("moving", [False, True])
def test_camera_at_map_scale(model, moving, offset, dtype, backend):
    scene = random_scene(60, seed=hash((model, moving)) % 1000, n_actor=15 if moving else 0, sh_degree=2)
    cam = camera_rig(model)
    scene, ego = shifted(scene, ego_motion(moving), offset, EPOCH)
    t = EPOCH + 0.02
    out = render_camera(scene.to(dtype), cam, ego, t, backend=backend)
    ref, valid = brute_force(scene, cam, ego, t, lidar=False)
    tol = TOLERANCE[dtype]
    assert out["alpha"].max() > 0.5, "scene must be visible for the test to mean anything"
    close(out["rgb"][valid], ref["value"][valid], tol["value"], "rgb")
    close(out["alpha"][valid], ref["alpha"][valid], tol["value"], "alpha")
    close(out["distance"][valid], ref["distance"][valid], tol["distance"], "distance")
    close(out["distance_median"][valid], ref["distance_median"][valid], tol["median"], "distance_median")
    # world-frame outputs keep map-scale precision: float64, on the sensor's path
    assert out["ray_origin"].dtype == F64 and out["ray_time"].dtype == F64
    assert (out["ray_time"] - t).min() >= 0 and (out["ray_time"] - t).max() <= cam.capture_duration + 1e-9
    sensor_start = ego.position + torch.tensor([1.5, 0.0, 1.4], dtype=F64)  # camera_rig translation, yaw ~0.1
    assert (out["ray_origin"] - sensor_start).norm(dim=-1).max() < 1.0


@pytest.mark.parametrize("dtype", [torch.float32, F64], ids=["float32", "float64"])
@pytest.mark.parametrize("offset", OFFSETS, ids=["utm", "1e7"])
@pytest.mark.parametrize("spin", ["ccw", "cw"])
def test_lidar_at_map_scale(spin, offset, dtype, backend):
    scene = random_scene(80, seed=8, centre=(0.0, 0.0, 1.5), spread=(12.0, 12.0, 1.5), n_actor=20)
    lidar = lidar_rig(spin=spin, seam=2.5)
    scene, ego = shifted(scene, ego_motion(True), offset, EPOCH)
    t = EPOCH + 0.03
    out = render_lidar(scene.to(dtype), lidar, ego, t, backend=backend)
    ref, _ = brute_force(scene, lidar, ego, t, lidar=True)
    tol = TOLERANCE[dtype]
    assert torch.isfinite(out["range_median"]).sum() > 200
    close(out["alpha"], ref["alpha"], tol["value"], "alpha")
    close(out["range"], ref["distance"], tol["distance"], "range")
    close(out["intensity"], ref["value"][..., 0], tol["value"], "intensity")
    close(out["range_median"], ref["distance_median"], tol["median"], "range_median")
    # returns are in the sensor frame (small numbers) and stamped on the absolute clock in float64
    assert out["points"].abs().max() < 100
    assert out["point_time"].dtype == F64
    assert (out["point_time"] - t).min() > 0 and (out["point_time"] - t).max() < lidar.capture_duration


@pytest.mark.parametrize("dtype", [torch.float32, F64], ids=["float32", "float64"])
def test_lidar_seam_at_map_scale(dtype, backend):
    scene = seam_scene()
    lidar = lidar_rig(columns=512, seam=math.pi)
    ego = RigidMotion.from_values((0, 0, 0), (1, 0, 0, 0), (15.0, 0, 0), (0, 0, 2.0))
    scene, ego = shifted(scene, ego, OFFSETS[1], EPOCH)
    ref, _ = brute_force(scene, lidar, ego, EPOCH, lidar=True)
    out = render_lidar(scene.to(dtype), lidar, ego, EPOCH, phase_modeling=True, backend=backend)
    close(out["alpha"], ref["alpha"], TOLERANCE[dtype]["value"], "alpha")
    close(out["range_median"], ref["distance_median"], TOLERANCE[dtype]["median"], "range_median")
    cols = out["point_column"]
    assert int((cols < 20).sum()) > 20 and int((cols >= 492).sum()) > 20, "wall seen at both ends of the sweep"


def test_epoch_capture_equals_capture_at_zero():
    """The same relative motion at t ~ 0 and at t ~ 1.7e9 s gives the same image (float32, moving actor)."""
    scene = random_scene(60, seed=11, n_actor=30, sh_degree=1)
    cam = camera_rig("pinhole", readout=0.06)
    ego = ego_motion(True)
    at_zero = render_camera(scene.to(torch.float32), cam, ego, 0.02)
    late_scene, late_ego = shifted(scene, ego, (0.0, 0.0, 0.0), EPOCH)
    late = render_camera(late_scene.to(torch.float32), cam, late_ego, EPOCH + 0.02)
    assert at_zero["alpha"].max() > 0.5
    for key in ("rgb", "alpha", "distance"):
        close(late[key], at_zero[key], 1e-5, key)
    close(late["ray_time"] - EPOCH, at_zero["ray_time"], 1e-6, "ray_time")
