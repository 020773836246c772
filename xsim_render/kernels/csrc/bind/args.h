// Argument dicts of the Python bindings (CPU and CUDA): the Python side (xsim_render/kernels/raster.py,
// tiles.py) checks shapes, dtypes, devices and contiguity of the tensors, keeps them alive, and passes their
// data pointers and sizes by name. The bindings are free of libtorch headers: they build in seconds and do
// not depend on torch's C++ ABI.
#pragma once

#include <pybind11/pybind11.h>

#include <stdint.h>

#include <stdexcept>
#include <string>

#include "xsim/project.h"
#include "xsim/raster_args.h"
#include "xsim/sensor_rays.h"

namespace xs {
namespace bind {

namespace py = pybind11;

inline void require(const py::dict& a, const char* key) {
    if (!a.contains(key)) throw std::invalid_argument(std::string("xsim kernels: missing argument ") + key);
}

template <typename P> P ptr(const py::dict& a, const char* key) {
    require(a, key);
    return reinterpret_cast<P>(static_cast<uintptr_t>(a[key].cast<uint64_t>()));
}

inline int64_t size(const py::dict& a, const char* key) {
    require(a, key);
    return a[key].cast<int64_t>();
}

inline double num(const py::dict& a, const char* key) {
    require(a, key);
    return a[key].cast<double>();
}

inline bool flag(const py::dict& a, const char* key) {
    require(a, key);
    return a[key].cast<bool>();
}

template <typename T> RasterInputs<T> raster_inputs(const py::dict& a) {
    RasterInputs<T> in;
    in.n_rays = size(a, "n_rays");
    in.origins = ptr<const T*>(a, "origins");
    in.directions = ptr<const T*>(a, "directions");
    in.times = ptr<const T*>(a, "times");
    in.valid = ptr<const bool*>(a, "valid");
    in.ray_tile = ptr<const int64_t*>(a, "ray_tile");
    in.num_tiles = size(a, "num_tiles");
    in.n_pairs = size(a, "n_pairs");
    in.pair_tile = ptr<const int64_t*>(a, "pair_tile");
    in.pair_gaussian = ptr<const int64_t*>(a, "pair_gaussian");
    in.n_gaussians = size(a, "n_gaussians");
    in.means = ptr<const T*>(a, "means");
    in.rotations = ptr<const T*>(a, "rotations");
    in.log_scales = ptr<const T*>(a, "log_scales");
    in.sigma = ptr<const T*>(a, "sigma");
    in.frame = ptr<const int64_t*>(a, "frame");
    in.n_bodies = size(a, "n_bodies");
    in.bodies = ptr<const T*>(a, "bodies");
    in.window_lo = ptr<const T*>(a, "window_lo");
    in.window_hi = ptr<const T*>(a, "window_hi");
    in.n_channels = size(a, "n_channels");
    in.values = ptr<const T*>(a, "values");
    in.threads = static_cast<int>(size(a, "threads"));
    return in;
}

template <typename T> RasterOutputs<T> raster_outputs(const py::dict& a) {
    RasterOutputs<T> out;
    out.values = ptr<T*>(a, "out_values");
    out.alpha = ptr<T*>(a, "out_alpha");
    out.transmittance = ptr<T*>(a, "out_transmittance");
    out.distance = ptr<T*>(a, "out_distance");
    out.median = ptr<T*>(a, "out_median");
    out.count = ptr<int32_t*>(a, "out_count");
    out.evaluated = ptr<int64_t*>(a, "out_evaluated");
    return out;
}

// Ray generation of one capture (sensor_rays.h RayParams): sensor timing, packed motion, directions, outputs.
template <typename T> RayParams<T> ray_params(const py::dict& a) {
    RayParams<T> p;
    p.sensor = static_cast<int>(size(a, "sensor"));
    p.n_rays = size(a, "n_rays");
    if (p.sensor == SENSOR_CAMERA) {
        p.camera.width = static_cast<int>(size(a, "width"));
        p.camera.height = static_cast<int>(size(a, "height"));
        p.camera.t_start = T(num(a, "t_start"));  // t_start + offset, summed in double by the caller
        p.camera.offset = T(0);
        p.camera.tau_u = T(num(a, "tau_u"));
        p.camera.tau_v = T(num(a, "tau_v"));
        if (int64_t(p.camera.width) * p.camera.height != p.n_rays)
            throw std::invalid_argument("xsim kernels: sensor_rays: width * height != n_rays");
    } else {
        p.columns = size(a, "columns");
        p.t_start = T(num(a, "t_start"));
        p.columns_times_rate = T(num(a, "columns_times_rate"));
        if (p.columns <= 0 || p.n_rays % p.columns != 0)
            throw std::invalid_argument("xsim kernels: sensor_rays: n_rays must be beams * columns");
    }
    py::list motion = a["motion"].cast<py::list>();
    if (motion.size() != size_t(BODY_FIELDS))
        throw std::invalid_argument("xsim kernels: sensor_rays: motion must hold BODY_FIELDS values");
    for (int i = 0; i < BODY_FIELDS; ++i) p.motion[i] = T(motion[i].cast<double>());
    p.dirs_sensor = ptr<const T*>(a, "dirs_sensor");
    p.origins = ptr<T*>(a, "out_origins");
    p.directions = ptr<T*>(a, "out_directions");
    p.times = ptr<T*>(a, "out_times");
    return p;
}

// Sensor model, Gaussians, bodies and tiling of the projection stage (tile cones set by the caller).
inline void project_params(const py::dict& a, ProjectParams& in) {
    in.sensor = static_cast<int>(size(a, "sensor"));
    if (in.sensor == SENSOR_CAMERA) {
        CameraModel<double>& c = in.camera;
        c.kind = static_cast<int>(size(a, "model"));
        c.width = static_cast<int>(size(a, "width"));
        c.height = static_cast<int>(size(a, "height"));
        c.fx = num(a, "fx"), c.fy = num(a, "fy"), c.cx = num(a, "cx"), c.cy = num(a, "cy");
        py::list k = a["distortion"].cast<py::list>();
        for (size_t i = 0; i < 8 && i < k.size(); ++i) c.k[i] = k[i].cast<double>();
        c.limit = num(a, "limit");
        c.offset = num(a, "offset"), c.tau_u = num(a, "tau_u"), c.tau_v = num(a, "tau_v");
        c.t_start = num(a, "t_start"), c.t_end = num(a, "t_end");
    } else {
        LidarModel<double>& l = in.lidar;
        l.spin_sign = num(a, "spin_sign"), l.seam = num(a, "seam"), l.duration = num(a, "duration");
        l.t_start = num(a, "t_start"), l.t_end = num(a, "t_end");
        l.columns = static_cast<int>(size(a, "columns"));
        l.beams = static_cast<int>(size(a, "beams"));
        l.el_lo = num(a, "el_lo"), l.el_hi = num(a, "el_hi");
        in.elevations_sorted = ptr<const double*>(a, "elevations_sorted");
        if (a.contains("fan_sin_lo")) in.fan_sin[0] = num(a, "fan_sin_lo"), in.fan_sin[1] = num(a, "fan_sin_hi");
    }
    in.phase_modeling = flag(a, "phase_modeling");
    in.n = size(a, "n");
    if (a.contains("means32")) {  // a float32 scene in place
        in.means32 = ptr<const float*>(a, "means32");
        in.rotations32 = ptr<const float*>(a, "rotations32");
        in.scales32 = ptr<const float*>(a, "scales32");
        in.sigma32 = ptr<const float*>(a, "sigma32");
        in.means = in.rotations = in.scales = in.sigma = nullptr;
    } else {
        in.means = ptr<const double*>(a, "means");
        in.rotations = ptr<const double*>(a, "rotations");
        in.scales = ptr<const double*>(a, "scales");
        in.sigma = ptr<const double*>(a, "sigma");
    }
    in.frame = ptr<const int64_t*>(a, "frame");
    in.n_bodies = size(a, "n_bodies");
    in.bodies = ptr<const double*>(a, "bodies");
    in.sensor_motion = ptr<const double*>(a, "sensor_motion");
    in.num_tiles = size(a, "num_tiles");
    in.tiles_x = static_cast<int>(size(a, "tiles_x"));
    in.margin[0] = num(a, "margin0"), in.margin[1] = num(a, "margin1");
    in.cull = flag(a, "cull");
    in.tolerance = num(a, "tolerance");
    // LiDAR shortcuts proven to keep the reference's outcome (project.h far_branch_clear, predicted_root), on
    // unless the arguments say otherwise (tests compare both)
    in.seam_bound = !a.contains("seam_bound") || flag(a, "seam_bound");
    in.centre_bound = !a.contains("centre_bound") || flag(a, "centre_bound");
    in.ut_bound = !a.contains("ut_bound") || flag(a, "ut_bound");
}

}  // namespace bind
}  // namespace xs
