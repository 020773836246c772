"""Real spherical harmonics of degree 0-3 (the 3DGS convention) evaluated from a view direction."""

from __future__ import annotations

from torch import Tensor

C0 = 0.28209479177387814
C1 = 0.4886025119029199
C2 = (1.0925484305920792, -1.0925484305920792, 0.31539156525252005, -1.0925484305920792, 0.5462742152960396)
C3 = (-0.5900435899266435, 2.890611442640554, -0.4570457994644658, 0.3731763325901154, -0.4570457994644658,
      1.445305721320277, -0.5900435899266435)


def sh_color(base_color: Tensor, sh_rest: Tensor | None, directions: Tensor) -> Tensor:
    """RGB (N,3) = base colour + higher SH bands along unit directions (N,3) (Gaussian frame), clamped >= 0.

    base_color already includes the DC term: base = 0.5 + C0 * f_dc. sh_rest (N,K,3), K in {3, 8, 15}.
    """
    if sh_rest is None:
        return base_color.clamp_min(0.0)
    x, y, z = directions.unbind(-1)
    k = sh_rest.shape[1]
    rgb = (base_color - C1 * y[:, None] * sh_rest[:, 0] + C1 * z[:, None] * sh_rest[:, 1]
           - C1 * x[:, None] * sh_rest[:, 2])
    if k > 3:
        xx, yy, zz, xy, yz, xz = x * x, y * y, z * z, x * y, y * z, x * z
        basis2 = (C2[0] * xy, C2[1] * yz, C2[2] * (2 * zz - xx - yy), C2[3] * xz, C2[4] * (xx - yy))
        for i, b in enumerate(basis2):
            rgb = rgb + b[:, None] * sh_rest[:, 3 + i]
        if k > 8:
            basis3 = (
                C3[0] * y * (3 * xx - yy), C3[1] * xy * z, C3[2] * y * (4 * zz - xx - yy),
                C3[3] * z * (2 * zz - 3 * xx - 3 * yy), C3[4] * x * (4 * zz - xx - yy),
                C3[5] * z * (xx - yy), C3[6] * x * (xx - 3 * yy),
            )
            for i, b in enumerate(basis3):
                rgb = rgb + b[:, None] * sh_rest[:, 8 + i]
    return rgb.clamp_min(0.0)
