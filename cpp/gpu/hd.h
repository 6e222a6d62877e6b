// Portability macros for code shared by the CUDA kernels and their host
// emulation (cpp/gpu/emulate.h): per-thread bodies are ANCD_HD functions, so
// the same source runs in a __global__ launch under nvcc and in a plain loop
// over blocks and threads under the host compiler (issue 8, item 6).
#pragma once

#if defined(__CUDACC__)
#define ANCD_HD __host__ __device__
#define ANCD_HD_INLINE __host__ __device__ __forceinline__
#else
#define ANCD_HD
#define ANCD_HD_INLINE inline
#endif
