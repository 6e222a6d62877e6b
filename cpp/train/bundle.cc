#include "train/bundle.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "common/error.h"
#include "model/backbone.h"
#include "model/checkpoint.h"
#include "model/heads.h"
#include "model/preprocess.h"
#include "model/vit.h"
#include "train/json_fields.h"

namespace anomalyncd::train {

// Loss values of a diverged run are non-finite, written as null: read back as NaN.
template <>
struct json::NullDoubles<LossValues> : std::true_type {};

namespace {

using model::Json;
using model::JsonError;
using json::arr;
using json::num;
using json::Obj;
using json::quote;

// The attention implementation is a runtime choice, not part of the recorded architecture.
bool isRuntimeArchField(const char* name) { return std::strcmp(name, "attention") == 0; }

std::string historyJson(const std::vector<EpochStats>& h) {
  std::string s = "[";
  for (size_t i = 0; i < h.size(); ++i) s += (i ? "," : "") + json::objectOf(h[i]);
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
      .add("studentTemp", quote("softmax(logits / 0.1), known classes zeroed, renormalised (METHOD.md §7)"))
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
  bool b(const char* k) const { return at(k, Json::Bool).b; }
  std::string s(const char* k) const { return at(k, Json::Str).s; }
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
  model::VitConfig a;  // attention: not recorded, the default
  json::FieldReader reader(o, "Cannot load training bundle '" + path + "': ", "arch", isRuntimeArchField);
  visitFields(a, reader);
  try {
    model::validateConfig(a);
  } catch (const Error& e) {
    corrupt(path, std::string("metadata arch is invalid: ") + e.what());
  }
  return a;
}

std::vector<EpochStats> parseHistory(const std::string& path, const Json& a) {
  if (a.type != Json::Arr) corrupt(path, "metadata history is not an array");
  std::vector<EpochStats> out;
  for (auto& e : a.arr) {
    if (e.type != Json::Obj) corrupt(path, "metadata history entry is not an object");
    EpochStats s;
    json::FieldReader reader(e, "Cannot load training bundle '" + path + "': ", "history");
    visitFields(s, reader);
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

}  // namespace

std::string archJson(const model::VitConfig& a) {
  json::FieldWriter w(isRuntimeArchField);
  visitFields(a, w);
  return w.object();
}

void writeBundle(const std::string& path, const NcdModel& m, const MomentumSGD* momentum, bool includeFrozen,
                 const InferenceRecord* inference) {
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
  std::vector<std::pair<std::string, std::string>> meta = {
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
  if (!inference && m.inference) inference = &*m.inference;
  if (inference) meta.emplace_back("anomalyncd.inference", json::objectOf(*inference));
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
  if (meta.count("anomalyncd.inference")) {  // optional (older bundles have none)
    Json inf = parseMeta(path, meta, "anomalyncd.inference");
    if (inf.type != Json::Obj) corrupt(path, "metadata inference is not an object");
    // Fields added later (the descriptor score's) are empty in older bundles.
    for (const char* key : {"descriptorMean", "descriptorScale", "descriptorBank"})
      if (!inf.get(key)) {
        Json empty;
        empty.type = Json::Arr;
        inf.obj.emplace_back(key, std::move(empty));
      }
    InferenceRecord r;
    json::FieldReader reader(inf, "Cannot load training bundle '" + path + "': ", "inference", nullptr, /*nullDoubles=*/true);
    visitFields(r, reader);
    if (r.maskLevel < 1 || r.maskLevel > 255 || !(r.falseAlarmRate > 0 && r.falseAlarmRate < 1) || r.calibrationImages < 0 ||
        !(r.tauAlpha > 0) || (r.featureMean.empty() != r.prototypes.empty()) ||
        (!r.featureMean.empty() && r.prototypes.size() % r.featureMean.size() != 0) ||
        r.descriptorMean.size() != r.descriptorScale.size() || (r.descriptorMean.empty() != r.descriptorBank.empty()) ||
        (!r.descriptorMean.empty() && r.descriptorBank.size() % r.descriptorMean.size() != 0))
      corrupt(path, "metadata inference is invalid");
    m->inference = r;
  }
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
                                     const std::function<void(const std::string&)>& warn, c10::Device device) {
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
  // The recorded architecture (checked against the checkpoint when there is one).
  auto backbone = model::loadBackbone(bbPath, meta.arch, meta.config.seed, device);
  std::shared_ptr<NcdModel> m = buildModel(meta.config, *backbone, nullptr);
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
  m->inference = meta.inference;
  m->backboneSha256 = meta.backboneSha256;
  m->backbonePath = b.frozenStored ? meta.backbonePath : bbPath;
  m->backbone->eval();
  m->heads->eval();
  return m;
}

}  // namespace anomalyncd::train
