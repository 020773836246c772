// Unscented Transform of a 3D Gaussian through the rolling-shutter sensor projection (3DGUT;
// xsim_render/projection/unscented.py). Sigma points (alpha 1, beta 2, kappa 0, n 3): the mean and
// mean +/- sqrt(3) s_i R[:, i]; each is projected at its own observation time (rolling_shutter.h); the image
// mean and covariance are the weighted sample moments (weights: mean 0 | 1/6 x 6, covariance 2 | 1/6 x 6).
// The centre is solved from eta0 like the reference; with warm_start the other sigma points start from the
// centre's solution (the same root as from eta0, found in fewer Newton steps) when it converged and, for a
// LiDAR, lies well clear of the branch cut (near the cut a point can have two roots, one at each end of the
// sweep, and the reference's start eta0 decides which one it gets: there the points start from eta0 too, unless
// the caller proved every point's root unique, `unique_roots`; project.h predicted_root). `centre_eta0`: a start
// for the centre that the caller proved to reach the same root as eta0. Either proof also shows g monotone over
// the window (TimeSolver::monotone: no bracketing search after a root outside it).
// Warm-started points also take the centre's slope g' for their first Newton step (a chord step: no dual
// evaluation there; the stopping test on |g| is unchanged, so they converge to the same roots), and their first
// residual is evaluated at the centre's sensor-frame point plus the sigma offset turned into the sensor frame at
// the centre's time (rigid motion is affine in the point: no motion evaluation per sigma point).
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
    // unscented_static only (unscented_bound.h): every image coordinate of unscented_transform's sigma points lies
    // within slack of the one this result's moments come from (where bounded; zero for unscented_transform)
    T slack[2] = {T(0), T(0)};
    bool bounded = false;
};

// The UT's moments (weights: mean 0 | 1/6 x 6, covariance 2 | 1/6 x 6) of the sigma points' image coordinates.
template <typename T> XS_HD void ut_moments(const T (*coords)[2], UnscentedResult<T>& out) {
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
}

// Sigma point i (0: centre; 1..3: +axis; 4..6: -axis) of a Gaussian (mean, rotation row-major, std devs).
template <typename T> XS_HD Vec3<T> sigma_point(Vec3<T> mean, const T* rot, const T* scale, int i) {
    if (i == 0) return mean;
    int axis = (i - 1) % 3;
    T sign = i <= 3 ? T(1) : T(-1);
    T f = sign * xsqrt(T(3)) * scale[axis];
    return mean + make_vec3(f * rot[axis], f * rot[3 + axis], f * rot[6 + axis]);
}

// Residuals g = eta - tau(x) of the sigma points 1..6 at one time eta from their sensor-frame points seen[i].at:
// in vectorised lanes where the sensor offers them (LiDAR), else one by one.
template <typename T, typename Sensor> XS_HD void first_residuals(const Sensor& sensor, T eta, Seen<T>* seen) {
    if constexpr (Sensor::lanes) {
        constexpr int L = 8;  // six points, two padding lanes
        T x[L], y[L], phase[L], time[L];
        bool valid[L];
        for (int l = 0; l < L; ++l) x[l] = seen[1 + l % 6].at.x, y[l] = seen[1 + l % 6].at.y;
        sensor.template times_of_points<L>(x, y, phase, time, valid);
        for (int i = 1; i < UT_POINTS; ++i)
            seen[i].g = eta - time[i - 1], seen[i].c0 = phase[i - 1], seen[i].valid = valid[i - 1];
    } else {
        for (int i = 1; i < UT_POINTS; ++i)
            seen[i].g = eta - sensor.time_of_point(seen[i].at, seen[i].valid, seen[i].c0, seen[i].c1);
    }
}

// TimeSolver::residual_value of each sigma point i with stepped[i] at its own time eta[i] (into seen[i]): in
// vectorised lanes where the sensor offers them and the motion allows (points_in_sensor_lanes), else one by one.
template <typename T, typename Sensor>
XS_HD void stepped_residuals(const Sensor& sensor, const T* body, const T* motion, Vec3<T> mean, const T* rot,
                             const T* scale, T tolerance, const T* eta, const bool* stepped, Seen<T>* seen) {
    if constexpr (Sensor::lanes) {
        constexpr int L = 8;
        T x[L], y[L], z[L], t[L], phase[L], time[L];
        bool valid[L];
        for (int l = 0; l < L; ++l) {
            const int i = 1 + l % 6;
            const Vec3<T> p = sigma_point(mean, rot, scale, i);
            x[l] = p.x, y[l] = p.y, z[l] = p.z, t[l] = eta[i];
        }
        if (points_in_sensor_lanes<L>(body, motion, t, x, y, z)) {
            sensor.template times_of_points<L>(x, y, phase, time, valid);
            for (int i = 1; i < UT_POINTS; ++i) {
                if (!stepped[i]) continue;
                seen[i].at = make_vec3(x[i - 1], y[i - 1], z[i - 1]);
                seen[i].g = eta[i] - time[i - 1], seen[i].c0 = phase[i - 1], seen[i].valid = valid[i - 1];
            }
            return;
        }
    }
    for (int i = 1; i < UT_POINTS; ++i)
        if (stepped[i])
            TimeSolver<T, Sensor>{sensor, body, motion, sigma_point(mean, rot, scale, i), tolerance}.residual_value(
                eta[i], seen[i]);
}

