// Projection stage per Gaussian (xsim_render/projection/footprint.py): opacity-aware UT rectangles, the flags
// for Gaussians the UT cannot represent, their bounding cones, and phase modeling (XSIM Algorithm 2).
//   k = sqrt(2 ln(255 sigma)) std devs (alpha >= 1/255 inside), rectangle = UT mean +/- (1.25 k std + pad).
//   full (tiled by a bounding cone): sensor inside / near the Gaussian, angular radius > 0.35 rad, a LiDAR
//   Gaussian near the spin axis, a UT sigma point invalid or unconverged.
#pragma once

#include "camera_models.h"
#include "lidar_model.h"
#include "rigid.h"
#include "unscented.h"

namespace xs {

constexpr double EXTENT_SAFETY = 1.25;
constexpr double MAX_ANGULAR_RADIUS = 0.35;
constexpr int CONE_SAMPLES = 9;
constexpr double SPHERE_PAD_ABS = 1e-4;
constexpr double SPHERE_PAD_REL = 1e-6;
constexpr double CONE_MARGIN = 1e-5;

template <typename T> XS_HD T opacity_extent(T sigma) {
    T s = T(255) * sigma;
    return xsqrt(T(2) * xlog(s > T(1) ? s : T(1)));
}

template <typename T> XS_HD bool is_body(const T* body) { return body != nullptr && body[BODY_KIND] != T(0); }

// Bound (m) on how far a Gaussian centre moves in the sensor frame within h seconds of an instant at which it
// is `distance` from the sensor (Gronwall; footprint.py drift_bound).
template <typename T> XS_HD T drift_bound(const T* body, const T* sensor, Vec3<T> mean, T distance, T h) {
    T v_s = norm(load3(sensor + BODY_V)), w_s = norm(load3(sensor + BODY_W));
    T lever_s = sensor[BODY_HAS_MOUNT] != T(0) ? norm(load3(sensor + BODY_MOUNT_T)) : T(0);
    T a = v_s + w_s * lever_s;
    if (is_body(body)) {
        T lever_b = body[BODY_HAS_MOUNT] != T(0) ? norm(load3(body + BODY_MOUNT_T)) : T(0);
        a += norm(load3(body + BODY_V)) + norm(load3(body + BODY_W)) * (norm(mean) + lever_b);
    }
    T wh = w_s * h;
    // expm1(x) / x: its Taylor series below x = 0.01 (terms to x^6: exact to rounding there; no library call)
    const T series = T(1) + wh * (T(0.5) + wh * (T(1.0 / 6) + wh * (T(1.0 / 24) + wh * (T(1.0 / 120) +
                     wh * (T(1.0 / 720) + wh * T(1.0 / 5040))))));
    T growth = h * (wh < T(0.01) ? series : expm1(wh) / wh);
    return (a + w_s * distance) * growth;
}

template <typename T> XS_HD T angle_between(Vec3<T> a, Vec3<T> b) { return xatan2(norm(cross(a, b)), dot(a, b)); }

// Cone (sensor frame) holding every ray direction that can meet the Gaussian's bounding sphere of `radius`
// during [t0, t1] (footprint.py bounding_cones): axis (unit) and half-angle (pi: any direction).
template <typename T>
XS_HD void bounding_cone(const T* body, const T* sensor, Vec3<T> mean, T radius, T t0, T t1, Vec3<T>& axis,
                         T& half) {
    T span = t1 - t0;
    int samples = span > T(0) ? CONE_SAMPLES : 1;
    T h = samples > 1 ? span / T(2 * (samples - 1)) : T(0);
    Vec3<T> unit[CONE_SAMPLES];
    T dist[CONE_SAMPLES], grown[CONE_SAMPLES];
    Vec3<T> sum = make_vec3(T(0), T(0), T(0));
    bool every = false;
    for (int i = 0; i < samples; ++i) {
        T t = t0 + span * T(i) / T(samples > 1 ? samples - 1 : 1);
        Vec3<T> c = point_in_sensor(is_body(body) ? body : static_cast<const T*>(nullptr), sensor, mean, t);
        dist[i] = norm(c);
        grown[i] = radius + drift_bound(body, sensor, mean, dist[i], h) + T(SPHERE_PAD_ABS) +
                   T(SPHERE_PAD_REL) * dist[i];
        unit[i] = (T(1) / xmax(dist[i], T(1e-300))) * c;
        sum = sum + unit[i];
        every = every || dist[i] <= grown[i];
    }
    T axis_norm = norm(sum);
    axis = (T(1) / xmax(axis_norm, T(1e-300))) * sum;
    half = T(0);
    for (int i = 0; i < samples; ++i) {
        T spread = xasin(xmin(grown[i] / xmax(dist[i], T(1e-300)), T(1)));
        half = xmax(half, angle_between(axis, unit[i]) + spread);
    }
    if (every || axis_norm < T(1e-6) || !xisfinite(half)) half = T(PI);
    half = xmin(half, T(PI));
}

// Two cones share a direction only if the angle between their axes is at most the sum of the half-angles.
template <typename T> XS_HD bool cones_meet(Vec3<T> axis_a, T half_a, Vec3<T> axis_b, T half_b) {
    T reach = half_a + half_b + T(CONE_MARGIN);
    return reach >= T(PI) || xacos_clamped(dot(axis_a, axis_b)) <= reach;
}

// Rectangle of a UT result: mean +/- (EXTENT_SAFETY k std + pad).
template <typename T> XS_HD void ut_rect(const UnscentedResult<T>& ut, T k, T pad0, T pad1, T* lo, T* hi) {
    T s0 = xsqrt(xmax(ut.cov[0], T(0))), s1 = xsqrt(xmax(ut.cov[2], T(0)));
    T e0 = T(EXTENT_SAFETY) * k * s0 + pad0, e1 = T(EXTENT_SAFETY) * k * s1 + pad1;
    lo[0] = ut.mean[0] - e0, hi[0] = ut.mean[0] + e0;
    lo[1] = ut.mean[1] - e1, hi[1] = ut.mean[1] + e1;
}

template <typename T> XS_HD bool intersects(const T* lo, const T* hi, const T* b) {
    return hi[0] >= b[0] && lo[0] <= b[1] && hi[1] >= b[2] && lo[1] <= b[3];
}

// A LiDAR Gaussian within twice its angular radius of the spin axis at one of the sample centres.
template <typename T> XS_HD bool near_spin_axis(const Vec3<T>* centres, int n, T radius) {
    for (int i = 0; i < n; ++i) {
        T dist = norm(centres[i]);
        // clear without the angles: with s = 1.25 radius / dist < 1/2 the angular radius asin(s) < pi/6, and the
        // angle to the axis exceeds twice it where its sine r_xy / dist exceeds 2 s >= sin(2 asin(s))
        const T s = T(EXTENT_SAFETY) * radius, rxy2 = centres[i].x * centres[i].x + centres[i].y * centres[i].y;
        if (s < T(0.5) * dist && rxy2 > T(4 * (1 + 1e-9)) * s * s) continue;
        T to_axis = xatan2(xsqrt(rxy2), xabs(centres[i].z));
        T spread = xasin(xmin(T(EXTENT_SAFETY) * radius / xmax(dist, T(1e-30)), T(1)));
        if (to_axis <= T(2) * spread) return true;
    }
    return false;
}

// The grown sphere is on the invalid side of the camera at every sample (then it is dropped).
template <typename T>
XS_HD bool behind_camera(const CameraModel<T>& cam, const Vec3<T>* centres, const T* grown, int n) {
    for (int i = 0; i < n; ++i) {
        if (cam.kind == CAMERA_FISHEYE) {
            T dist = norm(centres[i]);
            T theta = xatan2(xsqrt(centres[i].x * centres[i].x + centres[i].y * centres[i].y), centres[i].z);
            T half = xasin(xmin(grown[i] / xmax(dist, T(1e-12)), T(1)));
            if (!(theta - half > cam.limit && dist > grown[i])) return false;
        } else if (!(centres[i].z + grown[i] < T(0))) {
            return false;
        }
    }
    return true;
}

}  // namespace xs
