"""Console-script entry points of the nodes (`sensor_sim`, `scenario_player`, `ego_model`; setup.py
console_scripts).

They make SIGINT / SIGTERM stop the process (common.stop_on_signals) before importing the node module, whose imports
(torch, rclpy, the renderer) take seconds, during which a node started in the background by a shell would otherwise
ignore SIGINT; then they run the node's main.
"""

from __future__ import annotations

from .common import stop_on_signals


def sensor_sim() -> int:
    """`sensor_sim` executable: xsim_ros.sensor_sim.main (exit code 130 when interrupted while importing)."""
    stop_on_signals()
    try:
        from .sensor_sim import main
    except KeyboardInterrupt:
        return 130
    return main()


def scenario_player() -> int:
    """`scenario_player` executable: xsim_ros.scenario_player.main (exit code 130 when interrupted while importing)."""
    stop_on_signals()
    try:
        from .scenario_player import main
    except KeyboardInterrupt:
        return 130
    return main()


def ego_model() -> int:
    """`ego_model` executable: xsim_ros.ego_model.main (exit code 130 when interrupted while importing)."""
    stop_on_signals()
    try:
        from .ego_model import main
    except KeyboardInterrupt:
        return 130
    return main()
