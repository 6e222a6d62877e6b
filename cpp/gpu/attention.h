// The [CLS] query row of mask-guided attention (METHOD.md §4.2) as a fused
// kernel: for each (batch, head), row 0 of softmax(q k^T * scale, with the
// blocked keys of row 0 set to the fill value (-1e9; -65504 in half), exactly as
// model::maskedAttention does) times v. The other rows carry no mask and go
// through libtorch's fused scaled-dot-product attention (cpp/model/vit.cc).
//
// One block per (batch, head); the block barriers of the kernel split it into
// phases, each a per-thread ANCD_HD body:
//   1. logitBody     thread j: the logit of key j (strided over keys),
//   2. partialMax / partialExpSum   thread t: a strided partial, reduced per block,
//   3. outputBody    thread d: sum_j exp(l_j - max) v[j][d] / sum.
// emulateClsRow() runs the phases on the host (issue 8, item 6). Accumulation
// is in float for every element type (float, half, bfloat16).
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "common/hd.h"

namespace anomalyncd::gpu::attention {

constexpr int kThreads = 128;  // threads per (batch, head) block

template <class T>
struct ClsRowArgs {
  const T* q;  // [B,H,N,hd] with strides qs (elements)
  const T* k;
  const T* v;
  int64_t qs[4], ks[4], vs[4];
  const bool* blocked;  // [B,N] contiguous, or nullptr (no guidance)
  float* logits;        // scratch [B*H][N]
  T* out;               // [B,H,hd] contiguous: row 0 of each head
  int B, H, N, hd;
  float scale;
  float fill;           // -1e9 (float, bfloat16, double), -65504 (half)
};

template <class T>
ANCD_HD_INLINE float toFloat(const T& x) {
  return static_cast<float>(x);
}

template <class T>
ANCD_HD_INLINE void logitBody(const ClsRowArgs<T>& a, int bh, int j) {
  const int b = bh / a.H, h = bh % a.H;
  float* row = a.logits + static_cast<int64_t>(bh) * a.N;
  if (a.blocked && a.blocked[static_cast<int64_t>(b) * a.N + j]) {
    row[j] = a.fill;
    return;
  }
  const T* q = a.q + b * a.qs[0] + h * a.qs[1];  // query row 0
  const T* k = a.k + b * a.ks[0] + h * a.ks[1] + j * a.ks[2];
  float acc = 0.f;
  for (int d = 0; d < a.hd; ++d) acc += toFloat(q[d * a.qs[3]]) * toFloat(k[d * a.ks[3]]);
  row[j] = acc * a.scale;  // (q k^T) * scale, as the reference orders it
}

template <class T>
ANCD_HD_INLINE float partialMax(const ClsRowArgs<T>& a, int bh, int t, int threads) {
  const float* row = a.logits + static_cast<int64_t>(bh) * a.N;
  float m = -INFINITY;
  for (int j = t; j < a.N; j += threads) m = row[j] > m ? row[j] : m;
  return m;
}

template <class T>
ANCD_HD_INLINE float partialExpSum(const ClsRowArgs<T>& a, int bh, int t, int threads, float max) {
  const float* row = a.logits + static_cast<int64_t>(bh) * a.N;
  float s = 0.f;
  for (int j = t; j < a.N; j += threads) s += expf(row[j] - max);
  return s;
}

template <class T>
ANCD_HD_INLINE void outputBody(const ClsRowArgs<T>& a, int bh, int d, float max, float sum) {
  const int b = bh / a.H, h = bh % a.H;
  const float* row = a.logits + static_cast<int64_t>(bh) * a.N;
  const T* v = a.v + b * a.vs[0] + h * a.vs[1] + d * a.vs[3];
  float acc = 0.f;
  for (int j = 0; j < a.N; ++j) acc += expf(row[j] - max) * toFloat(v[j * a.vs[2]]);
  a.out[static_cast<int64_t>(bh) * a.hd + d] = static_cast<T>(acc / sum);
}

// The launch (grid B*H blocks of kThreads) on the host, phase by phase; the
// block reductions combine the per-thread partials as the kernel does.
template <class T>
void emulateClsRow(const ClsRowArgs<T>& a) {
  for (int bh = 0; bh < a.B * a.H; ++bh) {
    for (int t = 0; t < kThreads; ++t)
      for (int j = t; j < a.N; j += kThreads) logitBody(a, bh, j);
    float max = -INFINITY;
    for (int t = 0; t < kThreads; ++t) {
      const float m = partialMax(a, bh, t, kThreads);
      max = m > max ? m : max;
    }
    float sum = 0.f;
    for (int t = 0; t < kThreads; ++t) sum += partialExpSum(a, bh, t, kThreads, max);
    for (int t = 0; t < kThreads; ++t)
      for (int d = t; d < a.hd; d += kThreads) outputBody(a, bh, d, max, sum);
  }
}

}  // namespace anomalyncd::gpu::attention

#if defined(ANOMALYNCD_TORCH_CUDA)
#include <ATen/core/Tensor.h>

namespace anomalyncd::gpu::attention {

// Row 0 of masked attention for CUDA tensors q, k, v [B,H,N,hd] (float, half or
// bfloat16; any strides) and `blocked` [B,N] bool (or undefined): [B,H,1,hd] in
// q's dtype, on q's device and current stream. Not autograd-aware.
at::Tensor maskedClsRowCuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                            double scale, const at::Tensor& blocked);

// model::maskedAttention for CUDA tensors: [B,N,H*hd]. Row 0 through
// maskedClsRowCuda (or, when autograd needs it, the same row through
// differentiable ops), rows 1..N-1 through at::scaled_dot_product_attention.
at::Tensor maskedAttentionCuda(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                               double scale, const at::Tensor& blocked, double fill);

}  // namespace anomalyncd::gpu::attention
#endif
