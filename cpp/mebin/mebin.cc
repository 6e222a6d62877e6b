#include "mebin/mebin.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "common/error.h"

namespace anomalyncd::mebin {
namespace {

// Sweep level meaning "never foreground" (also used for the padding ring).
// Levels are sweep indices 0..T-1 with T <= 255, so 255 is free.
constexpr uint8_t kNever = 255;

// The 6x6 erosion window with OpenCV's default anchor (3, 3) covers rows
// y-3..y+2 and cols x-3..x+2, inclusive (SPEC 2.3 / T6).
constexpr int kWindowBefore = 3;
constexpr int kWindowAfter = 2;

[[noreturn]] void invalid(const std::string& message) {
  throw Error(code::kInvalidArgument, "MEBin: " + message);
}

// SPEC 2.2 in IEEE double, in the official order. With d == 0 the reference
// divides by zero; SPEC 2.1 says nothing is then foreground, so return NaN
// (every `n > t` is false). With a range taken from the maps themselves no
// value can exceed minTh when d == 0, so this matches the reference exactly.
double normalized(int value, const Range& range) {
  if (value < range.minTh) return 0.0;
  const int d = range.maxTh - range.minTh;
  if (d == 0) return std::numeric_limits<double>::quiet_NaN();
  return (static_cast<double>(value - range.minTh) / static_cast<double>(d)) * 255.0;
}

// out[k] = min(out[k], in[k]). Fixed 16-wide blocks so GCC vectorises this
// even at -O2 (its cheap cost model refuses loops that need an epilogue).
inline void minInPlace(uint8_t* __restrict out, const uint8_t* __restrict in, int n) {
  int k = 0;
  for (; k + 16 <= n; k += 16)
    for (int j = 0; j < 16; ++j) out[k + j] = std::min(out[k + j], in[k + j]);
  for (; k < n; ++k) out[k] = std::min(out[k], in[k]);
}

inline void minOf(uint8_t* __restrict out, const uint8_t* __restrict a,
                  const uint8_t* __restrict b, int n) {
  int k = 0;
  for (; k + 16 <= n; k += 16)
    for (int j = 0; j < 16; ++j) out[k + j] = std::min(a[k + j], b[k + j]);
  for (; k < n; ++k) out[k] = std::min(a[k], b[k]);
}

// Reused buffers: binarize() is called once per map, often thousands of times.
struct Workspace {
  std::vector<uint8_t> paddedRow;   // one raw row with 255 guards (W + 5)
  std::vector<uint8_t> pairMin;     // min of adjacent pairs of paddedRow
  std::vector<uint8_t> rowMin;      // horizontal 6-min, H*W
  std::vector<uint8_t> windowMin;   // full 6x6 min, H*W
  std::vector<uint8_t> level;       // (H+2)*(W+2) sweep level per pixel, kNever ring
  std::vector<int32_t> parent;      // union-find over padded positions
  std::vector<int32_t> order;       // foreground-able pixels sorted by level
};

thread_local Workspace workspace;

template <typename T>
T* sized(std::vector<T>& buffer, size_t n) {
  if (buffer.size() < n) buffer.resize(n);
  return buffer.data();
}

// Min over the off-centre 6x6 window, out-of-image positions ignored. Equals
// eroding any `value > c` mask (border never erodes), for every c at once.
void windowMinFilter(const MapView& map, Workspace& ws, uint8_t* out) {
  const int H = map.height, W = map.width;
  uint8_t* row = sized(ws.paddedRow, static_cast<size_t>(W) + 5);
  uint8_t* pairs = sized(ws.pairMin, static_cast<size_t>(W) + 4);
  uint8_t* rowMin = sized(ws.rowMin, static_cast<size_t>(H) * W);
  std::memset(row, 255, kWindowBefore);
  std::memset(row + kWindowBefore + W, 255, kWindowAfter);
  for (int y = 0; y < H; ++y) {
    std::memcpy(row + kWindowBefore, map.data + static_cast<size_t>(y) * W, W);
    // 6 = 2 + 2 + 2: pairs[j] = min(row[j], row[j+1]); out = pairs[x], [x+2], [x+4].
    minOf(pairs, row, row + 1, W + 4);
    uint8_t* dst = rowMin + static_cast<size_t>(y) * W;
    minOf(dst, pairs, pairs + 2, W);
    minInPlace(dst, pairs + 4, W);
  }
  for (int y = 0; y < H; ++y) {
    const int first = std::max(0, y - kWindowBefore);
    const int last = std::min(H - 1, y + kWindowAfter);
    uint8_t* dst = out + static_cast<size_t>(y) * W;
    std::memcpy(dst, rowMin + static_cast<size_t>(first) * W, W);
    for (int r = first + 1; r <= last; ++r)
      minInPlace(dst, rowMin + static_cast<size_t>(r) * W, W);
  }
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

int32_t findRoot(int32_t* parent, int32_t x) {
  while (parent[x] != x) {
    parent[x] = parent[parent[x]];  // path halving
    x = parent[x];
  }
  return x;
}

// Writes the sweep level of every pixel into `level` (padded by a kNever
// ring) and returns how many pixels sit at each level.
std::array<int32_t, 256> fillLevels(const uint8_t* filtered, int H, int W,
                                    const std::array<uint8_t, 256>& levelOf, uint8_t* level) {
  const int PW = W + 2;
  std::memset(level, kNever, PW);
  std::memset(level + static_cast<size_t>(H + 1) * PW, kNever, PW);
  // Histogram of raw values in four interleaved copies: plateaus would
  // otherwise serialise on one counter.
  std::array<std::array<int32_t, 256>, 4> valueCount{};
  for (int y = 0; y < H; ++y) {
    uint8_t* dst = level + static_cast<size_t>(y + 1) * PW;
    const uint8_t* src = filtered + static_cast<size_t>(y) * W;
    dst[0] = kNever;
    dst[W + 1] = kNever;
    int x = 0;
    for (; x + 4 <= W; x += 4) {
      const uint8_t a0 = src[x], a1 = src[x + 1], a2 = src[x + 2], a3 = src[x + 3];
      ++valueCount[0][a0], ++valueCount[1][a1], ++valueCount[2][a2], ++valueCount[3][a3];
      dst[x + 1] = levelOf[a0], dst[x + 2] = levelOf[a1];
      dst[x + 3] = levelOf[a2], dst[x + 4] = levelOf[a3];
    }
    for (; x < W; ++x) {
      ++valueCount[0][src[x]];
      dst[x + 1] = levelOf[src[x]];
    }
  }
  std::array<int32_t, 256> levelCount{};
  for (int a = 0; a < 256; ++a)
    levelCount[levelOf[a]] +=
        valueCount[0][a] + valueCount[1][a] + valueCount[2][a] + valueCount[3][a];
  return levelCount;
}

// Component count after each sweep level, in one pass: pixels switch on at
// their level and stay on (thresholds only decrease), so adding them level by
// level to a union-find yields every count. `level` is padded by a kNever ring.
void countComponentsPerLevel(const uint8_t* level, const std::array<int32_t, 256>& levelCount,
                             int H, int W, int levels, Workspace& ws, std::vector<int>& counts) {
  const int PW = W + 2;
  const size_t padded = static_cast<size_t>(H + 2) * PW;
  int32_t* parent = sized(ws.parent, padded);

  // Counting sort of switch-on-able pixels by level; raster order inside a
  // level, which the neighbour test below relies on.
  std::array<int32_t, 257> start{};
  for (int i = 0; i < 256; ++i) start[i + 1] = start[i] + levelCount[i];
  const int32_t active = start[levels];  // pixels that ever switch on
  int32_t* order = sized(ws.order, static_cast<size_t>(std::max(active, 1)));
  if (active > 0) {
    std::array<int32_t, 256> next{};
    std::copy(start.begin(), start.begin() + 256, next.begin());
    for (int y = 1; y <= H; ++y) {
      const int32_t rowStart = y * PW;
      for (int x = 1; x <= W; ++x) {
        const int32_t p = rowStart + x;
        const uint8_t l = level[p];
        if (l != kNever) order[next[l]++] = p;
      }
    }
  }

  // A neighbour is already on when it switched on at an earlier level, or at
  // this level earlier in raster order (the four "backward" neighbours).
  // On neighbours that touch each other are already joined, so only one per
  // touching group needs a find: the orthogonal ones form the cycle
  // N-E-S-W-N, and a diagonal one matters only when both orthogonal
  // neighbours next to it are off.
  counts.assign(levels, 0);
  int components = 0;
  int32_t k = 0;
  int32_t lastPixel = -1, lastRoot = -1;  // the previous pixel's root is still a root
  for (int i = 0; i < levels; ++i) {
    const int32_t end = start[i + 1];
    for (; k < end; ++k) {
      const int32_t p = order[k];
      parent[p] = p;
      int32_t root = p;
      int merges = 0;
      auto join = [&](int32_t q) {
        const int32_t other = q == lastPixel ? lastRoot : findRoot(parent, q);
        if (other == root) return;
        ++merges;
        // Link the larger index under the smaller one (p itself is the largest
        // so far when it is still alone).
        if (other < root) {
          parent[root] = other;
          root = other;
        } else {
          parent[other] = root;
        }
      };
      const bool n = level[p - PW] <= i, w = level[p - 1] <= i;
      const bool s = level[p + PW] < i, e = level[p + 1] < i;
      if (n) join(p - PW);
      if (e && !n) join(p + 1);
      if (s && !e) join(p + PW);
      if (w && !s && !n) join(p - 1);
      if (!n && !w && level[p - PW - 1] <= i) join(p - PW - 1);
      if (!n && !e && level[p - PW + 1] <= i) join(p - PW + 1);
      if (!s && !w && level[p + PW - 1] < i) join(p + PW - 1);
      if (!s && !e && level[p + PW + 1] < i) join(p + PW + 1);
      components += 1 - merges;
      lastPixel = p;
      lastRoot = root;
    }
    counts[i] = components;
  }
}

}  // namespace

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

