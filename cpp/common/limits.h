// Explicit size limits, checked BEFORE memory is allocated for untrusted sizes (image
// headers, tensor shapes, checkpoint tensor declarations, crop counts): an absurd input
// gets a typed Error(kLimit) naming the limit instead of an out-of-memory kill.
// Process-wide (all threads and worker environments share them); raised through the TS
// setLimits() (ts/core/limits.ts), which sets every loaded addon's copy.
#pragma once
#include <cstdint>
#include <string>

#include "common/error.h"

namespace anomalyncd {

struct Limits {
  // Pixels (width x height) of one image or anomaly map, read from the file header before
  // decoding (PNG, JPEG, BMP; other formats: after OpenCV's decode, which refuses > 2^30
  // itself) and from in-memory Tensor shapes. Default 2^27: an 8k x 8k map (2^26) passes.
  int64_t maxPixels = int64_t(1) << 27;
  // Crops in one call (embedCrops, preprocess, fit, predict, readCrops).
  int64_t maxCrops = int64_t(1) << 20;
  // Elements of one input Tensor and of one checkpoint / bundle tensor as declared in the file.
  int64_t maxTensorElements = int64_t(1) << 30;
};

// The hard ceilings the limits can be raised to (int indexing, OpenCV's own 2^30 pixels).
inline constexpr int64_t kMaxPixelsCeiling = int64_t(1) << 30;
inline constexpr int64_t kMaxCropsCeiling = int64_t(1) << 31;
inline constexpr int64_t kMaxTensorElementsCeiling = int64_t(1) << 40;

Limits limits();
// Error(kInvalidArgument) when a value is < 1 or above its ceiling.
void setLimits(const Limits& l);

// Error(kLimit) "<what>: <detail> exceeds the limit <name> = <value> ..." when over.
void checkPixels(int64_t width, int64_t height, const std::string& what);
void checkCrops(int64_t count, const std::string& what);
void checkTensorElements(int64_t elements, const std::string& what);

// The width and height an image file declares in its header (PNG IHDR, JPEG SOFn, BMP);
// false when the format is another or the header is unreadable (the decoder decides).
bool imageHeaderSize(const uint8_t* data, size_t size, int64_t* width, int64_t* height);

}  // namespace anomalyncd
