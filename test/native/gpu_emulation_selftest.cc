// Self-test of the CUDA kernels by host emulation (issue 8, item 6; built as
// build/gpu_emulation_selftest, run by test/40-gpu-emulation.test.ts as
// `gpu_emulation_selftest MAPS MTD_DIR`):
// 1. batched MEBin (cpp/gpu/mebin_kernels.h, launched through cpp/gpu/emulate.h with
//    the host orchestration of cpp/gpu/mebin_batch.h) == mebin::binarize on MAPS random
//    maps in mixed-size batches (1x1, all-zero, all-255, one-pixel components,
//    border-touching components, plateaus, noise, smooth blobs; random ranges and
//    options; shuffled thread schedules) and on maps derived from every MTD test mask
//    (blurred ground truth over a textured background, downsampled; one per class at
//    full size);
// 2. the fused [CLS]-row attention body (cpp/gpu/attention.h) against
//    model::maskedAttention in fp32 (2e-5 max abs; summation order differs) and with
//    bfloat16 inputs (within the output's bf16 rounding);
// 3. the CPU build's device queries (no device: ERR_DEVICE).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "common/error.h"
#include "gpu/gpu.h"
#include "harness.h"
#include "io/png_codec.h"
#include "mebin/mebin.h"

#if defined(ANOMALYNCD_SELFTEST_ATTENTION)
#include <ATen/ATen.h>

#include "gpu/attention.h"
#include "model/vit.h"
#endif

using namespace anomalyncd;
using selftest::check;

