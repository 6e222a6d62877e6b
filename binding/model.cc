// Model wrappers: loadBackbone() (async, cpp/model/backbone.h) -> a Backbone handle
// with embed() (network inputs -> features), embedCrops() (crops -> features, the
// test-time preprocessing inside the job) and dispose(); preprocess() (the exact
// test-time transform over a batch of crops); presets(); stats().
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <atomic>

#include "backbone_handle.h"
#include "common/limits.h"
#include "common/parallel.h"
#include "fields.h"
#include "model/backbone.h"
#include "model/checkpoint.h"
#include "model/device.h"
#include "model/preprocess.h"
#include "model/thread_scope.h"
#include "model/vit.h"
#include "napi_util.h"

namespace anomalyncd::binding {
namespace {

// Options of loadBackbone besides `arch` (ts/stages/model.ts fills them).
struct LoadOptions {
  std::string device;
  std::string precision;
  int seed = 0;
};
template <class Config, class Visitor>
std::enable_if_t<std::is_same_v<std::remove_const_t<Config>, LoadOptions>> visitFields(Config& c, Visitor&& v) {
  v("device", c.device);
  v("precision", c.precision);
  v("seed", c.seed);
}

// Options of preprocess().
struct ThreadsOption {
  int threads = 1;
};
template <class Config, class Visitor>
std::enable_if_t<std::is_same_v<std::remove_const_t<Config>, ThreadsOption>> visitFields(Config& c, Visitor&& v) {
  v("threads", c.threads);
}

// Options of embed() and embedCrops().
struct EmbedOptions {
  int threads = 1;
  int batchSize = 1;
  std::string precision;  // "fp32" | "bf16" (TS passes the backbone's unless given)
};
template <class Config, class Visitor>
std::enable_if_t<std::is_same_v<std::remove_const_t<Config>, EmbedOptions>> visitFields(Config& c, Visitor&& v) {
  v("threads", c.threads);
  v("batchSize", c.batchSize);
  v("precision", c.precision);
}

EmbedOptions embedOptions(const Napi::Value& v) {
  EmbedOptions o = readFields<EmbedOptions>(v, "embed options");
  if (o.threads < 1 || o.batchSize < 1) throwError(v.Env(), code::kInvalidArgument, "Options 'threads' and 'batchSize' must be >= 1");
  try {
    (void)model::parsePrecision(o.precision);
  } catch (const Error& e) {
    throwError(v.Env(), e.code(), e.what());
  }
  return o;
}

// The forward of one batch on the backbone's device, in `precision`, as float32 on the CPU.
at::Tensor forwardOn(const model::LoadedBackbone& b, const at::Tensor& x, const at::Tensor& m, model::Precision precision) {
  // pinned host memory + non_blocking: the copy overlaps on CUDA; plain copy on the CPU
  const bool cuda = b.device.is_cuda();
  at::Tensor xd = cuda ? x.pin_memory().to(b.device, /*non_blocking=*/true) : x;
  at::Tensor md = m.defined() && cuda ? m.pin_memory().to(b.device, /*non_blocking=*/true) : m;
  model::PrecisionScope scope(b.device, precision);
  return b.vit->forward(xd, md).to(torch::kCPU, torch::kFloat32).contiguous();
}

using BackbonePtr = std::shared_ptr<model::LoadedBackbone>;

class Backbone : public Napi::ObjectWrap<Backbone> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Backbone",
                       {InstanceMethod("embed", &Backbone::Embed), InstanceMethod("embedCrops", &Backbone::EmbedCrops),
                        InstanceMethod("dispose", &Backbone::Dispose), InstanceAccessor("config", &Backbone::Config, nullptr),
                        InstanceAccessor("info", &Backbone::Info, nullptr),
                        InstanceAccessor("disposed", &Backbone::Disposed, nullptr)});
  }

  explicit Backbone(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Backbone>(info) {
    // Constructed only by LoadBackboneJob, which passes the state through an External.
    if (!info[0].IsExternal()) throwError(info.Env(), code::kInvalidArgument, "Backbone cannot be constructed directly; use loadBackbone()");
    state_ = *info[0].As<Napi::External<BackbonePtr>>().Data();
    adjustExternalMemory(info.Env(), state_->parameterBytes);
  }

  ~Backbone() override { release(); }

  // The state, or a typed error when disposed.
  const BackbonePtr& live(Napi::Env env) const {
    if (!state_) throwError(env, code::kInvalidArgument, "This backbone has been disposed");
    return state_;
  }

 private:
  void release() {
    if (!state_) return;
    adjustExternalMemory(Env(), -state_->parameterBytes);
    state_.reset();
  }

  Napi::Value Embed(const Napi::CallbackInfo& info);
  Napi::Value EmbedCrops(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    release();
    return info.Env().Undefined();
  }
  Napi::Value Config(const Napi::CallbackInfo& info) { return writeFields(info.Env(), live(info.Env())->vit->config()); }
  // {path, sha256, archSource, notes}: where the weights came from.
  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const model::LoadedBackbone& b = *live(env);
    Napi::Object o = Napi::Object::New(env);
    o.Set("path", b.path.empty() ? env.Null() : Napi::String::New(env, b.path));
    o.Set("sha256", b.sha256.empty() ? env.Null() : Napi::String::New(env, b.sha256));
    o.Set("archSource", b.archSource);
    o.Set("device", model::deviceName(b.device));
    o.Set("precision", model::precisionName(b.precision));
    Napi::Array notes = Napi::Array::New(env, b.notes.size());
    for (size_t i = 0; i < b.notes.size(); ++i) notes.Set(static_cast<uint32_t>(i), b.notes[i]);
    o.Set("notes", notes);
    return o;
  }
  Napi::Value Disposed(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), !state_); }

  BackbonePtr state_;
};

