"""Validation of a synthetic drive: render its Gaussian twin at logged capture times and compare with the bag.

For a few captures per sensor (evenly spread over the drive) this
  1. writes STATE.yaml for the capture start T: the ego pose and world-frame velocities from the /ego/odometry
     message nearest in time (its base_link twist rotated into the map frame) and every actor of the nearest
     /actors message (pose in map, actor-frame twist rotated into the map frame), both carried to T with their
     constant velocities (they coincide with T when the rates line up, as in bags written by xsim synth);
  2. runs `xsim render --scene DIR/scene --rig DIR/rig.yaml --sensor NAME --state STATE.yaml --time T --out X.npz`
     (a subprocess with this interpreter);
  3. compares with the ground truth in the bag:
       LiDAR  hit_miss_agreement: fraction of firings (beams x columns) where ground truth and render agree on
                                  return / no return (render: range_median finite);
              median_range_error_m: median |range_median - true range| over firings both return;
              chamfer_m: mean of the two mean nearest-neighbour distances between the true points and the
                         rendered points (range_median along each firing direction, sensor frame), metres;
       camera psnr_db (peak 1.0 on [0, 1] RGB) and ssim (Gaussian window sigma 1.5, per channel, averaged).
Writes DIR/validation/ atomically: validation.json (per capture and per-sensor means), <sensor>.png
(ground truth | render | error, one row per capture) and states/<sensor>_<k>.yaml.

STATE.yaml (motion/state.py; times in s, metres, radians, world = map; category and size are extra, ignored):
    time: 0.1                         # reference time of the poses below = capture start
    ego: {position: [x, y, z], rotation_wxyz: [w, x, y, z], linear_velocity: [..], angular_velocity: [..]}
    actors:                           # actors that exist at t0
      - {id: 3, category: vehicle, position: [..], rotation_wxyz: [..], linear_velocity: [..],
         angular_velocity: [..], size: [l, w, h]}
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from ..errors import InputError
from ..io_utils import atomic_directory
from ..motion.rigid import RigidMotion
from ..motion.state import SceneState, state_to_dict
from ..rosio.bag import read_bag
from ..rosio.image import float_from_image
from ..rosio.messages import matrix_from_xyzw, stamp_ns
from ..rosio.pointcloud import unpack_cloud
from ..sensors.rays import lidar_directions
from ..sensors.rig import LidarSpec, load_rig
from . import export

DEFAULT_FRAMES = 3


def _vec(v: Any) -> torch.Tensor:
    return torch.tensor([v.x, v.y, v.z], dtype=torch.float64)


def body_motion(t: float, pose: Any, twist: Any) -> RigidMotion:
    """A geometry_msgs Pose (body in map) at time t (s) and a Twist in the body frame (as in nav_msgs/Odometry and
    xsim_msgs/ActorState) -> the constant-velocity motion with world-frame velocities."""
    rot = torch.from_numpy(matrix_from_xyzw(pose.orientation))
    return RigidMotion(rot, _vec(pose.position), rot @ _vec(twist.linear), rot @ _vec(twist.angular), float(t))


def nearest_message(messages: list[tuple[int, Any]], ns: int) -> Any:
    """The message (with a std_msgs Header) whose header stamp is nearest to bag time ns."""
    stamps = np.array([stamp_ns(msg.header.stamp) for _, msg in messages])
    return messages[int(np.argmin(np.abs(stamps - ns)))][1]


def state_document(odometry: list[tuple[int, Any]], actors: list[tuple[int, Any]], ns: int) -> dict[str, Any]:
    """STATE.yaml content for bag time ns (the capture start): the nearest odometry and /actors messages,
    carried to that instant with their own constant velocities (see module doc). Actors with non-numeric ids
    are left out (scenes key actors by integer id)."""
    if not odometry:
        raise InputError("bag: no /ego/odometry messages")
    t = export.world_time(ns)
    odo = nearest_message(odometry, ns)
    ego = body_motion(export.world_time(stamp_ns(odo.header.stamp)), odo.pose.pose, odo.twist.twist).at(t)
    motions, extras = {}, {}
    if actors:
        arr = nearest_message(actors, ns)
        ta = export.world_time(stamp_ns(arr.header.stamp))
        for a in arr.actors:
            if not a.id.isdigit():
                continue
            motions[int(a.id)] = body_motion(ta, a.pose, a.twist).at(t)
            extras[int(a.id)] = {"category": a.category, "size": [float(v) for v in _vec(a.size)]}
    doc = state_to_dict(SceneState(t, ego, motions))
    for entry in doc["actors"]:
        entry.update(extras[entry["id"]])
    return doc


# ----------------------------------------------------------------------------------------------- metrics


def psnr(truth: np.ndarray, render: np.ndarray) -> float:
    """Peak signal-to-noise ratio (dB) of images in [0, 1]."""
    mse = float(np.mean((np.asarray(truth, np.float64) - np.asarray(render, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * math.log10(1.0 / mse)


def ssim(truth: np.ndarray, render: np.ndarray, sigma: float = 1.5) -> float:
    """Mean structural similarity (Wang et al. 2004) of (H, W[, C]) images in [0, 1], Gaussian window."""
    from scipy.ndimage import gaussian_filter

    a = np.asarray(truth, np.float64)
    b = np.asarray(render, np.float64)
    if a.ndim == 2:
        a, b = a[..., None], b[..., None]
    c1, c2 = 0.01**2, 0.03**2
    values = []
    for ch in range(a.shape[-1]):
        x, y = a[..., ch], b[..., ch]

        def blur(img: np.ndarray) -> np.ndarray:
            return gaussian_filter(img, sigma, truncate=3.5)

        mx, my = blur(x), blur(y)
        sxx = blur(x * x) - mx * mx
        syy = blur(y * y) - my * my
        sxy = blur(x * y) - mx * my
        s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
        values.append(float(s.mean()))
    return float(np.mean(values))


def chamfer(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric Chamfer distance: mean of the two mean nearest-neighbour distances (metres)."""
    from scipy.spatial import cKDTree

    if len(a) == 0 or len(b) == 0:
        return float("nan")
    da, _ = cKDTree(b).query(a)
    db, _ = cKDTree(a).query(b)
    return 0.5 * (float(np.mean(da)) + float(np.mean(db)))


