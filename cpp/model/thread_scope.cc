#include "model/thread_scope.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <mutex>

namespace anomalyncd::model {

namespace {
std::timed_mutex& computeMutex() {
  static std::timed_mutex m;
  return m;
}
}  // namespace

ThreadScope::ThreadScope(int n, const CancelToken* cancel) {
  while (!computeMutex().try_lock_for(std::chrono::milliseconds(50)))
    if (cancel) cancel->throwIfCancelled();
  if (n <= 0) return;
  active_ = true;
  prevTorch_ = at::get_num_threads();
  at::set_num_threads(n);
  using GetFn = int (*)();
  using SetFn = void (*)(int);
  auto get = reinterpret_cast<GetFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  auto set = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (get && set) {
    prevBlas_ = get();
    set(n);
  }
}

ThreadScope::~ThreadScope() {
  if (active_) {
    try {
      at::set_num_threads(std::max(1, prevTorch_));
    } catch (...) {
    }
    using SetFn = void (*)(int);
    auto set = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
    if (set && prevBlas_ > 0) set(prevBlas_);
  }
  computeMutex().unlock();
}

}  // namespace anomalyncd::model
