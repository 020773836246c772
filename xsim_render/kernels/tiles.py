"""Projection + tiling with the C++ kernels: a drop-in for projection.footprint.project_gaussians followed by
tiling.camera_tiles / lidar_tiles, returning the same TileAssignment.

The tile lists equal the reference's or are a superset (documented in test_kernels_tiles.py): the kernels
project in float64 (the reference in the scene's precision), widen every rectangle by TILE_MARGIN (pixels /
radians) to cover the reference's float32 rounding, and skip Gaussians that no ray of the capture can meet
(a sphere holding the alpha >= 1/255 region, grown by the drift bound over the capture, outside the camera's
edge planes / image cone or the LiDAR's beam fan). Skipped and extra pairs never carry a live hit.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

from ..constants import CAMERA_TILE, LIDAR_TILE_BEAMS, LIDAR_TILE_COLUMNS
from ..motion.rigid import RigidMotion
from ..projection.sensor_projection import CameraProjection, LidarProjection
from ..raster.rasterize import GaussianFrames
from ..sensors import camera_models
from ..sensors.rays import camera_pixel_grid, lidar_directions
from ..sensors.rig import CameraSpec, LidarSpec
from ..tiling.pairs import TileAssignment
from . import build
from . import device as kdevice
from .raster import BODY_FIELDS, pack_bodies

F64 = torch.float64
TILE_MARGIN = {"camera": (0.01, 0.01), "lidar": (1e-5, 1e-5)}  # px / rad added to every rectangle's extent
_MODELS = {"pinhole": 0, "opencv": 1, "fisheye": 2}


def camera_ray_tile(camera: CameraSpec) -> tuple[Tensor, int, int]:
    """(H*W,) tile of each pixel (row-major), tiles across, tiles down."""
    tiles_x, tiles_y = math.ceil(camera.width / CAMERA_TILE), math.ceil(camera.height / CAMERA_TILE)
    rows = torch.arange(camera.height)[:, None] // CAMERA_TILE
    cols = torch.arange(camera.width)[None, :] // CAMERA_TILE
    return (rows * tiles_x + cols).reshape(-1), tiles_x, tiles_y


def lidar_ray_tile(lidar: LidarSpec) -> tuple[Tensor, int, int]:
    """(beams*columns,) tile of each firing (rows in rig order; beams grouped in elevation order)."""
    tiles_c = math.ceil(lidar.columns / LIDAR_TILE_COLUMNS)
    tiles_b = math.ceil(lidar.beams / LIDAR_TILE_BEAMS)
    order = torch.argsort(torch.tensor(lidar.elevations, dtype=F64))
    rank = torch.empty_like(order)
    rank[order] = torch.arange(order.numel())
    col = torch.arange(lidar.columns)[None, :] // LIDAR_TILE_COLUMNS
    return ((rank[:, None] // LIDAR_TILE_BEAMS) * tiles_c + col).reshape(-1), tiles_c, tiles_b


@functools.lru_cache(maxsize=16)
def _camera_directions(model: str, width: int, height: int, fx: float, fy: float, cx: float, cy: float,
                       distortion: tuple[float, ...]) -> tuple[Tensor, Tensor]:
    spec = CameraSpec("tiles", model, width, height, fx, fy, cx, cy, distortion)
    dirs, valid = camera_models.unproject(spec, camera_pixel_grid(spec, F64))
    return dirs.reshape(-1, 3).contiguous(), valid.reshape(-1).contiguous()


def sensor_directions(spec: CameraSpec | LidarSpec) -> tuple[Tensor, Tensor]:
    """(R,3) unit sensor-frame ray directions (float64) and (R,) valid, in image order (cached per intrinsics)."""
    if isinstance(spec, CameraSpec):
        return _camera_directions(spec.model, spec.width, spec.height, float(spec.fx), float(spec.fy),
                                  float(spec.cx), float(spec.cy), tuple(float(v) for v in spec.distortion))
    return _lidar_directions(tuple(float(e) for e in spec.elevations), spec.columns, spec.spin_direction,
                             float(spec.seam_azimuth))


@functools.lru_cache(maxsize=16)
def _lidar_directions(elevations: tuple[float, ...], columns: int, spin_direction: str, seam_azimuth: float
                      ) -> tuple[Tensor, Tensor]:
    spec = LidarSpec("rays", elevations, columns, spin_direction=spin_direction, seam_azimuth=seam_azimuth)
    dirs = lidar_directions(spec, F64).reshape(-1, 3).contiguous()
    return dirs, torch.ones(dirs.shape[0], dtype=torch.bool)


def _opencv_k(distortion) -> list[float]:
    return [float(v) for v in distortion] + [0.0] * (8 - len(distortion))


def sensor_arguments(spec: CameraSpec | LidarSpec, projection: CameraProjection | LidarProjection,
                     keep: list[Tensor]) -> dict:
    """Sensor model parameters for the kernels (csrc/include/xsim/camera_models.h, lidar_model.h)."""
    if isinstance(spec, CameraSpec):
        offset, tau_u, tau_v = spec.rolling_shutter.coefficients()
        limit = camera_models.max_valid_radius(spec)
        return {"sensor": 0, "model": _MODELS[spec.model], "width": spec.width, "height": spec.height,
                "fx": float(spec.fx), "fy": float(spec.fy), "cx": float(spec.cx), "cy": float(spec.cy),
                "distortion": _opencv_k(spec.distortion), "limit": min(float(limit), 1e300),
                "offset": offset, "tau_u": tau_u, "tau_v": tau_v,
                "t_start": float(projection.t_start), "t_end": float(projection.t_end)}
    bounds = projection.bounds()
    elevations = torch.sort(torch.tensor(spec.elevations, dtype=F64)).values.contiguous()
    keep.append(elevations)
    return {"sensor": 1, "spin_sign": float(spec.spin_sign), "seam": float(spec.seam_azimuth),
            "duration": float(spec.capture_duration), "t_start": float(projection.t_start),
            "t_end": float(projection.t_end), "columns": spec.columns, "beams": spec.beams,
            "el_lo": float(bounds[2]), "el_hi": float(bounds[3]), "elevations_sorted": elevations.data_ptr(),
            "fan_sin_lo": math.sin(float(elevations[0])), "fan_sin_hi": math.sin(float(elevations[-1]))}


def pack_motion(motion: RigidMotion) -> Tensor:
    """(33,) float64 packed motion of the sensor frame (layout of csrc/include/xsim/rigid.h)."""
    return pack_bodies(GaussianFrames(torch.zeros((0, 3)), torch.zeros((0, 3, 3)), torch.zeros((0, 3)),
                                      torch.zeros(0), torch.zeros(0, dtype=torch.long), [motion]), F64)[0][0]


def project_and_tile_cpu(spec: CameraSpec | LidarSpec, gaussians: GaussianFrames, sensor: RigidMotion,
                         projection: CameraProjection | LidarProjection, phase_modeling: bool = True,
                         cull: bool = True, keep_footprints: bool = False, seam_bound: bool = True,
                         centre_bound: bool = True, ut_bound: bool = True) -> tuple[TileAssignment, dict]:
    """TileAssignment of a capture (the reference's project_gaussians + camera_tiles / lidar_tiles) and a dict
    of statistics (culled, cones, far_skipped) and, with keep_footprints, the footprints (gaussian, lo, hi, full,
    branch, cone_axis, cone_half_angle) and tile cones (tile_axis, tile_half). far_skipped counts the LiDAR
    Gaussians whose far seam branch was proven idle and not solved (project.h far_branch_clear); seam_bound=False
    solves every branch (the same footprints, slower: for tests). centre_bound=False starts every LiDAR centre time
    solve at the reference's start instead of the predicted root where project.h centre_start proves both reach
    the same root (footprints equal to within the solve tolerance: for tests). ut_bound=False solves every LiDAR
    sigma point at its own time instead of taking, where predicted_root proves it and it costs little, the UT of the
    sigma points seen at the centre's time widened by a proven slack (csrc/include/xsim/unscented_bound.h: the
    rectangles then contain the exact ones, a few more tiles; for tests)."""
    ext = build.load("cpu")
    lidar = isinstance(spec, LidarSpec)
    ray_tile, tiles_x, tiles_y = lidar_ray_tile(spec) if lidar else camera_ray_tile(spec)
    keep: list[Tensor] = []

    def flat(t: Tensor, dtype: torch.dtype = F64) -> int:
        c = t.detach().to(dtype).contiguous()
        keep.append(c)
        return c.data_ptr()

    n = gaussians.means.shape[0]
    bodies, _, _ = pack_bodies(gaussians, F64)
    if bodies.shape[1] != BODY_FIELDS:
        raise ValueError("packed bodies have the wrong layout")
    args = sensor_arguments(spec, projection, keep)
    margin = TILE_MARGIN["lidar" if lidar else "camera"]
    args.update({
        "phase_modeling": bool(phase_modeling), "n": n, "frame": flat(gaussians.frame, torch.int64),
        "n_bodies": bodies.shape[0],
        "bodies": flat(bodies), "sensor_motion": flat(pack_motion(sensor)), "num_tiles": tiles_x * tiles_y,
        "tiles_x": tiles_x, "margin0": margin[0], "margin1": margin[1], "cull": bool(cull),
        "tolerance": 1e-9 if gaussians.means.dtype == F64 else 1e-5, "keep_footprints": bool(keep_footprints),
        "threads": torch.get_num_threads(), "seam_bound": bool(seam_bound),
        "centre_bound": bool(centre_bound), "ut_bound": bool(ut_bound),
    })
    # a float32 scene is read in place (the kernel widens each Gaussian), others as float64
    precision, suffix = (torch.float32, "32") if gaussians.means.dtype == torch.float32 else (F64, "")
    args.update({f"{key}{suffix}": flat(value, precision) for key, value in (
        ("means", gaussians.means), ("rotations", gaussians.rotations),
        ("scales", gaussians.log_scales.detach().exp()), ("sigma", gaussians.sigma))})
    axis, half, has_rays, image_half = tile_cones(spec)  # cached per sensor geometry
    args.update({"tile_axis": flat(axis), "tile_half": flat(half), "tile_has_rays": flat(has_rays, torch.uint8),
                 "image_half": image_half})
    out = ext.project(args)
    assignment = TileAssignment(ray_tile, torch.from_numpy(out.pop("tile_ids")),
                                torch.from_numpy(out.pop("gaussian_ids")), tiles_x * tiles_y)
    info = {k: (torch.from_numpy(v) if not isinstance(v, int) else v) for k, v in out.items()}
    return assignment, info


def tile_assignment_cpu(spec: CameraSpec | LidarSpec, gaussians: GaussianFrames, sensor: RigidMotion,
                        projection: CameraProjection | LidarProjection, phase_modeling: bool = True
                        ) -> TileAssignment:
    """The capture's TileAssignment from the C++ projection and tiling (see project_and_tile_cpu)."""
    return project_and_tile_cpu(spec, gaussians, sensor, projection, phase_modeling)[0]


