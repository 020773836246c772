#!/usr/bin/env bash
# GPU check of the cuda backend (issue 9), for a machine with an NVIDIA GPU, nvcc and a CUDA build of torch
# (run from the repository root; uses `python3` or $PYTHON, NOT the CPU-only .venv).
#   1. GPU model (nvidia-smi) and torch / CUDA versions             -> OUT/gpu.txt
#   2. builds the cpu and cuda kernels (TORCH_CUDA_ARCH_LIST=9.0 by default: H100 / H200)
#   3. `xsim doctor` and test/test_kernels_cuda.py (the device-resident pipeline against the reference and the
#      cpu kernels)                                                  -> OUT/log.txt, OUT/tests.xml
#   4. the benchmark, device-resident scenes: cuda on the 100k, 200k and 1M street scenes, then cpu on 200k (the
#      cuda / cpu ratio) and the reference on 100k (the ratio to the reference) as far as the step's deadline
#      allows; results are written after every configuration   -> OUT/gpu_kernels.{csv,md,png}
#   5. a summary with the pass/fail of each step                     -> OUT/summary.txt
# Usage: scripts/gpu_check.sh [OUT_DIR]   (default: $OUT, else ./gpu_check_out). The steps' time limits add up
# to 475 s, so it ends within 8 minutes on one H100 whatever happens. Pure-Python dependencies missing there can
# be carried as wheels in .whl/ (installed with pip --no-index into /tmp/xsim_site). Exit code: number of failed
# steps.
set -uo pipefail
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
OUT_DIR=${1:-${OUT:-gpu_check_out}}
PY=${PYTHON:-python3}
mkdir -p "$OUT_DIR"
LOG="$OUT_DIR/log.txt"
SUMMARY="$OUT_DIR/summary.txt"
: >"$LOG"
: >"$SUMMARY"
export PYTHONUNBUFFERED=1
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
export MAX_JOBS=${MAX_JOBS:-8}
if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target /tmp/xsim_site .whl/*.whl >>"$LOG" 2>&1
    export PYTHONPATH=/tmp/xsim_site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-}
failed=0
step() {  # step NAME LIMIT_S COMMAND...
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS
    echo "=== $name" >>"$LOG"
    if timeout "$limit" "$@" >>"$LOG" 2>&1; then
        echo "ok    $name ($((SECONDS - start)) s)" | tee -a "$SUMMARY"
    else
        echo "FAIL  $name ($((SECONDS - start)) s, exit $?)" | tee -a "$SUMMARY"
        failed=$((failed + 1))
    fi
}

{
    nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv
    nvidia-smi
    "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'device', torch.cuda.get_device_name(0))"
    nvcc --version | tail -2
} >"$OUT_DIR/gpu.txt" 2>&1
step "python dependencies" 20 "$PY" -c "import torch, numpy, yaml, safetensors, matplotlib, pytest; assert torch.cuda.is_available()"
step "build cpu + cuda kernels" 150 "$PY" -m xsim_render.kernels.build cpu cuda
step "xsim doctor" 25 "$PY" -m xsim_render.cli.main doctor
step "cuda backend tests" 150 "$PY" -m pytest -q -rs -p no:cacheprovider --junitxml="$OUT_DIR/tests.xml" \
    test/test_kernels_cuda.py
rm -f bench/results/gpu_kernels.csv bench/results/gpu_kernels.md bench/results/gpu_kernels.png
step "benchmark (cuda 100k/200k/1M; cpu 200k; reference 100k)" 130 "$PY" bench/bench_kernels.py \
    --backends cuda cpu reference --gaussians 100000 200000 1000000 --sizes cpu=200000 reference=100000 \
    --repeats 3 --deadline 120 --config-timeout 60 --prefix gpu_kernels
for f in csv md png; do
    [ -f "bench/results/gpu_kernels.$f" ] && cp "bench/results/gpu_kernels.$f" "$OUT_DIR/"
done
echo "failed steps: $failed" | tee -a "$SUMMARY"
exit "$failed"