// The Backbone class of this environment: a process-global reference would be used from
// another worker thread's environment, which V8 forbids (a crash, not an error).
Napi::FunctionReference& backboneClass(Napi::Env env) { return env.GetInstanceData<AddonData>()->backboneClass; }

class LoadBackboneJob : public Job {
 public:
  LoadBackboneJob(Napi::Env env, const Napi::Value& path, const Napi::Object& options) : Job(env, "anomalyncd.loadBackbone") {
    if (path.IsString()) path_ = path.As<Napi::String>().Utf8Value();
    Napi::Value arch = options.Get("arch");
    if (!arch.IsNull() && !arch.IsUndefined()) {
      arch_ = readFields<model::VitConfig>(arch, "Option 'arch'");
      try {
        model::validateConfig(*arch_);
      } catch (const Error& e) {
        throwError(env, e.code(), e.what());
      }
    }
    options_ = readFields<LoadOptions>(options, "loadBackbone options");
  }

 protected:
  void run() override {
    // Resolved here, on the worker: an unmet request rejects with ERR_DEVICE.
    const c10::Device device = model::torchDevice(options_.device);
    const model::Precision precision = model::parsePrecision(options_.precision);
    state_ = model::loadBackbone(path_, arch_, static_cast<uint64_t>(options_.seed), device);
    state_->precision = precision;
    // (a Backbone has no warnings array: the note goes with what the loader decided)
    if (std::string note = model::bf16NoteOnce(device, precision); !note.empty()) state_->notes.push_back(note);
  }

  Napi::Value resolve(Napi::Env env) override {
    auto* holder = new BackbonePtr(state_);
    auto external = Napi::External<BackbonePtr>::New(env, holder, [](Napi::Env, BackbonePtr* h) { delete h; });
    return backboneClass(env).New({external});
  }

 private:
  std::string path_;
  std::optional<model::VitConfig> arch_;
  LoadOptions options_;
  BackbonePtr state_;
};

// Reads a float32 Tensor of rank 4 with the given channel count.
TensorView float4d(const Napi::Value& v, const std::string& name, int64_t channels) {
  TensorView t = tensorView(v, name);
  if (t.dtype != "float32" || t.shape.size() != 4 || t.shape[1] != channels)
    throwError(v.Env(), code::kInvalidArgument, name + " must be a float32 Tensor [B, " + std::to_string(channels) + ", H, W]");
  return t;
}

