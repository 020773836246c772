// The LiDAR sweep's returns as a point cloud (xsim_render/raster/lidar_returns.py, the specification): firing (b, c)
// returns where its median range m is finite, min_range <= m <= max_range and (with a ray-drop probability)
// drop < 0.5; the returns in column-major order (by column, then beam), each with its sensor-frame point
// m * direction, its time (float64, the capture's clock offset added) and its beam and column. Two parallel
// passes over the columns (count, then write at the prefix offsets).
#pragma once

#include <stdint.h>

#include <cmath>
#include <vector>

namespace xs {

template <typename T> struct LidarReturns {
    std::vector<T> points;          // (K,3) sensor frame, m
    std::vector<double> time;       // (K,) s
    std::vector<int64_t> beam, column;
};

template <typename T>
void lidar_returns_cpu(int64_t beams, int64_t columns, const T* median, const T* drop, T min_range, T max_range,
                       const T* directions, const T* times, double time_offset, bool* returns, LidarReturns<T>& out,
                       int threads) {
    auto returned = [&](int64_t r) {
        const T m = median[r];
        return std::isfinite(m) && m >= min_range && m <= max_range && (drop == nullptr || drop[r] < T(0.5));
    };
    std::vector<int64_t> offset(columns + 1, 0);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t c = 0; c < columns; ++c) {
        int64_t n = 0;
        for (int64_t b = 0; b < beams; ++b) {
            const int64_t r = b * columns + c;
            returns[r] = returned(r);
            n += returns[r];
        }
        offset[c + 1] = n;
    }
    for (int64_t c = 0; c < columns; ++c) offset[c + 1] += offset[c];
    const int64_t k = offset[columns];
    out.points.resize(3 * k);
    out.time.resize(k);
    out.beam.resize(k);
    out.column.resize(k);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t c = 0; c < columns; ++c) {
        int64_t i = offset[c];
        for (int64_t b = 0; b < beams; ++b) {
            const int64_t r = b * columns + c;
            if (!returns[r]) continue;
            const T m = median[r];
            for (int a = 0; a < 3; ++a) out.points[3 * i + a] = m * directions[3 * r + a];
            out.time[i] = double(times[r]) + time_offset;
            out.beam[i] = b, out.column[i] = c;
            ++i;
        }
    }
}

}  // namespace xs
