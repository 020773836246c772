"""Gaussian twin of a synthetic World: flat surfels on every visible mesh surface, the demo scene.

Surfels. Each planar patch (edge-connected coplanar triangles of one object and material, e.g. a box side or a
road quad) gets a regular lattice in its own minimum-area rectangle frame (e1, e2 in the plane, e3 = normal):
spacing h_u, h_v at most (and close to) the patch's target spacing h, the outermost rows EDGE_INSET spacings inside the
patch's edges, keeping the lattice points that fall inside its triangles. Every surfel is a Gaussian flat along
the normal (std NORMAL_SCALE), with tangent stds K_TANGENT * (h_u, h_v). With these constants a ray through the
interior of a patch keeps at most ~3 % transmittance after it, and the transmittance 0.5 contour (LiDAR median
distance) lies on the patch's edges. The target spacing of a patch is
    h = clip(min(object size / divisor, texture_scale / 2), spacing / 8, spacing)
with the object's bounding-box diagonal as its size and divisor SIZE_DIVISOR for static objects,
ACTOR_SIZE_DIVISOR for actors (small objects, actors and fine textures get denser surfels).

Appearance. colour = the camera ground truth's lit albedo at the surfel (materials.lit_color: textured albedo
times the fixed sun/ambient lighting, in the object's own frame); camera/LiDAR opacity 0.99 for opaque
materials; a transparent material gets the opacity that makes the patch's mean alpha equal 1 - transparency
(calibrated for the lattice, where neighbouring surfels overlap); intensity = reflectivity; sky = World.sky_color.

Frames. Static surfels in the world frame (actor_id -1); actor surfels in their actor's frame with
scene.actors[id] = Actor(id, trajectory, category, size). Static faces that face away from every point of the
roads' boxes 0.3-4 m above them (building backs and roofs, curbs' backs) are left out: no viewer on a road can
see them; transparent faces are always kept.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
import trimesh
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..geometry import quaternion
from ..scene.actors import Actor
from ..scene.gaussians import GaussianScene
from ..scene.sky import Sky
from .materials import Material, lit_colors
from .world import World

K_TANGENT = 0.65
EDGE_INSET = 0.9
NORMAL_SCALE = 0.002
OPAQUE_SIGMA = 0.99
DEFAULT_SPACING = 0.5
SIZE_DIVISOR = 25.0        # static objects: target spacing <= bounding-box diagonal / this
ACTOR_SIZE_DIVISOR = 40.0  # moving actors (often close to the ego): finer
VIEW_HEIGHTS = (0.3, 4.0)


def _patches(mesh: trimesh.Trimesh, labels: np.ndarray) -> list[np.ndarray]:
    """Face index arrays of edge-connected, coplanar (normals within ~0.1 deg) faces with equal labels."""
    n = len(mesh.faces)
    pairs = mesh.face_adjacency
    if len(pairs):
        normals = mesh.face_normals
        same = (np.einsum("ij,ij->i", normals[pairs[:, 0]], normals[pairs[:, 1]]) > 1 - 2e-6) & (
            labels[pairs[:, 0]] == labels[pairs[:, 1]])
        pairs = pairs[same]
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n)) if len(pairs) else \
        coo_matrix((n, n))
    count, comp = connected_components(graph, directed=False)
    order = np.argsort(comp, kind="stable")
    return np.split(order, np.cumsum(np.bincount(comp, minlength=count))[:-1])


def _plane_frame(tri: np.ndarray, normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """In-plane axes (e1, e2) of the minimum-area bounding rectangle of triangles (F,3,3) with unit normal."""
    pts = tri.reshape(-1, 3)
    edges = np.concatenate([tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 1], tri[:, 0] - tri[:, 2]])
    edges -= np.outer(edges @ normal, normal)
    lengths = np.linalg.norm(edges, axis=1)
    edges = edges[lengths > 1e-9] / lengths[lengths > 1e-9, None]
    best, best_area = None, np.inf
    for e1 in edges:
        e2 = np.cross(normal, e1)
        u, v = pts @ e1, pts @ e2
        area = np.ptp(u) * np.ptp(v)
        if area < best_area - 1e-12:
            best, best_area = (e1, e2), area
    return best


def _axis_lattice(lo: float, hi: float, h: float) -> tuple[np.ndarray, float]:
    """Lattice coordinates on [lo, hi]: n points spaced s <= h with EDGE_INSET * s margins at both ends."""
    width = hi - lo
    n = max(1, int(math.ceil(width / h - (2 * EDGE_INSET - 1) - 1e-9)))
    step = width / (n - 1 + 2 * EDGE_INSET)
    return lo + step * (EDGE_INSET + np.arange(n)), step


def _inside(points: np.ndarray, tri2: np.ndarray) -> np.ndarray:
    """(P,) whether 2D points lie in any of the 2D triangles (F,3,2) (edges included)."""
    inside = np.zeros(len(points), dtype=bool)
    for a, b, c in tri2:
        area = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
        if abs(area) < 1e-14:
            continue
        sign, tol = np.sign(area), -1e-9 * abs(area)
        ok = np.ones(len(points), dtype=bool)
        for p, q in ((a, b), (b, c), (c, a)):
            ok &= sign * ((q[0] - p[0]) * (points[:, 1] - p[1]) - (q[1] - p[1]) * (points[:, 0] - p[0])) >= tol
        inside |= ok
    return inside


def _surfels(mesh: trimesh.Trimesh, faces_mask: np.ndarray, labels: np.ndarray, spacing_of_face: np.ndarray
             ) -> tuple[np.ndarray, ...]:
    """Surfel means (M,3), rotations (M,3,3) (columns e1, e2, normal), tangent stds (M,2) and face index (M,)."""
    means, rots, stds, faces = [], [], [], []
    keep_labels = np.where(faces_mask, labels, -1)
    for patch in _patches(mesh, keep_labels):
        if not faces_mask[patch[0]]:
            continue
        tri = mesh.triangles[patch]
        normal = mesh.face_normals[patch[0]]
        frame = _plane_frame(tri, normal)
        if frame is None:
            continue
        e1, e2 = frame
        u, v = tri @ e1, tri @ e2
        h = float(spacing_of_face[patch[0]])
        gu, su = _axis_lattice(u.min(), u.max(), h)
        gv, sv = _axis_lattice(v.min(), v.max(), h)
        grid = np.stack(np.meshgrid(gu, gv, indexing="ij"), -1).reshape(-1, 2)
        tri2 = np.stack([u, v], -1)
        grid = grid[_inside(grid, tri2)]
        if len(grid) == 0:  # a sliver: one surfel at its centroid
            grid = np.array([[u.mean(), v.mean()]])
        offset = float(tri[0, 0] @ normal)
        pts = grid[:, :1] * e1 + grid[:, 1:] * e2 + offset * normal
        # the face each surfel lies on (for its material), nearest centroid among the patch's faces
        cent2 = tri2.mean(1)
        owner = patch[np.argmin(((grid[:, None] - cent2[None]) ** 2).sum(-1), 1)]
        means.append(pts)
        rots.append(np.broadcast_to(np.stack([e1, e2, normal], 1), (len(pts), 3, 3)))
        stds.append(np.broadcast_to([K_TANGENT * su, K_TANGENT * sv], (len(pts), 2)))
        faces.append(owner)
    if not means:
        return np.zeros((0, 3)), np.zeros((0, 3, 3)), np.zeros((0, 2)), np.zeros(0, dtype=np.int64)
    return np.concatenate(means), np.concatenate(rots), np.concatenate(stds), np.concatenate(faces)


def _object_spacing(mesh: trimesh.Trimesh, face_object: np.ndarray, face_material: np.ndarray,
                    materials: list[Material], spacing: float, divisor: float) -> np.ndarray:
    """Target surfel spacing (F,) per face (see module doc)."""
    h = np.full(len(mesh.faces), spacing)
    tri = mesh.triangles
    for obj in np.unique(face_object):
        sel = face_object == obj
        pts = tri[sel].reshape(-1, 3)
        h[sel] = min(spacing, float(np.linalg.norm(np.ptp(pts, 0))) / divisor)
    tex = np.array([m.texture_scale / 2.0 if m.texture else np.inf for m in materials])
    return np.clip(np.minimum(h, tex[face_material]), spacing / 8.0, spacing)


def _visible_from_roads(world: World) -> np.ndarray:
    """(F,) static faces that face at least one corner of the roads' boxes VIEW_HEIGHTS above them."""
    mesh = world.static_mesh
    if world.static_face_object is None or "road" not in world.object_names:
        return np.ones(len(mesh.faces), dtype=bool)
    road = world.static_face_object == world.object_names.index("road")
    corners = mesh.triangles[road].reshape(-1, 3)
    views = np.concatenate([corners + [0.0, 0.0, z] for z in VIEW_HEIGHTS])
    views = np.unique(views.round(6), axis=0)
    v0, n = mesh.triangles[:, 0], mesh.face_normals
    facing = (views @ n.T - np.einsum("ij,ij->i", v0, n)[None]) > 1e-9
    transparent = np.array([m.camera_transparency > 0 or m.lidar_transparency > 0 for m in world.materials])
    return facing.any(0) | transparent[world.static_face_material]


