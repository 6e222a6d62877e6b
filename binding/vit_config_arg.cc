#include "vit_config_arg.h"

#include <string>

#include "napi_util.h"

namespace anomalyncd::binding {

void applyVitFields(const Napi::Object& o, model::VitConfig& c, const char* attentionError) {
  c.patchSize = optInt(o, "patchSize", c.patchSize);
  c.embedDim = optInt(o, "embedDim", c.embedDim);
  c.depth = optInt(o, "depth", c.depth);
  c.numHeads = optInt(o, "numHeads", c.numHeads);
  c.maskLayers = optInt(o, "maskLayers", c.maskLayers);
  c.mlpRatio = optDouble(o, "mlpRatio", c.mlpRatio);
  c.qkvBias = optBool(o, "qkvBias", c.qkvBias);
  c.lnEps = optDouble(o, "lnEps", c.lnEps);
  c.imageSize = optInt(o, "imageSize", c.imageSize);
  const std::string attention = optString(o, "attention", "");
  if (attention == "plain") c.attention = model::AttentionImpl::Plain;
  else if (attention == "fused") c.attention = model::AttentionImpl::Fused;
  else if (!attention.empty()) throwError(o.Env(), code::kInvalidArgument, attentionError);
}

Napi::Object vitConfigObject(Napi::Env env, const model::VitConfig& c, bool withAttention) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("patchSize", c.patchSize);
  o.Set("embedDim", c.embedDim);
  o.Set("depth", c.depth);
  o.Set("numHeads", c.numHeads);
  o.Set("maskLayers", c.maskLayers);
  o.Set("mlpRatio", c.mlpRatio);
  o.Set("qkvBias", c.qkvBias);
  o.Set("lnEps", c.lnEps);
  o.Set("imageSize", c.imageSize);
  if (withAttention) o.Set("attention", c.attention == model::AttentionImpl::Fused ? "fused" : "plain");
  return o;
}

}  // namespace anomalyncd::binding
