"""A lane-keeping planner for the closed-loop demo (ours, an example: not part of the xsim_ros package).

It keeps the ego in its lane from the LiDAR alone: every sweep it finds the right-hand curb (the step from the road
surface to the sidewalk, CURB_HEIGHT = 0.15 m in the synthetic world), fits a straight line to it, places the lane
centre `lane_offset` metres to the left of that line and steers towards a point on it `lookahead` metres ahead
(pure pursuit from the rear axle: curvature 2 y / d^2 for a target at lateral offset y and distance d).

It takes part in the lockstep of launch/xsim_closed_loop.launch.xml (docs/ros.md, "Closed loop"): on /clock T_k it
works out whether a LiDAR sweep started in (T_(k-1), T_k] (the same capture instants n / rate_hz the sensor_sim
uses), and if so waits for that sweep (matched by its header stamp) and updates its command from it; then it
publishes exactly one `cmd_vel` (geometry_msgs/Twist: speed, yaw rate), its command for (T_k, T_(k+1)], and then
answers `lockstep/done` (std_msgs/Header, stamp T_k). So the drive is deterministic: it depends only on the sweeps.

    .venv/bin/python examples/lane_keeping.py --ros-args -p speed:=8.0 -p lidar_rate_hz:=5.0

Frames: the LiDAR's points (sensor frame, x forward, y left, z up, at `sensor_height` above base_link, which is on
the ground at the rear axle centre; mounted without rotation at sensor_x ahead of it) are used as if taken at the
sweep start (no de-skewing: the car moves about 1.6 m during a 0.2 s sweep at 8 m/s, along the curb line).
"""

from __future__ import annotations

import math
import sys
import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

NS = 1_000_000_000


@dataclass(frozen=True)
class CurbLine:
    """The right curb in base_link: y = offset + slope * x (m), from `bins` 2-m stretches, rms residual (m)."""

    offset: float
    slope: float
    bins: int
    rms: float


def cloud_points(msg) -> np.ndarray:
    """(N, 3) float64 x, y, z of a sensor_msgs/PointCloud2 with float32 x, y, z fields; NaN rows dropped."""
    offsets = {f.name: f.offset for f in msg.fields}
    raw = np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(-1, msg.point_step)
    xyz = np.stack([raw[:, offsets[c]:offsets[c] + 4].copy().view("<f4")[:, 0] for c in "xyz"], -1)
    xyz = xyz.astype(np.float64)
    return xyz[np.isfinite(xyz).all(1)]


def fit_right_curb(points: np.ndarray, x_range: tuple[float, float] = (-6.0, 22.0), bin_size: float = 2.0,
                   max_lateral: float = 9.0) -> CurbLine | None:
    """The right curb line from points in base_link (z up from the road): per bin of x, the edge between the road
    (z < 0.04) and the raised sidewalk / curb face (0.06 < z < 0.3) on the right (y < -1); a robust straight-line
    fit (two passes, residuals over 0.3 m dropped). None when fewer than 3 bins have an edge."""
    x, y, z = points[:, 0], points[:, 1], points[:, 2]
    right = (x >= x_range[0]) & (x < x_range[1]) & (y < -1.0) & (y > -max_lateral)
    xs, edges = [], []
    for lo in np.arange(x_range[0], x_range[1], bin_size):
        inside = right & (x >= lo) & (x < lo + bin_size)
        raised = inside & (z > 0.06) & (z < 0.3)
        if not raised.any():
            continue
        k = int(np.argmax(np.where(raised, y, -np.inf)))  # the raised point nearest to the car
        edge = y[k]
        road = inside & (z < 0.04) & (y > edge)
        if road.any():  # the step lies between that point and the outermost road point nearer to the car
            nearest_road = float(y[road].min())
            if nearest_road - edge < 0.6:
                edge = 0.5 * (edge + nearest_road)
        xs.append(x[k])
        edges.append(edge)
    if len(xs) < 3:
        return None
    xs_a, ed_a = np.array(xs), np.array(edges)
    keep = np.ones(len(xs_a), dtype=bool)
    for _ in range(2):
        if keep.sum() < 3:
            return None
        slope, offset = np.polyfit(xs_a[keep], ed_a[keep], 1)
        residual = np.abs(ed_a - (offset + slope * xs_a))
        keep = residual < max(0.3, 2.5 * float(np.median(residual)))
    rms = float(np.sqrt(np.mean((ed_a[keep] - (offset + slope * xs_a[keep])) ** 2)))
    return CurbLine(float(offset), float(slope), int(keep.sum()), rms)


def pure_pursuit_curvature(curb: CurbLine, lane_offset: float, lookahead: float) -> float:
    """Curvature (1/m, positive left) that takes the rear axle to the lane centre `lookahead` m ahead; the lane
    centre is `lane_offset` m left of the curb line (perpendicular to it)."""
    y_target = curb.offset + curb.slope * lookahead + lane_offset * math.sqrt(1.0 + curb.slope ** 2)
    return 2.0 * y_target / (lookahead ** 2 + y_target ** 2)


