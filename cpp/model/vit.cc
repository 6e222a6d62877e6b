#include "model/vit.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/version.h>
#include <torch/nn/init.h>
#include <torch/utils.h>

#include <cmath>
#include <cstdlib>
#include <limits>

#include "common/error.h"
#include "gpu/attention.h"     // the CUDA path of maskedAttention
#include "model/checkpoint.h"  // shapeStr

namespace anomalyncd::model {

namespace {

[[noreturn]] void invalid(const std::string& msg) { throw Error(code::kInvalidArgument, msg); }

// RAII: CPU autocast off for a scope (restored after). libtorch 2.4 replaced the
// per-device setters by ones taking the device type.
class CpuAutocastOff {
 public:
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  CpuAutocastOff() : prev_(at::autocast::is_autocast_enabled(at::kCPU)) { at::autocast::set_autocast_enabled(at::kCPU, false); }
  ~CpuAutocastOff() { at::autocast::set_autocast_enabled(at::kCPU, prev_); }
#else
  CpuAutocastOff() : prev_(at::autocast::is_cpu_enabled()) { at::autocast::set_cpu_enabled(false); }
  ~CpuAutocastOff() { at::autocast::set_cpu_enabled(prev_); }
#endif
  CpuAutocastOff(const CpuAutocastOff&) = delete;
  CpuAutocastOff& operator=(const CpuAutocastOff&) = delete;

