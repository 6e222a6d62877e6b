// METHOD.md §5.1 test-time transform (T17, T18), pure C++ (no torch):
//   1. Pillow BILINEAR resize so the shorter side is 256; the longer side becomes
//      int(256 * long / short) (truncation); skipped if the short side already is 256.
//      The uint8 mask goes through the same 8-bit resize (soft edges).
//   2. Fixed 224 x 224 crop at top = left = 16 (top-left biased for non-square inputs).
//   3. To float: image / 255 then (x - mean) / std per channel (ImageNet, float32 as
//      torchvision's ToTensor + Normalize); mask / 255 -> [0, 1].
#pragma once
#include <cstdint>
#include <utility>

namespace anomalyncd::model {

inline constexpr int kResizeShortSide = 256;  // int(224 / 0.875)
inline constexpr int kCropSize = 224;
inline constexpr int kCropOffset = 16;        // (256 - 224) / 2
inline constexpr float kImageNetMean[3] = {0.485f, 0.456f, 0.406f};
inline constexpr float kImageNetStd[3] = {0.229f, 0.224f, 0.225f};

// Size {outH, outW} after the short-side-256 resize (T18). Error(kInvalidArgument) for
// non-positive sizes or an aspect ratio whose resized image would exceed 2^26 pixels.
std::pair<int, int> shortSideResizeSize(int h, int w);

// rgb: h x w x 3 interleaved uint8 (RGB); mask: h x w uint8 (0/255 or any gray), may be
// null (then outMask is not written). outImage: 3 x 224 x 224 CHW float32; outMask:
// 224 x 224 float32 in [0, 1]. Throws Error(kInvalidArgument) on bad sizes / pointers.
void preprocess(const uint8_t* rgb, const uint8_t* mask, int h, int w, float* outImage, float* outMask);

}  // namespace anomalyncd::model
