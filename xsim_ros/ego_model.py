"""`ego_model` node: the ego car as a kinematic bicycle driven by `cmd_vel`, for closed-loop driving.

Thin ROS plumbing over xsim_render.vehicle.bicycle (the model, its limits and its integration). Topics (relative,
remappable; the node's namespace applies):
  in   `cmd_vel` (geometry_msgs/Twist: linear.x target speed m/s, angular.z target yaw rate rad/s, turned into a
       steering angle atan(wheelbase * yaw_rate / speed)); `ackermann_cmd`
       (ackermann_msgs/AckermannDriveStamped: speed, steering_angle, acceleration) only where ackermann_msgs is
       importable (it is not on PyPI: the node says so once and offers cmd_vel only); `/clock` (lockstep)
  out  `ego/odometry` (nav_msgs/Odometry: pose of base_frame in world_frame, twist in base_frame), `/tf`
       (world_frame -> base_frame), `lockstep/done` (std_msgs/Header, lockstep only)
base_frame is the centre of the rear axle on the ground (the bicycle model's reference point).

Timing: without lockstep the model advances on a timer at `rate_hz` of the ROS clock (sim time honoured) with the
newest command. With `lockstep: true` it is one of the nodes the scenario_player waits for (docs/ros.md, "Closed
loop"): on /clock T_k it advances the model from T_(k-1) to T_k, publishes odometry and /tf stamped T_k (before
any sensor_sim renders T_k: they wait for it), then answers lockstep/done. With `planner_lockstep: true` too, a
planner publishes exactly one command per tick, its command for tick k before its own lockstep/done for T_k; the
model applies command k over (T_k, T_(k+1)] and, on /clock T_(k+1), waits (at most `command_wait` s) until command k
has arrived: commands are matched to ticks by their count, so the drive does not depend on message timing.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections import deque
from collections.abc import Callable

from rcl_interfaces.msg import FloatingPointRange, ParameterDescriptor, ParameterType
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from xsim_render.errors import InputError
from xsim_render.vehicle.bicycle import (
    BicycleCommand,
    BicycleModel,
    BicycleParams,
    BicycleState,
    command_from_twist,
    wrap_angle,
)

from .common import StartupError, message_class, run_node

NS = 1_000_000_000


def scenario_start_state(path: str, time_offset: float = 0.0) -> tuple[BicycleState, float]:
    """The ego of a scenario (world.yaml / drive directory / bag) at its start as a bicycle state (x, y, yaw,
    speed along base_link x, steering 0) and its height z (m, world frame)."""
    from xsim_render.sim.scenario import load_scenario

    scenario = load_scenario(path, time_offset)
    ego = scenario.ego_at(scenario.start_ns)
    if ego is None:
        raise InputError(f"{path}: no ego state at the scenario's start")
    rot = ego.rotation.double().tolist()
    pos = ego.position.double().tolist()
    vel = ego.linear_velocity.double().tolist()
    yaw = math.atan2(rot[1][0], rot[0][0])
    speed = vel[0] * rot[0][0] + vel[1] * rot[1][0] + vel[2] * rot[2][0]
    return BicycleState(pos[0], pos[1], yaw, speed, 0.0), pos[2]


def offset_start(state: BicycleState, lateral: float, dyaw: float) -> BicycleState:
    """The start moved `lateral` m to its own left and turned by dyaw rad (world frame)."""
    if lateral == 0.0 and dyaw == 0.0:
        return state
    return BicycleState(state.x - lateral * math.sin(state.yaw), state.y + lateral * math.cos(state.yaw),
                        wrap_angle(state.yaw + dyaw), state.v, state.steer)


class EgoModelNode(Node):
    """See the module docstring. Raises StartupError for a bad parameter or scenario."""

    def __init__(self, node_name: str = "ego_model", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        p = self._declare()
        try:
            self.params = BicycleParams(p["wheelbase"], p["max_steer"], p["max_steer_rate"], p["max_accel"],
                                        p["max_decel"], p["max_speed"], p["max_reverse_speed"], p["max_substep"])
            self.params.check()
        except ValueError as err:
            raise StartupError(f"parameter {err}") from None
        self.z = p["initial_z"]
        if p["scenario"]:
            try:
                self.initial, self.z = scenario_start_state(p["scenario"], p["time_offset"])
            except InputError as err:
                raise StartupError(f"parameter 'scenario': {err}") from None
        else:
            self.initial = BicycleState(p["initial_x"], p["initial_y"], p["initial_yaw"], p["initial_speed"], 0.0)
        self.initial = offset_start(self.initial, p["initial_lateral_offset"], p["initial_yaw_offset"])
        self.p = p
        self.model = BicycleModel(self.params, self.initial)
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self._odometry = self.create_publisher(message_class("nav_msgs/msg/Odometry"), "ego/odometry", qos)
        self._tf = self.create_publisher(message_class("tf2_msgs/msg/TFMessage"), "/tf", qos) \
            if p["publish_tf"] else None
        self._lock = threading.Condition()
        # commands as functions of the steering angle at the moment they are applied (see _add_command)
        self._commands: deque[Callable[[float], BicycleCommand] | None] = deque()  # planner lockstep: in order
        self._command: Callable[[float], BicycleCommand] = lambda steer: BicycleCommand(self.initial.v, steer)
        self._applied = self._command  # planner lockstep: the command of the last tick (held when one is missing)
        self.received = 0  # commands since the start
        self.rejected = 0
        self.create_subscription(message_class("geometry_msgs/msg/Twist"), "cmd_vel", self._on_twist, qos)
        self.ackermann = self._subscribe_ackermann(qos)
        self.last_ns: int | None = None  # time of the state last published
        self.ticks = 0  # lockstep ticks answered since the start (or the last reset)
        self._stop = False
        if p["lockstep"]:
            self._done = self.create_publisher(message_class("std_msgs/msg/Header"), "lockstep/done", qos)
            self._pending: deque[int] = deque()
            self.create_subscription(message_class("rosgraph_msgs/msg/Clock"), "/clock", self._on_clock, qos)
            self._worker = threading.Thread(target=self._run_lockstep, name=f"{node_name}_lockstep", daemon=True)
            self._worker.start()
        else:
            self.create_timer(1.0 / p["rate_hz"], self._on_timer)
        self.get_logger().info(
            f"kinematic bicycle, wheelbase {self.params.wheelbase:g} m, start ({self.initial.x:.3f}, "
            f"{self.initial.y:.3f}) m yaw {self.initial.yaw:.4f} rad at {self.initial.v:g} m/s; " +
            ("lockstep" + (" with a planner" if p["planner_lockstep"] else "") if p["lockstep"] else
             f"{p['rate_hz']:g} Hz") + f"; commands: cmd_vel{', ackermann_cmd' if self.ackermann else ''}")

    # ---------------------------------------------------------------- parameters

    def _declare(self) -> dict:
        S, B, D = ParameterType.PARAMETER_STRING, ParameterType.PARAMETER_BOOL, ParameterType.PARAMETER_DOUBLE

        def desc(kind: int, text: str, lo: float | None = None, hi: float | None = None) -> ParameterDescriptor:
            d = ParameterDescriptor(type=kind, description=text, read_only=True)
            if lo is not None:
                d.floating_point_range = [FloatingPointRange(from_value=lo, to_value=hi, step=0.0)]
            return d

        b = BicycleParams()
        table = [
            ("wheelbase", b.wheelbase, desc(D, "m, rear to front axle", 0.1, 20.0)),
            ("max_steer", b.max_steer, desc(D, "rad, largest front-wheel steering angle", 0.01, 1.5)),
            ("max_steer_rate", b.max_steer_rate, desc(D, "rad/s", 0.01, 100.0)),
            ("max_accel", b.max_accel, desc(D, "m/s^2, speeding up", 0.01, 100.0)),
            ("max_decel", b.max_decel, desc(D, "m/s^2, slowing down", 0.01, 100.0)),
            ("max_speed", b.max_speed, desc(D, "m/s forwards", 0.0, 200.0)),
            ("max_reverse_speed", b.max_reverse_speed, desc(D, "m/s backwards (0: no reversing)", 0.0, 200.0)),
            ("max_substep", b.max_substep, desc(D, "s, integration substep", 1e-5, 1.0)),
            ("scenario", "", desc(S, "start from this scenario's ego at its start (world.yaml, drive directory or "
                                     "bag); '' = initial_x, initial_y, initial_yaw, initial_speed")),
            ("time_offset", 0.0, desc(D, "s, ROS time of a synthetic world's t = 0 (as the scenario_player's)", 0.0,
                                      1e10)),
            ("initial_x", 0.0, desc(D, "m, world frame")),
            ("initial_y", 0.0, desc(D, "m, world frame")),
            ("initial_z", 0.0, desc(D, "m, world frame (height of base_frame; constant)")),
            ("initial_yaw", 0.0, desc(D, "rad about world z", -10.0, 10.0)),
            ("initial_speed", 0.0, desc(D, "m/s along base_frame x", -200.0, 200.0)),
            ("initial_lateral_offset", 0.0, desc(D, "m, the start pose moved to its left (right if negative)",
                                                 -100.0, 100.0)),
            ("initial_yaw_offset", 0.0, desc(D, "rad, added to the start heading", -3.2, 3.2)),
            ("rate_hz", 50.0, desc(D, "Hz of the ROS clock, without lockstep", 0.1, 1000.0)),
            ("lockstep", False, desc(B, "advance on each /clock tick and answer lockstep/done")),
            ("planner_lockstep", False, desc(B, "lockstep: a planner sends one command per tick; the command of tick "
                                                "k drives (T_k, T_k+1]")),
            ("command_wait", 10.0, desc(D, "s (wall) to wait for the planner's command of a tick", 0.0, 86400.0)),
            ("world_frame", "map", desc(S, "frame of the published pose")),
            ("base_frame", "base_link", desc(S, "ego frame (rear axle centre, on the ground)")),
            ("publish_tf", True, desc(B, "publish world_frame -> base_frame on /tf")),
        ]
        values = {}
        for name, default, d in table:
            try:
                values[name] = self.declare_parameter(name, default, d).value
            except Exception as err:  # noqa: BLE001 - rclpy raises several types for a bad override
                raise StartupError(f"parameter '{name}': {' '.join(str(err).split())}") from None
        if values["planner_lockstep"] and not values["lockstep"]:
            raise StartupError("parameter planner_lockstep: true needs lockstep: true")
        return values

    def _subscribe_ackermann(self, qos: QoSProfile) -> bool:
        try:
            from ackermann_msgs.msg import AckermannDriveStamped
        except ImportError:
            self.get_logger().info("ackermann_msgs is not installed: ackermann_cmd is not offered, only cmd_vel "
                                   "(geometry_msgs/Twist)")
            return False
        self.create_subscription(AckermannDriveStamped, "ackermann_cmd", self._on_ackermann, qos)
        return True

    # ---------------------------------------------------------------- inputs

    def _add_command(self, make: Callable[[float], BicycleCommand]) -> None:
        """Store a command as `make(current steering angle) -> BicycleCommand` (a Twist at standstill keeps the
        steering angle of the moment it is applied); a malformed one is rejected but still takes its tick in
        planner lockstep (the previous command is held)."""
        try:
            make(0.0)
        except ValueError as err:
            self.rejected += 1
            self.get_logger().warning(f"command rejected: {err}")
            make = None
        with self._lock:
            if make is not None:
                self._command = make
            self.received += 1
            if self.p["planner_lockstep"]:
                self._commands.append(make)
            self._lock.notify_all()

    def _on_twist(self, msg) -> None:
        speed, yaw_rate = float(msg.linear.x), float(msg.angular.z)
        self._add_command(lambda steer: command_from_twist(speed, yaw_rate, self.params, steer))

    def _on_ackermann(self, msg) -> None:
        d = msg.drive
        values = (float(d.speed), float(d.steering_angle), float(d.acceleration))

        def make(_steer: float) -> BicycleCommand:
            if not all(math.isfinite(v) for v in values):
                raise ValueError(f"non-finite Ackermann command {values}")
            return BicycleCommand(values[0], values[1], values[2] or None)

        self._add_command(make)

    # ---------------------------------------------------------------- output

    def _publish(self, t_ns: int) -> None:
        s = self.model.state
        sec, nanosec = divmod(t_ns, NS)
        odom = message_class("nav_msgs/msg/Odometry")()
        odom.header.stamp.sec, odom.header.stamp.nanosec = sec, nanosec
        odom.header.frame_id = self.p["world_frame"]
        odom.child_frame_id = self.p["base_frame"]
        pose = odom.pose.pose
        pose.position.x, pose.position.y, pose.position.z = s.x, s.y, self.z
        pose.orientation.z, pose.orientation.w = math.sin(s.yaw / 2), math.cos(s.yaw / 2)
        odom.twist.twist.linear.x = s.v
        odom.twist.twist.angular.z = s.yaw_rate(self.params.wheelbase)
        self._odometry.publish(odom)
        if self._tf is not None:
            tf = message_class("geometry_msgs/msg/TransformStamped")()
            tf.header = odom.header
            tf.child_frame_id = self.p["base_frame"]
            tf.transform.translation.x, tf.transform.translation.y, tf.transform.translation.z = s.x, s.y, self.z
            tf.transform.rotation = pose.orientation
            self._tf.publish(message_class("tf2_msgs/msg/TFMessage")(transforms=[tf]))
        self.last_ns = t_ns

    def _advance(self, t_ns: int, command: Callable[[float], BicycleCommand]) -> None:
        """Advance the model to t_ns holding `command` (a jump back resets it to the initial state); publish."""
        if self.last_ns is not None and t_ns < self.last_ns:
            self.get_logger().warning(f"clock jumped back to {t_ns / NS:.9f} s: the ego starts over")
            self.model.state = self.initial
        elif self.last_ns is not None:
            self.model.step(command(self.model.state.steer), (t_ns - self.last_ns) / NS)
        self._publish(t_ns)

    def _on_timer(self) -> None:
        now = self.get_clock().now().nanoseconds
        if now <= 0 or now == self.last_ns:
            return  # sim time not started yet / no time passed
        with self._lock:
            command = self._command
        self._advance(now, command)

    # ---------------------------------------------------------------- lockstep

    def _on_clock(self, msg) -> None:
        t_ns = int(msg.clock.sec) * NS + int(msg.clock.nanosec)
        with self._lock:
            if t_ns not in self._pending:
                self._pending.append(t_ns)
            self._lock.notify_all()

    def _run_lockstep(self) -> None:
        frame_id = self.get_fully_qualified_name()
        header_cls = message_class("std_msgs/msg/Header")
        while True:
            with self._lock:
                while not self._stop and not self._pending:
                    self._lock.wait(0.2)
                if self._stop:
                    return
                t_ns = self._pending.popleft()
            try:
                if t_ns != self.last_ns:  # a repeated tick is answered again, nothing moves
                    self._lockstep_tick(t_ns)
            except Exception as err:  # noqa: BLE001 - report, keep answering
                self.get_logger().error(f"lockstep tick {t_ns / NS:.9f} s: {type(err).__name__}: {err}")
            header = header_cls()
            header.stamp.sec, header.stamp.nanosec = divmod(t_ns, NS)
            header.frame_id = frame_id
            try:
                self._done.publish(header)
            except Exception:  # noqa: BLE001 - a shut-down context while stopping
                if not self._stop:
                    raise

    def _lockstep_tick(self, t_ns: int) -> None:
        if self.last_ns is not None and t_ns < self.last_ns:  # clock jump: start over, commands recounted
            with self._lock:
                self._commands.clear()
                self.ticks = 0
        with self._lock:
            if self.p["planner_lockstep"] and self.ticks > 0 and self.last_ns is not None and t_ns > self.last_ns:
                end = time.monotonic() + self.p["command_wait"]
                while not self._stop and not self._commands and time.monotonic() < end:
                    self._lock.wait(0.05)
                if self._commands:
                    command = self._commands.popleft() or self._applied
                else:
                    command = self._applied
                    self.get_logger().warning(f"lockstep tick {t_ns / NS:.9f} s: no command for the previous tick "
                                              f"within {self.p['command_wait']} s; holding the last one")
            else:
                command = self._command
            self._applied = command
            self.ticks += 1
        self._advance(t_ns, command)

    def request_stop(self) -> None:
        """Stop answering ticks (returns at once; safe on a node whose start-up failed)."""
        if getattr(self, "_lock", None) is None:
            return
        with self._lock:
            self._stop = True
            self._lock.notify_all()

    def destroy_node(self) -> None:
        self.request_stop()
        worker = getattr(self, "_worker", None)
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout=10.0)
        super().destroy_node()


def main(argv: list[str] | None = None) -> int:
    """Console script `ego_model` (`ros2 run xsim_ros ego_model --ros-args ...`)."""
    return run_node(EgoModelNode, "ego_model", sys.argv if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
