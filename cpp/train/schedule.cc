#include "train/schedule.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cmath>
#include <string>

#include "common/error.h"

namespace anomalyncd::train {

namespace {
[[noreturn]] void invalid(const std::string& m) { throw Error(code::kInvalidArgument, m); }

void checkSchedule(const TeacherTempSchedule& s) {
  if (s.repeatTimes < 1) invalid("teacher temperature: repeatTimes must be >= 1 (got " + std::to_string(s.repeatTimes) + ")");
  if (s.warmupEpochs < 0) invalid("teacher temperature: warmupEpochs must be >= 0");
  if (!(s.warmupTemp > 0) || !(s.finalTemp > 0) || !std::isfinite(s.warmupTemp) || !std::isfinite(s.finalTemp))
    invalid("teacher temperature: temperatures must be finite and > 0");
}
}  // namespace

double teacherTemperature(int epoch, const TeacherTempSchedule& s) {
  checkSchedule(s);
  if (epoch < 0) invalid("teacher temperature: epoch must be >= 0");
  const int n = s.warmupEpochs / s.repeatTimes;
  if (epoch >= n * s.repeatTimes) return s.finalTemp;
  const int i = epoch / s.repeatTimes;
  if (n == 1) return s.warmupTemp;  // linspace(a, b, 1) = [a]
  if (i == n - 1) return s.finalTemp;
  const double step = (s.finalTemp - s.warmupTemp) / static_cast<double>(n - 1);
  return static_cast<double>(i) * step + s.warmupTemp;
}

std::vector<double> teacherTemperatures(int epochs, const TeacherTempSchedule& s) {
  std::vector<double> out;
  for (int e = 0; e < epochs; ++e) out.push_back(teacherTemperature(e, s));
  return out;
}

double cosineLr(int epoch, double baseLr, int tMax, double etaMinFactor) {
  if (tMax < 1) invalid("cosine schedule: tMax must be >= 1");
  const double etaMin = baseLr * etaMinFactor;
  return etaMin + (baseLr - etaMin) * (1 + std::cos(M_PI * static_cast<double>(epoch) / static_cast<double>(tMax))) / 2;
}

MomentumSGD::MomentumSGD(std::vector<std::pair<std::string, at::Tensor>> params, double momentum, double weightDecay)
    : momentum_(momentum), weightDecay_(weightDecay) {
  if (!(momentum >= 0) || !(weightDecay >= 0)) invalid("SGD: momentum and weightDecay must be >= 0");
  for (auto& [name, p] : params) {
    if (!p.requires_grad()) invalid("SGD: parameter '" + name + "' is frozen (requires_grad = false)");
    Slot s;
    s.name = name;
    s.param = p;
    s.decay = p.dim() >= 2;
    slots_.push_back(std::move(s));
  }
}

void MomentumSGD::zeroGrad() {
  for (auto& s : slots_) {
    // set_to_none: the next backward writes fresh gradients (bitwise the same as
    // accumulating into zeros)
    s.param.mutable_grad() = at::Tensor();
  }
}

void MomentumSGD::step(double lr) {
  c10::AutoGradMode noGrad(false);
  for (auto& s : slots_) {
    const at::Tensor& g = s.param.grad();
    if (!g.defined()) continue;
    at::Tensor d = g;
    if (s.decay && weightDecay_ != 0) d = d.add(s.param, weightDecay_);
    if (momentum_ != 0) {
      if (!s.buf.defined()) {
        s.buf = d.clone().detach();
      } else {
        s.buf.mul_(momentum_).add_(d, 1.0);
      }
      d = s.buf;
    }
    s.param.add_(d, -lr);
  }
}

std::map<std::string, at::Tensor> MomentumSGD::momentumBuffers() const {
  std::map<std::string, at::Tensor> out;
  for (auto& s : slots_)
    if (s.buf.defined()) out[s.name] = s.buf;
  return out;
}

void MomentumSGD::setMomentumBuffers(const std::map<std::string, at::Tensor>& bufs) {
  size_t used = 0;
  for (auto& s : slots_) {
    auto it = bufs.find(s.name);
    if (it == bufs.end()) {
      s.buf = at::Tensor();
      continue;
    }
    if (!it->second.sizes().equals(s.param.sizes()))
      throw Error(code::kCheckpoint, "momentum buffer of '" + s.name + "' has the wrong shape");
    s.buf = it->second.to(s.param.options()).clone().detach();
    ++used;
  }
  if (used != bufs.size()) throw Error(code::kCheckpoint, "momentum buffers name parameters that are not trained");
}

}  // namespace anomalyncd::train
