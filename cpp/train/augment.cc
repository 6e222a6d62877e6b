#include "train/augment.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <utility>

#include "common/error.h"
#include "imgproc/pillow_resample.h"
#include "model/preprocess.h"

namespace anomalyncd::train {

namespace {

// Pillow's blend is t = (float)in1 + alpha * (float)(in2 - in1) in float32. The product
// only depends on the difference d = in2 - in1, so it is tabulated once per call; the
// per-pixel work is then one float add of two floats. Besides being cheap, this keeps
// the result Pillow-exact under any compiler flags: with FMA available (-march=native,
// aarch64) and -ffp-contract=fast, GCC would otherwise fuse a*d + in1 into one fma and
// skip the rounding of the product (seen as +-1 differences).
struct BlendTable {
  float prod[511];  // fl(alpha * d) for d = -255 .. 255
  bool clamp;       // extrapolation branch (alpha outside [0, 1]): clamp before truncating
};

void makeBlendTable(float alpha, BlendTable& t) {
  for (int d = -255; d <= 255; ++d) t.prod[d + 255] = alpha * static_cast<float>(d);
  t.clamp = !(alpha >= 0.0f && alpha <= 1.0f);
}

inline uint8_t blendPixel(int a, int b, const BlendTable& t) {
  // Pillow Blend.c: (UINT8)((int)in1 + alpha * ((int)in2 - (int)in1)), float32
  const float v = static_cast<float>(a) + t.prod[b - a + 255];
  if (t.clamp) {
    if (v <= 0.0f) return 0;
    if (v >= 255.0f) return 255;
  }
  return static_cast<uint8_t>(v);
}

// Lookup table of blend(constant, v, alpha) for v = 0..255 (Brightness, Contrast).
void blendConstLut(int constant, double alpha, uint8_t lut[256]) {
  BlendTable t;
  makeBlendTable(static_cast<float>(alpha), t);
  for (int v = 0; v < 256; ++v) lut[v] = blendPixel(constant, v, t);
}

void checkImage(const void* p, int h, int w, int channels, const char* who) {
  if (!p) throw Error(code::kInvalidArgument, std::string(who) + ": null image");
  if (h < 1 || w < 1)
    throw Error(code::kInvalidArgument, std::string(who) + ": image size must be positive (got " +
                                            std::to_string(h) + "x" + std::to_string(w) + ")");
  if (channels < 1 || channels > 4)
    throw Error(code::kInvalidArgument, std::string(who) + ": channels must be 1..4");
}

inline int reflectIndex(int i, int n) {  // torch 'reflect' (edge not repeated), |pad| < n
  if (i < 0) return -i;
  if (i >= n) return 2 * (n - 1) - i;
  return i;
}

constexpr int kOut = model::kCropSize;  // 224

}  // namespace

// ---------------------------------------------------------------- blend / enhance

void blendU8(const uint8_t* in1, const uint8_t* in2, uint8_t* out, size_t n, double alpha) {
  const float a = static_cast<float>(alpha);  // Pillow passes alpha as C float
  if (a == 0.0f) {
    if (out != in1) std::memmove(out, in1, n);
    return;
  }
  if (a == 1.0f) {
    if (out != in2) std::memmove(out, in2, n);
    return;
  }
  BlendTable t;
  makeBlendTable(a, t);
  for (size_t i = 0; i < n; ++i) out[i] = blendPixel(in1[i], in2[i], t);
}

void rgbToL(const uint8_t* rgb, size_t n, uint8_t* outL) {
  for (size_t i = 0; i < n; ++i) {
    const uint32_t r = rgb[3 * i], g = rgb[3 * i + 1], b = rgb[3 * i + 2];
    outL[i] = static_cast<uint8_t>((r * 19595u + g * 38470u + b * 7471u + 0x8000u) >> 16);
  }
}

int contrastMean(const uint8_t* rgb, int h, int w) {
  checkImage(rgb, h, w, 3, "contrastMean");
  const size_t n = static_cast<size_t>(h) * w;
  uint64_t sum = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t r = rgb[3 * i], g = rgb[3 * i + 1], b = rgb[3 * i + 2];
    sum += (r * 19595u + g * 38470u + b * 7471u + 0x8000u) >> 16;
  }
  // ImageStat: sum(j * hist[j]) (exact in a Python float) / count, then int(mean + 0.5)
  return static_cast<int>(static_cast<double>(sum) / static_cast<double>(n) + 0.5);
}

