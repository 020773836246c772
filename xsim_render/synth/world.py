"""The synthetic world: triangle meshes with materials, moving actors and the ego drive; generation, save, load.

Frames and units: metres, seconds, radians; the world frame is z up with the ground at z = 0 (REP-103).
The stages live beside this file: shapes.py (mesh blocks, car and pedestrian models), street.py (the static
street), traffic.py (the ego's route and the actors' trajectories), materials.py (materials and lighting).

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
from .presets import street_params
from .shapes import CAR_SIZE, PEDESTRIAN_SIZE
from .street import CURB_HEIGHT, LANE_WIDTH, ROAD_HALF_WIDTH, SIDEWALK_OUTER, Extent, build_street
from .traffic import WorldActor, ego_times, moving_actors, plan_route, yaw_trajectory

__all__ = ["CAR_SIZE", "CURB_HEIGHT", "LANE_WIDTH", "PEDESTRIAN_SIZE", "ROAD_HALF_WIDTH", "SIDEWALK_OUTER", "World",
           "WorldActor", "generate_world", "load_world", "save_world"]

WORLD_FORMAT = "xsim-world"


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
        traj = self.ego_trajectory
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
        traj = self.ego_trajectory
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


def generate_world(preset: str = "small", seed: int = 0, duration: float = 3.0) -> World:
    """Build the street world of a preset for a drive of `duration` seconds (deterministic in preset/seed/duration)."""
    p = street_params(preset)
    if not (duration > 0 and math.isfinite(duration)):
        raise InputError(f"duration must be a positive number of seconds, got {duration}")
    rng = np.random.default_rng(seed)
    materials = standard_materials()
    route = plan_route(rng, duration)
    actors, needs = moving_actors(rng, p, materials, route, duration)
    lead_span = route.s_at_time(np.array([-1.0, duration + 1.0])) + np.array([0.0, 15.0])
    sel = (route.s >= lead_span[0]) & (route.s <= lead_span[1])
    ext = Extent(x_min=min(-p.min_arm, float(route.x[sel].min()) - p.arm_margin, needs["x_min"]),
                 x_max=max(p.min_arm, needs["x_max"]),
                 y_max=max(p.min_arm, float(route.y[sel].max()) + p.arm_margin, needs["y_max"]))
    mesh, face_material, face_object, names = build_street(rng, p, materials, ext).build()
    times = ego_times(duration)
    ex, ey, eyaw = route.at_s(route.s_at_time(times))
    ego = yaw_trajectory(times, ex, ey, 0.0, eyaw)
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
