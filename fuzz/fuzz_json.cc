// libFuzzer: cpp/common/json.cc (safetensors headers, training-bundle metadata). Every
// input either parses or throws JsonError; anything else (a crash, a sanitizer report,
// another exception) is a bug.
#include <cstdint>
#include <string>

#include "common/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const anomalyncd::Json j = anomalyncd::parseJson(text, 64);
    (void)j.get("__metadata__");
  } catch (const anomalyncd::JsonError&) {
  }
  return 0;
}
