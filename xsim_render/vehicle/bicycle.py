"""Kinematic bicycle model of the ego car (ROS-free; the `ego_model` node wraps it).

Frames and units: the state is the pose of `base_link` in the world frame (REP-103/105: x forward, y left, z up;
base_link on the ground at the centre of the REAR axle, so its velocity is along its own x axis), metres, seconds,
radians. State: x, y (m), yaw (rad, about world z, wrapped to (-pi, pi]), speed v (m/s along base_link x, negative
when reversing) and the front-wheel steering angle steer (rad, positive to the left). The path curvature is
kappa = tan(steer) / wheelbase, the yaw rate v * kappa.

Inputs (a `BicycleCommand`): a target speed and a target steering angle; `command_from_twist` turns a
geometry_msgs/Twist-like (speed, yaw rate) pair into one (steer = atan(wheelbase * yaw_rate / speed)), Ackermann
commands carry the steering angle (and an acceleration limit) directly.

Integration (`BicycleModel.step`, exact for piecewise-constant inputs up to the substep): the tick is split into
equal substeps of at most `max_substep` s; in each, the steering angle moves towards its (clamped) target at most at
`max_steer_rate` and the speed towards its (clamped) target at most at `max_accel` / `max_decel` (both exactly,
piecewise linear in time); the pose then follows the circular arc of the substep's distance travelled (exact) at
the curvature of its mean steering angle (exact when speed and steering are constant: a straight line, or a circle of
radius wheelbase / tan(steer)).
The arithmetic is plain float64 Python in a fixed order: the same commands give bit-identical states.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class BicycleParams:
    """Vehicle limits. wheelbase (m, > 0); max_steer (rad, |steer| <= it, < pi/2); max_steer_rate (rad/s);
    max_accel, max_decel (m/s^2, > 0: how fast |v| may grow / shrink); max_speed, max_reverse_speed (m/s, v in
    [-max_reverse_speed, max_speed]); max_substep (s) of the integration."""

    wheelbase: float = 2.8
    max_steer: float = 0.6
    max_steer_rate: float = 0.8
    max_accel: float = 3.0
    max_decel: float = 6.0
    max_speed: float = 20.0
    max_reverse_speed: float = 0.0
    max_substep: float = 0.005

    def check(self) -> None:
        """ValueError naming the first field out of range."""
        checks = (("wheelbase", self.wheelbase > 0), ("max_steer", 0 < self.max_steer < math.pi / 2),
                  ("max_steer_rate", self.max_steer_rate > 0), ("max_accel", self.max_accel > 0),
                  ("max_decel", self.max_decel > 0), ("max_speed", self.max_speed >= 0),
                  ("max_reverse_speed", self.max_reverse_speed >= 0), ("max_substep", self.max_substep > 0))
        for name, ok in checks:
            value = getattr(self, name)
            if not (ok and math.isfinite(value)):
                raise ValueError(f"{name}: out of range, got {value!r}")


@dataclass(frozen=True)
class BicycleState:
    """Pose of base_link (rear axle centre) in the world frame, speed and steering angle (see module doc)."""

    x: float = 0.0
    y: float = 0.0
    yaw: float = 0.0
    v: float = 0.0
    steer: float = 0.0

    def yaw_rate(self, wheelbase: float) -> float:
        """rad/s about z (base_link and world alike)."""
        return self.v * math.tan(self.steer) / wheelbase


@dataclass(frozen=True)
class BicycleCommand:
    """Targets held over a tick: speed (m/s), steering angle (rad); accel_limit (m/s^2, optional, e.g. from an
    Ackermann command) further caps the rate of speed change (0 or None: the vehicle's limits only)."""

    speed: float = 0.0
    steer: float = 0.0
    accel_limit: float | None = None


def wrap_angle(a: float) -> float:
    """a wrapped to (-pi, pi]."""
    w = math.remainder(a, 2.0 * math.pi)
    return math.pi if w == -math.pi else w


def command_from_twist(speed: float, yaw_rate: float, params: BicycleParams, current_steer: float = 0.0
                       ) -> BicycleCommand:
    """A Twist (linear.x speed m/s, angular.z yaw rate rad/s) as bicycle targets: steer = atan(wheelbase *
    yaw_rate / speed). With |speed| < 1e-3 the yaw rate cannot be met by steering: the steering angle is kept."""
    if not (math.isfinite(speed) and math.isfinite(yaw_rate)):
        raise ValueError(f"non-finite command: speed {speed!r}, yaw rate {yaw_rate!r}")
    if abs(speed) < 1e-3:
        return BicycleCommand(speed, current_steer)
    return BicycleCommand(speed, math.atan(params.wheelbase * yaw_rate / speed))


def _clamp(v: float, lo: float, hi: float) -> float:
    return lo if v < lo else hi if v > hi else v


def _ramp(start: float, target: float, rate_up: float, rate_down: float, h: float) -> tuple[float, float]:
    """Move `start` towards `target` for h seconds, |value| growing at most at rate_up and shrinking at most at
    rate_down (per second; a change of sign first shrinks to 0). Returns (end value, integral of the value over the
    h seconds), both exact for this piecewise-linear motion."""
    value, t, integral = start, 0.0, 0.0
    while t < h and value != target:
        same_side = target != 0.0 and (value > 0.0) == (target > 0.0)
        if value != 0.0 and not (same_side and abs(target) >= abs(value)):  # |value| shrinks
            rate, goal = rate_down, target if same_side else 0.0
        else:
            rate, goal = rate_up, target
        need = abs(goal - value) / rate
        if need <= h - t:
            integral += 0.5 * (value + goal) * need
            value, t = goal, t + need
        else:
            new = value + math.copysign(rate * (h - t), goal - value)
            integral += 0.5 * (value + new) * (h - t)
            value, t = new, h
    return value, integral + value * (h - t)


class BicycleModel:
    """The ego: a state advanced by `step(command, dt)` under BicycleParams (see module doc)."""

    def __init__(self, params: BicycleParams, state: BicycleState | None = None) -> None:
        params.check()
        self.params = params
        self.state = state or BicycleState()

    def clamp(self, command: BicycleCommand) -> BicycleCommand:
        """The command with its targets inside the vehicle's limits (speed range, steering angle)."""
        p = self.params
        return replace(command, speed=_clamp(command.speed, -p.max_reverse_speed, p.max_speed),
                       steer=_clamp(command.steer, -p.max_steer, p.max_steer))

    def step(self, command: BicycleCommand, dt: float) -> BicycleState:
        """Advance the state by dt seconds (>= 0) holding `command`; returns (and keeps) the new state."""
        if not (dt >= 0.0 and math.isfinite(dt)):
            raise ValueError(f"dt: must be finite and >= 0, got {dt!r}")
        if dt == 0.0:
            return self.state
        p = self.params
        c = self.clamp(command)
        accel, decel = p.max_accel, p.max_decel
        if c.accel_limit:
            accel, decel = min(accel, abs(c.accel_limit)), min(decel, abs(c.accel_limit))
        n = max(1, math.ceil(dt / p.max_substep - 1e-9))
        h = dt / n
        x, y, yaw, v, steer = self.state.x, self.state.y, self.state.yaw, self.state.v, self.state.steer
        for _ in range(n):
            steer_end, steer_int = _ramp(steer, c.steer, p.max_steer_rate, p.max_steer_rate, h)
            v_end, v_int = _ramp(v, c.speed, accel, decel, h)
            distance = v_int  # arc length (signed) over the substep
            # curvature of the substep's mean steering angle (the angle itself when it does not change)
            kappa = math.tan(steer if steer_end == steer else steer_int / h) / p.wheelbase
            dyaw = kappa * distance
            if abs(dyaw) < 1e-9:
                mid = yaw + 0.5 * dyaw
                x += distance * math.cos(mid)
                y += distance * math.sin(mid)
            else:
                x += (math.sin(yaw + dyaw) - math.sin(yaw)) / kappa
                y += (math.cos(yaw) - math.cos(yaw + dyaw)) / kappa
            yaw += dyaw
            v, steer = v_end, steer_end
        self.state = BicycleState(x, y, wrap_angle(yaw), v, steer)
        return self.state
