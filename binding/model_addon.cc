// anomalyncd_model.node: the libtorch stages (model, training). Loaded only by
// calls that need them; the OpenCV-only stages live in anomalyncd_core.node.
#include <opencv2/core/version.hpp>
#include <torch/version.h>

#include "napi_util.h"

namespace anomalyncd::binding {

void InitModel(Napi::Env env, Napi::Object exports);
void InitTrain(Napi::Env env, Napi::Object exports);
void InitBuildInfo(Napi::Env env, Napi::Object exports);

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  initAddonData(env, exports);
  Napi::Object versions = Napi::Object::New(env);
  versions.Set("libtorch", TORCH_VERSION);
  versions.Set("opencv", CV_VERSION);
  exports.Set("versions", versions);
  InitModel(env, exports);
  InitTrain(env, exports);
  InitBuildInfo(env, exports);
  return exports;
}

}  // namespace
}  // namespace anomalyncd::binding

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return anomalyncd::binding::Init(env, exports); }
NODE_API_MODULE(anomalyncd_model, InitAddon)
