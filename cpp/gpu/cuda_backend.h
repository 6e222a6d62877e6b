// Internal: the CUDA runtime side of gpu.h, implemented in mebin_cuda.cu
// (compiled only in a build with ANOMALYNCD_CUDA_KERNELS).
#pragma once
#include <string>
#include <vector>

#include "mebin/mebin.h"

namespace anomalyncd::gpu::cuda {

int deviceCount();  // 0 on any runtime error (no driver, no device)
std::string deviceName(int index);
std::vector<mebin::Result> binarizeBatch(const std::vector<mebin::MapView>& maps,
                                         const mebin::Range& range,
                                         const mebin::Options& options, int device);

// Device time of the sweep kernel alone (CUDA events, after one warm-up launch) on
// maps already on the device (one launch over all of them): what a pipeline whose maps come from a
// GPU detector pays. Milliseconds per launch over `repeats` launches.
struct SweepTiming {
  double medianMs;
  double bestMs;
};
SweepTiming timeSweep(const std::vector<mebin::MapView>& maps, const mebin::Range& range,
                      const mebin::Options& options, int device, int repeats);

}  // namespace anomalyncd::gpu::cuda
