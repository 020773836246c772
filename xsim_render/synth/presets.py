"""World-size presets of the synthetic street and the sensor rig that goes with them.

`small` (tests, quick demos): a T junction with short arms, few buildings, parked cars and poles.
`default` (validation, demo): the same street plan with longer arms, more and taller buildings, more parked cars.
Both rigs are identical (documented choice: validation stays affordable with the pure-PyTorch renderer): one
pinhole camera 'front' 640x480 with a 30 ms top-to-bottom rolling shutter at [1.5, 0, 1.6] in base_link looking
forward, and one spinning LiDAR 'top' with 32 beams (non-uniform, denser near the horizon, -25..+15 deg) x 1024
columns at 10 Hz at [0, 0, 1.9].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import InputError
from ..sensors.rig import CameraSpec, Extrinsics, LidarSpec, Rig, RollingShutter

PRESETS = ("small", "default")
BEAM_EXPONENT = 1.3


@dataclass(frozen=True)
class StreetParams:
    """Sizes (metres) and counts of one preset's street; the arms also grow with the drive's extent."""

    arm_margin: float          # road beyond the outermost route point, each arm
    min_arm: float             # minimum arm length from the junction
    building_width: tuple[float, float]
    building_depth: tuple[float, float]
    building_height: tuple[float, float]
    building_gap: tuple[float, float]
    building_setback: tuple[float, float]   # front behind the sidewalk's outer edge
    pilaster_spacing: tuple[float, float]   # between the pilasters of a facade
    tree_spacing: float        # mean spacing of tree / litter-bin spots along a sidewalk
    parked_cars: int
    pole_spacing: float
    twin_spacing: float        # largest surfel spacing of the Gaussian twin
    extra_actors: bool         # more moving actors


STREETS = {
    "small": StreetParams(arm_margin=25.0, min_arm=35.0, building_width=(10.0, 18.0), building_depth=(8.0, 12.0),
                          building_height=(5.0, 12.0), building_gap=(1.0, 4.0), building_setback=(0.3, 4.0),
                          pilaster_spacing=(2.5, 4.5), tree_spacing=12.0, parked_cars=4, pole_spacing=20.0,
                          twin_spacing=0.8, extra_actors=False),
    "default": StreetParams(arm_margin=45.0, min_arm=70.0, building_width=(8.0, 20.0), building_depth=(8.0, 14.0),
                            building_height=(6.0, 20.0), building_gap=(0.5, 3.0), building_setback=(0.3, 4.0),
                            pilaster_spacing=(2.5, 4.5), tree_spacing=12.0, parked_cars=10, pole_spacing=18.0,
                            twin_spacing=0.8, extra_actors=True),
}


def street_params(preset: str) -> StreetParams:
    """The street parameters of a preset; InputError for an unknown name."""
    if preset not in STREETS:
        raise InputError(f"unknown preset {preset!r} (choose from {', '.join(PRESETS)})")
    return STREETS[preset]


def lidar_elevations(beams: int = 32, lowest_deg: float = -25.0, highest_deg: float = 15.0,
                     exponent: float = BEAM_EXPONENT) -> tuple[float, ...]:
    """Beam elevations (rad, ascending), denser near the horizon: |elevation| grows as (k + 0.6)^exponent on
    each side of 0 (default BEAM_EXPONENT). A VLP-32C-like concentration, exponent 1.7, samples the ground so
    sparsely that KISS-ICP's pitch drifts further in these streets than with 1.3 (scripts/kiss_icp_beam_layouts.py,
    figures in the README)."""
    up = max(2, round(beams * highest_deg / (highest_deg - lowest_deg)))
    down = beams - up
    below = [lowest_deg * ((i + 0.6) / (down - 0.4)) ** exponent for i in range(down)]
    above = [highest_deg * ((i + 0.6) / (up - 0.4)) ** exponent for i in range(up)]
    degrees = sorted(below + above)
    return tuple(round(math.radians(d), 6) for d in degrees)


def default_rig(preset: str) -> Rig:
    """The rig of a preset (see module doc): camera 'front' (pinhole) and LiDAR 'top'."""
    street_params(preset)
    camera = CameraSpec(
        name="front", model="pinhole", width=640, height=480, fx=480.0, fy=480.0, cx=320.0, cy=240.0,
        rolling_shutter=RollingShutter("top_to_bottom", 0.03),
        extrinsics=Extrinsics((1.5, 0.0, 1.6), (0.5, -0.5, 0.5, -0.5)), rate_hz=10.0,
    )
    lidar = LidarSpec(
        name="top", elevations=lidar_elevations(32, -25.0, 15.0), columns=1024, spin_rate_hz=10.0,
        spin_direction="ccw", seam_azimuth=math.pi, min_range=1.0, max_range=120.0,
        extrinsics=Extrinsics((0.0, 0.0, 1.9), (1.0, 0.0, 0.0, 0.0)), rate_hz=10.0,
    )
    return Rig([camera, lidar])
