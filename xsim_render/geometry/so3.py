"""SO(3) exponential and logarithm maps (axis-angle vectors in radians)."""

from __future__ import annotations

import torch
from torch import Tensor


def hat(w: Tensor) -> Tensor:
    """Skew-symmetric matrix (..., 3, 3) with hat(w) @ x == cross(w, x)."""
    zero = torch.zeros_like(w[..., 0])
    wx, wy, wz = w.unbind(-1)
    return torch.stack((zero, -wz, wy, wz, zero, -wx, -wy, wx, zero), -1).reshape(w.shape[:-1] + (3, 3))


def exp(w: Tensor) -> Tensor:
    """Rotation matrix Exp(w) by Rodrigues' formula, smooth at w = 0 (Taylor branch)."""
    theta2 = (w * w).sum(-1)[..., None, None]
    small = theta2 < 1e-8
    theta2_safe = torch.where(small, torch.ones_like(theta2), theta2)
    theta = theta2_safe.sqrt()
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta2_safe)
    k = hat(w)
    eye = torch.eye(3, dtype=w.dtype, device=w.device).expand(k.shape)
    return eye + a * k + b * (k @ k)


def log(r: Tensor) -> Tensor:
    """Axis-angle vector of a rotation matrix (angle in [0, pi])."""
    from .quaternion import from_matrix

    q = from_matrix(r)
    vec = q[..., 1:]
    sin_half = vec.norm(dim=-1, keepdim=True)
    angle = 2 * torch.atan2(sin_half, q[..., :1])
    scale = torch.where(sin_half < 1e-12, 2.0 / q[..., :1].clamp_min(1e-12), angle / sin_half.clamp_min(1e-30))
    return vec * scale


def rotate(w: Tensor, v: Tensor) -> Tensor:
    """Exp(w) v for axis-angle vectors w and vectors v (broadcast, ..., 3) without forming matrices."""
    w, v = torch.broadcast_tensors(w, v)
    theta2 = (w * w).sum(-1, keepdim=True)
    small = theta2 < 1e-8
    theta2_safe = torch.where(small, torch.ones_like(theta2), theta2)
    theta = theta2_safe.sqrt()
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta2_safe)
    wxv = torch.linalg.cross(w, v)
    return v + a * wxv + b * torch.linalg.cross(w, wxv)