  // One entry per count value, in the order it first produced a qualifying run.
  struct Candidate {
    int value;
    int bestSpan;  // max(e - s) over its qualifying runs
    int bestEnd;   // end of the last run with that span
  };
  std::vector<Candidate> candidates;
  const int n = static_cast<int>(counts.size());
  for (int s = 0; s < n;) {
    if (counts[s] < 0) invalid("component counts must be >= 0");
    int e = s;
    while (e + 1 < n && counts[e + 1] == counts[s]) ++e;
    if (counts[s] != 0 && e - s + 1 >= options.minIntervalLen) {
      auto it = std::find_if(candidates.begin(), candidates.end(),
                             [&](const Candidate& c) { return c.value == counts[s]; });
      if (it == candidates.end()) {
        candidates.push_back({counts[s], e - s, e});
      } else if (e - s >= it->bestSpan) {  // ties go to the later run
        it->bestSpan = e - s;
        it->bestEnd = e;
      }
    }
    s = e + 1;
  }

  Selection selection;  // fallback: threshold 255, est 0
  if (candidates.empty()) return selection;
  const Candidate* best = &candidates.front();
  for (const Candidate& c : candidates)
    if (c.bestSpan > best->bestSpan) best = &c;  // ties keep the earliest
  const int normalizedThreshold = 255 - options.sampleRate * best->bestEnd;
  const int64_t d = range.maxTh - range.minTh;
  // Official: int(t * (max - min) / 255 + min) with an int64 product (T1, T3).
  const double raw = static_cast<double>(normalizedThreshold * d) / 255.0 + range.minTh;
  selection.est = best->value;
  selection.threshold = static_cast<int>(raw);  // truncation toward zero
  selection.endIndex = best->bestEnd;
  selection.fallback = false;
  return selection;
}

Result binarize(const MapView& map, const Range& range, const Options& options) {
  validateMap(map);
  validateRange(range);
  const std::vector<int> thresholds = sweepThresholds(options);
  const int H = map.height, W = map.width;
  const size_t pixels = static_cast<size_t>(H) * W;
  Workspace& ws = workspace;

  // Erosion of `a > c` == `(6x6 window min of a) > c`, and n() is monotone, so
  // the whole sweep runs on one min-filtered raw map.
  const uint8_t* filtered = map.data;
  if (options.erode) {
    uint8_t* out = sized(ws.windowMin, pixels);
    windowMinFilter(map, ws, out);
    filtered = out;
  }

  const std::array<uint8_t, 256> levelOf = sweepLevels(range, thresholds);
  uint8_t* level = sized(ws.level, static_cast<size_t>(H + 2) * (W + 2));
  const std::array<int32_t, 256> levelCount = fillLevels(filtered, H, W, levelOf, level);

  Result result;
  countComponentsPerLevel(level, levelCount, H, W, static_cast<int>(thresholds.size()), ws,
                          result.sequence);
  const Selection selection = selectThreshold(result.sequence, range, options);
  result.threshold = selection.threshold;
  result.count = selection.est;

  // SPEC 2.5: raw `a > thr` then erode == filtered > thr. Fallback 255: empty.
  result.binary.assign(pixels, 0);
  if (!selection.fallback) {
    const uint8_t thr = static_cast<uint8_t>(std::min(selection.threshold, 255));
    int64_t foreground = 0;
    uint8_t* dst = result.binary.data();
    for (size_t k = 0; k < pixels; ++k) {
      const bool on = filtered[k] > thr;
      dst[k] = on ? 255 : 0;
      foreground += on;
    }
    result.foreground = foreground;
  }
  return result;
}

Result binarizeOracle(const MapView& map, const Range& range, const Options& options) {
  validateMap(map);
  validateRange(range);
  const std::vector<int> thresholds = sweepThresholds(options);
  const cv::Mat raw(map.height, map.width, CV_8U, const_cast<uint8_t*>(map.data));
  const cv::Mat kernel = cv::Mat::ones(6, 6, CV_8U);

  // The reference normalises elementwise; n depends only on the raw value.
  std::array<double, 256> normOf{};
  for (int a = 0; a < 256; ++a) normOf[a] = normalized(a, range);
  cv::Mat normMap(map.height, map.width, CV_64F);
  for (int y = 0; y < map.height; ++y)
    for (int x = 0; x < map.width; ++x) normMap.at<double>(y, x) = normOf[raw.at<uint8_t>(y, x)];

  auto binAndErode = [&](const cv::Mat& values, double threshold) {
    cv::Mat mask(values.size(), CV_8U);
    for (int y = 0; y < values.rows; ++y)
      for (int x = 0; x < values.cols; ++x) {
        const double v = values.type() == CV_64F ? values.at<double>(y, x)
                                                 : static_cast<double>(values.at<uint8_t>(y, x));
        mask.at<uint8_t>(y, x) = v > threshold ? 255 : 0;
      }
    if (!options.erode) return mask;
    cv::Mat eroded;
    cv::erode(mask, eroded, kernel);  // default anchor, 1 iteration, default border
    return eroded;
  };

  Result result;
  cv::Mat labels;
  for (int t : thresholds) {
    const cv::Mat mask = binAndErode(normMap, t);
    result.sequence.push_back(cv::connectedComponents(mask, labels, 8, CV_32S) - 1);
  }
  const Selection selection = selectThreshold(result.sequence, range, options);
  result.threshold = selection.threshold;
  result.count = selection.est;
  const cv::Mat finalMask = binAndErode(raw, selection.threshold);
  result.binary.assign(finalMask.datastart, finalMask.dataend);  // continuous: fresh Mat
  result.foreground = cv::countNonZero(finalMask);
  return result;
}

}  // namespace anomalyncd::mebin
