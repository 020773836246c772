// The CUDA kernels of csrc/cuda/rays.cu compiled for the host simulation (include/cuda_runtime.h).
#include "../cuda/rays.cu"
