"""What a recorded graph run looked like: a per-topic table (count, rate, latency) and a contact sheet PNG.

Latency of a message = the wall time at which the recorder received it minus the wall time at which the graph's
clock reached the message's header stamp (under sim time: the first /clock >= stamp seen by the recorder; without
/clock: the stamp itself is wall time). So a camera frame's latency is the time from "the scene reached the
capture's start" to "the frame arrived", rendering included. Rate = messages per second of graph clock between the
first and the last message of the topic (the log times of the bag).
"""

from __future__ import annotations

import bisect
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# message types whose CDR starts with a std_msgs/Header or builtin_interfaces/Time (stamp right after the 4-byte
# encapsulation header): their stamp is read without deserialising
STAMPED_TYPES = {
    "sensor_msgs/msg/Image", "sensor_msgs/msg/CameraInfo", "sensor_msgs/msg/PointCloud2", "nav_msgs/msg/Odometry",
    "xsim_msgs/msg/ActorStateArray", "diagnostic_msgs/msg/DiagnosticArray", "rosgraph_msgs/msg/Clock",
    "std_msgs/msg/Header",
}
NS = 1_000_000_000


def raw_stamp_ns(msgtype: str, data: bytes) -> int | None:
    """Header stamp (ns) of a serialised message of a STAMPED_TYPES type (little-endian CDR), else None."""
    if msgtype not in STAMPED_TYPES or len(data) < 12:
        return None
    sec, nanosec = struct.unpack_from("<iI", data, 4)
    return sec * NS + nanosec


@dataclass
class TopicLog:
    """Per-topic receive records: log time (graph clock, ns), header stamp (ns or None), wall receive time (s)."""

    msgtype: str
    log_ns: list[int] = field(default_factory=list)
    stamp_ns: list[int | None] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)


class ClockMap:
    """Wall time (s) at which the graph clock first reached each value (from /clock messages, in order)."""

    def __init__(self) -> None:
        self.sim: list[int] = []
        self.wall: list[float] = []

    def add(self, sim_ns: int, wall: float) -> None:
        if not self.sim or sim_ns > self.sim[-1]:
            self.sim.append(int(sim_ns))
            self.wall.append(float(wall))

    def wall_at(self, stamp_ns: int) -> float:
        """Wall time when the clock reached stamp_ns; NaN if it never did while recording."""
        i = bisect.bisect_left(self.sim, int(stamp_ns))
        return self.wall[i] if i < len(self.sim) else math.nan


def topic_rows(logs: dict[str, TopicLog], clock: ClockMap | None, wall_of_epoch: float | None = None
               ) -> list[dict[str, Any]]:
    """One row per topic: topic, type, count, rate_hz, latency_ms_mean, latency_ms_p95 (NaN where unknown).

    clock: the /clock map when the graph ran on sim time; otherwise wall_of_epoch = monotonic wall time minus
    ROS (epoch) wall time in seconds, to turn a wall-clock stamp into the recorder's monotonic time base."""
    rows = []
    for topic, log in sorted(logs.items()):
        n = len(log.log_ns)
        span = (log.log_ns[-1] - log.log_ns[0]) / NS if n > 1 else 0.0
        lat = []
        for stamp, wall in zip(log.stamp_ns, log.wall):
            if stamp is None:
                continue
            if clock is not None and clock.sim:
                ref = clock.wall_at(stamp)
            elif wall_of_epoch is not None:
                ref = stamp / NS + wall_of_epoch
            else:
                ref = math.nan
            if math.isfinite(ref):
                lat.append((wall - ref) * 1e3)
        lat_arr = np.array(lat)
        rows.append({"topic": topic, "type": log.msgtype, "count": n,
                     "rate_hz": (n - 1) / span if span > 0 else math.nan,
                     "latency_ms_mean": float(lat_arr.mean()) if lat_arr.size else math.nan,
                     "latency_ms_p95": float(np.percentile(lat_arr, 95)) if lat_arr.size else math.nan})
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    """Plain-text table of topic_rows."""
    def num(v: float, fmt: str) -> str:
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)

    width = max([len("topic")] + [len(r["topic"]) for r in rows])
    lines = [f"{'topic':<{width}}  {'count':>6}  {'rate Hz':>8}  {'latency mean ms':>15}  {'p95 ms':>8}"]
    for r in rows:
        lines.append(f"{r['topic']:<{width}}  {r['count']:>6}  {num(r['rate_hz'], '.2f'):>8}  "
                     f"{num(r['latency_ms_mean'], '.1f'):>15}  {num(r['latency_ms_p95'], '.1f'):>8}")
    return "\n".join(lines)


def bev_image(xyz: np.ndarray, extent: float = 40.0, size: int = 240) -> np.ndarray:
    """Bird's-eye view (size x size RGB float) of sensor-frame points: x forward = up, y left = left; colour by
    height. NaN points are ignored."""
    pts = xyz.reshape(-1, 3)
    pts = pts[np.isfinite(pts).all(1)]
    img = np.zeros((size, size, 3))
    if len(pts):
        col = ((-pts[:, 1] + extent) / (2 * extent) * size).astype(int)
        row = ((extent - pts[:, 0]) / (2 * extent) * size).astype(int)
        ok = (col >= 0) & (col < size) & (row >= 0) & (row < size)
        import matplotlib

        h = np.clip((pts[ok, 2] + 2.0) / 6.0, 0, 1)
        img[row[ok], col[ok]] = matplotlib.colormaps["viridis"](h)[:, :3]
    c = size // 2
    img[c - 2:c + 3, c - 2:c + 3] = (1.0, 0.2, 0.2)
    return img


def contact_sheet_from_bag(bag: str | Path, out_png: str | Path, frames: int = 5) -> int:
    """A contact sheet PNG: for up to `frames` instants spread over the bag, every camera image and every LiDAR
    sweep's bird's-eye view (one row per instant). Returns the number of rows drawn (0 if no sensor topic)."""
    from ..rosio.bag import read_bag, topic_types
    from ..rosio.image import float_from_image
    from ..rosio.pointcloud import unpack_cloud
    from ..viz.images import contact_sheet

    types = topic_types(bag)
    sensors = sorted(t for t, ty in types.items() if ty in ("sensor_msgs/msg/Image", "sensor_msgs/msg/PointCloud2"))
    if not sensors:
        return 0
    messages = read_bag(bag, sensors)
    stamps = sorted({_stamp(msg) for t in sensors for _, msg in messages.get(t, [])})
    if not stamps:
        return 0
    picks = [stamps[int(round(i))] for i in np.linspace(0, len(stamps) - 1, min(frames, len(stamps)))]
    tiles = []
    for ns in picks:
        for topic in sensors:
            msgs = messages.get(topic, [])
            if not msgs:
                continue
            msg = min((msg for _, msg in msgs), key=lambda mm: abs(_stamp(mm) - ns))
            label = f"{topic}  t={_stamp(msg) / NS:.2f} s"
            if types[topic] == "sensor_msgs/msg/Image":
                tiles.append((label, float_from_image(msg)))
            else:
                tiles.append((label + " (BEV)", bev_image(unpack_cloud(msg)["xyz"])))
    contact_sheet(Path(out_png), tiles, columns=len([t for t in sensors if messages.get(t)]))
    return len(picks)


def _stamp(msg: Any) -> int:
    return int(msg.header.stamp.sec) * NS + int(msg.header.stamp.nanosec)
