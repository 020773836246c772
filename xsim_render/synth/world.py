"""The synthetic world: triangle meshes with materials, moving actors and the ego drive; generation, save, load.

Frames and units: metres, seconds, radians. The world frame is z up with the ground at z = 0 (REP-103); the
main road runs along x, the side road of the T junction along +y from x = 0. base_link sits on the ground
(z = 0) and drives in the right-hand lane: along +x at y = -1.75, then a smooth left turn (curvature rising and
falling smoothly) into the side road at x = +1.75, centred in time at duration / 2, at 9-11 m/s on the
straights and 6-7 m/s in the turn. Actor frames: origin at the centre of the actor's box, x forward, y left,
z up (as in xsim_msgs/ActorState). Trajectories are keyframed: the ego at EGO_RATE_HZ over [0, duration],
actors at ACTOR_RATE_HZ over [-ACTOR_MARGIN_S, duration + ACTOR_MARGIN_S].

Everything is drawn from numpy's default_rng(seed) in a fixed order: the same (preset, seed, duration) gives
bit-identical meshes and trajectories. Vertices are rounded to float32 values so that the PLY files written by
`save_world` (float32 vertices) load back bit-identical.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import trimesh
import yaml

from ..errors import InputError
from ..io_utils import atomic_directory
from ..motion.rigid import RigidMotion
from ..scene.actors import Trajectory
from .materials import SKY_COLOR, Material, standard_materials
from .presets import StreetParams, street_params

LANE_WIDTH = 3.5
ROAD_HALF_WIDTH = 6.0          # two lanes plus a 2.5 m parking strip on each side
SIDEWALK_OUTER = 9.5           # sidewalks span 6..9.5 m from a road's centre line, up to the buildings
CURB_HEIGHT = 0.15
BUILDING_FRONT = 9.5
MARKING_HEIGHT = 0.005
MARKING_WIDTH = 0.15
EGO_RATE_HZ = 100.0
ACTOR_RATE_HZ = 20.0
ACTOR_MARGIN_S = 0.5
CAR_SIZE = (4.5, 1.85, 1.5)
PEDESTRIAN_SIZE = (0.5, 0.7, 1.75)
TURN_LENGTH = 18.0             # arc length of the left turn (m)
WORLD_FORMAT = "xsim-world"


@dataclass
class WorldActor:
    """A rigid moving object.

    mesh: in the actor frame (origin at the centre of the box of extent `size` = (length x, width y, height z)
    metres, x forward, z up); face_material (F,) indexes World.materials; trajectory: pose of the actor frame in
    the world over time; category: 'vehicle' or 'pedestrian'.
    """

    id: int
    category: str
    size: tuple[float, float, float]
    mesh: trimesh.Trimesh
    face_material: np.ndarray
    trajectory: Trajectory


@dataclass
class World:
    """Static meshes (world frame), actors, materials and the ego drive (base_link in the world over [0, duration]).

    static_face_object (F,) indexes object_names (e.g. 'road', 'building_3', 'parked_car_0', 'bus_shelter_0').
    sky_color: RGB in [0, 1] seen by cameras where rays hit nothing.
    """

    static_mesh: trimesh.Trimesh
    static_face_material: np.ndarray
    materials: list[Material]
    actors: list[WorldActor]
    ego_trajectory: Trajectory
    duration: float
    seed: int
    preset: str
    sky_color: tuple[float, float, float] = SKY_COLOR
    static_face_object: np.ndarray | None = None
    object_names: list[str] = field(default_factory=list)

    def material_index(self, name: str) -> int:
        for i, m in enumerate(self.materials):
            if m.name == name:
                return i
        raise KeyError(f"no material named {name!r}")

    def ego_poses_at(self, times: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """base_link rotations (..., 3, 3) and positions (..., 3) in the world at times (s), float64.

        Inside the keyframes: interpolated (Trajectory.poses_at). Outside: extrapolated with the end segment's
        constant velocities.
        """
        traj = self.ego_trajectory.to(torch.float64)
        times = torch.as_tensor(times, dtype=torch.float64)
        t0, t1 = float(traj.times[0]), float(traj.times[-1])
        rot, pos, _ = traj.poses_at(times.clamp(t0, t1))
        for t_end, outside in ((t0, times < t0), (t1, times > t1)):
            if bool(outside.any()):
                r_out, p_out = traj.motion_at(t_end).pose_at(times)
                rot = torch.where(outside[..., None, None], r_out, rot)
                pos = torch.where(outside[..., None], p_out, pos)
        return rot, pos

    def ego_motion(self, t: float) -> RigidMotion:
        """Pose of base_link at t with its world-frame velocities (keyframe segment around t; constant beyond)."""
        traj = self.ego_trajectory.to(torch.float64)
        tc = min(max(float(t), float(traj.times[0])), float(traj.times[-1]))
        m = traj.motion_at(tc)
        rot, pos = m.pose_at(torch.tensor(float(t), dtype=torch.float64))
        return RigidMotion(rot, pos, m.linear_velocity, m.angular_velocity, float(t))

    def actor_motions(self, t: float) -> dict[int, RigidMotion]:
        """Constant-velocity motion at t of every actor that exists at t, by actor id."""
        out = {}
        for a in self.actors:
            m = a.trajectory.motion_at(float(t))
            if m is not None:
                out[a.id] = m
        return out


# ------------------------------------------------------------------------------------------------------------
# Mesh building blocks (vertices (V,3), faces (F,3) int)
# ------------------------------------------------------------------------------------------------------------

def _yaw_matrix(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _quad(p0, p1, p2, p3) -> tuple[np.ndarray, np.ndarray]:
    """Planar quad p0..p3 (counter-clockwise seen from its front side, normal (p1-p0) x (p2-p0))."""
    return np.array([p0, p1, p2, p3], dtype=np.float64), np.array([[0, 1, 2], [0, 2, 3]])


def _rect_z(x0: float, x1: float, y0: float, y1: float, z: float) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal rectangle facing up."""
    return _quad((x0, y0, z), (x1, y0, z), (x1, y1, z), (x0, y1, z))


