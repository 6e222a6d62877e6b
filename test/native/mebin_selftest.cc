// Self-test of cpp/mebin (built by CMake as build/mebin_selftest; run by
// test/00-native-selftests.test.ts as `mebin_selftest [CASES]`):
// 1. METHOD.md §2.7 selection table and 3-map end-to-end example (both implementations);
// 2. METHOD.md §2.5 claim (n > t  <=>  a > thr) for every range and every t in 1..255;
// 3. fast binarize() == binarizeOracle() on thousands of random maps and on
//    realistic detector maps (64..1024 px); 4. argument validation; 5. timings.
// `mebin_selftest --profile SIZE [REPS]` skips the checks and runs binarize()
// REPS times over fixed realistic SIZE x SIZE maps (best-of-REPS wall times);
// for repeatable instruction counts run it under
//   valgrind --tool=callgrind --toggle-collect='*mebin::binarize(*'
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "common/error.h"
#include "harness.h"
#include "mebin/mebin.h"

using namespace anomalyncd;
using namespace anomalyncd::mebin;

namespace {

using selftest::check;

std::string seqToString(const std::vector<int>& seq) {
  std::string s;
  for (size_t i = 0; i < seq.size(); ++i) s += (i ? "," : "") + std::to_string(seq[i]);
  return s;
}

std::vector<int> padded(std::vector<int> head, size_t length = 64) {
  head.resize(length, 0);
  return head;
}

// ---- 1a. METHOD.md §2.7 selection table (min_th 30, max_th 255) -------------------
void testSelectionTable() {
  struct Row {
    std::vector<int> counts;
    int est, endIndex, threshold;
    bool fallback;
  };
  std::vector<int> lastRow(10, 0);
  lastRow.resize(64, 1);
  const std::vector<Row> rows = {
      {padded({0, 0, 3, 3, 3, 3, 3, 1, 1, 1, 1, 1}), 3, 6, 233, false},
      {padded({0, 2, 2, 2, 2, 1, 1, 2, 2, 2, 2}), 2, 10, 219, false},
      {padded({0, 1, 1, 1, 0, 2, 2, 2}), 0, -1, 255, true},
      {padded({0, 0, 0, 5, 5, 5, 5}), 5, 6, 233, false},
      {padded({0, 4, 4, 4, 4, 4, 2, 2, 2, 2, 2, 2, 2}), 2, 12, 212, false},
      {lastRow, 1, 63, 32, false},
  };
  const Range range{30, 255};
  const Options options;
  for (size_t r = 0; r < rows.size(); ++r) {
    const Selection s = selectThreshold(rows[r].counts, range, options);
    const std::string tag = "METHOD.md §2.7 table row " + std::to_string(r + 1);
    check(s.est == rows[r].est, tag + " est " + std::to_string(s.est));
    check(s.endIndex == rows[r].endIndex, tag + " end " + std::to_string(s.endIndex));
    check(s.threshold == rows[r].threshold, tag + " thr " + std::to_string(s.threshold));
    check(s.fallback == rows[r].fallback, tag + " fallback");
  }
  // All-zero sequence falls back too.
  const Selection zero = selectThreshold(std::vector<int>(64, 0), range, options);
  check(zero.fallback && zero.threshold == 255 && zero.est == 0, "all-zero sequence fallback");
  std::printf("selection table: done\n");
}

// ---- 1a'. selectThreshold (the shared three-scan longestStableRun of select.h)
// against a direct transcription of the reference's dictionary of runs, on random
// sequences with few distinct values (many ties between runs and between values).
struct ReferenceChoice {
  int value = 0, end = -1;
};
ReferenceChoice referenceChoice(const std::vector<int>& counts, int minIntervalLen) {
  struct Candidate {
    int value, bestSpan, bestEnd;
  };
  std::vector<Candidate> candidates;  // in the order each value first qualified
  const int n = static_cast<int>(counts.size());
  for (int s = 0; s < n;) {
    int e = s;
    while (e + 1 < n && counts[e + 1] == counts[s]) ++e;
    if (counts[s] != 0 && e - s + 1 >= minIntervalLen) {
      auto it = std::find_if(candidates.begin(), candidates.end(),
                             [&](const Candidate& c) { return c.value == counts[s]; });
      if (it == candidates.end()) candidates.push_back({counts[s], e - s, e});
      else if (e - s >= it->bestSpan) *it = {counts[s], e - s, e};  // ties: the later run
    }
    s = e + 1;
  }
  ReferenceChoice choice;
  const Candidate* best = nullptr;
  for (const Candidate& c : candidates)
    if (!best || c.bestSpan > best->bestSpan) best = &c;  // ties: the earliest value
  if (best) choice = {best->value, best->bestEnd};
  return choice;
}

void testSelectionAgainstReference(int cases) {
  std::mt19937 rng(2718);
  int bad = 0;
  for (int k = 0; k < cases; ++k) {
    Options options;
    options.sampleRate = std::uniform_int_distribution<int>(1, 64)(rng);
    options.minIntervalLen = std::uniform_int_distribution<int>(1, 6)(rng);
    const size_t n = sweepThresholds(options).size();
    const int values = std::uniform_int_distribution<int>(1, 4)(rng);
    std::vector<int> counts(n);
    int v = 0;
    for (size_t i = 0; i < n; ++i) {  // runs of random lengths
      if (i == 0 || rng() % 3 == 0) v = std::uniform_int_distribution<int>(0, values)(rng);
      counts[i] = v;
    }
    const Range range{static_cast<int>(rng() % 100), 155 + static_cast<int>(rng() % 101)};
    const Selection got = selectThreshold(counts, range, options);
    const ReferenceChoice want = referenceChoice(counts, options.minIntervalLen);
    const bool same = want.end < 0
                          ? got.fallback && got.est == 0 && got.threshold == 255 && got.endIndex == -1
                          : !got.fallback && got.est == want.value && got.endIndex == want.end;
    if (!same && ++bad <= 5)
      check(false, "selection vs reference dictionary of runs, sequence " + seqToString(counts),
            "got est " + std::to_string(got.est) + " end " + std::to_string(got.endIndex) +
                ", want est " + std::to_string(want.value) + " end " + std::to_string(want.end));
  }
  check(bad == 0, "selectThreshold == reference dictionary of runs on " + std::to_string(cases) +
                      " random sequences");
  std::printf("selection vs reference: %d sequences, %d mismatches\n", cases, bad);
}

// ---- 1b. METHOD.md §2.7 end-to-end mini example ------------------------------------
struct Map {
  int h, w;
  std::vector<uint8_t> data;
  Map(int height, int width, uint8_t fill) : h(height), w(width), data(size_t(height) * width, fill) {}
  void fillRect(int y0, int y1, int x0, int x1, uint8_t v) {  // inclusive
    for (int y = y0; y <= y1; ++y)
      for (int x = x0; x <= x1; ++x) data[size_t(y) * w + x] = v;
  }
  MapView view() const { return {data.data(), h, w}; }
};

bool isBlock(const std::vector<uint8_t>& binary, int h, int w, int lo, int hi) {
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const bool inside = y >= lo && y <= hi && x >= lo && x <= hi;
      if (binary[size_t(y) * w + x] != (inside ? 255 : 0)) return false;
    }
  return true;
}

