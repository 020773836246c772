"""The static street of the synthetic world: road, markings, sidewalks, buildings, street furniture.

World frame z up, ground at z = 0, metres. The main road runs along x, the side road of the T junction along +y
from x = 0; both are 2 * ROAD_HALF_WIDTH wide, with sidewalks out to SIDEWALK_OUTER from their centre lines.
Buildings stand in rows along both sides of both streets, their fronts set back (0.3-4 m) behind the sidewalk
(a paved forecourt fills the setback) with gaps between them; street-facing facades carry pilasters (vertical
ribs PILASTER_DEPTH deep), so that a facade does not look the same from wherever one stands (a street of flat,
aligned facades is a corridor in which LiDAR odometry cannot tell how far it moved). Buildings close the side
road and both ends of the main road. Street lights, trees, litter bins, a bus shelter with glass panes, a
traffic sign and parked cars line the sidewalks.
Every random draw comes from the generator passed in, in a fixed order (deterministic worlds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import trimesh

from .materials import Material
from .presets import StreetParams
from .shapes import CAR_SIZE, Parts, ball, box, car_parts, cylinder, quad, rect_z, yaw_matrix

LANE_WIDTH = 3.5
ROAD_HALF_WIDTH = 6.0          # two lanes plus a 2.5 m parking strip on each side
SIDEWALK_OUTER = 9.5           # sidewalks span 6..9.5 m from a road's centre line, up to the forecourts
CURB_HEIGHT = 0.15
BUILDING_FRONT = 9.5           # building fronts are at least this far (plus the setback) from the centre line
MARKING_HEIGHT = 0.005
MARKING_WIDTH = 0.15
PILASTER_WIDTH = 0.5           # along the facade (m)
PILASTER_DEPTH = 0.6           # out of the facade, towards the street (m)
TREE_OFFSET = 1.6              # trees stand this far behind the curb line (m)
BIN_OFFSET = 0.6               # litter bins stand this far behind the curb line (m), in line with the poles
BUILDING_STYLES = ("building_brick", "building_plaster", "building_concrete", "building_blue")


@dataclass
class Extent:
    """How far the street reaches (m): the main road over [x_min, x_max], the side road up to y_max."""

    x_min: float
    x_max: float
    y_max: float


@dataclass
class _Row:
    """One side of one street: buildings placed along `along_x` (else along y), fronts facing the street centre.

    front: coordinate (y for rows along x, x otherwise) of the row's sidewalk edge; outward: +1 or -1, the
    direction away from the street. footprints: (x0, x1, y0, y1, height, setback) per building."""

    along_x: bool
    front: float
    outward: float
    footprints: list[tuple[float, float, float, float, float, float]]


def _xy(along_x: bool, along, across) -> tuple:
    """(x, y) from coordinates along and across a street (along = x for streets along x, else y); values or
    (lo, hi) spans. Its own inverse: _xy(along_x, x, y) gives (along, across)."""
    return (along, across) if along_x else (across, along)


def _frontage(rng: np.random.Generator, p: StreetParams, start: float, stop: float, front: float,
              along_x: bool, outward: float) -> _Row:
    """Buildings placed from `start` towards `stop` along one street side (see _Row)."""
    out = []
    direction = 1.0 if stop > start else -1.0
    a = start
    while True:
        width = rng.uniform(*p.building_width)
        depth = rng.uniform(*p.building_depth)
        height = rng.uniform(*p.building_height)
        gap = rng.uniform(*p.building_gap)
        setback = rng.uniform(*p.building_setback)
        remaining = (stop - a) * direction
        if remaining < 5.0:
            break
        width = min(width, remaining)
        a0, a1 = sorted((a, a + direction * width))
        f0, f1 = sorted((front + outward * setback, front + outward * (setback + depth)))
        (x0, x1), (y0, y1) = _xy(along_x, (a0, a1), (f0, f1))
        out.append((x0, x1, y0, y1, height, setback))
        a += direction * (width + gap)
    return _Row(along_x, front, outward, out)


def _markings(parts: Parts, ext: Extent) -> None:
    z, w = MARKING_HEIGHT, MARKING_WIDTH / 2
    h = ROAD_HALF_WIDTH
    # main road: dashed centre line (3 m dashes every 6 m, anchored at x = 0), solid lane edges
    for k in range(int(math.floor(ext.x_min / 6.0)), int(math.ceil(ext.x_max / 6.0)) + 1):
        x0 = 6.0 * k + 1.5
        if ext.x_min + 1 < x0 and x0 + 3 < ext.x_max - 1 and (x0 + 3 < -h - 1 or x0 > h + 1):
            parts.add(rect_z(x0, x0 + 3.0, -w, w, z), "lane_marking", "lane_marking")
    parts.add(rect_z(ext.x_min, ext.x_max, -LANE_WIDTH - w, -LANE_WIDTH + w, z), "lane_marking", "lane_marking")
    for x0, x1 in ((ext.x_min, -h), (h, ext.x_max)):
        parts.add(rect_z(x0, x1, LANE_WIDTH - w, LANE_WIDTH + w, z), "lane_marking", "lane_marking")
    # side road: dashed centre line, lane edges, stop line on the lane leading into the junction
    for k in range(2, int(ext.y_max / 6.0)):
        y0 = 6.0 * k
        if y0 + 3 < ext.y_max - 1:
            parts.add(rect_z(-w, w, y0, y0 + 3.0, z), "lane_marking", "lane_marking")
    for xc in (-LANE_WIDTH, LANE_WIDTH):
        parts.add(rect_z(xc - w, xc + w, h, ext.y_max, z), "lane_marking", "lane_marking")
    parts.add(rect_z(-LANE_WIDTH + w, -w, 7.4, 7.8, z), "lane_marking", "lane_marking")


def _sidewalk(parts: Parts, x0: float, x1: float, y0: float, y1: float) -> None:
    v, f = box(((x0 + x1) / 2, (y0 + y1) / 2, CURB_HEIGHT / 2), (x1 - x0, y1 - y0, CURB_HEIGHT))
    normals = trimesh.Trimesh(v, f, process=False).face_normals
    parts.add((v, f), ["sidewalk" if n[2] > 0.9 else "curb" for n in normals], "sidewalk")


def _street_light(parts: Parts, x: float, y: float, toward_road: np.ndarray, index: int) -> None:
    name = f"pole_{index}"
    top = CURB_HEIGHT + 6.0
    parts.add(cylinder((x, y, CURB_HEIGHT), 0.09, 6.0, 8), "pole", name)
    d = np.asarray(toward_road, dtype=np.float64)
    yaw = math.atan2(d[1], d[0])
    parts.add(box((x + 0.6 * d[0], y + 0.6 * d[1], top - 0.08), (1.2, 0.1, 0.1), yaw), "pole", name)
    parts.add(box((x + 1.15 * d[0], y + 1.15 * d[1], top - 0.2), (0.5, 0.25, 0.14), yaw), "pole", name)


def _bus_shelter(parts: Parts, xs: float) -> None:
    """A bus shelter on the south sidewalk from x = xs: posts, roof, glass back pane and glass side pane."""
    name = "bus_shelter"
    yb, yf, z0, z1 = -8.7, -7.4, CURB_HEIGHT, CURB_HEIGHT + 2.2
    for px in (xs, xs + 3.2):
        for py in (yb, yf):
            parts.add(box((px, py, (z0 + z1) / 2), (0.06, 0.06, z1 - z0)), "shelter_frame", name)
    parts.add(box((xs + 1.6, (yb + yf) / 2, z1 + 0.05), (3.4, 1.6, 0.1)), "shelter_frame", name)
    g0, g1 = z0 + 0.1, z1 - 0.02
    parts.add(quad((xs + 0.03, yb, g0), (xs + 3.17, yb, g0), (xs + 3.17, yb, g1), (xs + 0.03, yb, g1)), "glass",
              "glass")
    parts.add(quad((xs, yf - 0.03, g0), (xs, yb + 0.03, g0), (xs, yb + 0.03, g1), (xs, yf - 0.03, g1)), "glass",
              "glass")


def _traffic_sign(parts: Parts, x: float, y: float) -> None:
    parts.add(cylinder((x, y, CURB_HEIGHT), 0.04, 2.2, 8), "pole", "sign_pole")
    parts.add(box((x - 0.07, y, CURB_HEIGHT + 1.95), (0.04, 0.7, 0.7)), "sign", "sign")


def _ground(parts: Parts, rows: list[_Row], corner: float) -> None:
    """Ground in the gaps between neighbouring buildings of each row (as deep as the deeper one + 1 m) and in the
    junction's corners between the rows of the two streets (the only ground seen from the streets)."""
    for row in rows:
        spans = []
        for x0, x1, y0, y1, _, _ in row.footprints:
            (a0, a1), (f0, f1) = _xy(row.along_x, (x0, x1), (y0, y1))
            spans.append((a0, a1, max(abs(f0 - row.front), abs(f1 - row.front))))
        spans.sort()
        for (_, a_end, a_reach), (b_start, _, b_reach) in zip(spans, spans[1:]):
            if b_start - a_end > 1e-3:
                f0, f1 = sorted((row.front, row.front + row.outward * (max(a_reach, b_reach) + 1.0)))
                xs, ys = _xy(row.along_x, (a_end, b_start), (f0, f1))
                parts.add(rect_z(*xs, *ys, 0.0), "ground", "ground")
    fb = BUILDING_FRONT
    for row in rows[1:3]:
        first = min(row.footprints, key=lambda f: min(abs(f[0]), abs(f[1])))
        if corner - first[3] > 1e-3:
            x0, x1 = (-corner, -fb) if first[0] < 0 else (fb, corner)
            parts.add(rect_z(x0, x1, first[3], corner, 0.0), "ground", "ground")


