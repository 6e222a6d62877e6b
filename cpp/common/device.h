// Where a call runs: the ONE place that turns a `device` request ('cpu' | 'cuda' |
// 'cuda:N' | 'auto') into a device, for both addons. Torch-free: the core addon (MEBin)
// asks it with the CUDA kernels' capabilities (deviceCaps below, cpp/gpu/gpu.h), the
// model addon with libtorch's (cpp/model/device.h: torchDevice()).
//
//   'auto'   -> cuda:0 when the build has CUDA and a device is present, else cpu
//   'cpu'    -> cpu
//   'cuda'   -> cuda:0; 'cuda:N' -> cuda:N. Unmet: Error(kDevice) naming what is missing
//               (the build has no CUDA / no CUDA device is present / N is out of range).
//   other    -> Error(kInvalidArgument).
#pragma once
#include <string>

namespace anomalyncd::device {

// What an execution backend can do: whether it was built with CUDA, how many devices it
// sees, and how to name it in messages ("this build of anomalyncd", "this libtorch").
struct Caps {
  bool cudaBuilt = false;
  int deviceCount = 0;
  std::string what;
};

struct Resolved {
  bool cuda = false;
  int index = 0;  // CUDA device index (0 for cpu)
  std::string name() const { return cuda ? "cuda:" + std::to_string(index) : "cpu"; }
};

// Parses and resolves `request` against `caps` (see above).
Resolved resolve(const std::string& request, const Caps& caps);

// The capabilities of the CUDA kernels of the core stages (cpp/gpu: MEBin).
Caps kernelCaps();

}  // namespace anomalyncd::device