void testMiniExample() {
  Map m1(40, 40, 10);
  m1.fillRect(5, 16, 5, 16, 200);
  m1.fillRect(25, 34, 22, 31, 120);
  Map m2(40, 40, 5);
  m2.fillRect(10, 29, 10, 29, 250);
  m2.fillRect(17, 22, 17, 22, 255);
  Map m3(40, 40, 40);

  const Range range = searchRange({m1.view(), m2.view(), m3.view()});
  check(range.minTh == 40 && range.maxTh == 255, "mini example range");
  const Options options;

  std::vector<int> seq1(64, 0), seq2(64, 1), seq3(64, 0);
  for (int i = 17; i <= 40; ++i) seq1[i] = 1;
  for (int i = 41; i <= 63; ++i) seq1[i] = 2;
  seq2[0] = 0;

  using Fn = Result (*)(const MapView&, const Range&, const Options&);
  const std::pair<const char*, Fn> impls[] = {{"fast", &binarize}, {"oracle", &binarizeOracle}};
  for (const auto& [name, fn] : impls) {
    const std::string tag = std::string("mini example (") + name + ") ";
    const Result r1 = fn(m1.view(), range, options);
    check(r1.threshold == 120 && r1.count == 1, tag + "M1 thr/count " +
                                                   std::to_string(r1.threshold) + "/" +
                                                   std::to_string(r1.count));
    check(r1.sequence == seq1, tag + "M1 sequence " + seqToString(r1.sequence));
    check(isBlock(r1.binary, 40, 40, 8, 14) && r1.foreground == 49, tag + "M1 binary");
    const Result r2 = fn(m2.view(), range, options);
    check(r2.threshold == 42 && r2.count == 1, tag + "M2 thr/count");
    check(r2.sequence == seq2, tag + "M2 sequence " + seqToString(r2.sequence));
    check(isBlock(r2.binary, 40, 40, 13, 27) && r2.foreground == 225, tag + "M2 binary");
    const Result r3 = fn(m3.view(), range, options);
    check(r3.threshold == 255 && r3.count == 0, tag + "M3 thr/count");
    check(r3.sequence == seq3, tag + "M3 sequence");
    check(isBlock(r3.binary, 40, 40, 1, 0) && r3.foreground == 0, tag + "M3 binary");
  }

  // METHOD.md §2.3 erosion example: 10x10 block at 5..14 survives as 8..12.
  Map block(20, 20, 0);
  block.fillRect(5, 14, 5, 14, 255);
  for (const auto& [name, fn] : impls) {
    // Constant count 1 from index 0 upward: thr = trunc(255*...) -> end index 63.
    const Result r = fn(block.view(), Range{0, 255}, options);
    check(isBlock(r.binary, 20, 20, 8, 12), std::string("erosion geometry (") + name + ")");
  }
  std::printf("mini example: done\n");
}

