// Host simulation of the part of the CUDA runtime the kernels in csrc/cuda/ use, so that those .cu files compile
// unchanged as C++ (g++, -DXS_CUDA_SIM; this directory first on the include path) and RUN on a machine without a
// GPU: test/test_kernels_cuda_simulated.py runs the cuda backend's tests on them. Not a performance model.
//
//   * launches (XS_LAUNCH in xsim_cuda.h): blocks one after another; the threads of a block are fibers
//     (ucontext) on the calling thread, each run until it exits or reaches a barrier. __syncthreads /
//     __syncthreads_and release once every live thread of the block is waiting; threads waiting at different
//     barriers (another source line or another count: a divergent __syncthreads, undefined on a GPU) are an
//     error. __shared__ is `static`: one copy per kernel, shared by the block's threads (blocks never overlap).
//     XS_CUDA_SIM_SHUFFLE=SEED (not 0) runs the threads of every phase in a random order instead of by index:
//     results that change with the order reveal races between barriers.
//   * memory: cudaMallocAsync is malloc, filled with 0xA5 bytes (device memory is uninitialised) and followed by
//     a 64-byte guard checked at cudaFreeAsync (an overrun is an error); atomics are plain operations (one host
//     thread runs a launch); streams are ignored (every call completes before it returns).
//   * errors are sticky until cudaGetLastError, with a message naming what went wrong (cudaGetErrorString).
#pragma once

#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

#include <algorithm>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)

// ---- types and errors ----
enum cudaError_t { cudaSuccess = 0, cudaErrorMemoryAllocation = 2, cudaErrorLaunchFailure = 719 };
enum cudaMemcpyKind { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
enum cudaMemPoolAttr { cudaMemPoolAttrReservedMemHigh = 6 };
typedef struct CUstream_st* cudaStream_t;
typedef struct CUmemPool_st* cudaMemPool_t;

struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int x_ = 1, unsigned int y_ = 1, unsigned int z_ = 1) : x(x_), y(y_), z(z_) {}
};

namespace xs_sim {

struct State {
    cudaError_t error = cudaSuccess;
    std::string message;
    std::map<void*, size_t> blocks;  // live allocations (payload bytes)
    size_t live = 0, peak = 0;
    uint64_t launches = 0;
};
inline State& state() {
    static thread_local State s;
    return s;
}
inline cudaError_t fail(cudaError_t err, const std::string& what) {
    State& s = state();
    if (s.error == cudaSuccess) s.error = err, s.message = what;
    return err;
}

}  // namespace xs_sim

inline cudaError_t cudaGetLastError() {
    xs_sim::State& s = xs_sim::state();
    cudaError_t e = s.error;
    s.error = cudaSuccess;
    return e;
}
inline const char* cudaGetErrorString(cudaError_t e) {
    static thread_local std::string text;
    text = e == cudaSuccess ? "no error" : "simulated CUDA: " + xs_sim::state().message;
    return text.c_str();
}

// ---- memory ----
namespace xs_sim {
constexpr size_t GUARD = 64;
constexpr unsigned char FILL = 0xA5, GUARD_BYTE = 0x5A;
}  // namespace xs_sim

inline cudaError_t cudaMallocAsync(void** p, size_t bytes, cudaStream_t = nullptr) {
    using namespace xs_sim;
    unsigned char* b = static_cast<unsigned char*>(malloc(bytes + GUARD));
    if (!b) return fail(cudaErrorMemoryAllocation, "cudaMallocAsync of " + std::to_string(bytes) + " bytes");
    memset(b, FILL, bytes);
    memset(b + bytes, GUARD_BYTE, GUARD);
    State& s = state();
    s.blocks[b] = bytes;
    s.live += bytes;
    s.peak = std::max(s.peak, s.live);
    *p = b;
    return cudaSuccess;
}
inline cudaError_t cudaFreeAsync(void* p, cudaStream_t = nullptr) {
    using namespace xs_sim;
    if (!p) return cudaSuccess;
    State& s = state();
    auto it = s.blocks.find(p);
    if (it == s.blocks.end()) return fail(cudaErrorLaunchFailure, "cudaFreeAsync of a pointer it did not allocate");
    const size_t bytes = it->second;
    const unsigned char* guard = static_cast<unsigned char*>(p) + bytes;
    for (size_t k = 0; k < GUARD; ++k)
        if (guard[k] != GUARD_BYTE) {
            fail(cudaErrorLaunchFailure, "a kernel wrote past the end of a " + std::to_string(bytes) +
                                             "-byte allocation (byte " + std::to_string(bytes + k) + ")");
            break;
        }
    s.live -= bytes;
    s.blocks.erase(it);
    free(p);
    return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t = nullptr) {
    memset(p, value, bytes);
    return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind, cudaStream_t = nullptr) {
    memcpy(dst, src, bytes);
    return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return xs_sim::state().error; }
