// Device queries and the entry points of cpp/gpu/gpu.h. The CUDA runtime calls
// live in mebin_cuda.cu (built when ANOMALYNCD_CUDA_KERNELS is defined); this
// file is plain C++ and is compiled in every build.
#include "gpu/gpu.h"

#include <string>

#include "common/error.h"
#include "gpu/emulate.h"
#include "gpu/mebin_batch.h"

#if defined(ANOMALYNCD_CUDA_KERNELS)
#include "gpu/cuda_backend.h"
#endif

namespace anomalyncd::gpu {

bool cudaBuilt() {
#if defined(ANOMALYNCD_CUDA_KERNELS)
  return true;
#else
  return false;
#endif
}

int deviceCount() {
#if defined(ANOMALYNCD_CUDA_KERNELS)
  return cuda::deviceCount();
#else
  return 0;
#endif
}

void requireDevice(int index) {
  if (!cudaBuilt())
    throw Error(code::kDevice,
                "CUDA requested, but this build of anomalyncd has no CUDA kernels "
                "(configure with ANOMALYNCD_CUDA=ON and a CUDA toolkit)");
  const int n = deviceCount();
  if (n == 0)
    throw Error(code::kDevice,
                "CUDA requested, but no CUDA device is available (no GPU, or no NVIDIA driver)");
  if (index < 0 || index >= n)
    throw Error(code::kDevice, "CUDA device index " + std::to_string(index) +
                                   " is out of range: " + std::to_string(n) + " device" +
                                   (n == 1 ? "" : "s") + " present");
}

std::string deviceName(int index) {
  requireDevice(index);
#if defined(ANOMALYNCD_CUDA_KERNELS)
  return cuda::deviceName(index);
#else
  return {};
#endif
}

std::vector<mebin::Result> binarizeBatch(const std::vector<mebin::MapView>& maps,
                                         const mebin::Range& range,
                                         const mebin::Options& options, int device) {
  requireDevice(device);
#if defined(ANOMALYNCD_CUDA_KERNELS)
  return cuda::binarizeBatch(maps, range, options, device);
#else
  (void)maps, (void)range, (void)options;
  return {};
#endif
}

std::vector<mebin::Result> binarizeBatchEmulated(const std::vector<mebin::MapView>& maps,
                                                 const mebin::Range& range,
                                                 const mebin::Options& options,
                                                 unsigned shuffleSeed,
                                                 int64_t maxChunkPixels) {
  emulate::MebinBackend backend(shuffleSeed);
  return binarizeBatchWith(backend, maps, range, options,
                           maxChunkPixels > 0 ? maxChunkPixels : kMaxChunkPixels);
}

}  // namespace anomalyncd::gpu