def _forecourt_and_pilasters(rng: np.random.Generator, p: StreetParams, parts: Parts, row: _Row,
                             footprint: tuple[float, ...], style: str, name: str) -> None:
    """Paved forecourt between the sidewalk and a set-back building, and pilasters on its street-facing facade."""
    x0, x1, y0, y1, height, setback = footprint
    (a0, a1), _ = _xy(row.along_x, (x0, x1), (y0, y1))
    face = row.front + row.outward * setback
    # the forecourt overlaps the sidewalk by 0.3 m (same material and height: no seam, see generate_world)
    c0, c1 = sorted((row.front - row.outward * 0.3, face))
    xs, ys = _xy(row.along_x, (a0, a1), (c0, c1))
    parts.add(rect_z(*xs, *ys, CURB_HEIGHT), "sidewalk", "forecourt")
    mid = face - row.outward * PILASTER_DEPTH / 2
    a = a0 + PILASTER_WIDTH / 2
    while a <= a1 - PILASTER_WIDTH / 2 + 1e-9:
        size = (*_xy(row.along_x, PILASTER_WIDTH, PILASTER_DEPTH), height)
        parts.add(box((*_xy(row.along_x, a, mid), height / 2), size), style, name)
        a += rng.uniform(*p.pilaster_spacing)


