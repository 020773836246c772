"""Mesh building blocks of the synthetic world and the car and pedestrian models.

Shapes are (vertices (V,3) float64 metres, faces (F,3) int) pairs with outward normals (counter-clockwise seen
from outside); `Parts` gathers shapes with a material name per face and an object name into one mesh.
Model frames (cars, pedestrians): origin at the centre of the box of extent CAR_SIZE / PEDESTRIAN_SIZE
(length x, width y, height z), x forward, y left, z up, as in xsim_msgs/ActorState.
"""

from __future__ import annotations

import math

import numpy as np
import trimesh

from .materials import Material

CAR_SIZE = (4.5, 1.85, 1.5)
PEDESTRIAN_SIZE = (0.5, 0.7, 1.75)


def yaw_matrix(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def quad(p0, p1, p2, p3) -> tuple[np.ndarray, np.ndarray]:
    """Planar quad p0..p3 (counter-clockwise seen from its front side, normal (p1-p0) x (p2-p0))."""
    return np.array([p0, p1, p2, p3], dtype=np.float64), np.array([[0, 1, 2], [0, 2, 3]])


def rect_z(x0: float, x1: float, y0: float, y1: float, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal rectangle facing up."""
    return quad((x0, y0, z), (x1, y0, z), (x1, y1, z), (x0, y1, z))


def box(center, size, yaw: float = 0.0, bottom: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Closed box (outward normals) of extents size centred at center, turned by yaw; bottom face optional."""
    b = trimesh.creation.box(extents=size)
    faces = b.faces if bottom else b.faces[b.face_normals[:, 2] > -0.5]
    return b.vertices @ yaw_matrix(yaw).T + np.asarray(center, dtype=np.float64), faces


def cylinder(base, radius: float, height: float, sections: int = 12, axis: str = "z",
              bottom: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Closed cylinder standing on `base` (axis z), or centred at `base` with its axis along y."""
    c = trimesh.creation.cylinder(radius=radius, height=height, sections=sections)
    v, f = c.vertices.copy(), c.faces
    if axis == "z":
        if not bottom:
            f = f[c.face_normals[:, 2] > -0.5]
        v[:, 2] += height / 2
    else:
        v = v[:, [0, 2, 1]] * np.array([1.0, -1.0, 1.0])
        f = f[:, [0, 2, 1]]
    return v + np.asarray(base, dtype=np.float64), f


class Parts:
    """Accumulates shapes with per-face material and object labels into one mesh."""

    def __init__(self, materials: list[Material]) -> None:
        self.index = {m.name: i for i, m in enumerate(materials)}
        self.vertices: list[np.ndarray] = []
        self.faces: list[np.ndarray] = []
        self.face_material: list[np.ndarray] = []
        self.face_object: list[np.ndarray] = []
        self.names: list[str] = []
        self.count = 0

    def add(self, shape: tuple[np.ndarray, np.ndarray], material: str | list[str], obj: str = "") -> None:
        """Add a shape; material is a name, or one name per face."""
        v, f = shape
        names = [material] * len(f) if isinstance(material, str) else material
        if obj not in self.names:
            self.names.append(obj)
        self.vertices.append(np.asarray(v, dtype=np.float64))
        self.faces.append(np.asarray(f, dtype=np.int64) + self.count)
        self.face_material.append(np.array([self.index[n] for n in names], dtype=np.int32))
        self.face_object.append(np.full(len(f), self.names.index(obj), dtype=np.int32))
        self.count += len(v)

    def add_parts(self, parts: Parts, rotation: np.ndarray, translation, obj: str) -> None:
        """Add another part list (e.g. a car built in its own frame) moved by (rotation, translation)."""
        mesh, mats, _, _ = parts.build()
        v = mesh.vertices @ rotation.T + np.asarray(translation, dtype=np.float64)
        names = [list(self.index)[m] for m in mats]
        self.add((v, mesh.faces), names, obj)

    def build(self) -> tuple[trimesh.Trimesh, np.ndarray, np.ndarray, list[str]]:
        """(mesh with float32-exact vertices, face_material (F,), face_object (F,), object names)."""
        v = np.concatenate(self.vertices).astype(np.float32).astype(np.float64)
        mesh = trimesh.Trimesh(v, np.concatenate(self.faces), process=False)
        return mesh, np.concatenate(self.face_material), np.concatenate(self.face_object), list(self.names)


def car_parts(materials: list[Material], paint: str) -> Parts:
    """A car in its actor frame (origin at the box centre, x forward): body, cabin (windows, painted roof), wheels."""
    length, width, height = CAR_SIZE
    z0 = -height / 2
    p = Parts(materials)
    body_h = 0.62
    p.add(box((0.0, 0.0, z0 + 0.28 + body_h / 2), (length, width, body_h)), paint)
    cab_len, cab_h = 0.55 * length, height - 0.28 - body_h
    v, f = box((-0.05 * length, 0.0, z0 + 0.28 + body_h + cab_h / 2), (cab_len, width - 0.14, cab_h))
    normals = trimesh.Trimesh(v, f, process=False).face_normals
    p.add((v, f), [paint if n[2] > 0.9 else "car_window" for n in normals])
    for sx in (-1, 1):
        for sy in (-1, 1):
            p.add(cylinder((sx * 0.32 * length, sy * (width / 2 - 0.13), z0 + 0.33), 0.33, 0.24, 12, "y"), "tire")
    return p


def pedestrian_parts(materials: list[Material]) -> Parts:
    """A pedestrian in its actor frame (origin at the box centre, facing +x): legs, torso, arms, head."""
    z0 = -PEDESTRIAN_SIZE[2] / 2
    p = Parts(materials)
    for sy in (-1, 1):
        p.add(box((0.0, sy * 0.1, z0 + 0.425), (0.18, 0.16, 0.85)), "pedestrian")
        p.add(box((0.0, sy * 0.29, z0 + 1.12), (0.12, 0.1, 0.6)), "pedestrian")
    p.add(box((0.0, 0.0, z0 + 1.15), (0.28, 0.46, 0.6)), "pedestrian")
    p.add(box((0.02, 0.0, z0 + 1.6), (0.22, 0.2, 0.26)), "skin")
    return p



def ball(center, radius: float, subdivisions: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Low-polygon sphere (an icosphere: 20 faces at subdivisions 0) of `radius` centred at `center`."""
    s = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return s.vertices + np.asarray(center, dtype=np.float64), s.faces
