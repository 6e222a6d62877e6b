// A checkpoint's tensors by name (DINO state-dict keys), and shapes for messages.
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <string>

namespace anomalyncd::model {

using StateDict = std::map<std::string, at::Tensor>;

// "[2, 3]": a shape for error messages.
std::string shapeStr(at::IntArrayRef shape);

}  // namespace anomalyncd::model
