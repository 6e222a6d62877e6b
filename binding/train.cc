// Training wrappers: fit, loadBundle, saveBundle, predict, dispose, readCrops, and
// synchronous kernels (loss terms, schedules, SGD) for tests. Exported as `train`.
//
// Structured training events (per batch / per epoch) reach JS through a second
// thread-safe function owned by FitJob (the Job base's progress() carries only
// done/total/stage and is used for the plain progress numbers).
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <atomic>
#include <cmath>
#include <cstring>

#include "common/parallel.h"
#include "io/image_io.h"
#include "model/vit.h"
#include "napi_util.h"
#include "train/bundle.h"
#include "train/losses.h"
#include "train/schedule.h"
#include "train/trainer.h"
#include "vit_config_arg.h"

namespace anomalyncd::binding {
namespace {

using train::NcdModel;

// ---------------------------------------------------------------------------
// argument helpers
// ---------------------------------------------------------------------------
[[noreturn]] void bad(Napi::Env env, const std::string& m) { throwError(env, code::kInvalidArgument, m); }

Napi::Value field(const Napi::Object& o, const char* k) { return o.Has(k) ? o.Get(k) : o.Env().Undefined(); }

std::vector<std::string> stringArray(const Napi::Value& v, const std::string& what) {
  if (!v.IsArray()) bad(v.Env(), what + " must be an array of strings");
  Napi::Array a = v.As<Napi::Array>();
  std::vector<std::string> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    Napi::Value s = a.Get(i);
    if (!s.IsString()) bad(v.Env(), what + "[" + std::to_string(i) + "] must be a string");
    out.push_back(s.As<Napi::String>().Utf8Value());
  }
  return out;
}

// {image: uint8 [h, w, 3], mask: uint8 [h, w] | [h, w, 1], score?, label?}; pixels borrowed.
train::TrainSample cropArg(Job& job, const Napi::Value& v, const std::string& what) {
  Napi::Env env = v.Env();
  if (!v.IsObject()) bad(env, what + " must be an object {image, mask}");
  Napi::Object o = v.As<Napi::Object>();
  TensorView im = tensorView(field(o, "image"), what + ".image");
  TensorView mk = tensorView(field(o, "mask"), what + ".mask");
  if (im.dtype != "uint8" || im.shape.size() != 3 || im.shape[2] != 3)
    bad(env, what + ".image must be a uint8 Tensor [h, w, 3]");
  if (mk.dtype != "uint8" || !(mk.shape.size() == 2 || (mk.shape.size() == 3 && mk.shape[2] == 1)))
    bad(env, what + ".mask must be a uint8 Tensor [h, w]");
  if (mk.shape[0] != im.shape[0] || mk.shape[1] != im.shape[1])
    bad(env, what + ": mask " + std::to_string(mk.shape[0]) + "x" + std::to_string(mk.shape[1]) +
                 " does not match image " + std::to_string(im.shape[0]) + "x" + std::to_string(im.shape[1]));
  if (im.shape[0] < 1 || im.shape[1] < 1 || im.shape[0] > (1 << 20) || im.shape[1] > (1 << 20))
    bad(env, what + ": bad crop size");
  job.keepAlive(im.owner);
  job.keepAlive(mk.owner);
  train::TrainSample s;
  s.crop.rgb = static_cast<const uint8_t*>(im.data);
  s.crop.mask = static_cast<const uint8_t*>(mk.data);
  s.crop.height = static_cast<int>(im.shape[0]);
  s.crop.width = static_cast<int>(im.shape[1]);
  Napi::Value score = field(o, "score");
  if (!score.IsUndefined() && !score.IsNull()) {
    if (!score.IsNumber()) bad(env, what + ".score must be a number");
    s.score = score.As<Napi::Number>().DoubleValue();
  }
  Napi::Value label = field(o, "label");
  if (!label.IsUndefined() && !label.IsNull()) {
    if (!label.IsNumber()) bad(env, what + ".label must be a class index");
    s.label = label.As<Napi::Number>().Int32Value();
  }
  return s;
}

model::VitConfig archArg(const Napi::Value& v) {
  Napi::Env env = v.Env();
  try {
    if (v.IsString()) return model::presetConfig(v.As<Napi::String>().Utf8Value());
    if (!v.IsObject()) bad(env, "Option 'arch' must be a preset name or an object");
    Napi::Object o = v.As<Napi::Object>();
    model::VitConfig c;
    if (o.Has("preset")) c = model::presetConfig(optString(o, "preset", ""));
    applyVitFields(o, c, "arch.attention must be 'fused' or 'plain'");
    model::validateConfig(c);
    return c;
  } catch (const Error& e) {
    throwError(env, e.code(), e.what());
  }
}

train::TrainConfig configArg(const Napi::Object& o) {
  Napi::Env env = o.Env();
  train::TrainConfig c;
  c.epochs = optInt(o, "epochs", c.epochs);
  c.batchSize = optInt(o, "batchSize", c.batchSize);
  c.lr = optDouble(o, "lr", c.lr);
  c.momentum = optDouble(o, "momentum", c.momentum);
  c.weightDecay = optDouble(o, "weightDecay", c.weightDecay);
  c.supWeight = optDouble(o, "supWeight", c.supWeight);
  c.memaxWeight = optDouble(o, "memaxWeight", c.memaxWeight);
  c.plcThreshold = optDouble(o, "plcThreshold", c.plcThreshold);
  c.teacher.warmupTemp = optDouble(o, "warmupTeacherTemp", c.teacher.warmupTemp);
  c.teacher.finalTemp = optDouble(o, "teacherTemp", c.teacher.finalTemp);
  c.teacher.warmupEpochs = optInt(o, "warmupTeacherEpochs", c.teacher.warmupEpochs);
  c.teacher.repeatTimes = optInt(o, "repeatTimes", c.teacher.repeatTimes);
  c.nHead = optInt(o, "nHead", c.nHead);
  c.gradFromBlock = optInt(o, "gradFromBlock", -1);  // default: the last block
  c.projHidden = optInt(o, "projHidden", c.projHidden);
  c.projOut = optInt(o, "projOut", c.projOut);
  c.numNovel = optInt(o, "k", 0);
  c.classNames = stringArray(field(o, "classNames"), "Option 'classNames'");
  const double seed = optDouble(o, "seed", 3407);
  if (seed < 0 || seed != std::floor(seed) || seed > 9007199254740991.0) bad(env, "Option 'seed' must be a non-negative safe integer");
  c.seed = static_cast<uint64_t>(seed);
  c.threads = optInt(o, "threads", 0);
  c.augmentThreads = optInt(o, "augmentThreads", 0);
  try {
    train::validateConfig(c);
  } catch (const Error& e) {
    throwError(env, e.code(), e.what());
  }
  return c;
}

Napi::Array doubles(Napi::Env env, const std::vector<double>& v) {
  Napi::Array a = Napi::Array::New(env, v.size());
  for (size_t i = 0; i < v.size(); ++i) a.Set(static_cast<uint32_t>(i), v[i]);
  return a;
}

Napi::Object lossesObject(Napi::Env env, const train::LossValues& l) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("total", l.total);
  o.Set("infoNce", l.infoNce);
  o.Set("supCon", l.supCon);
  o.Set("ce", doubles(env, l.ce));
  o.Set("distill", doubles(env, l.distill));
  o.Set("memax", doubles(env, l.memax));
  o.Set("cluster", doubles(env, l.cluster));
  return o;
}

