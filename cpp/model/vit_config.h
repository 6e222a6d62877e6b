// Architecture description of the (mask-guided) DINO ViT. Light header: no torch.
#pragma once
#include <string>
#include <type_traits>
#include <vector>

namespace anomalyncd::model {

// How the attention core (softmax(q k^T * scale, CLS row masked) v) is computed.
//  Plain: straightforward libtorch ops (matmul, masked_fill, softmax, matmul);
//         autograd-capable, any device.
//  Fused: CPU routine working per (batch, head) in a preallocated N x N buffer
//         (logits, CLS-row fill, in-place softmax, product with v written straight
//         into the [B, N, C] output). Used only where it is valid: CPU tensors,
//         float32/float64, and no gradient needed for q/k/v (grad mode off, or the
//         block's inputs do not require grad, e.g. frozen blocks during training).
//         Everywhere else Fused silently falls back to Plain.
enum class AttentionImpl { Plain, Fused };

// Default implementation (Fused measured faster on CPU: ViT-S/16, batch 8, 224,
// 2 threads; see cpp/model/model_selftest.cc --bench).
inline constexpr AttentionImpl kDefaultAttentionImpl = AttentionImpl::Fused;

struct VitConfig {
  int patchSize = 16;
  int embedDim = 384;
  int depth = 12;
  int numHeads = 6;
  int maskLayers = 9;  // the last `maskLayers` blocks use mask-guided attention
  double mlpRatio = 4;
  bool qkvBias = true;
  double lnEps = 1e-6;
  int imageSize = 224;  // the checkpoint's grid: pos_embed has (imageSize/patchSize)^2 + 1 rows
  AttentionImpl attention = kDefaultAttentionImpl;
};

// The one field list of VitConfig (binding/fields.h): binding read/write and the
// training bundle's "anomalyncd.arch" JSON go through it. `attention` is a runtime
// choice, last, so writers of the architecture alone can stop before it.
template <class Config, class Visitor>
std::enable_if_t<std::is_same_v<std::remove_const_t<Config>, VitConfig>> visitFields(Config& c, Visitor&& v) {
  v("patchSize", c.patchSize);
  v("embedDim", c.embedDim);
  v("depth", c.depth);
  v("numHeads", c.numHeads);
  v("maskLayers", c.maskLayers);
  v("mlpRatio", c.mlpRatio);
  v("qkvBias", c.qkvBias);
  v("lnEps", c.lnEps);
  v("imageSize", c.imageSize);
  v("attention", c.attention);
}

// AttentionImpl by name: "fused" | "plain".
inline const char* fieldEnumName(AttentionImpl v) { return v == AttentionImpl::Fused ? "fused" : "plain"; }
inline bool fieldEnumParse(const std::string& s, AttentionImpl& out) {
  if (s == "fused") out = AttentionImpl::Fused;
  else if (s == "plain") out = AttentionImpl::Plain;
  else return false;
  return true;
}

// "dino_vits16", "dino_vits8", "dino_vitb16", "dino_vitb8" (S: 384/12/6, B: 768/12/12,
// maskLayers 9, image 224). Unknown name -> Error(kInvalidArgument) listing the presets.
VitConfig presetConfig(const std::string& name);
std::vector<std::string> presetNames();

// Throws Error(kInvalidArgument) describing the first inconsistent field.
void validateConfig(const VitConfig& cfg);

}  // namespace anomalyncd::model
