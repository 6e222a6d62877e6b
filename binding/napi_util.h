// N-API plumbing shared by the wrappers: the JS-owned error class, typed
// tensor views, external result buffers and a Promise-returning job base.
// Nothing here is called off the main thread except Job::Execute's body.
#pragma once
#include <napi.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/cancel.h"
#include "common/error.h"

namespace anomalyncd::binding {

// Per-environment state of an addon (each .node keeps its own: a worker thread
// or a second context loads it afresh).
struct AddonData {
  Napi::FunctionReference errorClass;     // (code, message) => AnomalyNCDError, from ts/core/errors.ts
  Napi::FunctionReference backboneClass;  // the model addon's Backbone class (empty elsewhere)
};

// What every addon's Init does first: its AddonData and `setErrorClass`.
void initAddonData(Napi::Env env, Napi::Object exports);

// The TS error for `code` when TS has registered its factory, else a plain Error with .code.
Napi::Error makeError(Napi::Env env, const std::string& code, const std::string& message);
[[noreturn]] void throwError(Napi::Env env, const std::string& code, const std::string& message);

// True for a device out-of-memory failure's message (mapped to ERR_OUT_OF_MEMORY).
bool isDeviceOutOfMemory(const std::string& message);

// A view of a TS Tensor ({dtype, shape, data: TypedArray}) over a copy of its
// bytes taken on the calling thread. Not the JS memory itself: a reference to a
// TypedArray does not stop its ArrayBuffer being detached (structuredClone or
// postMessage with transfer, ArrayBuffer.prototype.transfer) and the new owner
// may free the memory while a job reads it (a use-after-free, seen as a
// SIGSEGV: test/55-boundary-fuzz.test.ts). The copy also means the caller may
// reuse or overwrite its arrays as soon as the call returns.
struct TensorView {
  std::string dtype;
  std::vector<int64_t> shape;
  void* data = nullptr;
  size_t byteLength = 0;
  std::shared_ptr<const void> owner;  // holds the copy `data` points into; a job keeps it (keepAlive)
};
TensorView tensorView(const Napi::Value& value, const std::string& argName);

// Hands `bytes` to JS as an ArrayBuffer without copying; V8 is told about the
// native memory so its GC pressure accounts for it.
Napi::ArrayBuffer externalBuffer(Napi::Env env, std::vector<uint8_t>&& bytes);
template <typename T>
Napi::ArrayBuffer externalBufferOf(Napi::Env env, std::vector<T>&& values) {
  // The vector moves into a holder that the ArrayBuffer's finalizer frees.
  struct Holder { std::vector<T> v; };
  auto* holder = new Holder{std::move(values)};
  const size_t length = holder->v.size() * sizeof(T);
  if (length == 0) { delete holder; return Napi::ArrayBuffer::New(env, 0); }
  Napi::MemoryManagement::AdjustExternalMemory(env, static_cast<int64_t>(length));
  return Napi::ArrayBuffer::New(env, holder->v.data(), length, [length](Napi::Env e, void*, Holder* h) {
    Napi::MemoryManagement::AdjustExternalMemory(e, -static_cast<int64_t>(length));
    delete h;
  }, holder);
}

// Options readers that name the option in their errors.
int32_t optInt(const Napi::Object& o, const char* key, int32_t fallback);
double optDouble(const Napi::Object& o, const char* key, double fallback);
bool optBool(const Napi::Object& o, const char* key, bool fallback);
std::string optString(const Napi::Object& o, const char* key, const std::string& fallback);

// info[i] when it is an object, else an empty object (absent options).
Napi::Object objArg(const Napi::CallbackInfo& info, size_t i);

// Base of every Promise-returning native call. Derived classes copy their
// inputs into plain members in the constructor (main thread), do the work in
// run() (worker thread, no N-API), and build the JS result in resolve().
class Job : public Napi::AsyncWorker {
 public:
  Job(Napi::Env env, const char* name);
  ~Job() override;

  // {promise, cancel} handed back to TS; queues the job.
  Napi::Object start(const Napi::Value& onProgress);
  // Keeps a JS value (an input's owner) alive until the job settles.
  void keepAlive(const Napi::Value& value);
  // Keeps native storage (a TensorView's copy) alive until the job is destroyed.
  void keepAlive(std::shared_ptr<const void> storage) { keptStorage_.push_back(std::move(storage)); }
  const CancelToken& cancelToken() const { return *cancel_; }
  // From run(): a note returned with the result (reference behaviours worth knowing).
  void addWarning(std::string w) { warnings_.push_back(std::move(w)); }

 protected:
  virtual void run() = 0;
  virtual Napi::Value resolve(Napi::Env env) = 0;
  // From run(): report progress to the TS callback, if any (non-blocking).
  void progress(double done, double total, const std::string& stage = {});
  Napi::Array warningsArray(Napi::Env env) const;

 private:
  void Execute() override;
  void OnOK() override;
  void OnError(const Napi::Error& e) override;
  void settle();

  Napi::Promise::Deferred deferred_;
  CancelTokenPtr cancel_ = std::make_shared<CancelToken>();
  Napi::ThreadSafeFunction progress_;
  bool hasProgress_ = false;
  std::vector<Napi::Reference<Napi::Value>> keptAlive_;
  std::vector<std::shared_ptr<const void>> keptStorage_;
  std::vector<std::string> warnings_;
  std::string errorCode_;
};

// Queues a new J(args...) and returns its {promise, cancel}; the queued
// AsyncWorker deletes itself when it settles.
template <typename J, typename... Args>
Napi::Object startJob(const Napi::Value& onProgress, Args&&... args) {
  auto job = std::make_unique<J>(std::forward<Args>(args)...);
  Napi::Object handle = job->start(onProgress);
  job.release();
  return handle;
}

}  // namespace anomalyncd::binding
