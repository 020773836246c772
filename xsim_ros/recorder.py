"""`xsim_recorder` node (used by `xsim launch --record`): records topics to an mcap rosbag2 with rosbags.

Subscribes raw (the CDR bytes as published) with each publisher's QoS (transient_local kept for /tf_static), and
writes the bytes unchanged with the log time = this node's ROS clock at receipt (sim time when the graph runs on
/clock, like `ros2 bag record --use-sim-time`). It also keeps, per topic, the header stamps and wall receive times
for the latency table (xsim_render.sim.report). The bag is written atomically by rosio.bag.BagWriter.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from xsim_render.rosio.bag import BagWriter, qos
from xsim_render.sim.report import ClockMap, TopicLog, raw_stamp_ns

from .common import message_class


class RecorderNode(Node):
    """Record `topics` ({resolved name: (type name, transient_local)}) into the bag at `path`."""

    def __init__(self, path: str | Path, topics: dict[str, tuple[str, bool]], node_name: str = "xsim_recorder",
                 **kwargs) -> None:
        super().__init__(node_name, **kwargs)
        self.path = Path(path)
        self.logs: dict[str, TopicLog] = {}
        self.clock_map = ClockMap()
        self._lock = threading.Lock()
        self._bag = BagWriter(self.path, overwrite=True)
        self._bag.__enter__()
        self._closed = False
        for topic, (msgtype, latched) in sorted(topics.items()):
            self._bag.add_topic(topic, msgtype, qos("transient_local" if latched else "volatile"))
            self.logs[topic] = TopicLog(msgtype)
            profile = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1 if latched else 500,
                                 reliability=ReliabilityPolicy.RELIABLE,
                                 durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)
            self.create_subscription(message_class(msgtype), topic, self._callback(topic, msgtype), profile, raw=True)

    def _callback(self, topic: str, msgtype: str):
        def on_message(data: bytes) -> None:
            wall = time.monotonic()
            log_ns = self.get_clock().now().nanoseconds
            stamp = raw_stamp_ns(msgtype, data)
            with self._lock:
                if self._closed:
                    return
                self._bag.write_raw(topic, data, log_ns)
                log = self.logs[topic]
                log.log_ns.append(log_ns)
                log.stamp_ns.append(stamp)
                log.wall.append(wall)
                if topic == "/clock" and stamp is not None:
                    self.clock_map.add(stamp, wall)
        return on_message

    def close(self, error: BaseException | None = None) -> dict[str, int]:
        """Finish the bag (renamed into place) or, with an error, remove it; returns message counts by topic."""
        with self._lock:
            if self._closed:
                return dict(self._bag.counts)
            self._closed = True
            if error is None:
                self._bag.__exit__(None, None, None)
            else:
                self._bag.__exit__(type(error), error, error.__traceback__)
            return dict(self._bag.counts)
