"""Per-Gaussian attributes seen by a sensor: view-dependent colour from spherical harmonics."""

from __future__ import annotations

import torch
from torch import Tensor

from ..scene.gaussians import GaussianScene
from ..scene.sh import sh_color
from .rasterize import GaussianFrames


def gaussian_colors(scene: GaussianScene, gaussians: GaussianFrames, sensor_position: Tensor, t_mid: float) -> Tensor:
    """RGB (N,3) of each Gaussian seen from sensor_position (same frame as gaussians' static means, at t_mid).

    The viewing direction (sensor -> Gaussian mean at t_mid) is expressed in the Gaussian's own frame (the scene
    frame for static Gaussians, undoing the scene's world placement; the actor frame for actor Gaussians), where
    its SH coefficients live.
    """
    if scene.sh_rest is None:
        return scene.colors.clamp_min(0.0)
    means, frame = gaussians.means, gaussians.frame
    dirs = torch.zeros_like(means)
    for f, body in enumerate(gaussians.bodies):
        sel = frame == f
        if not bool(sel.any()):
            continue
        if body is None:
            dirs[sel] = means[sel] - sensor_position
            placement = scene.world_from_scene
            if placement is not None and placement.has_rotation:
                dirs[sel] = dirs[sel] @ placement.rotation.to(means.dtype)
        else:
            rot, pos = body.pose_at(torch.tensor(t_mid, dtype=means.dtype))
            dirs[sel] = means[sel] - ((sensor_position - pos) @ rot)
    dirs = dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return sh_color(scene.colors, scene.sh_rest, dirs)
