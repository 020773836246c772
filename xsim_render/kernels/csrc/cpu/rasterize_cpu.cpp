// CPU tile rasterizer (see rasterize_cpu.h). Tiles are processed in parallel (OpenMP, dynamic schedule, in index
// order). Per tile the candidates are gathered into structure-of-arrays buffers in ascending order of
// a lower bound on their hit distance (hit_list.h), so that each ray commits hits as soon as their order is
// certain and stops once its transmittance is below 1e-4. The tile's rays are split into groups of neighbouring
// directions; each group visits only the candidates that can meet one of its rays (a cone test, applied lazily
// as far as its rays get). All buffers are per thread and reused: no heap allocation per ray.
#include "rasterize_cpu.h"

#include "alpha_simd.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <utility>
#include <vector>

#include "xsim/composite.h"
#include "xsim/hit_list.h"
#include "xsim/response.h"
#include "xsim/rigid.h"
#include "xsim/sensor_rays.h"

namespace xs {
namespace {

// Per-Gaussian quantities derived once per call, one record per Gaussian (one cache line in float32: a tile
// gathers its candidates from scattered Gaussians).
template <typename T> struct alignas(16 * sizeof(T)) GaussianRecord {
    T m[3], w[9], reject_d2, sigma, radius;
    int32_t frame;
};

template <typename T> struct GaussianSoA {
    std::vector<GaussianRecord<T>> rec;

    void build(const RasterInputs<T>& in) {
        int64_t n = in.n_gaussians;
        rec.resize(n);
#pragma omp parallel for num_threads(in.threads) schedule(static)
        for (int64_t g = 0; g < n; ++g) {
            GaussianRecord<T>& r = rec[g];
            // exp(-log_scale) (the whitening matrix R diag(1/s), response.h) and the largest scale, in one go
            const T* ls = in.log_scales + 3 * g;
            const T x[4] = {-ls[0], -ls[1], -ls[2], xmax(ls[0], xmax(ls[1], ls[2]))};
            T e[4];
            exp_four(x, e);
            whitening_from_inverse_scales(in.rotations + 9 * g, e, r.w);
            for (int k = 0; k < 3; ++k) r.m[k] = in.means[3 * g + k];
            T s = in.sigma[g];
            r.sigma = s;
            T k2 = visible_d2(s);
            // D2 beyond this is certainly below 1/255 (the exact test runs on the rest)
            r.reject_d2 = k2 < T(0) ? T(-1) : k2 * T(1.001) + T(1e-3);
            r.radius = k2 < T(0) ? T(0) : xsqrt(r.reject_d2) * e[3] * T(1.0001);
            r.frame = static_cast<int32_t>(in.frame[g]);
        }
    }
};

// Candidates evaluated together (SIMD lanes) between commit checks: 32 (4 AVX2 float vectors) beat 16 by about
// 10 % on the street LiDAR and camera (fewer per-chunk steps, more independent work), 8 is slower
constexpr int CHUNK = 32;
static_assert(CHUNK % 8 == 0 && CHUNK <= 32, "a chunk's lanes are one 32-bit mask, alpha runs 8 lanes at a time");

// One tile's candidates in visiting order, structure of arrays.
template <typename T> struct TileBatch {
    std::vector<T> mx, my, mz, w[9], reject_d2, sigma, bound, radius;
    std::vector<T> s2[3];  // squared scales (cone tests only: not copied to a ray group's batch)
    std::vector<T> values;  // (candidates, C): composited values gathered next to the geometry
    std::vector<int32_t> id, slot, src;  // src: the candidate's row in the tile batch (a ray group's batch)
    std::vector<std::pair<T, int32_t>> order;

    // room for m candidates rounded up to whole chunks; the padding never passes the D2 test
    void reserve(size_t m) {
        size_t padded = (m + CHUNK - 1) / CHUNK * CHUNK;
        if (mx.size() < padded) {
            mx.resize(padded), my.resize(padded), mz.resize(padded), reject_d2.resize(padded);
            sigma.resize(padded), bound.resize(padded), radius.resize(padded), id.resize(padded);
            slot.resize(padded), src.resize(padded);
            for (auto& v : w) v.resize(padded);
            for (auto& v : s2) v.resize(padded);
        }
        for (size_t j = m; j < padded; ++j) {
            mx[j] = my[j] = mz[j] = T(0);
            for (auto& v : w) v[j] = T(1);
            reject_d2[j] = T(-1);
            sigma[j] = T(0);
            bound[j] = std::numeric_limits<T>::infinity();
            radius[j] = T(0);
            for (auto& v : s2) v[j] = T(0);
            id[j] = 0;
            slot[j] = 0;
            src[j] = 0;
        }
    }

    // copy candidate j of `from` to row i (what ray evaluation reads: not the radius, the cone tests' datum)
    void copy_row(const TileBatch& from, int j, int i) {
        mx[i] = from.mx[j], my[i] = from.my[j], mz[i] = from.mz[j];
        for (int q = 0; q < 9; ++q) w[q][i] = from.w[q][j];
        reject_d2[i] = from.reject_d2[j], sigma[i] = from.sigma[j], bound[i] = from.bound[j];
        id[i] = from.id[j], slot[i] = from.slot[j], src[i] = j;
    }
};

// Candidates into ascending (bound, Gaussian index) order. float: one 64-bit integer per candidate, the bound's
// bits mapped to an unsigned integer of the same order (-0 taken as +0, as the pair comparison does) above the
// index, a cheaper sort than of pairs; double: the pairs.
inline uint32_t ordered_bits(float f) {
    f += 0.0f;
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

inline float from_ordered_bits(uint32_t u) {
    u = (u & 0x80000000u) ? (u & 0x7fffffffu) : ~u;
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

inline void sort_candidates(std::vector<std::pair<double, int32_t>>& order, std::vector<uint64_t>&) {
    std::sort(order.begin(), order.end());
}

inline void sort_candidates(std::vector<std::pair<float, int32_t>>& order, std::vector<uint64_t>& keys) {
    const size_t n = order.size();
    keys.resize(2 * n);
    uint64_t* a = keys.data();
    uint64_t* b = a + n;
    for (size_t k = 0; k < n; ++k)
        a[k] = (uint64_t(ordered_bits(order[k].first)) << 32) | uint32_t(order[k].second);
    if (n < 64) {
        std::sort(a, a + n);
    } else {
        // stable LSD radix sort on the bound's 32 bits, a byte per pass (passes where every key shares the byte
        // skipped); equal bounds keep the input order (the Gaussian index order of the tile lists), and the
        // order among equal bounds does not change any output (hits are composited in (t, index) order anyway)
        for (int shift = 32; shift < 64; shift += 8) {
            uint32_t count[256] = {0};
            for (size_t k = 0; k < n; ++k) ++count[(a[k] >> shift) & 255u];
            if (count[(a[0] >> shift) & 255u] == n) continue;
            uint32_t start = 0;
            for (int d = 0; d < 256; ++d) {
                const uint32_t c = count[d];
                count[d] = start;
                start += c;
            }
            for (size_t k = 0; k < n; ++k) b[count[(a[k] >> shift) & 255u]++] = a[k];
            std::swap(a, b);
        }
    }
    for (size_t k = 0; k < n; ++k) order[k] = {from_ordered_bits(uint32_t(a[k] >> 32)), int32_t(uint32_t(a[k]))};
}

// Rays of a tile are evaluated in groups of about RAY_GROUP rays of neighbouring directions (ray_groups: a LiDAR
// tile's 8 beams x 32 columns becomes 8 cells of 4 beams x 8 columns) against the tile candidates that can meet
// some ray of the group (measured on the 128 x 2048 street LiDAR: 3x fewer evaluations): a candidate whose
// ball (radius: holds its D2 <= reject_d2 region) lies outside the group's cone of rays (origins within
// `spread` of the first one o, directions within angle theta of the axis a, per body slot) is skipped: it has
// no live hit on these rays. Visiting the survivors in the tile order keeps the commit rule exact (hit_list.h).
// A ball (centre o + u, radius r) meets the cone iff the angle between a and u is at most theta + asin(r/|u|),
// implied by  |u - (a.u) a| cos(theta) - (a.u) sin(theta) <= r  (free of cancellation near the axis; r is
// widened by the origin spread and a rounding margin).
constexpr int RAY_GROUP = 32;

struct GroupCone {
    double o[3], a[3], cos_t, sin_t, spread;
    bool all;  // too wide to cull with
};

// Cone of the tile rays idx[0..n) in body slot s (local: (rays, S, 6) origin / direction per slot).
template <typename T> GroupCone group_cone(const T* local, int S, int s, const int32_t* idx, int n) {
    GroupCone g;
    auto ray = [&](int k) { return local + (static_cast<size_t>(idx[k]) * S + s) * 6; };
    const T* l0 = ray(0);
    double ax = 0, ay = 0, az = 0, spread = 0;
    for (int k = 0; k < n; ++k) {
        const T* l = ray(k);
        ax += double(l[3]), ay += double(l[4]), az += double(l[5]);
        double ox = double(l[0]) - double(l0[0]), oy = double(l[1]) - double(l0[1]), oz = double(l[2]) - double(l0[2]);
        spread = std::max(spread, std::sqrt(ox * ox + oy * oy + oz * oz));
    }
    double len = std::sqrt(ax * ax + ay * ay + az * az);
    g.all = !(len > 1e-6 * double(n));
    if (g.all) return g;
    g.a[0] = ax / len, g.a[1] = ay / len, g.a[2] = az / len;
    double min_cos = 1.0;
    for (int k = 0; k < n; ++k) {
        const T* l = ray(k);
        double dn = std::sqrt(double(l[3]) * l[3] + double(l[4]) * l[4] + double(l[5]) * l[5]);
        min_cos = std::min(min_cos, (g.a[0] * l[3] + g.a[1] * l[4] + g.a[2] * l[5]) / std::max(dn, 1e-300));
    }
    double theta = std::acos(std::max(-1.0, std::min(1.0, min_cos))) * (1 + 1e-6) + 1e-6;
    g.all = theta > 1.2;
    g.cos_t = std::cos(theta), g.sin_t = std::sin(theta);
    g.o[0] = double(l0[0]), g.o[1] = double(l0[1]), g.o[2] = double(l0[2]);
    g.spread = spread * (1 + 1e-6) + 1e-5 + 1e-6 * (std::abs(g.o[0]) + std::abs(g.o[1]) + std::abs(g.o[2]));
    return g;
}

// Split the tile's rays into about n / RAY_GROUP groups of neighbouring directions: a grid of near-square cells
// over the directions' extent in the tile's tangent plane (slot 0's frame: only a grouping, any is exact).
// order: the tile rays cell by cell; start: (cells + 1) offsets into it.
template <typename T>
void ray_groups(const T* local, int S, int n, std::vector<int32_t>& order, std::vector<int32_t>& start,
                std::vector<int32_t>& cell, std::vector<double>& uv) {
    order.resize(n);
    cell.resize(n);
    uv.resize(2 * static_cast<size_t>(n));
    int groups = (n + RAY_GROUP - 1) / RAY_GROUP;
    double ax = 0, ay = 0, az = 0;
    for (int i = 0; i < n; ++i) {
        const T* l = local + static_cast<size_t>(i) * S * 6;
        ax += double(l[3]), ay += double(l[4]), az += double(l[5]);
    }
    double len = std::sqrt(ax * ax + ay * ay + az * az);
    if (groups <= 1 || !(len > 1e-6 * n)) {
        start.assign({0, n});
        for (int i = 0; i < n; ++i) order[i] = i;
        return;
    }
    ax /= len, ay /= len, az /= len;
    // tangent basis (e1, e2) of the axis
    double hx = std::abs(az) < 0.9 ? 0.0 : 1.0, hz = std::abs(az) < 0.9 ? 1.0 : 0.0;
    double e1x = ay * hz, e1y = az * hx - ax * hz, e1z = -ay * hx;
    double l1 = std::sqrt(e1x * e1x + e1y * e1y + e1z * e1z);
    e1x /= l1, e1y /= l1, e1z /= l1;
    double e2x = ay * e1z - az * e1y, e2y = az * e1x - ax * e1z, e2z = ax * e1y - ay * e1x;
    double u0 = 1e300, u1 = -1e300, v0 = 1e300, v1 = -1e300;
    for (int i = 0; i < n; ++i) {
        const T* l = local + static_cast<size_t>(i) * S * 6;
        double u = e1x * l[3] + e1y * l[4] + e1z * l[5], v = e2x * l[3] + e2y * l[4] + e2z * l[5];
        uv[2 * i] = u, uv[2 * i + 1] = v;
        u0 = std::min(u0, u), u1 = std::max(u1, u), v0 = std::min(v0, v), v1 = std::max(v1, v);
    }
    double eu = std::max(u1 - u0, 1e-12), ev = std::max(v1 - v0, 1e-12);
    int cols = static_cast<int>(std::lround(std::sqrt(groups * eu / ev)));
    cols = std::max(1, std::min(groups, cols));
    int rows = std::max(1, std::min(groups, (groups + cols - 1) / cols));
    int cells = cols * rows;
    start.assign(cells + 1, 0);
    for (int i = 0; i < n; ++i) {
        int cu = std::min(cols - 1, static_cast<int>((uv[2 * i] - u0) / eu * cols));
        int cv = std::min(rows - 1, static_cast<int>((uv[2 * i + 1] - v0) / ev * rows));
        cell[i] = cv * cols + std::max(cu, 0);
        ++start[cell[i] + 1];
    }
    for (int c = 0; c < cells; ++c) start[c + 1] += start[c];
    std::vector<int32_t> fill(start.begin(), start.end() - 1);
    for (int i = 0; i < n; ++i) order[fill[cell[i]]++] = i;
}

// Keep flags of candidates [j0, j0 + m) of a tile batch against one cone (all in the cone's body slot): the ball
// test above, then the ellipsoid itself against the plane that touches the cone along its generator nearest to
// the centre (unit normal n = p^ cos(theta) - a sin(theta), p the centre's offset from the axis): the cone (its
// origins within `spread`) lies in (x - o).n <= spread, the ellipsoid D2 <= reject_d2 in (x - o).n >= u.n - h,
// h = sqrt(reject_d2) |S R^T n| = sqrt(reject_d2 sum_c (s_c^2 W_c.n)^2) (W_c: column c of the whitening matrix),
// so u.n = |p| cos(theta) - (a.u) sin(theta) > h + spread separates them. Tighter than the ball for flat
// Gaussians (on the street LiDAR 18 % fewer survivors); applied where |p| >= |u| / 100 (p^ accurate to 1e-5,
// far inside the 1e-4 |u| margin), with h widened by 1e-3 for rounding.
template <typename T> struct ConeConstants {
    T ox, oy, oz, ax, ay, az, c2, ct, sn, sp;
    explicit ConeConstants(const GroupCone& g)
        : ox(T(g.o[0])), oy(T(g.o[1])), oz(T(g.o[2])), ax(T(g.a[0])), ay(T(g.a[1])), az(T(g.a[2])),
          c2(T(g.cos_t * g.cos_t)), ct(T(g.cos_t)), sn(T(g.sin_t)), sp(T(g.spread)) {}
};

template <typename T> inline uint8_t cone_keep_one(const ConeConstants<T>& g, const TileBatch<T>& b, int j) {
    T ux = b.mx[j] - g.ox, uy = b.my[j] - g.oy, uz = b.mz[j] - g.oz;
    T z = g.ax * ux + g.ay * uy + g.az * uz;
    T px = ux - z * g.ax, py = uy - z * g.ay, pz = uz - z * g.az;
    T p2 = px * px + py * py + pz * pz;
    T margin = g.sp + T(1e-4) * (xabs(ux) + xabs(uy) + xabs(uz));
    T rhs = b.radius[j] + margin + z * g.sn;
    if (!((rhs >= T(0)) && (p2 * g.c2 <= rhs * rhs))) return 0;  // the ball
    if (p2 < T(1e-4) * (ux * ux + uy * uy + uz * uz)) return 1;  // n ill defined
    T pl = xsqrt(p2), inv = g.ct / pl;
    T nx = px * inv - g.ax * g.sn, ny = py * inv - g.ay * g.sn, nz = pz * inv - g.az * g.sn;
    const auto& w = b.w;
    T e0 = b.s2[0][j] * (w[0][j] * nx + w[3][j] * ny + w[6][j] * nz);
    T e1 = b.s2[1][j] * (w[1][j] * nx + w[4][j] * ny + w[7][j] * nz);
    T e2 = b.s2[2][j] * (w[2][j] * nx + w[5][j] * ny + w[8][j] * nz);
    T h = xsqrt(b.reject_d2[j] * (e0 * e0 + e1 * e1 + e2 * e2)) * T(1.001);
    return uint8_t(pl * g.ct - z * g.sn <= h + margin);
}

template <typename T>
void cone_keep(const GroupCone& g, const TileBatch<T>& b, int j0, int m, uint8_t* __restrict keep) {
    const ConeConstants<T> c(g);
    for (int j = 0; j < m; ++j) keep[j] = cone_keep_one(c, b, j0 + j);
}

#ifdef XS_ALPHA_SIMD
// float, AVX2: the same tests 8 candidates at a time (the remainder one by one).
inline void cone_keep(const GroupCone& g, const TileBatch<float>& b, int j0, int m, uint8_t* __restrict keep) {
    const ConeConstants<float> c(g);
    const __m256 ox = _mm256_set1_ps(c.ox), oy = _mm256_set1_ps(c.oy), oz = _mm256_set1_ps(c.oz);
    const __m256 ax = _mm256_set1_ps(c.ax), ay = _mm256_set1_ps(c.ay), az = _mm256_set1_ps(c.az);
    const __m256 c2 = _mm256_set1_ps(c.c2), ct = _mm256_set1_ps(c.ct), sn = _mm256_set1_ps(c.sn);
    const __m256 sp = _mm256_set1_ps(c.sp), zero = _mm256_setzero_ps(), abs_mask = _mm256_set1_ps(-0.0f);
    auto ld = [&](const std::vector<float>& v, int j) { return _mm256_loadu_ps(v.data() + j); };
    auto dot3 = [](__m256 a0, __m256 a1, __m256 a2, __m256 b0, __m256 b1, __m256 b2) {
        return _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(a0, b0), _mm256_mul_ps(a1, b1)), _mm256_mul_ps(a2, b2));
    };
    int j = 0;
    for (; j + 8 <= m; j += 8) {
        const int q = j0 + j;
        __m256 ux = _mm256_sub_ps(ld(b.mx, q), ox), uy = _mm256_sub_ps(ld(b.my, q), oy);
        __m256 uz = _mm256_sub_ps(ld(b.mz, q), oz);
        __m256 z = dot3(ax, ay, az, ux, uy, uz);
        __m256 px = _mm256_sub_ps(ux, _mm256_mul_ps(z, ax)), py = _mm256_sub_ps(uy, _mm256_mul_ps(z, ay));
        __m256 pz = _mm256_sub_ps(uz, _mm256_mul_ps(z, az));
        __m256 p2 = dot3(px, py, pz, px, py, pz);
        __m256 l1 = _mm256_add_ps(_mm256_add_ps(_mm256_andnot_ps(abs_mask, ux), _mm256_andnot_ps(abs_mask, uy)),
                                  _mm256_andnot_ps(abs_mask, uz));
        __m256 margin = _mm256_add_ps(sp, _mm256_mul_ps(_mm256_set1_ps(1e-4f), l1));
        __m256 rhs = _mm256_add_ps(_mm256_add_ps(ld(b.radius, q), margin), _mm256_mul_ps(z, sn));
        __m256 ball = _mm256_and_ps(_mm256_cmp_ps(rhs, zero, _CMP_GE_OQ),
                                    _mm256_cmp_ps(_mm256_mul_ps(p2, c2), _mm256_mul_ps(rhs, rhs), _CMP_LE_OQ));
        __m256 u2 = dot3(ux, uy, uz, ux, uy, uz);
        __m256 vague = _mm256_cmp_ps(p2, _mm256_mul_ps(_mm256_set1_ps(1e-4f), u2), _CMP_LT_OQ);
        __m256 pl = _mm256_sqrt_ps(p2);
        __m256 inv = _mm256_div_ps(ct, _mm256_max_ps(pl, _mm256_set1_ps(1e-30f)));
        __m256 nx = _mm256_sub_ps(_mm256_mul_ps(px, inv), _mm256_mul_ps(ax, sn));
        __m256 ny = _mm256_sub_ps(_mm256_mul_ps(py, inv), _mm256_mul_ps(ay, sn));
        __m256 nz = _mm256_sub_ps(_mm256_mul_ps(pz, inv), _mm256_mul_ps(az, sn));
        __m256 e0 = _mm256_mul_ps(ld(b.s2[0], q), dot3(ld(b.w[0], q), ld(b.w[3], q), ld(b.w[6], q), nx, ny, nz));
        __m256 e1 = _mm256_mul_ps(ld(b.s2[1], q), dot3(ld(b.w[1], q), ld(b.w[4], q), ld(b.w[7], q), nx, ny, nz));
        __m256 e2 = _mm256_mul_ps(ld(b.s2[2], q), dot3(ld(b.w[2], q), ld(b.w[5], q), ld(b.w[8], q), nx, ny, nz));
        __m256 h = _mm256_mul_ps(_mm256_sqrt_ps(_mm256_mul_ps(ld(b.reject_d2, q), dot3(e0, e1, e2, e0, e1, e2))),
                                 _mm256_set1_ps(1.001f));
        __m256 lhs = _mm256_sub_ps(_mm256_mul_ps(pl, ct), _mm256_mul_ps(z, sn));
        __m256 reach = _mm256_or_ps(vague, _mm256_cmp_ps(lhs, _mm256_add_ps(h, margin), _CMP_LE_OQ));
        const int bits = _mm256_movemask_ps(_mm256_and_ps(ball, reach));
        for (int k = 0; k < 8; ++k) keep[j + k] = uint8_t((bits >> k) & 1);
    }
    for (; j < m; ++j) keep[j] = cone_keep_one(c, b, j0 + j);
}
#endif

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
    std::vector<GroupCone> cones;            // (S) of the current ray group
    std::vector<uint8_t> keep;               // (candidates) survivors of the current ray group
    std::vector<int32_t> group_order, group_start, group_cell;  // ray groups (ray_groups)
    std::vector<double> group_uv;
    std::vector<uint64_t> sort_keys;         // (candidates) sort_candidates' keys
    TileBatch<T> batch, group;
};

// The candidates of one ray group, filtered lazily: blocks of the tile batch pass the group's cone test only
// as far as some ray of the group gets (rays stop early), survivors copied to the group batch.
template <typename T> struct GroupSource {
    const TileBatch<T>* tile;
    TileBatch<T>* group;
    const GroupCone* cones;  // (S)
    uint8_t* keep;
    int S = 1, M = 0, filled = 0, cursor = 0;
    bool cull = false;

    const TileBatch<T>& rows() const { return cull ? *group : *tile; }

    // Rows [0, need) made available where they exist; returns how many of them exist.
    int available(int need) {
        if (!cull) return need < M ? need : M;
        if (filled >= need) return need;
        return filter(need);
    }

    // The cone test on further blocks until `need` rows survive or the tile batch ends.
    __attribute__((noinline)) int filter(int need) {
        const TileBatch<T>& b = *tile;
        while (filled < need && cursor < M) {
            const int end = std::min(M, cursor + 4 * CHUNK), n = end - cursor;
            if (S == 1) {
                cone_keep(cones[0], b, cursor, n, keep);
            } else {
                for (int j = cursor; j < end; ++j) {
                    const GroupCone& g = cones[b.slot[j]];
                    keep[j - cursor] = 1;
                    if (!g.all) cone_keep(g, b, j, 1, keep + (j - cursor));
                }
            }
            // survivors' rows listed without a branch per candidate, then copied
            int32_t sel[4 * CHUNK];
            int ns = 0;
            for (int j = 0; j < n; ++j) {
                sel[ns] = cursor + j;
                ns += keep[j];
            }
            for (int q = 0; q < ns; ++q) group->copy_row(b, sel[q], filled++);
            cursor = end;
            if (cursor == M) group->reserve(filled);  // pad the last chunk
        }
        return need < filled ? need : filled;
    }
};

// Value accumulator of one ray: NC channels held in registers, or (NC = 0) the workspace's C channels.
template <typename T, int NC> struct Accumulator {
    T acc[NC];
    Accumulator(T*, int64_t) {
        for (int c = 0; c < NC; ++c) acc[c] = T(0);
    }
    void add(T w, const T* v) {
        for (int c = 0; c < NC; ++c) acc[c] += w * v[c];
    }
    void store(T* out) const {
        for (int c = 0; c < NC; ++c) out[c] = acc[c];
    }
    static constexpr int64_t channels(int64_t) { return NC; }
};

template <typename T> struct Accumulator<T, 0> {
    T* acc;
    int64_t C;
    Accumulator(T* buffer, int64_t c) : acc(buffer), C(c) {
        for (int64_t k = 0; k < C; ++k) acc[k] = T(0);
    }
    void add(T w, const T* v) {
        for (int64_t k = 0; k < C; ++k) acc[k] += w * v[k];
    }
    void store(T* out) const {
        for (int64_t k = 0; k < C; ++k) out[k] = acc[k];
    }
    static int64_t channels(int64_t c) { return c; }
};

// Composite one ray (tile position i, index r) against its group's candidates in visiting order; values of
// hits come from the tile batch b (rows cb.src). NC: the number of channels when known at compile time (0:
// in.n_channels). Returns the candidates evaluated.
template <typename T, int NC>
int render_ray(const RasterInputs<T>& in, const RasterOutputs<T>& out, GroupSource<T>& src, const TileBatch<T>& b,
               int64_t i, int64_t r, int S, int capacity, Workspace<T>& ws) {
    const int64_t C = Accumulator<T, NC>::channels(in.n_channels);
    const T* lp = ws.local.data() + static_cast<size_t>(i) * S * 6;
    const uint8_t* ex = ws.exists.data() + static_cast<size_t>(i) * S;
    HitList<T> hits{ws.hit_t.data(), ws.hit_a.data(), ws.hit_id.data(), 0, 0, capacity, ws.hit_slot.data()};
    RayComposite<T> comp;
    Accumulator<T, NC> acc(ws.acc.data(), C);
    const T* values = b.values.data();
    auto commit = [&](int k) {
        T w = comp.push(hits.t[k], hits.alpha[k]);
        acc.add(w, values + static_cast<int64_t>(hits.payload[k]) * C);
    };
    int j = 0, seen = 0;
    alignas(64) T tt[CHUNK], dd2[CHUNK], aa[CHUNK];
    const bool single = S == 1;
    if (!single || ex[0]) {
        for (;; j += CHUNK) {
            seen = src.available(j + CHUNK);
            if (seen <= j) break;
            const TileBatch<T>& cb = src.rows();
            T lower = cb.bound[j];
            while (!hits.empty() && hits.t[hits.head] < lower && !comp.done) commit(hits.head++);
            if (comp.done) break;
            if (single) {
                evaluate_chunk(cb, j, lp, tt, dd2);
            } else {
                for (int k = 0; k < CHUNK; ++k) {
                    int s = cb.slot[j + k];
                    const T* l = lp + 6 * s;
                    T w[9];
                    for (int q = 0; q < 9; ++q) w[q] = cb.w[q][j + k];
                    max_response(w, make_vec3(cb.mx[j + k], cb.my[j + k], cb.mz[j + k]),
                                 make_vec3(l[0], l[1], l[2]), make_vec3(l[3], l[4], l[5]), tt[k], dd2[k]);
                    if (!ex[s]) dd2[k] = std::numeric_limits<T>::infinity();
                }
            }
            // candidates near enough: a bit mask (no unpredictable branch per candidate)
            uint32_t mask = 0;
            for (int k = 0; k < CHUNK; ++k)
                mask |= uint32_t((dd2[k] <= cb.reject_d2[j + k]) & (tt[k] > T(0))) << k;
            if (!mask) continue;
            alpha_lanes(cb.sigma.data() + j, dd2, aa, CHUNK, mask);
            while (mask) {
                int k = __builtin_ctz(mask);
                mask &= mask - 1;
                if (!(aa[k] > T(0))) continue;
                const T t = tt[k];
                const int32_t id = cb.id[j + k];
                const int n = hits.size;
                if (n == hits.head || hits.t[n - 1] < t || (hits.t[n - 1] == t && hits.id[n - 1] < id)) {
                    // after every pending hit (the usual case: candidates arrive nearly in hit order); a ray
                    // inserts each of the M candidates at most once, so the list (capacity M) never fills
                    hits.t[n] = t, hits.alpha[n] = aa[k], hits.id[n] = id, hits.payload[n] = cb.src[j + k];
                    hits.size = n + 1;
                } else {
                    hits.insert(t, aa[k], id, cb.src[j + k]);
                }
            }
        }
    }
    while (!hits.empty() && !comp.done) commit(hits.head++);
    out.alpha[r] = comp.alpha();
    out.transmittance[r] = comp.transmittance;
    out.distance[r] = comp.expected_distance();
    out.median[r] = comp.has_median ? comp.median : std::numeric_limits<T>::quiet_NaN();
    out.count[r] = comp.count;
    acc.store(out.values + r * C);
    return std::min(j, seen);
}

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
        if (k + 24 < n_cands) {  // scattered records and values
            __builtin_prefetch(&gs.rec[cands[k + 24]]);
            __builtin_prefetch(in.values + cands[k + 24] * C);
        }
        int64_t g = cands[k];
        const GaussianRecord<T>& rg = gs.rec[g];
        if (rg.reject_d2 < T(0)) continue;  // never visible to this sensor
        int32_t f = rg.frame;
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
        const GaussianRecord<T>& rg = gs.rec[e.second];
        int s = ws.slot_of_frame[rg.frame];
        Vec3<T> ref = load3(ws.local.data() + static_cast<size_t>(s) * 6);
        T dist = norm(load3(rg.m) - ref);
        e.first = hit_lower_bound(dist, ws.spread[s], rg.radius);
    }
    sort_candidates(b.order, ws.sort_keys);
    const int M = static_cast<int>(b.order.size());
    b.reserve(M);
    for (int j = 0; j < M; ++j) {
        int32_t g = b.order[j].second;
        const GaussianRecord<T>& rg = gs.rec[g];
        b.bound[j] = b.order[j].first;
        b.id[j] = g;
        b.slot[j] = ws.slot_of_frame[rg.frame];
        b.mx[j] = rg.m[0], b.my[j] = rg.m[1], b.mz[j] = rg.m[2];
        for (int k = 0; k < 9; ++k) b.w[k][j] = rg.w[k];
        b.reject_d2[j] = rg.reject_d2;
        b.sigma[j] = rg.sigma;
        b.radius[j] = rg.radius;
        b.src[j] = j;
    }
    // squared scales from the whitening matrix's columns (|W_c| = 1 / s_c): no per-Gaussian array to gather
    for (int c = 0; c < 3; ++c) {
        const T* __restrict a = b.w[c].data();
        const T* __restrict d = b.w[c + 3].data();
        const T* __restrict e = b.w[c + 6].data();
        T* __restrict s2 = b.s2[c].data();
#pragma omp simd
        for (int j = 0; j < M; ++j) s2[j] = T(1) / (a[j] * a[j] + d[j] * d[j] + e[j] * e[j]);
    }
    if (static_cast<int64_t>(b.values.size()) < static_cast<int64_t>(M) * C) b.values.resize(static_cast<size_t>(M) * C);
    for (int j = 0; j < M; ++j)
        for (int64_t c = 0; c < C; ++c) b.values[static_cast<size_t>(j) * C + c] = in.values[int64_t(b.id[j]) * C + c];
    for (int32_t f : ws.frames) ws.slot_of_frame[f] = -1;
    if (static_cast<int>(ws.hit_t.size()) < M) {
        ws.hit_t.resize(M), ws.hit_a.resize(M), ws.hit_id.resize(M), ws.hit_slot.resize(M);
    }
    int64_t evals = 0;
    TileBatch<T>& gb = ws.group;
    gb.reserve(M);
    ws.cones.resize(S);
    if (ws.keep.size() < static_cast<size_t>(4 * CHUNK)) ws.keep.resize(4 * CHUNK);
    ray_groups(ws.local.data(), S, static_cast<int>(n_rays), ws.group_order, ws.group_start, ws.group_cell,
               ws.group_uv);
    const int n_groups = static_cast<int>(ws.group_start.size()) - 1;
    for (int grp = 0; grp < n_groups; ++grp) {
        const int32_t* idx = ws.group_order.data() + ws.group_start[grp];
        const int n_idx = ws.group_start[grp + 1] - ws.group_start[grp];
        if (n_idx == 0) continue;
        // this group's candidates: the tile batch, or its survivors of the cone test
        GroupSource<T> src{&b, &gb, ws.cones.data(), ws.keep.data(), S, M};
        for (int s = 0; s < S; ++s) {
            ws.cones[s] = group_cone(ws.local.data(), S, s, idx, n_idx);
            src.cull = src.cull || !ws.cones[s].all;
        }
        for (int q = 0; q < n_idx; ++q) {
            const int64_t i = idx[q], r = rays[i];
            evals += C == 1   ? render_ray<T, 1>(in, out, src, b, i, r, S, M, ws)
                     : C == 3 ? render_ray<T, 3>(in, out, src, b, i, r, S, M, ws)
                              : render_ray<T, 0>(in, out, src, b, i, r, S, M, ws);
        }
    }
    evaluated += evals;
}

}  // namespace

