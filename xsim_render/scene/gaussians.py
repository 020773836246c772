"""The Gaussian scene: 3D Gaussians with two opacities, colour (+SH), features, intensity, actors, sky."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import torch
from torch import Tensor

from ..geometry import quaternion
from .actors import Actor
from .decoders import CameraDecoder, LidarDecoder
from .placement import Placement
from .sky import Sky

SH_C0 = 0.28209479177387814


@dataclass
class GaussianScene:
    """N Gaussians; static ones (actor_ids == -1) in the world frame, actor Gaussians in their actor's frame.

    means (N,3) metres; log_scales (N,3) natural log of the standard deviations along the local axes;
    quats (N,4) wxyz, unnormalised; opacity_camera / opacity_lidar (N,) logits (sigma = sigmoid);
    colors (N,3) base colour in [0,1] (= 0.5 + SH_C0 * f_dc); sh_rest (N,K,3) SH coefficients of degree
    1..3 (K = 3, 8 or 15) or None; features (N,F) or None; intensity (N,) LiDAR intensity in [0,1] or None;
    actor_ids (N,) int64. world_from_scene places the scene frame (static means, actor trajectories) in the
    world (map) frame, float64; None is the identity.
    """

    means: Tensor
    log_scales: Tensor
    quats: Tensor
    opacity_camera: Tensor
    opacity_lidar: Tensor
    colors: Tensor
    actor_ids: Tensor
    sh_rest: Tensor | None = None
    features: Tensor | None = None
    intensity: Tensor | None = None
    actors: dict[int, Actor] = field(default_factory=dict)
    sky: Sky | None = None
    camera_decoder: CameraDecoder | None = None
    lidar_decoder: LidarDecoder | None = None
    world_from_scene: Placement | None = None
    # rotations() of the current quats (the tensor itself and its version: an in-place edit or a new tensor
    # recomputes them); not an input, not compared, not copied by dataclasses.replace
    _rotations: tuple[Tensor, int, Tensor] | None = field(default=None, init=False, repr=False, compare=False)

    TENSOR_FIELDS = ("means", "log_scales", "quats", "opacity_camera", "opacity_lidar", "colors", "actor_ids",
                     "sh_rest", "features", "intensity")

    def __post_init__(self) -> None:
        n = self.means.shape[0]
        for name in self.TENSOR_FIELDS:
            value = getattr(self, name)
            if value is not None and value.shape[0] != n:
                raise ValueError(f"GaussianScene.{name}: {value.shape[0]} rows, expected {n} (one per Gaussian)")

    def __len__(self) -> int:
        return int(self.means.shape[0])

    @property
    def sh_degree(self) -> int:
        """Spherical-harmonics degree 0-3 of the colour."""
        if self.sh_rest is None:
            return 0
        return {3: 1, 8: 2, 15: 3}[int(self.sh_rest.shape[1])]

    def scales(self) -> Tensor:
        return self.log_scales.exp()

    def rotations(self) -> Tensor:
        """(N,3,3) rotations of the Gaussians' local axes into their own (world or actor) frame.

        Kept between calls while quats is unchanged (every render needs them; 200k take ~8 ms): do not modify the
        result in place. Where quats requires grad (training) they are recomputed, differentiable, every call.
        """
        q = self.quats
        if q.requires_grad and torch.is_grad_enabled():
            return quaternion.to_matrix(q)
        kept = self._rotations
        if kept is None or kept[0] is not q or kept[1] != q._version:
            kept = (q, q._version, quaternion.to_matrix(q.detach()))
            self._rotations = kept
        return kept[2]

    def sigma_camera(self) -> Tensor:
        return torch.sigmoid(self.opacity_camera)

    def sigma_lidar(self) -> Tensor:
        return torch.sigmoid(self.opacity_lidar)

    def to(self, dtype: torch.dtype) -> GaussianScene:
        """Copy with float tensors (Gaussians, sky, decoders) cast to dtype; ids stay int64."""
        changes = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Tensor) and value.is_floating_point():
                changes[f.name] = value.to(dtype)
        changes["actors"] = {k: a.to(dtype) for k, a in self.actors.items()}
        if self.sky is not None:
            changes["sky"] = self.sky.to(dtype)
        if self.camera_decoder is not None:
            changes["camera_decoder"] = self.camera_decoder.to(dtype)
        if self.lidar_decoder is not None:
            changes["lidar_decoder"] = self.lidar_decoder.to(dtype)
        return replace(self, **changes)

    def subset(self, index: Tensor) -> GaussianScene:
        """Scene with only the selected Gaussians (same actors, sky and decoders)."""
        changes = {n: getattr(self, n)[index] for n in self.TENSOR_FIELDS if getattr(self, n) is not None}
        return replace(self, **changes)

    @staticmethod
    def concatenate(scenes: list[GaussianScene]) -> GaussianScene:
        """Join scenes Gaussian-wise; actors are merged, sky and decoders taken from the first scene."""
        first = scenes[0]
        changes = {}
        for name in GaussianScene.TENSOR_FIELDS:
            values = [getattr(s, name) for s in scenes]
            if all(v is None for v in values):
                continue
            if any(v is None for v in values):
                raise ValueError(f"GaussianScene.concatenate: field {name} present in some scenes only")
            changes[name] = torch.cat(values, 0)
        actors = {}
        for s in scenes:
            actors.update(s.actors)
        changes["actors"] = actors
        return replace(first, **changes)
