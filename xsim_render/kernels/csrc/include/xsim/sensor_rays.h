// Per-ray generation of one capture (xsim_render/sensors/rays.py), shared by host and device code:
//   camera pixel (i, j) is sampled at its centre (u, v) = (j + 0.5, i + 0.5) at the rolling-shutter time
//       tau = (t_start + offset) + u / W tau_u + v / H tau_v      (CameraModel::time_of, camera_models.h);
//   LiDAR firing c of N fires at t_start + (c + 0.5) / (N f) for every beam;
//   the ray leaves the sensor's origin at its own time along R_world_sensor(tau) d_sensor (rigid.h
//   body_pose_at, the constant-velocity ego with the sensor mount), d_sensor the unit sensor-frame direction.
// The arithmetic order follows the reference (t_start + offset is summed in double precision by the caller and
// passed as the model's t_start with offset 0), so times agree with it to the last bit up to FMA contraction.
#pragma once

#include "camera_models.h"
#include "rigid.h"

namespace xs {

// Rolling-shutter time (s) of camera pixel (row i, column j), at the pixel centre.
template <typename T> XS_HD T camera_pixel_time(const CameraModel<T>& cam, int64_t i, int64_t j) {
    return cam.time_of(T(j) + T(0.5), T(i) + T(0.5));
}

// Time (s) of LiDAR firing c; columns_times_rate = N f (firings per second), rounded once to T by the caller.
template <typename T> XS_HD T lidar_firing_time(T t_start, int64_t c, T columns_times_rate) {
    return t_start + (T(c) + T(0.5)) / columns_times_rate;
}

// World origin and unit direction of a ray with sensor-frame direction d_sensor at time t; `motion` is the
// sensor frame's packed motion (BODY_FIELDS scalars, rigid.h).
template <typename T>
XS_HD void sensor_ray_at(const T* motion, T t, Vec3<T> d_sensor, Vec3<T>& origin, Vec3<T>& direction) {
    T rot[9];
    body_pose_at(motion, t, rot, origin);
    direction = matvec(rot, d_sensor);
}

}  // namespace xs