def lidar_grid(lidar: LidarSpec, msg: Any) -> np.ndarray | None:
    """(beams, columns) true range with NaN for no return, from an organized cloud or from an unorganized one
    with channel and time fields (column recovered from the firing time); None when it cannot be rebuilt."""
    cloud = unpack_cloud(msg)
    xyz = cloud["xyz"]
    rng = np.linalg.norm(xyz, axis=-1)
    if msg.height == lidar.beams and msg.width == lidar.columns:
        return rng
    if "channel" not in cloud or "time" not in cloud:
        return None
    grid = np.full((lidar.beams, lidar.columns), np.nan)
    col = np.round(cloud["time"].reshape(-1) * lidar.spin_rate_hz * lidar.columns - 0.5).astype(np.int64)
    beam = cloud["channel"].reshape(-1).astype(np.int64)
    ok = (col >= 0) & (col < lidar.columns) & (beam >= 0) & (beam < lidar.beams) & np.isfinite(rng.reshape(-1))
    grid[beam[ok], col[ok]] = rng.reshape(-1)[ok]
    return grid


def lidar_metrics(lidar: LidarSpec, msg: Any, render: dict[str, np.ndarray]) -> dict[str, float]:
    """Hit/miss agreement, median |range error| on common returns, Chamfer distance (see module doc)."""
    cloud = unpack_cloud(msg)
    true_points = cloud["xyz"].reshape(-1, 3)
    true_points = true_points[np.isfinite(true_points).all(1)]
    rendered = np.asarray(render["range_median"], np.float64)
    dirs = lidar_directions(lidar).numpy()
    render_points = (rendered[..., None] * dirs).reshape(-1, 3)
    render_points = render_points[np.isfinite(render_points).all(1)]
    out = {"chamfer_m": chamfer(true_points, render_points), "true_returns": int(len(true_points)),
           "render_returns": int(len(render_points))}
    grid = lidar_grid(lidar, msg)
    if grid is None:
        out.update(hit_miss_agreement=float("nan"), median_range_error_m=float("nan"))
        return out
    hit_true, hit_render = np.isfinite(grid), np.isfinite(rendered)
    both = hit_true & hit_render
    out["hit_miss_agreement"] = float(np.mean(hit_true == hit_render))
    out["median_range_error_m"] = float(np.median(np.abs(rendered[both] - grid[both]))) if both.any() else float(
        "nan")
    return out


