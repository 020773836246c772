// CUDA tile rasterizer (raster_args.h semantics, the math of composite.h / hit_list.h / response.h / rigid.h).
//   1. per Gaussian: whitening matrix, mean, D2 rejection bound, radius of its alpha >= 1/255 region;
//   2. per body frame: a reference ray origin and the spread of all ray origins around it (frame of the body);
//   3. per (tile, Gaussian) pair a key (tile << 32 | order-preserving bits of the hit-distance lower bound L),
//      radix-sorted (cub): each tile's candidates in ascending L (the pairs may come in any order);
//   4. rays grouped by tile (radix sort of the tile of each valid ray);
//   5. one block per tile: candidates streamed through shared memory in batches, one thread per ray with a
//      bounded sorted hit list in registers / local memory that commits hits once no later candidate can come
//      before them and stops below the transmittance floor (the block stops when all its rays have);
//   6. rays whose hit list overflowed are redone exactly by a grid-stride kernel sized without a host wait:
//      each pass walks the tile's candidates and keeps the LOCAL_HITS nearest hits after the last composited
//      one (in (t, Gaussian index) order), then composites them; passes repeat until the ray is done.
// Nothing is read back to the host: the whole call only enqueues work on the stream.
#include <cub/cub.cuh>

#include <math.h>

#include "xsim/composite.h"
#include "xsim/hit_list.h"
#include "xsim/response.h"
#include "xsim/rigid.h"
#include "xsim_cuda.h"

