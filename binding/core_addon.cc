// anomalyncd_core.node: the OpenCV stages (decode, MEBin, crops). It must not
// link libtorch, so that `anomalyncd mebin` starts without loading it.
#include <opencv2/core/version.hpp>

#include "napi_util.h"

namespace anomalyncd::binding {

Napi::Value Binarize(const Napi::CallbackInfo& info);
Napi::Value ExtractRegions(const Napi::CallbackInfo& info);

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  initAddonData(env, exports);
  exports.Set("binarize", Napi::Function::New(env, Binarize, "binarize"));
  exports.Set("extractRegions", Napi::Function::New(env, ExtractRegions, "extractRegions"));
  Napi::Object versions = Napi::Object::New(env);
  versions.Set("opencv", CV_VERSION);
  exports.Set("versions", versions);
  return exports;
}

}  // namespace
}  // namespace anomalyncd::binding

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return anomalyncd::binding::Init(env, exports); }
NODE_API_MODULE(anomalyncd_core, InitAddon)
