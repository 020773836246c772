// Host emulation of the xsim_cuda extension (test/test_kernels_cuda_emulated.py): the cuda module's Python API
// with the same argument dicts, running the device code's header functions on the CPU, one thread:
//   sensor_rays  sensor_rays.h per ray (as csrc/cuda/rays.cu);
//   project      project.h footprints and unique_pairs.h counts, then Binning.emit (as csrc/cuda/binning.cu);
//   rasterize    the CPU rasterizer (the GPU tile kernel itself cannot run here).
// It lets the cuda backend's Python side (kernels/rays.py, tiles.py, raster.py, device.py, render.py) and the
// device-only headers be tested on a machine without a GPU; pointers are host pointers.
#include <pybind11/pybind11.h>

#include <stdint.h>

#include <stdexcept>
#include <vector>

#include "../bind/args.h"
#include "../cpu/rasterize_cpu.h"
#include "xsim/sensor_rays.h"
#include "xsim/unique_pairs.h"

namespace py = pybind11;

namespace {

using xs::bind::flag;
using xs::bind::num;
using xs::bind::ptr;
using xs::bind::size;

template <typename T> void sensor_rays_typed(const py::dict& a) {
    const xs::RayParams<T> p = xs::bind::ray_params<T>(a);
    ptr<void*>(a, "stream");
    for (int64_t r = 0; r < p.n_rays; ++r) xs::write_sensor_ray(p, r);
}

void sensor_rays(const py::dict& a) {
    if (flag(a, "double"))
        sensor_rays_typed<double>(a);
    else
        sensor_rays_typed<float>(a);
}

class Binning {
  public:
    xs::ProjectParams params;
    std::vector<xs::GaussianFootprints> footprints;
    std::vector<int64_t> inclusive;
    int64_t total = 0, culled = 0, cones = 0;

    void emit(uint64_t tile_ptr, uint64_t gaussian_ptr) {
        int64_t* tiles = reinterpret_cast<int64_t*>(tile_ptr);
        int64_t* gaussians = reinterpret_cast<int64_t*>(gaussian_ptr);
        for (int64_t g = 0; g < params.n; ++g) {
            const int64_t start = g == 0 ? 0 : inclusive[g - 1];
            int64_t k = start;
            xs::visit_unique_pairs(params, footprints[g], [&](int64_t tile) {
                tiles[k] = tile;
                gaussians[k] = g;
                ++k;
            });
            if (k != inclusive[g]) throw std::runtime_error("emit: count_unique_pairs differs from the visited pairs");
        }
    }
};

Binning* project(const py::dict& a) {
    auto* b = new Binning;
    xs::ProjectParams& p = b->params;
    xs::bind::project_params(a, p);
    p.tile_axis = ptr<const double*>(a, "tile_axis");
    p.tile_half = ptr<const double*>(a, "tile_half");
    p.tile_has_rays = ptr<const uint8_t*>(a, "tile_has_rays");
    p.image_half = num(a, "image_half");
    ptr<void*>(a, "stream");
    b->footprints.resize(p.n);
    b->inclusive.resize(p.n);
    int64_t running = 0;
    for (int64_t g = 0; g < p.n; ++g) {
        b->footprints[g] = xs::footprints_of(p, g);
        running += xs::count_unique_pairs(p, b->footprints[g]);
        b->inclusive[g] = running;
        b->culled += b->footprints[g].culled;
        b->cones += b->footprints[g].cone;
    }
    b->total = running;
    return b;
}

template <typename T> void rasterize_typed(const py::dict& a) {
    xs::RasterInputs<T> in = xs::bind::raster_inputs<T>(a);
    xs::RasterOutputs<T> out = xs::bind::raster_outputs<T>(a);
    ptr<void*>(a, "stream");
    xs::rasterize_cpu<T>(in, out);
}

void rasterize(const py::dict& a) {
    if (flag(a, "double"))
        rasterize_typed<double>(a);
    else
        rasterize_typed<float>(a);
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.doc() = "Host emulation of the XSIM-ROS CUDA kernels' Python API (tests only)";
    m.def("rasterize", &rasterize, "the CPU rasterizer behind the cuda argument dict");
    py::class_<Binning>(m, "Binning")
        .def_readonly("count", &Binning::total)
        .def_readonly("culled", &Binning::culled)
        .def_readonly("cones", &Binning::cones)
        .def("emit", &Binning::emit, "write the (count,) tile ids and Gaussian ids (int64 pointers)");
    m.def("project", &project, py::return_value_policy::take_ownership, "footprints and the pair count");
    m.def("sensor_rays", &sensor_rays, "world ray origins, directions and times");
    m.def("pool_peak_bytes", []() { return int64_t(0); }, "no device memory pool here");
}
