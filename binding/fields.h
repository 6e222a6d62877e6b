// Reading and writing option structs through their one field list.
//
// Every option struct of the core (VitConfig, TrainConfig, MebinOptions, ...) has
// ONE field list next to its definition in cpp/:
//
//   template <class Config, class Visitor>
//   std::enable_if_t<std::is_same_v<std::remove_const_t<Config>, VitConfig>>
//   visitFields(Config& c, Visitor&& v) { v("patchSize", c.patchSize); ... }
//
// That list drives the binding (FieldReader / FieldWriter below), bundle JSON and
// anything else that names the fields. A field may itself be a struct with such a list
// (written as a nested object; e.g. the training-history records, train/trainer.h). Enums take part through two functions found
// by argument-dependent lookup next to the enum:
//   const char* fieldEnumName(E value);                 // "fused"
//   bool fieldEnumParse(const std::string& s, E& out);  // false: not a name of E
//
// TypeScript validates every option set and fills every default before calling
// native code; the reader therefore has no defaults: a missing or mistyped field is
// a typed ERR_INVALID_ARGUMENT naming it (a programming error in the TS layer, never
// a crash).
#pragma once
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "napi_util.h"

namespace anomalyncd::binding {

class FieldReader {
 public:
  // `where` names the option set in messages, e.g. "Option 'arch'".
  FieldReader(Napi::Object object, std::string where) : o_(std::move(object)), where_(std::move(where)) {}

  void operator()(const char* key, int& out) {
    const double d = number(key);
    if (std::floor(d) != d || std::fabs(d) > 2147483647.0) fail(key, "an integer");
    out = static_cast<int>(d);
  }
  void operator()(const char* key, uint64_t& out) {
    const double d = number(key);
    if (d < 0 || std::floor(d) != d || d > 9007199254740991.0) fail(key, "a non-negative safe integer");
    out = static_cast<uint64_t>(d);
  }
  void operator()(const char* key, double& out) { out = number(key); }
  void operator()(const char* key, bool& out) {
    Napi::Value v = get(key);
    if (!v.IsBoolean()) fail(key, "a boolean");
    out = v.As<Napi::Boolean>().Value();
  }
  void operator()(const char* key, std::string& out) { out = string(get(key), key); }
  void operator()(const char* key, std::vector<std::string>& out) {
    Napi::Value v = get(key);
    if (!v.IsArray()) fail(key, "an array of strings");
    Napi::Array a = v.As<Napi::Array>();
    out.clear();
    for (uint32_t i = 0; i < a.Length(); ++i) out.push_back(string(a.Get(i), key));
  }
  void operator()(const char* key, std::vector<double>& out) {
    Napi::Value v = get(key);
    if (!v.IsArray()) fail(key, "an array of finite numbers");
    Napi::Array a = v.As<Napi::Array>();
    out.clear();
    out.reserve(a.Length());
    for (uint32_t i = 0; i < a.Length(); ++i) {
      Napi::Value x = a.Get(i);
      if (!x.IsNumber() || !std::isfinite(x.As<Napi::Number>().DoubleValue())) fail(key, "an array of finite numbers");
      out.push_back(x.As<Napi::Number>().DoubleValue());
    }
  }
  // [lo, hi] or null (absent).
  void operator()(const char* key, std::optional<std::pair<int, int>>& out) {
    Napi::Value v = get(key, /*nullable=*/true);
    if (v.IsNull()) {
      out.reset();
      return;
    }
    if (!v.IsArray() || v.As<Napi::Array>().Length() != 2) fail(key, "[min, max] or null");
    Napi::Array a = v.As<Napi::Array>();
    int lo = 0, hi = 0;
    Napi::Value a0 = a.Get(0u), a1 = a.Get(1u);
    if (!a0.IsNumber() || !a1.IsNumber()) fail(key, "[min, max] of integers");
    const double d0 = a0.As<Napi::Number>().DoubleValue(), d1 = a1.As<Napi::Number>().DoubleValue();
    if (std::floor(d0) != d0 || std::floor(d1) != d1 || std::fabs(d0) > 2147483647.0 || std::fabs(d1) > 2147483647.0)
      fail(key, "[min, max] of integers");
    lo = static_cast<int>(d0);
    hi = static_cast<int>(d1);
    out = std::make_pair(lo, hi);
  }
  template <class E, std::enable_if_t<std::is_enum_v<E>, int> = 0>
  void operator()(const char* key, E& out) {
    const std::string s = string(get(key), key);
    if (!fieldEnumParse(s, out)) fail(key, "one of its documented names (got '" + s + "')");
  }

