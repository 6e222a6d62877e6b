// Standalone check of cpp/train/augment + cpp/train/sampler (METHOD.md §5.1, 5.2, T19, T24)
// against the golden vectors of test/fixtures/make_augment_goldens.py (Pillow 9.4 and a
// NumPy transcription of torchvision's gaussian_blur); not part of the library.
//
//   g++ -O2 -std=c++17 -I cpp cpp/imgproc/pillow_resample.cc cpp/model/preprocess.cc
//       cpp/train/augment.cc cpp/train/sampler.cc cpp/train/augment_selftest.cc
//       -o /tmp/augment_selftest
//   /tmp/augment_selftest [test/fixtures/augment_goldens.txt]     (run from the repo root)
#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "common/error.h"
#include "harness.h"
#include "imgproc/pillow_resample.h"
#include "model/preprocess.h"
#include "train/augment.h"
#include "train/sampler.h"

namespace train = anomalyncd::train;
namespace imgproc = anomalyncd::imgproc;
namespace model = anomalyncd::model;

namespace {

using selftest::checks;
using selftest::fail;
using selftest::failures;
using selftest::fromBase64;
void expect(bool ok, const std::string& where, const std::string& what = "") { selftest::check(ok, where, what); }

struct Img {
  int h = 0, w = 0, c = 0;
  std::vector<uint8_t> data, mask;  // mask only for procedural inputs
};

// Same integer formula as gen_image() in make_augment_goldens.py.
Img genImage(int h, int w) {
  Img im;
  im.h = h;
  im.w = w;
  im.c = 3;
  im.data.resize(static_cast<size_t>(h) * w * 3);
  im.mask.resize(static_cast<size_t>(h) * w);
  const double cy = h * 0.45, cx = w * 0.55, r = std::min(h, w) * 0.3;
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      for (int64_t c = 0; c < 3; ++c)
        im.data[(y * w + x) * 3 + c] = static_cast<uint8_t>(
            (x * (3 + 2 * c) + y * (5 + c) + ((x * y + 7 * c) % 23) * 11 + ((x / 9 + y / 7) % 2) * 60) % 256);
      const double dy = static_cast<double>(y) - cy, dx = static_cast<double>(x) - cx;
      const double dy2 = dy * dy, dx2 = dx * dx;
      im.mask[y * w + x] = (dy2 + dx2 <= r * r) ? 255 : 0;
    }
  return im;
}

// Compare with an allowed per-value tolerance and an allowed fraction of mismatches.
void compareU8(const std::string& where, const std::vector<uint8_t>& got, const std::vector<uint8_t>& want,
               int tol = 0, double maxMismatchFrac = 0.0) {
  ++checks;
  if (got.size() != want.size()) {
    fail(where, "size " + std::to_string(got.size()) + " != " + std::to_string(want.size()));
    return;
  }
  size_t mism = 0, over = 0;
  int maxd = 0;
  size_t firstBad = SIZE_MAX;
  for (size_t i = 0; i < got.size(); ++i) {
    const int d = std::abs(int(got[i]) - int(want[i]));
    if (d) {
      ++mism;
      if (firstBad == SIZE_MAX) firstBad = i;
    }
    if (d > tol) ++over;
    maxd = std::max(maxd, d);
  }
  if (over || static_cast<double>(mism) > maxMismatchFrac * static_cast<double>(got.size())) {
    std::ostringstream os;
    os << mism << "/" << got.size() << " differ (max |d| " << maxd << ", " << over << " over tol " << tol
       << "), first at " << firstBad << ": got " << int(got[firstBad]) << " want " << int(want[firstBad]);
    fail(where, os.str());
  }
}

struct Stats {
  size_t blurMismatch = 0, blurValues = 0;
  size_t pipeMismatch = 0, pipeValues = 0;
};
Stats stats;

