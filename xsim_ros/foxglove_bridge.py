"""Live view over the Foxglove WebSocket protocol (`xsim launch FILE ... --foxglove [PORT]`, foxglove-sdk).

`FoxgloveServer` is the WebSocket server (bound to 127.0.0.1 only) with one channel per forwarded ROS topic;
`FoxgloveBridgeNode` is the rclpy side: it discovers the graph's topics as they appear (at start and every
second) and subscribes to each one raw, with a QoS that matches its publishers. Every message is forwarded
unchanged: schema encoding `ros2msg` (the full concatenated message definition, as rosbag2 writes into mcap),
message encoding `cdr`, payload = the CDR bytes as published (the same bytes `--record` writes), timestamp = this
node's ROS clock at receipt (the graph clock: sim time under /clock, like the recorder's log time), so Foxglove
decodes and shows Image, CameraInfo, PointCloud2, TFMessage, DiagnosticArray, Odometry, ... natively.

Latched (transient_local) topics such as /tf_static are published once at start-up, before a viewer connects:
the bridge keeps the newest message of each of their publishers and sends them again when a client subscribes.
Every topic except /rosout and /parameter_events is forwarded; a topic whose type is unknown to the typestore is
skipped with one warning.
"""

from __future__ import annotations

import threading
from typing import Any

from rclpy.node import Node

from xsim_render.errors import InputError

DEFAULT_PORT = 8765
HOST = "127.0.0.1"
SKIP_TOPICS = ("/rosout", "/parameter_events")
MAX_LATCHED = 64  # newest message of at most this many publishers per latched topic
REPLAY_DELAY = 0.05  # s after a client subscribed to a latched topic


def ros2msg_definition(msgtype: str) -> str:
    """The full ros2msg definition of a type (its fields, then every nested type after a `MSG:` separator)."""
    from xsim_render.rosio.typestore import typestore

    text, _ = typestore().generate_msgdef(msgtype, ros_version=2)
    return text


def check_port(port: int) -> int:
    """`port` if it is a TCP port number (0 = any free port), else an InputError naming the option."""
    if not 0 <= port <= 65535:
        raise InputError(f"--foxglove: port must be 0..65535 (0 = any free port), got {port}")
    return port


class _Listener:
    """foxglove ServerListener: tells the server which channel a client just subscribed to."""

    def __init__(self, server: FoxgloveServer) -> None:
        self._server = server

    def on_subscribe(self, client: Any, channel: Any) -> None:
        self._server._subscribed(channel.topic)

    def on_unsubscribe(self, client: Any, channel: Any) -> None:
        pass


