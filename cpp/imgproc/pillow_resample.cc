// Bit-exactness depends on doing every multiply and add separately, exactly as
// Pillow's C code (compiled for baseline x86-64/arm64 without FMA contraction)
// does; a fused multiply-add changes low bits. Forbid contraction here.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "imgproc/pillow_resample.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/error.h"

namespace anomalyncd::imgproc {
namespace {

// Pillow's filters, written in the same (Horner) form so rounding matches.
double bicubicFilter(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

double bilinearFilter(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return 1.0 - x;
  return 0.0;
}

// One axis of precompute_coeffs(): for output index i, taps start at
// first[i], count[i] of them, weights at weights[i * ksize ...].
struct AxisCoeffs {
  int ksize = 0;
  std::vector<int> first;
  std::vector<int> count;
  std::vector<double> weights;
};

AxisCoeffs precomputeCoeffs(int inSize, int outSize, double (*filter)(double),
                            double filterSupport) {
  AxisCoeffs c;
  // Pillow passes the box as floats (0, inSize); in1 - in0 is exact.
  const float in0 = 0.0f;
  const float in1 = static_cast<float>(inSize);
  const double scale = static_cast<double>(in1 - in0) / outSize;
  const double filterScale = scale < 1.0 ? 1.0 : scale;
  const double support = filterSupport * filterScale;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(outSize);
  c.count.resize(outSize);
  c.weights.assign(static_cast<size_t>(outSize) * c.ksize, 0.0);
  for (int xx = 0; xx < outSize; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    double ww = 0.0;
    const double ss = 1.0 / filterScale;  // Pillow multiplies by the reciprocal
    int xmin = static_cast<int>(center - support + 0.5);  // C truncation
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    double* k = &c.weights[static_cast<size_t>(xx) * c.ksize];
    for (int x = 0; x < xmax; ++x) {
      const double w = filter((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; ++x) {
      if (ww != 0.0) k[x] /= ww;
    }
    c.first[xx] = xmin;
    c.count[xx] = xmax;
  }
  return c;
}

constexpr int kPrecisionBits = 32 - 8 - 2;

// normalize_coeffs_8bpc(): round half away from zero into 22-bit fixed point.
std::vector<int32_t> fixedPointWeights(const std::vector<double>& weights) {
  std::vector<int32_t> out(weights.size());
  for (size_t i = 0; i < weights.size(); ++i) {
    const double w = weights[i];
    out[i] = w < 0 ? static_cast<int32_t>(-0.5 + w * (1 << kPrecisionBits))
                   : static_cast<int32_t>(0.5 + w * (1 << kPrecisionBits));
  }
  return out;
}

inline uint8_t clip8(int32_t in) {
  if (in >= (1 << kPrecisionBits << 8)) return 255;
  if (in <= 0) return 0;
  return static_cast<uint8_t>(in >> kPrecisionBits);
}

void checkSizes(const char* what, const void* src, int inH, int inW, int outH, int outW) {
  if (inH < 1 || inW < 1 || outH < 1 || outW < 1) {
    throw Error(code::kInvalidArgument,
                std::string(what) + ": sizes must be >= 1 (got " + std::to_string(inH) + "x" +
                    std::to_string(inW) + " -> " + std::to_string(outH) + "x" +
                    std::to_string(outW) + ")");
  }
  if (src == nullptr) throw Error(code::kInvalidArgument, std::string(what) + ": null source");
}

}  // namespace

void resizeBicubicF32Into(const float* src, int inH, int inW, int outH, int outW, float* dst) {
  checkSizes("resizeBicubicF32", src, inH, inW, outH, outW);
  if (dst == nullptr) throw Error(code::kInvalidArgument, "resizeBicubicF32: null destination");
  const bool horizontal = outW != inW, vertical = outH != inH;
  if (!horizontal && !vertical) {  // Pillow returns a copy
    std::copy(src, src + static_cast<size_t>(inH) * inW, dst);
    return;
  }

  // Horizontal pass: into dst when it is the last pass, else into a temporary.
  std::vector<float> tmp;
  const float* cur = src;
  if (horizontal) {
    const AxisCoeffs h = precomputeCoeffs(inW, outW, bicubicFilter, 2.0);
    float* out = dst;
    if (vertical) {
      tmp.resize(static_cast<size_t>(inH) * outW);
      out = tmp.data();
    }
    for (int y = 0; y < inH; ++y) {
      const float* row = src + static_cast<size_t>(y) * inW;
      float* outRow = out + static_cast<size_t>(y) * outW;
      for (int xx = 0; xx < outW; ++xx) {
        const double* k = &h.weights[static_cast<size_t>(xx) * h.ksize];
        const float* p = row + h.first[xx];
        double ss = 0.0;
        for (int x = 0; x < h.count[xx]; ++x) ss += p[x] * k[x];
        outRow[xx] = static_cast<float>(ss);
      }
    }
    if (!vertical) return;
    cur = tmp.data();
  }

  // Vertical pass (width is outW by now).
  const AxisCoeffs v = precomputeCoeffs(inH, outH, bicubicFilter, 2.0);
  std::vector<double> acc(outW);
  for (int yy = 0; yy < outH; ++yy) {
    const double* k = &v.weights[static_cast<size_t>(yy) * v.ksize];
    // Row-wise accumulation: same per-pixel order (tap 0, 1, ...) as Pillow,
    // but streams whole source rows for cache friendliness.
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int y = 0; y < v.count[yy]; ++y) {
      const float* row = cur + static_cast<size_t>(v.first[yy] + y) * outW;
      const double w = k[y];
      for (int xx = 0; xx < outW; ++xx) acc[xx] += row[xx] * w;
    }
    float* outRow = dst + static_cast<size_t>(yy) * outW;
    for (int xx = 0; xx < outW; ++xx) outRow[xx] = static_cast<float>(acc[xx]);
  }
}

std::vector<float> resizeBicubicF32(const float* src, int inH, int inW, int outH, int outW) {
  checkSizes("resizeBicubicF32", src, inH, inW, outH, outW);
  std::vector<float> out(static_cast<size_t>(outH) * outW);
  resizeBicubicF32Into(src, inH, inW, outH, outW, out.data());
  return out;
}

std::vector<uint8_t> resizeBilinearU8(const uint8_t* src, int inH, int inW, int channels,
                                      int outH, int outW) {
  checkSizes("resizeBilinearU8", src, inH, inW, outH, outW);
  // Only L and RGB: Pillow resizes LA/RGBA through premultiplied alpha, which
  // this per-channel path does not model.
  if (channels != 1 && channels != 3) {
    throw Error(code::kInvalidArgument,
                "resizeBilinearU8: channels must be 1 or 3 (got " + std::to_string(channels) + ")");
  }
  const int c = channels;
  std::vector<uint8_t> cur(src, src + static_cast<size_t>(inH) * inW * c);
  int curW = inW;

  if (outW != inW) {  // horizontal pass
    const AxisCoeffs h = precomputeCoeffs(inW, outW, bilinearFilter, 1.0);
    const std::vector<int32_t> kk = fixedPointWeights(h.weights);
    std::vector<uint8_t> tmp(static_cast<size_t>(inH) * outW * c);
    for (int y = 0; y < inH; ++y) {
      const uint8_t* row = &cur[static_cast<size_t>(y) * inW * c];
      uint8_t* outRow = &tmp[static_cast<size_t>(y) * outW * c];
      for (int xx = 0; xx < outW; ++xx) {
        const int32_t* k = &kk[static_cast<size_t>(xx) * h.ksize];
        const uint8_t* p = row + static_cast<size_t>(h.first[xx]) * c;
        for (int ch = 0; ch < c; ++ch) {
          int32_t ss = 1 << (kPrecisionBits - 1);
          for (int x = 0; x < h.count[xx]; ++x) ss += p[x * c + ch] * k[x];
          outRow[xx * c + ch] = clip8(ss);
        }
      }
    }
    cur.swap(tmp);
    curW = outW;
  }

  if (outH != inH) {  // vertical pass
    const AxisCoeffs v = precomputeCoeffs(inH, outH, bilinearFilter, 1.0);
    const std::vector<int32_t> kk = fixedPointWeights(v.weights);
    const size_t rowLen = static_cast<size_t>(curW) * c;
    std::vector<uint8_t> tmp(static_cast<size_t>(outH) * rowLen);
    std::vector<int32_t> acc(rowLen);
    for (int yy = 0; yy < outH; ++yy) {
      const int32_t* k = &kk[static_cast<size_t>(yy) * v.ksize];
      std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
      for (int y = 0; y < v.count[yy]; ++y) {
        const uint8_t* row = &cur[static_cast<size_t>(v.first[yy] + y) * rowLen];
        const int32_t w = k[y];
        for (size_t i = 0; i < rowLen; ++i) acc[i] += row[i] * w;
      }
      uint8_t* outRow = &tmp[static_cast<size_t>(yy) * rowLen];
      for (size_t i = 0; i < rowLen; ++i) outRow[i] = clip8(acc[i]);
    }
    cur.swap(tmp);
  }
  return cur;
}

}  // namespace anomalyncd::imgproc