// The fields a batch/epoch event shares with a history record.
template <typename Stats>
Napi::Object epochFields(Napi::Env env, const Stats& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("epoch", s.epoch);
  o.Set("batches", s.batches);
  o.Set("skipped", s.skipped);
  o.Set("lr", s.lr);
  o.Set("teacherTemp", s.teacherTemp);
  o.Set("losses", lossesObject(env, s.losses));
  o.Set("ms", s.ms);
  o.Set("augmentMs", s.augmentMs);
  o.Set("waitMs", s.waitMs);
  o.Set("modelMs", s.modelMs);
  return o;
}

Napi::Object eventObject(Napi::Env env, const train::TrainEvent& e) {
  Napi::Object o = epochFields(env, e);
  o.Set("type", e.type == train::TrainEvent::Type::Batch ? "batch" : "epoch");
  o.Set("epochs", e.epochs);
  o.Set("batch", e.batch);
  o.Set("rows", e.rows);
  return o;
}

Napi::Object configObject(Napi::Env env, const train::TrainConfig& c) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("epochs", c.epochs);
  o.Set("batchSize", c.batchSize);
  o.Set("lr", c.lr);
  o.Set("momentum", c.momentum);
  o.Set("weightDecay", c.weightDecay);
  o.Set("supWeight", c.supWeight);
  o.Set("memaxWeight", c.memaxWeight);
  o.Set("plcThreshold", c.plcThreshold);
  o.Set("warmupTeacherTemp", c.teacher.warmupTemp);
  o.Set("teacherTemp", c.teacher.finalTemp);
  o.Set("warmupTeacherEpochs", c.teacher.warmupEpochs);
  o.Set("repeatTimes", c.teacher.repeatTimes);
  o.Set("studentTemp", c.studentTemp);
  o.Set("infoNceTemp", c.infoNceTemp);
  o.Set("supConTemp", c.supConTemp);
  o.Set("supConBaseTemp", c.supConBaseTemp);
  o.Set("nHead", c.nHead);
  o.Set("gradFromBlock", c.gradFromBlock);
  o.Set("projHidden", c.projHidden);
  o.Set("projOut", c.projOut);
  o.Set("k", c.numNovel);
  o.Set("seed", static_cast<double>(c.seed));
  o.Set("threads", c.threads);
  o.Set("augmentThreads", c.augmentThreads);
  return o;
}

