// MEBin options shared by every wrapper that binarises (mebin, regions).
#pragma once
#include "io/map_source.h"
#include "mebin/mebin.h"
#include "napi_util.h"

namespace anomalyncd::binding {

struct MebinArgs {
  mebin::Options options;
  bool hasRange = false;
  mebin::Range range;
  int threads = 1;
};

// {sampleRate, minIntervalLen, erode, range?: [min, max], threads}
MebinArgs mebinArgs(const Napi::Object& o);

struct LoadedMaps {
  std::vector<cv::Mat> maps;           // CV_8UC1, may view caller memory
  std::vector<mebin::MapView> views;   // over `maps`
  mebin::Range range;                  // the explicit range, or the set's (SPEC 2.1)
};

// [min, max]
Napi::Array rangeArray(Napi::Env env, const mebin::Range& range);
// {threshold, count, sequence, foreground, height, width} of one map (binary not included).
Napi::Object mebinResultObject(Napi::Env env, const mebin::Result& r, int height, int width);

// Decodes/normalises every map, then fixes the search range; reference
// behaviours worth a warning go to `job`.
LoadedMaps loadMapsForMebin(Job& job, const MebinArgs& args, const std::vector<io::MapSource>& sources);

}  // namespace anomalyncd::binding
