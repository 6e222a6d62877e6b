// Self-test of cpp/crop + cpp/imgproc/pillow_resample against the golden
// vectors of test/fixtures/make_crop_goldens.py (built by CMake as
// build/crop_selftest; run by test/00-native-selftests.test.ts):
//   crop_selftest [test/fixtures/crop_goldens.txt] [--bench]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "common/error.h"
#include "crop/crop.h"
#include "harness.h"
#include "imgproc/pillow_resample.h"
#include "io/png_codec.h"

using anomalyncd::crop::Box;
namespace crop = anomalyncd::crop;
namespace imgproc = anomalyncd::imgproc;

namespace {

using selftest::checks;
using selftest::fail;
using selftest::failures;
using selftest::fromBase64;

cv::Mat decodePng(const std::string& b64) {
  const std::vector<uint8_t> bytes = fromBase64(b64);
  cv::Mat m = cv::imdecode(bytes, cv::IMREAD_UNCHANGED);
  if (m.empty()) throw std::runtime_error("bad PNG in goldens");
  return m;
}

std::vector<uint8_t> fromHex(const std::string& s) {
  std::vector<uint8_t> out(s.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<uint8_t>(std::stoul(s.substr(2 * i, 2), nullptr, 16));
  }
  return out;
}

std::vector<uint32_t> fromHexWords(const std::string& s) {
  std::vector<uint32_t> out(s.size() / 8);
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<uint32_t>(std::stoul(s.substr(8 * i, 8), nullptr, 16));
  }
  return out;
}