// Step-by-step METHOD.md §5.1 steps 1-8 from the free functions (the unfused reference).
void composedView(const Img& in, const train::ViewParams& p, std::vector<uint8_t>& rgb, std::vector<uint8_t>& mask) {
  const auto [rh, rw] = model::shortSideResizeSize(in.h, in.w);
  std::vector<uint8_t> ri = in.data, rm = in.mask;
  if (rh != in.h || rw != in.w) {
    ri = imgproc::resizeBilinearU8(in.data.data(), in.h, in.w, 3, rh, rw);
    rm = imgproc::resizeBilinearU8(in.mask.data(), in.h, in.w, 1, rh, rw);
  }
  const int n = 224;
  std::vector<uint8_t> ci(n * n * 3), cm(n * n);
  for (int y = 0; y < n; ++y) {
    std::memcpy(&ci[y * n * 3], &ri[((p.top + y) * size_t(rw) + p.left) * 3], n * 3);
    std::memcpy(&cm[y * n], &rm[(p.top + y) * size_t(rw) + p.left], n);
  }
  if (p.hflip) train::hflip(ci.data(), n, n, 3), train::hflip(cm.data(), n, n, 1);
  if (p.vflip) train::vflip(ci.data(), n, n, 3), train::vflip(cm.data(), n, n, 1);
  for (auto op : p.jitterOrder) {
    if (op == train::kBrightness) train::adjustBrightness(ci.data(), n, n, p.brightness);
    if (op == train::kContrast) train::adjustContrast(ci.data(), n, n, p.contrast);
    if (op == train::kSaturation) train::adjustSaturation(ci.data(), n, n, p.saturation);
  }
  rgb.resize(n * n * 3);
  mask.resize(n * n);
  train::rotateCCW(ci.data(), n, n, 3, p.rotation, rgb.data());
  train::rotateCCW(cm.data(), n, n, 1, p.rotation, mask.data());
  train::adjustSharpness(rgb.data(), n, n, 3, p.sharpness);
  train::gaussianBlur(rgb.data(), n, n, 3, p.blurKernel, p.blurSigma);
  train::posterize(rgb.data(), rgb.size(), p.posterizeBits);
}

