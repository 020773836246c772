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
#include "project.h"
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

// Ray generation of one capture. Camera: ray r = i W + j (row-major pixels), times from `camera` (its t_start
// already holding t_start + offset, offset 0). LiDAR: ray r = b N + c (beams in rig order), firing times
// t_start + (c + 0.5) / columns_times_rate. dirs_sensor (R,3) unit sensor-frame directions; the pointers are
// in the memory of whichever side runs write_sensor_ray (device for the CUDA kernel, host for the emulation).
template <typename T> struct RayParams {
    int sensor = SENSOR_CAMERA;  // or SENSOR_LIDAR (project.h)
    int64_t n_rays = 0;
    CameraModel<T> camera;
    int64_t columns = 1;
    T t_start = 0;
    T columns_times_rate = 1;
    T motion[BODY_FIELDS];  // packed sensor motion (rigid.h), held by value (no device upload)
    const T* dirs_sensor = nullptr;
    T* origins = nullptr;     // (R,3) out
    T* directions = nullptr;  // (R,3) out
    T* times = nullptr;       // (R,) out
};

// Time, world origin and unit direction of ray r of p, written to p's output arrays.
template <typename T> XS_HD void write_sensor_ray(const RayParams<T>& p, int64_t r) {
    const T t = p.sensor == SENSOR_CAMERA ? camera_pixel_time(p.camera, r / p.camera.width, r % p.camera.width)
                              : lidar_firing_time(p.t_start, r % p.columns, p.columns_times_rate);
    Vec3<T> o, d;
    sensor_ray_at(p.motion, t, load3(p.dirs_sensor + 3 * r), o, d);
    p.origins[3 * r] = o.x, p.origins[3 * r + 1] = o.y, p.origins[3 * r + 2] = o.z;
    p.directions[3 * r] = d.x, p.directions[3 * r + 1] = d.y, p.directions[3 * r + 2] = d.z;
    p.times[r] = t;
}

}  // namespace xs
