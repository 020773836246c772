"""PNG pictures of rendered outputs (matplotlib with the Agg backend; written atomically)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..io_utils import atomic_write  # noqa: E402


def save_png(path: Path, image: np.ndarray) -> None:
    """Save an RGB float image in [0,1] (H,W,3) as PNG."""
    atomic_write(Path(path), lambda tmp: plt.imsave(tmp, np.clip(image, 0, 1), format="png"))


def colorize(values: np.ndarray, vmax: float | None = None, cmap: str = "turbo") -> np.ndarray:
    """Colour-map a (H,W) array of distances; NaN / non-positive -> black."""
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v) & (v > 0)
    vmax = vmax or (float(np.percentile(v[ok], 98)) if ok.any() else 1.0)
    rgb = plt.get_cmap(cmap)(np.clip(v / vmax, 0, 1))[..., :3]
    rgb[~ok] = 0
    return rgb


def range_image(range_median: np.ndarray, elevations: list[float], max_range: float = 60.0) -> np.ndarray:
    """LiDAR range image (beams sorted top = highest elevation, columns in firing order), upscaled rows."""
    order = np.argsort(elevations)[::-1]
    img = colorize(range_median[order], vmax=max_range)
    return np.repeat(img, max(1, 256 // max(1, len(elevations))), axis=0)


def bird_eye_view(path: Path, points: np.ndarray, intensity: np.ndarray | None = None, extent: float = 50.0,
                  title: str = "") -> None:
    """Top view of sensor-frame points (x forward, y left) coloured by height or intensity."""
    fig, ax = plt.subplots(figsize=(6, 6), dpi=110)
    c = intensity if intensity is not None and len(intensity) == len(points) else points[:, 2]
    ax.scatter(-points[:, 1], points[:, 0], s=0.6, c=c, cmap="viridis")
    ax.set_xlim(-extent, extent)
    ax.set_ylim(-extent, extent)
    ax.set_aspect("equal")
    ax.set_xlabel("-y (m, right)")
    ax.set_ylabel("x (m, forward)")
    ax.set_title(title)
    fig.tight_layout()
    atomic_write(Path(path), lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)


def contact_sheet(path: Path, images: list[tuple[str, np.ndarray]], columns: int = 2) -> None:
    """Grid of titled images (H,W,3 floats)."""
    rows = (len(images) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(6 * columns, 3.6 * rows), dpi=100, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, (title, img) in zip(axes.ravel(), images):
        ax.imshow(np.clip(img, 0, 1), aspect="auto")
        ax.set_title(title)
    fig.tight_layout()
    atomic_write(Path(path), lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
