#include "model/heads.h"

#include <ATen/ATen.h>
#include <torch/utils.h>

#include <cmath>
#include <string>

#include "common/error.h"
#include "model/vit.h"

namespace anomalyncd::model {

namespace {
[[noreturn]] void invalid(const std::string& msg) { throw Error(code::kInvalidArgument, msg); }

void initLinear(torch::nn::Linear& l) {
  truncNormal_(l->weight, 0.02);
  torch::NoGradGuard ng;
  if (l->bias.defined()) l->bias.zero_();
}
}  // namespace

at::Tensor l2Normalise(const at::Tensor& f) {
  return f / f.norm(2, {-1}, /*keepdim=*/true).clamp_min(1e-12);
}

ProjectionMLP::ProjectionMLP(int inDim, int hidden, int out) {
  fc1 = register_module("fc1", torch::nn::Linear(inDim, hidden));
  fc2 = register_module("fc2", torch::nn::Linear(hidden, hidden));
  fc3 = register_module("fc3", torch::nn::Linear(hidden, out));
  initLinear(fc1);
  initLinear(fc2);
  initLinear(fc3);
}

at::Tensor ProjectionMLP::forward(const at::Tensor& f) {
  return fc3->forward(at::gelu(fc2->forward(at::gelu(fc1->forward(f)))));
}

CosineHead::CosineHead(int inDim, int numClasses) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(inDim));
  weight = register_parameter("weight", at::empty({numClasses, inDim}).uniform_(-bound, bound));
}

at::Tensor CosineHead::forward(const at::Tensor& fNormalised) {
  // weight norm with gain 1: row c = v_c / ||v_c||
  at::Tensor w = weight / weight.norm(2, {1}, /*keepdim=*/true);
  return at::matmul(fNormalised, w.t());
}

MultiHead::MultiHead(const HeadsConfig& cfg) : cfg_(cfg) {
  if (cfg.inDim < 1 || cfg.projHidden < 1 || cfg.projOut < 1)
    invalid("Invalid heads config: inDim, projHidden and projOut must be >= 1");
  if (cfg.nHead < 1) invalid("Invalid heads config: nHead must be >= 1 (got " + std::to_string(cfg.nHead) + ")");
  if (cfg.numClasses < 1)
    invalid("Invalid heads config: numClasses must be >= 1 (got " + std::to_string(cfg.numClasses) + ")");
  projector = register_module("projector",
                              std::make_shared<ProjectionMLP>(cfg.inDim, cfg.projHidden, cfg.projOut));
  heads = register_module("heads", torch::nn::ModuleList());
  for (int h = 0; h < cfg.nHead; ++h) {
    auto head = std::make_shared<CosineHead>(cfg.inDim, cfg.numClasses);
    heads->push_back(head);
    headList.push_back(head);
  }
}

at::Tensor MultiHead::project(const at::Tensor& f) {
  if (f.dim() != 2 || f.size(1) != cfg_.inDim)
    invalid("heads expect features [B," + std::to_string(cfg_.inDim) + "]");
  return projector->forward(f);
}

at::Tensor MultiHead::classify(const at::Tensor& f) {
  if (f.dim() != 2 || f.size(1) != cfg_.inDim)
    invalid("heads expect features [B," + std::to_string(cfg_.inDim) + "]");
  at::Tensor fn = l2Normalise(f);
  std::vector<at::Tensor> outs;
  outs.reserve(headList.size());
  for (auto& h : headList) outs.push_back(h->forward(fn));
  return at::stack(outs, 0);
}

HeadsOutput MultiHead::forward(const at::Tensor& f) { return {project(f), classify(f)}; }

void setTrainableFromBlock(MaskGuidedViT& vit, int g) {
  const int depth = vit.config().depth;
  if (g < 0 || g > depth)
    invalid("gradFromBlock must be in [0, " + std::to_string(depth) + "] (got " + std::to_string(g) + ")");
  for (auto& kv : vit.named_parameters(/*recurse=*/true)) {
    const std::string& name = kv.key();
    bool train = false;
    if (name.rfind("blocks.", 0) == 0) {
      const size_t dot = name.find('.', 7);
      const int idx = std::stoi(name.substr(7, dot - 7));
      train = idx >= g;
    }
    kv.value().set_requires_grad(train);
  }
}

}  // namespace anomalyncd::model
