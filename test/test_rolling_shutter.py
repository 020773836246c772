"""Time solve (XSIM Alg. 1) against the independent brute-force time search of _time_search, every sensor model.

The search shares no code with the renderer's motion, projections or solver (see _time_search).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from _scenes import camera_rig, ego_motion, lidar_rig
from _time_search import (
    MotionValues,
    camera_pixels,
    fisheye_pixels,
    image_coords,
    residual,
    roots,
    search,
    sensor_points,
)

from xsim_render.geometry import so3
from xsim_render.motion import RigidMotion
from xsim_render.motion.rolling_shutter import solve_observation_time
from xsim_render.projection.sensor_projection import CameraProjection, LidarProjection
from xsim_render.sensors.rays import sensor_motion

EGO = MotionValues((0.0, 0.0, 0.0), (math.cos(0.05), 0.0, 0.0, math.sin(0.05)), (12.0, 1.5, 0.0), (0.0, 0.0, 0.8),
                   0.01)
ACTOR = MotionValues((0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0), (-8.0, 3.0, 0.0), (0.0, 0.0, 1.5), 0.0)
DIRECTIONS = ("top_to_bottom", "bottom_to_top", "left_to_right", "right_to_left")


def test_reference_fisheye_is_opencv():
    """The reference's written-out fisheye (needed past 90 deg) equals cv2.fisheye.projectPoints in front."""
    cam = camera_rig("fisheye", width=64, height=48)
    x = np.random.default_rng(0).uniform([-3, -3, 0.05], [3, 3, 3], (500, 3))
    k = np.array([[cam.fx, 0, cam.cx], [0, cam.fy, cam.cy], [0, 0, 1]])
    cv, _ = cv2.fisheye.projectPoints(x.reshape(-1, 1, 3), np.zeros(3), np.zeros(3), k, np.array(cam.distortion))
    assert np.abs(fisheye_pixels(cam, x) - cv.reshape(-1, 2)).max() < 1e-9


def _check_against_search(res, pts, body, ego, spec, lo, hi, branch=math.pi, margin=0.0):
    """Per point, the documented rule: where g changes sign over the capture window [lo, hi] and does not jump
    in it, a root in it must be returned (valid, 1e-9 s, coords 1e-6); otherwise a valid result is a true root,
    Newton's: one the search finds in [lo - margin, hi + margin], outside the window unless one lies inside
    (a LiDAR point whose g jumps at the branch cut inside the window can have a root in it without a sign
    change over it). Returns (points seen inside the window, valid points seen outside it)."""
    inside = outside = 0
    for k in range(pts.shape[0]):
        eta = float(res.eta[k])
        found = roots(pts[k], body, ego, spec, lo - margin, hi + margin, branch)
        in_window = found[(found >= lo) & (found <= hi)]
        g_lo, g_hi = residual(pts[k], body, ego, spec, [lo, hi], branch)
        if g_lo * g_hi <= 0 and search(pts[k], body, ego, spec, lo, hi, branch)[1] == 0:
            assert in_window.size and bool(res.valid[k])
            assert lo <= eta <= hi
        if not bool(res.valid[k]):
            continue
        assert np.abs(found - eta).min() < 1e-9 if margin else abs(residual(pts[k], body, ego, spec, [eta],
                                                                             branch)[0]) < 1e-9
        if lo <= eta <= hi:
            assert np.abs(in_window - eta).min() < 1e-9
            ref = image_coords(spec, sensor_points(pts[k], body, ego, spec, [eta]), branch)[0]
            assert np.abs(res.coords[k].numpy() - ref).max() < 1e-6
            inside += 1
        else:
            outside += 1
    return inside, outside


@pytest.mark.parametrize("model", ["pinhole", "opencv", "fisheye"])
@pytest.mark.parametrize("direction", DIRECTIONS)
def test_camera_newton_matches_time_search(model, direction):
    """Every camera model and readout direction, world and moving-actor points, against the independent search."""
    cam = camera_rig(model, width=64, height=48, readout=0.05, direction=direction)
    projection = CameraProjection(cam, 0.0)
    sensor = sensor_motion(cam, EGO.torch())
    pts = np.random.default_rng(1).uniform([3.0, -9.0, -1.0], [14.0, 9.0, 4.0], (40, 3))
    for body in (None, ACTOR):
        res = solve_observation_time(torch.tensor(pts), None if body is None else body.torch(), sensor, projection,
                                     projection.t_mid, math.pi)
        inside, outside = _check_against_search(res, pts, body, EGO, cam, 0.0, 0.05)
        assert inside >= 25
        if model == "pinhole":  # off the image: Newton's root outside the window, as the UT needs for sigma points
            assert outside >= 1


