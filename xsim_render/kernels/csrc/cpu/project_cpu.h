// CPU (OpenMP) projection and tiling stage: per Gaussian the footprints of footprint.h (UT rectangles on the
// LiDAR phase branches, bounding cones where the UT cannot represent it), then the sorted, de-duplicated
// (tile, Gaussian) lists of tiling.h. Everything is computed in double precision.
#pragma once

#include <stdint.h>

#include <vector>

#include "xsim/project.h"

namespace xs {

struct ProjectInputs : ProjectParams {
    bool keep_footprints = false;  // also return the footprints (tests)
    int threads = 1;
};

struct ProjectOutputs {
    std::vector<int64_t> pair_tile, pair_gaussian;  // sorted by tile, then Gaussian; unique
    // footprints (keep_footprints): K entries
    std::vector<int64_t> fp_gaussian;
    std::vector<double> fp_lo, fp_hi;    // (K,2)
    std::vector<uint8_t> fp_full;        // bounding-cone footprint
    std::vector<int8_t> fp_branch;       // -1 / 0 / +1
    std::vector<double> fp_axis, fp_half;  // (K,3), (K,) for full ones
    int64_t culled = 0, cones = 0, far_skipped = 0;
};

void project_and_tile(const ProjectInputs& in, ProjectOutputs& out);

// Per tile, the cone of its rays' unit sensor-frame directions (R,3) (invalid rays ignored): axis = normalised
// mean direction, half = largest angle to it (pi if the directions cancel); has_rays = some valid ray
// (xsim_render/tiling/cones.py tile_cones).
void tile_cones(int64_t n_rays, const double* directions, const bool* valid, const int64_t* ray_tile,
                int64_t num_tiles, double* axis, double* half, uint8_t* has_rays);

}  // namespace xs
