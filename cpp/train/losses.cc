#include "train/losses.h"

#include <ATen/ATen.h>

#include <cmath>
#include <limits>
#include <string>

#include "common/error.h"

namespace anomalyncd::train {

namespace {

[[noreturn]] void invalid(const std::string& m) { throw Error(code::kInvalidArgument, m); }

// F.normalize(x, dim=1): x / max(||x||, 1e-12)
at::Tensor normalizeRows(const at::Tensor& x) {
  return x / x.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-12);
}

at::Tensor zeroLike(const at::Tensor& ref) { return at::zeros({}, ref.options()); }

void checkViewMajor(const at::Tensor& t, const char* what) {
  if (t.dim() != 2 || t.size(0) % 2 != 0)
    invalid(std::string(what) + " must be [2n, d] (two views stacked), got " + std::to_string(t.dim()) + " dims");
}

}  // namespace

double plcWeight(double score, double threshold) {
  if (!(threshold >= 0) || std::isnan(score)) return 0.0;
  return std::max(0.0, threshold - score);
}

at::Tensor infoNceLoss(const at::Tensor& z, double temperature) {
  checkViewMajor(z, "infoNceLoss: z");
  const int64_t n2 = z.size(0), n = n2 / 2;
  if (n2 == 0) return zeroLike(z);
  at::Tensor zn = normalizeRows(z);
  at::Tensor s = at::matmul(zn, zn.t()) / temperature;
  at::Tensor eye = at::eye(n2, z.options().dtype(at::kBool));
  at::Tensor lse = at::logsumexp(s.masked_fill(eye, -std::numeric_limits<double>::infinity()), {1});
  at::Tensor idx = at::arange(n2, z.options().dtype(at::kLong));
  at::Tensor pos = s.gather(1, ((idx + n) % n2).unsqueeze(1)).squeeze(1);
  return (lse - pos).mean();
}

at::Tensor supConLoss(const at::Tensor& z, const at::Tensor& labels, double temperature, double baseTemperature) {
  checkViewMajor(z, "supConLoss: z");
  const int64_t n2 = z.size(0), n = n2 / 2;
  if (labels.dim() != 1 || labels.size(0) != n) invalid("supConLoss: labels must be [n] for z [2n, d]");
  if (n == 0) return zeroLike(z);
  at::Tensor f = normalizeRows(z);
  at::Tensor lab = labels.to(at::kLong);
  at::Tensor mask = at::eq(lab.unsqueeze(1), lab.unsqueeze(0)).to(z.scalar_type()).repeat({2, 2});
  at::Tensor adc = at::matmul(f, f.t()) / temperature;
  at::Tensor logits = adc - std::get<0>(adc.max(1, /*keepdim=*/true)).detach();
  at::Tensor logitsMask = at::ones_like(mask) - at::eye(n2, mask.options());
  mask = mask * logitsMask;
  at::Tensor expLogits = at::exp(logits) * logitsMask;
  at::Tensor logProb = logits - at::log(expLogits.sum(1, /*keepdim=*/true));
  at::Tensor meanLogProbPos = (mask * logProb).sum(1) / mask.sum(1);
  return (-(temperature / baseTemperature) * meanLogProbPos).mean();
}

at::Tensor supervisedCE(const at::Tensor& logits, const at::Tensor& labels, double studentTemp) {
  checkViewMajor(logits, "supervisedCE: logits");
  const int64_t n = logits.size(0) / 2;
  if (labels.dim() != 1 || labels.size(0) != n) invalid("supervisedCE: labels must be [n] for logits [2n, C]");
  if (n == 0) return zeroLike(logits);
  at::Tensor target = at::cat({labels, labels}).to(at::kLong);
  return at::nll_loss(at::log_softmax(logits / studentTemp, 1), target);
}

at::Tensor teacherTargets(const at::Tensor& teacher, double teacherTemp, int64_t numKnown, const at::Tensor& plc) {
  checkViewMajor(teacher, "teacherTargets: teacher");
  const int64_t c = teacher.size(1), n = teacher.size(0) / 2;
  if (numKnown < 0 || numKnown >= c)
    invalid("teacherTargets: numKnown must be in [0, C) (C = " + std::to_string(c) + ", got " + std::to_string(numKnown) + ")");
  at::Tensor q = at::softmax(teacher.detach() / teacherTemp, 1);
  if (numKnown > 0) {
    q.narrow(1, 0, numKnown).zero_();
    q = q / q.sum(1, /*keepdim=*/true);
  }
  if (plc.defined()) {
    if (plc.dim() != 1 || plc.size(0) != n) invalid("teacherTargets: plcWeight must be [n] for teacher [2n, C]");
    at::Tensor w = at::cat({plc, plc}).to(q.options()).unsqueeze(1);
    at::Tensor onehot = at::zeros_like(q);
    onehot.narrow(1, numKnown, 1).fill_(1);
    q = w * onehot + (1 - w) * q;
  }
  return q;
}