namespace {

struct Map {
  int h = 1, w = 1;
  std::vector<uint8_t> data;
  Map(int h_, int w_, uint8_t v) : h(h_), w(w_), data(size_t(h_) * w_, v) {}
  mebin::MapView view() const { return {data.data(), h, w}; }
  void rect(int y0, int y1, int x0, int x1, uint8_t v) {
    for (int y = std::max(0, y0); y <= std::min(h - 1, y1); ++y)
      for (int x = std::max(0, x0); x <= std::min(w - 1, x1); ++x) data[size_t(y) * w + x] = v;
  }
};

struct Rng {
  std::mt19937 g;
  explicit Rng(uint32_t s) : g(s) {}
  int operator()(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(g); }
};

std::string describe(const mebin::Result& r) {
  std::string s = "thr " + std::to_string(r.threshold) + " count " + std::to_string(r.count) +
                  " fg " + std::to_string(r.foreground) + " seq";
  for (size_t i = 0; i < std::min<size_t>(r.sequence.size(), 16); ++i)
    s += " " + std::to_string(r.sequence[i]);
  return s;
}

bool same(const mebin::Result& a, const mebin::Result& b) {
  return a.threshold == b.threshold && a.count == b.count && a.sequence == b.sequence &&
         a.binary == b.binary && a.foreground == b.foreground;
}

// Compares one batch; returns the number of mismatching maps.
// chunkPixels > 0: small chunks, so the batch runs as several double-buffered chunks.
int compareBatch(const std::vector<Map>& maps, const mebin::Range& range,
                 const mebin::Options& options, unsigned seed, const std::string& what,
                 int64_t chunkPixels = 0) {
  std::vector<mebin::MapView> views;
  for (const Map& m : maps) views.push_back(m.view());
  const std::vector<mebin::Result> got =
      gpu::binarizeBatchEmulated(views, range, options, seed, chunkPixels);
  int bad = 0;
  check(got.size() == maps.size(), what + ": result count");
  for (size_t i = 0; i < maps.size() && i < got.size(); ++i) {
    const mebin::Result want = mebin::binarize(views[i], range, options);
    if (!check(same(got[i], want), what + " map " + std::to_string(i) + " " +
                                       std::to_string(maps[i].h) + "x" + std::to_string(maps[i].w),
               "emulated " + describe(got[i]) + " | cpu " + describe(want)))
      ++bad;
  }
  return bad;
}

// ---- 1a. random maps ------------------------------------------------------------
Map randomMap(Rng& u, const mebin::Range& range, int kind) {
  auto value = [&]() -> uint8_t {
    switch (u(0, 3)) {
      case 0: return uint8_t(u(std::max(0, range.minTh - 2), std::min(255, range.maxTh + 2)));
      case 1: return uint8_t(u(range.minTh, 255));
      default: return uint8_t(u(0, 255));
    }
  };
  const bool big = u(0, 30) == 0;
  const int h = big ? u(64, 140) : u(1, 48), w = big ? u(64, 140) : u(1, 48);
  switch (kind) {
    case 0: return Map(1, 1, value());
    case 1: return Map(h, w, 0);
    case 2: return Map(h, w, 255);
    case 3: {  // isolated pixels (one-pixel components), some on the border
      Map m(h, w, uint8_t(u(0, std::max(0, range.minTh))));
      const int n = u(1, 20);
      for (int k = 0; k < n; ++k) {
        const int y = u(0, 2) == 0 ? (u(0, 1) ? 0 : h - 1) : u(0, h - 1);
        const int x = u(0, 2) == 0 ? (u(0, 1) ? 0 : w - 1) : u(0, w - 1);
        m.data[size_t(y) * w + x] = value();
      }
      return m;
    }
    case 4: {  // rectangles touching the borders
      Map m(h, w, uint8_t(u(0, std::max(0, range.minTh))));
      const int n = u(1, 6);
      for (int k = 0; k < n; ++k) {
        const int side = u(0, 3), t = u(1, 10), a = u(0, std::max(h, w));
        const uint8_t v = value();
        if (side == 0) m.rect(0, t, a, a + u(0, 12), v);
        if (side == 1) m.rect(h - 1 - t, h - 1, a, a + u(0, 12), v);
        if (side == 2) m.rect(a, a + u(0, 12), 0, t, v);
        if (side == 3) m.rect(a, a + u(0, 12), w - 1 - t, w - 1, v);
      }
      return m;
    }
    case 5: {  // palette noise: many tiny components and diagonal contacts
      Map m(h, w, 0);
      std::vector<uint8_t> palette(u(2, 5));
      for (auto& v : palette) v = value();
      for (auto& v : m.data) v = palette[u(0, int(palette.size()) - 1)];
      return m;
    }
    case 6: {  // nested / overlapping plateaus
      Map m(h, w, uint8_t(u(0, std::max(0, range.minTh))));
      const int n = u(1, 12);
      for (int k = 0; k < n; ++k) {
        const int y0 = u(0, h - 1), x0 = u(0, w - 1);
        m.rect(y0, y0 + u(0, 14), x0, x0 + u(0, 14), value());
      }
      return m;
    }
    default: {  // smooth random blobs
      Map m(h, w, uint8_t(u(0, std::max(0, range.minTh))));
      std::vector<double> acc(m.data.size(), 0.0);
      const int n = u(1, 5);
      for (int b = 0; b < n; ++b) {
        const double cy = u(0, h - 1), cx = u(0, w - 1), s = u(1, 12), peak = u(40, 320);
        for (int y = 0; y < h; ++y)
          for (int x = 0; x < w; ++x)
            acc[size_t(y) * w + x] +=
                peak * std::exp(-((y - cy) * (y - cy) + (x - cx) * (x - cx)) / (2 * s * s));
      }
      for (size_t k = 0; k < acc.size(); ++k)
        m.data[k] = uint8_t(std::min(255.0, m.data[k] + acc[k]));
      return m;
    }
  }
}

void testRandom(int target) {
  Rng u(4242);
  int maps = 0, batches = 0, bad = 0, nonFallback = 0;
  while (maps < target) {
    mebin::Options options;
    const int rates[] = {1, 3, 4, 4, 4, 7, 16};
    options.sampleRate = rates[u(0, 6)];
    options.minIntervalLen = u(1, 6);
    options.erode = u(0, 3) != 0;
    mebin::Range range;
    switch (u(0, 4)) {
      case 0: range.minTh = range.maxTh = u(0, 255); break;
      case 1: range = {u(0, 255), 255}; break;
      case 2: { const int a = u(0, 255), b = u(0, 255); range = {std::min(a, b), std::max(a, b)}; break; }
      default: { const int a = u(0, 200); range = {a, std::min(255, a + u(1, 255))}; break; }
    }
    std::vector<Map> batch;
    const int n = u(1, 24);
    for (int k = 0; k < n; ++k) batch.push_back(randomMap(u, range, u(0, 9)));
    if (u(0, 5) == 0) {  // the category-wide range of the batch itself (METHOD.md §2.1)
      std::vector<mebin::MapView> views;
      for (const Map& m : batch) views.push_back(m.view());
      range = mebin::searchRange(views);
    }
    const unsigned seed = batches % 3 == 0 ? 0u : 1000u + batches;
    const int64_t chunkPixels = batches % 4 == 1 ? u(1, 3000) : 0;  // 1: every map its own chunk
    bad += compareBatch(batch, range, options, seed, "random batch " + std::to_string(batches),
                        chunkPixels);
    for (const Map& m : batch)
      nonFallback += mebin::binarize(m.view(), range, options).count > 0;
    maps += n;
    ++batches;
  }
  for (int k = 0; k < 2; ++k) {  // a map of kLargeMapPixels or more: blocks of 1024 threads
    Map big(530, 520, uint8_t(u(0, 30)));
    for (int r = 0; r < 60; ++r) {
      const int y = u(0, 529), x = u(0, 519);
      big.rect(y, y + u(0, 40), x, x + u(0, 40), uint8_t(u(40, 255)));
    }
    std::vector<Map> batch{big, Map(7, 9, 200), big};
    std::vector<mebin::MapView> views;
    for (const Map& m : batch) views.push_back(m.view());
    bad += compareBatch(batch, mebin::searchRange(views), mebin::Options{}, 4242u + k,
                        "large-map batch " + std::to_string(k), k ? 1 : 0);
    maps += 3;
    ++batches;
  }
  std::printf("random emulated vs cpu: %d maps in %d batches, %d mismatches (%d non-fallback)\n",
              maps, batches, bad, nonFallback);
  check(nonFallback > maps / 10, "random maps exercise the selection", std::to_string(nonFallback));
}

// ---- 1b. maps derived from every MTD test mask ------------------------------------
// The ground-truth mask blurred (box filter, radius 6 at full size) and scaled to
// 0..200, over a textured background (0..60): graded values around the defects
// cross many thresholds, like a detector's map.
Map derivedMap(const cv::Mat& mask, int step, uint32_t seed) {
  const int H = (mask.rows + step - 1) / step, W = (mask.cols + step - 1) / step;
  Map m(H, W, 0);
  const int r = std::max(1, 6 / step);
  std::vector<int> small(size_t(H) * W);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) small[size_t(y) * W + x] = mask.at<uint8_t>(y * step, x * step) ? 1 : 0;
  Rng u(seed);
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) {
      int on = 0, all = 0;
      for (int yy = std::max(0, y - r); yy <= std::min(H - 1, y + r); ++yy)
        for (int xx = std::max(0, x - r); xx <= std::min(W - 1, x + r); ++xx)
          on += small[size_t(yy) * W + xx], ++all;
      const double bg = 30 + 20 * std::sin(x * 0.07 + seed % 7) * std::cos(y * 0.05) + u(-10, 10);
      m.data[size_t(y) * W + x] = uint8_t(std::clamp(bg + 200.0 * on / all, 0.0, 255.0));
    }
  return m;
}

