// Anomaly-centred cropping (METHOD.md §2.6 + 3): binary map -> square boxes ->
// merged boxes -> the est+1 largest -> zero-padded crops, masks and scores.
// Reproduces the official Python (OpenCV + Pillow + NumPy 1.24) bit for bit;
// OpenCV is used wherever the reference uses it.
#pragma once
#include <cstdint>
#include <type_traits>
#include <vector>

#include <opencv2/core.hpp>

namespace anomalyncd::crop {

// (left, top, right, bottom); right/bottom exclusive. Coordinates may be
// x.5 (or finer) after merging and may lie outside the image.
struct Box {
  double left, top, right, bottom;
};
bool operator==(const Box& a, const Box& b);
bool operator!=(const Box& a, const Box& b);

// The reference's hard-coded defaults (crop_sub_image_mask keyword defaults).
struct Options {
  double padding = 0.1;       // box half-side = trunc(max(w,h) * (1+padding) * 0.5)
  double maxMergeDist = 0.01; // merge distance D = trunc(S * maxMergeDist)
  double minCropSize = 0.1;   // minimum half-side = trunc(S * minCropSize)
};

// The one field list of Options: the binding reads and writes it through this
// (binding/fields.h); ts/stages/regions.ts holds the matching table with the defaults.
template <class O, class V>
std::enable_if_t<std::is_same_v<std::remove_const_t<O>, Options>> visitFields(O& o, V&& v) {
  v("padding", o.padding);
  v("maxMergeDist", o.maxMergeDist);
  v("minCropSize", o.minCropSize);
}

// padding in 0..100, maxMergeDist in 0..1, minCropSize in 0..0.5, all finite
// (throws Error(kInvalidArgument)).
void validateOptions(const Options& options);

// cv::resize(..., INTER_NEAREST) to H x W (METHOD.md T8). Input CV_8UC1.
cv::Mat resizeNearest(const cv::Mat& binaryAtMapRes, int H, int W);

// Effect of the matplotlib imsave(cmap='gray') + cv2.imread + BGR2GRAY
// round trip on a full-resolution binary map (METHOD.md §2.6): autoscaled to the
// map's own min/max, so {lo, hi} -> {0, 255} and a constant map -> all 0
// (an all-255 map becomes empty). Maps with more than two distinct values are
// rejected (the reference only ever stores binary maps).
cv::Mat storageRoundTrip(const cv::Mat& binaryFull);

// METHOD.md §3.1: external contours (8-connected) -> bounding rects -> sorted by
// (area, x, y, w, h) -> padded square boxes with one-sided clamping. No
// contours -> the whole image (0, 0, W, H). S = max(H, W, 3) like the
// reference's max(image.shape) of an RGB image.
std::vector<Box> regionBoxes(const cv::Mat& binaryFull, const Options& options = {});

// METHOD.md §3.2, literally: neighbourhood groups (not a transitive closure),
// subset pruning, removal by value, squarify after each union, stable sort by
// area descending. `S` = max(H, W, 3).
std::vector<Box> mergeBoxes(const std::vector<Box>& boxes, int S, const Options& options = {});

// METHOD.md §3.3: more than est boxes -> keep the first est + 1.
std::vector<Box> keepMain(const std::vector<Box>& merged, int est);

// Pillow Image.crop: coordinates rounded half-to-even, outside = 0. Returns an
// owning, contiguous Mat of src's type (possibly 0 rows/cols).
cv::Mat cropZeroFill(const cv::Mat& src, const Box& box);

// METHOD.md §2.2 + 3.4: normalised map (float64 maths, stored float32) resized with
// Pillow "F" bicubic to H x W. CV_32FC1. maxTh == minTh gives NaN where
// a == minTh and +inf where a > minTh, like the reference's 0/0 and x/0.
cv::Mat scoreMapAtImageRes(const cv::Mat& rawMap, int minTh, int maxTh, int H, int W);

struct Crop {
  Box box;
  cv::Mat image;    // crop of the input image (same type), zero outside
  cv::Mat mask;     // CV_8UC1 0/255 crop of the round-tripped binary map
  int64_t maskArea; // number of 255 pixels in `mask`
  float score;      // max of the score map inside the box (0 outside) / 255
  double scoreF64;  // the reference's Python value: double(float32 max) / 255.0
};

struct Regions {
  std::vector<Box> boxes;  // the kept boxes, largest first (= crops[i].box)
  std::vector<Crop> crops;
};

// The cropping step for one image (MEBin already done; pipeline::extractRegions
// runs both over a set). image: H x W, CV_8U with 1..4 channels (RGB
// in the pipeline); binaryAtMapRes: CV_8UC1 0/255 MEBin output at map
// resolution; rawMap: CV_8UC1 raw anomaly map (map resolution); minTh/maxTh:
// category range (0 <= minTh <= maxTh <= 255); est >= 0 from MEBin.
Regions cropRegions(const cv::Mat& image, const cv::Mat& binaryAtMapRes, const cv::Mat& rawMap,
                    int minTh, int maxTh, int est, const Options& options = {});

}  // namespace anomalyncd::crop