// {shape: [B, D], data} over the job's output.
Napi::Value featuresObject(Napi::Env env, std::vector<float>&& data, int64_t B, int64_t D) {
  Napi::Object out = Napi::Object::New(env);
  Napi::Array shape = Napi::Array::New(env, 2);
  shape.Set(0u, static_cast<double>(B));
  shape.Set(1u, static_cast<double>(D));
  out.Set("shape", shape);
  out.Set("data", externalBufferOf<float>(env, std::move(data)));
  return out;
}

class EmbedJob : public Job {
 public:
  EmbedJob(Napi::Env env, BackbonePtr state, const Napi::Value& images, const Napi::Value& masks, const Napi::Value& options)
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
    options_ = embedOptions(options);
  }

 protected:
  void run() override {
    // The job's copies of the JS buffers (TensorView) are wrapped in place and only read.
    const at::Tensor images = torch::from_blob(images_.data, images_.shape, torch::kFloat32);
    const at::Tensor masks = hasMask_ ? torch::from_blob(masks_.data, masks_.shape, torch::kFloat32) : at::Tensor();
    B_ = images_.shape[0];
    D_ = state_->vit->config().embedDim;
    output_.resize(static_cast<size_t>(B_ * D_));
    model::ThreadScope threads(options_.threads, &cancelToken());
    torch::NoGradGuard noGrad;
    const model::Precision precision = model::parsePrecision(options_.precision);
    for (int64_t start = 0; start < B_; start += options_.batchSize) {
      cancelToken().throwIfCancelled();
      const int64_t end = std::min(B_, start + options_.batchSize);
      at::Tensor x = images.slice(0, start, end);
      at::Tensor m = hasMask_ ? masks.slice(0, start, end) : at::Tensor();
      at::Tensor f = forwardOn(*state_, x, m, precision);
      std::memcpy(output_.data() + start * D_, f.data_ptr<float>(), static_cast<size_t>((end - start) * D_) * sizeof(float));
      progress(static_cast<double>(end), static_cast<double>(B_), "embed");
    }
  }

  Napi::Value resolve(Napi::Env env) override { return featuresObject(env, std::move(output_), B_, D_); }

 private:
  BackbonePtr state_;
  TensorView images_, masks_;
  bool hasMask_ = false;
  EmbedOptions options_;
  std::vector<float> output_;
  int64_t B_ = 0, D_ = 0;
};

// One crop of preprocess() / embedCrops(): uint8 RGB [h, w, 3] and its uint8 mask
// [h, w] (null: all anomalous), over the job's copies (TensorView).
struct CropRef {
  const uint8_t* rgb;
  const uint8_t* mask;
  int h, w;
};

CropRef cropArg(Job& job, const Napi::Value& image, const Napi::Value& mask, const std::string& label, const std::string& maskLabel) {
  Napi::Env env = image.Env();
  TensorView c = tensorView(image, label);
  if (c.dtype != "uint8" || c.shape.size() != 3 || c.shape[2] != 3 || c.shape[0] < 1 || c.shape[1] < 1)
    throwError(env, code::kInvalidArgument, label + " must be a uint8 Tensor [H, W, 3] (RGB)");
  job.keepAlive(c.owner);
  CropRef item{static_cast<const uint8_t*>(c.data), nullptr, static_cast<int>(c.shape[0]), static_cast<int>(c.shape[1])};
  if (!mask.IsNull() && !mask.IsUndefined()) {
    TensorView mv = tensorView(mask, maskLabel);
    if (mv.dtype != "uint8" || mv.shape.size() != 2 || mv.shape[0] != c.shape[0] || mv.shape[1] != c.shape[1])
      throwError(env, code::kInvalidArgument, maskLabel + " must be a uint8 Tensor [H, W] matching its crop");
    job.keepAlive(mv.owner);
    item.mask = static_cast<const uint8_t*>(mv.data);
  }
  return item;
}

// The exact test-time transform of one crop into its slots of a batch.
void preprocessCrop(const CropRef& it, float* image, float* mask) {
  std::vector<uint8_t> ones;
  const uint8_t* m = it.mask;
  if (!m) {  // no mask: everything counts as anomalous (unguided)
    ones.assign(static_cast<size_t>(it.h) * it.w, 255);
    m = ones.data();
  }
  model::preprocess(it.rgb, m, it.h, it.w, image, mask);
}

constexpr size_t kPlane = static_cast<size_t>(model::kCropSize) * model::kCropSize;

