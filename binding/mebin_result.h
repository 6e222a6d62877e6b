// The JS shape of MEBin results, shared by binarize() and extractRegions().
#pragma once
#include "mebin/mebin.h"
#include "napi_util.h"

namespace anomalyncd::binding {

// [min, max]
Napi::Array rangeArray(Napi::Env env, const mebin::Range& range);
// {threshold, count, sequence, foreground, height, width} of one map (binary not included).
Napi::Object mebinResultObject(Napi::Env env, const mebin::Result& r, int height, int width);

}  // namespace anomalyncd::binding
