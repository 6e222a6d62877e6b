#include "model/backbone.h"

#include <ATen/ATen.h>
#include <torch/utils.h>

#include <algorithm>
#include <set>

#include "common/error.h"
#include "common/sha256.h"
#include "model/checkpoint.h"
#include "model/vit.h"

namespace anomalyncd::model {

namespace {

const at::Tensor& need(const StateDict& sd, const char* key) {
  auto it = sd.find(key);
  if (it == sd.end() || !it->second.defined())
    throw Error(code::kCheckpoint, std::string("Checkpoint has no key '") + key + "' (not a DINO ViT state dict?)");
  return it->second;
}

std::string describe(const VitConfig& a) {
  return "patch " + std::to_string(a.patchSize) + ", dim " + std::to_string(a.embedDim) + ", depth " +
         std::to_string(a.depth) + ", " + std::to_string(a.numHeads) + " heads, image " + std::to_string(a.imageSize);
}

}  // namespace

std::mutex& rngMutex() {
  static std::mutex m;
  return m;
}

VitConfig archFromCheckpoint(const StateDict& sd) {
  const at::Tensor& pw = need(sd, "patch_embed.proj.weight");
  if (pw.dim() != 4 || pw.size(2) != pw.size(3))
    throw Error(code::kCheckpoint, "Checkpoint key 'patch_embed.proj.weight' has shape " + shapeStr(pw.sizes()) +
                                       ", expected [D, 3, patch, patch]");
  VitConfig c;
  c.embedDim = static_cast<int>(pw.size(0));
  c.patchSize = static_cast<int>(pw.size(2));
  // DINO's releases: ViT-S (384 wide, 6 heads) and ViT-B (768 wide, 12 heads).
  if (c.embedDim == 384) c.numHeads = 6;
  else if (c.embedDim == 768) c.numHeads = 12;
  else
    throw Error(code::kInvalidArgument,
                "Cannot read the architecture from the checkpoint: its width " + std::to_string(c.embedDim) +
                    " is not one of DINO's (384: ViT-S, 768: ViT-B), so the number of attention heads is unknown; "
                    "pass the architecture (arch) explicitly");
  int maxBlock = -1;
  for (auto& [k, t] : sd) {
    if (k.rfind("blocks.", 0) != 0) continue;
    const size_t dot = k.find('.', 7);
    const std::string idx = k.substr(7, dot == std::string::npos ? std::string::npos : dot - 7);
    if (!idx.empty() && idx.size() < 6 && idx.find_first_not_of("0123456789") == std::string::npos)
      maxBlock = std::max(maxBlock, std::stoi(idx));
  }
  c.depth = maxBlock + 1;
  c.maskLayers = std::min(9, c.depth);
  if (c.depth > 0) {
    const at::Tensor& fc1 = need(sd, "blocks.0.mlp.fc1.weight");
    if (fc1.dim() == 2) c.mlpRatio = static_cast<double>(fc1.size(0)) / c.embedDim;
    c.qkvBias = sd.count("blocks.0.attn.qkv.bias") > 0;
  }
  // inferConfig checks the rest against these and takes imageSize from pos_embed.
  return inferConfig(sd, c);
}

std::shared_ptr<LoadedBackbone> loadBackbone(const std::string& path, const std::optional<VitConfig>& arch, uint64_t seed,
                                             c10::Device device) {
  auto b = std::make_shared<LoadedBackbone>();
  b->path = path;
  b->seed = seed;
  b->device = device;
  StateDict sd;
  if (!path.empty()) {
    sd = readStateDict(path);
    if (arch) {
      validateConfig(*arch);
      b->arch = inferConfig(sd, *arch);
      b->archSource = "given";
    } else {
      b->arch = archFromCheckpoint(sd);
      b->archSource = "checkpoint";
      b->notes.push_back("Architecture read from the checkpoint: " + describe(b->arch));
    }
    b->sha256 = sha256File(path);
  } else if (arch) {
    b->arch = *arch;
    b->archSource = "given";
  } else {
    b->arch = presetConfig("dino_vitb8");
    b->archSource = "default";
  }
  validateConfig(b->arch);
  {
    std::lock_guard<std::mutex> lock(rngMutex());
    torch::manual_seed(seed);
    b->vit = std::make_shared<MaskGuidedViT>(b->arch);
  }
  if (!path.empty()) {
    loadInto(*b->vit, sd, /*strict=*/false);
    std::set<std::string> known;
    for (auto& kv : b->vit->named_parameters(true)) known.insert(kv.key());
    for (auto& kv : b->vit->named_buffers(true)) known.insert(kv.key());
    std::vector<std::string> unused;
    for (auto& [k, t] : sd)
      if (!known.count(k)) unused.push_back(k);
    if (!unused.empty()) {
      std::string list;
      for (size_t i = 0; i < unused.size() && i < 4; ++i) list += (i ? ", " : "") + std::string("'") + unused[i] + "'";
      if (unused.size() > 4) list += " and " + std::to_string(unused.size() - 4) + " more";
      b->notes.push_back("Ignored " + std::to_string(unused.size()) + " checkpoint key(s) the ViT does not use: " + list);
    }
  }
  b->vit->eval();
  for (auto& p : b->vit->parameters()) {
    p.set_requires_grad(false);
    b->parameterBytes += static_cast<int64_t>(p.numel() * p.element_size());
  }
  b->vit->to(device);
  return b;
}

std::shared_ptr<MaskGuidedViT> cloneForTraining(const LoadedBackbone& b, uint64_t seed, const std::function<void()>& afterInit) {
  std::shared_ptr<MaskGuidedViT> vit;
  {
    std::lock_guard<std::mutex> lock(rngMutex());
    at::manual_seed(seed);
    vit = std::make_shared<MaskGuidedViT>(b.arch);
    if (afterInit) afterInit();
  }
  vit->setAttentionImpl(b.arch.attention);
  torch::NoGradGuard noGrad;
  auto src = b.vit->named_parameters(true);
  for (auto& kv : vit->named_parameters(true)) kv.value().copy_(src[kv.key()]);
  auto srcBuf = b.vit->named_buffers(true);
  for (auto& kv : vit->named_buffers(true)) kv.value().copy_(srcBuf[kv.key()]);
  return vit;
}

}  // namespace anomalyncd::model
