"""The default precision (float32) against the float64 brute force on a street-sized scene.

A 60 m street of thin surfels (2 mm thick, as a trained or synthetic twin has them): road, sidewalks, two
facades with pilasters, poles, and a car-sized actor, seen by a moving rolling-shutter camera (96x72) and a
moving spinning LiDAR (16 x 256) from 0-60 m. Stated tolerances, measured with margin (see the asserts):
  camera: |alpha - ref| <= 1e-3 on 99.9 % of the pixels, medians within 1 mm on 99.9 % of the pixels where
          both return; |rgb - ref| <= 1e-2 on 98 % and 2e-3 on average (measured 99.0 %, max 0.09);
  LiDAR:  the same returns on 99.9 % of the firings, median range within 1 mm on 99.9 % of the common
          returns, |alpha - ref| <= 1e-3 on 99.9 %.
Disagreements are Gaussians whose alpha sits at the 1/255 threshold or whose hit distances tie within float32.
Colour takes the largest share: neighbouring surfels of one flat surface overlap and are hit at the same
distance in exact arithmetic, so their order (and the blend of their colours) is decided by rounding; geometry
(alpha, distances, returns) is unaffected.
"""

from __future__ import annotations

import math

import torch
from _scenes import CAMERA_OPTICAL_FORWARD, F64

from xsim_render.motion import RigidMotion
from xsim_render.motion.local_frame import LocalFrame
from xsim_render.raster.attributes import gaussian_colors
from xsim_render.raster.brute_force import integrate
from xsim_render.render import actor_motions, gaussian_frames, render_camera, render_lidar
from xsim_render.scene import Actor, GaussianScene, Trajectory
from xsim_render.sensors.rays import camera_rays, lidar_rays, sensor_motion
from xsim_render.sensors.rig import rig_from_dict


def _surfels(centres, normal_axis, spacing, g):
    """Flat surfels on a grid: scales (spacing*0.6, spacing*0.6, 2 mm) with the thin axis along normal_axis."""
    n = centres.shape[0]
    scales = torch.full((n, 3), 0.6 * spacing, dtype=F64)
    scales[:, normal_axis] = 0.002
    colours = 0.3 + 0.5 * torch.rand(n, 3, generator=g, dtype=F64)
    return centres, scales, colours


def street_scene(seed: int = 0) -> GaussianScene:
    g = torch.Generator().manual_seed(seed)
    parts = []
    xs = torch.arange(-10.0, 50.0, 1.0, dtype=F64)
    ys = torch.arange(-6.0, 6.01, 1.0, dtype=F64)
    gx, gy = torch.meshgrid(xs, ys, indexing="ij")
    ground = torch.stack((gx.reshape(-1), gy.reshape(-1), torch.where(gy.abs() > 4, 0.15, 0.0).reshape(-1)), -1)
    parts.append(_surfels(ground, 2, 1.0, g))
    for side in (-1.0, 1.0):
        fx, fz = torch.meshgrid(xs, torch.arange(0.5, 8.0, 1.0, dtype=F64), indexing="ij")
        y = side * (7.0 + 0.3 * (torch.div(fx, 4.0, rounding_mode="floor") % 2))  # pilasters / setbacks
        parts.append(_surfels(torch.stack((fx.reshape(-1), y.reshape(-1), fz.reshape(-1)), -1), 1, 1.0, g))
    poles = torch.tensor([[x, s * 4.6, z] for x in (5.0, 20.0, 35.0) for s in (-1, 1) for z in (0.5, 1.5, 2.5, 3.5)],
                         dtype=F64)
    parts.append((poles, torch.tensor([0.08, 0.08, 0.5], dtype=F64).expand(len(poles), 3).clone(),
                  torch.rand(len(poles), 3, generator=g, dtype=F64)))
    box = torch.stack(torch.meshgrid(torch.linspace(-2, 2, 9, dtype=F64), torch.linspace(-0.9, 0.9, 5, dtype=F64),
                                     torch.linspace(0.3, 1.4, 4, dtype=F64), indexing="ij"), -1).reshape(-1, 3)
    parts.append((box, torch.full((len(box), 3), 0.25, dtype=F64), torch.rand(len(box), 3, generator=g, dtype=F64)))
    means = torch.cat([p[0] for p in parts])
    scales = torch.cat([p[1] for p in parts])
    n, n_actor = means.shape[0], box.shape[0]
    actor_ids = torch.full((n,), -1, dtype=torch.long)
    actor_ids[-n_actor:] = 1
    opacity = torch.full((n,), 4.0, dtype=F64)
    opacity[-n_actor:] = 1.0
    actor = Actor(1, Trajectory(torch.tensor([-1.0, 2.0], dtype=F64),
                                torch.tensor([[22.0, -2.0, 0.0], [-5.0, -2.0, 0.0]], dtype=F64),
                                torch.tensor([[0.0, 0, 0, 1.0], [0.0, 0, 0, 1.0]], dtype=F64)))
    quats = torch.tensor([[1.0, 0, 0, 0]], dtype=F64).expand(n, 4)
    return GaussianScene(means=means, log_scales=scales.log(), quats=quats,
                         opacity_camera=opacity, opacity_lidar=opacity, colors=torch.cat([p[2] for p in parts]),
                         actor_ids=actor_ids, intensity=torch.rand(n, generator=g, dtype=F64), actors={1: actor})


