// Mask-guided DINO ViT (METHOD.md §4.1, 4.2, T20). Pure C++ over libtorch, no N-API.
//
// Parameter names equal the DINO state-dict keys:
//   cls_token [1,1,D], pos_embed [1,N+1,D], patch_embed.proj.{weight,bias},
//   blocks.i.norm1.{weight,bias}, blocks.i.attn.qkv.{weight,bias},
//   blocks.i.attn.proj.{weight,bias}, blocks.i.norm2.{weight,bias},
//   blocks.i.mlp.fc1.{weight,bias}, blocks.i.mlp.fc2.{weight,bias}, norm.{weight,bias}.
// Everything follows the input's device and dtype (no hard-coded CPU).
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <memory>
#include <vector>

#include "model/vit_config.h"

namespace anomalyncd::model {

// The attention core for q, k, v of shape [B, H, N, hd] (any strides):
// softmax(q k^T * scale with, if `blocked` ([B, N] bool) is defined, the [CLS]
// query row (row 0) set to -1e9 at every blocked key) @ v, returned as [B, N, H*hd]
// (heads concatenated, token-major, i.e. DINO's `(attn @ v).transpose(1, 2).reshape`).
// `impl` is a request: Fused falls back to Plain where it is not applicable
// (non-CPU, non-float32/64, or grad needed for q/k/v).
at::Tensor maskedAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           double scale, const at::Tensor& blocked, AttentionImpl impl);

// True when `impl` = Fused would actually run the fused routine for these inputs.
bool fusedApplicable(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);

// In-place truncated normal (PyTorch's trunc_normal_: inverse-CDF method, absolute bounds).
void truncNormal_(at::Tensor t, double std, double a = -2.0, double b = 2.0);

class PatchEmbed : public torch::nn::Module {
 public:
  PatchEmbed(int patchSize, int inChans, int embedDim);
  at::Tensor forward(const at::Tensor& x);  // [B,3,H,W] -> [B, (H/p)*(W/p), D]
  torch::nn::Conv2d proj{nullptr};
  int patchSize;
};

class VitAttention : public torch::nn::Module {
 public:
  VitAttention(int dim, int numHeads, bool qkvBias);
  // x [B,N,C]; blocked [B,N] bool or undefined (no guidance)
  at::Tensor forward(const at::Tensor& x, const at::Tensor& blocked, AttentionImpl impl);
  torch::nn::Linear qkv{nullptr}, proj{nullptr};
  int numHeads;
  double scale;
};

class VitMlp : public torch::nn::Module {
 public:
  VitMlp(int dim, int hidden);
  at::Tensor forward(const at::Tensor& x);  // fc2(GELU_erf(fc1(x)))
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};

class VitBlock : public torch::nn::Module {
 public:
  VitBlock(const VitConfig& cfg);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& blocked, AttentionImpl impl);
  torch::nn::LayerNorm norm1{nullptr}, norm2{nullptr};
  std::shared_ptr<VitAttention> attn;
  std::shared_ptr<VitMlp> mlp;
};

class MaskGuidedViT : public torch::nn::Module {
 public:
  // Validates cfg (Error kInvalidArgument). Initialisation as DINO (trunc-normal 0.02
  // for cls_token, pos_embed and Linear weights, zero Linear biases, LayerNorm 1/0);
  // normally overwritten by loadInto().
  explicit MaskGuidedViT(const VitConfig& cfg);

  // x [B,3,H,W] normalised image; mask [B,1,H,W] (or [B,H,W]) float in [0,1], or an
  // undefined tensor for an unguided DINO forward. Returns the final-normed [CLS]
  // token [B, D]. H, W >= patch; a grid different from the checkpoint's (or H != W)
  // interpolates pos_embed exactly like DINO's interpolate_pos_encoding.
  at::Tensor forward(const at::Tensor& x, const at::Tensor& mask = at::Tensor());

  // Pieces of forward(), exposed for tests.
  at::Tensor poolMask(const at::Tensor& mask, int64_t H, int64_t W) const;  // [B, 1 + h0*w0]
  at::Tensor interpolatePosEncoding(int64_t npatch, int64_t H, int64_t W) const;  // [1, 1+npatch, D]
  at::Tensor prepareTokens(const at::Tensor& x) const;                             // [B, 1+n, D]

  const VitConfig& config() const { return cfg_; }
  void setAttentionImpl(AttentionImpl impl) { cfg_.attention = impl; }
  AttentionImpl attentionImpl() const { return cfg_.attention; }

  std::shared_ptr<PatchEmbed> patch_embed;
  at::Tensor cls_token, pos_embed;
  torch::nn::ModuleList blocks{nullptr};
  std::vector<std::shared_ptr<VitBlock>> blockList;  // typed view of `blocks`
  torch::nn::LayerNorm norm{nullptr};

 private:
  VitConfig cfg_;
};

}  // namespace anomalyncd::model
