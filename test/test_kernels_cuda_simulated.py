"""The CUDA kernels themselves (csrc/cuda/*.cu), run on the CPU by the host simulation of the CUDA runtime.

csrc/sim/include/ stands in for cuda_runtime.h and cub: the .cu files compile unchanged as C++ (XS_CUDA_SIM), a
block's threads run as fibers with real __syncthreads semantics, __shared__ memory is shared by the block, and
the device variants of the header functions are used (e.g. the LiDAR time solve one sigma point at a time, as
on a GPU). With XSIM_CUDA_SIMULATION=1 the `cuda` backend loads that build on CPU tensors, so the GPU test
module test_kernels_cuda.py runs end to end: binning, the radix-sorted candidate lists, the shared-memory tile
rasterizer and the overflow redo, against the reference and the cpu kernels. Timing means nothing here.

The simulation's own checks (a C++ program, test/cpp/cuda_sim_selftest.cpp): a barrier's effect on shared
memory, __syncthreads_and, divergent barriers and writes past an allocation reported as errors, the shuffled
thread order exposing a race, the cub stand-ins (stable radix sort on a bit range, inclusive scan).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from xsim_render.kernels import build

ROOT = Path(__file__).resolve().parents[1]
SIM_INCLUDE = build.CSRC / "sim" / "include"


@pytest.fixture(scope="module")
def selftest(tmp_path_factory) -> Path:
    """The self-test program, compiled with the kernels' compiler (a missing compiler fails, never skips)."""
    cxx = build.compiler()
    assert cxx is not None, "no C++ compiler (the kernels need one: install g++ or set CXX)"
    exe = tmp_path_factory.mktemp("cuda_sim") / "cuda_sim_selftest"
    subprocess.run([cxx, "-std=c++17", "-O2", f"-I{SIM_INCLUDE}", "-o", str(exe),
                    str(ROOT / "test" / "cpp" / "cuda_sim_selftest.cpp")], check=True, capture_output=True, text=True)
    return exe


def run_case(exe: Path, case: str, seed: int = 0) -> str:
    env = dict(os.environ, XS_CUDA_SIM_SHUFFLE=str(seed))
    return subprocess.run([str(exe), case], check=True, capture_output=True, text=True, env=env).stdout.strip()


def reversed_blocks(n: int = 100, block: int = 64) -> list[int]:
    """What `reverse` computes: each block's inputs (i, or -1 past n) in reverse order."""
    out = []
    for i in range(n):
        j = i // block * block + block - 1 - i % block
        out.append(j if j < n else -1)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_barrier_orders_shared_memory_and_a_missing_one_is_caught(selftest, seed):
    expected = " ".join(map(str, reversed_blocks())) + " err=0"
    assert run_case(selftest, "reverse", seed) == expected
    assert run_case(selftest, "racy", seed) != expected, "without the barrier the threads read unwritten entries"


def test_syncthreads_and_atomics_and_cub(selftest):
    assert run_case(selftest, "vote", 5) == "2 5 8 err=0", "every thread leaves the loop on the same pass"
    assert run_case(selftest, "atomic", 5) == "672 err=0"
    assert run_case(selftest, "sort") == "bad=0 sums=3 3 8 9"


def test_divergent_barriers_and_overruns_are_errors(selftest):
    assert run_case(selftest, "divergent").startswith("err=719 simulated CUDA: threads of block 0 wait at different")
    out = run_case(selftest, "overrun")
    assert out.startswith("fill=a5a5a5a5 err=719"), "fresh allocations hold a fill pattern, the overrun an error"
    assert "wrote past the end of a 40-byte allocation" in out


def test_the_gpu_test_module_passes_on_the_simulated_kernels():
    """test_kernels_cuda.py in a child process (the switch is read per process), threads in shuffled order."""
    env = dict(os.environ, XSIM_CUDA_SIMULATION="1", XS_CUDA_SIM_SHUFFLE="11", XSIM_CUDA_TEST_BACKEND="cuda",
               ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfs",
                           str(ROOT / "test" / "test_kernels_cuda.py")], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=1200)
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
    assert proc.returncode == 0, tail
    summary = re.search(r"(\d+) passed", tail)
    assert summary and int(summary.group(1)) >= 80, tail
    assert "skipped" not in tail and "failed" not in tail, tail
