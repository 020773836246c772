"""Spherical harmonics basis and the learned decoders in the render path."""

from __future__ import annotations

import math

import torch
from _scenes import camera_rig, ego_motion, lidar_rig, random_scene

from xsim_render.render import render_camera, render_lidar
from xsim_render.scene.decoders import CameraDecoder, LidarDecoder
from xsim_render.scene.sh import C0, sh_color


def test_sh_basis_is_orthonormal():
    """Each SH coefficient of degree 1-3 multiplies a real spherical harmonic: orthonormal on the sphere."""
    g = torch.Generator().manual_seed(0)
    d = torch.randn(400000, 3, generator=g, dtype=torch.float64)
    d = d / d.norm(dim=-1, keepdim=True)
    basis = [torch.full((d.shape[0],), C0, dtype=torch.float64)]
    for k in range(15):
        coeffs = torch.zeros(d.shape[0], 15, 3, dtype=torch.float64)
        coeffs[:, k, 0] = 1.0
        # base colour 10 keeps the clamp at 0 inactive; subtract it to get the basis function
        basis.append(sh_color(torch.full((d.shape[0], 3), 10.0, dtype=torch.float64), coeffs, d)[:, 0] - 10.0)
    y = torch.stack(basis, 1)
    gram = 4 * math.pi * (y.T @ y) / d.shape[0]
    assert torch.allclose(gram, torch.eye(16, dtype=torch.float64), atol=0.02)


def test_camera_decoder_is_applied_to_composited_features():
    scene = random_scene(40, seed=4)
    scene.features = torch.rand(40, 4, dtype=torch.float64)
    plain = render_camera(scene, camera_rig(), ego_motion(False), 0.0)
    torch.manual_seed(0)
    scene.camera_decoder = CameraDecoder(4).double()
    out = render_camera(scene, camera_rig(), ego_motion(False), 0.0)
    expected = scene.camera_decoder(plain["features"], _optical_dirs(), plain["rgb"])
    assert torch.allclose(out["rgb"], expected)
    assert (out["rgb"] - plain["rgb"]).abs().max() > 1e-3


def _optical_dirs():
    from xsim_render.sensors.rays import camera_rays

    return camera_rays(camera_rig(), ego_motion(False), 0.0).directions_sensor


def test_lidar_decoder_drops_rays():
    scene = random_scene(80, seed=21, centre=(0.0, 0.0, 1.5), spread=(10.0, 10.0, 1.5))
    scene.features = torch.rand(80, 3, dtype=torch.float64)
    plain = render_lidar(scene, lidar_rig(), ego_motion(False), 0.0)
    decoder = LidarDecoder(3).double()
    with torch.no_grad():
        decoder.net[-1].bias.copy_(torch.tensor([0.0, 10.0], dtype=torch.float64))  # drop logit +10: drop all
    scene.lidar_decoder = decoder
    out = render_lidar(scene, lidar_rig(), ego_motion(False), 0.0)
    assert plain["points"].shape[0] > 50 and out["points"].shape[0] == 0
    assert (out["ray_drop_probability"] > 0.5).all()
    assert torch.allclose(out["range_median"], plain["range_median"], equal_nan=True)
