#include "io/image_io.h"

#include <dlfcn.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <vector>

#include <opencv2/imgcodecs.hpp>  // the IMREAD_* flags only: imgcodecs is loaded lazily (below)
#include <opencv2/imgproc.hpp>

#include "common/error.h"
#include "common/limits.h"
#include "io/png_codec.h"

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

// cv::imdecode from anomalyncd_codecs.so (cpp/io/codecs/), loaded on first use:
// next to the binary holding this code (the .node), else where CMake built it.
using ImdecodeFn = int (*)(const unsigned char*, size_t, int, cv::Mat*, std::string*);

ImdecodeFn imdecodeFn() {
  static std::once_flag once;
  static ImdecodeFn fn = nullptr;
  static std::string failure;
  std::call_once(once, [] {
    std::vector<std::string> candidates;
    Dl_info self{};
    if (dladdr(reinterpret_cast<void*>(&imdecodeFn), &self) && self.dli_fname)
      candidates.push_back((fs::path(self.dli_fname).parent_path() / "anomalyncd_codecs.so").string());
#ifdef ANOMALYNCD_CODECS_PATH
    candidates.push_back(ANOMALYNCD_CODECS_PATH);
#endif
    for (const auto& file : candidates) {
      void* handle = dlopen(file.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!handle) {
        const char* e = dlerror();
        failure += std::string(failure.empty() ? "" : "; ") + (e ? e : file);
        continue;
      }
      fn = reinterpret_cast<ImdecodeFn>(dlsym(handle, "anomalyncd_imdecode"));
      if (fn) return;
      failure += "; " + file + " has no anomalyncd_imdecode";
    }
  });
  if (!fn)
    throw Error(code::kInternal, "OpenCV's image codecs (anomalyncd_codecs.so) could not be loaded: " + failure +
                                     ". Rebuild with `npx cmake-js compile`.");
  return fn;
}

// The size the header declares, against maxPixels, before anything is decoded (a tiny
// file may declare 100k x 100k); formats whose header we do not read are checked after
// OpenCV's decode (which refuses more than 2^30 pixels itself).
void checkDeclaredSize(const std::string& path, const std::vector<uint8_t>& bytes) {
  int64_t w = 0, h = 0;
  if (imageHeaderSize(bytes.data(), bytes.size(), &w, &h)) checkPixels(w, h, "'" + path + "'");
}

cv::Mat decode(const std::string& path, const std::vector<uint8_t>& bytes, int flags) {
  cv::Mat decoded;
  std::string error;
  if (imdecodeFn()(bytes.data(), bytes.size(), flags, &decoded, &error) < 0)
    throw Error(code::kBadInput, "Cannot decode '" + path + "': " + error);
  if (decoded.empty()) throw Error(code::kBadInput, "Cannot decode '" + path + "': not an image OpenCV can read");
  checkPixels(decoded.cols, decoded.rows, "'" + path + "'");
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
  checkDeclaredSize(path, bytes);
  cv::Mat map;
  if (!decodeGrayPng(bytes, map)) map = decode(path, bytes, cv::IMREAD_UNCHANGED);
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
  checkDeclaredSize(path, bytes);
  cv::Mat bgr = decode(path, bytes, cv::IMREAD_COLOR);
  cv::Mat rgb;
  cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
  return rgb;
}

namespace {
void writePng(const std::string& path, const cv::Mat& m) {
  thread_local std::vector<uint8_t> encoded;  // reused: keeps its capacity
  encodePng(m, encoded);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw Error(code::kIo, "Cannot write '" + path + "': " + std::strerror(errno));
  const bool written = std::fwrite(encoded.data(), 1, encoded.size(), f) == encoded.size();
  const int writeErr = written ? 0 : errno;
  if (std::fclose(f) != 0 || !written) {
    const int err = writeErr != 0 ? writeErr : errno;  // the reason (ENOSPC, EROFS, ...) in the message
    std::remove(path.c_str());                          // no partial file left
    throw Error(code::kIo, "Cannot write '" + path + "': " + std::strerror(err));
  }
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
