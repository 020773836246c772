"""Camera projection models: pinhole, OpenCV (radial-rational + tangential) and OpenCV fisheye.

Frames and units
    Points and ray directions are in the camera OPTICAL frame: z forward, x right, y down, metres.
    Pixels are (u, v): u to the right, v down, in pixels. The formulas are OpenCV's with cx, cy as given
    (u = fx x'' + cx, v = fy y'' + cy); the centre of pixel (row i, column j) is at (j + 0.5, i + 0.5).

Models (`CameraSpec.model`, coefficients in `CameraSpec.distortion`)
    pinhole  u = fx x/z + cx, v = fy y/z + cy.                           Valid: z > 0.
    opencv   (k1, k2, p1, p2[, k3[, k4, k5, k6]]), as cv2.projectPoints: a = x/z, b = y/z, r2 = a^2 + b^2,
             radial = (1 + k1 r2 + k2 r2^2 + k3 r2^3) / (1 + k4 r2 + k5 r2^2 + k6 r2^3),
             x'' = a radial + 2 p1 a b + p2 (r2 + 2 a^2), y'' = b radial + p1 (r2 + 2 b^2) + 2 p2 a b.
             Valid: z > 0 and r < max_valid_radius (the radial map r -> r radial(r) is increasing there).
    fisheye  (k1, k2, k3, k4), as cv2.fisheye.projectPoints but for any direction: theta = atan2(|(x, y)|, z),
             theta_d = theta (1 + k1 theta^2 + k2 theta^4 + k3 theta^6 + k4 theta^8),
             u = fx theta_d x / |(x, y)| + cx, v = fy theta_d y / |(x, y)| + cy.
             Valid: theta < max_valid_radius (theta_d is increasing there, and the limit is at most pi).

`project` is differentiable (finite gradients wherever the result is valid, including the optical axis).
`unproject` inverts the distortion by safeguarded Newton iterations in float64 and returns unit directions;
its result is differentiable too (one final Newton step is taken with autograd, giving the implicit gradient).
Outputs for invalid lanes are finite (and have finite gradients) but only roughly mean "the limit of the valid
region along the same azimuth"; always mask with `valid`.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

from .rig import CameraSpec

# The OpenCV model is only trusted up to this undistorted normalized radius (tan of ~84.3 deg) when its radial
# map never folds before it: beyond it a far-off-axis point could fold back into the image unnoticed.
OPENCV_SCAN_RADIUS = 10.0
_SCAN_SAMPLES = 200_001
_NEWTON_MAX_ITERS = 100
_BEYOND = 1 + 1e-6  # invalid unprojected pixels get the ray this factor beyond the limit along their azimuth


# ----------------------------------------------------------------------------------------------------------
# Coefficients and the monotonic limit
# ----------------------------------------------------------------------------------------------------------

def _opencv_coefficients(distortion: tuple[float, ...]) -> tuple[float, ...]:
    """(k1, k2, p1, p2, k3, k4, k5, k6), missing trailing coefficients as 0."""
    if len(distortion) not in (0, 4, 5, 8):
        raise ValueError(f"opencv camera model takes 4, 5 or 8 distortion coefficients, got {len(distortion)}")
    return tuple(float(v) for v in distortion) + (0.0,) * (8 - len(distortion))


def _fisheye_coefficients(distortion: tuple[float, ...]) -> tuple[float, ...]:
    """(k1, k2, k3, k4)."""
    if len(distortion) not in (0, 4):
        raise ValueError(f"fisheye camera model takes 4 distortion coefficients, got {len(distortion)}")
    return tuple(float(v) for v in distortion) + (0.0,) * (4 - len(distortion))


def _opencv_radial(s: Tensor, k: tuple[float, ...]) -> tuple[Tensor, Tensor]:
    """Numerator N(s) and denominator D(s) of the rational radial factor, s = r^2."""
    k1, k2, _, _, k3, k4, k5, k6 = k
    return 1 + s * (k1 + s * (k2 + s * k3)), 1 + s * (k4 + s * (k5 + s * k6))


def _opencv_radial_slopes(s: Tensor, k: tuple[float, ...]) -> tuple[Tensor, Tensor]:
    """dN/ds and dD/ds."""
    k1, k2, _, _, k3, k4, k5, k6 = k
    return k1 + s * (2 * k2 + s * 3 * k3), k4 + s * (2 * k5 + s * 3 * k6)


def _opencv_bad(r: Tensor, k: tuple[float, ...]) -> Tensor:
    """True where the radial map g(r) = r N(r^2)/D(r^2) is not increasing (or its denominator is <= 0)."""
    s = r * r
    (num, den), (dnum, dden) = _opencv_radial(s, k), _opencv_radial_slopes(s, k)
    # g'(r) D^2 = N D + 2 s (N' D - N D'), same sign as g' where D > 0
    return (den <= 0) | (num * den + 2 * s * (dnum * den - num * dden) <= 0)


def _fisheye_bad(theta: Tensor, k: tuple[float, ...]) -> Tensor:
    """True where theta_d(theta) is not increasing."""
    return _fisheye_map(theta, k)[1] <= 0


def _first_bad(bad, upper: float) -> float:
    """Largest x in [0, upper] such that bad is False on [0, x) (sampled, then bisected to full precision)."""
    grid = torch.linspace(0.0, upper, _SCAN_SAMPLES, dtype=torch.float64)
    flags = bad(grid)
    if not bool(flags.any()):
        return upper
    i = int(torch.nonzero(flags)[0, 0])
    if i == 0:
        return 0.0
    lo, hi = float(grid[i - 1]), float(grid[i])
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if bool(bad(torch.tensor([mid], dtype=torch.float64))[0]):
            hi = mid
        else:
            lo = mid
    return lo


@functools.lru_cache(maxsize=256)
def _max_valid_radius_cached(model: str, distortion: tuple[float, ...]) -> float:
    if model == "pinhole":
        return math.inf
    if model == "opencv":
        k = _opencv_coefficients(distortion)
        return _first_bad(lambda r: _opencv_bad(r, k), OPENCV_SCAN_RADIUS)
    if model == "fisheye":
        k = _fisheye_coefficients(distortion)
        return _first_bad(lambda t: _fisheye_bad(t, k), math.pi)
    raise ValueError(f"unknown camera model {model!r} (expected pinhole | opencv | fisheye)")


def max_valid_radius(camera: CameraSpec) -> float:
    """Limit of the camera's valid region, computed once per (model, distortion) and cached.

    pinhole: inf. opencv: the undistorted normalized radius r = |(x/z, y/z)| (unitless, tan of the off-axis
    angle) where r radial(r) stops increasing, or OPENCV_SCAN_RADIUS if it never does before. fisheye: the
    off-axis angle theta (radians) where theta_d stops increasing, at most pi. Valid points lie strictly below.
    """
    return _max_valid_radius_cached(camera.model, tuple(float(v) for v in camera.distortion))


# ----------------------------------------------------------------------------------------------------------
# Distortion maps (normalized coordinates, unitless)
# ----------------------------------------------------------------------------------------------------------

def _opencv_distort(a: Tensor, b: Tensor, k: tuple[float, ...], jacobian: bool = False):
    """Distorted normalized (x'', y'') of undistorted (a, b); with jacobian, also d(x'', y'')/d(a, b)."""
    p1, p2 = k[2], k[3]
    s = a * a + b * b
    num, den = _opencv_radial(s, k)
    radial = num / den
    ab = a * b
    xd = a * radial + 2 * p1 * ab + p2 * (s + 2 * a * a)
    yd = b * radial + p1 * (s + 2 * b * b) + 2 * p2 * ab
    if not jacobian:
        return xd, yd
    dnum, dden = _opencv_radial_slopes(s, k)
    dradial = (dnum * den - num * dden) / (den * den)  # d radial / d s
    jxa = radial + 2 * a * a * dradial + 2 * p1 * b + 6 * p2 * a
    jxb = 2 * ab * dradial + 2 * p1 * a + 2 * p2 * b
    jya = 2 * ab * dradial + 2 * p1 * a + 2 * p2 * b
    jyb = radial + 2 * b * b * dradial + 6 * p1 * b + 2 * p2 * a
    return xd, yd, (jxa, jxb, jya, jyb)


def _opencv_radial_map(r: Tensor, k: tuple[float, ...]) -> tuple[Tensor, Tensor]:
    """g(r) = r radial(r^2) and g'(r) (radial part only)."""
    s = r * r
    (num, den), (dnum, dden) = _opencv_radial(s, k), _opencv_radial_slopes(s, k)
    radial = num / den
    return r * radial, radial + 2 * s * (dnum * den - num * dden) / (den * den)