struct ModelHolder {
  std::shared_ptr<NcdModel> model;
};

Napi::Object modelObject(Napi::Env env, const std::shared_ptr<NcdModel>& m, const Napi::Array& warnings) {
  Napi::Object o = Napi::Object::New(env);
  auto* holder = new ModelHolder{m};
  o.Set("handle", Napi::External<ModelHolder>::New(env, holder, [](Napi::Env, ModelHolder* h) { delete h; }));
  o.Set("config", configObject(env, m->config));
  o.Set("arch", vitConfigObject(env, m->arch, /*withAttention=*/false));
  Napi::Array names = Napi::Array::New(env, m->config.classNames.size());
  for (size_t i = 0; i < m->config.classNames.size(); ++i) names.Set(static_cast<uint32_t>(i), m->config.classNames[i]);
  o.Set("classNames", names);
  o.Set("numKnown", m->numKnown());
  o.Set("epochsDone", m->epochsDone);
  Napi::Array sel = Napi::Array::New(env, m->selectedHeads.size());
  for (size_t i = 0; i < m->selectedHeads.size(); ++i) sel.Set(static_cast<uint32_t>(i), m->selectedHeads[i]);
  o.Set("selectedHeads", sel);
  Napi::Array hist = Napi::Array::New(env, m->history.size());
  for (size_t i = 0; i < m->history.size(); ++i) {
    hist.Set(static_cast<uint32_t>(i), epochFields(env, m->history[i]));
  }
  o.Set("history", hist);
  Napi::Object bb = Napi::Object::New(env);
  bb.Set("path", m->backbonePath.empty() ? env.Null() : Napi::String::New(env, m->backbonePath));
  bb.Set("sha256", m->backboneSha256.empty() ? env.Null() : Napi::String::New(env, m->backboneSha256));
  o.Set("backbone", bb);
  if (m->searchRange) {
    Napi::Array r = Napi::Array::New(env, 2);
    r.Set(0u, m->searchRange->first);
    r.Set(1u, m->searchRange->second);
    o.Set("searchRange", r);
  }
  o.Set("dataFingerprint", m->dataFingerprint);
  o.Set("warnings", warnings);
  return o;
}

std::shared_ptr<NcdModel> modelArg(const Napi::Value& v) {
  if (!v.IsExternal()) bad(v.Env(), "not a trained-model handle");
  ModelHolder* h = v.As<Napi::External<ModelHolder>>().Data();
  if (!h || !h->model) throwError(v.Env(), code::kInvalidArgument, "The trained model has been disposed");
  return h->model;
}

