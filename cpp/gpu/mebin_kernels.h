// MEBin batched over maps (METHOD.md §2) as one kernel, "one block sweeps one
// map", written once as __host__ __device__ code that the CUDA launch
// (mebin_cuda.cu) and the host emulation (emulate.h) both run.
//
// A batch packs maps of any sizes into flat buffers (map m's pixel p lives at
// slots[m].offset + p). Block m runs sweepBlock() on map m, in phases separated
// by block barriers (the Exec's phase(): __syncthreads() on the device; on the
// host every thread of the phase runs, in a seeded shuffled order, before the
// next phase starts):
//   1. columnMin, rowMin  the 6x6 off-centre window min (OpenCV's erode anchor:
//                         rows y-3..y+2, cols x-3..x+2, out-of-image positions
//                         ignored), separable: erosion of every `a > c` mask at
//                         once (skipped with erode = false: filtered = raw);
//   2. histogram          parent[p] = p; pixels per sweep level (the first sweep
//                         index at which the pixel is on; kNever: never);
//   3. buckets, scatter   a counting sort of the pixels by level into `order`;
//   4. level i, i = 0..T-1 (empty levels skipped): each pixel switching on at i
//                         counts +1 and unites with its 8-neighbours already on
//                         (level < i, or level == i and a smaller index: every
//                         edge once) by lock-free union-find (link the larger
//                         root under the smaller with compare-and-swap); each
//                         successful link counts -1. The sum over levels <= i is
//                         the number of 8-connected components of {level <= i},
//                         whatever the thread schedule (only the set of links,
//                         not their order, varies; their number does not);
//   5. select             thread 0: the count sequence, the stable-run choice
//                         (mebin/select.h, the code the CPU single pass runs) and
//                         the raw threshold;
//   6. binary             binary = filtered > threshold ? 255 : 0, foreground counted.
// Each pixel is visited a constant number of times (the earlier design launched
// once per level over every pixel); nothing goes back to the host in between.
#pragma once
#include <cstdint>

#include "common/hd.h"
#include "mebin/select.h"

