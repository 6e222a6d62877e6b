// Transitional helpers for binding/train.cc, over VitConfig's one field list
// (model/vit_config.h visitFields); to go once train.cc reads `arch` with
// readFields<VitConfig> and writes it with writeFields.
#pragma once
#include <napi.h>

#include "model/vit_config.h"

namespace anomalyncd::binding {

// Overrides `c` with the fields of `o` that are set (typed errors as readFields).
// `attentionError` is unused (kept for the caller's signature). No validation.
void applyVitFields(const Napi::Object& o, model::VitConfig& c, const char* attentionError);

// `c` as a JS object (writeFields); without `withAttention` the "attention" key is dropped.
Napi::Object vitConfigObject(Napi::Env env, const model::VitConfig& c, bool withAttention);

}  // namespace anomalyncd::binding
