"""Learned decoders over rendered features (SplatAD section 3.2-3.3).

CameraDecoder: a small CNN over the feature map and ray directions predicting a per-pixel affine map
(M, b) applied to the composited base colour: rgb = M * F_rgb + b.
LidarDecoder: an MLP over composited features and the ray direction giving intensity and ray-drop logit.
Both are stored as safetensors weights plus their `config` dict (see scene/native.py).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class CameraDecoder(nn.Module):
    """CNN decoder: (features (H,W,F), directions (H,W,3) in the sensor frame, base rgb (H,W,3)) -> rgb."""

    def __init__(self, feature_dim: int, hidden: int = 32, layers: int = 2, kernel_size: int = 3) -> None:
        super().__init__()
        self.config = {"type": "camera_cnn", "feature_dim": feature_dim, "hidden": hidden, "layers": layers,
                       "kernel_size": kernel_size}
        mods: list[nn.Module] = []
        channels = feature_dim + 3
        for _ in range(layers):
            mods += [nn.Conv2d(channels, hidden, kernel_size, padding=kernel_size // 2), nn.ReLU()]
            channels = hidden
        mods.append(nn.Conv2d(channels, 6, 1))
        self.net = nn.Sequential(*mods)

    def forward(self, features: Tensor, directions: Tensor, rgb: Tensor) -> Tensor:
        x = torch.cat((features, directions), -1).permute(2, 0, 1)[None]
        out = self.net(x)[0].permute(1, 2, 0)
        scale = 1.0 + out[..., :3]
        bias = out[..., 3:]
        return scale * rgb + bias


class LidarDecoder(nn.Module):
    """MLP decoder: (features (...,F), directions (...,3) sensor frame) -> (intensity in [0,1], drop logit)."""

    def __init__(self, feature_dim: int, hidden: int = 32, layers: int = 2) -> None:
        super().__init__()
        self.config = {"type": "lidar_mlp", "feature_dim": feature_dim, "hidden": hidden, "layers": layers}
        mods: list[nn.Module] = []
        width = feature_dim + 3
        for _ in range(layers):
            mods += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        mods.append(nn.Linear(width, 2))
        self.net = nn.Sequential(*mods)

    def forward(self, features: Tensor, directions: Tensor) -> tuple[Tensor, Tensor]:
        out = self.net(torch.cat((features, directions), -1))
        return torch.sigmoid(out[..., 0]), out[..., 1]


def decoder_from_config(config: dict) -> nn.Module:
    """Build an (untrained) decoder from its stored config dict."""
    kind = config.get("type")
    args = {k: v for k, v in config.items() if k != "type"}
    if kind == "camera_cnn":
        return CameraDecoder(**args)
    if kind == "lidar_mlp":
        return LidarDecoder(**args)
    raise ValueError(f"decoder config: unknown type {kind!r} (camera_cnn | lidar_mlp)")
