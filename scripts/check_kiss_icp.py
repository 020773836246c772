"""Run KISS-ICP (pip package kiss-icp) over the LiDAR sweeps of a drive bag and report its drift.

    .venv/bin/python scripts/check_kiss_icp.py DIR [--lidar NAME] [--no-deskew] [--voxel-size M]

DIR is an `xsim synth --out` directory (DIR/bag) or a bag directory, such as one recorded from the ROS graph by
`xsim launch ... --record BAG` (scripts/lockstep_kiss_icp.sh). The bag needs /sensing/lidar/<name>/pointcloud,
/tf_static and /ego/odometry; other topics are not read. Each sweep is fed with its per-point times
normalised to [0, 1] over the sweep (time offset / sweep period), deskew on. KISS-ICP (>= 1.0) deskews every
sweep to the time of its last point and its poses are those of the LiDAR frame at that instant, relative to
the first sweep's. The reference is the logged odometry (base_link in map, constant-velocity extrapolation from
the nearest message) composed with the LiDAR's static extrinsic from /tf_static, taken at the same instants.

Drift = |final position error| / distance travelled (sum of reference steps between sweeps), with both
trajectories anchored at sweep --anchor (default 0, the first sweep). The first sweep is registered before
KISS-ICP knows any motion, so it is not deskewed and the map it seeds is offset by about half a sweep of motion;
the line "after bootstrap" anchors at sweep 1 instead to show the drift without that constant offset.
KISS-ICP also assumes it starts at rest (zero constant-velocity prior); drives written by `xsim synth` do.
Exits 0 when the drift (anchor --anchor) is below --bar (default 0.02), 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from xsim_render.rosio.bag import read_bag, topic_types  # noqa: E402
from xsim_render.rosio.messages import matrix_from_xyzw, stamp_ns  # noqa: E402
from xsim_render.rosio.pointcloud import unpack_cloud  # noqa: E402
from xsim_render.synth.validate import body_motion, nearest_message  # noqa: E402


def _se3(rot: np.ndarray, pos: np.ndarray) -> np.ndarray:
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = rot, pos
    return out


def reference_pose(odometry: list, t_ns: int) -> np.ndarray:
    """T_map_base at t_ns from the nearest odometry message, extrapolated with its (body-frame) twist."""
    msg = nearest_message(odometry, t_ns)
    rot, pos = body_motion(0.0, msg.pose.pose, msg.twist.twist).pose_at((t_ns - stamp_ns(msg.header.stamp)) * 1e-9)
    return _se3(rot.numpy(), pos.numpy())


def static_extrinsic(tf_static: list, child: str) -> np.ndarray:
    for _, msg in tf_static:
        for tf in msg.transforms:
            if tf.child_frame_id == child:
                tr = tf.transform.translation
                return _se3(matrix_from_xyzw(tf.transform.rotation), np.array([tr.x, tr.y, tr.z]))
    raise SystemExit(f"no /tf_static transform to {child!r}")


def kiss_config(deskew: bool = True, max_range: float = 100.0, voxel_size: float | None = None):
    """KISS-ICP's default configuration with deskew, max range (m) and voxel size (default max_range / 100)."""
    from kiss_icp.config import load_config

    config = load_config(None)
    config.data.deskew = deskew
    config.data.max_range = max_range
    config.mapping.voxel_size = voxel_size or config.mapping.voxel_size or max_range / 100.0
    return config


def drift_from(estimates: list, references: list, anchor: int) -> tuple[float, float, float, float]:
    """(drift, distance, final error, max error) with both trajectories expressed relative to sweep `anchor`."""
    est = [np.linalg.inv(estimates[anchor]) @ T for T in estimates[anchor:]]
    ref = [np.linalg.inv(references[anchor]) @ T for T in references[anchor:]]
    positions = np.array([T[:3, 3] for T in ref])
    distance = float(np.sum(np.linalg.norm(np.diff(positions, axis=0), axis=1)))
    errors = np.array([np.linalg.norm(e[:3, 3] - r[:3, 3]) for e, r in zip(est, ref)])
    drift = float(errors[-1]) / distance if distance > 0 else float("nan")
    return drift, distance, float(errors[-1]), float(errors.max())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("directory", type=Path)
    ap.add_argument("--lidar", help="LiDAR name (default: the first /sensing/lidar/*/pointcloud topic)")
    ap.add_argument("--no-deskew", action="store_true")
    ap.add_argument("--voxel-size", type=float, default=None, help="KISS-ICP voxel size (default max_range/100)")
    ap.add_argument("--max-range", type=float, default=100.0)
    ap.add_argument("--bar", type=float, default=0.02)
    ap.add_argument("--anchor", type=int, default=0, help="sweep index both trajectories are anchored at")
    args = ap.parse_args(argv)

    from kiss_icp.kiss_icp import KissICP

    bag_dir = args.directory / "bag" if (args.directory / "bag").is_dir() else args.directory
    try:
        types = topic_types(bag_dir)
        topics = sorted(t for t in types if t.startswith("/sensing/lidar/") and t.endswith("/pointcloud"))
        topic = f"/sensing/lidar/{args.lidar}/pointcloud" if args.lidar else (topics or [""])[0]
        msgs = read_bag(bag_dir, [topic, "/tf_static", "/ego/odometry"])
    except Exception as err:  # rosbags raises several types for missing or unreadable bags
        print(f"check_kiss_icp: error: {bag_dir}: cannot read bag ({' '.join(str(err).split())})", file=sys.stderr)
        return 2
    for needed in (topic, "/tf_static", "/ego/odometry"):
        if not msgs.get(needed):
            print(f"check_kiss_icp: error: {bag_dir}: no messages on {needed or '/sensing/lidar/*/pointcloud'}",
                  file=sys.stderr)
            return 2
    name = topic.split("/")[3]
    sweeps = msgs[topic]
    extrinsic = static_extrinsic(msgs["/tf_static"], sweeps[0][1].header.frame_id)

    config = kiss_config(not args.no_deskew, args.max_range, args.voxel_size)
    odometry = KissICP(config)

    estimates, references = [], []
    for _, msg in sweeps:
        cloud = unpack_cloud(msg)
        xyz = cloud["xyz"].reshape(-1, 3)
        rel = cloud["time"].reshape(-1) if "time" in cloud else np.zeros(len(xyz))
        keep = np.isfinite(xyz).all(1)
        xyz, rel = xyz[keep], rel[keep]
        period = max(float(rel.max()), 1e-9)
        odometry.register_frame(xyz, rel / period)
        estimates.append(odometry.last_pose.copy())
        t_ref = stamp_ns(msg.header.stamp) + int(round(rel.max() * 1e9))  # time of the sweep's last point
        references.append(reference_pose(msgs["/ego/odometry"], t_ref) @ extrinsic)

    drift, distance, final, worst = drift_from(estimates, references, args.anchor)
    boot = drift_from(estimates, references, 1)[0] if len(sweeps) > 2 else float("nan")
    print(f"lidar               {name} ({len(sweeps)} sweeps, deskew {'on' if config.data.deskew else 'off'}, "
          f"voxel {config.mapping.voxel_size:.2f} m)")
    print(f"distance travelled  {distance:.2f} m (from sweep {args.anchor})")
    print(f"final position err  {final:.3f} m (max along the way {worst:.3f} m)")
    print(f"drift               {100 * drift:.2f} % of distance (bar {100 * args.bar:.1f} %)")
    print(f"after bootstrap     {100 * boot:.2f} % (anchored at sweep 1)")
    return 0 if drift < args.bar else 1


if __name__ == "__main__":
    sys.exit(main())
