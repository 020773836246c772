// alpha = alpha_of(sigma, D2) (response.h) of CHUNK-sized runs of candidates at once, for the CPU rasterizer.
//
// The scalar alpha_of calls expf once per live hit, about a quarter of the rasterizer's time. With AVX2 + FMA
// (x86-64-v3 builds) the float version evaluates 8 lanes at a time: x = (k + r) ln2 / 32 with k an integer and
// |r| <= 1/2, exp(x) = 2^(k/32) 2^(r/32), the first from a 32-entry table of 2^(i/32) (correctly rounded, computed
// with mpmath; stored minus i << 47 so that adding k << 47 also sets the exponent) and the second a degree-4
// Chebyshev fit in r (|relative error| < 8e-14), all in double, then rounded to float: the correctly rounded
// float except where exp(x) lies within about 1e-13 of a rounding boundary (test_kernels_math.py counts the
// lanes that differ from the library's expf). Elsewhere (double precision, other targets) it is the scalar
// alpha_of. Arguments outside |x| < 88 (D2 > 176, never a live hit with sigma <= 1) fall back to the scalar call
// lane by lane.
#pragma once

#include <stdint.h>

#include "xsim/response.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define XS_ALPHA_SIMD 1
#endif

namespace xs {

// a[k] = alpha_of(sigma[k], d2[k]) for k < n (any n; `lanes` marks the lanes whose value is needed: others may
// hold anything finite or not).
template <typename T> inline void alpha_lanes(const T* sigma, const T* d2, T* a, int n, uint32_t lanes) {
    while (lanes) {
        int k = __builtin_ctz(lanes);
        lanes &= lanes - 1;
        if (k < n) a[k] = alpha_of(sigma[k], d2[k]);
    }
}

// y[k] = exp(x[k]) for k < 4 (the rasterizer's per-Gaussian scales: exp(-log_scale) and exp(max log_scale)).
template <typename T> inline void exp_four(const T* x, T* y) {
    for (int k = 0; k < 4; ++k) y[k] = xexp(x[k]);
}

#ifdef XS_ALPHA_SIMD
namespace simd_exp {
// bits(2^(i/32)) - (i << 47), i = 0..31 (2^(i/32) correctly rounded to double)
alignas(64) constexpr int64_t TAB[32] = {
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51, 0x3fef72b83c7d517b,
    0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1, 0x3fef06fe0a31b715, 0x3feef1a7373aa9cb,
    0x3feedea64c123422, 0x3feece086061892d, 0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429,
    0x3feea47eb03a5585, 0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d, 0x3feee89f995ad3ad,
    0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069, 0x3fef5818dcfba487, 0x3fef7c97337b9b5f,
    0x3fefa4afa2a490da, 0x3fefd0765b6e4540,
};
constexpr double INV_LN2_N = 46.16624130844683;  // 32 / ln 2
constexpr double SHIFT = 6755399441055744.0;      // 1.5 2^52: adding it rounds to an integer in the mantissa
// 2^(r/32) ~ 1 + P1 r + P2 r^2 + P3 r^3 + P4 r^4 on |r| <= 1/2 (Chebyshev fit)
constexpr double P1 = 0.02166084939172217, P2 = 0.0002345961981994449, P3 = 1.6938633903155644e-06,
                 P4 = 9.172607532092245e-09;

// exp of 4 float arguments held as doubles (|x| < 88), rounded to float by the caller.
inline __m256d exp4(__m256d xd) {
    const __m256d inv = _mm256_set1_pd(INV_LN2_N), shift = _mm256_set1_pd(SHIFT);
    __m256d kd = _mm256_fmadd_pd(inv, xd, shift);
    const __m256i ki = _mm256_castpd_si256(kd);
    kd = _mm256_sub_pd(kd, shift);
    const __m256d r = _mm256_fmsub_pd(inv, xd, kd);  // x 32 / ln2 - k, |r| <= 1/2
    const __m256i idx = _mm256_and_si256(ki, _mm256_set1_epi64x(31));
    __m256i t = _mm256_i64gather_epi64(reinterpret_cast<const long long*>(TAB), idx, 8);
    t = _mm256_add_epi64(t, _mm256_slli_epi64(ki, 47));
    const __m256d s = _mm256_castsi256_pd(t);  // 2^(k/32)
    __m256d y = _mm256_fmadd_pd(_mm256_set1_pd(P4), r, _mm256_set1_pd(P3));
    y = _mm256_fmadd_pd(y, r, _mm256_set1_pd(P2));
    y = _mm256_fmadd_pd(y, r, _mm256_set1_pd(P1));
    y = _mm256_fmadd_pd(y, r, _mm256_set1_pd(1.0));
    return _mm256_mul_pd(y, s);
}

// alpha_of of 8 lanes (float): min(0.99, sigma exp(-D2/2)), 0 below 1/255; bit mask of lanes with D2 > 176.
inline uint32_t alpha8(const float* sigma, const float* d2, float* a) {
    const __m256 dv = _mm256_loadu_ps(d2);
    const __m256 x = _mm256_mul_ps(_mm256_set1_ps(-0.5f), dv);
    const __m256d lo = exp4(_mm256_cvtps_pd(_mm256_castps256_ps128(x)));
    const __m256d hi = exp4(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)));
    const __m256 e = _mm256_set_m128(_mm256_cvtpd_ps(hi), _mm256_cvtpd_ps(lo));
    __m256 v = _mm256_mul_ps(_mm256_loadu_ps(sigma), e);
    const __m256 amax = _mm256_set1_ps(float(ALPHA_MAX));
    v = _mm256_blendv_ps(v, amax, _mm256_cmp_ps(amax, v, _CMP_LT_OQ));  // xmin(v, 0.99): 0.99 < v ? 0.99 : v
    v = _mm256_and_ps(v, _mm256_cmp_ps(v, _mm256_set1_ps(float(ALPHA_MIN)), _CMP_GE_OQ));
    _mm256_storeu_ps(a, v);
    // not (D2 <= 176): outside the range the table form covers (NaN included)
    return uint32_t(_mm256_movemask_ps(_mm256_cmp_ps(dv, _mm256_set1_ps(176.0f), _CMP_NLE_UQ)));
}
}  // namespace simd_exp

// float, AVX2: the four in one exp4 (the library's expf but within about 1e-13 of a rounding boundary), the
// scalar calls if any |x| >= 88.
inline void exp_four(const float* x, float* y) {
    const __m128 xf = _mm_loadu_ps(x);
    const __m128 big = _mm_cmp_ps(_mm_andnot_ps(_mm_set1_ps(-0.0f), xf), _mm_set1_ps(88.0f), _CMP_NLT_UQ);
    if (_mm_movemask_ps(big)) {
        for (int k = 0; k < 4; ++k) y[k] = expf(x[k]);
        return;
    }
    _mm_storeu_ps(y, _mm256_cvtpd_ps(simd_exp::exp4(_mm256_cvtps_pd(xf))));
}

// float, AVX2: 8 lanes at a time (n a multiple of 8), the scalar call only on needed lanes out of range.
inline void alpha_lanes(const float* sigma, const float* d2, float* a, int n, uint32_t lanes) {
    uint32_t wide = 0;
    for (int k = 0; k + 8 <= n; k += 8)
        if ((lanes >> k) & 0xffu) wide |= simd_exp::alpha8(sigma + k, d2 + k, a + k) << k;  // (others not needed)
    for (int k = n & ~7; k < n; ++k) wide |= 1u << k;  // a tail: scalar
    alpha_lanes<float>(sigma, d2, a, n, wide & lanes);
}
#endif

}  // namespace xs
