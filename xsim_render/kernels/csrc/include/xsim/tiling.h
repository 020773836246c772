// Tile ranges of footprint rectangles (xsim_render/tiling/camera_tiles.py, lidar_tiles.py).
//   camera: 16 x 16 pixel tiles; a rectangle covers the pixels whose centres (j + 0.5, i + 0.5) lie in it.
//   LiDAR: tiles of 8 beams (in elevation order, any spacing) x 32 columns; a (phase, elevation) rectangle
//   covers the firings whose phase 2 pi (c + 0.5) / N and beam elevation lie in it; with phase modeling phases
//   outside [0, 2 pi) are clipped, without it (wrap) they wrap around the seam (two column segments).
// A range is inclusive [x0, x1] x [y0, y1] in tiles, empty where x1 < x0 or y1 < y0.
#pragma once

#include "common.h"

namespace xs {

struct TileRange {
    int x0, x1, y0, y1;
    XS_HD bool empty() const { return x1 < x0 || y1 < y0; }
    XS_HD long long count() const { return empty() ? 0 : (long long)(x1 - x0 + 1) * (y1 - y0 + 1); }
};

template <typename T> XS_HD T sanitize_lo(T x) { return x == x ? xclamp(x, T(-1e9), T(1e9)) : T(-1e9); }
template <typename T> XS_HD T sanitize_hi(T x) { return x == x ? xclamp(x, T(-1e9), T(1e9)) : T(1e9); }
XS_HD long long floor_div(long long a, long long b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

template <typename T> XS_HD TileRange camera_tile_range(const T* lo_in, const T* hi_in, int width, int height) {
    T lo0 = sanitize_lo(lo_in[0]), lo1 = sanitize_lo(lo_in[1]), hi0 = sanitize_hi(hi_in[0]),
      hi1 = sanitize_hi(hi_in[1]);
    long long j0 = xclamp((long long)xceil(lo0 - T(0.5)), 0LL, (long long)width - 1);
    long long j1 = xclamp((long long)xfloor(hi0 - T(0.5)), -1LL, (long long)width - 1);
    long long i0 = xclamp((long long)xceil(lo1 - T(0.5)), 0LL, (long long)height - 1);
    long long i1 = xclamp((long long)xfloor(hi1 - T(0.5)), -1LL, (long long)height - 1);
    bool empty = j1 < j0 || i1 < i0;
    TileRange r;
    r.x0 = int(j0 / CAMERA_TILE);
    r.x1 = empty ? r.x0 - 1 : int(xmax(j1, 0LL) / CAMERA_TILE);
    r.y0 = int(i0 / CAMERA_TILE);
    r.y1 = int(xmax(i1, 0LL) / CAMERA_TILE);
    return r;
}

// First index with sorted[i] >= x (right = false) or > x (right = true), as torch.searchsorted. Branch-free
// halving (selects, no data-dependent jump to mispredict): `base` stays below every index the answer can be.
template <typename T> XS_HD int search_sorted(const T* sorted, int n, T x, bool right) {
    int base = 0, len = n;
    while (len > 1) {
        const int half = len / 2;
        const T v = sorted[base + half - 1];
        const bool go_right = right ? !(x < v) : v < x;
        base = go_right ? base + half : base;
        len -= half;
    }
    if (len == 1) {
        const T v = sorted[base];
        base += right ? !(x < v) : v < x;
    }
    return base;
}

// Up to two column segments of a LiDAR rectangle (out[0], out[1]; the second is empty without wrap).
template <typename T>
XS_HD int lidar_tile_ranges(const T* lo_in, const T* hi_in, const T* elev_sorted, int beams, int columns, bool wrap,
                            TileRange* out) {
    T lo0 = sanitize_lo(lo_in[0]), lo1 = sanitize_lo(lo_in[1]), hi0 = sanitize_hi(hi_in[0]),
      hi1 = sanitize_hi(hi_in[1]);
    const long long n = columns, b = beams;
    long long k0 = search_sorted(elev_sorted, beams, lo1, false);
    long long k1 = (long long)search_sorted(elev_sorted, beams, hi1, true) - 1;
    int y0 = int(xclamp(k0, 0LL, b - 1) / LIDAR_TILE_BEAMS);
    bool rows_empty = k1 < k0 || k1 < 0 || k0 > b - 1;
    int y1 = rows_empty ? y0 - 1 : int(xclamp(k1, 0LL, b - 1) / LIDAR_TILE_BEAMS);
    T scale = T(n) / T(2 * PI);
    long long c0 = (long long)xclamp(xceil(lo0 * scale - T(0.5)), T(-4 * n), T(4 * n));
    long long c1 = (long long)xclamp(xfloor(hi0 * scale - T(0.5)), T(-4 * n), T(4 * n));
    long long s0[2], s1[2];
    int segments = 1;
    if (wrap) {
        if (c1 - c0 + 1 >= n) c0 = 0, c1 = n - 1;
        long long shift = floor_div(c0, n) * n;
        c0 -= shift, c1 -= shift;
        s0[0] = c0, s1[0] = xmin(c1, n - 1);
        s0[1] = 0, s1[1] = c1 >= n ? c1 - n : -1;
        segments = 2;
    } else {
        s0[0] = c0, s1[0] = c1;
    }
    for (int s = 0; s < segments; ++s) {
        bool empty = s1[s] < s0[s] || s1[s] < 0 || s0[s] > n - 1;
        out[s].x0 = int(xclamp(s0[s], 0LL, n - 1) / LIDAR_TILE_COLUMNS);
        out[s].x1 = empty ? out[s].x0 - 1 : int(xclamp(s1[s], 0LL, n - 1) / LIDAR_TILE_COLUMNS);
        out[s].y0 = y0;
        out[s].y1 = y1;
    }
    return segments;
}

}  // namespace xs