 private:
  bool prev_;
};

// Value written into blocked logits. -1e9 as in the reference; float16 cannot hold it.
double maskFillValue(at::ScalarType st) {
  return st == at::kHalf ? -65504.0 : -1e9;
}

}  // namespace

// --------------------------------------------------------------------------
// Config
// --------------------------------------------------------------------------
std::vector<std::string> presetNames() {
  return {"dino_vits16", "dino_vits8", "dino_vitb16", "dino_vitb8"};
}

VitConfig presetConfig(const std::string& name) {
  VitConfig c;
  if (name == "dino_vits16" || name == "dino_vits8") {
    c.embedDim = 384;
    c.depth = 12;
    c.numHeads = 6;
  } else if (name == "dino_vitb16" || name == "dino_vitb8") {
    c.embedDim = 768;
    c.depth = 12;
    c.numHeads = 12;
  } else {
    std::string list;
    for (const auto& n : presetNames()) list += (list.empty() ? "" : ", ") + n;
    invalid("Unknown ViT preset '" + name + "' (valid presets: " + list + ")");
  }
  c.patchSize = (name == "dino_vits8" || name == "dino_vitb8") ? 8 : 16;
  c.maskLayers = 9;
  c.mlpRatio = 4;
  c.qkvBias = true;
  c.lnEps = 1e-6;
  c.imageSize = 224;
  return c;
}

void validateConfig(const VitConfig& c) {
  auto bad = [](const std::string& m) { invalid("Invalid ViT config: " + m); };
  if (c.patchSize < 1) bad("patchSize must be >= 1 (got " + std::to_string(c.patchSize) + ")");
  if (c.embedDim < 1) bad("embedDim must be >= 1 (got " + std::to_string(c.embedDim) + ")");
  if (c.depth < 0) bad("depth must be >= 0 (got " + std::to_string(c.depth) + ")");
  if (c.numHeads < 1 || c.embedDim % c.numHeads != 0)
    bad("numHeads (" + std::to_string(c.numHeads) + ") must divide embedDim (" +
        std::to_string(c.embedDim) + ")");
  if (c.maskLayers < 0 || c.maskLayers > c.depth)
    bad("maskLayers must be in [0, depth=" + std::to_string(c.depth) + "] (got " +
        std::to_string(c.maskLayers) + ")");
  if (!(c.mlpRatio > 0) || static_cast<int64_t>(c.embedDim * c.mlpRatio) < 1)
    bad("mlpRatio must be > 0");
  if (!(c.lnEps > 0)) bad("lnEps must be > 0");
  if (c.imageSize < c.patchSize)
    bad("imageSize (" + std::to_string(c.imageSize) + ") must be >= patchSize (" +
        std::to_string(c.patchSize) + ")");
}

// --------------------------------------------------------------------------
// Init helper
// --------------------------------------------------------------------------
void truncNormal_(at::Tensor t, double std, double a, double b) {
  torch::NoGradGuard ng;
  auto cdf = [](double x) { return (1.0 + std::erf(x / std::sqrt(2.0))) / 2.0; };
  const double l = cdf(a / std), u = cdf(b / std);
  t.uniform_(2 * l - 1, 2 * u - 1);
  t.erfinv_();
  t.mul_(std * std::sqrt(2.0));
  t.clamp_(a, b);
}

// --------------------------------------------------------------------------
// Attention core
// --------------------------------------------------------------------------
bool fusedApplicable(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  if (!q.device().is_cpu() || !k.device().is_cpu() || !v.device().is_cpu()) return false;
  const auto st = q.scalar_type();
  if (st != at::kFloat && st != at::kDouble) return false;
  if (k.scalar_type() != st || v.scalar_type() != st) return false;
  if (at::GradMode::is_enabled() && (q.requires_grad() || k.requires_grad() || v.requires_grad()))
    return false;
  return true;
}

namespace {

at::Tensor plainAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                          double scale, const at::Tensor& blocked) {
  const int64_t B = q.size(0), H = q.size(1), N = q.size(2), hd = q.size(3);
  at::Tensor attn = at::matmul(q, k.transpose(-2, -1)) * scale;  // [B,H,N,N]
  if (blocked.defined()) {
    // [B,1,1,N] (key blocked) & [1,1,N,1] (query is [CLS]) -> only row 0 is filled
    at::Tensor isCls = at::arange(N, blocked.options().dtype(at::kLong)).eq(0).view({1, 1, N, 1});
    attn = attn.masked_fill(blocked.view({B, 1, 1, N}).logical_and(isCls),
                            maskFillValue(attn.scalar_type()));
  }
  attn = attn.softmax(-1);
  return at::matmul(attn, v).transpose(1, 2).reshape({B, N, H * hd});
}

// Per batch element: logits for all heads in one [H,N,N] buffer (reused across the
// batch), the [CLS] row filled in place, in-place softmax, and the product with v
// written directly into the [B,N,H*hd] output. No [B,H,N,N] tensor and no masked copy.
// Not autograd-capable (out= / in-place ops): callers check fusedApplicable().
at::Tensor fusedAttentionCpu(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             double scale, const at::Tensor& blocked) {
  const int64_t B = q.size(0), H = q.size(1), N = q.size(2), hd = q.size(3);
  at::Tensor out = at::empty({B, N, H * hd}, q.options());
  // zeros, not empty: for tiny sizes baddbmm's naive CPU kernel computes beta * buf even
  // for beta = 0, so uninitialised NaNs would leak in (later batches see finite softmax
  // values, which 0 * x clears)
  at::Tensor buf = at::zeros({H, N, N}, q.options());
  const double fill = maskFillValue(q.scalar_type());
  for (int64_t b = 0; b < B; ++b) {
    // buf = scale * q_b @ k_b^T   (beta = 0: buf's old contents are ignored)
    buf.baddbmm_(q.select(0, b), k.select(0, b).transpose(1, 2), /*beta=*/0, /*alpha=*/scale);
    if (blocked.defined()) {
      // row 0 of every head: [H, N], mask [1, N]
      buf.select(1, 0).masked_fill_(blocked.select(0, b).unsqueeze(0), fill);
    }
    at::_softmax_out(buf, buf, /*dim=*/2, /*half_to_float=*/false);
    // out[b] viewed as [H, N, hd] (strides hd, H*hd, 1)
    at::Tensor ob = out.select(0, b).view({N, H, hd}).transpose(0, 1);
    at::bmm_out(ob, buf, v.select(0, b));
  }
  return out;
}

}  // namespace

