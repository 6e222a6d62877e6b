// libFuzzer: model::readStateDict on arbitrary bytes: torch.save zips (libtorch's
// PyTorchStreamReader under our checks, then the restricted unpickler of torch_zip.cc)
// and safetensors sniffed by content. Outcomes: a state dict or anomalyncd::Error
// (ERR_CHECKPOINT / ERR_LIMIT); another exception escaping, or a crash, is a bug.
#include <cstdint>
#include <cstdlib>

#include "common/error.h"
#include "common/limits.h"
#include "common.h"
#include "model/checkpoint.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  anomalyncd::Limits l = anomalyncd::limits();
  l.maxTensorElements = int64_t(1) << 24;  // 64 MiB of float32 per tensor at most
  anomalyncd::setLimits(l);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = anomalyncd::fuzz::writeInput(data, size, ".pth");
  try {
    anomalyncd::model::StateDict sd = anomalyncd::model::readStateDict(path);
    (void)sd;
  } catch (const anomalyncd::Error& e) {
    if (e.code() != anomalyncd::code::kCheckpoint && e.code() != anomalyncd::code::kLimit) abort();
  }
  return 0;
}
