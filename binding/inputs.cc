#include "inputs.h"

#include "common/limits.h"

namespace anomalyncd::binding {

io::MapSource mapSourceArg(Job& job, const Napi::Value& value, const std::string& label) {
  io::MapSource source;
  source.label = label;
  if (value.IsString()) {
    source.path = value.As<Napi::String>().Utf8Value();
    source.label = "anomaly map '" + source.path + "'";
    return source;
  }
  TensorView view = tensorView(value, label);
  if (view.shape.size() != 2)
    throwError(value.Env(), code::kInvalidArgument, label + " must have shape [H, W] (got " +
                                                        std::to_string(view.shape.size()) + " dimensions)");
  if (view.shape[0] >= 1 && view.shape[1] >= 1)
    rethrowNative(value.Env(), [&] { checkPixels(view.shape[1], view.shape[0], label); });
  if (view.shape[0] < 1 || view.shape[1] < 1 || view.shape[0] > (1 << 30) / view.shape[1])
    throwError(value.Env(), code::kInvalidArgument, label + " must be non-empty and under 2^30 pixels");
  source.data = view.data;
  source.dtype = view.dtype;
  source.height = static_cast<int>(view.shape[0]);
  source.width = static_cast<int>(view.shape[1]);
  job.keepAlive(view.owner);
  return source;
}

io::ImageSource imageSourceArg(Job& job, const Napi::Value& value, const std::string& label) {
  io::ImageSource source;
  if (value.IsString()) {
    source.path = value.As<Napi::String>().Utf8Value();
    return source;
  }
  TensorView view = tensorView(value, label);
  const bool hwc = view.shape.size() == 3 && (view.shape[2] == 1 || view.shape[2] == 3);
  if (view.dtype != "uint8" || !(view.shape.size() == 2 || hwc))
    throwError(value.Env(), code::kInvalidArgument, label + " must be a uint8 Tensor [H, W], [H, W, 1] or [H, W, 3] (RGB)");
  if (view.shape[0] < 1 || view.shape[1] < 1) throwError(value.Env(), code::kInvalidArgument, label + " is empty");
  rethrowNative(value.Env(), [&] { checkPixels(view.shape[1], view.shape[0], label); });
  source.data = static_cast<const uint8_t*>(view.data);
  source.height = static_cast<int>(view.shape[0]);
  source.width = static_cast<int>(view.shape[1]);
  source.channels = view.shape.size() == 3 ? static_cast<int>(view.shape[2]) : 1;
  job.keepAlive(view.owner);
  return source;
}

}  // namespace anomalyncd::binding
