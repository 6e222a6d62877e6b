// Synchronous training kernels for tests on small inputs (loss terms, teacher targets,
// schedules, SGD, the trainable-parameter set): `exports.trainKernels`. Built into the
// test-only addon, never into the production one.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cstring>

#include "../fields.h"
#include "../napi_util.h"
#include "../train_args.h"
#include "model/backbone.h"
#include "train/losses.h"
#include "train/schedule.h"
#include "train/trainer.h"

namespace anomalyncd::binding {
namespace {

[[noreturn]] void bad(Napi::Env env, const std::string& m) { throwError(env, code::kInvalidArgument, m); }

Napi::Value field(const Napi::Object& o, const char* k) { return o.Has(k) ? o.Get(k) : o.Env().Undefined(); }

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

// trainableParameters(arch: every VitConfig field, config: every TrainConfig field)
//   -> [{name, shape, decay}] of the parameters the optimiser updates
Napi::Value KTrainable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const model::VitConfig arch = readFields<model::VitConfig>(info[0], "trainableParameters() arch");
  const train::TrainConfig cfg = readFields<train::TrainConfig>(info[1], "trainableParameters() config");
  return guarded(env, [&]() -> Napi::Value {
    train::validateConfig(cfg);
    auto m = train::buildModel(cfg, *model::loadBackbone("", arch, cfg.seed), nullptr);
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

void InitTrainKernels(Napi::Env env, Napi::Object exports) {
  Napi::Object k = Napi::Object::New(env);
  k.Set("losses", Napi::Function::New(env, KLosses, "losses"));
  k.Set("teacherTargets", Napi::Function::New(env, KTeacherTargets, "teacherTargets"));
  k.Set("teacherTemperatures", Napi::Function::New(env, KTeacherTemps, "teacherTemperatures"));
  k.Set("cosineLr", Napi::Function::New(env, KCosineLr, "cosineLr"));
  k.Set("sgd", Napi::Function::New(env, KSgd, "sgd"));
  k.Set("trainableParameters", Napi::Function::New(env, KTrainable, "trainableParameters"));
  exports.Set("trainKernels", k);
}

}  // namespace anomalyncd::binding
