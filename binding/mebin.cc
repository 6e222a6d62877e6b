// binarize(): MEBin over a batch of maps on a worker thread.
#include <chrono>
#include <filesystem>

#include "common/parallel.h"
#include "io/image_io.h"
#include "map_source.h"
#include "mebin_options.h"

namespace anomalyncd::binding {
namespace {

class MebinJob : public Job {
 public:
  MebinJob(Napi::Env env, const Napi::Array& maps, const Napi::Object& options) : Job(env, "anomalyncd.mebin") {
    args_ = mebinArgs(options);
    wantBinary_ = optBool(options, "returnBinary", true);
    oracle_ = optBool(options, "oracle", false);
    writeDir_ = optString(options, "writeDir", "");
    Napi::Value names = options.Get("names");
    if (names.IsArray())
      for (uint32_t i = 0; i < names.As<Napi::Array>().Length(); ++i) names_.push_back(names.As<Napi::Array>().Get(i).ToString().Utf8Value());
    if (!writeDir_.empty() && names_.size() != maps.Length())
      throwError(env, code::kInvalidArgument, "writeDir needs one relative file name per map in 'names'");
    for (uint32_t i = 0; i < maps.Length(); ++i)
      sources_.push_back(mapSourceArg(*this, maps.Get(i), "maps[" + std::to_string(i) + "]"));
    if (sources_.empty()) throwError(env, code::kInvalidArgument, "binarize() needs at least one map");
  }

 protected:
  void run() override {
    LoadedMaps loaded = loadMapsForMebin(*this, args_, sources_);
    maps_ = std::move(loaded.maps);
    range_ = loaded.range;
    const std::vector<mebin::MapView>& views = loaded.views;
    results_.resize(views.size());
    computeMs_.assign(views.size(), 0.0);
    std::atomic<size_t> done{0};
    parallelFor(views.size(), args_.threads, &cancelToken(), [&](size_t i) {
      const auto t0 = std::chrono::steady_clock::now();
      results_[i] = oracle_ ? mebin::binarizeOracle(views[i], range_, args_.options)
                            : mebin::binarize(views[i], range_, args_.options);
      computeMs_[i] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      if (!writeDir_.empty()) writeBinary(i);
      // Free unwanted maps at once: the next map then reuses this warm memory instead of
      // faulting in fresh pages (page faults dominated sub-0.1 ms maps on a new thread).
      if (!wantBinary_) std::vector<uint8_t>().swap(results_[i].binary);
      progress(static_cast<double>(++done), static_cast<double>(views.size()), "mebin");
    });
  }

  Napi::Value resolve(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    out.Set("searchRange", rangeArray(env, range_));
    Napi::Array items = Napi::Array::New(env, results_.size());
    double totalMs = 0;
    for (size_t i = 0; i < results_.size(); ++i) {
      auto& r = results_[i];
      Napi::Object item = mebinResultObject(env, r, maps_[i].rows, maps_[i].cols);
      if (wantBinary_) item.Set("binary", externalBuffer(env, std::move(r.binary)));
      items.Set(static_cast<uint32_t>(i), item);
      totalMs += computeMs_[i];
    }
    out.Set("maps", items);
    out.Set("msPerMap", totalMs / static_cast<double>(results_.size()));
    out.Set("warnings", warningsArray(env));
    return out;
  }

 private:
  void writeBinary(size_t i) {
    const std::filesystem::path path = std::filesystem::path(writeDir_) / names_[i];
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) throw Error(code::kIo, "Cannot create '" + path.parent_path().string() + "': " + ec.message());
    io::writePngGray(path.string(), cv::Mat(maps_[i].rows, maps_[i].cols, CV_8UC1, results_[i].binary.data()));
  }

  MebinArgs args_;
  std::string writeDir_;
  std::vector<std::string> names_;
  bool wantBinary_ = true;
  bool oracle_ = false;
  std::vector<io::MapSource> sources_;
  std::vector<cv::Mat> maps_;
  mebin::Range range_;
  std::vector<mebin::Result> results_;
  std::vector<double> computeMs_;
};

}  // namespace

// mebin(maps: (string|Tensor)[], options, onProgress?) -> {promise, cancel}
Napi::Value Mebin(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) throwError(env, code::kInvalidArgument, "maps must be an array");
  return startJob<MebinJob>(info[2], env, info[0].As<Napi::Array>(), objArg(info, 1));
}

}  // namespace anomalyncd::binding