def rig():
    return rig_from_dict({"sensors": [
        {"name": "cam", "type": "camera", "model": "pinhole", "width": 96, "height": 72, "fx": 60.0, "fy": 60.0,
         "cx": 48.0, "cy": 36.0, "rolling_shutter": {"direction": "top_to_bottom", "readout_time": 0.03},
         "extrinsics": {"translation": [1.5, 0.0, 1.5], "rotation_wxyz": CAMERA_OPTICAL_FORWARD}},
        {"name": "top", "type": "lidar", "columns": 256, "spin_rate_hz": 10.0, "spin_direction": "ccw",
         "seam_azimuth": math.pi, "min_range": 0.5, "max_range": 80.0,
         "elevations": [-0.30, -0.24, -0.19, -0.15, -0.12, -0.09, -0.07, -0.05, -0.035, -0.02, -0.01, 0.0,
                        0.02, 0.05, 0.1, 0.18],
         "extrinsics": {"translation": [0.0, 0.0, 1.9], "rotation_wxyz": [1, 0, 0, 0]}}]})


EGO = RigidMotion.from_values((0.0, 0.3, 0.0), (math.cos(0.02), 0, 0, math.sin(0.02)), (10.0, 0.2, 0.0),
                              (0.0, 0.0, 0.3), time=0.0)


def brute(scene: GaussianScene, spec, lidar: bool, chunk: int = 1024):
    local = LocalFrame(torch.zeros(3, dtype=F64), 0.0)
    rays = lidar_rays(spec, EGO, 0.0) if lidar else camera_rays(spec, EGO, 0.0)
    g = gaussian_frames(scene, actor_motions(scene, None, 0.0, spec.capture_duration), lidar, local)
    if lidar:
        values = scene.intensity[:, None]
    else:
        _, pos = sensor_motion(spec, EGO).pose_at(torch.tensor(0.5 * spec.capture_duration, dtype=F64))
        values = gaussian_colors(scene, g, pos, 0.5 * spec.capture_duration)
    o, d, t = rays.origins.reshape(-1, 3), rays.directions.reshape(-1, 3), rays.times.reshape(-1)
    outs = [integrate(o[i:i + chunk], d[i:i + chunk], t[i:i + chunk], g.means, g.rotations, g.log_scales.exp(),
                      g.sigma, values, g.bodies, g.frame, g.windows) for i in range(0, o.shape[0], chunk)]
    shape = rays.times.shape
    return {k: torch.cat([x[k] for x in outs]).reshape(shape + outs[0][k].shape[1:]) for k in outs[0]}


def share(mask: torch.Tensor) -> float:
    return float(mask.double().mean())


def test_street_camera_float32_vs_float64_brute_force():
    scene = street_scene()
    cam = rig().sensor("cam")
    out = render_camera(scene.to(torch.float32), cam, EGO, 0.0, backend="reference")
    ref = brute(scene, cam, lidar=False)
    assert share(ref["alpha"] > 0.9) > 0.7, "the street fills the image"
    assert share((out["alpha"].double() - ref["alpha"]).abs() <= 1e-3) >= 0.999
    rgb_err = (out["rgb"].double() - ref["value"]).abs().amax(-1)
    assert share(rgb_err <= 1e-2) >= 0.98 and rgb_err.mean() < 2e-3
    both = torch.isfinite(out["distance_median"]) & torch.isfinite(ref["distance_median"])
    assert share(both) > 0.7
    err = (out["distance_median"].double() - ref["distance_median"])[both].abs()
    assert share(err <= 1e-3) >= 0.999


def test_street_lidar_float32_vs_float64_brute_force():
    scene = street_scene()
    lidar = rig().sensor("top")
    out = render_lidar(scene.to(torch.float32), lidar, EGO, 0.0, backend="reference")
    ref = brute(scene, lidar, lidar=True)
    med = ref["distance_median"]
    ref_returns = torch.isfinite(med) & (med >= lidar.min_range) & (med <= lidar.max_range)
    assert share(ref_returns) > 0.5, "most firings hit the street"
    assert share(out["returns"] == ref_returns) >= 0.999
    both = out["returns"] & ref_returns
    err = (out["range_median"].double() - med)[both].abs()
    assert share(err <= 1e-3) >= 0.999
    assert share((out["alpha"].double() - ref["alpha"]).abs() <= 1e-3) >= 0.999
