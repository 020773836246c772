// Host API of the CUDA kernels: raw DEVICE pointers and sizes, a CUDA stream, cudaError_t back. No PyTorch.
//   rasterize:      the tile rasterizer (raster_args.h semantics), per-tile candidate order by a radix sort.
//   project_and_bin: per-Gaussian footprints (project.h) -> (tile << 32 | Gaussian) keys, radix-sorted and
//                   de-duplicated; the result stays on the device until copied out.
#pragma once

#include <cuda_runtime.h>
#include <stdint.h>

#include "xsim/project.h"
#include "xsim/raster_args.h"

namespace xs {
namespace cuda {

template <typename T>
cudaError_t rasterize(const RasterInputs<T>& in, const RasterOutputs<T>& out, cudaStream_t stream);

// Sorted unique (tile << 32 | gaussian) keys of a capture, owned by the caller (free with release()).
struct Binning {
    uint64_t* keys = nullptr;
    int64_t count = 0;
    int64_t culled = 0;
    int64_t cones = 0;
};

// params: every pointer in device memory (Gaussians, bodies, sensor motion, sorted elevations, tile cones).
cudaError_t project_and_bin(const ProjectParams& params, Binning* result, cudaStream_t stream);

// tile_ids[i] = keys[i] >> 32, gaussian_ids[i] = keys[i] & 0xffffffff (int64, device).
cudaError_t split_keys(const Binning& binning, int64_t* tile_ids, int64_t* gaussian_ids, cudaStream_t stream);

void release(Binning* binning, cudaStream_t stream);

}  // namespace cuda
}  // namespace xs
