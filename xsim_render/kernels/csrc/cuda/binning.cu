// CUDA projection and tile binning (project.h per Gaussian, as on the CPU):
//   1. one thread per Gaussian: footprints (UT rectangles on the LiDAR phase branches, or a bounding cone) and
//      the number of tiles they cover;
//   2. exclusive scan of the counts (cub) -> each Gaussian's slice of the pair array;
//   3. one thread per Gaussian writes keys tile << 32 | gaussian;
//   4. radix sort of the keys (cub) and removal of duplicates (a Gaussian whose two phase footprints, or
//      rectangle and cone, cover the same tile): each tile's list ascending in Gaussian index, as the reference.
#include <cub/cub.cuh>

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
    counts[g] = count_pairs(p, fp);
    if (fp.culled) atomicAdd(stats, 1ULL);
    if (fp.cone) atomicAdd(stats + 1, 1ULL);
}

struct KeyWriter {
    uint64_t* out;
    uint64_t gaussian;
    int64_t k;
    __device__ void operator()(int64_t tile) { out[k++] = (uint64_t(tile) << 32) | gaussian; }
};

__global__ void emit_kernel(ProjectParams p, const GaussianFootprints* fps, const int64_t* offsets, uint64_t* keys) {
    int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (g >= p.n) return;
    KeyWriter writer{keys + offsets[g], uint64_t(g), 0};
    visit_pairs(p, fps[g], [&writer](int64_t tile) { writer(tile); });
}

__global__ void split_kernel(int64_t n, const uint64_t* keys, int64_t* tiles, int64_t* gaussians) {
    int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (i >= n) return;
    tiles[i] = int64_t(keys[i] >> 32);
    gaussians[i] = int64_t(keys[i] & 0xffffffffULL);
}

int blocks(int64_t n) { return int((n + THREADS - 1) / THREADS); }

int bits_for(int64_t n) {
    int b = 1;
    while ((int64_t(1) << b) <= n) ++b;
    return b;
}

}  // namespace

cudaError_t project_and_bin(const ProjectParams& p, Binning* result, cudaStream_t s) {
    *result = Binning{};
    const int64_t n = p.n;
    if (n == 0 || p.num_tiles == 0) return cudaSuccess;
    GaussianFootprints* fps = nullptr;
    int64_t *counts = nullptr, *offsets = nullptr;
    unsigned long long* stats = nullptr;
    XS_TRY(cudaMallocAsync(reinterpret_cast<void**>(&fps), sizeof(GaussianFootprints) * n, s));
    XS_TRY(cudaMallocAsync(reinterpret_cast<void**>(&counts), sizeof(int64_t) * n, s));
    XS_TRY(cudaMallocAsync(reinterpret_cast<void**>(&offsets), sizeof(int64_t) * (n + 1), s));
    XS_TRY(cudaMallocAsync(reinterpret_cast<void**>(&stats), sizeof(unsigned long long) * 2, s));
    XS_TRY(cudaMemsetAsync(stats, 0, sizeof(unsigned long long) * 2, s));
    XS_TRY(cudaMemsetAsync(offsets, 0, sizeof(int64_t), s));
    footprints_kernel<<<blocks(n), THREADS, 0, s>>>(p, fps, counts, stats);
    XS_TRY(cudaGetLastError());
    size_t temp_bytes = 0;
    void* temp = nullptr;
    XS_TRY(cub::DeviceScan::InclusiveSum(nullptr, temp_bytes, counts, offsets + 1, n, s));
    XS_TRY(cudaMallocAsync(&temp, temp_bytes, s));
    XS_TRY(cub::DeviceScan::InclusiveSum(temp, temp_bytes, counts, offsets + 1, n, s));
    cudaFreeAsync(temp, s);
    int64_t total = 0;
    unsigned long long host_stats[2] = {0, 0};
    XS_TRY(cudaMemcpyAsync(&total, offsets + n, sizeof(int64_t), cudaMemcpyDeviceToHost, s));
    XS_TRY(cudaMemcpyAsync(host_stats, stats, sizeof(host_stats), cudaMemcpyDeviceToHost, s));
    XS_TRY(cudaStreamSynchronize(s));
    result->culled = int64_t(host_stats[0]);
    result->cones = int64_t(host_stats[1]);
    uint64_t *keys = nullptr, *sorted = nullptr, *unique = nullptr;
    int64_t* n_unique = nullptr;
    XS_TRY(cudaMallocAsync(reinterpret_cast<void**>(&keys), sizeof(uint64_t) * (total > 0 ? total : 1), s));
    XS_TRY(cudaMallocAsync(reinterpret_cast<void**>(&sorted), sizeof(uint64_t) * (total > 0 ? total : 1), s));
    XS_TRY(cudaMallocAsync(reinterpret_cast<void**>(&unique), sizeof(uint64_t) * (total > 0 ? total : 1), s));
    XS_TRY(cudaMallocAsync(reinterpret_cast<void**>(&n_unique), sizeof(int64_t), s));
    XS_TRY(cudaMemsetAsync(n_unique, 0, sizeof(int64_t), s));
    if (total > 0) {
        emit_kernel<<<blocks(n), THREADS, 0, s>>>(p, fps, offsets, keys);
        XS_TRY(cudaGetLastError());
        const int end_bit = 32 + bits_for(p.num_tiles);
        size_t sort_bytes = 0, unique_bytes = 0;
        XS_TRY(cub::DeviceRadixSort::SortKeys(nullptr, sort_bytes, keys, sorted, total, 0, end_bit, s));
        XS_TRY(cub::DeviceSelect::Unique(nullptr, unique_bytes, sorted, unique, n_unique, total, s));
        temp_bytes = sort_bytes > unique_bytes ? sort_bytes : unique_bytes;
        XS_TRY(cudaMallocAsync(&temp, temp_bytes, s));
        XS_TRY(cub::DeviceRadixSort::SortKeys(temp, sort_bytes, keys, sorted, total, 0, end_bit, s));
        XS_TRY(cub::DeviceSelect::Unique(temp, unique_bytes, sorted, unique, n_unique, total, s));
        cudaFreeAsync(temp, s);
    }
    int64_t count = 0;
    XS_TRY(cudaMemcpyAsync(&count, n_unique, sizeof(int64_t), cudaMemcpyDeviceToHost, s));
    XS_TRY(cudaStreamSynchronize(s));
    void* buffers[] = {fps, counts, offsets, stats, keys, sorted, n_unique};
    for (void* b : buffers) cudaFreeAsync(b, s);
    result->keys = unique;
    result->count = count;
    return cudaGetLastError();
}

cudaError_t split_keys(const Binning& b, int64_t* tile_ids, int64_t* gaussian_ids, cudaStream_t s) {
    if (b.count == 0) return cudaSuccess;
    split_kernel<<<blocks(b.count), THREADS, 0, s>>>(b.count, b.keys, tile_ids, gaussian_ids);
    return cudaGetLastError();
}

void release(Binning* b, cudaStream_t s) {
    if (b->keys) cudaFreeAsync(b->keys, s);
    b->keys = nullptr;
    b->count = 0;
}

}  // namespace cuda
}  // namespace xs
