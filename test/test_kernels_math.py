"""The kernels' own scalar maths against the C library: the double-precision atan2 of csrc/include/xsim/common.h
(a polynomial, not a library call: it computes every LiDAR phase)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xsim_render.kernels import build


@pytest.fixture(scope="module")
def cpu():
    return build.load("cpu")


def ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in units in the last place of b."""
    return np.abs(a - b) / np.spacing(np.abs(b))


def test_atan2_matches_the_library(cpu):
    rng = np.random.default_rng(7)
    n = 400_000
    y = rng.standard_normal(n) * 10.0 ** rng.uniform(-12, 12, n)
    x = rng.standard_normal(n) * 10.0 ** rng.uniform(-12, 12, n)
    # ratios near the reduction point tan(pi/8), near 1 (octant switch) and near 0
    k = n // 4
    x[:k] = rng.uniform(-50, 50, k)
    y[:k] = x[:k] * np.tan(np.pi / 8) * (1 + rng.uniform(-1e-9, 1e-9, k)) * rng.choice([-1, 1], k)
    y[k:2 * k] = x[k:2 * k] * (1 + rng.uniform(-1e-12, 1e-12, k))
    got, want = cpu.atan2(y, x), np.arctan2(y, x)
    err = ulps(got, want)
    assert float(err.max()) <= 4.0 and float(np.median(err)) == 0.0
    # a phase: absolute error far below the LiDAR solve's needs (1e-12 rad)
    assert float(np.abs(got - want).max()) < 2e-15


def test_atan2_special_values(cpu):
    y = np.array([0.0, -0.0, 0.0, -0.0, 1.0, -1.0, 1.0, 0.0, math.nan, 1.0, 3.0, -2.0])
    x = np.array([0.0, 0.0, -0.0, -0.0, 0.0, 0.0, -0.0, 5.0, 1.0, math.nan, -3.0, -2.0])
    got, want = cpu.atan2(y, x), np.arctan2(y, x)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    assert np.all(np.abs(got[ok] - want[ok]) <= 4e-16 * np.abs(want[ok]))
    assert np.array_equal(np.signbit(got[ok]), np.signbit(want[ok]))