// ---------------------------------------------------------------------------
// fit
// ---------------------------------------------------------------------------
class FitJob : public Job {
 public:
  FitJob(Napi::Env env, const Napi::Object& dataset, const Napi::Object& options, const Napi::Value& onEvent)
      : Job(env, "anomalyncd.fit") {
    req_.config = configArg(options);
    Napi::Value arch = field(options, "arch");
    if (!arch.IsUndefined() && !arch.IsNull()) req_.arch = archArg(arch);
    req_.backbonePath = optString(options, "backbone", "");
    req_.checkpointDir = optString(options, "checkpointDir", "");
    Napi::Value range = field(options, "searchRange");
    if (range.IsArray() && range.As<Napi::Array>().Length() == 2)
      req_.searchRange = std::make_pair(range.As<Napi::Array>().Get(0u).As<Napi::Number>().Int32Value(),
                                        range.As<Napi::Array>().Get(1u).As<Napi::Number>().Int32Value());
    Napi::Value un = field(dataset, "unlabelled");
    if (!un.IsArray()) bad(env, "dataset.unlabelled must be an array of crops");
    for (uint32_t i = 0; i < un.As<Napi::Array>().Length(); ++i) {
      train::TrainSample s = cropArg(*this, un.As<Napi::Array>().Get(i), "dataset.unlabelled[" + std::to_string(i) + "]");
      s.label = -1;
      data_.unlabelled.push_back(s);
    }
    Napi::Value lab = field(dataset, "labelled");
    if (lab.IsArray())
      for (uint32_t i = 0; i < lab.As<Napi::Array>().Length(); ++i)
        data_.labelled.push_back(cropArg(*this, lab.As<Napi::Array>().Get(i), "dataset.labelled[" + std::to_string(i) + "]"));
    if (onEvent.IsFunction()) {
      events_ = Napi::ThreadSafeFunction::New(env, onEvent.As<Napi::Function>(), "anomalyncd.trainEvents", 0, 1);
      hasEvents_ = true;
    }
  }
  ~FitJob() override {
    if (hasEvents_) events_.Release();
  }

 protected:
  void run() override {
    req_.cancel = &cancelToken();
    req_.warn = [this](const std::string& w) { addWarning(w); };
    req_.onEvent = [this](const train::TrainEvent& e) {
      if (e.type == train::TrainEvent::Type::Batch && e.batches > 0)
        progress(e.epoch + static_cast<double>(e.batch + 1) / e.batches, e.epochs, "train");
      if (!hasEvents_) return;
      auto* copy = new train::TrainEvent(e);
      const napi_status st = events_.NonBlockingCall(copy, [](Napi::Env env, Napi::Function cb, train::TrainEvent* ev) {
        try {
          if (env != nullptr && cb != nullptr) cb.Call({eventObject(env, *ev)});
        } catch (...) {
        }
        delete ev;
      });
      if (st != napi_ok) delete copy;
    };
    model_ = train::fit(data_, req_);
  }
  Napi::Value resolve(Napi::Env env) override { return modelObject(env, model_, warningsArray(env)); }

 private:
  train::FitRequest req_;
  train::TrainData data_;
  std::shared_ptr<NcdModel> model_;
  Napi::ThreadSafeFunction events_;
  bool hasEvents_ = false;
};

// ---------------------------------------------------------------------------
// load / save / predict / readCrops
// ---------------------------------------------------------------------------
class LoadJob : public Job {
 public:
  LoadJob(Napi::Env env, std::string path, std::string backbone, int threads)
      : Job(env, "anomalyncd.loadTrainedModel"), path_(std::move(path)), backbone_(std::move(backbone)), threads_(threads) {}

 protected:
  void run() override {
    (void)threads_;  // loading runs no network (kept for API symmetry)
    model_ = train::loadBundle(path_, backbone_, [this](const std::string& w) { addWarning(w); });
  }
  Napi::Value resolve(Napi::Env env) override { return modelObject(env, model_, warningsArray(env)); }

 private:
  std::string path_, backbone_;
  int threads_;
  std::shared_ptr<NcdModel> model_;
};

class SaveJob : public Job {
 public:
  SaveJob(Napi::Env env, std::shared_ptr<NcdModel> m, std::string path, bool selfContained)
      : Job(env, "anomalyncd.saveTrainedModel"), model_(std::move(m)), path_(std::move(path)), selfContained_(selfContained) {}

 protected:
  void run() override { train::writeBundle(path_, *model_, nullptr, selfContained_ || model_->backbonePath.empty()); }
  Napi::Value resolve(Napi::Env env) override { return env.Undefined(); }

 private:
  std::shared_ptr<NcdModel> model_;
  std::string path_;
  bool selfContained_;
};

