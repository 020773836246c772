"""Gaussians the Unscented Transform cannot represent: tiled by a conservative bounding cone, never dropped.

Covers the tile cones, the bounding cone over a moving capture, the reference renderer against the brute force
with the sensor inside / near large Gaussians and with UT failures (cameras and LiDARs, moving ego), the LiDAR
no longer dropping UT-invalid Gaussians, and the share of tile/Gaussian pairs those Gaussians take.
"""

from __future__ import annotations

import math

import pytest
import torch
from _scenes import CAMERA_OPTICAL_FORWARD, camera_rig, ego_motion, lidar_rig

from xsim_render.motion import RigidMotion
from xsim_render.motion.rolling_shutter import point_in_sensor
from xsim_render.projection.footprint import (
    EXTENT_SAFETY,
    MAX_ANGULAR_RADIUS,
    Footprints,
    bounding_cones,
    opacity_extent,
    project_gaussians,
)
from xsim_render.projection.sensor_projection import CameraProjection, LidarProjection
from xsim_render.projection.unscented import unscented_transform
from xsim_render.raster.brute_force import integrate
from xsim_render.render import render_camera, render_lidar
from xsim_render.scene import GaussianScene
from xsim_render.sensors import camera_models
from xsim_render.sensors.rays import camera_pixel_grid, camera_rays, lidar_directions, lidar_rays, sensor_motion
from xsim_render.sensors.rig import rig_from_dict
from xsim_render.tiling.camera_tiles import camera_tiles
from xsim_render.tiling.cones import camera_ray_tiles, camera_tile_cones, lidar_ray_tiles, lidar_tile_cones
from xsim_render.tiling.lidar_tiles import lidar_tiles

F64 = torch.float64
STEEP_ELEVATIONS = [-0.35, -0.25, -0.18, -0.12, -0.08, -0.05, -0.03, -0.01, 0.01, 0.03, 0.06, 0.1, 0.16, 0.25,
                    0.5, 0.8, 1.1, 1.25, 1.35, 1.45, 1.52]


def steep_lidar(spin: str = "ccw", columns: int = 256):
    """A dome-like LiDAR whose upper beams reach 1.52 rad: Gaussians nearly straight above are in view."""
    return rig_from_dict({"sensors": [{
        "name": "dome", "type": "lidar", "elevations": STEEP_ELEVATIONS, "columns": columns, "spin_rate_hz": 10.0,
        "spin_direction": spin, "seam_azimuth": 2.5, "min_range": 0.3, "max_range": 80.0,
        "extrinsics": {"translation": [0.0, 0.0, 1.8], "rotation_wxyz": [1, 0, 0, 0]}}]}).sensor("dome")


def make_scene(means, scales, opacity, quats=None, actor_ids=None, seed=0) -> GaussianScene:
    g = torch.Generator().manual_seed(seed)
    means = torch.as_tensor(means, dtype=F64)
    n = means.shape[0]
    return GaussianScene(
        means=means, log_scales=torch.as_tensor(scales, dtype=F64).log(),
        quats=torch.tensor([1.0, 0, 0, 0], dtype=F64).expand(n, 4).clone() if quats is None else quats,
        opacity_camera=torch.as_tensor(opacity, dtype=F64), opacity_lidar=torch.as_tensor(opacity, dtype=F64),
        colors=torch.rand(n, 3, generator=g, dtype=F64),
        actor_ids=torch.full((n,), -1) if actor_ids is None else actor_ids,
        intensity=torch.rand(n, generator=g, dtype=F64))


def cat_scenes(a: GaussianScene, b: GaussianScene) -> GaussianScene:
    return GaussianScene(**{f: torch.cat((getattr(a, f), getattr(b, f))) for f in
                            ("means", "log_scales", "quats", "opacity_camera", "opacity_lidar", "colors",
                             "actor_ids", "intensity")})


