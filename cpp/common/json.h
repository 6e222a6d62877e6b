// Strict JSON reading (safetensors headers, training-bundle metadata): no torch.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace anomalyncd {

struct Json {
  enum Type { Null, Bool, Num, Str, Arr, Obj } type = Null;
  bool b = false;
  bool isInt = false;  // a Num without fraction / exponent that fits int64 (then in `i`)
  int64_t i = 0;
  double num = 0;
  std::string s;
  std::vector<Json> arr;
  std::vector<std::pair<std::string, Json>> obj;  // keys unique, in file order
  const Json* get(const std::string& k) const;
};

// What parseJson throws: "<problem> at byte <n>".
struct JsonError {
  std::string what;
};

// Parses one document (RFC 8259; duplicate keys refused); nesting deeper than
// `maxDepth` is a JsonError too (the input may be hostile).
Json parseJson(const std::string& text, int maxDepth);

}  // namespace anomalyncd
