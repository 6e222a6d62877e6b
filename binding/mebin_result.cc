#include "mebin_result.h"

namespace anomalyncd::binding {

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

}  // namespace anomalyncd::binding
