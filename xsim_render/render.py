"""Functional rendering API: one capture of a camera or a LiDAR, on the backend chosen by name.

    render_camera(scene, camera, ego, t_start, actors)  -> rgb, alpha, distance, distance_median, rays
    render_lidar(scene, lidar, ego, t_start, actors)    -> range, range_median, alpha, intensity,
                                                           ray_drop_probability, points, rays
Stages: sensors.rays (per-ray origin/direction/time) -> projection.footprint (rolling-shutter UT, phase
modeling) -> tiling (camera 16x16, LiDAR 8 beams x 32 columns) -> raster (3D max-response, front-to-back).
Ray generation, projection + tiling and rasterization come from the backend (backends.stages: `reference` is the
pure PyTorch, differentiable specification; `cpu`/`cuda` the kernels); the local frame, the Gaussians' frames,
colours, decoders and outputs are shared by all backends.
`ego` is the constant-velocity motion of base_link (world frame, float64, absolute time); actor motions default
to the scene's trajectories over the capture (an actor exists for the rays whose time lies in its trajectory).
Every capture is computed in a local frame (origin at the sensor at t_start, clock at t_start; see
motion/local_frame.py), so map-scale positions and epoch times render as accurately as at the origin;
world-frame outputs (ray_origin, ray_time, point_time) are float64.

Devices: every output is returned on the device of the scene passed in (same keys, dtypes and shapes for every
backend). The backend computes on its own device (backends.compute_device): the cuda backend renders a CPU
scene from a cached GPU copy (kernels/device.py) and copies the outputs back at the end; given a scene already
on the GPU (kernels.device.scene_to_device) the whole capture stays there and only the tile-pair count (and,
for a LiDAR, the number of returns) is read back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch import Tensor

from .backends import compute_device, resolve_backend, stages
from .kernels.device import gaussian_colors_gathered, present_actor_ids, scene_on, to_device
from .motion.local_frame import LocalFrame
from .motion.rigid import RigidMotion
from .projection.sensor_projection import CameraProjection, LidarProjection
from .raster.attributes import gaussian_colors
from .raster.composite import Composite
from .raster.rasterize import GaussianFrames
from .scene.gaussians import GaussianScene
from .sensors.rays import SensorRays, sensor_motion
from .sensors.rig import CameraSpec, LidarSpec
from .tiling.pairs import TileAssignment


@dataclass
class ActorMotion:
    """An actor over one capture: world-frame constant-velocity motion (float64, absolute time) and the absolute
    time window in which it exists (None: always)."""

    motion: RigidMotion
    window: tuple[float, float] | None = None


def actor_motions(scene: GaussianScene, overrides: dict[int, RigidMotion] | None, t_start: float, t_end: float
                  ) -> dict[int, ActorMotion]:
    """Motion of every actor present during the capture [t_start, t_end] (absolute s), in the world frame.

    Given states (world frame, e.g. STATE.yaml or ROS messages) override the scene's trajectories, which are in
    the scene frame and placed in the world by scene.world_from_scene. An actor whose trajectory starts or ends
    during the capture is kept with its existence window; one absent for the whole capture is left out.
    """
    motions: dict[int, ActorMotion] = {}
    placement = scene.world_from_scene
    for actor_id, actor in scene.actors.items():
        got = actor.trajectory.capture_motion(t_start, t_end)
        if got is not None:
            m, window = got
            motions[actor_id] = ActorMotion(m if placement is None else placement.motion(m), window)
    for actor_id, m in (overrides or {}).items():
        motions[actor_id] = ActorMotion(m)
    return motions


def capture_frame(spec: CameraSpec | LidarSpec, ego: RigidMotion, t_start: float) -> LocalFrame:
    """The local frame of a capture: origin at the sensor's world position at t_start (float64), clock at t_start."""
    sensor = sensor_motion(spec, ego.to(torch.float64))
    _, origin = sensor.pose_at(torch.tensor(float(t_start), dtype=torch.float64))
    return LocalFrame(origin, float(t_start))


