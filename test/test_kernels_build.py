"""Kernel build, backend selection, `xsim doctor`, the public API, and the C++ constants."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import xsim_render as xs
from xsim_render import backends, constants
from xsim_render.errors import InputError
from xsim_render.kernels import build

ROOT = Path(__file__).resolve().parents[1]


def test_header_constants_match_constants_py():
    text = (build.INCLUDE / "xsim" / "common.h").read_text()
    for name in ("ALPHA_MAX", "TRANSMITTANCE_MIN", "MEDIAN_TRANSMITTANCE", "CAMERA_TILE", "LIDAR_TILE_BEAMS",
                 "LIDAR_TILE_COLUMNS"):
        value = re.search(rf"constexpr \w+ {name} = ([^;]+);", text).group(1)
        assert float(eval(value)) == getattr(constants, name), name
    assert re.search(r"ALPHA_MIN = 1\.0 / 255\.0;", text) and constants.ALPHA_MIN == 1.0 / 255.0


def test_footprint_constants_match_the_reference():
    from xsim_render.motion import rolling_shutter
    from xsim_render.projection import footprint

    text = "".join((build.INCLUDE / "xsim" / f).read_text() for f in ("footprint.h", "rolling_shutter.h"))
    expected = {name: getattr(footprint, name) for name in ("EXTENT_SAFETY", "MAX_ANGULAR_RADIUS", "SPHERE_PAD_ABS",
                                                            "SPHERE_PAD_REL", "CONE_SAMPLES")}
    expected.update({name: getattr(rolling_shutter, name) for name in ("NEWTON_ITERATIONS", "MIN_SLOPE",
                                                                       "BRACKET_ITERATIONS")})
    for name, value in expected.items():
        found = re.search(rf"constexpr \w+ {name} = ([^;]+);", text)
        assert found and float(found.group(1)) == float(value), name


def test_public_api():
    for name in ("load_scene", "load_rig", "load_state", "render_camera", "render_lidar", "available_backends"):
        assert callable(getattr(xs, name)), name
    status = xs.available_backends()
    assert set(status) == {"reference", "cpu", "cuda"} and status["reference"] is None
    with pytest.raises(AttributeError):
        _ = xs.no_such_thing


def test_import_stays_light():
    code = "import sys, xsim_render; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_backend_names():
    assert backends.BACKENDS == ("reference", "cpu", "cuda", "auto")
    assert backends.resolve_backend("reference") == "reference"
    with pytest.raises(InputError, match="must be one of reference, cpu, cuda, auto, got 'gpu'"):
        backends.resolve_backend("gpu")
    if backends.available_backends()["cuda"] is not None:
        with pytest.raises(InputError, match="'cuda' is not usable here"):
            backends.resolve_backend("cuda")


def test_missing_compiler_is_one_line_and_auto_falls_back(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("XSIM_KERNEL_CACHE", str(tmp_path))   # nothing built there
    monkeypatch.setenv("CXX", "/nonexistent/c++")
    monkeypatch.setattr(build, "_LOADED", {})
    monkeypatch.setattr(backends, "_BROKEN", {})
    reason = build.missing_prerequisite("cpu")
    assert reason is not None and "no C++ compiler" in reason and "\n" not in reason
    with pytest.raises(build.KernelBuildError, match="cpu kernels unavailable: no C\\+\\+ compiler"):
        build.load("cpu")
    assert backends.available_backends()["cpu"] == reason
    assert backends.resolve_backend("auto") == "reference"
    with pytest.raises(InputError, match="'cpu' is not usable here: no C\\+\\+ compiler"):
        backends.resolve_backend("cpu")


def test_nothing_builds_at_import(monkeypatch, tmp_path):
    code = ("import xsim_render, xsim_render.backends, xsim_render.kernels, xsim_render.render, os;"
            "print(sorted(os.listdir(os.environ['XSIM_KERNEL_CACHE'])))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                         env={**__import__("os").environ, "XSIM_KERNEL_CACHE": str(tmp_path)})
    assert out.stdout.strip() == "[]"


def test_doctor_reports_every_backend():
    build.load("cpu")
    out = subprocess.run([sys.executable, "-m", "xsim_render.cli.main", "doctor"], capture_output=True, text=True,
                         cwd=ROOT, env={**__import__("os").environ, "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"})
    assert out.returncode == 0, out.stderr
    lines = {ln.split()[0]: ln for ln in out.stdout.splitlines()[1:]}
    assert "works" in lines["reference"]
    assert "works" in lines["cpu"] and "(ok)" in lines["cpu"]
    cuda = backends.available_backends()["cuda"]
    assert ("unavailable" in lines["cuda"] and cuda in lines["cuda"]) if cuda else "works" in lines["cuda"]
    assert lines["auto"].split()[-1] == ("cpu" if cuda else "cuda")


def test_kernels_are_forward_only_but_keep_gradients_through_the_reference():
    from _scenes import camera_rig, ego_motion, random_scene

    scene = random_scene(40, seed=3)
    scene.means.requires_grad_(True)
    out = xs.render_camera(scene, camera_rig(width=24, height=16), ego_motion(False), 0.0, backend="cpu")
    out["alpha"].sum().backward()
    assert scene.means.grad is not None and torch.isfinite(scene.means.grad).all()


def test_stale_builds_go_but_builds_in_progress_stay(tmp_path):
    """Finishing a build removes older builds of the same kind from the cache, but not one another process is
    building (locked, or changed within STALE_AFTER_S) nor other kinds."""
    import os
    import time

    from xsim_render.kernels.build import SPECS, STALE_AFTER_S, _remove_stale

    prefix = SPECS["cpu"].prefix
    now = time.time()
    dirs = {name: tmp_path / f"{prefix}_{name}" for name in ("new", "old", "locked", "fresh")}
    for d in dirs.values():
        d.mkdir()
        (d / "build.ninja").write_text("x")
    (dirs["locked"] / "lock").write_text("")
    other_kind = tmp_path / f"{SPECS['cuda'].prefix}_old"
    other_kind.mkdir()
    old = now - 2 * STALE_AFTER_S
    for d in (dirs["old"], dirs["locked"], other_kind):
        for path in (*d.iterdir(), d):
            os.utime(path, (old, old))
    _remove_stale("cpu", dirs["new"], now=now)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{prefix}_new", f"{prefix}_locked", f"{prefix}_fresh", other_kind.name])

