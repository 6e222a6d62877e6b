// MEBin batched over maps (METHOD.md §2), as per-thread kernel bodies shared
// by the CUDA launches (mebin_cuda.cu) and the host emulation (emulate.h).
//
// One batch packs maps of any sizes into flat buffers (map m's pixel p lives at
// slots[m].offset + p). The launch sequence, all maps at once:
//   1. columnMin, rowMin  the 6x6 off-centre window min (OpenCV's erode anchor:
//                         rows y-3..y+2, cols x-3..x+2, out-of-image positions
//                         ignored), separable: erosion of every `a > c` mask at
//                         once (skipped with erode = false: filtered = raw);
//   2. initParent         parent[g] = g;
//   3. level(i), i = 0..T-1, one launch per sweep index, no host round trip:
//                         pixels that switch on at sweep index i (levelOf[f] == i)
//                         count +1 and unite with every 8-neighbour already on
//                         (levelOf <= i) by lock-free union-find (link the larger
//                         root under the smaller with compare-and-swap); every
//                         successful link counts -1. delta[m][i] gathers both, so
//                         counts[i] = sum_{j<=i} delta[m][j]: the number of 8-connected
//                         components of {levelOf[f] <= i}, whatever the thread
//                         schedule (only the set of links, not their order, is
//                         fixed; the number of successful links is);
//   4. (host) one copy of delta, prefix sums, mebin::selectThreshold per map;
//   5. binary             binary = f > threshold ? 255 : 0, foreground counted.
// The same single pass as cpp/mebin (pixels switch on in decreasing filtered
// value; component counts after each level) in data-parallel form.
#pragma once
#include <cstdint>

#include "gpu/hd.h"