 private:
  Napi::Value get(const char* key, bool nullable = false) {
    Napi::Value v = o_.Has(key) ? o_.Get(key) : o_.Env().Undefined();
    if (v.IsUndefined() || (!nullable && v.IsNull()))
      throwError(o_.Env(), code::kInvalidArgument,
                 where_ + ": field '" + key + "' is missing (the TypeScript layer fills every option before calling native code)");
    return v;
  }
  double number(const char* key) {
    Napi::Value v = get(key);
    if (!v.IsNumber() || !std::isfinite(v.As<Napi::Number>().DoubleValue())) fail(key, "a finite number");
    return v.As<Napi::Number>().DoubleValue();
  }
  std::string string(const Napi::Value& v, const char* key) {
    if (!v.IsString()) fail(key, "a string");
    return v.As<Napi::String>().Utf8Value();
  }
  [[noreturn]] void fail(const char* key, const std::string& expected) {
    throwError(o_.Env(), code::kInvalidArgument, where_ + ": field '" + key + "' must be " + expected);
  }

  Napi::Object o_;
  std::string where_;
};

class FieldWriter {
 public:
  explicit FieldWriter(Napi::Object object) : o_(std::move(object)) {}

  void operator()(const char* key, int v) { o_.Set(key, Napi::Number::New(o_.Env(), v)); }
  void operator()(const char* key, uint64_t v) { o_.Set(key, Napi::Number::New(o_.Env(), static_cast<double>(v))); }
  void operator()(const char* key, double v) { o_.Set(key, Napi::Number::New(o_.Env(), v)); }
  void operator()(const char* key, bool v) { o_.Set(key, Napi::Boolean::New(o_.Env(), v)); }
  void operator()(const char* key, const std::string& v) { o_.Set(key, Napi::String::New(o_.Env(), v)); }
  void operator()(const char* key, const std::vector<std::string>& v) {
    Napi::Array a = Napi::Array::New(o_.Env(), v.size());
    for (size_t i = 0; i < v.size(); ++i) a.Set(static_cast<uint32_t>(i), Napi::String::New(o_.Env(), v[i]));
    o_.Set(key, a);
  }
  void operator()(const char* key, const std::optional<std::pair<int, int>>& v) {
    if (!v) {
      o_.Set(key, o_.Env().Null());
      return;
    }
    Napi::Array a = Napi::Array::New(o_.Env(), 2);
    a.Set(0u, Napi::Number::New(o_.Env(), v->first));
    a.Set(1u, Napi::Number::New(o_.Env(), v->second));
    o_.Set(key, a);
  }
  void operator()(const char* key, const std::vector<double>& v) {
    Napi::Array a = Napi::Array::New(o_.Env(), v.size());
    for (size_t i = 0; i < v.size(); ++i) a.Set(static_cast<uint32_t>(i), Napi::Number::New(o_.Env(), v[i]));
    o_.Set(key, a);
  }
  template <class E, std::enable_if_t<std::is_enum_v<E>, int> = 0>
  void operator()(const char* key, E v) {
    o_.Set(key, Napi::String::New(o_.Env(), fieldEnumName(v)));
  }
  // A nested struct with its own visitFields() list: a nested object.
  template <class T, class = decltype(visitFields(std::declval<const T&>(), std::declval<FieldWriter&>()))>
  void operator()(const char* key, const T& v) {
    Napi::Object child = Napi::Object::New(o_.Env());
    FieldWriter writer(child);
    visitFields(v, writer);
    o_.Set(key, child);
  }

 private:
  Napi::Object o_;
};

// Reads every field of `config` from `object` (see FieldReader).
template <class Config>
Config readFields(const Napi::Value& object, const std::string& where) {
  if (!object.IsObject()) throwError(object.Env(), code::kInvalidArgument, where + " must be an object");
  Config c{};
  FieldReader reader(object.As<Napi::Object>(), where);
  visitFields(c, reader);
  return c;
}

// A new JS object holding every field of `config`.
template <class Config>
Napi::Object writeFields(Napi::Env env, const Config& config) {
  Napi::Object o = Napi::Object::New(env);
  FieldWriter writer(o);
  visitFields(config, writer);
  return o;
}

}  // namespace anomalyncd::binding
