"""Per-pixel / per-firing rays: times, origins and directions follow the rig and docs/conventions.md."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from _scenes import camera_rig, ego_motion, lidar_rig

from xsim_render.sensors.rays import camera_rays, lidar_rays, sensor_motion


@pytest.mark.parametrize("model", ["pinhole", "opencv", "fisheye"])
def test_camera_rays_against_opencv_unprojection(model):
    cam = camera_rig(model, width=40, height=30)
    ego = ego_motion(True)
    rays = camera_rays(cam, ego, 0.5)
    k = np.array([[cam.fx, 0, cam.cx], [0, cam.fy, cam.cy], [0, 0, 1]])
    v, u = np.meshgrid(np.arange(cam.height) + 0.5, np.arange(cam.width) + 0.5, indexing="ij")
    px = np.stack((u, v), -1).reshape(-1, 1, 2)
    if model == "fisheye":
        und = cv2.fisheye.undistortPoints(px, k, np.array(cam.distortion)).reshape(-1, 2)
    else:
        und = cv2.undistortPoints(px, k, np.array(cam.distortion) if cam.distortion else None,
                                  criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-14)
                                  ).reshape(-1, 2)
    d = np.concatenate((und, np.ones((und.shape[0], 1))), 1)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    # direction in the world = R_world_sensor(t_pixel) d_optical
    rot, pos = sensor_motion(cam, ego).pose_at(rays.times)
    expected = (rot @ torch.from_numpy(d).reshape(cam.height, cam.width, 3, 1)).squeeze(-1)
    assert torch.allclose(rays.directions, expected, atol=1e-7)
    assert torch.allclose(rays.origins, pos)
    # rolling shutter top_to_bottom: row i at t_start + (i + 0.5) / H * readout
    rows = (torch.arange(cam.height, dtype=torch.float64) + 0.5) / cam.height * cam.rolling_shutter.readout_time + 0.5
    assert torch.allclose(rays.times, rows[:, None].expand(-1, cam.width))


@pytest.mark.parametrize("direction", ["bottom_to_top", "left_to_right", "right_to_left", "global"])
def test_rolling_shutter_directions(direction):
    cam = camera_rig("pinhole", width=8, height=6, readout=0.06, direction=direction)
    t = camera_rays(cam, ego_motion(False), 1.0).times
    if direction == "global":
        assert torch.all(t == 1.0)
        return
    first = {"bottom_to_top": t[-1, 0], "left_to_right": t[0, 0], "right_to_left": t[0, -1]}[direction]
    last = {"bottom_to_top": t[0, 0], "left_to_right": t[0, -1], "right_to_left": t[0, 0]}[direction]
    n = 6 if direction == "bottom_to_top" else 8
    assert math.isclose(float(first), 1.0 + 0.5 / n * 0.06)
    assert math.isclose(float(last), 1.0 + (n - 0.5) / n * 0.06)


@pytest.mark.parametrize("spin", ["ccw", "cw"])
def test_lidar_firing_times_and_azimuths(spin):
    lidar = lidar_rig(columns=64, spin=spin, seam=2.0)
    rays = lidar_rays(lidar, ego_motion(False), 3.0)
    c = torch.arange(64, dtype=torch.float64)
    assert torch.allclose(rays.times[0], 3.0 + (c + 0.5) / (64 * 10.0))
    sign = 1 if spin == "ccw" else -1
    az = torch.atan2(rays.directions_sensor[..., 1], rays.directions_sensor[..., 0])
    expected = 2.0 + sign * 2 * math.pi * (c + 0.5) / 64
    diff = torch.remainder(az[0] - expected + math.pi, 2 * math.pi) - math.pi
    assert diff.abs().max() < 1e-12
    el = torch.asin(rays.directions_sensor[..., 2])
    assert torch.allclose(el[:, 0], torch.tensor(lidar.elevations, dtype=torch.float64))