class PredictJob : public Job {
 public:
  PredictJob(Napi::Env env, std::shared_ptr<NcdModel> m, const Napi::Array& crops, const Napi::Object& options)
      : Job(env, "anomalyncd.predict"), model_(std::move(m)) {
    head_ = optInt(options, "head", -1);
    embeddings_ = optBool(options, "embeddings", false);
    threads_ = optInt(options, "threads", 1);
    batchSize_ = optInt(options, "batchSize", 32);
    for (uint32_t i = 0; i < crops.Length(); ++i)
      crops_.push_back(cropArg(*this, crops.Get(i), "crops[" + std::to_string(i) + "]").crop);
  }

 protected:
  void run() override {
    out_ = train::predict(*model_, crops_, head_, embeddings_, threads_, batchSize_, &cancelToken(),
                          [this](size_t done, size_t total) { progress(static_cast<double>(done), static_cast<double>(total), "predict"); });
  }
  Napi::Value resolve(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("count", static_cast<double>(crops_.size()));
    o.Set("numNovel", out_.numNovel);
    o.Set("head", head_ < 0 ? model_->selectedHead() : head_);
    o.Set("probabilities", externalBufferOf<float>(env, std::move(out_.probabilities)));
    if (embeddings_) {
      o.Set("dim", out_.dim);
      o.Set("embeddings", externalBufferOf<float>(env, std::move(out_.embeddings)));
    }
    return o;
  }

 private:
  std::shared_ptr<NcdModel> model_;
  std::vector<train::CropSample> crops_;
  int head_ = -1, threads_ = 1, batchSize_ = 32;
  bool embeddings_ = false;
  train::Prediction out_;
};

class ReadCropsJob : public Job {
 public:
  ReadCropsJob(Napi::Env env, std::vector<std::string> images, std::vector<std::string> masks, int threads)
      : Job(env, "anomalyncd.readCrops"), images_(std::move(images)), masks_(std::move(masks)), threads_(threads) {}

 protected:
  void run() override {
    const size_t n = images_.size();
    img_.resize(n);
    msk_.resize(n);
    std::atomic<size_t> done{0};
    parallelFor(n, threads_, &cancelToken(), [&](size_t i) {
      cv::Mat im = io::readImageRGB(images_[i]);
      cv::Mat mk = io::readMapU8(masks_[i]);
      if (im.rows != mk.rows || im.cols != mk.cols)
        throw Error(code::kBadInput, "Mask '" + masks_[i] + "' is " + std::to_string(mk.cols) + "x" + std::to_string(mk.rows) +
                                         " but image '" + images_[i] + "' is " + std::to_string(im.cols) + "x" +
                                         std::to_string(im.rows));
      img_[i] = im.isContinuous() ? im : im.clone();
      msk_[i] = mk.isContinuous() ? mk : mk.clone();
      progress(static_cast<double>(++done), static_cast<double>(n), "read");
    });
  }
  Napi::Value resolve(Napi::Env env) override {
    Napi::Array items = Napi::Array::New(env, img_.size());
    for (size_t i = 0; i < img_.size(); ++i) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("height", img_[i].rows);
      o.Set("width", img_[i].cols);
      const size_t px = static_cast<size_t>(img_[i].rows) * static_cast<size_t>(img_[i].cols);
      std::vector<uint8_t> rgb(img_[i].data, img_[i].data + px * 3);
      std::vector<uint8_t> mk(msk_[i].data, msk_[i].data + px);
      img_[i].release();
      msk_[i].release();
      o.Set("image", externalBuffer(env, std::move(rgb)));
      o.Set("mask", externalBuffer(env, std::move(mk)));
      items.Set(static_cast<uint32_t>(i), o);
    }
    return items;
  }

 private:
  std::vector<std::string> images_, masks_;
  int threads_;
  std::vector<cv::Mat> img_, msk_;
};

// fit(dataset, options, onProgress?, onEvent?) -> {promise, cancel}
Napi::Value Fit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) bad(env, "fit() needs a dataset object");
  return startJob<FitJob>(info[2], env, info[0].As<Napi::Object>(), objArg(info, 1), info[3]);
}

