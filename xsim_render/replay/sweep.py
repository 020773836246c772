"""Replays of one synthetic drive at several ego lateral offsets, each scored against the exact truth.

Used by scripts/replay_offset_sweep.py and bench/bench_replay.py. For every offset D (metres, to the ego's left):
`xsim replay DRIVE/bag --ego-lateral-offset D --ramp R --validate` into OUT/offset_<D>/ (replay.rewrite.replay,
then replay.validate.validate_replay over K captures per sensor). A result is validate_replay's dict plus the
replay's wall time (s), frames per second of render time per sensor, captures per sensor, offset_m and ramp_s.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from ..io_utils import atomic_write, atomic_write_text
from ..synth.validate import _json_safe
from .edits import Edits
from .rewrite import ReplayConfig, fps, replay
from .validate import COLUMNS, format_table, validate_replay


def run_sweep(drive: Path, out: Path, offsets: list[float], ramp: float, frames: int = 3, rig: str | None = None,
              backend: str = "auto", progress: bool = False) -> list[dict[str, Any]]:
    """Replay DRIVE (an `xsim synth --out` directory) at each offset (m) with the given ramp (s) and validate it;
    returns one result per offset (module docstring). Raises InputError / OutputError like `xsim replay`."""
    out.mkdir(parents=True, exist_ok=True)
    rig = rig or str(drive / "rig.yaml")
    results = []
    for d in offsets:
        config = ReplayConfig(drive / "bag", str(drive / "scene"), rig, out / f"offset_{d:g}",
                              Edits(ego_lateral_offset=d, ramp=ramp), backend=backend, overwrite=True,
                              progress=progress)
        summary = replay(config)
        result = validate_replay(summary, drive, frames)
        result.update(offset_m=d, ramp_s=ramp, wall_s=summary.wall_s, fps=fps(summary),
                      captures={k: v.captures for k, v in summary.timings.items()},
                      render_s={k: v.render_s for k, v in summary.timings.items()}, stale=summary.stale)
        results.append(result)
        print(f"offset {d:g} m: {summary.wall_s:.1f} s wall, " + ", ".join(
            f"{k} {v.captures} captures" for k, v in summary.timings.items()), file=sys.stderr)
    return results


def full_offset_means(result: dict[str, Any], tolerance: float = 0.01) -> dict[str, dict[str, float]]:
    """Per sensor, the mean of every metric over the validated captures taken at the full offset (|d| within
    `tolerance` of the edit's offset, i.e. outside the ramps); {} entries where there is none."""
    target = float(result["offset_m"])
    out = {}
    for name, s in result["sensors"].items():
        caps = [c for c in s["captures"] if abs(c["lateral_offset_m"] - target) <= tolerance * max(1.0, abs(target))]
        means = {"frames": len(caps)}
        for key, _, _ in COLUMNS:
            vals = [c[key] for c in caps if key in c and c[key] is not None and math.isfinite(c[key])]
            means[key] = sum(vals) / len(vals) if vals else math.nan
        out[name] = means
    return out


def write_sweep(results: list[dict[str, Any]], out: Path, stem: str = "sweep") -> str:
    """OUT/<stem>.md (the table of format_table), <stem>.json (every result), <stem>.png (each metric against the
    offset); returns the table."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = format_table(results)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / f"{stem}.md", "```\n" + table + "\n```\n")
    atomic_write_text(out / f"{stem}.json", json.dumps(_json_safe(results), indent=2))
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
    atomic_write(out / f"{stem}.png", lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    plt.close(fig)
    return table


__all__ = ["full_offset_means", "run_sweep", "write_sweep"]
