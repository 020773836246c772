// Host simulation of the two cub device-wide algorithms csrc/cuda/ uses (see ../cuda_runtime.h): the same
// signatures and results, computed on the calling thread. A first call with temp == nullptr asks for the
// temporary storage size (one byte here).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "../cuda_runtime.h"

namespace cub {

struct DeviceScan {
    // out[i] = in[0] + ... + in[i]
    template <typename In, typename Out, typename N>
    static cudaError_t InclusiveSum(void* temp, size_t& temp_bytes, In in, Out out, N n, cudaStream_t = nullptr) {
        if (!temp) {
            temp_bytes = 1;
            return cudaSuccess;
        }
        std::inclusive_scan(in, in + n, out);
        return cudaSuccess;
    }
};

struct DeviceRadixSort {
    // (key, value) pairs in ascending order of the key's bits [begin_bit, end_bit), stable (a radix sort)
    template <typename K, typename V, typename N>
    static cudaError_t SortPairs(void* temp, size_t& temp_bytes, const K* keys_in, K* keys_out, const V* values_in,
                                V* values_out, N n, int begin_bit = 0, int end_bit = int(sizeof(K) * 8),
                                cudaStream_t = nullptr) {
        if (!temp) {
            temp_bytes = 1;
            return cudaSuccess;
        }
        const int width = end_bit - begin_bit;
        const K mask = width >= int(sizeof(K) * 8) ? K(~K(0)) : K((K(1) << width) - 1);
        std::vector<size_t> order(static_cast<size_t>(n));
        std::iota(order.begin(), order.end(), size_t(0));
        std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
            return K(keys_in[a] >> begin_bit & mask) < K(keys_in[b] >> begin_bit & mask);
        });
        std::vector<K> k(order.size());
        std::vector<V> v(order.size());
        for (size_t i = 0; i < order.size(); ++i) k[i] = keys_in[order[i]], v[i] = values_in[order[i]];
        std::copy(k.begin(), k.end(), keys_out);
        std::copy(v.begin(), v.end(), values_out);
        return cudaSuccess;
    }
};

}  // namespace cub