inline cudaError_t cudaGetDevice(int* device) {
    *device = 0;
    return cudaSuccess;
}
inline cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int) {
    *pool = nullptr;
    return cudaSuccess;
}
// cudaMemPoolAttrReservedMemHigh: the highest number of bytes allocated at once so far (this host thread)
inline cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t, cudaMemPoolAttr, void* value) {
    *static_cast<unsigned long long*>(value) = xs_sim::state().peak;
    return cudaSuccess;
}

// ---- bit casts, rounding, atomics (one host thread runs a launch: plain operations) ----
template <typename To, typename From> inline To xs_sim_bits(From v) {
    static_assert(sizeof(To) == sizeof(From), "bit cast of equal sizes");
    To t;
    memcpy(&t, &v, sizeof(To));
    return t;
}
inline unsigned int __float_as_uint(float x) { return xs_sim_bits<unsigned int>(x); }
inline float __uint_as_float(unsigned int x) { return xs_sim_bits<float>(x); }
inline long long __double_as_longlong(double x) { return xs_sim_bits<long long>(x); }
// double -> float rounded toward -infinity
inline float __double2float_rd(double x) {
    float f = static_cast<float>(x);
    return static_cast<double>(f) > x ? nextafterf(f, -INFINITY) : f;
}
template <typename V> inline V atomicAdd(V* addr, V v) {
    V old = *addr;
    *addr = old + v;
    return old;
}
template <typename V> inline V atomicMax(V* addr, V v) {
    V old = *addr;
    if (v > old) *addr = v;
    return old;
}
inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }

// ---- thread indices and the block scheduler ----
inline thread_local dim3 threadIdx{0, 0, 0}, blockIdx{0, 0, 0}, blockDim{1, 1, 1}, gridDim{1, 1, 1};