void testMtd(const std::string& root) {
  namespace fs = std::filesystem;
  std::set<std::string> train;
  {
    std::ifstream f(root + "/train_filenames.txt");
    for (std::string s; f >> s;) train.insert(s);
  }
  const char* classes[] = {"MT_Blowhole", "MT_Break", "MT_Crack", "MT_Fray", "MT_Free", "MT_Uneven"};
  int total = 0, bad = 0, full = 0;
  for (const char* cls : classes) {
    const fs::path dir = fs::path(root) / cls / "Imgs";
    if (!check(fs::is_directory(dir), "MTD folder", dir.string())) continue;
    std::vector<std::string> stems;
    for (const auto& e : fs::directory_iterator(dir)) {
      const std::string name = e.path().filename().string();
      if (name.size() > 4 && name.compare(name.size() - 4, 4, ".jpg") == 0 && !train.count(name))
        stems.push_back(name.substr(0, name.size() - 4));
    }
    std::sort(stems.begin(), stems.end());
    std::vector<Map> maps;
    for (size_t k = 0; k < stems.size(); ++k) {
      std::ifstream f((dir / (stems[k] + ".png")).string(), std::ios::binary);
      const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), {});
      cv::Mat mask;
      if (!check(io::decodeGrayPng(bytes, mask), "MTD mask decodes", stems[k])) continue;
      const int step = k == 0 ? 1 : std::max(1, std::max(mask.rows, mask.cols) / 128);
      full += step == 1;
      maps.push_back(derivedMap(mask, step, uint32_t(k * 7919 + total)));
    }
    std::vector<mebin::MapView> views;
    for (const Map& m : maps) views.push_back(m.view());
    if (maps.empty()) continue;
    const mebin::Range range = mebin::searchRange(views);
    mebin::Options options;
    bad += compareBatch(maps, range, options, 0, std::string("MTD ") + cls);
    options.erode = false;
    options.minIntervalLen = 2;
    bad += compareBatch(maps, range, options, 77, std::string("MTD ") + cls + " (no erosion)");
    total += static_cast<int>(maps.size());
  }
  std::printf("MTD-derived emulated vs cpu: %d maps (%d full size), %d mismatches\n", total, full, bad);
  check(total >= 500, "every MTD test mask was used", std::to_string(total));
}

