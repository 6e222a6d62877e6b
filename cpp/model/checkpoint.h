// Reading model weights without Python.
//
// readStateDict(path) accepts
//  (a) a torch.save zip archive (torch >= 1.6 default format; the DINO release
//      files are plain state dicts), read by the restricted unpickler of
//      torch_zip.cc: it only knows the opcodes and globals a state dict uses
//      (collections.OrderedDict, torch._utils._rebuild_tensor_v2,
//      torch._utils._rebuild_parameter, torch.<T>Storage); anything else is refused
//      with Error(kCheckpoint) naming the opcode / global and its offset. Nothing
//      is ever executed. DINO-style wrappers ({"teacher"|"student"|"model"|
//      "state_dict": {...}}) are unwrapped and "module." / "backbone." prefixes
//      stripped, as DINO's load_pretrained_weights does.
//  (b) .safetensors (safetensors.h).
// Every tensor is returned as a contiguous float32 CPU tensor (storage offset,
// sizes and strides honoured). Unreadable files -> Error(kIo); corrupt, truncated,
// hostile or unsupported content -> Error(kCheckpoint) naming the file.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

#include "common/json.h"  // Json, parseJson: model:: names kept for existing callers
#include "model/safetensors.h"
#include "model/state_dict.h"
#include "model/vit_config.h"

namespace torch::nn {
class Module;
}

namespace anomalyncd::model {

StateDict readStateDict(const std::string& path);

// How many times readStateDict has been called in this process (tests prove that a
// run reads its backbone once).
uint64_t checkpointReads();

// Copies `sd` into the module's parameters and buffers (names as in named_parameters(),
// e.g. "blocks.3.attn.qkv.weight"), converting dtype/device to the parameter's.
// A missing key or a shape mismatch is always an Error(kCheckpoint) naming the key
// (and both shapes); with strict = true, keys the module does not have are errors too,
// with strict = false they are ignored (e.g. DINO's "head.*" in teacher checkpoints).
void loadInto(torch::nn::Module& module, const StateDict& sd, bool strict = true);

// Snapshot of a module's parameters and buffers (detached float32 CPU copies).
StateDict stateDictOf(const torch::nn::Module& module);

// The architecture `arch` with imageSize taken from the checkpoint's pos_embed
// ((N-1) = (imageSize/patch)^2). Checks embedDim, patch size, depth, MLP width and
// qkv bias against `arch`; Error(kCheckpoint) naming the key on mismatch / absence.
VitConfig inferConfig(const StateDict& sd, const VitConfig& arch);

using anomalyncd::Json;
using anomalyncd::JsonError;
using anomalyncd::parseJson;

}  // namespace anomalyncd::model
