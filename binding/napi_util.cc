#include "napi_util.h"

#include <cmath>

#include "common/limits.h"

namespace anomalyncd::binding {

Napi::Error makeError(Napi::Env env, const std::string& code, const std::string& message) {
  auto* data = env.GetInstanceData<AddonData>();
  if (data && !data->errorClass.IsEmpty()) {
    Napi::Value err = data->errorClass.Call({Napi::String::New(env, code), Napi::String::New(env, message)});
    if (err.IsObject()) return Napi::Error(env, err);
  }
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

void throwError(Napi::Env env, const std::string& code, const std::string& message) {
  throw makeError(env, code, message);
}

bool isDeviceOutOfMemory(const std::string& message) {
  // c10::OutOfMemoryError (libtorch 1.13 and 2.x: "CUDA out of memory. Tried to allocate
  // ..."), a raw CUDA status ("CUDA error: out of memory"), and our own kernels' wording.
  // Matched by message so that this file stays free of torch headers (the core addon
  // links no libtorch); c10::OutOfMemoryError derives from c10::Error, whose what() is it.
  return message.find("CUDA out of memory") != std::string::npos ||
         message.find("CUDA error: out of memory") != std::string::npos ||
         message.find("cudaErrorMemoryAllocation") != std::string::npos;
}

namespace {
// setErrorClass((code, message) => Error): native errors are instances of the TS classes.
Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) throwError(info.Env(), code::kInvalidArgument, "setErrorClass needs a function");
  info.Env().GetInstanceData<AddonData>()->errorClass = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}
}  // namespace

namespace {
int64_t limitField(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!std::isfinite(d) || std::floor(d) != d || d < 1 || d > 9.007199254740992e15)
    throwError(o.Env(), code::kInvalidArgument, std::string("Limit '") + key + "' must be a positive integer");
  return static_cast<int64_t>(d);
}

// getLimits() / setLimits({maxPixels, maxCrops, maxTensorElements}): this addon's copy of the
// process-wide limits (ts/core/limits.ts keeps every loaded addon's copy equal).
Napi::Value GetLimits(const Napi::CallbackInfo& info) {
  const Limits l = limits();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("maxPixels", static_cast<double>(l.maxPixels));
  o.Set("maxCrops", static_cast<double>(l.maxCrops));
  o.Set("maxTensorElements", static_cast<double>(l.maxTensorElements));
  return o;
}

Napi::Value SetLimits(const Napi::CallbackInfo& info) {
  if (!info[0].IsObject()) throwError(info.Env(), code::kInvalidArgument, "setLimits needs an object");
  Napi::Object o = info[0].As<Napi::Object>();
  rethrowNative(info.Env(), [&] {
    setLimits(Limits{limitField(o, "maxPixels"), limitField(o, "maxCrops"), limitField(o, "maxTensorElements")});
  });
  return info.Env().Undefined();
}
}  // namespace

void EnvLife::add(const CancelTokenPtr& token) {
  std::lock_guard<std::mutex> lock(mutex);
  if (gone.load()) token->cancel();
  running.push_back(token);
}

void EnvLife::remove(const CancelToken* token) {
  std::lock_guard<std::mutex> lock(mutex);
  for (size_t i = 0; i < running.size(); ++i)
    if (running[i].get() == token) {
      running[i] = std::move(running.back());
      running.pop_back();
      return;
    }
}

size_t EnvLife::shutdown() {
  std::lock_guard<std::mutex> lock(mutex);
  gone.store(true);
  for (const auto& t : running) t->cancel();
  return running.size();
}

void adjustExternalMemory(napi_env env, int64_t delta) noexcept {
  int64_t ignored = 0;
  napi_adjust_external_memory(env, delta, &ignored);
}

bool envCanRunJs(Napi::Env env) noexcept {
  // napi_set_named_property refuses (napi_pending_exception / napi_cannot_run_js) once the
  // environment can no longer call into JavaScript; creating a plain object never runs JS.
  napi_value probe = nullptr, value = nullptr;
  if (napi_create_object(env, &probe) != napi_ok || napi_get_boolean(env, true, &value) != napi_ok) return false;
  return napi_set_named_property(env, probe, "p", value) == napi_ok;
}

void initAddonData(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData(data);
  // Runs when the environment tears down (worker exit/terminate, process exit), before
  // N-API frees the environment's references. Holds EnvLife, not AddonData (freed with
  // the instance data).
  std::shared_ptr<EnvLife> life = data->life;
  env.AddCleanupHook([life]() { life->shutdown(); });
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass, "setErrorClass"));
  exports.Set("getLimits", Napi::Function::New(env, GetLimits, "getLimits"));
  exports.Set("setLimits", Napi::Function::New(env, SetLimits, "setLimits"));
}

