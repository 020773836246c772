"""`sensor_sim` node: ego and actor states in, rolling-shutter Images + CameraInfo and PointCloud2 sweeps out.

Thin ROS plumbing over xsim_render.sim.engine.SensorEngine (state histories, rendering, packing). Topics
(relative, remappable): in `ego/odometry` (nav_msgs/Odometry), `actors` (xsim_msgs/ActorStateArray), `/clock`;
out `sensing/camera/<name>/image_raw` + `camera_info`, `sensing/lidar/<name>/pointcloud`, `/tf_static`
(transient_local), `/diagnostics`, and `lockstep/done` (std_msgs/Header) with trigger lockstep.

Triggers (parameter `trigger`, see README "ROS 2 nodes"):
  timer     captures at n / rate_hz on the ROS clock (sim time honoured); a capture superseded by a newer due one
            of the same sensor is dropped and counted, never queued;
  realtime  timer on the wall clock (use_sim_time must be false) that also drops a capture that cannot be published
            by its deadline (the end of the next capture of that sensor);
  pose      one capture of every sensor per odometry message, at its stamp (a pending one replaced by a newer
            message is dropped and counted);
  lockstep  on /clock T: waits (bounded) for the tick's states, renders every capture with start in (previous T, T]
            from states stamped <= T, then publishes a Header{stamp: T, frame_id: node name} on lockstep/done.
Rendering runs in one worker thread; the executor thread only stores messages, so states keep arriving meanwhile.
At start-up every sensor is rendered once (SensorEngine.warm_up: lazy imports, kernels' first use), so that the
first capture costs what the next ones do. On shutdown (request_stop / stop) a render in progress may finish, but
no new one starts.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections import deque

from rcl_interfaces.msg import FloatingPointRange, ParameterDescriptor, ParameterType, SetParametersResult
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from xsim_render.errors import InputError
from xsim_render.sim.capture import serialize, static_transforms
from xsim_render.sim.engine import EngineConfig, SensorEngine, load_assets
from xsim_render.sim.params import SENSOR_SIM_PARAMS, check_value, spec_of
from xsim_render.sim.schedule import latest_per_sensor, least_recently_served_first, realtime_plan
from xsim_render.sim.stats import SensorStats, Throttle
from xsim_render.states.history import HistoryConfig

from .common import StartupError, message_class, run_node

_PTYPE = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
          float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}


class SensorSimNode(Node):
    """See the module docstring. Raises StartupError (one-line reason) for a bad scene, rig or parameter."""

    def __init__(self, node_name: str = "sensor_sim", **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.values = self._declare_parameters()
        v = self.values
        try:
            assets = load_assets(v["scene"], v["rig"], v["world_from_scene"])
        except InputError as err:
            raise StartupError(str(err)) from None
        self.trigger = v["trigger"]
        if self.trigger == "realtime" and self.get_parameter("use_sim_time").value:
            raise StartupError("trigger 'realtime' runs on the wall clock: set use_sim_time false")
        self.engine = SensorEngine(assets, self._engine_config(v))
        self.backend_in_use = self._backend_name(v["backend"])
        try:
            self.warm_up_s = self.engine.warm_up()
        except InputError as err:
            raise StartupError(f"first render failed: {err}") from None
        self.stats = {s.name: SensorStats(s.name) for s in self.engine.rig.sensors}
        self.throttle = Throttle(v["log_period"])
        self._lock = threading.Lock()
        self._wake = threading.Condition()
        self._stop = False
        self._ticks: deque[int] = deque()
        self._pending_pose: int | None = None
        self._tick_in_progress: int | None = None
        self.last_done_ns: int | None = None
        self.busy = False

        reliability = ReliabilityPolicy.RELIABLE if v["qos_reliability"] == "reliable" else \
            ReliabilityPolicy.BEST_EFFORT
        out_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=reliability)
        self._pubs = {}
        for spec in self.engine.rig.sensors:
            from xsim_render.sim.capture import sensor_topics

            for topic, msgtype in sensor_topics(spec).items():
                self._pubs[topic] = self.create_publisher(message_class(msgtype), topic, out_qos)
        latched = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._tf_static = self.create_publisher(message_class("tf2_msgs/msg/TFMessage"), "/tf_static", latched)
        self._tf_static.publish(serialize("tf2_msgs/msg/TFMessage", static_transforms(
            self.engine.rig, v["base_frame"], self.get_clock().now().nanoseconds)))
        self._diagnostics = self.create_publisher(message_class("diagnostic_msgs/msg/DiagnosticArray"),
                                                  "/diagnostics", 10)
        state_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self._odometry_sub = self.create_subscription(message_class("nav_msgs/msg/Odometry"), "ego/odometry",
                                                      self._on_odometry, state_qos)
        self._actors_sub = self.create_subscription(message_class("xsim_msgs/msg/ActorStateArray"), "actors",
                                                    self._on_actors, state_qos)
        self._done = None
        if self.trigger == "lockstep" or self.get_parameter("use_sim_time").value:
            self._clock_sub = self.create_subscription(message_class("rosgraph_msgs/msg/Clock"), "/clock",
                                                       self._on_clock, state_qos)
        if self.trigger == "lockstep":
            self._done = self.create_publisher(message_class("std_msgs/msg/Header"), "lockstep/done", state_qos)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(v["diagnostics_period"], self._publish_diagnostics, clock=steady)
        self._last_log = time.monotonic()
        self._worker = threading.Thread(target=self._run, name=f"{node_name}_render", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"{len(self.engine.rig.sensors)} sensor(s) ({', '.join(s.name for s in self.engine.rig.sensors)}), "
            f"trigger {self.trigger}, backend {self.backend_in_use}, scene {v['scene']} (first render "
            f"{self.warm_up_s:.2f} s)")

    # ---------------------------------------------------------------- parameters

    def _declare_parameters(self) -> dict:
        values = {}
        for spec in SENSOR_SIM_PARAMS:
            desc = ParameterDescriptor(name=spec.name, type=_PTYPE[spec.type], description=spec.description,
                                       read_only=spec.read_only)
            if spec.choices:
                desc.additional_constraints = "one of: " + ", ".join(spec.choices)
            if spec.type is float and spec.lo is not None:
                desc.floating_point_range = [FloatingPointRange(from_value=float(spec.lo), to_value=float(spec.hi),
                                                                step=0.0)]
            try:
                value = self.declare_parameter(spec.name, spec.default, desc).value
            except Exception as err:  # noqa: BLE001 - rclpy raises several types for a bad override
                raise StartupError(f"parameter '{spec.name}': {' '.join(str(err).split())}") from None
            reason = check_value(spec, value)
            if reason is not None:
                raise StartupError(f"parameter {reason}")
            values[spec.name] = value
        return values

    @staticmethod
    def _engine_config(v: dict) -> EngineConfig:
        return EngineConfig(world_frame=v["world_frame"], base_frame=v["base_frame"], backend=v["backend"],
                            point_format=v["point_format"], organized=v["organized"],
                            phase_modeling=v["phase_modeling"], actor_source=v["actor_source"],
                            history=HistoryConfig(v["max_state_age"], v["state_history"], v["jump_back"],
                                                  v["future_tolerance"]))

    @staticmethod
    def _backend_name(name: str) -> str:
        from xsim_render.backends import resolve_backend

        return resolve_backend(name)

    def _on_set_parameters(self, params: list[Parameter]) -> SetParametersResult:
        updates = {}
        for p in params:
            spec = spec_of(p.name)
            if spec is None:
                continue
            reason = check_value(spec, p.value)
            if reason is not None:
                return SetParametersResult(successful=False, reason=reason)
            updates[p.name] = p.value
        if updates:
            with self._lock:
                self.values.update(updates)
                config = self._engine_config(self.values)
                self.engine.config.__dict__.update({k: getattr(config, k) for k in (
                    "world_frame", "base_frame", "backend", "point_format", "organized", "phase_modeling")})
                hist = self.engine.config.history
                hist.max_state_age, hist.span = config.history.max_state_age, config.history.span
                hist.jump_back, hist.future_tolerance = config.history.jump_back, config.history.future_tolerance
                self.throttle.period = self.values["log_period"]
                if "backend" in updates:
                    self.backend_in_use = self._backend_name(updates["backend"])
            self.get_logger().info("parameters changed (effective from the next capture): " +
                                   ", ".join(f"{k}={v!r}" for k, v in updates.items()))
        return SetParametersResult(successful=True)

    # ---------------------------------------------------------------- inputs

    def _clock_ns(self) -> int | None:
        """The node's ROS clock in ns, None before sim time has started."""
        now = self.get_clock().now().nanoseconds
        return now if now > 0 else None

    def _report(self, reports) -> None:
        for r in reports:
            ok, suppressed = self.throttle.ready(r.kind, time.monotonic())
            if ok:
                more = f" (+{suppressed} more since the last report)" if suppressed else ""
                if r.level == "warn":  # rclpy: one severity per call site
                    self.get_logger().warning(r.text + more)
                else:
                    self.get_logger().info(r.text + more)

    def _on_odometry(self, msg) -> None:
        received = time.monotonic()
        reports = self.engine.add_odometry(msg, received, self._clock_ns())
        self._report(reports)
        stamp = int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)
        with self._wake:
            if self.trigger == "pose" and not any(r.rejected for r in reports):  # accepted: capture at its stamp
                if self._pending_pose is not None:
                    for s in self.stats.values():
                        s.record_drop("superseded")
                self._pending_pose = stamp
            self._wake.notify_all()

    def _on_actors(self, msg) -> None:
        received = time.monotonic()
        reports = self.engine.add_actors(msg, received, self._clock_ns())
        self._report(reports)
        with self._wake:
            self._wake.notify_all()

    def _on_clock(self, msg) -> None:
        t_ns = int(msg.clock.sec) * 1_000_000_000 + int(msg.clock.nanosec)
        with self._wake:
            if self.trigger == "lockstep" and t_ns not in self._ticks and t_ns != self._tick_in_progress:
                self._ticks.append(t_ns)  # a repeat of a queued tick or of the one being rendered is ignored
            self._wake.notify_all()

    # ---------------------------------------------------------------- worker

    def _run(self) -> None:
        try:
            {"lockstep": self._run_lockstep, "pose": self._run_pose}.get(self.trigger, self._run_timer)()
        except Exception as err:  # noqa: BLE001 - the node must report, not die silently
            self.get_logger().error(f"render worker stopped: {type(err).__name__}: {err}")
            raise

    def request_stop(self) -> None:
        """Let the render worker finish the render in progress and start no new one; returns at once. Safe on a
        node whose start-up failed."""
        wake = getattr(self, "_wake", None)
        if wake is None:
            return
        with wake:
            self._stop = True
            wake.notify_all()

    def stop(self) -> None:
        """request_stop, then wait for the worker (at most the render in progress)."""
        self.request_stop()
        worker = getattr(self, "_worker", None)
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout=60.0)

    def _publish(self, publisher, message) -> None:
        """Publish; once stopping, a publisher whose context has already shut down (a signal) is not an error."""
        try:
            publisher.publish(message)
        except Exception:  # noqa: BLE001 - rclpy raises several types on a shut-down context
            if not self._stop:
                raise

    def destroy_node(self) -> None:
        self.stop()
        super().destroy_node()

    def idle(self) -> bool:
        """No capture pending or in progress (the launch runner waits for this before stopping)."""
        with self._wake:
            return not self.busy and not self._ticks and self._pending_pose is None

    def _render(self, sensor: str, start_ns: int, newest_ns: int | None = None, deadline_ns: int | None = None
                ) -> None:
        result = self.engine.capture(sensor, start_ns, newest_ns)
        self._report(result.reports)
        stats = self.stats[sensor]
        if result.stale:
            stats.record_stale()
            self._report([_Note("stale", "warn", f"{sensor}: capture at {start_ns / 1e9:.9f} s refused: "
                                                 f"{result.stale}")])
            return
        if deadline_ns is not None and self.get_clock().now().nanoseconds > deadline_ns:
            stats.record_render_time(result.render_s, time.monotonic())
            stats.record_drop("late")
            self._report([_Note("late", "warn", f"{sensor}: capture at {start_ns / 1e9:.9f} s dropped: "
                                                    f"missed its deadline (render {result.render_s:.3f} s)")])
            return
        for out in result.outputs:
            self._publish(self._pubs[out.topic], serialize(out.msgtype, out.message))
        now = time.monotonic()
        stats.record_publish(now, result.render_s, now - result.received if not math.isnan(result.received)
                             else math.nan)

    def _wait(self, predicate, timeout: float) -> bool:
        end = time.monotonic() + timeout
        with self._wake:
            while not self._stop and not predicate():
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._wake.wait(min(left, 0.1))
        return not self._stop

    def _run_lockstep(self) -> None:
        frame_id = self.get_fully_qualified_name()
        while True:
            with self._wake:
                while not self._stop and not self._ticks:
                    self._wake.wait(0.2)
                if self._stop:
                    return
                tick = self._ticks.popleft()
                self._tick_in_progress = tick
                self.busy = True
            try:
                self._lockstep_tick(tick)
            finally:
                header = message_class("std_msgs/msg/Header")()
                header.stamp.sec, header.stamp.nanosec = divmod(tick, 1_000_000_000)
                header.frame_id = frame_id
                self._publish(self._done, header)
                self.last_done_ns = tick
                with self._wake:
                    self.busy = False
                    self._tick_in_progress = None

    def _lockstep_tick(self, tick: int) -> None:
        if self.last_done_ns is not None and tick == self.last_done_ns:
            return  # a repeated tick (the driver retried): answer again, render nothing
        self._report(self.engine.clock(tick))
        captures = self.engine.due(tick)
        if not captures:
            return
        actors_topic = self._actors_sub.topic_name

        def ready() -> bool:
            ego = self.engine.ego.newest_ns
            if ego is None or ego < tick:
                return False
            if self.engine.actors_seen or self.count_publishers(actors_topic) > 0:
                newest = self.engine.actors.newest_ns
                return newest is not None and newest >= tick
            return True

        if not self._wait(ready, self.values["lockstep_wait"]):
            if self._stop:
                return
            self._report([_Note("lockstep_wait", "warn", f"lockstep tick {tick / 1e9:.9f} s: states for the tick "
                                                         f"did not arrive within {self.values['lockstep_wait']} s; "
                                                         f"rendering with what is there")])
        for c in captures:
            if self._stop:
                return
            self._render(c.sensor, c.start_ns, newest_ns=tick)

    def _run_pose(self) -> None:
        while True:
            with self._wake:
                while not self._stop and self._pending_pose is None:
                    self._wake.wait(0.2)
                if self._stop:
                    return
                stamp, self._pending_pose = self._pending_pose, None
                self.busy = True
            try:
                for spec in self.engine.rig.sensors:
                    if self._stop:
                        break
                    self._render(spec.name, stamp)
            finally:
                with self._wake:
                    self.busy = False

    def _run_timer(self) -> None:
        """timer / realtime: render one capture at a time, re-planning after each render, so that a capture
        that became superseded (or hopeless) while another rendered is dropped instead of rendered late; the
        sensor rendered least recently goes first, so that slow renders do not starve the later sensors."""
        sim = bool(self.get_parameter("use_sim_time").value)
        pending: list = []
        served: dict[str, int] = {}  # sensor -> sequence number of its latest render (fair turns)
        turn = 0
        while not self._stop:
            now = self._clock_ns()
            if now is None:
                self._wait(lambda: False, 0.1)
                continue
            reports = self.engine.clock(now)
            if reports:
                pending = []  # the clock jumped back: what was planned belongs to the old timeline
            self._report(reports)
            captures = pending + self.engine.due(now)
            if captures:
                expected: dict[str, float] = {}
                if self.trigger == "realtime" or not sim:
                    wall = time.monotonic()
                    expected = {n: e for n, s in self.stats.items()
                                if (e := s.render_estimate.expected(wall)) is not None}
                    plan = realtime_plan(captures, now, expected)
                else:
                    plan = latest_per_sensor(captures)
                for c, reason in plan.dropped:
                    self.stats[c.sensor].record_drop(reason)
                    why = (f"expected render {expected[c.sensor]:.3f} s" if reason == "deadline" and
                           c.sensor in expected else "the node is behind its sensors")
                    self._report([_Note(reason, "warn", f"{c.sensor}: capture at {c.start_ns / 1e9:.9f} s dropped "
                                                        f"({reason}): {why}")])
                if plan.render:
                    order = least_recently_served_first(plan.render, served)
                    c, pending = order[0], order[1:]
                    served[c.sensor] = turn = turn + 1
                    with self._wake:
                        self.busy = True
                    try:
                        self._render(c.sensor, c.start_ns, deadline_ns=None if sim else c.deadline_ns)
                    finally:
                        with self._wake:
                            self.busy = bool(pending)
                    continue
            pending = []
            with self._wake:
                self.busy = False
            next_ns = self.engine.next_start_ns(now)
            if sim:
                self._wait(lambda n=next_ns: (self._clock_ns() or 0) >= n, 0.2)
            else:
                self._wait(lambda: False, max(0.0, min(0.2, (next_ns - now) / 1e9)))

    # ---------------------------------------------------------------- diagnostics

    def _publish_diagnostics(self) -> None:
        diag = message_class("diagnostic_msgs/msg/DiagnosticArray")()
        status_cls = message_class("diagnostic_msgs/msg/DiagnosticStatus")
        kv = message_class("diagnostic_msgs/msg/KeyValue")
        diag.header.stamp = self.get_clock().now().to_msg()
        now = time.monotonic()
        lines = []
        for spec in self.engine.rig.sensors:
            s = self.stats[spec.name]
            snap = s.snapshot(now)
            status = status_cls()
            status.name = f"{self.get_name()}: {spec.name}"
            status.hardware_id = spec.name
            problems = snap["dropped"] + snap["stale"]
            status.level = status_cls.WARN if problems else status_cls.OK
            status.message = (f"{snap['published']:.0f} published, {snap['dropped']:.0f} dropped, "
                              f"{snap['stale']:.0f} stale")
            values = {"target_rate_hz": spec.rate_hz, **snap, "backend": self.backend_in_use,
                      "trigger": self.trigger}
            for reason, count in sorted(s.dropped.items()):
                values[f"dropped_{reason}"] = count
            status.values = [kv(key=k, value=_fmt(val)) for k, val in values.items()]
            diag.status.append(status)
            lines.append(f"{spec.name}: {snap['rate_hz']:.2f} Hz (target {spec.rate_hz:g}), render "
                         f"{snap['render_ms_mean']:.0f} ms, latency {snap['latency_ms_mean']:.0f} ms mean / "
                         f"{snap['latency_ms_p95']:.0f} ms p95, {snap['published']:.0f} published, "
                         f"{snap['dropped']:.0f} dropped, {snap['stale']:.0f} stale")
        inputs = status_cls()
        inputs.name = f"{self.get_name()}: inputs"
        inputs.hardware_id = "inputs"
        counts = self.engine.counts_snapshot()
        bad = {k: c for k, c in counts.items() if k not in ("odometry", "actor_arrays", "empty_actor_array")}
        inputs.level = status_cls.WARN if bad else status_cls.OK
        inputs.message = ", ".join(f"{k} {c}" for k, c in sorted(bad.items())) or "all inputs accepted"
        inputs.values = [kv(key=k, value=str(c)) for k, c in sorted(counts.items())]
        diag.status.append(inputs)
        self._diagnostics.publish(diag)
        if now - self._last_log >= self.values["log_period"]:
            self._last_log = now
            for line in lines:
                self.get_logger().info(line)


class _Note:
    def __init__(self, kind: str, level: str, text: str) -> None:
        self.kind, self.level, self.text = kind, level, text


def _fmt(value) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def main(argv: list[str] | None = None) -> int:
    """Console script `sensor_sim` (`ros2 run xsim_ros sensor_sim --ros-args ...`)."""
    return run_node(SensorSimNode, "sensor_sim", sys.argv if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
