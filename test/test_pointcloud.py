"""PointCloud2 packing: exact byte layouts of docs/pointclouds.md, round trips, organized vs unorganized, units."""

import struct

import numpy as np
import pytest

from xsim_render.rosio.pointcloud import (
    FLOAT32,
    LAYOUTS,
    UINT8,
    UINT16,
    UINT32,
    layout_of,
    pack_cloud,
    unpack_cloud,
)


def _sweep(beams=4, columns=6, seed=0):
    rng = np.random.default_rng(seed)
    dirs = rng.normal(size=(beams, columns, 3))
    dirs /= np.linalg.norm(dirs, axis=-1, keepdims=True)
    ranges = rng.uniform(1.0, 50.0, size=(beams, columns))
    ranges[rng.random((beams, columns)) < 0.3] = np.nan
    xyz = ranges[..., None] * dirs
    intensity = rng.random((beams, columns))
    channel = np.broadcast_to(np.arange(beams)[:, None], (beams, columns))
    time = np.broadcast_to((np.arange(columns) + 0.5) / (columns * 10.0), (beams, columns))
    return xyz, intensity, channel, time


def test_layout_offsets_match_conventions():
    fields, step = LAYOUTS["xyzircaedt"]
    assert step == 32
    assert [(f.name, f.offset, f.datatype) for f in fields] == [
        ("x", 0, FLOAT32), ("y", 4, FLOAT32), ("z", 8, FLOAT32), ("intensity", 12, UINT8),
        ("return_type", 13, UINT8), ("channel", 14, UINT16), ("azimuth", 16, FLOAT32),
        ("elevation", 20, FLOAT32), ("distance", 24, FLOAT32), ("time_stamp", 28, UINT32)]
    fields16, step16 = LAYOUTS["xyzirc"]
    assert step16 == 16 and fields16 == fields[:6]
    fields_irt, _ = LAYOUTS["xyzirt"]
    assert [(f.name, f.datatype) for f in fields_irt] == [
        ("x", FLOAT32), ("y", FLOAT32), ("z", FLOAT32), ("intensity", FLOAT32), ("ring", UINT16), ("time", FLOAT32)]
    fields_i, step_i = LAYOUTS["xyzi"]
    assert step_i == 16 and [f.name for f in fields_i] == ["x", "y", "z", "intensity"]
    assert all(f.count == 1 for fl, _ in LAYOUTS.values() for f in fl)