// loadBundle(path, {backbone?, threads?}, onProgress?)
Napi::Value LoadBundle(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) bad(env, "loadTrainedModel() needs a file path");
  Napi::Object o = objArg(info, 1);
  return startJob<LoadJob>(info[2], env, info[0].As<Napi::String>().Utf8Value(), optString(o, "backbone", ""),
                           optInt(o, "threads", 0));
}

// saveBundle(handle, path, {selfContained?})
Napi::Value SaveBundle(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto m = modelArg(info[0]);
  if (!info[1].IsString()) bad(env, "save() needs a file path");
  return startJob<SaveJob>(env.Undefined(), env, m, info[1].As<Napi::String>().Utf8Value(),
                           optBool(objArg(info, 2), "selfContained", false));
}

// predict(handle, crops, options, onProgress?)
Napi::Value Predict(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto m = modelArg(info[0]);
  if (!info[1].IsArray()) bad(env, "predict() needs an array of crops");
  return startJob<PredictJob>(info[3], env, m, info[1].As<Napi::Array>(), objArg(info, 2));
}

Napi::Value Dispose(const Napi::CallbackInfo& info) {
  if (info[0].IsExternal()) {
    ModelHolder* h = info[0].As<Napi::External<ModelHolder>>().Data();
    if (h) h->model.reset();
  }
  return info.Env().Undefined();
}

// readCrops(images: string[], masks: string[], {threads}, onProgress?)
Napi::Value ReadCrops(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto images = stringArray(info[0], "images");
  auto masks = stringArray(info[1], "masks");
  if (images.size() != masks.size()) bad(env, "readCrops(): one mask per image is needed");
  return startJob<ReadCropsJob>(info[3], env, std::move(images), std::move(masks), std::max(1, optInt(objArg(info, 2), "threads", 1)));
}

// ---------------------------------------------------------------------------
// synchronous kernels (small inputs, tests)
// ---------------------------------------------------------------------------
at::Tensor tensorArg(const Napi::Value& v, const std::string& what) {
  TensorView t = tensorView(v, what);
  at::ScalarType st;
  if (t.dtype == "float32") st = at::kFloat;
  else if (t.dtype == "float64") st = at::kDouble;
  else if (t.dtype == "int32") st = at::kInt;
  else if (t.dtype == "int64") st = at::kLong;
  else bad(v.Env(), what + ": unsupported dtype " + t.dtype);
  return at::from_blob(t.data, t.shape, at::TensorOptions().dtype(st)).clone();
}

Napi::Value tensorOut(Napi::Env env, const at::Tensor& t0) {
  at::Tensor t = t0.detach().contiguous();
  Napi::Object o = Napi::Object::New(env);
  Napi::Array shape = Napi::Array::New(env, static_cast<size_t>(t.dim()));
  for (int64_t i = 0; i < t.dim(); ++i) shape.Set(static_cast<uint32_t>(i), static_cast<double>(t.size(i)));
  o.Set("shape", shape);
  if (t.scalar_type() == at::kDouble) {
    auto a = Napi::Float64Array::New(env, static_cast<size_t>(t.numel()));
    std::memcpy(a.Data(), t.data_ptr<double>(), static_cast<size_t>(t.numel()) * 8);
    o.Set("data", a);
  } else {
    at::Tensor f = t.to(at::kFloat);
    auto a = Napi::Float32Array::New(env, static_cast<size_t>(f.numel()));
    std::memcpy(a.Data(), f.data_ptr<float>(), static_cast<size_t>(f.numel()) * 4);
    o.Set("data", a);
  }
  return o;
}

template <typename F>
Napi::Value guarded(Napi::Env env, F&& f) {
  try {
    return f();
  } catch (const Error& e) {
    throwError(env, e.code(), e.what());
  } catch (const c10::Error& e) {
    throwError(env, code::kInternal, e.what_without_backtrace());
  }
}

