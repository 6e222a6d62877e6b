#include "train/bundle.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "model/checkpoint.h"
#include "model/heads.h"
#include "model/preprocess.h"
#include "model/vit.h"
#include "train/json_fields.h"

namespace anomalyncd::train {

namespace {

using model::Json;
using model::JsonError;
using json::arr;
using json::num;
using json::Obj;
using json::quote;

std::string lossesJson(const LossValues& l) {
  return Obj()
      .add("total", num(l.total))
      .add("infoNce", num(l.infoNce))
      .add("supCon", num(l.supCon))
      .add("ce", arr(l.ce))
      .add("distill", arr(l.distill))
      .add("memax", arr(l.memax))
      .add("cluster", arr(l.cluster))
      .str();
}

std::string historyJson(const std::vector<EpochStats>& h) {
  std::string s = "[";
  for (size_t i = 0; i < h.size(); ++i) {
    const EpochStats& e = h[i];
    s += (i ? "," : "") + Obj()
                              .add("epoch", num(e.epoch))
                              .add("batches", num(e.batches))
                              .add("skipped", num(e.skipped))
                              .add("lr", num(e.lr))
                              .add("teacherTemp", num(e.teacherTemp))
                              .add("losses", lossesJson(e.losses))
                              .add("ms", num(e.ms))
                              .add("augmentMs", num(e.augmentMs))
                              .add("waitMs", num(e.waitMs))
                              .add("modelMs", num(e.modelMs))
                              .str();
  }
  return s + "]";
}

std::string preprocessJson() {
  std::vector<double> mean(model::kImageNetMean, model::kImageNetMean + 3), sd(model::kImageNetStd, model::kImageNetStd + 3);
  return Obj()
      .add("resize", quote("Pillow BILINEAR (8-bit, antialiased), shorter side 256, longer side int(256 * long / short); image and mask"))
      .add("shortSide", num(model::kResizeShortSide))
      .add("crop", quote("fixed 224 x 224 at top = left = 16"))
      .add("cropSize", num(model::kCropSize))
      .add("cropOffset", num(model::kCropOffset))
      .add("image", quote("RGB / 255, then (x - mean) / std per channel"))
      .add("mean", arr(mean))
      .add("std", arr(sd))
      .add("mask", quote("gray / 255; patch-averaged; [CLS] row blocked where < 0.5 in the last maskLayers blocks"))
      .add("studentTemp", quote("softmax(logits / 0.1), known classes zeroed, renormalised (SPEC 7)"))
      .str();
}

// ---- reading ----
[[noreturn]] void corrupt(const std::string& path, const std::string& what) {
  throw Error(code::kCheckpoint, "Cannot load training bundle '" + path + "': " + what);
}

struct Reader {
  const std::string& path;
  const Json& o;
  std::string where;
  const Json& at(const char* k, Json::Type t) const {
    const Json* v = o.get(k);
    if (!v || v->type != t) corrupt(path, "metadata " + where + "." + k + " is missing or has the wrong type");
    return *v;
  }
  double d(const char* k) const { return at(k, Json::Num).num; }
  int i(const char* k) const {
    const double v = d(k);
    if (v != std::floor(v) || std::fabs(v) > 2147483647.0) corrupt(path, "metadata " + where + "." + k + " is not an integer");
    return static_cast<int>(v);
  }
  bool b(const char* k) const { return at(k, Json::Bool).b; }
  std::string s(const char* k) const { return at(k, Json::Str).s; }
  std::vector<double> ds(const char* k) const {
    std::vector<double> out;
    for (auto& x : at(k, Json::Arr).arr) {
      if (x.type == Json::Null) {  // a non-finite value (diverged training) was written as null
        out.push_back(std::nan(""));
        continue;
      }
      if (x.type != Json::Num) corrupt(path, "metadata " + where + "." + k + " holds a non-number");
      out.push_back(x.num);
    }
    return out;
  }
};

TrainConfig parseConfig(const std::string& path, const Json& o) {
  TrainConfig c;
  json::FieldReader reader(o, "Cannot load training bundle '" + path + "': ", "config");
  visitFields(c, reader);
  try {
    validateConfig(c);
  } catch (const Error& e) {
    corrupt(path, std::string("metadata config is invalid: ") + e.what());
  }
  return c;
}

model::VitConfig parseArch(const std::string& path, const Json& o) {
  Reader r{path, o, "arch"};
  model::VitConfig a;
  a.patchSize = r.i("patchSize");
  a.embedDim = r.i("embedDim");
  a.depth = r.i("depth");
  a.numHeads = r.i("numHeads");
  a.maskLayers = r.i("maskLayers");
  a.mlpRatio = r.d("mlpRatio");
  a.qkvBias = r.b("qkvBias");
  a.lnEps = r.d("lnEps");
  a.imageSize = r.i("imageSize");
  try {
    model::validateConfig(a);
  } catch (const Error& e) {
    corrupt(path, std::string("metadata arch is invalid: ") + e.what());
  }
  return a;
}

LossValues parseLosses(const std::string& path, const Json& o) {
  Reader r{path, o, "history.losses"};
  LossValues l;
  auto dn = [&](const char* k) {
    const Json* v = o.get(k);
    if (v && v->type == Json::Null) return std::nan("");
    return r.d(k);
  };
  l.total = dn("total");
  l.infoNce = dn("infoNce");
  l.supCon = dn("supCon");
  l.ce = r.ds("ce");
  l.distill = r.ds("distill");
  l.memax = r.ds("memax");
  l.cluster = r.ds("cluster");
  return l;
}

std::vector<EpochStats> parseHistory(const std::string& path, const Json& a) {
  if (a.type != Json::Arr) corrupt(path, "metadata history is not an array");
  std::vector<EpochStats> out;
  for (auto& e : a.arr) {
    if (e.type != Json::Obj) corrupt(path, "metadata history entry is not an object");
    Reader r{path, e, "history"};
    EpochStats s;
    s.epoch = r.i("epoch");
    s.batches = r.i("batches");
    s.skipped = r.i("skipped");
    s.lr = r.d("lr");
    s.teacherTemp = r.d("teacherTemp");
    s.losses = parseLosses(path, r.at("losses", Json::Obj));
    s.ms = r.d("ms");
    s.augmentMs = r.d("augmentMs");
    s.waitMs = r.d("waitMs");
    s.modelMs = r.d("modelMs");
    out.push_back(std::move(s));
  }
  return out;
}

Json parseMeta(const std::string& path, const std::map<std::string, std::string>& meta, const std::string& key) {
  auto it = meta.find(key);
  if (it == meta.end()) corrupt(path, "metadata '" + key + "' is missing");
  try {
    return model::parseJson(it->second, 64);
  } catch (const JsonError& e) {
    corrupt(path, "metadata '" + key + "' is not valid JSON (" + e.what + ")");
  }
}

// ===========================================================================
// SHA-256 (FIPS 180-4)
// ===========================================================================
class Sha256 {
 public:
  void update(const uint8_t* p, size_t n) {
    total_ += n;
    if (fill_) {
      const size_t take = std::min(n, size_t{64} - fill_);
      std::memcpy(buf_ + fill_, p, take);
      fill_ += take;
      p += take;
      n -= take;
      if (fill_ == 64) {
        block(buf_);
        fill_ = 0;
      }
    }
    for (; n >= 64; p += 64, n -= 64) block(p);
    if (n) {
      std::memcpy(buf_, p, n);
      fill_ = n;
    }
  }
  std::string hex() {
    const uint64_t bits = total_ * 8;
    const uint8_t one = 0x80, zero = 0;
    update(&one, 1);
    while (fill_ != 56) update(&zero, 1);
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(bits >> (56 - 8 * i));
    update(len, 8);
    std::string out;
    char b[9];
    for (uint32_t v : h_) {
      std::snprintf(b, sizeof b, "%08x", v);
      out += b;
    }
    return out;
  }

