"""ament_python package `xsim_ros`: installs the Python packages `xsim_render` and `xsim_ros`.

Works both with `pip install -e .` (the Makefile's venv) and with `colcon build` in a ROS 2 workspace.

install_requires is deliberately minimal (numpy, pyyaml) and does NOT name torch: torch is installed
first and pinned (torch==2.13.0, a local CPU wheel) by the Makefile, and listing it here would let pip
resolve a different torch. The full pip environment is in requirements.txt; on a ROS distro the
dependencies come from package.xml (rosdep) plus torch via pip.
"""

import os
from glob import glob

from setuptools import find_packages, setup

package_name = "xsim_ros"
here = os.path.dirname(os.path.abspath(__file__))


def _package_data(package: str, subdir: str) -> list[str]:
    """All files under <package>/<subdir>, relative to the package (any depth, any setuptools version)."""
    root = os.path.join(here, package)
    out = []
    for dirpath, _dirs, files in os.walk(os.path.join(root, subdir)):
        for name in files:
            if name.endswith((".pyc", ".pyo")):
                continue
            out.append(os.path.relpath(os.path.join(dirpath, name), root))
    return sorted(out)


def _glob(pattern: str) -> list[str]:
    """Files matching pattern (relative to this directory, whatever the working directory is)."""
    return sorted(os.path.relpath(p, here) for p in glob(os.path.join(here, pattern)) if os.path.isfile(p))


def _share_tree(subdir: str, suffixes: tuple[str, ...]) -> list[tuple[str, list[str]]]:
    """data_files entries installing <subdir>/** (files with these suffixes) to share/<package>/<subdir>/**."""
    out = []
    for dirpath, dirs, files in os.walk(os.path.join(here, subdir)):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__")))
        rel = os.path.relpath(dirpath, here)
        chosen = sorted(os.path.join(rel, f) for f in files if f.endswith(suffixes))
        if chosen:
            out.append((os.path.join("share", package_name, rel), chosen))
    return out


setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*", "bench", "bench.*"]),
    # data files of the renderer and the C++/CUDA sources its kernels are compiled from at first use
    package_data={"xsim_render": _package_data("xsim_render", "data") + _package_data("xsim_render", "kernels/csrc")},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + package_name]),
        ("share/" + package_name, ["package.xml"]),
        ("share/" + package_name + "/msg", _glob("msg/*.msg")),
        # launch descriptions (XML / YAML / Python) and the demo rig, scenario and parameter files
        *_share_tree("launch", (".xml", ".yaml", ".py")),
        *_share_tree("config", (".yaml", ".yml", ".xml", ".ply", ".json", ".md")),
    ],
    python_requires=">=3.10",
    install_requires=["numpy", "pyyaml"],
    zip_safe=True,
    maintainer="XSIM-ROS developers",
    maintainer_email="xsim-ros@example.com",
    description="ROS 2 sensor simulator (cameras, LiDAR) on 3D Gaussian splatting",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "xsim = xsim_render.cli.main:main",
            # ROS 2 nodes (xsim_ros/): `ros2 run xsim_ros <name>` (colcon install: lib/xsim_ros/, see setup.cfg)
            # or `.venv/bin/<name>` (pip install).
            "sensor_sim = xsim_ros.console:sensor_sim",
            "scenario_player = xsim_ros.console:scenario_player",
            "ego_model = xsim_ros.console:ego_model",
        ],
    },
)
