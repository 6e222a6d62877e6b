// The one harness of the C++ self-tests (test/native/*_selftest.cc): counters,
// checks, and the summary line that test/00-native-selftests.test.ts reads.
// No framework: each self-test is a plain program, built by CMake with
// ANOMALYNCD_SELFTESTS=ON, whose exit status is 0 iff every check passed.
#pragma once
#include <cstdio>
#include <string>

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

// Prints "OK: N checks, 0 failures" (or "FAILED: N checks, F failures") and
// returns the exit status.
inline int summary() {
  std::printf("%s: %d checks, %d failures\n", failures ? "FAILED" : "OK", checks, failures);
  std::fflush(stdout);
  return failures ? 1 : 0;
}

}  // namespace selftest
