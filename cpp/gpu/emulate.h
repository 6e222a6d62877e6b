// Host emulation of CUDA launches (issue 8, item 6): a launch is a loop over
// its blocks and threads calling the same ANCD_HD per-thread body the
// __global__ kernel calls. Valid for kernels without block barriers (those are
// split into launch phases) whose result does not depend on the schedule, such
// as atomic union-find labelling: a seeded shuffle of the block order and of
// the thread order inside each block exercises other schedules.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "gpu/mebin_kernels.h"

namespace anomalyncd::gpu::emulate {

struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
};

// Runs f(blockIdx, threadIdx) for every thread of grid x block. seed == 0:
// blocks and threads in order; otherwise blocks in a shuffled order and each
// block's threads in a seeded stride permutation.
template <class F>
void launch(Dim3 grid, Dim3 block, F&& f, unsigned seed = 0) {
  const uint64_t blocks = uint64_t{grid.x} * grid.y * grid.z;
  const uint64_t threads = uint64_t{block.x} * block.y * block.z;
  std::vector<uint64_t> order(blocks);
  std::iota(order.begin(), order.end(), uint64_t{0});
  std::mt19937_64 rng(seed);
  if (seed) std::shuffle(order.begin(), order.end(), rng);
  for (uint64_t k : order) {
    const Dim3 bi{static_cast<unsigned>(k % grid.x), static_cast<unsigned>(k / grid.x % grid.y),
                  static_cast<unsigned>(k / (uint64_t{grid.x} * grid.y))};
    // thread order t -> (t * stride + offset) mod threads, stride coprime with threads
    uint64_t stride = 1, offset = 0;
    if (seed && threads > 1) {
      offset = rng() % threads;
      do stride = rng() % threads; while (std::gcd(stride, threads) != 1);
    }
    for (uint64_t t = 0; t < threads; ++t) {
      const uint64_t u = (t * stride + offset) % threads;
      const Dim3 ti{static_cast<unsigned>(u % block.x), static_cast<unsigned>(u / block.x % block.y),
                    static_cast<unsigned>(u / (uint64_t{block.x} * block.y))};
      f(bi, ti);
    }
  }
}

// The mebin_batch.h Backend on host memory.
class MebinBackend {
 public:
  explicit MebinBackend(unsigned seed) : seed_(seed) {}

  template <class T>
  T* alloc(size_t n) {
    buffers_.emplace_back(new unsigned char[std::max<size_t>(n * sizeof(T), 1)]);
    return reinterpret_cast<T*>(buffers_.back().get());
  }
  void upload(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }
  void download(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }
  void zero(void* p, size_t bytes) { std::memset(p, 0, bytes); }

  void columnMin(const kernels::Batch& b, kernels::Geometry g) {
    pixels(b, g, [&](int m, int64_t p) { return kernels::columnMinBody(b, m, p), 0; });
  }
  void rowMin(const kernels::Batch& b, kernels::Geometry g) {
    pixels(b, g, [&](int m, int64_t p) { return kernels::rowMinBody(b, m, p), 0; });
  }
  void initParent(const kernels::Batch& b, kernels::Geometry g) {
    pixels(b, g, [&](int m, int64_t p) { return kernels::initParentBody(b, m, p), 0; });
  }
  void level(const kernels::Batch& b, kernels::Geometry g, int level) {
    // the device kernel sums a warp's contributions before one atomicAdd; the sum is the same
    pixels(b, g, [&](int m, int64_t p) { return kernels::levelBody(b, m, p, level); },
           [&](int m, int v) { b.delta[static_cast<int64_t>(m) * b.levels + level] += v; });
  }
  void binary(const kernels::Batch& b, kernels::Geometry g) {
    pixels(b, g, [&](int m, int64_t p) { return kernels::binaryBody(b, m, p); },
           [&](int m, int v) { b.foreground[m] += static_cast<unsigned long long>(v); });
  }
  void sync() {}

 private:
  template <class Body, class Add>
  void pixels(const kernels::Batch& b, kernels::Geometry g, Body body, Add add) {
    launch(Dim3{g.blocksX, g.mapCount, 1}, Dim3{kernels::kBlock, 1, 1},
           [&](Dim3 bi, Dim3 ti) {
             const int v = kernels::forPixel(b, bi.x, bi.y, ti.x, body);
             if (v) add(static_cast<int>(bi.y), v);
           },
           seed_ ? seed_ + launches_++ : 0);
  }
  template <class Body>
  void pixels(const kernels::Batch& b, kernels::Geometry g, Body body) {
    pixels(b, g, body, [](int, int) {});
  }

  unsigned seed_;
  unsigned launches_ = 0;
  std::vector<std::unique_ptr<unsigned char[]>> buffers_;
};

}  // namespace anomalyncd::gpu::emulate
