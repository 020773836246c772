"""`xsim launch FILE [name:=value ...] [--record BAG] [--duration S] [--foxglove [PORT]]`: the pip-only launcher.

Reads the same launch XML that `ros2 launch xsim_ros FILE` reads under a distro (xsim_render.sim.launch_xml) and
starts every node in THIS process (one rclpy context, one multi-threaded executor), each with the arguments
`ros2 run` would give it (--params-file, -p, -r, namespace). Known executables: xsim_ros sensor_sim,
scenario_player and ego_model. With --record it records every topic the started nodes publish (except /rosout and
/parameter_events) to an mcap bag and prints a per-topic table (count, rate, latency mean / p95). With --foxglove
it serves every topic of the graph live over the Foxglove WebSocket protocol on 127.0.0.1 (foxglove_bridge.py).

It stops on SIGINT or SIGTERM (the bag is kept), or when the graph clock (/clock if a node publishes it, else the
wall clock) has advanced by --duration seconds and every sensor_sim is idle, or when every scenario_player has
finished its scenario (end_action stop) and every sensor_sim is idle.
"""

from __future__ import annotations

import importlib
import math
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from xsim_render.errors import InputError
from xsim_render.sim.launch_xml import parse_launch
from xsim_render.sim.report import format_table, topic_rows

from .common import StartupError

EXECUTABLES = {
    ("xsim_ros", "sensor_sim"): ("xsim_ros.sensor_sim", "SensorSimNode"),
    ("xsim_ros", "scenario_player"): ("xsim_ros.scenario_player", "ScenarioPlayerNode"),
    ("xsim_ros", "ego_model"): ("xsim_ros.ego_model", "EgoModelNode"),
}
SKIP_TOPICS = ("/rosout", "/parameter_events")


def _type_name(cls: Any) -> str:
    package = cls.__module__.split(".")[0]
    return f"{package}/msg/{cls.__name__}"


def published_topics(nodes: list[Any]) -> dict[str, tuple[str, bool]]:
    """{resolved topic: (type name, transient_local)} of every publisher of the given nodes."""
    from rclpy.qos import DurabilityPolicy

    topics = {}
    for node in nodes:
        for pub in node.publishers:
            if pub.topic_name in SKIP_TOPICS:
                continue
            latched = pub.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL
            topics[pub.topic_name] = (_type_name(pub.msg_type), latched)
    return topics