template <typename T> void rasterize_cpu(const RasterInputs<T>& in, const RasterOutputs<T>& out) {
    const int64_t R = in.n_rays, C = in.n_channels, NT = in.num_tiles;
    // defaults: no hit
#pragma omp parallel for num_threads(in.threads) schedule(static)
    for (int64_t r = 0; r < R; ++r) {
        out.alpha[r] = T(0);
        out.transmittance[r] = T(1);
        out.distance[r] = T(0);
        out.median[r] = std::numeric_limits<T>::quiet_NaN();
        out.count[r] = 0;
        for (int64_t c = 0; c < C; ++c) out.values[r * C + c] = T(0);
    }
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
    // tiles in index order (neighbours share Gaussians: their records are still in cache), dynamic schedule
    // (a tile is a small share of the work, so no heaviest-first order is needed to balance the threads)
    std::vector<int64_t> work;
    for (int64_t t = 0; t < NT; ++t) {
        int64_t nr = ray_start[t + 1] - ray_start[t], nc = cand_start[t + 1] - cand_start[t];
        if (nr > 0 && nc > 0) work.push_back(t);
    }
    int64_t evaluated = 0;
    const int64_t n_work = static_cast<int64_t>(work.size());
    bool out_of_memory = false;  // (an exception must not leave the parallel region: raised after it)
#pragma omp parallel num_threads(in.threads) reduction(+ : evaluated)
    {
        Workspace<T> ws;
        bool ready = true;
        try {
            ws.slot_of_frame.assign(in.n_bodies, -1);
            ws.acc.resize(C > 0 ? C : 1);
        } catch (const std::bad_alloc&) {
            ready = false;
#pragma omp atomic write
            out_of_memory = true;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t k = 0; k < n_work; ++k) {
            if (!ready) continue;
            int64_t t = work[k];
            try {
                render_tile(in, out, gs, ray_list.data() + ray_start[t], ray_start[t + 1] - ray_start[t],
                            cand_list + cand_start[t], cand_start[t + 1] - cand_start[t], ws, evaluated);
            } catch (const std::bad_alloc&) {
#pragma omp atomic write
                out_of_memory = true;
            }
        }
    }
    if (out_of_memory) throw std::bad_alloc();
    if (out.evaluated) out.evaluated[0] = evaluated;
}

