"""Camera models (pinhole, OpenCV, OpenCV fisheye) against OpenCV itself, round trips, validity, gradients."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from xsim_render.sensors import camera_models as cm
from xsim_render.sensors.rig import CameraSpec

FX, FY, CX, CY = 500.0, 505.0, 319.5, 241.25
K = np.array([[FX, 0.0, CX], [0.0, FY, CY], [0.0, 0.0, 1.0]])
OPENCV_LENSES = {
    "k4": (-0.3, 0.1, 1e-3, -5e-4),
    "k5": (-0.3, 0.1, 1e-3, -5e-4, -0.02),
    "k8": (-0.3, 0.1, 1e-3, -5e-4, -0.02, 0.01, -0.005, 0.002),
}
FISHEYE_K = (0.05, -0.01, 0.002, -0.0005)
STRONG = (-0.5, 0.0, 0.0, 0.0)  # r (1 - 0.5 r^2) folds at r = sqrt(2/3)
CV_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-14)


def camera(model: str, distortion: tuple[float, ...] = ()) -> CameraSpec:
    return CameraSpec(name="cam", model=model, width=640, height=480, fx=FX, fy=FY, cx=CX, cy=CY,
                      distortion=distortion)


def all_cameras() -> list[CameraSpec]:
    return ([camera("pinhole")] + [camera("opencv", d) for d in OPENCV_LENSES.values()]
            + [camera("fisheye", FISHEYE_K)])


def random_points(n: int, max_angle: float, seed: int = 0) -> np.ndarray:
    """n points at 0.5..20 m within max_angle (rad) of the optical axis (float64, optical frame)."""
    rng = np.random.default_rng(seed)
    theta = np.arccos(rng.uniform(math.cos(max_angle), 1.0, n))
    phi = rng.uniform(-math.pi, math.pi, n)
    dist = rng.uniform(0.5, 20.0, n)
    return dist[:, None] * np.stack((np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)), -1)


def random_pixels(n: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0.0, 1.0, (n, 2)) * [640.0, 480.0]


def cv_project(cam: CameraSpec, pts: np.ndarray) -> np.ndarray:
    zero = np.zeros(3)
    if cam.model == "fisheye":
        out, _ = cv2.fisheye.projectPoints(pts[:, None, :], zero, zero, K, np.array(cam.distortion))
    else:
        out, _ = cv2.projectPoints(pts, zero, zero, K, np.array(cam.distortion or (0.0,) * 4))
    return out[:, 0, :]


def cv_undistort(cam: CameraSpec, pix: np.ndarray) -> np.ndarray:
    """Normalized (x/z, y/z) of pixels by OpenCV's own iterative undistortion."""
    if cam.model == "fisheye":
        out = cv2.fisheye.undistortPoints(pix[:, None, :], K, np.array(cam.distortion), criteria=CV_CRITERIA)
    else:
        out = cv2.undistortPoints(pix[:, None, :], K, np.array(cam.distortion or (0.0,) * 4), None, None, None,
                                  CV_CRITERIA)
    return out[:, 0, :]


# ---------------------------------------------------------------------------------------------- vs OpenCV

@pytest.mark.parametrize("lens", sorted(OPENCV_LENSES))
def test_opencv_project_matches_cv2(lens: str) -> None:
    cam = camera("opencv", OPENCV_LENSES[lens])
    limit = math.atan(min(cm.max_valid_radius(cam), 1.4)) * 0.95
    pts = random_points(2000, limit)
    pix, valid = cm.project(cam, torch.tensor(pts))
    assert pix.dtype == torch.float64 and pix.shape == (2000, 2)
    assert bool(valid.all())
    np.testing.assert_allclose(pix.numpy(), cv_project(cam, pts), rtol=0, atol=1e-6)


def test_fisheye_project_matches_cv2() -> None:
    cam = camera("fisheye", FISHEYE_K)
    pts = random_points(2000, math.radians(85))
    pts[0] = (0.0, 0.0, 3.0)  # exactly on the optical axis
    pts[1] = (1e-9, -2e-9, 1.0)  # next to it
    pix, valid = cm.project(cam, torch.tensor(pts))
    assert bool(valid.all())
    np.testing.assert_allclose(pix.numpy(), cv_project(cam, pts), rtol=0, atol=1e-6)
    np.testing.assert_allclose(pix[0].numpy(), [CX, CY], atol=1e-12)


