// The training configuration and its one field list. Light header: no torch.
//
// visitFields() names every field once, in the order of a bundle's
// `anomalyncd.config` JSON; it drives the binding (binding/fields.h: read and write),
// bundle metadata (train/json_fields.h: read and write) and the resume check. Adding a
// field is one line here (plus its TypeScript table entry in ts/stages/train.ts).
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

namespace anomalyncd::train {

// Teacher temperature schedule (docs/METHOD.md §5.4): a linear ramp held in steps,
// then the final value.
struct TeacherTempSchedule {
  double warmupTemp = 0.07;  // first ramp value
  double finalTemp = 0.04;   // last ramp value and the value after the ramp
  int warmupEpochs = 40;     // the ramp has warmupEpochs / repeatTimes (integer division) values...
  int repeatTimes = 4;       // ...each held for repeatTimes epochs
};

// The defaults are the reference's; C++ callers get them from the initialisers, the
// TypeScript layer defines its own (the same values) and always passes every field.
struct TrainConfig {
  // optimisation (docs/METHOD.md §5.5)
  int epochs = 50;
  int batchSize = 32;
  double lr = 0.003;
  double momentum = 0.9;
  double weightDecay = 5e-5;
  // losses (docs/METHOD.md §5.4, §6)
  double supWeight = 0.3;
  double memaxWeight = 4.0;
  double plcThreshold = 0.5;  // w = max(0, plcThreshold - score); negative: PLC off
  TeacherTempSchedule teacher;
  double studentTemp = 0.1;
  double infoNceTemp = 1.0;
  double supConTemp = 0.07;
  double supConBaseTemp = 0.07;
  // model (docs/METHOD.md §4.3, §4.4)
  int nHead = 4;
  int gradFromBlock = 11;  // -1: the last block (depth - 1), resolved when the model is built
  int projHidden = 2048;
  int projOut = 256;
  // classes: classNames = the numKnown labelled class names, then the numNovel novel ones
  int numNovel = 0;  // K, explicit (never inferred from folders)
  std::vector<std::string> classNames;
  // runtime
  uint64_t seed = 3407;
  int threads = 0;         // libtorch intra-op threads during training (0: leave as is)
  int augmentThreads = 0;  // augmentation workers (0: = threads, at least 1)

  int numKnown() const { return static_cast<int>(classNames.size()) - numNovel; }
};

// Every field of TrainConfig: v(name, field). The names are the bundle metadata keys
// (kept as written by every earlier version, so old bundles load and compare).
template <class Config, class Visitor>
std::enable_if_t<std::is_same_v<std::remove_const_t<Config>, TrainConfig>> visitFields(Config& c, Visitor&& v) {
  v("epochs", c.epochs);
  v("batchSize", c.batchSize);
  v("lr", c.lr);
  v("momentum", c.momentum);
  v("weightDecay", c.weightDecay);
  v("supWeight", c.supWeight);
  v("memaxWeight", c.memaxWeight);
  v("plcThreshold", c.plcThreshold);
  v("warmupTeacherTemp", c.teacher.warmupTemp);
  v("teacherTemp", c.teacher.finalTemp);
  v("warmupTeacherEpochs", c.teacher.warmupEpochs);
  v("repeatTimes", c.teacher.repeatTimes);
  v("studentTemp", c.studentTemp);
  v("infoNceTemp", c.infoNceTemp);
  v("supConTemp", c.supConTemp);
  v("supConBaseTemp", c.supConBaseTemp);
  v("nHead", c.nHead);
  v("gradFromBlock", c.gradFromBlock);
  v("projHidden", c.projHidden);
  v("projOut", c.projOut);
  v("numNovel", c.numNovel);
  v("classNames", c.classNames);
  v("seed", c.seed);
  v("threads", c.threads);
  v("augmentThreads", c.augmentThreads);
}

// Fields that say how a run executes rather than what it trains: a run may resume
// with other values of these (the resume check skips them).
inline bool isRuntimeField(const char* name) {
  return std::strcmp(name, "threads") == 0 || std::strcmp(name, "augmentThreads") == 0;
}

// Error(kInvalidArgument) naming the first bad field. fit() calls it once at its
// entry; bundle reading calls it on the stored config.
void validateConfig(const TrainConfig& cfg);

}  // namespace anomalyncd::train
