"""Benchmark: generation time of a synthetic drive (`xsim synth`), small preset, 3 s by default.

    .venv/bin/python bench/bench_synth.py [--preset small] [--duration 3] [--repeat 1]

Times the stages of generate_drive (world generation, world save, Gaussian twin, bag = ground-truth rendering +
packing + writing) in-process, prints a table and writes bench/results/synth.csv (one row per stage and run)
and synth.png (the stages of the last run).
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
    png = args.out.with_suffix(".png")
    _plot(rows, png, f"xsim synth --preset {args.preset} --duration {args.duration:g}  "
                     f"({torch.get_num_threads()} threads, {platform.machine()})")
    print(f"wrote {args.out} and {png}")
    return 0


def _plot(rows: list[dict], path: Path, title: str) -> None:
    """Horizontal bars: seconds per stage of the last run, with the 2-minute bar of the issue."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    last = [r for r in rows if r["run"] == rows[-1]["run"]]
    fig, ax = plt.subplots(figsize=(7, 2.8))
    ax.barh([r["stage"] for r in last], [r["seconds"] for r in last], color="tab:blue")
    ax.axvline(120.0, color="tab:red", ls="--", label="bar: 2 min")
    for i, r in enumerate(last):
        ax.text(r["seconds"], i, f" {r['seconds']:.1f} s", va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("seconds")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
