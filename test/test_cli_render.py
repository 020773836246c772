"""`xsim render` end to end: files in, OUT.npz with the documented keys out; bad input -> one line, exit 2."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from _scenes import camera_rig, lidar_rig, random_scene

from xsim_render.motion.state import load_state
from xsim_render.render import render_camera
from xsim_render.scene.io import load_scene, save_scene
from xsim_render.sensors.rig import Rig

CAMERA_KEYS = {"rgb": (30, 40, 3), "alpha": (30, 40), "distance": (30, 40), "distance_median": (30, 40),
               "ray_origin": (30, 40, 3), "ray_direction": (30, 40, 3), "ray_time": (30, 40)}
LIDAR_KEYS = {"range": (14, 128), "range_median": (14, 128), "alpha": (14, 128), "intensity": (14, 128),
              "ray_drop_probability": (14, 128), "ray_origin": (14, 128, 3), "ray_direction": (14, 128, 3),
              "ray_time": (14, 128)}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    scene = random_scene(60, seed=2, n_actor=10).to(torch.float32)
    save_scene(scene, d / "scene")
    save_scene(scene, d / "scene.ply")
    Rig([camera_rig("opencv"), lidar_rig(columns=128)]).save(d / "rig.yaml")
    state = {"time": 100.0, "ego": {"position": [0, 0, 0], "rotation_wxyz": [1, 0, 0, 0],
                                     "linear_velocity": [10, 0, 0], "angular_velocity": [0, 0, 0.2]},
             "actors": [{"id": 3, "position": [9, 0.5, 0.8], "rotation_wxyz": [1, 0, 0, 0],
                         "linear_velocity": [-3, 0, 0], "angular_velocity": [0, 0, 0]}]}
    (d / "state.yaml").write_text(yaml.safe_dump(state))
    return d


def xsim(*args):
    return subprocess.run([sys.executable, "-m", "xsim_render.cli.main", *map(str, args)], capture_output=True,
                          text=True, timeout=300)


def test_camera_npz_keys_and_values(files):
    out = files / "cam.npz"
    r = xsim("render", "--scene", files / "scene", "--rig", files / "rig.yaml", "--sensor", "cam", "--state",
             files / "state.yaml", "--time", 100.02, "--out", out, "--backend", "reference")
    assert r.returncode == 0, r.stderr
    data = np.load(out)
    assert {k: data[k].shape for k in data.files} == CAMERA_KEYS
    assert data["ray_time"].dtype == np.float64 and abs(data["ray_time"].min() - 100.02) < 0.01
    assert np.allclose(np.linalg.norm(data["ray_direction"], axis=-1), 1, atol=1e-5)
    # same as the API on the same inputs
    state = load_state(files / "state.yaml")
    api = render_camera(load_scene(files / "scene"), camera_rig("opencv"), state.ego, 100.02, state.actors)
    assert np.abs(api["rgb"].numpy() - data["rgb"]).max() < 1e-5
    assert data["alpha"].max() > 0.5
    nan = np.isnan(data["distance_median"])
    assert nan.any() and (~nan).any()


def test_lidar_npz_keys_and_points(files):
    out = files / "lidar.npz"
    r = xsim("render", "--scene", files / "scene.ply", "--rig", files / "rig.yaml", "--sensor", "top", "--state",
             files / "state.yaml", "--time", 100.0, "--out", out)
    assert r.returncode == 0, r.stderr
    data = np.load(out)
    for k, shape in LIDAR_KEYS.items():
        assert data[k].shape == shape
    m = data["points"].shape[0]
    assert m > 0 and data["points"].shape == (m, 3)
    for k in ("point_time", "point_beam", "point_column"):
        assert data[k].shape == (m,)
    r_pts = np.linalg.norm(data["points"], axis=1)
    assert np.allclose(r_pts, data["range_median"][data["point_beam"], data["point_column"]], rtol=1e-5)
    assert ((data["point_time"] >= 100.0) & (data["point_time"] < 100.1)).all()


@pytest.mark.parametrize("mutation, needle", [
    (("--scene", "missing.ply"), "missing.ply"),
    (("--sensor", "nope"), "nope"),
    (("--rig", "bad_rig.yaml"), "'fx'"),
    (("--state", "bad_state.yaml"), "'linear_velocity'"),
    (("--time", "nan"), "--time"),
])
def test_bad_input_one_line_exit_2(files, mutation, needle):
    (files / "bad_rig.yaml").write_text(yaml.safe_dump({"sensors": [{"name": "cam", "type": "camera", "width": 4,
                                                                      "height": 4, "fx": -1, "fy": 1, "cx": 2,
                                                                      "cy": 2}]}))
    (files / "bad_state.yaml").write_text(yaml.safe_dump({"ego": {"position": [0, 0, 0], "rotation_wxyz": [1, 0, 0, 0],
                                                                  "linear_velocity": [1, "x", 0]}}))
    args = {"--scene": files / "scene", "--rig": files / "rig.yaml", "--sensor": "cam",
            "--state": files / "state.yaml", "--time": "0", "--out": files / "bad.npz"}
    key, value = mutation
    args[key] = files / value if key in ("--scene", "--rig", "--state") else value
    r = xsim("render", *[x for kv in args.items() for x in kv])
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], r.stderr
    assert not (files / "bad.npz").exists()


# ---------------------------------------------------------------------------------------------------------------
# --out, tried as a new user would (in-process `xsim` main, tiny scene): OUT is checked before anything is
# rendered, the archive lands at exactly OUT, nothing else is left behind, modes follow the umask, every failure
# is one line and exit 2. Root ignores permission bits, so unwritable places are a path under a regular file,
# /sys (even root cannot create files there) and os.replace / write() made to fail (each test says which).

TINY_KEYS = {"rgb": (6, 8, 3), "alpha": (6, 8), "distance": (6, 8), "distance_median": (6, 8),
             "ray_origin": (6, 8, 3), "ray_direction": (6, 8, 3), "ray_time": (6, 8)}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny")
    save_scene(random_scene(20, seed=5).to(torch.float32), d / "scene")
    Rig([camera_rig("pinhole", width=8, height=6)]).save(d / "rig.yaml")
    (d / "state.yaml").write_text(yaml.safe_dump({"time": 0.0, "ego": {"position": [0, 0, 0],
                                                                        "rotation_wxyz": [1, 0, 0, 0]}}))
    return d


def xsim_in_process(tiny, out, capsys):
    """Run `xsim render` on the tiny inputs in this process; returns (exit code, stderr lines)."""
    from xsim_render.cli.main import main

    code = main(["render", "--scene", str(tiny / "scene"), "--rig", str(tiny / "rig.yaml"), "--sensor", "cam",
                 "--state", str(tiny / "state.yaml"), "--time", "0.5", "--out", str(out)])
    return code, capsys.readouterr().err.strip().splitlines()


def listing(directory):
    return sorted(p.name for p in directory.iterdir())


@pytest.fixture
def no_render(monkeypatch):
    """Any attempt to load or render fails the test: proves --out is refused before the work starts."""
    from xsim_render.cli import render_cmd

    def fail(*_args, **_kwargs):
        pytest.fail("rendered before --out was checked")

    monkeypatch.setattr(render_cmd, "render_to_arrays", fail)
    monkeypatch.setattr(render_cmd, "load_scene", fail)
    monkeypatch.setattr(render_cmd, "render_camera", fail)


@pytest.fixture
def quick_render(monkeypatch):
    """render_to_arrays replaced by fixed arrays (for failures after the render); returns the dict it gives."""
    from xsim_render.cli import render_cmd

    arrays = {"rgb": np.full((6, 8, 3), 0.5, np.float32), "ray_time": np.full((6, 8), 1.7e9 + 0.5)}
    monkeypatch.setattr(render_cmd, "render_to_arrays", lambda _args: arrays)
    return arrays


@pytest.mark.parametrize("name", ["x", "x.npy"])
def test_out_is_written_at_exactly_the_name_given(tiny, tmp_path, capsys, name):
    code, err = xsim_in_process(tiny, tmp_path / name, capsys)
    assert code == 0 and err == []
    assert listing(tmp_path) == [name]  # no 0-byte OUT + hidden '.x.*.npz' beside it
    data = np.load(tmp_path / name)
    assert {k: data[k].shape for k in data.files} == TINY_KEYS
    state = load_state(tiny / "state.yaml")
    api = render_camera(load_scene(tiny / "scene"), camera_rig("pinhole", width=8, height=6), state.ego, 0.5,
                        state.actors)
    assert np.abs(api["rgb"].numpy() - data["rgb"]).max() < 1e-6 and data["alpha"].max() > 0.1
    assert data["ray_time"].dtype == np.float64 and 0.5 <= data["ray_time"].min() < data["ray_time"].max() < 0.6
    assert data["ray_origin"].dtype == np.float64 and data["rgb"].dtype == np.float32  # world positions: float64


@pytest.mark.parametrize("case, needle", [
    ("existing_dir", "is a directory"),
    ("trailing_slash", "is a directory"),
    ("under_a_file", "is not a directory"),          # OUT=somefile/x.npz
    ("device", "exists and is not a regular file"),  # /dev/null
    ("sysfs", "/sys"),                               # a place where even root cannot create a file
])
def test_bad_out_is_refused_before_rendering(tiny, tmp_path, capsys, no_render, case, needle):
    (tmp_path / "adir").mkdir()
    (tmp_path / "somefile").write_text("")
    out = {"existing_dir": str(tmp_path / "adir"), "trailing_slash": str(tmp_path / "new") + "/",
           "under_a_file": str(tmp_path / "somefile" / "x.npz"), "device": "/dev/null",
           "sysfs": "/sys/xsim_render_test.npz"}[case]
    if case == "sysfs" and not os.path.isdir("/sys"):
        pytest.skip("no /sys on this machine")
    before = listing(tmp_path), listing(tiny)
    code, err = xsim_in_process(tiny, out, capsys)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"xsim render: error: --out {out}: ") and needle in err[0], err[0]
    assert (listing(tmp_path), listing(tiny)) == before
    assert not os.path.exists("/sys/xsim_render_test.npz")


def test_rename_refused_is_one_line_and_leaves_nothing(tiny, tmp_path, capsys, monkeypatch, quick_render):
    # os.replace patched to raise EACCES: simulates the directory turning unwritable between check and write.
    from xsim_render import io_utils

    def refuse(*_args):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(io_utils.os, "replace", refuse)
    code, err = xsim_in_process(tiny, tmp_path / "out.npz", capsys)
    assert (code, err) == (2, [f"xsim render: error: {tmp_path / 'out.npz'}: cannot write (Permission denied)"])
    assert listing(tmp_path) == []


def test_disk_full_while_writing_is_one_line_and_leaves_nothing(tiny, tmp_path, capsys, monkeypatch, quick_render):
    # The temporary file's write() raises ENOSPC after 100 bytes: simulates a full disk mid-archive.
    from xsim_render import io_utils

    real_fdopen = io_utils.os.fdopen

    class FullDisk:
        def __init__(self, f):
            self.f, self.written = f, 0

        def write(self, data):
            self.written += len(data)
            if self.written > 100:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(io_utils.os, "fdopen", lambda fd, mode: FullDisk(real_fdopen(fd, mode)))
    (tmp_path / "out.npz").write_bytes(b"previous capture")
    code, err = xsim_in_process(tiny, tmp_path / "out.npz", capsys)
    assert (code, err) == (2, [f"xsim render: error: {tmp_path / 'out.npz'}: cannot write (No space left on device)"])
    assert listing(tmp_path) == ["out.npz"] and (tmp_path / "out.npz").read_bytes() == b"previous capture"


def test_ctrl_c_while_writing_leaves_nothing(tiny, tmp_path, capsys, monkeypatch):
    # KeyboardInterrupt raised by the real np.savez half way through the archive (on its second array).
    from xsim_render.cli import render_cmd

    class Interrupt:
        def __array__(self, *args, **kwargs):
            raise KeyboardInterrupt

    monkeypatch.setattr(render_cmd, "render_to_arrays",
                        lambda _args: {"rgb": np.zeros((600, 800, 3), np.float32), "alpha": Interrupt()})
    code, _ = xsim_in_process(tiny, tmp_path / "x", capsys)
    assert code == 130
    assert listing(tmp_path) == []


@pytest.mark.parametrize("umask", [0o022, 0o027], ids=["umask022", "umask027"])
def test_out_mode_follows_umask(tiny, tmp_path, capsys, quick_render, umask):
    old = os.umask(umask)
    try:
        code, err = xsim_in_process(tiny, tmp_path / "out.npz", capsys)
    finally:
        os.umask(old)
    assert code == 0 and err == []
    assert stat.S_IMODE(os.stat(tmp_path / "out.npz").st_mode) == 0o666 & ~umask
    assert np.load(tmp_path / "out.npz")["ray_time"][0, 0] == 1.7e9 + 0.5