// ---- 2. METHOD.md §2.5: raw threshold selects exactly n > t, for every t ----------
void testRawThresholdEquivalence() {
  long checked = 0;
  for (int minTh = 0; minTh < 256; ++minTh)
    for (int maxTh = minTh + 1; maxTh < 256; ++maxTh) {
      const int d = maxTh - minTh;
      auto norm = [&](int a) { return a < minTh ? 0.0 : (double(a - minTh) / d) * 255.0; };
      for (int t = 1; t <= 255; ++t) {
        const int thr = int(double(int64_t(t) * d) / 255.0 + minTh);
        // n is monotone and `a > thr` a step, so the two boundary values decide.
        const bool ok = norm(thr) <= t && (thr == 255 || norm(thr + 1) > t);
        check(ok, "raw threshold equivalence min " + std::to_string(minTh) + " max " +
                      std::to_string(maxTh) + " t " + std::to_string(t));
        ++checked;
      }
    }
  std::printf("raw-threshold equivalence: %ld (range, t) pairs checked\n", checked);
}

// ---- 3. random maps: fast vs oracle ----------------------------------------
struct Case {
  Map map{1, 1, 0};
  Range range;
  Options options;
};

std::vector<uint8_t> boundaryValues(const Range& range, const Options& options) {
  std::vector<uint8_t> values = {0, 255};
  auto add = [&](int v) {
    if (v >= 0 && v <= 255) values.push_back(uint8_t(v));
  };
  add(range.minTh - 1), add(range.minTh), add(range.minTh + 1);
  add(range.maxTh - 1), add(range.maxTh), add(range.maxTh + 1);
  const int d = range.maxTh - range.minTh;
  for (int t = 255; t > 0; t -= options.sampleRate) {
    const int thr = int(double(int64_t(t) * d) / 255.0 + range.minTh);
    add(thr), add(thr + 1);
  }
  return values;
}

