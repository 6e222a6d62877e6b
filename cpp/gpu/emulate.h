// Host emulation of CUDA launches (issue 8, item 6): a launch is a loop over
// its blocks and threads calling the same ANCD_HD code the __global__ kernel
// calls. A block barrier is a phase boundary: every thread finishes the phase
// before any starts the next. Valid for kernels whose result does not depend on
// the schedule, such as atomic union-find labelling: a seeded shuffle of the
// block order and of the thread order inside each phase exercises other schedules.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include "gpu/mebin_kernels.h"

namespace anomalyncd::gpu::emulate {

// The Exec of kernels::sweepBlock on the host: a phase runs every thread of the
// block (seed != 0: in a seeded stride permutation) before the next one starts,
// which is what the device's barrier guarantees.
class BlockExec {
 public:
  BlockExec(int threads, std::mt19937_64* rng) : threads_(threads), rng_(rng) {}
  int threads() const { return threads_; }
  template <class F>
  void phase(F&& f) {
    uint64_t stride = 1, offset = 0;
    const uint64_t n = static_cast<uint64_t>(threads_);
    if (rng_ && n > 1) {
      offset = (*rng_)() % n;
      do stride = (*rng_)() % n; while (std::gcd(stride, n) != 1);
    }
    for (uint64_t t = 0; t < n; ++t) f(static_cast<int>((t * stride + offset) % n));
  }
  void add(int v, int32_t* target) { *target += v; }
  int claim(int32_t* counters, int key) { return key < 0 ? -1 : counters[key]++; }

 private:
  int threads_;
  std::mt19937_64* rng_;
};

// The mebin_batch.h Backend on host memory: the sweep runs the blocks (maps) one
// after another, in a shuffled order when seeded (blocks touch disjoint memory).
class MebinBackend {
 public:
  explicit MebinBackend(unsigned seed) : seed_(seed), rng_(seed) {}

  struct Memory {
    uint8_t* device;
    uint8_t* host;
  };
  Memory reserve(int slot, size_t deviceBytes, size_t hostBytes) {
    device_[slot].assign(std::max<size_t>(deviceBytes, 1), 0xA5);  // garbage, as cudaMalloc gives
    host_[slot].assign(std::max<size_t>(hostBytes, 1), 0x5A);
    return {device_[slot].data(), host_[slot].data()};
  }
  void upload(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }
  void download(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }
  void sweep(const kernels::Batch& b) {
    std::vector<int> blocks(static_cast<size_t>(b.mapCount));
    std::iota(blocks.begin(), blocks.end(), 0);
    if (seed_) std::shuffle(blocks.begin(), blocks.end(), rng_);
    for (int m : blocks) {
      kernels::SweepShared shared;
      std::memset(&shared, 0xCD, sizeof shared);  // uninitialised, as on the device
      BlockExec exec(b.threads, seed_ ? &rng_ : nullptr);
      kernels::sweepBlock(b, shared, m, exec);
    }
  }
  void record(int) {}
  void wait(int) {}

 private:
  unsigned seed_;
  std::mt19937_64 rng_;
  std::vector<uint8_t> device_[2], host_[2];
};

}  // namespace anomalyncd::gpu::emulate
