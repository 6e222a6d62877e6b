// .safetensors files: the format of converted checkpoints and of training bundles.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "model/state_dict.h"

namespace anomalyncd::model {

// A .safetensors file whatever its name, with readStateDict's checks and errors
// (F32 / F16 / BF16 / F64, offsets validated against the file; tensors as float32);
// `metadata` holds the string values of `__metadata__`.
struct SafetensorsFile {
  StateDict tensors;
  std::map<std::string, std::string> metadata;
};
SafetensorsFile readSafetensors(const std::string& path);

// safetensors writer: every tensor as contiguous little-endian F32, keys sorted,
// header padded to 8 bytes, "__metadata__": {"format": "pt", then `metadata` in order}
// ("format" itself is refused). `atomic`: through writeFileAtomic (common/atomic_file.h).
// Error(kIo) on failure.
void writeSafetensors(const std::string& path, const StateDict& sd,
                      const std::vector<std::pair<std::string, std::string>>& metadata = {}, bool atomic = false);

}  // namespace anomalyncd::model
