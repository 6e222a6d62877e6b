// PNG through libpng directly, for the files the MEBin path reads and writes
// (anomaly maps, binary maps, crops), so that it does not need OpenCV's
// imgcodecs: on Debian that library pulls GDAL, poppler and ~100 more shared
// libraries (about 0.2 s and 48 MB at start-up). The bytes and pixels are the
// ones OpenCV gives: same libpng, same settings (checked against cv::imencode /
// cv::imdecode by test/native/crop_selftest.cc).
#pragma once
#include <opencv2/core.hpp>

#include <cstdint>
#include <vector>

namespace anomalyncd::io {

// A grayscale PNG (bit depth 1..8, no transparency chunk) as CV_8UC1, exactly
// as cv::imdecode(IMREAD_UNCHANGED) decodes it. Returns false, leaving the
// decision to OpenCV, for any other PNG (colour, 16-bit, palette, tRNS) and on
// any libpng error, so every other case keeps OpenCV's behaviour and messages.
bool decodeGrayPng(const std::vector<uint8_t>& bytes, cv::Mat& out);

// CV_8UC1 (gray) or CV_8UC3 (BGR) as the PNG bytes cv::imencode(".png") writes
// with default parameters: SUB filter, zlib level 1, RLE strategy. `out` is
// cleared and refilled (its capacity is reused). Throws Error(kIo) on failure.
void encodePng(const cv::Mat& image, std::vector<uint8_t>& out);

}  // namespace anomalyncd::io