// ---- 3. CPU build: no device --------------------------------------------------------
void testDeviceQueries() {
  if (gpu::cudaBuilt()) {
    std::printf("device queries: CUDA build, %d device(s)\n", gpu::deviceCount());
    check(gpu::deviceCount() >= 0, "deviceCount never fails");
  } else {
    check(gpu::deviceCount() == 0, "CPU build: no device");
  }
  if (gpu::deviceCount() == 0) {
    std::string code;
    try {
      const uint8_t px = 1;
      gpu::binarizeBatch({{&px, 1, 1}}, {0, 255}, {}, 0);
    } catch (const Error& e) {
      code = e.code();
    }
    check(code == "ERR_DEVICE", "binarizeBatch without a device throws ERR_DEVICE", code);
  }
}

#if defined(ANOMALYNCD_SELFTEST_ATTENTION)
// ---- 2. fused [CLS]-row attention -----------------------------------------------
template <class T>
at::Tensor emulatedClsRow(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                          double scale, const at::Tensor& blocked) {
  const int B = int(q.size(0)), H = int(q.size(1)), N = int(q.size(2)), hd = int(q.size(3));
  at::Tensor out = at::empty({B, H, hd}, q.options());
  std::vector<float> logits(size_t(B) * H * N);
  at::Tensor blockedC = blocked.defined() ? blocked.contiguous() : blocked;
  gpu::attention::ClsRowArgs<T> a{};
  a.q = q.data_ptr<T>(), a.k = k.data_ptr<T>(), a.v = v.data_ptr<T>();
  for (int d = 0; d < 4; ++d) a.qs[d] = q.stride(d), a.ks[d] = k.stride(d), a.vs[d] = v.stride(d);
  a.blocked = blocked.defined() ? blockedC.data_ptr<bool>() : nullptr;
  a.logits = logits.data();
  a.out = out.data_ptr<T>();
  a.B = B, a.H = H, a.N = N, a.hd = hd;
  a.scale = float(scale);
  a.fill = -1e9f;
  gpu::attention::emulateClsRow(a);
  return out;
}

void testAttention() {
  at::manual_seed(7);
  struct Shape { int B, H, N, hd; };
  const Shape shapes[] = {{1, 1, 1, 1}, {2, 3, 5, 4}, {3, 6, 50, 64}, {2, 12, 197, 64}, {1, 4, 785, 32}};
  double worst = 0, worstBf16 = 0;
  int cases = 0;
  for (const Shape& s : shapes)
    for (int maskKind = 0; maskKind < 4; ++maskKind) {
      // q, k, v as DINO makes them: one qkv projection permuted (non-contiguous)
      at::Tensor qkv = at::randn({s.B, s.N, 3, s.H, s.hd}).mul(2).permute({2, 0, 3, 1, 4});
      const at::Tensor q = qkv[0], k = qkv[1], v = qkv[2];
      at::Tensor blocked;
      if (maskKind == 1) blocked = at::rand({s.B, s.N}).lt(0.5);
      if (maskKind == 2) blocked = at::ones({s.B, s.N}, at::kBool);  // everything blocked
      if (maskKind == 3) {  // all but one key blocked
        blocked = at::ones({s.B, s.N}, at::kBool);
        blocked.select(1, s.N - 1).fill_(false);
      }
      const double scale = std::pow(double(s.hd), -0.5);
      for (auto impl : {model::AttentionImpl::Plain, model::AttentionImpl::Fused}) {
        const at::Tensor ref = model::maskedAttention(q, k, v, scale, blocked, impl)
                                   .select(1, 0).view({s.B, s.H, s.hd});
        const at::Tensor got = emulatedClsRow<float>(q, k, v, scale, blocked);
        const double err = (got - ref).abs().max().item<double>();
        worst = std::max(worst, err);
        check(err <= 2e-5, "attention fp32 B" + std::to_string(s.B) + " H" + std::to_string(s.H) +
                               " N" + std::to_string(s.N) + " mask " + std::to_string(maskKind),
              "max abs " + std::to_string(err));
        ++cases;
      }
      // bfloat16 inputs, float accumulation, against the fp32 path
      const at::Tensor qb = q.to(at::kBFloat16), kb = k.to(at::kBFloat16), vb = v.to(at::kBFloat16);
      const at::Tensor ref = model::maskedAttention(qb.to(at::kFloat), kb.to(at::kFloat), vb.to(at::kFloat),
                                                    scale, blocked, model::AttentionImpl::Plain)
                                 .select(1, 0).view({s.B, s.H, s.hd});
      const at::Tensor got = emulatedClsRow<c10::BFloat16>(qb, kb, vb, scale, blocked).to(at::kFloat);
      const double err = (got - ref).abs().max().item<double>();
      worstBf16 = std::max(worstBf16, err);
      // the output is rounded to bfloat16 (8 significant bits): half an ulp relative, plus slack
      const double excess = ((got - ref).abs() - ref.abs() * (1.0 / 256)).max().item<double>();
      check(err <= 2e-2 || excess <= 1e-4, "attention bf16 N" + std::to_string(s.N),
            "max abs " + std::to_string(err) + ", beyond bf16 rounding " + std::to_string(excess));
    }
  std::printf("attention emulated vs cpu: %d fp32 cases, max abs %.3g; bf16 max abs %.3g\n", cases,
              worst, worstBf16);
}
#endif

}  // namespace