Case randomCase(std::mt19937& rng, int index) {
  auto uni = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  Case c;
  const int rates[] = {1, 3, 4, 7};
  c.options.sampleRate = rates[uni(0, 3)];
  c.options.minIntervalLen = uni(1, 6);
  c.options.erode = uni(0, 3) != 0;
  const bool big = index % 10 == 0;
  const int h = big ? 64 : uni(1, 40), w = big ? 64 : uni(1, 40);

  // Range first (so boundary values can be planted): mostly a plausible
  // category range, sometimes d = 0, sometimes arbitrary.
  switch (uni(0, 5)) {
    case 0: c.range.minTh = c.range.maxTh = uni(0, 255); break;
    case 1: c.range = {uni(0, 255), 255}; break;
    case 2: { int a = uni(0, 255), b = uni(0, 255); c.range = {std::min(a, b), std::max(a, b)}; break; }
    default: { int a = uni(0, 200); c.range = {a, std::min(255, a + uni(1, 255))}; break; }
  }
  const std::vector<uint8_t> boundary = boundaryValues(c.range, c.options);
  auto pickValue = [&]() -> uint8_t {
    switch (uni(0, 2)) {
      case 0: return boundary[uni(0, int(boundary.size()) - 1)];
      case 1: return uint8_t(uni(c.range.minTh, c.range.maxTh));
      default: return uint8_t(uni(0, 255));
    }
  };

  Map m(h, w, uni(0, 3) == 0 ? pickValue() : uint8_t(uni(0, std::max(0, c.range.minTh))));
  switch (uni(0, 3)) {
    case 0:  // plateaus: nested / overlapping rectangles of planted values
    case 1: {
      const int rects = uni(1, 12);
      for (int r = 0; r < rects; ++r) {
        const int y0 = uni(0, h - 1), x0 = uni(0, w - 1);
        m.fillRect(y0, std::min(h - 1, y0 + uni(0, 14)), x0, std::min(w - 1, x0 + uni(0, 14)),
                   pickValue());
      }
      break;
    }
    case 2: {  // pixel noise from a small palette: many tiny components
      std::vector<uint8_t> palette(uni(2, 5));
      for (auto& v : palette) v = pickValue();
      for (auto& v : m.data) v = palette[uni(0, int(palette.size()) - 1)];
      break;
    }
    default: {  // smooth bumps: graded values crossing many thresholds
      const int bumps = uni(1, 4);
      std::vector<double> acc(m.data.size(), 0.0);
      for (int b = 0; b < bumps; ++b) {
        const double cy = uni(0, h - 1), cx = uni(0, w - 1), s = uni(2, 12), peak = uni(50, 300);
        for (int y = 0; y < h; ++y)
          for (int x = 0; x < w; ++x)
            acc[size_t(y) * w + x] +=
                peak * std::exp(-((y - cy) * (y - cy) + (x - cx) * (x - cx)) / (2 * s * s));
      }
      for (size_t k = 0; k < acc.size(); ++k)
        m.data[k] = uint8_t(std::min(255.0, m.data[k] + acc[k]));
      break;
    }
  }
  c.map = std::move(m);
  if (uni(0, 4) == 0) c.range = searchRange({c.map.view()});  // single map: d == 0
  return c;
}

void testRandom(int cases) {
  std::mt19937 rng(12345);
  int nonFallback = 0, multi = 0, failedCases = 0;
  for (int k = 0; k < cases; ++k) {
    const Case c = randomCase(rng, k);
    const Result fast = binarize(c.map.view(), c.range, c.options);
    const Result ref = binarizeOracle(c.map.view(), c.range, c.options);
    const bool same = fast.threshold == ref.threshold && fast.count == ref.count &&
                      fast.sequence == ref.sequence && fast.binary == ref.binary &&
                      fast.foreground == ref.foreground;
    if (!same) {
      ++failedCases;
      check(false, "random case " + std::to_string(k) + " " + std::to_string(c.map.h) + "x" +
                       std::to_string(c.map.w) + " range " + std::to_string(c.range.minTh) + ".." +
                       std::to_string(c.range.maxTh) + " sr " +
                       std::to_string(c.options.sampleRate) + " erode " +
                       std::to_string(c.options.erode) + "\n  fast   " +
                       seqToString(fast.sequence) + " thr " + std::to_string(fast.threshold) +
                       "\n  oracle " + seqToString(ref.sequence) + " thr " +
                       std::to_string(ref.threshold));
    }
    nonFallback += ref.threshold != 255 || ref.count != 0;
    multi += ref.count > 1;
  }
  std::printf("random fast vs oracle: %d cases, %d mismatches (%d non-fallback, %d with est > 1)\n",
              cases, failedCases, nonFallback, multi);
}

// ---- 4. validation ------------------------------------------------------------
void expectInvalid(const std::function<void()>& fn, const std::string& what) {
  try {
    fn();
    check(false, what + ": no error");
  } catch (const Error& e) {
    check(e.code() == code::kInvalidArgument, what + ": wrong code " + e.code());
  }
}

