// Training wrappers: fit, loadTrainedModel, saveTrainedModel, predict, dispose,
// readCrops. Exported as `train`. (Synchronous test kernels: testing/train_kernels.cc.)
//
// Options arrive complete from ts/stages/train.ts and are read through the core's field
// lists (fields.h): no defaults here.
//
// Structured training events (per batch / per epoch) reach JS through a second
// thread-safe function owned by FitJob (the Job base's progress() carries only
// done/total/stage and is used for the plain progress numbers).
#include <atomic>
#include <cmath>
#include <cstring>

#include "backbone_handle.h"
#include "common/parallel.h"
#include "fields.h"
#include "io/image_io.h"
#include "model/device.h"
#include "model/heads.h"
#include "common/limits.h"
#include "napi_util.h"
#include "train/bundle.h"
#include "train/trainer.h"

namespace anomalyncd::binding {
namespace {

using train::NcdModel;

// ---------------------------------------------------------------------------
// argument helpers
// ---------------------------------------------------------------------------
[[noreturn]] void bad(Napi::Env env, const std::string& m) { throwError(env, code::kInvalidArgument, m); }

Napi::Value field(const Napi::Object& o, const char* k) { return o.Has(k) ? o.Get(k) : o.Env().Undefined(); }

// A field that TS always sets, possibly to null.
Napi::Value nullable(const Napi::Object& o, const char* k, const std::string& where) {
  Napi::Value v = field(o, k);
  if (v.IsUndefined()) bad(o.Env(), where + ": field '" + k + "' is missing (the TypeScript layer fills every option before calling native code)");
  return v;
}

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

// {image: uint8 [h, w, 3], mask: uint8 [h, w] | [h, w, 1], score?, label?}; pixels copied (TensorView).
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

struct ModelHolder {
  std::shared_ptr<NcdModel> model;
};

Napi::Object modelObject(Napi::Env env, const std::shared_ptr<NcdModel>& m, const Napi::Array& warnings) {
  Napi::Object o = Napi::Object::New(env);
  auto* holder = new ModelHolder{m};
  o.Set("handle", Napi::External<ModelHolder>::New(env, holder, [](Napi::Env, ModelHolder* h) { delete h; }));
  o.Set("config", writeFields(env, m->config));
  o.Set("arch", writeFields(env, m->arch));
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
    hist.Set(static_cast<uint32_t>(i), writeFields(env, m->history[i]));
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
  if (m->inference) o.Set("inference", writeFields(env, *m->inference));
  o.Set("dataFingerprint", m->dataFingerprint);
  o.Set("device", model::deviceName(m->heads->headList.front()->weight.device()));
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
    const std::string where = "fit() options";
    req_.config = readFields<train::TrainConfig>(options, where);
    FieldReader reader(options, where);
    reader("checkpointDir", req_.checkpointDir);  // "": none
    reader("device", req_.device);                // resolved in train::fit (ERR_DEVICE there)
    reader("precision", req_.precision);
    reader("searchRange", req_.searchRange);
    Napi::Value arch = nullable(options, "arch", where);
    if (!arch.IsNull()) req_.arch = readFields<model::VitConfig>(arch, "Option 'arch'");
    // A loaded Backbone (its weights are used as they are: the file is not read again),
    // a checkpoint path (loaded by fit), or null (random init).
    Napi::Value backbone = nullable(options, "backbone", where);
    if (backbone.IsString()) req_.backbonePath = backbone.As<Napi::String>().Utf8Value();
    else if (!backbone.IsNull()) req_.backbone = backboneFromJs(backbone);
    Napi::Value un = field(dataset, "unlabelled");
    if (!un.IsArray()) bad(env, "dataset.unlabelled must be an array of crops");
    {
      Napi::Value labs = field(dataset, "labelled");
      const int64_t total = int64_t(un.As<Napi::Array>().Length()) + (labs.IsArray() ? int64_t(labs.As<Napi::Array>().Length()) : 0);
      rethrowNative(env, [&] { checkCrops(total, "fit() dataset"); });
    }
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
          if (env != nullptr && cb != nullptr) cb.Call({writeFields(env, *ev)});
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
  LoadJob(Napi::Env env, std::string path, std::string backbone, std::string device)
      : Job(env, "anomalyncd.loadTrainedModel"), path_(std::move(path)), backbone_(std::move(backbone)), device_(std::move(device)) {}

 protected:
  void run() override {
    model_ = train::loadTrainedModel(path_, backbone_, [this](const std::string& w) { addWarning(w); }, model::torchDevice(device_));
  }
  Napi::Value resolve(Napi::Env env) override { return modelObject(env, model_, warningsArray(env)); }

 private:
  std::string path_, backbone_, device_;
  std::shared_ptr<NcdModel> model_;
};

class SaveJob : public Job {
 public:
  SaveJob(Napi::Env env, std::shared_ptr<NcdModel> m, std::string path, bool selfContained,
          std::optional<train::InferenceRecord> inference)
      : Job(env, "anomalyncd.saveTrainedModel"),
        model_(std::move(m)),
        path_(std::move(path)),
        selfContained_(selfContained),
        inference_(std::move(inference)) {}

