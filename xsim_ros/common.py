"""Shared plumbing of the xsim_ros nodes: message classes by type name, start-up errors, the console-script main."""

from __future__ import annotations

import importlib
import os
import signal
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


def stop_on_signals() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt in the main thread, whatever the parent left them as.

    A node started in the background by a non-interactive shell inherits SIGINT *ignored*, and SIGTERM's default
    kills without cleanup; ROS tools (ros2 launch, scripts) stop nodes with SIGINT, then SIGTERM. rclpy.init
    chains its own handlers (which shut the context down and wake the executor) to these, so a signal also stops
    a long start-up (scene loading, the first render) at once. Call it before the heavy imports."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def run_node(factory: Callable[..., Any], label: str, argv: list[str]) -> int:
    """rclpy.init with argv (--ros-args ...), build the node, spin until SIGINT / SIGTERM / shutdown, then stop it:
    a render in progress may finish, no new one starts. Start-up problems are one line on stderr and exit code 2;
    a signal during start-up exits at once with code 130."""
    import rclpy
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

    stop_on_signals()
    try:
        rclpy.init(args=argv)
    except KeyboardInterrupt:
        return 130
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
    except KeyboardInterrupt:
        print(f"{label}: interrupted during start-up", file=sys.stderr)
        rclpy.try_shutdown()
        return 130
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if hasattr(node, "request_stop"):
            node.request_stop()  # before anything waits: no new render starts from here on
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