def _buildings(rng: np.random.Generator, p: StreetParams, parts: Parts, ext: Extent) -> None:
    """Rows of box buildings along both sides of both streets, buildings closing the side road and both ends of the
    main road, and ground."""
    fb = BUILDING_FRONT
    corner = fb + p.building_setback[1] + p.building_depth[1] + 1.0
    rows = [
        _frontage(rng, p, ext.x_min - 5.0, ext.x_max + 5.0, -fb, True, -1.0),
        _frontage(rng, p, -fb, ext.x_min - 10, fb, True, 1.0),
        _frontage(rng, p, fb, ext.x_max + 10, fb, True, 1.0),
        _frontage(rng, p, corner, ext.y_max, -fb, False, -1.0),
        _frontage(rng, p, corner, ext.y_max, fb, False, 1.0),
    ]
    index = 0
    for row in rows:
        for footprint in row.footprints:
            x0, x1, y0, y1, height, _ = footprint
            style = BUILDING_STYLES[int(rng.integers(len(BUILDING_STYLES)))]
            parts.add(box(((x0 + x1) / 2, (y0 + y1) / 2, height / 2), (x1 - x0, y1 - y0, height)), style,
                      f"building_{index}")
            _forecourt_and_pilasters(rng, p, parts, row, footprint, style, f"building_{index}")
            index += 1
    height = rng.uniform(*p.building_height)
    style = BUILDING_STYLES[int(rng.integers(len(BUILDING_STYLES)))]
    parts.add(box((0.0, ext.y_max + 6.0, height / 2), (2 * fb + 6.0, 10.0, height)), style, f"building_{index}")
    for k, x in enumerate((ext.x_min - 6.0, ext.x_max + 6.0)):  # the main road's ends
        height = rng.uniform(*p.building_height)
        style = BUILDING_STYLES[int(rng.integers(len(BUILDING_STYLES)))]
        parts.add(box((x, 0.0, height / 2), (10.0, 2 * fb + 6.0, height)), style, f"building_{index + 1 + k}")
    _ground(parts, rows, corner)


