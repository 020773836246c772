// CPU (OpenMP) tile rasterizer and ray generation: raw host pointers and sizes, no PyTorch.
#pragma once

#include <stdint.h>

#include "xsim/raster_args.h"

namespace xs {

template <typename T> void rasterize_cpu(const RasterInputs<T>& in, const RasterOutputs<T>& out);

// Ray generation: ray r leaves the sensor at its time times[r] along the sensor-frame unit direction
// dirs_sensor[r]; origin = sensor position, direction = R_sensor dirs_sensor (world), from the packed sensor
// motion (rigid.h) at that time (xsim_render/sensors/rays.py _to_world). period > 0: the times repeat with that
// period (a LiDAR's beam-major rays, one time per column): the poses of the first `period` rays are reused
// wherever the time matches. Runs of equal times (a camera's rows) reuse one pose as well.
template <typename T>
void sensor_rays_cpu(int64_t n_rays, const T* times, const T* dirs_sensor, const T* motion, T* origins,
                     T* directions, int threads, int64_t period = 0);

}  // namespace xs
