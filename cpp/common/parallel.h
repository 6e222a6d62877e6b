// A small fork-join loop for batch stages. The calling (libuv worker) thread
// takes part, so `threads == 1` runs inline with no thread creation.
#pragma once
#include <algorithm>
#include <atomic>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "common/cancel.h"

namespace anomalyncd {

// Runs body(i) for i in [0, count) on `threads` threads, items handed out one
// at a time (items differ a lot in cost). The first exception stops the loop
// and is rethrown on the caller; cancellation is checked between items.
inline void parallelFor(size_t count, int threads, const CancelToken* cancel,
                        const std::function<void(size_t)>& body) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr firstError;
  std::mutex errorMutex;
  auto run = [&]() {
    for (;;) {
      if (failed.load(std::memory_order_relaxed)) return;
      if (cancel && cancel->cancelled()) return;
      const size_t i = next.fetch_add(1);
      if (i >= count) return;
      try {
        body(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(errorMutex);
        if (!firstError) firstError = std::current_exception();
        failed.store(true);
        return;
      }
    }
  };
  const size_t workers = std::min<size_t>(std::max(threads, 1), std::max<size_t>(count, 1));
  std::vector<std::thread> pool;
  pool.reserve(workers - 1);
  for (size_t t = 1; t < workers; ++t) pool.emplace_back(run);
  run();
  for (auto& th : pool) th.join();
  if (firstError) std::rethrow_exception(firstError);
  if (cancel) cancel->throwIfCancelled();
}

}  // namespace anomalyncd