at::Tensor distillLoss(const at::Tensor& student, const at::Tensor& teacher, double studentTemp, double teacherTemp,
                       int64_t numKnown, const at::Tensor& plc) {
  checkViewMajor(student, "distillLoss: student");
  if (!teacher.sizes().equals(student.sizes())) invalid("distillLoss: teacher and student must have the same shape");
  const int64_t n = student.size(0) / 2;
  if (n == 0) return zeroLike(student);
  at::Tensor q = teacherTargets(teacher, teacherTemp, numKnown, plc);
  at::Tensor logp = at::log_softmax(student / studentTemp, 1);
  at::Tensor q1 = q.narrow(0, 0, n), q2 = q.narrow(0, n, n);
  at::Tensor p1 = logp.narrow(0, 0, n), p2 = logp.narrow(0, n, n);
  at::Tensor a = at::sum(-q1 * p2, {1}).mean();  // view-1 teacher -> view-2 student
  at::Tensor b = at::sum(-q2 * p1, {1}).mean();  // view-2 teacher -> view-1 student
  return (a + b) / 2;
}

at::Tensor memaxLoss(const at::Tensor& logits, double studentTemp) {
  if (logits.dim() != 2) invalid("memaxLoss: logits must be [rows, C]");
  if (logits.size(0) == 0) return zeroLike(logits);
  at::Tensor avg = at::softmax(logits / studentTemp, 1).mean(0);
  return -at::sum(at::log(at::pow(avg, -avg))) + std::log(static_cast<double>(avg.size(0)));
}

BatchLosses batchLosses(const at::Tensor& z, const at::Tensor& logits, const at::Tensor& labels,
                        const at::Tensor& plc, const LossConfig& cfg) {
  checkViewMajor(z, "batchLosses: z");
  const int64_t b = z.size(0) / 2;
  if (logits.dim() != 3 || logits.size(1) != 2 * b) invalid("batchLosses: logits must be [H, 2B, C] with 2B = rows of z");
  if (labels.dim() != 1 || labels.size(0) != b) invalid("batchLosses: labels must be [B]");
  if (plc.defined() && (plc.dim() != 1 || plc.size(0) != b)) invalid("batchLosses: plcWeight must be [B]");
  const int64_t heads = logits.size(0);
  const at::Tensor lab = labels.to(z.device(), at::kLong);
  const at::Tensor isLab = lab.ge(0);
  const at::Tensor idxL = at::nonzero(isLab).squeeze(1);
  const at::Tensor idxU = at::nonzero(isLab.logical_not()).squeeze(1);
  const int64_t nL = idxL.size(0), nU = idxU.size(0);
  const at::Tensor rowsL = at::cat({idxL, idxL + b});
  const at::Tensor rowsU = at::cat({idxU, idxU + b});
  const at::Tensor labL = lab.index_select(0, idxL);
  if (nL > 0 && (labL.max().item<int64_t>() >= cfg.numKnown))
    invalid("batchLosses: a label is >= numKnown (" + std::to_string(cfg.numKnown) + ")");
  at::Tensor plcU;
  if (plc.defined()) plcU = plc.to(z.device(), z.scalar_type()).index_select(0, idxU);

  BatchLosses out;
  out.infoNce = infoNceLoss(z, cfg.infoNceTemp);
  out.supCon = nL > 0 ? supConLoss(z.index_select(0, rowsL), labL, cfg.supConTemp, cfg.supConBaseTemp) : zeroLike(z);
  std::vector<at::Tensor> ce, distill, memax;
  for (int64_t h = 0; h < heads; ++h) {
    const at::Tensor lh = logits[h];
    ce.push_back(nL > 0 ? supervisedCE(lh.index_select(0, rowsL), labL, cfg.studentTemp) : zeroLike(lh));
    if (nU > 0) {
      const at::Tensor u = lh.index_select(0, rowsU);
      distill.push_back(distillLoss(u, u, cfg.studentTemp, cfg.teacherTemp, cfg.numKnown, plcU));
      memax.push_back(memaxLoss(u, cfg.studentTemp));
    } else {
      distill.push_back(zeroLike(lh));
      memax.push_back(zeroLike(lh));
    }
  }
  out.ce = at::stack(ce);
  out.distill = at::stack(distill);
  out.memax = at::stack(memax);
  out.cluster = out.distill + cfg.memaxWeight * out.memax;
  const double lam = cfg.supWeight;
  out.total = (1 - lam) * out.cluster.mean() + lam * out.ce.mean() + (1 - lam) * out.infoNce + lam * out.supCon;
  return out;
}

}  // namespace anomalyncd::train