Napi::Object objArg(const Napi::CallbackInfo& info, size_t i) {
  return info[i].IsObject() ? info[i].As<Napi::Object>() : Napi::Object::New(info.Env());
}

namespace {
const char* dtypeOf(napi_typedarray_type t) {
  switch (t) {
    case napi_uint8_array: return "uint8";
    case napi_float32_array: return "float32";
    case napi_float64_array: return "float64";
    case napi_int32_array: return "int32";
    case napi_bigint64_array: return "int64";
    default: return nullptr;
  }
}
}  // namespace

TensorView tensorView(const Napi::Value& value, const std::string& argName) {
  Napi::Env env = value.Env();
  if (!value.IsObject()) throwError(env, code::kInvalidArgument, argName + " must be a Tensor");
  Napi::Object obj = value.As<Napi::Object>();
  Napi::Value data = obj.Get("data");
  Napi::Value shape = obj.Get("shape");
  Napi::Value dtype = obj.Get("dtype");
  if (!data.IsTypedArray() || !shape.IsArray() || !dtype.IsString())
    throwError(env, code::kInvalidArgument, argName + " must be a Tensor {dtype, shape, data: TypedArray}");
  Napi::TypedArray array = data.As<Napi::TypedArray>();
  TensorView view;
  const char* actual = dtypeOf(array.TypedArrayType());
  view.dtype = dtype.As<Napi::String>().Utf8Value();
  if (!actual || view.dtype != actual)
    throwError(env, code::kInvalidArgument, argName + ": dtype '" + view.dtype + "' does not match its data array");
  Napi::Array dims = shape.As<Napi::Array>();
  int64_t elements = 1;
  for (uint32_t i = 0; i < dims.Length(); ++i) {
    Napi::Value d = dims.Get(i);
    const double v = d.IsNumber() ? d.As<Napi::Number>().DoubleValue() : -1;
    if (!(v >= 0) || std::floor(v) != v) throwError(env, code::kInvalidArgument, argName + ": shape must hold non-negative integers");
    if (v > 9.007199254740992e15 || __builtin_mul_overflow(elements, static_cast<int64_t>(v), &elements))
      throwError(env, code::kInvalidArgument, argName + ": shape holds more elements than any data array can");
    view.shape.push_back(static_cast<int64_t>(v));
  }
  if (static_cast<size_t>(elements) != array.ElementLength())
    throwError(env, code::kInvalidArgument, argName + ": shape holds " + std::to_string(elements) +
                                                " elements but data has " + std::to_string(array.ElementLength()));
  rethrowNative(env, [&] { checkTensorElements(elements, argName); });
  // The data pointer straight from the TypedArray: this also serves views over a
  // SharedArrayBuffer (whose ArrayBuffer() N-API refuses). Shared memory is copied at the
  // call like any other input, so later writes by any thread do not reach the job.
  napi_typedarray_type type;
  size_t length = 0, offset = 0;
  void* base = nullptr;
  napi_value buffer = nullptr;
  if (napi_get_typedarray_info(env, array, &type, &length, &base, &buffer, &offset) != napi_ok)
    throwError(env, code::kInvalidArgument, argName + ": its data array cannot be read");
  view.byteLength = array.ByteLength();
  // Copied, not borrowed: see TensorView (napi_util.h). `base` already points at the
  // first element (napi_get_typedarray_info adjusts it by the view's byte offset).
  const auto* source = static_cast<const uint8_t*>(base);
  auto copy = std::make_shared<std::vector<uint8_t>>(source, source + view.byteLength);
  view.data = copy->data();
  view.owner = std::move(copy);
  return view;
}

Napi::ArrayBuffer externalBuffer(Napi::Env env, std::vector<uint8_t>&& bytes) {
  return externalBufferOf<uint8_t>(env, std::move(bytes));
}

namespace {
Napi::Value optValue(const Napi::Object& o, const char* key) {
  return o.Has(key) ? o.Get(key) : o.Env().Undefined();
}
}  // namespace

int32_t optInt(const Napi::Object& o, const char* key, int32_t fallback) {
  Napi::Value v = optValue(o, key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!std::isfinite(d) || std::floor(d) != d || std::fabs(d) > 2147483647.0)
    throwError(o.Env(), code::kInvalidArgument, std::string("Option '") + key + "' must be an integer");
  return static_cast<int32_t>(d);
}

double optDouble(const Napi::Object& o, const char* key, double fallback) {
  Napi::Value v = optValue(o, key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsNumber() || !std::isfinite(v.As<Napi::Number>().DoubleValue()))
    throwError(o.Env(), code::kInvalidArgument, std::string("Option '") + key + "' must be a finite number");
  return v.As<Napi::Number>().DoubleValue();
}

