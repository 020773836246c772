"""Standard 3DGS PLY files (INRIA layout) with this project's optional extensions.

One ``vertex`` element, one row per Gaussian, scalar properties:

- ``x y z``: mean (metres). ``nx ny nz``: ignored when read, written as zeros (the INRIA layout has them).
- ``f_dc_0..2``: SH DC term per channel; the colour is ``0.5 + 0.28209479177387814 * f_dc``
  (``GaussianScene.colors`` holds the colour, not the raw DC coefficient).
- ``f_rest_*`` (optional): 0, 9, 24 or 45 higher SH coefficients (degree 0-3), channel-major as INRIA stores
  them: property index ``channel * K + k`` with K = 3, 8 or 15 coefficients per channel;
  ``GaussianScene.sh_rest[:, k, channel]``.
- ``opacity``: camera opacity as a logit (sigma_c = sigmoid(opacity)).
- ``scale_0..2``: natural log of the standard deviations (metres) along the Gaussian's local axes.
- ``rot_0..3``: rotation quaternion w, x, y, z, not necessarily normalised.

Project extensions, all optional when read:

- ``opacity_lidar``: LiDAR opacity logit; when absent the camera opacity is used.
- ``actor_id``: integer (int32 when written), -1 = static Gaussian in the world frame; an actor's Gaussians
  are in that actor's frame. Absent = all static.
- ``intensity``: LiDAR intensity in [0, 1].
- ``feat_0..F-1``: a learned feature vector of F floats per Gaussian (``GaussianScene.features``).

Files written by common 3DGS trainers load: binary (either byte order) or ASCII, float or double (or integer)
properties, unknown extra properties ignored. Written files are binary little endian, float32 properties
(actor_id int32). A PLY cannot hold actor trajectories, the sky or the decoders: ``save_ply`` drops them and
``load_ply`` returns a scene without actors, sky or decoders (Gaussians with actor_id >= 0 then have no
trajectory and are not rendered).

The scene's placement in the world (``world_from_scene``) travels in a header comment,
``comment world_from_scene tx ty tz qw qx qy qz`` (metres, quaternion wxyz, float64 values written exactly);
other tools ignore comments, and a PLY without it is placed at the identity.

Every problem with a file read raises ``InputError`` with one line naming the file, the field and the value.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch
from plyfile import PlyData, PlyElement

from ..errors import InputError
from ..io_utils import atomic_write
from .gaussians import SH_C0, GaussianScene
from .placement import Placement, placement_from_dict

REQUIRED_FIELDS = ("x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity", "scale_0", "scale_1", "scale_2",
                   "rot_0", "rot_1", "rot_2", "rot_3")
F_REST_COUNTS = {0: 0, 9: 3, 24: 8, 45: 15}  # number of f_rest properties -> coefficients per channel K
_F_REST = re.compile(r"f_rest_(\d+)$")
_FEAT = re.compile(r"feat_(\d+)$")
PLACEMENT_COMMENT = "world_from_scene"


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _indexed_fields(names: tuple[str, ...], pattern: re.Pattern[str], prefix: str, path: Path) -> list[str]:
    """Names prefix_0..prefix_{n-1} in index order; a gap in the indices is an InputError."""
    indices = sorted(int(m.group(1)) for m in (pattern.match(n) for n in names) if m)
    for expected, found in enumerate(indices):
        if found != expected:
            raise InputError(f"{path}: field '{prefix}_{expected}': missing (found {prefix}_{found})")
    return [f"{prefix}_{i}" for i in indices]


def _column(vertex: np.ndarray, name: str, path: Path) -> np.ndarray:
    """One property as float64, checked to be numeric and finite."""
    column = vertex[name]
    if column.dtype.kind not in "fiu":
        raise InputError(f"{path}: field '{name}': type {column.dtype}, expected a scalar number")
    values = np.asarray(column, dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise InputError(f"{path}: field '{name}': value {values[bad[0]]} at vertex {bad[0]} "
                         f"({bad.size} non-finite value(s))")
    return values


def _columns(vertex: np.ndarray, names: list[str], path: Path) -> np.ndarray:
    """Several properties stacked as an (N, len(names)) float64 array."""
    if not names:
        return np.zeros((len(vertex), 0), dtype=np.float64)
    return np.stack([_column(vertex, n, path) for n in names], axis=1)


def _float32(values: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))


def _read_ply(path: Path) -> PlyData:
    """The parsed PLY with a vertex element; InputError when the file is missing, not a PLY or malformed."""
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    try:
        with open(path, "rb") as stream:
            magic = stream.read(4)
            if magic not in (b"ply\n", b"ply\r"):
                raise InputError(f"{path}: not a PLY file (starts with {magic!r}, expected b'ply\\n')")
            stream.seek(0)
            ply = PlyData.read(stream, mmap=False)
    except InputError:
        raise
    except Exception as err:  # plyfile raises several types (parse errors, numpy/struct errors) on bad data
        raise InputError(f"{path}: not a valid PLY file ({type(err).__name__}: {_one_line(err)})") from None
    if "vertex" not in ply:
        raise InputError(f"{path}: field 'vertex': missing (no vertex element)")
    return ply


def _read_placement(ply: PlyData, path: Path) -> Placement | None:
    """world_from_scene from a ``comment world_from_scene tx ty tz qw qx qy qz`` header line, if any."""
    lines = [c for c in ply.comments if c.split()[:1] == [PLACEMENT_COMMENT]]
    if not lines:
        return None
    where = f"{path}: comment '{PLACEMENT_COMMENT}'"
    if len(lines) > 1:
        raise InputError(f"{where}: given {len(lines)} times, expected once")
    parts = lines[0].split()[1:]
    try:
        values = [float(v) for v in parts]
    except ValueError:
        values = []
    if len(values) != 7:
        raise InputError(f"{where}: expected 7 numbers 'tx ty tz qw qx qy qz', got {' '.join(parts)!r}")
    return placement_from_dict({"translation": values[:3], "rotation_wxyz": values[3:]}, where)


def _placement_comment(placement: Placement) -> str:
    values = placement.translation.tolist() + placement.rotation_wxyz.tolist()
    return " ".join([PLACEMENT_COMMENT, *(repr(float(v)) for v in values)])


def load_ply(path: str | Path) -> GaussianScene:
    """Read a 3DGS PLY file into a GaussianScene (float32 tensors, actor_ids int64, no actors/sky/decoders).

    Raises InputError (one line: file, field, value) for a missing or non-PLY file, missing required
    properties, an f_rest count other than 0/9/24/45, non-finite values, bad actor ids or intensities.
    """
    path = Path(path)
    ply = _read_ply(path)
    vertex = ply["vertex"].data
    names = tuple(vertex.dtype.names or ())
    for name in REQUIRED_FIELDS:
        if name not in names:
            raise InputError(f"{path}: field '{name}': missing")

    rest_names = _indexed_fields(names, _F_REST, "f_rest", path)
    if len(rest_names) not in F_REST_COUNTS:
        raise InputError(f"{path}: field 'f_rest': {len(rest_names)} coefficients, expected 0, 9, 24 or 45")
    feat_names = _indexed_fields(names, _FEAT, "feat", path)

    n = len(vertex)
    means = _columns(vertex, ["x", "y", "z"], path)
    f_dc = _columns(vertex, ["f_dc_0", "f_dc_1", "f_dc_2"], path)
    opacity = _column(vertex, "opacity", path)
    log_scales = _columns(vertex, ["scale_0", "scale_1", "scale_2"], path)
    quats = _columns(vertex, ["rot_0", "rot_1", "rot_2", "rot_3"], path)
    zero = np.flatnonzero(~(np.abs(quats).sum(axis=1) > 0))
    if zero.size:
        raise InputError(f"{path}: field 'rot_0..3': zero quaternion at vertex {zero[0]}")

    sh_rest = None
    if rest_names:
        k = F_REST_COUNTS[len(rest_names)]
        # channel-major on disk: f_rest_{c*K + k} -> sh_rest[:, k, c]
        sh_rest = _float32(_columns(vertex, rest_names, path).reshape(n, 3, k).transpose(0, 2, 1))

    opacity_lidar = _column(vertex, "opacity_lidar", path) if "opacity_lidar" in names else opacity.copy()

    if "actor_id" in names:
        ids = _column(vertex, "actor_id", path)
        bad = np.flatnonzero((ids != np.round(ids)) | (ids < -1) | (ids > np.iinfo(np.int32).max))
        if bad.size:
            raise InputError(f"{path}: field 'actor_id': value {ids[bad[0]]} at vertex {bad[0]}, "
                             "expected an integer >= -1")
        actor_ids = torch.from_numpy(ids.astype(np.int64))
    else:
        actor_ids = torch.full((n,), -1, dtype=torch.int64)

    intensity = None
    if "intensity" in names:
        values = _column(vertex, "intensity", path)
        bad = np.flatnonzero((values < 0.0) | (values > 1.0))
        if bad.size:
            raise InputError(f"{path}: field 'intensity': value {values[bad[0]]} at vertex {bad[0]}, "
                             "expected a value in [0, 1]")
        intensity = _float32(values)

    features = _float32(_columns(vertex, feat_names, path)) if feat_names else None

    return GaussianScene(
        means=_float32(means),
        log_scales=_float32(log_scales),
        quats=_float32(quats),
        opacity_camera=_float32(opacity),
        opacity_lidar=_float32(opacity_lidar),
        colors=_float32(0.5 + SH_C0 * f_dc),
        actor_ids=actor_ids,
        sh_rest=sh_rest,
        features=features,
        intensity=intensity,
        world_from_scene=_read_placement(ply, path),
    )


def _array(tensor: torch.Tensor, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A scene tensor as float64 numpy, checked for shape and finiteness (ValueError: a bad scene, not a file)."""
    values = tensor.detach().to("cpu", torch.float64).numpy()
    if values.shape != shape:
        raise ValueError(f"save_ply: GaussianScene.{name} has shape {values.shape}, expected {shape}")
    if not np.isfinite(values).all():
        raise ValueError(f"save_ply: GaussianScene.{name} has non-finite values")
    return values


