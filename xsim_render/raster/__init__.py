"""Rasterization: 3D max-response evaluation, front-to-back compositing, and the brute-force check."""
