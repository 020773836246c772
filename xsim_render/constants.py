"""Compositing constants of docs/conventions.md (shared by every renderer and the brute-force check)."""

ALPHA_MAX = 0.99            # alpha = min(ALPHA_MAX, rho)
ALPHA_MIN = 1.0 / 255.0     # contributions below are skipped
TRANSMITTANCE_MIN = 1e-4    # compositing stops once transmittance falls below this
MEDIAN_TRANSMITTANCE = 0.5  # median distance: first Gaussian at which transmittance falls below this
CAMERA_TILE = 16            # camera tiles are 16 x 16 pixels
LIDAR_TILE_BEAMS = 8        # LiDAR tiles: 8 beams (elevation-sorted) x 32 columns (SplatAD A.1)
LIDAR_TILE_COLUMNS = 32