_CONES: dict[tuple, tuple[Tensor, Tensor, Tensor, float]] = {}


def _sensor_key(spec: CameraSpec | LidarSpec) -> tuple:
    if isinstance(spec, CameraSpec):
        return ("camera", spec.model, spec.width, spec.height, float(spec.fx), float(spec.fy), float(spec.cx),
                float(spec.cy), tuple(float(v) for v in spec.distortion))
    return ("lidar", tuple(float(e) for e in spec.elevations), spec.columns, spec.spin_direction,
            float(spec.seam_azimuth))


def tile_cones(spec: CameraSpec | LidarSpec) -> tuple[Tensor, Tensor, Tensor, float]:
    """(T,3) axis, (T,) half-angle, (T,) has_rays of every tile's cone of sensor-frame ray directions, and the
    half-angle of a cone around +z holding every ray (cached per sensor geometry; float64)."""
    key = _sensor_key(spec)
    if key not in _CONES:
        ray_tile, tiles_x, tiles_y = lidar_ray_tile(spec) if isinstance(spec, LidarSpec) else camera_ray_tile(spec)
        dirs, valid = sensor_directions(spec)
        ray_tile = ray_tile.contiguous()
        axis, half, has_rays = build.load("cpu").tile_cones({
            "num_tiles": tiles_x * tiles_y, "n_rays": dirs.shape[0], "directions_sensor": dirs.data_ptr(),
            "valid": valid.data_ptr(), "ray_tile": ray_tile.data_ptr()})
        axis, half, has_rays = torch.from_numpy(axis), torch.from_numpy(half), torch.from_numpy(has_rays)
        off_axis = torch.atan2(axis[:, :2].norm(dim=-1), axis[:, 2]) + half
        image_half = float(off_axis[has_rays.bool()].max()) if bool(has_rays.any()) else math.pi
        if len(_CONES) > 16:
            _CONES.clear()
        _CONES[key] = (axis, half, has_rays, image_half)
    return _CONES[key]


