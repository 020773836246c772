// Projection + tiling of one Gaussian for the CPU and CUDA kernels (xsim_render/projection/footprint.py and
// tiling/): its footprints (UT rectangles on the LiDAR phase branches per XSIM Algorithm 2, or a bounding cone
// where the UT cannot represent it) and the tiles they cover. All in double precision.
//
// Beyond the reference: Gaussians that no ray of the capture can meet are skipped (`unreachable`: a sphere
// holding the alpha >= 1/255 region, grown by the drift bound over the capture, outside the camera's edge
// planes / image cone or the LiDAR's beam fan), and every rectangle is widened by `margin` (float32 rounding of
// the reference), so the tile lists are the reference's or a superset of it, less pairs without a live hit.
#pragma once

#include "camera_models.h"
#include "footprint.h"
#include "lidar_model.h"
#include "tiling.h"
#include "unscented_bound.h"

namespace xs {

enum SensorKind : int { SENSOR_CAMERA = 0, SENSOR_LIDAR = 1 };

// unscented_static's rectangle stands for unscented_transform's where its slack widens it by at most this many pads
// (one firing column / 2 mrad) per side: the extra tiles stay rare (street LiDAR: 0.25 pads +0.4 % pairs, 0.5 +0.6 %
// and 1 % fewer projection instructions, 1.0 +0.9 % and 2 % fewer, but up to 4 % more pairs on sparse test scenes)
inline constexpr double UT_SLACK_MAX = 0.5;

// Everything the per-Gaussian projection reads (host or device pointers, by where it runs).
struct ProjectParams {
    int sensor = SENSOR_CAMERA;
    CameraModel<double> camera;
    LidarModel<double> lidar;
    const double* elevations_sorted = nullptr;  // (beams,) ascending (LiDAR)
    double fan_sin[2] = {NAN, NAN};             // sines of the lowest and highest beam's elevation (NaN: unknown)
    bool phase_modeling = true;
    // Gaussians (N) in their body's frame: mean (N,3), rotation (N,3,3) row-major, std devs (N,3), opacity, body
    int64_t n = 0;
    const double* means = nullptr;
    const double* rotations = nullptr;
    const double* scales = nullptr;
    const double* sigma = nullptr;
    // or the same in float32 (a float32 scene read in place, widened per Gaussian; used where means32 is set)
    const float* means32 = nullptr;
    const float* rotations32 = nullptr;
    const float* scales32 = nullptr;
    const float* sigma32 = nullptr;
    const int64_t* frame = nullptr;
    int64_t n_bodies = 0;
    const double* bodies = nullptr;         // (F, BODY_FIELDS)
    const double* sensor_motion = nullptr;  // (BODY_FIELDS) the sensor frame's motion
    // tiles: count, tiles across, and the cone of each tile's sensor-frame ray directions
    int64_t num_tiles = 0;
    int tiles_x = 0;
    const double* tile_axis = nullptr;  // (T,3)
    const double* tile_half = nullptr;  // (T,)
    const uint8_t* tile_has_rays = nullptr;
    double image_half = 3.2;            // half-angle of a cone around +z holding every camera ray (culling)
    double margin[2] = {0.0, 0.0};      // added to every rectangle's half-extent
    bool cull = true;                   // skip Gaussians that no ray can meet
    double tolerance = 1e-9;            // time-solve tolerance (s): the reference's, 1e-9 (float64) / 1e-5 (float32)
    bool seam_bound = false;            // LiDAR: skip the far seam branch where far_branch_clear proves it idle
    bool centre_bound = false;          // LiDAR: the time-solve shortcuts that predicted_root proves
    bool ut_bound = false;              // LiDAR: unscented_static's widened rectangles where they cost little
};

struct GaussianFootprints {
    double lo[3][2], hi[3][2];
    int8_t branch[3];
    int n_rect = 0;
    bool cone = false;
    bool culled = false;
    bool far_skipped = false;  // the far seam branch was not solved (far_branch_clear)
    double axis[3];
    double half = 0;
};

XS_HD const double* body_of(const ProjectParams& in, int64_t g) {
    const double* b = in.bodies + in.frame[g] * BODY_FIELDS;
    return b[BODY_KIND] != 0.0 ? b : nullptr;
}

// Conservative test: no ray of the capture can meet the sphere (centre c at mid-capture, radius r).
XS_HD bool unreachable(const ProjectParams& in, Vec3<double> c, double r) {
    double dist = norm(c);
    if (dist <= r) return false;
    if (in.sensor == SENSOR_LIDAR) {
        const double* e = in.elevations_sorted;
        // the centre's own elevation within the fan (sines compared, with room for rounding): reachable
        const double sz = c.z / dist;
        if (sz >= in.fan_sin[0] + 1e-12 && sz <= in.fan_sin[1] - 1e-12) return false;
        double el = xasin(sz), rho = xasin(r / dist);
        return el - rho > e[in.lidar.beams - 1] + 1e-6 || el + rho < e[0] - 1e-6;
    }
    const CameraModel<double>& cam = in.camera;
    if (cam.kind == CAMERA_PINHOLE) {  // the four image-edge planes through the optical centre
        const double planes[4][3] = {{cam.fx, 0, cam.cx},
                                     {-cam.fx, 0, cam.width - cam.cx},
                                     {0, cam.fy, cam.cy},
                                     {0, -cam.fy, cam.height - cam.cy}};
        for (const auto& p : planes) {
            Vec3<double> nrm = make_vec3(p[0], p[1], p[2]);
            if (dot(nrm, c) < -r * norm(nrm)) return true;
        }
        return false;
    }
    double off = angle_between(make_vec3(0.0, 0.0, 1.0), c);
    return off - xasin(r / dist) > in.image_half + 1e-6;
}

// Bounds over a horizon H around t_mid, in the sensor frame: a point fixed in the world moves as
// x' = -w' x x - v' (w' = R^T w, v' = R^T p': the sensor's angular velocity and origin velocity in its own frame),
// a point of an actor with at most its actor's speed u on top. Its phase (azimuth about the spin axis z) changes at
//     phi' = (x x x')_z / rxy^2 = -w'_z + x_z (x_x w'_x + x_y w'_y) / rxy^2 - (x x v')_z / rxy^2 (+ actor part),
// where w'_z = w_par is constant (R turns about w) and |w'_xy| = w_perp. The moment m = (x x v')_z changes only
// through w_perp, the mount lever and the actor: m' = -(w' x (x x v'))_z + (x x R^T p'')_z + (R^T u x v')_z
// (the translation drops out, v' x v' = 0, and a turn about the spin axis turns x and v' together), and a point
// within rho of the centre c has |m - m_c| <= rho |v'|. So for points within rho of the centre (c_mid at t_mid)
// over the horizon, with |x| <= dist, |x_z| <= height, rxy >= the least distance to the spin axis and |v'| <= v:
//     |phi'| <= w_par + (w_perp height + u) / rxy
//               + min(v, (|m_c(t_mid)| + rho v + H (w_perp dist v + dist |w|^2 lever + u v)) / rxy) / rxy.
// The moment term makes the bound directional: a point straight ahead or behind a car driving straight (the
// LiDAR's seam) hardly turns in phase, whatever the speed. phase_rate_bound returns false where no bound holds
// (the points may come near the spin axis); rxy: the least distance to it. SensorRates is the sensor's share of
// those bounds, the same for every Gaussian of a capture (sensor_rates).
struct SensorRates {
    double w_par = 0, w_perp = 0, w = 0, v = 0;  // rad/s, rad/s, |w| rad/s, a bound on |v'| (m/s)
    double lever = 0;                            // |mount translation| (m)
    Vec3<double> v_mid = {0, 0, 0};              // v' at t_mid (m/s, sensor frame)
};

XS_HD SensorRates sensor_rates(const ProjectParams& in, const double* motion) {
    SensorRates r;
    Vec3<double> w = load3(motion + BODY_W);
    const double w_s = norm(w);
    r.lever = motion[BODY_HAS_MOUNT] != 0.0 ? norm(load3(motion + BODY_MOUNT_T)) : 0.0;
    if (motion[BODY_KIND] != 0.0) {  // the pose at t_mid
        const double tm = 0.5 * (in.lidar.t_start + in.lidar.t_end);
        double rot[9];
        Vec3<double> pos;
        body_pose_at(motion, tm, rot, pos);
        r.w_par = xabs(dot(w, make_vec3(rot[2], rot[5], rot[8])));  // constant: the spin axis turns about w
        // p' = v + w x (R_ego(t) Mt), seen in the sensor frame
        const Vec3<double> lever = pos - load3(motion + BODY_P0) - (tm - motion[BODY_T0]) * load3(motion + BODY_V);
        r.v_mid = matTvec(rot, load3(motion + BODY_V) + cross(w, lever));
    }
    r.w_perp = xsqrt(xmax(w_s * w_s - r.w_par * r.w_par, 0.0)) + 1e-12 * w_s;
    r.w = w_s * (1 + 1e-12);
    r.v = norm(load3(motion + BODY_V)) + w_s * r.lever;
    return r;
}

// The sensor's pose (rotation sensor -> world, row-major, and position) at the capture's start, middle and end: the
// same for every Gaussian, so each Gaussian's centre there (point_in_sensor) costs one affine map.
struct SensorPoses {
    double rot[3][9];
    Vec3<double> pos[3];
};

XS_HD SensorPoses sensor_poses(const double* motion, double t0, double t1) {
    SensorPoses s;
    const double times[3] = {t0, 0.5 * (t0 + t1), t1};
    for (int i = 0; i < 3; ++i) body_pose_at(motion, times[i], s.rot[i], s.pos[i]);
    return s;
}

// point_in_sensor at instant i of SensorPoses (time t) of a point fixed in `body` (world if null).
XS_HD Vec3<double> point_at_pose(const SensorPoses& s, int i, const double* body, Vec3<double> x, double t) {
    const Vec3<double> world = body ? body_to_world(body, x, t) : x;
    return matTvec(s.rot[i], world - s.pos[i]);
}

XS_HD bool phase_rate_bound(const SensorRates& sensor, const double* body, Vec3<double> mean, double rho,
                            Vec3<double> c_mid, double H, double& omega, double& rxy, double* elevation_rate = nullptr) {
    const double w_par = sensor.w_par, w_perp = sensor.w_perp;
    double u = 0;
    if (is_body(body)) {
        double lever_b = body[BODY_HAS_MOUNT] != 0.0 ? norm(load3(body + BODY_MOUNT_T)) : 0.0;
        u = norm(load3(body + BODY_V)) + norm(load3(body + BODY_W)) * (norm(mean) + rho + lever_b);
    }
    u = u * (1 + 1e-9);
    const double v = sensor.v * (1 + 1e-9) + 1e-12;
    const double v_rel = v + u;
    const double dist = norm(c_mid) + rho + v_rel * H;  // every point, whole horizon
    const double rc = xsqrt(c_mid.x * c_mid.x + c_mid.y * c_mid.y);
    rxy = rc - rho - (v_rel + w_perp * dist) * H;
    if (!(rxy > 1e-6 + 1e-6 * dist)) return false;
    const Vec3<double> vm = sensor.v_mid;
    const double moment = xabs(c_mid.x * vm.y - c_mid.y * vm.x) * (1 + 1e-9) + 1e-12 * rc * v + rho * v +
                          H * (w_perp * dist * v + dist * sensor.w * sensor.w * sensor.lever + u * v);
    const double height = xmin(dist, xabs(c_mid.z) + rho + (v_rel + sensor.w * dist) * H);  // |x_z|
    omega = (w_par + (w_perp * height + u + xmin(v, moment / rxy)) / rxy) * (1 + 1e-9) + 1e-12;
    if (elevation_rate) {
        // elevation e = atan2(x_z, rxy): |e'| <= (rxy |x_z'| + |x_z| |x'|) / |x|^2 with |x'| <= |w| dist + v + u and
        // |x_z'| <= w_perp dist + |v'_z| + u, where v'_z changes at most w_perp v + |w|^2 lever per second
        // (d/dt v' = R^T p'' - w' x v', |p''| <= |w|^2 lever); and |e'| <= |x'| / |x| always
        const double speed = sensor.w * dist + v_rel;
        const double z_rate = w_perp * dist + xabs(vm.z) + H * (w_perp * v + sensor.w * sensor.w * sensor.lever) + u;
        *elevation_rate = xmin(speed / rxy, z_rate / rxy + height * speed / (rxy * rxy)) * (1 + 1e-9) + 1e-12;
    }
    return true;
}

// Newton on g with g' within [1 - q, 1 + q] over a horizon holding the root and every iterate contracts by
// 2q / (1 - q) per step; true where q < 0.2 and e0 (the start's distance to the root) shrinks below half the
// tolerance within the reference's iterations (the reference's `converged` needs |g| < tolerance).
XS_HD bool newton_contracts(double q, double e0, double tolerance) {
    if (!(q < 0.2)) return false;
    const double factor = 2 * q / (1 - q);
    double err = e0;
    for (int i = 0; i < NEWTON_ITERATIONS; ++i) err *= factor;
    return (1 + q) * err < 0.5 * tolerance;
}

// Phase modeling solves every Gaussian on both seam branches (start and end of the sweep), but the far one
// (the branch on which the Gaussian's phase lies beyond the sweep) only matters where the Gaussian can reach
// the seam. True where it provably (a) is valid: every sigma point's Newton solve from the reference's start
// converges (g' = 1 - T/(2 pi) dphase/deta stays within [1 - q, 1 + q], no branch cut is crossed) and (b) gives
// a rectangle outside the sweep's phase range; the far UT is then skipped with the reference's outcome (valid,
// no footprint). `near` is the UT on the near branch (left: branch 0, else 2 pi), c_mid the centre at t_mid.
// The horizon H around t_mid holds every Newton iterate (phase_rate_bound); sigma points lie within rho of the
// centre, and two of them differ by at most asin(rho / rxy) in phase.
XS_HD bool far_branch_clear(const ProjectParams& in, const SensorRates& rates, const double* body, Vec3<double> mean,
                            double rho, Vec3<double> c_mid, const UnscentedResult<double>& near, double k,
                            bool near_left) {
    if (!near.valid) return false;
    const LidarModel<double>& lm = in.lidar;
    const double T = lm.duration, t0 = lm.t_start, t1 = lm.t_end, tm = 0.5 * (t0 + t1);
    if (!(T > 0) || !(t1 >= t0)) return false;
    // far root: phase in [2 pi, 3 pi) (right) or [-pi, 0) (left); Newton starts at t1 (right) / t0 (left)
    const double root_lo = near_left ? t0 + T : t0 - 0.5 * T, root_hi = near_left ? t0 + 1.5 * T : t0;
    const double start = near_left ? t1 : t0;
    const double e0 = xmax(xabs(root_lo - start), xabs(root_hi - start));
    const double H = xmax(xmax(xabs(root_lo - e0 - tm), xabs(root_hi + e0 - tm)), xabs(near.centre_eta - tm));
    double omega, rxy;
    if (!phase_rate_bound(rates, body, mean, rho, c_mid, H, omega, rxy)) return false;
    const double q = omega * T / (2 * PI);
    if (!newton_contracts(q, e0, in.tolerance)) return false;
    const double spread = asin_upper(rho / (rxy + rho));  // two sigma points at one instant
    const double c0 = near.centre[0];
    // no branch cut (phase pi mod 2 pi) within reach of any sigma point over the horizon
    const double reach = spread + omega * (H + xabs(near.centre_eta - tm)) + 1e-9;
    const double cut_lo = near_left ? -PI : PI, cut_hi = near_left ? PI : 3 * PI;
    if (!(c0 - reach > cut_lo && c0 + reach < cut_hi)) return false;
    // the far rectangle: every sigma phase d_i = c_i - c_0 within spread' of the far centre c_0 (its root time
    // differs from the centre's by T d_i / 2 pi, hence spread / (1 - q)), c_0 within delta of c0 -+ 2 pi; the
    // UT's variance 2 (c_0 - m)^2 + sum_i (c_i - m)^2 / 6 (m the mean of the six) equals dbar^2 + sum_i d_i^2 / 6
    // <= 2 spread'^2, so the half-extent is at most 1.25 k sqrt(2) spread' + pad (solves stop within the
    // tolerance of their roots: a phase error below omega tolerance, counted twice)
    const double delta = omega * T / (1 - q), spread_far = spread / (1 - q);
    const double extent =
        EXTENT_SAFETY * k * xsqrt(2.0) * spread_far * (1 + 1e-9) + 2 * PI / lm.columns + in.margin[0];
    const double clearance = delta + spread_far + extent + 4 * omega * in.tolerance + 1e-7;
    return near_left ? c0 - clearance > 0 : (2 * PI - c0) - clearance > 0;
}

// Start for the centre's time solve on `branch` that reaches the same root as the reference's start `start`
// (NaN where that is not proven) for every point within rho of the centre (c_mid at t_mid). Every root on the
// branch lies in [tau(branch - pi), tau(branch + pi)] (width T, holding `start`); where the points' phases
// provably stay clear of the branch's cut and g' within [1 - q, 1 + q] over that range widened by T
// (phase_rate_bound; two points differ by at most asin(rho / rxy) at one instant), each point's g has exactly one
// root there and Newton (or a chord step with another point's g' first) from any start in the range converges
// to it within the reference's iterations: from the prediction tau(phase at t_mid) the centre takes one or two
// steps instead of three or four from the sweep's end, and its sigma points may start from its root (rho > 0).
// `proof` (optional) receives the bounds behind a finite start (unscented_bound.h MotionProof).
XS_HD double predicted_root(const ProjectParams& in, const SensorRates& rates, const double* body, Vec3<double> mean,
                            Vec3<double> c_mid, double branch, double rho, MotionProof* proof = nullptr) {
    const LidarModel<double>& lm = in.lidar;
    const double T = lm.duration, t0 = lm.t_start, t1 = lm.t_end, tm = 0.5 * (t0 + t1);
    if (!(T > 0) || !(t1 >= t0)) return NAN;
    const double root_lo = lm.time_of(branch - PI), root_hi = lm.time_of(branch + PI), e0 = root_hi - root_lo;
    const double H = xmax(xabs(root_lo - e0 - tm), xabs(root_hi + e0 - tm));
    double omega, rxy, elevation_rate;
    if (!phase_rate_bound(rates, body, mean, rho, c_mid, H, omega, rxy, &elevation_rate)) return NAN;
    if (!newton_contracts(omega * T / (2 * PI), e0, in.tolerance)) return NAN;
    const double spread = rho > 0 ? asin_upper(rho / (rxy + rho)) : 0.0;
    const double phase = lm.phase_of(c_mid, branch), reach = spread + omega * H + 1e-9;
    if (!(phase - reach > branch - PI && phase + reach < branch + PI)) return NAN;
    if (proof) proof->omega = omega, proof->elevation_rate = elevation_rate;
    return xclamp(lm.time_of(phase), root_lo, root_hi);
}

XS_HD void add_rect(GaussianFootprints& fp, const double* lo, const double* hi, int branch) {
    int i = fp.n_rect++;
    fp.lo[i][0] = lo[0], fp.lo[i][1] = lo[1], fp.hi[i][0] = hi[0], fp.hi[i][1] = hi[1];
    fp.branch[i] = static_cast<int8_t>(branch);
}

// The footprints of Gaussian g; `rates` and `poses` (optional) are sensor_rates(in, in.sensor_motion) and
// sensor_poses(in.sensor_motion, t_start, t_end), computed once per capture.
XS_HD GaussianFootprints footprints_of(const ProjectParams& in, int64_t g, const SensorRates* rates_given = nullptr,
                                       const SensorPoses* poses_given = nullptr) {
    GaussianFootprints fp;
    double rot_w[9], scale_w[3];  // widened from float32
    const double* rot = in.rotations ? in.rotations + 9 * g : rot_w;
    const double* scale = in.scales ? in.scales + 3 * g : scale_w;
    Vec3<double> mean;
    double sigma;
    if (in.means32) {
        for (int i = 0; i < 9; ++i) rot_w[i] = double(in.rotations32[9 * g + i]);
        for (int i = 0; i < 3; ++i) scale_w[i] = double(in.scales32[3 * g + i]);
        mean = make_vec3(double(in.means32[3 * g]), double(in.means32[3 * g + 1]), double(in.means32[3 * g + 2]));
        sigma = double(in.sigma32[g]);
    } else {
        mean = load3(in.means + 3 * g);
        sigma = in.sigma[g];
    }
    double k = opacity_extent(sigma);
    if (!(k > 0)) return fp;
    const double* body = body_of(in, g);
    const double* motion = in.sensor_motion;
    double radius = k * xmax(scale[0], xmax(scale[1], scale[2]));
    const bool lidar = in.sensor == SENSOR_LIDAR;
    const double t0 = lidar ? in.lidar.t_start : in.camera.t_start;
    const double t1 = lidar ? in.lidar.t_end : in.camera.t_end;
    const double tm = 0.5 * (t0 + t1);
    Vec3<double> centres[3];
    const double times[3] = {t0, tm, t1};
    double near = double(INFINITY);
    for (int i = 0; i < 3; ++i) {  // (without the capture's poses: the transform itself, no per-Gaussian poses)
        centres[i] = poses_given ? point_at_pose(*poses_given, i, body, mean, times[i])
                                 : point_in_sensor(body, motion, mean, times[i]);
        near = xmin(near, norm(centres[i]));
    }
    bool full = near < 1.5 * radius + 1e-3 || radius > MAX_ANGULAR_RADIUS * near;
    if (lidar) full = full || near_spin_axis(centres, 3, radius);
    bool keep = !full;
    if (!lidar && keep) {
        double h = 0.25 * (t1 - t0), grown[3];
        for (int i = 0; i < 3; ++i) {
            double d = norm(centres[i]);
            grown[i] = radius + drift_bound(body, motion, mean, d, h) + SPHERE_PAD_ABS + SPHERE_PAD_REL * d;
        }
        keep = !behind_camera(in.camera, centres, grown, 3);
    }
    if (in.cull) {
        double d = norm(centres[1]);
        double r = EXTENT_SAFETY * radius + drift_bound(body, motion, mean, d, 0.5 * (t1 - t0)) + SPHERE_PAD_ABS +
                   SPHERE_PAD_REL * d;
        if (unreachable(in, centres[1], r)) {
            fp.culled = true;
            return fp;
        }
    }
    bool failed = full;
    const double tol = in.tolerance;
    if (keep && !lidar) {
        const CameraModel<double>& cam = in.camera;
        double b[4], lo[2], hi[2];
        cam.bounds(b);
        UnscentedResult<double> ut = unscented_transform(cam, body, motion, mean, rot, scale, tm, tol);
        ut_rect(ut, k, 1.0 + in.margin[0], 1.0 + in.margin[1], lo, hi);
        if (ut.valid && intersects(lo, hi, b)) add_rect(fp, lo, hi, 0);
        failed = failed || !ut.valid;
    } else if (keep) {
        const LidarModel<double>& lm = in.lidar;
        double b[4];
        lm.bounds(b);
        const double pad0 = 2 * PI / lm.columns + in.margin[0], pad1 = 2e-3 + in.margin[1];
        UnscentedResult<double> ut;
        const SensorRates rates = rates_given ? *rates_given : sensor_rates(in, motion);
        // a sphere around the centre holding every sigma point (rounding allowed for)
        const double rho = xsqrt(3.0) * xmax(scale[0], xmax(scale[1], scale[2])) * (1.0 + 1e-6) + 1e-9;
        // UT rectangle of one branch: valid, and ok = valid, meets the sweep's bounds and (seam branches) spans less
        // than 2 pi. Where predicted_root holds for every sigma point, unscented_static's widened rectangle stands
        // for unscented_transform's if the slack widens it by at most UT_SLACK_MAX pads and decides `ok` as the narrowed
        // one does (then also as unscented_transform's: it lies between them)
        auto project = [&](double branch, double eta0, double* lo, double* hi, bool seam_branch, bool& ok) {
            LidarBranch<double> sensor{&lm, branch, t0, t1};
            // proven starts (predicted_root): the centre's from its predicted root, and the sigma points' from the
            // centre's root even near the branch cut, where the bound holds for all of them
            double from = NAN, all = NAN;
            MotionProof proof;
            if (in.centre_bound) {
                all = predicted_root(in, rates, body, mean, centres[1], branch, rho, &proof);
                from = xisfinite(all) ? all : predicted_root(in, rates, body, mean, centres[1], branch, 0.0);
            }
            SolveResult<double> centre;
            const bool solved = in.ut_bound && xisfinite(all);
            if (solved) {  // the centre from its predicted root, as unscented_transform would
                centre = TimeSolver<double, LidarBranch<double>>{sensor, body, motion, mean, tol, true}.solve(all);
                const double widen = 1 + EXTENT_SAFETY * k * xsqrt(2.0);
                const double slack_max[2] = {UT_SLACK_MAX * pad0 / widen, UT_SLACK_MAX * pad1 / widen};
                ut = unscented_static(sensor, body, motion, mean, rot, scale, rho, tol, centre, proof, slack_max);
                if (ut.bounded) {
                    double lo_in[2], hi_in[2];
                    ut_rect_slack(ut, k, pad0, pad1, lo, hi, lo_in, hi_in);
                    const bool meets = intersects(lo, hi, b), meets_in = intersects(lo_in, hi_in, b);
                    const bool narrow = !seam_branch || hi[0] - lo[0] < 2 * PI;
                    const bool narrow_in = !seam_branch || hi_in[0] - lo_in[0] < 2 * PI;
                    if (meets == meets_in && narrow == narrow_in) {
                        ok = meets && narrow;
                        return true;
                    }
                }
            }
            ut = unscented_transform(sensor, body, motion, mean, rot, scale, eta0, tol, true, from, xisfinite(all),
                                     solved ? &centre : nullptr);
            ut_rect(ut, k, pad0, pad1, lo, hi);
            ok = ut.valid && intersects(lo, hi, b) && (!seam_branch || hi[0] - lo[0] < 2 * PI);
            return ut.valid;
        };
        double lo_c[2], hi_c[2];
        if (!in.phase_modeling) {
            bool ok_c;
            bool valid_c = project(PI, tm, lo_c, hi_c, false, ok_c);
            if (ok_c) add_rect(fp, lo_c, hi_c, 0);
            failed = failed || !valid_c;
        } else {
            double lo_l[2], hi_l[2], lo_r[2], hi_r[2];
            bool valid_l, valid_r, ok_l, ok_r;
            // near branch first (the one holding the centre's phase at t_mid); the far one only if it may matter
            const bool near_left = !in.seam_bound || lm.phase_of(centres[1], PI) < PI;
            if (near_left) {
                valid_l = project(0.0, t0, lo_l, hi_l, true, ok_l);
                if (in.seam_bound && far_branch_clear(in, rates, body, mean, rho, centres[1], ut, k, true)) {
                    valid_r = true, ok_r = false, fp.far_skipped = true;
                } else {
                    valid_r = project(2 * PI, t1, lo_r, hi_r, true, ok_r);
                }
            } else {
                valid_r = project(2 * PI, t1, lo_r, hi_r, true, ok_r);
                if (far_branch_clear(in, rates, body, mean, rho, centres[1], ut, k, false)) {
                    valid_l = true, ok_l = false, fp.far_skipped = true;
                } else {
                    valid_l = project(0.0, t0, lo_l, hi_l, true, ok_l);
                }
            }
            bool valid_c = false, ok_c = false;
            // Algorithm 2 needs the central projection only where neither seam branch sees the Gaussian (and
            // the trust test only where both seam branches failed)
            if ((!ok_l && !ok_r) || (!valid_l && !valid_r)) {
                valid_c = project(PI, tm, lo_c, hi_c, false, ok_c);
            }
            if (ok_l) add_rect(fp, lo_l, hi_l, -1);
            if (ok_c && !ok_l && !ok_r) add_rect(fp, lo_c, hi_c, 0);
            if (ok_r) add_rect(fp, lo_r, hi_r, 1);
            bool trusted = (valid_l == valid_r) && (valid_l || valid_c);
            failed = failed || !trusted;
        }
    }
    if (failed) {
        Vec3<double> axis;
        bounding_cone(body, motion, mean, EXTENT_SAFETY * radius, t0, t1, axis, fp.half);
        fp.cone = true;
        fp.axis[0] = axis.x, fp.axis[1] = axis.y, fp.axis[2] = axis.z;
    }
    return fp;
}

XS_HD int rect_ranges(const ProjectParams& in, const GaussianFootprints& fp, int i, TileRange* out) {
    if (in.sensor == SENSOR_CAMERA) {
        out[0] = camera_tile_range(fp.lo[i], fp.hi[i], in.camera.width, in.camera.height);
        return 1;
    }
    return lidar_tile_ranges(fp.lo[i], fp.hi[i], in.elevations_sorted, in.lidar.beams, in.lidar.columns,
                             !in.phase_modeling, out);
}

XS_HD bool cone_hits_tile(const ProjectParams& in, const GaussianFootprints& fp, int64_t t) {
    if (!in.tile_has_rays[t]) return false;
    return cones_meet(make_vec3(fp.axis[0], fp.axis[1], fp.axis[2]), fp.half, load3(in.tile_axis + 3 * t),
                      in.tile_half[t]);
}

// The non-empty tile ranges of one Gaussian's rectangles (at most 3 rectangles x 2 column segments).
struct FootprintRanges {
    TileRange r[6];
    int n;
};

// The non-empty tile ranges of one Gaussian's rectangles, for visit_pairs.
XS_HD void footprint_ranges(const ProjectParams& in, const GaussianFootprints& fp, FootprintRanges& fr) {
    fr.n = 0;
    for (int i = 0; i < fp.n_rect; ++i) {
        TileRange ranges[2];
        const int m = rect_ranges(in, fp, i, ranges);
        for (int s = 0; s < m; ++s)
            if (!ranges[s].empty()) fr.r[fr.n++] = ranges[s];
    }
}

// Visit the tiles of one Gaussian's footprints: the rectangles' ranges (from footprint_ranges), then the cone's tiles; a
// tile covered twice is visited twice.
template <typename Visit>
XS_HD void visit_pairs(const ProjectParams& in, const GaussianFootprints& fp, const FootprintRanges& fr, Visit visit) {
    for (int s = 0; s < fr.n; ++s) {
        const TileRange& r = fr.r[s];
        for (int y = r.y0; y <= r.y1; ++y)
            for (int x = r.x0; x <= r.x1; ++x) visit(int64_t(y) * in.tiles_x + x);
    }
    if (fp.cone)
        for (int64_t t = 0; t < in.num_tiles; ++t)
            if (cone_hits_tile(in, fp, t)) visit(t);
}

}  // namespace xs
