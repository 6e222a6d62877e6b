// The fused [CLS]-row attention kernel on CUDA tensors, and maskedAttention's
// CUDA path (cpp/model/vit.cc). Compiled only when the libtorch found has CUDA
// (cmake/cuda.cmake defines ANOMALYNCD_TORCH_CUDA). Uses c10/cuda (streams,
// guards) only: no ATen/cuda/CUDAContext.h, which needs cuBLAS/cuDNN headers.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/core/GradMode.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/version.h>

#include <cuda_runtime.h>

#include "gpu/attention.h"

namespace anomalyncd::gpu::attention {
namespace {

// One block per (batch, head); the barriers separate the phases of attention.h.
template <class T>
__global__ void __launch_bounds__(kThreads) clsRowKernel(ClsRowArgs<T> a) {
  __shared__ float red[kThreads];
  const int bh = blockIdx.x, t = threadIdx.x;
  for (int j = t; j < a.N; j += kThreads) logitBody(a, bh, j);
  __syncthreads();
  red[t] = partialMax(a, bh, t, kThreads);
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (t < s) red[t] = fmaxf(red[t], red[t + s]);
    __syncthreads();
  }
  const float max = red[0];
  __syncthreads();
  red[t] = partialExpSum(a, bh, t, kThreads, max);
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (t < s) red[t] += red[t + s];
    __syncthreads();
  }
  const float sum = red[0];
  for (int d = t; d < a.hd; d += kThreads) outputBody(a, bh, d, max, sum);
}

at::Tensor sdpaRows(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, double scale) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
  return at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0,
                                          /*is_causal=*/false, scale);
#else
  return at::matmul((at::matmul(q, k.transpose(-2, -1)) * scale).softmax(-1), v);
#endif
}

}  // namespace

at::Tensor maskedClsRowCuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            double scale, const at::Tensor& blocked) {
  TORCH_CHECK(q.is_cuda() && k.device() == q.device() && v.device() == q.device(),
              "maskedClsRowCuda: q, k, v must be on one CUDA device");
  TORCH_CHECK(q.dim() == 4 && k.sizes() == q.sizes() && v.sizes() == q.sizes(),
              "maskedClsRowCuda: q, k, v must be [B,H,N,hd] of equal shape");
  TORCH_CHECK(k.scalar_type() == q.scalar_type() && v.scalar_type() == q.scalar_type(),
              "maskedClsRowCuda: q, k, v must share one dtype");
  const c10::cuda::CUDAGuard guard(q.device());
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const int64_t B = q.size(0), H = q.size(1), N = q.size(2), hd = q.size(3);
  at::Tensor out = at::empty({B, H, 1, hd}, q.options());
  if (B * H == 0 || hd == 0) return out;
  TORCH_CHECK(N > 0, "maskedClsRowCuda: no keys");
  at::Tensor logits = at::empty({B * H, N}, q.options().dtype(at::kFloat));
  at::Tensor mask;
  if (blocked.defined()) mask = blocked.to(q.device(), at::kBool).contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, q.scalar_type(), "maskedClsRowCuda", [&] {
    ClsRowArgs<scalar_t> a{};
    a.q = q.data_ptr<scalar_t>();
    a.k = k.data_ptr<scalar_t>();
    a.v = v.data_ptr<scalar_t>();
    for (int d = 0; d < 4; ++d) a.qs[d] = q.stride(d), a.ks[d] = k.stride(d), a.vs[d] = v.stride(d);
    a.blocked = mask.defined() ? mask.data_ptr<bool>() : nullptr;
    a.logits = logits.data_ptr<float>();
    a.out = out.data_ptr<scalar_t>();
    a.B = static_cast<int>(B), a.H = static_cast<int>(H), a.N = static_cast<int>(N);
    a.hd = static_cast<int>(hd);
    a.scale = static_cast<float>(scale);
    a.fill = q.scalar_type() == at::kHalf ? -65504.f : -1e9f;
    clsRowKernel<scalar_t><<<static_cast<unsigned>(B * H), kThreads, 0, stream>>>(a);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

at::Tensor maskedAttentionCuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               double scale, const at::Tensor& blocked, double fill) {
  const int64_t B = q.size(0), H = q.size(1), N = q.size(2), hd = q.size(3);
  if (!blocked.defined())
    return sdpaRows(q, k, v, scale).transpose(1, 2).reshape({B, N, H * hd});
  const bool grad = c10::GradMode::is_enabled() &&
                    (q.requires_grad() || k.requires_grad() || v.requires_grad());
  at::Tensor row0;
  if (grad) {  // the same row through differentiable ops (training)
    at::Tensor l = at::matmul(q.narrow(2, 0, 1), k.transpose(-2, -1)) * scale;  // [B,H,1,N]
    l = l.masked_fill(blocked.view({B, 1, 1, N}), fill);
    row0 = at::matmul(l.softmax(-1), v);
  } else {
    row0 = maskedClsRowCuda(q, k, v, scale, blocked);
  }
  at::Tensor all = N == 1 ? row0 : at::cat({row0, sdpaRows(q.narrow(2, 1, N - 1), k, v, scale).to(row0.scalar_type())}, 2);
  return all.transpose(1, 2).reshape({B, N, H * hd});
}

}  // namespace anomalyncd::gpu::attention
