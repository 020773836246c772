"""Random small scenes, rigs and motions shared by the renderer tests."""

from __future__ import annotations

import math

import torch

from xsim_render.motion import RigidMotion
from xsim_render.motion.local_frame import LocalFrame
from xsim_render.raster.attributes import gaussian_colors
from xsim_render.raster.brute_force import integrate
from xsim_render.render import actor_motions, gaussian_frames
from xsim_render.scene import Actor, GaussianScene, Trajectory
from xsim_render.sensors.rays import camera_rays, lidar_rays, sensor_motion
from xsim_render.sensors.rig import rig_from_dict

F64 = torch.float64
CAMERA_OPTICAL_FORWARD = [0.5, -0.5, 0.5, -0.5]  # optical frame (z fwd, x right, y down) in base_link


def random_scene(n: int, seed: int, centre=(9.0, 0.0, 1.2), spread=(3.0, 3.0, 0.8), n_actor: int = 0,
                 sh_degree: int = 0, dtype=F64) -> GaussianScene:
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=g, dtype=dtype) * 2 - 1) * torch.tensor(spread, dtype=dtype) \
        + torch.tensor(centre, dtype=dtype)
    actor_ids = torch.full((n,), -1, dtype=torch.long)
    actors = {}
    if n_actor:
        actor_ids[:n_actor] = 3
        means[:n_actor] = (torch.rand(n_actor, 3, generator=g, dtype=dtype) - 0.5) * torch.tensor([3.0, 1.6, 1.2],
                                                                                                 dtype=dtype)
        times = torch.tensor([-1.0, 0.0, 1.0], dtype=dtype)
        pos = torch.tensor([[6.0, 4.0, 0.8], [8.0, 1.0, 0.8], [10.0, -2.0, 0.8]], dtype=dtype)
        yaw = torch.tensor([-0.6, -0.9, -1.2], dtype=dtype)
        rots = torch.stack((torch.cos(yaw / 2), 0 * yaw, 0 * yaw, torch.sin(yaw / 2)), -1)
        actors[3] = Actor(3, Trajectory(times, pos, rots), "vehicle", torch.tensor([3.0, 1.6, 1.2], dtype=dtype))
    k = {0: 0, 1: 3, 2: 8, 3: 15}[sh_degree]
    return GaussianScene(
        means=means, log_scales=torch.log(torch.rand(n, 3, generator=g, dtype=dtype) * 0.35 + 0.05),
        quats=torch.randn(n, 4, generator=g, dtype=dtype),
        opacity_camera=torch.randn(n, generator=g, dtype=dtype) + 1.0,
        opacity_lidar=torch.randn(n, generator=g, dtype=dtype) + 1.0,
        colors=torch.rand(n, 3, generator=g, dtype=dtype), actor_ids=actor_ids,
        sh_rest=0.3 * torch.randn(n, k, 3, generator=g, dtype=dtype) if k else None,
        intensity=torch.rand(n, generator=g, dtype=dtype), actors=actors,
    )


def camera_rig(model: str = "pinhole", width: int = 40, height: int = 30, readout: float = 0.04,
               direction: str = "top_to_bottom"):
    distortion = {"pinhole": [], "opencv": [-0.25, 0.07, 1e-3, -5e-4, -0.01],
                  "fisheye": [0.05, -0.01, 0.002, -0.0005]}[model]
    f = 16.0 if model == "fisheye" else 26.0
    return rig_from_dict({"sensors": [{
        "name": "cam", "type": "camera", "model": model, "width": width, "height": height, "fx": f, "fy": f,
        "cx": width / 2, "cy": height / 2, "distortion": distortion,
        "rolling_shutter": {"direction": direction, "readout_time": readout},
        "extrinsics": {"translation": [1.5, 0.0, 1.4], "rotation_wxyz": CAMERA_OPTICAL_FORWARD}}]}).sensor("cam")


def lidar_rig(columns: int = 256, spin: str = "ccw", seam: float = math.pi):
    elevations = [-0.35, -0.25, -0.18, -0.12, -0.08, -0.05, -0.03, -0.01, 0.01, 0.03, 0.06, 0.1, 0.16, 0.25]
    return rig_from_dict({"sensors": [{
        "name": "top", "type": "lidar", "elevations": elevations, "columns": columns, "spin_rate_hz": 10.0,
        "spin_direction": spin, "seam_azimuth": seam, "min_range": 0.3, "max_range": 80.0,
        "extrinsics": {"translation": [0.0, 0.0, 1.8], "rotation_wxyz": [1, 0, 0, 0]}}]}).sensor("top")


def ego_motion(moving: bool, dtype=F64) -> RigidMotion:
    if not moving:
        return RigidMotion.from_values((0, 0, 0), (1, 0, 0, 0), dtype=dtype)
    return RigidMotion.from_values((0.0, 0.0, 0.0), (math.cos(0.05), 0, 0, math.sin(0.05)), (12.0, 1.5, 0.0),
                                   (0.0, 0.0, 0.8), time=0.01, dtype=dtype)


def brute_force(scene: GaussianScene, spec, ego: RigidMotion, t_start: float, lidar: bool):
    """Brute-force render of the same rays: absolute positions, times relative to t_start (a local frame with
    its origin at the world origin). Pass a float64 scene for an exact oracle."""
    dtype = scene.means.dtype
    local = LocalFrame(torch.zeros(3, dtype=F64), float(t_start))
    ego = local.motion(ego, dtype)
    rays = lidar_rays(spec, ego, 0.0) if lidar else camera_rays(spec, ego, 0.0)
    t_mid = 0.5 * spec.capture_duration
    g = gaussian_frames(scene, actor_motions(scene, None, t_start, t_start + spec.capture_duration), lidar, local)
    if lidar:
        values = scene.intensity[:, None]
    else:
        _, pos = sensor_motion(spec, ego).pose_at(torch.tensor(t_mid, dtype=dtype))
        values = gaussian_colors(scene, g, pos, t_mid)
    out = integrate(rays.origins.reshape(-1, 3), rays.directions.reshape(-1, 3), rays.times.reshape(-1),
                    g.means, g.rotations, g.log_scales.exp(), g.sigma, values, g.bodies, g.frame, g.windows)
    shape = rays.times.shape
    valid = rays.valid
    return {k: (v.reshape(shape + v.shape[1:]) if v.dim() > 1 else v.reshape(shape)) for k, v in out.items()}, valid
