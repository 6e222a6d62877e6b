// Training bundles: one .safetensors file holding a trained (or partly trained) NCD model.
//
// Tensors (all F32, names as trainableParameters()):
//   backbone.<DINO key>     trainable backbone weights (blocks >= gradFromBlock); with
//                           `includeFrozen` (always when the backbone was randomly
//                           initialised) every backbone parameter
//   projector.fc{1,2,3}.{weight,bias}, heads.<h>.weight
//   momentum.<name>         SGD momentum buffers (resume bundles only)
// `__metadata__` (string -> string, as the safetensors format prescribes; every value
// except "format" is a JSON document):
//   format                      "pt"
//   anomalyncd.format_version   kBundleVersion
//   anomalyncd.config           the full TrainConfig (seed as a decimal string)
//   anomalyncd.arch             the VitConfig
//   anomalyncd.class_names      known classes (sorted labelled names) then novel ones
//   anomalyncd.preprocess       the test-time transform (METHOD.md §5.1) and normalisation
//   anomalyncd.search_range     MEBin [min, max] of the crops, or null
//   anomalyncd.epochs_done      finished epochs
//   anomalyncd.history          per-epoch loss means (per head too), lr, teacher temp, timings
//   anomalyncd.selected_heads   METHOD.md §4.5 heads (ties: all)
//   anomalyncd.resume           {seed, next_epoch, streams, data_fingerprint, momentum}
//   anomalyncd.backbone         {path, sha256, stored} (stored: frozen weights in the file)
//   anomalyncd.inference        InferenceRecord (masks as maps, novelty calibration); optional:
//                               absent in older bundles and when none was recorded
// Written atomically: a temp file beside the target (fsync'ed), then rename.
#pragma once
#include <ATen/core/Tensor.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/sha256.h"  // sha256File (moved to common)
#include "train/trainer.h"

namespace anomalyncd::train {

inline constexpr int kBundleVersion = 1;

// `momentum` may be null (no momentum.* tensors). `inference`: the record to write
// (null: the model's own, if any). Error(kIo) on write failure.
void writeBundle(const std::string& path, const NcdModel& m, const MomentumSGD* momentum, bool includeFrozen,
                 const InferenceRecord* inference = nullptr);

struct BundleContents {
  std::shared_ptr<NcdModel> meta;  // metadata only: backbone/heads not built
  std::map<std::string, at::Tensor> tensors;  // every tensor of the file (float32 CPU)
  bool frozenStored = false;
};

// Reads and validates a bundle (version, metadata, tensor names). Error(kCheckpoint)
// naming the file on a missing/unsupported version, corrupt metadata or tensors;
// Error(kIo) when it cannot be read.
BundleContents readBundleContents(const std::string& path);

// Copies bundle tensors into a built model (trainable ones, and the frozen backbone
// when stored). Error(kCheckpoint) naming `path` on a missing key or shape mismatch.
void loadBundleWeights(NcdModel& m, const BundleContents& b, const std::string& path);
std::map<std::string, at::Tensor> bundleMomentum(const BundleContents& b);

// A ready-to-use model from a bundle: rebuilds the backbone (from the stored weights, or
// from the recorded backbone file, or from `backboneOverride`, whose SHA-256 must match
// the recorded one) and loads the trained weights, on `device` (it then runs there).
std::shared_ptr<NcdModel> loadTrainedModel(const std::string& path, const std::string& backboneOverride,
                                     const std::function<void(const std::string&)>& warn,
                                     c10::Device device = c10::kCPU);

// The architecture as bundle metadata writes it (anomalyncd.arch; also compared on resume).
std::string archJson(const model::VitConfig& arch);

}  // namespace anomalyncd::train
