// Per-ray list of live hits awaiting compositing, kept sorted by (hit distance, Gaussian index).
//
// The rasterizers visit a tile's candidates in ascending order of a lower bound L on the hit distance of any
// live hit (alpha >= 1/255) of that candidate on any ray of the tile (see hit_lower_bound). A buffered hit with
// t < L of the next candidate can no longer be preceded by anything not yet seen, so it is composited
// (committed) right away; this reproduces the reference order exactly while compositing can stop early.
#pragma once

#include "common.h"

namespace xs {

template <typename T> struct HitList {
    T* t;
    T* alpha;
    int32_t* id;
    int head = 0;  // first uncommitted entry
    int size = 0;  // one past the last entry
    int capacity = 0;
    int32_t* payload = nullptr;  // optional per-hit datum moved along (the CPU keeps the tile-batch slot here)

    XS_HD bool empty() const { return head >= size; }

    // Insert keeping (t, id) order; false (nothing inserted) if full.
    XS_HD bool insert(T tv, T av, int32_t iv, int32_t pv = 0) {
        if (size >= capacity) {
            if (head == 0) return false;
            // slide the pending entries to the front
            int n = size - head;
            for (int k = 0; k < n; ++k) {
                t[k] = t[head + k];
                alpha[k] = alpha[head + k];
                id[k] = id[head + k];
                if (payload) payload[k] = payload[head + k];
            }
            head = 0;
            size = n;
        }
        int k = size;
        while (k > head && (t[k - 1] > tv || (t[k - 1] == tv && id[k - 1] > iv))) {
            t[k] = t[k - 1];
            alpha[k] = alpha[k - 1];
            id[k] = id[k - 1];
            if (payload) payload[k] = payload[k - 1];
            --k;
        }
        t[k] = tv;
        alpha[k] = av;
        id[k] = iv;
        if (payload) payload[k] = pv;
        ++size;
        return true;
    }
};

// Lower bound on the hit distance t* of a live hit of a Gaussian whose visible ellipsoid (D2 <= k^2) lies in a
// ball of `radius` around its mean, for rays whose origins lie within `spread` of `origin` (all in the
// Gaussian's frame, metres): t* >= |mu - origin| - spread - radius, less a rounding margin.
template <typename T> XS_HD T hit_lower_bound(T centre_distance, T spread, T radius) {
    T margin = T(1e-4) * (centre_distance + radius) + T(1e-5);
    return centre_distance - spread - radius - margin;
}

}  // namespace xs