def _fisheye_poly(t2: Tensor, k: tuple[float, ...]) -> Tensor:
    """theta_d / theta as a function of theta^2."""
    k1, k2, k3, k4 = k
    return 1 + t2 * (k1 + t2 * (k2 + t2 * (k3 + t2 * k4)))


def _fisheye_map(theta: Tensor, k: tuple[float, ...]) -> tuple[Tensor, Tensor]:
    """theta_d(theta) and its derivative."""
    k1, k2, k3, k4 = k
    t2 = theta * theta
    return theta * _fisheye_poly(t2, k), 1 + t2 * (3 * k1 + t2 * (5 * k2 + t2 * (7 * k3 + t2 * 9 * k4)))


# ----------------------------------------------------------------------------------------------------------
# project
# ----------------------------------------------------------------------------------------------------------

def project(camera: CameraSpec, points: Tensor) -> tuple[Tensor, Tensor]:
    """Project points (..., 3) in the camera optical frame (m) to pixels (..., 2) (u right, v down, px).

    Returns (pixels, valid (...,) bool). Differentiable w.r.t. points with finite gradients everywhere
    (the gradient is meaningful where valid). Keeps the dtype and device of `points`.
    """
    if points.shape[-1] != 3:
        raise ValueError(f"project: points must have shape (..., 3), got {tuple(points.shape)}")
    if not points.is_floating_point():
        raise TypeError(f"project: points must be floating point, got {points.dtype}")
    x, y, z = points.unbind(-1)
    if camera.model == "pinhole":
        valid = z > 0
        zs = torch.where(valid, z, torch.ones_like(z))
        a, b = x / zs, y / zs
    elif camera.model == "opencv":
        a, b, valid = _opencv_normalized(camera, x, y, z)
    elif camera.model == "fisheye":
        a, b, valid = _fisheye_normalized(camera, x, y, z)
    else:
        raise ValueError(f"unknown camera model {camera.model!r} (expected pinhole | opencv | fisheye)")
    return torch.stack((camera.fx * a + camera.cx, camera.fy * b + camera.cy), -1), valid


