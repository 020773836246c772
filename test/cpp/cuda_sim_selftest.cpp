// Self-test of the host simulation of the CUDA runtime (xsim_render/kernels/csrc/sim/include), built and run by
// test/test_kernels_cuda_simulated.py: `cuda_sim_selftest CASE` prints one line of results for the test to check.
#include <cuda_runtime.h>

#include <cub/cub.cuh>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <vector>

#define LAUNCH(kernel, grid, block) ::xs_sim::launch((grid), (block), kernel)

// each block's values reversed through shared memory: needs the barrier between the writes and the reads
__global__ void reverse(const int* in, int* out, int n) {
    __shared__ int s[64];
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    s[threadIdx.x] = i < n ? in[i] : -1;
    __syncthreads();
    if (i < n) out[i] = s[blockDim.x - 1 - threadIdx.x];
}

// the same without the barrier: a race (in index order thread k reads entries threads > k have not written)
__global__ void reverse_racy(const int* in, int* out, int n) {
    __shared__ int s[64];
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    s[threadIdx.x] = i < n ? in[i] : -1;
    if (i < n) out[i] = s[blockDim.x - 1 - threadIdx.x];
}

// __syncthreads_and: every thread gets the AND of all predicates; rounds[b] counts the loop's passes
__global__ void vote(const int* flags, int* rounds) {
    int pass = 0;
    for (;;) {
        ++pass;
        const int done = flags[blockIdx.x * blockDim.x + threadIdx.x] <= pass;
        if (__syncthreads_and(done)) break;
    }
    if (threadIdx.x == 0) rounds[blockIdx.x] = pass;
}

// thread 0 takes one barrier more than the others: undefined on a GPU, an error here
__global__ void divergent(int* out) {
    if (threadIdx.x == 0) __syncthreads();
    __syncthreads();
    out[threadIdx.x] = 1;
}

__global__ void count(int* counter) { atomicAdd(counter, 1); }

__global__ void write_past(int* a, int n) {
    if (threadIdx.x == 0) a[n] = 7;
}

int main(int argc, char** argv) {
    const char* which = argc > 1 ? argv[1] : "";
    if (!strcmp(which, "reverse") || !strcmp(which, "racy")) {
        const int n = 100;  // two blocks of 64, the second partly outside
        std::vector<int> in(n), out(n, 0);
        for (int i = 0; i < n; ++i) in[i] = i;
        if (!strcmp(which, "reverse"))
            LAUNCH(reverse, 2, 64)(in.data(), out.data(), n);
        else
            LAUNCH(reverse_racy, 2, 64)(in.data(), out.data(), n);
        for (int i = 0; i < n; ++i) printf("%d ", out[i]);
        printf("err=%d\n", int(cudaGetLastError()));
    } else if (!strcmp(which, "vote")) {
        std::vector<int> flags(3 * 32), rounds(3, 0);
        for (int b = 0; b < 3; ++b)
            for (int t = 0; t < 32; ++t) flags[b * 32 + t] = t == 5 ? 2 + 3 * b : 1;
        LAUNCH(vote, 3, 32)(flags.data(), rounds.data());
        printf("%d %d %d err=%d\n", rounds[0], rounds[1], rounds[2], int(cudaGetLastError()));
    } else if (!strcmp(which, "divergent")) {
        std::vector<int> out(32, 0);
        LAUNCH(divergent, 1, 32)(out.data());
        cudaError_t e = cudaGetLastError();
        printf("err=%d %s\n", int(e), cudaGetErrorString(e));
    } else if (!strcmp(which, "atomic")) {
        int counter = 0;
        LAUNCH(count, 7, 96)(&counter);
        printf("%d err=%d\n", counter, int(cudaGetLastError()));
    } else if (!strcmp(which, "overrun")) {
        int* a = nullptr;
        cudaMallocAsync(reinterpret_cast<void**>(&a), sizeof(int) * 10, nullptr);
        const int first = a[0];  // uninitialised device memory: the fill pattern
        LAUNCH(write_past, 1, 32)(a, 10);
        cudaFreeAsync(a, nullptr);
        cudaError_t e = cudaGetLastError();
        printf("fill=%08x err=%d %s\n", unsigned(first), int(e), cudaGetErrorString(e));
    } else if (!strcmp(which, "sort")) {
        // keys sorted on bits [4, 12) only, stable: equal masked keys keep their input order
        const int n = 2000;
        std::vector<uint32_t> keys(n), keys_out(n);
        std::vector<int32_t> values(n), values_out(n);
        uint32_t x = 12345;
        for (int i = 0; i < n; ++i) x = x * 1664525u + 1013904223u, keys[i] = x, values[i] = i;
        size_t bytes = 0;
        cub::DeviceRadixSort::SortPairs(nullptr, bytes, keys.data(), keys_out.data(), values.data(),
                                        values_out.data(), n, 4, 12, nullptr);
        std::vector<char> temp(bytes);
        cub::DeviceRadixSort::SortPairs(temp.data(), bytes, keys.data(), keys_out.data(), values.data(),
                                        values_out.data(), n, 4, 12, nullptr);
        int bad = 0;
        for (int i = 0; i < n; ++i) {
            if (keys_out[i] != keys[values_out[i]]) ++bad;
            if (i > 0) {
                const uint32_t a = keys_out[i - 1] >> 4 & 255u, b = keys_out[i] >> 4 & 255u;
                if (a > b || (a == b && values_out[i - 1] > values_out[i])) ++bad;
            }
        }
        std::vector<int64_t> counts = {3, 0, 5, 1}, sums(4);
        cub::DeviceScan::InclusiveSum(temp.data(), bytes, counts.data(), sums.data(), 4, nullptr);
        printf("bad=%d sums=%lld %lld %lld %lld\n", bad, (long long)sums[0], (long long)sums[1],
               (long long)sums[2], (long long)sums[3]);
    } else {
        fprintf(stderr, "unknown case %s\n", which);
        return 2;
    }
    return 0;
}
