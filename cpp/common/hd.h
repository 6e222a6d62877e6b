// Portability macros for code compiled both by nvcc for the device and by the
// host compiler: the CUDA kernels' per-thread bodies (cpp/gpu), which the host
// emulation (cpp/gpu/emulate.h) runs as plain loops over blocks and threads
// (issue 8, item 6), and the MEBin stable-run choice (cpp/mebin/select.h) that the
// CPU single pass and the GPU sweep share.
#pragma once

#if defined(__CUDACC__)
#define ANCD_HD __host__ __device__
#define ANCD_HD_INLINE __host__ __device__ __forceinline__
#else
#define ANCD_HD
#define ANCD_HD_INLINE inline
#endif
