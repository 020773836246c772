"""Benchmark: generation time of a synthetic drive (`xsim synth`), small preset, 3 s by default.

    .venv/bin/python bench/bench_synth.py [--preset small] [--duration 3] [--repeat 1]

Times the stages of generate_drive (world generation, world save, Gaussian twin, bag = ground-truth rendering +
packing + writing) in-process, prints a table and writes bench/results/synth.csv (one row per stage and run).
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")


def main(argv: list[str] | None = None) -> int:
    import torch

    from xsim_render.synth.export import generate_drive

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="small")
    ap.add_argument("--duration", type=float, default=3.0)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "synth.csv")
    args = ap.parse_args(argv)

    rows = []
    for run in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            summary = generate_drive(Path(tmp) / "drive", preset=args.preset, seed=args.seed,
                                     duration=args.duration, progress=False)
            total = time.perf_counter() - start
            size = sum(f.stat().st_size for f in (Path(tmp) / "drive").rglob("*") if f.is_file())
        stages = dict(summary.timings_s)
        stages["total"] = total
        for stage, seconds in stages.items():
            rows.append({"preset": args.preset, "duration_s": args.duration, "run": run, "stage": stage,
                         "seconds": round(seconds, 3), "messages": sum(summary.counts.values()),
                         "output_mib": round(size / 2**20, 1), "threads": torch.get_num_threads(),
                         "machine": platform.machine()})

    print(f"xsim synth --preset {args.preset} --duration {args.duration} ({torch.get_num_threads()} threads)")
    print(f"{'run':>4}  {'stage':<12}{'seconds':>10}")
    for r in rows:
        print(f"{r['run']:>4}  {r['stage']:<12}{r['seconds']:>10.2f}")
    last = rows[-1]
    print(f"{last['messages']} messages, {last['output_mib']} MiB written")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
