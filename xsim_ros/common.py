"""Shared plumbing of the xsim_ros nodes: message classes by type name, start-up errors, the console-script main."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")


class StartupError(RuntimeError):
    """A node cannot start (bad scene, rig, parameter or parameter file): one line, exit code 2."""


def message_class(msgtype: str) -> Any:
    """The rclpy message class of a type name such as 'sensor_msgs/msg/Image'."""
    package, kind, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{package}.{kind}"), name)
    except (ImportError, AttributeError):
        raise StartupError(f"message type {msgtype} is not installed (build the interface packages: make .venv, "
                           f"or source a ROS 2 workspace that has {package})") from None


def run_node(factory: Callable[..., Any], label: str, argv: list[str]) -> int:
    """rclpy.init with argv (--ros-args ...), build the node, spin until SIGINT / shutdown. Start-up problems are
    one line on stderr and exit code 2."""
    import rclpy
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

    try:
        rclpy.init(args=argv)
    except Exception as err:  # noqa: BLE001 - rcl reports bad arguments / parameter files with several types
        print(f"{label}: error: bad arguments or parameter file: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    node = None
    try:
        node = factory()
    except StartupError as err:
        print(f"{label}: error: {err}", file=sys.stderr)
        rclpy.try_shutdown()
        return 2
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
