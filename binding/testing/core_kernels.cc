// kernels: the deterministic building blocks of the MEBin and cropping stages,
// exposed synchronously on small inputs so tests can hold them to the worked
// examples of docs/METHOD.md and to golden fixtures. Test-only: built into
// anomalyncd_testing.node, never into a production addon.
#include "crop/crop.h"
#include "fields.h"
#include "imgproc/pillow_resample.h"
#include "mebin/mebin.h"
#include "common/device.h"
#include "napi_util.h"

namespace anomalyncd::binding {
namespace {

template <typename F>
Napi::Value guarded(const Napi::CallbackInfo& info, F&& body) {
  try {
    return body();
  } catch (const Error& e) {
    throwError(info.Env(), e.code(), e.what());
  } catch (const cv::Exception& e) {
    throwError(info.Env(), code::kInternal, e.msg);
  }
}

// Absent options: the reference's constants (the structs' initialisers); given:
// every field, read through the options' one field list.
template <class Options>
Options optionsArg(const Napi::Value& v, const char* where) {
  return v.IsUndefined() || v.IsNull() ? Options{} : readFields<Options>(v, where);
}

Napi::Array boxesOut(Napi::Env env, const std::vector<crop::Box>& boxes) {
  Napi::Array out = Napi::Array::New(env, boxes.size());
  for (size_t i = 0; i < boxes.size(); ++i) {
    Napi::Array b = Napi::Array::New(env, 4);
    b.Set(0u, boxes[i].left);
    b.Set(1u, boxes[i].top);
    b.Set(2u, boxes[i].right);
    b.Set(3u, boxes[i].bottom);
    out.Set(static_cast<uint32_t>(i), b);
  }
  return out;
}

std::vector<crop::Box> boxesIn(const Napi::Value& v) {
  std::vector<crop::Box> boxes;
  if (!v.IsArray()) throwError(v.Env(), code::kInvalidArgument, "boxes must be an array of [l, t, r, b]");
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Array b = a.Get(i).As<Napi::Array>();
    boxes.push_back({b.Get(0u).As<Napi::Number>().DoubleValue(), b.Get(1u).As<Napi::Number>().DoubleValue(),
                     b.Get(2u).As<Napi::Number>().DoubleValue(), b.Get(3u).As<Napi::Number>().DoubleValue()});
  }
  return boxes;
}

// selectThreshold(counts: number[], [min, max], options?) -> {est, threshold, endIndex, fallback}
Napi::Value SelectThreshold(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    std::vector<int> counts;
    Napi::Array a = info[0].As<Napi::Array>();
    for (uint32_t i = 0; i < a.Length(); ++i) counts.push_back(a.Get(i).As<Napi::Number>().Int32Value());
    Napi::Array r = info[1].As<Napi::Array>();
    mebin::Range range{r.Get(0u).As<Napi::Number>().Int32Value(), r.Get(1u).As<Napi::Number>().Int32Value()};
    const mebin::Selection s = mebin::selectThreshold(counts, range, optionsArg<mebin::Options>(info[2], "MEBin options"));
    Napi::Object out = Napi::Object::New(env);
    out.Set("est", s.est);
    out.Set("threshold", s.threshold);
    out.Set("endIndex", s.endIndex);
    out.Set("fallback", s.fallback);
    return out;
  });
}

// mergeBoxes(boxes, S, options?) -> boxes
Napi::Value MergeBoxes(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    return boxesOut(info.Env(), crop::mergeBoxes(boxesIn(info[0]), info[1].As<Napi::Number>().Int32Value(), optionsArg<crop::Options>(info[2], "crop options")));
  });
}

// regionBoxes(binary: Tensor uint8 [H, W], options?) -> boxes (before merging)
Napi::Value RegionBoxes(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    TensorView v = tensorView(info[0], "binary");
    if (v.dtype != "uint8" || v.shape.size() != 2) throwError(info.Env(), code::kInvalidArgument, "binary must be uint8 [H, W]");
    cv::Mat m(static_cast<int>(v.shape[0]), static_cast<int>(v.shape[1]), CV_8UC1, v.data);
    return boxesOut(info.Env(), crop::regionBoxes(m, optionsArg<crop::Options>(info[1], "crop options")));
  });
}

// resizeBicubicF32(src: Tensor float32 [H, W], outH, outW) -> Float32Array
Napi::Value ResizeBicubic(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    TensorView v = tensorView(info[0], "src");
    if (v.dtype != "float32" || v.shape.size() != 2) throwError(info.Env(), code::kInvalidArgument, "src must be float32 [H, W]");
    auto out = imgproc::resizeBicubicF32(static_cast<const float*>(v.data), static_cast<int>(v.shape[0]), static_cast<int>(v.shape[1]),
                                         info[1].As<Napi::Number>().Int32Value(), info[2].As<Napi::Number>().Int32Value());
    const size_t n = out.size();
    return Napi::Float32Array::New(info.Env(), n, externalBufferOf<float>(info.Env(), std::move(out)), 0);
  });
}

// resizeBilinearU8(src: Tensor uint8 [H, W] or [H, W, C], outH, outW) -> Uint8Array
Napi::Value ResizeBilinear(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    TensorView v = tensorView(info[0], "src");
    if (v.dtype != "uint8" || v.shape.size() < 2 || v.shape.size() > 3)
      throwError(info.Env(), code::kInvalidArgument, "src must be uint8 [H, W] or [H, W, C]");
    const int channels = v.shape.size() == 3 ? static_cast<int>(v.shape[2]) : 1;
    auto out = imgproc::resizeBilinearU8(static_cast<const uint8_t*>(v.data), static_cast<int>(v.shape[0]), static_cast<int>(v.shape[1]),
                                         channels, info[1].As<Napi::Number>().Int32Value(), info[2].As<Napi::Number>().Int32Value());
    const size_t n = out.size();
    return Napi::Uint8Array::New(info.Env(), n, externalBuffer(info.Env(), std::move(out)), 0);
  });
}

}  // namespace

// resolveDevice(request, {cudaBuilt, deviceCount}) -> 'cpu' | 'cuda:N' (common/device.h
// against given capabilities: the paths a machine without a GPU cannot reach otherwise).
Napi::Value ResolveDevice(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString() || !info[1].IsObject()) throwError(env, code::kInvalidArgument, "resolveDevice(request, caps)");
  Napi::Object c = info[1].As<Napi::Object>();
  device::Caps caps{c.Get("cudaBuilt").ToBoolean().Value(), c.Get("deviceCount").ToNumber().Int32Value(), "the test's backend"};
  try {
    return Napi::String::New(env, device::resolve(info[0].As<Napi::String>().Utf8Value(), caps).name());
  } catch (const Error& e) {
    throwError(env, e.code(), e.what());
  }
}

Napi::Object CoreKernels(Napi::Env env) {
  Napi::Object k = Napi::Object::New(env);
  k.Set("selectThreshold", Napi::Function::New(env, SelectThreshold, "selectThreshold"));
  k.Set("mergeBoxes", Napi::Function::New(env, MergeBoxes, "mergeBoxes"));
  k.Set("regionBoxes", Napi::Function::New(env, RegionBoxes, "regionBoxes"));
  k.Set("resizeBicubicF32", Napi::Function::New(env, ResizeBicubic, "resizeBicubicF32"));
  k.Set("resizeBilinearU8", Napi::Function::New(env, ResizeBilinear, "resizeBilinearU8"));
  k.Set("resolveDevice", Napi::Function::New(env, ResolveDevice, "resolveDevice"));
  return k;
}

}  // namespace anomalyncd::binding
