"""PointCloud2 packing and unpacking in pure numpy, for the layouts documented in docs/pointclouds.md.

Layouts (little endian; this table and LAYOUTS below are the source of truth for docs/pointclouds.md):
  xyzircaedt  point_step 32: x y z float32 @0 4 8, intensity uint8 @12, return_type uint8 @13, channel uint16 @14,
              azimuth float32 @16, elevation float32 @20, distance float32 @24, time_stamp uint32 @28
  xyzirc      point_step 16: the first 16 bytes of the above
  xyzirt      point_step 22: x y z intensity float32 @0 4 8 12, ring uint16 @16, time float32 @18 (packed without
              padding, as the Velodyne ROS driver's PointCloud2Modifier lays it out; readers go by field name)
  xyzi        point_step 16: x y z intensity float32 @0 4 8 12

Units and meanings:
  x y z        metres in the LiDAR frame at the point's own firing time (raw, not deskewed).
  intensity    inputs are reflectance-like values in [0, 1]; every layout stores 255 * i (Velodyne-style 0-255
               scale): uint8 layouts store round(255 i), float layouts store 255 i unrounded. Unpacking divides
               by 255 again. Non-finite or missing intensity is stored as 0.
  return_type  0 (single/strongest return; this simulator produces one return per firing).
  channel/ring beam index in rig order (row of the organized cloud).
  azimuth      atan2(y, x) in the sensor frame, radians; elevation asin(z / r), radians.
  distance     range along the ray, metres.
  time_stamp   uint32 nanoseconds after the header stamp (xyzircaedt); `time` float32 seconds after the
               header stamp (xyzirt). Negative offsets are rejected.

Organized clouds: height = beams, width = columns, no-return firings are kept with x y z and distance NaN
(intensity 0, channel, azimuth, elevation and time those of the firing), is_dense false. Unorganized clouds:
height 1, only returns, is_dense true (non-finite points are rejected).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# sensor_msgs/PointField datatypes
INT8, UINT8, INT16, UINT16, INT32, UINT32, FLOAT32, FLOAT64 = range(1, 9)
_NUMPY_OF = {INT8: "i1", UINT8: "u1", INT16: "i2", UINT16: "u2", INT32: "i4", UINT32: "u4", FLOAT32: "f4",
             FLOAT64: "f8"}


@dataclass(frozen=True)
class Field:
    """One sensor_msgs/PointField: name, byte offset within a point, datatype code, count."""

    name: str
    offset: int
    datatype: int
    count: int = 1


_XYZ = [Field("x", 0, FLOAT32), Field("y", 4, FLOAT32), Field("z", 8, FLOAT32)]
LAYOUTS: dict[str, tuple[list[Field], int]] = {
    "xyzircaedt": (_XYZ + [Field("intensity", 12, UINT8), Field("return_type", 13, UINT8),
                           Field("channel", 14, UINT16), Field("azimuth", 16, FLOAT32),
                           Field("elevation", 20, FLOAT32), Field("distance", 24, FLOAT32),
                           Field("time_stamp", 28, UINT32)], 32),
    "xyzirc": (_XYZ + [Field("intensity", 12, UINT8), Field("return_type", 13, UINT8),
                       Field("channel", 14, UINT16)], 16),
    "xyzirt": (_XYZ + [Field("intensity", 12, FLOAT32), Field("ring", 16, UINT16), Field("time", 18, FLOAT32)], 22),
    "xyzi": (_XYZ + [Field("intensity", 12, FLOAT32)], 16),
}
INTENSITY_SCALE = 255.0


@dataclass
class PackedCloud:
    """The data-bearing fields of a sensor_msgs/PointCloud2 (header excluded)."""

    height: int
    width: int
    fields: list[Field]
    point_step: int
    row_step: int
    data: np.ndarray  # (height * row_step,) uint8
    is_dense: bool
    is_bigendian: bool = False


def layout_dtype(fields: list[Field], point_step: int, bigendian: bool = False) -> np.dtype:
    """numpy structured dtype of one point described by PointFields (padding bytes preserved)."""
    order = ">" if bigendian else "<"
    names, formats, offsets = [], [], []
    for f in fields:
        if f.datatype not in _NUMPY_OF:
            raise ValueError(f"PointField {f.name!r}: unknown datatype {f.datatype}")
        names.append(f.name)
        base = order + _NUMPY_OF[f.datatype]
        formats.append(base if f.count == 1 else (base, (f.count,)))
        offsets.append(f.offset)
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": point_step})


def pack_cloud(
    layout: str,
    xyz: np.ndarray,
    intensity: np.ndarray,
    channel: np.ndarray,
    time: np.ndarray,
    *,
    azimuth: np.ndarray | None = None,
    elevation: np.ndarray | None = None,
    return_type: np.ndarray | None = None,
) -> PackedCloud:
    """Pack LiDAR returns into PointCloud2 data for `layout`.

    Shapes decide organization: xyz (B, C, 3) with the other arrays (B, C) gives an organized cloud (NaN xyz =
    no return); xyz (N, 3) with (N,) arrays an unorganized one (all points must be finite).
    xyz: metres, sensor frame. intensity: [0, 1]. channel: beam index. time: seconds after the header stamp
    (>= 0). azimuth / elevation (radians) default to those of xyz; pass the firing angles to keep them on
    no-return points of organized clouds. return_type defaults to 0.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown PointCloud2 layout {layout!r} (choose from {', '.join(LAYOUTS)})")
    xyz = np.asarray(xyz, dtype=np.float64)
    if xyz.ndim not in (2, 3) or xyz.shape[-1] != 3:
        raise ValueError(f"xyz must be (N, 3) or (B, C, 3), got {xyz.shape}")
    organized = xyz.ndim == 3
    grid = xyz.shape[:-1]

    def per_point(name: str, values: Any, dtype: Any = np.float64) -> np.ndarray:
        arr = np.broadcast_to(np.asarray(values, dtype=dtype), grid) if np.ndim(values) == 0 else np.asarray(
            values, dtype=dtype)
        if arr.shape != grid:
            raise ValueError(f"{name} must have shape {grid}, got {arr.shape}")
        return arr

    intensity = per_point("intensity", intensity)
    channel = per_point("channel", channel, np.int64)
    time = per_point("time", time)
    if np.any(~np.isfinite(time)) or np.any(time < 0):
        raise ValueError("time offsets must be finite and >= 0 seconds after the header stamp")
    if np.any((channel < 0) | (channel > 65535)):
        raise ValueError("channel must lie in [0, 65535]")
    valid = np.isfinite(xyz).all(-1)
    if not organized and not valid.all():
        raise ValueError("unorganized clouds hold returns only: xyz must be finite")
    distance = np.where(valid, np.linalg.norm(np.where(valid[..., None], xyz, 0.0), axis=-1), np.nan)
    if azimuth is None:
        azimuth = np.where(valid, np.arctan2(xyz[..., 1], xyz[..., 0]), np.nan)
    if elevation is None:
        ratio = np.where(valid & (distance > 0), xyz[..., 2] / np.where(distance > 0, distance, 1.0), 0.0)
        elevation = np.where(valid, np.arcsin(np.clip(ratio, -1.0, 1.0)), np.nan)
    azimuth = per_point("azimuth", azimuth)
    elevation = per_point("elevation", elevation)
    rtype = per_point("return_type", 0 if return_type is None else return_type, np.int64)
    scaled = np.where(np.isfinite(intensity) & valid, np.clip(intensity, 0.0, 1.0), 0.0) * INTENSITY_SCALE

    fields, step = LAYOUTS[layout]
    points = np.zeros(grid, dtype=layout_dtype(fields, step))
    names = {f.name for f in fields}
    for axis, name in enumerate("xyz"):
        points[name] = xyz[..., axis]
    points["intensity"] = np.round(scaled) if points.dtype["intensity"].kind == "u" else scaled
    if "return_type" in names:
        points["return_type"] = rtype
    if "channel" in names:
        points["channel"] = channel
    if "ring" in names:
        points["ring"] = channel
    if "azimuth" in names:
        points["azimuth"] = azimuth
        points["elevation"] = elevation
        points["distance"] = distance
    if "time_stamp" in names:
        ns = np.round(time * 1e9)
        if np.any(ns > np.iinfo(np.uint32).max):
            raise ValueError("time offsets above 4.29 s do not fit uint32 nanoseconds")
        points["time_stamp"] = ns.astype(np.uint32)
    if "time" in names:
        points["time"] = time

    height, width = (grid[0], grid[1]) if organized else (1, grid[0])
    return PackedCloud(height=height, width=width, fields=list(fields), point_step=step, row_step=step * width,
                       data=np.frombuffer(points.tobytes(), dtype=np.uint8), is_dense=not organized)


