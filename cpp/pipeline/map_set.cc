#include "pipeline/map_set.h"

#include "common/error.h"

namespace anomalyncd::pipeline {

void validateRangeOption(const RangeOption& range) {
  if (!range) return;
  mebin::validateRange({range->first, range->second});
  if (range->first == range->second)
    throw Error(code::kInvalidArgument, "Option 'range' must have min < max: an empty range makes every map fall back");
}

void validateThreads(int threads) {
  if (threads < 1 || threads > 1024) throw Error(code::kInvalidArgument, "Option 'threads' must be in 1..1024");
}

MapSet loadMapSet(const std::vector<io::MapSource>& sources, const RangeOption& range, int threads,
                  const CancelToken* cancel, std::vector<std::string>& warnings) {
  MapSet out;
  out.maps = io::loadMaps(sources, threads, cancel, warnings);
  out.views.reserve(out.maps.size());
  for (const auto& m : out.maps) out.views.push_back({m.ptr<uint8_t>(), m.rows, m.cols});
  out.range = range ? mebin::Range{range->first, range->second} : mebin::searchRange(out.views);
  if (out.range.minTh == out.range.maxTh)
    warnings.push_back("MEBin search range is degenerate (min = max = " + std::to_string(out.range.minTh) +
                       "): every map falls back (empty binary map, whole-image crop), as the reference does. Maps "
                       "normalised per image, or a single map, cause this; pass an explicit range to binarise new maps.");
  return out;
}

}  // namespace anomalyncd::pipeline
