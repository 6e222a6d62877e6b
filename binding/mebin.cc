// binarize(): a thin job around pipeline::binarize (MEBin over a set of maps).
#include "fields.h"
#include "inputs.h"
#include "mebin_result.h"
#include "pipeline/binarize.h"

namespace anomalyncd::binding {
namespace {

class BinarizeJob : public Job {
 public:
  BinarizeJob(Napi::Env env, const Napi::Array& maps, const Napi::Value& options) : Job(env, "anomalyncd.binarize") {
    for (uint32_t i = 0; i < maps.Length(); ++i)
      sources_.push_back(mapSourceArg(*this, maps.Get(i), "maps[" + std::to_string(i) + "]"));
    options_ = readFields<pipeline::BinarizeOptions>(options, "binarize() options");
  }

 protected:
  void run() override {
    result_ = pipeline::binarize(sources_, options_, &cancelToken(), [this](size_t done, size_t total) {
      progress(static_cast<double>(done), static_cast<double>(total), "mebin");
    });
    for (auto& w : result_.warnings) addWarning(std::move(w));
  }

  Napi::Value resolve(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    out.Set("searchRange", rangeArray(env, result_.range));
    out.Set("device", result_.device);
    Napi::Array items = Napi::Array::New(env, result_.maps.size());
    double totalMs = 0;
    for (size_t i = 0; i < result_.maps.size(); ++i) {
      pipeline::BinarizedMap& m = result_.maps[i];
      Napi::Object item = mebinResultObject(env, m.result, m.height, m.width);
      if (options_.returnBinary) item.Set("binary", externalBuffer(env, std::move(m.result.binary)));
      items.Set(static_cast<uint32_t>(i), item);
      totalMs += m.computeMs;
    }
    out.Set("maps", items);
    out.Set("msPerMap", totalMs / static_cast<double>(result_.maps.size()));
    out.Set("warnings", warningsArray(env));
    return out;
  }

 private:
  std::vector<io::MapSource> sources_;
  pipeline::BinarizeOptions options_;
  pipeline::BinarizeResult result_;
};

}  // namespace

// binarize(maps: (string|Tensor)[], options, onProgress?) -> {promise, cancel}
Napi::Value Binarize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) throwError(env, code::kInvalidArgument, "maps must be an array");
  return startJob<BinarizeJob>(info[2], env, info[0].As<Napi::Array>(), info[1]);
}

}  // namespace anomalyncd::binding
