#include "pipeline/binarize.h"

#include <atomic>
#include <chrono>
#include <filesystem>

#include "common/device.h"
#include "common/error.h"
#include "gpu/gpu.h"
#include "common/parallel.h"
#include "io/image_io.h"

namespace anomalyncd::pipeline {
namespace {

void validate(const std::vector<io::MapSource>& maps, const BinarizeOptions& o) {
  if (maps.empty()) throw Error(code::kInvalidArgument, "binarize() needs at least one map");
  mebin::validateOptions(o.mebin);
  validateRangeOption(o.range);
  validateThreads(o.threads);
  if (!o.writeDir.empty() && o.names.size() != maps.size())
    throw Error(code::kInvalidArgument, "writeDir needs one relative file name per map in 'names'");
}

void writeBinary(const BinarizeOptions& o, size_t i, const cv::Mat& binary) {
  const std::filesystem::path path = std::filesystem::path(o.writeDir) / o.names[i];
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  if (ec) throw Error(code::kIo, "Cannot create '" + path.parent_path().string() + "': " + ec.message());
  io::writePngGray(path.string(), binary);
}

}  // namespace

BinarizeResult binarize(const std::vector<io::MapSource>& sources, const BinarizeOptions& options,
                        const CancelToken* cancel, const Progress& progress) {
  validate(sources, options);
  const device::Resolved dev = device::resolve(options.device, device::kernelCaps());
  if (dev.cuda && options.oracle) throw Error(code::kInvalidArgument, "The MEBin oracle runs on the CPU only (device 'cpu')");
  BinarizeResult out;
  out.device = dev.name();
  const MapSet set = loadMapSet(sources, options.range, options.threads, cancel, out.warnings);
  out.range = set.range;
  out.maps.resize(set.views.size());
  // CUDA: every map in one batched launch sequence (cpp/gpu); writing stays on the threads.
  std::vector<mebin::Result> gpuResults;
  double gpuMsPerMap = 0;
  if (dev.cuda) {
    if (cancel) cancel->throwIfCancelled();
    const auto t0 = std::chrono::steady_clock::now();
    gpuResults = gpu::binarizeBatch(set.views, set.range, options.mebin, dev.index);
    gpuMsPerMap = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() /
                  static_cast<double>(set.views.size());
  }
  std::atomic<size_t> done{0};
  parallelFor(set.views.size(), options.threads, cancel, [&](size_t i) {
    BinarizedMap& r = out.maps[i];
    r.height = set.maps[i].rows;
    r.width = set.maps[i].cols;
    if (dev.cuda) {
      r.result = std::move(gpuResults[i]);
      r.computeMs = gpuMsPerMap;
      if (!options.writeDir.empty()) writeBinary(options, i, cv::Mat(r.height, r.width, CV_8UC1, r.result.binary.data()));
      if (!options.returnBinary) std::vector<uint8_t>().swap(r.result.binary);
      if (progress) progress(++done, set.views.size());
      return;
    }
    // A map nobody keeps goes into this thread's reused result: no fresh output
    // pages per map (on these VMs faulting them in cost 3x the binarisation).
    thread_local mebin::Result scratch;
    mebin::Result& target = options.returnBinary ? r.result : scratch;
    // Per-thread buffers grow before the clock starts (a kept binary map is output, and timed).
    mebin::prepareWorkspace(r.height, r.width);
    if (!options.returnBinary) scratch.binary.resize(static_cast<size_t>(r.height) * r.width);
    const auto t0 = std::chrono::steady_clock::now();
    if (options.oracle) target = mebin::binarizeOracle(set.views[i], set.range, options.mebin);
    else mebin::binarizeInto(set.views[i], set.range, options.mebin, target);
    r.computeMs = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (!options.writeDir.empty()) writeBinary(options, i, cv::Mat(r.height, r.width, CV_8UC1, target.binary.data()));
    if (!options.returnBinary) {
      r.result.threshold = scratch.threshold;
      r.result.count = scratch.count;
      r.result.sequence = scratch.sequence;
      r.result.foreground = scratch.foreground;
    }
    if (progress) progress(++done, set.views.size());
  });
  return out;
}

}  // namespace anomalyncd::pipeline
