// Bit-exact ports of Pillow 9.4's separable resampling (libImaging/Resample.c)
// for the two cases the method needs (METHOD.md T16, T17):
//   * BICUBIC on "F" (float32) images: crop anomaly scores (METHOD.md §3.4);
//   * BILINEAR on 8-bit "L" / "RGB" images: train/test resize (METHOD.md §5.1).
// Both resize the whole image (box = full image, no reducing_gap), like
// Image.resize(size, filter) does.
#pragma once
#include <cstdint>
#include <vector>

namespace anomalyncd::imgproc {

// Pillow "F" BICUBIC. `src` is inH x inW row-major float32; returns outH x outW.
// Horizontal pass first, then vertical; a pass is skipped when that size is
// unchanged; double accumulation, float32 between passes. NaN/inf propagate
// exactly as in Pillow (every tap in the window is multiplied, even 0-weight ones).
std::vector<float> resizeBicubicF32(const float* src, int inH, int inW, int outH, int outW);
// Same, writing into caller-owned `dst` (outH * outW floats, must not alias src).
void resizeBicubicF32Into(const float* src, int inH, int inW, int outH, int outW, float* dst);

// Pillow BILINEAR on 8-bit images. `src` is inH x inW x channels interleaved
// (channels 1 = "L" or 3 = "RGB", nothing else); returns outH x outW x channels. 22-bit
// fixed-point weights, uint8 clipping between the passes.
std::vector<uint8_t> resizeBilinearU8(const uint8_t* src, int inH, int inW, int channels,
                                      int outH, int outW);

}  // namespace anomalyncd::imgproc
