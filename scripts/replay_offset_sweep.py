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
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from xsim_render.errors import InputError  # noqa: E402
from xsim_render.io_utils import atomic_write, atomic_write_text  # noqa: E402
from xsim_render.replay.edits import Edits  # noqa: E402
from xsim_render.replay.rewrite import ReplayConfig, fps, replay  # noqa: E402
from xsim_render.replay.validate import COLUMNS, format_table, validate_replay  # noqa: E402
from xsim_render.synth.validate import _json_safe  # noqa: E402


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
    args.out.mkdir(parents=True, exist_ok=True)
    rig = args.rig or str(args.drive / "rig.yaml")
    results = []
    try:
        for d in offsets:
            out = args.out / f"offset_{d:g}"
            config = ReplayConfig(args.drive / "bag", str(args.drive / "scene"), rig, out,
                                  Edits(ego_lateral_offset=d, ramp=args.ramp), backend=args.backend,
                                  overwrite=True)
            summary = replay(config)
            result = validate_replay(summary, args.drive, args.frames)
            result.update(offset_m=d, wall_s=summary.wall_s, fps=fps(summary),
                          captures={k: v.captures for k, v in summary.timings.items()})
            results.append(result)
            print(f"offset {d:g} m: {summary.wall_s:.1f} s wall", file=sys.stderr)
    except InputError as err:
        print(f"replay_offset_sweep: error: {err}", file=sys.stderr)
        return 2
    table = format_table(results)
    print(table)
    atomic_write_text(args.out / "sweep.md", "```\n" + table + "\n```\n")
    atomic_write_text(args.out / "sweep.json", json.dumps(_json_safe(results), indent=2))
    fig, axes = plt.subplots(1, len(COLUMNS), figsize=(4 * len(COLUMNS), 3.4))
    for ax, (key, title, _) in zip(axes, COLUMNS):
        for sensor in results[0]["sensors"]:
            ys = [r["sensors"][sensor].get(key) for r in results]
            if any(y is not None and y == y for y in ys):
                ax.plot([r["offset_m"] for r in results], ys, "o-", label=sensor)
        ax.set_xlabel("ego lateral offset (m)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_write(args.out / "sweep.png", lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    print(f"wrote {args.out}/sweep.md, sweep.json, sweep.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
