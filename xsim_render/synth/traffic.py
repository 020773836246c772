"""Traffic of the synthetic world: the ego's route and the moving actors' trajectories.

Frames and units: world frame z up (REP-103), metres, seconds, radians. base_link sits on the ground (z = 0) and
drives in the right-hand lane: along +x at y = -1.75, then a smooth left turn (curvature rising and falling
smoothly) into the side road at x = +1.75, halfway along the distance driven in [0, duration]. It starts from
standstill at t = 0 and accelerates smoothly (LAUNCH_S) to 9-11 m/s on the straights, easing to 6-7 m/s in the
turn. Actor frames: origin at the centre of the actor's box, x forward, y left, z up. Trajectories are keyframed:
the ego at EGO_RATE_HZ over [0, duration], actors at ACTOR_RATE_HZ over [-ACTOR_MARGIN_S, duration +
ACTOR_MARGIN_S].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import trimesh

from ..scene.actors import Trajectory
from .materials import Material
from .presets import StreetParams
from .shapes import CAR_SIZE, PEDESTRIAN_SIZE, Parts, car_parts, pedestrian_parts
from .street import CURB_HEIGHT, LANE_WIDTH

EGO_RATE_HZ = 100.0
ACTOR_RATE_HZ = 20.0
ACTOR_MARGIN_S = 0.5
TURN_LENGTH = 18.0             # arc length of the left turn (m)
PEDESTRIAN_LINE = 8.5          # x of the pedestrian's walk on the side road's east sidewalk (between the trees
                               # at ROAD_HALF_WIDTH + TREE_OFFSET and the pilasters of the set-back facades)
LAUNCH_S = 2.5                 # the standing start reaches the speed limit after this long (s)
DT_ROUTE = 0.002               # time step of the route's speed integration (s)


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


def _cumtrapz(f: np.ndarray, ds: float) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(0.5 * (f[1:] + f[:-1]) * ds)])


@dataclass
class Route:
    """The driven path by arc length s (turn centre at s = 0): position and yaw at s; the ego's arc length s_of_t
    over the time grid t (s); before t[0] the ego stands at s_of_t[0], after t[-1] at s_of_t[-1]."""

    s: np.ndarray
    x: np.ndarray
    y: np.ndarray
    yaw: np.ndarray
    t: np.ndarray
    s_of_t: np.ndarray

    def at_s(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.interp(s, self.s, self.x), np.interp(s, self.s, self.y), np.interp(s, self.s, self.yaw)

    def s_at_time(self, t: np.ndarray) -> np.ndarray:
        return np.interp(t, self.t, self.s_of_t)


def _launch(t: np.ndarray) -> np.ndarray:
    """Speed factor of the standing start: 0 at t <= 0, a smoothstep to 1 at LAUNCH_S."""
    u = np.clip(t / LAUNCH_S, 0.0, 1.0)
    return u * u * (3 - 2 * u)


def plan_route(rng: np.random.Generator, duration: float) -> Route:
    """The ego's route (see module doc): straight, a smooth left turn halfway along the drive, straight.

    The speed is v(t) = launch(t) * v_limit(s): a standing start at t = 0 (as recorded drives often begin, and as
    LiDAR odometry such as KISS-ICP assumes), then v_limit, which is v_straight (9-11 m/s) on the straights and
    eases down to v_turn (6-7 m/s) at the turn's centre."""
    v_straight, v_turn = rng.uniform(9.0, 11.0), rng.uniform(6.0, 7.0)
    ds = 0.01
    reach = v_straight * (duration / 2 + 2.0) + 60.0
    n = int(round(2 * reach / ds)) + 1
    s = np.linspace(-reach, reach, n)
    ds = s[1] - s[0]
    u = np.clip((s + TURN_LENGTH / 2) / TURN_LENGTH, 0.0, 1.0)
    yaw = (math.pi / 2) * u * u * (3 - 2 * u)
    x, y = _cumtrapz(np.cos(yaw), ds), _cumtrapz(np.sin(yaw), ds)
    x += LANE_WIDTH / 2 - x[-1]
    y += -LANE_WIDTH / 2 - y[0]

    def v_limit(arc: float) -> float:
        return v_straight - (v_straight - v_turn) * math.exp(-0.5 * (arc / 12.0) ** 2)

    # arc length over time (midpoint steps of DT_ROUTE), started at s0 so that the turn's centre (s = 0) is
    # halfway along the distance driven in [0, duration]; s0 by fixed-point iteration (v_limit depends only
    # weakly on s0)
    t = np.arange(int(math.ceil((duration + 3.0) / DT_ROUTE)) + 1) * DT_ROUTE
    launch = _launch(t[:-1] + DT_ROUTE / 2)
    s0 = 0.0
    for _ in range(8):
        arc = np.empty_like(t)
        arc[0] = s0
        for k in range(len(t) - 1):
            half = arc[k] + 0.5 * DT_ROUTE * launch[k] * v_limit(arc[k])
            arc[k + 1] = arc[k] + DT_ROUTE * launch[k] * v_limit(half)
        s0 -= 0.5 * (arc[0] + float(np.interp(duration, t, arc)))
    return Route(s, x, y, yaw, t, np.minimum(arc, reach))


def _yaw_quats(yaw: np.ndarray) -> np.ndarray:
    return np.stack([np.cos(yaw / 2), np.zeros_like(yaw), np.zeros_like(yaw), np.sin(yaw / 2)], -1)


