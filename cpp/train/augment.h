// METHOD.md §5.1 training-time augmentation (two independent views per sample), pure C++17.
//
// The random pipeline (steps 1-9) only has to be distributionally equivalent to the
// reference (its torch/Python random streams cannot be replicated), but every
// deterministic operator below reproduces Pillow 9.4 / torchvision exactly for given
// parameters (checked by cpp/train/augment_selftest.cc against
// test/fixtures/make_augment_goldens.py):
//   * adjustBrightness / adjustContrast / adjustSaturation / adjustSharpness:
//     PIL.ImageEnhance.{Brightness,Contrast,Color,Sharpness}(img).enhance(factor), i.e.
//     Image.blend(degenerate, img, factor) with Pillow's float32 blend (truncation when
//     0 <= factor <= 1, clamp + truncation otherwise). Degenerates: black; a constant
//     gray int(mean(L) + 0.5) with L = Pillow's RGB->L (ITU-R 601-2, 16-bit fixed point);
//     L replicated to RGB; the ImageFilter.SMOOTH-filtered image (3x3 kernel
//     [[1,1,1],[1,5,1],[1,1,1]] / 13 in float32, +0.5 then clamp/truncate; the one-pixel
//     border is copied, hence untouched by the blend).
//   * gaussianBlur: torchvision.transforms.functional.gaussian_blur on a uint8 image
//     (float32 normalised kernel, reflect padding k//2, round half to even, clamp).
//     Computed separably (row then column pass) in float32, skipping outer taps whose
//     weight is < 1e-12; the 2-D conv2d of torchvision sums in a different order, so rare
//     .5 ties may differ by 1 gray level (1 value in ~55k in the goldens).
//   * posterize: PIL.ImageOps.posterize (keep the top `bits` bits).
//   * hflip / vflip / rotateCCW: Image.transpose(FLIP_LEFT_RIGHT / FLIP_TOP_BOTTOM /
//     ROTATE_90 / ROTATE_180 / ROTATE_270) (exact pixel moves; counter-clockwise).
//
// Random source: std::mt19937_64 (its output sequence is fixed by the C++ standard),
// with our own double / integer mappings (53-bit u in [0,1), unbiased rejection for
// integers) so a seed gives the same views on every standard library.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace anomalyncd::train {

// ---- deterministic operators (images are h x w x channels interleaved uint8) ----

// Pillow Image.blend(in1, in2, alpha) for 8-bit data: out = in1 + alpha * (in2 - in1)
// in float32 (alpha rounded to float32 as Pillow does), truncated; clamped to [0, 255]
// when alpha is outside [0, 1]. n = number of bytes. out may alias in1 or in2.
void blendU8(const uint8_t* in1, const uint8_t* in2, uint8_t* out, size_t n, double alpha);

// Pillow RGB -> L: (19595 R + 38470 G + 7471 B + 0x8000) >> 16 per pixel (n pixels).
void rgbToL(const uint8_t* rgb, size_t n, uint8_t* outL);

// int(ImageStat.Stat(img.convert("L")).mean[0] + 0.5): the Contrast degenerate gray.
int contrastMean(const uint8_t* rgb, int h, int w);

void adjustBrightness(uint8_t* rgb, int h, int w, double factor);  // in place, RGB
void adjustContrast(uint8_t* rgb, int h, int w, double factor);    // in place, RGB
void adjustSaturation(uint8_t* rgb, int h, int w, double factor);  // in place, RGB (ImageEnhance.Color)

// Pillow ImageFilter.SMOOTH (Filter.c ImagingFilter3x3), channels 1 or 3; dst must not
// alias src. Images smaller than 3 x 3 are copied unchanged.
void smoothFilter(const uint8_t* src, int h, int w, int channels, uint8_t* dst);
// ImageEnhance.Sharpness(img).enhance(factor), in place; `scratch` is resized as needed.
void adjustSharpness(uint8_t* img, int h, int w, int channels, double factor, std::vector<uint8_t>& scratch);
void adjustSharpness(uint8_t* img, int h, int w, int channels, double factor);

