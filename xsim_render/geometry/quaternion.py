"""Unit quaternions in (w, x, y, z) order, batched over leading dimensions (Hamilton product)."""

from __future__ import annotations

import torch
from torch import Tensor


def normalize(q: Tensor) -> Tensor:
    """Return q scaled to unit norm (last dim 4, wxyz)."""
    return q / q.norm(dim=-1, keepdim=True).clamp_min(1e-30)


def multiply(a: Tensor, b: Tensor) -> Tensor:
    """Hamilton product a (x) b of wxyz quaternions."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        (
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ),
        dim=-1,
    )


def conjugate(q: Tensor) -> Tensor:
    """Conjugate (inverse of a unit quaternion)."""
    return q * q.new_tensor([1.0, -1.0, -1.0, -1.0])


def to_matrix(q: Tensor) -> Tensor:
    """Rotation matrix (..., 3, 3) of a (not necessarily unit) wxyz quaternion."""
    w, x, y, z = normalize(q).unbind(-1)
    return torch.stack(
        (
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ),
        dim=-1,
    ).reshape(q.shape[:-1] + (3, 3))


def from_matrix(m: Tensor) -> Tensor:
    """wxyz unit quaternion (w >= 0) of a rotation matrix (..., 3, 3)."""
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    trace = m00 + m11 + m22
    def col(i: int, j: int) -> Tensor:
        return m[..., i, j]

    candidates = torch.stack(
        (
            torch.stack((1 + trace, col(2, 1) - col(1, 2), col(0, 2) - col(2, 0), col(1, 0) - col(0, 1)), -1),
            torch.stack((col(2, 1) - col(1, 2), 1 + m00 - m11 - m22, col(0, 1) + col(1, 0), col(0, 2) + col(2, 0)), -1),
            torch.stack((col(0, 2) - col(2, 0), col(0, 1) + col(1, 0), 1 - m00 + m11 - m22, col(1, 2) + col(2, 1)), -1),
            torch.stack((col(1, 0) - col(0, 1), col(0, 2) + col(2, 0), col(1, 2) + col(2, 1), 1 - m00 - m11 + m22), -1),
        ),
        dim=-2,
    )
    diag = torch.stack((trace, m00, m11, m22), -1)
    best = diag.argmax(-1)
    q = torch.gather(candidates, -2, best[..., None, None].expand(best.shape + (1, 4))).squeeze(-2)
    q = normalize(q)
    return torch.where(q[..., :1] < 0, -q, q)


def slerp(q0: Tensor, q1: Tensor, s: Tensor) -> Tensor:
    """Spherical linear interpolation from q0 (s=0) to q1 (s=1) along the short arc."""
    q0, q1 = normalize(q0), normalize(q1)
    dot = (q0 * q1).sum(-1, keepdim=True)
    q1 = torch.where(dot < 0, -q1, q1)
    dot = dot.abs().clamp(max=1.0)
    s = s[..., None] if s.dim() == q0.dim() - 1 else s
    theta = torch.acos(dot)
    sin_theta = torch.sin(theta)
    small = sin_theta < 1e-9
    safe = torch.where(small, torch.ones_like(sin_theta), sin_theta)
    w0 = torch.where(small, 1 - s, torch.sin((1 - s) * theta) / safe)
    w1 = torch.where(small, s, torch.sin(s * theta) / safe)
    return normalize(w0 * q0 + w1 * q1)
