// Reads the JS map and image arguments (a path string or a Tensor) into the
// plain io:: sources the pipeline takes, keeping Tensor data alive through `job`.
#pragma once
#include "io/image_io.h"
#include "io/map_source.h"
#include "napi_util.h"

namespace anomalyncd::binding {

// A map: a path, or a Tensor [H, W] (uint8 / float32 / float64).
io::MapSource mapSourceArg(Job& job, const Napi::Value& value, const std::string& label);

// An image: a path, or a uint8 Tensor [H, W], [H, W, 1] or [H, W, 3] (RGB).
io::ImageSource imageSourceArg(Job& job, const Napi::Value& value, const std::string& label);

}  // namespace anomalyncd::binding
