"""The kernels' own scalar maths against the C library: the double-precision atan2 of csrc/include/xsim/common.h
(a polynomial, not a library call: it computes every LiDAR phase) and the upper bound on asin of the projection's
proofs."""

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


def test_asin_upper_bounds_asin_tightly(cpu):
    rng = np.random.default_rng(11)
    x = np.concatenate([rng.uniform(0, 1, 200_000), 10.0 ** rng.uniform(-300, 0, 200_000),
                        0.5 + rng.uniform(-1e-12, 1e-12, 1000), [0.0, 0.5, 1.0, np.nextafter(1.0, 0), 2.0]])
    got = cpu.asin_upper(x)
    want = np.arcsin(np.minimum(x, 1.0))
    assert np.all(got >= want)  # never below (returning x itself, say, fails)
    below = x < 0.5
    assert np.all(got[below] <= want[below] * (1 + 0.42 * x[below] ** 2 + 1e-14))
    assert np.all(got[~below] <= want[~below] * (1 + 1e-14))
    assert np.isnan(cpu.asin_upper(np.array([math.nan]))[0])


def test_rasterizer_alpha_matches_the_scalar_alpha(cpu):
    # the rasterizer evaluates alpha = min(0.99, sigma exp(-D2/2)) (0 below 1/255) 16 candidates at a time with a
    # vectorised exp (csrc/cpu/alpha_simd.h: a table of 2^(i/32) and a degree-4 fit, in double); the scalar alpha_of
    # calls the library's expf
    rng = np.random.default_rng(11)
    n = 300_003  # not a multiple of 16: a partial last run
    sigma = rng.uniform(0.0, 1.0, n).astype(np.float32)
    d2 = (rng.uniform(0.0, 1.0, n) ** 2 * 16.0).astype(np.float32)
    d2[:1000] = rng.uniform(170.0, 400.0, 1000)  # beyond the table form's range: the scalar call
    d2[1000:1010] = [0.0, 1e-30, np.inf, np.nan, 176.0, 175.99998, 11.06, 11.07, 2.0 * np.log(255.0), 1e-3]
    sigma[1010:1020] = [0.0, 1.0, 1.0 / 255.0, 0.99, 1.5, 1e-3, 0.5, 0.999, 1.0, 0.0039]
    fast, scalar = cpu.alpha(sigma, d2)
    assert fast.dtype == np.float32 and fast.shape == (n,)
    # independent check of the scalar path in float64
    rho = sigma.astype(np.float64) * np.exp(-0.5 * d2.astype(np.float64))
    want = np.where(np.minimum(rho, 0.99) >= 1.0 / 255.0, np.minimum(rho, 0.99), 0.0)
    close = np.abs(scalar - want) <= 1e-6 * np.maximum(want, 1.0 / 255.0)
    edge = np.abs(rho - 1.0 / 255.0) < 1e-6  # float32 rounding decides the 1/255 cut
    assert np.all(close | edge)
    # the vectorised path: the library's bits but where exp lies near a float rounding boundary (there the two
    # round differently, and sigma * exp may then differ by up to two float32 ulp), and as close to float64 exp
    err = np.abs(fast.astype(np.float64) - scalar) / np.spacing(np.maximum(scalar, np.float32(1.0 / 255.0)))
    assert float(err.max()) <= 2.0
    assert float(np.mean(fast == scalar)) >= 0.999
    live = (want > 0) & (fast > 0) & (scalar > 0)
    assert np.abs(fast[live] - want[live]).mean() <= np.abs(scalar[live] - want[live]).mean() * 1.01
    assert float(fast.max()) <= np.float32(0.99) and np.all((fast == 0) | (fast >= np.float32(1.0 / 255.0)))
