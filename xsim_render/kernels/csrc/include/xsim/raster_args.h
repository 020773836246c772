// Arguments of the rasterizers (CPU and CUDA): raw pointers (host or device memory, by backend) and sizes.
// Semantics of xsim_render/raster/rasterize.py: every valid ray evaluates the Gaussians listed for its tile in
// 3D at its own time (actor Gaussians in their body frame at that time; outside a body's existence window not
// at all), keeps live hits (alpha >= 1/255, t* > 0), orders them by (t*, Gaussian index) and composites front
// to back (composite.h).
#pragma once

#include <stdint.h>

namespace xs {

template <typename T> struct RasterInputs {
    // rays (R): world origin / unit direction (R,3) row-major, time (s), valid, tile of each ray
    int64_t n_rays = 0;
    const T* origins = nullptr;
    const T* directions = nullptr;
    const T* times = nullptr;
    const bool* valid = nullptr;
    const int64_t* ray_tile = nullptr;
    // tile lists: P (tile, Gaussian) pairs; tiles in [0, num_tiles)
    int64_t num_tiles = 0;
    int64_t n_pairs = 0;
    const int64_t* pair_tile = nullptr;
    const int64_t* pair_gaussian = nullptr;
    // Gaussians (N): mean (N,3), rotation (N,3,3) row-major, log std devs (N,3) in their body's frame,
    // opacity sigma (N), body index (N)
    int64_t n_gaussians = 0;
    const T* means = nullptr;
    const T* rotations = nullptr;
    const T* log_scales = nullptr;
    const T* sigma = nullptr;
    const int64_t* frame = nullptr;
    // bodies (F): packed motions (F, BODY_FIELDS), existence window [lo, hi] (s; +-inf: always)
    int64_t n_bodies = 0;
    const T* bodies = nullptr;
    const T* window_lo = nullptr;
    const T* window_hi = nullptr;
    // per-Gaussian values to composite (N, C)
    int64_t n_channels = 0;
    const T* values = nullptr;
    int threads = 1;
};

template <typename T> struct RasterOutputs {
    T* values = nullptr;         // (R, C)
    T* alpha = nullptr;          // (R,)
    T* transmittance = nullptr;  // (R,)
    T* distance = nullptr;       // (R,) expected hit distance, 0 without hits
    T* median = nullptr;         // (R,) NaN without crossing T < 0.5
    int32_t* count = nullptr;    // (R,) Gaussians composited
    int64_t* evaluated = nullptr;  // (1,) candidate evaluations in total (for benchmarks)
};

}  // namespace xs
