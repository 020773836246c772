// Shared basics of the XSIM kernels: the host/device qualifier, the CONVENTIONS constants, small vector
// helpers and the scalar maths overloads. Header-only C++17; every function compiles for the host (C++/OpenMP)
// and, under nvcc, for the device.
#pragma once

#include <math.h>
#include <stdint.h>

#if defined(__CUDACC__)
#define XS_HD __host__ __device__ __forceinline__
#define XS_DEVICE __device__
#define XS_SIMD
#define XS_SIMD_KEEP
#define XS_HD_INLINE __host__ __device__ __forceinline__
#define XS_HD_LANES __host__ __device__ __forceinline__
#else
#define XS_HD inline
#define XS_HD_INLINE inline __attribute__((always_inline))  // small enough, and called inside XS_SIMD loops
#define XS_DEVICE
// a function around an XS_SIMD loop of a few lanes: kept out of line, where GCC's early complete unrolling of the
// inlined loop would leave scalar code for the vectoriser
#define XS_HD_LANES __attribute__((noinline))
// a loop over independent lanes the host compiler vectorises (its branch-free selects are if-converted with
// -fno-trapping-math; `omp simd` would turn the loop's small structs into per-lane arrays that GCC cannot vectorise)
#if defined(__clang__)
#define XS_SIMD _Pragma("clang loop vectorize(enable)")
#else
#define XS_SIMD _Pragma("GCC ivdep")
#endif
// XS_SIMD for a short loop of a small body, which GCC would otherwise unroll completely before vectorising
#if defined(__clang__)
#define XS_SIMD_KEEP XS_SIMD
#else
#define XS_SIMD_KEEP _Pragma("GCC ivdep") _Pragma("GCC unroll 1")
#endif
#endif

// XS_DEVICE_CODE: code compiled for the GPU (nvcc's device pass), or for the host simulation of the CUDA kernels
// (XS_CUDA_SIM, csrc/sim/), which runs the device's variants of the header functions on the CPU.
#if defined(__CUDA_ARCH__) || defined(XS_CUDA_SIM)
#define XS_DEVICE_CODE 1
#endif