void runGoldens(const std::string& path) {
  std::ifstream f(path);
  if (!f) {
    fail("goldens", "cannot open " + path);
    return;
  }
  std::map<std::string, Img> imgs;
  std::map<std::string, int> counts;
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream is(line);
    std::string kind;
    is >> kind;
    ++counts[kind];
    if (kind == "img") {
      std::string name, b;
      Img im;
      is >> name >> im.h >> im.w >> im.c >> b;
      im.data = fromBase64(b);
      imgs[name] = im;
    } else if (kind == "gen") {
      std::string name;
      int h, w;
      is >> name >> h >> w;
      imgs[name] = genImage(h, w);
    } else if (kind == "enh") {
      std::string op, name, b;
      double factor;
      is >> op >> name >> factor >> b;
      const Img& in = imgs.at(name);
      std::vector<uint8_t> out = in.data;
      if (op == "brightness") train::adjustBrightness(out.data(), in.h, in.w, factor);
      else if (op == "contrast") train::adjustContrast(out.data(), in.h, in.w, factor);
      else if (op == "saturation") train::adjustSaturation(out.data(), in.h, in.w, factor);
      else if (op == "sharpness") train::adjustSharpness(out.data(), in.h, in.w, 3, factor);
      else fail("enh", "unknown op " + op);
      std::ostringstream w;
      w << "enh " << op << " " << name << " " << factor;
      compareU8(w.str(), out, fromBase64(b));
    } else if (kind == "mean") {
      std::string name;
      int v;
      is >> name >> v;
      const Img& in = imgs.at(name);
      const int got = train::contrastMean(in.data.data(), in.h, in.w);
      expect(got == v, "mean " + name, "got " + std::to_string(got) + " want " + std::to_string(v));
    } else if (kind == "lum") {
      std::string name, b;
      is >> name >> b;
      const Img& in = imgs.at(name);
      std::vector<uint8_t> out(size_t(in.h) * in.w);
      train::rgbToL(in.data.data(), out.size(), out.data());
      compareU8("lum " + name, out, fromBase64(b));
    } else if (kind == "smooth") {
      std::string name, b;
      is >> name >> b;
      const Img& in = imgs.at(name);
      std::vector<uint8_t> out(in.data.size());
      train::smoothFilter(in.data.data(), in.h, in.w, 3, out.data());
      compareU8("smooth " + name, out, fromBase64(b));
    } else if (kind == "kern") {
      int k;
      double sigma;
      is >> k >> sigma;
      std::vector<float> got(k);
      train::gaussianKernel1d(k, sigma, got.data());
      double maxRel = 0;
      for (int i = 0; i < k; ++i) {
        double want;
        is >> want;
        if (want > 1e-30) maxRel = std::max(maxRel, std::abs(got[i] - want) / want);
        else maxRel = std::max(maxRel, double(std::abs(got[i])) > 1e-30 ? 1.0 : 0.0);
      }
      expect(maxRel < 1e-5, "kern " + std::to_string(k) + " " + std::to_string(sigma),
             "max rel err " + std::to_string(maxRel));
    } else if (kind == "blur") {
      std::string name, b;
      int k;
      double sigma;
      is >> name >> k >> sigma >> b;
      const Img& in = imgs.at(name);
      std::vector<uint8_t> out = in.data;
      train::gaussianBlur(out.data(), in.h, in.w, 3, k, sigma);
      const auto want = fromBase64(b);
      for (size_t i = 0; i < out.size() && i < want.size(); ++i) stats.blurMismatch += out[i] != want[i];
      stats.blurValues += out.size();
      compareU8("blur " + name + " k=" + std::to_string(k) + " sigma=" + std::to_string(sigma), out, want, 1, 0.01);
    } else if (kind == "post") {
      std::string name, b;
      int bits;
      is >> name >> bits >> b;
      const Img& in = imgs.at(name);
      std::vector<uint8_t> out = in.data;
      train::posterize(out.data(), out.size(), bits);
      compareU8("post " + std::to_string(bits), out, fromBase64(b));
    } else if (kind == "geo") {
      std::string name, op, b;
      int oh, ow;
      is >> name >> op >> oh >> ow >> b;
      const Img& in = imgs.at(name);
      std::vector<uint8_t> out = in.data;
      if (op == "hflip") train::hflip(out.data(), in.h, in.w, in.c);
      else if (op == "vflip") train::vflip(out.data(), in.h, in.w, in.c);
      else {
        const int q = op == "rot90" ? 1 : op == "rot180" ? 2 : 3;
        train::rotateCCW(in.data.data(), in.h, in.w, in.c, q, out.data());
      }
      compareU8("geo " + name + " " + op, out, fromBase64(b));
    } else if (kind == "pipe") {
      std::string name, order, bi, bm;
      train::ViewParams p;
      int hf, vf, step;
      is >> name >> p.top >> p.left >> hf >> vf >> order >> p.brightness >> p.contrast >> p.saturation >>
          p.rotation >> p.sharpness >> p.blurKernel >> p.blurSigma >> p.posterizeBits >> step >> bi >> bm;
      p.hflip = hf != 0;
      p.vflip = vf != 0;
      for (int i = 0; i < 3; ++i)
        p.jitterOrder[i] = order[i] == 'b' ? train::kBrightness : order[i] == 'c' ? train::kContrast : train::kSaturation;
      const Img& in = imgs.at(name);
      train::Augmenter aug(1);
      std::vector<uint8_t> rgb(224 * 224 * 3), msk(224 * 224);
      train::CropSample s{in.data.data(), in.mask.data(), in.h, in.w};
      aug.applyU8(s, p, rgb.data(), msk.data());
      std::vector<uint8_t> si, sm;
      for (int y = 0; y < 224; y += step)
        for (int x = 0; x < 224; x += step) {
          for (int c = 0; c < 3; ++c) si.push_back(rgb[(y * 224 + x) * 3 + c]);
          sm.push_back(msk[y * 224 + x]);
        }
      const auto want = fromBase64(bi);
      for (size_t i = 0; i < si.size() && i < want.size(); ++i) stats.pipeMismatch += si[i] != want[i];
      stats.pipeValues += si.size();
      // blur ties (+-1) may cross a posterize step: allow one step on <= 2% of the values
      compareU8("pipe " + name + " image", si, want, 1 << (8 - p.posterizeBits), 0.02);
      compareU8("pipe " + name + " mask", sm, fromBase64(bm));
    } else {
      fail("goldens", "unknown line kind " + kind);
    }
  }
  for (const char* k : {"enh", "mean", "lum", "smooth", "kern", "blur", "post", "geo", "pipe"})
    expect(counts[k] > 0, "goldens", std::string("no '") + k + "' lines");
  std::cout << "goldens: " << counts["enh"] << " enhance, " << counts["mean"] << " mean, " << counts["lum"]
            << " lum, " << counts["smooth"] << " smooth, " << counts["kern"] << " kernels, " << counts["blur"]
            << " blur (" << stats.blurMismatch << "/" << stats.blurValues << " values off by 1), " << counts["post"]
            << " posterize, " << counts["geo"] << " geometry, " << counts["pipe"] << " pipeline ("
            << stats.pipeMismatch << "/" << stats.pipeValues << " values differ)\n";
}