def _node_class():
    from rcl_interfaces.msg import ParameterDescriptor
    from rclpy.node import Node
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

    from xsim_render.sim.schedule import SensorRate

    class LaneKeeper(Node):
        """See the module docstring."""

        def __init__(self) -> None:
            super().__init__("lane_keeping")
            defaults = {"lidar_topic": "sensing/lidar/top/pointcloud", "lidar_rate_hz": 5.0, "sensor_height": 1.9,
                        "sensor_x": 0.0, "speed": 8.0, "lane_offset": 4.25, "lookahead_min": 8.0,
                        "lookahead_time": 1.2, "max_curvature": 0.15, "cloud_wait": 300.0}
            self.p = {k: self.declare_parameter(k, v, ParameterDescriptor(read_only=True)).value
                      for k, v in defaults.items()}
            qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE)
            from geometry_msgs.msg import Twist
            from rosgraph_msgs.msg import Clock
            from sensor_msgs.msg import PointCloud2
            from std_msgs.msg import Header

            self._twist, self._header = Twist, Header
            self.cmd = self.create_publisher(Twist, "cmd_vel", qos)
            self.done = self.create_publisher(Header, "lockstep/done", qos)
            self.create_subscription(Clock, "/clock", self._on_clock, qos)
            self.create_subscription(PointCloud2, self.p["lidar_topic"], self._on_cloud, qos)
            self.rate = SensorRate("lidar", self.p["lidar_rate_hz"])
            self.cond = threading.Condition()
            self.ticks: deque[int] = deque()
            self.clouds: dict[int, object] = {}
            self.prev_tick: int | None = None
            self.curvature = 0.0
            self.stop = False
            self.worker = threading.Thread(target=self._run, daemon=True)
            self.worker.start()

        def _on_clock(self, msg) -> None:
            with self.cond:
                self.ticks.append(int(msg.clock.sec) * NS + int(msg.clock.nanosec))
                self.cond.notify_all()

        def _on_cloud(self, msg) -> None:
            with self.cond:
                self.clouds[int(msg.header.stamp.sec) * NS + int(msg.header.stamp.nanosec)] = msg
                self.cond.notify_all()

        def _sweep_due(self, tick: int) -> int | None:
            """Start (ns) of the sweep that began in (previous tick, tick], if any (first tick: exactly at it)."""
            start = self.rate.start_ns(self.rate.last_index_at(tick))
            if self.prev_tick is None or tick < self.prev_tick:
                return start if start == tick else None
            return start if start > self.prev_tick else None

        def _steer_from(self, msg) -> None:
            points = cloud_points(msg)
            points[:, 0] += self.p["sensor_x"]
            points[:, 2] += self.p["sensor_height"]
            curb = fit_right_curb(points)
            if curb is None:
                self.get_logger().warning("no curb found in this sweep: holding the last command")
                return
            lookahead = max(self.p["lookahead_min"], self.p["lookahead_time"] * self.p["speed"])
            kappa = pure_pursuit_curvature(curb, self.p["lane_offset"], lookahead)
            self.curvature = max(-self.p["max_curvature"], min(self.p["max_curvature"], kappa))

        def _run(self) -> None:
            while True:
                with self.cond:
                    while not self.stop and not self.ticks:
                        self.cond.wait(0.2)
                    if self.stop:
                        return
                    tick = self.ticks.popleft()
                    due = self._sweep_due(tick)
                    if due is not None:
                        ok = self.cond.wait_for(lambda d=due: self.stop or d in self.clouds, self.p["cloud_wait"])
                        msg = self.clouds.pop(due, None) if ok else None
                        self.clouds = {k: v for k, v in self.clouds.items() if k > tick}
                    self.prev_tick = tick
                if due is not None:
                    if msg is None:
                        self.get_logger().warning(f"sweep {due / NS:.3f} s did not arrive: holding the command")
                    else:
                        self._steer_from(msg)
                twist = self._twist()
                twist.linear.x = float(self.p["speed"])
                twist.angular.z = float(self.p["speed"] * self.curvature)
                self.cmd.publish(twist)  # exactly one command per tick, before answering it
                header = self._header(frame_id=self.get_fully_qualified_name())
                header.stamp.sec, header.stamp.nanosec = divmod(tick, NS)
                self.done.publish(header)

        def request_stop(self) -> None:
            with self.cond:
                self.stop = True
                self.cond.notify_all()

    return LaneKeeper


def main(argv: list[str] | None = None) -> int:
    """Run the planner until SIGINT / SIGTERM."""
    import os
    import signal

    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    import rclpy
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    rclpy.init(args=sys.argv if argv is None else argv)
    node = _node_class()()
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.request_stop()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