namespace anomalyncd::gpu::kernels {

constexpr uint8_t kNever = 255;  // level of a pixel that never switches on
// Threads per block (one block per map): 512 lets four maps share an SM; chunks whose
// largest map has kLargeMapPixels or more run 1024 a block (one map's work is then
// spread over more threads: a block's time is what a large map costs).
constexpr int kSweepThreads = 512;
constexpr int kSweepThreadsLarge = 1024;
constexpr int64_t kLargeMapPixels = int64_t{1} << 18;

struct MapSlot {
  int64_t offset;  // index of pixel (0, 0) in the packed buffers
  int32_t height;
  int32_t width;
};

// Device (or emulated) pointers of one batch, and the sweep's parameters.
struct Batch {
  const MapSlot* slots;
  int32_t mapCount;
  int32_t levels;          // T: sweep thresholds (<= mebin::kMaxSweepLevels)
  int32_t sampleRate;      // for the raw threshold
  int32_t minIntervalLen;  // stable-run length
  int32_t minTh, maxTh;    // the search range
  int32_t threads;         // threads per block (kSweepThreads or kSweepThreadsLarge)
  bool erode;
  const uint8_t* levelOf;  // 256 entries (mebin::sweepLevels)
  const uint8_t* raw;      // packed maps
  uint8_t* columnMin;      // vertical 6-min (erode only)
  uint8_t* filtered;       // the window-min map (== raw without erosion; then not written)
  int32_t* parent;         // union-find, map-local indices
  int32_t* order;          // pixels sorted by level, map-local indices
  uint8_t* binary;         // packed 0/255 output
  int32_t* counts;         // [mapCount][levels]: components after each sweep index
  int32_t* threshold;      // [mapCount] raw threshold of the final map (255: fallback)
  int32_t* est;            // [mapCount] est (0 on fallback)
  int64_t* foreground;     // [mapCount]
};

// One block's shared memory.
struct SweepShared {
  uint8_t levelOf[256];
  int32_t bucket[257];  // level i's pixels are order[bucket[i] .. bucket[i + 1])
  int32_t cursor[256];  // pixels per level, then the scatter cursors
  int32_t count[256];   // per level: +new pixels - links; then the running counts
  int32_t threshold;
  int32_t foreground;
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

// ---- per-pixel bodies (s: the map's slot, p: pixel index inside the map) --------
ANCD_HD_INLINE int imin(int a, int b) { return a < b ? a : b; }
ANCD_HD_INLINE int imax(int a, int b) { return a > b ? a : b; }

ANCD_HD_INLINE void columnMinPixel(const Batch& b, const MapSlot& s, int p) {
  const int y = p / s.width, x = p % s.width;
  const uint8_t* src = b.raw + s.offset + x;
  uint8_t v = 255;
  for (int r = imax(0, y - 3); r <= imin(s.height - 1, y + 2); ++r) {
    const uint8_t a = src[static_cast<int64_t>(r) * s.width];
    v = a < v ? a : v;
  }
  b.columnMin[s.offset + p] = v;
}

ANCD_HD_INLINE void rowMinPixel(const Batch& b, const MapSlot& s, int p) {
  const int x = p % s.width;
  const uint8_t* src = b.columnMin + s.offset + (p - x);
  uint8_t v = 255;
  for (int c = imax(0, x - 3); c <= imin(s.width - 1, x + 2); ++c) v = src[c] < v ? src[c] : v;
  b.filtered[s.offset + p] = v;
}

// Pixel p switches on at sweep index `level`: 1 - its successful links.
ANCD_HD_INLINE int switchOn(const Batch& b, const SweepShared& sh, const MapSlot& s, int p,
                            int level) {
  const uint8_t* f = b.filtered + s.offset;
  int32_t* parent = b.parent + s.offset;
  const int y = p / s.width, x = p % s.width;
  int d = 1;
  for (int dy = -1; dy <= 1; ++dy) {
    const int ny = y + dy;
    if (ny < 0 || ny >= s.height) continue;
    for (int dx = -1; dx <= 1; ++dx) {
      const int nx = x + dx;
      if ((dy == 0 && dx == 0) || nx < 0 || nx >= s.width) continue;
      const int q = ny * s.width + nx;
      const int lq = sh.levelOf[f[q]];  // kNever (255) exceeds every sweep index
      if ((lq < level || (lq == level && q < p)) && unite(parent, p, q)) --d;
    }
  }
  return d;
}

// ---- the block program ------------------------------------------------------------
// Exec provides, for the T = threads() threads of one block:
//   phase(f)          f(t) for every thread t, then a block barrier;
//   add(v, target)    *target += v, called by every thread of the phase once;
//   claim(counters, key)  called by every thread of the phase in the same loop
//                     trip: key < 0 claims nothing and returns -1, else returns a
//                     distinct slot counters[key]++ (old value).
// Pixel loops run a uniform trip count (all threads of a warp call add/claim together).
#if defined(__CUDACC__)
#pragma nv_exec_check_disable
#endif
template <class Exec>
ANCD_HD_INLINE void sweepBlock(const Batch& b, SweepShared& sh, int m, Exec& x) {
  const MapSlot s = b.slots[m];
  const int n = s.height * s.width;
  const int T = x.threads();
  x.phase([&](int t) {
    for (int i = t; i < 256; i += T) {
      sh.levelOf[i] = b.levelOf[i];
      sh.cursor[i] = 0;
      sh.count[i] = 0;
    }
    if (t == 0) sh.foreground = 0;
  });
  if (b.erode) {
    x.phase([&](int t) {
      for (int p = t; p < n; p += T) columnMinPixel(b, s, p);
    });
    x.phase([&](int t) {
      for (int p = t; p < n; p += T) rowMinPixel(b, s, p);
    });
  }
  const uint8_t* f = b.filtered + s.offset;
  x.phase([&](int t) {
    for (int base = 0; base < n; base += T) {
      const int p = base + t;
      int key = -1;
      if (p < n) {
        b.parent[s.offset + p] = p;
        const int level = sh.levelOf[f[p]];
        key = level == kNever ? -1 : level;
      }
      x.claim(sh.cursor, key);
    }
  });
  x.phase([&](int t) {
    if (t != 0) return;
    int total = 0;
    for (int i = 0; i < b.levels; ++i) {
      sh.bucket[i] = total;
      total += sh.cursor[i];
      sh.cursor[i] = sh.bucket[i];
    }
    sh.bucket[b.levels] = total;
  });
  x.phase([&](int t) {
    for (int base = 0; base < n; base += T) {
      const int p = base + t;
      int key = -1;
      if (p < n) {
        const int level = sh.levelOf[f[p]];
        key = level == kNever ? -1 : level;
      }
      const int k = x.claim(sh.cursor, key);
      if (k >= 0) b.order[s.offset + k] = p;
    }
  });
  for (int level = 0; level < b.levels; ++level) {
    const int first = sh.bucket[level], last = sh.bucket[level + 1];
    if (first == last) continue;  // uniform: shared, written before a barrier
    x.phase([&](int t) {
      int d = 0;
      for (int k = first + t; k < last; k += T) d += switchOn(b, sh, s, b.order[s.offset + k], level);
      x.add(d, &sh.count[level]);
    });
  }
  x.phase([&](int t) {
    if (t != 0) return;
    int32_t* counts = b.counts + static_cast<int64_t>(m) * b.levels;
    int running = 0;
    for (int i = 0; i < b.levels; ++i) counts[i] = sh.count[i] = running += sh.count[i];
    const mebin::StableRun run = mebin::longestStableRun(sh.count, b.levels, b.minIntervalLen);
    // Fallback: threshold 255 and no f > 255, so the map comes out empty as in binarize().
    sh.threshold = run.end < 0 ? 255 : mebin::rawThreshold(b.sampleRate, run.end, b.minTh, b.maxTh);
    b.threshold[m] = sh.threshold;
    b.est[m] = run.value;
  });
  // Final map (METHOD.md §2.5): raw `a > thr` then erosion == filtered > thr.
  x.phase([&](int t) {
    int on = 0;
    for (int p = t; p < n; p += T) {
      const bool v = static_cast<int>(f[p]) > sh.threshold;
      b.binary[s.offset + p] = v ? 255 : 0;
      on += v;
    }
    x.add(on, &sh.foreground);
  });
  x.phase([&](int t) {
    if (t == 0) b.foreground[m] = sh.foreground;
  });
}

}  // namespace anomalyncd::gpu::kernels
