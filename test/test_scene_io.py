"""Scene file formats: 3DGS PLY (INRIA layout + extensions), the native directory, and the dispatcher."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from plyfile import PlyData, PlyElement

from xsim_render.errors import InputError
from xsim_render.scene import Actor, GaussianScene, Sky, Trajectory
from xsim_render.scene import native as native_module
from xsim_render.scene import ply as ply_module
from xsim_render.scene.decoders import CameraDecoder, LidarDecoder
from xsim_render.scene.io import load_scene, save_scene
from xsim_render.scene.native import load_native, save_native
from xsim_render.scene.ply import load_ply, save_ply

C0 = 0.28209479177387814


def random_scene(n: int = 50, sh_k: int | None = 15, feature_dim: int = 4, seed: int = 0) -> GaussianScene:
    g = torch.Generator().manual_seed(seed)
    return GaussianScene(
        means=torch.randn(n, 3, generator=g) * 10,
        log_scales=torch.randn(n, 3, generator=g) - 2,
        quats=torch.randn(n, 4, generator=g),
        opacity_camera=torch.randn(n, generator=g) * 3,
        opacity_lidar=torch.randn(n, generator=g) * 3,
        colors=torch.rand(n, 3, generator=g),
        actor_ids=torch.randint(-1, 3, (n,), generator=g),
        sh_rest=None if sh_k is None else torch.randn(n, sh_k, 3, generator=g) * 0.2,
        features=torch.randn(n, feature_dim, generator=g) if feature_dim else None,
        intensity=torch.rand(n, generator=g),
    )


def assert_same_gaussians(a: GaussianScene, b: GaussianScene) -> None:
    assert len(a) == len(b)
    for name in GaussianScene.TENSOR_FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is None:
            continue
        assert x.shape == y.shape, name
        if name == "actor_ids":
            assert y.dtype == torch.int64
            assert torch.equal(x, y)
        else:
            assert y.dtype == torch.float32, name
            torch.testing.assert_close(y, x.to(torch.float32), rtol=1e-6, atol=1e-6, msg=name)


def write_trainer_ply(path: Path, n: int = 5, rest: int = 45, text: bool = False, dtype: str = "f4",
                      normals: bool = True, extra: bool = True, seed: int = 1, drop: tuple[str, ...] = (),
                      byte_order: str = "<") -> np.ndarray:
    """A PLY as the INRIA trainer writes it (plus an unknown property); returns the vertex array written."""
    rng = np.random.default_rng(seed)
    names = ["x", "y", "z"] + (["nx", "ny", "nz"] if normals else []) + [f"f_dc_{i}" for i in range(3)]
    names += [f"f_rest_{i}" for i in range(rest)] + ["opacity"] + [f"scale_{i}" for i in range(3)]
    names += [f"rot_{i}" for i in range(4)] + (["unknown_extra"] if extra else [])
    names = [n_ for n_ in names if n_ not in drop]
    vertex = np.empty(n, dtype=[(name, dtype) for name in names])
    for name in names:
        vertex[name] = rng.normal(size=n)
    if normals:
        for name in ("nx", "ny", "nz"):
            vertex[name] = 0.0
    PlyData([PlyElement.describe(vertex, "vertex")], text=text, byte_order=byte_order).write(str(path))
    return vertex


# ------------------------------------------------------------------------------------------------------ PLY

def test_ply_round_trip_every_field(tmp_path: Path) -> None:
    scene = random_scene()
    path = tmp_path / "scene.ply"
    save_ply(scene, path)
    loaded = load_ply(path)
    assert_same_gaussians(scene, loaded)
    assert loaded.sh_degree == 3
    assert loaded.actors == {} and loaded.sky is None and loaded.camera_decoder is None
    # binary little endian, float32 properties, actor_id int32, normals present (INRIA layout)
    ply = PlyData.read(str(path))
    assert not ply.text and ply.byte_order == "<"
    props = {p.name: p.val_dtype for p in ply["vertex"].properties}
    assert props["actor_id"] in ("i4", "int32")
    assert props["x"] in ("f4", "float32") and props["feat_3"] in ("f4", "float32")
    assert "nx" in props and "f_rest_44" in props and "f_rest_45" not in props
    # f_dc on disk is the SH DC coefficient, not the colour
    np.testing.assert_allclose(ply["vertex"]["f_dc_1"], (scene.colors[:, 1].numpy() - 0.5) / C0, rtol=1e-5, atol=1e-5)
    # channel-major f_rest: f_rest_{c*15 + k} = sh_rest[:, k, c]
    np.testing.assert_array_equal(ply["vertex"]["f_rest_22"], scene.sh_rest[:, 7, 1].numpy())


@pytest.mark.parametrize("sh_k", [None, 3, 8])
def test_ply_round_trip_lower_degrees_without_extras(tmp_path: Path, sh_k: int | None) -> None:
    scene = random_scene(n=7, sh_k=sh_k, feature_dim=0)
    scene.intensity = None
    save_ply(scene, tmp_path / "s.ply")
    loaded = load_ply(tmp_path / "s.ply")
    assert_same_gaussians(scene, loaded)
    assert loaded.sh_degree == {None: 0, 3: 1, 8: 2}[sh_k]


def test_ply_drops_actors_sky_decoders(tmp_path: Path) -> None:
    scene = random_scene(n=4)
    scene.actors = {1: Actor(1, Trajectory(torch.zeros(1), torch.zeros(1, 3), torch.tensor([[1.0, 0, 0, 0]])))}
    scene.sky = Sky(color=torch.tensor([0.1, 0.2, 0.3]))
    save_ply(scene, tmp_path / "s.ply")
    loaded = load_ply(tmp_path / "s.ply")
    assert loaded.actors == {} and loaded.sky is None
    assert torch.equal(loaded.actor_ids, scene.actor_ids)


@pytest.mark.parametrize("text,dtype,byte_order", [(False, "f4", "<"), (True, "f4", "="), (False, "f8", "<"),
                                                   (False, "f8", ">")])
def test_trainer_ply_loads(tmp_path: Path, text: bool, dtype: str, byte_order: str) -> None:
    path = tmp_path / "point_cloud.ply"
    vertex = write_trainer_ply(path, text=text, dtype=dtype, byte_order=byte_order)
    assert (path.read_bytes().splitlines()[1].startswith(b"format ascii")) == text
    scene = load_ply(path)
    assert len(scene) == 5
    for name in GaussianScene.TENSOR_FIELDS:
        value = getattr(scene, name)
        if value is not None:
            assert value.dtype == (torch.int64 if name == "actor_ids" else torch.float32), name
    expected_color = 0.5 + C0 * np.stack([vertex[f"f_dc_{i}"] for i in range(3)], 1).astype(np.float64)
    np.testing.assert_allclose(scene.colors.numpy(), expected_color, rtol=1e-6, atol=1e-6)
    assert scene.colors[2, 1].item() == pytest.approx(0.5 + C0 * float(vertex["f_dc_1"][2]), abs=1e-6)
    # channel-major: f_rest_{c*15 + k} -> sh_rest[:, k, c]; f_rest_20 is channel 1 (green), coefficient 5
    assert scene.sh_rest.shape == (5, 15, 3)
    assert scene.sh_rest[3, 5, 1].item() == pytest.approx(float(vertex["f_rest_20"][3]), abs=1e-6)
    assert scene.sh_rest[0, 0, 2].item() == pytest.approx(float(vertex["f_rest_30"][0]), abs=1e-6)
    assert scene.sh_rest[4, 14, 0].item() == pytest.approx(float(vertex["f_rest_14"][4]), abs=1e-6)
    np.testing.assert_allclose(scene.opacity_camera.numpy(), vertex["opacity"], rtol=1e-6, atol=1e-6)
    assert torch.equal(scene.opacity_lidar, scene.opacity_camera)
    assert scene.opacity_lidar.data_ptr() != scene.opacity_camera.data_ptr()
    assert torch.equal(scene.actor_ids, torch.full((5,), -1, dtype=torch.int64))
    np.testing.assert_allclose(scene.log_scales[:, 2].numpy(), vertex["scale_2"], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(scene.quats[:, 0].numpy(), vertex["rot_0"], rtol=1e-6, atol=1e-6)  # w first
    np.testing.assert_allclose(scene.means[:, 1].numpy(), vertex["y"], rtol=1e-6, atol=1e-6)
    assert scene.intensity is None and scene.features is None and scene.actors == {}


@pytest.mark.parametrize("rest", [0, 9, 24])
def test_trainer_ply_lower_degrees_no_normals(tmp_path: Path, rest: int) -> None:
    path = tmp_path / "p.ply"
    vertex = write_trainer_ply(path, rest=rest, normals=False, extra=False)
    scene = load_ply(path)
    if rest == 0:
        assert scene.sh_rest is None and scene.sh_degree == 0
    else:
        k = rest // 3
        assert scene.sh_rest.shape == (5, k, 3)
        # last coefficient of the blue channel is the last property
        assert scene.sh_rest[1, k - 1, 2].item() == pytest.approx(float(vertex[f"f_rest_{rest - 1}"][1]), abs=1e-6)
        assert scene.sh_rest[1, 1, 0].item() == pytest.approx(float(vertex["f_rest_1"][1]), abs=1e-6)


def _error(path: Path) -> str:
    with pytest.raises(InputError) as info:
        load_ply(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    return message


def test_ply_missing_required_field(tmp_path: Path) -> None:
    path = tmp_path / "scene.ply"
    write_trainer_ply(path, drop=("scale_1",))
    assert "field 'scale_1': missing" in _error(path)


def test_ply_bad_f_rest_count(tmp_path: Path) -> None:
    path = tmp_path / "scene.ply"
    write_trainer_ply(path, rest=10)
    message = _error(path)
    assert "field 'f_rest'" in message and "10 coefficients" in message and "0, 9, 24 or 45" in message


def test_ply_f_rest_gap(tmp_path: Path) -> None:
    path = tmp_path / "scene.ply"
    write_trainer_ply(path, rest=10, drop=("f_rest_4",))  # 9 properties but f_rest_4 missing
    assert "field 'f_rest_4': missing" in _error(path)


@pytest.mark.parametrize("field,index,value,needles", [
    ("x", 3, np.nan, ("field 'x'", "nan", "vertex 3")),
    ("scale_0", 0, np.inf, ("field 'scale_0'", "inf")),
])
def test_ply_non_finite_value(tmp_path: Path, field: str, index: int, value: float, needles: tuple[str, ...]) -> None:
    path = tmp_path / "scene.ply"
    vertex = write_trainer_ply(path)
    vertex[field][index] = value
    PlyData([PlyElement.describe(vertex, "vertex")]).write(str(path))
    message = _error(path)
    assert all(needle in message for needle in needles), message


def test_not_a_ply(tmp_path: Path) -> None:
    path = tmp_path / "scene.ply"
    path.write_text("hello world\n")
    assert "not a PLY" in _error(path)
    truncated = tmp_path / "trunc.ply"
    write_trainer_ply(truncated)
    truncated.write_bytes(truncated.read_bytes()[:-40])
    assert "not a valid PLY" in _error(truncated)
    assert "file not found" in _error(tmp_path / "missing.ply")


def test_ply_bad_extensions(tmp_path: Path) -> None:
    scene = random_scene(n=3)
    path = tmp_path / "s.ply"
    save_ply(scene, path)
    vertex = PlyData.read(str(path))["vertex"].data.copy()
    vertex["intensity"][1] = 1.5
    PlyData([PlyElement.describe(vertex, "vertex")]).write(str(path))
    message = _error(path)
    assert "field 'intensity'" in message and "1.5" in message
    vertex["intensity"][1] = 0.5
    vertex["actor_id"][2] = -7
    PlyData([PlyElement.describe(vertex, "vertex")]).write(str(path))
    message = _error(path)
    assert "field 'actor_id'" in message and "-7" in message


def test_failed_ply_save_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scene = random_scene(n=10)
    path = tmp_path / "scene.ply"

    def broken_write(self: PlyData, stream: str) -> None:
        Path(stream).write_bytes(b"ply\nformat binary_little_endian 1.0\n")  # partial content, then fail
        raise OSError("disk full")

    monkeypatch.setattr(ply_module.PlyData, "write", broken_write)
    with pytest.raises(OSError, match="disk full"):
        save_ply(scene, path)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()

    # an existing file stays intact when a later save fails
    save_ply(scene, path)
    before = path.read_bytes()
    bad = random_scene(n=10)
    bad.means[0, 0] = float("nan")
    with pytest.raises(ValueError, match="means"):
        save_ply(bad, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["scene.ply"]


# ---------------------------------------------------------------------------------------------------- native

def full_scene() -> GaussianScene:
    torch.manual_seed(3)
    scene = random_scene(n=40, sh_k=8, feature_dim=6, seed=5)
    scene.actors = {
        0: Actor(0, Trajectory(torch.tensor([0.0, 1.0, 2.5]),
                               torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.5, 0.0], [3.0, 1.0, 0.1]]),
                               torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.9, 0.0, 0.0, 0.1], [0.7, 0.0, 0.0, 0.3]])),
                 "vehicle", torch.tensor([4.5, 1.9, 1.6])),
        2: Actor(2, Trajectory(torch.tensor([0.25]), torch.tensor([[5.0, -2.0, 0.0]]),
                               torch.tensor([[0.5, 0.5, 0.5, 0.5]])), "pedestrian", None),
    }
    scene.sky = Sky(color=torch.tensor([0.4, 0.6, 0.9]), environment=torch.rand(8, 16, 3))
    scene.camera_decoder = CameraDecoder(6, hidden=8, layers=2)
    scene.lidar_decoder = LidarDecoder(6, hidden=16, layers=3)
    return scene


def test_native_round_trip(tmp_path: Path) -> None:
    scene = full_scene()
    directory = tmp_path / "my_scene"
    save_native(scene, directory)
    assert sorted(p.name for p in directory.iterdir()) == [
        "camera_decoder.safetensors", "gaussians.safetensors", "lidar_decoder.safetensors", "scene.yaml",
        "sky.safetensors"]
    index = yaml.safe_load((directory / "scene.yaml").read_text())
    assert index["format"] == "xsim-scene" and index["version"] == 1 and index["count"] == 40
    assert index["sh_degree"] == 2 and index["feature_dim"] == 6
    assert [a["id"] for a in index["actors"]] == [0, 2]
    assert index["decoders"]["camera"]["config"]["type"] == "camera_cnn"

    loaded = load_native(directory)
    assert_same_gaussians(scene, loaded)
    assert sorted(loaded.actors) == [0, 2]
    for key, actor in scene.actors.items():
        got = loaded.actors[key]
        assert got.id == actor.id and got.category == actor.category
        assert (got.size is None) == (actor.size is None)
        if actor.size is not None:
            assert torch.equal(got.size, actor.size)
        assert torch.equal(got.trajectory.times, actor.trajectory.times)
        assert torch.equal(got.trajectory.positions, actor.trajectory.positions)
        assert torch.equal(got.trajectory.rotations, actor.trajectory.rotations)
    motion = loaded.actors[0].trajectory.motion_at(1.5)
    expected = scene.actors[0].trajectory.motion_at(1.5)
    torch.testing.assert_close(motion.position, expected.position, rtol=0, atol=0)
    torch.testing.assert_close(motion.angular_velocity, expected.angular_velocity, rtol=0, atol=0)
    assert torch.equal(loaded.sky.color, scene.sky.color)
    assert torch.equal(loaded.sky.environment, scene.sky.environment)

    g = torch.Generator().manual_seed(9)
    feats, dirs, rgb = torch.randn(5, 7, 6, generator=g), torch.randn(5, 7, 3, generator=g), torch.rand(5, 7, 3)
    with torch.no_grad():
        torch.testing.assert_close(loaded.camera_decoder(feats, dirs, rgb), scene.camera_decoder(feats, dirs, rgb),
                                   rtol=0, atol=0)
        out_new = loaded.lidar_decoder(feats, dirs)
        out_old = scene.lidar_decoder(feats, dirs)
    assert isinstance(loaded.camera_decoder, CameraDecoder) and isinstance(loaded.lidar_decoder, LidarDecoder)
    assert loaded.lidar_decoder.config == scene.lidar_decoder.config
    torch.testing.assert_close(out_new[0], out_old[0], rtol=0, atol=0)
    torch.testing.assert_close(out_new[1], out_old[1], rtol=0, atol=0)
    # outputs are not trivially equal to an untrained decoder's
    fresh = LidarDecoder(6, hidden=16, layers=3)
    with torch.no_grad():
        assert not torch.allclose(fresh(feats, dirs)[1], out_old[1])


def test_native_minimal_and_sky_colour_only(tmp_path: Path) -> None:
    scene = random_scene(n=3, sh_k=None, feature_dim=0)
    scene.intensity = None
    scene.sky = Sky(color=torch.tensor([0.0, 0.5, 1.0]))
    save_native(scene, tmp_path / "s")
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["gaussians.safetensors", "scene.yaml"]
    loaded = load_native(tmp_path / "s" / "scene.yaml")
    assert_same_gaussians(scene, loaded)
    assert loaded.sky.environment is None and torch.equal(loaded.sky.color, scene.sky.color)
    assert loaded.actors == {} and loaded.camera_decoder is None and loaded.lidar_decoder is None
    # no sky at all
    scene.sky = None
    save_native(scene, tmp_path / "s")  # replaces the existing directory
    assert load_native(tmp_path / "s").sky is None


def _edit_index(directory: Path, **changes: object) -> None:
    index = yaml.safe_load((directory / "scene.yaml").read_text())
    index.update(changes)
    (directory / "scene.yaml").write_text(yaml.safe_dump(index))


def _native_error(directory: Path) -> str:
    with pytest.raises(InputError) as info:
        load_native(directory)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_native_bad_inputs(tmp_path: Path) -> None:
    scene = full_scene()
    d = tmp_path / "s"

    save_native(scene, d)
    _edit_index(d, version=2)
    message = _native_error(d)
    assert "scene.yaml" in message and "field 'version'" in message and "2" in message

    save_native(scene, d)
    _edit_index(d, format="other")
    assert "field 'format'" in _native_error(d) and "'other'" in _native_error(d)

    save_native(scene, d)
    _edit_index(d, count=41)
    message = _native_error(d)
    assert "gaussians.safetensors" in message and "field 'means'" in message and "(40, 3)" in message
    assert "(41, 3)" in message

    save_native(scene, d)
    (d / "sky.safetensors").unlink()
    message = _native_error(d)
    assert "field 'sky.environment'" in message and "sky.safetensors" in message and "not found" in message

    save_native(scene, d)
    (d / "gaussians.safetensors").write_bytes(b"garbage that is not safetensors")
    assert "gaussians.safetensors" in _native_error(d)

    save_native(scene, d)
    index = yaml.safe_load((d / "scene.yaml").read_text())
    index["actors"][0]["trajectory"]["times"] = [0.0, 2.0, 1.0]
    (d / "scene.yaml").write_text(yaml.safe_dump(index))
    message = _native_error(d)
    assert "field 'actors[0].trajectory'" in message and "increasing" in message

    save_native(scene, d)
    index = yaml.safe_load((d / "scene.yaml").read_text())
    index["decoders"]["lidar"]["config"]["hidden"] = 17
    (d / "scene.yaml").write_text(yaml.safe_dump(index))
    message = _native_error(d)
    assert "lidar_decoder.safetensors" in message and "shape" in message

    save_native(scene, d)
    _edit_index(d, gaussians="../outside.safetensors")
    assert "field 'gaussians'" in _native_error(d)

    (d / "scene.yaml").unlink()
    assert "scene.yaml" in _native_error(d)


def test_native_never_unpickles(tmp_path: Path) -> None:
    scene = random_scene(n=2)
    save_native(scene, tmp_path / "s")
    torch.save({"means": torch.zeros(2, 3)}, tmp_path / "s" / "gaussians.safetensors")  # a pickle in disguise
    assert "not a valid safetensors" in _native_error(tmp_path / "s")


def test_failed_native_save_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scene = full_scene()
    calls = []
    real_save = native_module.save_file

    def failing_save(tensors: dict, filename: str, metadata: dict | None = None) -> None:
        calls.append(filename)
        if len(calls) == 2:  # after gaussians.safetensors was written
            raise OSError("disk full")
        real_save(tensors, filename, metadata=metadata)

    monkeypatch.setattr(native_module, "save_file", failing_save)
    with pytest.raises(OSError, match="disk full"):
        save_native(scene, tmp_path / "s")
    assert list(tmp_path.iterdir()) == []

    # an existing scene survives a failed overwrite untouched
    monkeypatch.setattr(native_module, "save_file", real_save)
    save_native(scene, tmp_path / "s")
    before = {p.name: p.read_bytes() for p in (tmp_path / "s").iterdir()}
    calls.clear()
    monkeypatch.setattr(native_module, "save_file", failing_save)
    other = full_scene()
    other.means = other.means + 1.0
    with pytest.raises(OSError):
        save_native(other, tmp_path / "s")
    assert [p.name for p in tmp_path.iterdir()] == ["s"]
    assert {p.name: p.read_bytes() for p in (tmp_path / "s").iterdir()} == before


# ---------------------------------------------------------------------------------------------------- dispatch

def test_load_and_save_scene_dispatch(tmp_path: Path) -> None:
    scene = full_scene()
    save_scene(scene, tmp_path / "a.ply")
    save_scene(scene, tmp_path / "native")
    assert (tmp_path / "a.ply").is_file() and (tmp_path / "native" / "scene.yaml").is_file()

    from_ply = load_scene(tmp_path / "a.ply")
    assert_same_gaussians(scene, from_ply)
    assert from_ply.actors == {}
    from_dir = load_scene(tmp_path / "native")
    from_yaml = load_scene(str(tmp_path / "native" / "scene.yaml"))
    for loaded in (from_dir, from_yaml):
        assert_same_gaussians(scene, loaded)
        assert sorted(loaded.actors) == [0, 2] and loaded.lidar_decoder is not None

    # float64 scenes are saved and loaded back as float32
    save_scene(scene.to(torch.float64), tmp_path / "b.ply")
    assert load_scene(tmp_path / "b.ply").means.dtype == torch.float32

    for bad in (tmp_path / "x.txt", tmp_path / "empty_dir", tmp_path / "missing_dir"):
        if bad.name == "empty_dir":
            bad.mkdir()
        if bad.suffix == ".txt":
            bad.write_text("hi")
        with pytest.raises(InputError) as info:
            load_scene(bad)
        assert str(info.value) == f"{bad}: not a scene (expected a .ply file or a directory with scene.yaml)"
    with pytest.raises(InputError, match="file not found"):
        load_scene(tmp_path / "missing.ply")


def test_empty_scene_round_trips(tmp_path: Path) -> None:
    scene = random_scene(n=0)
    for target in (tmp_path / "empty.ply", tmp_path / "empty_native"):
        save_scene(scene, target)
        loaded = load_scene(target)
        assert len(loaded) == 0 and loaded.sh_rest.shape == (0, 15, 3) and loaded.features.shape == (0, 4)


def test_rotations_are_kept_until_the_quaternions_change():
    """GaussianScene.rotations() is computed once per quats tensor and version: an in-place edit, a new tensor or
    a dtype copy recomputes it; with quats requiring grad it stays differentiable."""
    from dataclasses import replace

    from xsim_render.geometry import quaternion

    s = random_scene(40, seed=3)
    first = s.rotations()
    assert s.rotations() is first
    torch.testing.assert_close(first, quaternion.to_matrix(s.quats), rtol=0, atol=0)
    s.quats[0] = torch.tensor([0.0, 1.0, 0.0, 0.0])
    edited = s.rotations()
    assert edited is not first and not torch.allclose(edited[0], first[0])
    torch.testing.assert_close(edited, quaternion.to_matrix(s.quats), rtol=0, atol=0)
    other = replace(s, quats=torch.randn(40, 4))
    torch.testing.assert_close(other.rotations(), quaternion.to_matrix(other.quats), rtol=0, atol=0)
    assert s.to(torch.float64).rotations().dtype == torch.float64
    trained = replace(s, quats=s.quats.clone().requires_grad_(True))
    trained.rotations().sum().backward()
    assert trained.quats.grad is not None
