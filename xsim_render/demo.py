"""`make demo`: render the bundled demo world's Gaussian twin from the bundled rig to PNGs.

The demo world is the seeded synthetic street (`xsim synth`, preset small, seed 0); its Gaussian twin is built
deterministically on first run and cached in OUT/scene (rebuilt when the world generator or the rig
changed). Outputs in OUT/: camera RGB, depth, LiDAR range
image, bird's-eye view of the LiDAR points, a contact sheet, the .npz renders, rig.yaml and state.yaml.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm import tqdm

from .errors import InputError
from .io_utils import atomic_write_stream, atomic_write_text
from .motion.state import SceneState, state_to_dict
from .render import render_camera, render_lidar
from .scene.io import load_scene, save_scene
from .sensors.rig import load_rig
from .synth.presets import default_rig
from .synth.twin import world_to_gaussians
from .synth.world import World, generate_world
from .viz.images import bird_eye_view, colorize, contact_sheet, range_image, save_png

DEMO_PRESET, DEMO_SEED, DEMO_DURATION = "small", 0, 3.0


def _fingerprint(world: World, rig_text: str) -> str:
    """SHA-1 of what the cached twin and rig were built from (the world's meshes and materials, the rig)."""
    h = hashlib.sha1()
    for array in (world.static_mesh.vertices, world.static_mesh.faces, world.static_face_material):
        h.update(np.ascontiguousarray(array).tobytes())
    h.update(repr([m.to_dict() for m in world.materials]).encode())
    h.update(rig_text.encode())
    return h.hexdigest()


def prepare(out: Path, world: World) -> tuple[Path, Path]:
    """Build the demo world's twin and rig in OUT, or reuse them when OUT/demo_cache.txt says they were built from
    this same world and rig (a checkout with a changed world generator rebuilds); returns (scene dir, rig path)."""
    scene_dir, rig_path, stamp = out / "scene", out / "rig.yaml", out / "demo_cache.txt"
    rig_text = default_rig(DEMO_PRESET).to_yaml()
    fingerprint = _fingerprint(world, rig_text)
    cached = stamp.exists() and stamp.read_text().strip() == fingerprint
    if not cached or not (scene_dir / "scene.yaml").exists() or not rig_path.exists():
        print(f"building the Gaussian twin of the demo world (preset {DEMO_PRESET}, seed {DEMO_SEED}) ...")
        save_scene(world_to_gaussians(world), scene_dir)
        atomic_write_text(rig_path, rig_text)
        atomic_write_text(stamp, fingerprint + "\n")
    return scene_dir, rig_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="xsim-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo_out", help="output directory (created)")
    parser.add_argument("--time", type=float, default=1.0, help="capture start (s) in the demo drive")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    world = generate_world(DEMO_PRESET, seed=DEMO_SEED, duration=DEMO_DURATION)
    try:
        scene_dir, rig_path = prepare(out, world)
        scene, rig = load_scene(scene_dir), load_rig(rig_path)
    except InputError as err:
        print(f"xsim demo: error: {err}", file=sys.stderr)
        return 2
    ego, actors = world.ego_motion(args.time), world.actor_motions(args.time)
    state = state_to_dict(SceneState(args.time, ego, actors))
    atomic_write_text(out / "state.yaml", yaml.safe_dump(state, sort_keys=False))
    sheet = []
    for sensor in tqdm(rig.sensors, desc="rendering", unit="sensor"):
        start = time.perf_counter()
        with torch.no_grad():
            if sensor.type == "camera":
                r = render_camera(scene, sensor, ego, args.time, actors)
                rgb, dist = r["rgb"].numpy(), r["distance_median"].numpy()
                save_png(out / f"{sensor.name}_rgb.png", rgb)
                save_png(out / f"{sensor.name}_depth.png", colorize(dist))
                sheet += [(f"{sensor.name}: RGB", rgb), (f"{sensor.name}: median distance", colorize(dist))]
            else:
                r = render_lidar(scene, sensor, ego, args.time, actors)
                rng = range_image(r["range_median"].numpy(), list(sensor.elevations), sensor.max_range / 2)
                save_png(out / f"{sensor.name}_range.png", rng)
                bird_eye_view(out / f"{sensor.name}_bev.png", r["points"].numpy(), r["intensity"].numpy()[
                    r["point_beam"].numpy(), r["point_column"].numpy()], title=f"{sensor.name}: returns (BEV)")
                sheet.append((f"{sensor.name}: median range (beams x columns)", rng))
        arrays = {k: v.detach().numpy() for k, v in r.items() if isinstance(v, torch.Tensor)}
        atomic_write_stream(out / f"{sensor.name}.npz", lambda f, a=arrays: np.savez(f, **a))
        tqdm.write(f"{sensor.name}: {sensor.type} rendered in {time.perf_counter() - start:.1f} s")
    contact_sheet(out / "contact_sheet.png", sheet, columns=1)
    print(f"wrote {out}/ (contact_sheet.png, per-sensor PNGs and .npz, scene/, rig.yaml, state.yaml)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