// losses({z, logits, labels, plc?}, {numKnown, teacherTemp, ...}) -> every term (+ teacher targets, grads)
Napi::Value KLosses(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object in = objArg(info, 0), o = objArg(info, 1);
  return guarded(env, [&]() -> Napi::Value {
    c10::AutoGradMode grad(true);
    at::Tensor z = tensorArg(field(in, "z"), "z").requires_grad_(true);
    at::Tensor logits = tensorArg(field(in, "logits"), "logits").requires_grad_(true);
    at::Tensor labels = tensorArg(field(in, "labels"), "labels").to(at::kLong);
    at::Tensor plc;
    if (in.Has("plc") && !field(in, "plc").IsUndefined()) plc = tensorArg(field(in, "plc"), "plc").to(z.scalar_type());
    train::LossConfig c;
    c.numKnown = optInt(o, "numKnown", 0);
    c.teacherTemp = optDouble(o, "teacherTemp", c.teacherTemp);
    c.studentTemp = optDouble(o, "studentTemp", c.studentTemp);
    c.infoNceTemp = optDouble(o, "infoNceTemp", c.infoNceTemp);
    c.supConTemp = optDouble(o, "supConTemp", c.supConTemp);
    c.supConBaseTemp = optDouble(o, "supConBaseTemp", c.supConBaseTemp);
    c.supWeight = optDouble(o, "supWeight", c.supWeight);
    c.memaxWeight = optDouble(o, "memaxWeight", c.memaxWeight);
    train::BatchLosses L = train::batchLosses(z, logits, labels, plc, c);
    L.total.backward();
    Napi::Object out = Napi::Object::New(env);
    out.Set("total", L.total.item<double>());
    out.Set("infoNce", L.infoNce.item<double>());
    out.Set("supCon", L.supCon.item<double>());
    auto vec = [&](const at::Tensor& t) {
      at::Tensor d = t.detach().to(at::kDouble).contiguous();
      return doubles(env, std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel()));
    };
    out.Set("ce", vec(L.ce));
    out.Set("distill", vec(L.distill));
    out.Set("memax", vec(L.memax));
    out.Set("cluster", vec(L.cluster));
    out.Set("gradZ", tensorOut(env, z.grad()));
    out.Set("gradLogits", tensorOut(env, logits.grad()));
    return out;
  });
}

// teacherTargets(teacher [2n, C], teacherTemp, numKnown, plc? [n]) -> tensor
Napi::Value KTeacherTargets(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    at::Tensor t = tensorArg(info[0], "teacher");
    at::Tensor plc;
    if (info.Length() > 3 && !info[3].IsUndefined()) plc = tensorArg(info[3], "plc").to(t.scalar_type());
    return tensorOut(env, train::teacherTargets(t, info[1].As<Napi::Number>().DoubleValue(),
                                                info[2].As<Napi::Number>().Int32Value(), plc));
  });
}

// teacherTemperatures(epochs, {warmupTemp, finalTemp, warmupEpochs, repeatTimes})
Napi::Value KTeacherTemps(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = objArg(info, 1);
  return guarded(env, [&]() -> Napi::Value {
    train::TeacherTempSchedule s;
    s.warmupTemp = optDouble(o, "warmupTemp", s.warmupTemp);
    s.finalTemp = optDouble(o, "finalTemp", s.finalTemp);
    s.warmupEpochs = optInt(o, "warmupEpochs", s.warmupEpochs);
    s.repeatTimes = optInt(o, "repeatTimes", s.repeatTimes);
    return doubles(env, train::teacherTemperatures(info[0].As<Napi::Number>().Int32Value(), s));
  });
}

// cosineLr(epochs, lr, etaMinFactor?) -> lr of epochs 0..epochs-1
Napi::Value KCosineLr(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, [&]() -> Napi::Value {
    const int epochs = info[0].As<Napi::Number>().Int32Value();
    const double lr = info[1].As<Napi::Number>().DoubleValue();
    const double f = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : 1e-3;
    std::vector<double> v;
    for (int e = 0; e < epochs; ++e) v.push_back(train::cosineLr(e, lr, epochs, f));
    return doubles(env, v);
  });
}

