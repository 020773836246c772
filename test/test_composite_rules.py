"""Compositing rules, checked against values worked out by hand: the early stop below transmittance 1e-4
(the Gaussian that crosses it is included), the median rule (strictly below 0.5), ties in hit distance
(lower Gaussian index first), and actors that exist for part of a capture."""

from __future__ import annotations

import math

import pytest
import torch
from _scenes import CAMERA_OPTICAL_FORWARD, F64, brute_force, camera_rig, ego_motion, lidar_rig, random_scene

from xsim_render.motion import RigidMotion
from xsim_render.raster.composite import composite
from xsim_render.render import render_camera, render_lidar
from xsim_render.scene import Actor, GaussianScene, Trajectory
from xsim_render.sensors.rig import rig_from_dict

COLOURS = torch.tensor([[0.1, 0.2, 0.3], [0.9, 0.1, 0.1], [0.2, 0.8, 0.4], [0.3, 0.3, 0.9], [1.0, 0.0, 0.0],
                        [0.0, 1.0, 0.0]], dtype=F64)


def centre_camera():
    """5x5 pinhole, global shutter: the centre pixel (2, 2) looks exactly along base_link x from (1.5, 0, 1.4)."""
    return rig_from_dict({"sensors": [{
        "name": "c", "type": "camera", "model": "pinhole", "width": 5, "height": 5, "fx": 10.0, "fy": 10.0,
        "cx": 2.5, "cy": 2.5, "extrinsics": {"translation": [1.5, 0.0, 1.4], "rotation_wxyz": CAMERA_OPTICAL_FORWARD},
    }]}).sensor("c")


def on_axis(distances, sigmas, colours) -> GaussianScene:
    """Isotropic Gaussians centred on the centre pixel's ray at the given distances."""
    n = len(distances)
    means = torch.tensor([[1.5 + d, 0.0, 1.4] for d in distances], dtype=F64)
    sigma = torch.tensor(sigmas, dtype=F64)
    return GaussianScene(means=means, log_scales=torch.full((n, 3), math.log(0.05), dtype=F64),
                         quats=torch.tensor([[1.0, 0, 0, 0]], dtype=F64).expand(n, 4),
                         opacity_camera=torch.logit(sigma), opacity_lidar=torch.logit(sigma),
                         colors=colours[:n].clone(), actor_ids=torch.full((n,), -1))


def expected(alphas, ts, colours):
    """Front-to-back compositing written out: stop once T < 1e-4, the crossing Gaussian included."""
    t_before, rgb, wsum, wt, median = 1.0, torch.zeros(3, dtype=F64), 0.0, 0.0, math.nan
    for a, t, c in zip(alphas, ts, colours):
        if t_before < 1e-4:
            break
        w = a * t_before
        rgb, wsum, wt = rgb + w * c, wsum + w, wt + w * t
        if math.isnan(median) and t_before * (1 - a) < 0.5:
            median = t
        t_before *= 1 - a
    return rgb, 1 - t_before, wt / wsum, median