namespace xs {
namespace cuda {
namespace {

constexpr int BLOCK = 256;     // threads per block (rays of a tile at a time) and candidates per batch
constexpr int LOCAL_HITS = 32;  // per-ray hit list in the block kernel

#define XS_TRY(expr)                          \
    do {                                      \
        cudaError_t err_ = (expr);            \
        if (err_ != cudaSuccess) return err_; \
    } while (0)

template <typename T> struct GaussianRecord {
    T mu[3];
    T w[9];
    T reject_d2;  // D2 beyond this: alpha < 1/255 for sure (-1: never visible)
    T sigma;
    T radius;     // the alpha >= 1/255 region lies in this ball around mu
    int32_t frame;
};

template <typename T>
__global__ void prepare_gaussians(RasterInputs<T> in, GaussianRecord<T>* rec) {
    int64_t g = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (g >= in.n_gaussians) return;
    GaussianRecord<T> r;
    whitening_matrix(in.rotations + 9 * g, in.log_scales + 3 * g, r.w);
    for (int k = 0; k < 3; ++k) r.mu[k] = in.means[3 * g + k];
    T s = in.sigma[g];
    T k2 = visible_d2(s);
    r.sigma = s;
    r.reject_d2 = k2 < T(0) ? T(-1) : k2 * T(1.001) + T(1e-3);
    const T* ls = in.log_scales + 3 * g;
    T smax = xmax(ls[0], xmax(ls[1], ls[2]));
    r.radius = k2 < T(0) ? T(0) : xsqrt(r.reject_d2) * xexp(smax) * T(1.0001);
    r.frame = int32_t(in.frame[g]);
    rec[g] = r;
}

__device__ inline void atomic_max_nonneg(float* addr, float v) {
    atomicMax(reinterpret_cast<unsigned int*>(addr), __float_as_uint(v));
}
__device__ inline void atomic_max_nonneg(double* addr, double v) {
    atomicMax(reinterpret_cast<unsigned long long*>(addr), (unsigned long long)__double_as_longlong(v));
}

// reference origin of every body frame: ray 0's origin in that frame
template <typename T> __global__ void frame_reference(RasterInputs<T> in, T* ref) {
    int f = blockIdx.x * blockDim.x + threadIdx.x;
    if (f >= in.n_bodies || in.n_rays == 0) return;
    Vec3<T> ob, db;
    ray_in_body(in.bodies + int64_t(f) * BODY_FIELDS, in.times[0], load3(in.origins), load3(in.directions), ob, db);
    ref[3 * f] = ob.x, ref[3 * f + 1] = ob.y, ref[3 * f + 2] = ob.z;
}

// spread[f] = max over rays of |origin in frame f - ref[f]|
template <typename T> __global__ void frame_spread(RasterInputs<T> in, const T* ref, T* spread) {
    int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (i >= in.n_rays * in.n_bodies) return;
    int64_t r = i / in.n_bodies;
    int f = int(i % in.n_bodies);
    Vec3<T> ob, db;
    ray_in_body(in.bodies + int64_t(f) * BODY_FIELDS, in.times[r], load3(in.origins + 3 * r),
                load3(in.directions + 3 * r), ob, db);
    atomic_max_nonneg(spread + f, norm(ob - load3(ref + 3 * f)));
}

__device__ inline uint32_t sortable_bits(float x) {
    uint32_t b = __float_as_uint(x);
    return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}
__device__ inline float from_sortable_bits(uint32_t b) {
    return __uint_as_float((b & 0x80000000u) ? (b & 0x7fffffffu) : ~b);
}
__device__ inline float round_down(float x) { return x; }
__device__ inline float round_down(double x) { return __double2float_rd(x); }

template <typename T>
__global__ void pair_keys(int64_t n_pairs, const int64_t* pair_tile, const int64_t* pair_gaussian, int64_t num_tiles,
                          const GaussianRecord<T>* rec, const T* ref, const T* spread, uint64_t* keys,
                          int32_t* values) {
    int64_t p = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (p >= n_pairs) return;
    int64_t g = pair_gaussian[p], tile = pair_tile[p];
    const GaussianRecord<T>& r = rec[g];
    bool usable = r.reject_d2 >= T(0) && tile >= 0 && tile < num_tiles;
    Vec3<T> mu = make_vec3(r.mu[0], r.mu[1], r.mu[2]);
    T dist = norm(mu - load3(ref + 3 * r.frame));
    float lower = round_down(hit_lower_bound(dist, spread[r.frame], r.radius));
    uint64_t t = usable ? uint64_t(tile) : uint64_t(num_tiles);
    keys[p] = (t << 32) | sortable_bits(lower);
    values[p] = int32_t(g);
}

__global__ void ray_keys(int64_t n_rays, const bool* valid, const int64_t* ray_tile, int64_t num_tiles,
                         uint32_t* keys, int32_t* values) {
    int64_t r = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (r >= n_rays) return;
    int64_t t = ray_tile[r];
    keys[r] = uint32_t(valid[r] && t >= 0 && t < num_tiles ? t : num_tiles);
    values[r] = int32_t(r);
}

// start / end of each tile's run in a sorted key array (tile = key >> shift)
template <typename K>
__global__ void tile_ranges(int64_t n, const K* keys, int shift, int64_t num_tiles, int32_t* start, int32_t* end) {
    int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (i >= n) return;
    int64_t t = int64_t(keys[i] >> shift);
    if (t >= num_tiles) return;
    if (i == 0 || int64_t(keys[i - 1] >> shift) != t) start[t] = int32_t(i);
    if (i == n - 1 || int64_t(keys[i + 1] >> shift) != t) end[t] = int32_t(i + 1);
}

template <typename T> __global__ void clear_outputs(RasterInputs<T> in, RasterOutputs<T> out) {
    int64_t r = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (r >= in.n_rays) return;
    out.alpha[r] = T(0);
    out.transmittance[r] = T(1);
    out.distance[r] = T(0);
    out.median[r] = T(NAN);
    out.count[r] = 0;
    for (int64_t c = 0; c < in.n_channels; ++c) out.values[r * in.n_channels + c] = T(0);
}

// One ray's state while it walks its tile's candidates.
template <typename T> struct RayState {
    int64_t r;
    Vec3<T> origin, direction;
    T time;
    int frame = -1;  // body frame of the cached local ray
    Vec3<T> lo, ld;
    bool exists = true;
    RayComposite<T> comp;
    HitList<T> hits;

    __device__ void commit_ready(const RasterInputs<T>& in, const RasterOutputs<T>& out, T lower) {
        while (!hits.empty() && hits.t[hits.head] < lower && !comp.done) commit(in, out, hits.head++);
    }
    __device__ void commit(const RasterInputs<T>& in, const RasterOutputs<T>& out, int k) {
        commit_hit(in, out, hits.t[k], hits.alpha[k], hits.id[k]);
    }
    __device__ void commit_hit(const RasterInputs<T>& in, const RasterOutputs<T>& out, T t, T a, int32_t id) {
        T w = comp.push(t, a);
        const int64_t C = in.n_channels;
        const T* v = in.values + int64_t(id) * C;
        for (int64_t c = 0; c < C; ++c) out.values[r * C + c] += w * v[c];
    }
    // the live hit (t, alpha) of one candidate on this ray, false if none
    __device__ bool evaluate(const RasterInputs<T>& in, const GaussianRecord<T>& g, T& t, T& a) {
        if (g.frame != frame) {
            frame = g.frame;
            ray_in_body(in.bodies + int64_t(frame) * BODY_FIELDS, time, origin, direction, lo, ld);
            exists = time >= in.window_lo[frame] && time <= in.window_hi[frame];
        }
        if (!exists) return false;
        T d2;
        max_response(g.w, make_vec3(g.mu[0], g.mu[1], g.mu[2]), lo, ld, t, d2);
        if (!(d2 <= g.reject_d2) || !(t > T(0))) return false;
        a = alpha_of(g.sigma, d2);
        return a > T(0);
    }
    // evaluate one candidate; false if the hit list is full
    __device__ bool visit(const RasterInputs<T>& in, const GaussianRecord<T>& g, int32_t id) {
        T t, a;
        return evaluate(in, g, t, a) ? hits.insert(t, a, id) : true;
    }
    __device__ void finish(const RasterInputs<T>& in, const RasterOutputs<T>& out) {
        while (!hits.empty() && !comp.done) commit(in, out, hits.head++);
        write(out);
    }
    // the per-ray outputs (and the state a backward pass needs: transmittance, count)
    __device__ void write(const RasterOutputs<T>& out) {
        out.alpha[r] = comp.alpha();
        out.transmittance[r] = comp.transmittance;
        out.distance[r] = comp.expected_distance();
        out.median[r] = comp.has_median ? comp.median : T(NAN);
        out.count[r] = comp.count;
    }
};

template <typename T>
__global__ void __launch_bounds__(BLOCK)
    rasterize_tiles(RasterInputs<T> in, RasterOutputs<T> out, const GaussianRecord<T>* rec, const uint64_t* keys,
                    const int32_t* cand, const int32_t* cand_start, const int32_t* cand_end,
                    const int32_t* ray_order, const int32_t* ray_start, const int32_t* ray_end,
                    int32_t* overflow, int32_t* n_overflow) {
    __shared__ GaussianRecord<T> s_rec[BLOCK];
    __shared__ float s_lower[BLOCK];
    __shared__ int32_t s_id[BLOCK];
    const int tile = blockIdx.x;
    const int rs = ray_start[tile], re = ray_end[tile], cs = cand_start[tile], ce = cand_end[tile];
    if (rs >= re || cs >= ce) return;
    for (int base = rs; base < re; base += BLOCK) {
        const int ri = base + threadIdx.x;
        const bool active = ri < re;
        T hit_t[LOCAL_HITS], hit_a[LOCAL_HITS];
        int32_t hit_id[LOCAL_HITS];
        RayState<T> ray;
        ray.hits = HitList<T>{hit_t, hit_a, hit_id, 0, 0, LOCAL_HITS};
        ray.r = active ? ray_order[ri] : 0;
        ray.origin = load3(in.origins + 3 * ray.r);
        ray.direction = load3(in.directions + 3 * ray.r);
        ray.time = in.times[ray.r];
        bool done = !active, overflowed = false;
        for (int b0 = cs; b0 < ce; b0 += BLOCK) {
            const int k = b0 + threadIdx.x;
            if (k < ce) {
                s_id[threadIdx.x] = cand[k];
                s_rec[threadIdx.x] = rec[cand[k]];
                s_lower[threadIdx.x] = from_sortable_bits(uint32_t(keys[k] & 0xffffffffu));
            }
            __syncthreads();
            const int n = min(BLOCK, ce - b0);
            for (int j = 0; j < n && !done; ++j) {
                ray.commit_ready(in, out, T(s_lower[j]));
                if (ray.comp.done) {
                    done = true;
                } else if (!ray.visit(in, s_rec[j], s_id[j])) {
                    done = overflowed = true;
                }
            }
            if (__syncthreads_and(done)) break;
        }
        if (active && !overflowed) ray.finish(in, out);
        if (active && overflowed) overflow[atomicAdd(n_overflow, 1)] = int32_t(ray.r);
        __syncthreads();
    }
}

// The LOCAL_HITS smallest (t, Gaussian index) keys offered, ascending.
template <typename T> struct NearestHits {
    T t[LOCAL_HITS], a[LOCAL_HITS];
    int32_t id[LOCAL_HITS];
    int size = 0;
    __device__ static bool before(T t1, int32_t i1, T t2, int32_t i2) { return t1 < t2 || (t1 == t2 && i1 < i2); }
    __device__ bool full() const { return size == LOCAL_HITS; }
    __device__ void offer(T tv, T av, int32_t iv) {
        if (full()) {
            if (!before(tv, iv, t[size - 1], id[size - 1])) return;
            --size;  // drop the farthest: a later pass finds it again
        }
        int k = size;
        while (k > 0 && before(tv, iv, t[k - 1], id[k - 1])) {
            t[k] = t[k - 1], a[k] = a[k - 1], id[k] = id[k - 1];
            --k;
        }
        t[k] = tv, a[k] = av, id[k] = iv;
        ++size;
    }
};

// Exact redo of the rays whose block-kernel hit list overflowed (their count stays on the device: grid-stride
// over it). Each pass composites the LOCAL_HITS hits that follow, in (t, index) order, the last one composited
// by the pass before; a pass stops walking once its list is full and the next candidate's lower bound lies
// beyond its farthest hit.
template <typename T>
__global__ void rasterize_overflow(RasterInputs<T> in, RasterOutputs<T> out, const GaussianRecord<T>* rec,
                                   const uint64_t* keys, const int32_t* cand, const int32_t* cand_start,
                                   const int32_t* cand_end, const int32_t* overflow, const int32_t* n_overflow) {
    const int32_t count = *n_overflow;
    const int64_t C = in.n_channels;
    for (int32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x * blockDim.x) {
        RayState<T> ray;
        ray.r = overflow[i];
        for (int64_t c = 0; c < C; ++c) out.values[ray.r * C + c] = T(0);
        ray.origin = load3(in.origins + 3 * ray.r);
        ray.direction = load3(in.directions + 3 * ray.r);
        ray.time = in.times[ray.r];
        const int tile = int(in.ray_tile[ray.r]);
        const int cs = cand_start[tile], ce = cand_end[tile];
        T last_t = T(-INFINITY);
        int32_t last_id = -1;
        bool more = true;
        while (more && !ray.comp.done) {
            NearestHits<T> next;
            for (int k = cs; k < ce; ++k) {
                const T lower = T(from_sortable_bits(uint32_t(keys[k] & 0xffffffffu)));
                if (next.full() && lower > next.t[LOCAL_HITS - 1]) break;
                T t, a;
                const int32_t id = cand[k];
                if (!ray.evaluate(in, rec[id], t, a)) continue;
                if (NearestHits<T>::before(last_t, last_id, t, id)) next.offer(t, a, id);
            }
            for (int j = 0; j < next.size && !ray.comp.done; ++j)
                ray.commit_hit(in, out, next.t[j], next.a[j], next.id[j]);
            more = next.full();
            if (next.size > 0) last_t = next.t[next.size - 1], last_id = next.id[next.size - 1];
        }
        ray.write(out);
    }
}

int blocks(int64_t n, int per = BLOCK) { return int((n + per - 1) / per); }

int bits_for(int64_t n) {
    int b = 1;
    while ((int64_t(1) << b) <= n) ++b;
    return b;
}

template <typename V> cudaError_t alloc(V** p, size_t count, cudaStream_t s) {
    return cudaMallocAsync(reinterpret_cast<void**>(p), sizeof(V) * (count > 0 ? count : 1), s);
}

}  // namespace

template <typename T>
cudaError_t rasterize(const RasterInputs<T>& in, const RasterOutputs<T>& out, cudaStream_t s) {
    const int64_t R = in.n_rays, P = in.n_pairs, N = in.n_gaussians, F = in.n_bodies, NT = in.num_tiles;
    if (R == 0) return cudaSuccess;
    XS_LAUNCH(clear_outputs<T>, blocks(R), BLOCK, s)(in, out);
    if (P == 0 || N == 0 || NT == 0) return cudaGetLastError();
    GaussianRecord<T>* rec = nullptr;
    T *ref = nullptr, *spread = nullptr;
    uint64_t *keys = nullptr, *keys_sorted = nullptr;
    int32_t *vals = nullptr, *vals_sorted = nullptr, *cand_start = nullptr, *cand_end = nullptr;
    uint32_t *rkeys = nullptr, *rkeys_sorted = nullptr;
    int32_t *rvals = nullptr, *rvals_sorted = nullptr, *ray_start = nullptr, *ray_end = nullptr;
    int32_t *overflow = nullptr, *counters = nullptr;
    void* temp = nullptr;
    size_t temp_bytes = 0, bytes_a = 0, bytes_b = 0;
    XS_TRY(alloc(&rec, N, s));
    XS_TRY(alloc(&ref, 3 * F, s));
    XS_TRY(alloc(&spread, F, s));
    XS_TRY(alloc(&keys, P, s));
    XS_TRY(alloc(&keys_sorted, P, s));
    XS_TRY(alloc(&vals, P, s));
    XS_TRY(alloc(&vals_sorted, P, s));
    XS_TRY(alloc(&cand_start, NT, s));
    XS_TRY(alloc(&cand_end, NT, s));
    XS_TRY(alloc(&rkeys, R, s));
    XS_TRY(alloc(&rkeys_sorted, R, s));
    XS_TRY(alloc(&rvals, R, s));
    XS_TRY(alloc(&rvals_sorted, R, s));
    XS_TRY(alloc(&ray_start, NT, s));
    XS_TRY(alloc(&ray_end, NT, s));
    XS_TRY(alloc(&overflow, R, s));
    XS_TRY(alloc(&counters, 1, s));
    XS_TRY(cudaMemsetAsync(spread, 0, sizeof(T) * F, s));
    XS_TRY(cudaMemsetAsync(cand_start, 0, sizeof(int32_t) * NT, s));
    XS_TRY(cudaMemsetAsync(cand_end, 0, sizeof(int32_t) * NT, s));
    XS_TRY(cudaMemsetAsync(ray_start, 0, sizeof(int32_t) * NT, s));
    XS_TRY(cudaMemsetAsync(ray_end, 0, sizeof(int32_t) * NT, s));
    XS_TRY(cudaMemsetAsync(counters, 0, sizeof(int32_t), s));
    XS_LAUNCH(prepare_gaussians<T>, blocks(N), BLOCK, s)(in, rec);
    XS_LAUNCH(frame_reference<T>, blocks(F, 32), 32, s)(in, ref);
    XS_LAUNCH(frame_spread<T>, blocks(R * F), BLOCK, s)(in, ref, spread);
    XS_LAUNCH(pair_keys<T>, blocks(P), BLOCK, s)(P, in.pair_tile, in.pair_gaussian, NT, rec, ref, spread, keys,
                                                 vals);
    XS_LAUNCH(ray_keys, blocks(R), BLOCK, s)(R, in.valid, in.ray_tile, NT, rkeys, rvals);
    XS_TRY(cudaGetLastError());
    const int end_bit = 32 + bits_for(NT + 1);
    XS_TRY(cub::DeviceRadixSort::SortPairs(nullptr, bytes_a, keys, keys_sorted, vals, vals_sorted, P, 0, end_bit, s));
    XS_TRY(cub::DeviceRadixSort::SortPairs(nullptr, bytes_b, rkeys, rkeys_sorted, rvals, rvals_sorted, R, 0,
                                           bits_for(NT + 1), s));
    temp_bytes = bytes_a > bytes_b ? bytes_a : bytes_b;
    XS_TRY(cudaMallocAsync(&temp, temp_bytes, s));
    XS_TRY(cub::DeviceRadixSort::SortPairs(temp, bytes_a, keys, keys_sorted, vals, vals_sorted, P, 0, end_bit, s));
    XS_TRY(cub::DeviceRadixSort::SortPairs(temp, bytes_b, rkeys, rkeys_sorted, rvals, rvals_sorted, R, 0,
                                           bits_for(NT + 1), s));
    XS_LAUNCH(tile_ranges<uint64_t>, blocks(P), BLOCK, s)(P, keys_sorted, 32, NT, cand_start, cand_end);
    XS_LAUNCH(tile_ranges<uint32_t>, blocks(R), BLOCK, s)(R, rkeys_sorted, 0, NT, ray_start, ray_end);
    XS_LAUNCH(rasterize_tiles<T>, int(NT), BLOCK, s)(in, out, rec, keys_sorted, vals_sorted, cand_start, cand_end,
                                                     rvals_sorted, ray_start, ray_end, overflow, counters);
    // overflowed rays: a fixed grid walks the device-side count (no host wait)
    const int redo_blocks = int(xmin<int64_t>(blocks(R, 64), 2048));
    XS_LAUNCH(rasterize_overflow<T>, redo_blocks, 64, s)(in, out, rec, keys_sorted, vals_sorted, cand_start, cand_end,
                                                         overflow, counters);
    XS_TRY(cudaGetLastError());
    void* buffers[] = {rec, ref, spread, keys, keys_sorted, vals, vals_sorted, cand_start, cand_end, rkeys,
                       rkeys_sorted, rvals, rvals_sorted, ray_start, ray_end, overflow, counters, temp};
    for (void* b : buffers) cudaFreeAsync(b, s);
    if (out.evaluated) XS_TRY(cudaMemsetAsync(out.evaluated, 0, sizeof(int64_t), s));
    return cudaGetLastError();
}

template cudaError_t rasterize<float>(const RasterInputs<float>&, const RasterOutputs<float>&, cudaStream_t);
template cudaError_t rasterize<double>(const RasterInputs<double>&, const RasterOutputs<double>&, cudaStream_t);

}  // namespace cuda
}  // namespace xs
