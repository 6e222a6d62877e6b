#include "crop/descriptor.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include <opencv2/imgproc.hpp>

#include "common/error.h"

namespace anomalyncd::crop {
namespace {

// V8's Math.hypot for two arguments (Kahan-compensated sum of squares scaled by the
// larger magnitude), so the gradient plane matches the TypeScript oracle's.
double hypotV8(double a, double b) {
  const double fa = std::fabs(a), fb = std::fabs(b);
  const double max = std::max(fa, fb);
  if (max == 0) return 0;
  double sum = 0, compensation = 0;
  for (const double v : {fa, fb}) {
    const double r = v / max;
    const double summand = r * r - compensation;
    const double preliminary = sum + summand;
    compensation = (preliminary - sum) - summand;
    sum = preliminary;
  }
  return std::sqrt(sum) * max;
}

// Half-width of the ring around the mask: max(2, min(15, round(sqrt(A) / 4))).
int ringRadius(int64_t area) {
  return static_cast<int>(std::max(2.0, std::min(15.0, std::round(std::sqrt(static_cast<double>(area)) / 4))));
}

// The ring around the mask: its square (Chebyshev) dilation by r. Pixels outside the crop
// do not count (OpenCV's default dilation border), as in the oracle.
cv::Mat dilateSquare(const cv::Mat& m, int r) {
  cv::Mat out;
  cv::dilate(m, out, cv::getStructuringElement(cv::MORPH_RECT, cv::Size(2 * r + 1, 2 * r + 1)));
  return out;
}

// Area of the convex hull of the mask's pixel squares: the hull of each row's extreme
// corners (integer coordinates, so the area is exact).
double hullArea(const cv::Mat& m) {
  std::vector<cv::Point> pts;
  for (int y = 0; y < m.rows; ++y) {
    const uint8_t* row = m.ptr<uint8_t>(y);
    int lo = -1, hi = -1;
    for (int x = 0; x < m.cols; ++x)
      if (row[x]) {
        if (lo < 0) lo = x;
        hi = x;
      }
    if (lo < 0) continue;
    pts.insert(pts.end(), {{lo, y}, {lo, y + 1}, {hi + 1, y}, {hi + 1, y + 1}});
  }
  std::vector<cv::Point> hull;
  cv::convexHull(pts, hull);
  return cv::contourArea(hull);
}

struct Stats {
  double mean = 0, std = 0, grad = 0;
  int64_t count = 0;
};

template <class Sel>
Stats stats(const std::vector<float>& g, const std::vector<float>& grad, Sel sel) {
  double s = 0, s2 = 0, sg = 0;
  int64_t k = 0;
  for (size_t i = 0; i < g.size(); ++i)
    if (sel(i)) {
      const double v = g[i];
      s += v;
      s2 += v * v;
      sg += grad[i];
      ++k;
    }
  if (k == 0) return {};
  const double mean = s / static_cast<double>(k);
  return {mean, std::sqrt(std::max(0.0, s2 / static_cast<double>(k) - mean * mean)), sg / static_cast<double>(k), k};
}

// Per-thread planes, kept between crops: fresh large vectors per crop cost more in page
// faults than the descriptor's arithmetic.
struct Workspace {
  std::vector<float> g, grad, padded;
  std::vector<uint8_t> m;
};

}  // namespace

Descriptor regionDescriptor(const cv::Mat& image, const cv::Mat& mask) {
  if (image.empty() || mask.empty() || image.depth() != CV_8U || mask.type() != CV_8UC1 ||
      (image.channels() != 1 && image.channels() != 3) || image.rows != mask.rows || image.cols != mask.cols)
    throw Error(code::kInvalidArgument, "regionDescriptor() needs an h x w uint8 image (1 or 3 channels) and an h x w uint8 mask");
  const int h = image.rows, w = image.cols, c = image.channels();
  const size_t n = static_cast<size_t>(h) * w;
  thread_local Workspace ws;
  std::vector<float>& g = ws.g;
  std::vector<uint8_t>& m = ws.m;
  g.resize(n);
  m.assign(n, 0);
  int64_t A = 0;
  for (int y = 0; y < h; ++y) {
    const uint8_t* px = image.ptr<uint8_t>(y);
    const uint8_t* md = mask.ptr<uint8_t>(y);
    for (int x = 0; x < w; ++x) {
      const size_t i = static_cast<size_t>(y) * w + x;
      g[i] = static_cast<float>(c == 3 ? (0.299 * px[3 * x] + 0.587 * px[3 * x + 1] + 0.114 * px[3 * x + 2]) / 255
                                       : px[x] / 255.0);
      if (md[x]) {
        m[i] = 1;
        ++A;
      }
    }
  }
  // Sobel gradient magnitude (replicated border): the gray plane padded by one replicated
  // pixel, so the loop needs no clamping (same values, same order of operations).
  const int pw = w + 2;
  std::vector<float>& pad = ws.padded;
  pad.resize(static_cast<size_t>(h + 2) * pw);
  for (int y = -1; y <= h; ++y) {
    const float* src = &g[static_cast<size_t>(std::min(h - 1, std::max(0, y))) * w];
    float* dst = &pad[static_cast<size_t>(y + 1) * pw];
    dst[0] = src[0];
    std::copy(src, src + w, dst + 1);
    dst[w + 1] = src[w - 1];
  }
  std::vector<float>& grad = ws.grad;
  grad.resize(n);
  for (int y = 0; y < h; ++y) {
    const float* up = &pad[static_cast<size_t>(y) * pw + 1];
    const float* mid = up + pw;
    const float* dn = mid + pw;
    for (int x = 0; x < w; ++x) {
      const double gx = double(up[x + 1]) + 2 * double(mid[x + 1]) + double(dn[x + 1]) - double(up[x - 1]) - 2 * double(mid[x - 1]) - double(dn[x - 1]);
      const double gy = double(dn[x - 1]) + 2 * double(dn[x]) + double(dn[x + 1]) - double(up[x - 1]) - 2 * double(up[x]) - double(up[x + 1]);
      grad[static_cast<size_t>(y) * w + x] = static_cast<float>(hypotV8(gx, gy) / 8);
    }
  }
  Descriptor d{};
  if (A == 0) {
    const Stats all = stats(g, grad, [](size_t) { return true; });
    d = {0, 0, 0, 0, 0, 0, 0, all.mean, all.std, all.mean, all.std, 0, all.grad, all.grad, 0, 0, 1};
    return d;
  }
  // Shape: boundary edges, moments, bounding box.
  double P = 0, sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
  int x0 = w, x1 = -1, y0 = h, y1 = -1;
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const size_t i = static_cast<size_t>(y) * w + x;
      if (!m[i]) continue;
      if (x == 0 || !m[i - 1]) ++P;
      if (x == w - 1 || !m[i + 1]) ++P;
      if (y == 0 || !m[i - w]) ++P;
      if (y == h - 1 || !m[i + w]) ++P;
      sx += x;
      sy += y;
      sxx += static_cast<double>(x) * x;
      syy += static_cast<double>(y) * y;
      sxy += static_cast<double>(x) * y;
      x0 = std::min(x0, x);
      x1 = std::max(x1, x);
      y0 = std::min(y0, y);
      y1 = std::max(y1, y);
    }
  const double a = static_cast<double>(A);
  const double mx = sx / a, my = sy / a;
  // + 1/12: the second moment of a unit pixel square, so a single pixel is round.
  const double cxx = sxx / a - mx * mx + 1.0 / 12, cyy = syy / a - my * my + 1.0 / 12, cxy = sxy / a - mx * my;
  const double tr = cxx + cyy, half = (cxx - cyy) / 2,
               disc = std::sqrt(std::max(0.0, half * half + cxy * cxy));
  const double l1 = tr / 2 + disc, l2 = std::max(1e-12, tr / 2 - disc);
  const cv::Mat mask01(h, w, CV_8UC1, m.data());
  const cv::Mat ringMat = dilateSquare(mask01, ringRadius(A));
  cv::Mat labels;  // 8-connected components, as MEBin counts them
  const uint8_t* ring = ringMat.ptr<uint8_t>();
  const Stats inside = stats(g, grad, [&](size_t i) { return m[i] == 1; });
  Stats outside = stats(g, grad, [&](size_t i) { return ring[i] == 1 && m[i] == 0; });
  if (outside.count == 0) outside = inside;  // the mask fills the crop
  double dark = 0, bright = 0;
  for (size_t i = 0; i < n; ++i)
    if (m[i]) {
      if (g[i] < outside.mean - outside.std) ++dark;
      else if (g[i] > outside.mean + outside.std) ++bright;
    }
  d = {std::log1p(a),
       std::log((P * P) / (4 * M_PI * a)),
       0.5 * std::log(l1 / l2),
       std::log((2 * a) / P),
       a / (static_cast<double>(x1 - x0 + 1) * (y1 - y0 + 1)),
       std::min(1.0, a / std::max(1.0, hullArea(mask01))),
       std::log(static_cast<double>(cv::connectedComponents(mask01, labels, 8, CV_32S) - 1)),
       inside.mean,
       inside.std,
       outside.mean,
       outside.std,
       (inside.mean - outside.mean) / (outside.std + 0.02),
       inside.grad,
       outside.grad,
       dark / a,
       bright / a,
       0};
  return d;
}

}  // namespace anomalyncd::crop
