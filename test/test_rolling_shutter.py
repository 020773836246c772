"""Newton time solve (XSIM Alg. 1) against a brute-force search over time, for every sensor model."""

from __future__ import annotations

import math

import pytest
import torch
from _scenes import camera_rig, ego_motion, lidar_rig

from xsim_render.geometry import so3
from xsim_render.motion import RigidMotion
from xsim_render.motion.rolling_shutter import point_in_sensor, solve_observation_time
from xsim_render.projection.sensor_projection import CameraProjection, LidarProjection
from xsim_render.sensors.rays import sensor_motion


def brute_force_times(points, body, sensor, projection, branch, lo, hi, steps=20001):
    """All times in [lo, hi] where eta - tau(pi(x(eta))) changes sign, refined by bisection-free dense grid."""
    eta = torch.linspace(lo, hi, steps, dtype=torch.float64)
    out = []
    for p in points:
        x = point_in_sensor(p[None].expand(steps, 3), body, sensor, eta)
        coords, valid = projection.project(x, branch)
        g = eta - projection.time_of(coords)
        g = torch.where(valid, g, torch.full_like(g, float("nan")))
        i = torch.nonzero((g[:-1] * g[1:] <= 0) & (g[:-1] - g[1:]).abs().lt(0.5 * (hi - lo))).squeeze(1)
        roots = eta[i] - g[i] * (eta[i + 1] - eta[i]) / (g[i + 1] - g[i])
        out.append(roots)
    return out


@pytest.mark.parametrize("model", ["pinhole", "opencv", "fisheye"])
def test_camera_newton_matches_time_search(model):
    cam = camera_rig(model, width=64, height=48, readout=0.05)
    ego = ego_motion(True)
    sensor = sensor_motion(cam, ego)
    projection = CameraProjection(cam, 0.0)
    g = torch.Generator().manual_seed(1)
    pts = torch.rand(40, 3, generator=g, dtype=torch.float64) * torch.tensor([6.0, 6.0, 2.0]) + torch.tensor(
        [6.0, -3.0, 0.5])
    actor = RigidMotion.from_values((0, 0, 0), (1, 0, 0, 0), (-8.0, 3.0, 0.0), (0.0, 0.0, 1.5), 0.0)
    for body in (None, actor):
        res = solve_observation_time(pts, body, sensor, projection, projection.t_mid, math.pi)
        roots = brute_force_times(pts, body, sensor, projection, math.pi, -0.2, 0.25)
        checked = 0
        for k in range(pts.shape[0]):
            if not bool(res.valid[k]) or roots[k].numel() == 0:
                continue
            assert (roots[k] - res.eta[k]).abs().min() < 2e-6
            u, v = res.coords[k]
            if 0 <= u < cam.width and 0 <= v < cam.height:
                checked += 1
        assert checked >= 10


@pytest.mark.parametrize("spin", ["ccw", "cw"])
def test_lidar_newton_matches_time_search_on_each_branch(spin):
    lidar = lidar_rig(spin=spin, seam=1.0)
    ego = RigidMotion.from_values((0, 0, 0), (1, 0, 0, 0), (14.0, 2.0, 0), (0, 0, 1.2))
    sensor = sensor_motion(lidar, ego)
    projection = LidarProjection(lidar, 0.0)
    g = torch.Generator().manual_seed(2)
    pts = (torch.rand(30, 3, generator=g, dtype=torch.float64) * 2 - 1) * torch.tensor([15.0, 15.0, 1.0])
    pts = pts[pts[:, :2].norm(dim=-1) > 3]
    for branch, eta0 in ((0.0, 0.0), (math.pi, 0.05), (2 * math.pi, 0.1)):
        res = solve_observation_time(pts, None, sensor, projection, eta0, branch)
        roots = brute_force_times(pts, None, sensor, projection, branch, -0.12, 0.22)
        n = 0
        for k in range(pts.shape[0]):
            if not bool(res.valid[k]):  # no root on this branch near the cut: the other branches see it
                continue
            assert roots[k].numel() >= 1
            assert (roots[k] - res.eta[k]).abs().min() < 2e-6
            n += 1
        assert n >= 0.8 * pts.shape[0]


def test_fixed_point_fallback_converges_when_slope_is_flat():
    """A camera whose readout sweeps with the scene motion has g' ~ 0.1: the solver must still converge."""
    cam = camera_rig("pinhole", width=64, height=48, readout=0.5, direction="left_to_right")
    ego = RigidMotion.from_values((0, 0, 0), (1, 0, 0, 0), (0, 0, 0), (0, 0, 0))
    sensor = sensor_motion(cam, ego)
    projection = CameraProjection(cam, 0.0)
    pts = torch.tensor([[8.0, 1.0, 1.4], [8.0, -1.0, 1.0]], dtype=torch.float64)
    actor = RigidMotion.from_values((0, 0, 0), (1, 0, 0, 0), (0.0, -9.0, 0.0), (0, 0, 0), 0.0)
    res = solve_observation_time(pts, actor, sensor, projection, projection.t_mid, math.pi)
    roots = brute_force_times(pts, actor, sensor, projection, math.pi, -0.5, 1.0)
    for k in range(2):
        assert bool(res.valid[k]) and (roots[k] - res.eta[k]).abs().min() < 2e-6


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