class LaunchRun:
    """A started launch description (see the module docstring)."""

    def __init__(self, path: str | Path, arguments: dict[str, str], record: str | Path | None = None,
                 domain_id: int | None = None, foxglove: Any = None) -> None:
        import rclpy
        from rclpy.context import Context

        os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        self.description = parse_launch(path, arguments)
        self.context = Context()
        rclpy.init(args=[], context=self.context, domain_id=domain_id)
        self.nodes: list[Any] = []
        self.recorder = None
        self.bridge = None  # forwards to `foxglove` (a started foxglove_bridge.FoxgloveServer, owned by the caller)
        try:
            for action in self.description.nodes:
                key = (action.package, action.executable)
                if key not in EXECUTABLES:
                    raise InputError(f"{self.description.path}: node {action.package}/{action.executable}: this "
                                     f"runner starts only {', '.join('/'.join(k) for k in EXECUTABLES)}")
                if action.args.strip():
                    raise InputError(f"{self.description.path}: node {action.name}: args={action.args!r}: the "
                                     f"xsim_ros nodes take no non-ROS arguments")
                module, cls = EXECUTABLES[key]
                factory = getattr(importlib.import_module(module), cls)
                extra = {"start": False} if action.executable == "scenario_player" else {}
                try:
                    self.nodes.append(factory(action.name, namespace=action.namespace or None,
                                              cli_args=action.ros_args(), use_global_arguments=False,
                                              context=self.context, **extra))
                except StartupError as err:
                    raise StartupError(f"node {action.name}: {err}") from None
                except (InputError, KeyboardInterrupt):
                    raise
                except Exception as err:  # noqa: BLE001 - rcl rejects bad arguments / parameter files this way
                    raise StartupError(f"node {action.name}: {' '.join(str(err).split())}") from None
            if record is not None:
                from .recorder import RecorderNode

                sim = any(n.get_parameter("use_sim_time").value for n in self.nodes)
                from rclpy.parameter import Parameter

                self.recorder = RecorderNode(record, published_topics(self.nodes), context=self.context,
                                             parameter_overrides=[Parameter("use_sim_time", value=sim)])
                self.wall_of_epoch = time.monotonic() - time.time()
            if foxglove is not None:
                from rclpy.parameter import Parameter

                from .foxglove_bridge import FoxgloveBridgeNode

                sim = any(n.get_parameter("use_sim_time").value for n in self.nodes)
                self.bridge = FoxgloveBridgeNode(foxglove, context=self.context,
                                                 parameter_overrides=[Parameter("use_sim_time", value=sim)])
        except BaseException:
            self.shutdown(error=True)
            raise
        from rclpy.executors import MultiThreadedExecutor

        self.executor = MultiThreadedExecutor(num_threads=4, context=self.context)
        for node in self.nodes + [n for n in (self.recorder, self.bridge) if n is not None]:
            self.executor.add_node(node)
        self._clock_start: int | None = None
        if self.recorder is not None or self.bridge is not None:  # every publisher matched by recorder / bridge
            end = time.monotonic() + 10.0
            pubs = [p for n in self.nodes for p in n.publishers if p.topic_name not in SKIP_TOPICS]
            while time.monotonic() < end and not all(self._matched(p) for p in pubs):
                self.executor.spin_once(timeout_sec=0.02)
        for player in self.players():
            player.start()
        self._wall_start = time.monotonic()

    def _matched(self, pub: Any) -> bool:
        """Whether the recorder and the Foxglove bridge (those that take this publisher's topic) match it."""
        need = int(self.recorder is not None)
        if self.bridge is not None:
            if not self.bridge.settled(pub.topic_name):
                return False
            need += pub.topic_name in self.bridge.subscribed
        return pub.get_subscription_count() >= need

    def sensor_sims(self) -> list[Any]:
        return [n for n in self.nodes if hasattr(n, "idle")]

    def players(self) -> list[Any]:
        return [n for n in self.nodes if hasattr(n, "finished")]

    def _elapsed(self) -> float:
        """Seconds the graph clock advanced since the first reading (players' tick time, else wall)."""
        players = [p for p in self.players() if p.completed_ns is not None]
        if players:
            now = max(p.completed_ns for p in players)
            if self._clock_start is None:
                self._clock_start = now
            return (now - self._clock_start) / 1e9
        return time.monotonic() - self._wall_start if not self.players() else 0.0

    def done(self, duration: float | None) -> bool:
        idle = all(s.idle() for s in self.sensor_sims())
        if duration is not None and self._elapsed() >= duration and idle:
            return True
        players = self.players()
        return bool(players) and all(p.finished for p in players) and idle

    def spin(self, duration: float | None = None, stop: threading.Event | None = None) -> None:
        """Run until done(duration) or `stop` is set, then let in-flight messages arrive (0.5 s)."""
        stop = stop or threading.Event()
        while not stop.is_set() and not self.done(duration):
            self.executor.spin_once(timeout_sec=0.05)
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.05)

    def table(self) -> str:
        if self.recorder is None:
            return ""
        rows = topic_rows(self.recorder.logs, self.recorder.clock_map, self.wall_of_epoch)
        return format_table(rows)

    def rows(self) -> list[dict[str, Any]]:
        return topic_rows(self.recorder.logs, self.recorder.clock_map, self.wall_of_epoch) if self.recorder else []

    def shutdown(self, error: bool = False) -> None:
        import rclpy

        for node in self.nodes:  # no new render starts from here on (the ones in progress may finish)
            if hasattr(node, "request_stop"):
                node.request_stop()
        if self.recorder is not None:
            self.recorder.close(RuntimeError("launch failed") if error else None)
        for node in self.nodes:
            try:
                node.destroy_node()
            except Exception:  # noqa: BLE001 - shutting down anyway
                pass
        if self.recorder is not None:
            self.recorder.destroy_node()
        if self.bridge is not None:
            self.bridge.destroy_node()
        if hasattr(self, "executor"):
            self.executor.shutdown()
        rclpy.try_shutdown(context=self.context)


def run(path: str, arguments: dict[str, str], record: str | None = None, duration: float | None = None,
        foxglove: int | None = None) -> int:
    """The `xsim launch` command: returns the exit code (2 for a bad launch file, argument or node start-up, or a
    --foxglove port that cannot be bound). `foxglove`: serve the graph live on ws://127.0.0.1:PORT (0 = any port)."""
    if duration is not None and not (duration > 0 and math.isfinite(duration)):
        raise InputError(f"--duration: must be a positive number of seconds, got {duration}")
    if record is not None and not Path(record).resolve().parent.is_dir():
        raise InputError(f"--record: directory {str(Path(record).resolve().parent)!r} does not exist")
    server = None
    if foxglove is not None:  # before the nodes load anything: a port in use fails at once
        from .foxglove_bridge import FoxgloveServer

        server = FoxgloveServer(foxglove)
        print(f"foxglove: live view on {server.url} (Foxglove: Open connection > Foxglove WebSocket)", flush=True)
    try:
        launch = LaunchRun(path, arguments, record, foxglove=server)
    except BaseException as err:
        if server is not None:
            server.stop()
        if isinstance(err, StartupError):
            raise InputError(str(err)) from None
        raise
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    failed = True
    try:
        launch.spin(duration, stop)
        failed = False
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        table = launch.table() if not failed else ""
        launch.shutdown(error=failed)
        if server is not None:
            server.stop()
    if record is not None:
        print(f"recorded {record}")
        print(table)
    return 0