uint32_t bitsOf(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float floatOf(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint64_t fnv1a64(const cv::Mat& m) {
  uint64_t h = 0xCBF29CE484222325ULL;
  const cv::Mat c = m.isContinuous() ? m : m.clone();
  const size_t n = c.total() * c.elemSize();
  for (size_t i = 0; i < n; ++i) {
    h ^= c.data[i];
    h *= 0x100000001B3ULL;
  }
  return h;
}

int64_t byteSum(const cv::Mat& m) {
  const cv::Mat c = m.isContinuous() ? m : m.clone();
  int64_t s = 0;
  const size_t n = c.total() * c.elemSize();
  for (size_t i = 0; i < n; ++i) s += c.data[i];
  return s;
}

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string boxStr(const Box& b) {
  std::ostringstream o;
  o.precision(17);
  o << "(" << b.left << "," << b.top << "," << b.right << "," << b.bottom << ")";
  return o.str();
}

std::vector<Box> readBoxes(std::istream& in) {
  size_t n = 0;
  in >> n;
  std::vector<Box> boxes(n);
  for (auto& b : boxes) {
    std::string t[4];
    in >> t[0] >> t[1] >> t[2] >> t[3];
    b = {std::strtod(t[0].c_str(), nullptr), std::strtod(t[1].c_str(), nullptr),
         std::strtod(t[2].c_str(), nullptr), std::strtod(t[3].c_str(), nullptr)};
  }
  return boxes;
}

void compareBoxes(const std::string& where, const std::vector<Box>& got,
                  const std::vector<Box>& want) {
  ++checks;
  bool same = got.size() == want.size();
  for (size_t i = 0; same && i < got.size(); ++i) same = got[i] == want[i];
  if (!same) {
    std::string g, w;
    for (const auto& b : got) g += boxStr(b);
    for (const auto& b : want) w += boxStr(b);
    fail(where, "boxes " + g + " != " + w);
  }
}

bool sameDouble(double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; }
bool sameFloat(float a, float b) {
  return (std::isnan(a) && std::isnan(b)) || bitsOf(a) == bitsOf(b);
}

void checkBicubic(std::istringstream& in, int index) {
  int ih, iw, oh, ow;
  std::string src, dst;
  in >> ih >> iw >> oh >> ow >> src >> dst;
  const std::string where = "bicubic#" + std::to_string(index) + " " + std::to_string(ih) + "x" +
                            std::to_string(iw) + "->" + std::to_string(oh) + "x" +
                            std::to_string(ow);
  const std::vector<uint32_t> srcBits = fromHexWords(src), dstBits = fromHexWords(dst);
  std::vector<float> input(srcBits.size());
  for (size_t i = 0; i < input.size(); ++i) input[i] = floatOf(srcBits[i]);
  const std::vector<float> out = imgproc::resizeBicubicF32(input.data(), ih, iw, oh, ow);
  ++checks;
  if (out.size() != dstBits.size()) return fail(where, "size");
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (bitsOf(out[i]) != dstBits[i] && bad++ == 0) first = i;
  }
  if (bad) {
    fail(where, std::to_string(bad) + " values differ; first at " + std::to_string(first) +
                    ": " + std::to_string(out[first]) + " vs " +
                    std::to_string(floatOf(dstBits[first])));
  }
}

void checkBilinear(std::istringstream& in, int index) {
  int ih, iw, ch, oh, ow;
  std::string src, kind;
  in >> ih >> iw >> ch >> oh >> ow >> src >> kind;
  const std::string where = "bilinear#" + std::to_string(index) + " c" + std::to_string(ch) + " " +
                            std::to_string(ih) + "x" + std::to_string(iw) + "->" +
                            std::to_string(oh) + "x" + std::to_string(ow);
  const cv::Mat img = decodePng(src);
  if (img.rows != ih || img.cols != iw || img.channels() != ch || !img.isContinuous()) {
    return fail(where, "decoded input shape");
  }
  const std::vector<uint8_t> out = imgproc::resizeBilinearU8(img.data, ih, iw, ch, oh, ow);
  ++checks;
  if (kind == "full") {
    std::string dst;
    in >> dst;
    const std::vector<uint8_t> want = fromHex(dst);
    if (out != want) {
      size_t i = 0;
      while (i < out.size() && i < want.size() && out[i] == want[i]) ++i;
      fail(where, "differs at byte " + std::to_string(i));
    }
  } else {
    std::string fnv;
    int64_t sum = 0;
    in >> fnv >> sum;
    const cv::Mat m(oh, ow, CV_8UC(ch), const_cast<uint8_t*>(out.data()));
    if (hex64(fnv1a64(m)) != fnv || byteSum(m) != sum) {
      fail(where, "digest " + hex64(fnv1a64(m)) + "/" + std::to_string(byteSum(m)) + " vs " + fnv +
                      "/" + std::to_string(sum));
    }
  }
}

void checkMerge(std::istringstream& in) {
  std::string name, bar;
  int S;
  in >> name >> S;
  const std::vector<Box> boxes = readBoxes(in);
  in >> bar;
  const std::vector<Box> want = readBoxes(in);
  compareBoxes("merge " + name, crop::mergeBoxes(boxes, S), want);
}

void checkExtract(std::istringstream& head, std::istream& file) {
  std::string name, imgB64, binB64, rawB64;
  int minTh, maxTh, est;
  head >> name >> minTh >> maxTh >> est >> imgB64 >> binB64 >> rawB64;
  const std::string where = "extract " + name;
  const cv::Mat image = decodePng(imgB64), binary = decodePng(binB64), raw = decodePng(rawB64);

  std::vector<Box> regions, merged, kept;
  struct WantCrop {
    int h, w;
    int64_t area;
    std::string maxF32, score, imgFnv, maskFnv;
    int64_t imgSum, maskSum;
  };
  std::vector<WantCrop> crops;
  std::string line;
  while (std::getline(file, line) && line != "end") {
    std::istringstream in(line);
    std::string tag;
    in >> tag;
    if (tag == "regions") regions = readBoxes(in);
    else if (tag == "merged") merged = readBoxes(in);
    else if (tag == "kept") kept = readBoxes(in);
    else if (tag == "crop") {
      WantCrop c;
      in >> c.h >> c.w >> c.area >> c.maxF32 >> c.score >> c.imgFnv >> c.imgSum >> c.maskFnv >>
          c.maskSum;
      crops.push_back(c);
    }
  }

  // Stage by stage first, so a failure points at the step.
  const cv::Mat full = crop::storageRoundTrip(crop::resizeNearest(binary, image.rows, image.cols));
  const std::vector<Box> gotRegions = crop::regionBoxes(full);
  compareBoxes(where + " regions", gotRegions, regions);
  const int S = std::max({image.rows, image.cols, 3});
  const std::vector<Box> gotMerged = crop::mergeBoxes(gotRegions, S);
  compareBoxes(where + " merged", gotMerged, merged);
  compareBoxes(where + " kept", crop::keepMain(gotMerged, est), kept);

  const crop::Regions r = crop::cropRegions(image, binary, raw, minTh, maxTh, est);
  compareBoxes(where + " boxes", r.boxes, kept);
  ++checks;
  if (r.crops.size() != crops.size()) return fail(where, "crop count");
  for (size_t i = 0; i < crops.size(); ++i) {
    const crop::Crop& g = r.crops[i];
    const WantCrop& w = crops[i];
    const std::string at = where + " crop" + std::to_string(i);
    ++checks;
    if (g.image.rows != w.h || g.image.cols != w.w || g.mask.rows != w.h || g.mask.cols != w.w) {
      fail(at, "size " + std::to_string(g.image.rows) + "x" + std::to_string(g.image.cols));
      continue;
    }
    if (!g.image.isContinuous() || !g.mask.isContinuous() || g.image.type() != image.type() ||
        g.mask.type() != CV_8UC1 || g.image.data == image.data) {
      fail(at, "crop storage");
    }
    if (g.maskArea != w.area) fail(at, "maskArea " + std::to_string(g.maskArea));
    if (hex64(fnv1a64(g.image)) != w.imgFnv || byteSum(g.image) != w.imgSum) fail(at, "image");
    if (hex64(fnv1a64(g.mask)) != w.maskFnv || byteSum(g.mask) != w.maskSum) fail(at, "mask");
    const float wantMax = floatOf(static_cast<uint32_t>(std::stoul(w.maxF32, nullptr, 16)));
    const double wantScore = std::strtod(w.score.c_str(), nullptr);
    if (!sameFloat(g.score, wantMax / 255.0f)) fail(at, "score " + std::to_string(g.score));
    if (!sameDouble(g.scoreF64, wantScore)) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.17g vs %.17g", g.scoreF64, wantScore);
      fail(at, std::string("scoreF64 ") + buf);
    }
  }
}