template <typename T>
void sensor_rays_cpu(int64_t n_rays, const T* times, const T* dirs_sensor, const T* motion, T* origins,
                     T* directions, int threads, int64_t period) {
    // the sensor's pose once per firing time (period: a LiDAR's columns) or per run of equal times (a camera's
    // rows), not per ray: the values sensor_ray_at gives (body_pose_at, then the rotation of the direction)
    const bool periodic = period > 0 && period < n_rays;
    std::vector<T> table(periodic ? 13 * static_cast<size_t>(period) : 0);  // rotation, position, time
    if (periodic) {
#pragma omp parallel for num_threads(threads) schedule(static)
        for (int64_t c = 0; c < period; ++c) {
            T* p = table.data() + 13 * c;
            Vec3<T> pos;
            body_pose_at(motion, times[c], p, pos);
            p[9] = pos.x, p[10] = pos.y, p[11] = pos.z, p[12] = times[c];
        }
    }
#pragma omp parallel num_threads(threads)
    {
        T rot[9];
        Vec3<T> pos = make_vec3(T(0), T(0), T(0));
        bool held = false;
        T held_time = T(0);
#pragma omp for schedule(static)
        for (int64_t r = 0; r < n_rays; ++r) {
            const T t = times[r];
            const T* p = periodic ? table.data() + 13 * (r % period) : nullptr;
            Vec3<T> o;
            const T* R;
            if (p && p[12] == t) {
                R = p, o = make_vec3(p[9], p[10], p[11]);
            } else {
                if (!held || !(held_time == t)) body_pose_at(motion, t, rot, pos), held = true, held_time = t;
                R = rot, o = pos;
            }
            const Vec3<T> d = matvec(R, load3(dirs_sensor + 3 * r));
            origins[3 * r] = o.x, origins[3 * r + 1] = o.y, origins[3 * r + 2] = o.z;
            directions[3 * r] = d.x, directions[3 * r + 1] = d.y, directions[3 * r + 2] = d.z;
        }
    }
}

template void sensor_rays_cpu<float>(int64_t, const float*, const float*, const float*, float*, float*, int, int64_t);
template void sensor_rays_cpu<double>(int64_t, const double*, const double*, const double*, double*, double*, int,
                                      int64_t);
template void rasterize_cpu<float>(const RasterInputs<float>&, const RasterOutputs<float>&);
template void rasterize_cpu<double>(const RasterInputs<double>&, const RasterOutputs<double>&);

}  // namespace xs
