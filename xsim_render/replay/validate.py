"""`xsim replay --validate`: score a replay of a synthetic drive against the exact truth of the edited drive.

Only a synthetic world can score an edited trajectory exactly: for a bag written by `xsim synth` (DIR/bag beside
DIR/world/), the world's meshes are ray traced (synth/groundtruth.py) along the EDITED drive: the ego of the
world's own trajectory at t + time_shift moved by the lateral profile d(t) (edits.py; the same profile the replay
used, over the bag's ego span), removed actors left out, shifted / time-shifted actors moved the same way. For K
captures per sensor (evenly spread) the replayed messages are compared with it using the metrics of
synth/validate.py: camera PSNR / SSIM (truth quantised to rgb8 like any recorded image), LiDAR hit/miss
agreement, median |range error| on common returns, Chamfer distance.

Writes OUT_BAG.validation/ atomically: validation.json (per capture, with the lateral offset d at the capture,
and per-sensor means) and <sensor>.png (truth | replay | error rows).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from ..io_utils import atomic_directory
from ..rosio import messages as m
from ..rosio.bag import read_bag
from ..rosio.image import float_from_image
from ..sensors.rig import LidarSpec, load_rig
from ..states.sample import NS
from ..synth import export
from ..synth.validate import (
    _json_safe,
    _save_figure,
    camera_metrics,
    lidar_figure_row,
    lidar_grid,
    lidar_metrics,
    pick,
    sensor_summary,
)
from .apply import EditedDrive
from .edits import offset_pose

F64 = torch.float64


def find_world(bag: Path, world: Path | None) -> Path:
    """The synth directory of a bag (DIR/bag -> DIR), or --world; InputError unless it holds world/world.yaml."""
    directory = Path(world) if world is not None else Path(bag).resolve().parent
    if not (directory / "world" / "world.yaml").is_file():
        raise InputError(f"--validate: {directory}: no world/world.yaml (not a drive written by xsim synth; give the "
                         f"synth directory with --world DIR)")
    return directory


class _ShiftedTrajectory:
    """An actor trajectory moved by dt seconds (pose of t + dt) and by a world-frame offset."""

    def __init__(self, base: Any, dt: float, offset: tuple[float, float, float]) -> None:
        self.base, self.dt, self.offset = base, float(dt), torch.tensor(offset, dtype=F64)

    def poses_at(self, times: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        rot, pos, exists = self.base.poses_at(torch.as_tensor(times, dtype=F64) + self.dt)
        return rot, pos + self.offset, exists


class EditedWorld:
    """A World seen along the edited drive (groundtruth.py reads only these attributes)."""

    def __init__(self, world: Any, drive: EditedDrive, epoch: int = 0) -> None:
        self.world, self.drive, self.epoch = world, drive, epoch
        e = drive.edits
        self.actors = []
        for a in world.actors:
            if a.id in e.remove_actors:
                continue
            if a.id in e.shift_actors or a.id in e.time_shift_actors:
                a = dataclasses.replace(a, trajectory=_ShiftedTrajectory(
                    a.trajectory, e.time_shift_actors.get(a.id, 0.0), e.shift_actors.get(a.id, (0.0, 0.0, 0.0))))
            self.actors.append(a)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.world, name)

    def ego_poses_at(self, times: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Edited base_link poses at world times (s): the world's ego at t + shift, moved d(t) to its left."""
        times = torch.as_tensor(times, dtype=F64)
        rot, pos = self.world.ego_poses_at(times + self.drive.edits.ego_time_shift)
        d, _ = self.drive.profiles[min(self.epoch, len(self.drive.profiles) - 1)].at(
            times + export.TIME_OFFSET_NS / NS)
        return rot, offset_pose(rot, pos, d)


def _sensor_topic(types: dict[str, str], spec: Any) -> str | None:
    suffix = (f"sensing/lidar/{spec.name}/pointcloud" if isinstance(spec, LidarSpec)
              else f"sensing/camera/{spec.name}/image_raw")
    found = [t for t in types if t.endswith(suffix)]
    return found[0] if found else None