void adjustBrightness(uint8_t* rgb, int h, int w, double factor) {
  checkImage(rgb, h, w, 3, "adjustBrightness");
  uint8_t lut[256];
  blendConstLut(0, factor, lut);  // degenerate = black image
  const size_t n = static_cast<size_t>(h) * w * 3;
  for (size_t i = 0; i < n; ++i) rgb[i] = lut[rgb[i]];
}

void adjustContrast(uint8_t* rgb, int h, int w, double factor) {
  const int mean = contrastMean(rgb, h, w);  // degenerate = constant gray (L -> RGB)
  uint8_t lut[256];
  blendConstLut(mean, factor, lut);
  const size_t n = static_cast<size_t>(h) * w * 3;
  for (size_t i = 0; i < n; ++i) rgb[i] = lut[rgb[i]];
}

void adjustSaturation(uint8_t* rgb, int h, int w, double factor) {
  checkImage(rgb, h, w, 3, "adjustSaturation");
  const float a = static_cast<float>(factor);
  if (a == 1.0f) return;
  BlendTable t;
  makeBlendTable(a, t);
  const size_t n = static_cast<size_t>(h) * w;
  for (size_t i = 0; i < n; ++i) {
    uint8_t* p = rgb + 3 * i;
    const uint32_t r = p[0], g = p[1], b = p[2];
    const int l = static_cast<int>((r * 19595u + g * 38470u + b * 7471u + 0x8000u) >> 16);
    if (a == 0.0f) {
      p[0] = p[1] = p[2] = static_cast<uint8_t>(l);
      continue;
    }
    p[0] = blendPixel(l, p[0], t);  // degenerate = L replicated to RGB
    p[1] = blendPixel(l, p[1], t);
    p[2] = blendPixel(l, p[2], t);
  }
}

// ---------------------------------------------------------------- sharpness

void smoothFilter(const uint8_t* src, int h, int w, int channels, uint8_t* dst) {
  checkImage(src, h, w, channels, "smoothFilter");
  if (!dst || dst == src) throw Error(code::kInvalidArgument, "smoothFilter: bad destination");
  const size_t stride = static_cast<size_t>(w) * channels;
  if (h < 3 || w < 3) {  // ImagingFilter: image smaller than the kernel -> copy
    std::memcpy(dst, src, stride * h);
    return;
  }
  // ImageFilter.SMOOTH = (3, 3), 13, 0, (1,1,1, 1,5,1, 1,1,1); _imaging.c divides the
  // float32 kernel by the float divisor; Filter.c adds 0.5 to the float offset.
  // Every product is tabulated (p1[v] = fl(v * k1), p5[v] = fl(v * k5)), so only float
  // adds remain per pixel: same results as Filter.c, and no FMA contraction possible.
  const float k1 = 1.0f / 13.0f;
  const float k5 = 5.0f / 13.0f;
  const float offset = 0.0f + 0.5f;
  float p1[256], p5[256];
  for (int v = 0; v < 256; ++v) {
    p1[v] = static_cast<float>(v) * k1;
    p5[v] = static_cast<float>(v) * k5;
  }
  const int C = channels;
  std::memcpy(dst, src, stride);                                        // first row
  std::memcpy(dst + stride * (h - 1), src + stride * (h - 1), stride);  // last row
  for (int y = 1; y < h - 1; ++y) {
    const uint8_t* in_1 = src + stride * (y - 1);
    const uint8_t* in0 = src + stride * y;
    const uint8_t* in1 = src + stride * (y + 1);
    uint8_t* out = dst + stride * y;
    for (int c = 0; c < C; ++c) {  // first / last column copied
      out[c] = in0[c];
      out[(w - 1) * C + c] = in0[(w - 1) * C + c];
    }
    for (size_t i = C; i < stride - C; ++i) {
      // KERNEL1x3(row, x, k, d) = (row[x-d]*k[0] + row[x]*k[1]) + row[x+d]*k[2]
      // ss = offset; ss += K(in1, k[0..2]); ss += K(in0, k[3..5]); ss += K(in_1, k[6..8])
      const float r1 = (p1[in1[i - C]] + p1[in1[i]]) + p1[in1[i + C]];
      const float r0 = (p1[in0[i - C]] + p5[in0[i]]) + p1[in0[i + C]];
      const float rm = (p1[in_1[i - C]] + p1[in_1[i]]) + p1[in_1[i + C]];
      const float ss = ((offset + r1) + r0) + rm;
      out[i] = ss <= 0.0f ? 0 : ss >= 255.0f ? 255 : static_cast<uint8_t>(ss);  // clip8
    }
  }
}

