// The (tile, Gaussian) pairs of one Gaussian without duplicates, for binning without a global de-duplication
// pass (csrc/cuda/binning.cu). A Gaussian can cover a tile twice: its two LiDAR phase footprints, the two
// column segments of a footprint wrapped around the seam, or a rectangle and its bounding cone; here a tile is
// visited by the first range that covers it only (rectangle ranges in footprint order, then the cone).
// Same tiles as project.h visit_pairs, each once; the visiting order is not the tile order.
#pragma once

#include "project.h"

namespace xs {

constexpr int MAX_TILE_RANGES = 6;  // 3 rectangles x 2 column segments

// Non-empty tile ranges of a Gaussian's rectangles, in footprint order; returns how many.
XS_HD int footprint_ranges(const ProjectParams& in, const GaussianFootprints& fp, TileRange* ranges) {
    int count = 0;
    for (int i = 0; i < fp.n_rect; ++i) {
        TileRange tmp[2];
        int n = rect_ranges(in, fp, i, tmp);
        for (int s = 0; s < n; ++s)
            if (!tmp[s].empty()) ranges[count++] = tmp[s];
    }
    return count;
}

// Whether one of ranges[0 .. upto) holds tile (x, y).
XS_HD bool covered_by(const TileRange* ranges, int upto, int x, int y) {
    for (int k = 0; k < upto; ++k)
        if (x >= ranges[k].x0 && x <= ranges[k].x1 && y >= ranges[k].y0 && y <= ranges[k].y1) return true;
    return false;
}

// Visit every tile of a Gaussian's footprints once; returns how many. visit(tile) may be a no-op (counting).
template <typename Visit>
XS_HD int64_t visit_unique_pairs(const ProjectParams& in, const GaussianFootprints& fp, Visit visit) {
    TileRange ranges[MAX_TILE_RANGES];
    const int nr = footprint_ranges(in, fp, ranges);
    int64_t count = 0;
    for (int k = 0; k < nr; ++k) {
        const TileRange& r = ranges[k];
        for (int y = r.y0; y <= r.y1; ++y)
            for (int x = r.x0; x <= r.x1; ++x) {
                if (covered_by(ranges, k, x, y)) continue;
                visit(int64_t(y) * in.tiles_x + x);
                ++count;
            }
    }
    if (fp.cone) {
        for (int64_t t = 0; t < in.num_tiles; ++t) {
            if (!cone_hits_tile(in, fp, t)) continue;
            if (covered_by(ranges, nr, int(t % in.tiles_x), int(t / in.tiles_x))) continue;
            visit(t);
            ++count;
        }
    }
    return count;
}

// Number of unique pairs of one Gaussian (one rectangle range and no cone: its area, no visit).
XS_HD int64_t count_unique_pairs(const ProjectParams& in, const GaussianFootprints& fp) {
    if (!fp.cone) {
        TileRange ranges[MAX_TILE_RANGES];
        const int nr = footprint_ranges(in, fp, ranges);
        if (nr == 0) return 0;
        if (nr == 1) return ranges[0].count();
    }
    return visit_unique_pairs(in, fp, [](int64_t) {});
}

}  // namespace xs
