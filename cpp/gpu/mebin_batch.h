// The host side of batched MEBin (the block program is in mebin_kernels.h),
// written once over a Backend so that the CUDA build and the host emulation run
// the same orchestration. A Backend provides, for two slots (double buffering):
//   Memory reserve(int slot, size_t deviceBytes, size_t hostBytes)  {uint8_t* device, uint8_t* host}:
//            the slot's device buffer and host staging (pinned on CUDA), valid until
//            the slot's next reserve; the backend keeps them between calls
//   void upload(void* device, const void* host, size_t bytes), download(host, device, bytes)
//            queued in order on one stream
//   void sweep(const Batch&)      one launch: a block per map
//   void record(int slot), wait(int slot)   mark / wait for the end of what was queued
// One chunk is one upload (slots, level table, maps), one launch and one download
// (binary maps, count table, thresholds, est, foreground). While the device works on
// chunk k, the host packs chunk k + 1 and unpacks chunk k - 1.
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

// Largest chunk (pixels) per launch, unless one map alone is larger: 512 maps of
// 256² fill an H100/H200 (132 SMs x 4 blocks of kSweepThreads); bounded so the two
// slots' buffers (~13 bytes a pixel) stay small enough to keep between calls.
constexpr int64_t kMaxChunkPixels = int64_t{1} << 25;
constexpr size_t kMaxChunkMaps = 65535;

// Offsets of one chunk's buffers. The host staging holds the first two regions
// with the same offsets as the device: [in: slots | levelOf | raw] [out: binary |
// counts | threshold | est | foreground], then the device alone: [scratch].
struct ChunkLayout {
  size_t slots = 0, levelOf = 0, raw = 0, inEnd = 0;
  size_t binary = 0, counts = 0, threshold = 0, est = 0, foreground = 0, outEnd = 0;
  size_t columnMin = 0, filtered = 0, parent = 0, order = 0, end = 0;

  ChunkLayout() = default;
  ChunkLayout(int maps, int levels, int64_t pixels, bool erode) {
    size_t at = 0;
    auto take = [&at](size_t bytes) {
      const size_t here = at;
      at += (bytes + 255) / 256 * 256;  // 256-byte aligned
      return here;
    };
    const size_t P = static_cast<size_t>(pixels), M = static_cast<size_t>(maps);
    slots = take(sizeof(kernels::MapSlot) * M);
    levelOf = take(256);
    raw = take(P);
    inEnd = at;
    binary = take(P);
    counts = take(sizeof(int32_t) * M * levels);
    threshold = take(sizeof(int32_t) * M);
    est = take(sizeof(int32_t) * M);
    foreground = take(sizeof(int64_t) * M);
    outEnd = at;
    columnMin = erode ? take(P) : 0;
    filtered = erode ? take(P) : 0;
    parent = take(sizeof(int32_t) * P);
    order = take(sizeof(int32_t) * P);
    end = at;
  }
};

// A chunk packed into host staging and uploaded: the batch as the device sees it.
struct StagedChunk {
  kernels::Batch batch{};
  std::vector<kernels::MapSlot> slots;
  int64_t pixels = 0;
  ChunkLayout layout;
  uint8_t* host = nullptr;    // host staging base
  uint8_t* device = nullptr;  // device buffer base
  int slot = 0;
};

template <class Backend>
StagedChunk stageChunk(Backend& be, int slot, const std::vector<mebin::MapView>& maps, size_t first,
                       size_t last, const mebin::Range& range, const mebin::Options& options,
                       const std::array<uint8_t, 256>& levelOf, int levels) {
  using kernels::MapSlot;
  StagedChunk c;
  const int M = static_cast<int>(last - first);
  c.slots.resize(M);
  int64_t largest = 0;
  for (int m = 0; m < M; ++m) {
    const mebin::MapView& v = maps[first + m];
    c.slots[m] = {c.pixels, v.height, v.width};
    const int64_t n = static_cast<int64_t>(v.height) * v.width;
    c.pixels += n;
    largest = std::max(largest, n);
  }
  c.layout = ChunkLayout(M, levels, c.pixels, options.erode);
  const ChunkLayout& L = c.layout;
  const auto memory = be.reserve(slot, L.end, L.outEnd);
  uint8_t* h = memory.host;
  uint8_t* d = memory.device;
  std::memcpy(h + L.slots, c.slots.data(), sizeof(MapSlot) * M);
  std::memcpy(h + L.levelOf, levelOf.data(), 256);
  for (int m = 0; m < M; ++m) {
    const mebin::MapView& v = maps[first + m];
    std::memcpy(h + L.raw + c.slots[m].offset, v.data, static_cast<size_t>(v.height) * v.width);
  }
  be.upload(d, h, L.inEnd);

  kernels::Batch& b = c.batch;
  b.slots = reinterpret_cast<const MapSlot*>(d + L.slots);
  b.mapCount = M;
  b.levels = levels;
  b.sampleRate = options.sampleRate;
  b.minIntervalLen = options.minIntervalLen;
  b.minTh = range.minTh;
  b.maxTh = range.maxTh;
  b.threads = largest >= kernels::kLargeMapPixels ? kernels::kSweepThreadsLarge : kernels::kSweepThreads;
  b.erode = options.erode;
  b.levelOf = d + L.levelOf;
  b.raw = d + L.raw;
  b.columnMin = options.erode ? d + L.columnMin : nullptr;
  b.filtered = options.erode ? d + L.filtered : d + L.raw;  // not written without erosion
  b.parent = reinterpret_cast<int32_t*>(d + L.parent);
  b.order = reinterpret_cast<int32_t*>(d + L.order);
  b.binary = d + L.binary;
  b.counts = reinterpret_cast<int32_t*>(d + L.counts);
  b.threshold = reinterpret_cast<int32_t*>(d + L.threshold);
  b.est = reinterpret_cast<int32_t*>(d + L.est);
  b.foreground = reinterpret_cast<int64_t*>(d + L.foreground);
  c.host = h;
  c.device = d;
  c.slot = slot;
  return c;
}

