// The box arithmetic and the merge distance must round exactly like CPython
// floats; keep multiply-adds unfused (see pillow_resample.cc).
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "crop/crop.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <tuple>

#include <opencv2/imgproc.hpp>

#include "common/error.h"
#include "imgproc/pillow_resample.h"

namespace anomalyncd::crop {

bool operator==(const Box& a, const Box& b) {
  return a.left == b.left && a.top == b.top && a.right == b.right && a.bottom == b.bottom;
}
bool operator!=(const Box& a, const Box& b) { return !(a == b); }

namespace {

[[noreturn]] void invalid(const std::string& message) {
  throw Error(code::kInvalidArgument, message);
}

void requireGray8(const cv::Mat& m, const char* what) {
  if (m.empty()) invalid(std::string(what) + " is empty");
  if (m.type() != CV_8UC1) invalid(std::string(what) + " must be CV_8UC1");
}

// Python's int(x) on a float: truncation toward zero.
int64_t pyInt(double x) { return static_cast<int64_t>(std::trunc(x)); }

// Python's round(x) -> int: half to even (default FE_TONEAREST mode).
int64_t pyRound(double x) { return static_cast<int64_t>(std::nearbyint(x)); }

bool lexLess(const Box& a, const Box& b) {
  return std::tie(a.left, a.top, a.right, a.bottom) < std::tie(b.left, b.top, b.right, b.bottom);
}

double area(const Box& b) { return (b.right - b.left) * (b.bottom - b.top); }

// min_distance_of_rectangles() of the reference: boxes as (x, y, w, h) with
// float centres; -1 when they overlap on both axes.
double boxDistance(const Box& b1, const Box& b2) {
  const double w1 = b1.right - b1.left, h1 = b1.bottom - b1.top;
  const double w2 = b2.right - b2.left, h2 = b2.bottom - b2.top;
  const double c1x = b1.left + w1 / 2, c1y = b1.top + h1 / 2;
  const double c2x = b2.left + w2 / 2, c2y = b2.top + h2 / 2;
  const double dx = std::abs(c1x - c2x), dy = std::abs(c1y - c2y);
  const double sx = (w1 + w2) / 2, sy = (h1 + h2) / 2;
  if (dx < sx && dy >= sy) return dy - sy;
  if (dx >= sx && dy < sy) return dx - sx;
  if (dx >= sx && dy >= sy) {
    const double ex = dx - sx, ey = dy - sy;
    return std::sqrt(ex * ex + ey * ey);
  }
  return -1;
}

bool contains(const std::vector<Box>& list, const Box& b) {
  return std::find(list.begin(), list.end(), b) != list.end();
}

// list.remove(b): first occurrence by value.
void removeFirst(std::vector<Box>& list, const Box& b) {
  auto it = std::find(list.begin(), list.end(), b);
  if (it != list.end()) list.erase(it);
}

// set(a).issubset(set(b))
bool isSubset(const std::vector<Box>& a, const std::vector<Box>& b) {
  for (const Box& x : a) {
    if (!contains(b, x)) return false;
  }
  return true;
}

int imageSide(const cv::Mat& m) { return std::max({m.rows, m.cols, 3}); }

}  // namespace

cv::Mat resizeNearest(const cv::Mat& binaryAtMapRes, int H, int W) {
  requireGray8(binaryAtMapRes, "resizeNearest: binary map");
  if (H < 1 || W < 1) invalid("resizeNearest: target size must be >= 1");
  cv::Mat out;
  cv::resize(binaryAtMapRes, out, cv::Size(W, H), 0, 0, cv::INTER_NEAREST);
  return out.isContinuous() ? out : out.clone();
}

namespace {

// storageRoundTrip on a map we own (saves a full-size allocation).
void storageRoundTripInPlace(cv::Mat& map) {
  double lo = 0, hi = 0;
  cv::minMaxLoc(map, &lo, &hi);
  if (lo == hi) {  // matplotlib autoscale with vmin == vmax -> black
    map.setTo(0);
    return;
  }
  const auto loV = static_cast<uint8_t>(lo), hiV = static_cast<uint8_t>(hi);
  for (int y = 0; y < map.rows; ++y) {
    uint8_t* p = map.ptr<uint8_t>(y);
    for (int x = 0; x < map.cols; ++x) {
      if (p[x] == hiV) {
        p[x] = 255;
      } else if (p[x] == loV) {
        p[x] = 0;
      } else {
        invalid("storageRoundTrip: binary map has more than two distinct values");
      }
    }
  }
}

}  // namespace

cv::Mat storageRoundTrip(const cv::Mat& binaryFull) {
  requireGray8(binaryFull, "storageRoundTrip: binary map");
  cv::Mat out = binaryFull.clone();
  storageRoundTripInPlace(out);
  return out;
}

std::vector<Box> regionBoxes(const cv::Mat& binaryFull, const Options& options) {
  requireGray8(binaryFull, "regionBoxes: binary map");
  const int H = binaryFull.rows, W = binaryFull.cols;
  const int S = imageSide(binaryFull);

  std::vector<std::vector<cv::Point>> contours;
  cv::findContours(binaryFull, contours, cv::RETR_EXTERNAL, cv::CHAIN_APPROX_SIMPLE);
  if (contours.empty()) return {Box{0, 0, static_cast<double>(W), static_cast<double>(H)}};

  struct Rect {
    int64_t area;
    int x, y, w, h;
  };
  std::vector<Rect> rects;
  rects.reserve(contours.size());
  for (const auto& c : contours) {
    const cv::Rect r = cv::boundingRect(c);
    rects.push_back({static_cast<int64_t>(r.width) * r.height, r.x, r.y, r.width, r.height});
  }
  // Python sorts (area, [x, y, w, h]) tuples lexicographically.
  std::sort(rects.begin(), rects.end(), [](const Rect& a, const Rect& b) {
    return std::tie(a.area, a.x, a.y, a.w, a.h) < std::tie(b.area, b.x, b.y, b.w, b.h);
  });

  const int64_t minRadius = pyInt(S * options.minCropSize);
  const int64_t maxRadius = pyInt(S * 0.5);
  std::vector<Box> boxes;
  boxes.reserve(rects.size());
  for (const Rect& r : rects) {
    const int64_t cy = pyInt(static_cast<double>(2 * static_cast<int64_t>(r.y) + r.h) * 0.5);
    const int64_t cx = pyInt(static_cast<double>(2 * static_cast<int64_t>(r.x) + r.w) * 0.5);
    const int64_t side = std::max(r.w, r.h);
    int64_t radius = std::max(pyInt(side * (1 + options.padding) * 0.5), minRadius);
    radius = std::min(radius, maxRadius);
    int64_t left = cx - radius, top = cy - radius, right = cx + radius, bottom = cy + radius;
    // One-sided correction per axis (if / elif), so a box wider than a short
    // image side still sticks out on the other side.
    if (left < 0) {
      left = 0;
      right = 2 * radius;
    } else if (right > W) {
      left = W - 2 * radius;
      right = W;
    }
    if (top < 0) {
      top = 0;
      bottom = 2 * radius;
    } else if (bottom > H) {
      top = H - 2 * radius;
      bottom = H;
    }
    boxes.push_back({static_cast<double>(left), static_cast<double>(top),
                     static_cast<double>(right), static_cast<double>(bottom)});
  }
  return boxes;
}

std::vector<Box> mergeBoxes(const std::vector<Box>& boxes, int S, const Options& options) {
  const double threshold = static_cast<double>(pyInt(S * options.maxMergeDist));
  std::vector<Box> list = boxes;

  // 1-2. One neighbourhood per distinct box (first-appearance order), sorted,
  // each distinct non-empty group kept once.
  std::vector<Box> distinct;
  std::vector<std::vector<Box>> groups;
  for (const Box& b1 : list) {
    if (contains(distinct, b1)) continue;
    distinct.push_back(b1);
    std::vector<Box> group;
    for (const Box& b2 : list) {
      if (boxDistance(b1, b2) < threshold) group.push_back(b2);
    }
    std::stable_sort(group.begin(), group.end(), lexLess);
    if (!group.empty() && std::find(groups.begin(), groups.end(), group) == groups.end()) {
      groups.push_back(std::move(group));
    }
  }

  // 3. Drop groups that are subsets of a different group.
  std::vector<std::vector<Box>> toRemove;
  for (const auto& g1 : groups) {
    for (const auto& g2 : groups) {
      if (g1 != g2 && isSubset(g1, g2)) toRemove.push_back(g1);
    }
  }
  for (const auto& g : toRemove) {
    auto it = std::find(groups.begin(), groups.end(), g);
    if (it != groups.end()) groups.erase(it);
  }

  // 4. Replace each group's members by their squarified union.
  for (const auto& group : groups) {
    for (const Box& member : group) removeFirst(list, member);
    Box merged = group[0];
    for (size_t i = 1; i < group.size(); ++i) {
      const Box& other = group[i];
      merged = {std::min(merged.left, other.left), std::min(merged.top, other.top),
                std::max(merged.right, other.right), std::max(merged.bottom, other.bottom)};
      const double width = merged.right - merged.left;
      const double height = merged.bottom - merged.top;
      if (width > height) {
        const double difference = (width - height) / 2;
        merged.top -= difference;
        merged.bottom += difference;
      } else if (width < height) {
        const double difference = (height - width) / 2;
        merged.left -= difference;
        merged.right += difference;
      }
    }
    list.push_back(merged);
  }

  // 5. Python's sorted(..., reverse=True) is stable.
  std::stable_sort(list.begin(), list.end(),
                   [](const Box& a, const Box& b) { return area(a) > area(b); });
  return list;
}

std::vector<Box> keepMain(const std::vector<Box>& merged, int est) {
  if (est < 0) invalid("keepMain: est must be >= 0");
  std::vector<Box> kept = merged;
  if (kept.size() > static_cast<size_t>(est)) kept.resize(static_cast<size_t>(est) + 1);
  return kept;
}

namespace {

struct PixelWindow {
  int64_t x0, y0, x1, y1;  // rounded crop rectangle in image coordinates
  int64_t width() const { return std::max<int64_t>(0, x1 - x0); }
  int64_t height() const { return std::max<int64_t>(0, y1 - y0); }
};

PixelWindow roundBox(const Box& b) {
  return {pyRound(b.left), pyRound(b.top), pyRound(b.right), pyRound(b.bottom)};
}

}  // namespace

cv::Mat cropZeroFill(const cv::Mat& src, const Box& box) {
  const PixelWindow w = roundBox(box);
  const int64_t limit = std::numeric_limits<int>::max() / 4;
  if (w.width() > limit || w.height() > limit) invalid("cropZeroFill: crop box too large");
  cv::Mat out = cv::Mat::zeros(static_cast<int>(w.height()), static_cast<int>(w.width()),
                               src.type());
  const int64_t ix0 = std::max<int64_t>(w.x0, 0), iy0 = std::max<int64_t>(w.y0, 0);
  const int64_t ix1 = std::min<int64_t>(w.x1, src.cols), iy1 = std::min<int64_t>(w.y1, src.rows);
  if (ix1 > ix0 && iy1 > iy0) {
    const cv::Rect from(static_cast<int>(ix0), static_cast<int>(iy0), static_cast<int>(ix1 - ix0),
                        static_cast<int>(iy1 - iy0));
    const cv::Rect to(static_cast<int>(ix0 - w.x0), static_cast<int>(iy0 - w.y0), from.width,
                      from.height);
    src(from).copyTo(out(to));
  }
  return out;
}

cv::Mat scoreMapAtImageRes(const cv::Mat& rawMap, int minTh, int maxTh, int H, int W) {
  requireGray8(rawMap, "scoreMapAtImageRes: anomaly map");
  if (minTh < 0 || maxTh > 255 || minTh > maxTh) {
    invalid("scoreMapAtImageRes: need 0 <= minTh <= maxTh <= 255 (got " + std::to_string(minTh) +
            ", " + std::to_string(maxTh) + ")");
  }
  if (H < 1 || W < 1) invalid("scoreMapAtImageRes: target size must be >= 1");
  // n = ((a - minTh) / d) * 255 in double, then float32 (Image.fromarray of a
  // float64 array). d == 0 reproduces NumPy's 0/0 = NaN and x/0 = inf.
  float lut[256];
  const double d = static_cast<double>(maxTh - minTh);
  for (int a = 0; a < 256; ++a) {
    lut[a] = a < minTh ? 0.0f : static_cast<float>((static_cast<double>(a - minTh) / d) * 255);
  }
  const int mh = rawMap.rows, mw = rawMap.cols;
  std::vector<float> norm(static_cast<size_t>(mh) * mw);
  for (int y = 0; y < mh; ++y) {
    const uint8_t* in = rawMap.ptr<uint8_t>(y);
    for (int x = 0; x < mw; ++x) norm[static_cast<size_t>(y) * mw + x] = lut[in[x]];
  }
  cv::Mat out(H, W, CV_32FC1);
  imgproc::resizeBicubicF32Into(norm.data(), mh, mw, H, W, out.ptr<float>(0));
  return out;
}

namespace {

// np.max(np.array(resized.crop(box))): zero fill outside, NaN propagates.
float cropMax(const cv::Mat& scoreMap, const Box& box) {
  const PixelWindow w = roundBox(box);
  if (w.width() == 0 || w.height() == 0) {
    // The reference dies here (np.max of an empty array); only possible for
    // images under 10 px whose contour is a single pixel.
    invalid("cropRegions: zero-size crop box (image too small)");
  }
  const int64_t ix0 = std::max<int64_t>(w.x0, 0), iy0 = std::max<int64_t>(w.y0, 0);
  const int64_t ix1 = std::min<int64_t>(w.x1, scoreMap.cols);
  const int64_t iy1 = std::min<int64_t>(w.y1, scoreMap.rows);
  const bool fullyInside = w.x0 >= 0 && w.y0 >= 0 && w.x1 <= scoreMap.cols && w.y1 <= scoreMap.rows;
  float best = -std::numeric_limits<float>::infinity();
  if (!fullyInside) best = 0.0f;
  for (int64_t y = iy0; y < iy1; ++y) {
    const float* row = scoreMap.ptr<float>(static_cast<int>(y));
    for (int64_t x = ix0; x < ix1; ++x) {
      const float v = row[x];
      if (std::isnan(v)) return v;
      if (v > best) best = v;
    }
  }
  return best;
}

}  // namespace

void validateOptions(const Options& options) {
  auto within = [](double v, double lo, double hi) { return std::isfinite(v) && v >= lo && v <= hi; };
  if (!within(options.padding, 0, 100)) invalid("crop: padding must be in 0..100, got " + std::to_string(options.padding));
  if (!within(options.maxMergeDist, 0, 1))
    invalid("crop: maxMergeDist must be in 0..1, got " + std::to_string(options.maxMergeDist));
  if (!within(options.minCropSize, 0, 0.5))
    invalid("crop: minCropSize must be in 0..0.5, got " + std::to_string(options.minCropSize));
}

Regions cropRegions(const cv::Mat& image, const cv::Mat& binaryAtMapRes, const cv::Mat& rawMap,
                    int minTh, int maxTh, int est, const Options& options) {
  if (image.empty()) invalid("cropRegions: image is empty");
  if (image.depth() != CV_8U || image.channels() > 4) {
    invalid("cropRegions: image must be 8-bit with 1..4 channels");
  }
  requireGray8(binaryAtMapRes, "cropRegions: binary map");
  requireGray8(rawMap, "cropRegions: anomaly map");
  if (est < 0) invalid("cropRegions: est must be >= 0");
  const int H = image.rows, W = image.cols;

  // Binary map -> image size (cv2 nearest) -> matplotlib/PNG round trip.
  cv::Mat binaryFull = resizeNearest(binaryAtMapRes, H, W);
  if (binaryFull.data == binaryAtMapRes.data) binaryFull = binaryFull.clone();  // never edit the input
  storageRoundTripInPlace(binaryFull);

  const std::vector<Box> boxes =
      keepMain(mergeBoxes(regionBoxes(binaryFull, options), imageSide(image), options), est);

  const cv::Mat scoreMap = scoreMapAtImageRes(rawMap, minTh, maxTh, H, W);

  Regions result;
  result.boxes = boxes;
  result.crops.reserve(boxes.size());
  for (const Box& box : boxes) {
    Crop c;
    c.box = box;
    const float maxValue = cropMax(scoreMap, box);
    c.image = cropZeroFill(image, box);
    c.mask = cropZeroFill(binaryFull, box);
    c.maskArea = cv::countNonZero(c.mask);
    c.score = maxValue / 255.0f;
    c.scoreF64 = static_cast<double>(maxValue) / 255.0;
    result.crops.push_back(std::move(c));
  }
  return result;
}

}  // namespace anomalyncd::crop
