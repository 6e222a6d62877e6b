#include "mebin/mebin.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "common/error.h"
#include "mebin/select.h"

namespace anomalyncd::mebin {
namespace {

// Sweep level meaning "never foreground". Levels are sweep indices 0..T-1
// with T <= 255, so 255 is free.
constexpr uint8_t kNever = 255;

// The 6x6 erosion window with OpenCV's default anchor (3, 3) covers rows
// y-3..y+2 and cols x-3..x+2, inclusive (METHOD.md §2.3 / T6).
constexpr int kWindowBefore = 3;
constexpr int kWindowAfter = 2;

[[noreturn]] void invalid(const std::string& message) {
  throw Error(code::kInvalidArgument, "MEBin: " + message);
}

// METHOD.md §2.2 in IEEE double, in the official order. With d == 0 the reference
// divides by zero; METHOD.md §2.1 says nothing is then foreground, so return NaN
// (every `n > t` is false). With a range taken from the maps themselves no
// value can exceed minTh when d == 0, so this matches the reference exactly.
double normalized(int value, const Range& range) {
  if (value < range.minTh) return 0.0;
  const int d = range.maxTh - range.minTh;
  if (d == 0) return std::numeric_limits<double>::quiet_NaN();
  return (static_cast<double>(value - range.minTh) / static_cast<double>(d)) * 255.0;
}

}  // namespace

double normalizedValue(int value, const Range& range) { return normalized(value, range); }

namespace {

// Reused buffers: binarize() is called once per map, often thousands of times.
// Nothing here needs clearing between calls: every byte whose value matters
// is written first in the same call (scans that run past a row end mask the
// extra bytes off).
struct Workspace {
  std::vector<uint8_t> columnMin;  // one row of vertical 6-mins between 255 guards
  std::vector<uint8_t> filtered;   // (H+2) x (W+2) filtered map with a zero ring
  std::vector<int32_t> parent;     // union-find over padded positions (see below)
};

thread_local Workspace workspace;

template <typename T>
T* sized(std::vector<T>& buffer, size_t n) {
  if (buffer.size() < n) buffer.resize(n);
  return buffer.data();
}

// Bytes read past the end of the filtered map: the last row's 16-byte scan
// blocks and the 4-byte neighbour loads of its last pixels run over it.
constexpr size_t kSlack = 16;

// Bit k set when bytes[k] >= floor, for 16 bytes.
inline uint32_t atLeastMask16(const uint8_t* bytes, uint8_t floor) {
#if defined(__SSE2__)
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes));
  const __m128i ge = _mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(static_cast<char>(floor))), v);
  return static_cast<uint32_t>(_mm_movemask_epi8(ge));
#else
  uint32_t mask = 0;
  for (int k = 0; k < 16; ++k) mask |= static_cast<uint32_t>(bytes[k] >= floor) << k;
  return mask;
#endif
}

inline int lowestBit(uint32_t mask) {
#if defined(__GNUC__)
  return __builtin_ctz(mask);
#else
  int k = 0;
  while (!(mask & 1u)) mask >>= 1, ++k;
  return k;
#endif
}

// True when some value[x], x < n, is >= floor.
inline bool anyAtLeast(const uint8_t* values, int n, uint8_t floor) {
  int x = 0;
  for (; x + 16 <= n; x += 16)
    if (atLeastMask16(values + x, floor)) return true;
  for (; x < n; ++x)
    if (values[x] >= floor) return true;
  return false;
}

// out[x] = min(in0[x], ..., in5[x]) for x < n; `out` overlaps no input.
// SSE2 explicitly: GCC's -O2 cost model will not vectorise this loop (it
// needs an alias check and an epilogue), and it is most of the filter.
inline void min6(uint8_t* out, const uint8_t* in0, const uint8_t* in1, const uint8_t* in2,
                 const uint8_t* in3, const uint8_t* in4, const uint8_t* in5, int n) {
  int x = 0;
#if defined(__SSE2__)
  if (n >= 16) {
    auto load = [](const uint8_t* p) {
      return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    };
    auto block = [&](int at) {
      const __m128i m = _mm_min_epu8(
          _mm_min_epu8(_mm_min_epu8(load(in0 + at), load(in1 + at)),
                       _mm_min_epu8(load(in2 + at), load(in3 + at))),
          _mm_min_epu8(load(in4 + at), load(in5 + at)));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + at), m);
    };
    for (; x + 16 <= n; x += 16) block(x);
    if (x < n) block(n - 16);  // overlaps the previous block: same values again
    return;
  }
