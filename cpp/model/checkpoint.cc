#include "model/checkpoint.h"

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/utils.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>
#include <vector>

#include "common/error.h"
#include "model/checkpoint_detail.h"

namespace anomalyncd::model {

std::string shapeStr(at::IntArrayRef s) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ']';
  return os.str();
}

namespace {
std::atomic<uint64_t> checkpointReadCount{0};
}  // namespace

uint64_t checkpointReads() { return checkpointReadCount.load(std::memory_order_relaxed); }

namespace detail {

bool checkedNumel(const std::vector<int64_t>& shape, int64_t limit, int64_t* out) {
  bool zero = false;
  for (int64_t d : shape) {
    if (d < 0) return false;
    if (d == 0) zero = true;
  }
  if (zero) {
    *out = 0;
    return true;
  }
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d > limit / n) return false;
    n *= d;
  }
  *out = n;
  return true;
}

// Opens `path` for readStateDict / readSafetensors; Error(kIo) when it cannot be read.
std::ifstream openCheckpoint(const std::string& path, uint64_t* fileSize) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw Error(code::kIo, "Cannot open checkpoint '" + path + "': " +
                               (std::filesystem::exists(path, ec) ? "not a regular file" : "no such file"));
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(code::kIo, "Cannot open checkpoint '" + path + "'");
  f.seekg(0, std::ios::end);
  const std::streamoff endPos = f.tellg();
  if (endPos < 0) throw Error(code::kIo, "Cannot read checkpoint '" + path + "'");
  *fileSize = static_cast<uint64_t>(endPos);
  f.seekg(0);
  return f;
}

}  // namespace detail

// ==========================================================================
// Public API
// ==========================================================================
StateDict readStateDict(const std::string& path) {
  detail::CheckpointError err(path);
  checkpointReadCount.fetch_add(1, std::memory_order_relaxed);
  uint64_t fileSize = 0;
  std::ifstream f = detail::openCheckpoint(path, &fileSize);
  unsigned char magic[8] = {0};
  const size_t got = fileSize >= 8 ? 8 : static_cast<size_t>(fileSize);
  if (got && !f.read(reinterpret_cast<char*>(magic), static_cast<std::streamsize>(got)))
    throw Error(code::kIo, "Cannot read checkpoint '" + path + "'");
  if (fileSize == 0) err.fail("empty file");
  return detail::guardCorrupt(err, [&]() -> StateDict {
    if (got >= 4 && magic[0] == 'P' && magic[1] == 'K' && magic[2] == 3 && magic[3] == 4) {
      f.close();
      return detail::readTorchZip(err, path, fileSize);
    }
    if (magic[0] == 0x80 && got >= 2 && magic[1] >= 2 && magic[1] <= 5)
      err.fail("legacy torch.save format (pre-1.6, not a zip archive) is not supported; re-save it "
               "with torch >= 1.6 (default zip format) or convert it to .safetensors");
    // safetensors: 8-byte header length followed by '{'
    const bool named = path.size() >= 12 && path.compare(path.size() - 12, 12, ".safetensors") == 0;
    if (named) return detail::readSafetensorsStream(err, f, fileSize, nullptr);
    if (got == 8) {
      uint64_t hlen = 0;
      for (int i = 0; i < 8; ++i) hlen |= static_cast<uint64_t>(magic[i]) << (8 * i);
      char first = 0;
      if (hlen > 0 && fileSize > 8) {
        f.seekg(8);
        f.read(&first, 1);
      }
      if (first == '{') return detail::readSafetensorsStream(err, f, fileSize, nullptr);
    }
    err.fail("unrecognised format (neither a torch.save zip archive nor a .safetensors file)");
  });
}

void loadInto(torch::nn::Module& module, const StateDict& sd, bool strict) {
  std::vector<std::pair<std::string, at::Tensor>> targets;
  for (auto& kv : module.named_parameters(true)) targets.emplace_back(kv.key(), kv.value());
  for (auto& kv : module.named_buffers(true)) targets.emplace_back(kv.key(), kv.value());
  std::vector<std::string> missing;
  std::set<std::string> known;
  for (auto& [name, p] : targets) {
    known.insert(name);
    auto it = sd.find(name);
    if (it == sd.end()) {
      missing.push_back(name);
      continue;
    }
    if (!it->second.defined() || it->second.sizes() != p.sizes())
      throw Error(code::kCheckpoint, "Checkpoint key '" + name + "' has shape " +
                                         (it->second.defined() ? shapeStr(it->second.sizes()) : "undefined") +
                                         " but the model expects " + shapeStr(p.sizes()));
  }
  auto listOf = [](const std::vector<std::string>& v) {
    std::string s;
    for (size_t i = 0; i < v.size() && i < 8; ++i) s += (i ? ", " : "") + std::string("'") + v[i] + "'";
    if (v.size() > 8) s += " and " + std::to_string(v.size() - 8) + " more";
    return s;
  };
  if (!missing.empty())
    throw Error(code::kCheckpoint, "Checkpoint is missing " + std::to_string(missing.size()) +
                                       " key(s) the model needs: " + listOf(missing));
  if (strict) {
    std::vector<std::string> unexpected;
    for (auto& [name, t] : sd)
      if (!known.count(name)) unexpected.push_back(name);
    if (!unexpected.empty())
      throw Error(code::kCheckpoint, "Checkpoint has " + std::to_string(unexpected.size()) +
                                         " unexpected key(s): " + listOf(unexpected));
  }
  torch::NoGradGuard ng;
  for (auto& [name, p] : targets) p.copy_(sd.at(name));
}

