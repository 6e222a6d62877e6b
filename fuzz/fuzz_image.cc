// libFuzzer: anomaly-map and image decoding as cpp/pipeline calls it (io::readMapU8,
// io::readImageRGB): our checks (empty, truncated PNG/JPEG, header size against maxPixels),
// libpng for grey PNGs, OpenCV's imgcodecs plugin for everything else. Outcomes: a Mat or
// anomalyncd::Error with code ERR_BAD_INPUT / ERR_IO / ERR_LIMIT; anything else is a bug.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "common/error.h"
#include "common/limits.h"
#include "common.h"
#include "io/image_io.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Keep single inputs small enough for the fuzzer's RSS limit: 16 Mpx.
  anomalyncd::Limits l = anomalyncd::limits();
  l.maxPixels = int64_t(1) << 24;
  anomalyncd::setLimits(l);
  return 0;
}

static void expectOurError(const anomalyncd::Error& e) {
  const std::string& c = e.code();
  if (c != anomalyncd::code::kBadInput && c != anomalyncd::code::kIo && c != anomalyncd::code::kLimit) abort();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = anomalyncd::fuzz::writeInput(data, size, ".img");
  try {
    cv::Mat m = anomalyncd::io::readMapU8(path);
    if (m.type() != CV_8UC1 || m.empty()) abort();
  } catch (const anomalyncd::Error& e) {
    expectOurError(e);
  }
  try {
    cv::Mat m = anomalyncd::io::readImageRGB(path);
    if (m.type() != CV_8UC3 || m.empty()) abort();
  } catch (const anomalyncd::Error& e) {
    expectOurError(e);
  }
  return 0;
}