void testFusedVsComposed() {
  // The fused gather + in-place ops of Augmenter must equal the step-by-step composition.
  const Img inputs[] = {genImage(300, 260), genImage(256, 256), genImage(256, 300), genImage(180, 200)};
  train::Augmenter aug(7);
  train::Augmenter drawer(99);
  int n = 0;
  for (int rep = 0; rep < 12; ++rep)
    for (const Img& in : inputs) {
      train::ViewParams p = drawer.sampleParams();
      if (rep < 4) p.rotation = rep;  // all rotations on every input
      std::vector<uint8_t> a(224 * 224 * 3), am(224 * 224), b, bm;
      train::CropSample s{in.data.data(), in.mask.data(), in.h, in.w};
      aug.applyU8(s, p, a.data(), am.data());
      composedView(in, p, b, bm);
      compareU8("fused vs composed image #" + std::to_string(n), a, b);
      compareU8("fused vs composed mask #" + std::to_string(n), am, bm);
      // apply() = applyU8 + ToTensor/Normalize
      std::vector<float> fi(3 * 224 * 224), fm(224 * 224);
      aug.apply(s, p, fi.data(), fm.data());
      bool ok = true;
      for (int c = 0; c < 3 && ok; ++c)
        for (int i = 0; i < 224 * 224; ++i) {
          const float want = (static_cast<float>(a[i * 3 + c]) / 255.0f - model::kImageNetMean[c]) / model::kImageNetStd[c];
          if (fi[c * 224 * 224 + i] != want) { ok = false; break; }
        }
      for (int i = 0; i < 224 * 224 && ok; ++i) ok = fm[i] == static_cast<float>(am[i]) / 255.0f;
      expect(ok, "apply normalisation #" + std::to_string(n));
      ++n;
    }
  // identity parameters on a 256 x 256 input at (16, 16) = the test-time transform
  const Img& sq = inputs[1];
  train::ViewParams id;
  id.top = id.left = 16;
  id.sharpness = 1.0;
  id.blurKernel = 9;
  id.blurSigma = 1e-3;  // kernel = delta (exp underflows), blur is then the identity
  id.posterizeBits = 8;
  std::vector<float> a(3 * 224 * 224), am(224 * 224), b(3 * 224 * 224), bm(224 * 224);
  aug.apply({sq.data.data(), sq.mask.data(), sq.h, sq.w}, id, a.data(), am.data());
  model::preprocess(sq.data.data(), sq.mask.data(), sq.h, sq.w, b.data(), bm.data());
  expect(a == b && am == bm, "identity params == model::preprocess");
  std::cout << "fused vs composed: " << n << " random parameter sets\n";
}

