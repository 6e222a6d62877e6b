// Argument readers shared by the training wrappers (train.cc) and the training test
// kernels (testing/train_kernels.cc).
#pragma once
#include <napi.h>

#include <string>
#include <vector>

#include "model/vit.h"
#include "napi_util.h"
#include "vit_config_arg.h"

namespace anomalyncd::binding {

// A preset name, or an object of VitConfig fields (with an optional base `preset`),
// checked by model::validateConfig.
inline model::VitConfig archArg(const Napi::Value& v) {
  Napi::Env env = v.Env();
  try {
    if (v.IsString()) return model::presetConfig(v.As<Napi::String>().Utf8Value());
    if (!v.IsObject()) throwError(env, code::kInvalidArgument, "Option 'arch' must be a preset name or an object");
    Napi::Object o = v.As<Napi::Object>();
    model::VitConfig c;
    if (o.Has("preset")) c = model::presetConfig(optString(o, "preset", ""));
    applyVitFields(o, c, "arch.attention must be 'fused' or 'plain'");
    model::validateConfig(c);
    return c;
  } catch (const Error& e) {
    throwError(env, e.code(), e.what());
  }
}

inline Napi::Array doubles(Napi::Env env, const std::vector<double>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) a.Set(static_cast<uint32_t>(i), v[i]);
  return a;
}

}  // namespace anomalyncd::binding
