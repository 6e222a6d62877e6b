// Reads a JS map argument (a path string or a Tensor [H,W]) into a plain
// io::MapSource, keeping the Tensor's data alive through `job`.
#pragma once
#include "io/map_source.h"
#include "napi_util.h"

namespace anomalyncd::binding {
io::MapSource mapSourceArg(Job& job, const Napi::Value& value, const std::string& label);
}
