// The CUDA kernels of csrc/cuda/rasterize.cu compiled for the host simulation (include/cuda_runtime.h).
#include "../cuda/rasterize.cu"
