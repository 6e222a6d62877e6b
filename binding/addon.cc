// Module entry: registers every wrapped concept and the TS-owned error class.
#include <opencv2/core.hpp>
#include <torch/version.h>

#include "napi_util.h"

namespace anomalyncd::binding {

Napi::Value Mebin(const Napi::CallbackInfo& info);
Napi::Value Regions(const Napi::CallbackInfo& info);
void InitModel(Napi::Env env, Napi::Object exports);
void InitTrain(Napi::Env env, Napi::Object exports);
void InitTrainKernels(Napi::Env env, Napi::Object exports);
Napi::Object Kernels(Napi::Env env);

namespace {

// setErrorClass((code, message) => Error): native errors are instances of the TS classes.
Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) throwError(info.Env(), code::kInvalidArgument, "setErrorClass needs a function");
  info.Env().GetInstanceData<AddonData>()->errorClass = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  env.SetInstanceData(new AddonData());
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass, "setErrorClass"));
  exports.Set("mebin", Napi::Function::New(env, Mebin, "mebin"));
  exports.Set("regions", Napi::Function::New(env, Regions, "regions"));
  Napi::Object versions = Napi::Object::New(env);
  versions.Set("libtorch", TORCH_VERSION);
  versions.Set("opencv", CV_VERSION);
  exports.Set("versions", versions);
  exports.Set("kernels", Kernels(env));
#ifdef ANOMALYNCD_HAS_MODEL
  InitModel(env, exports);
  InitTrain(env, exports);
  InitTrainKernels(env, exports);
#endif
  return exports;
}

}  // namespace
}  // namespace anomalyncd::binding

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return anomalyncd::binding::Init(env, exports); }
NODE_API_MODULE(anomalyncd, InitAddon)
