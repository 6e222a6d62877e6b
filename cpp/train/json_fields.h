// Bundle metadata JSON: a small writer (keys in insertion order, doubles as %.17g,
// which round-trips every double) and the visitors that write / read any struct with
// a visitFields() field list (train/config.h) to / from a JSON object.
//
// Value rules (as bundles have always been written): int and double as numbers, a
// non-finite double as null, uint64_t (the seed) as a decimal string (a JSON number
// is a double and cannot hold every 64-bit seed), bool, string, array of strings,
// array of doubles (elements as doubles), a struct with its own visitFields() list as a
// nested object. Reading back: a null element of an array of doubles is NaN; a null
// scalar double is NaN only in structs marked NullDoubles (the loss values, bundle.cc)
// and an error everywhere else (as bundles have always been read).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/error.h"
#include "common/json.h"

namespace anomalyncd::train::json {

inline std::string quote(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == '"') o += "\\\"";
    else if (c == '\\') o += "\\\\";
    else if (c == '\n') o += "\\n";
    else if (u < 0x20) {
      char b[8];
      std::snprintf(b, sizeof b, "\\u%04x", u);
      o += b;
    } else o += c;
  }
  return o + "\"";
}

inline std::string num(double v) {
  if (!std::isfinite(v)) return "null";
  char b[32];
  std::snprintf(b, sizeof b, "%.17g", v);
  return b;
}
inline std::string num(int v) { return std::to_string(v); }

// An object under construction (keys in insertion order).
class Obj {
 public:
  Obj& add(const std::string& k, const std::string& rawJson) {
    s_ += (s_.empty() ? "" : ",") + quote(k) + ":" + rawJson;
    return *this;
  }
  std::string str() const { return "{" + s_ + "}"; }

 private:
  std::string s_;
};

inline std::string arr(const std::vector<double>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + num(v[i]);
  return s + "]";
}
inline std::string arr(const std::vector<std::string>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + quote(v[i]);
  return s + "]";
}
inline std::string arr(const std::vector<int>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}

// Structs whose scalar double fields may be null in the JSON (a non-finite value was
// written as null) and read back as NaN. Specialise to std::true_type where allowed.
template <class T>
struct NullDoubles : std::false_type {};

// Collects (key, JSON value) of every visited field; `skip` leaves fields out.
class FieldWriter {
 public:
  explicit FieldWriter(bool (*skip)(const char*) = nullptr) : skip_(skip) {}

  void operator()(const char* key, int v) { add(key, num(v)); }
  void operator()(const char* key, double v) { add(key, num(v)); }
  void operator()(const char* key, bool v) { add(key, v ? "true" : "false"); }
  void operator()(const char* key, uint64_t v) { add(key, quote(std::to_string(v))); }
  void operator()(const char* key, const std::string& v) { add(key, quote(v)); }
  void operator()(const char* key, const std::vector<std::string>& v) { add(key, arr(v)); }
  void operator()(const char* key, const std::vector<double>& v) { add(key, arr(v)); }
  template <class E, std::enable_if_t<std::is_enum_v<E>, int> = 0>
  void operator()(const char* key, E v) {
    add(key, quote(fieldEnumName(v)));
  }
  // A nested struct with its own visitFields() list (all of its fields; `skip` applies
  // to this level only).
  template <class T, class = decltype(visitFields(std::declval<const T&>(), std::declval<FieldWriter&>()))>
  void operator()(const char* key, const T& v) {
    FieldWriter child;
    visitFields(v, child);
    add(key, child.object());
  }

  const std::vector<std::pair<std::string, std::string>>& fields() const { return fields_; }
  std::string object() const {
    Obj o;
    for (const auto& [k, v] : fields_) o.add(k, v);
    return o.str();
  }

 private:
  void add(const char* key, std::string value) {
    if (!skip_ || !skip_(key)) fields_.emplace_back(key, std::move(value));
  }
  bool (*skip_)(const char*);
  std::vector<std::pair<std::string, std::string>> fields_;
};

