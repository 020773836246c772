"""`make demo`, second part: the ROS 2 graph on the bundled demo world, in lockstep, recorded.

After `python -m xsim_render.demo --out OUT` (the stills; it builds OUT/scene and OUT/rig.yaml), this writes the
demo world's drive as OUT/world/world.yaml (the scenario), runs launch/xsim_sim.launch.xml through the pip-only
launcher (scenario_player + sensor_sim, trigger lockstep) for --duration seconds of sim time, records everything to
OUT/graph_bag (mcap), prints the per-topic table and writes OUT/graph_contact_sheet.png (camera frames and LiDAR
bird's-eye views over time). --rate sets the sensors' capture rate for the demo (OUT/graph_rig.yaml): the reference
renderer needs seconds per capture on a 2-core CPU, so the demo captures at 2 Hz by default.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="xsim-ros-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo_out", help="the directory written by xsim_render.demo")
    parser.add_argument("--duration", type=float, default=2.0, help="seconds of sim time (default 2)")
    parser.add_argument("--rate", type=float, default=2.0, help="capture rate of every sensor, Hz (default 2)")
    parser.add_argument("--frames", type=int, default=5, help="rows of the contact sheet")
    args = parser.parse_args(argv)

    from xsim_render.demo import DEMO_DURATION, DEMO_PRESET, DEMO_SEED
    from xsim_render.errors import InputError
    from xsim_render.io_utils import atomic_write_text
    from xsim_render.sensors.rig import load_rig
    from xsim_render.sim.report import contact_sheet_from_bag
    from xsim_render.synth.world import generate_world, save_world

    from .launch_runner import LaunchRun

    out = Path(args.out)
    if not (out / "scene" / "scene.yaml").is_file() or not (out / "rig.yaml").is_file():
        print(f"xsim demo graph: error: {out}/scene or {out}/rig.yaml missing (run python -m xsim_render.demo "
              f"--out {out} first)", file=sys.stderr)
        return 2
    save_world(generate_world(DEMO_PRESET, seed=DEMO_SEED, duration=DEMO_DURATION), out / "world")
    rig = load_rig(out / "rig.yaml")
    for spec in rig.sensors:
        spec.rate_hz = args.rate
    atomic_write_text(out / "graph_rig.yaml", rig.to_yaml())
    launch_file = Path(__file__).resolve().parents[1] / "launch" / "xsim_sim.launch.xml"
    bag = out / "graph_bag"
    start = time.monotonic()
    print(f"running {launch_file.name} (lockstep, {args.duration:g} s of sim time, sensors at {args.rate:g} Hz) ...")
    try:
        run = LaunchRun(launch_file, {"scene": str(out / "scene"), "rig": str(out / "graph_rig.yaml"),
                                      "scenario": str(out / "world"), "trigger": "lockstep"}, record=bag)
    except InputError as err:
        print(f"xsim demo graph: error: {err}", file=sys.stderr)
        return 2
    failed = True
    try:
        run.spin(args.duration)
        failed = False
    finally:
        table = run.table() if not failed else ""
        run.shutdown(error=failed)
    print(f"recorded {bag} in {time.monotonic() - start:.0f} s wall; per topic (rate in sim time; latency = wall "
          f"time from the clock reaching the stamp to the message arriving):")
    print(table)
    rows = contact_sheet_from_bag(bag, out / "graph_contact_sheet.png", args.frames)
    print(f"wrote {out / 'graph_contact_sheet.png'} ({rows} instants)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