// `gpu_emulation_selftest --write-npy MTD_DIR OUT_DIR`: the MTD-derived maps (every test
// mask, longest side <= 256) as uint8 .npy files <class>_<stem>.npy for the standalone GPU
// check (scripts/gpu-data.sh, tools/gpu-check).
int writeNpy(const std::string& root, const std::string& outDir) {
  namespace fs = std::filesystem;
  fs::create_directories(outDir);
  std::set<std::string> train;
  {
    std::ifstream f(root + "/train_filenames.txt");
    for (std::string s; f >> s;) train.insert(s);
  }
  int written = 0;
  for (const char* cls : {"MT_Blowhole", "MT_Break", "MT_Crack", "MT_Fray", "MT_Free", "MT_Uneven"}) {
    const fs::path dir = fs::path(root) / cls / "Imgs";
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    int k = 0;
    for (const std::string& name : names) {
      if (name.size() < 5 || name.compare(name.size() - 4, 4, ".jpg") != 0 || train.count(name)) continue;
      const std::string stem = name.substr(0, name.size() - 4);
      std::ifstream f((dir / (stem + ".png")).string(), std::ios::binary);
      const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), {});
      cv::Mat mask;
      if (!io::decodeGrayPng(bytes, mask)) continue;
      const Map m = derivedMap(mask, (std::max(mask.rows, mask.cols) + 255) / 256, uint32_t(k++ * 7919));
      const std::string header0 = "{'descr': '|u1', 'fortran_order': False, 'shape': (" +
                                  std::to_string(m.h) + ", " + std::to_string(m.w) + "), }";
      std::string header = header0;
      while ((10 + header.size() + 1) % 64) header += ' ';
      header += '\n';
      std::ofstream o((fs::path(outDir) / (std::string(cls) + "_" + stem + ".npy")).string(), std::ios::binary);
      o.write("\x93NUMPY\x01\x00", 8);
      const uint16_t len = uint16_t(header.size());
      o.put(char(len & 255)), o.put(char(len >> 8));
      o.write(header.data(), std::streamsize(header.size()));
      o.write(reinterpret_cast<const char*>(m.data.data()), std::streamsize(m.data.size()));
      ++written;
    }
  }
  std::printf("wrote %d maps to %s\n", written, outDir.c_str());
  return written > 0 ? 0 : 1;
}

int main(int argc, char** argv) {
  if (argc == 4 && std::string(argv[1]) == "--write-npy") return writeNpy(argv[2], argv[3]);
  const int maps = argc > 1 ? std::atoi(argv[1]) : 3000;
  const std::string mtd = argc > 2 ? argv[2] : "../shared/data/mtd";
  try {
    testDeviceQueries();
    testRandom(maps);
    testMtd(mtd);
#if defined(ANOMALYNCD_SELFTEST_ATTENTION)
    testAttention();
#endif
  } catch (const std::exception& e) {
    selftest::fail("exception", e.what());
  }
  return selftest::summary();
}
