// MEBin (Main Element Binarization), METHOD.md §2: sweep thresholds over a
// per-map normalisation, count 8-connected components of the eroded masks,
// pick the end of the longest stable run, binarise the raw map with it.
//
// Two implementations with identical results:
//  * binarize()       — single pass: min-filter + per-value sweep index +
//                       incremental union-find (all counts in one pass);
//  * binarizeOracle() — the reference recipe with OpenCV, one threshold at a
//                       time; slow, kept as the test oracle.
#pragma once
#include <array>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace anomalyncd::mebin {

struct Options {
  int sampleRate = 4;      // threshold step on the normalised 0..255 scale (1..255)
  int minIntervalLen = 4;  // shortest run of equal counts that is "stable" (>= 1)
  bool erode = true;       // 6x6 all-ones erosion before counting / in the final map
};

// The one field list of Options: the binding reads and writes it through this
// (binding/fields.h); ts/stages/mebin.ts holds the matching table with the defaults.
template <class O, class V>
std::enable_if_t<std::is_same_v<std::remove_const_t<O>, Options>> visitFields(O& o, V&& v) {
  v("sampleRate", o.sampleRate);
  v("minIntervalLen", o.minIntervalLen);
  v("erode", o.erode);
}

// Category-wide search range in raw uint8 units (METHOD.md §2.1). Explicit ranges may
// leave map values below minTh (normalised to 0) or above maxTh (normalised
// above 255); both are handled. minTh == maxTh makes every map fall back.
struct Range {
  int minTh = 0;
  int maxTh = 0;
};

// Row-major, contiguous uint8 map; not owned.
struct MapView {
  const uint8_t* data = nullptr;
  int height = 0;
  int width = 0;
};

// Largest value of one map. Throws Error(kInvalidArgument) on a bad view.
int mapMax(const MapView& map);

// METHOD.md §2.1: minTh = smallest per-map maximum, maxTh = largest per-map maximum.
// Throws Error(kInvalidArgument) on an empty list or a bad view.
Range searchRange(const std::vector<MapView>& maps);

// METHOD.md §2.3: t_i = 255 - sampleRate * i while t_i > 0 (64 values for rate 4).
std::vector<int> sweepThresholds(const Options& options);

// METHOD.md §2.2: a raw value's normalised value in IEEE double (NaN when the range is
// empty and the value is >= minTh: nothing is then foreground).
double normalizedValue(int value, const Range& range);

// levelOf[a] = the first sweep index i with normalizedValue(a) > t_i, 255 when none:
// a pixel of (filtered) value a is on at every sweep index >= levelOf[a]. Shared by
// the single pass and the GPU kernels (cpp/gpu).
std::array<uint8_t, 256> sweepLevels(const Range& range, const Options& options);

struct Selection {
  int est = 0;          // estimated anomaly count (component count of the chosen run)
  int threshold = 255;  // raw uint8 threshold for the final `a > threshold` test
  int endIndex = -1;    // sweep index of the chosen run's end; -1 on fallback
  bool fallback = true; // no stable run: threshold 255, est 0, empty map
};

// METHOD.md §2.4 on a full count sequence (length == sweepThresholds(options).size()).
Selection selectThreshold(const std::vector<int>& counts, const Range& range,
                          const Options& options);

struct Result {
  int threshold = 255;        // raw threshold used for the final map
  int count = 0;              // est (== component count of `binary`)
  std::vector<int> sequence;  // component count per sweep threshold
  std::vector<uint8_t> binary;  // height*width, 0/255, after erosion (METHOD.md §2.5)
  int64_t foreground = 0;     // number of 255 pixels in `binary`
};

// Fast single-pass implementation.
Result binarize(const MapView& map, const Range& range, const Options& options);

// The same into `out`, reusing its buffers: a caller that binarises many maps
// and keeps none of them avoids faulting a fresh output map in per call.
void binarizeInto(const MapView& map, const Range& range, const Options& options, Result& out);

// Grows this thread's scratch buffers to what a height x width map needs (and
// so faults their pages in now): batch callers do it before timing a map, so
// the per-map time is the binarisation, not the first touch of a new thread's
// buffers. Optional: binarize() grows them itself.
void prepareWorkspace(int height, int width);

// Per-threshold reference implementation using OpenCV (test oracle).
Result binarizeOracle(const MapView& map, const Range& range, const Options& options);

// Argument checks shared by the entry points (throw Error(kInvalidArgument)).
void validateOptions(const Options& options);
void validateRange(const Range& range);
void validateMap(const MapView& map);

}  // namespace anomalyncd::mebin
