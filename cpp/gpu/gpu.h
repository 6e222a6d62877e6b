// The CUDA side of the core stages (no N-API, no libtorch): device queries and
// MEBin batched on one GPU. Always compiled; in a build without CUDA kernels
// (ANOMALYNCD_CUDA=OFF, or AUTO without a working nvcc) every query says "no
// device" and every call that needs one throws Error(ERR_DEVICE).
//
// The CUDA runtime is linked statically, so a CUDA build loads and runs on a
// machine without a driver or a GPU: deviceCount() is then 0.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "mebin/mebin.h"

namespace anomalyncd::gpu {

// True when this build has the CUDA kernels compiled in.
bool cudaBuilt();

// Number of usable CUDA devices; 0 in a CPU build, without a driver or
// without a GPU. Never throws.
int deviceCount();

// The device's name ("NVIDIA H200"); throws Error(ERR_DEVICE) on a bad index
// or in a build without CUDA.
std::string deviceName(int index);

// Throws Error(ERR_DEVICE) naming what is missing (build without CUDA, no
// device, index out of range) unless `index` names a usable device.
void requireDevice(int index);

// mebin::binarize on every map, batched on CUDA device `device`: results are
// identical to mebin::binarize (threshold, count, sequence, binary, foreground).
// Maps may differ in size. Throws Error(ERR_INVALID_ARGUMENT) as binarize does,
// Error(ERR_DEVICE) when no such device can be used, Error(ERR_OUT_OF_MEMORY)
// when device memory runs out.
std::vector<mebin::Result> binarizeBatch(const std::vector<mebin::MapView>& maps,
                                         const mebin::Range& range,
                                         const mebin::Options& options, int device);

// The same algorithm, launch for launch, run on the host by the kernel
// emulation (cpp/gpu/emulate.h): every kernel body, the launch geometry and the
// host orchestration are the ones binarizeBatch runs. `shuffleSeed` != 0 runs
// the threads of each launch in a seeded random order (the union-find result
// must not depend on the schedule). `maxChunkPixels` > 0 splits the batch into
// smaller chunks than the CUDA path does (to exercise the double-buffered
// chunk sequence on small maps). For tests; available in every build.
std::vector<mebin::Result> binarizeBatchEmulated(const std::vector<mebin::MapView>& maps,
                                                 const mebin::Range& range,
                                                 const mebin::Options& options,
                                                 unsigned shuffleSeed = 0,
                                                 int64_t maxChunkPixels = 0);

}  // namespace anomalyncd::gpu
