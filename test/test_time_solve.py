"""The rolling-shutter time solve where plain Newton struggles: g' small or negative, several roots; float32; gradients.

Every expected time comes from the independent search in _time_search (own motion, OpenCV projections, Brent).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from _scenes import camera_rig
from _time_search import MotionValues, camera_pixels, newton_from, residual, roots, sensor_points, sensor_pose, slope
from scipy.optimize import brentq

from xsim_render.motion.rolling_shutter import MIN_SLOPE, NEWTON_ITERATIONS, solve_observation_time
from xsim_render.projection.sensor_projection import CameraProjection
from xsim_render.sensors.rays import sensor_motion

READOUT = 0.5
# ego angular velocity (base_link: x forward, y left, z up) that sweeps the image along each readout direction
SWEEP_AXIS = {"left_to_right": (0.0, 0.0, 1.0), "right_to_left": (0.0, 0.0, -1.0),
              "top_to_bottom": (0.0, -1.0, 0.0), "bottom_to_top": (0.0, 1.0, 0.0)}


def _readout_pixel(cam, frac: float) -> tuple[float, float]:
    """The pixel on the image's centre line that the readout reaches after `frac` of its duration."""
    w, h = cam.width, cam.height
    return {"left_to_right": (frac * w, h / 2), "right_to_left": ((1 - frac) * w, h / 2),
            "top_to_bottom": (w / 2, frac * h), "bottom_to_top": (w / 2, (1 - frac) * h)}[cam.rolling_shutter.direction]


def chasing_case(model: str, direction: str, target_slope: float, frac: float = 0.3, depth: float = 20.0):
    """A camera, an ego turning along the readout and a world point whose root has g' = target_slope.

    The point lies, at the ego's reference time t* = frac * readout, on the pinhole ray of the pixel read at t*,
    so its root stays near t* while the turn rate (found by Brent on the reference g') sets g' there.
    Returns (camera, ego, point, root).
    """
    # narrow field of view (+/- 9 deg): the image moves at nearly the same rate everywhere, so g' barely varies
    # over the window and the chased root is the only one
    cam = replace(camera_rig(model, width=64, height=48, readout=READOUT, direction=direction), fx=200.0, fy=200.0)
    t_star = frac * READOUT
    u, v = _readout_pixel(cam, frac)
    ray = np.array([(u - cam.cx) / cam.fx, (v - cam.cy) / cam.fy, 1.0])
    axis = np.asarray(SWEEP_AXIS[direction])

    def ego_for(rate: float) -> MotionValues:
        return MotionValues((0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0), (6.0, 0.5, 0.0), tuple(rate * axis), t_star)

    rs, ps = sensor_pose(ego_for(0.0), cam, [t_star])
    point = ps[0] + rs[0] @ (depth * ray / np.linalg.norm(ray))

    def root_near(ego: MotionValues) -> float:
        return brentq(lambda t: float(residual(point, None, ego, cam, [t])[0]), t_star - 0.04, t_star + 0.04,
                      xtol=1e-15, rtol=4 * np.finfo(float).eps)

    rate = brentq(lambda r: slope(point, None, ego_for(r), cam, root_near(ego_for(r))) - target_slope, 0.0, 2.0,
                  xtol=1e-12)
    ego = ego_for(rate)
    return cam, ego, point, root_near(ego)


@pytest.mark.parametrize("model", ["pinhole", "opencv", "fisheye"])
@pytest.mark.parametrize("direction", list(SWEEP_AXIS))
@pytest.mark.parametrize("target_slope", [0.09, -0.09])
def test_small_slope_converges_to_the_only_root(model, direction, target_slope):
    """g' = +/-0.09 at the root: the fixed-point fallback contracts at |1 - g'| >= 0.91 and cannot converge in
    NEWTON_ITERATIONS steps; the bracketed solve must find the root to 1e-9 s from any start in the window."""
    cam, ego, point, root = chasing_case(model, direction, target_slope)
    found = roots(point, None, ego, cam, 0.0, READOUT)
    assert found.size == 1 and abs(found[0] - root) < 1e-12  # the only root in the capture window
    assert abs(slope(point, None, ego, cam, root) - target_slope) < 1e-6
    assert abs(1 - target_slope) ** NEWTON_ITERATIONS > 0.3 and abs(target_slope) < MIN_SLOPE
    projection = CameraProjection(cam, 0.0)
    sensor = sensor_motion(cam, ego.torch())
    for eta0 in (0.0, projection.t_mid, READOUT):
        res = solve_observation_time(torch.tensor(point)[None], None, sensor, projection, eta0, math.pi)
        assert bool(res.valid[0])
        assert abs(float(res.eta[0]) - root) < 1e-9
        px = camera_pixels(cam, sensor_points(point, None, ego, cam, [root]))[0]
        assert np.abs(res.coords[0].numpy() - px).max() < 1e-6


