"""Unscented Transform means/covariances against Monte-Carlo projection of samples of the 3D Gaussian."""

from __future__ import annotations

import math

import pytest
import torch
from _scenes import camera_rig, ego_motion, lidar_rig

from xsim_render.geometry import quaternion
from xsim_render.motion.rolling_shutter import solve_observation_time
from xsim_render.projection.sensor_projection import CameraProjection, LidarProjection
from xsim_render.projection.unscented import unscented_transform
from xsim_render.sensors.rays import sensor_motion


def monte_carlo(mean, rot, scale, sensor, projection, eta0, branch, n=20000, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 3, generator=g, dtype=torch.float64)
    samples = mean + (z * scale) @ rot.T
    res = solve_observation_time(samples, None, sensor, projection, eta0, branch)
    y = res.coords[res.valid]
    return y.mean(0), torch.cov(y.T)


@pytest.mark.parametrize("model", ["pinhole", "opencv", "fisheye"])
def test_camera_ut_matches_monte_carlo(model):
    cam = camera_rig(model, width=64, height=48)
    sensor = sensor_motion(cam, ego_motion(True))
    projection = CameraProjection(cam, 0.0)
    g = torch.Generator().manual_seed(4)
    for i in range(4):
        mean = torch.tensor([10.0, -1.5 + i, 1.0 + 0.3 * i], dtype=torch.float64)
        rot = quaternion.to_matrix(torch.randn(4, generator=g, dtype=torch.float64))
        scale = torch.rand(3, generator=g, dtype=torch.float64) * 0.25 + 0.05
        ut = unscented_transform(mean[None], rot[None], scale[None], None, sensor, projection, projection.t_mid)
        mc_mean, mc_cov = monte_carlo(mean, rot, scale, sensor, projection, projection.t_mid, math.pi)
        assert bool(ut.valid[0])
        std = mc_cov.diagonal().sqrt()
        assert ((ut.mean[0] - mc_mean).abs() < 0.03 * std.max() + 0.02).all()
        assert torch.allclose(ut.cov[0], mc_cov, rtol=0.05, atol=0.02 * float(std.max()) ** 2)


def test_lidar_ut_matches_monte_carlo_on_seam_branches():
    lidar = lidar_rig(seam=math.pi)
    sensor = sensor_motion(lidar, ego_motion(True))
    projection = LidarProjection(lidar, 0.0)
    rot = torch.eye(3, dtype=torch.float64)
    scale = torch.tensor([0.05, 0.3, 0.2], dtype=torch.float64)
    # behind the car, straddling the seam: one piece on the start branch (0) and on the end branch (2 pi)
    mean = torch.tensor([-7.0, 0.0, 1.0], dtype=torch.float64)
    for branch, eta0 in ((0.0, 0.0), (2 * math.pi, 0.1)):
        ut = unscented_transform(mean[None], rot[None], scale[None], None, sensor, projection, eta0, branch)
        mc_mean, mc_cov = monte_carlo(mean, rot, scale, sensor, projection, eta0, branch)
        assert bool(ut.valid[0])
        assert (ut.mean[0] - mc_mean).abs().max() < 2e-3
        assert torch.allclose(ut.cov[0], mc_cov, rtol=0.06, atol=0.02 * float(mc_cov.diagonal().max()))