namespace anomalyncd::gpu::kernels {

constexpr uint8_t kNever = 255;  // levelOf value of a pixel that never switches on
constexpr int kBlock = 256;      // threads per block (a multiple of the warp size)

struct MapSlot {
  int64_t offset;  // index of pixel (0, 0) in the packed buffers
  int32_t height;
  int32_t width;
};

// Device (or emulated) pointers of one batch.
struct Batch {
  const MapSlot* slots;
  int32_t mapCount;
  int32_t levels;             // T: sweep thresholds
  const uint8_t* raw;         // packed maps
  uint8_t* columnMin;         // vertical 6-min (erode only)
  const uint8_t* filtered;    // the window-min map (== raw without erosion)
  uint8_t* filteredOut;       // the same buffer, writable (rowMin writes it)
  int32_t* parent;            // union-find over packed indices
  const uint8_t* levelOf;     // 256 entries (mebin::sweepLevels)
  int32_t* delta;             // [mapCount][levels]: +new pixels - successful links
  const int32_t* threshold;   // [mapCount] raw threshold of the final map (255: empty)
  uint8_t* binary;            // packed 0/255 output
  unsigned long long* foreground;  // [mapCount]
};

// ---- memory primitives: device atomics, host builtins ------------------------
ANCD_HD_INLINE int32_t loadRelaxed(const int32_t* p) {
#if defined(__CUDA_ARCH__)
  return *reinterpret_cast<const volatile int32_t*>(p);
#else
  return __atomic_load_n(p, __ATOMIC_RELAXED);
#endif
}

ANCD_HD_INLINE void storeRelaxed(int32_t* p, int32_t v) {
#if defined(__CUDA_ARCH__)
  *reinterpret_cast<volatile int32_t*>(p) = v;
#else
  __atomic_store_n(p, v, __ATOMIC_RELAXED);
#endif
}

// Returns the old value.
ANCD_HD_INLINE int32_t compareAndSwap(int32_t* p, int32_t expected, int32_t desired) {
#if defined(__CUDA_ARCH__)
  return atomicCAS(reinterpret_cast<int*>(p), expected, desired);
#else
  __atomic_compare_exchange_n(p, &expected, desired, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
  return expected;
#endif
}

// ---- union-find ---------------------------------------------------------------
// Invariant: parent[x] <= x. A root changes only through compareAndSwap (root ->
// smaller root); a non-root's parent only moves up its own chain (path halving),
// so concurrent finds and links stay correct.
ANCD_HD_INLINE int32_t findRoot(int32_t* parent, int32_t x) {
  for (;;) {
    const int32_t p = loadRelaxed(parent + x);
    if (p == x) return x;
    const int32_t gp = loadRelaxed(parent + p);
    if (gp != p) storeRelaxed(parent + x, gp);
    x = gp;
  }
}

// Unites the sets of a and b; true when this call linked two different sets.
ANCD_HD_INLINE bool unite(int32_t* parent, int32_t a, int32_t b) {
  for (;;) {
    a = findRoot(parent, a);
    b = findRoot(parent, b);
    if (a == b) return false;
    if (a < b) {
      const int32_t t = a;
      a = b;
      b = t;
    }
    if (compareAndSwap(parent + a, a, b) == a) return true;
  }
}

// ---- per-thread bodies (m: map index, p: pixel index inside map m) --------------
ANCD_HD_INLINE int imin(int a, int b) { return a < b ? a : b; }
ANCD_HD_INLINE int imax(int a, int b) { return a > b ? a : b; }

ANCD_HD_INLINE void columnMinBody(const Batch& b, int m, int64_t p) {
  const MapSlot s = b.slots[m];
  const int y = static_cast<int>(p / s.width), x = static_cast<int>(p % s.width);
  const uint8_t* src = b.raw + s.offset + x;
  uint8_t v = 255;
  for (int r = imax(0, y - 3); r <= imin(s.height - 1, y + 2); ++r) {
    const uint8_t a = src[static_cast<int64_t>(r) * s.width];
    v = a < v ? a : v;
  }
  b.columnMin[s.offset + p] = v;
}

ANCD_HD_INLINE void rowMinBody(const Batch& b, int m, int64_t p) {
  const MapSlot s = b.slots[m];
  const int x = static_cast<int>(p % s.width);
  const uint8_t* src = b.columnMin + s.offset + (p - x);
  uint8_t v = 255;
  for (int c = imax(0, x - 3); c <= imin(s.width - 1, x + 2); ++c) v = src[c] < v ? src[c] : v;
  b.filteredOut[s.offset + p] = v;
}

ANCD_HD_INLINE void initParentBody(const Batch& b, int m, int64_t p) {
  const int32_t g = static_cast<int32_t>(b.slots[m].offset + p);
  b.parent[g] = g;
}

// Sweep index `level`: returns this pixel's contribution to delta[m][level].
ANCD_HD_INLINE int levelBody(const Batch& b, int m, int64_t p, int level) {
  const MapSlot s = b.slots[m];
  const int64_t g = s.offset + p;
  if (b.levelOf[b.filtered[g]] != level) return 0;
  const int y = static_cast<int>(p / s.width), x = static_cast<int>(p % s.width);
  int d = 1;
  for (int dy = -1; dy <= 1; ++dy) {
    const int ny = y + dy;
    if (ny < 0 || ny >= s.height) continue;
    for (int dx = -1; dx <= 1; ++dx) {
      const int nx = x + dx;
      if ((dy == 0 && dx == 0) || nx < 0 || nx >= s.width) continue;
      const int64_t q = s.offset + static_cast<int64_t>(ny) * s.width + nx;
      // kNever (255) exceeds every sweep index (<= 254)
      if (b.levelOf[b.filtered[q]] <= level &&
          unite(b.parent, static_cast<int32_t>(g), static_cast<int32_t>(q)))
        --d;
    }
  }
  return d;
}

// Final map (METHOD.md §2.5): raw `a > thr` then erosion == filtered > thr.
// Returns 1 for a foreground pixel.
ANCD_HD_INLINE int binaryBody(const Batch& b, int m, int64_t p) {
  const int64_t g = b.slots[m].offset + p;
  const bool on = static_cast<int>(b.filtered[g]) > b.threshold[m];
  b.binary[g] = on ? 255 : 0;
  return on ? 1 : 0;
}

// ---- launch geometry: grid (ceil(maxPixels / kBlock), mapCount), kBlock threads --
struct Geometry {
  unsigned blocksX;
  unsigned mapCount;
};

// Calls body(m, p) when thread (bx, by, tx) of the grid names a pixel; returns
// what it returned, 0 for threads past their map's end.
template <class Body>
ANCD_HD_INLINE int forPixel(const Batch& b, unsigned bx, unsigned by, unsigned tx, Body body) {
  const int m = static_cast<int>(by);
  const int64_t p = static_cast<int64_t>(bx) * kBlock + tx;
  const MapSlot s = b.slots[m];
  if (p >= static_cast<int64_t>(s.height) * s.width) return 0;
  return body(m, p);
}

}  // namespace anomalyncd::gpu::kernels
