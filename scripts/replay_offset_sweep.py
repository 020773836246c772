#!/usr/bin/env python3
"""Replay a synthetic drive at several ego lateral offsets and score each against the exact truth.

    .venv/bin/python scripts/replay_offset_sweep.py DRIVE --out DIR [--offsets 0,1,2,3] [--ramp 0] [--frames 3]
                                                    [--rig RIG] [--backend auto]

DRIVE is a directory written by `xsim synth` (bag/, scene/, rig.yaml, world/). For every offset it runs
`xsim replay DRIVE/bag --ego-lateral-offset D --ramp R --validate` (bags in DIR/offset_<D>/) and then writes
DIR/sweep.json (every result), DIR/sweep.md (one table: edit x sensor, camera PSNR/SSIM, LiDAR hit/miss, median
range error, Chamfer) and DIR/sweep.png (each metric against the offset). --ramp 0 (default) holds the offset over
the whole drive, so each row is exactly "the ego D metres to the left"; wall time and frames per second of each
replay are in the JSON.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from xsim_render.errors import InputError, OutputError
from xsim_render.replay.sweep import run_sweep, write_sweep


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("drive", type=Path)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--offsets", default="0,1,2,3")
    p.add_argument("--ramp", type=float, default=0.0)
    p.add_argument("--frames", type=int, default=3)
    p.add_argument("--rig", default=None)
    p.add_argument("--backend", default="auto")
    args = p.parse_args(argv)
    try:
        offsets = [float(x) for x in args.offsets.split(",")]
    except ValueError:
        print(f"replay_offset_sweep: error: --offsets: expected numbers, got {args.offsets!r}", file=sys.stderr)
        return 2
    try:
        results = run_sweep(args.drive, args.out, offsets, args.ramp, args.frames, args.rig, args.backend)
    except (InputError, OutputError) as err:
        print(f"replay_offset_sweep: error: {err}", file=sys.stderr)
        return 2
    print(write_sweep(results, args.out))
    print(f"wrote {args.out}/sweep.md, sweep.json, sweep.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
