// Camera projection models (xsim_render/sensors/camera_models.py `project`) and the rolling-shutter time of a
// pixel (sensors/rays.py camera_time_of_pixel). Points in the camera OPTICAL frame (z forward, x right, y down,
// metres) -> pixels (u right, v down). Templated on the scalar S (plain or dual) for the time solve.
//   pinhole  u = fx x/z + cx, v = fy y/z + cy                                       valid: z > 0
//   opencv   (k1 k2 p1 p2 k3 k4 k5 k6) radial-rational + tangential               valid: z > 0, r < r_max
//   fisheye  (k1..k4) theta_d = theta (1 + k1 theta^2 + ... + k4 theta^8)          valid: theta < theta_max
// r_max / theta_max (`limit`) is the monotonic limit computed once in Python (camera_models.max_valid_radius).
// Invalid lanes get the same finite stand-in values as the reference (they still drive the Newton iterations).
#pragma once

#include <float.h>

#include "common.h"

namespace xs {

enum CameraModelKind : int { CAMERA_PINHOLE = 0, CAMERA_OPENCV = 1, CAMERA_FISHEYE = 2 };

template <typename T> struct CameraModel {
    static constexpr bool lanes = false;  // no batched residuals (unscented.h solves camera points one by one)
    int kind = CAMERA_PINHOLE;
    int width = 0, height = 0;
    T fx = 1, fy = 1, cx = 0, cy = 0;
    T k[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // opencv: k1 k2 p1 p2 k3 k4 k5 k6; fisheye: k1 k2 k3 k4
    T limit = T(1e300);                   // max_valid_radius (opencv: normalized radius, fisheye: theta)
    T offset = 0, tau_u = 0, tau_v = 0;   // rolling shutter: tau(u, v) = t_start + offset + u/W tau_u + v/H tau_v
    T t_start = 0, t_end = 0;             // capture window (s)

    // Pixel (u, v) of a sensor-frame point; false where the point is outside the model's valid domain.
    template <typename S> XS_HD bool project(Vec3<S> p, S& u, S& v) const {
        S a, b;
        bool valid;
        if (kind == CAMERA_PINHOLE) {
            valid = p.z > S(0);
            S zs = valid ? p.z : S(1);
            a = p.x / zs;
            b = p.y / zs;
        } else if (kind == CAMERA_OPENCV) {
            valid = opencv_normalized(p, a, b);
        } else {
            valid = fisheye_normalized(p, a, b);
        }
        u = S(fx) * a + S(cx);
        v = S(fy) * b + S(cy);
        return valid;
    }

    template <typename S> XS_HD S time_of(S u, S v) const {
        return S(t_start + offset) + u / S(T(width)) * S(tau_u) + v / S(T(height)) * S(tau_v);
    }

    // Capture time of a sensor-frame point's pixel (what the rolling-shutter residual needs) and the pixel.
    template <typename S> XS_HD S time_of_point(Vec3<S> p, bool& valid, S& u, S& v) const {
        valid = project(p, u, v);
        return time_of(u, v);
    }

    // Rest of project() after time_of_point(p, valid, u, v): nothing (u and v are known).
    XS_HD bool finish_projection(Vec3<T>, T&, T&, bool valid) const { return valid; }

    template <typename S> XS_HD bool opencv_normalized(Vec3<S> p, S& xd, S& yd) const {
        bool front = p.z > S(0);
        S zs = front ? p.z : S(1);
        S a = p.x / zs, b = p.y / zs;
        S s = a * a + b * b;
        S lim2 = S(limit * limit);
        bool valid = front && s < lim2;
        if (!(s < lim2)) {  // pull onto the limit circle along the azimuth (finite stand-in values)
            S shrink = S(limit) / xsqrt(s);
            a = a * shrink;
            b = b * shrink;
        }
        const T k1 = k[0], k2 = k[1], p1 = k[2], p2 = k[3], k3 = k[4], k4 = k[5], k5 = k[6], k6 = k[7];
        s = a * a + b * b;
        S num = S(1) + s * (S(k1) + s * (S(k2) + s * S(k3)));
        S den = S(1) + s * (S(k4) + s * (S(k5) + s * S(k6)));
        S radial = num / den;
        S ab = a * b;
        xd = a * radial + S(2 * p1) * ab + S(p2) * (s + S(2) * a * a);
        yd = b * radial + S(p1) * (s + S(2) * b * b) + S(2 * p2) * ab;
        return valid;
    }

    template <typename S> XS_HD S fisheye_poly(S t2) const {
        return S(1) + t2 * (S(k[0]) + t2 * (S(k[1]) + t2 * (S(k[2]) + t2 * S(k[3]))));
    }

    template <typename S> XS_HD bool fisheye_normalized(Vec3<S> p, S& xd, S& yd) const {
        const T tiny = sizeof(T) == sizeof(double) ? T(DBL_MIN) : T(FLT_MIN);
        S s = p.x * p.x + p.y * p.y;
        bool near = p.z > S(0) && s < S(T(1e-4)) * p.z * p.z;
        S scale;
        bool valid;
        if (near) {  // series of atan(t)/t in t^2 = s/z^2 near the optical axis
            S t2 = s / (p.z * p.z);
            S ratio = (S(1) + t2 * (S(T(-1) / T(3)) + t2 * (S(T(1) / T(5)) - t2 / S(T(7))))) / p.z;
            scale = ratio * fisheye_poly(ratio * ratio * s);
            valid = ratio * ratio * s < S(limit * limit);
        } else {
            bool degenerate = !(s > S(tiny));
            S rho = degenerate ? S(1) : xsqrt(s);
            S theta = xatan2(rho, degenerate ? S(1) : p.z);
            S theta_c = theta < S(limit) ? theta : S(limit);
            scale = theta_c * fisheye_poly(theta_c * theta_c) / rho;
            valid = !degenerate && theta < S(limit);
        }
        xd = p.x * scale;
        yd = p.y * scale;
        return valid;
    }

    // A camera has no branch cut (warm starts of the time solve are always safe).
    XS_HD bool clear_of_cut(T, T) const { return true; }
    // bounds on the capture time of any point (none known here: the solver's window search evaluates both ends)
    XS_HD void time_range(T& lo, T& hi) const { lo = T(-INFINITY), hi = T(INFINITY); }

    // Image rectangle (u0, u1, v0, v1) in pixels (CameraProjection.bounds).
    XS_HD void bounds(T* b) const {
        b[0] = 0, b[1] = T(width), b[2] = 0, b[3] = T(height);
    }
};

}  // namespace xs
