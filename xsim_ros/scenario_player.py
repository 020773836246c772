"""`scenario_player` node: plays a scenario as ROS topics; optionally drives `/clock` (real-time factor or lockstep).

Every tick T (tick_rate_hz, integer ns from the scenario's start) it publishes, in this order, `ego/odometry`
(nav_msgs/Odometry), `actors` (xsim_msgs/ActorStateArray, possibly empty), `/tf` (world_frame -> base_frame), all
stamped T, then `/clock` = T when publish_clock is true. With publish_ego false (closed loop: an ego_model node
drives the ego) it leaves out ego/odometry and /tf. The messages come from xsim_render.sim.scenario (a
synthetic world's world.yaml or a bag) and are published as the CDR bytes of the same rosbags objects a bag holds.

Pacing: real-time factor `rate` on the wall clock (ticks that fall behind are skipped and counted, never bunched),
or `lockstep`: after /clock T it waits until `lockstep_nodes` distinct nodes have answered on `lockstep/done`
(std_msgs/Header, stamp T, frame_id the answering node) or `lockstep_timeout` passes (reported, then it goes on).
At the end of the scenario it stops (end_action 'stop'; `finished` becomes true) or starts over ('loop': the clock
jumps back, which the sensor_sim nodes detect and reset on).
"""

from __future__ import annotations

import sys
import threading
import time

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from xsim_render.errors import InputError
from xsim_render.sim.capture import serialize
from xsim_render.sim.scenario import clock_output, load_scenario, tick_outputs

from .common import StartupError, message_class, run_node

NS = 1_000_000_000


