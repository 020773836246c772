"""XSIM-ROS renderer: rolling-shutter cameras and spinning LiDARs from 3D Gaussian scenes.

Public API (`import xsim_render as xs`; submodules load on first use, so the import itself stays light):

    scene = xs.load_scene("scene_dir_or.ply"); rig = xs.load_rig("rig.yaml"); state = xs.load_state("STATE.yaml")
    out = xs.render_camera(scene, rig.sensor("front"), state.ego, t_start, state.actors, backend="auto")
    out = xs.render_lidar(scene, rig.sensor("top"), state.ego, t_start, state.actors, phase_modeling=True,
                          backend="auto")
    xs.available_backends()   # {"reference": None, "cpu": None or why not, "cuda": ...}

Backends: "reference" (pure PyTorch), "cpu" (C++/OpenMP kernels), "cuda", "auto" (the fastest usable); the
output dictionaries are the same for every backend.
"""

from __future__ import annotations

import importlib

_API = {
    "load_scene": ("xsim_render.scene.io", "load_scene"),
    "load_rig": ("xsim_render.sensors.rig", "load_rig"),
    "load_state": ("xsim_render.motion.state", "load_state"),
    "render_camera": ("xsim_render.render", "render_camera"),
    "render_lidar": ("xsim_render.render", "render_lidar"),
    "available_backends": ("xsim_render.backends", "available_backends"),
}

__all__ = list(_API)


def __getattr__(name: str):
    if name in _API:
        module, attr = _API[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'xsim_render' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