def test_global_shutter_sees_everything_at_the_start():
    cam = camera_rig("opencv", width=64, height=48, direction="global")
    pts = np.random.default_rng(3).uniform([6.0, -3.0, 0.5], [12.0, 3.0, 2.5], (20, 3))
    res = solve_observation_time(torch.tensor(pts), None, sensor_motion(cam, EGO.torch()), CameraProjection(cam, 0.0),
                                 0.0, math.pi)
    ref = camera_pixels(cam, sensor_points(pts, None, EGO, cam, np.zeros(20)))
    assert bool(res.valid.all()) and bool((res.eta == 0).all())
    assert np.abs(res.coords.numpy() - ref).max() < 1e-9


@pytest.mark.parametrize("spin", ["ccw", "cw"])
@pytest.mark.parametrize("seam", [1.0, math.pi])
def test_lidar_newton_matches_time_search_on_each_branch(spin, seam):
    """The central branch sees every point inside the sweep; the seam branches (start: eta0 = t_start, end:
    eta0 = t_end) see the points next to the seam inside it, and the others at Newton's root outside it."""
    lidar = lidar_rig(spin=spin, seam=seam)
    sweep = lidar.capture_duration
    ego = MotionValues((0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0), (14.0, 2.0, 0.0), (0.0, 0.0, 1.2))
    sensor = sensor_motion(lidar, ego.torch())
    projection = LidarProjection(lidar, 0.0)
    pts = np.random.default_rng(2).uniform([-15.0, -15.0, -1.0], [15.0, 15.0, 1.0], (40, 3))
    pts = pts[np.hypot(pts[:, 0], pts[:, 1]) > 3]
    for body in (None, ACTOR):
        for branch, eta0 in ((0.0, 0.0), (math.pi, 0.5 * sweep), (2 * math.pi, sweep)):
            res = solve_observation_time(torch.tensor(pts), None if body is None else body.torch(), sensor,
                                         projection, eta0, branch)
            inside, outside = _check_against_search(res, pts, body, ego, lidar, 0.0, sweep, branch, margin=sweep)
            if branch == math.pi:
                assert inside == pts.shape[0]
            else:
                assert inside >= 5 and outside >= 5 and inside + outside >= 0.9 * pts.shape[0]


@pytest.mark.parametrize("spin", ["ccw", "cw"])
def test_lidar_seam_points_on_each_branch(spin):
    """Points 0.05 rad after / before the seam (in spin direction), on a moving actor: on the start branch the
    first is seen just after the sweep starts and the second just before it (outside the window, Newton's
    root); on the end branch the second is seen just before the sweep ends and the first just after it."""
    lidar = lidar_rig(spin=spin, seam=2.0)
    sweep = lidar.capture_duration
    # slow relative motion (< 0.01 rad of azimuth per sweep): neither point crosses the seam during the sweep
    ego = MotionValues((0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0), (2.0, 0.0, 0.0), (0.0, 0.0, 0.1))
    actor = MotionValues((0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0), (1.0, -0.5, 0.0), (0.0, 0.0, 0.05))
    sign = 1.0 if spin == "ccw" else -1.0
    az = np.array([2.0 + sign * 0.05, 2.0 - sign * 0.05])  # sensor azimuth at t = 0
    pts = np.stack((10 * np.cos(az), 10 * np.sin(az), [0.5, 0.5]), -1) + np.array([0.0, 0.0, 1.8])
    sensor = sensor_motion(lidar, ego.torch())
    projection = LidarProjection(lidar, 0.0)
    expect = {0.0: [(0.0, sweep), (-sweep, 0.0)], math.pi: [(0.0, sweep), (0.0, sweep)],
              2 * math.pi: [(sweep, 2 * sweep), (0.0, sweep)]}
    for branch, eta0 in ((0.0, 0.0), (math.pi, 0.5 * sweep), (2 * math.pi, sweep)):
        res = solve_observation_time(torch.tensor(pts), actor.torch(), sensor, projection, eta0, branch)
        for k, (lo, hi) in enumerate(expect[branch]):
            found = roots(pts[k], actor, ego, lidar, lo, hi, branch)
            assert found.size == 1 and bool(res.valid[k])
            assert abs(float(res.eta[k]) - found[0]) < 1e-9
            assert min(abs(found[0]), abs(found[0] - sweep)) < 0.02 * sweep  # next to the start or the end


def test_solution_gradient_matches_finite_differences():
    cam = camera_rig("opencv", width=64, height=48, readout=0.05)
    sensor = sensor_motion(cam, ego_motion(True))
    projection = CameraProjection(cam, 0.0)
    p = torch.tensor([[9.0, 0.5, 1.0]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x: solve_observation_time(x, None, sensor, projection, 0.02, math.pi).coords, (p,), atol=1e-5)


def test_rigid_motion_re_referenced_is_the_same_motion() -> None:
    gen = torch.Generator().manual_seed(5)
    v = torch.randn(4, 3, generator=gen, dtype=torch.float64)
    m = RigidMotion(so3.exp(v[0]), v[1], v[2], v[3], 0.3)
    later = m.at(1.7)
    assert later.time == 1.7
    times = torch.linspace(-1.0, 3.0, 9, dtype=torch.float64)
    for a, b in zip(m.pose_at(times), later.pose_at(times)):
        assert torch.allclose(a, b, atol=1e-12)