at::Tensor maskedAttention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                           double scale, const at::Tensor& blocked, AttentionImpl impl) {
  if (q.dim() != 4 || k.sizes() != q.sizes() || v.sizes() != q.sizes())
    invalid("maskedAttention: q, k, v must be [B,H,N,hd] of equal shape (got " +
            shapeStr(q.sizes()) + ", " + shapeStr(k.sizes()) + ", " + shapeStr(v.sizes()) + ")");
  if (blocked.defined() &&
      (blocked.dim() != 2 || blocked.size(0) != q.size(0) || blocked.size(1) != q.size(2) ||
       blocked.scalar_type() != at::kBool))
    invalid("maskedAttention: blocked must be a [B,N] bool tensor (got " +
            shapeStr(blocked.sizes()) + ")");
#if defined(ANOMALYNCD_TORCH_CUDA)
  // CUDA tensors: [CLS] row by the fused kernel, other rows by fused SDPA (cpp/gpu/attention.h)
  if (q.is_cuda())
    return gpu::attention::maskedAttentionCuda(q, k, v, scale, blocked, maskFillValue(q.scalar_type()));
#endif
  if (impl == AttentionImpl::Fused && fusedApplicable(q, k, v))
    return fusedAttentionCpu(q, k, v, scale, blocked);
  return plainAttention(q, k, v, scale, blocked);
}

// --------------------------------------------------------------------------
// Modules
// --------------------------------------------------------------------------
namespace {
void initLinear(torch::nn::Linear& l) {
  truncNormal_(l->weight, 0.02);
  if (l->bias.defined()) {
    torch::NoGradGuard ng;
    l->bias.zero_();
  }
}
}  // namespace

PatchEmbed::PatchEmbed(int p, int inChans, int embedDim) : patchSize(p) {
  proj = register_module(
      "proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(inChans, embedDim, p).stride(p)));
}

at::Tensor PatchEmbed::forward(const at::Tensor& x) {
  return proj->forward(x).flatten(2).transpose(1, 2);
}

VitAttention::VitAttention(int dim, int heads, bool qkvBias) : numHeads(heads) {
  const int headDim = dim / heads;
  scale = std::pow(static_cast<double>(headDim), -0.5);
  qkv = register_module("qkv", torch::nn::Linear(torch::nn::LinearOptions(dim, 3 * dim).bias(qkvBias)));
  proj = register_module("proj", torch::nn::Linear(dim, dim));
  initLinear(qkv);
  initLinear(proj);
}

at::Tensor VitAttention::forward(const at::Tensor& x, const at::Tensor& blocked,
                                 AttentionImpl impl) {
  const int64_t B = x.size(0), N = x.size(1), C = x.size(2);
  at::Tensor qkvOut =
      qkv->forward(x).reshape({B, N, 3, numHeads, C / numHeads}).permute({2, 0, 3, 1, 4});
  at::Tensor q = qkvOut[0], k = qkvOut[1], v = qkvOut[2];
  if (q.device().is_cpu() && q.scalar_type() == at::kBFloat16) {
    // bf16 autocast on the CPU: the projections ran in bf16 (oneDNN), but libtorch's CPU
    // bf16 bmm has no fast kernel (ViT-B/8, 785 tokens, batch 4: 11-12.7 s with the
    // attention core in bf16, 5.0-5.7 s with it in fp32; for ViT-S/16's 197 tokens bf16
    // would win, 377 vs 555 ms at batch 8), so the attention core and proj run in
    // float32, autocast off (the fused routine when no gradient is needed).
    CpuAutocastOff off;
    return proj->forward(maskedAttention(q.to(at::kFloat), k.to(at::kFloat), v.to(at::kFloat), scale, blocked, impl));
  }
  at::Tensor o = maskedAttention(q, k, v, scale, blocked, impl);
  return proj->forward(o);
}

VitMlp::VitMlp(int dim, int hidden) {
  fc1 = register_module("fc1", torch::nn::Linear(dim, hidden));
  fc2 = register_module("fc2", torch::nn::Linear(hidden, dim));
  initLinear(fc1);
  initLinear(fc2);
}

at::Tensor VitMlp::forward(const at::Tensor& x) {
  return fc2->forward(at::gelu(fc1->forward(x)));  // exact (erf) GELU
}

VitBlock::VitBlock(const VitConfig& c) {
  auto ln = [&] {
    return torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.embedDim}).eps(c.lnEps));
  };
  norm1 = register_module("norm1", ln());
  attn = register_module("attn", std::make_shared<VitAttention>(c.embedDim, c.numHeads, c.qkvBias));
  norm2 = register_module("norm2", ln());
  mlp = register_module("mlp",
                        std::make_shared<VitMlp>(c.embedDim, static_cast<int>(c.embedDim * c.mlpRatio)));
}