def random_part(n: int, seed: int, centre, spread) -> GaussianScene:
    g = torch.Generator().manual_seed(seed)
    means = (torch.rand(n, 3, generator=g, dtype=F64) * 2 - 1) * torch.tensor(spread, dtype=F64) \
        + torch.tensor(centre, dtype=F64)
    scene = make_scene(means, torch.rand(n, 3, generator=g, dtype=F64) * 0.3 + 0.05,
                       torch.randn(n, generator=g, dtype=F64) + 1.0, seed=seed)
    scene.quats = torch.randn(n, 4, generator=g, dtype=F64)
    return scene


def oracle(scene: GaussianScene, out: dict, lidar: bool, actors: dict[int, RigidMotion] | None = None) -> dict:
    """Brute force (every ray x every Gaussian) on the renderer's own world-frame rays (absolute times)."""
    frame = torch.zeros(len(scene), dtype=torch.long)
    bodies: list[RigidMotion | None] = [None]
    for f, (actor_id, motion) in enumerate(sorted((actors or {}).items()), start=1):
        frame[scene.actor_ids == actor_id] = f
        bodies.append(motion)
    sigma = scene.sigma_lidar() if lidar else scene.sigma_camera()
    values = scene.intensity[:, None] if lidar else scene.colors
    shape = out["ray_time"].shape
    res = integrate(out["ray_origin"].reshape(-1, 3), out["ray_direction"].reshape(-1, 3), out["ray_time"].reshape(-1),
                    scene.means, scene.rotations(), scene.log_scales.exp(), sigma, values, bodies, frame)
    return {k: v.reshape(shape + v.shape[1:]) for k, v in res.items()}


def assert_matches(out: dict, ref: dict, mask: torch.Tensor, lidar: bool) -> None:
    dist, median = ("range", "range_median") if lidar else ("distance", "distance_median")
    assert (out["alpha"][mask] - ref["alpha"][mask]).abs().max() < 1e-9
    assert (out[dist][mask] - ref["distance"][mask]).abs().max() < 1e-8
    a, b = out[median][mask], ref["distance_median"][mask]
    assert torch.equal(torch.isnan(a), torch.isnan(b)), "median NaN patterns differ"
    assert (a - b).nan_to_num().abs().max() < 1e-8
    value = out["intensity"] if lidar else out["rgb"]
    ref_value = ref["value"][..., 0] if lidar else ref["value"]
    assert (value[mask] - ref_value[mask]).abs().max() < 1e-9


# ----------------------------------------------------------------------------------------------------------
# Cones
# ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["pinhole", "opencv", "fisheye"])
def test_camera_tile_cones_hold_every_pixel_ray(model):
    cam = camera_rig(model, width=70, height=45)
    cones = camera_tile_cones(cam)
    dirs, valid = camera_models.unproject(cam, camera_pixel_grid(cam, F64))
    ray_tile, tiles_x, tiles_y = camera_ray_tiles(cam.width, cam.height)
    d, tile = dirs.reshape(-1, 3)[valid.reshape(-1)], ray_tile[valid.reshape(-1)]
    angle = torch.acos((d * cones.axis[tile]).sum(-1).clamp(-1, 1))
    assert (angle <= cones.half_angle[tile] + 1e-9).all()
    # tight: the farthest ray of every tile lies on the cone's rim
    rim = torch.zeros(tiles_x * tiles_y, dtype=F64).scatter_reduce_(0, tile, angle, "amax")
    assert torch.allclose(rim[cones.has_rays], cones.half_angle[cones.has_rays], atol=1e-9)
    assert int(cones.has_rays.sum()) == int(torch.unique(tile).numel())