def yaw_trajectory(times: np.ndarray, x: np.ndarray, y: np.ndarray, z: float | np.ndarray, yaw: np.ndarray
                   ) -> Trajectory:
    """Keyframed trajectory of a body upright on the ground plane: positions (x, y, z) and heading yaw (rad)."""
    pos = np.stack([x, y, np.broadcast_to(z, np.shape(x))], -1)
    return Trajectory(torch.tensor(times, dtype=torch.float64), torch.tensor(pos, dtype=torch.float64),
                      torch.tensor(_yaw_quats(np.asarray(yaw, dtype=np.float64)), dtype=torch.float64))


def actor_times(duration: float) -> np.ndarray:
    n = int(math.ceil((duration + 2 * ACTOR_MARGIN_S) * ACTOR_RATE_HZ - 1e-9)) + 1
    return np.arange(n) / ACTOR_RATE_HZ - ACTOR_MARGIN_S


def ego_times(duration: float) -> np.ndarray:
    n = int(math.floor(duration * EGO_RATE_HZ + 1e-9))
    times = np.arange(n + 1) / EGO_RATE_HZ
    if duration - times[-1] > 1e-6:
        times = np.append(times, duration)
    return times


def _actor(actor_id: int, category: str, parts: Parts, trajectory: Trajectory) -> WorldActor:
    mesh, mats, _, _ = parts.build()
    size = CAR_SIZE if category == "vehicle" else PEDESTRIAN_SIZE
    return WorldActor(actor_id, category, tuple(float(s) for s in size), mesh, mats, trajectory)


def moving_actors(rng: np.random.Generator, p: StreetParams, materials: list[Material], route: Route,
                  duration: float) -> tuple[list[WorldActor], dict[str, float]]:
    """Moving actors and the extents (m) their paths need from the street."""
    times = actor_times(duration)
    zc = CAR_SIZE[2] / 2
    half = LANE_WIDTH / 2
    actors = []
    # 1: a lead car on the ego's route, a gap ahead
    gap = rng.uniform(11.0, 14.0)
    lx, ly, lyaw = route.at_s(route.s_at_time(times) + gap)
    actors.append(_actor(1, "vehicle", car_parts(materials, "car_paint_white"),
                         yaw_trajectory(times, lx, ly, zc, lyaw)))
    # 2: a car driving away east on the main road, beyond the junction
    v2, x2 = rng.uniform(7.0, 9.0), rng.uniform(12.0, 16.0)
    cx = x2 + v2 * (times + ACTOR_MARGIN_S) + 0.6 * np.sin(0.8 * times)
    actors.append(_actor(2, "vehicle", car_parts(materials, "car_paint_blue"),
                         yaw_trajectory(times, cx, np.full_like(times, -half), zc, np.zeros_like(times))))
    # 3: a car on the side road coming towards the junction, braking to a stop before the stop line
    stop_y = 7.8 + 0.5 + CAR_SIZE[0] / 2
    brake_time = float(np.clip(0.8 * duration, 1.0, 3.0))
    dist = rng.uniform(12.0, 16.0)
    u = np.clip(1.0 - times / brake_time, 0.0, None)
    actors.append(_actor(3, "vehicle", car_parts(materials, "car_paint_yellow"),
                         yaw_trajectory(times, np.full_like(times, -half), stop_y + dist * u * u, zc,
                                     np.full_like(times, -math.pi / 2))))
    # 4: an oncoming car leaving the junction westwards on the main road (passes the ego)
    v4 = rng.uniform(9.0, 11.0)
    ox = -9.0 - v4 * (times + ACTOR_MARGIN_S)
    actors.append(_actor(4, "vehicle", car_parts(materials, "car_paint_red"),
                         yaw_trajectory(times, ox, np.full_like(times, half), zc, np.full_like(times, math.pi))))
    # 5: a pedestrian walking towards the junction on the side road's east sidewalk, swaying a little
    ego_end_y = float(route.at_s(route.s_at_time(np.array([duration])))[1][0])
    vp = rng.uniform(1.1, 1.5)
    py0 = max(ego_end_y, 0.0) + 8.0 + vp * (duration + ACTOR_MARGIN_S)
    sway, rate = 0.05, 2 * math.pi * 0.9
    px, py = PEDESTRIAN_LINE + sway * np.sin(rate * times), py0 - vp * (times + ACTOR_MARGIN_S)
    pyaw = np.arctan2(-vp * np.ones_like(times), sway * rate * np.cos(rate * times))  # heading along the velocity
    actors.append(_actor(5, "pedestrian", pedestrian_parts(materials),
                         yaw_trajectory(times, px, py, CURB_HEIGHT + PEDESTRIAN_SIZE[2] / 2, pyaw)))
    needs = {"x_min": float(ox.min()) - 10.0, "x_max": float(cx.max()) + 10.0,
             "y_max": max(py0, stop_y + dist) + 5.0}
    if p.extra_actors:
        # 6: a car further up the side road driving away
        v6 = rng.uniform(7.0, 9.0)
        fy = 32.0 + v6 * (times + ACTOR_MARGIN_S)
        heading = np.full_like(times, math.pi / 2)
        actors.append(_actor(6, "vehicle", car_parts(materials, "car_paint_red"),
                             yaw_trajectory(times, np.full_like(times, half), fy, zc, heading)))
        needs["y_max"] = max(needs["y_max"], float(fy.max()) + 10.0)
    return actors, needs