// Queues the sweep of a staged chunk and the download of its outputs.
template <class Backend>
void launchChunk(Backend& be, const StagedChunk& c) {
  const ChunkLayout& L = c.layout;
  be.sweep(c.batch);
  be.download(c.host + L.inEnd, c.device + L.inEnd, L.outEnd - L.inEnd);
  be.record(c.slot);
}

// Waits for a launched chunk and fills results[first ...].
template <class Backend>
void finishChunk(Backend& be, const StagedChunk& c, size_t first,
                 std::vector<mebin::Result>& results) {
  const int M = c.batch.mapCount, levels = c.batch.levels;
  const ChunkLayout& L = c.layout;
  be.wait(c.slot);
  const auto* counts = reinterpret_cast<const int32_t*>(c.host + L.counts);
  const auto* threshold = reinterpret_cast<const int32_t*>(c.host + L.threshold);
  const auto* est = reinterpret_cast<const int32_t*>(c.host + L.est);
  const auto* foreground = reinterpret_cast<const int64_t*>(c.host + L.foreground);
  for (int m = 0; m < M; ++m) {
    mebin::Result& r = results[first + m];
    const int32_t* seq = counts + static_cast<size_t>(m) * levels;
    r.sequence.assign(seq, seq + levels);
    r.threshold = threshold[m];
    r.count = est[m];
    r.foreground = foreground[m];
    const uint8_t* begin = c.host + L.binary + c.slots[m].offset;
    r.binary.assign(begin, begin + static_cast<int64_t>(c.slots[m].height) * c.slots[m].width);
  }
}

// Calls f(first, last) for each chunk of at most kMaxChunkMaps maps and
// maxChunkPixels pixels (a single larger map is its own chunk).
template <class F>
void forEachChunk(const std::vector<mebin::MapView>& maps, int64_t maxChunkPixels, F f) {
  for (size_t first = 0; first < maps.size();) {
    size_t last = first;
    int64_t pixels = 0;
    while (last < maps.size() && last - first < kMaxChunkMaps) {
      const int64_t n = static_cast<int64_t>(maps[last].height) * maps[last].width;
      if (last > first && pixels + n > maxChunkPixels) break;
      pixels += n;
      ++last;
    }
    f(first, last);
    first = last;
  }
}

// The arguments checked as mebin::binarize checks them, and the sweep's level table.
struct SweepSetup {
  std::array<uint8_t, 256> levelOf;
  int levels;
};
inline SweepSetup sweepSetup(const std::vector<mebin::MapView>& maps, const mebin::Range& range,
                             const mebin::Options& options) {
  mebin::validateRange(range);
  mebin::validateOptions(options);
  for (const mebin::MapView& v : maps) mebin::validateMap(v);
  return {mebin::sweepLevels(range, options),
          static_cast<int>(mebin::sweepThresholds(options).size())};
}

template <class Backend>
std::vector<mebin::Result> binarizeBatchWith(Backend& be, const std::vector<mebin::MapView>& maps,
                                             const mebin::Range& range,
                                             const mebin::Options& options,
                                             int64_t maxChunkPixels = kMaxChunkPixels) {
  const SweepSetup setup = sweepSetup(maps, range, options);
  const std::array<uint8_t, 256>& levelOf = setup.levelOf;
  const int levels = setup.levels;
  std::vector<mebin::Result> results(maps.size());
  StagedChunk pending;
  size_t pendingFirst = 0;
  bool havePending = false;
  int slot = 0;
  forEachChunk(maps, maxChunkPixels, [&](size_t first, size_t last) {
    // the slot's previous chunk (two back) was finished in the previous round
    StagedChunk c = stageChunk(be, slot, maps, first, last, range, options, levelOf, levels);
    launchChunk(be, c);
    if (havePending) finishChunk(be, pending, pendingFirst, results);
    pending = std::move(c);
    pendingFirst = first;
    havePending = true;
    slot ^= 1;
  });
  if (havePending) finishChunk(be, pending, pendingFirst, results);
  return results;
}

}  // namespace anomalyncd::gpu
