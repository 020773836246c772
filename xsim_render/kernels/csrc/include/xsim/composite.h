// Front-to-back compositing of one ray (xsim_render/raster/composite.py, CONVENTIONS): hits are pushed in
// order of their own hit distance (ties: lower Gaussian index first). Gaussian i contributes w_i = alpha_i T_i
// while T_i >= 1e-4 (the one that takes T below is included, then compositing stops); expected distance =
// sum w t / sum w (0 without hits); median = t of the first Gaussian after which T < 0.5 (NaN if never).
#pragma once

#include "common.h"

namespace xs {

template <typename T> struct RayComposite {
    T transmittance = T(1);
    T weight_sum = T(0);
    T weighted_t = T(0);
    T median = T(0);
    bool has_median = false;
    bool done = false;
    int count = 0;  // Gaussians composited (the per-ray state a backward pass needs)

    // Composite one hit (t, alpha > 0); returns its weight (0 once compositing has stopped).
    XS_HD T push(T t, T alpha) {
        if (done) return T(0);
        T w = alpha * transmittance;
        T next = transmittance * (T(1) - alpha);
        weight_sum += w;
        weighted_t += w * t;
        if (!has_median && next < T(MEDIAN_TRANSMITTANCE)) {
            median = t;
            has_median = true;
        }
        transmittance = next;
        ++count;
        if (!(transmittance >= T(TRANSMITTANCE_MIN))) done = true;
        return w;
    }

    XS_HD T alpha() const { return T(1) - transmittance; }
    XS_HD T expected_distance() const { return weight_sum > T(0) ? weighted_t / xmax(weight_sum, T(1e-30)) : T(0); }
};

}  // namespace xs
