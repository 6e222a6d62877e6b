// Devices and precision of the model stages (loadBackbone, embed, fit, predict).
// Device requests are resolved by common/device.h (the one resolver) against libtorch's
// CUDA capabilities; precision 'bf16' is autocast (CPU: AVX512-BF16/AMX matmuls through
// oneDNN; CUDA: tensor cores) around the ViT forward, weights staying float32.
#pragma once
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>

#include <string>

#include "common/device.h"

namespace anomalyncd::model {

// libtorch's CUDA: built with it (at::hasCUDA()) and the devices it sees.
device::Caps torchCaps();

// `request` ('cpu' | 'cuda' | 'cuda:N' | 'auto') resolved against torchCaps().
c10::Device torchDevice(const std::string& request);

// "cpu" | "cuda:N".
std::string deviceName(const c10::Device& d);

enum class Precision { Fp32, Bf16 };
// "fp32" | "bf16"; anything else: Error(kInvalidArgument).
Precision parsePrecision(const std::string& s);
const char* precisionName(Precision p);

// True when this CPU has bf16 dot-product instructions (AVX512-BF16 or AMX-BF16).
bool cpuHasBf16Dot();

// The note to give (once per process) when bf16 runs on a CPU without bf16 dot
// products: it works, through conversions, but slower than fp32. Empty otherwise (or
// when already given).
std::string bf16NoteOnce(const c10::Device& device, Precision p);

// RAII: with Bf16, autocast to bfloat16 is on for `device`'s type on this thread (the
// ViT's matmuls and convolutions run in bf16, float32 accumulation); restored, and the
// autocast cache cleared, at scope exit. Fp32: nothing.
class PrecisionScope {
 public:
  PrecisionScope(const c10::Device& device, Precision p);
  ~PrecisionScope();
  PrecisionScope(const PrecisionScope&) = delete;
  PrecisionScope& operator=(const PrecisionScope&) = delete;

 private:
  bool active_ = false;
  c10::DeviceType type_ = c10::DeviceType::CPU;
  bool prevEnabled_ = false;
  c10::ScalarType prevDtype_ = c10::ScalarType::BFloat16;
};

}  // namespace anomalyncd::model