// embedCrops(crops: {image, mask}[], {threads, batchSize}) -> {shape: [n, D], data}:
// per batch of `batchSize` consecutive crops, the test-time transform (parallel over
// crops) then one mask-guided forward; only the features leave the job. Batches are
// the ones embed() forms over preprocess() output, so the features are the same bits.
class EmbedCropsJob : public Job {
 public:
  EmbedCropsJob(Napi::Env env, BackbonePtr state, const Napi::Value& crops, const Napi::Value& options)
      : Job(env, "anomalyncd.embedCrops"), state_(std::move(state)) {
    if (!crops.IsArray() || crops.As<Napi::Array>().Length() == 0)
      throwError(env, code::kInvalidArgument, "embedCrops() needs a non-empty array of {image, mask}");
    Napi::Array a = crops.As<Napi::Array>();
    rethrowNative(env, [&] { checkCrops(a.Length(), "embedCrops()"); });
    for (uint32_t i = 0; i < a.Length(); ++i) {
      const std::string label = "crops[" + std::to_string(i) + "]";
      Napi::Value c = a.Get(i);
      if (!c.IsObject()) throwError(env, code::kInvalidArgument, label + " must be {image, mask}");
      Napi::Object o = c.As<Napi::Object>();
      items_.push_back(cropArg(*this, o.Get("image"), o.Get("mask"), label + ".image", label + ".mask"));
    }
    options_ = embedOptions(options);
  }

 protected:
  void run() override {
    const int64_t n = static_cast<int64_t>(items_.size());
    D_ = state_->vit->config().embedDim;
    output_.resize(static_cast<size_t>(n * D_));
    const int64_t bs = std::min<int64_t>(options_.batchSize, n);
    std::vector<float> images(static_cast<size_t>(bs) * 3 * kPlane), masks(static_cast<size_t>(bs) * kPlane);
    model::ThreadScope threads(options_.threads, &cancelToken());
    torch::NoGradGuard noGrad;
    const model::Precision precision = model::parsePrecision(options_.precision);
    for (int64_t start = 0; start < n; start += bs) {
      cancelToken().throwIfCancelled();
      const int64_t end = std::min(n, start + bs), b = end - start;
      parallelFor(static_cast<size_t>(b), options_.threads, &cancelToken(), [&](size_t i) {
        preprocessCrop(items_[static_cast<size_t>(start) + i], images.data() + i * 3 * kPlane, masks.data() + i * kPlane);
      });
      const int64_t side = model::kCropSize;
      at::Tensor x = torch::from_blob(images.data(), {b, 3, side, side}, torch::kFloat32);
      at::Tensor m = torch::from_blob(masks.data(), {b, 1, side, side}, torch::kFloat32);
      at::Tensor f = forwardOn(*state_, x, m, precision);
      std::memcpy(output_.data() + start * D_, f.data_ptr<float>(), static_cast<size_t>(b * D_) * sizeof(float));
      progress(static_cast<double>(end), static_cast<double>(n), "embed");
    }
  }

  Napi::Value resolve(Napi::Env env) override { return featuresObject(env, std::move(output_), static_cast<int64_t>(items_.size()), D_); }

 private:
  BackbonePtr state_;
  std::vector<CropRef> items_;
  EmbedOptions options_;
  std::vector<float> output_;
  int64_t D_ = 0;
};

Napi::Value Backbone::Embed(const Napi::CallbackInfo& info) {
  auto job = std::make_unique<EmbedJob>(info.Env(), live(info.Env()), info[0], info[1], info[2]);
  job->keepAlive(info.This());
  Napi::Object handle = job->start(info[3]);
  job.release();
  return handle;
}

Napi::Value Backbone::EmbedCrops(const Napi::CallbackInfo& info) {
  auto job = std::make_unique<EmbedCropsJob>(info.Env(), live(info.Env()), info[0], info[1]);
  job->keepAlive(info.This());
  Napi::Object handle = job->start(info[2]);
  job.release();
  return handle;
}

