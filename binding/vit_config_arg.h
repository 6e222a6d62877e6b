// ViT architecture options, shared by loadBackbone (model.cc) and training (train.cc).
#pragma once
#include <napi.h>

#include "model/vit_config.h"

namespace anomalyncd::binding {

// Overrides `c` with the fields of `o` that are set: patchSize, embedDim, depth,
// numHeads, maskLayers, mlpRatio, qkvBias, lnEps, imageSize, attention ('plain' |
// 'fused'; anything else throws InvalidArgument with `attentionError`). No validation.
void applyVitFields(const Napi::Object& o, model::VitConfig& c, const char* attentionError);

// `c` as a JS object; `withAttention` adds "attention" ('plain' | 'fused').
Napi::Object vitConfigObject(Napi::Env env, const model::VitConfig& c, bool withAttention);

}  // namespace anomalyncd::binding
