"""Rotations (wxyz quaternions, SO(3) exp/log) shared by every stage."""

from . import quaternion, so3

__all__ = ["quaternion", "so3"]