StateDict stateDictOf(const torch::nn::Module& module) {
  StateDict sd;
  for (auto& kv : module.named_parameters(true))
    sd[kv.key()] = kv.value().detach().to(at::kCPU, at::kFloat).contiguous().clone();
  for (auto& kv : module.named_buffers(true))
    sd[kv.key()] = kv.value().detach().to(at::kCPU, at::kFloat).contiguous().clone();
  return sd;
}

VitConfig inferConfig(const StateDict& sd, const VitConfig& arch) {
  auto bad = [](const std::string& key, const std::string& what) -> void {
    throw Error(code::kCheckpoint, "Checkpoint key '" + key + "': " + what);
  };
  auto get = [&](const std::string& key) -> const at::Tensor& {
    auto it = sd.find(key);
    if (it == sd.end() || !it->second.defined())
      throw Error(code::kCheckpoint, "Checkpoint has no key '" + key + "' (not a DINO ViT state dict?)");
    return it->second;
  };
  const int64_t D = arch.embedDim;
  const at::Tensor& pos = get("pos_embed");
  if (pos.dim() != 3 || pos.size(0) != 1 || pos.size(1) < 2)
    bad("pos_embed", "shape " + shapeStr(pos.sizes()) + ", expected [1, N+1, D]");
  if (pos.size(2) != D)
    bad("pos_embed", "embedding dim " + std::to_string(pos.size(2)) + " but the architecture has embedDim " +
                         std::to_string(D) + " (shape " + shapeStr(pos.sizes()) + ")");
  const at::Tensor& pw = get("patch_embed.proj.weight");
  if (pw.dim() != 4 || pw.size(0) != D || pw.size(1) != 3 || pw.size(2) != arch.patchSize ||
      pw.size(3) != arch.patchSize)
    bad("patch_embed.proj.weight", "shape " + shapeStr(pw.sizes()) + ", expected [" + std::to_string(D) +
                                       ", 3, " + std::to_string(arch.patchSize) + ", " +
                                       std::to_string(arch.patchSize) + "]");
  const int64_t N = pos.size(1) - 1;
  int64_t side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(N))));
  if (side * side != N)
    bad("pos_embed", std::to_string(N) + " patch positions do not form a square grid");
  int maxBlock = -1;
  for (auto& [k, t] : sd) {
    if (k.rfind("blocks.", 0) != 0) continue;
    const size_t dot = k.find('.', 7);
    const std::string idx = k.substr(7, dot == std::string::npos ? std::string::npos : dot - 7);
    if (idx.empty() || idx.size() > 6 || idx.find_first_not_of("0123456789") != std::string::npos)
      bad(k, "unexpected block key");
    maxBlock = std::max(maxBlock, std::stoi(idx));
  }
  if (maxBlock + 1 != arch.depth)
    bad("blocks." + std::to_string(std::max(maxBlock, 0)) + ".*",
        "checkpoint has " + std::to_string(maxBlock + 1) + " blocks but the architecture has depth " +
            std::to_string(arch.depth));
  if (arch.depth > 0) {
    const at::Tensor& qkv = get("blocks.0.attn.qkv.weight");
    if (qkv.dim() != 2 || qkv.size(0) != 3 * D || qkv.size(1) != D)
      bad("blocks.0.attn.qkv.weight", "shape " + shapeStr(qkv.sizes()) + ", expected [" + std::to_string(3 * D) +
                                          ", " + std::to_string(D) + "]");
    const bool hasBias = sd.count("blocks.0.attn.qkv.bias") > 0;
    if (hasBias != arch.qkvBias)
      bad("blocks.0.attn.qkv.bias", hasBias ? "present but the architecture has qkvBias = false"
                                            : "absent but the architecture has qkvBias = true");
    const int64_t hidden = static_cast<int64_t>(D * arch.mlpRatio);
    const at::Tensor& fc1 = get("blocks.0.mlp.fc1.weight");
    if (fc1.dim() != 2 || fc1.size(0) != hidden || fc1.size(1) != D)
      bad("blocks.0.mlp.fc1.weight", "shape " + shapeStr(fc1.sizes()) + ", expected [" + std::to_string(hidden) +
                                         ", " + std::to_string(D) + "]");
  }
  VitConfig c = arch;
  c.imageSize = static_cast<int>(side * arch.patchSize);
  return c;
}

}  // namespace anomalyncd::model
