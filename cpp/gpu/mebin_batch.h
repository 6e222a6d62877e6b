// The host side of batched MEBin (launch sequence in mebin_kernels.h), written
// once over a Backend so that the CUDA build and the host emulation run the
// same orchestration. A Backend provides:
//   template <class T> T* alloc(size_t n)            device buffer of n T (freed by the backend)
//   void upload(void* dst, const void* src, size_t bytes), download(...), zero(void*, size_t)
//   void columnMin(const Batch&, Geometry), rowMin, initParent, binary(...)
//   void level(const Batch&, Geometry, int level)
//   void sync()                                      wait for the launches so far
#pragma once
#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "common/error.h"
#include "gpu/mebin_kernels.h"
#include "mebin/mebin.h"

namespace anomalyncd::gpu {

// Largest packed batch (pixels) per launch sequence: union-find indices are int32
// and the grid's y dimension is at most 65535 maps.
constexpr int64_t kMaxBatchPixels = int64_t{1} << 28;
constexpr size_t kMaxBatchMaps = 65535;

template <class Backend>
void binarizeChunk(Backend& be, const std::vector<mebin::MapView>& maps, size_t first,
                   size_t last, const mebin::Range& range, const mebin::Options& options,
                   const std::array<uint8_t, 256>& levelOf, int levels,
                   std::vector<mebin::Result>& results) {
  using kernels::Batch;
  using kernels::MapSlot;
  const int M = static_cast<int>(last - first);
  std::vector<MapSlot> slots(M);
  int64_t total = 0, maxPixels = 0;
  for (int m = 0; m < M; ++m) {
    const mebin::MapView& v = maps[first + m];
    slots[m] = {total, v.height, v.width};
    const int64_t n = static_cast<int64_t>(v.height) * v.width;
    total += n;
    maxPixels = std::max(maxPixels, n);
  }
  std::vector<uint8_t> packed(static_cast<size_t>(total));
  for (int m = 0; m < M; ++m) {
    const mebin::MapView& v = maps[first + m];
    std::memcpy(packed.data() + slots[m].offset, v.data,
                static_cast<size_t>(v.height) * v.width);
  }

  Batch b{};
  MapSlot* dSlots = be.template alloc<MapSlot>(M);
  uint8_t* dRaw = be.template alloc<uint8_t>(total);
  uint8_t* dFiltered = options.erode ? be.template alloc<uint8_t>(total) : dRaw;
  uint8_t* dLevelOf = be.template alloc<uint8_t>(256);
  int32_t* dDelta = be.template alloc<int32_t>(static_cast<size_t>(M) * levels);
  int32_t* dThreshold = be.template alloc<int32_t>(M);
  unsigned long long* dForeground = be.template alloc<unsigned long long>(M);
  b.slots = dSlots;
  b.mapCount = M;
  b.levels = levels;
  b.raw = dRaw;
  b.columnMin = options.erode ? be.template alloc<uint8_t>(total) : nullptr;
  b.filtered = dFiltered;
  b.filteredOut = dFiltered;
  b.parent = be.template alloc<int32_t>(total);
  b.levelOf = dLevelOf;
  b.delta = dDelta;
  b.threshold = dThreshold;
  b.binary = be.template alloc<uint8_t>(total);
  b.foreground = dForeground;

  be.upload(dSlots, slots.data(), sizeof(MapSlot) * M);
  be.upload(dRaw, packed.data(), static_cast<size_t>(total));
  be.upload(dLevelOf, levelOf.data(), 256);
  be.zero(dDelta, sizeof(int32_t) * M * levels);
  be.zero(dForeground, sizeof(unsigned long long) * M);

  const kernels::Geometry geo{
      static_cast<unsigned>((maxPixels + kernels::kBlock - 1) / kernels::kBlock),
      static_cast<unsigned>(M)};
  if (options.erode) {
    be.columnMin(b, geo);
    be.rowMin(b, geo);
  }
  be.initParent(b, geo);
  // Levels at which nothing of this batch switches on add nothing: skip them.
  std::array<bool, 256> present{};
  for (int a = 0; a < 256; ++a)
    if (levelOf[a] != kernels::kNever) present[levelOf[a]] = true;
  for (int i = 0; i < levels; ++i)
    if (present[i]) be.level(b, geo, i);

  std::vector<int32_t> delta(static_cast<size_t>(M) * levels);
  be.download(delta.data(), dDelta, sizeof(int32_t) * delta.size());  // the one round trip
  std::vector<int32_t> threshold(M);
  for (int m = 0; m < M; ++m) {
    mebin::Result& r = results[first + m];
    r.sequence.resize(levels);
    int count = 0;
    for (int i = 0; i < levels; ++i) r.sequence[i] = count += delta[static_cast<size_t>(m) * levels + i];
    const mebin::Selection sel = mebin::selectThreshold(r.sequence, range, options);
    r.threshold = sel.threshold;
    r.count = sel.est;
    // Fallback: threshold 255 and no f > 255, so the map comes out empty as in binarize().
    threshold[m] = sel.fallback ? 255 : sel.threshold;
  }
  be.upload(dThreshold, threshold.data(), sizeof(int32_t) * M);
  be.binary(b, geo);
  std::vector<unsigned long long> foreground(M);
  be.download(packed.data(), b.binary, static_cast<size_t>(total));
  be.download(foreground.data(), dForeground, sizeof(unsigned long long) * M);
  for (int m = 0; m < M; ++m) {
    mebin::Result& r = results[first + m];
    const auto begin = packed.begin() + slots[m].offset;
    r.binary.assign(begin, begin + static_cast<int64_t>(slots[m].height) * slots[m].width);
    r.foreground = static_cast<int64_t>(foreground[m]);
  }
}

template <class MakeBackend>
std::vector<mebin::Result> binarizeBatchWith(MakeBackend makeBackend,
                                             const std::vector<mebin::MapView>& maps,
                                             const mebin::Range& range,
                                             const mebin::Options& options) {
  mebin::validateRange(range);
  mebin::validateOptions(options);
  for (const mebin::MapView& v : maps) mebin::validateMap(v);
  const std::array<uint8_t, 256> levelOf = mebin::sweepLevels(range, options);
  const int levels = static_cast<int>(mebin::sweepThresholds(options).size());
  std::vector<mebin::Result> results(maps.size());
  for (size_t first = 0; first < maps.size();) {
    size_t last = first;
    int64_t pixels = 0;
    while (last < maps.size() && last - first < kMaxBatchMaps) {
      const int64_t n = static_cast<int64_t>(maps[last].height) * maps[last].width;
      if (last > first && pixels + n > kMaxBatchPixels) break;
      pixels += n;
      ++last;
    }
    auto be = makeBackend();  // frees its buffers when it goes
    binarizeChunk(be, maps, first, last, range, options, levelOf, levels, results);
    first = last;
  }
  return results;
}

}  // namespace anomalyncd::gpu