def _opencv_normalized(camera: CameraSpec, x: Tensor, y: Tensor, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    k = _opencv_coefficients(camera.distortion)
    r_max = max_valid_radius(camera)
    front = z > 0
    zs = torch.where(front, z, torch.ones_like(z))
    a, b = x / zs, y / zs
    s = a * a + b * b
    valid = front & (s < r_max * r_max)
    # Invalid lanes: pull the point onto the limit circle along its azimuth (finite values and gradients).
    over = s >= r_max * r_max
    shrink = r_max / torch.sqrt(torch.where(over, s, torch.ones_like(s)))
    shrink = torch.where(over, shrink, torch.ones_like(s))
    a, b = a * shrink, b * shrink
    xd, yd = _opencv_distort(a, b, k)
    return xd, yd, valid


def _fisheye_normalized(camera: CameraSpec, x: Tensor, y: Tensor, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    k = _fisheye_coefficients(camera.distortion)
    theta_max = max_valid_radius(camera)
    tiny = torch.finfo(x.dtype).tiny
    s = x * x + y * y
    one = torch.ones_like(s)
    # Near the optical axis (in front) use the series of atan(t)/t in t^2 = s/z^2: smooth, no sqrt.
    near = (z > 0) & (s < 1e-4 * z * z)
    zn = torch.where(near, z, one)
    t2 = s / (zn * zn)
    ratio = (1 + t2 * (-1 / 3 + t2 * (1 / 5 - t2 / 7))) / zn  # theta / |(x, y)|
    scale_near = ratio * _fisheye_poly(ratio * ratio * s, k)
    # Elsewhere: theta = atan2(|(x, y)|, z) with a safe radius; clamp theta to the valid limit.
    degenerate = ~near & (s <= tiny)  # on the axis behind the camera, or at the centre
    rho = torch.sqrt(torch.where(near | degenerate, one, s))
    theta = torch.atan2(rho, torch.where(near | degenerate, one, z))
    theta_c = torch.clamp(theta, max=theta_max)
    scale_far = theta_c * _fisheye_poly(theta_c * theta_c, k) / rho
    scale = torch.where(near, scale_near, scale_far)
    valid = (near & (ratio * ratio * s < theta_max * theta_max)) | (~near & ~degenerate & (theta < theta_max))
    return x * scale, y * scale, valid


# ----------------------------------------------------------------------------------------------------------
# unproject
# ----------------------------------------------------------------------------------------------------------

def unproject(camera: CameraSpec, pixels: Tensor) -> tuple[Tensor, Tensor]:
    """Unit ray directions (..., 3) in the camera optical frame of pixels (..., 2) (u right, v down, px).

    Returns (directions, valid (...,) bool); valid is False where no valid ray maps to the pixel (outside the
    monotonic region of the distortion). Exact inverse of `project` (Newton, converged in float64); invalid
    lanes get a ray just beyond the limit along the pixel's azimuth (which `project` marks invalid).
    Differentiable w.r.t. pixels where valid. Keeps the dtype and device of `pixels`.
    """
    if pixels.shape[-1] != 2:
        raise ValueError(f"unproject: pixels must have shape (..., 2), got {tuple(pixels.shape)}")
    if not pixels.is_floating_point():
        raise TypeError(f"unproject: pixels must be floating point, got {pixels.dtype}")
    xd = (pixels[..., 0] - camera.cx) / camera.fx
    yd = (pixels[..., 1] - camera.cy) / camera.fy
    if camera.model == "pinhole":
        rays = torch.stack((xd, yd, torch.ones_like(xd)), -1)
        return rays / torch.linalg.vector_norm(rays, dim=-1, keepdim=True), torch.ones_like(xd, dtype=torch.bool)
    if camera.model == "opencv":
        return _opencv_unproject(camera, xd, yd)
    if camera.model == "fisheye":
        return _fisheye_unproject(camera, xd, yd)
    raise ValueError(f"unknown camera model {camera.model!r} (expected pinhole | opencv | fisheye)")


def _converged(step: Tensor, scale: Tensor) -> Tensor:
    return ~(step.abs() > 1e-15 * (1 + scale.abs()))  # NaN counts as converged (and fails the residual check)


def _solve_monotone(fn, target: Tensor, upper: float) -> Tensor:
    """Solve fn(r) = target for r in [0, upper], fn increasing with fn(0) = 0 (safeguarded Newton, float64).

    Targets outside [0, fn(upper)) give 0 or upper. Only unconverged lanes are iterated.
    """
    target = target.reshape(-1)
    result = torch.minimum(target, torch.full_like(target, upper)).clamp_min(0)
    top = float(fn(torch.tensor(upper, dtype=target.dtype, device=target.device))[0])
    result = torch.where(target >= top, torch.full_like(result, upper), result)
    active = torch.nonzero((target > 0) & (target < top)).reshape(-1)
    r, goal = result[active], target[active]
    lo, hi = torch.zeros_like(r), torch.full_like(r, upper)
    for _ in range(_NEWTON_MAX_ITERS):
        value, slope = fn(r)
        f = value - goal
        lo = torch.where(f <= 0, r, lo)
        hi = torch.where(f >= 0, r, hi)
        step = r - f / slope
        inside = torch.isfinite(step) & (step > lo) & (step < hi)
        r_new = torch.where(inside, step, 0.5 * (lo + hi))
        r_new = torch.where(f == 0, r, r_new)
        exact = ~(f.abs() > 1e-15 * (1 + goal))  # residual at rounding level (see the 2D case below)
        r_new = torch.where(exact, r, r_new)
        done = _converged(r_new - r, r) | ~(hi - lo > 1e-15 * (1 + r)) | exact
        result[active] = r_new
        keep = ~done
        active, r, goal, lo, hi = active[keep], r_new[keep], goal[keep], lo[keep], hi[keep]
        if active.numel() == 0:
            break
    return result


def _opencv_unproject(camera: CameraSpec, xd: Tensor, yd: Tensor) -> tuple[Tensor, Tensor]:
    k = _opencv_coefficients(camera.distortion)
    r_max = max_valid_radius(camera)
    shape = xd.shape
    with torch.no_grad():
        pd, qd = xd.detach().to(torch.float64).reshape(-1), yd.detach().to(torch.float64).reshape(-1)
        # Initial guess: invert the radial part along the pixel's azimuth.
        rd = torch.sqrt(pd * pd + qd * qd)
        r = _solve_monotone(lambda t: _opencv_radial_map(t, k), rd, r_max)
        gain = torch.where(rd > 0, r / torch.where(rd > 0, rd, torch.ones_like(rd)), torch.ones_like(rd))
        a, b = pd * gain, qd * gain
        # 2D Newton with the tangential terms, kept inside the valid disc, on lanes that may have a solution
        # there (the tangential terms move a point by at most 3 (|p1| + |p2|) r^2).
        rd_max = float(_opencv_radial_map(torch.tensor(r_max, dtype=torch.float64), k)[0])
        reach = rd_max + 3 * (abs(k[2]) + abs(k[3])) * r_max * r_max
        active = torch.nonzero(rd <= reach * (1 + 1e-9)).reshape(-1)
        if k[2] == 0 and k[3] == 0:  # radial only: the radial inverse is already exact
            active = active[:0]
        ea, eb, ep, eq = a[active], b[active], pd[active], qd[active]
        for _ in range(_NEWTON_MAX_ITERS):
            fx_, fy_, (jxa, jxb, jya, jyb) = _opencv_distort(ea, eb, k, jacobian=True)
            ex, ey = fx_ - ep, fy_ - eq
            det = jxa * jyb - jxb * jya
            det = torch.where(det.abs() > 1e-300, det, torch.full_like(det, 1e-300))
            a_new = ea - (jyb * ex - jxb * ey) / det
            b_new = eb - (jxa * ey - jya * ex) / det
            s_new = a_new * a_new + b_new * b_new
            out = ~(s_new < r_max * r_max)  # also catches NaN
            # a step that would leave the disc goes halfway to the boundary point along the new azimuth instead
            pull = r_max * (1 - 1e-12) / torch.sqrt(torch.where(out & (s_new > 0), s_new, torch.ones_like(s_new)))
            a_out = torch.where(torch.isfinite(a_new), 0.5 * (ea + a_new * pull), ea)
            b_out = torch.where(torch.isfinite(b_new), 0.5 * (eb + b_new * pull), eb)
            a_new, b_new = torch.where(out, a_out, a_new), torch.where(out, b_out, b_new)
            # pulled to within 1e-6 of the boundary and still pushing out: no solution inside (invalid)
            stuck = out & (a_new * a_new + b_new * b_new > (r_max * (1 - 1e-6)) ** 2)
            # residual at rounding level already (near the fold the step is rounding noise times a large 1/J)
            exact = ~(torch.maximum(ex.abs(), ey.abs()) > 1e-15 * (1 + torch.maximum(ep.abs(), eq.abs())))
            a_new, b_new = torch.where(exact, ea, a_new), torch.where(exact, eb, b_new)
            done = (_converged(a_new - ea, ea) & _converged(b_new - eb, eb)) | stuck | exact
            a[active], b[active] = a_new, b_new
            keep = ~done
            active, ea, eb, ep, eq = active[keep], a_new[keep], b_new[keep], ep[keep], eq[keep]
            if active.numel() == 0:
                break
        fx_, fy_ = _opencv_distort(a, b, k)
        residual = torch.maximum((fx_ - pd).abs(), (fy_ - qd).abs())
        valid = (residual <= 1e-9 * (1 + rd)) & (a * a + b * b < r_max * r_max)
        # Invalid lanes: just beyond the limit ray along the pixel's azimuth (so `project` marks it invalid too).
        unit = torch.where(rd > 0, 1 / torch.where(rd > 0, rd, torch.ones_like(rd)), torch.zeros_like(rd))
        a = torch.where(valid, a, pd * unit * (r_max * _BEYOND)).reshape(shape)
        b = torch.where(valid, b, qd * unit * (r_max * _BEYOND)).reshape(shape)
        valid = valid.reshape(shape)
    dtype = xd.dtype
    a0, b0 = a.to(dtype), b.to(dtype)
    if xd.requires_grad or yd.requires_grad:
        # One Newton step with autograd: same value, gradient = J^-1 d(x'', y'') (implicit function theorem).
        fx_, fy_, (jxa, jxb, jya, jyb) = _opencv_distort(a0, b0, k, jacobian=True)
        ex, ey = fx_ - xd, fy_ - yd
        det = jxa * jyb - jxb * jya
        det = torch.where(valid & (det != 0), det, torch.ones_like(det))
        a0 = torch.where(valid, a0 - (jyb * ex - jxb * ey) / det, a0)
        b0 = torch.where(valid, b0 - (jxa * ey - jya * ex) / det, b0)
    rays = torch.stack((a0, b0, torch.ones_like(a0)), -1)
    return rays / torch.linalg.vector_norm(rays, dim=-1, keepdim=True), valid


def _fisheye_unproject(camera: CameraSpec, xd: Tensor, yd: Tensor) -> tuple[Tensor, Tensor]:
    k = _fisheye_coefficients(camera.distortion)
    theta_max = max_valid_radius(camera)
    with torch.no_grad():
        pd, qd = xd.detach().to(torch.float64), yd.detach().to(torch.float64)
        td = torch.sqrt(pd * pd + qd * qd)
        td_max = float(_fisheye_map(torch.tensor(theta_max, dtype=torch.float64), k)[0])
        theta = _solve_monotone(lambda t: _fisheye_map(t, k), td, theta_max).reshape(td.shape)
        residual = (_fisheye_map(theta, k)[0] - td).abs()
        valid = (td < td_max) & (residual <= 1e-9 * (1 + td)) & (theta < theta_max)
        theta = torch.where(valid, theta, torch.full_like(theta, min(theta_max * _BEYOND, math.pi)))
    dtype = xd.dtype
    th = theta.to(dtype)
    s = xd * xd + yd * yd
    if xd.requires_grad or yd.requires_grad:
        # One Newton step with autograd on theta_d(theta) = |(x'', y'')| (implicit gradient); theta = 0 on axis.
        on_axis = ~(s > 0)
        td_g = torch.sqrt(torch.where(on_axis, torch.ones_like(s), s))
        value, slope = _fisheye_map(th, k)
        step = th - (value - td_g) / torch.where(valid & ~on_axis, slope, torch.ones_like(slope))
        th = torch.where(valid & ~on_axis, step, th)
    # direction = (sin(theta) x''/theta_d, sin(theta) y''/theta_d, cos(theta)), theta_d = theta poly(theta^2)
    poly = _fisheye_poly(th * th, k)
    gain = torch.sinc(th / math.pi) / poly
    # invalid lanes: theta just beyond theta_max along the pixel azimuth (unit azimuth times sin(theta))
    td_safe = torch.sqrt(torch.where(s > 0, s, torch.ones_like(s)))
    gain_invalid = torch.where(s > 0, torch.sin(th) / td_safe, torch.zeros_like(s))
    gain = torch.where(valid, gain, gain_invalid)
    rays = torch.stack((xd * gain, yd * gain, torch.cos(th)), -1)
    return rays / torch.linalg.vector_norm(rays, dim=-1, keepdim=True), valid