def _tree(rng: np.random.Generator, parts: Parts, x: float, y: float, index: int) -> None:
    """A street tree on the sidewalk: a trunk and a low-polygon crown."""
    name = f"tree_{index}"
    trunk = rng.uniform(2.4, 3.2)
    radius = rng.uniform(1.3, 1.9)
    parts.add(cylinder((x, y, CURB_HEIGHT), 0.14, trunk, 8), "bark", name)
    parts.add(ball((x, y, CURB_HEIGHT + trunk + 0.7 * radius), radius), "foliage", name)


def _bin(rng: np.random.Generator, parts: Parts, x: float, y: float, index: int) -> None:
    """A litter bin on the sidewalk by the curb."""
    parts.add(box((x, y, CURB_HEIGHT + 0.5), (0.55, 0.55, 1.0), rng.uniform(-0.3, 0.3)), "bin", f"bin_{index}")


def _furniture(rng: np.random.Generator, p: StreetParams, parts: Parts, ext: Extent, shelter_x: float,
               pole_positions: list[tuple[float, float]]) -> None:
    """Trees (TREE_OFFSET behind the curb, a spot every ~tree_spacing m; a quarter of the spots get a litter bin by
    the curb instead) along the sidewalks of both streets, clear of poles, the shelter, the sign and the junction."""
    h = ROAD_HALF_WIDTH
    spots: list[tuple[float, float, bool]] = []   # (x, y, on the main road)
    for side in (-1.0, 1.0):
        x = ext.x_min + rng.uniform(2.0, 6.0)
        while x < ext.x_max - 3.0:
            spots.append((x, side * (h + TREE_OFFSET), True))
            x += p.tree_spacing * rng.uniform(0.7, 1.3)
    for side in (-1.0, 1.0):
        y = 16.0 + rng.uniform(0.0, 4.0)
        while y < ext.y_max - 3.0:
            spots.append((side * (h + TREE_OFFSET), y, False))
            y += p.tree_spacing * rng.uniform(0.7, 1.3)
    trees = bins = 0
    for x, y, on_main in spots:
        near_junction = on_main and y > 0 and abs(x) < 14.0
        near_shelter = on_main and y < 0 and shelter_x - 3.0 < x < shelter_x + 6.0
        near_sign = on_main and y < 0 and -10.0 < x < -4.0
        near_pole = any(math.hypot(x - px, y - py) < 2.5 for px, py in pole_positions)
        if near_junction or near_shelter or near_sign or near_pole:
            continue
        if rng.random() < 0.75:
            _tree(rng, parts, x, y, trees)
            trees += 1
        elif on_main:
            _bin(rng, parts, x + 1.0, math.copysign(h + BIN_OFFSET, y), bins)
            bins += 1
        else:
            _bin(rng, parts, math.copysign(h + BIN_OFFSET, x), y + 1.0, bins)
            bins += 1


