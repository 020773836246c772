"""Wait for the first message of a sensor type on any topic of the local ROS 2 graph (a tiny `ros2 topic echo`).

    python scripts/ros_wait_for_message.py [--types sensor_msgs/msg/Image,sensor_msgs/msg/PointCloud2]
                                           [--timeout 60] [--topic NAME] [--odometry TOPIC [--odometry-rate HZ]]

Discovers topics whose type is one of --types (or only --topic), subscribes with reliable QoS, and exits 0
printing one line about the first message received (topic, type, frame_id, stamp, size), or 1 when none
arrived within --timeout seconds (wall clock). With --odometry it also publishes a stationary ego
(nav_msgs/Odometry: identity pose of base_link in map, zero twist, stamped now) on TOPIC at --odometry-rate Hz
(default 5), so that a sensor_sim node has a current ego state to render from. Used by `make check-colcon`;
works with the pip-only wheels (no ros2cli needed). Honours ROS_DOMAIN_ID; forces
ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"

DEFAULT_TYPES = "sensor_msgs/msg/Image,sensor_msgs/msg/PointCloud2"


def _msg_class(type_name: str) -> type:
    """The Python class of a ROS 2 message type given as 'pkg/msg/Name'."""
    pkg, kind, name = type_name.split("/")
    return getattr(importlib.import_module(f"{pkg}.{kind}"), name)


def _describe(topic: str, type_name: str, msg: object) -> str:
    """One line: topic, type, header frame/stamp and the payload size of an Image / PointCloud2."""
    header = getattr(msg, "header", None)
    frame = header.frame_id if header is not None else "-"
    stamp = f"{header.stamp.sec}.{header.stamp.nanosec:09d}" if header is not None else "-"
    size = ""
    if hasattr(msg, "width") and hasattr(msg, "height"):
        size = f" {msg.width}x{msg.height} data={len(msg.data)} B"
    return f"received {type_name} on {topic}: frame_id={frame} stamp={stamp}{size}"


def main(argv: list[str] | None = None) -> int:
    """Exit 0 once a message of one of the requested types arrived, 1 on timeout, 2 on bad arguments."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--types", default=DEFAULT_TYPES, help="comma-separated message types to accept")
    ap.add_argument("--topic", default=None, help="only this topic (absolute name)")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds to wait (wall clock)")
    ap.add_argument("--odometry", default=None, help="publish a stationary ego nav_msgs/Odometry on this topic")
    ap.add_argument("--odometry-rate", type=float, default=5.0, help="Hz of the published odometry")
    ap.add_argument("--world-frame", default="map", help="header.frame_id of the published odometry")
    ap.add_argument("--base-frame", default="base_link", help="child_frame_id of the published odometry")
    args = ap.parse_args(argv)
    types = [t.strip() for t in args.types.split(",") if t.strip()]
    try:
        classes = {t: _msg_class(t) for t in types}
    except (ValueError, ImportError, AttributeError) as exc:
        print(f"ros_wait_for_message: --types: cannot import message type ({exc})", file=sys.stderr)
        return 2

    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    rclpy.init()
    node = rclpy.create_node("xsim_wait_for_message")
    received: list[str] = []
    subscribed: dict[str, object] = {}
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
    if args.odometry:
        from nav_msgs.msg import Odometry

        odom_pub = node.create_publisher(Odometry, args.odometry, qos)

        def publish_odometry() -> None:
            msg = Odometry()
            msg.header.stamp = node.get_clock().now().to_msg()
            msg.header.frame_id = args.world_frame
            msg.child_frame_id = args.base_frame
            msg.pose.pose.orientation.w = 1.0
            odom_pub.publish(msg)

        node.create_timer(1.0 / max(args.odometry_rate, 0.1), publish_odometry)
    deadline = time.monotonic() + args.timeout
    try:
        while not received and time.monotonic() < deadline:
            for topic, topic_types in node.get_topic_names_and_types():
                if topic in subscribed or (args.topic and topic != args.topic):
                    continue
                for t in topic_types:
                    if t in classes:
                        subscribed[topic] = node.create_subscription(
                            classes[t], topic, lambda m, tp=topic, ty=t: received.append(_describe(tp, ty, m)), qos)
                        print(f"subscribed to {topic} [{t}]", flush=True)
                        break
            rclpy.spin_once(node, timeout_sec=0.2)
    finally:
        node.destroy_node()
        rclpy.shutdown()
    if received:
        print(received[0], flush=True)
        return 0
    seen = ", ".join(sorted(subscribed)) or "none"
    print(f"ros_wait_for_message: no {' / '.join(types)} message within {args.timeout:g} s "
          f"(ROS_DOMAIN_ID={os.environ.get('ROS_DOMAIN_ID', '0')}; matching topics seen: {seen})", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
