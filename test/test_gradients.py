"""Gradients of the reference renderer by torch.autograd.gradcheck on tiny float64 cases."""

from __future__ import annotations

from dataclasses import replace

import torch
from _scenes import camera_rig, ego_motion, lidar_rig, random_scene

from xsim_render.render import render_camera, render_lidar


def tiny_scene(seed: int, centre=(6.0, 0.0, 1.4), spread=(0.6, 0.6, 0.3)):
    scene = random_scene(4, seed=seed, centre=centre, spread=spread, sh_degree=1)
    scene.opacity_camera = torch.full_like(scene.opacity_camera, -0.5)  # sigma ~ 0.38: away from the clamps
    scene.opacity_lidar = torch.full_like(scene.opacity_lidar, -0.5)
    scene.log_scales = torch.full_like(scene.log_scales, -1.0)
    return scene


def test_camera_gradcheck():
    scene = tiny_scene(0)
    cam = camera_rig("opencv", width=10, height=8, readout=0.03)
    ego = ego_motion(True)

    def f(means, log_scales, opacity, colors, sh_rest):
        s = replace(scene, means=means, log_scales=log_scales, opacity_camera=opacity, colors=colors, sh_rest=sh_rest)
        out = render_camera(s, cam, ego, 0.0)
        return out["rgb"], out["alpha"], out["distance"]

    inputs = tuple(x.clone().requires_grad_(True) for x in
                   (scene.means, scene.log_scales, scene.opacity_camera, scene.colors, scene.sh_rest))
    assert render_camera(scene, cam, ego, 0.0)["alpha"].max() > 0.2
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5)


def test_lidar_gradcheck():
    scene = tiny_scene(1, centre=(5.0, 0.0, 1.8))
    lidar = replace(lidar_rig(columns=64), elevations=(-0.06, -0.02, 0.0, 0.03, 0.07))
    ego = ego_motion(True)

    def f(means, quats, opacity, intensity):
        s = replace(scene, means=means, quats=quats, opacity_lidar=opacity, intensity=intensity)
        out = render_lidar(s, lidar, ego, 0.0)
        return out["range"], out["alpha"], out["intensity"]

    inputs = tuple(x.clone().requires_grad_(True) for x in
                   (scene.means, scene.quats, scene.opacity_lidar, scene.intensity))
    assert render_lidar(scene, lidar, ego, 0.0)["alpha"].max() > 0.2
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-5)