def test_several_roots_newton_root_when_it_lands_in_the_window_else_a_bracketed_one():
    """A wide pinhole turning 3.9 rad/s under a 0.5 s left-to-right readout: a far point crosses the image
    faster than the readout at the edges and slower in the middle, so it is read three times (g' < 0, > 0,
    < 0 at the roots). From each eta0 the solve returns the root that Newton with the fixed-point fallback
    reaches from eta0 (predicted by the reference's own Newton) when that lies in the window, else one of the
    three roots (the bracketed solve); never an invalid or wrong time."""
    cam = camera_rig("pinhole", width=64, height=48, readout=READOUT, direction="left_to_right")
    ego = MotionValues((0.0, 0.0, 0.0), (1.0, 0.0, 0.0, 0.0), (5.0, 0.0, 0.0), (0.0, 0.0, 3.9), 0.5 * READOUT)
    point = np.array([26.25, 0.0, 1.4])  # on the optical axis at mid-readout
    found = roots(point, None, ego, cam, 0.0, READOUT)
    assert found.size == 3 and abs(found[1] - 0.5 * READOUT) < 1e-12
    slopes = [slope(point, None, ego, cam, r) for r in found]
    assert slopes[0] < -0.2 and 0 < slopes[1] < MIN_SLOPE and slopes[2] < -0.2
    projection = CameraProjection(cam, 0.0)
    sensor = sensor_motion(cam, ego.torch())
    starts = np.linspace(0.0, READOUT, 21)
    newton_cases = bracket_cases = 0
    for eta0 in starts:
        res = solve_observation_time(torch.tensor(point)[None], None, sensor, projection, float(eta0), math.pi)
        eta = float(res.eta[0])
        assert bool(res.valid[0]) and np.abs(found - eta).min() < 1e-9
        newton, converged, margin = newton_from(point, None, ego, cam, float(eta0))
        if margin < 0.01:  # a fallback decision too close to call with a numeric g'
            continue
        if converged and 0.0 <= newton <= READOUT:
            assert abs(eta - newton) < 1e-9
            newton_cases += 1
        else:
            bracket_cases += 1
    assert newton_cases >= 8 and bracket_cases >= 4


@pytest.mark.parametrize("model", ["pinhole", "fisheye"])
def test_gradient_at_small_slope_is_the_implicit_one(model):
    """d eta / d point where g' = 0.09: autograd through the solve equals central differences of the
    reference's root (the implicit-function gradient -dg/dx / g', not -dg/dx / 1 of a fixed-point step)."""
    cam, ego, point, root = chasing_case(model, "top_to_bottom", 0.09)
    projection = CameraProjection(cam, 0.0)
    sensor = sensor_motion(cam, ego.torch())
    p = torch.tensor(point, requires_grad=True)
    res = solve_observation_time(p[None], None, sensor, projection, projection.t_mid, math.pi)
    (grad,) = torch.autograd.grad(res.eta[0], p)
    h = 1e-4
    numeric = []
    for i in range(3):
        step = np.eye(3)[i] * h
        hi = roots(point + step, None, ego, cam, 0.0, READOUT)
        lo = roots(point - step, None, ego, cam, 0.0, READOUT)
        numeric.append((hi[0] - lo[0]) / (2 * h))
    numeric = np.array(numeric)
    assert np.abs(numeric).max() > 1e-3  # the root does move with the point
    assert np.abs(grad.numpy() - numeric).max() < 1e-6 * np.abs(numeric).max() + 1e-9


@pytest.mark.parametrize("direction", list(SWEEP_AXIS))
def test_small_slope_in_float32(direction):
    """The same chase in float32 (motions and point cast, times relative to the capture start): valid, and the
    time within the float32 tolerance of 1e-5 s of residual, i.e. 1e-5 / 0.09 s of time."""
    cam, ego, point, root = chasing_case("opencv", direction, 0.09)
    projection = CameraProjection(cam, 0.0)
    sensor = sensor_motion(cam, ego.torch(torch.float32))
    for eta0 in (0.0, projection.t_mid, READOUT):
        res = solve_observation_time(torch.tensor(point, dtype=torch.float32)[None], None, sensor, projection, eta0,
                                     math.pi)
        assert bool(res.valid[0]) and res.eta.dtype == torch.float32
        assert abs(float(res.eta[0]) - root) < 1e-5 / 0.09