void adjustSharpness(uint8_t* img, int h, int w, int channels, double factor, std::vector<uint8_t>& scratch) {
  checkImage(img, h, w, channels, "adjustSharpness");
  const size_t n = static_cast<size_t>(h) * w * channels;
  if (static_cast<float>(factor) == 1.0f) return;
  if (scratch.size() < n) scratch.resize(n);
  smoothFilter(img, h, w, channels, scratch.data());
  blendU8(scratch.data(), img, img, n, factor);  // blend(degenerate, image, factor)
}

void adjustSharpness(uint8_t* img, int h, int w, int channels, double factor) {
  std::vector<uint8_t> scratch;
  adjustSharpness(img, h, w, channels, factor, scratch);
}

// ---------------------------------------------------------------- gaussian blur

void gaussianKernel1d(int kernelSize, double sigma, float* out) {
  if (kernelSize < 1 || kernelSize % 2 == 0)
    throw Error(code::kInvalidArgument, "gaussianBlur: kernel size must be odd and positive");
  if (!(sigma > 0.0)) throw Error(code::kInvalidArgument, "gaussianBlur: sigma must be positive");
  const int half = (kernelSize - 1) / 2;
  const float s = static_cast<float>(sigma);  // the Python-float scalar enters float32 ops
  float sum = 0.0f;
  for (int i = 0; i < kernelSize; ++i) {
    const float x = static_cast<float>(i - half) / s;  // linspace(-half, half) is exact
    const float pdf = std::exp(-0.5f * (x * x));
    out[i] = pdf;
    sum += pdf;
  }
  for (int i = 0; i < kernelSize; ++i) out[i] /= sum;
}

