"""The native scene format: a directory holding everything a GaussianScene has.

Layout::

    scene.yaml                  # the index below
    gaussians.safetensors       # the Gaussians, one tensor per GaussianScene field
    sky.safetensors             # optional: tensor "environment" (H,W,3), equirectangular map (see scene/sky.py)
    camera_decoder.safetensors  # optional: CameraDecoder.state_dict()
    lidar_decoder.safetensors   # optional: LidarDecoder.state_dict()

scene.yaml::

    format: xsim-scene
    version: 1
    gaussians: gaussians.safetensors
    count: N
    sh_degree: 0..3
    feature_dim: F            # 0 without features
    actors:                   # may be empty
      - id: 3                 # the Gaussians' actor_id
        category: vehicle
        size: [4.5, 1.9, 1.6] # box size in metres, or null
        trajectory:
          times: [t0, t1, ...]                 # seconds, strictly increasing (absolute, e.g. ROS epoch; float64)
          positions: [[x, y, z], ...]          # metres, actor frame origin in the scene frame (float64)
          rotations_wxyz: [[w, x, y, z], ...]  # actor frame orientation in the scene frame
    sky: {color: [r, g, b]} | {environment: sky.safetensors} | null   # both keys may appear together
    world_from_scene:         # optional: the scene frame in the world (map) frame, float64; identity if absent
      translation: [x, y, z]
      rotation_wxyz: [w, x, y, z]
    decoders:                 # optional
      camera: {config: {...}, weights: camera_decoder.safetensors}
      lidar: {config: {...}, weights: lidar_decoder.safetensors}

gaussians.safetensors holds means (N,3) m, log_scales (N,3), quats (N,4) wxyz, opacity_camera (N,) logit,
opacity_lidar (N,) logit, colors (N,3), actor_ids (N,) int64 and, when present, sh_rest (N,K,3),
features (N,F) and intensity (N,); float tensors are stored as float32 (means in the scene frame: place a
map-scale scene with world_from_scene rather than storing map coordinates in float32). Trajectories and the
placement are YAML numbers, read as float64. Decoders are rebuilt with
``decoders.decoder_from_config(config)`` and their weights loaded strictly. Nothing is ever unpickled.

Writing is atomic (the directory is built beside the target and renamed onto it); reading validates
everything and raises ``InputError`` with one line naming the file, the field and the value.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from ..errors import InputError
from ..io_utils import atomic_directory
from .actors import Actor, Trajectory
from .decoders import CameraDecoder, LidarDecoder, decoder_from_config
from .gaussians import GaussianScene
from .placement import placement_from_dict
from .sky import Sky

FORMAT = "xsim-scene"
VERSION = 1
INDEX_NAME = "scene.yaml"
GAUSSIANS_NAME = "gaussians.safetensors"
SKY_NAME = "sky.safetensors"
DECODER_NAMES = {"camera": "camera_decoder.safetensors", "lidar": "lidar_decoder.safetensors"}
_DECODER_TYPES: dict[str, type[nn.Module]] = {"camera": CameraDecoder, "lidar": LidarDecoder}
_SH_K = {0: 0, 1: 3, 2: 8, 3: 15}


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


# ----------------------------------------------------------------------------------------------------- writing

def _stored(tensor: Tensor) -> Tensor:
    """A tensor as stored: CPU, contiguous, float32 for floating point, int64 for integers."""
    tensor = tensor.detach().cpu()
    tensor = tensor.to(torch.float32) if tensor.is_floating_point() else tensor.to(torch.int64)
    return tensor.contiguous().clone()


def _floats(tensor: Tensor) -> list:
    """A float tensor as nested Python float lists (exact for float32 values)."""
    return tensor.detach().cpu().to(torch.float64).tolist()


def _actor_entry(key: int, actor: Actor) -> dict[str, Any]:
    if int(key) != int(actor.id):
        raise ValueError(f"save_native: actors[{key}] has id {actor.id}; the dict key must equal the id")
    traj = actor.trajectory
    for name, value in (("times", traj.times), ("positions", traj.positions), ("rotations", traj.rotations)):
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"save_native: actor {actor.id} trajectory {name} has non-finite values")
    return {
        "id": int(actor.id),
        "category": str(actor.category),
        "size": None if actor.size is None else _floats(actor.size.reshape(3)),
        "trajectory": {"times": _floats(traj.times.reshape(-1)), "positions": _floats(traj.positions),
                       "rotations_wxyz": _floats(traj.rotations)},
    }


def save_native(scene: GaussianScene, directory: str | Path) -> None:
    """Write the scene as a native scene directory, atomically (an existing directory is replaced whole).

    Raises ValueError for an inconsistent scene (non-finite values, actor key != id); nothing is written then.
    """
    directory = Path(directory)
    gaussians: dict[str, Tensor] = {}
    for name in GaussianScene.TENSOR_FIELDS:
        value = getattr(scene, name)
        if value is None:
            continue
        value = _stored(value)
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ValueError(f"save_native: GaussianScene.{name} has non-finite values")
        gaussians[name] = value
    index: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "gaussians": GAUSSIANS_NAME,
        "count": len(scene),
        "sh_degree": scene.sh_degree,
        "feature_dim": 0 if scene.features is None else int(scene.features.shape[1]),
        "actors": [_actor_entry(k, a) for k, a in sorted(scene.actors.items())],
        "sky": None,
    }
    if scene.world_from_scene is not None:
        index["world_from_scene"] = scene.world_from_scene.to_dict()
    if scene.sky is not None:
        sky: dict[str, Any] = {}
        if scene.sky.color is not None:
            sky["color"] = _floats(scene.sky.color.reshape(3))
        if scene.sky.environment is not None:
            sky["environment"] = SKY_NAME
        index["sky"] = sky
    decoders = {"camera": scene.camera_decoder, "lidar": scene.lidar_decoder}
    if any(d is not None for d in decoders.values()):
        index["decoders"] = {kind: {"config": dict(d.config), "weights": DECODER_NAMES[kind]}
                             for kind, d in decoders.items() if d is not None}

    directory.parent.mkdir(parents=True, exist_ok=True)
    with atomic_directory(directory) as tmp:
        save_file(gaussians, str(tmp / GAUSSIANS_NAME), metadata={"format": FORMAT, "version": str(VERSION)})
        if scene.sky is not None and scene.sky.environment is not None:
            save_file({"environment": _stored(scene.sky.environment)}, str(tmp / SKY_NAME))
        for kind, decoder in decoders.items():
            if decoder is not None:
                state = {k: _stored(v) for k, v in decoder.state_dict().items()}
                save_file(state, str(tmp / DECODER_NAMES[kind]))
        (tmp / INDEX_NAME).write_text(yaml.safe_dump(index, sort_keys=False, default_flow_style=None))


# ----------------------------------------------------------------------------------------------------- reading

class _Index:
    """scene.yaml being read: typed field access raising InputError with the file and field named."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / INDEX_NAME
        if not self.path.is_file():
            raise InputError(f"{self.path}: file not found (a native scene directory needs {INDEX_NAME})")
        try:
            data = yaml.safe_load(self.path.read_text())
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            raise InputError(f"{self.path}: not valid YAML ({_one_line(err)})") from None
        if not isinstance(data, dict):
            raise InputError(f"{self.path}: field '<root>': {type(data).__name__}, expected a mapping")
        self.data = data

    def error(self, field: str, problem: str) -> InputError:
        return InputError(f"{self.path}: field '{field}': {problem}")

    def integer(self, value: Any, field: str, minimum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(field, f"{value!r}, expected an integer")
        if minimum is not None and value < minimum:
            raise self.error(field, f"{value!r}, expected an integer >= {minimum}")
        return value

    def floats(self, value: Any, field: str, shape: tuple[int | None, ...], dtype: torch.dtype = torch.float32
               ) -> Tensor:
        """A nested list of finite numbers with the given shape (None = any length) as a `dtype` tensor."""
        try:
            tensor = torch.tensor(value, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            raise self.error(field, f"{_one_line(value)[:80]}, expected numbers of shape {shape}") from None
        if tensor.dim() != len(shape) or any(s is not None and s != t for s, t in zip(shape, tensor.shape)):
            raise self.error(field, f"shape {tuple(tensor.shape)}, expected {shape}")
        if not bool(torch.isfinite(tensor).all()):
            raise self.error(field, "non-finite value")
        return tensor.to(dtype)

    def file(self, value: Any, field: str) -> Path:
        """A file named by the index: a plain relative path inside the directory that exists."""
        if not isinstance(value, str) or not value:
            raise self.error(field, f"{value!r}, expected a file name")
        relative = PurePosixPath(value)
        if relative.is_absolute() or ".." in relative.parts:
            raise self.error(field, f"{value!r}, expected a file inside the scene directory")
        path = self.directory / relative
        if not path.is_file():
            raise self.error(field, f"{value!r}: file not found")
        return path


def _load_tensors(path: Path) -> dict[str, Tensor]:
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise InputError(f"{path}: not a valid safetensors file ({_one_line(err)})") from None


def _check(path: Path, name: str, tensor: Tensor | None, shape: tuple[int, ...], floating: bool = True) -> Tensor:
    """A stored tensor with the expected shape, float32 (finite) or int64."""
    if tensor is None:
        raise InputError(f"{path}: field '{name}': missing")
    if tuple(tensor.shape) != shape:
        raise InputError(f"{path}: field '{name}': shape {tuple(tensor.shape)}, expected {shape}")
    if floating:
        if not tensor.is_floating_point():
            raise InputError(f"{path}: field '{name}': dtype {tensor.dtype}, expected floating point")
        tensor = tensor.to(torch.float32)
        bad = torch.nonzero(~torch.isfinite(tensor))
        if bad.numel():
            index = tuple(int(i) for i in bad[0])
            raise InputError(f"{path}: field '{name}': value {float(tensor[index])} at index {index}")
        return tensor
    if tensor.is_floating_point() or tensor.dtype == torch.bool:
        raise InputError(f"{path}: field '{name}': dtype {tensor.dtype}, expected integer")
    return tensor.to(torch.int64)


def _load_gaussians(index: _Index) -> dict[str, Tensor | None]:
    data = index.data
    path = index.file(data.get("gaussians"), "gaussians")
    n = index.integer(data.get("count"), "count", minimum=0)
    sh_degree = index.integer(data.get("sh_degree", None), "sh_degree", 0) if "sh_degree" in data else None
    if sh_degree is not None and sh_degree not in _SH_K:
        raise index.error("sh_degree", f"{sh_degree}, expected 0, 1, 2 or 3")
    feature_dim = index.integer(data.get("feature_dim"), "feature_dim", 0) if "feature_dim" in data else None

    tensors = _load_tensors(path)
    out: dict[str, Tensor | None] = {
        "means": _check(path, "means", tensors.get("means"), (n, 3)),
        "log_scales": _check(path, "log_scales", tensors.get("log_scales"), (n, 3)),
        "quats": _check(path, "quats", tensors.get("quats"), (n, 4)),
        "opacity_camera": _check(path, "opacity_camera", tensors.get("opacity_camera"), (n,)),
        "opacity_lidar": _check(path, "opacity_lidar", tensors.get("opacity_lidar"), (n,)),
        "colors": _check(path, "colors", tensors.get("colors"), (n, 3)),
        "actor_ids": _check(path, "actor_ids", tensors.get("actor_ids"), (n,), floating=False),
    }
    ids = out["actor_ids"]
    if ids.numel() and int(ids.min()) < -1:
        raise InputError(f"{path}: field 'actor_ids': value {int(ids.min())}, expected integers >= -1")

    k = _SH_K[sh_degree] if sh_degree is not None else None
    sh_rest = tensors.get("sh_rest")
    if sh_rest is None and k:
        raise InputError(f"{path}: field 'sh_rest': missing (sh_degree is {sh_degree})")
    if sh_rest is not None:
        if k is None:
            k = int(sh_rest.shape[1]) if sh_rest.dim() == 3 and int(sh_rest.shape[1]) in (3, 8, 15) else 15
        if k == 0:
            raise InputError(f"{path}: field 'sh_rest': present but sh_degree is 0")
        out["sh_rest"] = _check(path, "sh_rest", sh_rest, (n, k, 3))

    features = tensors.get("features")
    if features is None and feature_dim:
        raise InputError(f"{path}: field 'features': missing (feature_dim is {feature_dim})")
    if features is not None:
        f = feature_dim if feature_dim is not None else (int(features.shape[1]) if features.dim() == 2 else 0)
        if f == 0:
            raise InputError(f"{path}: field 'features': shape {tuple(features.shape)}, but feature_dim is 0")
        out["features"] = _check(path, "features", features, (n, f))

    if "intensity" in tensors:
        intensity = _check(path, "intensity", tensors["intensity"], (n,))
        if intensity.numel() and (float(intensity.min()) < 0.0 or float(intensity.max()) > 1.0):
            bad = float(intensity.min()) if float(intensity.min()) < 0.0 else float(intensity.max())
            raise InputError(f"{path}: field 'intensity': value {bad}, expected values in [0, 1]")
        out["intensity"] = intensity
    return out


def _load_actors(index: _Index) -> dict[int, Actor]:
    entries = index.data.get("actors")
    if entries is None:
        return {}
    if not isinstance(entries, list):
        raise index.error("actors", f"{type(entries).__name__}, expected a list")
    actors: dict[int, Actor] = {}
    for i, entry in enumerate(entries):
        where = f"actors[{i}]"
        if not isinstance(entry, dict):
            raise index.error(where, f"{type(entry).__name__}, expected a mapping")
        actor_id = index.integer(entry.get("id"), f"{where}.id", minimum=0)
        if actor_id in actors:
            raise index.error(f"{where}.id", f"{actor_id}: duplicate actor id")
        category = entry.get("category", "vehicle")
        if not isinstance(category, str):
            raise index.error(f"{where}.category", f"{category!r}, expected a string")
        size = entry.get("size")
        size_t = None if size is None else index.floats(size, f"{where}.size", (3,))
        traj = entry.get("trajectory")
        if not isinstance(traj, dict):
            raise index.error(f"{where}.trajectory", f"{traj!r}, expected a mapping")
        f64 = torch.float64  # absolute times and map-scale positions need float64
        times = index.floats(traj.get("times"), f"{where}.trajectory.times", (None,), f64)
        k = int(times.shape[0])
        positions = index.floats(traj.get("positions"), f"{where}.trajectory.positions", (k, 3), f64)
        rotations = index.floats(traj.get("rotations_wxyz"), f"{where}.trajectory.rotations_wxyz", (k, 4), f64)
        if k and not bool((rotations.norm(dim=1) > 0).all()):
            raise index.error(f"{where}.trajectory.rotations_wxyz", "zero quaternion")
        try:
            trajectory = Trajectory(times, positions, rotations)
        except ValueError as err:
            raise index.error(f"{where}.trajectory", _one_line(err)) from None
        actors[actor_id] = Actor(actor_id, trajectory, category, size_t)
    return actors


def _load_sky(index: _Index) -> Sky | None:
    sky = index.data.get("sky")
    if sky is None:
        return None
    if not isinstance(sky, dict) or not ({"color", "environment"} & set(sky)):
        raise index.error("sky", f"{_one_line(sky)[:80]}, expected {{color: [r, g, b]}} or {{environment: file}}")
    color = index.floats(sky["color"], "sky.color", (3,)) if sky.get("color") is not None else None
    environment = None
    if sky.get("environment") is not None:
        path = index.file(sky["environment"], "sky.environment")
        env = _load_tensors(path).get("environment")
        if env is None or env.dim() != 3 or env.shape[2] != 3 or env.shape[0] < 1 or env.shape[1] < 1:
            shape = None if env is None else tuple(env.shape)
            raise InputError(f"{path}: field 'environment': shape {shape}, expected (H, W, 3)")
        environment = _check(path, "environment", env, tuple(env.shape))
    return Sky(color=color, environment=environment)


def _load_decoder(index: _Index, kind: str, entry: Any, feature_dim: int) -> nn.Module:
    where = f"decoders.{kind}"
    if not isinstance(entry, dict):
        raise index.error(where, f"{_one_line(entry)[:80]}, expected {{config: ..., weights: file}}")
    config = entry.get("config")
    if not isinstance(config, dict):
        raise index.error(f"{where}.config", f"{config!r}, expected a mapping")
    try:
        decoder = decoder_from_config(config)
    except (ValueError, TypeError) as err:
        raise index.error(f"{where}.config", _one_line(err)) from None
    if not isinstance(decoder, _DECODER_TYPES[kind]):
        raise index.error(f"{where}.config", f"type {config.get('type')!r} is not a {kind} decoder")
    if config.get("feature_dim") != feature_dim:
        raise index.error(f"{where}.config.feature_dim",
                          f"{config.get('feature_dim')!r}, expected {feature_dim} (the Gaussians' feature size)")
    path = index.file(entry.get("weights"), f"{where}.weights")
    state = _load_tensors(path)
    expected = decoder.state_dict()
    for name, value in expected.items():
        if name not in state:
            raise InputError(f"{path}: field '{name}': missing")
        if tuple(state[name].shape) != tuple(value.shape):
            raise InputError(f"{path}: field '{name}': shape {tuple(state[name].shape)}, expected {tuple(value.shape)}")
        if not bool(torch.isfinite(state[name]).all()):
            raise InputError(f"{path}: field '{name}': non-finite value")
    extra = sorted(set(state) - set(expected))
    if extra:
        raise InputError(f"{path}: field '{extra[0]}': unexpected tensor for a {config.get('type')} decoder")
    decoder.load_state_dict({k: v.to(torch.float32) for k, v in state.items()}, strict=True)
    return decoder.to(torch.float32).eval()


def load_native(directory: str | Path) -> GaussianScene:
    """Read a native scene directory (or its scene.yaml) into a GaussianScene with float32 tensors.

    Raises InputError (one line: file, field, value) for an unknown format or version, missing files,
    malformed entries, tensor shapes that do not match `count`, non-finite values, or decoder weights that
    do not fit their config.
    """
    directory = Path(directory)
    if directory.name == INDEX_NAME and directory.is_file():
        directory = directory.parent
    index = _Index(directory)
    fmt = index.data.get("format")
    if fmt != FORMAT:
        raise index.error("format", f"{fmt!r}, expected {FORMAT!r}")
    version = index.data.get("version")
    if version != VERSION or isinstance(version, bool):
        raise index.error("version", f"{version!r}, expected {VERSION} (this reader knows version {VERSION} only)")

    gaussians = _load_gaussians(index)
    features = gaussians.get("features")
    feature_dim = 0 if features is None else int(features.shape[1])
    actors = _load_actors(index)
    sky = _load_sky(index)

    decoders: dict[str, nn.Module] = {}
    entries = index.data.get("decoders")
    if entries is not None:
        if not isinstance(entries, dict):
            raise index.error("decoders", f"{type(entries).__name__}, expected a mapping")
        unknown = sorted(set(entries) - set(_DECODER_TYPES))
        if unknown:
            raise index.error(f"decoders.{unknown[0]}", "unknown decoder (expected camera or lidar)")
        for kind, entry in entries.items():
            if entry is not None:
                decoders[kind] = _load_decoder(index, kind, entry, feature_dim)

    placement = index.data.get("world_from_scene")
    if placement is not None:
        placement = placement_from_dict(placement, f"{index.path}: field 'world_from_scene'")
    return GaussianScene(**gaussians, actors=actors, sky=sky,  # type: ignore[arg-type]
                         camera_decoder=decoders.get("camera"), lidar_decoder=decoders.get("lidar"),
                         world_from_scene=placement)