at::Tensor VitBlock::forward(const at::Tensor& x, const at::Tensor& blocked, AttentionImpl impl) {
  at::Tensor y = x + attn->forward(norm1->forward(x), blocked, impl);
  return y + mlp->forward(norm2->forward(y));
}

MaskGuidedViT::MaskGuidedViT(const VitConfig& cfg) : cfg_(cfg) {
  validateConfig(cfg_);
  const int64_t grid = cfg_.imageSize / cfg_.patchSize;
  patch_embed = register_module("patch_embed",
                                std::make_shared<PatchEmbed>(cfg_.patchSize, 3, cfg_.embedDim));
  cls_token = register_parameter("cls_token", at::zeros({1, 1, cfg_.embedDim}));
  pos_embed = register_parameter("pos_embed", at::zeros({1, grid * grid + 1, cfg_.embedDim}));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int i = 0; i < cfg_.depth; ++i) {
    auto blk = std::make_shared<VitBlock>(cfg_);
    blocks->push_back(blk);
    blockList.push_back(blk);
  }
  norm = register_module(
      "norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({cfg_.embedDim}).eps(cfg_.lnEps)));
  truncNormal_(pos_embed, 0.02);
  truncNormal_(cls_token, 0.02);
}

at::Tensor MaskGuidedViT::interpolatePosEncoding(int64_t npatch, int64_t H, int64_t W) const {
  // DINO: `B, nc, w, h = x.shape` -> w is the height, h the width.
  const int64_t N = pos_embed.size(1) - 1;
  if (npatch == N && H == W) return pos_embed;
  const int64_t dim = pos_embed.size(2);
  const double sqrtN = std::sqrt(static_cast<double>(N));
  const int64_t side = static_cast<int64_t>(sqrtN);
  if (side * side != N)
    invalid("pos_embed has " + std::to_string(N) +
            " patch positions, not a square grid; cannot interpolate");
  at::Tensor classPos = pos_embed.select(1, 0);                       // [1, D]
  at::Tensor patchPos = pos_embed.narrow(1, 1, N);                     // [1, N, D]
  const int64_t p = cfg_.patchSize;
  const double w0 = static_cast<double>(H / p) + 0.1;  // small offset as in DINO (issue #8)
  const double h0 = static_cast<double>(W / p) + 0.1;
  std::vector<double> scales{w0 / sqrtN, h0 / sqrtN};
  // Same ATen call as torch.nn.functional.interpolate(scale_factor=..., mode='bicubic')
  // in torch 1.13 (align_corners=False, scale factors passed through to the kernel).
  at::Tensor grid = patchPos.reshape({1, side, side, dim}).permute({0, 3, 1, 2});
  at::Tensor interp = at::upsample_bicubic2d(grid, c10::nullopt, /*align_corners=*/false,
                                             at::ArrayRef<double>(scales));
  if (interp.size(2) != static_cast<int64_t>(w0) || interp.size(3) != static_cast<int64_t>(h0))
    throw Error(code::kInternal, "pos_embed interpolation produced grid " +
                                     shapeStr(interp.sizes()) + " for input " + std::to_string(H) +
                                     "x" + std::to_string(W));
  interp = interp.permute({0, 2, 3, 1}).reshape({1, -1, dim});
  return at::cat({classPos.unsqueeze(0), interp}, 1);
}

