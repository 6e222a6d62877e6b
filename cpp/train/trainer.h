// NCD training (METHOD.md §4.3-4.5, 5, 6): sampler -> batches -> two augmented views per
// sample (C++ worker threads, batch i+1 prepared while batch i trains) -> one forward of
// the 2B rows through the mask-guided ViT and the heads -> losses (losses.h) -> SGD step;
// cosine LR and teacher temperature per epoch (schedule.h); head selection by the last
// epoch's mean clustering loss; per-epoch checkpoint bundles with exact resume (bundle.h).
// Pure C++ over libtorch, no N-API. CPU (the device of the model's parameters is used for
// the batches, so a CUDA libtorch would also run it, but only CPU is tested).
//
// Random streams (all derived from TrainConfig::seed; nothing else is random):
//   * torch's global CPU generator, seeded with `seed` (at::manual_seed) immediately
//     before the backbone and the heads are constructed (head init, and the random
//     backbone init when no checkpoint is given). Training itself draws nothing from it
//     (no dropout, no drop-path).
//   * the sampler: a fresh BalancedSampler per epoch, seeded with
//     deriveSeed(seed, kSamplerStream, epoch).
//   * augmentation: one Augmenter per sample of a batch, seeded with
//     deriveSeed(seed, kAugmentStream, epoch, batch, row), drawing view 1 then view 2
//     (batch = index among the epoch's kept batches, row = position in the batch). The
//     views thus do not depend on which worker thread made them.
// So the state needed to resume is the number of finished epochs (plus the weights and
// momentum buffers). A CPU run is bit-reproducible for the same seed, machine, libtorch
// and intra-op thread count (TrainConfig::threads); augmentation threads do not matter.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "train/inference_record.h"
#include "common/cancel.h"
#include "model/thread_scope.h"
#include "model/vit_config.h"
#include "train/augment.h"
#include "train/config.h"
#include "train/schedule.h"

namespace anomalyncd::model {
class MaskGuidedViT;
class MultiHead;
struct LoadedBackbone;
}  // namespace anomalyncd::model

