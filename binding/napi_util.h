// N-API plumbing shared by the wrappers: the JS-owned error class, typed
// tensor views, external result buffers and a Promise-returning job base.
// Nothing here is called off the main thread except Job::Execute's body.
#pragma once
#include <napi.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/cancel.h"
#include "common/error.h"

namespace anomalyncd::binding {

// The lifetime of one environment as jobs see it. Shared (shared_ptr) by the
// AddonData, the environment's cleanup hook and every job, so it outlives all of them.
// `gone` is set when the environment tears down (a worker thread that exits or is
// terminated): from then on a job settles nothing (no N-API call reaches JS) and the
// jobs still registered are cancelled.
struct EnvLife {
  std::atomic<bool> gone{false};
  std::mutex mutex;
  std::vector<CancelTokenPtr> running;  // tokens of the jobs queued or running in this environment

  void add(const CancelTokenPtr& token);
  void remove(const CancelToken* token);
  // The cleanup hook's work: marks the environment gone and cancels every registered job.
  size_t shutdown();
};

// Per-environment state of an addon (each .node keeps its own: a worker thread
// or a second context loads it afresh).
struct AddonData {
  Napi::FunctionReference errorClass;     // (code, message) => AnomalyNCDError, from ts/core/errors.ts
  Napi::FunctionReference backboneClass;  // the model addon's Backbone class (empty elsewhere)
  std::shared_ptr<EnvLife> life = std::make_shared<EnvLife>();
};

// napi_adjust_external_memory that never throws (finalizers and destructors run while an
// environment tears down, where a throwing N-API wrapper would terminate the process).
void adjustExternalMemory(napi_env env, int64_t delta) noexcept;

// What every addon's Init does first: its AddonData and `setErrorClass`.
void initAddonData(Napi::Env env, Napi::Object exports);

// The TS error for `code` when TS has registered its factory, else a plain Error with .code.
Napi::Error makeError(Napi::Env env, const std::string& code, const std::string& message);
[[noreturn]] void throwError(Napi::Env env, const std::string& code, const std::string& message);

// True for a device out-of-memory failure's message (mapped to ERR_OUT_OF_MEMORY).
bool isDeviceOutOfMemory(const std::string& message);

// Runs `f` on the main thread, turning an anomalyncd::Error it throws into the TS error.
template <typename F>
void rethrowNative(Napi::Env env, F&& f) {
  try {
    f();
  } catch (const Error& e) {
    throwError(env, e.code(), e.what());
  }
}

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
  adjustExternalMemory(env, static_cast<int64_t>(length));
  return Napi::ArrayBuffer::New(env, holder->v.data(), length, [length](Napi::Env e, void*, Holder* h) {
    adjustExternalMemory(e, -static_cast<int64_t>(length));
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
//
// Environment teardown (worker.terminate() or exit while a job runs): Node waits for
// every queued/running async work of the environment before it runs cleanup hooks, so
// the job's inputs (kept referenced) stay valid until run() returns. Completion then
// finds the environment unable to run JS: the job settles nothing, catches whatever
// an N-API wrapper throws (nothing escapes into Node, which would abort the process),
// drops its result and deletes itself. The environment's cleanup hook marks EnvLife
// gone and cancels jobs still registered.
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
  void OnWorkComplete(Napi::Env env, napi_status status) override;
  void settleOK(Napi::Env env);
  void settleError(Napi::Env env);
  void settle();

  std::shared_ptr<EnvLife> life_;
  Napi::Promise::Deferred deferred_;
  CancelTokenPtr cancel_ = std::make_shared<CancelToken>();
  Napi::ThreadSafeFunction progress_;
  bool hasProgress_ = false;
  std::vector<Napi::Reference<Napi::Value>> keptAlive_;
  std::vector<std::shared_ptr<const void>> keptStorage_;
  std::vector<std::string> warnings_;
  std::string errorCode_;
  std::string errorMessage_;
  bool failed_ = false;
};

// Whether `env` can still run JavaScript (false while it tears down).
bool envCanRunJs(Napi::Env env) noexcept;

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
