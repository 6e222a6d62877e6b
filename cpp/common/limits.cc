#include "common/limits.h"

#include <algorithm>
#include <atomic>

#include "common/error.h"

namespace anomalyncd {
namespace {
const Limits kDefaults{};
std::atomic<int64_t> gMaxPixels{kDefaults.maxPixels};
std::atomic<int64_t> gMaxCrops{kDefaults.maxCrops};
std::atomic<int64_t> gMaxTensorElements{kDefaults.maxTensorElements};

const char* kHow = " (raise it with setLimits() if this input is genuine)";

void checkRange(int64_t v, int64_t ceiling, const char* name) {
  if (v < 1 || v > ceiling)
    throw Error(code::kInvalidArgument, std::string("Limit '") + name + "' must be an integer in [1, " +
                                            std::to_string(ceiling) + "] (got " + std::to_string(v) + ")");
}
}  // namespace

Limits limits() {
  return Limits{gMaxPixels.load(), gMaxCrops.load(), gMaxTensorElements.load()};
}

void setLimits(const Limits& l) {
  checkRange(l.maxPixels, kMaxPixelsCeiling, "maxPixels");
  checkRange(l.maxCrops, kMaxCropsCeiling, "maxCrops");
  checkRange(l.maxTensorElements, kMaxTensorElementsCeiling, "maxTensorElements");
  gMaxPixels.store(l.maxPixels);
  gMaxCrops.store(l.maxCrops);
  gMaxTensorElements.store(l.maxTensorElements);
}

void checkPixels(int64_t width, int64_t height, const std::string& what) {
  const int64_t limit = gMaxPixels.load();
  // Sizes come from 32-bit header fields or Tensor shapes: below 2^32 each, so the product
  // fits uint64 (fuzz_image found the int64 product overflowing in this message).
  const uint64_t kMax = uint64_t(1) << 32;
  if (width < 0 || height < 0 || uint64_t(width) >= kMax || uint64_t(height) >= kMax)
    throw Error(code::kLimit, what + ": " + std::to_string(width) + " x " + std::to_string(height) +
                                  " pixels exceeds the limit maxPixels = " + std::to_string(limit) + kHow);
  const uint64_t pixels = uint64_t(width) * uint64_t(height);
  if (pixels > uint64_t(limit))
    throw Error(code::kLimit, what + ": " + std::to_string(width) + " x " + std::to_string(height) + " = " +
                                  std::to_string(pixels) + " pixels exceeds the limit maxPixels = " +
                                  std::to_string(limit) + kHow);
}

void checkCrops(int64_t count, const std::string& what) {
  const int64_t limit = gMaxCrops.load();
  if (count > limit)
    throw Error(code::kLimit, what + ": " + std::to_string(count) + " crops exceed the limit maxCrops = " +
                                  std::to_string(limit) + kHow);
}

void checkTensorElements(int64_t elements, const std::string& what) {
  const int64_t limit = gMaxTensorElements.load();
  if (elements < 0 || elements > limit)
    throw Error(code::kLimit, what + ": " + std::to_string(elements) + " elements exceed the limit maxTensorElements = " +
                                  std::to_string(limit) + kHow);
}

namespace {
uint32_t be32(const uint8_t* p) { return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3]; }
uint16_t be16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t le32(const uint8_t* p) { return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24); }
}  // namespace

bool imageHeaderSize(const uint8_t* d, size_t n, int64_t* width, int64_t* height) {
  static const uint8_t png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (n >= 24 && std::equal(png, png + 8, d) && std::equal(d + 12, d + 16, reinterpret_cast<const uint8_t*>("IHDR"))) {
    *width = be32(d + 16);
    *height = be32(d + 20);
    return true;
  }
  if (n >= 4 && d[0] == 0xFF && d[1] == 0xD8) {  // JPEG: walk the marker segments to the first SOFn
    size_t i = 2;
    while (i + 4 <= n) {
      if (d[i] != 0xFF) return false;
      const uint8_t m = d[i + 1];
      if (m == 0xFF) { ++i; continue; }  // fill byte
      if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) { i += 2; continue; }  // no length
      const size_t len = be16(d + i + 2);
      if (len < 2) return false;
      const bool sof = m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC;
      if (sof) {
        if (i + 9 > n) return false;
        *height = be16(d + i + 5);
        *width = be16(d + i + 7);
        return true;
      }
      if (m == 0xDA || m == 0xD9) return false;  // scan data before any frame header
      i += 2 + len;
    }
    return false;
  }
  if (n >= 26 && d[0] == 'B' && d[1] == 'M' && le32(d + 14) >= 40) {  // BMP with a BITMAPINFOHEADER (or later)
    *width = static_cast<int32_t>(le32(d + 18));
    const int32_t h = static_cast<int32_t>(le32(d + 22));
    *height = h < 0 ? -static_cast<int64_t>(h) : h;
    if (*width < 0) *width = -*width;
    return true;
  }
  return false;
}

}  // namespace anomalyncd
