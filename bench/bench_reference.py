"""Baseline throughput of the pure PyTorch reference renderer on a fixed scene (not a test).

Camera megapixels/s and LiDAR megarays/s, float32, for a seeded street-like scene of Gaussians. Prints a table,
writes bench/results/reference.csv and bench/results/reference.png. Usage: python bench/bench_reference.py
[--gaussians N] [--repeats K]
"""

from __future__ import annotations

import argparse
import csv
import math
import platform
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from xsim_render.motion import RigidMotion  # noqa: E402
from xsim_render.render import render_camera, render_lidar  # noqa: E402
from xsim_render.scene import GaussianScene  # noqa: E402
from xsim_render.sensors.rig import rig_from_dict  # noqa: E402

RESULTS = Path(__file__).parent / "results"


def street_scene(n: int, seed: int = 0) -> GaussianScene:
    """Surfels on a 120 m x 16 m road, two facades and a few boxes: a fixed, street-like load."""
    g = torch.Generator().manual_seed(seed)
    n_road, n_wall = n // 2, n // 4
    road = torch.stack((torch.rand(n_road, generator=g) * 120 - 40, torch.rand(n_road, generator=g) * 16 - 8,
                        torch.zeros(n_road)), -1)
    wall_x = torch.rand(2 * n_wall, generator=g) * 120 - 40
    wall = torch.stack((wall_x, torch.where(torch.arange(2 * n_wall) % 2 == 0, 9.0, -9.0),
                        torch.rand(2 * n_wall, generator=g) * 10), -1)
    means = torch.cat((road, wall))
    n = means.shape[0]
    normal_is_y = torch.arange(n) >= n_road
    scales = torch.full((n, 3), 0.12)
    scales[~normal_is_y, 2] = 0.005
    scales[normal_is_y, 1] = 0.005
    return GaussianScene(means=means, log_scales=scales.log(), quats=torch.tensor([1.0, 0, 0, 0]).expand(n, 4),
                         opacity_camera=torch.full((n,), 3.0), opacity_lidar=torch.full((n,), 3.0),
                         colors=torch.rand(n, 3, generator=g), actor_ids=torch.full((n,), -1),
                         intensity=torch.rand(n, generator=g))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gaussians", type=int, default=60000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(0)
    scene = street_scene(args.gaussians)
    rig = rig_from_dict({"sensors": [
        {"name": "front", "type": "camera", "width": 640, "height": 480, "fx": 500.0, "fy": 500.0, "cx": 320.0,
         "cy": 240.0, "rolling_shutter": {"direction": "top_to_bottom", "readout_time": 0.03},
         "extrinsics": {"translation": [1.5, 0, 1.6], "rotation_wxyz": [0.5, -0.5, 0.5, -0.5]}},
        {"name": "top", "type": "lidar", "columns": 1024,
         "elevations": [math.radians(-25 + 40 * (i / 31) ** 1.3) for i in range(32)],
         "extrinsics": {"translation": [0, 0, 1.9]}}]})
    ego = RigidMotion.from_values((0, 0, 0), (1, 0, 0, 0), (10.0, 0, 0), (0, 0, 0.1), dtype=torch.float32)
    rows = []
    for sensor in rig.sensors:
        rays = sensor.width * sensor.height if sensor.type == "camera" else sensor.beams * sensor.columns
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            with torch.no_grad():
                if sensor.type == "camera":
                    render_camera(scene, sensor, ego, 0.0)
                else:
                    render_lidar(scene, sensor, ego, 0.0)
            times.append(time.perf_counter() - start)
        best = min(times)
        rows.append({"backend": "reference", "sensor": sensor.name, "type": sensor.type, "rays": rays,
                     "gaussians": len(scene), "seconds": round(best, 3),
                     "mrays_per_s": round(rays / best / 1e6, 4), "threads": torch.get_num_threads(),
                     "machine": f"{platform.machine()} {torch.get_num_threads()} threads"})
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / "reference.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"{'backend':<10} {'sensor':<8} {'rays':>8} {'gaussians':>9} {'best s':>8} {'M rays/s':>9}")
    for r in rows:
        unit = "MP/s" if r["type"] == "camera" else "MR/s"
        print(f"{r['backend']:<10} {r['sensor']:<8} {r['rays']:>8} {r['gaussians']:>9} {r['seconds']:>8} "
              f"{r['mrays_per_s']:>9} {unit}")
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar([f"{r['sensor']} ({r['type']})" for r in rows], [r["mrays_per_s"] for r in rows])
    ax.set_ylabel("M rays / s")
    ax.set_title(f"reference renderer, {len(scene)} Gaussians")
    fig.tight_layout()
    fig.savefig(RESULTS / "reference.png")


if __name__ == "__main__":
    main()
