// Helpers for the training test kernels (testing/train_kernels.cc, in the testing addon:
// header-only, so it links alone). The training wrappers write records through fields.h.
#pragma once
#include <napi.h>

#include <string>
#include <vector>

#include "napi_util.h"

namespace anomalyncd::binding {

inline Napi::Array doubles(Napi::Env env, const std::vector<double>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) a.Set(static_cast<uint32_t>(i), v[i]);
  return a;
}

}  // namespace anomalyncd::binding
