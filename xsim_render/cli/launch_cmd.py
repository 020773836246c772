"""`xsim launch FILE [name:=value ...] [--record BAG] [--duration S] [--foxglove [PORT]]`: run a launch XML file in
one process.

The pip-only stand-in for `ros2 launch` (which needs the `launch` packages of a ROS 2 distro): it reads the same
file and starts the xsim_ros nodes in this process (xsim_ros.launch_runner). rclpy is imported only when the
command runs, so xsim_render stays importable without ROS.
"""

from __future__ import annotations

import argparse
import os

from ..errors import InputError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("launch", help="run a launch XML file (sensor_sim, scenario_player) in one process",
                              description="Start the nodes of a ROS 2 launch XML file in one process, as "
                                          "`ros2 launch` would, optionally recording what they publish.")
    p.add_argument("file", help="launch XML file (e.g. launch/xsim_sim.launch.xml)")
    p.add_argument("arguments", nargs="*", metavar="name:=value", help="launch arguments")
    p.add_argument("--record", metavar="BAG", help="record every topic the nodes publish to this mcap bag "
                                                   "(directory, replaced atomically) and print a per-topic table")
    p.add_argument("--duration", type=float, metavar="S",
                   help="stop after S seconds of graph clock (sim time when /clock is published)")
    p.add_argument("--foxglove", type=int, nargs="?", const=8765, metavar="PORT",
                   help="serve the graph's topics live over the Foxglove WebSocket protocol on ws://localhost:PORT "
                        "(127.0.0.1 only; default port 8765, 0 = any free port); put it after the name:=value "
                        "arguments")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    from ..sim.launch_xml import parse_assignments

    overrides = parse_assignments(args.arguments)
    try:
        from xsim_ros.launch_runner import run as run_launch
    except ImportError as err:
        raise InputError(f"rclpy / xsim_ros are not importable ({err}); build the ROS environment: make .venv") \
            from None
    return run_launch(args.file, overrides, args.record, args.duration, foxglove=args.foxglove)