// cpp/io/png_codec against OpenCV's own PNG codec: the same bytes written, the
// same pixels read (gray at every bit depth), and every other PNG left to OpenCV.
void checkPngCodec() {
  std::mt19937 rng(7);
  std::vector<uint8_t> ours;
  int n = 0;
  for (int k = 0; k < 24; ++k) {
    const int h = 1 + static_cast<int>(rng() % 300), w = 1 + static_cast<int>(rng() % 300);
    const int channels = k % 3 == 2 ? 3 : 1;
    cv::Mat m(h, w, CV_8UC(channels));
    // Binary maps (what --binary-out writes), smooth gradients and noise.
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w * channels; ++x)
        m.ptr<uint8_t>(y)[x] = k % 4 == 0 ? ((x / 7 + y / 5) % 3 ? 0 : 255)
                                          : k % 4 == 1 ? static_cast<uint8_t>((x + 2 * y) & 255) : static_cast<uint8_t>(rng());
    std::vector<uint8_t> theirs;
    cv::imencode(".png", m, theirs);
    anomalyncd::io::encodePng(m, ours);
    ++checks;
    if (ours != theirs) fail("png encode " + std::to_string(k), "bytes differ from cv::imencode");
    cv::Mat decoded;
    const bool handled = anomalyncd::io::decodeGrayPng(theirs, decoded);
    ++checks;
    if (handled != (channels == 1)) fail("png decode " + std::to_string(k), "gray handled / colour left to OpenCV");
    if (handled) {
      ++checks;
      if (cv::norm(decoded, cv::imdecode(theirs, cv::IMREAD_UNCHANGED), cv::NORM_INF) != 0)
        fail("png decode " + std::to_string(k), "pixels differ from cv::imdecode");
    }
    ++n;
  }
  // 1-bit gray (OpenCV's bilevel writer): expanded to 0/255 as OpenCV does.
  cv::Mat bits(37, 53, CV_8UC1);
  for (int y = 0; y < bits.rows; ++y)
    for (int x = 0; x < bits.cols; ++x) bits.at<uint8_t>(y, x) = (x * y) % 3 ? 255 : 0;
  std::vector<uint8_t> bilevel;
  cv::imencode(".png", bits, bilevel, {cv::IMWRITE_PNG_BILEVEL, 1});
  cv::Mat decoded;
  ++checks;
  if (!anomalyncd::io::decodeGrayPng(bilevel, decoded) ||
      cv::norm(decoded, cv::imdecode(bilevel, cv::IMREAD_UNCHANGED), cv::NORM_INF) != 0)
    fail("png decode 1-bit", "differs from cv::imdecode");
  // 16-bit gray and damaged data are left to OpenCV.
  std::vector<uint8_t> deep;
  cv::imencode(".png", cv::Mat(9, 9, CV_16UC1, cv::Scalar(1000)), deep);
  ++checks;
  if (anomalyncd::io::decodeGrayPng(deep, decoded)) fail("png decode 16-bit", "should be left to OpenCV");
  std::vector<uint8_t> broken = bilevel;
  broken[broken.size() / 2] ^= 0x5a;
  ++checks;
  if (anomalyncd::io::decodeGrayPng(broken, decoded)) fail("png decode damaged", "should be left to OpenCV");
  std::printf("png codec: %d images, same bytes and pixels as OpenCV\n", n);
}

