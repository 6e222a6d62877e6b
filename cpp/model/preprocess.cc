#include "model/preprocess.h"

#include <string>
#include <vector>

#include "common/error.h"
#include "imgproc/pillow_resample.h"

namespace anomalyncd::model {

std::pair<int, int> shortSideResizeSize(int h, int w) {
  if (h < 1 || w < 1)
    throw Error(code::kInvalidArgument,
                "preprocess: image size must be positive (got " + std::to_string(h) + "x" + std::to_string(w) + ")");
  const int s = kResizeShortSide;
  // torchvision (PIL path): skip if the short side already equals the target
  if ((w <= h && w == s) || (h <= w && h == s)) return {h, w};
  int64_t oh, ow;
  if (w < h) {
    ow = s;
    oh = static_cast<int64_t>(static_cast<double>(int64_t(s) * h) / static_cast<double>(w));  // int(256*h/w)
  } else {
    oh = s;
    ow = static_cast<int64_t>(static_cast<double>(int64_t(s) * w) / static_cast<double>(h));  // int(256*w/h)
  }
  if (oh * ow > (int64_t(1) << 26))
    throw Error(code::kInvalidArgument, "preprocess: aspect ratio of a " + std::to_string(h) + "x" +
                                            std::to_string(w) + " image is too extreme (resized image " +
                                            std::to_string(oh) + "x" + std::to_string(ow) + ")");
  return {static_cast<int>(oh), static_cast<int>(ow)};
}

void preprocess(const uint8_t* rgb, const uint8_t* mask, int h, int w, float* outImage, float* outMask) {
  if (!rgb || !outImage || (mask && !outMask))
    throw Error(code::kInvalidArgument, "preprocess: null buffer");
  const auto [rh, rw] = shortSideResizeSize(h, w);
  if (rh < kCropOffset + kCropSize || rw < kCropOffset + kCropSize)
    throw Error(code::kInvalidArgument, "preprocess: resized image " + std::to_string(rh) + "x" +
                                            std::to_string(rw) + " is too small for the 224 crop at (16, 16)");
  const bool resize = !(rh == h && rw == w);
  std::vector<uint8_t> img, msk;
  const uint8_t* ip = rgb;
  const uint8_t* mp = mask;
  if (resize) {
    img = imgproc::resizeBilinearU8(rgb, h, w, 3, rh, rw);
    ip = img.data();
    if (mask) {
      msk = imgproc::resizeBilinearU8(mask, h, w, 1, rh, rw);
      mp = msk.data();
    }
  }
  const int plane = kCropSize * kCropSize;
  for (int y = 0; y < kCropSize; ++y) {
    const uint8_t* row = ip + (static_cast<size_t>(y + kCropOffset) * rw + kCropOffset) * 3;
    for (int x = 0; x < kCropSize; ++x) {
      for (int c = 0; c < 3; ++c) {
        const float v = static_cast<float>(row[x * 3 + c]) / 255.0f;  // ToTensor (float32)
        outImage[c * plane + y * kCropSize + x] = (v - kImageNetMean[c]) / kImageNetStd[c];  // Normalize
      }
    }
  }
  if (mask) {
    for (int y = 0; y < kCropSize; ++y) {
      const uint8_t* row = mp + static_cast<size_t>(y + kCropOffset) * rw + kCropOffset;
      for (int x = 0; x < kCropSize; ++x) outMask[y * kCropSize + x] = static_cast<float>(row[x]) / 255.0f;
    }
  }
}

}  // namespace anomalyncd::model