def _vertex_array(scene: GaussianScene) -> np.ndarray:
    """The scene's Gaussians as a structured array in the layout described in the module docstring."""
    n = len(scene)
    columns: list[tuple[str, np.ndarray]] = []

    def add(prefix_names: list[str], values: np.ndarray) -> None:
        values = values.reshape(n, len(prefix_names))
        columns.extend((name, values[:, i]) for i, name in enumerate(prefix_names))

    add(["x", "y", "z"], _array(scene.means, "means", (n, 3)))
    add(["nx", "ny", "nz"], np.zeros((n, 3)))
    colors = _array(scene.colors, "colors", (n, 3))
    add(["f_dc_0", "f_dc_1", "f_dc_2"], (colors - 0.5) / SH_C0)
    if scene.sh_rest is not None:
        k = int(scene.sh_rest.shape[1])
        if k not in (3, 8, 15):
            raise ValueError(f"save_ply: GaussianScene.sh_rest has {k} coefficients per channel, expected 3, 8 or 15")
        rest = _array(scene.sh_rest, "sh_rest", (n, k, 3)).transpose(0, 2, 1)  # channel-major
        add([f"f_rest_{i}" for i in range(3 * k)], rest.reshape(n, 3 * k))
    add(["opacity"], _array(scene.opacity_camera, "opacity_camera", (n,)))
    add(["scale_0", "scale_1", "scale_2"], _array(scene.log_scales, "log_scales", (n, 3)))
    add(["rot_0", "rot_1", "rot_2", "rot_3"], _array(scene.quats, "quats", (n, 4)))
    add(["opacity_lidar"], _array(scene.opacity_lidar, "opacity_lidar", (n,)))
    if scene.intensity is not None:
        add(["intensity"], _array(scene.intensity, "intensity", (n,)))
    if scene.features is not None:
        features = _array(scene.features, "features", (n, int(scene.features.shape[1])))
        add([f"feat_{i}" for i in range(features.shape[1])], features)

    ids = scene.actor_ids.detach().cpu().to(torch.int64).numpy().reshape(-1)
    if ids.shape != (n,) or (ids < -1).any() or (ids > np.iinfo(np.int32).max).any():
        raise ValueError("save_ply: GaussianScene.actor_ids must be (N,) integers in [-1, 2**31 - 1]")

    dtype = [(name, "<f4") for name, _ in columns] + [("actor_id", "<i4")]
    vertex = np.empty(n, dtype=dtype)
    for name, values in columns:
        vertex[name] = values.astype(np.float32)
    vertex["actor_id"] = ids.astype(np.int32)
    return vertex


def save_ply(scene: GaussianScene, path: str | Path) -> None:
    """Write the scene's Gaussians as a binary little-endian 3DGS PLY (float32, actor_id int32), atomically.

    Actor trajectories, the sky and the decoders are not written (a PLY cannot hold them): use the native
    format (scene/native.py) to keep them; the placement (world_from_scene) is kept in a header comment.
    Missing parent directories are created. Raises ValueError for a
    scene with non-finite values or malformed tensors; the target is then left untouched.
    """
    path = Path(path)
    vertex = _vertex_array(scene)
    comments = ["xsim-ros 3DGS scene (INRIA layout + opacity_lidar, actor_id, intensity, feat_*)"]
    if scene.world_from_scene is not None:
        comments.append(_placement_comment(scene.world_from_scene))
    ply = PlyData([PlyElement.describe(vertex, "vertex")], text=False, byte_order="<", comments=comments)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: ply.write(str(tmp)))
