#include "model/thread_scope.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace anomalyncd::model {

namespace {
std::timed_mutex& computeMutex() {
  static std::timed_mutex m;
  return m;
}

// glibc's malloc hands the freed activations of a forward (and autocast's per-call bf16
// weight casts) back to the kernel between calls — mmap'd chunks, trimmed heaps — and the
// next forward faults fresh pages in again. On VMs where a page fault is dear that was
// more than half of a bf16 forward (bench/RESULTS.md, "bf16 on the CPU"). So while a
// ThreadScope holds the compute threads, freed memory stays in the heap (chunks under
// 32 MiB from the heap, no trimming under 1 GiB free at the top), and when it ends the
// defaults come back and malloc_trim returns what is free. Process-wide, like the thread
// counts; ANOMALYNCD_MALLOC_TUNING=0 leaves malloc alone.
bool mallocTuning() {
  static const bool on = [] {
    const char* v = std::getenv("ANOMALYNCD_MALLOC_TUNING");
    return !(v && std::strcmp(v, "0") == 0);
  }();
  return on;
}

void keepFreedMemory() {
#if defined(__GLIBC__)
  if (!mallocTuning()) return;
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

void releaseFreedMemory() {
#if defined(__GLIBC__)
  if (!mallocTuning()) return;
  mallopt(M_MMAP_THRESHOLD, 128 << 10);  // glibc's defaults (its dynamic threshold stays off)
  mallopt(M_TRIM_THRESHOLD, 128 << 10);
  malloc_trim(0);
#endif
}
}  // namespace

ThreadScope::ThreadScope(int n, const CancelToken* cancel) {
  while (!computeMutex().try_lock_for(std::chrono::milliseconds(50)))
    if (cancel) cancel->throwIfCancelled();
  keepFreedMemory();
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
  releaseFreedMemory();
  computeMutex().unlock();
}

}  // namespace anomalyncd::model