#endif
  for (; x < n; ++x)
    out[x] = std::min(std::min(std::min(in0[x], in1[x]), std::min(in2[x], in3[x])),
                      std::min(in4[x], in5[x]));
}

// Row y of the off-centre 6x6 window min, out-of-image positions ignored.
// That min equals eroding any `value > c` mask (the border never erodes),
// for every c at once. Vertical pass first, straight off the raw rows:
// clamping the row range just repeats edge rows, which leaves a min
// unchanged. `columnMin` holds the W vertical mins at offset 3 between 255
// guards (set by the caller), so the horizontal pass needs no edge cases.
// Returns false, leaving `out` unwritten, when every value of the row is
// below `floor` (the caller then needs only that fact).
bool windowMinRow(const MapView& map, int y, uint8_t floor, uint8_t* __restrict columnMin,
                  uint8_t* __restrict out) {
  const int H = map.height, W = map.width;
  const uint8_t* rows[6];
  for (int r = 0; r < 6; ++r) {
    const int source = std::clamp(y - kWindowBefore + r, 0, H - 1);
    rows[r] = map.data + static_cast<size_t>(source) * W;
  }
  uint8_t* column = columnMin + kWindowBefore;
  min6(column, rows[0], rows[1], rows[2], rows[3], rows[4], rows[5], W);
  // Each window includes its own column, so out[x] <= column[x].
  if (!anyAtLeast(column, W, floor)) return false;
  // out[x] = min(column[x-3 .. x+2]) = min(columnMin[x .. x+5]).
  const uint8_t* c = columnMin;
  min6(out, c, c + 1, c + 2, c + 3, c + 4, c + 5, W);
  return true;
}

// levelOf[a] = first sweep index i with n(a) > t_i (kNever if none). n is
// non-decreasing in a, so the index is non-increasing: one merged walk.
std::array<uint8_t, 256> sweepLevels(const Range& range, const std::vector<int>& thresholds) {
  std::array<uint8_t, 256> levelOf{};
  const int count = static_cast<int>(thresholds.size());
  int k = count;
  for (int a = 0; a < 256; ++a) {
    const double n = normalized(a, range);
    while (k > 0 && n > thresholds[k - 1]) --k;
    levelOf[a] = k == count ? kNever : static_cast<uint8_t>(k);
  }
  return levelOf;
}

// Neighbour masks: a pixel's 3x3 neighbourhood as 3 rows of 4 bits, bit
// 4 * (dy + 1) + (dx + 1) for offset (dy, dx); bits 3, 7, 11 are unused and
// bit 5 is the pixel itself. The layout is what the SSE2 path gets for free
// (three 4-byte loads side by side, one byte per bit in pmovmskb order).
constexpr int kNeighbourBits = 11;
constexpr uint32_t kNeighbourMask = 0x757;  // the 8 neighbour bits
constexpr int neighbourBit(int dy, int dx) { return 4 * (dy + 1) + (dx + 1); }

// For each neighbour mask (set = already on): how many groups of mutually
// touching (8-adjacent) on neighbours it has, in bits 0..2, then one member
// of each group as a 3-bit index into kNeighbourSteps. On neighbours that
// touch are already in one component, so one find per group suffices.
constexpr int kNeighbourSteps[8][2] = {{-1, -1}, {-1, 0}, {-1, 1}, {0, -1},
                                       {0, 1},   {1, -1}, {1, 0},  {1, 1}};
