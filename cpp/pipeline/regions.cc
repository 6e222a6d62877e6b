#include "pipeline/regions.h"

#include <atomic>
#include <chrono>
#include <filesystem>

#include <opencv2/imgproc.hpp>

#include "common/device.h"
#include "common/error.h"
#include "gpu/gpu.h"
#include "common/parallel.h"

namespace anomalyncd::pipeline {
namespace {

using Clock = std::chrono::steady_clock;
double msSince(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

void validate(const std::vector<RegionsInput>& inputs, const RegionsOptions& o) {
  if (inputs.empty()) throw Error(code::kInvalidArgument, "extractRegions() needs at least one (image, map) pair");
  mebin::validateOptions(o.mebin);
  crop::validateOptions(o.crop);
  validateRangeOption(o.range);
  validateThreads(o.threads);
  if (o.maskLevel < 1 || o.maskLevel > 255) throw Error(code::kInvalidArgument, "Option 'maskLevel' must be in 1..255");
  if (!o.writeDir.empty())
    for (const auto& in : inputs)
      if (in.name.empty() || in.name.find('/') != std::string::npos)
        throw Error(code::kInvalidArgument, "Crop file stem '" + in.name + "' must be non-empty without '/'");
}

void writeCrops(const std::string& dir, const std::string& name, ItemRegions& r) {
  for (size_t k = 0; k < r.regions.crops.size(); ++k) {
    const crop::Crop& c = r.regions.crops[k];
    const std::string file = name + "_crop" + std::to_string(k) + ".png";
    if (c.image.empty() || c.mask.empty())
      throw Error(code::kBadInput, "Crop " + std::to_string(k) + " of '" + name + "' is empty (box outside the image)");
    io::writePngRGB(dir + "/images/" + file, c.image);
    io::writePngGray(dir + "/masks/" + file, c.mask);
    r.imageFiles.push_back("images/" + file);
    r.maskFiles.push_back("masks/" + file);
  }
}

// At most two distinct values in the map.
bool isTwoValued(const cv::Mat& map) {
  int first = -1, second = -1;
  for (int y = 0; y < map.rows; ++y) {
    const uint8_t* row = map.ptr<uint8_t>(y);
    for (int x = 0; x < map.cols; ++x) {
      const int v = row[x];
      if (v == first || v == second) continue;
      if (first < 0) first = v;
      else if (second < 0) second = v;
      else return false;
    }
  }
  return true;
}

// masksAsMaps: value >= level -> 255, else 0; est = 8-connected components (as MEBin counts, METHOD.md §2.3).
void binarizeMask(const cv::Mat& map, int level, mebin::Result& out) {
  cv::Mat binary(map.rows, map.cols, CV_8UC1, out.binary.data());
  cv::threshold(map, binary, level - 1, 255, cv::THRESH_BINARY);  // strict '>' level - 1
  out.threshold = level - 1;  // foreground is value > threshold, as for MEBin
  out.foreground = cv::countNonZero(binary);
  cv::Mat labels;
  out.count = out.foreground > 0 ? cv::connectedComponents(binary, labels, 8, CV_32S) - 1 : 0;
  out.sequence.clear();
}

}  // namespace

RegionsResult extractRegions(const std::vector<RegionsInput>& inputs, const RegionsOptions& options,
                             const CancelToken* cancel, const Progress& progress) {
  validate(inputs, options);
  RegionsResult out;
  std::vector<io::MapSource> sources;
  sources.reserve(inputs.size());
  for (const auto& in : inputs) sources.push_back(in.map);
  const device::Resolved dev = device::resolve(options.device, device::kernelCaps());
  // Masks as maps need no MEBin: they are thresholded on the CPU threads wherever `device` points.
  const bool mebinOnGpu = dev.cuda && !options.masksAsMaps;
  out.device = mebinOnGpu ? dev.name() : std::string("cpu");
  // Masks as maps: no search range (the crop scores use the binarised map, 0..255).
  const MapSet set = loadMapSet(sources, options.masksAsMaps ? RangeOption{{0, 255}} : options.range, options.threads,
                                cancel, out.warnings);
  out.range = set.range;
  std::atomic<bool> allBinary{true};
  // CUDA: MEBin for every map in one batched launch sequence (cpp/gpu); crops on the threads.
  std::vector<mebin::Result> gpuResults;
  double gpuMsPerMap = 0;
  if (mebinOnGpu) {
    if (cancel) cancel->throwIfCancelled();
    const auto t0 = Clock::now();
    gpuResults = gpu::binarizeBatch(set.views, set.range, options.mebin, dev.index);
    gpuMsPerMap = msSince(t0) / static_cast<double>(set.views.size());
  }
  if (!options.writeDir.empty()) {
    std::error_code ec;
    for (const char* sub : {"images", "masks"}) {
      std::filesystem::create_directories(std::filesystem::path(options.writeDir) / sub, ec);
      if (ec) throw Error(code::kIo, "Cannot create '" + options.writeDir + "/" + sub + "': " + ec.message());
    }
  }
  out.items.resize(inputs.size());
  std::atomic<size_t> done{0};
  parallelFor(inputs.size(), options.threads, cancel, [&](size_t i) {
    ItemRegions& r = out.items[i];
    const cv::Mat& map = set.maps[i];
    // The binary map is only an input to cropping: reuse this thread's buffer.
    thread_local mebin::Result binarizedCpu;
    mebin::Result& binarized = mebinOnGpu ? gpuResults[i] : binarizedCpu;
    if (!isTwoValued(map)) allBinary = false;
    auto t0 = Clock::now();
    if (mebinOnGpu) {
      r.mebinMs = gpuMsPerMap;
    } else {
      mebin::prepareWorkspace(map.rows, map.cols);  // per-thread buffers grow before the clock starts
      binarized.binary.resize(static_cast<size_t>(map.rows) * map.cols);
      t0 = Clock::now();
      if (options.masksAsMaps) binarizeMask(map, options.maskLevel, binarized);
      else mebin::binarizeInto(set.views[i], set.range, options.mebin, binarized);
      r.mebinMs = msSince(t0);
    }
    r.mapHeight = map.rows;
    r.mapWidth = map.cols;
    const cv::Mat image = io::loadImageRGB(inputs[i].image);
    r.imageHeight = image.rows;
    r.imageWidth = image.cols;
    const cv::Mat binary(map.rows, map.cols, CV_8UC1, binarized.binary.data());
    t0 = Clock::now();
    r.regions = options.masksAsMaps
                    ? crop::cropRegions(image, binary, binary, 0, 255, binarized.count, options.crop)
                    : crop::cropRegions(image, binary, map, set.range.minTh, set.range.maxTh, binarized.count, options.crop);
    r.cropMs = msSince(t0);
    t0 = Clock::now();
    if (options.descriptors)
      for (size_t k = 0; k < r.regions.crops.size(); ++k) {
        const crop::Crop& c = r.regions.crops[k];
        if (c.image.empty() || c.mask.empty())
          throw Error(code::kBadInput, "Crop " + std::to_string(k) + " of '" + inputs[i].name + "' is empty (box outside the image)");
        r.descriptors.push_back(crop::regionDescriptor(c.image, c.mask));
      }
    r.descriptorMs = options.descriptors ? msSince(t0) : 0;
    r.mebin.threshold = binarized.threshold;
    r.mebin.count = binarized.count;
    r.mebin.sequence = binarized.sequence;
    r.mebin.foreground = binarized.foreground;
    if (!options.writeDir.empty()) writeCrops(options.writeDir, inputs[i].name, r);
    if (!options.returnPixels)
      for (auto& c : r.regions.crops) c.image.release(), c.mask.release();
    if (mebinOnGpu) std::vector<uint8_t>().swap(binarized.binary);
    if (progress) progress(++done, inputs.size());
  });
  out.allMapsBinary = allBinary;
  if (out.allMapsBinary && !options.masksAsMaps)
    out.warnings.push_back(
        "Every map holds at most two values (binary masks?): MEBin is meant for continuous anomaly maps, and on 0/255 "
        "maps with no empty map its search range is degenerate (every crop becomes the whole image). Consider "
        "masksAsMaps (--masks-as-maps): each mask used directly as the binary map.");
  return out;
}

}  // namespace anomalyncd::pipeline