at::Tensor MaskGuidedViT::prepareTokens(const at::Tensor& x) const {
  const int64_t B = x.size(0), H = x.size(2), W = x.size(3);
  // The residual stream keeps the input's dtype: under bf16 autocast the convolution and
  // every Linear run in bfloat16 while the stream (and so each LayerNorm's input) stays
  // float32, which roughly halves the bf16 error at the same speed. No-op in fp32.
  at::Tensor t = patch_embed->forward(x).to(x.scalar_type());     // [B, n, D]
  at::Tensor cls = cls_token.to(t.dtype()).expand({B, -1, -1});
  t = at::cat({cls, t}, 1);
  return t + interpolatePosEncoding(t.size(1) - 1, H, W).to(t.dtype());
}

at::Tensor MaskGuidedViT::poolMask(const at::Tensor& maskIn, int64_t H, int64_t W) const {
  at::Tensor mask = maskIn.dim() == 3 ? maskIn.unsqueeze(1) : maskIn;
  if (mask.dim() != 4 || mask.size(1) != 1 || mask.size(2) != H || mask.size(3) != W)
    invalid("mask must be [B,1," + std::to_string(H) + "," + std::to_string(W) +
            "] to match the image (got " + shapeStr(maskIn.sizes()) + ")");
  if (!at::isFloatingType(mask.scalar_type()))
    invalid("mask must be a floating-point tensor with values in [0,1]");
  const int64_t p = cfg_.patchSize;
  at::Tensor pooled = at::avg_pool2d(mask, {p, p}, {p, p}).flatten(1);  // [B, h0*w0] row-major
  at::Tensor one = at::ones({pooled.size(0), 1}, pooled.options());
  return at::cat({one, pooled}, 1);
}

at::Tensor MaskGuidedViT::forward(const at::Tensor& x, const at::Tensor& mask) {
  if (!x.defined() || x.dim() != 4 || x.size(1) != 3)
    invalid("image batch must be [B,3,H,W] (got " +
            (x.defined() ? shapeStr(x.sizes()) : std::string("undefined")) + ")");
  if (!at::isFloatingType(x.scalar_type())) invalid("image batch must be a floating-point tensor");
  const int64_t B = x.size(0), H = x.size(2), W = x.size(3);
  if (B < 1) invalid("image batch is empty");
  if (H < cfg_.patchSize || W < cfg_.patchSize)
    invalid("image " + std::to_string(H) + "x" + std::to_string(W) + " is smaller than one patch (" +
            std::to_string(cfg_.patchSize) + ")");
  at::Tensor blocked;
  if (mask.defined()) {
    if (mask.size(0) != B)
      invalid("mask batch size " + std::to_string(mask.size(0)) + " != image batch size " +
              std::to_string(B));
    if (mask.device() != x.device()) invalid("mask and image must be on the same device");
    blocked = poolMask(mask, H, W).lt(0.5);  // [B, N] bool; [CLS] (value 1) never blocked
  }
  at::Tensor t = prepareTokens(x);
  const int firstMasked = cfg_.depth - cfg_.maskLayers;
  for (int i = 0; i < cfg_.depth; ++i)
    t = blockList[i]->forward(t, i >= firstMasked ? blocked : at::Tensor(), cfg_.attention);
  t = norm->forward(t);
  return t.select(1, 0).contiguous();
}

}  // namespace anomalyncd::model
