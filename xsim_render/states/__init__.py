"""Ego and actor states from ROS messages, kept as a time-indexed history (no ROS install needed).

sample.py    BodySample: one validated pose + world-frame twist at an integer-ns stamp (from Pose/Twist values)
messages.py  nav_msgs/Odometry and xsim_msgs/ActorStateArray (rclpy or rosbags objects) -> samples, with the
             frame, id and value checks the sensor_sim node and the replay tool report
history.py   StateHistory: interpolation (slerp / lerp) between samples, constant-velocity extrapolation up to a
             maximum age, refusal beyond it, out-of-order / duplicate / clock-jump handling
"""

from .history import EGO, Frame, HistoryConfig, Query, StateHistory
from .sample import BodySample, SampleError

__all__ = ["EGO", "BodySample", "Frame", "HistoryConfig", "Query", "SampleError", "StateHistory"]
