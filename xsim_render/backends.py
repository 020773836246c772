"""Rendering backends chosen by name: `reference` (pure PyTorch), `cpu` (C++/OpenMP), `cuda`, `auto`.

`auto` resolves to the fastest usable backend: cuda if usable, else cpu, else reference. Every backend
produces the same output dictionaries; the reference is the specification the others are tested against.
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import InputError
from .raster.rasterize import rasterize as reference_rasterize

BACKENDS = ("reference", "cpu", "cuda", "auto")


def available_backends() -> dict[str, str | None]:
    """Concrete backend name -> None when usable, else the one-line reason why not."""
    return {"reference": None, "cpu": "not built yet (fast kernels pending)", "cuda": "not built yet"}


def resolve_backend(name: str) -> str:
    """The concrete backend for `name` ('auto' picks the fastest usable); InputError if unknown or unusable."""
    status = available_backends()
    if name == "auto":
        for candidate in ("cuda", "cpu", "reference"):
            if status.get(candidate) is None:
                return candidate
    if name not in status:
        raise InputError(f"backend: must be one of {', '.join(BACKENDS)}, got {name!r}")
    if status[name] is not None:
        raise InputError(f"backend: {name!r} is not usable here: {status[name]}")
    return name


def rasterizer(name: str) -> Callable:
    """The rasterize function of a concrete backend (same signature as raster.rasterize.rasterize)."""
    if name == "reference":
        return reference_rasterize
    raise InputError(f"backend: {name!r} has no rasterizer")
