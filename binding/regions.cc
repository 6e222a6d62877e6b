// extractRegions(): a thin job around pipeline::extractRegions (MEBin and
// anomaly-centred cropping over (image, map) pairs).
#include "fields.h"
#include "inputs.h"
#include "mebin_result.h"
#include "pipeline/regions.h"

namespace anomalyncd::binding {
namespace {

class ExtractRegionsJob : public Job {
 public:
  ExtractRegionsJob(Napi::Env env, const Napi::Array& items, const Napi::Value& options)
      : Job(env, "anomalyncd.extractRegions") {
    for (uint32_t i = 0; i < items.Length(); ++i) {
      const std::string label = "items[" + std::to_string(i) + "]";
      Napi::Value item = items.Get(i);
      if (!item.IsObject()) throwError(env, code::kInvalidArgument, label + " must be {image, map, name}");
      Napi::Object o = item.As<Napi::Object>();
      pipeline::RegionsInput in;
      in.map = mapSourceArg(*this, o.Get("map"), label + ".map");
      in.image = imageSourceArg(*this, o.Get("image"), label + ".image");
      Napi::Value name = o.Get("name");
      if (!name.IsString()) throwError(env, code::kInvalidArgument, label + ".name must be a string");
      in.name = name.As<Napi::String>().Utf8Value();
      inputs_.push_back(std::move(in));
    }
    options_ = readFields<pipeline::RegionsOptions>(options, "extractRegions() options");
  }

 protected:
  void run() override {
    result_ = pipeline::extractRegions(inputs_, options_, &cancelToken(), [this](size_t done, size_t total) {
      progress(static_cast<double>(done), static_cast<double>(total), "regions");
    });
    for (auto& w : result_.warnings) addWarning(std::move(w));
  }

  Napi::Value resolve(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    out.Set("searchRange", rangeArray(env, result_.range));
    out.Set("device", result_.device);
    Napi::Array items = Napi::Array::New(env, result_.items.size());
    double mebinTotal = 0, cropTotal = 0, descriptorTotal = 0;
    for (size_t i = 0; i < result_.items.size(); ++i) {
      pipeline::ItemRegions& r = result_.items[i];
      Napi::Object item = mebinResultObject(env, r.mebin, r.mapHeight, r.mapWidth);
      item.Set("imageHeight", r.imageHeight);
      item.Set("imageWidth", r.imageWidth);
      Napi::Array crops = Napi::Array::New(env, r.regions.crops.size());
      for (size_t k = 0; k < r.regions.crops.size(); ++k) {
        crop::Crop& c = r.regions.crops[k];
        Napi::Object co = Napi::Object::New(env);
        Napi::Array box = Napi::Array::New(env, 4);
        box.Set(0u, c.box.left);
        box.Set(1u, c.box.top);
        box.Set(2u, c.box.right);
        box.Set(3u, c.box.bottom);
        co.Set("box", box);
        co.Set("maskArea", static_cast<double>(c.maskArea));
        co.Set("score", c.scoreF64);
        co.Set("width", c.mask.empty() ? 0 : c.mask.cols);
        co.Set("height", c.mask.empty() ? 0 : c.mask.rows);
        co.Set("channels", c.image.empty() ? 0 : c.image.channels());
        if (options_.returnPixels) {
          co.Set("image", matBuffer(env, c.image));
          co.Set("mask", matBuffer(env, c.mask));
        }
        if (!r.descriptors.empty()) {
          Napi::Float64Array d = Napi::Float64Array::New(env, crop::kDescriptorDim);
          std::copy(r.descriptors[k].begin(), r.descriptors[k].end(), d.Data());
          co.Set("descriptor", d);
        }
        if (!r.imageFiles.empty()) {
          co.Set("imageFile", r.imageFiles[k]);
          co.Set("maskFile", r.maskFiles[k]);
        }
        crops.Set(static_cast<uint32_t>(k), co);
      }
      item.Set("crops", crops);
      items.Set(static_cast<uint32_t>(i), item);
      mebinTotal += r.mebinMs;
      cropTotal += r.cropMs;
      descriptorTotal += r.descriptorMs;
    }
    out.Set("items", items);
    out.Set("msPerMap", mebinTotal / static_cast<double>(result_.items.size()));
    out.Set("msPerImage", cropTotal / static_cast<double>(result_.items.size()));
    out.Set("descriptorMsPerImage", descriptorTotal / static_cast<double>(result_.items.size()));
    out.Set("warnings", warningsArray(env));
    return out;
  }

 private:
  // Crops own contiguous memory: hand the pixels over without a copy by moving
  // the Mat into the buffer's finalizer.
  static Napi::Value matBuffer(Napi::Env env, cv::Mat& m) {
    if (m.empty()) return Napi::ArrayBuffer::New(env, 0);
    auto* owner = new cv::Mat(m);
    const size_t bytes = owner->total() * owner->elemSize();
    adjustExternalMemory(env, static_cast<int64_t>(bytes));
    m.release();
    return Napi::ArrayBuffer::New(env, owner->data, bytes, [bytes](Napi::Env e, void*, cv::Mat* held) {
      adjustExternalMemory(e, -static_cast<int64_t>(bytes));
      delete held;
    }, owner);
  }

  std::vector<pipeline::RegionsInput> inputs_;
  pipeline::RegionsOptions options_;
  pipeline::RegionsResult result_;
};

}  // namespace

// extractRegions(items: {image, map, name}[], options, onProgress?) -> {promise, cancel}
Napi::Value ExtractRegions(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) throwError(env, code::kInvalidArgument, "items must be an array");
  return startJob<ExtractRegionsJob>(info[2], env, info[0].As<Napi::Array>(), info[1]);
}

}  // namespace anomalyncd::binding
