// anomalyncd_codecs.so: OpenCV's imgcodecs behind one C entry point, dlopen-ed
// by cpp/io/image_io.cc on the first image it decodes. Linking imgcodecs into
// the addons would load GDAL, poppler and ~100 more libraries (Debian's build)
// at start-up, which the MEBin path (PNG maps through libpng) never needs.
#include <opencv2/imgcodecs.hpp>

#include <string>

// 1: decoded (out may be empty: not an image OpenCV can read); -1: cv::Exception (message in *error).
extern "C" __attribute__((visibility("default"))) int anomalyncd_imdecode(const unsigned char* data, size_t size, int flags,
                                                                          cv::Mat* out, std::string* error) {
  try {
    *out = cv::imdecode(cv::Mat(1, static_cast<int>(size), CV_8UC1, const_cast<unsigned char*>(data)), flags);
    return 1;
  } catch (const cv::Exception& e) {
    *error = e.msg;
    return -1;
  }
}