struct NeighbourGroups {
  std::array<uint16_t, 1 << kNeighbourBits> entry{};
  constexpr NeighbourGroups() {
    for (uint32_t mask = 0; mask < entry.size(); ++mask) {
      if (mask & ~kNeighbourMask) continue;  // never looked up
      int group[8] = {};  // group[k]: smallest on neighbour connected to k
      for (int k = 0; k < 8; ++k) group[k] = k;
      for (int pass = 0; pass < 8; ++pass)  // relax until stable (8 is plenty)
        for (int a = 0; a < 8; ++a)
          for (int b = 0; b < 8; ++b) {
            const int dy = kNeighbourSteps[a][0] - kNeighbourSteps[b][0];
            const int dx = kNeighbourSteps[a][1] - kNeighbourSteps[b][1];
            const bool touch = a != b && dy >= -1 && dy <= 1 && dx >= -1 && dx <= 1;
            const bool onA = mask >> neighbourBit(kNeighbourSteps[a][0], kNeighbourSteps[a][1]) & 1;
            const bool onB = mask >> neighbourBit(kNeighbourSteps[b][0], kNeighbourSteps[b][1]) & 1;
            if (touch && onA && onB && group[b] < group[a]) group[a] = group[b];
          }
      int groups = 0, packed = 0;
      for (int k = 0; k < 8; ++k) {
        const bool on = mask >> neighbourBit(kNeighbourSteps[k][0], kNeighbourSteps[k][1]) & 1;
        if (on && group[k] == k) packed |= k << (3 + 3 * groups++);
      }
      entry[mask] = static_cast<uint16_t>(groups | packed);
    }
  }
};
constexpr NeighbourGroups kNeighbourGroups;