@pytest.mark.parametrize("spin", ["ccw", "cw"])
def test_lidar_tile_cones_hold_every_firing(spin):
    lidar = steep_lidar(spin, columns=200)
    cones = lidar_tile_cones(lidar)
    ray_tile, _, _ = lidar_ray_tiles(lidar)
    d, tile = lidar_directions(lidar, F64).reshape(-1, 3), ray_tile.reshape(-1)
    angle = torch.acos((d * cones.axis[tile]).sum(-1).clamp(-1, 1))
    assert (angle <= cones.half_angle[tile] + 1e-9).all()
    assert bool(cones.has_rays.all())


def test_bounding_cone_holds_the_gaussian_at_every_instant():
    """Between the samples the centre moves (ego driving and turning fast; a wheel spinning one turn per capture):
    the inflated cone holds the sphere's cone at every instant of the capture; without the inflation it does not."""
    ego = RigidMotion.from_values((0, 0, 0), (1, 0, 0, 0), (15.0, 2.0, 0.0), (0.1, -0.2, 2.5), time=0.0)
    sensor = sensor_motion(lidar_rig(), ego)
    wheel = RigidMotion.from_values((8.0, 3.0, 0.5), (math.cos(0.3), 0, 0, math.sin(0.3)), (-10.0, 4.0, 0.0),
                                    (0.0, 0.0, 2 * math.pi / 0.1), time=0.05)
    g = torch.Generator().manual_seed(2)
    world = (torch.rand(150, 3, generator=g, dtype=F64) - 0.5) * torch.tensor([40.0, 40.0, 6.0], dtype=F64)
    # and 50 that the sensor passes within 1-2 m of in mid-capture
    near = torch.rand(50, 3, generator=g, dtype=F64) * torch.tensor([1.5, 1.0, 1.0], dtype=F64) \
        + torch.tensor([0.0, 1.0, 1.3], dtype=F64)
    near[::2, 1] *= -1
    on_wheel = (torch.rand(100, 3, generator=g, dtype=F64) - 0.5) * torch.tensor([2.0, 2.0, 0.5], dtype=F64)
    times = torch.linspace(0.0, 0.1, 2001, dtype=F64)
    for body, means in ((None, torch.cat((world, near))), (wheel, on_wheel)):
        n = means.shape[0]
        radius = torch.rand(n, generator=g, dtype=F64) * 0.5 + 0.01
        axis, half, _ = bounding_cones(means, radius, body, sensor, 0.0, 0.1, samples=2)
        c = point_in_sensor(means[None], body, sensor, times[:, None].expand(-1, n))
        dist = c.norm(dim=-1)
        needed = torch.acos(((c / dist[..., None]) * axis).sum(-1).clamp(-1, 1)) \
            + torch.asin((radius / dist).clamp(max=1.0))
        needed = torch.where(dist <= radius, torch.full_like(needed, math.pi), needed)
        assert (needed <= half + 1e-12).all()
        assert (half < math.pi).float().mean() > 0.75, "most cones must be partial for the test to mean anything"
    # the motion between samples matters: the sampled spheres alone (no drift bound) miss the wheel mid-turn
    ends = point_in_sensor(means[None], body, sensor, torch.tensor([0.0, 0.1], dtype=F64)[:, None].expand(-1, n))
    d_s = ends.norm(dim=-1)
    off = torch.acos(((ends / d_s[..., None]) * axis).sum(-1).clamp(-1, 1))
    plain = (off + torch.asin((radius / d_s).clamp(max=1.0))).max(0).values
    assert bool((needed > plain[None] + 0.1).any())


def test_full_footprints_without_cone_data_cover_every_ray():
    lidar = lidar_rig(columns=128)
    inf = torch.full((1, 2), math.inf, dtype=F64)
    fp = Footprints(torch.tensor([0]), -inf, inf, torch.tensor([True]), torch.tensor([0]), torch.ones(1, dtype=F64))
    a = lidar_tiles(lidar, fp, 1)
    assert a.gaussian_ids.numel() == a.num_tiles


