// CUDA projection and tile binning (project.h per Gaussian, as on the CPU), device-resident:
//   1. one thread per Gaussian: footprints (UT rectangles on the LiDAR phase branches, or a bounding cone) and
//      the number of distinct tiles they cover (unique_pairs.h: a tile covered twice counts once);
//   2. inclusive scan of the counts (cub) -> each Gaussian's slice of the pair arrays;
//   3. the pipeline's one host synchronisation: the total number of pairs (and the culled / cone counts, read
//      in the same wait), so the caller can size the pair arrays;
//   4. one thread per Gaussian writes its (tile, Gaussian) pairs into its slice.
// No sort and no de-duplication pass: the lists hold each pair once, grouped by Gaussian (ascending), tiles
// in visiting order. The rasterizer orders every tile's candidates itself (rasterize.cu, a radix sort by tile
// and hit-distance lower bound), so the tile order of the CPU lists is not needed here.
#include <cub/cub.cuh>

#include "xsim/unique_pairs.h"
#include "xsim_cuda.h"

namespace xs {
namespace cuda {
namespace {

constexpr int THREADS = 128;

#define XS_TRY(expr)                          \
    do {                                      \
        cudaError_t err_ = (expr);            \
        if (err_ != cudaSuccess) return err_; \
    } while (0)

__global__ void footprints_kernel(ProjectParams p, GaussianFootprints* fps, int64_t* counts,
                                  unsigned long long* stats) {
    int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (g >= p.n) return;
    GaussianFootprints fp = footprints_of(p, g);
    fps[g] = fp;
    counts[g] = count_unique_pairs(p, fp);
    if (fp.culled) atomicAdd(stats, 1ULL);
    if (fp.cone) atomicAdd(stats + 1, 1ULL);
}

struct PairWriter {
    int64_t* tiles;
    int64_t* gaussians;
    int64_t gaussian;
    int64_t k;
    __device__ void operator()(int64_t tile) {
        tiles[k] = tile;
        gaussians[k] = gaussian;
        ++k;
    }
};

// offsets[g] (exclusive start of Gaussian g's slice) = offsets_inclusive[g - 1], 0 for g = 0
__global__ void emit_kernel(ProjectParams p, const GaussianFootprints* fps, const int64_t* inclusive,
                            int64_t* tile_ids, int64_t* gaussian_ids) {
    int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (g >= p.n) return;
    const int64_t start = g == 0 ? 0 : inclusive[g - 1];
    PairWriter writer{tile_ids + start, gaussian_ids + start, g, 0};
    visit_unique_pairs(p, fps[g], [&writer](int64_t tile) { writer(tile); });
}

int blocks(int64_t n) { return int((n + THREADS - 1) / THREADS); }

}  // namespace

cudaError_t project_footprints(const ProjectParams& p, Binning* result, cudaStream_t s) {
    *result = Binning{};
    const int64_t n = p.n;
    if (n == 0 || p.num_tiles == 0) return cudaSuccess;
    XS_TRY(cudaMallocAsync(reinterpret_cast<void**>(&result->footprints), sizeof(GaussianFootprints) * n, s));
    XS_TRY(cudaMallocAsync(reinterpret_cast<void**>(&result->inclusive), sizeof(int64_t) * n, s));
    int64_t* counts = nullptr;
    unsigned long long* stats = nullptr;
    XS_TRY(cudaMallocAsync(reinterpret_cast<void**>(&counts), sizeof(int64_t) * n, s));
    XS_TRY(cudaMallocAsync(reinterpret_cast<void**>(&stats), sizeof(unsigned long long) * 2, s));
    XS_TRY(cudaMemsetAsync(stats, 0, sizeof(unsigned long long) * 2, s));
    XS_LAUNCH(footprints_kernel, blocks(n), THREADS, s)(p, result->footprints, counts, stats);
    XS_TRY(cudaGetLastError());
    size_t temp_bytes = 0;
    void* temp = nullptr;
    XS_TRY(cub::DeviceScan::InclusiveSum(nullptr, temp_bytes, counts, result->inclusive, n, s));
    XS_TRY(cudaMallocAsync(&temp, temp_bytes, s));
    XS_TRY(cub::DeviceScan::InclusiveSum(temp, temp_bytes, counts, result->inclusive, n, s));
    XS_TRY(cudaFreeAsync(temp, s));
    XS_TRY(cudaFreeAsync(counts, s));
    int64_t total = 0;
    unsigned long long host_stats[2] = {0, 0};
    XS_TRY(cudaMemcpyAsync(&total, result->inclusive + n - 1, sizeof(int64_t), cudaMemcpyDeviceToHost, s));
    XS_TRY(cudaMemcpyAsync(host_stats, stats, sizeof(host_stats), cudaMemcpyDeviceToHost, s));
    XS_TRY(cudaFreeAsync(stats, s));
    XS_TRY(cudaStreamSynchronize(s));  // the one host wait of the pipeline: the pair arrays' size
    result->total = total;
    result->culled = int64_t(host_stats[0]);
    result->cones = int64_t(host_stats[1]);
    result->n = n;
    return cudaGetLastError();
}

cudaError_t emit_pairs(const ProjectParams& p, const Binning& b, int64_t* tile_ids, int64_t* gaussian_ids,
                       cudaStream_t s) {
    if (b.total == 0 || b.n == 0) return cudaSuccess;
    XS_LAUNCH(emit_kernel, blocks(b.n), THREADS, s)(p, b.footprints, b.inclusive, tile_ids, gaussian_ids);
    return cudaGetLastError();
}

void release(Binning* b, cudaStream_t s) {
    if (b->footprints) cudaFreeAsync(b->footprints, s);
    if (b->inclusive) cudaFreeAsync(b->inclusive, s);
    b->footprints = nullptr;
    b->inclusive = nullptr;
    b->total = 0;
}

}  // namespace cuda
}  // namespace xs
