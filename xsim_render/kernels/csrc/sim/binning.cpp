// The CUDA kernels of csrc/cuda/binning.cu compiled for the host simulation (include/cuda_runtime.h).
#include "../cuda/binning.cu"