 private:
  static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
  void block(const uint8_t* p) {
    static constexpr uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
    uint32_t w[64];
    for (int i = 0; i < 16; ++i)
      w[i] = static_cast<uint32_t>(p[4 * i]) << 24 | static_cast<uint32_t>(p[4 * i + 1]) << 16 |
             static_cast<uint32_t>(p[4 * i + 2]) << 8 | static_cast<uint32_t>(p[4 * i + 3]);
    for (int i = 16; i < 64; ++i) {
      const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];
    for (int i = 0; i < 64; ++i) {
      const uint32_t S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
      const uint32_t ch = (e & f) ^ (~e & g);
      const uint32_t t1 = h + S1 + ch + k[i] + w[i];
      const uint32_t S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
      const uint32_t mj = (a & b) ^ (a & c) ^ (b & c);
      const uint32_t t2 = S0 + mj;
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    h_[0] += a;
    h_[1] += b;
    h_[2] += c;
    h_[3] += d;
    h_[4] += e;
    h_[5] += f;
    h_[6] += g;
    h_[7] += h;
  }

  uint32_t h_[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  uint8_t buf_[64];
  size_t fill_ = 0;
  uint64_t total_ = 0;
};

}  // namespace

std::string archJson(const model::VitConfig& a) {
  return Obj()
      .add("patchSize", num(a.patchSize))
      .add("embedDim", num(a.embedDim))
      .add("depth", num(a.depth))
      .add("numHeads", num(a.numHeads))
      .add("maskLayers", num(a.maskLayers))
      .add("mlpRatio", num(a.mlpRatio))
      .add("qkvBias", a.qkvBias ? "true" : "false")
      .add("lnEps", num(a.lnEps))
      .add("imageSize", num(a.imageSize))
      .str();
}

std::string sha256File(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(code::kIo, "Cannot read '" + path + "'");
  Sha256 h;
  std::vector<char> buf(1 << 20);
  while (f) {
    f.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const std::streamsize got = f.gcount();
    if (got > 0) h.update(reinterpret_cast<const uint8_t*>(buf.data()), static_cast<size_t>(got));
  }
  if (f.bad()) throw Error(code::kIo, "Cannot read '" + path + "'");
  return h.hex();
}

void writeBundle(const std::string& path, const NcdModel& m, const MomentumSGD* momentum, bool includeFrozen) {
  std::map<std::string, at::Tensor> tensors;
  for (auto& kv : m.backbone->named_parameters(true))
    if (includeFrozen || kv.value().requires_grad()) tensors["backbone." + kv.key()] = kv.value();
  for (auto& kv : m.heads->named_parameters(true))
    if (kv.value().requires_grad()) tensors[kv.key()] = kv.value();
  if (momentum)
    for (auto& [name, buf] : momentum->momentumBuffers()) tensors["momentum." + name] = buf;

  const std::string resume =
      Obj()
          .add("seed", quote(std::to_string(m.config.seed)))
          .add("next_epoch", num(m.epochsDone))
          .add("streams",
               Obj()
                   .add("torch", quote("at::manual_seed(seed) before the backbone and heads are built"))
                   .add("sampler", quote("BalancedSampler(seed = deriveSeed(seed, 1, epoch)) per epoch"))
                   .add("augment", quote("Augmenter(deriveSeed(seed, 2, epoch, batch, row)) per sample, view 1 then view 2"))
                   .str())
          .add("data_fingerprint", quote(m.dataFingerprint))
          .add("momentum", momentum && !momentum->momentumBuffers().empty() ? "true" : "false")
          .str();
  const std::string backbone = Obj()
                                   .add("path", m.backbonePath.empty() ? "null" : quote(m.backbonePath))
                                   .add("sha256", m.backboneSha256.empty() ? "null" : quote(m.backboneSha256))
                                   .add("stored", includeFrozen ? "true" : "false")
                                   .str();
  std::string range = "null";
  if (m.searchRange) range = "[" + num(m.searchRange->first) + "," + num(m.searchRange->second) + "]";
  const std::vector<std::pair<std::string, std::string>> meta = {
      {"anomalyncd.format_version", std::to_string(kBundleVersion)},
      {"anomalyncd.config", json::objectOf(m.config)},
      {"anomalyncd.arch", archJson(m.arch)},
      {"anomalyncd.class_names", arr(m.config.classNames)},
      {"anomalyncd.preprocess", preprocessJson()},
      {"anomalyncd.search_range", range},
      {"anomalyncd.epochs_done", num(m.epochsDone)},
      {"anomalyncd.history", historyJson(m.history)},
      {"anomalyncd.selected_heads", arr(m.selectedHeads)},
      {"anomalyncd.resume", resume},
      {"anomalyncd.backbone", backbone},
  };
  model::writeSafetensors(path, tensors, meta, /*atomic=*/true);
}

BundleContents readBundleContents(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw Error(code::kIo, "Cannot open training bundle '" + path + "': " +
                               (std::filesystem::exists(path, ec) ? "not a regular file" : "no such file"));
  model::SafetensorsFile file = model::readSafetensors(path);
  const std::map<std::string, std::string>& meta = file.metadata;
  auto ver = meta.find("anomalyncd.format_version");
  if (ver == meta.end()) corrupt(path, "not an anomalyncd training bundle (no anomalyncd.format_version metadata)");
  if (ver->second != std::to_string(kBundleVersion))
    corrupt(path, "bundle format version '" + ver->second + "' is not supported (this build reads version " +
                      std::to_string(kBundleVersion) + ")");
  BundleContents b;
  auto m = std::make_shared<NcdModel>();
  const Json cfg = parseMeta(path, meta, "anomalyncd.config");
  if (cfg.type != Json::Obj) corrupt(path, "metadata config is not an object");
  m->config = parseConfig(path, cfg);
  const Json arch = parseMeta(path, meta, "anomalyncd.arch");
  if (arch.type != Json::Obj) corrupt(path, "metadata arch is not an object");
  m->arch = parseArch(path, arch);
  const Json done = parseMeta(path, meta, "anomalyncd.epochs_done");
  if (done.type != Json::Num || done.num < 0 || done.num != std::floor(done.num) || done.num > m->config.epochs)
    corrupt(path, "metadata epochs_done is invalid");
  m->epochsDone = static_cast<int>(done.num);
  m->history = parseHistory(path, parseMeta(path, meta, "anomalyncd.history"));
  if (static_cast<int>(m->history.size()) != m->epochsDone) corrupt(path, "history length differs from epochs_done");
  m->selectedHeads = selectHeads(m->history);
  const Json range = parseMeta(path, meta, "anomalyncd.search_range");
  if (range.type == Json::Arr && range.arr.size() == 2 && range.arr[0].type == Json::Num && range.arr[1].type == Json::Num)
    m->searchRange = std::make_pair(static_cast<int>(range.arr[0].num), static_cast<int>(range.arr[1].num));
  const Json resume = parseMeta(path, meta, "anomalyncd.resume");
  if (resume.type != Json::Obj) corrupt(path, "metadata resume is not an object");
  m->dataFingerprint = Reader{path, resume, "resume"}.s("data_fingerprint");
  const Json bb = parseMeta(path, meta, "anomalyncd.backbone");
  if (bb.type != Json::Obj) corrupt(path, "metadata backbone is not an object");
  const Json* bp = bb.get("path");
  const Json* bs = bb.get("sha256");
  m->backbonePath = bp && bp->type == Json::Str ? bp->s : "";
  m->backboneSha256 = bs && bs->type == Json::Str ? bs->s : "";
  b.frozenStored = Reader{path, bb, "backbone"}.b("stored");
  if (!b.frozenStored && m->backbonePath.empty()) corrupt(path, "it stores neither the frozen backbone nor its file");
  b.meta = m;
  b.tensors = std::move(file.tensors);
  return b;
}

void loadBundleWeights(NcdModel& m, const BundleContents& b, const std::string& path) {
  c10::AutoGradMode noGrad(false);
  auto copyIn = [&](const std::string& name, at::Tensor& p) {
    auto it = b.tensors.find(name);
    if (it == b.tensors.end()) corrupt(path, "tensor '" + name + "' is missing");
    if (!it->second.sizes().equals(p.sizes())) corrupt(path, "tensor '" + name + "' has the wrong shape");
    p.copy_(it->second);
  };
  for (auto& kv : m.backbone->named_parameters(true))
    if (b.frozenStored || kv.value().requires_grad()) copyIn("backbone." + kv.key(), kv.value());
  for (auto& kv : m.heads->named_parameters(true)) copyIn(kv.key(), kv.value());
}

std::map<std::string, at::Tensor> bundleMomentum(const BundleContents& b) {
  std::map<std::string, at::Tensor> out;
  for (auto& [k, v] : b.tensors)
    if (k.rfind("momentum.", 0) == 0) out[k.substr(9)] = v;
  return out;
}

std::shared_ptr<NcdModel> loadTrainedModel(const std::string& path, const std::string& backboneOverride,
                                     const std::function<void(const std::string&)>& warn) {
  BundleContents b = readBundleContents(path);
  const NcdModel& meta = *b.meta;
  std::string bbPath;
  if (!b.frozenStored) {
    bbPath = backboneOverride.empty() ? meta.backbonePath : backboneOverride;
    std::error_code ec;
    if (!std::filesystem::exists(bbPath, ec))
      throw Error(code::kIo, "The training bundle '" + path + "' needs its frozen backbone checkpoint '" + bbPath +
                                 "', which does not exist (pass its new location as the backbone option)");
  }
  std::shared_ptr<NcdModel> m = buildModel(meta.config, meta.arch, bbPath, nullptr);
  if (!b.frozenStored && m->backboneSha256 != meta.backboneSha256)
    throw Error(code::kCheckpoint, "The backbone checkpoint '" + bbPath + "' has SHA-256 " + m->backboneSha256 +
                                       " but the training bundle '" + path + "' was trained on " + meta.backboneSha256);
  loadBundleWeights(*m, b, path);
  if (!bundleMomentum(b).empty() && warn && meta.epochsDone < meta.config.epochs)
    warn("'" + path + "' is an unfinished run (" + std::to_string(meta.epochsDone) + " of " +
         std::to_string(meta.config.epochs) + " epochs)");
  m->history = meta.history;
  m->epochsDone = meta.epochsDone;
  m->selectedHeads = meta.selectedHeads;
  m->dataFingerprint = meta.dataFingerprint;
  m->searchRange = meta.searchRange;
  m->backboneSha256 = meta.backboneSha256;
  m->backbonePath = b.frozenStored ? meta.backbonePath : bbPath;
  m->backbone->eval();
  m->heads->eval();
  return m;
}

}  // namespace anomalyncd::train