# ----------------------------------------------------------------------------------------------------------
# Rectangle tiling (UT-valid footprints) keeps its meaning
# ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("wrap", [True, False])
def test_lidar_rectangles_cover_exactly_the_firings_inside(wrap):
    """A (phase, elevation) rectangle covers the tiles of the firings inside it (modulo 2 pi when wrapping)."""
    lidar = steep_lidar(columns=320)
    g = torch.Generator().manual_seed(5)
    k = 300
    centre = torch.stack((torch.rand(k, generator=g, dtype=F64) * 10 - 2.5,
                          torch.rand(k, generator=g, dtype=F64) * 2.2 - 0.6), -1)
    half = torch.rand(k, 2, generator=g, dtype=F64) * torch.tensor([1.2, 0.3], dtype=F64)
    half[:10, 0] = 4.0  # wider than a sweep
    fp = Footprints(torch.arange(k), centre - half, centre + half, torch.zeros(k, dtype=torch.bool),
                    torch.zeros(k, dtype=torch.long), torch.ones(k, dtype=F64))
    a = lidar_tiles(lidar, fp, k, wrap=wrap)
    got = set(zip(a.tile_ids.tolist(), a.gaussian_ids.tolist()))
    ray_tile, _, _ = lidar_ray_tiles(lidar)
    phase = 2 * math.pi * (torch.arange(lidar.columns, dtype=F64) + 0.5) / lidar.columns
    el = torch.tensor(lidar.elevations, dtype=F64)
    want = set()
    for i in range(k):
        lo, hi = fp.lo[i], fp.hi[i]
        if wrap:
            cols = ((phase - lo[0]) % (2 * math.pi) <= hi[0] - lo[0]) | (hi[0] - lo[0] >= 2 * math.pi)
        else:
            cols = (phase >= lo[0]) & (phase <= hi[0])
        rows = (el >= lo[1]) & (el <= hi[1])
        for t in torch.unique(ray_tile[rows][:, cols]).tolist():
            want.add((t, i))
    assert got == want


# ----------------------------------------------------------------------------------------------------------
# No ray that reaches a Gaussian is missed by the tiling
# ----------------------------------------------------------------------------------------------------------

def uncovered(scene: GaussianScene, spec, ego: RigidMotion, lidar: bool, phase_modeling: bool = True):
    """(tile, gaussian) pairs where some ray gets alpha >= 1/255 from the Gaussian alone but the tiling omits it;
    also the footprints and the tile count."""
    rays = lidar_rays(spec, ego, 0.0) if lidar else camera_rays(spec, ego, 0.0)
    projection = LidarProjection(spec, 0.0) if lidar else CameraProjection(spec, 0.0)
    sensor = sensor_motion(spec, ego)
    sigma = scene.sigma_lidar() if lidar else scene.sigma_camera()
    fp = project_gaussians(scene.means, scene.rotations(), scene.log_scales.exp(), sigma,
                           torch.zeros(len(scene), dtype=torch.long), [None], sensor, projection, phase_modeling)
    a = lidar_tiles(spec, fp, len(scene), wrap=not phase_modeling) if lidar else camera_tiles(spec, fp, len(scene))
    got = set(zip(a.tile_ids.tolist(), a.gaussian_ids.tolist()))
    valid = rays.valid.reshape(-1)
    o, d, t = rays.origins.reshape(-1, 3)[valid], rays.directions.reshape(-1, 3)[valid], rays.times.reshape(-1)[valid]
    tiles = a.ray_tile[valid]
    missing = []
    for i in range(len(scene)):
        res = integrate(o, d, t, scene.means[i:i + 1], scene.rotations()[i:i + 1], scene.log_scales[i:i + 1].exp(),
                        sigma[i:i + 1], torch.zeros(1, 1, dtype=F64), [None], torch.zeros(1, dtype=torch.long))
        for tile in torch.unique(tiles[res["alpha"] > 0]).tolist():
            if (tile, i) not in got:
                missing.append((tile, i))
    return missing, fp, a