void testRandomViews() {
  const Img in = genImage(300, 280);
  train::CropSample s{in.data.data(), in.mask.data(), in.h, in.w};
  std::vector<float> img(3 * 224 * 224), msk(224 * 224), img2(3 * 224 * 224), msk2(224 * 224);
  // views: finite, mask in [0, 1]; determinism for a seed
  train::Augmenter a(123), b(123), c(124);
  bool finite = true, maskRange = true, same = true, softMask = false;
  int differentFromC = 0;
  std::vector<float> imgC(3 * 224 * 224), mskC(224 * 224);
  for (int i = 0; i < 20; ++i) {
    a.view(s, img.data(), msk.data());
    b.view(s, img2.data(), msk2.data());
    c.view(s, imgC.data(), mskC.data());
    for (float v : img) finite = finite && std::isfinite(v) && v > -2.2f && v < 2.7f;
    for (float v : msk) {
      maskRange = maskRange && v >= 0.0f && v <= 1.0f;
      softMask = softMask || (v > 0.0f && v < 1.0f);
    }
    same = same && img == img2 && msk == msk2;
    differentFromC += img != imgC;
  }
  expect(finite, "views finite and within the normalised range");
  expect(maskRange, "view masks in [0, 1]");
  expect(softMask, "view masks keep soft (bilinear) edges");
  expect(same, "same seed -> identical views");
  expect(differentFromC == 20, "different seed -> different views", std::to_string(differentFromC) + "/20");

  // parameter statistics over 20000 draws
  const int N = 20000;
  train::Augmenter g(2024), h(2025);
  int hf = 0, vf = 0, rot[4] = {0, 0, 0, 0}, blurK[7] = {0}, bits[4] = {0}, top[32] = {0}, left[32] = {0};
  std::map<std::string, int> orders;
  double sb = 0, sc = 0, ss = 0, sh = 0, sg = 0;
  double minB = 9, maxB = -9, minC = 9, maxC = -9, minS = 9, maxS = -9, minH = 9, maxH = -9, minG = 9, maxG = -9;
  bool offsetsOk = true;
  int agreeFlip = 0, agreeTop = 0;
  for (int i = 0; i < N; ++i) {
    const train::ViewParams p = g.sampleParams();
    const train::ViewParams q = h.sampleParams();
    agreeFlip += p.hflip == q.hflip;
    agreeTop += p.top == q.top;
    offsetsOk = offsetsOk && p.top >= 0 && p.top < 32 && p.left >= 0 && p.left < 32;
    ++top[p.top & 31];
    ++left[p.left & 31];
    hf += p.hflip;
    vf += p.vflip;
    ++rot[p.rotation];
    ++blurK[(p.blurKernel - 9) / 4];
    ++bits[p.posterizeBits - 5];
    std::string o;
    for (auto op : p.jitterOrder) o += "bcs"[op];
    ++orders[o];
    sb += p.brightness, sc += p.contrast, ss += p.saturation, sh += p.sharpness, sg += p.blurSigma;
    minB = std::min(minB, p.brightness), maxB = std::max(maxB, p.brightness);
    minC = std::min(minC, p.contrast), maxC = std::max(maxC, p.contrast);
    minS = std::min(minS, p.saturation), maxS = std::max(maxS, p.saturation);
    minH = std::min(minH, p.sharpness), maxH = std::max(maxH, p.sharpness);
    minG = std::min(minG, p.blurSigma), maxG = std::max(maxG, p.blurSigma);
  }
  // binomial tolerance: 5 standard deviations
  auto near = [&](const std::string& what, double count, double prob) {
    const double sd = std::sqrt(N * prob * (1 - prob));
    expect(std::abs(count - N * prob) < 5 * sd, what,
           "count " + std::to_string(count) + " expected " + std::to_string(N * prob) + " +- " + std::to_string(5 * sd));
  };
  expect(offsetsOk, "crop offsets in 0..31");
  near("hflip rate", hf, 0.5);
  near("vflip rate", vf, 0.5);
  for (int r = 0; r < 4; ++r) near("rotation class " + std::to_string(r), rot[r], 0.25);
  for (int k = 0; k < 7; ++k) near("blur kernel " + std::to_string(9 + 4 * k), blurK[k], 1.0 / 7);
  for (int b2 = 0; b2 < 4; ++b2) near("posterize bits " + std::to_string(5 + b2), bits[b2], 0.25);
  for (int o = 0; o < 32; ++o) near("top offset " + std::to_string(o), top[o], 1.0 / 32), near("left offset " + std::to_string(o), left[o], 1.0 / 32);
  expect(orders.size() == 6, "6 jitter orders");
  for (auto& [o, cnt] : orders) near("jitter order " + o, cnt, 1.0 / 6);
  auto meanNear = [&](const std::string& what, double sum, double lo, double hi, double mn, double mx) {
    const double mean = sum / N, sd = (hi - lo) / std::sqrt(12.0 * N);
    expect(std::abs(mean - (lo + hi) / 2) < 5 * sd && mn >= lo && mx < hi && mn < lo + 0.01 * (hi - lo) &&
               mx > hi - 0.01 * (hi - lo),
           what, "mean " + std::to_string(mean) + " range [" + std::to_string(mn) + ", " + std::to_string(mx) + "]");
  };
  meanNear("brightness ~ U(0.6, 1.4)", sb, 0.6, 1.4, minB, maxB);
  meanNear("contrast ~ U(0.6, 1.4)", sc, 0.6, 1.4, minC, maxC);
  meanNear("saturation ~ U(0.6, 1.8)", ss, 0.6, 1.8, minS, maxS);
  meanNear("sharpness ~ 0.2 + 1.8 U", sh, 0.2, 2.0, minH, maxH);
  meanNear("blur sigma ~ U(0.1, 2.0)", sg, 0.1, 2.0, minG, maxG);
  near("independent seeds: hflip agreement", agreeFlip, 0.5);
  near("independent seeds: top agreement", agreeTop, 1.0 / 32);
  std::cout << "views: 20000 draws: hflip " << hf / double(N) << ", vflip " << vf / double(N) << ", rotation {none,90,180,270} "
            << rot[0] / double(N) << " " << rot[1] / double(N) << " " << rot[2] / double(N) << " " << rot[3] / double(N)
            << "\n";

  // bad inputs
  bool threw = false;
  try {
    a.view({nullptr, nullptr, 10, 10}, img.data(), msk.data());
  } catch (const anomalyncd::Error& e) {
    threw = e.code() == anomalyncd::code::kInvalidArgument;
  }
  expect(threw, "null image -> ERR_INVALID_ARGUMENT");
  threw = false;
  try {
    std::vector<uint8_t> small(10 * 10 * 3, 0);
    train::gaussianBlur(small.data(), 10, 10, 3, 33, 1.0);
  } catch (const anomalyncd::Error& e) {
    threw = e.code() == anomalyncd::code::kInvalidArgument;
  }
  expect(threw, "blur padding >= size -> ERR_INVALID_ARGUMENT");
}

