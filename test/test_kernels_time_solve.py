"""The kernels' LiDAR time solve (csrc/include/xsim/rolling_shutter.h TimeSolver::solve) against the reference's
(motion/rolling_shutter.py solve_observation_time) on all three phase branches: the same validity, time and
image coordinates, for points all around the sensor, near the seam and opposite it, including sensors turning so
fast that Newton fails and the search over the window (step 2) finds the root. The kernel skips evaluating a
window end where the branch fixes the sign of g there; these cases show that changes no outcome."""

from __future__ import annotations

import math

import pytest
import torch
from _scenes import lidar_rig

from xsim_render.kernels import build
from xsim_render.kernels.tiles import pack_motion
from xsim_render.motion import RigidMotion
from xsim_render.motion import rolling_shutter as rs
from xsim_render.projection.sensor_projection import LidarProjection
from xsim_render.sensors.rays import sensor_motion

F64 = torch.float64
TOLERANCE = 1e-9


def _points(g: torch.Generator, n: int, seam: float) -> torch.Tensor:
    """Points 2-50 m away at heights within the fan: a third near the seam, a third opposite it, the rest anywhere
    (ego frame at the sweep's start)."""
    azimuth = torch.rand(n, generator=g, dtype=F64) * 2 * math.pi
    near = torch.randn(n, generator=g, dtype=F64) * 0.05
    azimuth[: n // 3] = seam + near[: n // 3]
    azimuth[n // 3: 2 * n // 3] = seam + math.pi + near[n // 3: 2 * n // 3]
    distance = 2 + 48 * torch.rand(n, generator=g, dtype=F64) ** 2
    height = 1.8 + distance * (0.5 * torch.rand(n, generator=g, dtype=F64) - 0.3)
    return torch.stack((distance * torch.cos(azimuth), distance * torch.sin(azimuth), height), -1)


def _newton_misses(points, sensor, projection, eta0: float, branch: float) -> torch.Tensor:
    """Where the reference's Newton from eta0 leaves a root inside the window to the window search."""
    def residual(eta, pts):
        coords, _ = projection.project(rs.point_in_sensor(pts, None, sensor, eta), branch)
        return eta - projection.time_of(coords)
    eta, res, _ = rs._newton_from_start(residual, points, eta0, TOLERANCE)
    t0, t1 = float(projection.t_start), float(projection.t_end)
    return ~((res < TOLERANCE) & (eta >= t0) & (eta <= t1))


@pytest.mark.parametrize("spin", ["ccw", "cw"])
@pytest.mark.parametrize("yaw_rate", [0.1, 57.0, -57.0, 30.0])
def test_lidar_time_solve_matches_the_reference_on_every_branch(spin, yaw_rate):
    ext = build.load("cpu")
    seam = 2.3
    spec = lidar_rig(columns=512, spin=spin, seam=seam)
    g = torch.Generator().manual_seed(int(abs(yaw_rate) * 10) + (spin == "cw"))
    ego = RigidMotion.from_values((1.0, -2.0, 0.0), (math.cos(0.2), 0, 0, math.sin(0.2)), (12.0, 1.0, 0.0),
                                  (0.0, 0.0, yaw_rate), time=0.03)
    sensor = sensor_motion(spec, ego)
    projection = LidarProjection(spec, 0.0)
    t0, t1 = float(projection.t_start), float(projection.t_end)
    # body-frame (world) points, placed around the sensor at the sweep's start
    rot, pos = sensor.pose_at(torch.tensor(t0, dtype=F64))
    points = _points(g, 600, seam) @ rot.T + pos
    motion = pack_motion(sensor).numpy()
    searched = 0
    for branch, eta0 in ((0.0, t0), (math.pi, 0.5 * (t0 + t1)), (2 * math.pi, t1), (0.0, t1), (2 * math.pi, t0)):
        want = rs.solve_observation_time(points, None, sensor, projection, eta0, branch, TOLERANCE)
        eta, valid, phase, elevation = ext.lidar_time_solve(
            motion, torch.zeros(0, dtype=F64).numpy(), points.numpy(), float(spec.spin_sign),
            float(spec.seam_azimuth), float(spec.capture_duration), t0, t1, branch, eta0, TOLERANCE)
        valid = torch.from_numpy(valid)
        assert torch.equal(valid, want.valid), (branch, eta0)
        ok = valid
        assert float((torch.from_numpy(eta)[ok] - want.eta[ok]).abs().max()) < 2 * TOLERANCE
        coords = torch.stack((torch.from_numpy(phase), torch.from_numpy(elevation)), -1)
        assert float((coords[ok] - want.coords[ok]).abs().max()) < 1e-8
        missed = _newton_misses(points, sensor, projection, eta0, branch)
        searched += int((missed & want.valid & (want.eta >= t0) & (want.eta <= t1)).sum())
    # turning against the spin at 57 rad/s: g' = 1 - T / (2 pi) |yaw| ~ 0.09, Newton with its fixed-point fallback
    # stalls and the window search finds the roots
    if spec.spin_sign * yaw_rate < -50:
        assert searched > 100, searched
