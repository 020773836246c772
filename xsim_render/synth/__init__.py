"""Synthetic driving world with exact ground truth, its Gaussian twin, and drive logs as ROS 2 bags."""
