// Spinning-LiDAR spherical model of one sweep (xsim_render/projection/sensor_projection.py LidarProjection):
// sensor-frame point -> (phase, elevation) rad, phase = the angle swept since the seam in spin direction,
// unwrapped onto the branch [branch - pi, branch + pi) (XSIM phase modeling, eq. 9; branch pi = the principal
// sweep [0, 2 pi)). Firing c of N sits at phase 2 pi (c + 0.5) / N and fires at t_start + phase / (2 pi) T.
#pragma once

#include "common.h"

namespace xs {

template <typename T> struct LidarModel {
    T spin_sign = 1;         // +1 ccw, -1 cw (seen from above)
    T seam = 0;              // sensor-frame azimuth of the first firing (rad)
    T duration = 0.1;        // one sweep (s)
    T t_start = 0, t_end = 0;
    int columns = 1, beams = 1;
    T el_lo = 0, el_hi = 0;  // visible elevation range, padded by half the smallest beam gap (bounds())

    template <typename S> XS_HD_INLINE S phase_of(Vec3<S> p, T branch) const {
        S azimuth = xatan2(p.y, p.x);
        S raw = S(spin_sign) * (azimuth - S(seam));
        return raw - S(T(2 * PI)) * xfloor((raw - S(branch) + S(T(PI))) / S(T(2 * PI)));
    }

    template <typename S> XS_HD_INLINE S time_of(S phase) const {
        return S(t_start) + phase / S(T(2 * PI)) * S(duration);
    }

    // A point has a phase (is valid) off the spin axis.
    template <typename S> XS_HD_INLINE bool off_axis(S x, S y) const { return x * x + y * y > S(T(1e-18)); }

    // Capture time of a sensor-frame point and the phase it came from (the first image coordinate).
    template <typename S> XS_HD S time_of_point(Vec3<S> p, T branch, bool& valid, S& phase) const {
        valid = off_axis(p.x, p.y);
        phase = phase_of(p, branch);
        return time_of(phase);
    }

    // time_of_point of L points (x, y in the sensor frame) with their phases, in lanes the host vectorises.
    template <int L> XS_HD void times_of_points(const T* x, const T* y, T branch, T* phase, T* time, bool* valid) const {
        XS_SIMD
        for (int l = 0; l < L; ++l) {
            phase[l] = phase_of(make_vec3(x[l], y[l], T(0)), branch);
            time[l] = time_of(phase[l]);
        }
        for (int l = 0; l < L; ++l) valid[l] = off_axis(x[l], y[l]);
    }

    // Elevation of a point (the second image coordinate, once its time is solved): the reference's
    // asin(z / |p|) as atan2(z, |p_xy|) (the same angle, to a few ulp; no library call in double precision).
    template <typename S> XS_HD S elevation_of(Vec3<S> p) const {
        return xatan2(p.z, xsqrt(p.x * p.x + p.y * p.y));
    }

    // (phase0, phase1, elevation0, elevation1) (LidarProjection.bounds).
    XS_HD void bounds(T* b) const {
        b[0] = 0, b[1] = T(2 * PI), b[2] = el_lo, b[3] = el_hi;
    }
};

}  // namespace xs