def camera_special(model: str) -> GaussianScene:
    """Around a camera at (1.5, 0, 1.4) looking along +x: a haze enclosing it, a Gaussian 2.5 m ahead to the right,
    a big one at the left edge of the view, one straddling the lens limit at the right edge, one beside the
    camera that holds it."""
    edge = {"pinhole": 0.85, "opencv": 0.85, "fisheye": 1.45}[model]
    means = [[2.0, 0.3, 1.5], [1.5 + 2.5 * math.cos(0.45), -2.5 * math.sin(0.45), 1.0],
             [1.5 + 4 * math.cos(edge), 4 * math.sin(edge), 1.4],
             [1.5 + 6 * math.cos(edge + 0.1), -6 * math.sin(edge + 0.1), 1.6],
             [1.6, -0.9, 1.2]]
    scales = [[3.0, 3.0, 2.0], [0.3, 0.35, 0.3], [0.4, 0.45, 0.4], [0.5, 0.25, 0.3], [0.3, 0.1, 0.4]]
    return make_scene(means, scales, [-3.0, 1.0, 1.5, 0.5, 2.0], seed=1)


@pytest.mark.parametrize("model", ["pinhole", "opencv", "fisheye"])
def test_camera_cone_tiling_misses_no_ray(model):
    scene = cat_scenes(random_part(30, 3, (9.0, 0.0, 1.2), (4.0, 4.0, 0.8)), camera_special(model))
    cam = camera_rig(model, width=96, height=64)
    cam.fx = cam.fy = cam.fx * 96 / 40                      # the field of view of the 40 x 30 test camera
    missing, fp, a = uncovered(scene, cam, ego_motion(True), lidar=False)
    assert missing == []
    full = fp.gaussian[fp.full]
    assert {30, 31, 32, 34} <= set(full.tolist()), "the haze, near, edge and beside Gaussians are UT-failed"
    per = torch.bincount(a.gaussian_ids, minlength=len(scene))
    assert int(per[30]) == int(camera_tile_cones(cam).has_rays.sum())   # inside the haze: every tile with rays
    assert 0 < int(per[31]) < a.num_tiles and 0 < int(per[32]) < a.num_tiles


def lidar_special() -> GaussianScene:
    """Around a LiDAR at (0, 0, 1.8): a huge ground Gaussian under the car, one straight above (a sigma point on
    the spin axis), one 2 m beside, a big one behind straddling the seam, a low-opacity haze around the sensor."""
    a = 0.5
    means = [[2.0, 0.0, 0.0], [a, 0.0, 4.8], [0.3, 2.0, 1.9], [-2.5, -1.5, 1.6], [0.5, 0.5, 2.0]]
    scales = [[8.0, 6.0, 0.05], [a / math.sqrt(3), 0.1, 0.05], [0.3, 0.3, 0.3], [0.5, 0.5, 0.5], [4.0, 4.0, 3.0]]
    return make_scene(means, scales, [1.0, 0.0, 1.0, 1.0, -3.5], seed=2)


@pytest.mark.parametrize(("spin", "phase_modeling"), [("ccw", True), ("cw", True), ("cw", False)])
def test_lidar_cone_tiling_misses_no_ray(spin, phase_modeling):
    scene = cat_scenes(random_part(30, 4, (0.0, 0.0, 1.5), (10.0, 10.0, 1.5)), lidar_special())
    missing, fp, a = uncovered(scene, steep_lidar(spin), ego_motion(True), lidar=True, phase_modeling=phase_modeling)
    assert missing == []
    per = torch.bincount(a.gaussian_ids, minlength=len(scene))
    assert int(per[30]) == a.num_tiles and int(per[34]) == a.num_tiles   # sensor inside: every tile
    assert 0 < int(per[32]) < a.num_tiles and 0 < int(per[33]) < a.num_tiles


