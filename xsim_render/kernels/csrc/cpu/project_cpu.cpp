// CPU projection + tiling (see project_cpu.h). One parallel pass over chunks of Gaussians (footprints and their
// pairs, appended to per-thread lists in Gaussian order), then a stable parallel counting sort by tile (so each
// tile's list is ascending in Gaussian index) and an in-place removal of adjacent duplicates (a Gaussian whose
// two phase footprints, or rectangle and cone, cover the same tile).
#include "project_cpu.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <new>
#include <stdexcept>
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

// Gaussians per work item of the footprint pass
constexpr int64_t CHUNK_GAUSSIANS = 256;

}  // namespace

void project_and_tile(const ProjectInputs& given, ProjectOutputs& out) {
    // the sensor's motion with its mount rotation folded into R0 (rigid.h fold_mount: one rotation fewer in every
    // transform of the sensor, the same poses up to rounding)
    double folded[BODY_FIELDS];
    fold_mount(given.sensor_motion, folded);
    ProjectInputs in = given;
    in.sensor_motion = folded;
    const int64_t n = in.n, nt = in.num_tiles;
    const int threads = std::max(1, in.threads);
    if (n >= (int64_t(1) << 32) || nt >= (int64_t(1) << 31))
        throw std::length_error("project_and_tile: more than 2^32 Gaussians or 2^31 tiles");
    // footprints and their pairs in one parallel pass over chunks of consecutive Gaussians: each thread appends
    // a chunk's pairs, (tile << 32) | Gaussian in Gaussian order, to its own list and notes where they lie
    const int64_t n_chunks = (n + CHUNK_GAUSSIANS - 1) / CHUNK_GAUSSIANS;
    struct Chunk {
        int thread;
        int64_t begin, end;
    };
    std::vector<Chunk> chunks(n_chunks);
    std::vector<std::vector<uint64_t>> lists(threads);
    auto fps_store = raw_array<GaussianFootprints>(in.keep_footprints ? n : 0);
    int64_t culled = 0, cones = 0, far_skipped = 0;
    const SensorRates rates = sensor_rates(in, in.sensor_motion);
    const bool lidar = in.sensor == SENSOR_LIDAR;
    const SensorPoses poses = sensor_poses(in.sensor_motion, lidar ? in.lidar.t_start : in.camera.t_start,
                                           lidar ? in.lidar.t_end : in.camera.t_end);
    bool out_of_memory = false;  // (an exception must not leave the parallel region: raised after it)
#pragma omp parallel num_threads(threads) reduction(+ : culled, cones, far_skipped)
    {
        const int thread = omp_get_thread_num();
        std::vector<uint64_t>& list = lists[thread];
#pragma omp for schedule(dynamic, 1)
        for (int64_t c = 0; c < n_chunks; ++c) {
            try {
                if (list.capacity() == 0) list.reserve(static_cast<size_t>(2 * n / threads + 1024));
                const int64_t begin = static_cast<int64_t>(list.size());
                for (int64_t g = c * CHUNK_GAUSSIANS; g < std::min(n, (c + 1) * CHUNK_GAUSSIANS); ++g) {
                    const GaussianFootprints fp = footprints_of(in, g, &rates, &poses);
                    FootprintRanges fr;
                    footprint_ranges(in, fp, fr);
                    visit_pairs(in, fp, fr, [&](int64_t t) { list.push_back((uint64_t(t) << 32) | uint64_t(g)); });
                    culled += fp.culled;
                    cones += fp.cone;
                    far_skipped += fp.far_skipped;
                    if (in.keep_footprints) new (fps_store.get() + g) GaussianFootprints(fp);
                }
                chunks[c] = {thread, begin, static_cast<int64_t>(list.size())};
            } catch (const std::bad_alloc&) {
#pragma omp atomic write
                out_of_memory = true;
            }
        }
    }
    if (out_of_memory) throw std::bad_alloc();
    out.culled = culled;
    out.cones = cones;
    out.far_skipped = far_skipped;
    // stable counting sort by tile: per thread a contiguous block of chunks (hence of Gaussians)
    std::vector<int64_t> block(threads + 1);
    for (int b = 0; b <= threads; ++b) block[b] = n_chunks * b / threads;
    auto pairs_of = [&](int64_t c, auto visit) {
        const uint64_t* list = lists[chunks[c].thread].data();
        for (int64_t p = chunks[c].begin; p < chunks[c].end; ++p) visit(list[p]);
    };
    std::vector<std::vector<int64_t>> hist(threads, std::vector<int64_t>(nt + 1, 0));
#pragma omp parallel for num_threads(threads) schedule(static, 1)
    for (int b = 0; b < threads; ++b)
        for (int64_t c = block[b]; c < block[b + 1]; ++c) pairs_of(c, [&](uint64_t e) { ++hist[b][e >> 32]; });
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
    std::vector<int64_t> sorted_g(tile_start[nt]);
#pragma omp parallel for num_threads(threads) schedule(static, 1)
    for (int b = 0; b < threads; ++b) {
        std::vector<int64_t>& cursor = hist[b];
        for (int64_t c = block[b]; c < block[b + 1]; ++c)
            pairs_of(c, [&](uint64_t e) { sorted_g[cursor[e >> 32]++] = int64_t(e & 0xffffffffu); });
    }
    lists.clear();
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
        const GaussianFootprints& fp = fps_store[g];
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
