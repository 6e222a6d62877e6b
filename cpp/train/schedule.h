// METHOD.md §5.4 (teacher temperature), 5.5 (optimiser, cosine LR), T25.
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "train/config.h"

namespace anomalyncd::train {

// tau_t(epoch), epoch 0-based: ramp = numpy.linspace(warmupTemp, finalTemp, n) with
// n = warmupEpochs / repeatTimes (float64: start + i * step, the last value exactly
// finalTemp), value i held for epochs [i * repeatTimes, (i + 1) * repeatTimes); every later
// epoch uses finalTemp (n = 0: finalTemp throughout). The defaults give METHOD.md §5.4's table.
// Error(kInvalidArgument) for repeatTimes < 1, warmupEpochs < 0, a non-positive
// temperature or a negative epoch.
double teacherTemperature(int epoch, const TeacherTempSchedule& s);
std::vector<double> teacherTemperatures(int epochs, const TeacherTempSchedule& s);

// Cosine annealing stepped once per epoch (closed form of torch's CosineAnnealingLR):
// lr_e = etaMin + (baseLr - etaMin) * (1 + cos(pi * e / tMax)) / 2, etaMin = baseLr * 1e-3
// by default, tMax = the number of epochs.
double cosineLr(int epoch, double baseLr, int tMax, double etaMinFactor = 1e-3);

// SGD with momentum (no dampening, no Nesterov) exactly as torch.optim.SGD's
// single-tensor path: d = grad (+ weightDecay * p for decayed params); buf = d on the
// first step of a parameter, else buf = momentum * buf + d; p -= lr * buf.
// Weight decay applies to parameters with >= 2 dimensions only (T25); parameters that
// do not require grad must not be passed (they are refused). A parameter whose grad is
// undefined at step() is skipped (as torch does).
class MomentumSGD {
 public:
  struct Slot {
    std::string name;
    at::Tensor param;
    bool decay = false;
    at::Tensor buf;  // undefined until the parameter's first step
  };

  MomentumSGD(std::vector<std::pair<std::string, at::Tensor>> params, double momentum, double weightDecay);

  void zeroGrad();            // grads reset to undefined (torch's set_to_none)
  void step(double lr);       // one update, no autograd recording
  const std::vector<Slot>& slots() const { return slots_; }
  // Momentum buffers by parameter name (only those that exist); restoring sets them
  // (copies, converted to each parameter's dtype/device). Unknown names / shape mismatch
  // -> Error(kCheckpoint).
  std::map<std::string, at::Tensor> momentumBuffers() const;
  void setMomentumBuffers(const std::map<std::string, at::Tensor>& bufs);
  double momentum() const { return momentum_; }
  double weightDecay() const { return weightDecay_; }

 private:
  std::vector<Slot> slots_;
  double momentum_, weightDecay_;
};

}  // namespace anomalyncd::train