// sgd([{name, value: Tensor, grads: Tensor[]}], {lrs: number[], momentum, weightDecay})
//   -> [{name, value, momentum, decay}] after one step per lrs entry
Napi::Value KSgd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) bad(env, "sgd() needs an array of parameters");
  Napi::Array ps = info[0].As<Napi::Array>();
  Napi::Object o = objArg(info, 1);
  return guarded(env, [&]() -> Napi::Value {
    std::vector<std::pair<std::string, at::Tensor>> params;
    std::vector<std::vector<at::Tensor>> grads;
    for (uint32_t i = 0; i < ps.Length(); ++i) {
      Napi::Object p = ps.Get(i).As<Napi::Object>();
      at::Tensor v = tensorArg(field(p, "value"), "value").requires_grad_(true);
      params.emplace_back(optString(p, "name", "p" + std::to_string(i)), v);
      std::vector<at::Tensor> g;
      Napi::Array ga = field(p, "grads").As<Napi::Array>();
      for (uint32_t k = 0; k < ga.Length(); ++k) g.push_back(tensorArg(ga.Get(k), "grad").to(v.scalar_type()));
      grads.push_back(std::move(g));
    }
    train::MomentumSGD opt(params, optDouble(o, "momentum", 0.9), optDouble(o, "weightDecay", 5e-5));
    Napi::Array lrs = field(o, "lrs").As<Napi::Array>();
    for (uint32_t s = 0; s < lrs.Length(); ++s) {
      opt.zeroGrad();
      for (size_t i = 0; i < params.size(); ++i) params[i].second.mutable_grad() = grads[i].at(s).clone();
      opt.step(lrs.Get(s).As<Napi::Number>().DoubleValue());
    }
    Napi::Array out = Napi::Array::New(env, params.size());
    const auto bufs = opt.momentumBuffers();
    for (size_t i = 0; i < params.size(); ++i) {
      Napi::Object r = Napi::Object::New(env);
      r.Set("name", params[i].first);
      r.Set("value", tensorOut(env, params[i].second));
      auto it = bufs.find(params[i].first);
      if (it != bufs.end()) r.Set("momentum", tensorOut(env, it->second));
      r.Set("decay", opt.slots()[i].decay);
      out.Set(static_cast<uint32_t>(i), r);
    }
    return out;
  });
}

// trainableParameters(arch, {gradFromBlock, nHead, k, classNames, projHidden, projOut})
//   -> [{name, shape, decay}] of the parameters the optimiser updates
Napi::Value KTrainable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  model::VitConfig arch = archArg(info[0]);
  train::TrainConfig cfg = configArg(objArg(info, 1));
  return guarded(env, [&]() -> Napi::Value {
    auto m = train::buildModel(cfg, arch, "", nullptr);
    train::MomentumSGD opt(train::trainableParameters(*m), cfg.momentum, cfg.weightDecay);
    Napi::Array out = Napi::Array::New(env, opt.slots().size());
    for (size_t i = 0; i < opt.slots().size(); ++i) {
      const auto& s = opt.slots()[i];
      Napi::Object r = Napi::Object::New(env);
      r.Set("name", s.name);
      Napi::Array shape = Napi::Array::New(env, static_cast<size_t>(s.param.dim()));
      for (int64_t d = 0; d < s.param.dim(); ++d) shape.Set(static_cast<uint32_t>(d), static_cast<double>(s.param.size(d)));
      r.Set("shape", shape);
      r.Set("decay", s.decay);
      out.Set(static_cast<uint32_t>(i), r);
    }
    return out;
  });
}

}  // namespace

void InitTrain(Napi::Env env, Napi::Object exports) {
  Napi::Object t = Napi::Object::New(env);
  t.Set("fit", Napi::Function::New(env, Fit, "fit"));
  t.Set("loadBundle", Napi::Function::New(env, LoadBundle, "loadBundle"));
  t.Set("saveBundle", Napi::Function::New(env, SaveBundle, "saveBundle"));
  t.Set("predict", Napi::Function::New(env, Predict, "predict"));
  t.Set("dispose", Napi::Function::New(env, Dispose, "dispose"));
  t.Set("readCrops", Napi::Function::New(env, ReadCrops, "readCrops"));
  Napi::Object k = Napi::Object::New(env);
  k.Set("losses", Napi::Function::New(env, KLosses, "losses"));
  k.Set("teacherTargets", Napi::Function::New(env, KTeacherTargets, "teacherTargets"));
  k.Set("teacherTemperatures", Napi::Function::New(env, KTeacherTemps, "teacherTemperatures"));
  k.Set("cosineLr", Napi::Function::New(env, KCosineLr, "cosineLr"));
  k.Set("sgd", Napi::Function::New(env, KSgd, "sgd"));
  k.Set("trainableParameters", Napi::Function::New(env, KTrainable, "trainableParameters"));
  t.Set("kernels", k);
  exports.Set("train", t);
}

}  // namespace anomalyncd::binding