void gaussianBlur(uint8_t* img, int h, int w, int channels, int kernelSize, double sigma, std::vector<float>& scratch) {
  checkImage(img, h, w, channels, "gaussianBlur");
  float kernel[257];
  if (kernelSize > 255) throw Error(code::kInvalidArgument, "gaussianBlur: kernel size too large");
  gaussianKernel1d(kernelSize, sigma, kernel);
  const int pad = kernelSize / 2;
  if (pad >= h || pad >= w)
    throw Error(code::kInvalidArgument, "gaussianBlur: reflect padding " + std::to_string(pad) +
                                            " needs an image larger than " + std::to_string(h) + "x" +
                                            std::to_string(w));
  const int C = channels;
  const size_t rowLen = static_cast<size_t>(w) * C;
  const size_t padLen = static_cast<size_t>(w + 2 * pad) * C;
  const size_t need = rowLen * h + padLen + rowLen;
  if (scratch.size() < need) scratch.resize(need);
  float* H = scratch.data();               // h x w x C horizontal pass
  float* P = H + rowLen * h;               // one reflect-padded row
  float* __restrict acc = P + padLen;      // one output row
  // Skip the outer taps whose weight is below 1e-12 (all of them together move a sum by
  // < 1e-8 gray levels, far below float32 resolution at the values that round
  // differently; exp() underflows them to exactly 0 for small sigma anyway).
  int t0 = 0;
  while (t0 < pad && kernel[t0] < 1e-12f) ++t0;
  const int t1 = kernelSize - t0;
  // horizontal pass
  for (int y = 0; y < h; ++y) {
    const uint8_t* in = img + rowLen * y;
    for (int x = -pad; x < w + pad; ++x) {
      const uint8_t* px = in + static_cast<size_t>(reflectIndex(x, w)) * C;
      float* q = P + static_cast<size_t>(x + pad) * C;
      for (int c = 0; c < C; ++c) q[c] = static_cast<float>(px[c]);
    }
    float* __restrict out = H + rowLen * y;
    std::fill(out, out + rowLen, 0.0f);
    for (int t = t0; t < t1; ++t) {
      const float k = kernel[t];
      const float* __restrict src = P + static_cast<size_t>(t) * C;
      for (size_t i = 0; i < rowLen; ++i) out[i] += k * src[i];
    }
  }
  // vertical pass, round half to even (torch.round), clamp, store
  for (int y = 0; y < h; ++y) {
    std::fill(acc, acc + rowLen, 0.0f);
    for (int t = t0; t < t1; ++t) {
      const float k = kernel[t];
      const float* __restrict src = H + rowLen * reflectIndex(y + t - pad, h);
      for (size_t i = 0; i < rowLen; ++i) acc[i] += k * src[i];
    }
    uint8_t* out = img + rowLen * y;
    for (size_t i = 0; i < rowLen; ++i) {
      const float r = std::nearbyint(acc[i]);  // default rounding mode: half to even
      out[i] = static_cast<uint8_t>(r <= 0.0f ? 0.0f : r >= 255.0f ? 255.0f : r);
    }
  }
}

void gaussianBlur(uint8_t* img, int h, int w, int channels, int kernelSize, double sigma) {
  std::vector<float> scratch;
  gaussianBlur(img, h, w, channels, kernelSize, sigma, scratch);
}

// ---------------------------------------------------------------- posterize / geometry

void posterize(uint8_t* data, size_t n, int bits) {
  if (bits < 1 || bits > 8) throw Error(code::kInvalidArgument, "posterize: bits must be 1..8");
  if (bits == 8) return;
  const uint8_t mask = static_cast<uint8_t>(~((1u << (8 - bits)) - 1u));
  for (size_t i = 0; i < n; ++i) data[i] &= mask;
}

void hflip(uint8_t* img, int h, int w, int channels) {
  checkImage(img, h, w, channels, "hflip");
  const int C = channels;
  for (int y = 0; y < h; ++y) {
    uint8_t* row = img + static_cast<size_t>(y) * w * C;
    for (int a = 0, b = w - 1; a < b; ++a, --b)
      for (int c = 0; c < C; ++c) std::swap(row[a * C + c], row[b * C + c]);
  }
}

void vflip(uint8_t* img, int h, int w, int channels) {
  checkImage(img, h, w, channels, "vflip");
  const size_t rowLen = static_cast<size_t>(w) * channels;
  for (int a = 0, b = h - 1; a < b; ++a, --b)
    std::swap_ranges(img + rowLen * a, img + rowLen * (a + 1), img + rowLen * b);
}

