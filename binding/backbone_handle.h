// The loaded backbone behind a JS Backbone handle, for other bindings (fit takes
// the already loaded backbone instead of reading its file again).
#pragma once
#include <napi.h>

#include <memory>

#include "model/backbone.h"

namespace anomalyncd::binding {

// `value` must be a live Backbone from loadBackbone(); else a typed
// ERR_INVALID_ARGUMENT (not a Backbone, or disposed). The result stays valid after
// the handle is disposed (shared ownership).
std::shared_ptr<const model::LoadedBackbone> backboneFromJs(const Napi::Value& value);

}  // namespace anomalyncd::binding
