// Projection MLP + weight-normalised cosine classifier heads (METHOD.md §4.3, 4.4, T21).
//
// Parameter names (for checkpoint bundles):
//   projector.fc1.{weight,bias} [hidden, D], projector.fc2.{weight,bias} [hidden, hidden],
//   projector.fc3.{weight,bias} [out, hidden],
//   heads.{h}.weight [C, D]   (the weight-norm direction v; gain fixed to 1, not stored)
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>

#include <memory>
#include <vector>

namespace anomalyncd::model {

class MaskGuidedViT;

struct HeadsConfig {
  int inDim = 768;        // backbone feature size D
  int projHidden = 2048;  // projection MLP hidden width
  int projOut = 256;      // projection MLP output (contrastive z)
  int nHead = 4;          // independent cosine heads
  int numClasses = 0;     // C = C_l + C_u (must be >= 1)
};

// Linear(D,2048) -> GELU(erf) -> Linear(2048,2048) -> GELU -> Linear(2048,256).
// trunc-normal std 0.02 (absolute bounds +-2) weights, zero biases.
class ProjectionMLP : public torch::nn::Module {
 public:
  ProjectionMLP(int inDim, int hidden, int out);
  at::Tensor forward(const at::Tensor& f);  // [B, D] -> [B, out]
  torch::nn::Linear fc1{nullptr}, fc2{nullptr}, fc3{nullptr};
};

// Bias-free cosine head: logits = (f/||f||) . (v_c/||v_c||). v initialised like torch's
// default Linear weight (uniform +-1/sqrt(D)).
class CosineHead : public torch::nn::Module {
 public:
  CosineHead(int inDim, int numClasses);
  at::Tensor forward(const at::Tensor& fNormalised);  // [B, D] (already L2-normalised) -> [B, C]
  at::Tensor weight;                                   // v, [C, D]
};

struct HeadsOutput {
  at::Tensor z;       // [B, projOut] projection (not normalised)
  at::Tensor logits;  // [nHead, B, C] cosines in [-1, 1]
};

class MultiHead : public torch::nn::Module {
 public:
  explicit MultiHead(const HeadsConfig& cfg);  // Error(kInvalidArgument) on a bad config
  HeadsOutput forward(const at::Tensor& f);    // f: [B, D] backbone [CLS] feature
  at::Tensor project(const at::Tensor& f);     // [B, projOut]
  at::Tensor classify(const at::Tensor& f);    // [nHead, B, C]
  const HeadsConfig& config() const { return cfg_; }

  std::shared_ptr<ProjectionMLP> projector;
  torch::nn::ModuleList heads{nullptr};
  std::vector<std::shared_ptr<CosineHead>> headList;

 private:
  HeadsConfig cfg_;
};

// f / max(||f||_2, 1e-12) along the last dimension (torch.nn.functional.normalize).
at::Tensor l2Normalise(const at::Tensor& f);

// METHOD.md §4.3: in the backbone only parameters blocks.{i}.* with i >= gradFromBlock keep
// requires_grad = true; everything else (patch_embed, cls_token, pos_embed, earlier
// blocks, final norm) is frozen. gradFromBlock in [0, depth] (depth = freeze all),
// otherwise Error(kInvalidArgument).
void setTrainableFromBlock(MaskGuidedViT& vit, int gradFromBlock);

}  // namespace anomalyncd::model
