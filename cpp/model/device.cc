#include "model/device.h"

#include <ATen/autocast_mode.h>
#include <ATen/Context.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <atomic>

#include "common/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

// libtorch 2.4 replaced the per-device autocast setters (set_cpu_enabled,
// set_autocast_cpu_dtype, set_enabled, set_autocast_gpu_dtype: deprecated in 2.4) by
// ones taking the device type.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define ANOMALYNCD_AUTOCAST_BY_DEVICE_TYPE 1
#endif

namespace anomalyncd::model {

device::Caps torchCaps() {
  const bool built = at::hasCUDA();
  return {built, built ? static_cast<int>(torch::cuda::device_count()) : 0, "the libtorch this addon uses"};
}

c10::Device torchDevice(const std::string& request) {
  const device::Resolved r = device::resolve(request, torchCaps());
  return r.cuda ? c10::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(r.index)) : c10::Device(c10::kCPU);
}

std::string deviceName(const c10::Device& d) {
  return d.is_cuda() ? "cuda:" + std::to_string(d.has_index() ? d.index() : 0) : "cpu";
}

Precision parsePrecision(const std::string& s) {
  if (s == "fp32") return Precision::Fp32;
  if (s == "bf16") return Precision::Bf16;
  throw Error(code::kInvalidArgument, "Option 'precision' must be 'fp32' or 'bf16' (got '" + s + "')");
}

const char* precisionName(Precision p) { return p == Precision::Bf16 ? "bf16" : "fp32"; }

bool cpuHasBf16Dot() {
#if defined(__x86_64__) || defined(__i386__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const unsigned maxSub = a;
  const bool amxBf16 = (d >> 22) & 1u;  // CPUID.7.0:EDX[22] AMX-BF16
  bool avx512Bf16 = false;
  if (maxSub >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d)) avx512Bf16 = (a >> 5) & 1u;  // CPUID.7.1:EAX[5]
  return avx512Bf16 || amxBf16;
#else
  return false;  // other architectures: not detected (ARM BF16 would be a separate check)
#endif
}

std::string bf16NoteOnce(const c10::Device& device, Precision p) {
  if (p != Precision::Bf16 || !device.is_cpu() || cpuHasBf16Dot()) return {};
  static std::atomic<bool> given{false};
  if (given.exchange(true)) return {};
  return "precision 'bf16' on a CPU without bf16 dot-product instructions (no AVX512-BF16 or AMX): it runs through "
         "conversions and is slower than 'fp32' here";
}

PrecisionScope::PrecisionScope(const c10::Device& device, Precision p) {
  if (p != Precision::Bf16) return;
  active_ = true;
  type_ = device.type();
#ifdef ANOMALYNCD_AUTOCAST_BY_DEVICE_TYPE
  prevEnabled_ = at::autocast::is_autocast_enabled(type_);
  prevDtype_ = at::autocast::get_autocast_dtype(type_);
  at::autocast::set_autocast_dtype(type_, at::kBFloat16);
  at::autocast::set_autocast_enabled(type_, true);
#else
  if (type_ == c10::DeviceType::CUDA) {
    prevEnabled_ = at::autocast::is_enabled();
    prevDtype_ = at::autocast::get_autocast_gpu_dtype();
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(true);
  } else {
    prevEnabled_ = at::autocast::is_cpu_enabled();
    prevDtype_ = at::autocast::get_autocast_cpu_dtype();
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::set_cpu_enabled(true);
  }
#endif
}

PrecisionScope::~PrecisionScope() {
  if (!active_) return;
#ifdef ANOMALYNCD_AUTOCAST_BY_DEVICE_TYPE
  at::autocast::set_autocast_enabled(type_, prevEnabled_);
  at::autocast::set_autocast_dtype(type_, prevDtype_);
#else
  if (type_ == c10::DeviceType::CUDA) {
    at::autocast::set_enabled(prevEnabled_);
    at::autocast::set_autocast_gpu_dtype(prevDtype_);
  } else {
    at::autocast::set_cpu_enabled(prevEnabled_);
    at::autocast::set_autocast_cpu_dtype(prevDtype_);
  }
#endif
  if (!prevEnabled_) at::autocast::clear_cache();
}

}  // namespace anomalyncd::model
