// Host API of the CUDA kernels: raw DEVICE pointers and sizes, a CUDA stream, cudaError_t back. No PyTorch.
// Every call only enqueues work on `stream` except project_footprints, which waits once for the number of
// (tile, Gaussian) pairs (the only host synchronisation of a capture).
//   sensor_rays:        world origin, direction and time of every pixel / firing (sensor_rays.h);
//   project_footprints: per-Gaussian footprints (project.h) and the size of the pair arrays;
//   emit_pairs:         the unique (tile, Gaussian) pairs into caller-sized arrays (unique_pairs.h);
//   rasterize:          the tile rasterizer (raster_args.h semantics), per-tile candidate order by a radix sort.
#pragma once

#include <cuda_runtime.h>
#include <stdint.h>

#include "xsim/camera_models.h"
#include "xsim/project.h"
#include "xsim/raster_args.h"
#include "xsim/rigid.h"
#include "xsim/sensor_rays.h"

// kernel<<<grid, block, 0, stream>>>(args) written as XS_LAUNCH(kernel, grid, block, stream)(args), so that the
// same sources also compile as C++ for the host simulation (XS_CUDA_SIM, csrc/sim/include/cuda_runtime.h).
#if defined(XS_CUDA_SIM)
#define XS_LAUNCH(kernel, grid, block, stream) ::xs_sim::launch((grid), (block), kernel)
#else
#define XS_LAUNCH(kernel, grid, block, stream) kernel<<<(grid), (block), 0, (stream)>>>
#endif

namespace xs {
namespace cuda {

// write_sensor_ray (sensor_rays.h) for every ray of params, one thread per ray; pointers in device memory.
template <typename T> cudaError_t sensor_rays(const RayParams<T>& params, cudaStream_t stream);

template <typename T>
cudaError_t rasterize(const RasterInputs<T>& in, const RasterOutputs<T>& out, cudaStream_t stream);

// Footprints of a capture's Gaussians on the device, owned by the caller until release().
struct Binning {
    GaussianFootprints* footprints = nullptr;  // (n,)
    int64_t* inclusive = nullptr;              // (n,) inclusive prefix sum of each Gaussian's pair count
    int64_t n = 0;
    int64_t total = 0;                         // number of (tile, Gaussian) pairs
    int64_t culled = 0;
    int64_t cones = 0;
};

// params: every pointer in device memory (Gaussians, bodies, sensor motion, sorted elevations, tile cones),
// valid until emit_pairs has been enqueued. Waits for the pair count (result->total).
cudaError_t project_footprints(const ProjectParams& params, Binning* result, cudaStream_t stream);

// tile_ids / gaussian_ids: (total,) int64 device arrays; each pair once, grouped by Gaussian.
cudaError_t emit_pairs(const ProjectParams& params, const Binning& binning, int64_t* tile_ids,
                       int64_t* gaussian_ids, cudaStream_t stream);

void release(Binning* binning, cudaStream_t stream);

}  // namespace cuda
}  // namespace xs
