"""Independent reference for the rolling-shutter observation time (test oracle, NumPy + OpenCV + SciPy).

Shares no code with xsim_render's motion, projection or solver: the constant-velocity motion is written out
with SciPy rotations (R(t) = Exp(w (t - t0)) R0, p(t) = p0 + v (t - t0), world-frame velocities, sensor pose =
ego pose * extrinsics), pinhole / opencv cameras project with cv2.projectPoints, the fisheye with OpenCV's
formula written out (checked against cv2.fisheye.projectPoints), the LiDAR phase is atan2 plus the
firing-time formula, and the time eta = tau(pi(x(eta))) is searched on a dense grid and
refined with Brent's method (or, vectorised, by bisection on the window).
Times are seconds relative to the capture start (t_start = 0), as inside the renderer.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from scipy.optimize import brentq
from scipy.spatial.transform import Rotation

from xsim_render.motion import RigidMotion
from xsim_render.sensors.rig import CameraSpec, LidarSpec


@dataclass
class MotionValues:
    """A constant-velocity pose given by plain numbers: the reference evaluates it, `torch()` hands it on."""

    position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rotation_wxyz: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    linear_velocity: tuple[float, float, float] = (0.0, 0.0, 0.0)
    angular_velocity: tuple[float, float, float] = (0.0, 0.0, 0.0)
    time: float = 0.0

    def torch(self, dtype: torch.dtype = torch.float64) -> RigidMotion:
        return RigidMotion.from_values(self.position, self.rotation_wxyz, self.linear_velocity,
                                       self.angular_velocity, self.time, dtype=dtype)

    def pose(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """R (K, 3, 3) body-to-world and p (K, 3) at times t (K,)."""
        dt = np.asarray(t, dtype=np.float64).reshape(-1) - self.time
        r0 = Rotation.from_quat(np.asarray(self.rotation_wxyz, dtype=np.float64), scalar_first=True).as_matrix()
        w = np.asarray(self.angular_velocity, dtype=np.float64)
        rate = float(np.linalg.norm(w))
        # Exp(w dt) by Rodrigues about the fixed axis w / |w|: I + sin(a) K + (1 - cos(a)) K^2, a = |w| dt
        n = w / rate if rate > 0 else np.zeros(3)
        k = np.array([[0.0, -n[2], n[1]], [n[2], 0.0, -n[0]], [-n[1], n[0], 0.0]])  # K v = n x v
        a = rate * dt
        exp = np.eye(3) + np.sin(a)[:, None, None] * k + (1 - np.cos(a))[:, None, None] * (k @ k)
        return exp @ r0, np.asarray(self.position) + np.outer(dt, self.linear_velocity)


def sensor_points(points: np.ndarray, body: MotionValues | None, ego: MotionValues, spec: CameraSpec | LidarSpec,
                  t: np.ndarray) -> np.ndarray:
    """Sensor-frame positions (K, 3) at times t (K,) of points (K, 3) or (3,) fixed in `body` (None: world)."""
    t = np.asarray(t, dtype=np.float64).reshape(-1)
    pts = np.broadcast_to(np.asarray(points, dtype=np.float64), (t.size, 3))
    if body is not None:
        rb, pb = body.pose(t)
        pts = np.einsum("kij,kj->ki", rb, pts) + pb
    rs, ps = sensor_pose(ego, spec, t)
    return np.einsum("kji,kj->ki", rs, pts - ps)  # R_s^T (x - p_s)


def sensor_pose(ego: MotionValues, spec: CameraSpec | LidarSpec, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sensor-to-world R (K, 3, 3) and p (K, 3) at times t (K,): ego pose * extrinsics."""
    re, pe = ego.pose(t)
    rx = Rotation.from_quat(np.asarray(spec.extrinsics.rotation_wxyz, dtype=np.float64), scalar_first=True)
    return re @ rx.as_matrix(), pe + re @ np.asarray(spec.extrinsics.translation, dtype=np.float64)


@functools.lru_cache(maxsize=64)
def opencv_fold_radius(distortion: tuple[float, ...], r_max: float = 10.0, samples: int = 400001) -> float:
    """Undistorted radius where r * radial(r) first stops increasing (dense numeric scan), r_max if never."""
    k = list(distortion) + [0.0] * (8 - len(distortion))
    r = np.linspace(0.0, r_max, samples)
    s = r * r
    den = 1 + k[5] * s + k[6] * s**2 + k[7] * s**3
    g = r * (1 + k[0] * s + k[1] * s**2 + k[4] * s**3) / den
    bad = (np.diff(g) <= 0) | (den[1:] <= 0)
    return float(r[np.argmax(bad)]) if bad.any() else r_max


