#include "train/config.h"

#include <cmath>
#include <string>

#include "common/error.h"
#include "train/schedule.h"

namespace anomalyncd::train {

void validateConfig(const TrainConfig& c) {
  auto need = [](bool ok, const std::string& m) {
    if (!ok) throw Error(code::kInvalidArgument, "Invalid training config: " + m);
  };
  need(c.epochs >= 1, "epochs must be >= 1 (got " + std::to_string(c.epochs) + ")");
  need(c.batchSize >= 1, "batchSize must be >= 1 (got " + std::to_string(c.batchSize) + ")");
  need(std::isfinite(c.lr) && c.lr > 0, "lr must be > 0");
  need(std::isfinite(c.momentum) && c.momentum >= 0 && c.momentum < 1, "momentum must be in [0, 1)");
  need(std::isfinite(c.weightDecay) && c.weightDecay >= 0, "weightDecay must be >= 0");
  need(std::isfinite(c.supWeight) && c.supWeight >= 0 && c.supWeight <= 1, "supWeight must be in [0, 1]");
  need(std::isfinite(c.memaxWeight) && c.memaxWeight >= 0, "memaxWeight must be >= 0");
  need(std::isfinite(c.plcThreshold), "plcThreshold must be finite (negative: PLC off)");
  for (double t : {c.studentTemp, c.infoNceTemp, c.supConTemp, c.supConBaseTemp})
    need(std::isfinite(t) && t > 0, "temperatures must be > 0");
  (void)teacherTemperature(0, c.teacher);  // validates the schedule
  need(c.nHead >= 1, "nHead must be >= 1");
  need(c.gradFromBlock >= -1, "gradFromBlock must be >= 0 (or -1: the last block)");
  need(c.projHidden >= 1 && c.projOut >= 1, "projHidden and projOut must be >= 1");
  need(c.numNovel >= 1, "the number of novel classes (k) must be >= 1 (got " + std::to_string(c.numNovel) + ")");
  need(c.numKnown() >= 0, "classNames must hold the known classes followed by the " + std::to_string(c.numNovel) + " novel ones");
  need(c.threads >= 0 && c.threads <= 1024, "threads must be in 0..1024");
  need(c.augmentThreads >= 0 && c.augmentThreads <= 1024, "augmentThreads must be in 0..1024");
}

}  // namespace anomalyncd::train
