// The CUDA extension's Python binding (csrc/cuda/bindings.cpp) over the host simulation of its kernels.
#include "../cuda/bindings.cpp"
