// Reading / writing model weights without Python.
//
// readStateDict(path) accepts
//  (a) a torch.save zip archive (torch >= 1.6 default format; the DINO release
//      files are plain state dicts). `<archive>/data.pkl` is parsed by a restricted
//      unpickler that only knows the opcodes and globals a state dict uses
//      (collections.OrderedDict, torch._utils._rebuild_tensor_v2,
//      torch._utils._rebuild_parameter, torch.<T>Storage); anything else is refused
//      with Error(kCheckpoint) naming the opcode / global and its offset. Nothing
//      is ever executed. DINO-style wrappers ({"teacher"|"student"|"model"|
//      "state_dict": {...}}) are unwrapped and "module." / "backbone." prefixes
//      stripped, as DINO's load_pretrained_weights does.
//  (b) .safetensors (F32 / F16 / BF16 / F64), offsets validated against the file.
// Every tensor is returned as a contiguous float32 CPU tensor (storage offset,
// sizes and strides honoured). Unreadable files -> Error(kIo); corrupt, truncated,
// hostile or unsupported content -> Error(kCheckpoint) naming the file.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "model/vit_config.h"

namespace torch::nn {
class Module;
}

namespace anomalyncd::model {

using StateDict = std::map<std::string, at::Tensor>;

StateDict readStateDict(const std::string& path);

// A .safetensors file whatever its name, with readStateDict's checks and errors;
// `metadata` holds the string values of `__metadata__`.
struct SafetensorsFile {
  StateDict tensors;
  std::map<std::string, std::string> metadata;
};
SafetensorsFile readSafetensors(const std::string& path);

// safetensors writer: every tensor as contiguous little-endian F32, keys sorted,
// header padded to 8 bytes, "__metadata__": {"format": "pt", then `metadata` in order}
// ("format" itself is refused). `atomic`: a temp file beside `path` (fsync'ed), then
// rename. Error(kIo) on failure.
void writeSafetensors(const std::string& path, const StateDict& sd,
                      const std::vector<std::pair<std::string, std::string>>& metadata = {}, bool atomic = false);

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

// "[2, 3]": a shape for error messages.
std::string shapeStr(at::IntArrayRef shape);

// Strict JSON (safetensors headers, training-bundle metadata). parseJson throws
// JsonError{"<problem> at byte <n>"}, also for nesting deeper than `maxDepth`.
struct Json {
  enum Type { Null, Bool, Num, Str, Arr, Obj } type = Null;
  bool b = false;
  bool isInt = false;  // a Num without fraction / exponent that fits int64 (then in `i`)
  int64_t i = 0;
  double num = 0;
  std::string s;
  std::vector<Json> arr;
  std::vector<std::pair<std::string, Json>> obj;  // keys unique, in file order
  const Json* get(const std::string& k) const;
};
struct JsonError {
  std::string what;
};
Json parseJson(const std::string& text, int maxDepth);

}  // namespace anomalyncd::model
