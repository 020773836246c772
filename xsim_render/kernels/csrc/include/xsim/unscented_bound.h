// The LiDAR UT without the sigma points' own time solves: their image coordinates seen at the centre's observation
// time, and a slack that provably holds unscented_transform's (each sigma point solved at its own time) within it.
// The footprint stage widens the rectangle by the slack (a superset of unscented_transform's tiles) where that
// costs next to nothing, and decides with it only where the widened and the narrowed rectangle agree.
//
// The proof (project.h predicted_root, phase_rate_bound) covers every point within rho of the centre over the
// whole window of roots and beyond: its phase turns at most omega rad/s (q = omega T / 2 pi < 0.2) without
// reaching the branch cut, and its elevation at most elevation_rate rad/s. Sigma point i is seen at phase s_i at the centre's time eta_c (the centre: phase c_0, |g_0| < tol); its
// own converged solve stops at eta_i with |g_i| < tol at phase c_i. With A_i = |c_i - s_i|:
//     A_i <= omega |eta_i - eta_c|,  |eta_i - eta_c| <= 2 tol + T / (2 pi) (A_i + |s_i - c_0|)
//     =>  A_i <= (q |s_i - c_0| + 2 omega tol) / (1 - q),
// and the elevation moves at most elevation_rate |eta_i - eta_c|. Every solve
// converges (predicted_root), so the UT is valid. The moments then differ by at most E (the largest slack) in the
// mean and sqrt(2) E in the standard deviation (a seminorm of the coordinates: dbar^2 + sum_i d_i^2 / 6 <= 2 E^2
// for coordinate errors d_i, the centre's being exact).
#pragma once

#include "unscented.h"

namespace xs {

// What predicted_root proved for every point within rho of a Gaussian's centre (see above).
struct MotionProof {
    double omega = 0;           // phase rate bound (rad/s)
    double elevation_rate = 0;  // elevation rate bound (rad/s)
};

// Elevations asin(z / |p|) = atan2(z, |p_xy|) of L sensor-frame points, in lanes the host vectorises (the points
// copied into coordinate arrays first: the loop over the records themselves stays scalar).
template <int L, typename T> XS_HD_LANES void elevations_of_points(const Seen<T>* seen, T* elevation) {
    T z[L], rxy[L];
    for (int l = 0; l < L; ++l) {
        const Vec3<T> p = seen[l].at;
        z[l] = p.z, rxy[l] = p.x * p.x + p.y * p.y;
    }
    XS_SIMD_KEEP
    for (int l = 0; l < L; ++l) elevation[l] = xatan2(z[l], xsqrt(rxy[l]));
}

// The UT of a LiDAR Gaussian on one phase branch from the sigma points seen at the centre's root r0 (solved from a
// start predicted_root proved), with the slack of the comment above; bounded = false (the caller runs
// unscented_transform) where the centre's solve failed, a point lies on the spin axis, or the slack exceeds
// `slack_max` (per coordinate; first, before any sigma point is projected, hopeless cases are told by the slack of
// half the largest phase offset a sigma point can have, asin(rho / r_xy) with rho the radius of a sphere around
// the centre holding every sigma point: most offsets come near it).
template <typename T>
XS_HD UnscentedResult<T> unscented_static(const LidarBranch<T>& sensor, const T* body, const T* motion, Vec3<T> mean,
                                          const T* rot, const T* scale, T rho, T tolerance, const SolveResult<T>& r0,
                                          const MotionProof& proof, const T* slack_max) {
    UnscentedResult<T> out;
    out.distance = r0.distance;
    out.centre[0] = r0.c0, out.centre[1] = r0.c1, out.centre_eta = r0.eta;
    out.valid = r0.valid;
    const T duration = sensor.model->duration, q = T(proof.omega) * duration / T(2 * PI);
    if (!r0.valid || !(q < T(0.2))) return out;
    const T omega = T(proof.omega), turn = T(proof.elevation_rate), per_rad = duration / T(2 * PI);
    auto slack = [&](T ds, T& e0, T& e1) {  // a sigma point's phase and elevation slack, phase offset ds
        const T a = (q * ds + T(2) * omega * tolerance) / (T(1) - q);
        e0 = a * T(1 + 1e-9) + T(1e-10);
        e1 = turn * (T(2) * tolerance + per_rad * (a + ds)) * T(1 + 1e-9) + T(1e-10);
    };
    {
        const T rxy = xsqrt(r0.at.x * r0.at.x + r0.at.y * r0.at.y);
        T e0, e1;
        slack(rho < rxy ? T(0.5) * asin_upper(rho / rxy) : T(PI), e0, e1);
        if (!(e0 <= slack_max[0] && e1 <= slack_max[1])) return out;  // hopeless
    }
    Seen<T> seen[UT_POINTS + 1];  // 1..6, and a padding lane for the elevations
    const T f[3] = {xsqrt(T(3)) * scale[0], xsqrt(T(3)) * scale[1], xsqrt(T(3)) * scale[2]};
    Vec3<T> offset[3];  // sqrt(3) s_a R[:, a] in the sensor frame at the centre's time
    columns_in_sensor(body, motion, rot, f, r0.eta, offset);
    for (int a = 0; a < 3; ++a) {
        seen[1 + a].at = r0.at + offset[a];
        seen[4 + a].at = r0.at - offset[a];
    }
    seen[0].at = seen[UT_POINTS].at = r0.at;
    first_residuals(sensor, r0.eta, seen);  // phases of 1..6 on the branch, and whether they are off the axis
    T elevation[UT_POINTS + 1];
    elevations_of_points<UT_POINTS + 1>(seen, elevation);
    T coords[UT_POINTS][2];
    coords[0][0] = r0.c0, coords[0][1] = r0.c1;
    T ds = T(0);
    for (int i = 1; i < UT_POINTS; ++i) {
        if (!seen[i].valid) return out;
        coords[i][0] = seen[i].c0, coords[i][1] = elevation[i];
        ds = xmax(ds, xabs(seen[i].c0 - r0.c0));
    }
    ut_moments(coords, out);
    // (the factor and the floor: rounding of the static points and of both computations' arithmetic)
    slack(ds, out.slack[0], out.slack[1]);
    out.bounded = out.slack[0] <= slack_max[0] && out.slack[1] <= slack_max[1];
    return out;
}

// The widened (lo, hi) and narrowed (lo_in, hi_in) rectangles of a bounded result: unscented_transform's rectangle
// ut_rect (mean +/- (EXTENT_SAFETY k std + pad)) has lo <= its lower edges <= lo_in and hi_in <= its upper edges
// <= hi (the narrowed one may be inverted).
template <typename T>
XS_HD void ut_rect_slack(const UnscentedResult<T>& ut, T k, T pad0, T pad1, T* lo, T* hi, T* lo_in, T* hi_in) {
    const T std[2] = {xsqrt(xmax(ut.cov[0], T(0))), xsqrt(xmax(ut.cov[2], T(0)))};
    const T pad[2] = {pad0, pad1};
    for (int c = 0; c < 2; ++c) {
        const T e = ut.slack[c], s = xsqrt(T(2)) * e;
        const T wide = T(EXTENT_SAFETY) * k * (std[c] + s) * T(1 + 1e-12) + pad[c] + e;
        const T narrow = T(EXTENT_SAFETY) * k * xmax(std[c] - s, T(0)) * T(1 - 1e-12) + pad[c] - e;
        lo[c] = ut.mean[c] - wide, hi[c] = ut.mean[c] + wide;
        lo_in[c] = ut.mean[c] - narrow, hi_in[c] = ut.mean[c] + narrow;
    }
}

}  // namespace xs
