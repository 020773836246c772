// Forward-mode dual numbers v + d eps (eps^2 = 0): the value and the derivative with respect to one scalar
// (the observation time eta in the rolling-shutter solve) in one pass, through the same templated motion and
// sensor-model code that computes plain values (xsim_render/motion/rolling_shutter.py uses torch.func.jvp).
#pragma once

#include "common.h"

namespace xs {

template <typename T> struct Dual {
    T v, d;
    XS_HD Dual() : v(0), d(0) {}
    XS_HD Dual(T value) : v(value), d(0) {}  // NOLINT: constants promote implicitly
    XS_HD Dual(T value, T deriv) : v(value), d(deriv) {}
};

template <typename T> XS_HD Dual<T> operator+(Dual<T> a, Dual<T> b) { return {a.v + b.v, a.d + b.d}; }
template <typename T> XS_HD Dual<T> operator-(Dual<T> a, Dual<T> b) { return {a.v - b.v, a.d - b.d}; }
template <typename T> XS_HD Dual<T> operator-(Dual<T> a) { return {-a.v, -a.d}; }
template <typename T> XS_HD Dual<T> operator*(Dual<T> a, Dual<T> b) { return {a.v * b.v, a.d * b.v + a.v * b.d}; }
template <typename T> XS_HD Dual<T> operator/(Dual<T> a, Dual<T> b) {
    return {a.v / b.v, (a.d * b.v - a.v * b.d) / (b.v * b.v)};
}
template <typename T> XS_HD Dual<T> operator+(Dual<T> a, T b) { return {a.v + b, a.d}; }
template <typename T> XS_HD Dual<T> operator+(T a, Dual<T> b) { return {a + b.v, b.d}; }
template <typename T> XS_HD Dual<T> operator-(Dual<T> a, T b) { return {a.v - b, a.d}; }
template <typename T> XS_HD Dual<T> operator-(T a, Dual<T> b) { return {a - b.v, -b.d}; }
template <typename T> XS_HD Dual<T> operator*(Dual<T> a, T b) { return {a.v * b, a.d * b}; }
template <typename T> XS_HD Dual<T> operator*(T a, Dual<T> b) { return {a * b.v, a * b.d}; }
template <typename T> XS_HD Dual<T> operator/(Dual<T> a, T b) { return {a.v / b, a.d / b}; }
template <typename T> XS_HD Dual<T> operator/(T a, Dual<T> b) { return {a / b.v, -a * b.d / (b.v * b.v)}; }
template <typename T> XS_HD bool operator<(Dual<T> a, Dual<T> b) { return a.v < b.v; }
template <typename T> XS_HD bool operator>(Dual<T> a, Dual<T> b) { return a.v > b.v; }
template <typename T> XS_HD bool operator<=(Dual<T> a, Dual<T> b) { return a.v <= b.v; }
template <typename T> XS_HD bool operator>=(Dual<T> a, Dual<T> b) { return a.v >= b.v; }
template <typename T> XS_HD bool operator<(Dual<T> a, T b) { return a.v < b; }
template <typename T> XS_HD bool operator>(Dual<T> a, T b) { return a.v > b; }
template <typename T> XS_HD bool operator<=(Dual<T> a, T b) { return a.v <= b; }
template <typename T> XS_HD bool operator>=(Dual<T> a, T b) { return a.v >= b; }

template <typename T> XS_HD T value_of(Dual<T> a) { return a.v; }
template <typename T> XS_HD T value_of(T a) { return a; }

template <typename T> XS_HD Dual<T> xsqrt(Dual<T> a) {
    T s = xsqrt(a.v);
    return {s, a.d / (T(2) * s)};
}
template <typename T> XS_HD Dual<T> xsin(Dual<T> a) { return {xsin(a.v), a.d * xcos(a.v)}; }
template <typename T> XS_HD Dual<T> xcos(Dual<T> a) { return {xcos(a.v), -a.d * xsin(a.v)}; }
template <typename T> XS_HD Dual<T> xexp(Dual<T> a) {
    T e = xexp(a.v);
    return {e, a.d * e};
}
template <typename T> XS_HD Dual<T> xatan2(Dual<T> y, Dual<T> x) {
    T r2 = x.v * x.v + y.v * y.v;
    return {xatan2(y.v, x.v), (x.v * y.d - y.v * x.d) / r2};
}
template <typename T> XS_HD Dual<T> xasin(Dual<T> a) {
    return {xasin(a.v), a.d / xsqrt(T(1) - a.v * a.v)};
}
template <typename T> XS_HD Dual<T> xfloor(Dual<T> a) { return {xfloor(a.v), T(0)}; }
template <typename T> XS_HD Dual<T> xclamp(Dual<T> x, T lo, T hi) {
    return x.v < lo ? Dual<T>(lo) : (hi < x.v ? Dual<T>(hi) : x);
}

}  // namespace xs
