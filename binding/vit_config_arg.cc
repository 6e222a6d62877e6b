#include "vit_config_arg.h"

#include "fields.h"

namespace anomalyncd::binding {

namespace {

// Reads only the fields present in the object.
struct PresentFieldReader {
  Napi::Object o;
  FieldReader reader;
  template <class T>
  void operator()(const char* key, T& out) {
    if (o.Has(key) && !o.Get(key).IsUndefined()) reader(key, out);
  }
};

}  // namespace

void applyVitFields(const Napi::Object& o, model::VitConfig& c, const char* /*attentionError*/) {
  PresentFieldReader r{o, FieldReader(o, "Option 'arch'")};
  visitFields(c, r);
}

Napi::Object vitConfigObject(Napi::Env env, const model::VitConfig& c, bool withAttention) {
  Napi::Object o = writeFields(env, c);
  if (!withAttention) o.Delete("attention");
  return o;
}

}  // namespace anomalyncd::binding
