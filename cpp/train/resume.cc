#include "train/resume.h"

#include <signal.h>

#include <cerrno>
#include <filesystem>
#include <map>

#include "common/error.h"
#include "train/bundle.h"
#include "train/json_fields.h"

namespace anomalyncd::train {

namespace {

std::string firstDifference(const std::vector<std::pair<std::string, std::string>>& a,
                            const std::vector<std::pair<std::string, std::string>>& b) {
  std::map<std::string, std::string> mb(b.begin(), b.end());
  for (auto& [k, v] : a) {
    auto it = mb.find(k);
    if (it == mb.end()) return k;
    if (it->second != v) return k + " (" + it->second + " in the checkpoint, " + v + " now)";
  }
  if (a.size() != b.size()) return "the set of options";
  return {};
}

// A writer's temp file is "<kCheckpointFile>.tmp-<pid>-<n>" (model::writeSafetensors).
void removeStaleTempFiles(const std::string& dir) {
  const std::string prefix = std::string(kCheckpointFile) + ".tmp-";
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string rest = name.substr(prefix.size());
    const size_t dash = rest.find('-');
    if (dash == 0 || dash == std::string::npos || rest.find_first_not_of("0123456789") != dash) continue;
    const long pid = std::stol(rest.substr(0, dash));
    if (pid <= 0 || (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)) {
      std::error_code rmEc;
      std::filesystem::remove(entry.path(), rmEc);
    }
  }
}

}  // namespace

std::vector<std::pair<std::string, std::string>> resumeFields(const NcdModel& m) {
  json::FieldWriter w(isRuntimeField);
  visitFields(m.config, w);
  std::vector<std::pair<std::string, std::string>> f = w.fields();
  f.emplace_back("arch", archJson(m.arch));
  f.emplace_back("dataFingerprint", json::quote(m.dataFingerprint));
  f.emplace_back("backboneSha256", json::quote(m.backboneSha256));
  return f;
}

std::string openCheckpointDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw Error(code::kIo, "Cannot create checkpoint directory '" + dir + "': " + ec.message());
  removeStaleTempFiles(dir);
  return (std::filesystem::path(dir) / kCheckpointFile).string();
}

bool resumeFrom(const std::string& ckpt, NcdModel& m, MomentumSGD& opt,
                const std::function<void(const std::string&)>& warn) {
  std::error_code ec;
  if (!std::filesystem::exists(ckpt, ec)) return false;
  BundleContents b = readBundleContents(ckpt);
  const std::string diff = firstDifference(resumeFields(m), resumeFields(*b.meta));
  if (!diff.empty())
    throw Error(code::kCheckpoint, "Cannot resume from '" + ckpt + "': it was written for a different run (" + diff +
                                       " differs); delete it or use another checkpoint directory");
  loadBundleWeights(m, b, ckpt);
  opt.setMomentumBuffers(bundleMomentum(b));
  m.history = b.meta->history;
  m.epochsDone = b.meta->epochsDone;
  m.selectedHeads = selectHeads(m.history);
  if (warn)
    warn("Resumed from '" + ckpt + "' after epoch " + std::to_string(m.epochsDone) + " of " +
         std::to_string(m.config.epochs));
  return true;
}

}  // namespace anomalyncd::train
