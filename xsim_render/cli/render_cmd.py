"""`xsim render`: render one capture of one sensor of a rig from a scene and a state, to an .npz file."""

from __future__ import annotations

import argparse
import math
from dataclasses import replace

import numpy as np
import torch

from ..backends import BACKENDS
from ..errors import InputError
from ..io_utils import atomic_write_stream, check_output_file
from ..motion.state import load_state
from ..render import render_camera, render_lidar
from ..scene.io import load_scene
from ..scene.placement import parse_placement
from ..sensors.rig import CameraSpec, load_rig


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("render", help="render one sensor capture to an .npz file",
                              description="Render one capture of one sensor. T is the start of the capture "
                                          "(first exposed line / sweep start), in seconds. OUT's keys: "
                                          "docs/formats.md; frames, times and pixel centres: "
                                          "docs/conventions.md.")
    p.add_argument("--scene", required=True, help="scene: .ply file or native scene directory")
    p.add_argument("--rig", required=True, help="sensor rig YAML")
    p.add_argument("--sensor", required=True, help="name of the sensor in the rig")
    p.add_argument("--state", required=True, help="STATE.yaml with ego (and actor) poses and velocities")
    p.add_argument("--time", required=True, type=float, help="capture start T (s)")
    p.add_argument("--out", required=True,
                   help="output file: an .npz archive (numpy.load) written to exactly this path, whatever its "
                        "suffix (no '.npz' is appended); checked before rendering, replaced atomically")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="reference: pure PyTorch; cpu: C++/OpenMP kernels; cuda: GPU kernels; auto: the fastest "
                        "usable one (`xsim doctor` lists which work here)")
    p.add_argument("--world-from-scene", metavar="PLACEMENT", default=None,
                   help="place the scene in the world (map) frame of the state, overriding the scene's own "
                        "world_from_scene: 'x,y,z', 'x,y,z,qw,qx,qy,qz' or a YAML file {translation, rotation_wxyz}")
    p.add_argument("--no-phase-modeling", action="store_true", help="LiDAR: disable XSIM phase modeling")
    p.add_argument("--float64", action="store_true", help="render in double precision")
    p.set_defaults(func=run)


def render_to_arrays(args: argparse.Namespace) -> dict[str, np.ndarray]:
    """Load inputs, render, and return the OUT.npz arrays (float32; ray_origin and times float64)."""
    if not math.isfinite(args.time):
        raise InputError(f"--time: must be a finite number of seconds, got {args.time}")
    placement = None if args.world_from_scene is None else parse_placement(args.world_from_scene)
    rig = load_rig(args.rig)
    sensor = rig.sensor(args.sensor)
    state = load_state(args.state)
    scene = load_scene(args.scene)
    dtype = torch.float64 if args.float64 else torch.float32
    scene = scene.to(dtype)
    if placement is not None:
        scene = replace(scene, world_from_scene=placement)
    with torch.no_grad():
        if isinstance(sensor, CameraSpec):
            out = render_camera(scene, sensor, state.ego, args.time, state.actors, backend=args.backend)
            keys = ("rgb", "alpha", "distance", "distance_median", "ray_origin", "ray_direction", "ray_time")
        else:
            out = render_lidar(scene, sensor, state.ego, args.time, state.actors,
                               phase_modeling=not args.no_phase_modeling, backend=args.backend)
            keys = ("range", "range_median", "alpha", "intensity", "ray_drop_probability", "ray_origin",
                    "ray_direction", "ray_time", "points", "point_time", "point_beam", "point_column")
    arrays = {}
    for k in keys:
        v = out[k].detach().cpu().numpy()
        if k in ("ray_origin", "ray_time", "point_time"):  # world positions and absolute times: float64
            arrays[k] = v.astype(np.float64)
        elif k in ("point_beam", "point_column"):
            arrays[k] = v.astype(np.int32)
        else:
            arrays[k] = v.astype(np.float32)
    return arrays


def run(args: argparse.Namespace) -> int:
    """Check --out, render, write OUT atomically; problems raise InputError (one line, exit 2 in cli.main).

    --out is checked before anything is loaded or rendered. The archive is written through a file object, so
    the bytes land at exactly OUT (`--out x` and `--out x.npy` hold the npz archive under those names).
    """
    out = check_output_file(args.out, "--out")
    arrays = render_to_arrays(args)
    atomic_write_stream(out, lambda f: np.savez(f, **arrays))
    return 0