def test_xyzircaedt_bytes_of_one_point():
    xyz = np.array([[3.0, 4.0, 0.0]])
    cloud = pack_cloud("xyzircaedt", xyz, [0.5], [7], [0.0123456789])
    assert (cloud.height, cloud.width, cloud.point_step, cloud.row_step) == (1, 1, 32, 32)
    assert cloud.is_dense and not cloud.is_bigendian
    raw = cloud.data.tobytes()
    assert len(raw) == 32
    x, y, z, i, r, c, az, el, d, ts = struct.unpack("<fffBBHfffI", raw)
    assert (x, y, z) == (3.0, 4.0, 0.0)
    assert i == 128 and r == 0 and c == 7  # round(255 * 0.5) = 128 (numpy rounds half to even: 127.5 -> 128)
    assert az == pytest.approx(np.arctan2(4.0, 3.0), abs=1e-6) and el == 0.0 and d == pytest.approx(5.0)
    assert ts == 12345679  # ns after the header stamp, rounded


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_round_trip_organized(layout):
    xyz, intensity, channel, time = _sweep()
    cloud = pack_cloud(layout, xyz, intensity, channel, time)
    assert (cloud.height, cloud.width) == xyz.shape[:2]
    assert cloud.is_dense is False
    assert cloud.row_step == cloud.point_step * cloud.width == len(cloud.data) // cloud.height
    assert layout_of(cloud.fields) == layout
    out = unpack_cloud(cloud)
    valid = np.isfinite(xyz).all(-1)
    np.testing.assert_allclose(out["xyz"][valid], xyz[valid], rtol=1e-6, atol=1e-5)
    assert np.isnan(out["xyz"][~valid]).all()  # no-return firings stay as NaN points
    quantum = 0.5 / 255 if layout.startswith("xyzirc") else 1e-6
    np.testing.assert_allclose(out["intensity"][valid], intensity[valid], atol=quantum + 1e-7)
    assert (out["intensity"][~valid] == 0).all()
    if "channel" in out:
        np.testing.assert_array_equal(out["channel"], channel)
    if "time" in out:
        np.testing.assert_allclose(out["time"], time, atol=1e-9 if layout == "xyzircaedt" else 1e-7)
    if layout == "xyzircaedt":
        np.testing.assert_allclose(out["distance"][valid], np.linalg.norm(xyz[valid], axis=-1), rtol=1e-6)
        assert np.isnan(out["distance"][~valid]).all()


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_round_trip_unorganized(layout):
    xyz, intensity, channel, time = _sweep(seed=3)
    keep = np.isfinite(xyz).all(-1)
    cloud = pack_cloud(layout, xyz[keep], intensity[keep], channel[keep], time[keep])
    assert (cloud.height, cloud.width) == (1, int(keep.sum()))
    assert cloud.is_dense is True
    out = unpack_cloud(cloud)
    assert out["xyz"].shape == (1, keep.sum(), 3)
    np.testing.assert_allclose(out["xyz"][0], xyz[keep], rtol=1e-6, atol=1e-5)


def test_float_layouts_store_0_255_intensity():
    cloud = pack_cloud("xyzi", np.array([[1.0, 0.0, 0.0]]), [0.25], [0], [0.0])
    stored = struct.unpack("<ffff", cloud.data.tobytes())[3]
    assert stored == pytest.approx(63.75)  # 255 * i, unrounded


def test_xyzirt_time_is_float_seconds():
    cloud = pack_cloud("xyzirt", np.array([[1.0, 0.0, 0.0]]), [1.0], [5], [0.05])
    fields = {f.name: f for f in cloud.fields}
    raw = cloud.data.tobytes()
    assert struct.unpack_from("<H", raw, fields["ring"].offset)[0] == 5
    assert struct.unpack_from("<f", raw, fields["time"].offset)[0] == pytest.approx(0.05)
    assert cloud.point_step >= fields["time"].offset + 4


def test_organized_keeps_firing_angles_on_no_returns():
    xyz = np.full((1, 2, 3), np.nan)
    xyz[0, 0] = (0.0, 2.0, 0.0)
    cloud = pack_cloud("xyzircaedt", xyz, [[1.0, 1.0]], [[0, 0]], [[0.0, 0.05]],
                       azimuth=[[np.pi / 2, -1.0]], elevation=[[0.0, 0.1]])
    out = unpack_cloud(cloud)
    assert out["azimuth"][0, 1] == pytest.approx(-1.0) and out["elevation"][0, 1] == pytest.approx(0.1)
    assert out["time_stamp"][0, 1] == 50_000_000
    assert out["intensity"][0, 1] == 0.0 and np.isnan(out["distance"][0, 1])


def test_rejects_bad_input():
    with pytest.raises(ValueError, match="layout"):
        pack_cloud("xyzrgb", np.zeros((1, 3)), [0], [0], [0])
    with pytest.raises(ValueError, match="finite"):
        pack_cloud("xyzi", np.full((1, 3), np.nan), [0], [0], [0])
    with pytest.raises(ValueError, match=">= 0"):
        pack_cloud("xyzircaedt", np.ones((1, 3)), [0], [0], [-1e-3])
    with pytest.raises(ValueError, match="shape"):
        pack_cloud("xyzi", np.ones((2, 3)), [0, 0, 0], [0, 0], [0, 0])
