"""Load and save scenes in either format, chosen from the path.

- A directory holding ``scene.yaml``, or the path of a ``scene.yaml`` file: the native format (scene/native.py),
  which keeps everything (Gaussians, actors and trajectories, sky, decoders).
- A ``*.ply`` path: a standard 3DGS PLY (scene/ply.py), Gaussians only.

Loaded scenes have float32 tensors (actor ids int64).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import InputError
from .gaussians import GaussianScene
from .native import INDEX_NAME, load_native, save_native
from .ply import load_ply, save_ply


def load_scene(path: str | Path) -> GaussianScene:
    """Read a scene from a native directory, its scene.yaml, or a .ply file; InputError for anything else."""
    path = Path(path)
    if path.is_dir() and (path / INDEX_NAME).is_file():
        scene = load_native(path)
    elif path.name == INDEX_NAME and path.is_file():
        scene = load_native(path.parent)
    elif path.suffix.lower() == ".ply" and not path.is_dir():
        scene = load_ply(path)
    else:
        raise InputError(f"{path}: not a scene (expected a .ply file or a directory with {INDEX_NAME})")
    return scene.to(torch.float32)


def save_scene(scene: GaussianScene, path: str | Path) -> None:
    """Write a scene: a path ending in .ply gets a PLY (Gaussians only), any other path a native directory.

    Both writes are atomic: on failure the previous content at `path` (if any) is left as it was.
    """
    path = Path(path)
    if path.suffix.lower() == ".ply":
        save_ply(scene, path)
    else:
        save_native(scene, path)