@lru_cache(maxsize=64)
def calibrated_sigma(target_alpha: float) -> float:
    """Per-surfel opacity giving a mean alpha of target_alpha over a patch interior (lattice with K_TANGENT)."""
    if target_alpha <= 0.0:
        return 0.0
    offsets = np.arange(-3, 4)
    lu, lv = np.meshgrid(offsets, offsets, indexing="ij")
    samples = (np.arange(8) + 0.5) / 8
    su, sv = np.meshgrid(samples, samples, indexing="ij")
    d2 = ((su.reshape(-1, 1) - lu.reshape(1, -1)) ** 2 + (sv.reshape(-1, 1) - lv.reshape(1, -1)) ** 2) / K_TANGENT ** 2
    g = np.exp(-0.5 * d2)

    def mean_alpha(sigma: float) -> float:
        a = np.minimum(0.99, sigma * g)
        a = np.where(a >= 1 / 255, a, 0.0)
        return float(1 - np.prod(1 - a, 1).mean())

    if mean_alpha(OPAQUE_SIGMA) <= target_alpha:
        return OPAQUE_SIGMA
    lo, hi = 0.0, OPAQUE_SIGMA
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if mean_alpha(mid) < target_alpha else (lo, mid)
    return 0.5 * (lo + hi)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _part(mesh: trimesh.Trimesh, face_material: np.ndarray, face_object: np.ndarray, faces_mask: np.ndarray,
          materials: list[Material], spacing: float, actor_id: int) -> dict[str, np.ndarray]:
    """Surfel attributes of one mesh (in its own frame)."""
    divisor = SIZE_DIVISOR if actor_id < 0 else ACTOR_SIZE_DIVISOR
    h = _object_spacing(mesh, face_object, face_material, materials, spacing, divisor)
    labels = face_object.astype(np.int64) * (len(materials) + 1) + face_material
    means, rots, stds, faces = _surfels(mesh, faces_mask, labels, h)
    mat = face_material[faces]
    normals = rots[:, :, 2]
    colors = lit_colors(materials, mat, means, normals) if len(mat) else np.zeros((0, 3))
    sigma_c = np.array([calibrated_sigma(1.0 - m.camera_transparency) for m in materials])[mat]
    sigma_l = np.array([calibrated_sigma(1.0 - m.lidar_transparency) for m in materials])[mat]
    log_scales = np.log(np.concatenate([stds, np.full((len(stds), 1), NORMAL_SCALE)], 1))
    return {"means": means, "rots": rots, "log_scales": log_scales, "colors": colors,
            "opacity_camera": _logit(sigma_c), "opacity_lidar": _logit(sigma_l),
            "intensity": np.array([m.reflectivity for m in materials])[mat],
            "actor_ids": np.full(len(means), actor_id, dtype=np.int64)}