// torchvision _get_gaussian_kernel1d in float32: x = -(k-1)/2 .. (k-1)/2,
// pdf = exp(-0.5 * (x / sigma)^2), kernel = pdf / sum(pdf). k odd >= 1, sigma > 0.
void gaussianKernel1d(int kernelSize, double sigma, float* out);
// torchvision gaussian_blur(img, [k, k], [sigma, sigma]) on uint8, in place. Requires
// k odd, k // 2 < min(h, w) (reflect padding). `scratch` is resized as needed.
void gaussianBlur(uint8_t* img, int h, int w, int channels, int kernelSize, double sigma,
                  std::vector<float>& scratch);
void gaussianBlur(uint8_t* img, int h, int w, int channels, int kernelSize, double sigma);

// PIL.ImageOps.posterize: v & ~(2^(8-bits) - 1), bits in 1..8; n bytes, in place.
void posterize(uint8_t* data, size_t n, int bits);

void hflip(uint8_t* img, int h, int w, int channels);  // in place, left <-> right
void vflip(uint8_t* img, int h, int w, int channels);  // in place, top <-> bottom
// Counter-clockwise rotation by quarterTurns * 90 degrees (0..3); dst is w x h for odd
// turns, h x w otherwise, and must not alias src. 1 = ROTATE_90 (np.rot90), 3 = ROTATE_270.
void rotateCCW(const uint8_t* src, int h, int w, int channels, int quarterTurns, uint8_t* dst);

// ---- the random pipeline ----

struct CropSample {
  const uint8_t* rgb;   // height x width x 3 interleaved RGB, not owned
  const uint8_t* mask;  // height x width 0..255, not owned (may be null: outMask untouched)
  int height;
  int width;
};

enum JitterOp : uint8_t { kBrightness = 0, kContrast = 1, kSaturation = 2 };

// Every random choice of one view (METHOD.md §5.1), in pipeline order.
struct ViewParams {
  int top = 0, left = 0;                    // step 2: int(u * 32) each, top drawn first (T19)
  bool hflip = false, vflip = false;        // step 3: p = 0.5 each
  std::array<JitterOp, 3> jitterOrder{kBrightness, kContrast, kSaturation};  // step 4
  double brightness = 1.0;                  // U(0.6, 1.4)
  double contrast = 1.0;                    // U(0.6, 1.4)
  double saturation = 1.0;                  // U(0.6, 1.8)
  int rotation = 0;                         // step 5: CCW quarter turns (1: 90, 2: 180, 3: 270, 0: none)
  double sharpness = 1.0;                   // step 6: 0.2 + 1.8 u
  int blurKernel = 9;                       // step 7: uniform in {9, 13, ..., 33}
  double blurSigma = 1.0;                   //         U(0.1, 2.0)
  int posterizeBits = 8;                    // step 8: uniform in {5, 6, 7, 8}
};

class Augmenter {
 public:
  static constexpr int kCropRange = 32;  // offsets int(u * 32) in 0..31 (T19)

  explicit Augmenter(uint64_t seed);

  // One random training view (METHOD.md §5.1 steps 1-9). outImage: 3 x 224 x 224 CHW float32,
  // ImageNet-normalised; outMask: 224 x 224 float32 in [0, 1]. Throws
  // Error(kInvalidArgument) on null buffers / bad sizes.
  void view(const CropSample& s, float* outImage, float* outMask);

  // The two halves of view(): draw the parameters, then apply them deterministically.
  ViewParams sampleParams();
  void apply(const CropSample& s, const ViewParams& p, float* outImage, float* outMask);
  // As apply(), but stops before step 9: 224 x 224 x 3 uint8 image and 224 x 224 uint8
  // mask (either output pointer may be null).
  void applyU8(const CropSample& s, const ViewParams& p, uint8_t* outRgb, uint8_t* outMask);

 private:
  double uniform01();               // [0, 1), 53 bits
  uint64_t uniformInt(uint64_t n);  // [0, n), unbiased

  std::mt19937_64 rng_;
  // reused per-call buffers
  std::vector<uint8_t> img_, msk_, scratchU8_;
  std::vector<float> scratchF_;
};

}  // namespace anomalyncd::train