// Neighbour mask of the neighbours of a pixel with value v that are already
// on, given the order countComponents() adds pixels in: neighbours later in
// raster order (E and the south row) when >= v, the others when > v.
class NeighboursOn {
 public:
  NeighboursOn(int32_t stride, uint8_t v) : stride_(stride), v_(v) {
#if defined(__SSE2__)
    vv_ = _mm_set1_epi8(static_cast<char>(v));
    earlierLanes_ = _mm_setr_epi8(-1, -1, -1, 0, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
#endif
  }

  // c points at the pixel inside the padded filtered map.
  uint32_t operator()(const uint8_t* c) const {
#if defined(__SSE2__)
    const __m128i rows = _mm_unpacklo_epi64(
        _mm_unpacklo_epi32(load4(c - stride_ - 1), load4(c - 1)), load4(c + stride_ - 1));
    const __m128i atLeast = _mm_cmpeq_epi8(_mm_max_epu8(rows, vv_), rows);
    const __m128i equalEarlier = _mm_and_si128(earlierLanes_, _mm_cmpeq_epi8(rows, vv_));
    return static_cast<uint32_t>(_mm_movemask_epi8(_mm_andnot_si128(equalEarlier, atLeast))) &
           kNeighbourMask;
#else
    uint32_t on = 0;
    for (int dy = -1; dy <= 1; ++dy)
      for (int dx = -1; dx <= 1; ++dx) {
        const uint8_t q = c[dy * stride_ + dx];
        const bool later = dy > 0 || (dy == 0 && dx > 0);
        on |= static_cast<uint32_t>(later ? q >= v_ : q > v_) << neighbourBit(dy, dx);
      }
    return on & kNeighbourMask;
#endif
  }

 private:
#if defined(__SSE2__)
  // Bytes c[0..3] in the low lane, the rest zero.
  static __m128i load4(const uint8_t* c) {
    int32_t word;
    std::memcpy(&word, c, 4);
    return _mm_cvtsi32_si128(word);
  }
  __m128i vv_;
  __m128i earlierLanes_;  // NW, N, NE, W: on only when > v
#endif
  int32_t stride_;
  uint8_t v_;
};

inline int32_t findRoot(int32_t* parent, int32_t x) {
  while (parent[x] != x) {
    parent[x] = parent[parent[x]];  // path halving
    x = parent[x];
  }
  return x;
}

// Fills ws.filtered with the map the sweep runs on, (H+2) x (W+2) with a
// zero ring so that neighbour reads need no bounds checks: the 6x6 window
// min of the raw map (erosion of `a > c` == `window min of a > c`, and n()
// is monotone, so the whole sweep and the final map run on this one map), or
// the raw map itself without erosion.
//
// Each row is then scanned, while still in L1, for the pixels that ever
// switch on (value >= aMin), which are pushed onto one list per value:
// head[v] is the last such pixel in raster order, parent[p] the one before
// it (-1 ends a list). The union-find overwrites these links as it goes.
std::array<int32_t, 256> filterAndList(const MapView& map, bool erode, uint8_t aMin,
                                       Workspace& ws) {
  const int H = map.height, W = map.width;
  const size_t S = static_cast<size_t>(W) + 2;  // padded row stride
  uint8_t* fp = sized(ws.filtered, (H + 2) * S + kSlack);
  int32_t* parent = sized(ws.parent, (H + 2) * S);
  uint8_t* columnMin = nullptr;
  if (erode) {
    columnMin = sized(ws.columnMin, static_cast<size_t>(W) + kWindowBefore + kWindowAfter);
    std::memset(columnMin, 255, kWindowBefore);
    std::memset(columnMin + kWindowBefore + W, 255, kWindowAfter);
  }
  std::array<int32_t, 256> head;
  head.fill(-1);
  std::memset(fp, 0, S);
  std::memset(fp + (H + 1) * S, 0, S + kSlack);
  for (int y = 0; y < H; ++y) {
    const int32_t rowStart = static_cast<int32_t>((y + 1) * S);
    uint8_t* row = fp + rowStart;
    row[0] = 0;
    row[W + 1] = 0;
    if (!erode) {
      std::memcpy(row + 1, map.data + static_cast<size_t>(y) * W, W);
    } else if (!windowMinRow(map, y, aMin, columnMin, row + 1)) {
      // Nothing in this row ever switches on. Zeros act the same in the
      // neighbour tests and in the final `f > thr` (every f > thr is >= aMin).
      std::memset(row + 1, 0, W);
      continue;
    }
    // 16-pixel blocks; the last one may read into the ring and the next row,
    // which the mask drops.
    for (int x = 0; x < W; x += 16) {
      uint32_t on = atLeastMask16(row + 1 + x, aMin);
      if (W - x < 16) on &= (1u << (W - x)) - 1;
      for (; on; on &= on - 1) {
        const int32_t p = rowStart + 1 + x + lowestBit(on);
        const uint8_t v = fp[p];
        parent[p] = head[v];
        head[v] = p;
      }
    }
  }
  return head;
}

// Component count after each sweep level in one pass. Pixels switch on at
// their level and stay on (thresholds only decrease), so adding them in
// order of decreasing filtered value to a union-find yields every count: the
// count after level i is taken once all values of that level are in.
//
// Before a pixel switches on, parent[p] links it into the list of pixels
// with its value (head[v] starts the list, -1 ends it); the lists were built
// in raster order, so each is walked in reverse raster order. A neighbour q
// of p (value v) is therefore already on when f(q) > v, or f(q) == v and q
// comes later in raster order (E, SW, S, SE). The zero ring is never on:
// every listed value is >= 1.
void countComponents(const uint8_t* fp, int W, const std::array<int32_t, 256>& head,
                     const std::array<uint8_t, 256>& levelOf, int32_t* parent,
                     std::vector<int>& counts) {
  const int32_t S = W + 2;
  int32_t step[8];
  for (int k = 0; k < 8; ++k) step[k] = kNeighbourSteps[k][0] * S + kNeighbourSteps[k][1];
  const int levels = static_cast<int>(counts.size());
  int components = 0;
  int value = 255;
  for (int i = 0; i < levels; ++i) {
    for (; value > 0 && levelOf[value] <= i; --value) {
      const NeighboursOn neighboursOn(S, static_cast<uint8_t>(value));
      for (int32_t p = head[value]; p >= 0;) {
        const int32_t next = parent[p];
        const uint32_t on = neighboursOn(fp + p);
        const uint32_t entry = kNeighbourGroups.entry[on];
        const int groups = entry & 7;
        if (groups == 0) {
          parent[p] = p;
          ++components;
        } else {
          int32_t root = findRoot(parent, p + step[entry >> 3 & 7]);
          parent[p] = root;
          for (int g = 1; g < groups; ++g) {
            const int32_t other = findRoot(parent, p + step[entry >> (3 + 3 * g) & 7]);
            if (other == root) continue;
            --components;
            // Link the larger index under the smaller one.
            if (other < root) {
              parent[root] = other;
              root = other;
            } else {
              parent[other] = root;
            }
          }
        }
        p = next;
      }
    }
    counts[i] = components;
  }
}

// METHOD.md §2.5 final map: raw `a > thr` then erosion == filtered > thr. Returns
// the number of 255 pixels.
int64_t thresholdMap(const uint8_t* fp, int H, int W, uint8_t thr, uint8_t* binary) {
  const size_t S = static_cast<size_t>(W) + 2;
  int64_t foreground = 0;
  for (int y = 0; y < H; ++y) {
    const uint8_t* src = fp + (y + 1) * S + 1;
    uint8_t* dst = binary + static_cast<size_t>(y) * W;
    int x = 0;
#if defined(__SSE2__)
    // f > thr  <=>  max(f, thr + 1) == f (thr < 255 here). psadbw sums the
    // 0/255 bytes: 255 per foreground pixel.
    const __m128i floor = _mm_set1_epi8(static_cast<char>(thr + 1));
    __m128i sums = _mm_setzero_si128();
    for (; x + 16 <= W; x += 16) {
      const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + x));
      const __m128i on = _mm_cmpeq_epi8(_mm_max_epu8(v, floor), v);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + x), on);
      sums = _mm_add_epi64(sums, _mm_sad_epu8(on, _mm_setzero_si128()));
    }
    uint64_t halves[2];
    _mm_storeu_si128(reinterpret_cast<__m128i*>(halves), sums);
    foreground += static_cast<int64_t>((halves[0] + halves[1]) / 255);
