// CPU tile rasterizer (see rasterize_cpu.h). Tiles are processed in parallel (OpenMP, dynamic schedule, the
// heaviest first). Per tile the candidates are gathered into structure-of-arrays buffers in ascending order of
// a lower bound on their hit distance (hit_list.h), so that each ray commits hits as soon as their order is
// certain and stops once its transmittance is below 1e-4. All buffers are per thread and reused: no heap
// allocation per ray.
#include "rasterize_cpu.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "xsim/composite.h"
#include "xsim/hit_list.h"
#include "xsim/response.h"
#include "xsim/rigid.h"

namespace xs {
namespace {

// Per-Gaussian quantities derived once per call (structure of arrays).
template <typename T> struct GaussianSoA {
    std::vector<T> mx, my, mz, w[9], reject_d2, radius, sigma;
    std::vector<int32_t> frame;

    void build(const RasterInputs<T>& in) {
        int64_t n = in.n_gaussians;
        mx.resize(n), my.resize(n), mz.resize(n), reject_d2.resize(n), radius.resize(n), sigma.resize(n);
        frame.resize(n);
        for (auto& v : w) v.resize(n);
#pragma omp parallel for num_threads(in.threads) schedule(static)
        for (int64_t g = 0; g < n; ++g) {
            T wm[9];
            whitening_matrix(in.rotations + 9 * g, in.log_scales + 3 * g, wm);
            for (int k = 0; k < 9; ++k) w[k][g] = wm[k];
            mx[g] = in.means[3 * g];
            my[g] = in.means[3 * g + 1];
            mz[g] = in.means[3 * g + 2];
            T s = in.sigma[g];
            sigma[g] = s;
            T k2 = visible_d2(s);
            // D2 beyond this is certainly below 1/255 (the exact test runs on the rest)
            reject_d2[g] = k2 < T(0) ? T(-1) : k2 * T(1.001) + T(1e-3);
            T smax = xmax(in.log_scales[3 * g], xmax(in.log_scales[3 * g + 1], in.log_scales[3 * g + 2]));
            radius[g] = k2 < T(0) ? T(0) : xsqrt(reject_d2[g]) * xexp(smax) * T(1.0001);
            frame[g] = static_cast<int32_t>(in.frame[g]);
        }
    }
};

// One tile's candidates in visiting order, structure of arrays.
constexpr int CHUNK = 16;  // candidates evaluated together (SIMD lanes) between commit checks

template <typename T> struct TileBatch {
    std::vector<T> mx, my, mz, w[9], reject_d2, sigma, bound;
    std::vector<T> values;  // (candidates, C): composited values gathered next to the geometry
    std::vector<int32_t> id, slot;
    std::vector<std::pair<T, int32_t>> order;

    // room for m candidates rounded up to whole chunks; the padding never passes the D2 test
    void reserve(size_t m) {
        size_t padded = (m + CHUNK - 1) / CHUNK * CHUNK;
        if (mx.size() < padded) {
            mx.resize(padded), my.resize(padded), mz.resize(padded), reject_d2.resize(padded);
            sigma.resize(padded), bound.resize(padded), id.resize(padded), slot.resize(padded);
            for (auto& v : w) v.resize(padded);
        }
        for (size_t j = m; j < padded; ++j) {
            mx[j] = my[j] = mz[j] = T(0);
            for (auto& v : w) v[j] = T(1);
            reject_d2[j] = T(-1);
            sigma[j] = T(0);
            bound[j] = std::numeric_limits<T>::infinity();
            id[j] = 0;
            slot[j] = 0;
        }
    }
};

// t* and D2 of one ray against CHUNK consecutive candidates of one body frame (straight-line, vectorisable;
// the same arithmetic as response.h max_response).
template <typename T>
inline void evaluate_chunk(const TileBatch<T>& b, int c, const T* l, T* __restrict tt, T* __restrict dd2) {
    const T ox = l[0], oy = l[1], oz = l[2], dx = l[3], dy = l[4], dz = l[5];
    const T* __restrict mx = b.mx.data() + c;
    const T* __restrict my = b.my.data() + c;
    const T* __restrict mz = b.mz.data() + c;
    const T* __restrict w0 = b.w[0].data() + c;
    const T* __restrict w1 = b.w[1].data() + c;
    const T* __restrict w2 = b.w[2].data() + c;
    const T* __restrict w3 = b.w[3].data() + c;
    const T* __restrict w4 = b.w[4].data() + c;
    const T* __restrict w5 = b.w[5].data() + c;
    const T* __restrict w6 = b.w[6].data() + c;
    const T* __restrict w7 = b.w[7].data() + c;
    const T* __restrict w8 = b.w[8].data() + c;
#pragma omp simd
    for (int k = 0; k < CHUNK; ++k) {
        T rx = ox - mx[k], ry = oy - my[k], rz = oz - mz[k];
        T opx = w0[k] * rx + w3[k] * ry + w6[k] * rz;
        T opy = w1[k] * rx + w4[k] * ry + w7[k] * rz;
        T opz = w2[k] * rx + w5[k] * ry + w8[k] * rz;
        T dpx = w0[k] * dx + w3[k] * dy + w6[k] * dz;
        T dpy = w1[k] * dx + w4[k] * dy + w7[k] * dz;
        T dpz = w2[k] * dx + w5[k] * dy + w8[k] * dz;
        T dd = dpx * dpx + dpy * dpy + dpz * dpz;
        dd = dd > T(1e-30) ? dd : T(1e-30);
        T t = -(opx * dpx + opy * dpy + opz * dpz) / dd;
        T ex = opx + t * dpx, ey = opy + t * dpy, ez = opz + t * dpz;
        tt[k] = t;
        dd2[k] = ex * ex + ey * ey + ez * ez;
    }
}

template <typename T> struct Workspace {
    std::vector<int32_t> slot_of_frame;      // (F) slot of a body in this tile, -1 if absent
    std::vector<int32_t> frames;             // (S) body of each slot
    std::vector<T> local;                    // (rays, S, 6) ray origin / direction in each slot's frame
    std::vector<uint8_t> exists;             // (rays, S) ray time inside the body's window
    std::vector<T> spread;                   // (S)
    std::vector<T> acc;                      // (C) value accumulator of one ray
    std::vector<T> hit_t, hit_a;
    std::vector<int32_t> hit_id, hit_slot;
    TileBatch<T> batch;
};

template <typename T>
void render_tile(const RasterInputs<T>& in, const RasterOutputs<T>& out, const GaussianSoA<T>& gs,
                 const int64_t* rays, int64_t n_rays, const int64_t* cands, int64_t n_cands, Workspace<T>& ws,
                 int64_t& evaluated) {
    const int64_t C = in.n_channels;
    // bodies present among the candidates -> slots
    ws.frames.clear();
    TileBatch<T>& b = ws.batch;
    b.order.clear();
    for (int64_t k = 0; k < n_cands; ++k) {
        int64_t g = cands[k];
        if (gs.reject_d2[g] < T(0)) continue;  // never visible to this sensor
        int32_t f = gs.frame[g];
        if (ws.slot_of_frame[f] < 0) {
            ws.slot_of_frame[f] = static_cast<int32_t>(ws.frames.size());
            ws.frames.push_back(f);
        }
        b.order.emplace_back(T(0), static_cast<int32_t>(g));
    }
    const int S = static_cast<int>(ws.frames.size());
    if (b.order.empty()) {
        for (int32_t f : ws.frames) ws.slot_of_frame[f] = -1;
        return;
    }
    // every ray in every slot's frame, and the spread of the ray origins per slot
    ws.local.resize(static_cast<size_t>(n_rays) * S * 6);
    ws.exists.resize(static_cast<size_t>(n_rays) * S);
    ws.spread.assign(S, T(0));
    for (int64_t i = 0; i < n_rays; ++i) {
        int64_t r = rays[i];
        Vec3<T> o = load3(in.origins + 3 * r), d = load3(in.directions + 3 * r);
        T time = in.times[r];
        for (int s = 0; s < S; ++s) {
            int f = ws.frames[s];
            Vec3<T> ob, db;
            ray_in_body(in.bodies + static_cast<int64_t>(f) * BODY_FIELDS, time, o, d, ob, db);
            T* lp = ws.local.data() + (static_cast<size_t>(i) * S + s) * 6;
            lp[0] = ob.x, lp[1] = ob.y, lp[2] = ob.z, lp[3] = db.x, lp[4] = db.y, lp[5] = db.z;
            ws.exists[static_cast<size_t>(i) * S + s] = (time >= in.window_lo[f]) && (time <= in.window_hi[f]);
            const T* l0 = ws.local.data() + static_cast<size_t>(s) * 6;
            ws.spread[s] = xmax(ws.spread[s], norm(ob - load3(l0)));
        }
    }
    // candidates in ascending order of their hit-distance lower bound (ties: Gaussian index)
    for (auto& e : b.order) {
        int32_t g = e.second;
        int s = ws.slot_of_frame[gs.frame[g]];
        Vec3<T> ref = load3(ws.local.data() + static_cast<size_t>(s) * 6);
        T dist = norm(make_vec3(gs.mx[g], gs.my[g], gs.mz[g]) - ref);
        e.first = hit_lower_bound(dist, ws.spread[s], gs.radius[g]);
    }
    std::sort(b.order.begin(), b.order.end());
    const int M = static_cast<int>(b.order.size());
    b.reserve(M);
    for (int j = 0; j < M; ++j) {
        int32_t g = b.order[j].second;
        b.bound[j] = b.order[j].first;
        b.id[j] = g;
        b.slot[j] = ws.slot_of_frame[gs.frame[g]];
        b.mx[j] = gs.mx[g], b.my[j] = gs.my[g], b.mz[j] = gs.mz[g];
        for (int k = 0; k < 9; ++k) b.w[k][j] = gs.w[k][g];
        b.reject_d2[j] = gs.reject_d2[g];
        b.sigma[j] = gs.sigma[g];
    }
    if (static_cast<int64_t>(b.values.size()) < static_cast<int64_t>(M) * C) b.values.resize(static_cast<size_t>(M) * C);
    for (int j = 0; j < M; ++j)
        for (int64_t c = 0; c < C; ++c) b.values[static_cast<size_t>(j) * C + c] = in.values[int64_t(b.id[j]) * C + c];
    for (int32_t f : ws.frames) ws.slot_of_frame[f] = -1;
    if (static_cast<int>(ws.hit_t.size()) < M) {
        ws.hit_t.resize(M), ws.hit_a.resize(M), ws.hit_id.resize(M), ws.hit_slot.resize(M);
    }
    int64_t evals = 0;
    for (int64_t i = 0; i < n_rays; ++i) {
        int64_t r = rays[i];
        const T* lp = ws.local.data() + static_cast<size_t>(i) * S * 6;
        const uint8_t* ex = ws.exists.data() + static_cast<size_t>(i) * S;
        HitList<T> hits{ws.hit_t.data(), ws.hit_a.data(), ws.hit_id.data(), 0, 0, M, ws.hit_slot.data()};
        RayComposite<T> comp;
        T* acc = ws.acc.data();
        for (int64_t c = 0; c < C; ++c) acc[c] = T(0);
        auto commit = [&](int k) {
            T w = comp.push(hits.t[k], hits.alpha[k]);
            const T* v = b.values.data() + static_cast<int64_t>(hits.payload[k]) * C;
            for (int64_t c = 0; c < C; ++c) acc[c] += w * v[c];
        };
        int j = 0;
        alignas(64) T tt[CHUNK], dd2[CHUNK];
        const bool single = S == 1;
        if (!single || ex[0]) {
            for (; j < M; j += CHUNK) {
                T lower = b.bound[j];
                while (!hits.empty() && hits.t[hits.head] < lower && !comp.done) commit(hits.head++);
                if (comp.done) break;
                if (single) {
                    evaluate_chunk(b, j, lp, tt, dd2);
                } else {
                    for (int k = 0; k < CHUNK; ++k) {
                        int s = b.slot[j + k];
                        const T* l = lp + 6 * s;
                        T w[9];
                        for (int q = 0; q < 9; ++q) w[q] = b.w[q][j + k];
                        max_response(w, make_vec3(b.mx[j + k], b.my[j + k], b.mz[j + k]),
                                     make_vec3(l[0], l[1], l[2]), make_vec3(l[3], l[4], l[5]), tt[k], dd2[k]);
                        if (!ex[s]) dd2[k] = std::numeric_limits<T>::infinity();
                    }
                }
                // candidates near enough: a bit mask (no unpredictable branch per candidate)
                uint32_t mask = 0;
                for (int k = 0; k < CHUNK; ++k)
                    mask |= uint32_t((dd2[k] <= b.reject_d2[j + k]) & (tt[k] > T(0))) << k;
                while (mask) {
                    int k = __builtin_ctz(mask);
                    mask &= mask - 1;
                    T a = alpha_of(b.sigma[j + k], dd2[k]);
                    if (a > T(0)) hits.insert(tt[k], a, b.id[j + k], j + k);
                }
            }
        }
        evals += std::min(j, M);
        while (!hits.empty() && !comp.done) commit(hits.head++);
        out.alpha[r] = comp.alpha();
        out.transmittance[r] = comp.transmittance;
        out.distance[r] = comp.expected_distance();
        out.median[r] = comp.has_median ? comp.median : std::numeric_limits<T>::quiet_NaN();
        out.count[r] = comp.count;
        for (int64_t c = 0; c < C; ++c) out.values[r * C + c] = acc[c];
    }
    evaluated += evals;
}

}  // namespace

template <typename T> void rasterize_cpu(const RasterInputs<T>& in, const RasterOutputs<T>& out) {
    const int64_t R = in.n_rays, C = in.n_channels, NT = in.num_tiles;
    // defaults: no hit
    for (int64_t r = 0; r < R; ++r) {
        out.alpha[r] = T(0);
        out.transmittance[r] = T(1);
        out.distance[r] = T(0);
        out.median[r] = std::numeric_limits<T>::quiet_NaN();
        out.count[r] = 0;
    }
    for (int64_t k = 0; k < R * C; ++k) out.values[k] = T(0);
    if (R == 0 || NT == 0) return;
    // valid rays grouped by tile (counting sort, stable)
    std::vector<int64_t> ray_start(NT + 1, 0), ray_list;
    for (int64_t r = 0; r < R; ++r) {
        int64_t tile = in.ray_tile[r];
        if (in.valid[r] && tile >= 0 && tile < NT) ++ray_start[tile + 1];
    }
    for (int64_t t = 0; t < NT; ++t) ray_start[t + 1] += ray_start[t];
    ray_list.resize(ray_start[NT]);
    {
        std::vector<int64_t> fill(ray_start.begin(), ray_start.end() - 1);
        for (int64_t r = 0; r < R; ++r) {
            int64_t tile = in.ray_tile[r];
            if (in.valid[r] && tile >= 0 && tile < NT) ray_list[fill[tile]++] = r;
        }
    }
    // candidates grouped by tile (the pairs normally arrive sorted by tile: use them in place)
    std::vector<int64_t> cand_start(NT + 1, 0), cand_sorted;
    const int64_t* cand_list = in.pair_gaussian;
    bool sorted = true;
    for (int64_t p = 0; p < in.n_pairs; ++p) {
        int64_t tile = in.pair_tile[p];
        if (tile >= 0 && tile < NT) ++cand_start[tile + 1];
        if (p > 0 && in.pair_tile[p] < in.pair_tile[p - 1]) sorted = false;
        if (tile < 0 || tile >= NT) sorted = false;
    }
    for (int64_t t = 0; t < NT; ++t) cand_start[t + 1] += cand_start[t];
    if (!sorted) {
        cand_sorted.resize(cand_start[NT]);
        std::vector<int64_t> fill(cand_start.begin(), cand_start.end() - 1);
        for (int64_t p = 0; p < in.n_pairs; ++p) {
            int64_t tile = in.pair_tile[p];
            if (tile >= 0 && tile < NT) cand_sorted[fill[tile]++] = in.pair_gaussian[p];
        }
        cand_list = cand_sorted.data();
    }
    GaussianSoA<T> gs;
    gs.build(in);
    // heaviest tiles first for the dynamic schedule
    std::vector<std::pair<int64_t, int64_t>> work;
    for (int64_t t = 0; t < NT; ++t) {
        int64_t nr = ray_start[t + 1] - ray_start[t], nc = cand_start[t + 1] - cand_start[t];
        if (nr > 0 && nc > 0) work.emplace_back(-nr * nc, t);
    }
    std::sort(work.begin(), work.end());
    int64_t evaluated = 0;
    const int64_t n_work = static_cast<int64_t>(work.size());
#pragma omp parallel num_threads(in.threads) reduction(+ : evaluated)
    {
        Workspace<T> ws;
        ws.slot_of_frame.assign(in.n_bodies, -1);
        ws.acc.resize(C > 0 ? C : 1);
#pragma omp for schedule(dynamic, 1)
        for (int64_t k = 0; k < n_work; ++k) {
            int64_t t = work[k].second;
            render_tile(in, out, gs, ray_list.data() + ray_start[t], ray_start[t + 1] - ray_start[t],
                        cand_list + cand_start[t], cand_start[t + 1] - cand_start[t], ws, evaluated);
        }
    }
    if (out.evaluated) out.evaluated[0] = evaluated;
}

template <typename T>
void sensor_rays_cpu(int64_t n_rays, const T* times, const T* dirs_sensor, const T* motion, T* origins,
                     T* directions, int threads) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t r = 0; r < n_rays; ++r) {
        T rot[9];
        Vec3<T> pos;
        body_pose_at(motion, times[r], rot, pos);
        Vec3<T> d = matvec(rot, load3(dirs_sensor + 3 * r));
        origins[3 * r] = pos.x, origins[3 * r + 1] = pos.y, origins[3 * r + 2] = pos.z;
        directions[3 * r] = d.x, directions[3 * r + 1] = d.y, directions[3 * r + 2] = d.z;
    }
}

template void sensor_rays_cpu<float>(int64_t, const float*, const float*, const float*, float*, float*, int);
template void sensor_rays_cpu<double>(int64_t, const double*, const double*, const double*, double*, double*, int);
template void rasterize_cpu<float>(const RasterInputs<float>&, const RasterOutputs<float>&);
template void rasterize_cpu<double>(const RasterInputs<double>&, const RasterOutputs<double>&);

}  // namespace xs