def test_fisheye_near_axis_matches_cv2_tightly() -> None:
    # within 0.6 deg of the axis (where a series replaces atan): pixels are within ~5 px of the principal point,
    # so OpenCV's float64 result is good to ~1e-13 px
    cam = camera("fisheye", FISHEYE_K)
    rng = np.random.default_rng(11)
    angle = np.concatenate((rng.uniform(0, 0.0101, 500), [0.00999, 0.01, 0.01001]))  # around the switch-over
    phi = rng.uniform(-math.pi, math.pi, len(angle))
    pts = 3.0 * np.stack((np.sin(angle) * np.cos(phi), np.sin(angle) * np.sin(phi), np.cos(angle)), -1)
    pix, valid = cm.project(cam, torch.tensor(pts))
    assert bool(valid.all())
    np.testing.assert_allclose(pix.numpy(), cv_project(cam, pts), rtol=0, atol=1e-10)


def test_pinhole_project_matches_cv2_and_formula() -> None:
    cam = camera("pinhole")
    pts = random_points(500, math.radians(70))
    pix, valid = cm.project(cam, torch.tensor(pts))
    assert bool(valid.all())
    np.testing.assert_allclose(pix.numpy(), cv_project(cam, pts), rtol=0, atol=1e-6)
    pix, _ = cm.project(cam, torch.tensor([[1.0, -2.0, 4.0]], dtype=torch.float64))
    np.testing.assert_allclose(pix.numpy(), [[FX * 0.25 + CX, FY * -0.5 + CY]], atol=1e-12)


@pytest.mark.parametrize("cam", all_cameras(), ids=lambda c: f"{c.model}{len(c.distortion)}")
def test_unproject_matches_cv2_undistort(cam: CameraSpec) -> None:
    pix = random_pixels(2000)
    pix[0] = (CX, CY)  # principal point
    dirs, valid = cm.unproject(cam, torch.tensor(pix))
    assert dirs.shape == (2000, 3) and dirs.dtype == torch.float64
    assert bool(valid.all())
    np.testing.assert_allclose(torch.linalg.vector_norm(dirs, dim=-1).numpy(), 1.0, atol=1e-12)
    assert bool((dirs[:, 2] > 0).all())  # all these pixels look less than 90 deg off-axis
    np.testing.assert_allclose(dirs[0].numpy(), [0.0, 0.0, 1.0], atol=1e-15)
    ref = cv_undistort(cam, pix)
    ref_dirs = np.concatenate((ref, np.ones((len(ref), 1))), -1)
    ref_dirs /= np.linalg.norm(ref_dirs, axis=-1, keepdims=True)
    np.testing.assert_allclose(dirs.numpy(), ref_dirs, rtol=0, atol=1e-9)
    np.testing.assert_allclose((dirs[:, :2] / dirs[:, 2:]).numpy(), ref, rtol=0, atol=1e-9)


# ---------------------------------------------------------------------------------------------- round trips

@pytest.mark.parametrize("cam", all_cameras(), ids=lambda c: f"{c.model}{len(c.distortion)}")
def test_round_trip_pixels(cam: CameraSpec) -> None:
    # pixels well outside the image too: those inside it must all be valid, most of the others too
    pix = torch.tensor(random_pixels(3000) * 1.4 - [128.0, 96.0])
    dirs, valid = cm.unproject(cam, pix)
    inside = (pix[:, 0] >= 0) & (pix[:, 0] <= 640) & (pix[:, 1] >= 0) & (pix[:, 1] <= 480)
    assert bool(valid[inside].all())
    assert float(valid[~inside].double().mean()) > 0.5
    back, back_valid = cm.project(cam, dirs * 7.5)
    assert torch.equal(back_valid, valid)
    assert float((back - pix)[valid].abs().max()) < 1e-6


@pytest.mark.parametrize("cam", all_cameras(), ids=lambda c: f"{c.model}{len(c.distortion)}")
def test_round_trip_points(cam: CameraSpec) -> None:
    limit = math.radians(100) if cam.model == "fisheye" else math.atan(min(cm.max_valid_radius(cam), 1.4)) * 0.95
    pts = torch.tensor(random_points(2000, limit, seed=3))
    pix, valid = cm.project(cam, pts)
    assert bool(valid.all())
    dirs, dvalid = cm.unproject(cam, pix)
    assert bool(dvalid.all())
    expected = pts / torch.linalg.vector_norm(pts, dim=-1, keepdim=True)
    assert float((dirs - expected).abs().max()) < 1e-10


