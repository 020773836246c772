// Python binding of the CPU kernels: data pointers and sizes by name (bind/args.h), no libtorch headers.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdint.h>

#include <algorithm>
#include <string>

#include "alpha_simd.h"
#include "lidar_returns.h"
#include "project_cpu.h"
#include "rasterize_cpu.h"
#include "../bind/args.h"
#include "xsim/footprint.h"
#include "xsim/rigid.h"

namespace py = pybind11;

namespace {

using xs::bind::flag;
using xs::bind::num;
using xs::bind::ptr;
using xs::bind::size;

template <typename T> void rasterize_typed(const py::dict& a) {
    xs::RasterInputs<T> in = xs::bind::raster_inputs<T>(a);
    xs::RasterOutputs<T> out = xs::bind::raster_outputs<T>(a);
    py::gil_scoped_release release;
    xs::rasterize_cpu<T>(in, out);
}

void rasterize(const py::dict& a) {
    if (a["double"].cast<bool>())
        rasterize_typed<double>(a);
    else
        rasterize_typed<float>(a);
}

void sensor_rays(const py::dict& a) {
    const int64_t n = size(a, "n_rays");
    const int threads = static_cast<int>(size(a, "threads"));
    const int64_t period = a.contains("period") ? size(a, "period") : 0;
    if (a["double"].cast<bool>()) {
        auto times = ptr<const double*>(a, "times"), dirs = ptr<const double*>(a, "dirs_sensor"),
             motion = ptr<const double*>(a, "motion");
        auto o = ptr<double*>(a, "out_origins"), d = ptr<double*>(a, "out_directions");
        py::gil_scoped_release release;
        xs::sensor_rays_cpu<double>(n, times, dirs, motion, o, d, threads, period);
    } else {
        auto times = ptr<const float*>(a, "times"), dirs = ptr<const float*>(a, "dirs_sensor"),
             motion = ptr<const float*>(a, "motion");
        auto o = ptr<float*>(a, "out_origins"), d = ptr<float*>(a, "out_directions");
        py::gil_scoped_release release;
        xs::sensor_rays_cpu<float>(n, times, dirs, motion, o, d, threads, period);
    }
}

// A numpy array owning the vector's buffer (no copy).
template <typename V> py::array to_numpy(std::vector<V>&& v, std::vector<py::ssize_t> shape) {
    auto* heap = new std::vector<V>(std::move(v));
    py::capsule owner(heap, [](void* p) { delete reinterpret_cast<std::vector<V>*>(p); });
    return py::array_t<V>(shape, heap->data(), owner);
}

// (axis (T,3), half (T,), has_rays (T,)) of rays given by pointers (float64 directions, bool valid, int64 tile)
py::tuple tile_cones_py(const py::dict& a) {
    const int64_t nt = size(a, "num_tiles"), n_rays = size(a, "n_rays");
    const double* dirs = ptr<const double*>(a, "directions_sensor");
    const bool* valid = ptr<const bool*>(a, "valid");
    const int64_t* ray_tile = ptr<const int64_t*>(a, "ray_tile");
    std::vector<double> axis(3 * nt), half(nt);
    std::vector<uint8_t> has_rays(nt);
    {
        py::gil_scoped_release release;
        xs::tile_cones(n_rays, dirs, valid, ray_tile, nt, axis.data(), half.data(), has_rays.data());
    }
    return py::make_tuple(to_numpy(std::move(axis), {nt, 3}), to_numpy(std::move(half), {nt}),
                          to_numpy(std::move(has_rays), {nt}));
}

py::dict project(const py::dict& a) {
    xs::ProjectInputs in;
    xs::bind::project_params(a, in);
    in.keep_footprints = flag(a, "keep_footprints");
    in.threads = static_cast<int>(size(a, "threads"));
    const int64_t nt = in.num_tiles;
    xs::ProjectOutputs out;
    // the tiles' cones and the image cone (tile_cones, computed once per sensor geometry by the caller)
    in.tile_axis = ptr<const double*>(a, "tile_axis");
    in.tile_half = ptr<const double*>(a, "tile_half");
    in.tile_has_rays = ptr<const uint8_t*>(a, "tile_has_rays");
    in.image_half = num(a, "image_half");
    {
        py::gil_scoped_release release;
        xs::project_and_tile(in, out);
    }
    py::dict r;
    const py::ssize_t p = static_cast<py::ssize_t>(out.pair_tile.size());
    const py::ssize_t k = static_cast<py::ssize_t>(out.fp_gaussian.size());
    r["tile_ids"] = to_numpy(std::move(out.pair_tile), {p});
    r["gaussian_ids"] = to_numpy(std::move(out.pair_gaussian), {p});
    r["culled"] = out.culled;
    r["cones"] = out.cones;
    r["far_skipped"] = out.far_skipped;
    if (in.keep_footprints) {
        r["gaussian"] = to_numpy(std::move(out.fp_gaussian), {k});
        r["lo"] = to_numpy(std::move(out.fp_lo), {k, 2});
        r["hi"] = to_numpy(std::move(out.fp_hi), {k, 2});
        r["full"] = to_numpy(std::move(out.fp_full), {k});
        r["branch"] = to_numpy(std::move(out.fp_branch), {k});
        r["cone_axis"] = to_numpy(std::move(out.fp_axis), {k, 3});
        r["cone_half_angle"] = to_numpy(std::move(out.fp_half), {k});
        r["tile_axis"] = to_numpy(std::vector<double>(in.tile_axis, in.tile_axis + 3 * nt), {nt, 3});
        r["tile_half"] = to_numpy(std::vector<double>(in.tile_half, in.tile_half + nt), {nt});
    }
    return r;
}

// The kernels' scalar atan2 (common.h xatan2) element-wise over two float64 arrays of one shape (tests).
py::array_t<double> atan2_kernel(py::array_t<double, py::array::c_style | py::array::forcecast> y,
                                 py::array_t<double, py::array::c_style | py::array::forcecast> x) {
    if (y.size() != x.size()) throw std::invalid_argument("atan2: y and x differ in size");
    py::array_t<double> out(y.size());
    const double *py_ = y.data(), *px = x.data();
    double* po = out.mutable_data();
    for (py::ssize_t i = 0; i < y.size(); ++i) po[i] = xs::xatan2(py_[i], px[i]);
    return out;
}

// The proofs' upper bound on asin (common.h asin_upper) element-wise over a float64 array (tests).
py::array_t<double> asin_upper_kernel(py::array_t<double, py::array::c_style | py::array::forcecast> x) {
    py::array_t<double> out(x.size());
    const double* px = x.data();
    double* po = out.mutable_data();
    for (py::ssize_t i = 0; i < x.size(); ++i) po[i] = xs::asin_upper(px[i]);
    return out;
}

// project.h phase_rate_bound for one point cloud (tests): a sensor motion and a body (packed, BODY_FIELDS each;
// an empty body is the world), the LiDAR sweep [t_start, t_end], a body-frame centre `mean`, the radius rho of the
// points around it and the horizon H around mid-sweep. Returns (bound holds, omega rad/s, rxy m, c_mid).
py::tuple phase_rate_kernel(py::array_t<double, py::array::c_style | py::array::forcecast> motion,
                            py::array_t<double, py::array::c_style | py::array::forcecast> body, double t_start,
                            double t_end, py::array_t<double, py::array::c_style | py::array::forcecast> mean,
                            double rho, double H) {
    if (motion.size() != xs::BODY_FIELDS || (body.size() != 0 && body.size() != xs::BODY_FIELDS) || mean.size() != 3)
        throw std::invalid_argument("phase_rate_bound: motion / body need BODY_FIELDS values, mean 3");
    xs::ProjectParams in;
    in.sensor = xs::SENSOR_LIDAR;
    in.lidar.t_start = t_start, in.lidar.t_end = t_end;
    const double* b = body.size() ? body.data() : nullptr;
    const xs::SensorRates rates = xs::sensor_rates(in, motion.data());
    const xs::Vec3<double> m = xs::load3(mean.data());
    const xs::Vec3<double> c = xs::point_in_sensor(b, motion.data(), m, 0.5 * (t_start + t_end));
    double omega = NAN, rxy = NAN;
    const bool ok = xs::phase_rate_bound(rates, b, m, rho, c, H, omega, rxy);
    return py::make_tuple(ok, omega, rxy, py::make_tuple(c.x, c.y, c.z));
}

// rolling_shutter.h TimeSolver::solve of N body-frame points on one LiDAR phase branch from eta0 (tests): the packed
// sensor motion and body (BODY_FIELDS each; an empty body is the world), the sweep (spin_sign, seam azimuth,
// duration, t_start, t_end). Returns (eta, valid, phase, elevation), one entry per point.
py::tuple lidar_time_solve(py::array_t<double, py::array::c_style | py::array::forcecast> motion,
                           py::array_t<double, py::array::c_style | py::array::forcecast> body,
                           py::array_t<double, py::array::c_style | py::array::forcecast> points, double spin_sign,
                           double seam, double duration, double t_start, double t_end, double branch, double eta0,
                           double tolerance) {
    if (motion.size() != xs::BODY_FIELDS || (body.size() != 0 && body.size() != xs::BODY_FIELDS) ||
        points.size() % 3 != 0)
        throw std::invalid_argument("lidar_time_solve: motion / body need BODY_FIELDS values, points (N, 3)");
    xs::LidarModel<double> model;
    model.spin_sign = spin_sign, model.seam = seam, model.duration = duration;
    model.t_start = t_start, model.t_end = t_end;
    const xs::LidarBranch<double> sensor{&model, branch, t_start, t_end};
    const double* b = body.size() ? body.data() : nullptr;
    const py::ssize_t n = points.size() / 3;
    py::array_t<double> eta(n), phase(n), elevation(n);
    py::array_t<bool> valid(n);
    for (py::ssize_t i = 0; i < n; ++i) {
        const xs::SolveResult<double> r = xs::TimeSolver<double, xs::LidarBranch<double>>{
            sensor, b, motion.data(), xs::load3(points.data() + 3 * i), tolerance}.solve(eta0);
        eta.mutable_data()[i] = r.eta, valid.mutable_data()[i] = r.valid;
        phase.mutable_data()[i] = r.c0, elevation.mutable_data()[i] = r.c1;
    }
    return py::make_tuple(eta, valid, phase, elevation);
}

template <typename T> py::tuple lidar_returns_typed(const py::dict& a) {
    const int64_t beams = size(a, "beams"), columns = size(a, "columns");
    const T* drop = a.contains("drop") ? ptr<const T*>(a, "drop") : nullptr;
    const T* median = ptr<const T*>(a, "median");
    const T* directions = ptr<const T*>(a, "directions_sensor");
    const T* times = ptr<const T*>(a, "times");
    bool* returns = ptr<bool*>(a, "out_returns");
    const T lo = static_cast<T>(num(a, "min_range")), hi = static_cast<T>(num(a, "max_range"));
    const double offset = num(a, "time_offset");
    const int threads = static_cast<int>(size(a, "threads"));
    xs::LidarReturns<T> out;
    {
        py::gil_scoped_release release;
        xs::lidar_returns_cpu<T>(beams, columns, median, drop, lo, hi, directions, times, offset, returns, out,
                                 threads);
    }
    const py::ssize_t k = static_cast<py::ssize_t>(out.time.size());
    return py::make_tuple(to_numpy(std::move(out.points), {k, 3}), to_numpy(std::move(out.time), {k}),
                          to_numpy(std::move(out.beam), {k}), to_numpy(std::move(out.column), {k}));
}

// (points (K,3), time (K,) float64, beam (K,), column (K,)) of a LiDAR sweep's returns, filling out_returns
// (lidar_returns.h).
py::tuple lidar_returns(const py::dict& a) {
    return a["double"].cast<bool>() ? lidar_returns_typed<double>(a) : lidar_returns_typed<float>(a);
}

// The rasterizer's alpha of float32 (sigma, D2) pairs (alpha_simd.h alpha_lanes, 16 at a time as in the
// rasterizer) and the scalar alpha_of (response.h) beside it (tests).
py::tuple alpha_kernel(py::array_t<float, py::array::c_style | py::array::forcecast> sigma,
                       py::array_t<float, py::array::c_style | py::array::forcecast> d2) {
    if (sigma.size() != d2.size()) throw std::invalid_argument("alpha: sigma and d2 differ in size");
    const py::ssize_t n = sigma.size();
    py::array_t<float> fast(n), scalar(n);
    const float *ps = sigma.data(), *pd = d2.data();
    float *pf = fast.mutable_data(), *pa = scalar.mutable_data();
    for (py::ssize_t i = 0; i < n; i += 16) {
        const int m = static_cast<int>(std::min<py::ssize_t>(16, n - i));
        alignas(64) float s[16] = {}, d[16] = {}, a[16];
        for (int k = 0; k < m; ++k) s[k] = ps[i + k], d[k] = pd[i + k];
        xs::alpha_lanes(s, d, a, 16, (m == 16 ? 0xffffu : (1u << m) - 1u));
        for (int k = 0; k < m; ++k) pf[i + k] = a[k], pa[i + k] = xs::alpha_of(ps[i + k], pd[i + k]);
    }
    return py::make_tuple(fast, scalar);
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.doc() = "XSIM-ROS CPU kernels (OpenMP); arguments are data pointers and sizes, see kernels/raster.py";
    m.def("rasterize", &rasterize, "Tile rasterization of rays against 3D Gaussians (csrc/cpu/rasterize_cpu.h)");
    m.def("sensor_rays", &sensor_rays, "World ray origins / directions at each ray's time (rasterize_cpu.h)");
    m.def("tile_cones", &tile_cones_py, "Per tile cone of sensor-frame ray directions (project_cpu.h tile_cones)");
    m.def("project", &project, "Footprints and sorted unique (tile, Gaussian) lists (csrc/cpu/project_cpu.h)");
    m.def("atan2", &atan2_kernel, "The kernels' double-precision atan2 (csrc/include/xsim/common.h), element-wise");
    m.def("asin_upper", &asin_upper_kernel, "The projection proofs' upper bound on asin (common.h), element-wise");
    m.def("phase_rate_bound", &phase_rate_kernel, "project.h phase_rate_bound of one point cloud (tests)");
    m.def("lidar_time_solve", &lidar_time_solve, "rolling_shutter.h TimeSolver::solve of LiDAR points (tests)");
    m.def("lidar_returns", &lidar_returns, "A LiDAR sweep's returns as a point cloud (csrc/cpu/lidar_returns.h)");
    m.def("alpha", &alpha_kernel, "The rasterizer's float32 alpha (csrc/cpu/alpha_simd.h) and the scalar alpha_of");
    m.attr("body_fields") = static_cast<int>(xs::BODY_FIELDS);
}
