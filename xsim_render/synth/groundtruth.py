"""Exact ground-truth camera images and spinning-LiDAR sweeps of a World, by ray tracing on the CPU (Embree).

Rays are exactly the renderer's (sensors.rays): camera pixel centres unprojected by the camera model
(camera_models.unproject) at their rolling-shutter times (rays.camera_time_of_pixel); LiDAR firings along
rays.lidar_directions at rays.lidar_column_times. Each ray starts at the sensor pose at its own time,
T_world_sensor(t) = T_world_base(t) T_base_sensor with T_world_base(t) interpolated from the ego trajectory
(World.ego_poses_at). Every actor is placed at its trajectory pose at each ray's own time: the ray is expressed
in the actor frame at that time and intersected with the actor mesh; the nearest hit over the static mesh and
all actors wins. Triangles are found by Embree (trimesh.ray.ray_pyembree, float32); the distance to the found
triangle is then recomputed in float64 from its plane.

Camera (materials.lit_color, view independent): colour = albedo(texture) * (ambient + diffuse |n . sun|);
misses see World.sky_color. A surface with camera_transparency c has alpha = 1 - c: the ray continues past it
and what lies behind is blended under it (front to back). The distance output is the along-ray distance of the
first surface at which the transmittance falls below 0.5 (the renderer's median distance), inf if none.

LiDAR: a beam hitting a surface with lidar_transparency p passes through with probability p (else returns
there); a return is lost with the material's dropout probability; returns outside [min_range, max_range] are
no returns. Intensity = reflectivity |cos(incidence)|. The random draws are deterministic in (seed, sweep start,
sensor name). Points are range * firing direction in the sensor frame at each firing's own time (not motion
compensated).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import torch
import trimesh
from trimesh.ray import ray_pyembree

from ..sensors import camera_models
from ..sensors.rays import camera_pixel_grid, camera_time_of_pixel, lidar_column_times, lidar_directions
from ..sensors.rig import CameraSpec, Extrinsics, LidarSpec
from .materials import lit_colors
from .world import World

MAX_LAYERS = 6          # surfaces a ray may pass through (transparent ones) before it is given up
STEP_PAST = 1e-3        # metres a continuing ray starts beyond the surface it passed
MEDIAN_TRANSMITTANCE = 0.5
NO_HIT = -2             # actor_id output where nothing was hit; -1 = static world


def _intersector(mesh: trimesh.Trimesh) -> ray_pyembree.RayMeshIntersector:
    """The mesh's cached Embree intersector (raises if embreex is unavailable: the reference is Embree)."""
    if not isinstance(mesh.ray, ray_pyembree.RayMeshIntersector):
        raise RuntimeError("ground truth needs Embree ray casting: install embreex (trimesh.ray.has_embree is False)")
    return mesh.ray


@dataclass
class _Hits:
    """Nearest hits of N rays: distance t (inf = miss), material id (-1 = miss), actor id (-1 static, NO_HIT),
    hit point and face normal in the hit object's frame, and the face normal in the world."""

    t: np.ndarray
    material: np.ndarray
    actor: np.ndarray
    point_local: np.ndarray
    normal_local: np.ndarray
    normal_world: np.ndarray