namespace xs_sim {

enum class Run { ready, waiting, exited };

struct Fiber {
    ucontext_t context;
    Run run = Run::ready;
    int predicate = 1;
    long barriers = 0;          // barriers reached so far
    const char* file = nullptr;  // where the thread waits: the barrier's source line
    int line = 0;
};

struct Block {
    ucontext_t scheduler;
    std::vector<Fiber> fibers;
    int current = 0;
    int released = 1;  // the AND of the last released barrier's predicates
    const std::function<void()>* body = nullptr;
};
inline Block*& current_block() {
    static thread_local Block* b = nullptr;
    return b;
}

// Stacks of the block's fibers: one mapping per host thread, grown on demand, a PROT_NONE guard page below each.
constexpr size_t STACK = 256 * 1024, PAGE = 4096;
inline char* stack_of(int fiber, int count) {
    static thread_local char* base = nullptr;
    static thread_local int have = 0;
    if (count > have) {
        if (base) munmap(base, size_t(have) * (STACK + PAGE));
        base = static_cast<char*>(mmap(nullptr, size_t(count) * (STACK + PAGE), PROT_READ | PROT_WRITE,
                                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
        if (base == MAP_FAILED) base = nullptr, have = 0;
        else {
            have = count;
            for (int i = 0; i < count; ++i) mprotect(base + size_t(i) * (STACK + PAGE), PAGE, PROT_NONE);
        }
    }
    return base ? base + size_t(fiber) * (STACK + PAGE) + PAGE : nullptr;
}

inline void fiber_main() {
    Block* b = current_block();
    (*b->body)();
    b->fibers[b->current].run = Run::exited;  // returning resumes the scheduler (uc_link)
}

inline unsigned schedule_seed() {
    const char* s = getenv("XS_CUDA_SIM_SHUFFLE");
    return s ? unsigned(strtoul(s, nullptr, 10)) : 0u;
}

// Run one block of n threads to completion; false (and a sticky error) on a divergent barrier.
inline bool run_block(Block& b, int n, const std::function<void()>& body, std::mt19937* shuffle) {
    b.fibers.assign(n, Fiber{});
    b.body = &body;
    for (int i = 0; i < n; ++i) {
        Fiber& f = b.fibers[i];
        getcontext(&f.context);
        f.context.uc_stack.ss_sp = stack_of(i, n);
        f.context.uc_stack.ss_size = STACK;
        f.context.uc_link = &b.scheduler;
        if (!f.context.uc_stack.ss_sp) {
            fail(cudaErrorMemoryAllocation, "no memory for the simulated threads' stacks");
            return false;
        }
        makecontext(&f.context, fiber_main, 0);
    }
    std::vector<int> order(n);
    for (int i = 0; i < n; ++i) order[i] = i;
    for (;;) {
        if (shuffle) std::shuffle(order.begin(), order.end(), *shuffle);
        for (int i : order) {
            if (b.fibers[i].run != Run::ready) continue;
            b.current = i;
            threadIdx = dim3(unsigned(i % blockDim.x), unsigned(i / blockDim.x % blockDim.y),
                             unsigned(i / (blockDim.x * blockDim.y)));
            swapcontext(&b.scheduler, &b.fibers[i].context);
        }
        const Fiber* first = nullptr;
        int all = 1, waiting = 0;
        for (const Fiber& f : b.fibers) {
            if (f.run != Run::waiting) continue;
            if (!first) first = &f;
            if (f.barriers != first->barriers || f.line != first->line || strcmp(f.file, first->file) != 0) {
                fail(cudaErrorLaunchFailure, "threads of block " + std::to_string(blockIdx.x) +
                                                 " wait at different __syncthreads (divergent barrier: " +
                                                 first->file + ":" + std::to_string(first->line) + " and " +
                                                 f.file + ":" + std::to_string(f.line) + ")");
                return false;
            }
            all &= f.predicate != 0, ++waiting;
        }
        if (waiting == 0) return true;
        b.released = all;
        for (Fiber& f : b.fibers)
            if (f.run == Run::waiting) f.run = Run::ready;
    }
}

inline int barrier(int predicate, const char* file, int line) {
    Block* b = current_block();
    Fiber& f = b->fibers[b->current];
    f.predicate = predicate, f.run = Run::waiting, ++f.barriers, f.file = file, f.line = line;
    swapcontext(&f.context, &b->scheduler);
    return b->released;
}

inline dim3 as_dim3(dim3 d) { return d; }
inline dim3 as_dim3(long long n) { return dim3(unsigned(n)); }

// kernel<<<grid, block>>>(args...) as launch(grid, block, kernel)(args...): the arguments are copied once, as
// a launch copies them to the device.
template <typename Kernel> struct Launch {
    dim3 grid, block;
    Kernel kernel;
    template <typename... Args> void operator()(Args... args) const {
        if (state().error != cudaSuccess) return;  // a failed launch poisons the stream's later work
        const unsigned seed = schedule_seed();
        std::mt19937 rng(seed + unsigned(state().launches++));
        std::function<void()> body = [&]() { kernel(args...); };
        const int n = int(block.x * block.y * block.z);
        Block b;
        Block* outer = current_block();
        current_block() = &b;
        gridDim = grid, blockDim = block;
        bool ok = true;
        for (unsigned z = 0; ok && z < grid.z; ++z)
            for (unsigned y = 0; ok && y < grid.y; ++y)
                for (unsigned x = 0; ok && x < grid.x; ++x) {
                    blockIdx = dim3(x, y, z);
                    ok = run_block(b, n, body, seed ? &rng : nullptr);
                }
        current_block() = outer;
    }
};
template <typename G, typename B, typename Kernel> Launch<Kernel> launch(G grid, B block, Kernel kernel) {
    return Launch<Kernel>{as_dim3(grid), as_dim3(block), kernel};
}

}  // namespace xs_sim

// macros, so that a barrier knows its source line (an optimiser may duplicate a call into several places)
#define __syncthreads() ((void)::xs_sim::barrier(1, __FILE__, __LINE__))
#define __syncthreads_and(predicate) (::xs_sim::barrier(int(predicate), __FILE__, __LINE__))
