// Resuming a run from its checkpoint directory.
//
// The directory holds one bundle, kCheckpointFile, rewritten atomically after every
// epoch (train/bundle.h). A run restarted with the same settings continues after the
// bundle's last finished epoch; because every random stream is keyed by (seed, epoch,
// position) (train/trainer.h), the resumed run is bit-identical to an uninterrupted one.
#pragma once
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "train/schedule.h"
#include "train/trainer.h"

namespace anomalyncd::train {

// Creates `dir` when needed (Error(kIo) if it cannot) and removes temp files left there
// by killed writers ("<kCheckpointFile>.tmp-<pid>-<n>" whose process no longer exists;
// those of live processes are left alone). Returns the bundle path inside `dir`.
std::string openCheckpointDir(const std::string& dir);

// When `bundlePath` exists and was written by this run (resumeFields() all equal),
// loads its weights, momentum buffers and history into `m` / `opt` and returns true;
// a bundle of another run is Error(kCheckpoint) naming the first differing setting.
// false: no bundle yet.
bool resumeFrom(const std::string& bundlePath, NcdModel& m, MomentumSGD& opt,
                const std::function<void(const std::string&)>& warn);

// (name, JSON value) of every setting that must match to resume a run: the config
// except its runtime fields (isRuntimeField), the architecture, the data fingerprint,
// the backbone hash.
std::vector<std::pair<std::string, std::string>> resumeFields(const NcdModel& m);

}  // namespace anomalyncd::train
