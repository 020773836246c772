"""Per-Gaussian attributes seen by a sensor: view-dependent colour from spherical harmonics."""

from __future__ import annotations

import torch
from torch import Tensor

from ..motion.rigid import RigidMotion
from ..scene.gaussians import GaussianScene
from ..scene.sh import sh_color


def gaussian_colors(scene: GaussianScene, frame: Tensor, bodies: list[RigidMotion | None], sensor_position: Tensor,
                    t_mid: float) -> Tensor:
    """RGB (N,3) of each Gaussian seen from sensor_position (world, at t_mid), SH evaluated per Gaussian.

    The viewing direction (sensor -> Gaussian mean at t_mid) is expressed in the Gaussian's own frame (world for
    static Gaussians, actor frame for actor Gaussians), where its SH coefficients live.
    """
    if scene.sh_rest is None:
        return scene.colors.clamp_min(0.0)
    dirs = torch.zeros_like(scene.means)
    for f, body in enumerate(bodies):
        sel = frame == f
        if not bool(sel.any()):
            continue
        if body is None:
            dirs[sel] = scene.means[sel] - sensor_position
        else:
            rot, pos = body.pose_at(torch.tensor(t_mid, dtype=scene.means.dtype))
            dirs[sel] = scene.means[sel] - ((sensor_position - pos) @ rot)
    dirs = dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return sh_color(scene.colors, scene.sh_rest, dirs)
