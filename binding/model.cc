// Model wrappers: loadBackbone() (async checkpoint reading) -> a Backbone
// handle with embed() (async forward) and dispose(); preprocess() (the exact
// test-time transform over a batch of crops, async).
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <atomic>

#include "common/parallel.h"
#include "model/checkpoint.h"
#include "model/preprocess.h"
#include "model/thread_scope.h"
#include "model/vit.h"
#include "napi_util.h"
#include "vit_config_arg.h"

namespace anomalyncd::binding {
namespace {

// The model shared by the handle and the jobs that use it: dispose() drops the
// handle's reference, running jobs keep theirs.
struct BackboneState {
  std::shared_ptr<model::MaskGuidedViT> vit;
  torch::Device device{torch::kCPU};
  int64_t parameterBytes = 0;
};


// Parses {patchSize, embedDim, depth, numHeads, maskLayers, mlpRatio, qkvBias, lnEps,
// imageSize, preset, attention} into a VitConfig.
model::VitConfig configArg(const Napi::Object& o) {
  model::VitConfig cfg;
  const std::string preset = optString(o, "preset", "");
  if (!preset.empty()) {
    try {
      cfg = model::presetConfig(preset);
    } catch (const Error& e) {
      throwError(o.Env(), e.code(), e.what());
    }
  }
  applyVitFields(o, cfg, "Option 'attention' must be 'plain' or 'fused'");
  try {
    model::validateConfig(cfg);
  } catch (const Error& e) {
    throwError(o.Env(), e.code(), e.what());
  }
  return cfg;
}

torch::Device deviceArg(const Napi::Object& o) {
  const std::string name = optString(o, "device", "cpu");
  try {
    torch::Device device(name);
    if (device.is_cuda() && !torch::cuda::is_available())
      throwError(o.Env(), code::kInvalidArgument, "Option 'device' is '" + name + "' but this libtorch has no usable CUDA device");
    return device;
  } catch (const c10::Error&) {
    throwError(o.Env(), code::kInvalidArgument, "Option 'device' must be a torch device name such as 'cpu' or 'cuda:0' (got '" + name + "')");
  }
}


class Backbone : public Napi::ObjectWrap<Backbone> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Backbone",
                       {InstanceMethod("embed", &Backbone::Embed), InstanceMethod("dispose", &Backbone::Dispose),
                        InstanceAccessor("config", &Backbone::Config, nullptr),
                        InstanceAccessor("disposed", &Backbone::Disposed, nullptr)});
  }

  explicit Backbone(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Backbone>(info) {
    // Constructed only by LoadBackboneJob, which passes the state through an External.
    if (!info[0].IsExternal()) throwError(info.Env(), code::kInvalidArgument, "Backbone cannot be constructed directly; use loadBackbone()");
    state_ = *info[0].As<Napi::External<std::shared_ptr<BackboneState>>>().Data();
    Napi::MemoryManagement::AdjustExternalMemory(info.Env(), state_->parameterBytes);
  }

  ~Backbone() override { release(); }

 private:
  void release() {
    if (!state_) return;
    Napi::MemoryManagement::AdjustExternalMemory(Env(), -state_->parameterBytes);
    state_.reset();
  }

  Napi::Value Embed(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    release();
    return info.Env().Undefined();
  }
  Napi::Value Config(const Napi::CallbackInfo& info) {
    if (!state_) throwError(info.Env(), code::kInvalidArgument, "This backbone has been disposed");
    return vitConfigObject(info.Env(), state_->vit->config(), /*withAttention=*/true);
  }
  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !state_); }

  std::shared_ptr<BackboneState> state_;
};

Napi::FunctionReference* backboneClass = nullptr;

class LoadBackboneJob : public Job {
 public:
  LoadBackboneJob(Napi::Env env, const Napi::Value& path, const Napi::Object& options) : Job(env, "anomalyncd.loadBackbone") {
    if (path.IsString()) path_ = path.As<Napi::String>().Utf8Value();
    arch_ = configArg(options.Get("arch").IsObject() ? options.Get("arch").As<Napi::Object>() : Napi::Object::New(env));
    device_ = deviceArg(options);
    seed_ = optInt(options, "seed", 0);
  }

 protected:
  void run() override {
    auto state = std::make_shared<BackboneState>();
    state->device = device_;
    model::VitConfig cfg = arch_;
    model::StateDict sd;
    if (!path_.empty()) {
      sd = model::readStateDict(path_);
      cfg = model::inferConfig(sd, arch_);
    }
    torch::manual_seed(static_cast<uint64_t>(seed_));
    state->vit = std::make_shared<model::MaskGuidedViT>(cfg);
    if (!path_.empty()) model::loadInto(*state->vit, sd, true);
    state->vit->eval();
    for (auto& p : state->vit->parameters()) {
      p.set_requires_grad(false);
      state->parameterBytes += static_cast<int64_t>(p.numel() * p.element_size());
    }
    state->vit->to(device_);
    state_ = std::move(state);
  }

