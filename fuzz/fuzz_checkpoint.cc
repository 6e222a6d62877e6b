// libFuzzer: the checkpoint readers on arbitrary bytes.
//  * model::readStateDict: torch.save zips (libtorch's PyTorchStreamReader under our checks,
//    then the restricted unpickler of torch_zip.cc) and safetensors sniffed by content;
//  * model::readSafetensors: the container of converted checkpoints and training bundles
//    (header JSON, tensor table, string metadata).
// Outcomes: tensors or anomalyncd::Error (ERR_CHECKPOINT / ERR_LIMIT / ERR_IO); another
// exception escaping, a crash or a sanitizer report is a bug.
#include <cstdint>
#include <cstdlib>

#include "common.h"
#include "common/error.h"
#include "common/limits.h"
#include "model/checkpoint.h"
#include "model/safetensors.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  anomalyncd::Limits l = anomalyncd::limits();
  l.maxTensorElements = int64_t(1) << 24;  // 64 MiB of float32 per tensor at most
  anomalyncd::setLimits(l);
  return 0;
}

static void expectOurError(const anomalyncd::Error& e) {
  if (e.code() != anomalyncd::code::kCheckpoint && e.code() != anomalyncd::code::kLimit) abort();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = anomalyncd::fuzz::writeInput(data, size, ".ckpt");
  try {
    anomalyncd::model::StateDict sd = anomalyncd::model::readStateDict(path);
    (void)sd;
  } catch (const anomalyncd::Error& e) {
    expectOurError(e);
  }
  try {
    anomalyncd::model::SafetensorsFile f = anomalyncd::model::readSafetensors(path);
    (void)f;
  } catch (const anomalyncd::Error& e) {
    expectOurError(e);
  }
  return 0;
}
