// Python binding of the CUDA kernels: device data pointers, sizes and the CUDA stream by name (bind/args.h),
// no libtorch headers. Errors come back as RuntimeError with the CUDA error string. Every function only
// enqueues work on the given stream, except project(), which waits once for the number of pairs.
#include <pybind11/pybind11.h>

#include <stdint.h>

#include <stdexcept>
#include <string>

#include "../bind/args.h"
#include "xsim_cuda.h"

namespace py = pybind11;

namespace {

using xs::bind::flag;
using xs::bind::num;
using xs::bind::ptr;
using xs::bind::size;

void check(cudaError_t err, const char* what) {
    if (err != cudaSuccess) throw std::runtime_error(std::string("xsim cuda kernels: ") + what + ": " +
                                                     cudaGetErrorString(err));
}

cudaStream_t stream_of(const py::dict& a) { return ptr<cudaStream_t>(a, "stream"); }

template <typename T> void rasterize_typed(const py::dict& a) {
    xs::RasterInputs<T> in = xs::bind::raster_inputs<T>(a);
    xs::RasterOutputs<T> out = xs::bind::raster_outputs<T>(a);
    cudaStream_t s = stream_of(a);
    py::gil_scoped_release release;
    check(xs::cuda::rasterize<T>(in, out, s), "rasterize");
}

void rasterize(const py::dict& a) {
    if (flag(a, "double"))
        rasterize_typed<double>(a);
    else
        rasterize_typed<float>(a);
}

// Rays of one capture on the device (sensor_rays.h): camera (rolling-shutter pixel times) or LiDAR (firing
// times); the sensor motion comes by value (a list of BODY_FIELDS floats), the rest as device pointers.
template <typename T> void sensor_rays_typed(const py::dict& a) {
    const xs::RayParams<T> p = xs::bind::ray_params<T>(a);
    cudaStream_t s = stream_of(a);
    py::gil_scoped_release release;
    check(xs::cuda::sensor_rays<T>(p, s), "sensor_rays");
}

void sensor_rays(const py::dict& a) {
    if (flag(a, "double"))
        sensor_rays_typed<double>(a);
    else
        sensor_rays_typed<float>(a);
}

// The footprints of one capture on the device and the number of (tile, Gaussian) pairs; emit() writes them.
// Holds the projection parameters (device pointers the caller keeps alive until emit() has been called).
class BinningHandle {
  public:
    BinningHandle(const xs::ProjectParams& p, const xs::cuda::Binning& b, cudaStream_t s)
        : params_(p), binning_(b), stream_(s) {}
    ~BinningHandle() { xs::cuda::release(&binning_, stream_); }
    int64_t count() const { return binning_.total; }
    int64_t culled() const { return binning_.culled; }
    int64_t cones() const { return binning_.cones; }
    void emit(uint64_t tile_ids, uint64_t gaussian_ids) {
        check(xs::cuda::emit_pairs(params_, binning_, reinterpret_cast<int64_t*>(tile_ids),
                                   reinterpret_cast<int64_t*>(gaussian_ids), stream_),
              "emit pairs");
    }

  private:
    xs::ProjectParams params_;
    xs::cuda::Binning binning_;
    cudaStream_t stream_;
};

BinningHandle* project(const py::dict& a) {
    xs::ProjectParams p;
    xs::bind::project_params(a, p);
    p.tile_axis = ptr<const double*>(a, "tile_axis");
    p.tile_half = ptr<const double*>(a, "tile_half");
    p.tile_has_rays = ptr<const uint8_t*>(a, "tile_has_rays");
    p.image_half = num(a, "image_half");
    cudaStream_t s = stream_of(a);
    xs::cuda::Binning b;
    {
        py::gil_scoped_release release;
        check(xs::cuda::project_footprints(p, &b, s), "project");
    }
    return new BinningHandle(p, b, s);
}

// Highest memory reserved so far by the device's default stream-ordered pool (the kernels' temporaries).
int64_t pool_peak_bytes() {
    int device = 0;
    check(cudaGetDevice(&device), "device");
    cudaMemPool_t pool;
    check(cudaDeviceGetDefaultMemPool(&pool, device), "memory pool");
    unsigned long long high = 0;  // cuuint64_t
    check(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemHigh, &high), "pool attribute");
    return int64_t(high);
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.doc() = "XSIM-ROS CUDA kernels; arguments are device data pointers and sizes, see kernels/raster.py";
    m.def("rasterize", &rasterize, "Tile rasterization on the GPU (csrc/cuda/xsim_cuda.h)");
    py::class_<BinningHandle>(m, "Binning")
        .def_property_readonly("count", &BinningHandle::count)
        .def_property_readonly("culled", &BinningHandle::culled)
        .def_property_readonly("cones", &BinningHandle::cones)
        .def("emit", &BinningHandle::emit, "write the (count,) tile ids and Gaussian ids (int64 device pointers)");
    m.def("project", &project, py::return_value_policy::take_ownership,
          "Footprints and the number of unique (tile, Gaussian) pairs on the GPU (csrc/cuda/binning.cu)");
    m.def("sensor_rays", &sensor_rays, "World ray origins, directions and times on the GPU (csrc/cuda/rays.cu)");
    m.def("pool_peak_bytes", &pool_peak_bytes, "peak bytes reserved by the default CUDA memory pool");
    m.attr("body_fields") = static_cast<int>(xs::BODY_FIELDS);
}