def validate_replay(summary: Any, world_dir: Path, frames: int = 3, rig_path: str | Path | None = None
                    ) -> dict[str, Any]:
    """Score the replayed bag summary.out against the truth of the edited drive (module docstring)."""
    from ..rosio.bag import topic_types
    from ..synth import groundtruth
    from ..synth.world import load_world

    world = load_world(Path(world_dir) / "world")
    drive: EditedDrive = summary.drive
    edited = EditedWorld(world, drive)
    rig = load_rig(rig_path if rig_path is not None else summary.rig)
    out_bag = Path(summary.out)
    types = topic_types(out_bag)
    topics = {spec.name: _sensor_topic(types, spec) for spec in rig.sensors}
    bag = read_bag(out_bag, [t for t in topics.values() if t])
    seed = int(world.seed)
    result: dict[str, Any] = {"bag": str(out_bag), "world": str(world_dir), "edit": drive.edits.describe(),
                              "edits": drive.edits.to_dict(), "sensors": {}}
    with atomic_directory(Path(str(out_bag) + ".validation")) as tmp:
        for index, spec in enumerate(rig.sensors):
            messages = bag.get(topics[spec.name] or "", [])
            if not messages:
                raise InputError(f"{out_bag}: no replayed messages of sensor {spec.name!r} to validate")
            is_lidar = isinstance(spec, LidarSpec)
            rows, captures = [], []
            for k in pick(frames, len(messages)):
                msg = messages[k][1]
                ns = m.stamp_ns(msg.header.stamp)
                t = export.world_time(ns)
                label = f"{spec.name} t={t:.2f}s d={drive.offset_at(0, ns):.2f}m"
                if is_lidar:
                    sweep_seed = (seed * 1_000_003 + index * 10_007 + k) % (2**31)
                    gt = groundtruth.render_lidar_truth(edited, spec, t, seed=sweep_seed)
                    truth_msg = m.pointcloud2(ns, spec.name, export.lidar_cloud(spec, gt, t, "xyzircaedt", True))
                    grid = lidar_grid(spec, msg)
                    if grid is None:
                        raise InputError(f"{out_bag}: {topics[spec.name]}: cannot rebuild the range grid")
                    metrics = lidar_metrics(spec, truth_msg, {"range_median": grid})
                    truth = np.asarray(gt["range"], np.float64)
                    rows.append(lidar_figure_row(spec, label, truth, grid))
                else:
                    truth = np.round(np.clip(groundtruth.render_camera_truth(edited, spec, t)["rgb"], 0, 1) * 255) / 255
                    replayed = float_from_image(msg)
                    metrics = camera_metrics(truth, {"rgb": replayed})
                    rows.append((label, truth, replayed, np.abs(replayed - truth).mean(-1)))
                captures.append({"index": k, "time": t, "lateral_offset_m": drive.offset_at(0, ns), **metrics})
            _save_figure(tmp / f"{spec.name}.png", rows, is_lidar)
            result["sensors"][spec.name] = sensor_summary(captures, is_lidar)
        (tmp / "validation.json").write_text(json.dumps(_json_safe(result), indent=2))
    result["output"] = str(out_bag) + ".validation"
    return result


COLUMNS = (("hit_miss_agreement", "hit/miss", "{:.3f}"), ("median_range_error_m", "med |dr| m", "{:.4f}"),
           ("chamfer_m", "chamfer m", "{:.3f}"), ("psnr_db", "PSNR dB", "{:.2f}"), ("ssim", "SSIM", "{:.3f}"))


def format_table(results: list[dict[str, Any]]) -> str:
    """One row per (edit, sensor): per-sensor means over the validated captures."""
    head = f"{'edit':<34}{'sensor':<10}{'frames':>7}" + "".join(f"{title:>12}" for _, title, _ in COLUMNS)
    lines = [head, "-" * len(head)]
    for r in results:
        for name, s in r["sensors"].items():
            cells = []
            for key, _, fmt in COLUMNS:
                v = s.get(key)
                cells.append(f"{(fmt.format(v) if v is not None and math.isfinite(v) else '-'):>12}")
            lines.append(f"{r['edit'][:33]:<34}{name:<10}{s['frames']:>7}" + "".join(cells))
    return "\n".join(lines)