// preprocess(crops: Tensor uint8 [h, w, 3][], masks: (Tensor uint8 [h, w] | null)[], {threads})
//   -> {count, images: Float32 [B, 3, 224, 224], masks: Float32 [B, 1, 224, 224]}
class PreprocessJob : public Job {
 public:
  PreprocessJob(Napi::Env env, const Napi::Array& crops, const Napi::Array& masks, const Napi::Value& options)
      : Job(env, "anomalyncd.preprocess") {
    if (crops.Length() == 0 || crops.Length() != masks.Length())
      throwError(env, code::kInvalidArgument, "preprocess() needs one mask (or null) per crop, and at least one crop");
    rethrowNative(env, [&] { checkCrops(crops.Length(), "preprocess()"); });
    for (uint32_t i = 0; i < crops.Length(); ++i)
      items_.push_back(cropArg(*this, crops.Get(i), masks.Get(i), "crops[" + std::to_string(i) + "]", "masks[" + std::to_string(i) + "]"));
    threads_ = readFields<ThreadsOption>(options, "preprocess options").threads;
  }

 protected:
  void run() override {
    images_.assign(items_.size() * 3 * kPlane, 0.f);
    masks_.assign(items_.size() * kPlane, 0.f);
    parallelFor(items_.size(), threads_, &cancelToken(),
                [&](size_t i) { preprocessCrop(items_[i], images_.data() + i * 3 * kPlane, masks_.data() + i * kPlane); });
  }

  Napi::Value resolve(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    out.Set("count", static_cast<double>(items_.size()));
    out.Set("images", externalBufferOf<float>(env, std::move(images_)));
    out.Set("masks", externalBufferOf<float>(env, std::move(masks_)));
    return out;
  }

 private:
  std::vector<CropRef> items_;
  int threads_ = 1;
  std::vector<float> images_, masks_;
};

Napi::Value LoadBackbone(const Napi::CallbackInfo& info) {
  return startJob<LoadBackboneJob>(info[2], info.Env(), info[0], objArg(info, 1));
}

Napi::Value Preprocess(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray() || !info[1].IsArray()) throwError(env, code::kInvalidArgument, "preprocess(crops, masks) needs two arrays");
  return startJob<PreprocessJob>(info[3], env, info[0].As<Napi::Array>(), info[1].As<Napi::Array>(), info[2]);
}

Napi::Value Presets(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  for (const auto& name : model::presetNames()) out.Set(name, writeFields(env, model::presetConfig(name)));
  return out;
}

// Counters for tests: {checkpointReads} (state-dict reads by this addon).
Napi::Value Stats(const Napi::CallbackInfo& info) {
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("checkpointReads", static_cast<double>(model::checkpointReads()));
  return out;
}

}  // namespace

std::shared_ptr<const model::LoadedBackbone> backboneFromJs(const Napi::Value& value) {
  Napi::Env env = value.Env();
  Napi::FunctionReference& cls = backboneClass(env);
  if (cls.IsEmpty() || !value.IsObject() || !value.As<Napi::Object>().InstanceOf(cls.Value()))
    throwError(env, code::kInvalidArgument, "Option 'backbone' must be a Backbone from loadBackbone(), a checkpoint path or null");
  return Backbone::Unwrap(value.As<Napi::Object>())->live(env);
}

void InitModel(Napi::Env env, Napi::Object exports) {
  Napi::Function cls = Backbone::Define(env);
  backboneClass(env) = Napi::Persistent(cls);
  exports.Set("loadBackbone", Napi::Function::New(env, LoadBackbone, "loadBackbone"));
  exports.Set("preprocess", Napi::Function::New(env, Preprocess, "preprocess"));
  exports.Set("presets", Napi::Function::New(env, Presets, "presets"));
  exports.Set("stats", Napi::Function::New(env, Stats, "stats"));
  Napi::Object torchInfo = Napi::Object::New(env);
  torchInfo.Set("cudaAvailable", torch::cuda::is_available());
  torchInfo.Set("cudaBuilt", at::hasCUDA());
  torchInfo.Set("cpuBf16Dot", model::cpuHasBf16Dot());
  torchInfo.Set("interopThreads", at::get_num_interop_threads());
  torchInfo.Set("intraopThreads", at::get_num_threads());
  torchInfo.Set("parallelInfo", at::get_parallel_info());
  exports.Set("torch", torchInfo);
}

}  // namespace anomalyncd::binding
