// The one way to get a mask-guided ViT: from a checkpoint (architecture given or
// read from it) or randomly initialised from a seed. Used by the binding's
// loadBackbone, the feature stage (embedCrops) and the trainer.
#pragma once
#include <c10/core/Device.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/cancel.h"
#include "model/device.h"
#include "model/state_dict.h"
#include "model/vit_config.h"

namespace anomalyncd::model {

class MaskGuidedViT;

struct LoadedBackbone {
  VitConfig arch;           // imageSize as in the checkpoint
  std::string archSource;   // "given" | "checkpoint" | "default" (dino_vitb8, no checkpoint)
  std::shared_ptr<MaskGuidedViT> vit;  // eval mode, no gradients, on `device`
  std::string path;         // empty: randomly initialised
  std::string sha256;       // of the file at `path` (empty without one)
  uint64_t seed = 0;        // of the random initialisation (also run before loading weights)
  c10::Device device{c10::kCPU};  // where the weights live; embed runs there
  Precision precision = Precision::Fp32;  // embed's default precision
  int64_t parameterBytes = 0;
  std::vector<std::string> notes;  // what the loader decided (architecture read, keys ignored)
};

// path empty: a random ViT of `arch` (default preset dino_vitb8). With a path: the
// architecture is `arch` (checked against the checkpoint, imageSize from pos_embed) or,
// without one, read from the checkpoint (archFromCheckpoint). The RNG is seeded with
// `seed` and the ViT constructed exactly as before the weights are copied in, so a
// random init is bit-identical across callers. Checkpoint keys the ViT has no use for
// (DINO's "head.*") are ignored and noted. Errors: Error(kIo) unreadable file,
// Error(kCheckpoint) bad content or a mismatch with `arch`, Error(kInvalidArgument)
// bad `arch` or an architecture that cannot be read (a width DINO does not use).
std::shared_ptr<LoadedBackbone> loadBackbone(const std::string& path, const std::optional<VitConfig>& arch, uint64_t seed,
                                             c10::Device device = c10::kCPU);

// A DINO ViT architecture read from a state dict: patch size and width from
// patch_embed, depth = number of blocks, image size from pos_embed, MLP ratio and qkv
// bias from block 0, heads from DINO's widths (384 -> 6, 768 -> 12), maskLayers
// min(9, depth) as the presets. Another width: Error(kInvalidArgument) asking for `arch`.
VitConfig archFromCheckpoint(const StateDict& sd);

// The lock around "seed the global libtorch RNG, then construct": held while a caller
// draws its initial weights, so concurrent jobs cannot interleave their draws.
std::mutex& rngMutex();

// A trainable copy of `b`'s ViT for a model seeded with `seed`: under rngMutex() the
// RNG is seeded and a ViT of b.arch constructed (drawing exactly what a fresh load
// draws), then `afterInit` runs (still locked, the stream continuing: the trainer
// builds its heads there), then b's weights are copied in. Same bits as loading the
// checkpoint again with that seed, without reading the file.
std::shared_ptr<MaskGuidedViT> cloneForTraining(const LoadedBackbone& b, uint64_t seed,
                                                const std::function<void()>& afterInit = {});

}  // namespace anomalyncd::model