template <typename T, typename Sensor>
XS_HD UnscentedResult<T> unscented_transform(const Sensor& sensor, const T* body, const T* motion, Vec3<T> mean,
                                             const T* rot, const T* scale, T eta0, T tolerance,
                                             bool warm_start = true, T centre_eta0 = T(NAN),
                                             bool unique_roots = false, const SolveResult<T>* centre = nullptr) {
    T coords[UT_POINTS][2];
    UnscentedResult<T> out;
    // the centre, from eta0 (or from centre_eta0 where the caller proved it reaches the same root)
    // (`centre`: that solve, done by the caller)
    const SolveResult<T> r0 =
        centre ? *centre
               : TimeSolver<T, Sensor>{sensor, body, motion, mean, tolerance, xisfinite(centre_eta0)}.solve(
                     xisfinite(centre_eta0) ? centre_eta0 : eta0);
    out.distance = r0.distance;
    out.centre[0] = r0.c0, out.centre[1] = r0.c1, out.centre_eta = r0.eta;
    out.valid = r0.valid;
    coords[0][0] = r0.valid ? r0.c0 : T(0);
    coords[0][1] = r0.valid ? r0.c1 : T(0);
    const T smax = xmax(scale[0], xmax(scale[1], scale[2]));
    const T angle = T(2) * xasin(xmin(xsqrt(T(3)) * smax / xmax(r0.distance, T(1e-30)), T(1))) + T(0.1);
    const bool warm = warm_start && r0.valid && (unique_roots || sensor.clear_of_cut(r0.c0, angle));
    if (!warm) {
        for (int i = 1; i < UT_POINTS; ++i) {
            SolveResult<T> r = TimeSolver<T, Sensor>{sensor, body, motion, sigma_point(mean, rot, scale, i),
                                                     tolerance, unique_roots}.solve(eta0);
            out.valid = out.valid && r.valid;
            coords[i][0] = r.valid ? r.c0 : T(0);
            coords[i][1] = r.valid ? r.c1 : T(0);
        }
    } else {
        // The six sigma points side by side (independent dependency chains): the first two Newton iterates of
        // TimeSolver::solve(start, hint, &first) for all, then that solve, going on from where they stopped, for
        // any point they did not settle (the same operations on the same values, up to the rounding of vectorised
        // arithmetic in the LiDAR's SIMD lanes: the same outcome).
        const T start = r0.eta, hint = r0.slope, stop = T(SOLVE_STOP) * tolerance;
        const bool inside = start >= sensor.t_start && start <= sensor.t_end;
        Vec3<T> offset[3];  // sqrt(3) s_a R[:, a] in the sensor frame at the centre's time
        const T f[3] = {xsqrt(T(3)) * scale[0], xsqrt(T(3)) * scale[1], xsqrt(T(3)) * scale[2]};
        columns_in_sensor(body, motion, rot, f, start, offset);
        Seen<T> first[UT_POINTS], seen[UT_POINTS];
        T eta[UT_POINTS];
        bool settled[UT_POINTS], stepped[UT_POINTS];
        for (int i = 1; i < UT_POINTS; ++i) {  // iterate 0: at the centre's time, from the offsets
            const int a = (i - 1) % 3;
            first[i].at = i <= 3 ? r0.at + offset[a] : r0.at - offset[a];
        }
        first_residuals(sensor, start, first);
        for (int i = 1; i < UT_POINTS; ++i) {  // iterate 1: one chord step with the centre's slope
            const T g = first[i].g;
            const bool usable = xisfinite(hint) && xabs(hint) > T(MIN_SLOPE);
            const T step = usable ? g / hint : g;
            settled[i] = inside && xabs(g) < stop;
            stepped[i] = !settled[i] && xabs(g) >= stop && xisfinite(step);
            eta[i] = stepped[i] ? start - step : start;
            seen[i] = first[i];
        }
        stepped_residuals(sensor, body, motion, mean, rot, scale, tolerance, eta, stepped, seen);
        for (int i = 1; i < UT_POINTS; ++i)
            if (stepped[i])
                settled[i] = xabs(seen[i].g) < stop && eta[i] >= sensor.t_start && eta[i] <= sensor.t_end;
        for (int i = 1; i < UT_POINTS; ++i) {
            TimeSolver<T, Sensor> solver{sensor, body, motion, sigma_point(mean, rot, scale, i),
                                         tolerance, unique_roots};
            SolveResult<T> r = settled[i]   ? solver.result(eta[i], hint, seen[i])
                               : stepped[i] ? solver.solve(eta[i], hint, &seen[i], 1)  // on from iterate 1
                                            : solver.solve(start, hint, &first[i]);
            out.valid = out.valid && r.valid;
            coords[i][0] = r.valid ? r.c0 : T(0);
            coords[i][1] = r.valid ? r.c1 : T(0);
        }
    }
    ut_moments(coords, out);
    return out;
}

}  // namespace xs