def test_batched_shapes_and_float32() -> None:
    pts64 = torch.tensor(random_points(2 * 3 * 4, math.radians(40), seed=5)).reshape(2, 3, 4, 3)
    for cam in all_cameras():
        pix64, valid64 = cm.project(cam, pts64)
        assert pix64.shape == (2, 3, 4, 2) and valid64.shape == (2, 3, 4) and valid64.dtype == torch.bool
        flat, _ = cm.project(cam, pts64.reshape(-1, 3))
        assert torch.equal(flat.reshape(2, 3, 4, 2), pix64)
        pix32, valid32 = cm.project(cam, pts64.float())
        assert pix32.dtype == torch.float32 and torch.equal(valid32, valid64)
        assert float((pix32.double() - pix64).abs().max()) < 1e-3
        dirs32, dvalid32 = cm.unproject(cam, pix32)
        assert dirs32.dtype == torch.float32 and dirs32.shape == (2, 3, 4, 3) and bool(dvalid32.all())
        expected = pts64 / torch.linalg.vector_norm(pts64, dim=-1, keepdim=True)
        assert float((dirs32.double() - expected).abs().max()) < 1e-5


# ---------------------------------------------------------------------------------------------- validity

def test_pinhole_behind_and_in_plane_invalid() -> None:
    cam = camera("pinhole")
    pts = torch.tensor([[0.1, 0.2, 3.0], [0.1, 0.2, -3.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    pix, valid = cm.project(cam, pts)
    assert valid.tolist() == [True, False, False, False]
    assert bool(torch.isfinite(pix).all())


def test_fisheye_beyond_90_degrees() -> None:
    cam = camera("fisheye", FISHEYE_K)
    theta_max = cm.max_valid_radius(cam)
    # first zero of d theta_d / d theta = 1 + 3 k1 t^2 + 5 k2 t^4 + 7 k3 t^6 + 9 k4 t^8
    roots = np.roots([9 * FISHEYE_K[3], 0, 7 * FISHEYE_K[2], 0, 5 * FISHEYE_K[1], 0, 3 * FISHEYE_K[0], 0, 1])
    positive = sorted(r.real for r in roots if abs(r.imag) < 1e-12 and r.real > 0)
    assert theta_max == pytest.approx(positive[0], abs=1e-12)
    assert math.radians(100) < theta_max < math.radians(130)

    def at(deg: float, phi: float = 0.7) -> list[float]:
        t = math.radians(deg)
        return [4 * math.sin(t) * math.cos(phi), 4 * math.sin(t) * math.sin(phi), 4 * math.cos(t)]

    pts = torch.tensor([at(100), at(90), at(math.degrees(theta_max) + 1), at(180), [0.0] * 3], dtype=torch.float64)
    pix, valid = cm.project(cam, pts)
    assert valid.tolist() == [True, True, False, False, False]
    assert bool(torch.isfinite(pix).all())
    # 100 deg: theta_d from the polynomial, along the point's azimuth, and back
    t = math.radians(100)
    k1, k2, k3, k4 = FISHEYE_K
    td = t * (1 + k1 * t**2 + k2 * t**4 + k3 * t**6 + k4 * t**8)
    np.testing.assert_allclose(pix[0].numpy(), [CX + FX * td * math.cos(0.7), CY + FY * td * math.sin(0.7)],
                               atol=1e-9)
    dirs, dvalid = cm.unproject(cam, pix[:2])
    assert dvalid.tolist() == [True, True]
    np.testing.assert_allclose(dirs.numpy(), (pts[:2] / 4).numpy(), atol=1e-12)
    assert float(dirs[0, 2]) < 0  # really behind the image plane
    # a pixel beyond the image of theta_max has no ray
    far = torch.tensor([[CX + FX * 3.0, CY]], dtype=torch.float64)
    far_dir, far_valid = cm.unproject(cam, far)
    assert far_valid.tolist() == [False] and bool(torch.isfinite(far_dir).all())


def test_strong_opencv_lens_far_points_invalid() -> None:
    cam = camera("opencv", STRONG)
    r_max = cm.max_valid_radius(cam)
    assert r_max == pytest.approx(math.sqrt(2 / 3), abs=1e-12)
    pts = np.array([[0.5, 0.0, 1.0], [0.8, 0.0, 1.0], [0.85, 0.0, 1.0], [1.5, 0.0, 1.0], [1.2, -1.2, 1.0]])
    pix, valid = cm.project(cam, torch.tensor(pts))
    assert valid.tolist() == [True, True, False, False, False]
    assert bool(torch.isfinite(pix).all())
    # OpenCV itself folds the far points back into the image: that is what validity guards against
    folded = cv_project(cam, pts)[3]
    assert 0 <= folded[0] < 640 and 0 <= folded[1] < 480
    # unproject: pixels beyond the fold radius (image corners) have no ray; consistent with project
    grid = torch.tensor(random_pixels(4000, seed=7))
    dirs, dvalid = cm.unproject(cam, grid)
    rd_max = r_max * (1 - 0.5 * r_max**2)
    norm_r = torch.hypot((grid[:, 0] - CX) / FX, (grid[:, 1] - CY) / FY)
    assert torch.equal(dvalid, norm_r < rd_max)
    assert 0.3 < float(dvalid.double().mean()) < 0.95
    assert bool(torch.isfinite(dirs).all())
    back, back_valid = cm.project(cam, dirs)
    assert torch.equal(back_valid, dvalid)
    assert float((back - grid)[dvalid].abs().max()) < 1e-6


def test_unknown_model_and_bad_shapes() -> None:
    with pytest.raises(ValueError, match="unknown camera model"):
        cm.project(camera("weird"), torch.zeros(1, 3))
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        cm.project(camera("pinhole"), torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        cm.unproject(camera("pinhole"), torch.zeros(4, 3))


def test_max_valid_radius_cached() -> None:
    cm._max_valid_radius_cached.cache_clear()
    cam = camera("opencv", OPENCV_LENSES["k5"])
    first = cm.max_valid_radius(cam)
    assert cm.max_valid_radius(camera("opencv", OPENCV_LENSES["k5"])) == first
    assert cm._max_valid_radius_cached.cache_info().hits == 1
    assert cm.max_valid_radius(camera("pinhole")) == math.inf
    assert cm.max_valid_radius(camera("opencv", OPENCV_LENSES["k4"])) == cm.OPENCV_SCAN_RADIUS  # never folds
    # the k5 lens: derivative of r radial(r) vanishes at the limit, positive just below
    k1, k2, _, _, k3 = OPENCV_LENSES["k5"]

    def slope(r: float) -> float:
        return 1 + 3 * k1 * r**2 + 5 * k2 * r**4 + 7 * k3 * r**6

    assert abs(slope(first)) < 1e-9 and slope(first * 0.99) > 0 and slope(first * 1.01) < 0


# ---------------------------------------------------------------------------------------------- gradients

@pytest.mark.parametrize("cam", all_cameras(), ids=lambda c: f"{c.model}{len(c.distortion)}")
def test_project_gradcheck(cam: CameraSpec) -> None:
    pts = torch.tensor([[0.3, -0.2, 2.0], [-1.0, 0.5, 1.5], [0.01, 0.02, 5.0], [0.4, 0.9, 1.1]],
                       dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p: cm.project(cam, p)[0], (pts,))


def test_fisheye_gradcheck_near_and_behind_axis() -> None:
    cam = camera("fisheye", FISHEYE_K)
    pts = torch.tensor([[1e-4, -2e-4, 2.0], [3e-3, 1e-3, 0.5], [1.0, 0.5, -0.4], [0.0, 0.3, -0.05]],
                       dtype=torch.float64, requires_grad=True)
    assert bool(cm.project(cam, pts)[1].all())
    assert torch.autograd.gradcheck(lambda p: cm.project(cam, p)[0], (pts,))


@pytest.mark.parametrize("cam", all_cameras(), ids=lambda c: f"{c.model}{len(c.distortion)}")
def test_gradients_on_axis_and_invalid_lanes_finite(cam: CameraSpec) -> None:
    z = 2.0
    pts = torch.tensor([[0.0, 0.0, z], [0.0, 0.0, -1.0], [0.0, 0.0, 0.0], [3.0, 1.0, 0.0], [50.0, 1.0, 1e-3]],
                       dtype=torch.float64, requires_grad=True)
    pix, valid = cm.project(cam, pts)
    assert bool(valid[0])
    (pix * torch.tensor([1.0, -2.0], dtype=torch.float64)).sum().backward()
    assert bool(torch.isfinite(pts.grad).all())
    # on the axis every model is pinhole to first order: du/dx = fx/z, dv/dy = fy/z, no dependence on z
    np.testing.assert_allclose(pts.grad[0].numpy(), [FX / z, -2 * FY / z, 0.0], atol=1e-9)
    jac = torch.autograd.functional.jacobian(lambda p: cm.project(cam, p)[0], pts.detach()[0])
    np.testing.assert_allclose(jac.numpy(), [[FX / z, 0, 0], [0, FY / z, 0]], atol=1e-9)


@pytest.mark.parametrize("cam", all_cameras(), ids=lambda c: f"{c.model}{len(c.distortion)}")
def test_unproject_gradcheck(cam: CameraSpec) -> None:
    pix = torch.tensor([[CX, CY], [100.0, 50.0], [600.5, 400.25], [CX + 1e-3, CY - 2e-3]],
                       dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p: cm.unproject(cam, p)[0], (pix,))
