"""Functional rendering API of the reference renderer (pure PyTorch, differentiable).

    render_camera(scene, camera, ego, t_start, actors)  -> rgb, alpha, distance, distance_median, rays
    render_lidar(scene, lidar, ego, t_start, actors)    -> range, range_median, alpha, intensity,
                                                           ray_drop_probability, points, rays
Stages: sensors.rays (per-ray origin/direction/time) -> projection.footprint (rolling-shutter UT, phase
modeling) -> tiling (camera 16x16, LiDAR 8 beams x 32 columns) -> raster (3D max-response, front-to-back).
`ego` is the constant-velocity motion of base_link (world frame); actor motions default to the scene's
trajectories evaluated at the middle of the capture; an actor with no pose then is not rendered.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor

from .backends import rasterizer, resolve_backend
from .motion.rigid import RigidMotion
from .projection.footprint import project_gaussians
from .projection.sensor_projection import CameraProjection, LidarProjection
from .raster.attributes import gaussian_colors
from .raster.composite import Composite
from .raster.rasterize import GaussianFrames
from .scene.gaussians import GaussianScene
from .sensors.rays import SensorRays, camera_rays, lidar_rays, sensor_motion
from .sensors.rig import CameraSpec, LidarSpec
from .tiling.camera_tiles import camera_tiles
from .tiling.lidar_tiles import lidar_tiles
from .tiling.pairs import TileAssignment


def actor_motions(scene: GaussianScene, overrides: dict[int, RigidMotion] | None, t: float,
                  t_ref: float = 0.0) -> dict[int, RigidMotion]:
    """Motion of every actor at time t: given states override the scene's trajectories.

    Motion times are returned relative to t_ref (the renderer works in seconds since the capture start so that
    float32 keeps sub-microsecond resolution whatever the clock).
    """
    motions: dict[int, RigidMotion] = {}
    for actor_id, actor in scene.actors.items():
        m = actor.trajectory.motion_at(t)
        if m is not None:
            motions[actor_id] = m
    motions.update(overrides or {})
    return {k: replace(v.to(scene.means.dtype), time=v.time - t_ref) for k, v in motions.items()}


def gaussian_frames(scene: GaussianScene, motions: dict[int, RigidMotion], lidar: bool) -> GaussianFrames:
    """Gaussians with their frame index; actor Gaussians whose actor has no motion get zero opacity."""
    ids = sorted(int(i) for i in torch.unique(scene.actor_ids).tolist() if i >= 0 and int(i) in motions)
    bodies: list[RigidMotion | None] = [None] + [motions[i] for i in ids]
    frame = torch.zeros(len(scene), dtype=torch.long)
    present = scene.actor_ids < 0
    for f, actor_id in enumerate(ids, start=1):
        sel = scene.actor_ids == actor_id
        frame[sel] = f
        present |= sel
    sigma = scene.sigma_lidar() if lidar else scene.sigma_camera()
    sigma = torch.where(present, sigma, torch.zeros_like(sigma))
    return GaussianFrames(scene.means, scene.rotations(), scene.log_scales, sigma, frame, bodies)


def _values(scene: GaussianScene, colors: Tensor | None, lidar: bool) -> dict[str, Tensor]:
    values: dict[str, Tensor] = {}
    if colors is not None:
        values["rgb"] = colors
    if scene.features is not None:
        values["features"] = scene.features
    if lidar and scene.intensity is not None:
        values["intensity"] = scene.intensity[:, None]
    return values


def _ray_outputs(rays: SensorRays, t_ref: float) -> dict[str, Tensor]:
    return {"ray_origin": rays.origins, "ray_direction": rays.directions,
            "ray_time": rays.times.to(torch.float64) + t_ref}


def _capture(scene: GaussianScene, spec: CameraSpec | LidarSpec, ego: RigidMotion, t_start: float,
             actors: dict[int, RigidMotion] | None, phase_modeling: bool = True
             ) -> tuple[SensorRays, CameraProjection | LidarProjection, RigidMotion, GaussianFrames, TileAssignment]:
    """Shared stages up to tiling, in seconds since t_start: rays, sensor motion, Gaussians in their frames,
    footprints and tile lists. Returns (rays, projection, sensor, gaussians, assignment)."""
    lidar = isinstance(spec, LidarSpec)
    ego = replace(ego.to(scene.means.dtype), time=ego.time - t_start)
    rays = lidar_rays(spec, ego, 0.0) if lidar else camera_rays(spec, ego, 0.0)
    projection = LidarProjection(spec, 0.0) if lidar else CameraProjection(spec, 0.0)
    sensor = sensor_motion(spec, ego)
    g = gaussian_frames(scene, actor_motions(scene, actors, t_start + projection.t_mid, t_start), lidar=lidar)
    fp = project_gaussians(g.means, g.rotations, g.log_scales.exp(), g.sigma, g.frame, g.bodies, sensor, projection,
                           phase_modeling=phase_modeling)
    if lidar:
        assignment = lidar_tiles(spec, fp, len(scene), wrap=not phase_modeling)
    else:
        assignment = camera_tiles(spec, fp, len(scene))
    return rays, projection, sensor, g, assignment


def _rasterize(rays: SensorRays, assignment: TileAssignment, g: GaussianFrames, values: dict[str, Tensor],
               backend: str = "reference") -> Composite:
    return rasterizer(resolve_backend(backend))(rays.origins.reshape(-1, 3), rays.directions.reshape(-1, 3), rays.times.reshape(-1),
                     rays.valid.reshape(-1), assignment, g, values)


def render_camera(scene: GaussianScene, camera: CameraSpec, ego: RigidMotion, t_start: float,
                  actors: dict[int, RigidMotion] | None = None, backend: str = "auto") -> dict[str, Tensor]:
    """Render one rolling-shutter camera capture starting at t_start (s). Outputs (H,W[,3]) tensors."""
    rays, projection, sensor, g, assignment = _capture(scene, camera, ego, t_start, actors)
    _, sensor_pos = sensor.pose_at(torch.tensor(projection.t_mid, dtype=scene.means.dtype))
    colors = gaussian_colors(scene, g.frame, g.bodies, sensor_pos, projection.t_mid)
    h, w = camera.height, camera.width
    comp = _rasterize(rays, assignment, g, _values(scene, colors, lidar=False), backend)
    rgb = comp.values["rgb"].reshape(h, w, 3)
    if scene.camera_decoder is not None and scene.features is not None:
        rgb = scene.camera_decoder(comp.values["features"].reshape(h, w, -1), rays.directions_sensor, rgb)
    if scene.sky is not None:
        rgb = rgb + comp.transmittance.reshape(h, w, 1) * scene.sky.radiance(rays.directions)
    out = {
        "rgb": rgb, "alpha": comp.alpha.reshape(h, w), "distance": comp.distance.reshape(h, w),
        "distance_median": comp.distance_median.reshape(h, w), **_ray_outputs(rays, t_start),
    }
    if scene.features is not None:
        out["features"] = comp.values["features"].reshape(h, w, -1)
    return out


def render_lidar(scene: GaussianScene, lidar: LidarSpec, ego: RigidMotion, t_start: float,
                 actors: dict[int, RigidMotion] | None = None, phase_modeling: bool = True, backend: str = "auto"
                 ) -> dict[str, Tensor]:
    """Render one spinning-LiDAR sweep starting at t_start (s). Organised outputs are (beams, columns)."""
    rays, _, _, g, assignment = _capture(scene, lidar, ego, t_start, actors, phase_modeling)
    comp = _rasterize(rays, assignment, g, _values(scene, None, lidar=True), backend)
    shape = (lidar.beams, lidar.columns)
    decoded = scene.lidar_decoder is not None and scene.features is not None
    if decoded:
        intensity, drop_logit = scene.lidar_decoder(comp.values["features"], rays.directions_sensor.reshape(-1, 3))
        drop = torch.sigmoid(drop_logit).reshape(shape)
        intensity = intensity.reshape(shape)
    else:
        drop = (1.0 - comp.alpha).reshape(shape)
        intensity = comp.values["intensity"][:, 0].reshape(shape) if "intensity" in comp.values \
            else torch.zeros(shape, dtype=comp.alpha.dtype)
    median = comp.distance_median.reshape(shape)
    returns = torch.isfinite(median) & (median >= lidar.min_range) & (median <= lidar.max_range)
    if decoded:
        returns &= drop < 0.5
    beam, column = returns.nonzero(as_tuple=True)
    order = torch.argsort(column * lidar.beams + beam)
    beam, column = beam[order], column[order]
    points = median[beam, column, None] * rays.directions_sensor[beam, column]
    return {
        "range": comp.distance.reshape(shape), "range_median": median, "alpha": comp.alpha.reshape(shape),
        "intensity": intensity, "ray_drop_probability": drop, **_ray_outputs(rays, t_start),
        "points": points, "point_time": rays.times[beam, column].to(torch.float64) + t_start,
        "point_beam": beam, "point_column": column,
        "returns": returns,
    }