namespace xs {

// Compositing constants fixed by CONVENTIONS.md (mirrors xsim_render/constants.py; a test compares them).
constexpr double ALPHA_MAX = 0.99;              // alpha = min(ALPHA_MAX, rho)
constexpr double ALPHA_MIN = 1.0 / 255.0;       // contributions below are skipped
constexpr double TRANSMITTANCE_MIN = 1e-4;      // compositing stops once transmittance falls below this
constexpr double MEDIAN_TRANSMITTANCE = 0.5;    // median: first Gaussian after which transmittance < this
constexpr int CAMERA_TILE = 16;                 // camera tiles are 16 x 16 pixels
constexpr int LIDAR_TILE_BEAMS = 8;             // LiDAR tiles: 8 beams (elevation-sorted) x 32 columns
constexpr int LIDAR_TILE_COLUMNS = 32;
constexpr double PI = 3.14159265358979323846;

// Scalar maths, one overload per precision (the C functions exist on the host and on the device).
XS_HD float xexp(float x) { return expf(x); }
XS_HD double xexp(double x) { return exp(x); }
XS_HD float xlog(float x) { return logf(x); }
XS_HD double xlog(double x) { return log(x); }
XS_HD float xsqrt(float x) { return sqrtf(x); }
XS_HD double xsqrt(double x) { return sqrt(x); }
XS_HD float xsin(float x) { return sinf(x); }
XS_HD double xsin(double x) { return sin(x); }
XS_HD float xcos(float x) { return cosf(x); }
XS_HD double xcos(double x) { return cos(x); }
XS_HD float xatan2(float y, float x) { return atan2f(y, x); }
// atan2 in double precision without a library call (the LiDAR phase is the projection's hottest function):
// the ratio t = min(|x|, |y|) / max(|x|, |y|) in [0, 1], reduced to |u| <= tan(pi/8) by atan(t) = pi/4 +
// atan((t - 1)/(t + 1)) (one division either way), atan(u) = u + u z Q(z) (z = u^2) with Q a degree-9 Chebyshev
// fit (|error| < 9e-16 on [0, tan^2(pi/8)]), then the octant and quadrant by selects (no data-dependent branch).
// Within 4 ulp of the library, most of them at the reduction point (test_kernels_math.py); signed zeros as in C
// (atan2(+-0, -0) = +-pi); NaN in, NaN out.
XS_HD_INLINE double xatan2(double y, double x) {
    const double ax = fabs(x), ay = fabs(y);
    const bool swap = ay > ax;
    const double num = swap ? ax : ay, den = swap ? ay : ax;
    const bool big = num > 0.41421356237309503 * den;  // t > tan(pi/8)
    const double top = big ? num - den : num, bottom = big ? num + den : den;
    const double u = top / (bottom > 0.0 ? bottom : 1.0), z = u * u;
    double q = 0.02275052699336167;
    q = q * z - 0.04483334622272886;
    q = q * z + 0.05736332165907643;
    q = q * z - 0.06649613695291669;
    q = q * z + 0.0769105515839315;
    q = q * z - 0.09090852557176049;
    q = q * z + 0.11111109636534361;
    q = q * z - 0.1428571426609662;
    q = q * z + 0.19999999999898407;
    q = q * z - 0.3333333333333325;
    double r = u + u * z * q + (big ? 0.78539816339744831 : 0.0);
    r = swap ? 1.5707963267948966 - r : r;
    r = copysign(1.0, x) < 0.0 ? 3.1415926535897931 - r : r;
    r = copysign(r, y);
    return ((x != x) | (y != y)) ? x + y : r;
}
XS_HD float xasin(float x) { return asinf(x); }
XS_HD double xasin(double x) { return asin(x); }
// An upper bound on asin(x) for the bounds of the projection's proofs (x >= 0; NaN in, NaN out): below 1/2,
// tan(asin x) = x / sqrt(1 - x^2), within a factor 1 + 0.42 x^2 of asin x and no library call, widened by 4 ulp for
// the rounding of both; above, the library's asin widened alike.
XS_HD_INLINE double asin_upper(double x) {
    const double widen = 1 + 1e-15;
    return x < 0.5 ? x / sqrt(1 - x * x) * widen : asin(x >= 1 ? 1.0 : x) * widen;
}
XS_HD float xfloor(float x) { return floorf(x); }
XS_HD double xfloor(double x) { return floor(x); }
XS_HD float xceil(float x) { return ceilf(x); }
XS_HD double xceil(double x) { return ceil(x); }
XS_HD float xabs(float x) { return fabsf(x); }
XS_HD double xabs(double x) { return fabs(x); }
XS_HD float xacos_clamped(float x) { return acosf(x < -1.0f ? -1.0f : (x > 1.0f ? 1.0f : x)); }
XS_HD double xacos_clamped(double x) { return acos(x < -1.0 ? -1.0 : (x > 1.0 ? 1.0 : x)); }
template <typename T> XS_HD T xmin(T a, T b) { return b < a ? b : a; }
template <typename T> XS_HD T xmax(T a, T b) { return a < b ? b : a; }
template <typename T> XS_HD T xclamp(T x, T lo, T hi) { return x < lo ? lo : (hi < x ? hi : x); }
template <typename T> XS_HD bool xisfinite(T x) { return x - x == T(0); }

// 3-vectors as plain arrays; 3x3 matrices row-major (m[3 * row + col]).
template <typename T> struct Vec3 {
    T x, y, z;
};

template <typename T> XS_HD Vec3<T> make_vec3(T x, T y, T z) { return Vec3<T>{x, y, z}; }
template <typename T> XS_HD Vec3<T> load3(const T* p) { return Vec3<T>{p[0], p[1], p[2]}; }
template <typename T> XS_HD Vec3<T> operator+(Vec3<T> a, Vec3<T> b) { return {a.x + b.x, a.y + b.y, a.z + b.z}; }
template <typename T> XS_HD Vec3<T> operator-(Vec3<T> a, Vec3<T> b) { return {a.x - b.x, a.y - b.y, a.z - b.z}; }
template <typename T> XS_HD Vec3<T> operator*(T s, Vec3<T> a) { return {s * a.x, s * a.y, s * a.z}; }
template <typename T> XS_HD T dot(Vec3<T> a, Vec3<T> b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
template <typename T> XS_HD T norm(Vec3<T> a) { return xsqrt(dot(a, a)); }
template <typename T> XS_HD Vec3<T> cross(Vec3<T> a, Vec3<T> b) {
    return {a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x};
}

template <typename S, typename T> XS_HD Vec3<S> cast3(Vec3<T> a) { return {S(a.x), S(a.y), S(a.z)}; }

// M v (M of scalars T, v of scalars S: plain or dual numbers)
template <typename T, typename S> XS_HD Vec3<S> matvec(const T* m, Vec3<S> v) {
    return {m[0] * v.x + m[1] * v.y + m[2] * v.z, m[3] * v.x + m[4] * v.y + m[5] * v.z,
            m[6] * v.x + m[7] * v.y + m[8] * v.z};
}

// M^T v  (== the row vector v times M, as the PyTorch reference writes `v @ M`)
template <typename T, typename S> XS_HD Vec3<S> matTvec(const T* m, Vec3<S> v) {
    return {m[0] * v.x + m[3] * v.y + m[6] * v.z, m[1] * v.x + m[4] * v.y + m[7] * v.z,
            m[2] * v.x + m[5] * v.y + m[8] * v.z};
}

// C = A B
template <typename T> XS_HD void matmul(const T* a, const T* b, T* c) {
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j)
            c[3 * i + j] = a[3 * i] * b[j] + a[3 * i + 1] * b[3 + j] + a[3 * i + 2] * b[6 + j];
}

}  // namespace xs