#endif
    for (; x < W; ++x) {
      const bool on = src[x] > thr;
      dst[x] = on ? 255 : 0;
      foreground += on;
    }
  }
  return foreground;
}

}  // namespace

std::array<uint8_t, 256> sweepLevels(const Range& range, const Options& options) {
  validateRange(range);
  return sweepLevels(range, sweepThresholds(options));
}

void validateOptions(const Options& options) {
  if (options.sampleRate < 1 || options.sampleRate > 255)
    invalid("sampleRate must be an integer in 1..255, got " + std::to_string(options.sampleRate));
  if (options.minIntervalLen < 1)
    invalid("minIntervalLen must be >= 1, got " + std::to_string(options.minIntervalLen));
}

void validateRange(const Range& range) {
  if (range.minTh < 0 || range.minTh > 255 || range.maxTh < 0 || range.maxTh > 255)
    invalid("range thresholds must lie in 0..255, got minTh " + std::to_string(range.minTh) +
            ", maxTh " + std::to_string(range.maxTh));
  if (range.minTh > range.maxTh)
    invalid("range minTh (" + std::to_string(range.minTh) + ") must not exceed maxTh (" +
            std::to_string(range.maxTh) + ")");
}

void validateMap(const MapView& map) {
  if (map.height < 1 || map.width < 1)
    invalid("anomaly map must be at least 1x1, got " + std::to_string(map.height) + "x" +
            std::to_string(map.width));
  // Padded positions are int32 in the union-find.
  if ((static_cast<int64_t>(map.height) + 2) * (static_cast<int64_t>(map.width) + 2) >
      std::numeric_limits<int32_t>::max())
    invalid("anomaly map is too large (" + std::to_string(map.height) + "x" +
            std::to_string(map.width) + ")");
  if (map.data == nullptr) invalid("anomaly map has no data");
}

