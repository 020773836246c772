// Standalone driver of the cpu projection + tiling stage (csrc/cpu/project_cpu.cpp) on arguments saved by
// bench/projection_counts.py, for deterministic instruction counts under callgrind (not a test).
// Usage: projection_counts DIR [REPEATS] [THREADS]; prints the pair count, a hash of the (tile, Gaussian) pairs,
// the statistics and the fastest wall time. Environment: XSIM_EXACT_UT=1 sets ut_bound = false.
#include "project_cpu.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

std::map<std::string, double> scalars;

template <typename T> std::vector<T> load(const std::string& dir, const std::string& key) {
    std::ifstream f(dir + "/" + key + ".bin", std::ios::binary | std::ios::ate);
    if (!f) throw std::runtime_error("missing " + dir + "/" + key + ".bin");
    const size_t bytes = static_cast<size_t>(f.tellg());
    f.seekg(0);
    std::vector<T> v(bytes / sizeof(T));
    f.read(reinterpret_cast<char*>(v.data()), static_cast<std::streamsize>(bytes));
    return v;
}

double num(const char* key) {
    auto it = scalars.find(key);
    if (it == scalars.end()) throw std::runtime_error(std::string("missing scalar ") + key);
    return it->second;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: projection_counts DIR [REPEATS] [THREADS]\n");
        return 2;
    }
    const std::string dir = argv[1];
    const int repeats = argc > 2 ? std::atoi(argv[2]) : 1, threads = argc > 3 ? std::atoi(argv[3]) : 1;
    std::ifstream text(dir + "/scalars.txt");
    for (std::string line; std::getline(text, line);) {
        std::istringstream ss(line);
        std::string key;
        double value;
        if (ss >> key >> value) scalars[key] = value;
    }
    const auto means = load<double>(dir, "means"), rotations = load<double>(dir, "rotations");
    const auto scales = load<double>(dir, "scales"), sigma = load<double>(dir, "sigma");
    const auto bodies = load<double>(dir, "bodies"), motion = load<double>(dir, "sensor_motion");
    const auto axis = load<double>(dir, "tile_axis"), half = load<double>(dir, "tile_half");
    const auto elevations = load<double>(dir, "elevations_sorted");
    const auto frame = load<int64_t>(dir, "frame");
    const auto has_rays = load<uint8_t>(dir, "tile_has_rays");
    xs::ProjectInputs in;
    in.sensor = xs::SENSOR_LIDAR;
    xs::LidarModel<double>& l = in.lidar;
    l.spin_sign = num("spin_sign"), l.seam = num("seam"), l.duration = num("duration");
    l.t_start = num("t_start"), l.t_end = num("t_end");
    l.columns = static_cast<int>(num("columns")), l.beams = static_cast<int>(num("beams"));
    l.el_lo = num("el_lo"), l.el_hi = num("el_hi");
    in.elevations_sorted = elevations.data();
    in.fan_sin[0] = num("fan_sin_lo"), in.fan_sin[1] = num("fan_sin_hi");
    in.phase_modeling = num("phase_modeling") != 0;
    in.n = static_cast<int64_t>(num("n"));
    in.means = means.data(), in.rotations = rotations.data(), in.scales = scales.data(), in.sigma = sigma.data();
    in.frame = frame.data(), in.n_bodies = static_cast<int64_t>(num("n_bodies")), in.bodies = bodies.data();
    in.sensor_motion = motion.data();
    in.num_tiles = static_cast<int64_t>(num("num_tiles")), in.tiles_x = static_cast<int>(num("tiles_x"));
    in.margin[0] = num("margin0"), in.margin[1] = num("margin1");
    in.cull = num("cull") != 0, in.tolerance = num("tolerance");
    in.seam_bound = in.centre_bound = true;
    const char* exact = std::getenv("XSIM_EXACT_UT");
    in.ut_bound = !(exact && std::string(exact) == "1");
    in.tile_axis = axis.data(), in.tile_half = half.data(), in.tile_has_rays = has_rays.data();
    in.image_half = num("image_half");
    in.threads = threads;
    xs::ProjectOutputs out;
    double best = 1e300;
    for (int r = 0; r < std::max(repeats, 1); ++r) {
        out = xs::ProjectOutputs();
        const auto start = std::chrono::steady_clock::now();
        xs::project_and_tile(in, out);
        best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    uint64_t hash = 1469598103934665603ull;  // FNV-1a over the pairs
    for (size_t i = 0; i < out.pair_tile.size(); ++i)
        hash = (hash ^ static_cast<uint64_t>(out.pair_tile[i] * 1000003 + out.pair_gaussian[i])) * 1099511628211ull;
    std::printf("pairs %zu hash %016llx culled %lld cones %lld far_skipped %lld best %.4f s\n", out.pair_tile.size(),
                static_cast<unsigned long long>(hash), static_cast<long long>(out.culled),
                static_cast<long long>(out.cones), static_cast<long long>(out.far_skipped), best);
    return 0;
}
