// Region descriptors (issue 11): 17 label-free measurements of a crop's mask and
// pixels — shape (size, compactness, elongation, thickness, extent, solidity,
// components) and appearance (gray level and Sobel gradient inside the mask and in
// a ring around it, contrast, dark / bright fractions), plus an empty-mask flag.
// The fast path of ts/analysis/descriptors.ts `regionDescriptor`, which stays as
// the oracle (test/62 compares them); same order of operations, float32 gray and
// gradient planes, V8's hypot, so the two agree to the last few ulps.
#pragma once
#include <array>

#include <opencv2/core.hpp>

namespace anomalyncd::crop {

constexpr int kDescriptorDim = 17;
using Descriptor = std::array<double, kDescriptorDim>;

// image: h x w CV_8UC3 (RGB) or CV_8UC1; mask: h x w CV_8UC1, foreground = nonzero.
Descriptor regionDescriptor(const cv::Mat& image, const cv::Mat& mask);

}  // namespace anomalyncd::crop
