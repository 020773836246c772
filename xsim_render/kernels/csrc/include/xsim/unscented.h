// Unscented Transform of a 3D Gaussian through the rolling-shutter sensor projection (3DGUT;
// xsim_render/projection/unscented.py). Sigma points (alpha 1, beta 2, kappa 0, n 3): the mean and
// mean +/- sqrt(3) s_i R[:, i]; each is projected at its own observation time (rolling_shutter.h); the image
// mean and covariance are the weighted sample moments (weights: mean 0 | 1/6 x 6, covariance 2 | 1/6 x 6).
// The centre is solved from eta0 like the reference; with warm_start the other sigma points start from the
// centre's solution (the same root as from eta0, found in fewer Newton steps) when it converged and, for a
// LiDAR, lies well clear of the branch cut (near the cut a point can have two roots, one at each end of the
// sweep, and the reference's start eta0 decides which one it gets: there the points start from eta0 too).
// Warm-started points also take the centre's slope g' for their first Newton step (a chord step: no dual
// evaluation there; the stopping test on |g| is unchanged, so they converge to the same roots).
#pragma once

#include "rolling_shutter.h"

namespace xs {

constexpr int UT_POINTS = 7;

template <typename T> struct UnscentedResult {
    T mean[2];
    T cov[3];      // xx, xy, yy
    T distance;    // |x_sensor| of the centre at its observation time (m)
    bool valid;    // every sigma point projects validly and its time solve converged
    T centre[2];   // image coordinates of the centre (sigma point 0) at its observation time
    T centre_eta;  // the centre's observation time (s)
};

// Sigma point i (0: centre; 1..3: +axis; 4..6: -axis) of a Gaussian (mean, rotation row-major, std devs).
template <typename T> XS_HD Vec3<T> sigma_point(Vec3<T> mean, const T* rot, const T* scale, int i) {
    if (i == 0) return mean;
    int axis = (i - 1) % 3;
    T sign = i <= 3 ? T(1) : T(-1);
    T f = sign * xsqrt(T(3)) * scale[axis];
    return mean + make_vec3(f * rot[axis], f * rot[3 + axis], f * rot[6 + axis]);
}

template <typename T, typename Sensor>
XS_HD UnscentedResult<T> unscented_transform(const Sensor& sensor, const T* body, const T* motion, Vec3<T> mean,
                                             const T* rot, const T* scale, T eta0, T tolerance,
                                             bool warm_start = true) {
    T coords[UT_POINTS][2];
    UnscentedResult<T> out;
    out.valid = true;
    T start = eta0, hint = T(NAN);
    for (int i = 0; i < UT_POINTS; ++i) {
        TimeSolver<T, Sensor> solver{sensor, body, motion, sigma_point(mean, rot, scale, i), tolerance};
        SolveResult<T> r = solver.solve(start, hint);
        if (i == 0) {
            out.distance = r.distance;
            out.centre[0] = r.c0, out.centre[1] = r.c1, out.centre_eta = r.eta;
            T smax = xmax(scale[0], xmax(scale[1], scale[2]));
            T angle = T(2) * xasin(xmin(xsqrt(T(3)) * smax / xmax(r.distance, T(1e-30)), T(1))) + T(0.1);
            if (warm_start && r.valid && sensor.clear_of_cut(r.c0, angle)) start = r.eta, hint = r.slope;
        }
        out.valid = out.valid && r.valid;
        coords[i][0] = r.valid ? r.c0 : T(0);
        coords[i][1] = r.valid ? r.c1 : T(0);
    }
    const T w_c0 = T(2), w = T(1) / T(6);
    out.mean[0] = out.mean[1] = T(0);
    for (int i = 1; i < UT_POINTS; ++i) {
        out.mean[0] += w * coords[i][0];
        out.mean[1] += w * coords[i][1];
    }
    out.cov[0] = out.cov[1] = out.cov[2] = T(0);
    for (int i = 0; i < UT_POINTS; ++i) {
        T wc = i == 0 ? w_c0 : w;
        T dx = coords[i][0] - out.mean[0], dy = coords[i][1] - out.mean[1];
        out.cov[0] += wc * dx * dx;
        out.cov[1] += wc * dx * dy;
        out.cov[2] += wc * dy * dy;
    }
    return out;
}

}  // namespace xs
