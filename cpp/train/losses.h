// METHOD.md §5.4 / 6 / 12 / T21-T24: every loss term of one training batch, as the reference
// code computes it (temperatures and averaging of the code, not of the paper).
//
// Pure functions on tensors: no N-API, no global state, device-agnostic (everything
// follows the inputs' device and dtype; integer labels are int64).
//
// Row layout (METHOD.md §5.2): a batch of B samples gives 2B rows, [view 1 of every sample;
// view 2 of every sample]. Per-sample vectors (labels, PLC weights) have B entries and
// apply to both views of their sample.
//
// With no labelled row in the batch (e.g. training without a labelled set, which the
// reference cannot do: it skips such batches) the labelled terms (SupCon, CE) are 0 and
// carry no gradient; the unlabelled terms are 0 when there is no unlabelled row.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace anomalyncd::train {

struct LossConfig {
  int64_t numKnown = 0;          // C_l: labelled classes, the first C_l logits
  double teacherTemp = 0.07;     // tau_t(epoch), see schedule.h
  double studentTemp = 0.1;      // distillation student, memax, supervised CE
  double infoNceTemp = 1.0;      // unsupervised contrastive (METHOD.md §12.1: not 0.07)
  double supConTemp = 0.07;      // supervised contrastive
  double supConBaseTemp = 0.07;  // SupCon base temperature (loss scaled by temp / base)
  double supWeight = 0.3;        // lambda of Eq. 7
  double memaxWeight = 4.0;      // mu: weight of the mean-entropy term in the clustering loss
};

// 1. InfoNCE over all 2n rows of z ([2n, P], view-major): rows L2-normalised,
//    S = z z^T / temperature; for row i the positive is the other view of its sample, the
//    negatives all other rows except itself; mean over rows of the cross-entropy of
//    [S_pos, S_negs] with target "positive" (= logsumexp_{j != i} S_ij - S_i,pos).
at::Tensor infoNceLoss(const at::Tensor& z, double temperature = 1.0);

// 2. SupCon (Khosla et al., GCD's implementation) on labelled rows: z [2n, P] view-major
//    (not necessarily normalised: it is L2-normalised here), labels [n] int64.
//    Anchors = all 2n rows; logits z_i.z_j / T minus the row max (self included in the
//    max, excluded from the softmax); positives = every j != i with the same label;
//    loss_i = -(T / baseT) * mean_{positives} log-softmax_{j != i}; mean over anchors.
//    n == 0 -> 0 (no gradient).
at::Tensor supConLoss(const at::Tensor& z, const at::Tensor& labels, double temperature = 0.07,
                      double baseTemperature = 0.07);

// 3. Supervised cross-entropy of logits / studentTemp ([2n, C] view-major rows of the
//    labelled samples) against labels [n] repeated for both views, mean over the 2n rows,
//    over all C classes. n == 0 -> 0.
at::Tensor supervisedCE(const at::Tensor& logits, const at::Tensor& labels, double studentTemp = 0.1);

// Teacher targets of the self-distillation (T22 + METHOD.md §6): q = softmax(teacher / teacherTemp)
// over all C classes, the first numKnown entries zeroed and the rest renormalised to sum 1,
// then per sample q <- w e_{numKnown} + (1 - w) q (PLC). teacher [2n, C] view-major (it is
// detached here); plcWeight [n] (same weight for both views) or undefined (no PLC).
// Returns [2n, C], no gradient.
at::Tensor teacherTargets(const at::Tensor& teacher, double teacherTemp, int64_t numKnown,
                          const at::Tensor& plcWeight);

// 4. Cross-view self-distillation: student log_softmax(student / studentTemp) over all C
//    classes (never masked); the view-1 targets supervise the view-2 student and vice
//    versa; each term is the mean over the n samples of -sum_c q_c log p_c; the loss is
//    the average of the two terms. student, teacher [2n, C]. n == 0 -> 0.
at::Tensor distillLoss(const at::Tensor& student, const at::Tensor& teacher, double studentTemp,
                       double teacherTemp, int64_t numKnown, const at::Tensor& plcWeight);

// 5. Mean-entropy regulariser: pbar = mean over the rows of softmax(logits / studentTemp)
//    (all C classes); sum_c -log(pbar_c ^ (-pbar_c)) + log C, computed literally (the
//    power, then the log) in the inputs' dtype, float32 in training (T23). 0 rows -> 0.
at::Tensor memaxLoss(const at::Tensor& logits, double studentTemp = 0.1);

// PLC weight of one unlabelled crop (METHOD.md §6, T26): max(0, threshold - score); 0 when the
// threshold is negative (PLC off) or the score is NaN (unknown).
double plcWeight(double score, double threshold);

// Every term of one batch.
struct BatchLosses {
  at::Tensor total;    // scalar, Eq. 7 (differentiable)
  at::Tensor infoNce;  // scalar, term 1 (all rows)
  at::Tensor supCon;   // scalar, term 2 (0 without labelled rows)
  at::Tensor ce;       // [H], term 3 per head (0 without labelled rows)
  at::Tensor distill;  // [H], term 4 per head
  at::Tensor memax;    // [H], term 5 per head
  at::Tensor cluster;  // [H], distill + memaxWeight * memax (head selection, METHOD.md §4.5)
};

// z [2B, P] projections; logits [H, 2B, C] cosine logits of the H heads (the teacher is
// the same logits, detached); labels [B] int64, class index in [0, numKnown) for
// labelled samples and -1 for unlabelled ones; plcWeight [B] (entries of labelled
// samples ignored) or undefined (no PLC).
//   total = (1 - lambda) * mean_h(cluster_h) + lambda * mean_h(ce_h)
//         + (1 - lambda) * infoNce + lambda * supCon
BatchLosses batchLosses(const at::Tensor& z, const at::Tensor& logits, const at::Tensor& labels,
                        const at::Tensor& plcWeight, const LossConfig& cfg);

}  // namespace anomalyncd::train