def unpack_cloud(msg: Any) -> dict[str, np.ndarray]:
    """Decode a PointCloud2 (a rosbags message or a PackedCloud) into per-point arrays shaped (height, width).

    Keys: 'xyz' (H, W, 3) float64 metres, then every field by name as stored, plus normalised views:
    'intensity' in [0, 1] (stored value / 255), 'channel' (from channel or ring), 'time' in seconds after the
    header stamp (from time_stamp ns or time s). Organized clouds keep NaN no-return points.
    """
    fields = [Field(f.name, int(f.offset), int(f.datatype), int(f.count)) for f in msg.fields]
    dtype = layout_dtype(fields, int(msg.point_step), bool(msg.is_bigendian))
    height, width = int(msg.height), int(msg.width)
    raw = np.asarray(msg.data, dtype=np.uint8).reshape(height, int(msg.row_step))[:, : width * dtype.itemsize]
    points = np.ascontiguousarray(raw).view(dtype).reshape(height, width)
    out: dict[str, np.ndarray] = {name: points[name].copy() for name in dtype.names}
    out["xyz"] = np.stack([points[a].astype(np.float64) for a in "xyz"], -1)
    if "intensity" in out:
        out["intensity"] = points["intensity"].astype(np.float64) / INTENSITY_SCALE
    if "ring" in out and "channel" not in out:
        out["channel"] = points["ring"].astype(np.int64)
    if "time_stamp" in out:
        out["time"] = points["time_stamp"].astype(np.float64) * 1e-9
    elif "time" in out:
        out["time"] = points["time"].astype(np.float64)
    return out


def layout_of(fields: Any) -> str | None:
    """Name of the layout whose field list matches `fields` (PointField-like objects), or None."""
    got = [(f.name, int(f.offset), int(f.datatype)) for f in fields]
    for name, (layout_fields, _) in LAYOUTS.items():
        if got == [(f.name, f.offset, f.datatype) for f in layout_fields]:
            return name
    return None