def _box(center, size, yaw: float = 0.0, bottom: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Closed box (outward normals) of extents size centred at center, turned by yaw; bottom face optional."""
    b = trimesh.creation.box(extents=size)
    faces = b.faces if bottom else b.faces[b.face_normals[:, 2] > -0.5]
    return b.vertices @ _yaw_matrix(yaw).T + np.asarray(center, dtype=np.float64), faces


def _cylinder(base, radius: float, height: float, sections: int = 12, axis: str = "z",
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


class _Parts:
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

    def add_parts(self, parts: _Parts, rotation: np.ndarray, translation, obj: str) -> None:
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


def _car_parts(materials: list[Material], paint: str) -> _Parts:
    """A car in its actor frame (origin at the box centre, x forward): body, cabin (windows, painted roof), wheels."""
    length, width, height = CAR_SIZE
    z0 = -height / 2
    p = _Parts(materials)
    body_h = 0.62
    p.add(_box((0.0, 0.0, z0 + 0.28 + body_h / 2), (length, width, body_h)), paint)
    cab_len, cab_h = 0.55 * length, height - 0.28 - body_h
    v, f = _box((-0.05 * length, 0.0, z0 + 0.28 + body_h + cab_h / 2), (cab_len, width - 0.14, cab_h))
    normals = trimesh.Trimesh(v, f, process=False).face_normals
    p.add((v, f), [paint if n[2] > 0.9 else "car_window" for n in normals])
    for sx in (-1, 1):
        for sy in (-1, 1):
            p.add(_cylinder((sx * 0.32 * length, sy * (width / 2 - 0.13), z0 + 0.33), 0.33, 0.24, 12, "y"), "tire")
    return p


def _pedestrian_parts(materials: list[Material]) -> _Parts:
    """A pedestrian in its actor frame (origin at the box centre, facing +x): legs, torso, arms, head."""
    z0 = -PEDESTRIAN_SIZE[2] / 2
    p = _Parts(materials)
    for sy in (-1, 1):
        p.add(_box((0.0, sy * 0.1, z0 + 0.425), (0.18, 0.16, 0.85)), "pedestrian")
        p.add(_box((0.0, sy * 0.29, z0 + 1.12), (0.12, 0.1, 0.6)), "pedestrian")
    p.add(_box((0.0, 0.0, z0 + 1.15), (0.28, 0.46, 0.6)), "pedestrian")
    p.add(_box((0.02, 0.0, z0 + 1.6), (0.22, 0.2, 0.26)), "skin")
    return p


# ------------------------------------------------------------------------------------------------------------
# Route (ego path) and actor trajectories
# ------------------------------------------------------------------------------------------------------------

def _cumtrapz(f: np.ndarray, ds: float) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(0.5 * (f[1:] + f[:-1]) * ds)])


@dataclass
class _Route:
    """The driven path by arc length s (turn centre at s = 0): position, yaw, and the ego's time at s."""

    s: np.ndarray
    x: np.ndarray
    y: np.ndarray
    yaw: np.ndarray
    t: np.ndarray

    def at_s(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.interp(s, self.s, self.x), np.interp(s, self.s, self.y), np.interp(s, self.s, self.yaw)

    def s_at_time(self, t: np.ndarray) -> np.ndarray:
        return np.interp(t, self.t, self.s)


def _route(rng: np.random.Generator, duration: float) -> _Route:
    v_straight, v_turn = rng.uniform(9.0, 11.0), rng.uniform(6.0, 7.0)
    ds = 0.01
    reach = v_straight * (duration / 2 + 2.0) + 60.0
    n = int(round(2 * reach / ds)) + 1
    s = np.linspace(-reach, reach, n)
    ds = s[1] - s[0]
    u = np.clip((s + TURN_LENGTH / 2) / TURN_LENGTH, 0.0, 1.0)
    yaw = (math.pi / 2) * u * u * (3 - 2 * u)
    speed = v_straight - (v_straight - v_turn) * np.exp(-0.5 * (s / 12.0) ** 2)
    x, y = _cumtrapz(np.cos(yaw), ds), _cumtrapz(np.sin(yaw), ds)
    x += LANE_WIDTH / 2 - x[-1]
    y += -LANE_WIDTH / 2 - y[0]
    t = _cumtrapz(1.0 / speed, ds)
    t += duration / 2 - np.interp(0.0, s, t)
    return _Route(s, x, y, yaw, t)


def _yaw_quats(yaw: np.ndarray) -> np.ndarray:
    return np.stack([np.cos(yaw / 2), np.zeros_like(yaw), np.zeros_like(yaw), np.sin(yaw / 2)], -1)


def _trajectory(times: np.ndarray, x: np.ndarray, y: np.ndarray, z: float | np.ndarray, yaw: np.ndarray
                ) -> Trajectory:
    pos = np.stack([x, y, np.broadcast_to(z, np.shape(x))], -1)
    return Trajectory(torch.tensor(times, dtype=torch.float64), torch.tensor(pos, dtype=torch.float64),
                      torch.tensor(_yaw_quats(np.asarray(yaw, dtype=np.float64)), dtype=torch.float64))


def _actor_times(duration: float) -> np.ndarray:
    n = int(math.ceil((duration + 2 * ACTOR_MARGIN_S) * ACTOR_RATE_HZ - 1e-9)) + 1
    return np.arange(n) / ACTOR_RATE_HZ - ACTOR_MARGIN_S


def _ego_times(duration: float) -> np.ndarray:
    n = int(math.floor(duration * EGO_RATE_HZ + 1e-9))
    times = np.arange(n + 1) / EGO_RATE_HZ
    if duration - times[-1] > 1e-6:
        times = np.append(times, duration)
    return times


# ------------------------------------------------------------------------------------------------------------
# Street layout
# ------------------------------------------------------------------------------------------------------------

@dataclass
class _Extent:
    x_min: float
    x_max: float
    y_max: float


def _frontage(rng: np.random.Generator, p: StreetParams, start: float, stop: float, front: float,
              along_x: bool, outward: float) -> list[tuple[float, float, float, float, float]]:
    """Footprints (x0, x1, y0, y1, height) of buildings placed from `start` towards `stop` along one street side."""
    out = []
    direction = 1.0 if stop > start else -1.0
    a = start
    while True:
        width = rng.uniform(*p.building_width)
        depth = rng.uniform(*p.building_depth)
        height = rng.uniform(*p.building_height)
        gap = rng.uniform(*p.building_gap)
        remaining = (stop - a) * direction
        if remaining < 5.0:
            break
        width = min(width, remaining)
        a0, a1 = sorted((a, a + direction * width))
        f0, f1 = sorted((front, front + outward * depth))
        out.append((a0, a1, f0, f1, height) if along_x else (f0, f1, a0, a1, height))
        a += direction * (width + gap)
    return out


def _markings(parts: _Parts, ext: _Extent) -> None:
    z, w = MARKING_HEIGHT, MARKING_WIDTH / 2
    h = ROAD_HALF_WIDTH
    # main road: dashed centre line (3 m dashes every 6 m, anchored at x = 0), solid lane edges
    for k in range(int(math.floor(ext.x_min / 6.0)), int(math.ceil(ext.x_max / 6.0)) + 1):
        x0 = 6.0 * k + 1.5
        if ext.x_min + 1 < x0 and x0 + 3 < ext.x_max - 1 and (x0 + 3 < -h - 1 or x0 > h + 1):
            parts.add(_rect_z(x0, x0 + 3.0, -w, w, z), "lane_marking", "lane_marking")
    parts.add(_rect_z(ext.x_min, ext.x_max, -LANE_WIDTH - w, -LANE_WIDTH + w, z), "lane_marking", "lane_marking")
    for x0, x1 in ((ext.x_min, -h), (h, ext.x_max)):
        parts.add(_rect_z(x0, x1, LANE_WIDTH - w, LANE_WIDTH + w, z), "lane_marking", "lane_marking")
    # side road: dashed centre line, lane edges, stop line on the lane leading into the junction
    for k in range(2, int(ext.y_max / 6.0)):
        y0 = 6.0 * k
        if y0 + 3 < ext.y_max - 1:
            parts.add(_rect_z(-w, w, y0, y0 + 3.0, z), "lane_marking", "lane_marking")
    for xc in (-LANE_WIDTH, LANE_WIDTH):
        parts.add(_rect_z(xc - w, xc + w, h, ext.y_max, z), "lane_marking", "lane_marking")
    parts.add(_rect_z(-LANE_WIDTH + w, -w, 7.4, 7.8, z), "lane_marking", "lane_marking")


def _sidewalk(parts: _Parts, x0: float, x1: float, y0: float, y1: float) -> None:
    v, f = _box(((x0 + x1) / 2, (y0 + y1) / 2, CURB_HEIGHT / 2), (x1 - x0, y1 - y0, CURB_HEIGHT))
    normals = trimesh.Trimesh(v, f, process=False).face_normals
    parts.add((v, f), ["sidewalk" if n[2] > 0.9 else "curb" for n in normals], "sidewalk")


def _street_light(parts: _Parts, x: float, y: float, toward_road: np.ndarray, index: int) -> None:
    name = f"pole_{index}"
    top = CURB_HEIGHT + 6.0
    parts.add(_cylinder((x, y, CURB_HEIGHT), 0.09, 6.0, 8), "pole", name)
    d = np.asarray(toward_road, dtype=np.float64)
    yaw = math.atan2(d[1], d[0])
    parts.add(_box((x + 0.6 * d[0], y + 0.6 * d[1], top - 0.08), (1.2, 0.1, 0.1), yaw), "pole", name)
    parts.add(_box((x + 1.15 * d[0], y + 1.15 * d[1], top - 0.2), (0.5, 0.25, 0.14), yaw), "pole", name)


def _bus_shelter(parts: _Parts, xs: float) -> None:
    """A bus shelter on the south sidewalk from x = xs: posts, roof, glass back pane and glass side pane."""
    name = "bus_shelter"
    yb, yf, z0, z1 = -8.7, -7.4, CURB_HEIGHT, CURB_HEIGHT + 2.2
    for px in (xs, xs + 3.2):
        for py in (yb, yf):
            parts.add(_box((px, py, (z0 + z1) / 2), (0.06, 0.06, z1 - z0)), "shelter_frame", name)
    parts.add(_box((xs + 1.6, (yb + yf) / 2, z1 + 0.05), (3.4, 1.6, 0.1)), "shelter_frame", name)
    g0, g1 = z0 + 0.1, z1 - 0.02
    parts.add(_quad((xs + 0.03, yb, g0), (xs + 3.17, yb, g0), (xs + 3.17, yb, g1), (xs + 0.03, yb, g1)), "glass",
              "glass")
    parts.add(_quad((xs, yf - 0.03, g0), (xs, yb + 0.03, g0), (xs, yb + 0.03, g1), (xs, yf - 0.03, g1)), "glass",
              "glass")


def _traffic_sign(parts: _Parts, x: float, y: float) -> None:
    parts.add(_cylinder((x, y, CURB_HEIGHT), 0.04, 2.2, 8), "pole", "sign_pole")
    parts.add(_box((x - 0.07, y, CURB_HEIGHT + 1.95), (0.04, 0.7, 0.7)), "sign", "sign")


def _ground(parts: _Parts, rows: list[tuple[list[tuple[float, ...]], bool, float, float]], corner: float) -> None:
    """Ground in the gaps between neighbouring buildings of each row (as deep as the deeper one + 1 m) and in the
    junction's corners between the rows of the two streets (the only ground seen from the streets)."""
    for footprints, along_x, front, outward in rows:
        spans = sorted(((f[0], f[1]) if along_x else (f[2], f[3])) + (abs((f[3] - f[2]) if along_x else (f[1] - f[0])),)
                       for f in footprints)
        for (_, a_end, a_depth), (b_start, _, b_depth) in zip(spans, spans[1:]):
            if b_start - a_end > 1e-3:
                f0, f1 = sorted((front, front + outward * (max(a_depth, b_depth) + 1.0)))
                rect = (a_end, b_start, f0, f1) if along_x else (f0, f1, a_end, b_start)
                parts.add(_rect_z(*rect, 0.0), "ground", "ground")
    fb = BUILDING_FRONT
    for footprints, _, _, _ in rows[1:3]:
        first = min(footprints, key=lambda f: min(abs(f[0]), abs(f[1])))
        if corner - first[3] > 1e-3:
            x0, x1 = (-corner, -fb) if first[0] < 0 else (fb, corner)
            parts.add(_rect_z(x0, x1, first[3], corner, 0.0), "ground", "ground")


def _buildings(rng: np.random.Generator, p: StreetParams, parts: _Parts, ext: _Extent) -> None:
    """Rows of box buildings along both sides of both streets, a building closing the side road, and ground."""
    fb = BUILDING_FRONT
    corner = fb + p.building_depth[1] + 1.0
    rows = [
        (_frontage(rng, p, ext.x_min - 5.0, ext.x_max + 5.0, -fb, True, -1.0), True, -fb, -1.0),
        (_frontage(rng, p, -fb, ext.x_min - 10, fb, True, 1.0), True, fb, 1.0),
        (_frontage(rng, p, fb, ext.x_max + 10, fb, True, 1.0), True, fb, 1.0),
        (_frontage(rng, p, corner, ext.y_max, -fb, False, -1.0), False, -fb, -1.0),
        (_frontage(rng, p, corner, ext.y_max, fb, False, 1.0), False, fb, 1.0),
    ]
    footprints = [f for row in rows for f in row[0]]
    footprints.append((-fb - 3.0, fb + 3.0, ext.y_max + 1.0, ext.y_max + 11.0, rng.uniform(*p.building_height)))
    styles = ["building_brick", "building_plaster", "building_concrete", "building_blue"]
    for i, (x0, x1, y0, y1, height) in enumerate(footprints):
        style = styles[int(rng.integers(len(styles)))]
        parts.add(_box(((x0 + x1) / 2, (y0 + y1) / 2, height / 2), (x1 - x0, y1 - y0, height)), style,
                  f"building_{i}")
    _ground(parts, rows, corner)


def _parked_cars(rng: np.random.Generator, p: StreetParams, materials: list[Material], parts: _Parts,
                 ext: _Extent) -> list[tuple[float, float, float]]:
    park = ROAD_HALF_WIDTH - 1.25
    slots = []
    for x in np.arange(ext.x_min + 6.0, ext.x_max - 6.0, 6.5):
        slots.append((x, -park, 0.0))
        if x < -18.0 or x > 12.0:
            slots.append((x, park, math.pi))
    for y in np.arange(16.0, ext.y_max - 6.0, 6.5):
        slots.append((park, y, math.pi / 2))
        slots.append((-park, y, -math.pi / 2))
    chosen = sorted(rng.choice(len(slots), size=min(p.parked_cars, len(slots)), replace=False).tolist())
    paints = ["car_paint_red", "car_paint_blue", "car_paint_white", "car_paint_yellow"]
    cars = []
    for k, i in enumerate(chosen):
        x, y, yaw = slots[i]
        yaw += math.radians(rng.uniform(-2.0, 2.0))
        car = _car_parts(materials, paints[int(rng.integers(len(paints)))])
        parts.add_parts(car, _yaw_matrix(yaw), (x, y, CAR_SIZE[2] / 2), f"parked_car_{k}")
        cars.append((x, y, yaw))
    return cars


# ------------------------------------------------------------------------------------------------------------
# Generation
# ------------------------------------------------------------------------------------------------------------

def _actor(actor_id: int, category: str, parts: _Parts, trajectory: Trajectory) -> WorldActor:
    mesh, mats, _, _ = parts.build()
    size = CAR_SIZE if category == "vehicle" else PEDESTRIAN_SIZE
    return WorldActor(actor_id, category, tuple(float(s) for s in size), mesh, mats, trajectory)


def _moving_actors(rng: np.random.Generator, p: StreetParams, materials: list[Material], route: _Route,
                   duration: float) -> tuple[list[WorldActor], dict[str, float]]:
    """Moving actors and the extents (m) their paths need from the street."""
    times = _actor_times(duration)
    zc = CAR_SIZE[2] / 2
    half = LANE_WIDTH / 2
    actors = []
    # 1: a lead car on the ego's route, a gap ahead
    gap = rng.uniform(11.0, 14.0)
    lx, ly, lyaw = route.at_s(route.s_at_time(times) + gap)
    actors.append(_actor(1, "vehicle", _car_parts(materials, "car_paint_white"), _trajectory(times, lx, ly, zc, lyaw)))
    # 2: a car driving away east on the main road, beyond the junction
    v2, x2 = rng.uniform(7.0, 9.0), rng.uniform(12.0, 16.0)
    cx = x2 + v2 * (times + ACTOR_MARGIN_S) + 0.6 * np.sin(0.8 * times)
    actors.append(_actor(2, "vehicle", _car_parts(materials, "car_paint_blue"),
                         _trajectory(times, cx, np.full_like(times, -half), zc, np.zeros_like(times))))
    # 3: a car on the side road coming towards the junction, braking to a stop before the stop line
    stop_y = 7.8 + 0.5 + CAR_SIZE[0] / 2
    brake_time = float(np.clip(0.8 * duration, 1.0, 3.0))
    dist = rng.uniform(12.0, 16.0)
    u = np.clip(1.0 - times / brake_time, 0.0, None)
    actors.append(_actor(3, "vehicle", _car_parts(materials, "car_paint_yellow"),
                         _trajectory(times, np.full_like(times, -half), stop_y + dist * u * u, zc,
                                     np.full_like(times, -math.pi / 2))))
    # 4: an oncoming car leaving the junction westwards on the main road (passes the ego)
    v4 = rng.uniform(9.0, 11.0)
    ox = -9.0 - v4 * (times + ACTOR_MARGIN_S)
    actors.append(_actor(4, "vehicle", _car_parts(materials, "car_paint_red"),
                         _trajectory(times, ox, np.full_like(times, half), zc, np.full_like(times, math.pi))))
    # 5: a pedestrian walking towards the junction on the side road's east sidewalk, swaying a little
    ego_end_y = float(route.at_s(route.s_at_time(np.array([duration])))[1][0])
    vp = rng.uniform(1.1, 1.5)
    py0 = max(ego_end_y, 0.0) + 8.0 + vp * (duration + ACTOR_MARGIN_S)
    sway, rate = 0.05, 2 * math.pi * 0.9
    px, py = 7.5 + sway * np.sin(rate * times), py0 - vp * (times + ACTOR_MARGIN_S)
    pyaw = np.arctan2(-vp * np.ones_like(times), sway * rate * np.cos(rate * times))  # heading along the velocity
    actors.append(_actor(5, "pedestrian", _pedestrian_parts(materials),
                         _trajectory(times, px, py, CURB_HEIGHT + PEDESTRIAN_SIZE[2] / 2, pyaw)))
    needs = {"x_min": float(ox.min()) - 10.0, "x_max": float(cx.max()) + 10.0,
             "y_max": max(py0, stop_y + dist) + 5.0}
    if p.extra_actors:
        # 6: a car further up the side road driving away
        v6 = rng.uniform(7.0, 9.0)
        fy = 32.0 + v6 * (times + ACTOR_MARGIN_S)
        actors.append(_actor(6, "vehicle", _car_parts(materials, "car_paint_red"),
                             _trajectory(times, np.full_like(times, half), fy, zc, np.full_like(times, math.pi / 2))))
        needs["y_max"] = max(needs["y_max"], float(fy.max()) + 10.0)
    return actors, needs


def generate_world(preset: str = "small", seed: int = 0, duration: float = 3.0) -> World:
    """Build the street world of a preset for a drive of `duration` seconds (deterministic in preset/seed/duration)."""
    p = street_params(preset)
    if not (duration > 0 and math.isfinite(duration)):
        raise InputError(f"duration must be a positive number of seconds, got {duration}")
    rng = np.random.default_rng(seed)
    materials = standard_materials()
    route = _route(rng, duration)
    actors, needs = _moving_actors(rng, p, materials, route, duration)
    lead_span = route.s_at_time(np.array([-1.0, duration + 1.0])) + np.array([0.0, 15.0])
    sel = (route.s >= lead_span[0]) & (route.s <= lead_span[1])
    ext = _Extent(x_min=min(-p.min_arm, float(route.x[sel].min()) - p.arm_margin, needs["x_min"]),
                  x_max=max(p.min_arm, needs["x_max"]),
                  y_max=max(p.min_arm, float(route.y[sel].max()) + p.arm_margin, needs["y_max"]))
    parts = _Parts(materials)
    h, s = ROAD_HALF_WIDTH, SIDEWALK_OUTER
    parts.add(_rect_z(ext.x_min, ext.x_max, -h, h, 0.0), "road", "road")
    # pieces of the same surface overlap a little instead of abutting (no seams in the Gaussian twin; coplanar
    # overlaps of one material look the same to the ground truth whichever face a ray finds)
    parts.add(_rect_z(-h, h, h - 1.0, ext.y_max, 0.0), "road", "road")
    _markings(parts, ext)
    _sidewalk(parts, ext.x_min, ext.x_max, -s, -h)
    _sidewalk(parts, ext.x_min, -h, h, s)
    _sidewalk(parts, h, ext.x_max, h, s)
    _sidewalk(parts, -s, -h, h, ext.y_max)
    _sidewalk(parts, h, s, h, ext.y_max)
    _buildings(rng, p, parts, ext)
    shelter_x = rng.uniform(3.0, 8.0)
    _bus_shelter(parts, shelter_x)
    _traffic_sign(parts, -7.0, -6.6)
    poles = 0
    for x in np.arange(ext.x_min + 5.0, ext.x_max - 5.0, p.pole_spacing):
        x = float(x + rng.uniform(-2.0, 2.0))
        if not (shelter_x - 2.0 < x < shelter_x + 5.2 or -9.0 < x < -5.0):
            _street_light(parts, x, -h - 0.6, np.array([0.0, 1.0]), poles)
            poles += 1
        if abs(x) > 11.0:
            _street_light(parts, x, h + 0.6, np.array([0.0, -1.0]), poles)
            poles += 1
    for y in np.arange(14.0, ext.y_max - 5.0, p.pole_spacing):
        _street_light(parts, -h - 0.6, float(y), np.array([1.0, 0.0]), poles)
        _street_light(parts, h + 0.6, float(y + p.pole_spacing / 2), np.array([-1.0, 0.0]), poles + 1)
        poles += 2
    _parked_cars(rng, p, materials, parts, ext)
    mesh, face_material, face_object, names = parts.build()
    times = _ego_times(duration)
    ex, ey, eyaw = route.at_s(route.s_at_time(times))
    ego = _trajectory(times, ex, ey, 0.0, eyaw)
    return World(mesh, face_material, materials, actors, ego, float(duration), int(seed), preset, SKY_COLOR,
                 face_object, names)


# ------------------------------------------------------------------------------------------------------------
# Save / load
# ------------------------------------------------------------------------------------------------------------

def _trajectory_dict(traj: Trajectory) -> dict[str, Any]:
    return {"times": [float(v) for v in traj.times.tolist()],
            "positions": [[float(c) for c in row] for row in traj.positions.tolist()],
            "rotations_wxyz": [[float(c) for c in row] for row in traj.rotations.tolist()]}


def _trajectory_from(d: dict[str, Any]) -> Trajectory:
    return Trajectory(torch.tensor(d["times"], dtype=torch.float64),
                      torch.tensor(d["positions"], dtype=torch.float64).reshape(-1, 3),
                      torch.tensor(d["rotations_wxyz"], dtype=torch.float64).reshape(-1, 4))


def save_world(world: World, directory: str | Path) -> None:
    """Write the world into `directory` (created or replaced atomically).

    Files: static.ply (binary PLY, float32 vertices), static_face_material.npy, static_face_object.npy,
    actor_<id>.ply and actor_<id>_face_material.npy per actor, and world.yaml (format, preset, seed, duration,
    sky colour, materials, object names, actors with sizes and trajectories, ego trajectory). No pickles.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    with atomic_directory(directory) as tmp:
        world.static_mesh.export(tmp / "static.ply", file_type="ply")
        np.save(tmp / "static_face_material.npy", np.asarray(world.static_face_material, dtype=np.int32))
        face_object = world.static_face_object
        if face_object is None:
            face_object = np.zeros(len(world.static_mesh.faces), dtype=np.int32)
        np.save(tmp / "static_face_object.npy", np.asarray(face_object, dtype=np.int32))
        actors = []
        for a in world.actors:
            a.mesh.export(tmp / f"actor_{a.id}.ply", file_type="ply")
            np.save(tmp / f"actor_{a.id}_face_material.npy", np.asarray(a.face_material, dtype=np.int32))
            actors.append({"id": int(a.id), "category": a.category, "size": [float(v) for v in a.size],
                           "mesh": f"actor_{a.id}.ply", "face_material": f"actor_{a.id}_face_material.npy",
                           "trajectory": _trajectory_dict(a.trajectory)})
        doc = {"format": WORLD_FORMAT, "version": 1, "preset": world.preset, "seed": int(world.seed),
               "duration": float(world.duration), "sky_color": [float(c) for c in world.sky_color],
               "materials": [m.to_dict() for m in world.materials],
               "object_names": list(world.object_names) or [""],
               "static_mesh": "static.ply", "static_face_material": "static_face_material.npy",
               "static_face_object": "static_face_object.npy",
               "ego_trajectory": _trajectory_dict(world.ego_trajectory), "actors": actors}
        (tmp / "world.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))


def _load_mesh(path: Path) -> trimesh.Trimesh:
    try:
        mesh = trimesh.load(path, file_type="ply", process=False, force="mesh")
    except Exception as err:  # noqa: BLE001 - any parse failure is a bad input file
        raise InputError(f"{path}: cannot read mesh ({' '.join(str(err).split())})") from None
    return trimesh.Trimesh(np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces), process=False)


def _load_ids(path: Path, count: int) -> np.ndarray:
    try:
        ids = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise InputError(f"{path}: cannot read ({' '.join(str(err).split())})") from None
    if ids.shape != (count,):
        raise InputError(f"{path}: shape {ids.shape}, expected ({count},) (one per face)")
    return ids.astype(np.int32)


def load_world(directory: str | Path) -> World:
    """Read a world written by save_world (`directory` holds world.yaml; a parent holding world/ also works)."""
    directory = Path(directory)
    if not (directory / "world.yaml").is_file() and (directory / "world" / "world.yaml").is_file():
        directory = directory / "world"
    path = directory / "world.yaml"
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as err:
        raise InputError(f"{path}: cannot read world file ({err.strerror})") from None
    if not isinstance(doc, dict) or doc.get("format") != WORLD_FORMAT:
        raise InputError(f"{path}: field 'format': expected {WORLD_FORMAT!r}, got "
                         f"{doc.get('format') if isinstance(doc, dict) else doc!r}")
    try:
        materials = [Material.from_dict(m) for m in doc["materials"]]
        mesh = _load_mesh(directory / doc["static_mesh"])
        face_material = _load_ids(directory / doc["static_face_material"], len(mesh.faces))
        face_object = _load_ids(directory / doc["static_face_object"], len(mesh.faces))
        actors = []
        for a in doc["actors"]:
            amesh = _load_mesh(directory / a["mesh"])
            actors.append(WorldActor(int(a["id"]), str(a["category"]), tuple(float(v) for v in a["size"]), amesh,
                                     _load_ids(directory / a["face_material"], len(amesh.faces)),
                                     _trajectory_from(a["trajectory"])))
        return World(mesh, face_material, materials, actors, _trajectory_from(doc["ego_trajectory"]),
                     float(doc["duration"]), int(doc["seed"]), str(doc["preset"]),
                     tuple(float(c) for c in doc["sky_color"]), face_object, list(doc["object_names"]))
    except (KeyError, TypeError, ValueError) as err:
        raise InputError(f"{path}: malformed world file ({type(err).__name__}: {err})") from None
