// Generalised rolling-shutter projection (XSIM eq. 4-8, Algorithm 1; xsim_render/motion/rolling_shutter.py).
// A point fixed in a body (world or a rigid actor) is seen by the moving sensor at the time eta solving
// g(eta) = eta - tau(pi(x_sensor(eta))) = 0 (seconds since the capture start). g' comes from dual numbers.
//   1. Newton from eta0 with the fixed-point fallback g' := 1 where |g'| < MIN_SLOPE, at most
//      NEWTON_ITERATIONS steps; a root inside the window [t_start, t_end] is taken.
//   2. Otherwise, if g changes sign over the window, a safeguarded Newton on that bracket (Newton steps that
//      stay inside and at least halve the previous step, else bisection; BRACKET_ITERATIONS at most).
//   3. Otherwise step 1's result stands.
// valid: a valid static projection at eta and |eta - tau(pi(x(eta)))| < tolerance.
// `Sensor` is CameraModel<T> or a LidarBranch<T> (a LiDAR model on one phase branch).
#pragma once

#include "common.h"
#include "dual.h"
#include "lidar_model.h"
#include "rigid.h"

namespace xs {

constexpr int NEWTON_ITERATIONS = 12;
constexpr double MIN_SLOPE = 0.2;
constexpr int BRACKET_ITERATIONS = 64;
constexpr double SOLVE_STOP = 0.01;  // a solve stops once |g| < SOLVE_STOP * tolerance

// A LiDAR model seen on one phase branch (the Sensor interface of the solver).
template <typename T> struct LidarBranch {
#if defined(XS_DEVICE_CODE)
    static constexpr bool lanes = false;  // one GPU thread per Gaussian: residuals one by one (no lane arrays)
#else
    static constexpr bool lanes = true;  // times_of_points: batched residuals in SIMD lanes (unscented.h)
#endif
    const LidarModel<T>* model;
    T branch;
    T t_start, t_end;
    template <int L> XS_HD void times_of_points(const T* x, const T* y, T* phase, T* time, bool* valid) const {
        model->template times_of_points<L>(x, y, branch, phase, time, valid);
    }
    // the time and the coordinates computed on the way (the phase; the elevation is left to finish_projection)
    template <typename S> XS_HD S time_of_point(Vec3<S> p, bool& valid, S& phase, S&) const {
        return model->time_of_point(p, branch, valid, phase);
    }
    // the image coordinates' rest after time_of_point(p, valid, phase, elevation): the elevation
    XS_HD bool finish_projection(Vec3<T> p, T&, T& elevation, bool valid) const {
        elevation = model->elevation_of(p);
        return valid;
    }
    template <typename S> XS_HD S time_of(S phase, S) const { return model->time_of(phase); }
    // every capture time on this branch lies in [time_of(branch - pi), time_of(branch + pi)]
    XS_HD void time_range(T& lo, T& hi) const {
        lo = model->time_of(branch - T(PI)), hi = model->time_of(branch + T(PI));
    }
    // a point within `angle` of a phase c0 stays on this branch (away from its cut at branch +- pi)
    XS_HD bool clear_of_cut(T c0, T angle) const {
        return c0 - (branch - T(PI)) > angle && (branch + T(PI)) - c0 > angle;
    }
};

template <typename T> struct SolveResult {
    T c0, c1;       // image coordinates at eta (pixels, or phase / elevation)
    T eta;          // observation time (s)
    T distance;     // |x_sensor(eta)| (m)
    bool valid;
    T slope;        // g'(eta) of the last dual evaluation (a Newton slope for nearby points)
    Vec3<T> at;     // x_sensor(eta)
};

// What one residual evaluation saw: the sensor-frame point, g, and the image coordinates computed on the way
// (sensors fill what their time needs: a camera both, a LiDAR the phase; finish_projection adds the rest).
template <typename T> struct Seen {
    Vec3<T> at;
    T g = T(NAN);
    T c0 = T(0), c1 = T(0);
    bool valid = false;
};

template <typename T, typename Sensor> struct TimeSolver {
    const Sensor& sensor;
    const T* body;        // packed body of the point (nullptr: world)
    const T* motion;      // packed sensor motion
    Vec3<T> point;        // in the body's frame
    T tolerance;
    // The caller proved g strictly increasing over the window with one root, or none, there (project.h
    // predicted_root): a converged root outside the window then leaves no sign change inside, and step 2 is skipped.
    bool monotone = false;

    // g(eta), g'(eta) and what the evaluation saw: the sensor-frame point and its velocity in closed form
    // (point_in_sensor_moving), the sensor model in dual numbers (d/d eta)
    XS_HD void residual(T eta, T& slope, Seen<T>& seen) const {
        using D = Dual<T>;
        Vec3<T> at, rate;
        point_in_sensor_moving(body, motion, point, eta, at, rate);
        const Vec3<D> x = make_vec3(D(at.x, rate.x), D(at.y, rate.y), D(at.z, rate.z));
        D c0, c1;
        D r = D(eta, T(1)) - sensor.time_of_point(x, seen.valid, c0, c1);
        seen.g = r.v;
        slope = r.d;
        seen.at = at;
        seen.c0 = c0.v, seen.c1 = c1.v;
    }

    // g(eta) alone
    XS_HD T residual_value(T eta) const {
        Seen<T> seen;
        return residual_value(eta, seen);
    }

    XS_HD T residual_value(T eta, Seen<T>& seen) const {
        seen.at = point_in_sensor(body, motion, point, eta);
        seen.g = eta - sensor.time_of_point(seen.at, seen.valid, seen.c0, seen.c1);
        return seen.g;
    }

    // Step 1: returns eta, |g(eta)| (NaN where g is not finite), g'(eta) (of the last dual evaluation) and what
    // the evaluation at eta saw. After the first step every iterate is tested with g alone and g' is computed
    // only where another step is due (most solves stop at their second evaluation). A finite slope_hint (g' of
    // a nearby point: the UT centre's, for its sigma points) replaces the first dual evaluation: a chord step;
    // `first` (optional) is the evaluation at eta0 itself, computed by the caller, and `from` the iteration that
    // eta0 is (1: a caller's own chord step from a slope hint; the loop then goes on exactly as if it had taken
    // that step itself). The iterates stop on the same test |g| < SOLVE_STOP * tolerance, so the outcome is the
    // same root to within the tolerance.
    // `g_start` (optional) receives g(eta0), from the first evaluation.
    XS_HD void newton(T eta0, T& eta, T& res, T& slope, Seen<T>& seen, T slope_hint = T(NAN),
                      const Seen<T>* first = nullptr, int from = 0, T* g_start = nullptr) const {
        eta = eta0;
        res = T(NAN);
        slope = from > 0 ? slope_hint : T(1);
        const T stop = T(SOLVE_STOP) * tolerance;
        for (int it = from; it <= NEWTON_ITERATIONS; ++it) {
            T s;
            if (it == 0 && !xisfinite(slope_hint)) {
                residual(eta, s, seen);
                if (g_start) *g_start = seen.g;
            } else {
                if (it == from && first) seen = *first;
                else residual_value(eta, seen);
                if (g_start && it == from) *g_start = seen.g;
                if (!(xabs(seen.g) >= stop) || it == NEWTON_ITERATIONS) {
                    res = xabs(seen.g);
                    break;
                }
                if (it == 0) s = slope_hint;
                else residual(eta, s, seen);
            }
            const T g = seen.g;
            res = xabs(g);
            slope = s;
            if (it == NEWTON_ITERATIONS) break;
            bool usable = xisfinite(s) && xabs(s) > T(MIN_SLOPE);
            T step = usable ? g / s : g;
            if (!(xabs(g) >= stop) || !xisfinite(step)) break;
            eta = eta - step;
        }
    }

    // Step 2 on [t0, t1]; res = NaN where g does not change sign over it. `known` (optional): g at time `at`, from
    // an evaluation there (step 1's start). An end where the sensor's range of capture times fixes the sign of g
    // (a LiDAR seam branch: its times lie half a sweep before or after the window) is evaluated only where the other
    // end's g leaves a sign change possible (g at that end is finite where the other end's is: the same point).
    XS_HD void bracketed(T t0, T t1, T& eta, T& res, T& slope, Seen<T>& seen, T at = T(NAN),
                         T known = T(NAN)) const {
        eta = t0;
        res = T(NAN);
        slope = T(1);
        T lo, hi;
        sensor.time_range(lo, hi);
        const T margin = T(1e-9) * (xabs(t0) + xabs(t1) + (hi - lo));  // the rounding of g = t - tau, many times over
        const bool a_negative = t0 < lo - margin, b_positive = t1 > hi + margin;
        auto g_at = [&](T t) { return t == at && xisfinite(known) ? known : residual_value(t); };
        T ga = T(-1), gb = T(1);
        if (!a_negative) ga = g_at(t0);
        if (!b_positive) gb = g_at(t1);
        bool bracket = xisfinite(ga) && xisfinite(gb) && !(ga > T(0) && gb > T(0)) && !(ga < T(0) && gb < T(0));
        if (!bracket) return;
        if (a_negative) ga = g_at(t0);  // the values, for the secant start
        if (b_positive) gb = g_at(t1);
        bracket = xisfinite(ga) && xisfinite(gb) && !(ga > T(0) && gb > T(0)) && !(ga < T(0) && gb < T(0));
        if (!bracket) return;
        T neg = ga <= T(0) ? t0 : t1;
        T pos = ga <= T(0) ? t1 : t0;
        T secant = t0 - ga * (t1 - t0) / (gb - ga);
        T e = xisfinite(secant) ? xclamp(secant, t0, t1) : T(0.5) * (t0 + t1);
        T dx_old = xabs(t1 - t0);
        for (int it = 0; it <= BRACKET_ITERATIONS; ++it) {
            eta = e;
            T s;
            residual(e, s, seen);
            const T g = seen.g;
            res = xabs(g);
            slope = s;
            if (it == BRACKET_ITERATIONS) break;
            if (g < T(0)) neg = e;
            if (g > T(0)) pos = e;
            T lo = xmin(neg, pos), hi = xmax(neg, pos);
            T newton_step = e - g / s;
            bool take = xisfinite(newton_step) && newton_step > lo && newton_step < hi &&
                        T(2) * xabs(g) <= xabs(dx_old * s);
            T next = take ? newton_step : T(0.5) * (lo + hi);
            dx_old = xabs(next - e);
            if (!(xabs(g) >= T(SOLVE_STOP) * tolerance) || !(hi - lo > T(SOLVE_STOP) * tolerance) || !xisfinite(g))
                break;
            e = next;
        }
    }

    // The whole solve from eta0 (slope_hint, first: see newton); the image coordinates at the root come from the
    // last evaluation (no second motion or projection evaluation).
    XS_HD SolveResult<T> solve(T eta0, T slope_hint = T(NAN), const Seen<T>* first = nullptr, int from = 0) const {
        T eta, res, slope, g_start = T(NAN);
        Seen<T> seen;
        newton(eta0, eta, res, slope, seen, slope_hint, first, from, &g_start);
        T t0 = sensor.t_start, t1 = sensor.t_end;
        if (!(res < tolerance && eta >= t0 && eta <= t1) && !(monotone && res < tolerance)) {
            T eb, rb, sb;
            Seen<T> sbk;
            bracketed(t0, t1, eb, rb, sb, sbk, eta0, g_start);
            if (rb < tolerance) eta = eb, seen = sbk;
        }
        return result(eta, slope, seen);
    }

    // The solve's outcome at eta from the evaluation there (coordinates, validity, distance).
    XS_HD SolveResult<T> result(T eta, T slope, const Seen<T>& seen) const {
        SolveResult<T> out;
        out.c0 = seen.c0, out.c1 = seen.c1;
        bool valid = sensor.finish_projection(seen.at, out.c0, out.c1, seen.valid);
        T converged = xabs(eta - sensor.time_of(out.c0, out.c1));
        out.eta = eta;
        out.distance = norm(seen.at);
        out.valid = valid && converged < tolerance;
        out.slope = slope;
        out.at = seen.at;
        return out;
    }
};

}  // namespace xs
