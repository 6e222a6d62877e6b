#include "common/device.h"

#include <cctype>

#include "common/error.h"
#include "gpu/gpu.h"

namespace anomalyncd::device {

Resolved resolve(const std::string& request, const Caps& caps) {
  Resolved r;
  if (request == "cpu") return r;
  if (request == "auto") {
    r.cuda = caps.cudaBuilt && caps.deviceCount > 0;
    return r;
  }
  int index = 0;
  if (request.rfind("cuda", 0) != 0) goto bad;
  if (request.size() > 4) {
    const std::string digits = request.substr(5);
    if (request[4] != ':' || digits.empty() || digits.size() > 4) goto bad;
    for (char c : digits)
      if (!std::isdigit(static_cast<unsigned char>(c))) goto bad;
    index = std::stoi(digits);
  }
  if (!caps.cudaBuilt)
    throw Error(code::kDevice, "Device '" + request + "' requested, but " + caps.what +
                                   " was built without CUDA (use device 'cpu' or 'auto', or a CUDA build)");
  if (caps.deviceCount == 0)
    throw Error(code::kDevice, "Device '" + request + "' requested, but no CUDA device is present (no GPU, or no NVIDIA driver)");
  if (index >= caps.deviceCount)
    throw Error(code::kDevice, "Device '" + request + "': CUDA device index " + std::to_string(index) + " is out of range (" +
                                   std::to_string(caps.deviceCount) + " device" + (caps.deviceCount == 1 ? "" : "s") +
                                   " present)");
  r.cuda = true;
  r.index = index;
  return r;
bad:
  throw Error(code::kInvalidArgument,
              "Option 'device' must be 'cpu', 'cuda', 'cuda:N' or 'auto' (got '" + request + "')");
}

Caps kernelCaps() { return {gpu::cudaBuilt(), gpu::deviceCount(), "this build of anomalyncd (its MEBin kernels)"}; }

}  // namespace anomalyncd::device
