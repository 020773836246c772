"""`xsim render` end to end: files in, OUT.npz with the documented keys out; bad input -> one line, exit 2."""

from __future__ import annotations

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