def gaussian_frames(scene: GaussianScene, motions: dict[int, ActorMotion], lidar: bool, local: LocalFrame
                    ) -> GaussianFrames:
    """Gaussians in the capture's local frame, with their frame index and existence windows.

    Static Gaussians are placed in the world (scene.world_from_scene) and shifted to the local origin in float64,
    then cast to the scene's precision; actor Gaussians stay in their actor's frame, whose motion is localised.
    Actor Gaussians whose actor has no motion get zero opacity. The Gaussian tensors stay on the scene's device
    (bodies and windows are small host objects); nothing is read back from a GPU scene.
    """
    dtype, device = scene.means.dtype, scene.means.device
    ids = [i for i in present_actor_ids(scene) if i in motions]
    bodies: list[RigidMotion | None] = [None] + [local.motion(motions[i].motion, dtype) for i in ids]
    windows: list[tuple[float, float] | None] = [None] + [local.window(motions[i].window) for i in ids]
    frame = torch.zeros(len(scene), dtype=torch.long, device=device)
    all_static = not present_actor_ids(scene)  # (no masks to apply: every Gaussian is static and present)
    static = None if all_static else scene.actor_ids < 0
    present = None if all_static else static.clone()
    for f, actor_id in enumerate(ids, start=1):
        sel = scene.actor_ids == actor_id
        frame.masked_fill_(sel, f)
        present |= sel
    sigma = scene.sigma_lidar() if lidar else scene.sigma_camera()
    if not all_static:
        sigma = torch.where(present, sigma, torch.zeros_like(sigma))
    placement = scene.world_from_scene
    if device.type != "cpu":
        local = replace(local, origin=to_device(local.origin, device))
    world = scene.means if placement is None else _placed_points(placement, scene.means)
    means = local.points(world, dtype)
    if not all_static:
        means = torch.where(static[:, None], means, scene.means)
    rotations = scene.rotations()
    if placement is not None and placement.has_rotation:
        placed = to_device(placement.rotation.to(dtype), device) @ rotations
        rotations = placed if all_static else torch.where(static[:, None, None], placed, rotations)
    return GaussianFrames(means, rotations, scene.log_scales, sigma, frame, bodies, windows)


def _placed_points(placement, x: Tensor) -> Tensor:
    """placement.points(x) (scene frame -> world, float64) on x's device."""
    if x.device.type == "cpu":
        return placement.points(x)
    x = x.to(torch.float64)
    if placement.has_rotation:
        x = x @ to_device(placement.rotation, x.device).T
    return x + to_device(placement.translation, x.device)


def _values(scene: GaussianScene, colors: Tensor | None, lidar: bool) -> dict[str, Tensor]:
    values: dict[str, Tensor] = {}
    if colors is not None:
        values["rgb"] = colors
    if scene.features is not None:
        values["features"] = scene.features
    if lidar and scene.intensity is not None:
        values["intensity"] = scene.intensity[:, None]
    return values


def _ray_outputs(rays: SensorRays, local: LocalFrame) -> dict[str, Tensor]:
    """World-frame ray outputs: origins and times in float64 (map-scale positions, absolute clock)."""
    return {"ray_origin": local.world_points(rays.origins), "ray_direction": rays.directions,
            "ray_time": local.world_times(rays.times)}


def _capture(scene: GaussianScene, spec: CameraSpec | LidarSpec, ego: RigidMotion, t_start: float,
             actors: dict[int, RigidMotion] | None, phase_modeling: bool = True, backend: str = "auto") -> Capture:
    """Shared stages up to tiling, in the capture's local frame (origin at the sensor at t_start, seconds since
    t_start): rays, sensor motion, Gaussians in their frames, footprints and tile lists. Ray generation,
    projection + tiling and rasterization come from the backend (backends.stages); the rest is shared. The
    scene is taken to the backend's compute device first (a cached copy, kernels/device.py)."""
    lidar = isinstance(spec, LidarSpec)
    name = resolve_backend(backend)
    stage = stages(name)
    device = compute_device(name)
    scene = scene_on(scene, device)
    dtype = scene.means.dtype
    local = capture_frame(spec, ego, t_start)
    ego = local.motion(ego, dtype)
    rays = stage.rays(spec, ego, 0.0)
    projection = LidarProjection(spec, 0.0) if lidar else CameraProjection(spec, 0.0)
    sensor = sensor_motion(spec, ego)
    g = gaussian_frames(scene, actor_motions(scene, actors, t_start, t_start + spec.capture_duration), lidar, local)
    assignment = stage.tiles(spec, g, sensor, projection, phase_modeling)
    if device.type != "cpu":
        local = replace(local, origin=to_device(local.origin, device))
    return Capture(rays, projection, sensor, g, assignment, local, stage.rasterize, stage.returns, scene)


