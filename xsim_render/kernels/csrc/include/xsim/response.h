// Response of a 3D Gaussian along a ray at its point of maximum response (3DGUT / 3DGRT;
// xsim_render/raster/response.py). In the whitened frame x_w = (x - mu) W, W = R S^-1, the ray o + t d becomes
// o' + t d' and   t* = -(o'.d') / (d'.d'),  D2 = |o' + t* d'|^2  (the RESIDUAL form: never |o'|^2 - (o'.d')^2 /
// (d'.d'), which cancels catastrophically in float32 for thin Gaussians seen from far away), rho = sigma
// exp(-D2 / 2), alpha = min(0.99, rho), zero below 1/255 or behind the origin (t* <= 0).
#pragma once

#include "common.h"

namespace xs {

// W = R diag(inv) (row-major 3x3) of a Gaussian with rotation R (row-major) and inverse std devs inv = 1 / s.
template <typename T> XS_HD void whitening_from_inverse_scales(const T* rot, const T* inv, T* w) {
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) w[3 * i + j] = rot[3 * i + j] * inv[j];
}

// W = R diag(exp(-log_scale)) (row-major 3x3) of a Gaussian with rotation R (row-major) and log std devs.
template <typename T> XS_HD void whitening_matrix(const T* rot, const T* log_scale, T* w) {
    const T inv[3] = {xexp(-log_scale[0]), xexp(-log_scale[1]), xexp(-log_scale[2])};
    whitening_from_inverse_scales(rot, inv, w);
}

// Hit distance t* (metres along d when d is a unit vector of the Gaussian's frame) and squared Mahalanobis
// distance D2 of the ray (o, d) to the Gaussian (mu, W).
template <typename T> XS_HD void max_response(const T* w, Vec3<T> mu, Vec3<T> o, Vec3<T> d, T& t, T& d2) {
    Vec3<T> op = matTvec(w, o - mu);
    Vec3<T> dp = matTvec(w, d);
    T dd = xmax(dot(dp, dp), T(1e-30));
    t = -dot(op, dp) / dd;
    Vec3<T> res = op + t * dp;
    d2 = dot(res, res);
}

// alpha = min(0.99, sigma exp(-D2/2)), 0 below 1/255 (CONVENTIONS).
template <typename T> XS_HD T alpha_of(T sigma, T d2) {
    T a = xmin(sigma * xexp(T(-0.5) * d2), T(ALPHA_MAX));
    return a >= T(ALPHA_MIN) ? a : T(0);
}

// Largest D2 with alpha >= 1/255: 2 ln(255 sigma) (negative: the Gaussian is never visible).
template <typename T> XS_HD T visible_d2(T sigma) {
    T s = T(255) * sigma;
    return s >= T(1) ? T(2) * xlog(s) : T(-1);
}

}  // namespace xs
