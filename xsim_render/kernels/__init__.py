"""Fast rendering kernels: one header-only C++17 source of math (csrc/include/xsim/, usable on host and device)
compiled into an OpenMP CPU extension and a CUDA extension, with thin PyTorch bindings.

Nothing is compiled at import: `build.load(kind)` builds an extension on first use (cached, see build.py);
`make kernels` builds ahead of time. The Python side (raster.py) packs the reference renderer's inputs into
flat arrays; the kernels take raw pointers and sizes.
"""

from .build import KernelBuildError, load

__all__ = ["KernelBuildError", "load"]