void rotateCCW(const uint8_t* src, int h, int w, int channels, int quarterTurns, uint8_t* dst) {
  checkImage(src, h, w, channels, "rotateCCW");
  if (!dst || dst == src) throw Error(code::kInvalidArgument, "rotateCCW: bad destination");
  const int q = ((quarterTurns % 4) + 4) % 4;
  const int C = channels;
  const int oh = (q % 2) ? w : h, ow = (q % 2) ? h : w;
  for (int r = 0; r < oh; ++r) {
    for (int c = 0; c < ow; ++c) {
      int y, x;
      switch (q) {
        case 1: y = c; x = w - 1 - r; break;          // ROTATE_90
        case 2: y = h - 1 - r; x = w - 1 - c; break;  // ROTATE_180
        case 3: y = h - 1 - c; x = r; break;          // ROTATE_270
        default: y = r; x = c; break;
      }
      std::memcpy(dst + (static_cast<size_t>(r) * ow + c) * C, src + (static_cast<size_t>(y) * w + x) * C, C);
    }
  }
}

// ---------------------------------------------------------------- Augmenter

Augmenter::Augmenter(uint64_t seed) : rng_(seed) {}

double Augmenter::uniform01() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

uint64_t Augmenter::uniformInt(uint64_t n) {
  const uint64_t threshold = (0 - n) % n;  // 2^64 mod n
  for (;;) {
    const uint64_t x = rng_();
    if (x >= threshold) return x % n;
  }
}

ViewParams Augmenter::sampleParams() {
  ViewParams p;
  p.top = static_cast<int>(uniform01() * kCropRange);   // T19: first draw = row
  p.left = static_cast<int>(uniform01() * kCropRange);
  p.hflip = uniform01() < 0.5;
  p.vflip = uniform01() < 0.5;
  // ColorJitter: a uniformly random order of the three ops (hue is off), then factors
  p.jitterOrder = {kBrightness, kContrast, kSaturation};
  for (int i = 2; i > 0; --i) std::swap(p.jitterOrder[i], p.jitterOrder[uniformInt(i + 1)]);
  p.brightness = 0.6 + 0.8 * uniform01();
  p.contrast = 0.6 + 0.8 * uniform01();
  p.saturation = 0.6 + 1.2 * uniform01();
  const double u = uniform01();
  p.rotation = u < 0.25 ? 1 : u < 0.5 ? 2 : u < 0.75 ? 3 : 0;
  p.sharpness = 0.2 + 1.8 * uniform01();
  p.blurKernel = 9 + 4 * static_cast<int>(uniformInt(7));
  p.blurSigma = 0.1 + 1.9 * uniform01();
  p.posterizeBits = 5 + static_cast<int>(uniformInt(4));
  return p;
}

