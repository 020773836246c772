"""Sensor models: rig file, camera projection models, spinning-LiDAR model, and per-ray generation."""

from .rig import CameraSpec, LidarSpec, Rig, load_rig, rig_from_dict

__all__ = ["CameraSpec", "LidarSpec", "Rig", "load_rig", "rig_from_dict"]