class ScenarioPlayerNode(Node):
    """See the module docstring. Raises StartupError for a missing or bad scenario or parameter."""

    def __init__(self, node_name: str = "scenario_player", start: bool = True, **kwargs) -> None:
        """start=False: play only after start() (the launch runner first connects its recorder)."""
        super().__init__(node_name, **kwargs)
        p = self._declare()
        if p["end_action"] not in ("stop", "loop"):
            raise StartupError(f"parameter end_action: must be one of stop, loop, got {p['end_action']!r}")
        if not p["scenario"]:
            raise StartupError("parameter 'scenario': no scenario given (world.yaml, a drive directory or a bag)")
        try:
            self.scenario = load_scenario(p["scenario"], p["time_offset"], odometry_topic=p["bag_odometry_topic"],
                                          actors_topic=p["bag_actors_topic"], world_frame=p["world_frame"],
                                          base_frame=p["base_frame"])
        except InputError as err:
            raise StartupError(str(err)) from None
        self.p = p
        self.period_ns = int(round(NS / p["tick_rate_hz"]))
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self._pubs = {
            "ego/odometry": self.create_publisher(message_class("nav_msgs/msg/Odometry"), "ego/odometry", qos),
            "actors": self.create_publisher(message_class("xsim_msgs/msg/ActorStateArray"), "actors", qos),
            "/tf": self.create_publisher(message_class("tf2_msgs/msg/TFMessage"), "/tf", qos),
        }
        if not p["publish_ego"]:  # an ego_model drives the ego (closed loop): actors and the clock only
            for topic in ("ego/odometry", "/tf"):
                self.destroy_publisher(self._pubs.pop(topic))
        if p["publish_clock"]:
            self._pubs["/clock"] = self.create_publisher(message_class("rosgraph_msgs/msg/Clock"), "/clock", qos)
        self._done: dict[int, set[str]] = {}
        self._answered: set[str] = set()
        self._cond = threading.Condition()
        if p["lockstep"]:
            if not p["publish_clock"]:
                raise StartupError("parameter lockstep: true needs publish_clock: true (the player drives /clock)")
            self._done_sub = self.create_subscription(message_class("std_msgs/msg/Header"), "lockstep/done",
                                                      self._on_done, qos)
        self.finished = False
        self.ticks = 0
        self.skipped = 0
        self.timeouts = 0
        self.current_ns: int | None = None  # the last tick published
        self.completed_ns: int | None = None  # the last tick done (lockstep: answered by every node)
        self._stop = False
        self._go = threading.Event()
        self._thread = threading.Thread(target=self._play, name=f"{node_name}_play", daemon=True)
        self._thread.start()
        if start:
            self.start()
        self.get_logger().info(
            f"playing {self.scenario.source} ({(self.scenario.end_ns - self.scenario.start_ns) / NS:.2f} s) at "
            f"{p['tick_rate_hz']:g} Hz, " + (f"lockstep with {p['lockstep_nodes']} node(s)" if p["lockstep"] else
                                             f"real-time factor {p['rate']:g}") + f", end: {p['end_action']}")

    def _declare(self) -> dict:
        def desc(kind: int, text: str, read_only: bool = True, lo: float | None = None, hi: float | None = None):
            d = ParameterDescriptor(type=kind, description=text, read_only=read_only)
            if lo is not None and kind == ParameterType.PARAMETER_DOUBLE:
                d.floating_point_range = [FloatingPointRange(from_value=lo, to_value=hi, step=0.0)]
            if lo is not None and kind == ParameterType.PARAMETER_INTEGER:
                d.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=1)]
            return d

        S, B, D, I = (ParameterType.PARAMETER_STRING, ParameterType.PARAMETER_BOOL, ParameterType.PARAMETER_DOUBLE,
                      ParameterType.PARAMETER_INTEGER)
        table = [
            ("scenario", "", desc(S, "world.yaml, a directory holding world/world.yaml, or a bag")),
            ("publish_clock", True, desc(B, "publish /clock (the graph runs on this player's time)")),
            ("publish_ego", True, desc(B, "publish the scenario's ego (ego/odometry, /tf); false when an ego_model "
                                          "drives it")),
            ("lockstep", False, desc(B, "advance only when lockstep_nodes nodes answered on lockstep/done")),
            ("lockstep_nodes", 1, desc(I, "how many nodes answer each lockstep tick", lo=0, hi=1000)),
            ("lockstep_timeout", 300.0, desc(D, "s (wall) to wait for the answers to one tick (then reported and "
                                                "skipped)", lo=0.01, hi=86400.0)),
            ("rate", 1.0, desc(D, "real-time factor without lockstep", read_only=False, lo=0.001, hi=1000.0)),
            ("tick_rate_hz", 50.0, desc(D, "ticks per second of scenario time", lo=0.1, hi=1000.0)),
            ("end_action", "stop", desc(S, "stop or loop at the end of the scenario")),
            ("time_offset", 0.0, desc(D, "s added to a synthetic world's time (ROS time of its t = 0)", lo=0.0,
                                      hi=1e10)),
            ("start_delay", 0.5, desc(D, "s (wall) to wait for subscribers before the first tick", lo=0.0,
                                      hi=3600.0)),
            ("world_frame", "map", desc(S, "frame of the published poses")),
            ("base_frame", "base_link", desc(S, "ego body frame")),
            ("bag_odometry_topic", "/ego/odometry", desc(S, "bag scenarios: topic of the ego odometry")),
            ("bag_actors_topic", "/actors", desc(S, "bag scenarios: topic of the actor arrays")),
        ]
        values = {}
        for name, default, d in table:
            try:
                values[name] = self.declare_parameter(name, default, d).value
            except Exception as err:  # noqa: BLE001 - rclpy raises several types for a bad override
                raise StartupError(f"parameter '{name}': {' '.join(str(err).split())}") from None
        return values

    def _on_done(self, msg) -> None:
        t = int(msg.stamp.sec) * NS + int(msg.stamp.nanosec)
        with self._cond:
            self._done.setdefault(t, set()).add(msg.frame_id)
            self._answered.add(msg.frame_id)
            self._cond.notify_all()

    def _publish(self, out) -> None:
        self._pubs[out.topic].publish(serialize(out.msgtype, out.message))

    def _graph_ready(self) -> bool:
        """lockstep_nodes nodes publish lockstep/done, each has a reliable /clock subscription, and every
        subscription the graph shows on what we publish is matched by our publishers (DDS-level)."""
        from rclpy.qos import ReliabilityPolicy

        need = self.p["lockstep_nodes"]
        nodes = {(i.node_namespace, i.node_name) for i in self.get_publishers_info_by_topic(self._done_sub.topic_name)}
        if len(nodes) < need:
            return False
        clock_subs = self.get_subscriptions_info_by_topic("/clock")
        for ns, name in nodes:
            if not any(s.node_namespace == ns and s.node_name == name and
                       s.qos_profile.reliability == ReliabilityPolicy.RELIABLE for s in clock_subs):
                return False
        for pub in self._pubs.values():
            if pub.get_subscription_count() < len(self.get_subscriptions_info_by_topic(pub.topic_name)):
                return False
        return True

    def _wait_for_graph(self) -> None:
        """Lockstep: wait until the answering nodes are up and matched (no tick is sent into the void)."""
        last_log = time.monotonic()
        while not self._stop and not self._graph_ready():
            if time.monotonic() - last_log > 5.0:
                last_log = time.monotonic()
                self.get_logger().info(f"waiting for {self.p['lockstep_nodes']} lockstep node(s) on "
                                       f"{self._done_sub.topic_name}")
            time.sleep(0.02)

    def _await_tick(self, t_ns: int) -> None:
        need = self.p["lockstep_nodes"]
        if need == 0:
            return
        start = time.monotonic()
        retry_at = start + 10.0
        with self._cond:
            while not self._stop and len(self._done.get(t_ns, ())) < need:
                now = time.monotonic()
                if now - start > self.p["lockstep_timeout"]:
                    self.timeouts += 1
                    self.get_logger().error(
                        f"lockstep tick {t_ns / NS:.9f} s: {len(self._done.get(t_ns, ()))} of {need} node(s) "
                        f"answered within {self.p['lockstep_timeout']} s; going on ({self.timeouts} timeouts)")
                    break
                if len(self._answered) < need and now > retry_at:
                    retry_at = now + 10.0  # no answer ever yet: the first /clock may have been missed
                    self._publish(clock_output(t_ns))
                self._cond.wait(0.05)
            self._done = {k: v for k, v in self._done.items() if k > t_ns}

    def _play(self) -> None:
        try:
            self._play_loop()
        except Exception as err:  # noqa: BLE001 - report instead of dying silently
            self.get_logger().error(f"player stopped: {type(err).__name__}: {err}")
            self.finished = True

    def start(self) -> None:
        """Begin playing (after start_delay)."""
        self._go.set()

    def _play_loop(self) -> None:
        p, sc = self.p, self.scenario
        while not self._go.wait(0.1):
            if self._stop:
                return
        time.sleep(p["start_delay"])
        if p["lockstep"]:
            self._wait_for_graph()
        k, wall0 = 0, time.monotonic()
        while not self._stop:
            t_ns = sc.start_ns + k * self.period_ns
            if t_ns > sc.end_ns:
                if p["end_action"] == "loop":
                    self.get_logger().info("end of the scenario: starting over (the clock jumps back)")
                    k, wall0 = 0, time.monotonic()
                    continue
                self.finished = True
                self.get_logger().info(f"end of the scenario after {self.ticks} ticks ({self.skipped} skipped, "
                                       f"{self.timeouts} lockstep timeouts)")
                return
            if not p["lockstep"]:
                target = wall0 + k * self.period_ns / NS / p["rate"]
                lag = time.monotonic() - target
                if lag > self.period_ns / NS / p["rate"]:
                    skip = int(lag * p["rate"] * NS // self.period_ns)
                    self.skipped += skip
                    k += skip
                    continue
                if lag < 0:
                    time.sleep(-lag)
            for out in tick_outputs(sc, t_ns, p["world_frame"], p["base_frame"]):
                if out.topic in self._pubs:  # publish_ego false: no ego/odometry, no /tf
                    self._publish(out)
            if p["publish_clock"]:
                self._publish(clock_output(t_ns))
            self.current_ns = t_ns
            self.ticks += 1
            if p["lockstep"]:
                self._await_tick(t_ns)
            self.completed_ns = t_ns
            k += 1

    def destroy_node(self) -> None:
        self._stop = True
        if getattr(self, "_go", None) is not None:
            self._go.set()
        cond, thread = getattr(self, "_cond", None), getattr(self, "_thread", None)
        if cond is not None:
            with cond:
                cond.notify_all()
        if thread is not None:
            thread.join(timeout=10.0)
        super().destroy_node()


def main(argv: list[str] | None = None) -> int:
    """Console script `scenario_player` (`ros2 run xsim_ros scenario_player --ros-args ...`)."""
    return run_node(ScenarioPlayerNode, "scenario_player", sys.argv if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