@dataclass
class Capture:
    """Everything the rasterizer needs for one capture, in its local frame (local's origin and the scene on the
    backend's compute device)."""

    rays: SensorRays
    projection: CameraProjection | LidarProjection
    sensor: RigidMotion
    gaussians: GaussianFrames
    assignment: TileAssignment
    local: LocalFrame
    rasterize: Callable
    returns: Callable  # the backend's LiDAR returns (raster/lidar_returns.py or its kernel)
    scene: GaussianScene | None = None


def _on(out: dict[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    """The outputs on the caller's scene device (a no-op where they already are)."""
    return {k: v if v.device == device else v.to(device) for k, v in out.items()}


def _rasterize(cap: Capture, values: dict[str, Tensor]) -> Composite:
    rays = cap.rays
    return cap.rasterize(rays.origins.reshape(-1, 3), rays.directions.reshape(-1, 3), rays.times.reshape(-1),
                         rays.valid.reshape(-1), cap.assignment, cap.gaussians, values)


def render_camera(scene: GaussianScene, camera: CameraSpec, ego: RigidMotion, t_start: float,
                  actors: dict[int, RigidMotion] | None = None, backend: str = "auto") -> dict[str, Tensor]:
    """Render one rolling-shutter camera capture starting at t_start (s). Outputs (H,W[,3]) tensors."""
    home = scene.means.device
    cap = _capture(scene, camera, ego, t_start, actors, backend=backend)
    scene, rays, g = cap.scene, cap.rays, cap.gaussians
    _, sensor_pos = cap.sensor.pose_at(torch.tensor(cap.projection.t_mid, dtype=scene.means.dtype))
    if scene.means.device.type == "cpu":
        colors = gaussian_colors(scene, g, sensor_pos, cap.projection.t_mid)
    else:
        colors = gaussian_colors_gathered(scene, g, sensor_pos, cap.projection.t_mid)
    h, w = camera.height, camera.width
    comp = _rasterize(cap, _values(scene, colors, lidar=False))
    rgb = comp.values["rgb"].reshape(h, w, 3)
    if scene.camera_decoder is not None and scene.features is not None:
        rgb = scene.camera_decoder(comp.values["features"].reshape(h, w, -1), rays.directions_sensor, rgb)
    if scene.sky is not None:
        rgb = rgb + comp.transmittance.reshape(h, w, 1) * scene.sky.radiance(rays.directions)
    out = {
        "rgb": rgb, "alpha": comp.alpha.reshape(h, w), "distance": comp.distance.reshape(h, w),
        "distance_median": comp.distance_median.reshape(h, w), **_ray_outputs(rays, cap.local),
    }
    if scene.features is not None:
        out["features"] = comp.values["features"].reshape(h, w, -1)
    return _on(out, home)


def render_lidar(scene: GaussianScene, lidar: LidarSpec, ego: RigidMotion, t_start: float,
                 actors: dict[int, RigidMotion] | None = None, phase_modeling: bool = True, backend: str = "auto"
                 ) -> dict[str, Tensor]:
    """Render one spinning-LiDAR sweep starting at t_start (s). Organised outputs are (beams, columns)."""
    home = scene.means.device
    cap = _capture(scene, lidar, ego, t_start, actors, phase_modeling, backend)
    scene, rays = cap.scene, cap.rays
    comp = _rasterize(cap, _values(scene, None, lidar=True))
    shape = (lidar.beams, lidar.columns)
    decoded = scene.lidar_decoder is not None and scene.features is not None
    if decoded:
        intensity, drop_logit = scene.lidar_decoder(comp.values["features"], rays.directions_sensor.reshape(-1, 3))
        drop = torch.sigmoid(drop_logit).reshape(shape)
        intensity = intensity.reshape(shape)
    else:
        drop = (1.0 - comp.alpha).reshape(shape)
        intensity = comp.values["intensity"][:, 0].reshape(shape) if "intensity" in comp.values \
            else torch.zeros(shape, dtype=comp.alpha.dtype, device=comp.alpha.device)
    median = comp.distance_median.reshape(shape)
    ret = cap.returns(lidar, median, drop if decoded else None, rays, cap.local)
    out = {
        "range": comp.distance.reshape(shape), "range_median": median, "alpha": comp.alpha.reshape(shape),
        "intensity": intensity, "ray_drop_probability": drop, **_ray_outputs(rays, cap.local),
        "points": ret.points, "point_time": ret.time, "point_beam": ret.beam, "point_column": ret.column,
        "returns": ret.returns,
    }
    return _on(out, home)

