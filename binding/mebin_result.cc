#include "mebin_options.h"

#include <thread>

namespace anomalyncd::binding {

MebinArgs mebinArgs(const Napi::Object& o) {
  MebinArgs a;
  a.options.sampleRate = optInt(o, "sampleRate", 4);
  a.options.minIntervalLen = optInt(o, "minIntervalLen", 4);
  a.options.erode = optBool(o, "erode", true);
  a.threads = optInt(o, "threads", 1);
  if (a.threads < 1 || a.threads > 1024) throwError(o.Env(), code::kInvalidArgument, "Option 'threads' must be in 1..1024");
  Napi::Value range = o.Get("range");
  if (!range.IsUndefined() && !range.IsNull()) {
    Napi::Array r = range.IsArray() ? range.As<Napi::Array>() : Napi::Array::New(o.Env());
    if (r.Length() != 2 || !r.Get(0u).IsNumber() || !r.Get(1u).IsNumber())
      throwError(o.Env(), code::kInvalidArgument, "Option 'range' must be [min, max]");
    a.hasRange = true;
    a.range.minTh = r.Get(0u).As<Napi::Number>().Int32Value();
    a.range.maxTh = r.Get(1u).As<Napi::Number>().Int32Value();
  }
  try {
    mebin::validateOptions(a.options);
    if (a.hasRange) mebin::validateRange(a.range);
    if (a.hasRange && a.range.minTh == a.range.maxTh)
      throwError(o.Env(), code::kInvalidArgument, "Option 'range' must have min < max: an empty range makes every map fall back");
  } catch (const Error& e) {
    throwError(o.Env(), e.code(), e.what());
  }
  return a;
}

Napi::Array rangeArray(Napi::Env env, const mebin::Range& range) {
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(0u, range.minTh);
  a.Set(1u, range.maxTh);
  return a;
}

Napi::Object mebinResultObject(Napi::Env env, const mebin::Result& r, int height, int width) {
  Napi::Object item = Napi::Object::New(env);
  item.Set("threshold", r.threshold);
  item.Set("count", r.count);
  Napi::Array seq = Napi::Array::New(env, r.sequence.size());
  for (size_t k = 0; k < r.sequence.size(); ++k) seq.Set(static_cast<uint32_t>(k), r.sequence[k]);
  item.Set("sequence", seq);
  item.Set("foreground", static_cast<double>(r.foreground));
  item.Set("height", height);
  item.Set("width", width);
  return item;
}

LoadedMaps loadMapsForMebin(Job& job, const MebinArgs& args, const std::vector<io::MapSource>& sources) {
  LoadedMaps out;
  std::vector<std::string> warnings;
  out.maps = io::loadMaps(sources, args.threads, &job.cancelToken(), warnings);
  for (auto& w : warnings) job.addWarning(std::move(w));
  for (const auto& m : out.maps) out.views.push_back({m.ptr<uint8_t>(), m.rows, m.cols});
  out.range = args.hasRange ? args.range : mebin::searchRange(out.views);
  if (out.range.minTh == out.range.maxTh)
    job.addWarning("MEBin search range is degenerate (min = max = " + std::to_string(out.range.minTh) +
                   "): every map falls back (empty binary map, whole-image crop), as the reference does. Maps "
                   "normalised per image, or a single map, cause this; pass an explicit range to binarise new maps.");
  return out;
}

}  // namespace anomalyncd::binding