def camera_metrics(truth: np.ndarray, render: dict[str, np.ndarray]) -> dict[str, float]:
    rgb = np.clip(np.asarray(render["rgb"], np.float64), 0.0, 1.0)
    return {"psnr_db": psnr(truth, rgb), "ssim": ssim(truth, rgb)}


# ----------------------------------------------------------------------------------------------- figures


def _save_figure(path: Path, rows: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]], lidar: bool) -> None:
    """One row per capture: ground truth | render | error."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    height = 1.6 if lidar else 3.0
    fig, axes = plt.subplots(len(rows), 3, figsize=(15, height * len(rows) + 0.6), squeeze=False)
    for r, (label, truth, render, error) in enumerate(rows):
        if lidar:
            finite = np.concatenate([truth[np.isfinite(truth)], render[np.isfinite(render)]])
            vmax = float(np.percentile(finite, 99)) if finite.size else 1.0
            cmap = matplotlib.colormaps["turbo"].copy()
            cmap.set_bad("black")
            kw = {"aspect": "auto", "interpolation": "nearest", "cmap": cmap, "vmin": 0.0, "vmax": vmax}
            axes[r, 0].imshow(np.ma.masked_invalid(truth), **kw)
            axes[r, 1].imshow(np.ma.masked_invalid(render), **kw)
            err_map = matplotlib.colormaps["magma"].copy()
            err_map.set_bad((0.2, 0.4, 1.0))  # hit/miss disagreement
            im = axes[r, 2].imshow(np.ma.masked_invalid(error), aspect="auto", interpolation="nearest",
                                   cmap=err_map, vmin=0.0, vmax=1.0)
            titles = ("ground truth range (m)", "render range_median (m)", "|error| m (blue: hit/miss differs)")
        else:
            axes[r, 0].imshow(np.clip(truth, 0, 1))
            axes[r, 1].imshow(np.clip(render, 0, 1))
            im = axes[r, 2].imshow(error, cmap="magma", vmin=0.0, vmax=max(float(error.max()), 1e-3))
            titles = ("ground truth", "render", "|error| (mean over RGB)")
        fig.colorbar(im, ax=axes[r, 2], fraction=0.04)
        for c in range(3):
            axes[r, c].set_title(f"{label}: {titles[c]}", fontsize=8)
            axes[r, c].set_xticks([])
            axes[r, c].set_yticks([])
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ----------------------------------------------------------------------------------------------- driver


def pick(count: int, available: int) -> list[int]:
    """`count` indices evenly spread over range(available), first and last included."""
    if available <= 0:
        return []
    return sorted({int(round(x)) for x in np.linspace(0, available - 1, min(count, available))})


def run_render(directory: Path, sensor: str, state: Path, t: float, out: Path) -> dict[str, np.ndarray]:
    """Run `xsim render` as a subprocess and load its npz; RuntimeError with the renderer's last line on failure."""
    cmd = [sys.executable, "-m", "xsim_render.cli.main", "render", "--scene", str(directory / "scene"),
           "--rig", str(directory / "rig.yaml"), "--sensor", sensor, "--state", str(state), "--time", repr(t),
           "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or proc.stdout.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"xsim render failed for {sensor} at t={t}: {last}")
    with np.load(out) as npz:
        return {k: npz[k] for k in npz.files}


def _sort_rows(lidar: LidarSpec, image: np.ndarray) -> np.ndarray:
    """Rows ordered by elevation, top beam first (display only)."""
    return image[np.argsort(-np.asarray(lidar.elevations))]


def validate(directory: str | Path, frames: int | None = None) -> dict[str, Any]:
    """Validate DIR (see the module docstring); returns {'sensors': {name: {...means, 'captures': [...]}}}."""
    directory = Path(directory)
    for part in ("bag", "rig.yaml", "scene"):
        if not (directory / part).exists():
            raise InputError(f"--validate {directory}: missing {part} (not a directory written by xsim synth)")
    rig = load_rig(directory / "rig.yaml")
    try:
        bag = read_bag(directory / "bag")
    except Exception as err:  # rosbags raises several types for unreadable bags
        raise InputError(f"{directory / 'bag'}: cannot read bag ({' '.join(str(err).split())})") from None
    count = DEFAULT_FRAMES if frames is None else int(frames)
    odometry, actors = bag.get("/ego/odometry", []), bag.get("/actors", [])
    result: dict[str, Any] = {"directory": str(directory), "sensors": {}}
    with atomic_directory(directory / "validation") as out, tempfile.TemporaryDirectory() as work:
        (out / "states").mkdir()
        for spec in rig.sensors:
            is_lidar = isinstance(spec, LidarSpec)
            topic = export.lidar_topic(spec.name) if is_lidar else export.image_topic(spec.name)
            messages = bag.get(topic, [])
            if not messages:
                raise InputError(f"{directory / 'bag'}: no messages on {topic}")
            captures, rows = [], []
            for k in pick(count, len(messages)):
                msg = messages[k][1]
                ns = stamp_ns(msg.header.stamp)
                t = export.world_time(ns)
                state_path = out / "states" / f"{spec.name}_{k}.yaml"
                state_path.write_text(yaml.safe_dump(state_document(odometry, actors, ns), sort_keys=False))
                render = run_render(directory, spec.name, state_path, t, Path(work) / f"{spec.name}_{k}.npz")
                label = f"{spec.name} t={t:.3f}s"
                if is_lidar:
                    metrics = lidar_metrics(spec, msg, render)
                    truth = lidar_grid(spec, msg)
                    rendered = np.asarray(render["range_median"], np.float64)
                    truth = np.full(rendered.shape, np.nan) if truth is None else truth
                    rows.append(lidar_figure_row(spec, label, truth, rendered))
                else:
                    truth = float_from_image(msg)
                    metrics = camera_metrics(truth, render)
                    rgb = np.clip(np.asarray(render["rgb"], np.float64), 0, 1)
                    rows.append((label, truth, rgb, np.abs(rgb - truth).mean(-1)))
                captures.append({"index": k, "time": t, **metrics})
            _save_figure(out / f"{spec.name}.png", rows, is_lidar)
            result["sensors"][spec.name] = sensor_summary(captures, is_lidar)
        (out / "validation.json").write_text(json.dumps(_json_safe(result), indent=2))
    return result


def lidar_figure_row(spec: LidarSpec, label: str, truth: np.ndarray, rendered: np.ndarray) -> tuple:
    """(label, truth, rendered, |error|) range grids in elevation order for the validation figure; the error is
    0 where neither returns and NaN where only one does."""
    both = np.isfinite(truth) & np.isfinite(rendered)
    error = np.where(both, np.abs(rendered - truth), np.nan)
    error = np.where(~np.isfinite(truth) & ~np.isfinite(rendered), 0.0, error)
    return label, _sort_rows(spec, truth), _sort_rows(spec, rendered), _sort_rows(spec, error)


def sensor_summary(captures: list[dict[str, Any]], is_lidar: bool) -> dict[str, Any]:
    """A sensor's validation entry: type, frame count, the mean of every metric over its captures (NaN where no
    capture has a finite value) and the captures themselves."""
    keys = [key for key in captures[0] if key not in ("index", "time")]
    means = {key: float(np.nanmean([c[key] for c in captures])) if any(
        np.isfinite(c[key]) for c in captures) else float("nan") for key in keys}
    return {"type": "lidar" if is_lidar else "camera", "frames": len(captures), **means, "captures": captures}


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


COLUMNS = (("hit_miss_agreement", "hit/miss", "{:.3f}"), ("median_range_error_m", "med |dr| m", "{:.3f}"),
           ("chamfer_m", "chamfer m", "{:.3f}"), ("psnr_db", "PSNR dB", "{:.2f}"), ("ssim", "SSIM", "{:.3f}"))


def format_table(result: dict[str, Any]) -> str:
    """Fixed-width table: one row per sensor, per-sensor means over the validated captures."""
    head = f"{'sensor':<16}{'type':<8}{'frames':>7}" + "".join(f"{title:>13}" for _, title, _ in COLUMNS)
    lines = [head, "-" * len(head)]
    for name, s in result["sensors"].items():
        cells = []
        for key, _, fmt in COLUMNS:
            v = s.get(key)
            cells.append(f"{(fmt.format(v) if v is not None and math.isfinite(v) else '-'):>13}")
        lines.append(f"{name:<16}{s['type']:<8}{s['frames']:>7}" + "".join(cells))
    return "\n".join(lines)


def print_table(result: dict[str, Any]) -> None:
    print(format_table(result))
    print(f"wrote {Path(result['directory']) / 'validation'}/ (validation.json, one PNG per sensor)")