void testSampler() {
  // labelled fraction, sizes, ranges
  {
    const size_t NL = 37, NU = 1000;
    train::BalancedSampler s(NL, NU, 11);
    size_t lab = 0, total = 0;
    std::vector<size_t> hitsL(NL, 0), hitsU(NU, 0);
    bool inRange = true, sizes = true;
    for (int e = 0; e < 200; ++e) {
      const auto d = s.epoch();
      sizes = sizes && d.size() == NL + NU;
      for (size_t v : d) {
        inRange = inRange && v < NL + NU;
        if (v < NL) ++lab, ++hitsL[v];
        else if (v < NL + NU) ++hitsU[v - NL];
      }
      total += d.size();
    }
    expect(sizes, "sampler: N_l + N_u draws per epoch");
    expect(inRange, "sampler: indices in range");
    const double frac = double(lab) / double(total);
    const double sd = std::sqrt(0.25 / total);
    expect(std::abs(frac - 0.5) < 5 * sd, "sampler: labelled fraction ~ 0.5", std::to_string(frac));
    // uniform within the labelled group: each labelled index ~ lab / NL
    const double expL = double(lab) / NL, sdL = std::sqrt(expL);
    bool uniformL = true;
    for (size_t c : hitsL) uniformL = uniformL && std::abs(double(c) - expL) < 6 * sdL;
    expect(uniformL, "sampler: labelled indices uniform");
    const size_t missingU = std::count(hitsU.begin(), hitsU.end(), size_t(0));
    expect(missingU == 0, "sampler: every unlabelled index drawn over 200 epochs", std::to_string(missingU));
    std::cout << "sampler: labelled fraction " << frac << " over " << total << " draws\n";
    // batches: ceil(N / 32) before skipping
    const auto d = s.epoch();
    const auto all = train::makeBatches(d, 32, NL);
    size_t totalInBatches = 0;
    for (auto& b : all) totalInBatches += b.size();
    expect(all.size() <= (NL + NU + 31) / 32, "makeBatches: at most ceil(N/32) batches");
    const auto noSkip = train::makeBatches(d, 32, 0);  // w/o D^l: nothing is skipped
    expect(noSkip.size() == (NL + NU + 31) / 32, "makeBatches: ceil(N/32) batches incl. the short last one",
           std::to_string(noSkip.size()));
    expect(noSkip.back().size() == (NL + NU) % 32, "makeBatches: short last batch kept");
  }
  // determinism
  {
    train::BalancedSampler a(5, 50, 3), b(5, 50, 3), c(5, 50, 4);
    expect(a.epoch() == b.epoch(), "sampler: same seed -> same epoch");
    expect(a.epoch() != c.epoch(), "sampler: different seed -> different epoch");
  }
  // N_l == 0: uniform unlabelled; N_u == 0: all labelled
  {
    train::BalancedSampler s(0, 10, 5);
    std::vector<int> hits(10, 0);
    bool ok = true;
    for (int e = 0; e < 2000; ++e)
      for (size_t v : s.epoch()) ok = ok && v < 10, ++hits[v % 10];
    expect(ok, "sampler N_l = 0: indices in [0, N_u)");
    for (int i = 0; i < 10; ++i) {
      const double sd = std::sqrt(20000 * 0.1 * 0.9);
      expect(std::abs(hits[i] - 2000) < 5 * sd, "sampler N_l = 0: uniform index " + std::to_string(i));
    }
    train::BalancedSampler t(4, 0, 5);
    const auto d = t.epoch();
    expect(d.size() == 4 && std::all_of(d.begin(), d.end(), [](size_t v) { return v < 4; }),
           "sampler N_u = 0: all labelled");
    expect(train::makeBatches(d, 32, 4).empty(), "sampler N_u = 0: every batch skipped");
    bool threw = false;
    try {
      train::BalancedSampler z(0, 0, 1);
    } catch (const anomalyncd::Error&) {
      threw = true;
    }
    expect(threw, "sampler: empty sets -> error");
  }
  // skip rule on hand-made draws (N_l = 3: indices 0..2 labelled)
  {
    const std::vector<size_t> d = {0, 5, 1, 2, 7, 8, 9, 4, 3};  // batches of 3: {0,5,1} {2,7,8} {9,4,3}
    auto b = train::makeBatches(d, 3, 3);
    expect(b.size() == 2 && b[0] == std::vector<size_t>{0, 5, 1} && b[1] == std::vector<size_t>{2, 7, 8},
           "makeBatches: batch without labelled samples skipped");
    const std::vector<size_t> d2 = {0, 1, 2, 0, 5, 6, 7};  // batches of 3: {0,1,2} {0,5,6} {7}
    b = train::makeBatches(d2, 3, 3);
    expect(b.size() == 1 && b[0] == std::vector<size_t>{0, 5, 6},
           "makeBatches: all-labelled and all-unlabelled (short last) batches skipped");
    b = train::makeBatches(d2, 3, 0);
    expect(b.size() == 3 && b[2] == std::vector<size_t>{7}, "makeBatches: w/o D^l keeps every non-empty batch");
    expect(train::makeBatches({}, 32, 3).empty(), "makeBatches: empty epoch");
    bool threw = false;
    try {
      train::makeBatches(d, 0, 3);
    } catch (const anomalyncd::Error&) {
      threw = true;
    }
    expect(threw, "makeBatches: batch size 0 -> error");
  }
}

void timeView() {
  const Img in = genImage(300, 300);
  train::CropSample s{in.data.data(), in.mask.data(), in.h, in.w};
  std::vector<float> img(3 * 224 * 224), msk(224 * 224);
  train::Augmenter aug(42);
  std::vector<double> ms;
  for (int i = 0; i < 60; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    aug.view(s, img.data(), msk.data());
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  // the worst case: k = 33 blur
  train::ViewParams p = aug.sampleParams();
  p.blurKernel = 33;
  p.sharpness = 1.5;
  std::vector<double> ms33;
  for (int i = 0; i < 30; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    aug.apply(s, p, img.data(), msk.data());
    ms33.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms33.begin(), ms33.end());
  std::printf("timing: view() from a 300x300 crop: median %.2f ms (min %.2f, max %.2f); k=33 blur: median %.2f ms\n",
              ms[ms.size() / 2], ms.front(), ms.back(), ms33[ms33.size() / 2]);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : "test/fixtures/augment_goldens.txt";
  try {
    runGoldens(path);
    testFusedVsComposed();
    testRandomViews();
    testSampler();
    timeView();
  } catch (const std::exception& e) {
    fail("exception", e.what());
  }
  std::cout << std::flush;
  return selftest::summary();
}
