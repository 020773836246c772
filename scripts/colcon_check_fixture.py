"""Write the tiny scene, rig and sensor_sim parameter file that `make check-colcon` starts the node with.

    python scripts/colcon_check_fixture.py OUT_DIR

OUT_DIR/scene.ply: 300 Gaussians in a 6 m x 6 m x 2 m block 6-12 m ahead of the origin (world = map frame);
OUT_DIR/rig.yaml: one 32x24 pinhole camera looking forward and one 8-beam x 128-column LiDAR, both 10 Hz
(small, so the reference renderer keeps up on 2 CPU cores); OUT_DIR/sensor_sim.params.yaml: a standard
ROS 2 parameter file for node `sensor_sim` in any namespace (scene, rig, backend auto, `pose` trigger:
one capture per ego odometry message, wall clock, actors from the scene: it has none).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import yaml

from xsim_render.scene import GaussianScene
from xsim_render.scene.io import save_scene

OPTICAL_IN_BASE_LINK = [0.5, -0.5, 0.5, -0.5]  # camera optical frame (z fwd, x right, y down) in base_link


def tiny_scene(n: int = 300, seed: int = 7) -> GaussianScene:
    """A deterministic cloud of opaque coloured Gaussians in front of the origin (map frame, metres)."""
    g = torch.Generator().manual_seed(seed)
    centre = torch.tensor([9.0, 0.0, 1.0])
    spread = torch.tensor([3.0, 3.0, 1.0])
    means = (torch.rand(n, 3, generator=g) * 2 - 1) * spread + centre
    return GaussianScene(
        means=means, log_scales=torch.log(torch.rand(n, 3, generator=g) * 0.3 + 0.1),
        quats=torch.randn(n, 4, generator=g), opacity_camera=torch.full((n,), 2.0),
        opacity_lidar=torch.full((n,), 2.0), colors=torch.rand(n, 3, generator=g),
        actor_ids=torch.full((n,), -1, dtype=torch.long), intensity=torch.rand(n, generator=g),
    )


def tiny_rig() -> dict:
    """Rig dictionary (README rig.yaml format): one small camera, one small LiDAR."""
    return {"sensors": [
        {"name": "front", "type": "camera", "model": "pinhole", "width": 32, "height": 24, "fx": 20.0, "fy": 20.0,
         "cx": 16.0, "cy": 12.0, "distortion": [], "rolling_shutter": {"direction": "global", "readout_time": 0.0},
         "extrinsics": {"translation": [1.5, 0.0, 1.4], "rotation_wxyz": OPTICAL_IN_BASE_LINK}, "rate_hz": 10},
        {"name": "top", "type": "lidar", "elevations": [-0.2, -0.15, -0.1, -0.05, 0.0, 0.05, 0.1, 0.15],
         "columns": 128, "spin_rate_hz": 10, "spin_direction": "ccw", "seam_azimuth": 3.14159,
         "min_range": 0.5, "max_range": 60.0,
         "extrinsics": {"translation": [0.0, 0.0, 1.8], "rotation_wxyz": [1.0, 0.0, 0.0, 0.0]}, "rate_hz": 10},
    ]}


def main(argv: list[str]) -> int:
    """Write the three files into argv[0]; exit 2 on a usage error."""
    if len(argv) != 1:
        print("usage: colcon_check_fixture.py OUT_DIR", file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    save_scene(tiny_scene(), out / "scene.ply")
    (out / "rig.yaml").write_text(yaml.safe_dump(tiny_rig(), sort_keys=False))
    params = {"/**/sensor_sim": {"ros__parameters": {
        "scene": str((out / "scene.ply").resolve()), "rig": str((out / "rig.yaml").resolve()),
        "backend": "auto", "trigger": "pose", "use_sim_time": False, "max_state_age": 1.0,
        "actor_source": "scene",
    }}}
    (out / "sensor_sim.params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    print(f"wrote {out}/scene.ply, rig.yaml, sensor_sim.params.yaml")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
