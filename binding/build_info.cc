// buildInfo(): what this model addon was built against and what it finds at run
// time, for `anomalyncd doctor`, the report and the loader's diagnostics.
// Versions come from the headers it was compiled with (libtorch, OpenCV); OpenBLAS
// and CUDA facts are looked up in the running process (dlsym / RTLD_NOLOAD), so
// nothing here links OpenBLAS or CUDA.
#include <ATen/Parallel.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <dlfcn.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <opencv2/core/version.hpp>
#include <string>

#include "napi_util.h"

namespace anomalyncd::binding {

namespace {

// A shared library already mapped into the process (no loading).
bool isLoaded(const char* soname) {
  void* handle = dlopen(soname, RTLD_LAZY | RTLD_NOLOAD);
  if (!handle) return false;
  dlclose(handle);
  return true;
}

Napi::Value BuildInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("libtorch", TORCH_VERSION);
  out.Set("opencv", CV_VERSION);
#if defined(__GLIBCXX__)
  out.Set("cxx11Abi", static_cast<bool>(_GLIBCXX_USE_CXX11_ABI));
#endif
  out.Set("compiler", __VERSION__);

  // OpenBLAS (Debian's libtorch and OpenCV link it): its configuration string and the
  // kernel family it chose for this CPU (after OPENBLAS_CORETYPE, see ts/native/loader.ts).
  using StrFn = char* (*)();
  using IntFn = int (*)();
  auto config = reinterpret_cast<StrFn>(dlsym(RTLD_DEFAULT, "openblas_get_config"));
  auto core = reinterpret_cast<StrFn>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  auto threads = reinterpret_cast<IntFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  if (config || core) {
    Napi::Object blas = Napi::Object::New(env);
    blas.Set("config", config ? Napi::Value(Napi::String::New(env, config())) : env.Null());
    blas.Set("core", core ? Napi::Value(Napi::String::New(env, core())) : env.Null());
    blas.Set("threads", threads ? Napi::Value(Napi::Number::New(env, threads())) : env.Null());
    out.Set("openblas", blas);
  } else {
    out.Set("openblas", env.Null());
  }

  // CUDA: whether libtorch's CUDA library is in the process (a CUDA build of libtorch),
  // whether our own kernels were compiled (ANOMALYNCD_CUDA, cmake option), what is usable.
  Napi::Object cuda = Napi::Object::New(env);
  const bool torchCuda = isLoaded("libtorch_cuda.so") || isLoaded("libc10_cuda.so");
  cuda.Set("libtorchCuda", torchCuda);
#if defined(ANOMALYNCD_CUDA_KERNELS)
  cuda.Set("kernels", true);
#else
  cuda.Set("kernels", false);
#endif
  bool available = false;
  int devices = 0;
  try {
    available = torch::cuda::is_available();
    devices = available ? static_cast<int>(torch::cuda::device_count()) : 0;
  } catch (...) {
  }
  cuda.Set("available", available);
  cuda.Set("devices", devices);
  try {
    const auto& hooks = at::detail::getCUDAHooks();
    cuda.Set("runtimeVersion", hooks.hasCUDART() ? Napi::Value(Napi::Number::New(env, static_cast<double>(hooks.versionCUDART()))) : env.Null());
  } catch (...) {
    cuda.Set("runtimeVersion", env.Null());
  }
  out.Set("cuda", cuda);

  Napi::Object threadInfo = Napi::Object::New(env);
  threadInfo.Set("intraop", at::get_num_threads());
  threadInfo.Set("interop", at::get_num_interop_threads());
  threadInfo.Set("parallelInfo", at::get_parallel_info());
  out.Set("threads", threadInfo);
  return out;
}

}  // namespace

void InitBuildInfo(Napi::Env env, Napi::Object exports) {
  exports.Set("buildInfo", Napi::Function::New(env, BuildInfo, "buildInfo"));
}

}  // namespace anomalyncd::binding