int mapMax(const MapView& map) {
  validateMap(map);
  const size_t n = static_cast<size_t>(map.height) * map.width;
  uint8_t best = 0;
  for (size_t k = 0; k < n; ++k) best = std::max(best, map.data[k]);
  return best;
}

Range searchRange(const std::vector<MapView>& maps) {
  if (maps.empty()) invalid("searchRange needs at least one anomaly map");
  Range range{255, 0};
  for (const MapView& map : maps) {
    const int peak = mapMax(map);
    range.minTh = std::min(range.minTh, peak);
    range.maxTh = std::max(range.maxTh, peak);
  }
  return range;
}

std::vector<int> sweepThresholds(const Options& options) {
  validateOptions(options);
  std::vector<int> thresholds;
  for (int t = 255; t > 0; t -= options.sampleRate) thresholds.push_back(t);
  return thresholds;
}

Selection selectThreshold(const std::vector<int>& counts, const Range& range,
                          const Options& options) {
  validateRange(range);
  const size_t expected = sweepThresholds(options).size();
  if (counts.size() != expected)
    invalid("count sequence has " + std::to_string(counts.size()) + " entries, expected " +
            std::to_string(expected) + " for sampleRate " + std::to_string(options.sampleRate));

  for (int c : counts)
    if (c < 0) invalid("component counts must be >= 0");
  static_assert(std::is_same_v<int, int32_t>);
  const StableRun run =
      longestStableRun(counts.data(), static_cast<int>(counts.size()), options.minIntervalLen);
  Selection selection;  // fallback: threshold 255, est 0
  if (run.end < 0) return selection;
  selection.est = run.value;
  selection.threshold = rawThreshold(options.sampleRate, run.end, range.minTh, range.maxTh);
  selection.endIndex = run.end;
  selection.fallback = false;
  return selection;
}

Result binarize(const MapView& map, const Range& range, const Options& options) {
  Result result;
  binarizeInto(map, range, options, result);
  return result;
}

void prepareWorkspace(int height, int width) {
  if (height < 1 || width < 1) return;
  const size_t S = static_cast<size_t>(width) + 2;
  sized(workspace.filtered, (static_cast<size_t>(height) + 2) * S + kSlack);
  sized(workspace.parent, (static_cast<size_t>(height) + 2) * S);
  sized(workspace.columnMin, static_cast<size_t>(width) + kWindowBefore + kWindowAfter);
}

void binarizeInto(const MapView& map, const Range& range, const Options& options, Result& result) {
  validateMap(map);
  validateRange(range);
  const std::vector<int> thresholds = sweepThresholds(options);
  const int H = map.height, W = map.width;
  Workspace& ws = workspace;

  result.foreground = 0;
  result.sequence.assign(thresholds.size(), 0);
  result.binary.resize(static_cast<size_t>(H) * W);  // every byte is written below

  // Values that ever switch on: levelOf is non-increasing, so they are
  // exactly a >= aMin. With none, every count stays 0 (fallback).
  const std::array<uint8_t, 256> levelOf = sweepLevels(range, thresholds);
  int aMin = 256;
  while (aMin > 0 && levelOf[aMin - 1] != kNever) --aMin;
  if (aMin <= 255) {
    const std::array<int32_t, 256> head =
        filterAndList(map, options.erode, static_cast<uint8_t>(aMin), ws);
    countComponents(ws.filtered.data(), W, head, levelOf, ws.parent.data(), result.sequence);
  }

  const Selection selection = selectThreshold(result.sequence, range, options);
  result.threshold = selection.threshold;
  result.count = selection.est;
  // Fallback (threshold 255) leaves the map empty; so does thr 255. Otherwise
  // some count was > 0, so aMin <= 255 and the filtered map is there.
  if (!selection.fallback && selection.threshold < 255)
    result.foreground = thresholdMap(ws.filtered.data(), H, W,
                                     static_cast<uint8_t>(selection.threshold),
                                     result.binary.data());
  else
    std::fill(result.binary.begin(), result.binary.end(), uint8_t{0});
}

}  // namespace anomalyncd::mebin