# ----------------------------------------------------------------------------------------------------------
# The reference renderer equals the brute force with such Gaussians
# ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("model", ["pinhole", "opencv", "fisheye"])
def test_camera_inside_and_near_large_gaussians_matches_brute_force(model):
    scene = cat_scenes(random_part(40, 11, (9.0, 0.0, 1.2), (4.0, 4.0, 0.8)), camera_special(model))
    cam = camera_rig(model)
    out = render_camera(scene, cam, ego_motion(True), 0.02)
    ref = oracle(scene, out, lidar=False)
    _, valid = camera_models.unproject(cam, camera_pixel_grid(cam, F64))
    assert_matches(out, ref, valid, lidar=False)
    bare = oracle(GaussianScene(**{f: getattr(scene, f)[:40] for f in
                                   ("means", "log_scales", "quats", "opacity_camera", "opacity_lidar", "colors",
                                    "actor_ids", "intensity")}), out, lidar=False)
    assert (ref["alpha"] - bare["alpha"])[valid].abs().max() > 0.5, "the special Gaussians must show"


@pytest.mark.parametrize("spin", ["ccw", "cw"])
def test_lidar_inside_and_near_large_gaussians_matches_brute_force(spin):
    scene = cat_scenes(random_part(50, 12, (0.0, 0.0, 1.5), (12.0, 12.0, 1.5)), lidar_special())
    lidar = steep_lidar(spin)
    out = render_lidar(scene, lidar, ego_motion(True), 0.03)
    ref = oracle(scene, out, lidar=True)
    assert_matches(out, ref, torch.ones_like(out["alpha"], dtype=torch.bool), lidar=True)
    assert torch.isfinite(out["range_median"]).sum() > 300
    steep = [i for i, e in enumerate(STEEP_ELEVATIONS) if e > 1.2]
    assert out["alpha"][steep].max() > 0.3, "the Gaussian above is seen by the steep beams"


def overhead_scene(carried: bool) -> GaussianScene:
    """A Gaussian 3 m above a LiDAR mounted at (0, 0, 1.8), one sigma point exactly on the spin axis (where the
    spherical projection is undefined), plus a few ordinary Gaussians around. carried: it rides on actor 5 whose
    frame is base_link (it moves with the ego, so it stays on the axis)."""
    a = 0.5
    top = make_scene([[a, 0.0, 4.8]], [[a / math.sqrt(3), 0.1, 0.05]], [0.0], seed=3)
    if carried:
        top.actor_ids = torch.tensor([5])
    return cat_scenes(random_part(20, 13, (0.0, 0.0, 1.5), (10.0, 10.0, 1.5)), top)


@pytest.mark.parametrize("carried", [False, True])
def test_lidar_keeps_gaussians_the_ut_cannot_project(carried):
    """The overhead Gaussian holds the spin axis: the old code projected it by the UT, found it invalid and dropped
    it (this test fails there); now it is tiled by its bounding cone."""
    lidar = steep_lidar()
    ego = ego_motion(True) if carried else RigidMotion.from_values((0, 0, 0), (1, 0, 0, 0))
    actors = {5: ego} if carried else None
    scene = overhead_scene(carried)
    out = render_lidar(scene, lidar, ego, 0.0, actors=actors)
    ref = oracle(scene, out, lidar=True, actors=actors)
    assert ref["alpha"].max() > 0.3
    assert_matches(out, ref, torch.ones_like(out["alpha"], dtype=torch.bool), lidar=True)
    sensor = sensor_motion(lidar, ego)
    projection = LidarProjection(lidar, 0.0)
    body = [None] if not carried else [None, ego]
    frame = torch.zeros(len(scene), dtype=torch.long)
    frame[-1] = 1 if carried else 0
    fp = project_gaussians(scene.means, scene.rotations(), scene.log_scales.exp(), scene.sigma_lidar(), frame, body,
                           sensor, projection)
    assert (len(scene) - 1) in fp.gaussian[fp.full].tolist()


