"""A top-down map of a synthetic world (PNG): static meshes in their lit colours, the ego route, the actors' paths.

World frame, metres: x to the right, y up. Faces are drawn lowest first, so roofs cover walls and tree crowns
cover the sidewalk, as seen from above. The ego's path is white with a dot every second; each actor's path is
a dashed line from a circle (its position at t = 0) in the actor's colour, labelled with its id.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..io_utils import atomic_write
from .materials import lit_colors
from .world import World


def save_overview(world: World, path: str | Path, dpi: int = 110, overlay: Callable[[Any], None] | None = None
                  ) -> None:
    """Write the top-down map of `world` to `path` (PNG, written atomically); `overlay(ax)`, when given, draws more
    on the map's matplotlib axes (world frame, metres) before the legend is made."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import PolyCollection

    mesh = world.static_mesh
    tri = mesh.triangles
    normals = mesh.face_normals
    seen = np.abs(normals[:, 2]) > 1e-3  # vertical walls have no area from above
    order = np.argsort(tri[:, :, 2].max(1)[seen], kind="stable")
    faces = tri[seen][order]
    colors = lit_colors(world.materials, world.static_face_material[seen][order], faces.mean(1),
                        normals[seen][order])
    lo, hi = tri.reshape(-1, 3).min(0), tri.reshape(-1, 3).max(0)
    aspect = (hi[1] - lo[1]) / max(hi[0] - lo[0], 1e-9)
    fig, ax = plt.subplots(figsize=(12, max(4.0, min(12.0, 12 * aspect)) + 0.6))
    ax.add_collection(PolyCollection(faces[:, :, :2], facecolors=colors, edgecolors="none"))
    times = world.ego_trajectory.times.numpy()
    ego = world.ego_trajectory.positions.numpy()
    ax.plot(ego[:, 0], ego[:, 1], color="white", lw=2.0, label="ego (dot every 1 s)")
    seconds = np.arange(0.0, float(times[-1]) + 1e-9, 1.0)
    ax.plot(np.interp(seconds, times, ego[:, 0]), np.interp(seconds, times, ego[:, 1]), "o", color="white", ms=4)
    for actor in world.actors:
        traj = actor.trajectory
        t = traj.times.numpy()
        inside = (t >= 0.0) & (t <= world.duration)
        p = traj.positions.numpy()[inside]
        if len(p) == 0:
            continue
        color = np.asarray(world.materials[int(actor.face_material[0])].albedo)  # the body: the model's first part
        ax.plot(p[:, 0], p[:, 1], "--", color=color, lw=1.5)
        ax.plot(p[0, 0], p[0, 1], "o", mfc="none", mec=color, ms=8)
        ax.annotate(f"{actor.category} {actor.id}", (p[0, 0], p[0, 1]), fontsize=7, color="white",
                    xytext=(4, 4), textcoords="offset points")
    if overlay is not None:
        overlay(ax)
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal")
    ax.set_facecolor((0.15, 0.15, 0.15))
    ax.set_xlabel("x (m, world)")
    ax.set_ylabel("y (m, world)")
    ax.set_title(f"world: preset {world.preset}, seed {world.seed}, drive {world.duration:g} s (from above)")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    try:
        atomic_write(Path(path), lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"))
    finally:
        plt.close(fig)
