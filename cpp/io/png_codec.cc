#include "io/png_codec.h"

#include <png.h>
#include <zlib.h>

#include <csetjmp>
#include <cstring>
#include <memory>
#include <string>

#include "common/error.h"

namespace anomalyncd::io {
namespace {

struct Reader {
  const uint8_t* data;
  size_t size;
  size_t at;
};

void readFromBuffer(png_structp png, png_bytep out, png_size_t n) {
  auto* r = static_cast<Reader*>(png_get_io_ptr(png));
  if (r->at + n > r->size) png_error(png, "read past the end of the data");
  std::memcpy(out, r->data + r->at, n);
  r->at += n;
}

void writeToVector(png_structp png, png_bytep data, png_size_t n) {
  auto* out = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(png));
  out->insert(out->end(), data, data + n);
}

void flushNothing(png_structp) {}

// No messages on stderr: a PNG this reader refuses goes to OpenCV, which decides.
void quietWarning(png_structp, png_const_charp) {}
[[noreturn]] void quietError(png_structp png, png_const_charp) { png_longjmp(png, 1); }

}  // namespace

bool decodeGrayPng(const std::vector<uint8_t>& bytes, cv::Mat& out) {
  if (bytes.size() < 8 || png_sig_cmp(bytes.data(), 0, 8) != 0) return false;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, nullptr, quietError, quietWarning);
  if (!png) return false;
  png_infop info = png_create_info_struct(png);
  if (!info) {
    png_destroy_read_struct(&png, nullptr, nullptr);
    return false;
  }
  Reader reader{bytes.data(), bytes.size(), 0};
  // Written between setjmp and a possible longjmp: kept in memory (heap / volatile).
  std::unique_ptr<cv::Mat> image = std::make_unique<cv::Mat>();
  volatile bool ok = false;
  if (setjmp(png_jmpbuf(png)) == 0) {
    png_set_read_fn(png, &reader, readFromBuffer);
    png_read_info(png, info);
    png_uint_32 width = 0, height = 0;
    int bitDepth = 0, colorType = 0, interlace = 0;
    png_get_IHDR(png, info, &width, &height, &bitDepth, &colorType, &interlace, nullptr, nullptr);
    const bool plainGray = colorType == PNG_COLOR_TYPE_GRAY && bitDepth <= 8 && !png_get_valid(png, info, PNG_INFO_tRNS) &&
                           interlace == PNG_INTERLACE_NONE && width >= 1 && height >= 1 && width <= (1u << 30) / height;
    if (plainGray) {
      // As OpenCV's PngDecoder: sub-byte gray is expanded to 8 bits (0..255).
      if (bitDepth < 8) png_set_expand_gray_1_2_4_to_8(png);
      png_read_update_info(png, info);
      image->create(static_cast<int>(height), static_cast<int>(width), CV_8UC1);
      for (png_uint_32 y = 0; y < height; ++y) png_read_row(png, image->ptr<uint8_t>(static_cast<int>(y)), nullptr);
      png_read_end(png, nullptr);
      ok = true;
    }
  }
  png_destroy_read_struct(&png, &info, nullptr);
  if (ok) out = *image;
  return ok;
}

void encodePng(const cv::Mat& image, std::vector<uint8_t>& out) {
  if (image.depth() != CV_8U || (image.channels() != 1 && image.channels() != 3) || image.empty())
    throw Error(code::kInternal, "encodePng: needs a non-empty CV_8UC1 or CV_8UC3 image");
  out.clear();
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, quietError, quietWarning);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  volatile bool ok = false;
  if (png && info && setjmp(png_jmpbuf(png)) == 0) {
    png_set_write_fn(png, &out, writeToVector, flushNothing);
    // OpenCV 4's PngEncoder defaults ("tune parameters for speed").
    png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_SUB);
    png_set_compression_level(png, Z_BEST_SPEED);
    png_set_compression_strategy(png, Z_RLE);
    png_set_IHDR(png, info, static_cast<png_uint_32>(image.cols), static_cast<png_uint_32>(image.rows), 8,
                 image.channels() == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_set_bgr(png);
    for (int y = 0; y < image.rows; ++y) png_write_row(png, image.ptr<uint8_t>(y));
    png_write_end(png, info);
    ok = true;
  }
  png_destroy_write_struct(png ? &png : nullptr, info ? &info : nullptr);
  if (!ok) throw Error(code::kIo, "PNG encoding failed");
}

}  // namespace anomalyncd::io