_DEVICE_TILING: dict[tuple, dict] = {}


def device_tiling(spec: CameraSpec | LidarSpec, device: torch.device) -> dict:
    """The sensor's fixed tiling data on `device`, uploaded once per sensor geometry: ray_tile (R,) int64, tile
    cones (tile_axis (T,3), tile_half (T,) float64, tile_has_rays (T,) uint8), image_half, the sorted beam
    elevations (LiDAR, float64), tiles_x and num_tiles."""
    key = (_sensor_key(spec), str(device))
    if key not in _DEVICE_TILING:
        lidar = isinstance(spec, LidarSpec)
        ray_tile, tiles_x, tiles_y = lidar_ray_tile(spec) if lidar else camera_ray_tile(spec)
        axis, half, has_rays, image_half = tile_cones(spec)
        data = {"ray_tile": ray_tile.to(device).contiguous(), "tile_axis": axis.to(device, F64).contiguous(),
                "tile_half": half.to(device, F64).contiguous(),
                "tile_has_rays": has_rays.to(device, torch.uint8).contiguous(), "image_half": image_half,
                "tiles_x": tiles_x, "num_tiles": tiles_x * tiles_y}
        if lidar:
            data["elevations"] = torch.sort(torch.tensor(spec.elevations, dtype=F64)).values.to(device).contiguous()
        if len(_DEVICE_TILING) > 16:
            _DEVICE_TILING.clear()
        _DEVICE_TILING[key] = data
    return _DEVICE_TILING[key]


