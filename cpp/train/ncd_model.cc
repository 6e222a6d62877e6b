// Building the NCD model (docs/METHOD.md §4.3): the seeded mask-guided ViT with the
// backbone checkpoint's weights, the projection MLP and cosine heads, and the set of
// trainable parameters.
#include <ATen/ATen.h>

#include <algorithm>
#include <mutex>

#include "common/error.h"
#include "model/checkpoint.h"
#include "model/heads.h"
#include "model/vit.h"
#include "train/bundle.h"
#include "train/trainer.h"

namespace anomalyncd::train {

namespace {

// at::manual_seed and the constructions that draw from the global generator must not
// interleave with another job's.
std::mutex& seedMutex() {
  static std::mutex m;
  return m;
}

// A DINO-style architecture guessed from a state dict's shapes (head dim 64, maskLayers
// min(9, depth)); inferConfig() then checks it and sets imageSize.
model::VitConfig guessArch(const model::StateDict& sd) {
  model::VitConfig c;
  auto get = [&](const char* k) -> const at::Tensor& {
    auto it = sd.find(k);
    if (it == sd.end()) throw Error(code::kCheckpoint, std::string("Checkpoint has no key '") + k + "' (not a DINO ViT state dict?)");
    return it->second;
  };
  const at::Tensor& pw = get("patch_embed.proj.weight");
  if (pw.dim() != 4) throw Error(code::kCheckpoint, "Checkpoint key 'patch_embed.proj.weight' is not 4-D");
  c.embedDim = static_cast<int>(pw.size(0));
  c.patchSize = static_cast<int>(pw.size(2));
  int maxBlock = -1;
  for (auto& [k, t] : sd)
    if (k.rfind("blocks.", 0) == 0) {
      const size_t dot = k.find('.', 7);
      const std::string idx = k.substr(7, dot == std::string::npos ? std::string::npos : dot - 7);
      if (!idx.empty() && idx.size() < 6 && idx.find_first_not_of("0123456789") == std::string::npos)
        maxBlock = std::max(maxBlock, std::stoi(idx));
    }
  c.depth = maxBlock + 1;
  c.numHeads = std::max(1, c.embedDim / 64);
  c.maskLayers = std::min(9, c.depth);
  auto fc1 = sd.find("blocks.0.mlp.fc1.weight");
  if (fc1 != sd.end() && c.embedDim > 0) c.mlpRatio = static_cast<double>(fc1->second.size(0)) / c.embedDim;
  c.qkvBias = sd.count("blocks.0.attn.qkv.bias") > 0;
  return c;
}

}  // namespace

std::shared_ptr<NcdModel> buildModel(const TrainConfig& cfg, const std::optional<model::VitConfig>& archIn,
                                     const std::string& backbonePath,
                                     const std::function<void(const std::string&)>& warn) {
  auto m = std::make_shared<NcdModel>();
  m->config = cfg;
  model::VitConfig arch;
  model::StateDict sd;
  if (!backbonePath.empty()) {
    sd = model::readStateDict(backbonePath);
    arch = model::inferConfig(sd, archIn ? *archIn : guessArch(sd));
  } else {
    arch = archIn ? *archIn : model::presetConfig("dino_vitb8");
  }
  model::validateConfig(arch);
  if (m->config.gradFromBlock < 0) m->config.gradFromBlock = std::max(0, arch.depth - 1);
  if (m->config.gradFromBlock > arch.depth)
    throw Error(code::kInvalidArgument, "gradFromBlock (" + std::to_string(m->config.gradFromBlock) + ") must be <= the ViT depth (" +
            std::to_string(arch.depth) + ")");
  model::HeadsConfig hc;
  hc.inDim = arch.embedDim;
  hc.projHidden = cfg.projHidden;
  hc.projOut = cfg.projOut;
  hc.nHead = cfg.nHead;
  hc.numClasses = static_cast<int>(cfg.classNames.size());
  {
    std::lock_guard<std::mutex> lock(seedMutex());
    at::manual_seed(cfg.seed);
    m->backbone = std::make_shared<model::MaskGuidedViT>(arch);
    m->heads = std::make_shared<model::MultiHead>(hc);
  }
  m->arch = arch;
  if (!backbonePath.empty()) {
    model::loadInto(*m->backbone, sd, /*strict=*/false);
    m->backbonePath = backbonePath;
    m->backboneSha256 = sha256File(backbonePath);
  } else if (warn) {
    warn("No backbone checkpoint given: the ViT (patch " + std::to_string(arch.patchSize) + ", dim " +
         std::to_string(arch.embedDim) + ", depth " + std::to_string(arch.depth) +
         ") is randomly initialised (seeded); results will be far from the reference, which starts from DINO weights");
  }
  model::setTrainableFromBlock(*m->backbone, m->config.gradFromBlock);
  return m;
}

std::vector<std::pair<std::string, at::Tensor>> trainableParameters(NcdModel& m) {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (auto& kv : m.backbone->named_parameters(true))
    if (kv.value().requires_grad()) out.emplace_back("backbone." + kv.key(), kv.value());
  for (auto& kv : m.heads->named_parameters(true))
    if (kv.value().requires_grad()) out.emplace_back(kv.key(), kv.value());
  return out;
}

}  // namespace anomalyncd::train