bool optBool(const Napi::Object& o, const char* key, bool fallback) {
  Napi::Value v = optValue(o, key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsBoolean()) throwError(o.Env(), code::kInvalidArgument, std::string("Option '") + key + "' must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string optString(const Napi::Object& o, const char* key, const std::string& fallback) {
  Napi::Value v = optValue(o, key);
  if (v.IsUndefined() || v.IsNull()) return fallback;
  if (!v.IsString()) throwError(o.Env(), code::kInvalidArgument, std::string("Option '") + key + "' must be a string");
  return v.As<Napi::String>().Utf8Value();
}

// ---------------------------------------------------------------------------

Job::Job(Napi::Env env, const char* name) : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)) {
  auto* data = env.GetInstanceData<AddonData>();
  life_ = data ? data->life : std::make_shared<EnvLife>();
  life_->add(cancel_);
}

Job::~Job() { life_->remove(cancel_.get()); }

void Job::keepAlive(const Napi::Value& value) { keptAlive_.push_back(Napi::Persistent(value)); }

Napi::Object Job::start(const Napi::Value& onProgress) {
  Napi::Env env = Env();
  if (onProgress.IsFunction()) {
    progress_ = Napi::ThreadSafeFunction::New(env, onProgress.As<Napi::Function>(), "anomalyncd.progress", 0, 1);
    hasProgress_ = true;
  }
  Napi::Object handle = Napi::Object::New(env);
  handle.Set("promise", deferred_.Promise());
  // The cancel function owns its own reference to the token, so calling it
  // after the job has settled (and been deleted) is harmless.
  CancelTokenPtr token = cancel_;
  handle.Set("cancel", Napi::Function::New(env, [token](const Napi::CallbackInfo& info) {
               token->cancel();
               return info.Env().Undefined();
             }, "cancel"));
  Queue();
  return handle;
}

void Job::progress(double done, double total, const std::string& stage) {
  if (!hasProgress_) return;
  struct Event { double done, total; std::string stage; };
  auto* event = new Event{done, total, stage};
  const napi_status status = progress_.NonBlockingCall(event, [](Napi::Env env, Napi::Function cb, Event* e) {
    try {
      if (env != nullptr && cb != nullptr)
        cb.Call({Napi::Number::New(env, e->done), Napi::Number::New(env, e->total), Napi::String::New(env, e->stage)});
    } catch (...) {
      // A throwing progress listener must not take the job down with it.
    }
    delete e;
  });
  if (status != napi_ok) delete event;
}

Napi::Array Job::warningsArray(Napi::Env env) const {
  Napi::Array out = Napi::Array::New(env, warnings_.size());
  for (size_t i = 0; i < warnings_.size(); ++i) out.Set(static_cast<uint32_t>(i), warnings_[i]);
  return out;
}

void Job::Execute() {
  try {
    cancel_->throwIfCancelled();
    run();
  } catch (const Error& e) {
    errorCode_ = e.code();
    errorMessage_ = e.what();
  } catch (const std::bad_alloc&) {
    errorCode_ = code::kInternal;
    errorMessage_ = "Out of memory";
  } catch (const std::exception& e) {
    // libtorch/OpenCV messages carry backtraces after the first line.
    std::string message = e.what();
    const auto cut = message.find("\nException raised from");
    if (cut != std::string::npos) message.resize(cut);
    errorCode_ = isDeviceOutOfMemory(message) ? code::kOutOfMemory : code::kInternal;
    errorMessage_ = message;
  } catch (...) {
    errorCode_ = code::kInternal;
    errorMessage_ = "Unknown native error";
  }
  failed_ = !errorCode_.empty();
}

void Job::settle() {
  if (hasProgress_) {
    progress_.Release();
    hasProgress_ = false;
  }
  keptAlive_.clear();
}

// Replaces AsyncWorker's completion (OnOK/OnError through WrapCallback), which lets a
// Napi::Error escape into Node when the environment is tearing down: fatal there.
void Job::OnWorkComplete(Napi::Env env, napi_status status) {
  life_->remove(cancel_.get());
  try {
    Napi::HandleScope scope(env);
    if (status == napi_cancelled || life_->gone.load() || !envCanRunJs(env)) {
      settle();  // the environment is going away: nobody is waiting for this promise
    } else if (failed_) {
      settleError(env);
    } else {
      settleOK(env);
    }
  } catch (...) {
    // Only reachable while the environment dies under us: nothing left to report to.
    try { settle(); } catch (...) {}
  }
  Destroy();
}

void Job::settleOK(Napi::Env env) {
  try {
    Napi::Value result = resolve(env);
    settle();
    deferred_.Resolve(result);
  } catch (const Napi::Error& e) {
    settle();
    deferred_.Reject(e.Value());
  } catch (const std::exception& e) {
    settle();
    deferred_.Reject(makeError(env, code::kInternal, e.what()).Value());
  }
}

void Job::settleError(Napi::Env env) {
  settle();
  deferred_.Reject(makeError(env, errorCode_, errorMessage_).Value());
}

}  // namespace anomalyncd::binding
