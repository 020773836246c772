"""Surface materials of the synthetic world and the fixed, view-independent lighting of its camera images.

A material carries what both sensors need:
    camera   albedo (RGB in [0, 1]) times an optional procedural, low-frequency texture; camera_transparency
             (0 opaque .. 1 invisible): a camera ray keeps (1 - alpha) of what lies behind, alpha = 1 - it.
    LiDAR    reflectivity in [0, 1] (intensity = reflectivity * |cos(incidence)|), lidar_transparency (the
             probability that a beam passes through instead of returning) and dropout (the probability that a
             return is lost).

Lighting (`shade`, `lit_color`): ambient + diffuse from a fixed sun direction with |n . sun| (two-sided), in the
frame the surface lives in (the world for static surfaces, the actor frame for actors: the shading is baked on
the actor like a texture, so it does not change when the actor turns). It does not depend on the viewer, so a
Gaussian twin can bake it into each Gaussian's colour.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

TEXTURES = (None, "checker", "stripes", "bricks")
SUN_DIRECTION = np.array([0.45, 0.3, 0.84]) / np.linalg.norm([0.45, 0.3, 0.84])  # unit, towards the sun
AMBIENT = 0.45
DIFFUSE = 0.55
SKY_COLOR = (0.62, 0.76, 0.92)


def _cell_hash(*cells: np.ndarray) -> np.ndarray:
    """Deterministic pseudo-random value in [0, 1) per integer cell (a few integer arrays of equal shape)."""
    h = np.full(np.shape(cells[0]), 0x9E3779B1, dtype=np.uint64)
    for k, c in enumerate(cells):
        h ^= (np.asarray(c).astype(np.int64).astype(np.uint64) + np.uint64(0x7F4A7C15 + 977 * k)) * np.uint64(
            0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(29))) * np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(32)
    return (h & np.uint64(0xFFFFFF)).astype(np.float64) / float(0x1000000)


@dataclass
class Material:
    """A surface material. Textures are functions of the point in the surface's own frame (metres).

    texture: None | 'checker' (squares of side texture_scale in x, y and z) | 'stripes' (horizontal bands of
    height texture_scale) | 'bricks' (courses texture_scale high, bricks twice as long, along x + y, every brick
    its own shade). texture_contrast scales the texture's brightness variation around the albedo.
    """

    name: str
    albedo: tuple[float, float, float]
    texture: str | None = None
    reflectivity: float = 0.5
    camera_transparency: float = 0.0
    lidar_transparency: float = 0.0
    dropout: float = 0.0
    texture_scale: float = 1.0
    texture_contrast: float = 0.15

    def __post_init__(self) -> None:
        if self.texture not in TEXTURES:
            raise ValueError(f"material {self.name!r}: texture must be one of {TEXTURES}, got {self.texture!r}")
        self.albedo = tuple(float(a) for a in self.albedo)  # type: ignore[assignment]

    def color_at(self, points_local: np.ndarray) -> np.ndarray:
        """Albedo (M, 3) in [0, 1] at points (M, 3) in the surface's frame (texture evaluated there)."""
        p = np.asarray(points_local, dtype=np.float64).reshape(-1, 3)
        base = np.broadcast_to(np.asarray(self.albedo, dtype=np.float64), p.shape)
        if self.texture is None:
            return base.copy()
        s = self.texture_scale
        if self.texture == "checker":
            parity = (np.floor(p[:, 0] / s) + np.floor(p[:, 1] / s) + np.floor(p[:, 2] / s)) % 2
            factor = 1.0 + self.texture_contrast * (2 * parity - 1)
        elif self.texture == "stripes":
            factor = 1.0 + self.texture_contrast * (2 * (np.floor(p[:, 2] / s) % 2) - 1)
        else:  # bricks
            course = np.floor(p[:, 2] / s)
            along = (p[:, 0] + p[:, 1]) / (2 * s) + 0.5 * (course % 2)
            factor = 1.0 + self.texture_contrast * (2 * _cell_hash(course, np.floor(along)) - 1)
        return np.clip(base * factor[:, None], 0.0, 1.0)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["albedo"] = [float(a) for a in self.albedo]
        return d

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Material:
        return Material(**{**d, "albedo": tuple(d["albedo"])})


