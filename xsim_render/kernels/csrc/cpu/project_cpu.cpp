// CPU projection + tiling (see project_cpu.h). Three parallel passes over the Gaussians (footprints and pair
// counts; pairs written in Gaussian order at prefix-sum offsets), then a stable parallel counting sort by tile
// (so each tile's list is ascending in Gaussian index) and an in-place removal of adjacent duplicates (a
// Gaussian whose two phase footprints, or rectangle and cone, cover the same tile).
#include "project_cpu.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <new>
#include <type_traits>


namespace xs {
namespace {

// An uninitialised array of n trivially destructible T (constructed by the caller where used; freed with free).
template <typename T> std::unique_ptr<T[], void (*)(void*)> raw_array(int64_t n) {
    static_assert(std::is_trivially_destructible<T>::value, "freed without destructors");
    std::unique_ptr<T[], void (*)(void*)> p(static_cast<T*>(std::malloc(sizeof(T) * std::max<int64_t>(n, 1))), std::free);
    if (!p) throw std::bad_alloc();
    return p;
}

}  // namespace

void project_and_tile(const ProjectInputs& in, ProjectOutputs& out) {
    const int64_t n = in.n, nt = in.num_tiles;
    // footprints and their rectangles' tile ranges, constructed in the counting pass (found once, walked in the
    // writing pass)
    auto fps_store = raw_array<GaussianFootprints>(n);
    auto ranges_store = raw_array<FootprintRanges>(n);
    GaussianFootprints* fps = fps_store.get();
    FootprintRanges* ranges = ranges_store.get();
    std::vector<int64_t> offset(n + 1, 0);
    int64_t culled = 0, cones = 0, far_skipped = 0;
    const SensorRates rates = sensor_rates(in, in.sensor_motion);
#pragma omp parallel for num_threads(in.threads) schedule(dynamic, 256) reduction(+ : culled, cones, far_skipped)
    for (int64_t g = 0; g < n; ++g) {
        new (fps + g) GaussianFootprints(footprints_of(in, g, &rates));
        offset[g + 1] = count_pairs(in, fps[g], ranges[g]);
        culled += fps[g].culled;
        cones += fps[g].cone;
        far_skipped += fps[g].far_skipped;
    }
    out.culled = culled;
    out.cones = cones;
    out.far_skipped = far_skipped;
    for (int64_t g = 0; g < n; ++g) offset[g + 1] += offset[g];
    const int64_t total = offset[n];
    std::vector<int64_t> raw_tile(total);
#pragma omp parallel for num_threads(in.threads) schedule(dynamic, 256)
    for (int64_t g = 0; g < n; ++g) {
        int64_t* out_tiles = raw_tile.data() + offset[g];
        int64_t k = 0;
        visit_pairs(in, fps[g], ranges[g], [&](int64_t t) { out_tiles[k++] = t; });
    }
    // owner Gaussian of each raw pair: contiguous per Gaussian
    // stable counting sort by tile: per thread a contiguous block of Gaussians (hence of pairs)
    const int threads = std::max(1, in.threads);
    std::vector<int64_t> block(threads + 1);
    for (int b = 0; b <= threads; ++b) block[b] = n * b / threads;
    std::vector<std::vector<int64_t>> hist(threads, std::vector<int64_t>(nt + 1, 0));
#pragma omp parallel for num_threads(threads) schedule(static, 1)
    for (int b = 0; b < threads; ++b)
        for (int64_t p = offset[block[b]]; p < offset[block[b + 1]]; ++p) ++hist[b][raw_tile[p]];
    std::vector<int64_t> tile_start(nt + 1, 0);
    {
        int64_t running = 0;
        for (int64_t t = 0; t < nt; ++t) {
            tile_start[t] = running;
            for (int b = 0; b < threads; ++b) {
                int64_t c = hist[b][t];
                hist[b][t] = running;
                running += c;
            }
        }
        tile_start[nt] = running;
    }
    std::vector<int64_t> sorted_g(total);
#pragma omp parallel for num_threads(threads) schedule(static, 1)
    for (int b = 0; b < threads; ++b) {
        std::vector<int64_t>& cursor = hist[b];
        for (int64_t g = block[b]; g < block[b + 1]; ++g)
            for (int64_t p = offset[g]; p < offset[g + 1]; ++p) sorted_g[cursor[raw_tile[p]]++] = g;
    }
    raw_tile.clear();
    raw_tile.shrink_to_fit();
    // de-duplicate each tile's ascending list, then compact
    std::vector<int64_t> kept(nt + 1, 0);
#pragma omp parallel for num_threads(threads) schedule(dynamic, 64)
    for (int64_t t = 0; t < nt; ++t) {
        int64_t w = tile_start[t];
        for (int64_t p = tile_start[t]; p < tile_start[t + 1]; ++p)
            if (p == tile_start[t] || sorted_g[p] != sorted_g[p - 1]) sorted_g[w++] = sorted_g[p];
        kept[t + 1] = w - tile_start[t];
    }
    for (int64_t t = 0; t < nt; ++t) kept[t + 1] += kept[t];
    out.pair_tile.resize(kept[nt]);
    out.pair_gaussian.resize(kept[nt]);
#pragma omp parallel for num_threads(threads) schedule(dynamic, 64)
    for (int64_t t = 0; t < nt; ++t) {
        int64_t m = kept[t + 1] - kept[t];
        for (int64_t i = 0; i < m; ++i) {
            out.pair_tile[kept[t] + i] = t;
            out.pair_gaussian[kept[t] + i] = sorted_g[tile_start[t] + i];
        }
    }
    if (!in.keep_footprints) return;
    for (int64_t g = 0; g < n; ++g) {
        const GaussianFootprints& fp = fps[g];
        for (int i = 0; i < fp.n_rect; ++i) {
            out.fp_gaussian.push_back(g);
            out.fp_lo.insert(out.fp_lo.end(), {fp.lo[i][0], fp.lo[i][1]});
            out.fp_hi.insert(out.fp_hi.end(), {fp.hi[i][0], fp.hi[i][1]});
            out.fp_full.push_back(0);
            out.fp_branch.push_back(fp.branch[i]);
            out.fp_axis.insert(out.fp_axis.end(), {0.0, 0.0, 0.0});
            out.fp_half.push_back(0.0);
        }
        if (fp.cone) {
            out.fp_gaussian.push_back(g);
            out.fp_lo.insert(out.fp_lo.end(), {-INFINITY, -INFINITY});
            out.fp_hi.insert(out.fp_hi.end(), {INFINITY, INFINITY});
            out.fp_full.push_back(1);
            out.fp_branch.push_back(0);
            out.fp_axis.insert(out.fp_axis.end(), {fp.axis[0], fp.axis[1], fp.axis[2]});
            out.fp_half.push_back(fp.half);
        }
    }
}

void tile_cones(int64_t n_rays, const double* directions, const bool* valid, const int64_t* ray_tile,
                int64_t num_tiles, double* axis, double* half, uint8_t* has_rays) {
    std::vector<int64_t> count(num_tiles, 0);
    for (int64_t t = 0; t < num_tiles; ++t) axis[3 * t] = axis[3 * t + 1] = axis[3 * t + 2] = half[t] = 0.0;
    for (int64_t r = 0; r < n_rays; ++r) {
        int64_t t = ray_tile[r];
        if (!valid[r] || t < 0 || t >= num_tiles) continue;
        for (int c = 0; c < 3; ++c) axis[3 * t + c] += directions[3 * r + c];
        ++count[t];
    }
    std::vector<double> length(num_tiles);
    for (int64_t t = 0; t < num_tiles; ++t) {
        length[t] = norm(load3(axis + 3 * t));
        double inv = 1.0 / std::max(length[t], 1e-300);
        for (int c = 0; c < 3; ++c) axis[3 * t + c] *= inv;
        has_rays[t] = count[t] > 0;
    }
    for (int64_t r = 0; r < n_rays; ++r) {
        int64_t t = ray_tile[r];
        if (!valid[r] || t < 0 || t >= num_tiles) continue;
        half[t] = std::max(half[t], angle_between(load3(axis + 3 * t), load3(directions + 3 * r)));
    }
    for (int64_t t = 0; t < num_tiles; ++t)
        if (length[t] < 1e-9 * std::max<int64_t>(count[t], 1)) half[t] = PI;
}

}  // namespace xs