  Napi::Value resolve(Napi::Env env) override {
    auto* holder = new std::shared_ptr<BackboneState>(state_);
    Napi::External<std::shared_ptr<BackboneState>> external = Napi::External<std::shared_ptr<BackboneState>>::New(
        env, holder, [](Napi::Env, std::shared_ptr<BackboneState>* h) { delete h; });
    return backboneClass->New({external});
  }

 private:
  std::string path_;
  model::VitConfig arch_;
  torch::Device device_{torch::kCPU};
  int seed_ = 0;
  std::shared_ptr<BackboneState> state_;
};

// Reads a float32 Tensor of rank 4 with the given channel count.
TensorView float4d(const Napi::Value& v, const std::string& name, int64_t channels) {
  TensorView t = tensorView(v, name);
  if (t.dtype != "float32" || t.shape.size() != 4 || t.shape[1] != channels)
    throwError(v.Env(), code::kInvalidArgument, name + " must be a float32 Tensor [B, " + std::to_string(channels) + ", H, W]");
  return t;
}

class EmbedJob : public Job {
 public:
  EmbedJob(Napi::Env env, std::shared_ptr<BackboneState> state, const Napi::Value& images, const Napi::Value& masks,
           const Napi::Object& options)
      : Job(env, "anomalyncd.embed"), state_(std::move(state)) {
    images_ = float4d(images, "images", 3);
    if (!masks.IsUndefined() && !masks.IsNull()) {
      masks_ = float4d(masks, "masks", 1);
      if (masks_.shape[0] != images_.shape[0] || masks_.shape[2] != images_.shape[2] || masks_.shape[3] != images_.shape[3])
        throwError(env, code::kInvalidArgument, "masks must be [B, 1, H, W] with the B, H, W of images");
      keepAlive(masks_.owner);
      hasMask_ = true;
    }
    const int patch = state_->vit->config().patchSize;
    if (images_.shape[0] < 1 || images_.shape[2] < patch || images_.shape[3] < patch)
      throwError(env, code::kInvalidArgument, "images must hold at least one image of at least " + std::to_string(patch) + "x" +
                                                   std::to_string(patch) + " pixels");
    keepAlive(images_.owner);
    threads_ = optInt(options, "threads", at::get_num_threads());
    batchSize_ = optInt(options, "batchSize", 8);
    if (threads_ < 1 || batchSize_ < 1) throwError(env, code::kInvalidArgument, "Options 'threads' and 'batchSize' must be >= 1");
  }

 protected:
  void run() override {
    // The JS buffers are wrapped in place (no copy) and only read.
    const at::Tensor images = torch::from_blob(images_.data, images_.shape, torch::kFloat32);
    const at::Tensor masks = hasMask_ ? torch::from_blob(masks_.data, masks_.shape, torch::kFloat32) : at::Tensor();
    const int64_t B = images_.shape[0];
    const int64_t D = state_->vit->config().embedDim;
    output_.resize(static_cast<size_t>(B * D));
    {
      model::ThreadScope threads(threads_, &cancelToken());
      torch::NoGradGuard noGrad;
      for (int64_t start = 0; start < B; start += batchSize_) {
        cancelToken().throwIfCancelled();
        const int64_t end = std::min(B, start + batchSize_);
        at::Tensor x = images.slice(0, start, end).to(state_->device);
        at::Tensor m = hasMask_ ? masks.slice(0, start, end).to(state_->device) : at::Tensor();
        at::Tensor f = state_->vit->forward(x, m).to(torch::kCPU).contiguous();
        std::memcpy(output_.data() + start * D, f.data_ptr<float>(), static_cast<size_t>((end - start) * D) * sizeof(float));
        progress(static_cast<double>(end), static_cast<double>(B), "embed");
      }
    }
    shape_ = {B, D};
  }

  Napi::Value resolve(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    Napi::Array shape = Napi::Array::New(env, 2);
    shape.Set(0u, static_cast<double>(shape_[0]));
    shape.Set(1u, static_cast<double>(shape_[1]));
    out.Set("shape", shape);
    out.Set("data", externalBufferOf<float>(env, std::move(output_)));
    return out;
  }

 private:
  std::shared_ptr<BackboneState> state_;
  TensorView images_, masks_;
  bool hasMask_ = false;
  int threads_ = 1;
  int batchSize_ = 8;
  std::vector<float> output_;
  std::vector<int64_t> shape_;
};

Napi::Value Backbone::Embed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!state_) throwError(env, code::kInvalidArgument, "This backbone has been disposed");
  Napi::Object options = info[2].IsObject() ? info[2].As<Napi::Object>() : Napi::Object::New(env);
  auto job = std::make_unique<EmbedJob>(env, state_, info[0], info[1], options);
  job->keepAlive(info.This());
  Napi::Object handle = job->start(info[3]);
  job.release();
  return handle;
}

