#include "train/trainer.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <future>

#include "common/error.h"
#include "common/parallel.h"
#include "model/backbone.h"
#include "model/device.h"
#include "model/heads.h"
#include "model/preprocess.h"
#include "model/vit.h"
#include "train/bundle.h"
#include "train/losses.h"
#include "train/resume.h"
#include "train/sampler.h"

namespace anomalyncd::train {

namespace {

[[noreturn]] void invalid(const std::string& m) { throw Error(code::kInvalidArgument, m); }

using Clock = std::chrono::steady_clock;
double msSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

constexpr int64_t kSide = model::kCropSize;
constexpr int64_t kImageFloats = 3 * kSide * kSide;
constexpr int64_t kMaskFloats = kSide * kSide;

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::vector<double> toDoubles(const at::Tensor& t) {
  at::Tensor d = t.detach().to(at::kCPU, at::kDouble).contiguous().view({-1});
  return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

LossValues lossValues(const BatchLosses& l) {
  LossValues v;
  v.total = l.total.detach().item<double>();
  v.infoNce = l.infoNce.detach().item<double>();
  v.supCon = l.supCon.detach().item<double>();
  v.ce = toDoubles(l.ce);
  v.distill = toDoubles(l.distill);
  v.memax = toDoubles(l.memax);
  v.cluster = toDoubles(l.cluster);
  return v;
}

void accumulate(LossValues& sum, const LossValues& v) {
  auto addVec = [](std::vector<double>& a, const std::vector<double>& b) {
    if (a.empty()) a.assign(b.size(), 0.0);
    for (size_t i = 0; i < b.size(); ++i) a[i] += b[i];
  };
  sum.total += v.total;
  sum.infoNce += v.infoNce;
  sum.supCon += v.supCon;
  addVec(sum.ce, v.ce);
  addVec(sum.distill, v.distill);
  addVec(sum.memax, v.memax);
  addVec(sum.cluster, v.cluster);
}

LossValues divided(LossValues s, double n) {
  if (n <= 0) return s;
  s.total /= n;
  s.infoNce /= n;
  s.supCon /= n;
  for (auto* vec : {&s.ce, &s.distill, &s.memax, &s.cluster})
    for (double& x : *vec) x /= n;
  return s;
}

void checkSample(const TrainSample& s, const std::string& what) {
  if (!s.crop.rgb || !s.crop.mask) invalid(what + ": image and mask are required");
  if (s.crop.height < 1 || s.crop.width < 1) invalid(what + ": empty crop");
  (void)model::shortSideResizeSize(s.crop.height, s.crop.width);  // refuses absurd aspect ratios
}

}  // namespace

uint64_t deriveSeed(uint64_t seed, uint64_t stream, uint64_t a, uint64_t b, uint64_t c) {
  uint64_t h = splitmix64(seed);
  h = splitmix64(h ^ stream);
  h = splitmix64(h ^ a);
  h = splitmix64(h ^ b);
  return splitmix64(h ^ c);
}

std::string dataFingerprint(const TrainData& data) {
  uint64_t h = 0x6a09e667f3bcc909ULL;
  auto mix = [&](uint64_t w) {
    h ^= w * 0x9e3779b97f4a7c15ULL;
    h = (h << 31) | (h >> 33);
    h *= 0xff51afd7ed558ccdULL;
  };
  auto bytes = [&](const uint8_t* p, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      mix(w);
    }
    uint64_t tail = 0;
    std::memcpy(&tail, p + i, n - i);
    mix(tail ^ (static_cast<uint64_t>(n - i) << 56));
  };
  for (const auto* set : {&data.unlabelled, &data.labelled}) {
    mix(set->size());
    for (const auto& s : *set) {
      mix(static_cast<uint64_t>(s.crop.height) << 32 | static_cast<uint32_t>(s.crop.width));
      const size_t px = static_cast<size_t>(s.crop.height) * static_cast<size_t>(s.crop.width);
      if (s.crop.rgb) bytes(s.crop.rgb, px * 3);
      if (s.crop.mask) bytes(s.crop.mask, px);
      uint64_t sc;
      const double score = std::isnan(s.score) ? std::numeric_limits<double>::quiet_NaN() : s.score;
      std::memcpy(&sc, &score, 8);
      mix(sc);
      mix(static_cast<uint64_t>(static_cast<int64_t>(s.label)));
    }
  }
  h = splitmix64(h);
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::vector<int> selectHeads(const std::vector<EpochStats>& history) {
  for (auto it = history.rbegin(); it != history.rend(); ++it) {
    if (it->batches == 0 || it->losses.cluster.empty()) continue;
    const auto& c = it->losses.cluster;
    const double best = *std::min_element(c.begin(), c.end());
    std::vector<int> out;
    for (size_t h = 0; h < c.size(); ++h)
      if (c[h] == best) out.push_back(static_cast<int>(h));
    return out;
  }
  return {0};
}


// ---------------------------------------------------------------------------
// training
// ---------------------------------------------------------------------------
namespace {

struct Prepared {
  at::Tensor images, masks;  // float32 [2b, 3, 224, 224], [2b, 1, 224, 224] on the host (pinned for CUDA)
  std::vector<int64_t> labels;       // [b]
  std::vector<float> plc;            // [b]
  int64_t b = 0;
  double augmentMs = 0;
};

}  // namespace

std::shared_ptr<NcdModel> fit(const TrainData& data, const FitRequest& req) {
  const TrainConfig& cfg = req.config;
  validateConfig(cfg);
  const size_t nL = data.labelled.size(), nU = data.unlabelled.size();
  if (nU == 0) invalid("Training needs at least one unlabelled crop");
  const int numKnown = cfg.numKnown();
  if (nL > 0 && numKnown < 1) invalid("Labelled crops were given but classNames holds no known class");
  for (size_t i = 0; i < nU; ++i) checkSample(data.unlabelled[i], "unlabelled[" + std::to_string(i) + "]");
  for (size_t i = 0; i < nL; ++i) {
    checkSample(data.labelled[i], "labelled[" + std::to_string(i) + "]");
    if (data.labelled[i].label < 0 || data.labelled[i].label >= numKnown)
      invalid("labelled[" + std::to_string(i) + "]: label " + std::to_string(data.labelled[i].label) +
              " is outside [0, " + std::to_string(numKnown) + ")");
  }

  // Where the model trains (one resolver: common/device.h) and in which precision.
  const c10::Device device = model::torchDevice(req.device);
  const model::Precision precision = model::parsePrecision(req.precision);
  if (std::string note = model::bf16NoteOnce(device, precision); !note.empty() && req.warn) req.warn(note);
  model::ThreadScope threadScope(cfg.threads, req.cancel);
  std::shared_ptr<const model::LoadedBackbone> backbone = req.backbone;
  if (backbone) {
    if (req.arch || !req.backbonePath.empty())
      invalid("A loaded backbone carries its own checkpoint and architecture: pass either it or backbonePath/arch");
  } else {
    backbone = model::loadBackbone(req.backbonePath, req.arch, cfg.seed, device);
  }
  std::shared_ptr<NcdModel> m = buildModel(cfg, *backbone, req.warn, device);
  m->dataFingerprint = dataFingerprint(data);
  m->searchRange = req.searchRange;
  m->backbone->train();
  m->heads->train();
  MomentumSGD opt(trainableParameters(*m), cfg.momentum, cfg.weightDecay);
  const bool storeFrozen = m->backbonePath.empty();  // a random init is stored whole

  // Resume state: weights, momentum buffers and history of the finished epochs.
  std::string ckpt;
  if (!req.checkpointDir.empty()) {
    ckpt = openCheckpointDir(req.checkpointDir);
    resumeFrom(ckpt, *m, opt, req.warn);
  }

  LossConfig lc;
  lc.numKnown = numKnown;
  lc.studentTemp = cfg.studentTemp;
  lc.infoNceTemp = cfg.infoNceTemp;
  lc.supConTemp = cfg.supConTemp;
  lc.supConBaseTemp = cfg.supConBaseTemp;
  lc.supWeight = cfg.supWeight;
  lc.memaxWeight = cfg.memaxWeight;

  const int augThreads = std::max(1, cfg.augmentThreads > 0 ? cfg.augmentThreads : cfg.threads);
  const bool cuda = device.is_cuda();
  auto sampleAt = [&](size_t idx) -> const TrainSample& {
    return idx < nL ? data.labelled[idx] : data.unlabelled[idx - nL];
  };
  auto prepare = [&](int epoch, int bi, const std::vector<size_t>& batch, Prepared& out) {
    const auto t0 = Clock::now();
    const int64_t b = static_cast<int64_t>(batch.size());
    out.b = b;
    // Host batches: pinned (page-locked) when the model is on CUDA, so the copy to the
    // device runs without blocking; reused while the batch size stays.
    if (!out.images.defined() || out.images.size(0) != 2 * b) {
      const auto hostOpt = at::TensorOptions().dtype(at::kFloat).pinned_memory(cuda);
      out.images = at::empty({2 * b, 3, kSide, kSide}, hostOpt);
      out.masks = at::empty({2 * b, 1, kSide, kSide}, hostOpt);
    }
    float* images = out.images.data_ptr<float>();
    float* masks = out.masks.data_ptr<float>();
    out.labels.resize(static_cast<size_t>(b));
    out.plc.resize(static_cast<size_t>(b));
    for (int64_t j = 0; j < b; ++j) {
      const TrainSample& s = sampleAt(batch[static_cast<size_t>(j)]);
      const bool labelled = batch[static_cast<size_t>(j)] < nL;
      out.labels[static_cast<size_t>(j)] = labelled ? s.label : -1;
      out.plc[static_cast<size_t>(j)] = labelled ? 0.0f : static_cast<float>(plcWeight(s.score, cfg.plcThreshold));
    }
    parallelFor(static_cast<size_t>(b), augThreads, req.cancel, [&](size_t j) {
      const TrainSample& s = sampleAt(batch[j]);
      Augmenter aug(deriveSeed(cfg.seed, kAugmentStream, static_cast<uint64_t>(epoch), static_cast<uint64_t>(bi), j));
      const int64_t r1 = static_cast<int64_t>(j), r2 = b + static_cast<int64_t>(j);
      aug.view(s.crop, images + r1 * kImageFloats, masks + r1 * kMaskFloats);
      aug.view(s.crop, images + r2 * kImageFloats, masks + r2 * kMaskFloats);
    });
    out.augmentMs = msSince(t0);
  };

  bool warnedNonFinite = false;
  for (int e = m->epochsDone; e < cfg.epochs; ++e) {
    const auto epochStart = Clock::now();
    const std::vector<size_t> draws = BalancedSampler(nL, nU, deriveSeed(cfg.seed, kSamplerStream, static_cast<uint64_t>(e))).epoch();
    const std::vector<std::vector<size_t>> batches = makeBatches(draws, static_cast<size_t>(cfg.batchSize), nL);
    const int candidates = static_cast<int>((draws.size() + static_cast<size_t>(cfg.batchSize) - 1) / static_cast<size_t>(cfg.batchSize));
    const int nb = static_cast<int>(batches.size());
    EpochStats st;
    st.epoch = e;
    st.batches = nb;
    st.skipped = candidates - nb;
    st.lr = cosineLr(e, cfg.lr, cfg.epochs);
    st.teacherTemp = teacherTemperature(e, cfg.teacher);
    lc.teacherTemp = st.teacherTemp;
    LossValues sum;

    Prepared buf[2];
    std::future<void> pending;
    if (nb > 0) pending = std::async(std::launch::async, [&] { prepare(e, 0, batches[0], buf[0]); });
    for (int bi = 0; bi < nb; ++bi) {
      const auto tWait = Clock::now();
      pending.get();
      const double waitMs = msSince(tWait);
      if (req.cancel) req.cancel->throwIfCancelled();
      if (bi + 1 < nb)
        pending = std::async(std::launch::async, [&, bi] { prepare(e, bi + 1, batches[static_cast<size_t>(bi + 1)], buf[(bi + 1) % 2]); });
      Prepared& p = buf[bi % 2];
      const auto tModel = Clock::now();
      const int64_t b = p.b;
      const auto fopt = at::TensorOptions().dtype(at::kFloat);
      at::Tensor x = p.images, mk = p.masks;
      at::Tensor labels = at::from_blob(p.labels.data(), {b}, at::TensorOptions().dtype(at::kLong));
      at::Tensor plc = at::from_blob(p.plc.data(), {b}, fopt);
      if (cuda) {
        // Pinned source: asynchronous on the current stream. The buffer is refilled two
        // batches later, after this step's loss values were read (a synchronisation).
        x = x.to(device, /*non_blocking=*/true);
        mk = mk.to(device, /*non_blocking=*/true);
        labels = labels.to(device);
        plc = plc.to(device);
      }
      opt.zeroGrad();
      at::Tensor f;
      {
        // bf16: autocast around the ViT only; heads, losses and SGD stay float32.
        model::PrecisionScope autocast(device, precision);
        f = m->backbone->forward(x, mk);
      }
      f = f.to(at::kFloat);
      model::HeadsOutput out = m->heads->forward(f);
      BatchLosses L = batchLosses(out.z, out.logits, labels, plc, lc);
      L.total.backward();
      opt.step(st.lr);
      const LossValues v = lossValues(L);
      const double modelMs = msSince(tModel);
      accumulate(sum, v);
      st.augmentMs += p.augmentMs;
      st.waitMs += waitMs;
      st.modelMs += modelMs;
      if (req.onEvent) {
        TrainEvent ev;
        ev.type = TrainEvent::Type::Batch;
        ev.epoch = e;
        ev.epochs = cfg.epochs;
        ev.batch = bi;
        ev.batches = nb;
        ev.losses = v;
        ev.lr = st.lr;
        ev.teacherTemp = st.teacherTemp;
        ev.ms = waitMs + modelMs;
        ev.augmentMs = p.augmentMs;
        ev.waitMs = waitMs;
        ev.modelMs = modelMs;
        ev.skipped = st.skipped;
        ev.rows = static_cast<int>(2 * b);
        req.onEvent(ev);
      }
    }
    st.losses = divided(sum, nb);
    if (nb == 0) {
      const size_t h = static_cast<size_t>(cfg.nHead);
      st.losses.ce.assign(h, 0);
      st.losses.distill.assign(h, 0);
      st.losses.memax.assign(h, 0);
      st.losses.cluster.assign(h, 0);
    }
    st.ms = msSince(epochStart);
    if (!std::isfinite(st.losses.total) && !warnedNonFinite && req.warn) {
      warnedNonFinite = true;
      req.warn("The loss is not finite in epoch " + std::to_string(e) + " (training diverged; lower lr?)");
    }
    m->history.push_back(st);
    m->epochsDone = e + 1;
    m->selectedHeads = selectHeads(m->history);
    if (!ckpt.empty()) writeBundle(ckpt, *m, &opt, storeFrozen);
    if (req.onEvent) {
      TrainEvent ev;
      ev.type = TrainEvent::Type::Epoch;
      ev.epoch = e;
      ev.epochs = cfg.epochs;
      ev.batch = nb;
      ev.batches = nb;
      ev.losses = st.losses;
      ev.lr = st.lr;
      ev.teacherTemp = st.teacherTemp;
      ev.ms = st.ms;
      ev.augmentMs = st.augmentMs;
      ev.waitMs = st.waitMs;
      ev.modelMs = st.modelMs;
      ev.skipped = st.skipped;
      req.onEvent(ev);
    }
  }
  m->backbone->eval();
  m->heads->eval();
  return m;
}

}  // namespace anomalyncd::train