template <class Config>
std::string objectOf(const Config& c) {
  FieldWriter w;
  visitFields(c, w);
  return w.object();
}

// Reads every visited field from a JSON object. Errors are Error(kCheckpoint)
// "<prefix>metadata <where>.<key> ..." (prefix names the file).
class FieldReader {
 public:
  // `skip`: fields left as they are (not in the object). `nullDoubles`: a null scalar
  // double reads as NaN (see NullDoubles).
  FieldReader(const Json& o, std::string prefix, std::string where, bool (*skip)(const char*) = nullptr,
              bool nullDoubles = false)
      : o_(o), prefix_(std::move(prefix)), where_(std::move(where)), skip_(skip), nullDoubles_(nullDoubles) {}

  void operator()(const char* key, int& out) {
    if (skipped(key)) return;
    const double v = at(key, Json::Num).num;
    if (v != std::floor(v) || std::fabs(v) > 2147483647.0) fail(key, "is not an integer");
    out = static_cast<int>(v);
  }
  void operator()(const char* key, double& out) {
    if (skipped(key)) return;
    const Json* v = o_.get(key);
    if (nullDoubles_ && v && v->type == Json::Null) out = std::nan("");
    else out = at(key, Json::Num).num;
  }
  void operator()(const char* key, bool& out) {
    if (!skipped(key)) out = at(key, Json::Bool).b;
  }
  void operator()(const char* key, uint64_t& out) {
    if (skipped(key)) return;
    const std::string& s = at(key, Json::Str).s;
    if (s.empty() || s.size() > 20 || s.find_first_not_of("0123456789") != std::string::npos)
      fail(key, "is not a decimal integer");
    try {
      out = std::stoull(s);
    } catch (const std::exception&) {
      fail(key, "is not a decimal integer");
    }
  }
  void operator()(const char* key, std::string& out) {
    if (!skipped(key)) out = at(key, Json::Str).s;
  }
  void operator()(const char* key, std::vector<std::string>& out) {
    if (skipped(key)) return;
    out.clear();
    for (const auto& x : at(key, Json::Arr).arr) {
      if (x.type != Json::Str) fail(key, "holds a non-string");
      out.push_back(x.s);
    }
  }
  void operator()(const char* key, std::vector<double>& out) {
    if (skipped(key)) return;
    out.clear();
    for (const auto& x : at(key, Json::Arr).arr) {
      if (x.type == Json::Null) out.push_back(std::nan(""));  // a non-finite value was written as null
      else if (x.type == Json::Num) out.push_back(x.num);
      else fail(key, "holds a non-number");
    }
  }
  // A nested struct with its own visitFields() list, from a nested object ("<where>.<key>"
  // in messages; `skip` applies to this level only).
  template <class T, class = decltype(visitFields(std::declval<T&>(), std::declval<FieldReader&>()))>
  void operator()(const char* key, T& out) {
    if (skipped(key)) return;
    FieldReader child(at(key, Json::Obj), prefix_, where_ + "." + key, nullptr, NullDoubles<T>::value);
    visitFields(out, child);
  }

  template <class E, std::enable_if_t<std::is_enum_v<E>, int> = 0>
  void operator()(const char* key, E& out) {
    if (skipped(key)) return;
    if (!fieldEnumParse(at(key, Json::Str).s, out)) fail(key, "is not one of its names");
  }

 private:
  bool skipped(const char* key) const { return skip_ && skip_(key); }
  const Json& at(const char* key, Json::Type t) const {
    const Json* v = o_.get(key);
    if (!v || v->type != t) fail(key, "is missing or has the wrong type");
    return *v;
  }
  [[noreturn]] void fail(const char* key, const std::string& what) const {
    throw Error(code::kCheckpoint, prefix_ + "metadata " + where_ + "." + key + " " + what);
  }

  const Json& o_;
  std::string prefix_, where_;
  bool (*skip_)(const char*);
  bool nullDoubles_;
};

}  // namespace anomalyncd::train::json