namespace anomalyncd::train {

// One training crop: pixels borrowed (not owned) for the duration of training.
struct TrainSample {
  CropSample crop{};
  double score = std::numeric_limits<double>::quiet_NaN();  // crop score (METHOD.md §3.4); NaN: unknown -> no PLC
  int label = -1;  // labelled: class index in [0, numKnown); unlabelled: -1
};

struct TrainData {
  std::vector<TrainSample> unlabelled;  // D^u crops (required, >= 1)
  std::vector<TrainSample> labelled;    // D^l crops (optional)
};

// Stable identity of the training data (sizes, pixels, masks, scores, labels), used to
// refuse resuming a run on other data. 16 hex digits.
std::string dataFingerprint(const TrainData& data);

// Mixes the seed with a stream id and up to three counters (splitmix64 chain).
inline constexpr uint64_t kSamplerStream = 1, kAugmentStream = 2;
uint64_t deriveSeed(uint64_t seed, uint64_t stream, uint64_t a = 0, uint64_t b = 0, uint64_t c = 0);

struct LossValues {
  double total = 0, infoNce = 0, supCon = 0;
  std::vector<double> ce, distill, memax, cluster;  // per head
};

// The field lists below name every field of the training-history records once: they
// drive the JS objects (binding/train.cc) and the bundle's "anomalyncd.history" JSON
// (train/bundle.cc). The names and their order are the bundle metadata keys, kept as
// written by every earlier version (old bundles load, new bundles are byte-identical).
template <class Losses, class Visitor>
std::enable_if_t<std::is_same_v<std::remove_const_t<Losses>, LossValues>> visitFields(Losses& l, Visitor&& v) {
  v("total", l.total);
  v("infoNce", l.infoNce);
  v("supCon", l.supCon);
  v("ce", l.ce);
  v("distill", l.distill);
  v("memax", l.memax);
  v("cluster", l.cluster);
}

struct EpochStats {
  int epoch = 0;        // 0-based
  int batches = 0;      // batches trained
  int skipped = 0;      // batches dropped by the T24 rule
  double lr = 0, teacherTemp = 0;
  LossValues losses;    // means over the trained batches
  double ms = 0;        // wall time of the epoch
  double augmentMs = 0; // augmentation work (summed over batches; overlaps the model work)
  double waitMs = 0;    // time the model waited for augmentation
  double modelMs = 0;   // forward + losses + backward + step
};

// The fields an epoch record shares with a TrainEvent (same names, same order), for any
// `Stats` with these members.
template <class Stats, class Visitor>
void visitEpochFields(Stats& s, Visitor&& v) {
  v("epoch", s.epoch);
  v("batches", s.batches);
  v("skipped", s.skipped);
  v("lr", s.lr);
  v("teacherTemp", s.teacherTemp);
  v("losses", s.losses);
  v("ms", s.ms);
  v("augmentMs", s.augmentMs);
  v("waitMs", s.waitMs);
  v("modelMs", s.modelMs);
}

template <class Stats, class Visitor>
std::enable_if_t<std::is_same_v<std::remove_const_t<Stats>, EpochStats>> visitFields(Stats& s, Visitor&& v) {
  visitEpochFields(s, v);
}

struct TrainEvent {
  enum class Type { Batch, Epoch } type = Type::Batch;
  int epoch = 0, batch = 0, batches = 0;  // batch: 0-based index among the epoch's batches
  int epochs = 0;
  LossValues losses;                      // the batch's values, or the epoch means
  double lr = 0, teacherTemp = 0;
  double ms = 0, augmentMs = 0, waitMs = 0, modelMs = 0;
  int skipped = 0;
  int rows = 0;                           // 2B of the batch (0 for epoch events)
};

inline const char* fieldEnumName(TrainEvent::Type t) { return t == TrainEvent::Type::Batch ? "batch" : "epoch"; }
inline bool fieldEnumParse(const std::string& s, TrainEvent::Type& out) {
  if (s == "batch") out = TrainEvent::Type::Batch;
  else if (s == "epoch") out = TrainEvent::Type::Epoch;
  else return false;
  return true;
}

// A TrainEvent as JS sees it: the epoch-record fields, then its own.
template <class Event, class Visitor>
std::enable_if_t<std::is_same_v<std::remove_const_t<Event>, TrainEvent>> visitFields(Event& e, Visitor&& v) {
  visitEpochFields(e, v);
  v("type", e.type);
  v("epochs", e.epochs);
  v("batch", e.batch);
  v("rows", e.rows);
}
using TrainEventFn = std::function<void(const TrainEvent&)>;

// Head(s) with the minimum mean clustering loss of the last epoch (METHOD.md §4.5); all tied
// heads are returned, lowest index first. Empty history -> {0}.
std::vector<int> selectHeads(const std::vector<EpochStats>& history);

// The model being trained / trained: backbone + heads + everything describing them.
struct NcdModel {
  model::VitConfig arch;
  TrainConfig config;
  std::shared_ptr<model::MaskGuidedViT> backbone;
  std::shared_ptr<model::MultiHead> heads;
  std::vector<EpochStats> history;
  int epochsDone = 0;
  std::vector<int> selectedHeads{0};
  // the frozen backbone's origin
  std::string backbonePath;    // "" = random init
  std::string backboneSha256;  // of the file at backbonePath
  std::string dataFingerprint;
  std::optional<std::pair<int, int>> searchRange;  // MEBin range of the crops (informational)
  std::optional<InferenceRecord> inference;       // bundle metadata anomalyncd.inference, when recorded