void testValidation() {
  const uint8_t pixel = 7;
  const MapView one{&pixel, 1, 1};
  expectInvalid([] { searchRange({}); }, "empty map list");
  expectInvalid([&] { binarize(MapView{&pixel, 0, 1}, Range{0, 255}, Options{}); }, "0 rows");
  expectInvalid([&] { binarize(MapView{nullptr, 1, 1}, Range{0, 255}, Options{}); }, "null data");
  expectInvalid([&] { binarize(one, Range{10, 5}, Options{}); }, "minTh > maxTh");
  expectInvalid([&] { binarize(one, Range{-1, 5}, Options{}); }, "negative minTh");
  expectInvalid([&] { binarize(one, Range{0, 256}, Options{}); }, "maxTh 256");
  expectInvalid([&] { binarize(one, Range{0, 255}, Options{0, 4, true}); }, "sampleRate 0");
  expectInvalid([&] { binarize(one, Range{0, 255}, Options{256, 4, true}); }, "sampleRate 256");
  expectInvalid([&] { binarize(one, Range{0, 255}, Options{4, 0, true}); }, "minIntervalLen 0");
  expectInvalid([&] { selectThreshold(std::vector<int>(10, 1), Range{0, 255}, Options{}); },
                "short count sequence");
  check(sweepThresholds(Options{}).size() == 64 && sweepThresholds(Options{}).back() == 3,
        "64 thresholds 255..3");
  check(sweepThresholds(Options{1, 4, true}).size() == 255, "255 thresholds for rate 1");
  std::printf("validation: done\n");
}

// ---- 5. timing -------------------------------------------------------------
Map blobMap(int size, std::mt19937& rng) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  Map m(size, size, 0);
  std::vector<double> acc(size_t(size) * size);
  for (auto& v : acc) v = 10 + 25 * u(rng);  // noisy background
  const double scale = size / 256.0;
  for (int b = 0; b < 6; ++b) {
    const double cy = u(rng) * size, cx = u(rng) * size, s = (4 + 20 * u(rng)) * scale,
                 peak = 100 + 155 * u(rng);
    const int r = int(4 * s);
    for (int y = std::max(0, int(cy) - r); y < std::min(size, int(cy) + r); ++y)
      for (int x = std::max(0, int(cx) - r); x < std::min(size, int(cx) + r); ++x)
        acc[size_t(y) * size + x] +=
            peak * std::exp(-((y - cy) * (y - cy) + (x - cx) * (x - cx)) / (2 * s * s));
  }
  for (size_t k = 0; k < acc.size(); ++k) m.data[k] = uint8_t(std::min(255.0, acc[k]));
  return m;
}

// A realistic detector map: a smooth, slowly varying background with pixel
// noise and a few Gaussian anomaly blobs. The range's minTh is put at the
// (1 - aboveFraction) quantile, so that fraction of pixels lies above it, as
// with a category range whose minTh is the smallest per-map peak.
struct RealisticCase {
  Map map{1, 1, 0};
  Range range;
};

RealisticCase realisticCase(int size, double aboveFraction, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  const double scale = size / 256.0;
  std::vector<double> acc(size_t(size) * size, 25.0);
  auto addBlob = [&](double cy, double cx, double s, double peak) {
    const int r = int(4 * s);
    for (int y = std::max(0, int(cy) - r); y < std::min(size, int(cy) + r); ++y)
      for (int x = std::max(0, int(cx) - r); x < std::min(size, int(cx) + r); ++x)
        acc[size_t(y) * size + x] +=
            peak * std::exp(-((y - cy) * (y - cy) + (x - cx) * (x - cx)) / (2 * s * s));
  };
  for (int b = 0; b < 10; ++b)  // background undulation
    addBlob(u(rng) * size, u(rng) * size, (20 + 30 * u(rng)) * scale, 10 + 25 * u(rng));
  const int anomalies = 1 + int(u(rng) * 5);
  for (int b = 0; b < anomalies; ++b)
    addBlob(u(rng) * size, u(rng) * size, (4 + 20 * u(rng)) * scale, 80 + 150 * u(rng));
  RealisticCase c;
  c.map = Map(size, size, 0);
  for (size_t k = 0; k < acc.size(); ++k)
    c.map.data[k] = uint8_t(std::clamp(acc[k] + 16 * (u(rng) - 0.5), 0.0, 255.0));
  std::vector<uint8_t> sorted = c.map.data;
  const size_t q = std::min(sorted.size() - 1, size_t((1.0 - aboveFraction) * sorted.size()));
  std::nth_element(sorted.begin(), sorted.begin() + q, sorted.end());
  c.range = {sorted[q], 255};
  return c;
}