def world_to_gaussians(world: World, spacing: float | None = None) -> GaussianScene:
    """The Gaussian twin of a world (float32 tensors). spacing: largest surfel spacing (m), default per preset."""
    if spacing is None:
        from .presets import STREETS

        spacing = STREETS[world.preset].twin_spacing if world.preset in STREETS else DEFAULT_SPACING
    if not (spacing > 0 and math.isfinite(spacing)):
        raise ValueError(f"world_to_gaussians: spacing must be > 0 m, got {spacing}")
    face_object = world.static_face_object
    if face_object is None:
        face_object = np.zeros(len(world.static_mesh.faces), dtype=np.int32)
    parts = [_part(world.static_mesh, world.static_face_material, face_object, _visible_from_roads(world),
                   world.materials, spacing, -1)]
    actors = {}
    for a in world.actors:
        nf = len(a.mesh.faces)
        parts.append(_part(a.mesh, a.face_material, np.zeros(nf, dtype=np.int32), np.ones(nf, dtype=bool),
                           world.materials, spacing, a.id))
        actors[a.id] = Actor(a.id, a.trajectory, a.category,
                             torch.tensor(a.size, dtype=torch.float32))
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    f32 = (lambda x: torch.tensor(np.ascontiguousarray(x), dtype=torch.float32))
    quats = quaternion.from_matrix(torch.tensor(cat["rots"], dtype=torch.float64)).to(torch.float32)
    return GaussianScene(
        means=f32(cat["means"]), log_scales=f32(cat["log_scales"]), quats=quats,
        opacity_camera=f32(cat["opacity_camera"]), opacity_lidar=f32(cat["opacity_lidar"]),
        colors=f32(cat["colors"]), actor_ids=torch.tensor(cat["actor_ids"], dtype=torch.int64),
        intensity=f32(cat["intensity"]), actors=actors,
        sky=Sky(color=torch.tensor(world.sky_color, dtype=torch.float32)),
    )
