"""sensor_msgs/Image (rgb8) and sensor_msgs/CameraInfo contents from numpy images and rig CameraSpecs.

The rig's distortion coefficients are in OpenCV order (k1 k2 p1 p2 [k3 [k4 k5 k6]]) for model `opencv` and
(k1 k2 k3 k4) for model `fisheye`. CameraInfo mapping:
  pinhole           -> plumb_bob, D = 5 zeros
  opencv, 4 or 5    -> plumb_bob, D = (k1 k2 p1 p2 k3), k3 = 0 when absent
  opencv, 8         -> rational_polynomial, D = (k1 k2 p1 p2 k3 k4 k5 k6)
  fisheye, 4        -> equidistant, D = (k1 k2 k3 k4)
K = [fx 0 cx'; 0 fy cy'; 0 0 1] in pixels, R = identity (monocular), P = [K | 0] (the published image is the
raw, unrectified one, so P repeats K as monocular ROS drivers do).
Pixel coordinates: the rig (like the renderer, sensors/rays.py) puts the top-left image corner at (0, 0), so
pixel (i, j) is centred at (j + 0.5, i + 0.5); ROS / OpenCV centre pixel (i, j) at (j, i). Hence
cx' = cx - 0.5 and cy' = cy - 0.5 in CameraInfo, so that projecting with K lands on the right pixel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..sensors.rig import CameraSpec

PIXEL_CENTRE_SHIFT = 0.5  # rig principal point (corner-origin) minus ROS principal point (centre-origin), pixels


@dataclass
class ImageData:
    """Fields of a sensor_msgs/Image: rgb8, row-major, no padding."""

    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: np.ndarray  # (height * step,) uint8


def rgb8_from_float(rgb: np.ndarray) -> ImageData:
    """Quantise an (H, W, 3) float image in [0, 1] (values outside are clipped, NaN -> 0) to rgb8."""
    rgb = np.asarray(rgb, dtype=np.float64)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb must be (H, W, 3), got {rgb.shape}")
    pixels = np.round(np.clip(np.nan_to_num(rgb, nan=0.0), 0.0, 1.0) * 255.0).astype(np.uint8)
    height, width = rgb.shape[:2]
    return ImageData(height, width, "rgb8", 0, width * 3, pixels.reshape(-1))


def float_from_image(msg) -> np.ndarray:
    """(H, W, 3) float64 in [0, 1] from an rgb8 / bgr8 / mono8 Image message (or ImageData)."""
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    raw = np.asarray(msg.data, dtype=np.uint8).reshape(height, step)
    if msg.encoding in ("rgb8", "bgr8"):
        pixels = raw[:, : width * 3].reshape(height, width, 3)
        if msg.encoding == "bgr8":
            pixels = pixels[..., ::-1]
    elif msg.encoding == "mono8":
        pixels = np.repeat(raw[:, :width, None], 3, axis=2)
    else:
        raise ValueError(f"unsupported image encoding {msg.encoding!r}")
    return pixels.astype(np.float64) / 255.0


@dataclass
class CameraInfoData:
    """Fields of a sensor_msgs/CameraInfo (header, binning and ROI left to the caller)."""

    height: int
    width: int
    distortion_model: str
    d: np.ndarray  # (n,) float64
    k: np.ndarray  # (9,) row-major
    r: np.ndarray  # (9,)
    p: np.ndarray  # (12,)


def camera_info(camera: CameraSpec) -> CameraInfoData:
    """CameraInfo contents for a rig camera (see the module docstring for the distortion mapping)."""
    dist = tuple(float(v) for v in camera.distortion)
    if camera.model == "fisheye":
        model, d = "equidistant", (dist + (0.0,) * 4)[:4]
    elif camera.model == "opencv" and len(dist) == 8:
        model, d = "rational_polynomial", dist
    elif camera.model == "opencv":
        model, d = "plumb_bob", (dist + (0.0,) * 5)[:5]
    else:
        model, d = "plumb_bob", (0.0,) * 5
    cx, cy = camera.cx - PIXEL_CENTRE_SHIFT, camera.cy - PIXEL_CENTRE_SHIFT
    k = np.array([camera.fx, 0.0, cx, 0.0, camera.fy, cy, 0.0, 0.0, 1.0])
    p = np.array([camera.fx, 0.0, cx, 0.0, 0.0, camera.fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0])
    return CameraInfoData(camera.height, camera.width, model, np.array(d, dtype=np.float64), k,
                          np.eye(3).reshape(-1), p)