def test_lidar_tiles_a_gaussian_whose_ut_is_invalid():
    """A faint Gaussian (opacity 0.0045, alpha region inside its sigma points) small and far enough from the spin
    axis to pass every pre-check, but with a sigma point exactly on the axis: the UT is invalid on all three
    branches. The old code dropped it; now its bounding cone tiles it and the render equals the brute force."""
    lidar = steep_lidar()
    h, elevation = 3.0, 1.45                      # the 1.45 rad beam passes through its centre
    a = h / math.tan(elevation)
    sigma = 0.0045
    top = make_scene([[a, 0.0, 1.8 + h]], [[a / math.sqrt(3), 0.05, 0.05]], [math.log(sigma / (1 - sigma))], seed=4)
    scene = cat_scenes(random_part(20, 14, (0.0, 0.0, 1.5), (10.0, 10.0, 1.5)), top)
    ego = RigidMotion.from_values((0, 0, 0), (1, 0, 0, 0))
    sensor, projection = sensor_motion(lidar, ego), LidarProjection(lidar, 0.0)
    i = len(scene) - 1
    args = (scene.means[i:], scene.rotations()[i:], scene.log_scales[i:].exp(), None, sensor, projection)
    for eta0, branch in ((0.0, 0.0), (0.05, math.pi), (0.1, 2 * math.pi)):
        assert not bool(unscented_transform(*args, eta0, branch).valid[0])
    k = float(opacity_extent(scene.sigma_lidar()[i:]))
    r, d = k * a / math.sqrt(3), math.hypot(a, h)
    assert r < MAX_ANGULAR_RADIUS * d and d > 1.5 * r, "not caught by the near / large pre-checks"
    assert math.atan2(a, h) > 2 * math.asin(EXTENT_SAFETY * r / d), "not caught by the spin-axis pre-check"
    out = render_lidar(scene, lidar, ego, 0.0)
    ref = oracle(scene, out, lidar=True)
    alone = oracle(top, out, lidar=True)
    assert alone["alpha"].max() > 1 / 255
    assert_matches(out, ref, torch.ones_like(out["alpha"], dtype=torch.bool), lidar=True)


# ----------------------------------------------------------------------------------------------------------
# Candidate pairs: UT-failed Gaussians no longer land in every tile
# ----------------------------------------------------------------------------------------------------------

