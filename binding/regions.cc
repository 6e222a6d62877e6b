// regions(): MEBin + anomaly-centred cropping over (image, map) pairs on a
// worker thread, optionally writing the crops as PNG files.
#include <opencv2/imgproc.hpp>

#include <chrono>
#include <filesystem>

#include "common/parallel.h"
#include "crop/crop.h"
#include "io/image_io.h"
#include "map_source.h"
#include "mebin_options.h"

namespace anomalyncd::binding {
namespace {

using Clock = std::chrono::steady_clock;
double msSince(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

struct ImageSource {
  std::string path;
  const uint8_t* data = nullptr;  // HxWxC uint8, C in {1, 3}
  int height = 0, width = 0, channels = 0;
};

struct ItemResult {
  mebin::Result mebin;
  int mapHeight = 0, mapWidth = 0, imageHeight = 0, imageWidth = 0;
  crop::Regions regions;
  std::vector<std::string> imageFiles, maskFiles;
};

class RegionsJob : public Job {
 public:
  RegionsJob(Napi::Env env, const Napi::Array& items, const Napi::Object& options) : Job(env, "anomalyncd.regions") {
    args_ = mebinArgs(options);
    cropOptions_.padding = optDouble(options, "padding", cropOptions_.padding);
    cropOptions_.maxMergeDist = optDouble(options, "maxMergeDist", cropOptions_.maxMergeDist);
    cropOptions_.minCropSize = optDouble(options, "minCropSize", cropOptions_.minCropSize);
    writeDir_ = optString(options, "writeDir", "");
    returnPixels_ = optBool(options, "returnPixels", true);
    if (items.Length() == 0) throwError(env, code::kInvalidArgument, "extractRegions() needs at least one (image, map) pair");
    for (uint32_t i = 0; i < items.Length(); ++i) {
      const std::string label = "items[" + std::to_string(i) + "]";
      Napi::Value item = items.Get(i);
      if (!item.IsObject()) throwError(env, code::kInvalidArgument, label + " must be {image, map}");
      Napi::Object o = item.As<Napi::Object>();
      maps_.push_back(mapSourceArg(*this, o.Get("map"), label + ".map"));
      images_.push_back(imageArg(o.Get("image"), label + ".image"));
      names_.push_back(optString(o, "name", std::to_string(i)));
    }
  }

 protected:
  void run() override {
    LoadedMaps loaded = loadMapsForMebin(*this, args_, maps_);
    const std::vector<cv::Mat>& maps = loaded.maps;
    const std::vector<mebin::MapView>& views = loaded.views;
    range_ = loaded.range;
    if (!writeDir_.empty()) {
      std::error_code ec;
      for (const char* sub : {"images", "masks"}) {
        std::filesystem::create_directories(std::filesystem::path(writeDir_) / sub, ec);
        if (ec) throw Error(code::kIo, "Cannot create '" + writeDir_ + "/" + sub + "': " + ec.message());
      }
    }
    results_.resize(maps.size());
    mebinMs_.assign(maps.size(), 0.0);
    cropMs_.assign(maps.size(), 0.0);
    std::atomic<size_t> done{0};
    parallelFor(maps.size(), args_.threads, &cancelToken(), [&](size_t i) {
      ItemResult& r = results_[i];
      auto t0 = Clock::now();
      r.mebin = mebin::binarize(views[i], range_, args_.options);
      mebinMs_[i] = msSince(t0);
      r.mapHeight = maps[i].rows;
      r.mapWidth = maps[i].cols;
      const cv::Mat image = loadImage(images_[i]);
      r.imageHeight = image.rows;
      r.imageWidth = image.cols;
      const cv::Mat binary(maps[i].rows, maps[i].cols, CV_8UC1, r.mebin.binary.data());
      t0 = Clock::now();
      r.regions = crop::extractRegions(image, binary, maps[i], range_.minTh, range_.maxTh, r.mebin.count, cropOptions_);
      cropMs_[i] = msSince(t0);
      if (!writeDir_.empty()) writeCrops(names_[i], r);
      if (!returnPixels_)
        for (auto& c : r.regions.crops) c.image.release(), c.mask.release();
      r.mebin.binary.clear();
      r.mebin.binary.shrink_to_fit();
      progress(static_cast<double>(++done), static_cast<double>(maps.size()), "regions");
    });
  }

  Napi::Value resolve(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    out.Set("searchRange", rangeArray(env, range_));
    Napi::Array items = Napi::Array::New(env, results_.size());
    double mebinTotal = 0, cropTotal = 0;
    for (size_t i = 0; i < results_.size(); ++i) {
      ItemResult& r = results_[i];
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
        if (returnPixels_) {
          co.Set("image", matBuffer(env, c.image));
          co.Set("mask", matBuffer(env, c.mask));
        }
        if (!r.imageFiles.empty()) {
          co.Set("imageFile", r.imageFiles[k]);
          co.Set("maskFile", r.maskFiles[k]);
        }
        crops.Set(static_cast<uint32_t>(k), co);
      }
      item.Set("crops", crops);
      items.Set(static_cast<uint32_t>(i), item);
      mebinTotal += mebinMs_[i];
      cropTotal += cropMs_[i];
    }
    out.Set("items", items);
    out.Set("msPerMap", mebinTotal / static_cast<double>(results_.size()));
    out.Set("msPerImage", cropTotal / static_cast<double>(results_.size()));
    out.Set("warnings", warningsArray(env));
    return out;
  }

 private:
  ImageSource imageArg(const Napi::Value& value, const std::string& label) {
    ImageSource source;
    if (value.IsString()) {
      source.path = value.As<Napi::String>().Utf8Value();
      return source;
    }
    TensorView view = tensorView(value, label);
    const bool hwc = view.shape.size() == 3 && (view.shape[2] == 1 || view.shape[2] == 3);
    if (view.dtype != "uint8" || !(view.shape.size() == 2 || hwc))
      throwError(value.Env(), code::kInvalidArgument, label + " must be a uint8 Tensor [H, W], [H, W, 1] or [H, W, 3] (RGB)");
    if (view.shape[0] < 1 || view.shape[1] < 1) throwError(value.Env(), code::kInvalidArgument, label + " is empty");
    source.data = static_cast<const uint8_t*>(view.data);
    source.height = static_cast<int>(view.shape[0]);
    source.width = static_cast<int>(view.shape[1]);
    source.channels = view.shape.size() == 3 ? static_cast<int>(view.shape[2]) : 1;
    keepAlive(view.owner);
    return source;
  }

  // RGB, as the reference's OpenCV decode gives it (grey replicated to 3 channels).
  static cv::Mat loadImage(const ImageSource& s) {
    if (!s.path.empty()) return io::readImageRGB(s.path);
    cv::Mat view(s.height, s.width, CV_8UC(s.channels), const_cast<uint8_t*>(s.data));
    if (s.channels == 3) return view;
    cv::Mat rgb;
    cv::cvtColor(view, rgb, cv::COLOR_GRAY2RGB);
    return rgb;
  }

  void writeCrops(const std::string& name, ItemResult& r) {
    for (size_t k = 0; k < r.regions.crops.size(); ++k) {
      const crop::Crop& c = r.regions.crops[k];
      const std::string file = name + "_crop" + std::to_string(k) + ".png";
      if (c.image.empty() || c.mask.empty())
        throw Error(code::kBadInput, "Crop " + std::to_string(k) + " of '" + name + "' is empty (box outside the image)");
      io::writePngRGB(writeDir_ + "/images/" + file, c.image);
      io::writePngGray(writeDir_ + "/masks/" + file, c.mask);
      r.imageFiles.push_back("images/" + file);
      r.maskFiles.push_back("masks/" + file);
    }
  }

  static Napi::Value matBuffer(Napi::Env env, cv::Mat& m) {
    if (m.empty()) return Napi::ArrayBuffer::New(env, 0);
    // Crops own contiguous memory; hand the pixels over without a copy by
    // moving the Mat into the buffer's finalizer.
    auto* owner = new cv::Mat(m);
    const size_t bytes = owner->total() * owner->elemSize();
    Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(bytes));
    m.release();
    return Napi::ArrayBuffer::New(env, owner->data, bytes, [bytes](Napi::Env e, void*, cv::Mat* held) {
      Napi::MemoryManagement::AdjustExternalMemory(e, -static_cast<int64_t>(bytes));
      delete held;
    }, owner);
  }

  MebinArgs args_;
  crop::Options cropOptions_;
  std::string writeDir_;
  bool returnPixels_ = true;
  std::vector<io::MapSource> maps_;
  std::vector<ImageSource> images_;
  std::vector<std::string> names_;
  mebin::Range range_;
  std::vector<ItemResult> results_;
  std::vector<double> mebinMs_, cropMs_;
};

}  // namespace

// regions(items: {image, map, name?}[], options, onProgress?) -> {promise, cancel}
Napi::Value Regions(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) throwError(env, code::kInvalidArgument, "items must be an array");
  return startJob<RegionsJob>(info[2], env, info[0].As<Napi::Array>(), objArg(info, 1));
}

}  // namespace anomalyncd::binding
