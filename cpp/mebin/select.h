// The stable-run choice of METHOD.md §2.4 on a component-count sequence, as one
// allocation-free __host__ __device__ function: the CPU single pass
// (mebin::selectThreshold) and the GPU sweep kernel (cpp/gpu/mebin_kernels.h) run
// this same code, so they cannot disagree on which threshold a sequence gives.
#pragma once
#include <cstdint>

#include "common/hd.h"

namespace anomalyncd::mebin {

// Most sweep thresholds there can be (sampleRate 1: t = 255, 254, ..., 1).
constexpr int kMaxSweepLevels = 255;

struct StableRun {
  int value = 0;  // the component count of the chosen run (est)
  int end = -1;   // sweep index where it ends; -1: no stable run (fallback)
};

// A run is a maximal stretch s..e of equal counts; it qualifies when its count is
// not 0 and it is at least minIntervalLen long. Per count value, its best span is
// the largest e - s over its qualifying runs (ties: the later run). The chosen value
// is the one with the largest best span; between values with equal spans, the one
// whose first qualifying run comes first. Same answer as the reference's
// dictionary-of-runs formulation, in three scans and no storage.
ANCD_HD_INLINE int runEnd(const int32_t* counts, int n, int s) {
  int e = s;
  while (e + 1 < n && counts[e + 1] == counts[s]) ++e;
  return e;
}

ANCD_HD_INLINE StableRun longestStableRun(const int32_t* counts, int n, int minIntervalLen) {
  int maxSpan = -1;
  for (int s = 0, e; s < n; s = e + 1) {
    e = runEnd(counts, n, s);
    if (counts[s] != 0 && e - s + 1 >= minIntervalLen && e - s > maxSpan) maxSpan = e - s;
  }
  StableRun run;
  if (maxSpan < 0) return run;
  // The first qualifying run (in order) whose value has a run of maxSpan is that
  // value's first qualifying run, so its value is the chosen one.
  bool found = false;
  for (int s = 0, e; s < n && !found; s = e + 1) {
    e = runEnd(counts, n, s);
    if (counts[s] == 0 || e - s + 1 < minIntervalLen) continue;
    for (int s2 = 0, e2; s2 < n && !found; s2 = e2 + 1) {
      e2 = runEnd(counts, n, s2);
      if (counts[s2] == counts[s] && e2 - s2 == maxSpan) {
        run.value = counts[s];
        found = true;
      }
    }
  }
  // Its best span is maxSpan; the end of its last run that long.
  for (int s = 0, e; s < n; s = e + 1) {
    e = runEnd(counts, n, s);
    if (counts[s] == run.value && e - s == maxSpan) run.end = e;
  }
  return run;
}

// Official: int(t * (max - min) / 255 + min) with an int64 product (METHOD.md §2.4,
// traps T1, T3), t = 255 - sampleRate * endIndex; truncation toward zero.
ANCD_HD_INLINE int rawThreshold(int sampleRate, int endIndex, int minTh, int maxTh) {
  const int normalizedThreshold = 255 - sampleRate * endIndex;
  const int64_t d = static_cast<int64_t>(maxTh) - minTh;
  const double raw = static_cast<double>(normalizedThreshold * d) / 255.0 + minTh;
  return static_cast<int>(raw);
}

}  // namespace anomalyncd::mebin