def _cast(mesh: trimesh.Trimesh, origins: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First triangle (-1 = none) and its float64 plane distance along unit rays, in the mesh's frame."""
    n = len(origins)
    face = np.full(n, -1, dtype=np.int64)
    t = np.full(n, np.inf)
    if n == 0 or len(mesh.faces) == 0:
        return face, t
    face = np.asarray(_intersector(mesh).intersects_first(origins, dirs), dtype=np.int64)
    hit = np.flatnonzero(face >= 0)
    normal = mesh.face_normals[face[hit]]
    v0 = mesh.triangles[face[hit], 0]
    denom = np.einsum("ij,ij->i", dirs[hit], normal)
    numer = np.einsum("ij,ij->i", v0 - origins[hit], normal)
    with np.errstate(divide="ignore", invalid="ignore"):
        th = np.where(np.abs(denom) > 1e-12, numer / denom, np.einsum("ij,ij->i", v0 - origins[hit], dirs[hit]))
    t[hit] = np.maximum(th, 0.0)
    return face, t


class _Scene:
    """The world's meshes with the actors' poses at a set of ray times (indexed per ray)."""

    def __init__(self, world: World, unique_times: np.ndarray) -> None:
        self.world = world
        self.static_normals = world.static_mesh.face_normals
        self.actor_poses = []
        for a in world.actors:
            rot, pos, exists = a.trajectory.poses_at(torch.as_tensor(unique_times))
            bounds = a.mesh.bounds
            center = bounds.mean(0)
            radius = float(np.linalg.norm(a.mesh.vertices - center, axis=1).max()) + 1e-3
            self.actor_poses.append((rot.numpy(), pos.numpy(), exists.numpy(), center, radius))

    def first_hits(self, origins: np.ndarray, dirs: np.ndarray, time_index: np.ndarray) -> _Hits:
        """Nearest hit over the static mesh and every actor (posed at each ray's own time)."""
        n = len(origins)
        face, t = _cast(self.world.static_mesh, origins, dirs)
        hit = face >= 0
        material = np.full(n, -1, dtype=np.int64)
        material[hit] = self.world.static_face_material[face[hit]]
        actor = np.where(hit, -1, NO_HIT)
        normal_local = np.zeros((n, 3))
        normal_local[hit] = self.static_normals[face[hit]]
        normal_world = normal_local.copy()
        point_local = origins + np.where(hit, t, 0.0)[:, None] * dirs
        for a, (rot_u, pos_u, exists_u, center, radius) in zip(self.world.actors, self.actor_poses):
            cand = np.flatnonzero(exists_u[time_index])
            if cand.size == 0:
                continue
            rot, pos = rot_u[time_index[cand]], pos_u[time_index[cand]]
            # cull rays that pass farther than the mesh's bounding sphere from its (moving) centre
            c_world = np.einsum("nij,j->ni", rot, center) + pos
            rel = c_world - origins[cand]
            along = np.einsum("ij,ij->i", rel, dirs[cand])
            miss_dist2 = np.einsum("ij,ij->i", rel, rel) - along ** 2
            near = (miss_dist2 < radius * radius) & (along > -radius) & (along - radius < t[cand])
            cand, rot, pos = cand[near], rot[near], pos[near]
            if cand.size == 0:
                continue
            o_a = np.einsum("nji,nj->ni", rot, origins[cand] - pos)
            d_a = np.einsum("nji,nj->ni", rot, dirs[cand])
            f_a, t_a = _cast(a.mesh, o_a, d_a)
            closer = (f_a >= 0) & (t_a < t[cand])
            idx, f_a, t_a = cand[closer], f_a[closer], t_a[closer]
            n_a = a.mesh.face_normals[f_a]
            t[idx] = t_a
            material[idx] = a.face_material[f_a]
            actor[idx] = a.id
            normal_local[idx] = n_a
            normal_world[idx] = np.einsum("nij,nj->ni", rot[closer], n_a)
            point_local[idx] = o_a[closer] + t_a[:, None] * d_a[closer]
        return _Hits(t, material, actor, point_local, normal_local, normal_world)


def _sensor_rays(world: World, extrinsics: Extrinsics, times: np.ndarray, dirs_sensor: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """World origins (N,3) and unit directions (N,3) of sensor-frame directions (N,3) at times (N,), plus the
    unique times and each ray's index into them."""
    unique, index = np.unique(times, return_inverse=True)
    r_wb, p_wb = world.ego_poses_at(torch.as_tensor(unique))
    r_bs, t_bs = extrinsics.matrix(torch.float64)
    r_ws = (r_wb @ r_bs).numpy()
    p_ws = (p_wb + (r_wb @ t_bs[:, None]).squeeze(-1)).numpy()
    dirs = np.einsum("nij,nj->ni", r_ws[index], dirs_sensor)
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    return p_ws[index], dirs, unique, index


def render_camera_truth(world: World, camera: CameraSpec, t_start: float) -> dict[str, np.ndarray]:
    """Ground-truth image of one rolling-shutter capture starting at t_start (s).

    Returns rgb (H,W,3) float32 in [0,1]; distance (H,W) float32, along the ray (m), to the first surface at
    which the transmittance falls below 0.5 (inf where none); ray_time (H,W) float64 absolute (s); actor_id
    (H,W) int32 of that surface (-1 static, -2 none). Pixels without a ray in the camera model are black, inf.
    """
    pixels = camera_pixel_grid(camera, torch.float64)
    dirs_s, valid = camera_models.unproject(camera, pixels)
    times = camera_time_of_pixel(camera, pixels, float(t_start)).numpy().astype(np.float64)
    h, w = camera.height, camera.width
    dirs_s = dirs_s.detach().numpy().reshape(-1, 3).astype(np.float64)
    valid = valid.numpy().reshape(-1)
    flat_times = times.reshape(-1)
    rgb = np.zeros((h * w, 3))
    distance = np.full(h * w, np.inf)
    actor_id = np.full(h * w, NO_HIT, dtype=np.int32)
    live = np.flatnonzero(valid)
    origins, dirs, unique, index = _sensor_rays(world, camera.extrinsics, flat_times[live], dirs_s[live])
    scene = _Scene(world, unique)
    sky = np.asarray(world.sky_color, dtype=np.float64)
    camera_alpha = 1.0 - np.array([m.camera_transparency for m in world.materials])
    transmittance = np.ones(len(live))
    travelled = np.zeros(len(live))
    active = np.arange(len(live))
    for _ in range(MAX_LAYERS):
        if active.size == 0:
            break
        o = origins[active] + travelled[active, None] * dirs[active]
        hits = scene.first_hits(o, dirs[active], index[active])
        miss = hits.material < 0
        pix = live[active]
        rgb[pix[miss]] += transmittance[active[miss], None] * sky
        transmittance[active[miss]] = 0.0
        hit = ~miss
        sel, mat = active[hit], hits.material[hit]
        alpha = camera_alpha[mat]
        color = lit_colors(world.materials, mat, hits.point_local[hit], hits.normal_local[hit])
        rgb[live[sel]] += (transmittance[sel] * alpha)[:, None] * color
        after = transmittance[sel] * (1.0 - alpha)
        first = np.isinf(distance[live[sel]]) & (after < MEDIAN_TRANSMITTANCE)
        distance[live[sel[first]]] = travelled[sel[first]] + hits.t[hit][first]
        actor_id[live[sel[first]]] = hits.actor[hit][first]
        transmittance[sel] = after
        travelled[sel] += hits.t[hit] + STEP_PAST
        active = sel[after > 0]
    rgb[live[active]] += transmittance[active, None] * sky
    return {"rgb": np.clip(rgb, 0, 1).reshape(h, w, 3).astype(np.float32),
            "distance": distance.reshape(h, w).astype(np.float32), "ray_time": times.reshape(h, w),
            "actor_id": actor_id.reshape(h, w)}


def _sweep_random(seed: int, t_start: float, name: str) -> np.random.Generator:
    """Random generator of one sweep, deterministic in (seed, sweep start in ns, sensor name)."""
    ns = int(round(float(t_start) * 1e9))
    mask = (1 << 63) - 1
    return np.random.default_rng([int(seed) & mask, ns & mask, int(ns < 0), zlib.crc32(name.encode())])


def render_lidar_truth(world: World, lidar: LidarSpec, t_start: float, seed: int = 0) -> dict[str, np.ndarray]:
    """Ground-truth sweep of a spinning LiDAR starting at t_start (s).

    Organised (beams, columns), rows in rig elevation order: range float32 (m, NaN = no return), intensity
    float32 in [0,1] (0 without return), ray_time float64 (absolute s), actor_id int32 (-1 static, -2 none).
    Returns (M,), ordered by column then beam: points (M,3) float32 in the sensor frame at each firing's own time,
    point_time float64 (absolute s), point_beam (ring) / point_column int64, azimuth / elevation (rad) /
    distance (m) / point_intensity float32 (named apart from the organised `intensity`).
    """
    beams, columns = lidar.beams, lidar.columns
    dirs_s = lidar_directions(lidar, torch.float64).numpy()
    col_times = lidar_column_times(lidar, float(t_start), torch.float64).numpy()
    times = np.broadcast_to(col_times[None, :], (beams, columns))
    origins, dirs, unique, index = _sensor_rays(world, lidar.extrinsics, times.reshape(-1), dirs_s.reshape(-1, 3))
    scene = _Scene(world, unique)
    n = beams * columns
    rng = _sweep_random(seed, t_start, lidar.name)
    pass_draw = rng.random((MAX_LAYERS, n))
    drop_draw = rng.random(n)
    lidar_pass = np.array([m.lidar_transparency for m in world.materials])
    reflectivity = np.array([m.reflectivity for m in world.materials])
    dropout = np.array([m.dropout for m in world.materials])
    rng_out = np.full(n, np.nan)
    intensity = np.zeros(n)
    actor_id = np.full(n, NO_HIT, dtype=np.int32)
    travelled = np.zeros(n)
    active = np.arange(n)
    for layer in range(MAX_LAYERS):
        if active.size == 0:
            break
        o = origins[active] + travelled[active, None] * dirs[active]
        hits = scene.first_hits(o, dirs[active], index[active])
        hit = hits.material >= 0
        sel, mat = active[hit], hits.material[hit]
        passes = pass_draw[layer, sel] < lidar_pass[mat]
        ret = sel[~passes]
        m_ret = mat[~passes]
        cos = np.abs(np.einsum("ij,ij->i", hits.normal_world[hit][~passes], dirs[ret]))
        keep = drop_draw[ret] >= dropout[m_ret]
        ret, m_ret, cos = ret[keep], m_ret[keep], cos[keep]
        rng_out[ret] = travelled[ret] + hits.t[hit][~passes][keep]
        intensity[ret] = np.clip(reflectivity[m_ret] * cos, 0.0, 1.0)
        actor_id[ret] = hits.actor[hit][~passes][keep]
        travelled[sel[passes]] += hits.t[hit][passes] + STEP_PAST
        active = sel[passes]
    out_of_range = ~((rng_out >= lidar.min_range) & (rng_out <= lidar.max_range))
    rng_out[out_of_range] = np.nan
    intensity[out_of_range] = 0.0
    actor_id[out_of_range] = NO_HIT
    rng_org = rng_out.reshape(beams, columns)
    column, beam = np.nonzero(np.isfinite(rng_org.T))
    dist = rng_org[beam, column]
    d = dirs_s[beam, column]
    return {
        "range": rng_org.astype(np.float32), "intensity": intensity.reshape(beams, columns).astype(np.float32),
        "ray_time": np.ascontiguousarray(times, dtype=np.float64), "actor_id": actor_id.reshape(beams, columns),
        "points": (d * dist[:, None]).astype(np.float32), "point_time": col_times[column].astype(np.float64),
        "point_beam": beam.astype(np.int64), "point_column": column.astype(np.int64),
        "azimuth": np.arctan2(d[:, 1], d[:, 0]).astype(np.float32),
        "elevation": np.arcsin(np.clip(d[:, 2], -1, 1)).astype(np.float32),
        "distance": dist.astype(np.float32),
        "point_intensity": intensity.reshape(beams, columns)[beam, column].astype(np.float32),
    }
