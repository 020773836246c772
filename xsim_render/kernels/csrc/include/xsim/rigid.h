// Constant-velocity rigid motion over one capture (XSIM eq. 5-6; xsim_render/motion/rigid.py):
//     R(t) = Exp(w (t - t0)) R0,   p(t) = p0 + v (t - t0),   w and v in the WORLD frame,
// optionally followed by a rigid mount (a sensor on the ego): p += R(t) Mt, R = R(t) MR.
// A body is packed as BODY_FIELDS scalars (see BodyLayout); kind 0 is the world itself (identity).
#pragma once

#include "common.h"

namespace xs {

// Offsets of the packed body record (one row of a (F, BODY_FIELDS) array).
enum BodyLayout : int {
    BODY_KIND = 0,         // 0: world frame (identity at every time), 1: moving body
    BODY_R0 = 1,           // 9, row-major, body -> world at t0
    BODY_P0 = 10,          // 3, metres
    BODY_V = 13,           // 3, m/s, world frame
    BODY_W = 16,           // 3, rad/s, world frame
    BODY_T0 = 19,          // seconds (capture clock)
    BODY_HAS_MOUNT = 20,   // MOUNT_NONE / MOUNT_FULL / MOUNT_TRANSLATION
    BODY_MOUNT_R = 21,     // 9, child -> body
    BODY_MOUNT_T = 30,     // 3, child origin in the body frame
    BODY_FIELDS = 33,
};

// BODY_HAS_MOUNT: no mount, a mount rotation and translation, or a translation alone (a record whose mount
// rotation was folded into R0 by fold_mount; BODY_MOUNT_R is then not read).
constexpr double MOUNT_NONE = 0, MOUNT_FULL = 1, MOUNT_TRANSLATION = 2;

template <typename T> XS_HD bool mount_turns(const T* body) { return body[BODY_HAS_MOUNT] == T(MOUNT_FULL); }

// Coefficients of Rodrigues' formula Exp(w) = I + a K + b K^2 (K = hat(w), theta^2 = |w|^2):
// a = sin(theta)/theta, b = (1 - cos(theta))/theta^2. Below theta^2 = 0.04 their Taylor series to theta^12
// (exact to double rounding there, and free of the cancellation of 1 - cos in float32); above, the closed form.
// geometry/so3.py uses the closed form down to theta^2 = 1e-8 and 1 - theta^2/6, 1/2 - theta^2/24 below.
constexpr double SO3_SERIES_LIMIT = 0.04;  // theta^2 below which the series is used

template <typename S> XS_HD void so3_series(S x, S& a, S& b) {
    a = S(1.0) + x * (S(-1.0 / 6) + x * (S(1.0 / 120) + x * (S(-1.0 / 5040) + x * (S(1.0 / 362880) +
        x * (S(-1.0 / 39916800) + x * S(1.0 / 6227020800.0))))));
    b = S(0.5) + x * (S(-1.0 / 24) + x * (S(1.0 / 720) + x * (S(-1.0 / 40320) + x * (S(1.0 / 3628800) +
        x * (S(-1.0 / 479001600) + x * S(1.0 / 87178291200.0))))));
}

template <typename S> XS_HD void so3_coefficients(S theta2, S& a, S& b) {
    if (theta2 < S(SO3_SERIES_LIMIT)) {
        so3_series(theta2, a, b);
    } else {
        S theta = xsqrt(theta2);
        a = xsin(theta) / theta;
        b = (S(1) - xcos(theta)) / theta2;
    }
}

// Exp(w) as a row-major matrix (Rodrigues' formula).
template <typename T> XS_HD void so3_exp(Vec3<T> w, T* r) {
    T a, b;
    so3_coefficients(dot(w, w), a, b);
    // I + a K + b K^2, K = hat(w), K^2 = w w^T - theta2 I
    r[0] = T(1) + b * (-w.z * w.z - w.y * w.y);
    r[1] = -a * w.z + b * (w.x * w.y);
    r[2] = a * w.y + b * (w.x * w.z);
    r[3] = a * w.z + b * (w.x * w.y);
    r[4] = T(1) + b * (-w.z * w.z - w.x * w.x);
    r[5] = -a * w.x + b * (w.y * w.z);
    r[6] = -a * w.y + b * (w.x * w.z);
    r[7] = a * w.x + b * (w.y * w.z);
    r[8] = T(1) + b * (-w.y * w.y - w.x * w.x);
}

// v + a (w x v) + b (w x (w x v)): Exp(w) v for a, b = so3_coefficients(|w|^2) (one pair for many vectors).
template <typename T> XS_HD_INLINE Vec3<T> so3_turn(Vec3<T> w, T a, T b, Vec3<T> v) {
    Vec3<T> wxv = cross(w, v);
    return v + a * wxv + b * cross(w, wxv);
}

// Exp(w) v without forming the matrix (geometry/so3.py rotate).
template <typename T> XS_HD Vec3<T> so3_rotate(Vec3<T> w, Vec3<T> v) {
    T a, b;
    so3_coefficients(dot(w, w), a, b);
    return so3_turn(w, a, b, v);
}

// Pose (R body->world, p) of a packed body at time t (identity for the world).
template <typename T> XS_HD void body_pose_at(const T* body, T t, T* rot, Vec3<T>& pos) {
    if (body[BODY_KIND] == T(0)) {
        for (int i = 0; i < 9; ++i) rot[i] = (i % 4 == 0) ? T(1) : T(0);
        pos = make_vec3(T(0), T(0), T(0));
        return;
    }
    T dt = t - body[BODY_T0];
    T e[9];
    Vec3<T> w = load3(body + BODY_W);
    so3_exp(dt * w, e);
    T r[9];
    matmul(e, body + BODY_R0, r);
    pos = load3(body + BODY_P0) + dt * load3(body + BODY_V);
    if (body[BODY_HAS_MOUNT] != T(0)) pos = pos + matvec(r, load3(body + BODY_MOUNT_T));
    if (mount_turns(body)) {
        matmul(r, body + BODY_MOUNT_R, rot);
    } else {
        for (int i = 0; i < 9; ++i) rot[i] = r[i];
    }
}

// The same motion with its mount rotation folded into R0 (R0 MR; translation MR^T Mt, BODY_HAS_MOUNT =
// MOUNT_TRANSLATION): one rotation fewer per transform, the same poses up to rounding. `out`: BODY_FIELDS values.
template <typename T> XS_HD void fold_mount(const T* body, T* out) {
    for (int i = 0; i < BODY_FIELDS; ++i) out[i] = body[i];
    if (!mount_turns(body)) return;
    matmul(body + BODY_R0, body + BODY_MOUNT_R, out + BODY_R0);
    const Vec3<T> t = matTvec(body + BODY_MOUNT_R, load3(body + BODY_MOUNT_T));
    out[BODY_MOUNT_T] = t.x, out[BODY_MOUNT_T + 1] = t.y, out[BODY_MOUNT_T + 2] = t.z;
    for (int i = 0; i < 9; ++i) out[BODY_MOUNT_R + i] = (i % 4 == 0) ? T(1) : T(0);
    out[BODY_HAS_MOUNT] = T(MOUNT_TRANSLATION);
}

// A world ray (o, d) expressed in the body frame at time t: o_b = R^T (o - p), d_b = R^T d.
template <typename T>
XS_HD void ray_in_body(const T* body, T t, Vec3<T> o, Vec3<T> d, Vec3<T>& o_body, Vec3<T>& d_body) {
    if (body[BODY_KIND] == T(0)) {
        o_body = o;
        d_body = d;
        return;
    }
    T rot[9];
    Vec3<T> pos;
    body_pose_at(body, t, rot, pos);
    o_body = matTvec(rot, o - pos);
    d_body = matTvec(rot, d);
}

// Body-frame point -> world at time t (RigidMotion.body_to_world); S: plain or dual scalars (d/dt).
template <typename T, typename S> XS_HD Vec3<S> body_to_world(const T* body, Vec3<S> x, S t) {
    if (body[BODY_KIND] == T(0)) return x;
    S dt = t - S(body[BODY_T0]);
    Vec3<S> y = x;
    if (mount_turns(body)) y = matvec(body + BODY_MOUNT_R, y);
    if (body[BODY_HAS_MOUNT] != T(0)) y = y + cast3<S>(load3(body + BODY_MOUNT_T));
    y = matvec(body + BODY_R0, y);
    return so3_rotate(dt * cast3<S>(load3(body + BODY_W)), y) + cast3<S>(load3(body + BODY_P0)) +
           dt * cast3<S>(load3(body + BODY_V));
}

// World point -> body frame at time t (RigidMotion.world_to_body); S: plain or dual scalars.
template <typename T, typename S> XS_HD Vec3<S> world_to_body(const T* body, Vec3<S> x, S t) {
    if (body[BODY_KIND] == T(0)) return x;
    S dt = t - S(body[BODY_T0]);
    Vec3<S> y = so3_rotate(-dt * cast3<S>(load3(body + BODY_W)),
                           x - cast3<S>(load3(body + BODY_P0)) - dt * cast3<S>(load3(body + BODY_V)));
    y = matTvec(body + BODY_R0, y);
    if (body[BODY_HAS_MOUNT] != T(0)) y = y - cast3<S>(load3(body + BODY_MOUNT_T));
    if (mount_turns(body)) y = matTvec(body + BODY_MOUNT_R, y);
    return y;
}

// Rotation of the vectors (vx, vy, vz) of L lanes by Exp(c_l w) (so3_rotate with the series coefficients; the
// caller checked |c_l w|^2 < SO3_SERIES_LIMIT on every lane). Branch-free: the host vectorises it.
template <int L, typename T>
XS_HD void so3_rotate_lanes(Vec3<T> w, const T* c, T* vx, T* vy, T* vz) {
    XS_SIMD
    for (int l = 0; l < L; ++l) {
        const Vec3<T> wl = c[l] * w, v = make_vec3(vx[l], vy[l], vz[l]);
        T a, b;
        so3_series(dot(wl, wl), a, b);
        const Vec3<T> wxv = cross(wl, v);
        const Vec3<T> r = v + a * wxv + b * cross(wl, wxv);
        vx[l] = r.x, vy[l] = r.y, vz[l] = r.z;
    }
}

// point_in_sensor of L points (x, y, z: body frame in, sensor frame out), each at its own time t_l, in lanes the
// host vectorises. Every rotation angle must lie in the series branch of so3_coefficients (|w| |t - t0| < 0.2 rad:
// true for a sensor or an actor over a sweep); returns false, having written nothing, where one does not.
template <int L, typename T>
XS_HD bool points_in_sensor_lanes(const T* body, const T* sensor, const T* t, T* x, T* y, T* z) {
    const bool moving_body = body && body[BODY_KIND] != T(0), moving_sensor = sensor[BODY_KIND] != T(0);
    T dt_b[L], dt_s[L];
    T worst = T(0);
    const T wb2 = moving_body ? dot(load3(body + BODY_W), load3(body + BODY_W)) : T(0);
    const T ws2 = moving_sensor ? dot(load3(sensor + BODY_W), load3(sensor + BODY_W)) : T(0);
    for (int l = 0; l < L; ++l) {
        dt_b[l] = moving_body ? t[l] - body[BODY_T0] : T(0);
        dt_s[l] = moving_sensor ? -(t[l] - sensor[BODY_T0]) : T(0);
        worst = xmax(worst, xmax(dt_b[l] * dt_b[l] * wb2, dt_s[l] * dt_s[l] * ws2));
    }
    if (!(worst < T(SO3_SERIES_LIMIT))) return false;
    if (moving_body) {  // body_to_world
        T r0[9], mr[9];
        for (int k = 0; k < 9; ++k) r0[k] = body[BODY_R0 + k], mr[k] = body[BODY_MOUNT_R + k];
        const Vec3<T> mt = load3(body + BODY_MOUNT_T), p0 = load3(body + BODY_P0), v = load3(body + BODY_V);
        if (mount_turns(body)) {
            XS_SIMD
            for (int l = 0; l < L; ++l) {
                const Vec3<T> q = matvec(mr, make_vec3(x[l], y[l], z[l])) + mt;
                x[l] = q.x, y[l] = q.y, z[l] = q.z;
            }
        } else if (body[BODY_HAS_MOUNT] != T(0)) {
            XS_SIMD
            for (int l = 0; l < L; ++l) x[l] += mt.x, y[l] += mt.y, z[l] += mt.z;
        }
        XS_SIMD
        for (int l = 0; l < L; ++l) {
            const Vec3<T> q = matvec(r0, make_vec3(x[l], y[l], z[l]));
            x[l] = q.x, y[l] = q.y, z[l] = q.z;
        }
        so3_rotate_lanes<L>(load3(body + BODY_W), dt_b, x, y, z);
        XS_SIMD
        for (int l = 0; l < L; ++l) {
            const Vec3<T> q = make_vec3(x[l], y[l], z[l]) + p0 + dt_b[l] * v;
            x[l] = q.x, y[l] = q.y, z[l] = q.z;
        }
    }
    if (moving_sensor) {  // world_to_body of the sensor
        T r0[9], mr[9];
        for (int k = 0; k < 9; ++k) r0[k] = sensor[BODY_R0 + k], mr[k] = sensor[BODY_MOUNT_R + k];
        const Vec3<T> mt = load3(sensor + BODY_MOUNT_T), p0 = load3(sensor + BODY_P0), v = load3(sensor + BODY_V);
        XS_SIMD
        for (int l = 0; l < L; ++l) {
            const Vec3<T> q = make_vec3(x[l], y[l], z[l]) - p0 + dt_s[l] * v;  // x - p0 - (t - t0) v
            x[l] = q.x, y[l] = q.y, z[l] = q.z;
        }
        so3_rotate_lanes<L>(load3(sensor + BODY_W), dt_s, x, y, z);
        XS_SIMD
        for (int l = 0; l < L; ++l) {
            const Vec3<T> q = matTvec(r0, make_vec3(x[l], y[l], z[l]));
            x[l] = q.x, y[l] = q.y, z[l] = q.z;
        }
        if (mount_turns(sensor)) {
            XS_SIMD
            for (int l = 0; l < L; ++l) {
                const Vec3<T> q = matTvec(mr, make_vec3(x[l], y[l], z[l]) - mt);
                x[l] = q.x, y[l] = q.y, z[l] = q.z;
            }
        } else if (sensor[BODY_HAS_MOUNT] != T(0)) {
            XS_SIMD
            for (int l = 0; l < L; ++l) x[l] -= mt.x, y[l] -= mt.y, z[l] -= mt.z;
        }
    }
    return true;
}

// Exp(w) v1 and Exp(w) v2 (so3_rotate of two vectors by one rotation: the coefficients once).
template <typename T> XS_HD void so3_rotate2(Vec3<T> w, Vec3<T> v1, Vec3<T> v2, Vec3<T>& r1, Vec3<T>& r2) {
    T a, b;
    so3_coefficients(dot(w, w), a, b);
    r1 = so3_turn(w, a, b, v1);
    r2 = so3_turn(w, a, b, v2);
}

// point_in_sensor and its time derivative (m, m/s) in closed form, for the Newton slope of the rolling-shutter
// solve: d/dt Exp(dt w) y = w x Exp(dt w) y, so a body point moves in the world at
// w_b x (Exp(dt w_b) R0 y) + v_b, and with z = Exp(-dt w_s) u, u = world - p0 - dt v_s (the sensor's
// world_to_body before its fixed rotations), z' = -w_s x z + Exp(-dt w_s) u'. The same value as point_in_sensor
// (the same operations), the derivative as its dual-number evaluation to rounding, at about half the cost.
template <typename T>
XS_HD void point_in_sensor_moving(const T* body, const T* sensor, Vec3<T> x, T t, Vec3<T>& at, Vec3<T>& rate) {
    Vec3<T> world = x, world_rate = make_vec3(T(0), T(0), T(0));
    if (body && body[BODY_KIND] != T(0)) {
        const T dt = t - body[BODY_T0];
        Vec3<T> y = x;
        if (mount_turns(body)) y = matvec(body + BODY_MOUNT_R, y);
        if (body[BODY_HAS_MOUNT] != T(0)) y = y + load3(body + BODY_MOUNT_T);
        y = matvec(body + BODY_R0, y);
        const Vec3<T> w = load3(body + BODY_W);
        const Vec3<T> turned = so3_rotate(dt * w, y);
        world = turned + load3(body + BODY_P0) + dt * load3(body + BODY_V);
        world_rate = cross(w, turned) + load3(body + BODY_V);
    }
    if (sensor[BODY_KIND] == T(0)) {
        at = world, rate = world_rate;
        return;
    }
    const T dt = t - sensor[BODY_T0];
    const Vec3<T> w = load3(sensor + BODY_W), v = load3(sensor + BODY_V);
    Vec3<T> z, z_rate;
    so3_rotate2(-dt * w, world - load3(sensor + BODY_P0) - dt * v, world_rate - v, z, z_rate);
    z_rate = z_rate - cross(w, z);
    at = matTvec(sensor + BODY_R0, z);
    rate = matTvec(sensor + BODY_R0, z_rate);
    if (sensor[BODY_HAS_MOUNT] != T(0)) at = at - load3(sensor + BODY_MOUNT_T);
    if (mount_turns(sensor)) {
        at = matTvec(sensor + BODY_MOUNT_R, at);
        rate = matTvec(sensor + BODY_MOUNT_R, rate);
    }
}

// Body-frame directions -> sensor frame at time t, the linear part of point_in_sensor (a point x + d of the body is
// seen at point_in_sensor(x) + the turned d): the columns a of a 3x3 matrix m (row-major) scaled by f[a], each
// rotation's coefficients computed once (the UT's sigma offsets sqrt(3) s_a R[:, a]).
template <typename T>
XS_HD void columns_in_sensor(const T* body, const T* sensor, const T* m, const T* f, T t, Vec3<T>* out) {
    for (int a = 0; a < 3; ++a) out[a] = make_vec3(f[a] * m[a], f[a] * m[3 + a], f[a] * m[6 + a]);
    if (body && body[BODY_KIND] != T(0)) {
        const Vec3<T> w = (t - body[BODY_T0]) * load3(body + BODY_W);
        T ca, cb;
        so3_coefficients(dot(w, w), ca, cb);
        for (int a = 0; a < 3; ++a) {
            Vec3<T> y = out[a];
            if (mount_turns(body)) y = matvec(body + BODY_MOUNT_R, y);
            out[a] = so3_turn(w, ca, cb, matvec(body + BODY_R0, y));
        }
    }
    if (sensor[BODY_KIND] != T(0)) {
        const Vec3<T> w = -(t - sensor[BODY_T0]) * load3(sensor + BODY_W);
        T ca, cb;
        so3_coefficients(dot(w, w), ca, cb);
        for (int a = 0; a < 3; ++a) {
            out[a] = matTvec(sensor + BODY_R0, so3_turn(w, ca, cb, out[a]));
            if (mount_turns(sensor)) out[a] = matTvec(sensor + BODY_MOUNT_R, out[a]);
        }
    }
}

// Sensor-frame position at time t of a point fixed in `body` (world if body is null): point_in_sensor.
template <typename T, typename S>
XS_HD Vec3<S> point_in_sensor(const T* body, const T* sensor, Vec3<S> x, S t) {
    Vec3<S> world = body ? body_to_world(body, x, t) : x;
    return world_to_body(sensor, world, t);
}

}  // namespace xs