def _parked_cars(rng: np.random.Generator, p: StreetParams, materials: list[Material], parts: Parts,
                 ext: Extent) -> list[tuple[float, float, float]]:
    park = ROAD_HALF_WIDTH - 1.25
    slots = []
    for x in np.arange(ext.x_min + 6.0, ext.x_max - 6.0, 6.5):
        slots.append((x, -park, 0.0))
        if x < -18.0 or x > 12.0:
            slots.append((x, park, math.pi))
    for y in np.arange(16.0, ext.y_max - 6.0, 6.5):
        slots.append((park, y, math.pi / 2))
        slots.append((-park, y, -math.pi / 2))
    chosen = sorted(rng.choice(len(slots), size=min(p.parked_cars, len(slots)), replace=False).tolist())
    paints = ["car_paint_red", "car_paint_blue", "car_paint_white", "car_paint_yellow"]
    cars = []
    for k, i in enumerate(chosen):
        x, y, yaw = slots[i]
        yaw += math.radians(rng.uniform(-2.0, 2.0))
        car = car_parts(materials, paints[int(rng.integers(len(paints)))])
        parts.add_parts(car, yaw_matrix(yaw), (x, y, CAR_SIZE[2] / 2), f"parked_car_{k}")
        cars.append((x, y, yaw))
    return cars


def build_street(rng: np.random.Generator, p: StreetParams, materials: list[Material], ext: Extent) -> Parts:
    """All static geometry of the street of extent `ext` (see module doc), drawing from rng in a fixed order."""
    parts = Parts(materials)
    h, s = ROAD_HALF_WIDTH, SIDEWALK_OUTER
    parts.add(rect_z(ext.x_min, ext.x_max, -h, h, 0.0), "road", "road")
    # pieces of the same surface overlap a little instead of abutting (no seams in the Gaussian twin; coplanar
    # overlaps of one material look the same to the ground truth whichever face a ray finds)
    parts.add(rect_z(-h, h, h - 1.0, ext.y_max, 0.0), "road", "road")
    _markings(parts, ext)
    _sidewalk(parts, ext.x_min, ext.x_max, -s, -h)
    _sidewalk(parts, ext.x_min, -h, h, s)
    _sidewalk(parts, h, ext.x_max, h, s)
    _sidewalk(parts, -s, -h, h, ext.y_max)
    _sidewalk(parts, h, s, h, ext.y_max)
    _buildings(rng, p, parts, ext)
    shelter_x = rng.uniform(3.0, 8.0)
    _bus_shelter(parts, shelter_x)
    _traffic_sign(parts, -7.0, -6.6)
    poles: list[tuple[float, float]] = []

    def light(x: float, y: float, toward_road: tuple[float, float]) -> None:
        _street_light(parts, x, y, np.array(toward_road), len(poles))
        poles.append((x, y))

    for x in np.arange(ext.x_min + 5.0, ext.x_max - 5.0, p.pole_spacing):
        x = float(x + rng.uniform(-2.0, 2.0))
        if not (shelter_x - 2.0 < x < shelter_x + 5.2 or -9.0 < x < -5.0):
            light(x, -h - 0.6, (0.0, 1.0))
        if abs(x) > 11.0:
            light(x, h + 0.6, (0.0, -1.0))
    for y in np.arange(14.0, ext.y_max - 5.0, p.pole_spacing):
        light(-h - 0.6, float(y), (1.0, 0.0))
        light(h + 0.6, float(y + p.pole_spacing / 2), (-1.0, 0.0))
    _furniture(rng, p, parts, ext, shelter_x, poles)
    _parked_cars(rng, p, materials, parts, ext)
    return parts
