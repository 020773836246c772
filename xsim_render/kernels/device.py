"""Device residency of a capture for the cuda backend: the scene's copy on the compute device (made once per
scene and cached while the scene lives and its tensors are unchanged), small host parameters uploaded without
waiting for the device, and the per-Gaussian view-dependent colours computed without host synchronisation.

The render API returns its outputs on the device of the scene it is given (render.py): a scene on the CPU is
rendered by the cuda backend from its cached device copy and the outputs are copied back once at the end; a
scene already on the GPU (`scene_to_device(scene, "cuda")`) gets its outputs on the GPU, where nothing but the
pair count of the tile lists is read back during the capture.
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Callable
from dataclasses import replace

import torch
from torch import Tensor

from ..raster.rasterize import GaussianFrames
from ..scene.gaussians import GaussianScene
from ..scene.sh import sh_color
from ..scene.sky import Sky

_MEMO: dict[tuple, tuple[weakref.ref, tuple, object]] = {}


def fingerprint(scene: GaussianScene) -> tuple:
    """What identifies a scene's content cheaply: every tensor's storage, version counter (bumped by in-place
    edits), shape and dtype, and the identity of its sky and decoders."""
    parts: list = []
    for name in GaussianScene.TENSOR_FIELDS:
        t = getattr(scene, name)
        parts.append(None if t is None else (t.data_ptr(), t._version, tuple(t.shape), t.dtype, t.device))
    parts += [id(scene.sky), id(scene.camera_decoder), id(scene.lidar_decoder)]
    return tuple(parts)


def _memo(kind: str, scene: GaussianScene, extra: object, make: Callable[[], object]) -> object:
    """make() cached per (kind, scene object, extra) while the scene lives and its fingerprint is unchanged."""
    key = (kind, id(scene), extra)
    fp = fingerprint(scene)
    hit = _MEMO.get(key)
    if hit is not None and hit[0]() is scene and hit[1] == fp:
        return hit[2]
    value = make()
    _MEMO[key] = (weakref.ref(scene, lambda _, k=key: _MEMO.pop(k, None)), fp, value)
    return value


def to_device(t: Tensor, device: torch.device) -> Tensor:
    """t on `device`; a host tensor is uploaded without waiting (the source is staged before this returns)."""
    return t if t.device == device else t.to(device, non_blocking=t.device.type == "cpu")


def scene_to_device(scene: GaussianScene, device: torch.device | str) -> GaussianScene:
    """A copy of the scene with its tensors, sky and decoders on `device` (actors, trajectories and placement,
    which are small and used on the host, stay where they are)."""
    device = torch.device(device)
    changes: dict[str, object] = {n: getattr(scene, n).to(device) for n in GaussianScene.TENSOR_FIELDS
                                  if getattr(scene, n) is not None}
    if scene.sky is not None:
        sky = scene.sky
        changes["sky"] = Sky(None if sky.color is None else sky.color.to(device),
                             None if sky.environment is None else sky.environment.to(device))
    for name in ("camera_decoder", "lidar_decoder"):
        module = getattr(scene, name)
        if module is not None:
            changes[name] = copy.deepcopy(module).to(device)
    return replace(scene, **changes)


def scene_on(scene: GaussianScene, device: torch.device) -> GaussianScene:
    """The scene on `device`: itself if already there, else its cached copy (made again if the scene changed;
    not cached when a tensor requires grad: a fresh, differentiable copy each time)."""
    if scene.means.device == device:
        return scene
    if any(getattr(scene, n) is not None and getattr(scene, n).requires_grad for n in GaussianScene.TENSOR_FIELDS):
        return scene_to_device(scene, device)
    return _memo("scene", scene, str(device), lambda: scene_to_device(scene, device))


def present_actor_ids(scene: GaussianScene) -> list[int]:
    """Sorted actor ids (>= 0) that own Gaussians in the scene (cached: reading them from a GPU scene waits for
    the device once per scene, not once per capture)."""
    return _memo("actor_ids", scene, None,
                 lambda: sorted(int(i) for i in torch.unique(scene.actor_ids).tolist() if i >= 0))


def gaussian_colors_gathered(scene: GaussianScene, gaussians: GaussianFrames, sensor_position: Tensor,
                             t_mid: float) -> Tensor:
    """raster.attributes.gaussian_colors without host synchronisation (no per-frame masks or boolean indexing):
    the viewing direction of every Gaussian from the sensor at t_mid (sensor_position: (3,) in the local frame,
    any device), in its own frame where its SH coefficients live, gathered per body frame."""
    if scene.sh_rest is None:
        return scene.colors.clamp_min(0.0)
    means, frame = gaussians.means, gaussians.frame
    dtype, device = means.dtype, means.device
    eye_pos = sensor_position.to(dtype).cpu()
    eyes, static = [], []
    for body in gaussians.bodies:
        if body is None:
            eyes.append(eye_pos)
            static.append(True)
        else:
            rot, pos = body.pose_at(torch.tensor(t_mid, dtype=dtype))
            eyes.append((eye_pos - pos) @ rot)
            static.append(False)
    eye = to_device(torch.stack(eyes).to(dtype), device)
    dirs = means - eye[frame]
    placement = scene.world_from_scene
    if placement is not None and placement.has_rotation:
        is_static = to_device(torch.tensor(static), device)[frame]
        rotated = dirs @ to_device(placement.rotation.to(dtype), device)
        dirs = torch.where(is_static[:, None], rotated, dirs)
    dirs = dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return sh_color(scene.colors, scene.sh_rest, dirs)


def cuda_device() -> torch.device:
    """The current CUDA device (the cuda backend's compute device); the CPU under XSIM_CUDA_SIMULATION=1."""
    from . import build

    if build.cuda_simulated():
        return torch.device("cpu")
    return torch.device("cuda", torch.cuda.current_device())


def cuda_stream(device: torch.device) -> int:
    """Handle of torch's current CUDA stream on `device`: every kernel of a capture is enqueued on it."""
    if device.type == "cpu":  # the host simulation (XSIM_CUDA_SIMULATION=1) ignores streams
        return 0
    return torch.cuda.current_stream(device).cuda_stream