def test_early_stop_includes_the_crossing_gaussian():
    """alpha 0.95 x 6: T = 0.05, 2.5e-3, 1.25e-4 (>= 1e-4: go on), 6.25e-6 (the 4th is in), then stop."""
    ts = [5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    rgb, alpha, dist, median = expected([0.95] * 6, ts, COLOURS)
    assert abs(alpha - (1 - 0.05 ** 4)) < 1e-15  # the 4th is included, the 5th and 6th are not
    c = composite(torch.tensor([ts], dtype=F64), torch.full((1, 6), 0.95, dtype=F64), {"rgb": COLOURS[None]})
    assert abs(c.alpha.item() - alpha) < 1e-15
    assert (c.values["rgb"][0] - rgb).abs().max() < 1e-15
    assert abs(c.distance.item() - dist) < 1e-12 and c.distance_median.item() == 5.0
    # through the whole renderer (tiling, 3D response at the max-response point) and the brute force
    scene = on_axis(ts, [0.95] * 6, COLOURS)
    out = render_camera(scene, centre_camera(), ego_motion(False), 0.0)
    assert abs(out["alpha"][2, 2].item() - alpha) < 1e-12
    assert (out["rgb"][2, 2] - rgb).abs().max() < 1e-12
    assert abs(out["distance"][2, 2].item() - dist) < 1e-9


def test_median_is_where_transmittance_falls_strictly_below_half():
    """alpha 0.5 leaves T = 0.5 exactly (not below): the median is the next Gaussian's distance."""
    ts = torch.tensor([[4.0, 7.0, 9.0]], dtype=F64)
    c = composite(ts, torch.tensor([[0.5, 0.3, 0.9]], dtype=F64), {})
    assert c.distance_median.item() == 7.0
    c = composite(ts, torch.tensor([[0.5000001, 0.3, 0.9]], dtype=F64), {})
    assert c.distance_median.item() == 4.0
    c = composite(ts, torch.tensor([[0.2, 0.2, 0.0]], dtype=F64), {})  # T = 0.64: never below
    assert math.isnan(c.distance_median.item())


def test_ties_in_hit_distance_lower_index_first():
    """Two Gaussians at the same place: the lower index is composited first, in the tiled renderer and in the
    brute force alike; swapping the indices swaps the colours' weights."""
    for order in ((0, 1), (1, 0)):
        colours = COLOURS[list(order)]
        scene = on_axis([6.0, 6.0], [0.6, 0.6], colours)
        out = render_camera(scene, centre_camera(), ego_motion(False), 0.0)
        ref, _ = brute_force(scene, centre_camera(), ego_motion(False), 0.0, lidar=False)
        want = 0.6 * colours[0] + 0.6 * 0.4 * colours[1]
        assert (out["rgb"][2, 2] - want).abs().max() < 1e-12
        assert (ref["value"][2, 2] - want).abs().max() < 1e-12
    c = composite(torch.tensor([[3.0, 3.0]], dtype=F64), torch.tensor([[0.6, 0.6]], dtype=F64),
                  {"rgb": COLOURS[None, :2]})
    assert (c.values["rgb"][0] - (0.6 * COLOURS[0] + 0.24 * COLOURS[1])).abs().max() < 1e-15


def _actor_only(trajectory_times, n=40, seed=3):
    scene = random_scene(n, seed=seed, n_actor=n)
    traj = scene.actors[3].trajectory
    k = len(trajectory_times)
    times = torch.tensor(trajectory_times, dtype=F64)
    scene.actors[3] = Actor(3, Trajectory(times, traj.positions[:k], traj.rotations[:k]), "vehicle")
    return scene


@pytest.mark.parametrize("direction,start", [("top_to_bottom", 0.05), ("bottom_to_top", 0.02)])
def test_actor_appearing_during_a_rolling_shutter_capture(direction, start):
    """The actor's trajectory starts during the capture, after or before its middle (0.04 s): the rows exposed
    after the start see it, at the constant-velocity pose of each row's time; the rows before do not."""
    scene = _actor_only([start, 1.0])
    cam = camera_rig("pinhole", readout=0.08, direction=direction)
    ego = ego_motion(False)
    out = render_camera(scene, cam, ego, 0.0)
    held = scene.actors[3].trajectory.motion_at(start)
    always = render_camera(scene, cam, ego, 0.0, actors={3: RigidMotion(held.rotation, held.position,
                                                                       held.linear_velocity,
                                                                       held.angular_velocity, start)})
    after = out["ray_time"] >= start
    assert always["alpha"][after].max() > 0.5 and always["alpha"][~after].max() > 0.1, "seen on both sides"
    assert out["alpha"][~after].abs().max() == 0
    assert (out["alpha"][after] - always["alpha"][after]).abs().max() < 1e-12
    assert (out["rgb"][after] - always["rgb"][after]).abs().max() < 1e-12
    ref, _ = brute_force(scene, cam, ego, 0.0, lidar=False)
    assert (out["alpha"] - ref["alpha"]).abs().max() < 1e-9


def test_actor_leaving_during_a_lidar_sweep():
    """The trajectory ends at 0.03 s of a 0.1 s sweep: only firings up to then return from the actor."""
    scene = _actor_only([-1.0, 0.0, 0.03], n=60, seed=5)
    lidar = lidar_rig(seam=-0.5)  # the sweep reaches the actor ahead (azimuth ~0) within its first 0.03 s
    out = render_lidar(scene, lidar, ego_motion(False), 0.0)
    assert out["point_time"].numel() > 10, "the actor is seen before it leaves"
    assert out["point_time"].max() <= 0.03
    ref, _ = brute_force(scene, lidar, ego_motion(False), 0.0, lidar=True)
    assert (out["alpha"] - ref["alpha"]).abs().max() < 1e-9
