"""A tiny render with a fast backend compared with the reference (used by `xsim doctor` and the GPU script)."""

from __future__ import annotations

import math

import torch

from ..motion.rigid import RigidMotion
from ..scene.gaussians import GaussianScene
from ..sensors.rig import rig_from_dict


def tiny_scene(n: int = 150, seed: int = 0) -> GaussianScene:
    """Random Gaussians 5-13 m in front of the ego (float64)."""
    g = torch.Generator().manual_seed(seed)
    f64 = torch.float64
    means = torch.rand(n, 3, generator=g, dtype=f64) * torch.tensor([8.0, 6.0, 2.0], dtype=f64) \
        + torch.tensor([5.0, -3.0, 0.2], dtype=f64)
    return GaussianScene(means=means, log_scales=torch.log(torch.rand(n, 3, generator=g, dtype=f64) * 0.3 + 0.05),
                         quats=torch.randn(n, 4, generator=g, dtype=f64),
                         opacity_camera=torch.randn(n, generator=g, dtype=f64) + 1.0,
                         opacity_lidar=torch.randn(n, generator=g, dtype=f64) + 1.0,
                         colors=torch.rand(n, 3, generator=g, dtype=f64), actor_ids=torch.full((n,), -1),
                         intensity=torch.rand(n, generator=g, dtype=f64))


def tiny_rig():
    return rig_from_dict({"sensors": [
        {"name": "cam", "type": "camera", "model": "pinhole", "width": 48, "height": 32, "fx": 30.0, "fy": 30.0,
         "cx": 24.0, "cy": 16.0, "rolling_shutter": {"direction": "top_to_bottom", "readout_time": 0.03},
         "extrinsics": {"translation": [1.5, 0.0, 1.4], "rotation_wxyz": [0.5, -0.5, 0.5, -0.5]}},
        {"name": "lidar", "type": "lidar", "columns": 128, "spin_rate_hz": 10.0,
         "elevations": [math.radians(-15 + 2 * i) for i in range(16)],
         "extrinsics": {"translation": [0.0, 0.0, 1.8]}}]})


def self_check(backend: str) -> float:
    """Largest difference (alpha, expected and median distance, colour/intensity) between `backend` and the
    reference on a tiny float64 camera + LiDAR capture with a moving ego; ~1e-12 when the backend is right."""
    from ..render import render_camera, render_lidar

    scene = tiny_scene()
    rig = tiny_rig()
    ego = RigidMotion.from_values((0, 0, 0), (1, 0, 0, 0), (8.0, 0.5, 0.0), (0.0, 0.0, 0.3))
    worst = 0.0
    with torch.no_grad():
        for sensor, keys in ((rig.sensor("cam"), ("rgb", "alpha", "distance", "distance_median")),
                             (rig.sensor("lidar"), ("intensity", "alpha", "range", "range_median"))):
            render = render_camera if sensor.type == "camera" else render_lidar
            ref = render(scene, sensor, ego, 0.0, backend="reference")
            out = render(scene, sensor, ego, 0.0, backend=backend)
            for k in keys:
                a, b = ref[k].to(torch.float64).cpu(), out[k].to(torch.float64).cpu()
                if not torch.equal(torch.isnan(a), torch.isnan(b)):
                    return math.inf
                worst = max(worst, float((a - b).nan_to_num().abs().max()))
    return worst
