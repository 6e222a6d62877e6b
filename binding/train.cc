// Training wrappers (fit): filled in with the NCD training stage.
#include "napi_util.h"

namespace anomalyncd::binding {
void InitTrain(Napi::Env, Napi::Object) {}
}  // namespace anomalyncd::binding