std::vector<RealisticCase> realisticCases(int size) {
  std::vector<RealisticCase> cases;
  uint32_t seed = 1000 + size;
  for (double f : {0.05, 0.10, 0.20, 0.35})
    for (int k = 0; k < (size <= 256 ? 2 : 1); ++k) cases.push_back(realisticCase(size, f, seed++));
  return cases;
}

void testRealistic() {
  int checkedCases = 0;
  for (int size : {64, 256, 1024}) {
    for (const RealisticCase& c : realisticCases(size)) {
      for (const Options& options : {Options{}, Options{1, 4, true}, Options{7, 2, false}}) {
        const Result fast = binarize(c.map.view(), c.range, options);
        const Result ref = binarizeOracle(c.map.view(), c.range, options);
        check(fast.threshold == ref.threshold && fast.count == ref.count &&
                  fast.sequence == ref.sequence && fast.binary == ref.binary &&
                  fast.foreground == ref.foreground,
              "realistic map " + std::to_string(size) + " minTh " +
                  std::to_string(c.range.minTh) + " sr " + std::to_string(options.sampleRate));
        ++checkedCases;
        if (size == 1024) break;  // the oracle is slow at this size
      }
    }
  }
  std::printf("realistic maps fast vs oracle: %d cases checked\n", checkedCases);
}

int profile(int size, int reps) {
  const std::vector<RealisticCase> cases = realisticCases(size);
  double sumBest = 0;
  long long checksum = 0;
  for (const RealisticCase& c : cases) {
    double best = 1e300;
    for (int r = 0; r < reps; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      const Result res = binarize(c.map.view(), c.range, Options{});
      best = std::min(best, std::chrono::duration<double, std::milli>(
                                std::chrono::steady_clock::now() - t0).count());
      if (r == 0) checksum += res.foreground * 31 + res.threshold * 7 + res.count;
    }
    sumBest += best;
  }
  std::printf("profile %dx%d: %zu maps, mean best-of-%d %.4f ms, checksum %lld\n", size, size,
              cases.size(), reps, sumBest / cases.size(), checksum);
  return 0;
}

template <typename F>
double medianMs(int runs, F&& fn) {
  std::vector<double> ms;
  for (int r = 0; r < runs; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    fn();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

void timing() {
  std::mt19937 rng(7);
  const Range range{60, 255};  // a typical category range (good-image peak ~60)
  for (int size : {256, 1024}) {
    const Map m = blobMap(size, rng);
    const Result fast = binarize(m.view(), range, Options{});
    const Result ref = binarizeOracle(m.view(), range, Options{});
    check(fast.sequence == ref.sequence && fast.binary == ref.binary, "timing map agreement");
    const double fastMs = medianMs(size == 256 ? 101 : 21, [&] { binarize(m.view(), range, Options{}); });
    const double oracleMs = medianMs(size == 256 ? 7 : 3, [&] { binarizeOracle(m.view(), range, Options{}); });
    std::printf("timing %dx%d: fast %.3f ms, oracle %.1f ms (est %d, thr %d, foreground %lld)\n",
                size, size, fastMs, oracleMs, fast.count, fast.threshold,
                static_cast<long long>(fast.foreground));
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 2 && std::string(argv[1]) == "--profile")
    return profile(std::atoi(argv[2]), argc > 3 ? std::atoi(argv[3]) : 200);
  const int cases = argc > 1 ? std::atoi(argv[1]) : 3000;
  testSelectionTable();
  testSelectionAgainstReference(200000);
  testMiniExample();
  testRawThresholdEquivalence();
  testValidation();
  testRandom(cases);
  testRealistic();
  timing();
  return selftest::summary();
}
