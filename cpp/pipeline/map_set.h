// The maps of one MEBin call: decoded or normalised to uint8, and the search
// range they are binarised with (docs/METHOD.md §2.1).
#pragma once
#include <opencv2/core.hpp>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/cancel.h"
#include "io/map_source.h"
#include "mebin/mebin.h"

namespace anomalyncd::pipeline {

// [min, max] in raw uint8 map units, as the option sets carry it (absent: the set's own).
using RangeOption = std::optional<std::pair<int, int>>;

struct MapSet {
  std::vector<cv::Mat> maps;          // CV_8UC1; may view caller memory
  std::vector<mebin::MapView> views;  // over `maps`
  mebin::Range range;                 // the explicit range, or the set's
};

// Decodes/normalises every map (io::loadMaps) on `threads` threads, then fixes
// the search range. Reference behaviours worth knowing (a degenerate range,
// 1x1 maps, constant float maps) are appended to `warnings`.
MapSet loadMapSet(const std::vector<io::MapSource>& sources, const RangeOption& range, int threads,
                  const CancelToken* cancel, std::vector<std::string>& warnings);

// Checks an explicit range: integers in 0..255 with min < max (an empty range
// would make every map fall back). Throws Error(kInvalidArgument).
void validateRangeOption(const RangeOption& range);

// threads in 1..1024 (throws Error(kInvalidArgument)).
void validateThreads(int threads);

}  // namespace anomalyncd::pipeline
