// Cooperative cancellation shared between the JS thread (sets it) and a worker
// (polls it between units of work).
#pragma once
#include <atomic>
#include <memory>

#include "common/error.h"

namespace anomalyncd {

class CancelToken {
 public:
  void cancel() noexcept { cancelled_.store(true, std::memory_order_relaxed); }
  bool cancelled() const noexcept { return cancelled_.load(std::memory_order_relaxed); }
  void throwIfCancelled() const {
    if (cancelled()) throw Error(code::kAborted, "The operation was aborted");
  }

 private:
  std::atomic<bool> cancelled_{false};
};

using CancelTokenPtr = std::shared_ptr<CancelToken>;

}  // namespace anomalyncd