void checkErrors() {
  auto expectThrow = [](const char* what, auto fn) {
    ++checks;
    try {
      fn();
      fail(what, "no exception");
    } catch (const anomalyncd::Error& e) {
      if (e.code() != anomalyncd::code::kInvalidArgument) fail(what, "code " + e.code());
    }
  };
  const float f = 0;
  const uint8_t u = 0;
  expectThrow("bicubic 0 size", [&] { imgproc::resizeBicubicF32(&f, 1, 1, 0, 1); });
  expectThrow("bilinear 0 size", [&] { imgproc::resizeBilinearU8(&u, 0, 1, 1, 1, 1); });
  expectThrow("bilinear channels 4", [&] { imgproc::resizeBilinearU8(&u, 1, 1, 4, 1, 1); });
  expectThrow("bilinear channels 2", [&] { imgproc::resizeBilinearU8(&u, 1, 1, 2, 1, 1); });
  const cv::Mat img(10, 10, CV_8UC3, cv::Scalar::all(0)), map(5, 5, CV_8UC1, cv::Scalar(0));
  expectThrow("range", [&] { crop::cropRegions(img, map, map, 10, 5, 0); });
  expectThrow("est", [&] { crop::cropRegions(img, map, map, 0, 5, -1); });
  const cv::Mat three = (cv::Mat_<uint8_t>(1, 3) << 0, 1, 2);
  expectThrow("3-valued", [&] { crop::storageRoundTrip(three); });
}

void bench() {
  const int H = 1024, W = 1024, M = 256;
  cv::Mat image(H, W, CV_8UC3);
  cv::randu(image, 0, 256);
  cv::Mat raw(M, M, CV_8UC1);
  cv::GaussianBlur([&] {
    cv::Mat n(M, M, CV_8UC1);
    cv::randu(n, 0, 60);
    return n;
  }(), raw, cv::Size(9, 9), 3);
  cv::Mat binary = cv::Mat::zeros(M, M, CV_8UC1);
  const int blobs[][3] = {{40, 50, 12}, {180, 60, 20}, {120, 200, 8}, {200, 210, 15}, {60, 140, 5}};
  for (const auto& b : blobs) {
    cv::circle(binary, cv::Point(b[1], b[0]), b[2], cv::Scalar(255), cv::FILLED);
    cv::circle(raw, cv::Point(b[1], b[0]), b[2] + 3, cv::Scalar(230), cv::FILLED);
  }
  std::vector<double> ms;
  size_t crops = 0;
  for (int i = 0; i < 15; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    const crop::Regions r = crop::cropRegions(image, binary, raw, 40, 255, 5);
    const auto t1 = std::chrono::steady_clock::now();
    crops = r.crops.size();
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  std::vector<float> f(static_cast<size_t>(M) * M, 1.0f);
  std::vector<double> rs;
  for (int i = 0; i < 15; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    volatile float sink = imgproc::resizeBicubicF32(f.data(), M, M, H, W)[0];
    (void)sink;
    rs.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                     .count());
  }
  std::sort(rs.begin(), rs.end());
  std::printf("bench cropRegions 1024x1024 RGB, 256x256 map, %zu crops: median %.2f ms "
              "(min %.2f, max %.2f); bicubic 256->1024 alone: median %.2f ms\n",
              crops, ms[ms.size() / 2], ms.front(), ms.back(), rs[rs.size() / 2]);
}

}  // namespace

int main(int argc, char** argv) {
  std::string path = "test/fixtures/crop_goldens.txt";
  bool doBench = false;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--bench") doBench = true;
    else path = argv[i];
  }
  std::ifstream file(path);
  if (!file) {
    std::cerr << "cannot open " << path << "\n";
    return 2;
  }
  int nBicubic = 0, nBilinear = 0, nMerge = 0, nExtract = 0;
  std::string line;
  try {
    while (std::getline(file, line)) {
      if (line.empty() || line[0] == '#') continue;
      std::istringstream in(line);
      std::string tag;
      in >> tag;
      if (tag == "bicubic") checkBicubic(in, nBicubic++);
      else if (tag == "bilinear") checkBilinear(in, nBilinear++);
      else if (tag == "merge") ++nMerge, checkMerge(in);
      else if (tag == "extract") ++nExtract, checkExtract(in, file);
      else throw std::runtime_error("unknown record " + tag);
    }
    checkErrors();
    checkPngCodec();
  } catch (const std::exception& e) {
    fail("exception", e.what());
    return selftest::summary();
  }
  std::printf("cases: %d bicubic, %d bilinear, %d merge, %d extract; %d checks, %d failures\n",
              nBicubic, nBilinear, nMerge, nExtract, checks, failures);
  if (doBench) bench();
  return selftest::summary();
}
