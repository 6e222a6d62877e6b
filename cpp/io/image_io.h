// File decoding and encoding with OpenCV, as the reference does it (T30:
// OpenCV/libjpeg-turbo decode, so pixels match the reference bit for bit).
#pragma once
#include <opencv2/core.hpp>
#include <cstdint>
#include <string>

namespace anomalyncd::io {

// An 8-bit single-channel anomaly map. Colour, 16-bit, empty, unreadable or
// truncated files throw Error(ERR_BAD_INPUT / ERR_IO) naming the file.
cv::Mat readMapU8(const std::string& path);

// An image as RGB uint8 (grayscale files get three equal channels, as
// cv2.imread(IMREAD_COLOR) gives the reference).
cv::Mat readImageRGB(const std::string& path);

// An image to decode: a file, or caller memory (H x W x C uint8, C in {1, 3},
// row-major; not owned, so it must outlive the decoded Mat).
struct ImageSource {
  std::string path;               // set for files
  const uint8_t* data = nullptr;  // set for in-memory images
  int height = 0, width = 0, channels = 0;
};

// RGB uint8 as the reference's OpenCV decode gives it: files through
// readImageRGB, RGB memory wrapped without a copy, grey memory replicated to
// three channels.
cv::Mat loadImageRGB(const ImageSource& source);

// Lossless PNG; `rgb` is converted to OpenCV's BGR order for writing. The
// encoded bytes go through a per-thread buffer that is reused from one file to
// the next (batch writers would otherwise fault a fresh one in every time).
void writePngRGB(const std::string& path, const cv::Mat& rgb);
void writePngGray(const std::string& path, const cv::Mat& gray);

// Throws ERR_IO/ERR_BAD_INPUT when `path` is missing, empty, or a PNG/JPEG
// whose end marker is missing (OpenCV only warns on truncated files and
// returns a partly grey image, which would silently corrupt results).
void checkImageFile(const std::string& path);

}  // namespace anomalyncd::io