  int selectedHead() const { return selectedHeads.empty() ? 0 : selectedHeads.front(); }
  int numKnown() const { return config.numKnown(); }
};

// Builds the model on a loaded backbone (model::loadBackbone): at::manual_seed(seed), a
// ViT of its architecture and the heads are constructed, then the backbone's weights
// are copied in (model::cloneForTraining; the file is not read again), and the
// trainable parameters are set (docs/METHOD.md §4.3). gradFromBlock -1 resolves to the last
// block. `warn` receives notes (random init). `cfg` must be valid (validateConfig):
// callers validate at their entry (fit() does; bundles are validated when read).
// The model is placed on `device` (default: where the backbone lives); its random
// initialisation is drawn on the CPU generator either way (same seeding on every device).
std::shared_ptr<NcdModel> buildModel(const TrainConfig& cfg, const model::LoadedBackbone& backbone,
                                     const std::function<void(const std::string&)>& warn,
                                     std::optional<c10::Device> device = std::nullopt);

// Trainable parameters by bundle name: "backbone.<DINO key>" (blocks >= gradFromBlock),
// "projector.fc{1,2,3}.{weight,bias}", "heads.<h>.weight".
std::vector<std::pair<std::string, at::Tensor>> trainableParameters(NcdModel& m);

struct FitRequest {
  TrainConfig config;
  // The frozen backbone: an already loaded one, or else loaded here with
  // model::loadBackbone(backbonePath, arch, config.seed) (one loader for every caller:
  // without `arch` it is read from the checkpoint, or dino_vitb8 for a random init).
  std::shared_ptr<const model::LoadedBackbone> backbone;
  std::optional<model::VitConfig> arch;  // only without `backbone`
  std::string backbonePath;              // only without `backbone`; "" = random init (warned)
  std::string checkpointDir;  // "" = no per-epoch bundles / no resume
  // Where and how the model trains (resolved by model::torchDevice / parsePrecision):
  // 'cpu' | 'cuda' | 'cuda:N' | 'auto'; 'fp32' | 'bf16' (autocast around the ViT forward;
  // heads, losses and SGD in float32, weights float32).
  std::string device = "cpu";
  std::string precision = "fp32";
  std::optional<std::pair<int, int>> searchRange;
  TrainEventFn onEvent;       // called on the training thread (keep it cheap)
  std::function<void(const std::string&)> warn;
  const CancelToken* cancel = nullptr;
};

// File name of the per-epoch bundle inside a checkpoint directory.
inline constexpr const char* kCheckpointFile = "checkpoint.safetensors";

// Trains (resuming from checkpointDir/checkpoint.safetensors when it exists and fits
// this run: same config except threads, same data, same backbone; else
// Error(kCheckpoint)). Writes the bundle atomically after every epoch. Sets libtorch's
// intra-op threads to config.threads for the duration. Cancellation is checked between
// batches (Error(kAborted)); the last finished epoch's bundle stays on disk.
std::shared_ptr<NcdModel> fit(const TrainData& data, const FitRequest& req);

// Test-time prediction (docs/METHOD.md §5.1 test transform, §7 step 1) for crops with the
// given head: probabilities over the novel classes ([n, numNovel], softmax(logits / 0.1) over
// all classes, known classes zeroed, renormalised), and optionally the backbone [CLS]
// features ([n, D]).
struct PredictOptions {
  int head = -1;  // -1: the selected head
  bool embeddings = false;
  bool logits = false;  // also the head's raw novel-class logits (cosine similarities, issue 11 novelty)
  int threads = 1;  // preprocessing workers and libtorch intra-op threads
  int batchSize = 32;
  std::string precision = "fp32";  // 'fp32' | 'bf16' (autocast around the ViT forward)
};

template <class Options, class Visitor>
std::enable_if_t<std::is_same_v<std::remove_const_t<Options>, PredictOptions>> visitFields(Options& o, Visitor&& v) {
  v("head", o.head);
  v("embeddings", o.embeddings);
  v("logits", o.logits);
  v("threads", o.threads);
  v("batchSize", o.batchSize);
  v("precision", o.precision);
}

struct Prediction {
  std::vector<float> probabilities;  // n * numNovel
  std::vector<float> embeddings;     // n * D when asked for
  std::vector<float> logits;         // n * numNovel when asked for: the head's cosine logits of the novel classes
  int numNovel = 0, dim = 0;
};
Prediction predict(NcdModel& m, const std::vector<CropSample>& crops, const PredictOptions& options,
                   const CancelToken* cancel, const std::function<void(size_t, size_t)>& onProgress = {});

}  // namespace anomalyncd::train