void Augmenter::applyU8(const CropSample& s, const ViewParams& p, uint8_t* outRgb, uint8_t* outMask) {
  if (!s.rgb) throw Error(code::kInvalidArgument, "augment: null image");
  if (p.top < 0 || p.top >= kCropRange || p.left < 0 || p.left >= kCropRange)
    throw Error(code::kInvalidArgument, "augment: crop offset out of range");
  if (p.rotation < 0 || p.rotation > 3) throw Error(code::kInvalidArgument, "augment: rotation must be 0..3");
  const auto [rh, rw] = model::shortSideResizeSize(s.height, s.width);
  if (rh < p.top + kOut || rw < p.left + kOut)
    throw Error(code::kInvalidArgument, "augment: resized image " + std::to_string(rh) + "x" + std::to_string(rw) +
                                            " is too small for the 224 crop");
  // 1. short-side-256 Pillow bilinear resize (image and mask)
  const bool resize = !(rh == s.height && rw == s.width);
  std::vector<uint8_t> rimg, rmsk;
  const uint8_t* ip = s.rgb;
  const uint8_t* mp = s.mask;
  if (resize) {
    rimg = imgproc::resizeBilinearU8(s.rgb, s.height, s.width, 3, rh, rw);
    ip = rimg.data();
    if (s.mask && outMask) {
      rmsk = imgproc::resizeBilinearU8(s.mask, s.height, s.width, 1, rh, rw);
      mp = rmsk.data();
    }
  }
  // 2, 3, 5 fused: crop, hflip, vflip and the rotation only move pixels, and the colour
  // jitter (4) is per pixel plus a permutation-invariant mean, so one gather of
  // rotate(vflip(hflip(crop))) followed by the jitter equals the reference order exactly.
  // Output (r, c) <- resized (top + y', left + x'); the map is affine in (r, c).
  const int n = kOut;
  auto srcOffset = [&](int r, int c) -> long {
    int y, x;  // position in the flipped crop before the rotation (rotateCCW's map)
    switch (p.rotation) {
      case 1: y = c; x = n - 1 - r; break;
      case 2: y = n - 1 - r; x = n - 1 - c; break;
      case 3: y = n - 1 - c; x = r; break;
      default: y = r; x = c; break;
    }
    if (p.vflip) y = n - 1 - y;
    if (p.hflip) x = n - 1 - x;
    return static_cast<long>(p.top + y) * rw + (p.left + x);
  };
  const long base = srcOffset(0, 0);
  const long rowStep = srcOffset(1, 0) - base;
  const long colStep = srcOffset(0, 1) - base;
  const size_t npx = static_cast<size_t>(n) * n;
  if (outRgb) {
    uint8_t* dst = outRgb;
    for (int r = 0; r < n; ++r) {
      long o = base + rowStep * r;
      for (int c = 0; c < n; ++c, o += colStep, dst += 3) std::memcpy(dst, ip + 3 * o, 3);
    }
    // 4. ColorJitter in the drawn order (image only)
    for (JitterOp op : p.jitterOrder) {
      switch (op) {
        case kBrightness: adjustBrightness(outRgb, n, n, p.brightness); break;
        case kContrast: adjustContrast(outRgb, n, n, p.contrast); break;
        case kSaturation: adjustSaturation(outRgb, n, n, p.saturation); break;
      }
    }
    // 6. sharpness, 7. gaussian blur, 8. posterize (image only)
    adjustSharpness(outRgb, n, n, 3, p.sharpness, scratchU8_);
    gaussianBlur(outRgb, n, n, 3, p.blurKernel, p.blurSigma, scratchF_);
    posterize(outRgb, npx * 3, p.posterizeBits);
  }
  if (outMask && s.mask) {
    uint8_t* dst = outMask;
    for (int r = 0; r < n; ++r) {
      long o = base + rowStep * r;
      for (int c = 0; c < n; ++c, o += colStep) *dst++ = mp[o];
    }
  }
}

void Augmenter::apply(const CropSample& s, const ViewParams& p, float* outImage, float* outMask) {
  if (!outImage || (s.mask && !outMask)) throw Error(code::kInvalidArgument, "augment: null output buffer");
  const size_t npx = static_cast<size_t>(kOut) * kOut;
  img_.resize(npx * 3);
  msk_.resize(npx);
  applyU8(s, p, img_.data(), s.mask ? msk_.data() : nullptr);
  // 9. ToTensor + Normalize, float32 exactly as model::preprocess
  float lut[3][256];
  for (int c = 0; c < 3; ++c)
    for (int v = 0; v < 256; ++v)
      lut[c][v] = (static_cast<float>(v) / 255.0f - model::kImageNetMean[c]) / model::kImageNetStd[c];
  const uint8_t* src = img_.data();
  float* o0 = outImage;
  float* o1 = outImage + npx;
  float* o2 = outImage + 2 * npx;
  for (size_t i = 0; i < npx; ++i) {
    o0[i] = lut[0][src[3 * i]];
    o1[i] = lut[1][src[3 * i + 1]];
    o2[i] = lut[2][src[3 * i + 2]];
  }
  if (s.mask)
    for (size_t i = 0; i < npx; ++i) outMask[i] = static_cast<float>(msk_[i]) / 255.0f;
}

void Augmenter::view(const CropSample& s, float* outImage, float* outMask) {
  const ViewParams p = sampleParams();
  apply(s, p, outImage, outMask);
}

}  // namespace anomalyncd::train
