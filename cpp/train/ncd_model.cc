// Building the NCD model (docs/METHOD.md §4.3): a trainable copy of the loaded
// backbone, the projection MLP and cosine heads, and the set of trainable parameters.
#include <ATen/ATen.h>

#include <algorithm>

#include "common/error.h"
#include "model/backbone.h"
#include "model/heads.h"
#include "model/vit.h"
#include "train/trainer.h"

namespace anomalyncd::train {

std::shared_ptr<NcdModel> buildModel(const TrainConfig& cfg, const model::LoadedBackbone& backbone,
                                     const std::function<void(const std::string&)>& warn,
                                     std::optional<c10::Device> device) {
  auto m = std::make_shared<NcdModel>();
  m->config = cfg;
  const model::VitConfig& arch = backbone.arch;
  if (m->config.gradFromBlock < 0) m->config.gradFromBlock = std::max(0, arch.depth - 1);
  if (m->config.gradFromBlock > arch.depth)
    throw Error(code::kInvalidArgument, "gradFromBlock (" + std::to_string(m->config.gradFromBlock) +
                                            ") must be <= the ViT depth (" + std::to_string(arch.depth) + ")");
  model::HeadsConfig hc;
  hc.inDim = arch.embedDim;
  hc.projHidden = cfg.projHidden;
  hc.projOut = cfg.projOut;
  hc.nHead = cfg.nHead;
  hc.numClasses = static_cast<int>(cfg.classNames.size());
  // The seeding sequence of every earlier version: seed, construct the ViT, construct
  // the heads; then the loaded weights replace the ViT's initial ones (the same bits
  // as loading the checkpoint into it).
  m->backbone = model::cloneForTraining(backbone, cfg.seed, [&] { m->heads = std::make_shared<model::MultiHead>(hc); });
  m->arch = arch;
  m->backbonePath = backbone.path;
  m->backboneSha256 = backbone.sha256;
  if (backbone.path.empty() && warn)
    warn("No backbone checkpoint given: the ViT (patch " + std::to_string(arch.patchSize) + ", dim " +
         std::to_string(arch.embedDim) + ", depth " + std::to_string(arch.depth) +
         ") is randomly initialised (seeded); results will be far from the reference, which starts from DINO weights");
  // Constructed (and seeded) on the CPU, then moved: the initial draws are the same on
  // every device.
  const c10::Device dev = device.value_or(backbone.device);
  if (!dev.is_cpu()) {
    m->backbone->to(dev);
    m->heads->to(dev);
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