// preprocess(crops: Tensor uint8 [h, w, 3][], masks: (Tensor uint8 [h, w] | null)[], options)
//   -> {images: Float32 [B, 3, 224, 224], masks: Float32 [B, 1, 224, 224]}
class PreprocessJob : public Job {
 public:
  PreprocessJob(Napi::Env env, const Napi::Array& crops, const Napi::Array& masks, const Napi::Object& options)
      : Job(env, "anomalyncd.preprocess") {
    if (crops.Length() == 0 || crops.Length() != masks.Length())
      throwError(env, code::kInvalidArgument, "preprocess() needs one mask (or null) per crop, and at least one crop");
    for (uint32_t i = 0; i < crops.Length(); ++i) {
      const std::string label = "crops[" + std::to_string(i) + "]";
      TensorView c = tensorView(crops.Get(i), label);
      if (c.dtype != "uint8" || c.shape.size() != 3 || c.shape[2] != 3 || c.shape[0] < 1 || c.shape[1] < 1)
        throwError(env, code::kInvalidArgument, label + " must be a uint8 Tensor [H, W, 3] (RGB)");
      keepAlive(c.owner);
      Item item{static_cast<const uint8_t*>(c.data), nullptr, static_cast<int>(c.shape[0]), static_cast<int>(c.shape[1])};
      Napi::Value m = masks.Get(i);
      if (!m.IsNull() && !m.IsUndefined()) {
        TensorView mv = tensorView(m, "masks[" + std::to_string(i) + "]");
        if (mv.dtype != "uint8" || mv.shape.size() != 2 || mv.shape[0] != c.shape[0] || mv.shape[1] != c.shape[1])
          throwError(env, code::kInvalidArgument, "masks[" + std::to_string(i) + "] must be a uint8 Tensor [H, W] matching its crop");
        keepAlive(mv.owner);
        item.mask = static_cast<const uint8_t*>(mv.data);
      }
      items_.push_back(item);
    }
    threads_ = optInt(options, "threads", 1);
  }

 protected:
  void run() override {
    const size_t plane = static_cast<size_t>(model::kCropSize) * model::kCropSize;
    images_.assign(items_.size() * 3 * plane, 0.f);
    masks_.assign(items_.size() * plane, 0.f);
    parallelFor(items_.size(), threads_, &cancelToken(), [&](size_t i) {
      const Item& it = items_[i];
      std::vector<uint8_t> ones;
      const uint8_t* mask = it.mask;
      if (!mask) {  // no mask: everything counts as anomalous (unguided)
        ones.assign(static_cast<size_t>(it.h) * it.w, 255);
        mask = ones.data();
      }
      model::preprocess(it.rgb, mask, it.h, it.w, images_.data() + i * 3 * plane, masks_.data() + i * plane);
    });
  }

  Napi::Value resolve(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    out.Set("count", static_cast<double>(items_.size()));
    out.Set("images", externalBufferOf<float>(env, std::move(images_)));
    out.Set("masks", externalBufferOf<float>(env, std::move(masks_)));
    return out;
  }

 private:
  struct Item {
    const uint8_t* rgb;
    const uint8_t* mask;
    int h, w;
  };
  std::vector<Item> items_;
  int threads_ = 1;
  std::vector<float> images_, masks_;
};

Napi::Value LoadBackbone(const Napi::CallbackInfo& info) {
  return startJob<LoadBackboneJob>(info[2], info.Env(), info[0], objArg(info, 1));
}

Napi::Value Preprocess(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray() || !info[1].IsArray()) throwError(env, code::kInvalidArgument, "preprocess(crops, masks) needs two arrays");
  return startJob<PreprocessJob>(info[3], env, info[0].As<Napi::Array>(), info[1].As<Napi::Array>(), objArg(info, 2));
}

Napi::Value Presets(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  for (const auto& name : model::presetNames()) out.Set(name, vitConfigObject(env, model::presetConfig(name), /*withAttention=*/true));
  return out;
}

}  // namespace

void InitModel(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = Backbone::Define(env);
  backboneClass = new Napi::FunctionReference(Napi::Persistent(cls));
  exports.Set("loadBackbone", Napi::Function::New(env, LoadBackbone, "loadBackbone"));
  exports.Set("preprocess", Napi::Function::New(env, Preprocess, "preprocess"));
  exports.Set("presets", Napi::Function::New(env, Presets, "presets"));
  Napi::Object torchInfo = Napi::Object::New(env);
  torchInfo.Set("cudaAvailable", torch::cuda::is_available());
  torchInfo.Set("interopThreads", at::get_num_interop_threads());
  torchInfo.Set("intraopThreads", at::get_num_threads());
  torchInfo.Set("parallelInfo", at::get_parallel_info());
  exports.Set("torch", torchInfo);
}

}  // namespace anomalyncd::binding