 protected:
  void run() override {
    train::writeBundle(path_, *model_, nullptr, selfContained_ || model_->backbonePath.empty(),
                       inference_ ? &*inference_ : nullptr);
  }
  Napi::Value resolve(Napi::Env env) override { return env.Undefined(); }

 private:
  std::shared_ptr<NcdModel> model_;
  std::string path_;
  bool selfContained_;
  std::optional<train::InferenceRecord> inference_;
};

class PredictJob : public Job {
 public:
  PredictJob(Napi::Env env, std::shared_ptr<NcdModel> m, const Napi::Array& crops, const Napi::Object& options)
      : Job(env, "anomalyncd.predict"), model_(std::move(m)) {
    options_ = readFields<train::PredictOptions>(options, "predict() options");
    for (uint32_t i = 0; i < crops.Length(); ++i)
      crops_.push_back(cropArg(*this, crops.Get(i), "crops[" + std::to_string(i) + "]").crop);
  }

 protected:
  void run() override {
    out_ = train::predict(*model_, crops_, options_, &cancelToken(),
                          [this](size_t done, size_t total) { progress(static_cast<double>(done), static_cast<double>(total), "predict"); });
  }
  Napi::Value resolve(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("count", static_cast<double>(crops_.size()));
    o.Set("numNovel", out_.numNovel);
    o.Set("head", options_.head < 0 ? model_->selectedHead() : options_.head);
    o.Set("probabilities", externalBufferOf<float>(env, std::move(out_.probabilities)));
    if (options_.logits) o.Set("logits", externalBufferOf<float>(env, std::move(out_.logits)));
    if (options_.embeddings) {
      o.Set("dim", out_.dim);
      o.Set("embeddings", externalBufferOf<float>(env, std::move(out_.embeddings)));
    }
    return o;
  }

 private:
  std::shared_ptr<NcdModel> model_;
  std::vector<train::CropSample> crops_;
  train::PredictOptions options_;
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

// loadTrainedModel(path, {backbone: string | null, device: string}, onProgress?)
Napi::Value LoadTrainedModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) bad(env, "loadTrainedModel() needs a file path");
  const std::string where = "loadTrainedModel() options";
  Napi::Value backbone = nullable(objArg(info, 1), "backbone", where);
  if (!backbone.IsNull() && !backbone.IsString()) bad(env, where + ": field 'backbone' must be a checkpoint path or null");
  std::string device = "cpu";
  FieldReader(objArg(info, 1), where)("device", device);
  return startJob<LoadJob>(info[2], env, info[0].As<Napi::String>().Utf8Value(),
                           backbone.IsNull() ? std::string() : backbone.As<Napi::String>().Utf8Value(), std::move(device));
}

// saveTrainedModel(handle, path, {selfContained})
Napi::Value SaveTrainedModel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto m = modelArg(info[0]);
  if (!info[1].IsString()) bad(env, "save() needs a file path");
  bool selfContained = false;
  Napi::Object opts = objArg(info, 2);
  FieldReader(opts, "save() options")("selfContained", selfContained);
  std::optional<train::InferenceRecord> inference;  // optional: the model's own record otherwise
  if (opts.Has("inference") && !opts.Get("inference").IsUndefined() && !opts.Get("inference").IsNull())
    inference = readFields<train::InferenceRecord>(opts.Get("inference"), "save() options.inference");
  return startJob<SaveJob>(env.Undefined(), env, m, info[1].As<Napi::String>().Utf8Value(), selfContained, std::move(inference));
}

// predict(handle, crops, options, onProgress?)
Napi::Value Predict(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto m = modelArg(info[0]);
  if (!info[1].IsArray()) bad(env, "predict() needs an array of crops");
  rethrowNative(env, [&] { checkCrops(info[1].As<Napi::Array>().Length(), "predict()"); });
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
  rethrowNative(env, [&] { checkCrops(static_cast<int64_t>(images.size()), "readCrops()"); });
  int threads = 0;
  FieldReader(objArg(info, 2), "readCrops() options")("threads", threads);
  return startJob<ReadCropsJob>(info[3], env, std::move(images), std::move(masks), threads);
}

}  // namespace

void InitTrain(Napi::Env env, Napi::Object exports) {
  Napi::Object t = Napi::Object::New(env);
  t.Set("fit", Napi::Function::New(env, Fit, "fit"));
  t.Set("loadTrainedModel", Napi::Function::New(env, LoadTrainedModel, "loadTrainedModel"));
  t.Set("saveTrainedModel", Napi::Function::New(env, SaveTrainedModel, "saveTrainedModel"));
  t.Set("predict", Napi::Function::New(env, Predict, "predict"));
  t.Set("dispose", Napi::Function::New(env, Dispose, "dispose"));
  t.Set("readCrops", Napi::Function::New(env, ReadCrops, "readCrops"));
  exports.Set("train", t);
}

}  // namespace anomalyncd::binding