@functools.lru_cache(maxsize=64)
def fisheye_fold_angle(distortion: tuple[float, ...], samples: int = 400001) -> float:
    """Off-axis angle where theta_d(theta) first stops increasing (dense numeric scan), at most pi."""
    k = list(distortion) + [0.0] * (4 - len(distortion))
    t = np.linspace(0.0, math.pi, samples)
    td = t * (1 + k[0] * t**2 + k[1] * t**4 + k[2] * t**6 + k[3] * t**8)
    bad = np.diff(td) <= 0
    return float(t[np.argmax(bad)]) if bad.any() else math.pi


def fisheye_pixels(spec: CameraSpec, x: np.ndarray) -> np.ndarray:
    """OpenCV's fisheye model written out for any direction: theta = atan2(|(x, y)|, z), NaN beyond the fold.

    Equals cv2.fisheye.projectPoints in front of the camera (test_rolling_shutter checks it), and goes on
    past 90 degrees where OpenCV's atan(r) cannot.
    """
    k = list(spec.distortion) + [0.0] * (4 - len(spec.distortion))
    rho = np.hypot(x[:, 0], x[:, 1])
    theta = np.arctan2(rho, x[:, 2])
    td = theta * (1 + k[0] * theta**2 + k[1] * theta**4 + k[2] * theta**6 + k[3] * theta**8)
    with np.errstate(invalid="ignore", divide="ignore"):
        gain = np.where(rho > 0, td / rho, 1.0 / x[:, 2])
    out = np.stack((spec.fx * gain * x[:, 0] + spec.cx, spec.fy * gain * x[:, 1] + spec.cy), -1)
    out[~(theta < fisheye_fold_angle(tuple(spec.distortion)))] = np.nan
    return out


def camera_pixels(spec: CameraSpec, x: np.ndarray) -> np.ndarray:
    """Pixels (K, 2) of camera optical-frame points (K, 3); NaN outside the lens model's domain.

    pinhole / opencv: cv2.projectPoints, in front of the camera and (opencv) inside the radius where the
    distortion folds. fisheye: `fisheye_pixels`.
    """
    if spec.model == "fisheye":
        return fisheye_pixels(spec, x)
    out = np.full((x.shape[0], 2), np.nan)
    front = x[:, 2] > 0
    if spec.model == "opencv":
        a = x[:, :2] / np.where(front, x[:, 2], 1.0)[:, None]
        front &= np.hypot(a[:, 0], a[:, 1]) < opencv_fold_radius(tuple(spec.distortion))
    if not front.any():
        return out
    kmat = np.array([[spec.fx, 0, spec.cx], [0, spec.fy, spec.cy], [0, 0, 1]], dtype=np.float64)
    d = np.asarray(spec.distortion, dtype=np.float64) if spec.distortion else None
    proj, _ = cv2.projectPoints(np.ascontiguousarray(x[front], dtype=np.float64), np.zeros(3), np.zeros(3), kmat, d)
    out[front] = proj.reshape(-1, 2)
    return out


def camera_time(spec: CameraSpec, px: np.ndarray) -> np.ndarray:
    """Capture time (s) of pixels (K, 2): the readout sweeps the image linearly in `direction`."""
    ro = spec.rolling_shutter.readout_time
    u, v = px[:, 0] / spec.width, px[:, 1] / spec.height
    return {"global": 0.0 * u, "top_to_bottom": ro * v, "bottom_to_top": ro * (1 - v),
            "left_to_right": ro * u, "right_to_left": ro * (1 - u)}[spec.rolling_shutter.direction]


def lidar_phase(spec: LidarSpec, x: np.ndarray, branch: float) -> np.ndarray:
    """Angle (rad) swept from the seam in spin direction, on [branch - pi, branch + pi)."""
    sign = 1.0 if spec.spin_direction == "ccw" else -1.0
    swept = sign * (np.arctan2(x[:, 1], x[:, 0]) - spec.seam_azimuth)
    return swept - 2 * math.pi * np.floor((swept - branch + math.pi) / (2 * math.pi))


def lidar_time(spec: LidarSpec, phase: np.ndarray) -> np.ndarray:
    """Firing c of N happens at (c + 0.5) / (N f) at swept angle 2 pi (c + 0.5) / N: time = phase / (2 pi f)."""
    return phase / (2 * math.pi * spec.spin_rate_hz)


def image_coords(spec, x: np.ndarray, branch: float = math.pi) -> np.ndarray:
    """Camera pixels, or LiDAR (phase, elevation) in rad, of sensor-frame points (K, 3)."""
    if isinstance(spec, CameraSpec):
        return camera_pixels(spec, x)
    return np.stack((lidar_phase(spec, x, branch), np.arcsin(x[:, 2] / np.linalg.norm(x, axis=1))), -1)


def residual(points, body, ego, spec, t, branch: float = math.pi) -> np.ndarray:
    """g(t) = t - tau(pi(x(t))) (s) for points (K, 3) or (3,) at times t (K,); NaN where not projectable."""
    t = np.asarray(t, dtype=np.float64).reshape(-1)
    coords = image_coords(spec, sensor_points(points, body, ego, spec, t), branch)
    tau = camera_time(spec, coords) if isinstance(spec, CameraSpec) else lidar_time(spec, coords[:, 0])
    return t - tau