class FoxgloveServer:
    """A Foxglove WebSocket server on HOST:port with ros2msg / cdr channels (one per topic).

    Raises InputError (one line, naming the option, address and reason) when it cannot bind, e.g. the port is in
    use. `port` is the bound port (useful with 0). Thread safe; stop() closes every client and frees the port.
    """

    def __init__(self, port: int = DEFAULT_PORT, host: str = HOST, name: str = "xsim") -> None:
        check_port(port)
        try:
            import foxglove
        except ImportError as err:
            raise InputError(f"--foxglove: the foxglove-sdk package is not importable ({err}); install the "
                             f"requirements: make .venv") from None
        self.host = host
        self._lock = threading.Lock()
        self._channels: dict[str, Any] = {}
        self._latched: dict[str, dict[Any, tuple[bytes, int]]] = {}
        self._pending: set[str] = set()
        self.context = foxglove.Context()
        try:
            self._server = foxglove.start_server(name=name, host=host, port=port, context=self.context,
                                                 server_listener=_Listener(self))
        except RuntimeError as err:
            reason = str(err).split(":", 1)[-1].strip()
            raise InputError(f"--foxglove: cannot serve on {host}:{port}: {reason}") from None
        self.port: int = self._server.port
        self._stopped = False

    @property
    def url(self) -> str:
        return f"ws://{'localhost' if self.host == HOST else self.host}:{self.port}"

    def topics(self) -> list[str]:
        with self._lock:
            return sorted(self._channels)

    def add_channel(self, topic: str, msgtype: str, latched: bool = False) -> None:
        """Advertise `topic` (type name such as 'sensor_msgs/msg/Image') to every client, once."""
        import foxglove

        schema = foxglove.Schema(name=msgtype, encoding="ros2msg", data=ros2msg_definition(msgtype).encode())
        with self._lock:
            if topic in self._channels or self._stopped:
                return
            self._channels[topic] = foxglove.Channel(topic, schema=schema, message_encoding="cdr",
                                                     context=self.context)
            if latched:
                self._latched[topic] = {}

    def log(self, topic: str, data: bytes, log_time_ns: int, publisher: Any = None) -> None:
        """Send one CDR message of `topic` to the clients subscribed to it (timestamp `log_time_ns`, ns)."""
        with self._lock:
            channel = self._channels.get(topic)
            if channel is None or self._stopped:
                return
            latched = self._latched.get(topic)
            if latched is not None:
                latched.pop(publisher, None)
                latched[publisher] = (data, log_time_ns)
                while len(latched) > MAX_LATCHED:
                    latched.pop(next(iter(latched)))
            channel.log(data, log_time=max(0, int(log_time_ns)))

    def _subscribed(self, topic: str) -> None:
        """Called by the server (its own thread) when a client subscribes: replay latched messages shortly after,
        from another thread (the subscription is in place by then; nothing is sent from inside the callback)."""
        with self._lock:
            if topic not in self._latched or self._stopped:
                return
            self._pending.add(topic)
        timer = threading.Timer(REPLAY_DELAY, self.replay_latched)
        timer.daemon = True
        timer.start()

    def replay_latched(self) -> None:
        """Send the kept messages of the latched topics a client subscribed to since the last call."""
        with self._lock:
            if self._stopped:
                return
            pending, self._pending = self._pending, set()
            for topic in sorted(pending):
                for data, log_ns in self._latched[topic].values():
                    self._channels[topic].log(data, log_time=max(0, int(log_ns)))

    def stop(self) -> None:
        """Close the channels and the server (clients are disconnected, the port is freed); idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            for channel in self._channels.values():
                channel.close()
        self._server.stop()


class FoxgloveBridgeNode(Node):
    """rclpy node forwarding every discovered topic of the graph to a FoxgloveServer (see the module docstring)."""

    def __init__(self, server: FoxgloveServer, node_name: str = "xsim_foxglove", skip: tuple[str, ...] = SKIP_TOPICS,
                 discovery_period: float = 1.0, **kwargs: Any) -> None:
        from rclpy.clock import Clock, ClockType

        super().__init__(node_name, **kwargs)
        self.server = server
        self.skip = set(skip)
        self.subscribed: dict[str, str] = {}  # topic -> type name
        self.ignored: set[str] = set()
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.discover()
        self.create_timer(discovery_period, self.discover, clock=steady)

    def settled(self, topic: str) -> bool:
        """True when `topic` is forwarded, skipped or ignored (so a launcher may wait for the bridge to match)."""
        return topic in self.subscribed or topic in self.ignored or topic in self.skip

    def discover(self) -> list[str]:
        """Subscribe to the topics that appeared since the last call; returns them."""
        from .common import StartupError, message_class

        new = []
        for topic, types in self.get_topic_names_and_types():
            if topic in self.subscribed or topic in self.ignored or topic in self.skip:
                continue
            publishers = self.get_publishers_info_by_topic(topic)
            if not publishers:
                continue  # only subscribers so far: nothing to show
            if len(types) != 1:
                self.get_logger().warning(f"foxglove: {topic} has several types {types}: not forwarded")
                self.ignored.add(topic)
                continue
            msgtype = types[0]
            try:
                cls = message_class(msgtype)
                self.server.add_channel(topic, msgtype, _all_latched(publishers))
            except (StartupError, KeyError, ValueError) as err:
                self.get_logger().warning(f"foxglove: {topic} ({msgtype}) not forwarded: {err}")
                self.ignored.add(topic)
                continue
            self.create_subscription(cls, topic, self._callback(topic), _matching_qos(publishers), raw=True)
            self.subscribed[topic] = msgtype
            new.append(topic)
        return new

    def _callback(self, topic: str):
        def on_message(data: bytes, info: Any) -> None:
            gid = info.get("publisher_gid") if isinstance(info, dict) else None
            publisher = bytes(gid["data"]) if gid and gid.get("data") is not None else None
            self.server.log(topic, data, self.get_clock().now().nanoseconds, publisher)
        return on_message


def _all_latched(publishers: list[Any]) -> bool:
    from rclpy.qos import DurabilityPolicy

    return all(p.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for p in publishers)


def _matching_qos(publishers: list[Any]) -> Any:
    """Reliable when every publisher is, transient_local when every publisher is (so /tf_static arrives)."""
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    reliable = all(p.qos_profile.reliability == ReliabilityPolicy.RELIABLE for p in publishers)
    latched = _all_latched(publishers)
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=max(10, len(publishers)) if latched else 10,
                      reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)
