// anomalyncd_testing.node: synchronous building blocks for the tests, built
// with the self-tests (ANOMALYNCD_SELFTESTS) and never shipped. `kernels` holds
// the OpenCV stages' kernels; with the model built, `trainKernels` the training
// stage's (binding/testing/train_kernels.cc).
#include "napi_util.h"

namespace anomalyncd::binding {

Napi::Object CoreKernels(Napi::Env env);
#ifdef ANOMALYNCD_TESTING_TRAIN_KERNELS
void InitTrainKernels(Napi::Env env, Napi::Object exports);
#endif

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  initAddonData(env, exports);
  exports.Set("kernels", CoreKernels(env));
#ifdef ANOMALYNCD_TESTING_TRAIN_KERNELS
  InitTrainKernels(env, exports);
#endif
  return exports;
}

}  // namespace
}  // namespace anomalyncd::binding

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return anomalyncd::binding::Init(env, exports); }
NODE_API_MODULE(anomalyncd_testing, InitAddon)
