// libFuzzer: model::readSafetensors (the container of converted checkpoints and of
// training bundles: header JSON, tensor table, string metadata). Outcomes: tensors +
// metadata or anomalyncd::Error (ERR_CHECKPOINT / ERR_LIMIT); anything else is a bug.
#include <cstdint>
#include <cstdlib>

#include "common/error.h"
#include "common/limits.h"
#include "common.h"
#include "model/safetensors.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  anomalyncd::Limits l = anomalyncd::limits();
  l.maxTensorElements = int64_t(1) << 24;
  anomalyncd::setLimits(l);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = anomalyncd::fuzz::writeInput(data, size, ".safetensors");
  try {
    anomalyncd::model::SafetensorsFile f = anomalyncd::model::readSafetensors(path);
    for (const auto& kv : f.metadata) (void)kv;
  } catch (const anomalyncd::Error& e) {
    if (e.code() != anomalyncd::code::kCheckpoint && e.code() != anomalyncd::code::kLimit) abort();
  }
  return 0;
}
