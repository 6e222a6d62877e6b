#include "io/map_source.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common/error.h"
#include "common/parallel.h"
#include "io/image_io.h"

namespace anomalyncd::io {
namespace {

template <typename T>
void floatRange(const MapSource& s, double& lo, double& hi) {
  const T* p = static_cast<const T*>(s.data);
  const size_t n = static_cast<size_t>(s.height) * s.width;
  for (size_t i = 0; i < n; ++i) {
    const double v = p[i];
    if (!std::isfinite(v))
      throw Error(code::kInvalidArgument, s.label + " holds a non-finite value (" + std::to_string(v) + ") at pixel " +
                                              std::to_string(i / s.width) + "," + std::to_string(i % s.width));
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
}

template <typename T>
cv::Mat normaliseFloat(const MapSource& s, double lo, double hi) {
  cv::Mat out(s.height, s.width, CV_8UC1);
  const T* p = static_cast<const T*>(s.data);
  const double span = hi - lo;
  uint8_t* o = out.ptr<uint8_t>();
  const size_t n = static_cast<size_t>(s.height) * s.width;
  for (size_t i = 0; i < n; ++i) {
    // (v - min) / (max - min) * 255 then a truncating cast, as numpy's astype(uint8).
    const double scaled = span > 0 ? (static_cast<double>(p[i]) - lo) / span * 255.0 : 0.0;
    o[i] = static_cast<uint8_t>(std::min(255.0, std::max(0.0, scaled)));
  }
  return out;
}

bool isFloat(const MapSource& s) { return s.path.empty() && (s.dtype == "float32" || s.dtype == "float64"); }

}  // namespace

std::vector<cv::Mat> loadMaps(const std::vector<MapSource>& sources, int threads, const CancelToken* cancel,
                              std::vector<std::string>& warnings) {
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  bool anyFloat = false;
  for (const auto& s : sources) {
    if (!isFloat(s)) continue;
    anyFloat = true;
    if (s.dtype == "float32") floatRange<float>(s, lo, hi);
    else floatRange<double>(s, lo, hi);
  }
  if (anyFloat && !(hi > lo))
    warnings.push_back("Every float anomaly map holds the same value (" + std::to_string(lo) +
                       "): they all become 0 after min-max normalisation");

  std::vector<cv::Mat> maps(sources.size());
  parallelFor(sources.size(), threads, cancel, [&](size_t i) {
    const MapSource& s = sources[i];
    if (!s.path.empty()) {
      maps[i] = readMapU8(s.path);
    } else if (s.dtype == "uint8") {
      maps[i] = cv::Mat(s.height, s.width, CV_8UC1, const_cast<void*>(s.data));
    } else if (s.dtype == "float32") {
      maps[i] = normaliseFloat<float>(s, lo, hi);
    } else if (s.dtype == "float64") {
      maps[i] = normaliseFloat<double>(s, lo, hi);
    } else {
      throw Error(code::kInvalidArgument, s.label + " has dtype '" + s.dtype + "'; expected uint8, float32 or float64");
    }
    if (maps[i].rows < 1 || maps[i].cols < 1) throw Error(code::kBadInput, s.label + " is empty (0 pixels)");
  });
  for (size_t i = 0; i < maps.size(); ++i)
    if (maps[i].rows == 1 && maps[i].cols == 1)  // valid for the reference, but almost surely a mistake
      warnings.push_back(sources[i].label + " is 1x1 pixel; it is binarised as the reference does");
  return maps;
}

}  // namespace anomalyncd::io
