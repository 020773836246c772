"""Replay benchmark (issue 10 bar): the default 10 s synthetic drive replayed with the ego 0, 1, 2 and 3 m to the left.

    .venv/bin/python bench/bench_replay.py [--drive out/drive10] [--out out/bench_replay] [--offsets 0,1,2,3]
                                           [--ramp 2] [--frames 5] [--backend auto]

The drive (`xsim synth --out DRIVE --preset default --duration 10 --seed 0`) is generated when DRIVE/bag does not
exist, else reused. Every offset is one `xsim replay DRIVE/bag --ego-lateral-offset D --ramp R --validate
--frames K` with the fastest backend (xsim_render.replay.sweep: the code of scripts/replay_offset_sweep.py); the
offset is ramped in and out over R seconds at both ends of the drive (cosine ramp of the edit; default 2 s, as
`xsim replay`), so the validated captures at the ends sit on the ramps: the tables give the mean over all K of them
and over those at the full offset.

Writes bench/results/replay.csv (one row per offset and sensor: wall time, captures, render time, frames per second
of render time and of wall time, the ground-truth metrics), replay.md (timing table + ground-truth tables, also
printed), replay.png (each metric against the offset), replay.json (every result). Not a test; one run takes ~10-30
minutes on the 2-core CPU machine.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import platform
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
METRICS = ("hit_miss_agreement", "median_range_error_m", "chamfer_m", "psnr_db", "ssim")


def ensure_drive(drive: Path) -> None:
    """Generate the default 10 s drive (seed 0) into DRIVE unless DRIVE/bag exists."""
    if (drive / "bag").is_dir():
        print(f"reusing {drive}")
        return
    cmd = [str(ROOT / ".venv" / "bin" / "xsim"), "synth", "--out", str(drive), "--preset", "default",
           "--duration", "10", "--seed", "0"]
    print("generating:", " ".join(cmd))
    subprocess.run(cmd, check=True)


def _fmt(value: float, spec: str) -> str:
    return spec.format(value) if value is not None and math.isfinite(value) else "-"


def rows_of(results: list[dict]) -> list[dict]:
    """One CSV row per (offset, sensor)."""
    from xsim_render.replay.sweep import full_offset_means

    rows = []
    for r in results:
        full = full_offset_means(r)
        total = sum(r["captures"].values())
        for name, s in r["sensors"].items():
            row = {"offset_m": r["offset_m"], "ramp_s": r["ramp_s"], "sensor": name, "type": s["type"],
                   "wall_s": round(r["wall_s"], 2), "captures": r["captures"].get(name, 0),
                   "render_s": round(r["render_s"].get(name, math.nan), 2),
                   "fps_render": round(r["fps"].get(name, math.nan), 3),
                   "fps_wall": round(r["captures"].get(name, 0) / r["wall_s"], 3),
                   "captures_per_s_all_sensors": round(total / r["wall_s"], 3), "stale": r["stale"],
                   "frames": s["frames"], "mean_offset_at_frames_m": round(s.get("lateral_offset_m", math.nan), 3)}
            for key in METRICS:
                row[key] = s.get(key, math.nan)
            row["frames_full_offset"] = full[name]["frames"]
            for key in METRICS:
                row[f"{key}_full_offset"] = full[name][key]
            rows.append(row)
    return rows


def markdown(rows: list[dict], drive: Path, backend: str, frames: int) -> str:
    """The timing table and the ground-truth tables (all validated captures; captures at the full offset)."""
    import yaml

    out = io.StringIO()
    w = out.write
    sensors = list(dict.fromkeys(r["sensor"] for r in rows))
    by = {(r["offset_m"], r["sensor"]): r for r in rows}
    offsets = sorted(dict.fromkeys(r["offset_m"] for r in rows))
    synth = yaml.safe_load((drive / "synth.yaml").read_text()) if (drive / "synth.yaml").is_file() else {}
    w(f"# Replay of {drive} (preset {synth.get('preset')}, {synth.get('duration')} s, seed {synth.get('seed')}), "
      f"backend {backend}, {os.cpu_count()} CPUs ({platform.node()})\n\n")
    w("| lateral offset | wall time | " + " | ".join(f"{s} captures | {s} fps (render) | {s} fps (wall)"
                                                    for s in sensors) + " |\n")
    w("|---" * (2 + 3 * len(sensors)) + "|\n")
    for d in offsets:
        first = by[(d, sensors[0])]
        cells = [f"{by[(d, s)]['captures']} | {by[(d, s)]['fps_render']:.2f} | {by[(d, s)]['fps_wall']:.2f}"
                 for s in sensors]
        w(f"| {d:g} m (ramp {first['ramp_s']:g} s) | {first['wall_s']:.1f} s | " + " | ".join(cells) + " |\n")
    for title, suffix in ((f"all {frames} validated captures per sensor (the first and last sit on the ramps)", ""),
                          ("validated captures at the full offset only", "_full_offset")):
        w(f"\nGround truth, {title}:\n\n")
        w("| lateral offset | sensor | frames | LiDAR hit/miss | median range error | Chamfer | PSNR | SSIM |\n")
        w("|---|---|---|---|---|---|---|---|\n")
        for d in offsets:
            for s in sensors:
                r = by[(d, s)]
                n = r["frames"] if not suffix else r["frames_full_offset"]
                w(f"| {d:g} m | {s} | {n} | {_fmt(r['hit_miss_agreement' + suffix], '{:.3f}')} | "
                  f"{_fmt(r['median_range_error_m' + suffix] * 1e3, '{:.1f} mm')} | "
                  f"{_fmt(r['chamfer_m' + suffix] * 1e2, '{:.1f} cm')} | {_fmt(r['psnr_db' + suffix], '{:.1f} dB')} | "
                  f"{_fmt(r['ssim' + suffix], '{:.3f}')} |\n")
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drive", type=Path, default=ROOT / "out" / "drive10")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "bench_replay", help="replayed bags")
    parser.add_argument("--offsets", default="0,1,2,3")
    parser.add_argument("--ramp", type=float, default=2.0, help="s (the replay edit's default)")
    parser.add_argument("--frames", type=int, default=5, help="validated captures per sensor")
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    try:
        offsets = [float(x) for x in args.offsets.split(",")]
    except ValueError:
        print(f"bench_replay: error: --offsets: expected numbers, got {args.offsets!r}", file=sys.stderr)
        return 2
    import torch

    from xsim_render.backends import resolve_backend
    from xsim_render.errors import InputError
    from xsim_render.io_utils import atomic_write_text
    from xsim_render.replay.sweep import run_sweep, write_sweep

    torch.set_num_threads(min(2, os.cpu_count() or 1))
    ensure_drive(args.drive)
    try:
        backend = resolve_backend(args.backend)
    except InputError as err:
        print(f"bench_replay: error: {err}", file=sys.stderr)
        return 2
    results = []
    for d in offsets:  # the outputs are rewritten after every offset (a long run leaves usable partial results)
        results += run_sweep(args.drive, args.out, [d], args.ramp, args.frames, backend=args.backend)
        results.sort(key=lambda r: r["offset_m"])
        write_sweep(results, args.results, stem="replay")
        rows = rows_of(results)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(args.results / "replay.csv", buf.getvalue())
        text = markdown(rows, args.drive, backend, args.frames)
        atomic_write_text(args.results / "replay.md", text)
    print(text)
    print(f"wrote {args.results}/replay.csv, replay.md, replay.png, replay.json; bags in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
