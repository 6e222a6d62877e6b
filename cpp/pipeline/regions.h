// The regions stage (docs/METHOD.md §2-§3): maps -> search range -> MEBin ->
// anomaly-centred crops, over (image, map) pairs on worker threads, optionally
// writing the crops as PNG files. TS `extractRegions()` is this call; the
// crop-only step for one image is crop::cropRegions.
#pragma once
#include <cstddef>
#include <string>
#include <type_traits>
#include <vector>

#include "common/cancel.h"
#include "crop/crop.h"
#include "crop/descriptor.h"
#include "io/image_io.h"
#include "io/map_source.h"
#include "mebin/mebin.h"
#include "pipeline/binarize.h"
#include "pipeline/map_set.h"

namespace anomalyncd::pipeline {

struct RegionsInput {
  io::ImageSource image;
  io::MapSource map;
  std::string name;  // file stem of written crops (no '/')
};

struct RegionsOptions {
  mebin::Options mebin;
  crop::Options crop;
  RangeOption range;         // explicit search range; absent: from the maps
  int threads = 1;           // 1..1024
  bool returnPixels = true;  // keep crop and mask pixels in the result
  std::string writeDir;      // non-empty: write writeDir/{images,masks}/<name>_crop<k>.png
  // Masks as maps (no MEBin): each map is binarised at `maskLevel` (foreground =
  // value >= maskLevel) and used as the binary map as it is: no search range, no sweep,
  // no erosion (as the reference treats the ground-truth masks of D^l, METHOD.md §1.6;
  // erosion would delete thin defects); est = its 8-connected component count, so every
  // region is kept (METHOD.md §3.3). Crop scores come from the binarised map (range 0..255).
  bool masksAsMaps = false;
  int maskLevel = 128;       // 1..255
  bool descriptors = false;  // compute each crop's region descriptor (crop/descriptor.h)
  std::string device = "cpu";  // MEBin's device: 'cpu' | 'cuda' | 'cuda:N' | 'auto'; crops stay on the CPU
};

// The one field list of RegionsOptions (flat: MEBin's fields, then cropping's),
// read by binding/regions.cc; ts/stages/regions.ts holds the table with the defaults.
template <class O, class V>
std::enable_if_t<std::is_same_v<std::remove_const_t<O>, RegionsOptions>> visitFields(O& o, V&& v) {
  visitFields(o.mebin, v);
  visitFields(o.crop, v);
  v("range", o.range);
  v("threads", o.threads);
  v("returnPixels", o.returnPixels);
  v("writeDir", o.writeDir);
  v("masksAsMaps", o.masksAsMaps);
  v("maskLevel", o.maskLevel);
  v("descriptors", o.descriptors);
  v("device", o.device);
}

struct ItemRegions {
  mebin::Result mebin;  // without the binary map
  int mapHeight = 0, mapWidth = 0, imageHeight = 0, imageWidth = 0;
  crop::Regions regions;  // crop pixels released unless returnPixels
  std::vector<std::string> imageFiles, maskFiles;  // relative to writeDir, one per crop
  std::vector<crop::Descriptor> descriptors;       // one per crop when options.descriptors
  double mebinMs = 0, cropMs = 0;  // compute only (decoding, writing and per-thread buffer growth excluded)
  double descriptorMs = 0;         // with options.descriptors
};

struct RegionsResult {
  mebin::Range range;
  std::string device;  // where MEBin ran: "cpu" | "cuda:N"
  std::vector<ItemRegions> items;
  std::vector<std::string> warnings;
  // Every map held at most two distinct values (binary masks): without masksAsMaps a
  // warning suggests it (MEBin on 0/255 maps with no empty map has a degenerate range).
  bool allMapsBinary = false;
};

// Checks every invariant of the call first (throws Error(kInvalidArgument)),
// then does the work; cancellation is polled between items.
RegionsResult extractRegions(const std::vector<RegionsInput>& inputs, const RegionsOptions& options,
                             const CancelToken* cancel = nullptr, const Progress& progress = {});

}  // namespace anomalyncd::pipeline
