// The per-threshold MEBin oracle (OpenCV erode + connectedComponents), kept
// apart from the single pass so that mebin.cc builds without OpenCV (the
// standalone GPU check, tools/gpu-check, has no OpenCV).
#include <array>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "mebin/mebin.h"

namespace anomalyncd::mebin {

Result binarizeOracle(const MapView& map, const Range& range, const Options& options) {
  validateMap(map);
  validateRange(range);
  const std::vector<int> thresholds = sweepThresholds(options);
  const cv::Mat raw(map.height, map.width, CV_8U, const_cast<uint8_t*>(map.data));
  const cv::Mat kernel = cv::Mat::ones(6, 6, CV_8U);

  // The reference normalises elementwise; n depends only on the raw value.
  std::array<double, 256> normOf{};
  for (int a = 0; a < 256; ++a) normOf[a] = normalizedValue(a, range);
  cv::Mat normMap(map.height, map.width, CV_64F);
  for (int y = 0; y < map.height; ++y)
    for (int x = 0; x < map.width; ++x) normMap.at<double>(y, x) = normOf[raw.at<uint8_t>(y, x)];

  auto binAndErode = [&](const cv::Mat& values, double threshold) {
    cv::Mat mask(values.size(), CV_8U);
    for (int y = 0; y < values.rows; ++y)
      for (int x = 0; x < values.cols; ++x) {
        const double v = values.type() == CV_64F ? values.at<double>(y, x)
                                                 : static_cast<double>(values.at<uint8_t>(y, x));
        mask.at<uint8_t>(y, x) = v > threshold ? 255 : 0;
      }
    if (!options.erode) return mask;
    cv::Mat eroded;
    cv::erode(mask, eroded, kernel);  // default anchor, 1 iteration, default border
    return eroded;
  };

  Result result;
  cv::Mat labels;
  for (int t : thresholds) {
    const cv::Mat mask = binAndErode(normMap, t);
    result.sequence.push_back(cv::connectedComponents(mask, labels, 8, CV_32S) - 1);
  }
  const Selection selection = selectThreshold(result.sequence, range, options);
  result.threshold = selection.threshold;
  result.count = selection.est;
  const cv::Mat finalMask = binAndErode(raw, selection.threshold);
  result.binary.assign(finalMask.datastart, finalMask.dataend);  // continuous: fresh Mat
  result.foreground = cv::countNonZero(finalMask);
  return result;
}

}  // namespace anomalyncd::mebin