def shade(normals: np.ndarray) -> np.ndarray:
    """Lighting factor (M,) for unit normals (M, 3): AMBIENT + DIFFUSE |n . sun| (two-sided, view independent)."""
    return AMBIENT + DIFFUSE * np.abs(np.asarray(normals, dtype=np.float64) @ SUN_DIRECTION)


def lit_color(material: Material, points_local: np.ndarray, normals_local: np.ndarray) -> np.ndarray:
    """Camera colour (M, 3) in [0, 1] of a surface: textured albedo times `shade`, both in the surface's frame."""
    return np.clip(material.color_at(points_local) * shade(normals_local)[:, None], 0.0, 1.0)


def lit_colors(materials: list[Material], material_ids: np.ndarray, points_local: np.ndarray,
               normals_local: np.ndarray) -> np.ndarray:
    """`lit_color` for many points whose materials differ (material_ids (M,) index `materials`)."""
    out = np.zeros((len(material_ids), 3))
    for m in np.unique(material_ids):
        sel = material_ids == m
        out[sel] = lit_color(materials[int(m)], points_local[sel], normals_local[sel])
    return out


def standard_materials() -> list[Material]:
    """The palette of the street scenes (names are what tests and users look for)."""
    return [
        Material("road", (0.32, 0.32, 0.34), "checker", 0.12, dropout=0.01, texture_scale=4.0,
                 texture_contrast=0.04),
        Material("lane_marking", (0.92, 0.92, 0.88), None, 0.75, dropout=0.005),
        Material("sidewalk", (0.62, 0.6, 0.56), "checker", 0.3, dropout=0.01, texture_scale=1.5,
                 texture_contrast=0.06),
        Material("curb", (0.7, 0.7, 0.68), None, 0.35, dropout=0.01),
        Material("ground", (0.35, 0.42, 0.25), None, 0.2, dropout=0.02),
        Material("building_brick", (0.62, 0.33, 0.24), "bricks", 0.35, dropout=0.01, texture_scale=1.5,
                 texture_contrast=0.1),
        Material("building_plaster", (0.82, 0.78, 0.66), None, 0.45, dropout=0.01),
        Material("building_concrete", (0.55, 0.56, 0.58), "checker", 0.3, dropout=0.01, texture_scale=3.0,
                 texture_contrast=0.08),
        Material("building_blue", (0.4, 0.5, 0.66), "bricks", 0.3, dropout=0.01, texture_scale=2.0,
                 texture_contrast=0.08),
        Material("pole", (0.3, 0.31, 0.33), None, 0.5, dropout=0.005),
        Material("sign", (0.85, 0.2, 0.15), None, 0.95),
        Material("car_paint_red", (0.75, 0.12, 0.1), None, 0.6, dropout=0.005),
        Material("car_paint_blue", (0.15, 0.25, 0.65), None, 0.6, dropout=0.005),
        Material("car_paint_white", (0.88, 0.88, 0.86), None, 0.7, dropout=0.005),
        Material("car_paint_yellow", (0.9, 0.72, 0.12), None, 0.6, dropout=0.005),
        Material("car_window", (0.12, 0.14, 0.17), None, 0.15, dropout=0.02),
        Material("tire", (0.06, 0.06, 0.06), None, 0.05, dropout=0.02),
        Material("glass", (0.55, 0.7, 0.72), None, 0.08, camera_transparency=0.75, lidar_transparency=0.7),
        Material("shelter_frame", (0.2, 0.45, 0.3), None, 0.5, dropout=0.005),
        Material("pedestrian", (0.25, 0.35, 0.55), "stripes", 0.4, dropout=0.01, texture_scale=0.25,
                 texture_contrast=0.25),
        Material("skin", (0.78, 0.6, 0.48), None, 0.4, dropout=0.01),
        Material("bark", (0.33, 0.25, 0.18), None, 0.3, dropout=0.01),
        Material("foliage", (0.28, 0.45, 0.2), "checker", 0.35, dropout=0.02, texture_scale=0.7,
                 texture_contrast=0.12),
        Material("bin", (0.18, 0.32, 0.22), None, 0.4, dropout=0.005),
    ]
