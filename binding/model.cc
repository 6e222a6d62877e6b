// Model wrappers (loadBackbone, embed): filled in with the MGViT stage.
#include "napi_util.h"

namespace anomalyncd::binding {
void InitModel(Napi::Env, Napi::Object) {}
}  // namespace anomalyncd::binding
