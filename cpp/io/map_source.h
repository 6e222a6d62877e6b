// Where an anomaly map comes from: a file (decoded here, in the worker) or
// caller memory (uint8 used in place; float normalised as the reference's
// export recipe does, METHOD.md §1.4).
#pragma once
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "common/cancel.h"

namespace anomalyncd::io {

struct MapSource {
  std::string path;            // set for files
  const void* data = nullptr;  // set for in-memory maps (not owned)
  std::string dtype;           // "uint8" | "float32" | "float64" for in-memory maps
  int height = 0;
  int width = 0;
  std::string label;           // how errors name this map ("maps[3]" or the path)
};

// Materialises every map as CV_8UC1. uint8 memory is wrapped without a copy,
// so the caller's buffers must outlive the returned Mats. Float maps of the
// batch are min-max normalised together (one global min and max, x255,
// truncation to uint8): the per-category export recipe of METHOD.md §1.4. NaN/Inf
// throw ERR_INVALID_ARGUMENT naming the map.
std::vector<cv::Mat> loadMaps(const std::vector<MapSource>& sources, int threads, const CancelToken* cancel,
                              std::vector<std::string>& warnings);

}  // namespace anomalyncd::io