def search(point, body, ego, spec, lo: float, hi: float, branch: float = math.pi,
           steps: int = 4001) -> tuple[np.ndarray, int]:
    """Roots of g in [lo, hi] (s) for one point (3,), and the number of jumps of g there.

    Sign changes on a dense grid are refined by Brent; one that does not end at |g| < 1e-12 s is a jump of g
    (a LiDAR point crossing the branch cut, a camera point leaving the lens domain), not a root.
    """
    t = np.linspace(lo, hi, steps)
    g = residual(point, body, ego, spec, t, branch)
    found, jumps = [t[i] for i in np.nonzero(g == 0)[0]], 0
    for i in np.nonzero(g[:-1] * g[1:] < 0)[0]:
        f = (lambda s: float(residual(point, body, ego, spec, [s], branch)[0]))
        r = brentq(f, t[i], t[i + 1], xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=200)
        if abs(f(r)) < 1e-12:
            found.append(r)
        else:
            jumps += 1
    finite = np.isfinite(g)
    jumps += int(np.count_nonzero(finite[:-1] != finite[1:]))  # entering / leaving the domain
    return np.sort(np.asarray(found, dtype=np.float64)), jumps


def roots(point, body, ego, spec, lo: float, hi: float, branch: float = math.pi, steps: int = 4001) -> np.ndarray:
    """Every root of g in [lo, hi] (s) for one point (3,) (see `search`)."""
    return search(point, body, ego, spec, lo, hi, branch, steps)[0]


def slope(point, body, ego, spec, t: float, branch: float = math.pi, h: float = 1e-6) -> float:
    """g'(t) by central differences."""
    g = residual(point, body, ego, spec, [t - h, t + h], branch)
    return float((g[1] - g[0]) / (2 * h))


def newton_from(point, body, ego, spec, eta0: float, branch: float = math.pi, iterations: int = 12,
                min_slope: float = 0.2, tolerance: float = 1e-9) -> tuple[float, bool, float]:
    """XSIM Alg. 1 with the fixed-point fallback (g' := 1 where |g'| < min_slope), numeric g'.

    Returns (eta, converged, margin): margin is the smallest distance of |g'| along the path to the fallback
    threshold and to 0, so a caller can skip paths whose fallback decisions are numerically ambiguous.
    """
    eta, margin = float(eta0), math.inf
    for _ in range(iterations + 1):
        g = float(residual(point, body, ego, spec, [eta], branch)[0])
        if not math.isfinite(g):
            return eta, False, margin
        if abs(g) < 0.01 * tolerance:
            break
        s = slope(point, body, ego, spec, eta, branch)
        margin = min(margin, abs(abs(s) - min_slope), abs(s))
        eta -= g / s if abs(s) > min_slope else g
    g = float(residual(point, body, ego, spec, [eta], branch)[0])
    return eta, abs(g) < tolerance, margin


def bisect_window(points: np.ndarray, body, ego, spec, t0: float, t1: float, branch: float = math.pi,
                  grid: int = 33, iterations: int = 24) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised root search of g on [t0, t1] for many points (K, 3): a coarse grid, bisection, interpolation.

    Returns eta (K,), coords (K, 2) at eta and ok (K,): g (finite at both grid nodes) changes sign exactly once
    on the grid and |g(eta)| < 1e-12 s after bisecting that cell `iterations` times and interpolating linearly.
    """
    k = points.shape[0]
    t = np.linspace(t0, t1, grid)
    g = residual(np.repeat(points, grid, axis=0), body, ego, spec, np.tile(t, k), branch).reshape(k, grid)
    change = (g[:, :-1] * g[:, 1:] <= 0) & np.isfinite(g[:, :-1]) & np.isfinite(g[:, 1:])
    ok = change.sum(1) == 1
    cell = np.argmax(change, axis=1)
    rows = np.arange(k)
    lo, hi, g_lo, g_hi = t[cell], t[cell + 1], g[rows, cell], g[rows, cell + 1]
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        g_mid = residual(points, body, ego, spec, mid, branch)
        low_side = (g_mid <= 0) == (g_lo <= 0)  # same sign as at lo: the root lies above mid
        lo, g_lo = np.where(low_side, mid, lo), np.where(low_side, g_mid, g_lo)
        hi, g_hi = np.where(low_side, hi, mid), np.where(low_side, g_hi, g_mid)
    with np.errstate(invalid="ignore", divide="ignore"):
        eta = np.where(g_hi != g_lo, lo - g_lo * (hi - lo) / (g_hi - g_lo), lo)
    ok &= np.abs(residual(points, body, ego, spec, eta, branch)) < 1e-12
    return eta, image_coords(spec, sensor_points(points, body, ego, spec, eta), branch), ok
