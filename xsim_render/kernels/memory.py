"""Process allocator setting for the fast kernels: keep freed memory for the next capture.

Every capture allocates the same large buffers again (rays, per-Gaussian records, tile lists, outputs: about
40 MB for a 128 x 2048 LiDAR sweep of 200k Gaussians). With glibc's defaults, buffers above a threshold are
mapped fresh and freed memory at the top of the heap goes back to the system, so each capture page-faults its
buffers in again: on the 2-vCPU benchmark machine about 10 000 faults and 10-15 % of a LiDAR render's wall time.

retain_freed_memory() asks glibc (mallopt) to serve allocations up to 32 MiB (the largest value glibc accepts)
from its heap and to keep up to 1 GiB of freed memory instead of returning it. The process then stays at its peak
resident size, the trade that caching allocators such as PyTorch's GPU allocator make. It is a process-wide
setting: the kernels apply it when they are first loaded (kernels.build.load). XSIM_RETAIN_MEMORY=0 in the
environment turns it off; it does nothing where the C library is not glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # bytes: larger allocations are still mapped (and unmapped when freed)
TRIM_THRESHOLD = 1 << 30  # bytes of free memory at the heap's top kept before it is returned

_STATE: dict[str, str] = {}


def retain_freed_memory() -> str:
    """Apply the setting once per process; returns what is in effect, as one line for `xsim doctor`."""
    if "line" in _STATE:
        return _STATE["line"]
    if os.environ.get("XSIM_RETAIN_MEMORY", "1").strip() == "0":
        line = "glibc defaults (XSIM_RETAIN_MEMORY=0)"
    else:
        line = _mallopt()
    _STATE["line"] = line
    return line


def _mallopt() -> str:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        version = libc.gnu_get_libc_version().decode()
    except (OSError, AttributeError, TypeError):
        return "system allocator defaults (not glibc)"
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    if not (mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)):
        return f"glibc {version} refused the setting (defaults)"
    return (f"glibc {version}: freed memory kept for reuse (allocations up to {MMAP_THRESHOLD >> 20} MiB from "
            f"the heap, up to {TRIM_THRESHOLD >> 30} GiB kept; XSIM_RETAIN_MEMORY=0 turns this off)")