def street_scene(seed: int = 0) -> GaussianScene:
    """~18k Gaussians: ground surfels (0.3 m grid, 0.17 m std) around and under the car, two facades, small
    objects along the street and six large Gaussians around the camera (tree crowns, haze, an overpass)."""
    g = torch.Generator().manual_seed(seed)
    means, scales, quats = [], [], []
    xs, ys = torch.meshgrid(torch.arange(-10, 50, 0.3, dtype=F64), torch.arange(-8, 8, 0.3, dtype=F64), indexing="ij")
    n = xs.numel()
    jitter = (torch.rand(n, 2, generator=g, dtype=F64) - 0.5) * 0.1
    means.append(torch.stack((xs.reshape(-1) + jitter[:, 0], ys.reshape(-1) + jitter[:, 1], torch.zeros(n, dtype=F64)),
                             -1))
    scales.append(torch.tensor([0.17, 0.17, 0.01], dtype=F64).expand(n, 3))
    yaw = torch.rand(n, generator=g, dtype=F64) * math.pi
    quats.append(torch.stack((torch.cos(yaw / 2), 0 * yaw, 0 * yaw, torch.sin(yaw / 2)), -1))
    for side in (-9.0, 9.0):
        xs, zs = torch.meshgrid(torch.arange(-10, 50, 0.4, dtype=F64), torch.arange(0.2, 8, 0.4, dtype=F64),
                                indexing="ij")
        n = xs.numel()
        means.append(torch.stack((xs.reshape(-1), torch.full((n,), side, dtype=F64), zs.reshape(-1)), -1))
        scales.append(torch.tensor([0.22, 0.01, 0.22], dtype=F64).expand(n, 3))
        quats.append(torch.tensor([1.0, 0, 0, 0], dtype=F64).expand(n, 4))
    n = 1500
    means.append(torch.rand(n, 3, generator=g, dtype=F64) * torch.tensor([55.0, 14.0, 3.0], dtype=F64)
                 + torch.tensor([-5.0, -7.0, 0.0], dtype=F64))
    scales.append(torch.rand(n, 3, generator=g, dtype=F64) * 0.15 + 0.03)
    quats.append(torch.randn(n, 4, generator=g, dtype=F64))
    means.append(torch.tensor([[3.0, 3.0, 5.0], [0.0, -4.0, 4.0], [6.0, 0.0, 7.0], [-3.0, 0.0, 2.0],
                               [1.0, 0.0, 0.5], [12.0, 5.0, 4.0]], dtype=F64))
    scales.append(torch.tensor([[2.0, 2.0, 1.5], [1.5, 1.5, 2.0], [6.0, 4.0, 0.3], [2.0, 2.0, 2.0],
                                [3.0, 2.0, 0.3], [2.5, 2.5, 2.5]], dtype=F64))
    quats.append(torch.tensor([1.0, 0, 0, 0], dtype=F64).expand(6, 4))
    means = torch.cat(means)
    opacity = torch.full((means.shape[0],), 2.0, dtype=F64)
    opacity[-6:] = -1.5
    scene = make_scene(means, torch.cat(scales), opacity, seed=seed)
    scene.quats = torch.cat(quats)
    return scene


def street_camera(model: str):
    distortion = {"pinhole": [], "opencv": [-0.25, 0.07, 1e-3, -5e-4, -0.01]}[model]
    return rig_from_dict({"sensors": [{
        "name": "cam", "type": "camera", "model": model, "width": 160, "height": 120, "fx": 100.0, "fy": 100.0,
        "cx": 80.0, "cy": 60.0, "distortion": distortion,
        "rolling_shutter": {"direction": "top_to_bottom", "readout_time": 0.03},
        "extrinsics": {"translation": [1.5, 0.0, 1.4], "rotation_wxyz": CAMERA_OPTICAL_FORWARD}}]}).sensor("cam")


def ut_failed_pair_shares(model: str) -> tuple[float, float, int]:
    """Share of the candidate pairs that come from UT-failed Gaussians: (every-ray as before, bounding cone now,
    number of UT-failed Gaussians)."""
    scene = street_scene()
    cam = street_camera(model)
    fp = project_gaussians(scene.means, scene.rotations(), scene.log_scales.exp(), scene.sigma_camera(),
                           torch.zeros(len(scene), dtype=torch.long), [None], sensor_motion(cam, ego_motion(True)),
                           CameraProjection(cam, 0.0))
    a = camera_tiles(cam, fp, len(scene))
    failed = torch.zeros(len(scene), dtype=torch.bool)
    failed[fp.gaussian[fp.full]] = True
    now = float(failed[a.gaussian_ids].double().mean())
    rect_pairs = int((~failed[a.gaussian_ids]).sum())
    every_ray = int(failed.sum()) * a.num_tiles          # the former behaviour: each in every tile
    return every_ray / (rect_pairs + every_ray), now, int(failed.sum())


@pytest.mark.parametrize("model", ["pinhole", "opencv"])
def test_ut_failed_gaussians_take_few_pairs(model):
    before, now, n_failed = ut_failed_pair_shares(model)
    print(f"{model}: {n_failed} UT-failed Gaussians; share of pairs every-ray {before:.1%}, bounding cone {now:.1%}")
    assert n_failed > 300, "the scene must hold many Gaussians the UT cannot represent"
    assert before > 0.5
    assert now < 0.08