def tile_assignment_cuda(spec: CameraSpec | LidarSpec, gaussians: GaussianFrames, sensor: RigidMotion,
                         projection: CameraProjection | LidarProjection, phase_modeling: bool = True
                         ) -> TileAssignment:
    """The capture's TileAssignment from the CUDA projection and binning (csrc/cuda/binning.cu); every tensor of
    it on the GPU. The same pairs as project_and_tile_cpu (the same project.h code, in double precision), each
    once, but grouped by Gaussian rather than sorted by tile: the cuda rasterizer orders each tile's candidates
    itself. Host inputs are uploaded without waiting; the only wait is for the number of pairs."""
    ext = build.load("cuda")
    device = kdevice.cuda_device()
    lidar = isinstance(spec, LidarSpec)
    fixed = device_tiling(spec, device)
    keep: list[Tensor] = []

    def flat(t: Tensor, dtype: torch.dtype = F64) -> int:
        c = t.detach()
        c = (c.to(dtype) if c.device.type == "cpu" else c).to(device, dtype, non_blocking=True).contiguous()
        keep.append(c)
        return c.data_ptr()

    bodies, _, _ = pack_bodies(gaussians, F64)
    host: list[Tensor] = []
    args = sensor_arguments(spec, projection, host)
    if lidar:
        args["elevations_sorted"] = fixed["elevations"].data_ptr()
    margin = TILE_MARGIN["lidar" if lidar else "camera"]
    args.update({
        "phase_modeling": bool(phase_modeling), "n": gaussians.means.shape[0], "means": flat(gaussians.means),
        "rotations": flat(gaussians.rotations), "scales": flat(gaussians.log_scales.detach().exp()),
        "sigma": flat(gaussians.sigma), "frame": flat(gaussians.frame, torch.int64), "n_bodies": bodies.shape[0],
        "bodies": flat(bodies), "sensor_motion": flat(pack_motion(sensor)), "num_tiles": fixed["num_tiles"],
        "tiles_x": fixed["tiles_x"], "margin0": margin[0], "margin1": margin[1], "cull": True,
        "tolerance": 1e-9 if gaussians.means.dtype == F64 else 1e-5,
        "tile_axis": fixed["tile_axis"].data_ptr(), "tile_half": fixed["tile_half"].data_ptr(),
        "tile_has_rays": fixed["tile_has_rays"].data_ptr(), "image_half": fixed["image_half"],
        "stream": kdevice.cuda_stream(device),
    })
    binning = ext.project(args)  # waits for the pair count
    tile_ids = torch.empty(binning.count, dtype=torch.int64, device=device)
    gaussian_ids = torch.empty(binning.count, dtype=torch.int64, device=device)
    binning.emit(tile_ids.data_ptr(), gaussian_ids.data_ptr())
    del binning  # footprints freed in stream order (cudaFreeAsync) once emit has run
    keep.clear()  # inputs freed in stream order too (caching allocator, same stream): the kernels read them first
    return TileAssignment(fixed["ray_tile"], tile_ids, gaussian_ids, fixed["num_tiles"])
