// CUDA ray generation (sensor_rays.h): one thread per pixel / firing computes the ray's time (rolling shutter
// or firing order), poses the sensor at that time and rotates the cached sensor-frame direction into the world.
// The same math as the CPU path (xsim_render/kernels/rays.py + rasterize_cpu.cpp sensor_rays_cpu).
#include "xsim/project.h"
#include "xsim/sensor_rays.h"
#include "xsim_cuda.h"

namespace xs {
namespace cuda {
namespace {

constexpr int THREADS = 256;

template <typename T> __global__ void sensor_rays_kernel(RayParams<T> p) {
    int64_t r = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
    if (r >= p.n_rays) return;
    write_sensor_ray(p, r);
}

}  // namespace

template <typename T> cudaError_t sensor_rays(const RayParams<T>& p, cudaStream_t s) {
    if (p.n_rays == 0) return cudaSuccess;
    const int blocks = int((p.n_rays + THREADS - 1) / THREADS);
    XS_LAUNCH(sensor_rays_kernel<T>, blocks, THREADS, s)(p);
    return cudaGetLastError();
}

template cudaError_t sensor_rays<float>(const RayParams<float>&, cudaStream_t);
template cudaError_t sensor_rays<double>(const RayParams<double>&, cudaStream_t);

}  // namespace cuda
}  // namespace xs
