// The one harness of the C++ self-tests (test/native/*_selftest.cc): counters,
// checks, and the summary line that test/00-native-selftests.test.ts reads.
// No framework: each self-test is a plain program, built by CMake with
// ANOMALYNCD_SELFTESTS=ON, whose exit status is 0 iff every check passed.
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace selftest {

inline int checks = 0;
inline int failures = 0;

// Records a failure (without counting a check); the first 60 are printed.
inline void fail(const std::string& where, const std::string& what = "") {
  ++failures;
  if (failures <= 60) {
    std::printf("FAIL %s%s%s\n", where.c_str(), what.empty() ? "" : ": ", what.c_str());
    std::fflush(stdout);
  }
}

// One check: counted, and recorded as a failure when !ok.
inline bool check(bool ok, const std::string& where, const std::string& what = "") {
  ++checks;
  if (!ok) fail(where, what);
  return ok;
}

// Decodes the base64 goldens of the fixture files (padding and whitespace skipped).
inline std::vector<uint8_t> fromBase64(const std::string& s) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::vector<uint8_t> out;
  uint32_t buf = 0;
  int bits = 0;
  for (char c : s) {
    const int v = val(c);
    if (v < 0) continue;  // '=' padding
    buf = (buf << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>((buf >> bits) & 0xFF));
    }
  }
  return out;
}

// Prints "OK: N checks, 0 failures" (or "FAILED: N checks, F failures") and
// returns the exit status.
inline int summary() {
  std::printf("%s: %d checks, %d failures\n", failures ? "FAILED" : "OK", checks, failures);
  std::fflush(stdout);
  return failures ? 1 : 0;
}

}  // namespace selftest
