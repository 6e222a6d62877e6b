#include "io/image_io.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "common/error.h"

namespace anomalyncd::io {
namespace fs = std::filesystem;

namespace {

std::vector<uint8_t> readAll(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw Error(code::kIo, "Cannot read '" + path + "': no such file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(code::kIo, "Cannot open '" + path + "' for reading");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.empty()) throw Error(code::kBadInput, "'" + path + "' is empty (0 bytes)");
  return bytes;
}

bool isPng(const std::vector<uint8_t>& b) {
  static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  return b.size() >= 8 && std::equal(sig, sig + 8, b.begin());
}

bool isJpeg(const std::vector<uint8_t>& b) { return b.size() >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF; }

void checkComplete(const std::string& path, const std::vector<uint8_t>& b) {
  if (isPng(b)) {
    static const uint8_t iend[8] = {0, 0, 0, 0, 'I', 'E', 'N', 'D'};
    if (b.size() < 20 || !std::equal(iend, iend + 8, b.end() - 12))
      throw Error(code::kBadInput, "'" + path + "' is a truncated PNG (no IEND chunk at the end)");
  } else if (isJpeg(b)) {
    // Encoders may pad after EOI; look for it near the end.
    const size_t from = b.size() > 1024 ? b.size() - 1024 : 0;
    bool found = false;
    for (size_t i = b.size() - 1; i > from; --i)
      if (b[i - 1] == 0xFF && b[i] == 0xD9) { found = true; break; }
    if (!found) throw Error(code::kBadInput, "'" + path + "' is a truncated JPEG (no end-of-image marker)");
  }
}

cv::Mat decode(const std::string& path, const std::vector<uint8_t>& bytes, int flags) {
  cv::Mat decoded;
  try {
    decoded = cv::imdecode(cv::Mat(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<uint8_t*>(bytes.data())), flags);
  } catch (const cv::Exception& e) {
    throw Error(code::kBadInput, "Cannot decode '" + path + "': " + e.msg);
  }
  if (decoded.empty()) throw Error(code::kBadInput, "Cannot decode '" + path + "': not an image OpenCV can read");
  return decoded;
}

}  // namespace

cv::Mat loadImageRGB(const ImageSource& s) {
  if (!s.path.empty()) return readImageRGB(s.path);
  cv::Mat view(s.height, s.width, CV_8UC(s.channels), const_cast<uint8_t*>(s.data));
  if (s.channels == 3) return view;
  cv::Mat rgb;
  cv::cvtColor(view, rgb, cv::COLOR_GRAY2RGB);
  return rgb;
}

void checkImageFile(const std::string& path) { checkComplete(path, readAll(path)); }

cv::Mat readMapU8(const std::string& path) {
  const auto bytes = readAll(path);
  checkComplete(path, bytes);
  cv::Mat map = decode(path, bytes, cv::IMREAD_UNCHANGED);
  if (map.depth() != CV_8U)
    throw Error(code::kBadInput, "Anomaly map '" + path + "' has " + std::to_string(map.elemSize1() * 8) +
                                     "-bit samples; expected an 8-bit grayscale image");
  if (map.channels() != 1)
    throw Error(code::kBadInput, "Anomaly map '" + path + "' has " + std::to_string(map.channels()) +
                                     " channels; expected an 8-bit single-channel (grayscale) image, not a colour map");
  return map;
}

cv::Mat readImageRGB(const std::string& path) {
  const auto bytes = readAll(path);
  checkComplete(path, bytes);
  cv::Mat bgr = decode(path, bytes, cv::IMREAD_COLOR);
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

namespace {
void writePng(const std::string& path, const cv::Mat& m) {
  thread_local std::vector<uchar> encoded;
  encoded.clear();  // keeps its capacity
  bool ok = false;
  try {
    ok = cv::imencode(".png", m, encoded);
  } catch (const cv::Exception& e) {
    throw Error(code::kIo, "Cannot write '" + path + "': " + e.msg);
  }
  if (!ok) throw Error(code::kIo, "Cannot write '" + path + "'");
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw Error(code::kIo, "Cannot write '" + path + "'");
  const bool written = std::fwrite(encoded.data(), 1, encoded.size(), f) == encoded.size();
  if (std::fclose(f) != 0 || !written) throw Error(code::kIo, "Cannot write '" + path + "'");
}
}  // namespace

void writePngRGB(const std::string& path, const cv::Mat& rgb) {
  if (rgb.channels() == 1) return writePng(path, rgb);
  cv::Mat bgr;
  cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
  writePng(path, bgr);
}

void writePngGray(const std::string& path, const cv::Mat& gray) { writePng(path, gray); }

}  // namespace anomalyncd::io
