// MEBin over a set of maps (docs/METHOD.md §2): maps -> search range -> one
// binarisation per map on worker threads, optionally writing the binary maps
// as PNG files. The set-level counterpart of mebin::binarize (one map); TS
// `binarize()` is this call.
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include "common/cancel.h"
#include "io/map_source.h"
#include "mebin/mebin.h"
#include "pipeline/map_set.h"

namespace anomalyncd::pipeline {

struct BinarizeOptions {
  mebin::Options mebin;
  RangeOption range;              // explicit search range; absent: from the maps
  int threads = 1;                // 1..1024
  bool returnBinary = true;       // keep each binary map in the result
  bool oracle = false;            // the per-threshold OpenCV implementation (slow; tests)
  std::string writeDir;           // non-empty: write writeDir/names[i] (0/255 PNG)
  std::vector<std::string> names; // one relative file name per map when writeDir is set
  std::string device = "cpu";     // 'cpu' | 'cuda' | 'cuda:N' | 'auto' (common/device.h)
};

// The one field list of BinarizeOptions (flat: MEBin's fields first), read by
// binding/mebin.cc; ts/stages/mebin.ts holds the table with the defaults.
template <class O, class V>
std::enable_if_t<std::is_same_v<std::remove_const_t<O>, BinarizeOptions>> visitFields(O& o, V&& v) {
  visitFields(o.mebin, v);
  v("range", o.range);
  v("threads", o.threads);
  v("returnBinary", o.returnBinary);
  v("oracle", o.oracle);
  v("writeDir", o.writeDir);
  v("names", o.names);
  v("device", o.device);
}

struct BinarizedMap {
  mebin::Result result;  // `binary` empty unless returnBinary
  int height = 0, width = 0;
  double computeMs = 0;  // binarisation alone (decoding, writing and per-thread buffer growth excluded)
};

struct BinarizeResult {
  mebin::Range range;
  std::string device;  // where MEBin ran: "cpu" | "cuda:N"
  std::vector<BinarizedMap> maps;
  std::vector<std::string> warnings;
};

// Called after each map (from worker threads, possibly concurrently).
using Progress = std::function<void(size_t done, size_t total)>;

// Checks every invariant of the call first (throws Error(kInvalidArgument)),
// then does the work; cancellation is polled between maps.
BinarizeResult binarize(const std::vector<io::MapSource>& maps, const BinarizeOptions& options,
                        const CancelToken* cancel = nullptr, const Progress& progress = {});

}  // namespace anomalyncd::pipeline
