// Test-time prediction with a trained NCD model (docs/METHOD.md §5.1, §7 step 1).
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cstring>

#include "common/error.h"
#include "common/parallel.h"
#include "model/device.h"
#include "model/heads.h"
#include "model/preprocess.h"
#include "model/vit.h"
#include "train/trainer.h"

namespace anomalyncd::train {

namespace {

[[noreturn]] void invalid(const std::string& m) { throw Error(code::kInvalidArgument, m); }

constexpr int64_t kSide = model::kCropSize;
constexpr int64_t kImageFloats = 3 * kSide * kSide;
constexpr int64_t kMaskFloats = kSide * kSide;

}  // namespace

Prediction predict(NcdModel& m, const std::vector<CropSample>& crops, const PredictOptions& options,
                   const CancelToken* cancel, const std::function<void(size_t, size_t)>& onProgress) {
  int head = options.head;
  const bool embeddings = options.embeddings;
  const int threads = options.threads, batchSize = options.batchSize;
  const int nHead = static_cast<int>(m.heads->headList.size());
  if (head < 0) head = m.selectedHead();
  if (head >= nHead) invalid("head " + std::to_string(head) + " does not exist (the model has " + std::to_string(nHead) + ")");
  if (batchSize < 1) invalid("batchSize must be >= 1");
  for (size_t i = 0; i < crops.size(); ++i) {
    if (!crops[i].rgb || !crops[i].mask) invalid("crops[" + std::to_string(i) + "]: image and mask are required");
    if (crops[i].height < 1 || crops[i].width < 1) invalid("crops[" + std::to_string(i) + "]: empty crop");
  }
  model::ThreadScope threadScope(threads, cancel);
  c10::AutoGradMode noGrad(false);
  const int numKnown = m.numKnown();
  const int numNovel = m.config.numNovel;
  const int dim = m.arch.embedDim;
  Prediction out;
  out.numNovel = numNovel;
  out.dim = embeddings ? dim : 0;
  out.probabilities.resize(crops.size() * static_cast<size_t>(numNovel));
  if (embeddings) out.embeddings.resize(crops.size() * static_cast<size_t>(dim));
  // The model runs where it lives.
  if (options.logits) out.logits.resize(crops.size() * static_cast<size_t>(numNovel));
  const at::Device device = m.heads->headList.front()->weight.device();
  const model::Precision precision = model::parsePrecision(options.precision);
  std::vector<float> images, masks;
  for (size_t start = 0; start < crops.size(); start += static_cast<size_t>(batchSize)) {
    if (cancel) cancel->throwIfCancelled();
    const size_t b = std::min(crops.size() - start, static_cast<size_t>(batchSize));
    images.resize(b * kImageFloats);
    masks.resize(b * kMaskFloats);
    parallelFor(b, std::max(1, threads), cancel, [&](size_t j) {
      const CropSample& c = crops[start + j];
      model::preprocess(c.rgb, c.mask, c.height, c.width, images.data() + j * kImageFloats, masks.data() + j * kMaskFloats);
    });
    const auto fopt = at::TensorOptions().dtype(at::kFloat);
    const int64_t bb = static_cast<int64_t>(b);
    at::Tensor x = at::from_blob(images.data(), {bb, 3, kSide, kSide}, fopt);
    at::Tensor mk = at::from_blob(masks.data(), {bb, 1, kSide, kSide}, fopt);
    if (device.is_cuda()) {
      x = x.pin_memory().to(device, /*non_blocking=*/true);
      mk = mk.pin_memory().to(device, /*non_blocking=*/true);
    }
    at::Tensor f;
    {
      model::PrecisionScope autocast(device, precision);  // bf16: the ViT only
      f = m.backbone->forward(x, mk);
    }
    f = f.to(at::kFloat);
    at::Tensor logits = m.heads->classify(f)[head];
    at::Tensor p = at::softmax(logits / m.config.studentTemp, 1);
    if (numKnown > 0) {
      p.narrow(1, 0, numKnown).zero_();
      p = p / p.sum(1, /*keepdim=*/true);
    }
    at::Tensor novel = p.narrow(1, numKnown, numNovel).to(at::kCPU, at::kFloat).contiguous();
    std::memcpy(out.probabilities.data() + start * static_cast<size_t>(numNovel), novel.data_ptr<float>(),
                b * static_cast<size_t>(numNovel) * sizeof(float));
    if (options.logits) {
      at::Tensor l = logits.narrow(1, numKnown, numNovel).to(at::kCPU, at::kFloat).contiguous();
      std::memcpy(out.logits.data() + start * static_cast<size_t>(numNovel), l.data_ptr<float>(),
                  b * static_cast<size_t>(numNovel) * sizeof(float));
    }
    if (embeddings) {
      at::Tensor fe = f.to(at::kCPU, at::kFloat).contiguous();
      std::memcpy(out.embeddings.data() + start * static_cast<size_t>(dim), fe.data_ptr<float>(),
                  b * static_cast<size_t>(dim) * sizeof(float));
    }
    if (onProgress) onProgress(start + b, crops.size());
  }
  return out;
}

}  // namespace anomalyncd::train
